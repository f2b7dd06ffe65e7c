/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* [migration] tls = auto: what libvirt's qemu.conf says about migration TLS and whether the
 * node has QEMU's certificates (lib/migtls.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "migtls.h"
#include "util.h"

static char *conf_with_dir(const char *key, const char *dir, const char *more)
{
        char *text = NULL;

        assert_true(asprintf(&text, "# a comment\n%s = \"%s\"\n%s", key, dir, more) > 0);
        return text;
}

static void test_libvirt_defaults_without_a_qemu_conf(void **state)
{
        MigrationTlsProbe p;

        migration_tls_probe(NULL, &p);
        assert_string_equal(p.dir, "/etc/pki/qemu");
        assert_false(p.force);
        assert_true(p.verify); /* libvirt's default for migrate_tls_x509_verify */
}

static void test_auto_follows_the_server_certificates(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp(), *conf = NULL, *want = NULL;
        MigrationTlsProbe p;

        conf = conf_with_dir("default_tls_x509_cert_dir", dir, "#migrate_tls_force = 1\n");
        migration_tls_probe(conf, &p);
        assert_string_equal(p.dir, dir);
        assert_false(p.force); /* commented out */
        assert_true(asprintf(&want, "%s/ca-cert.pem", dir) > 0);
        assert_string_equal(p.missing, want);
        assert_false(migration_tls_default(MIGRATION_TLS_AUTO, &p));
        assert_true(migration_tls_default(MIGRATION_TLS_YES, &p));

        test_write(dir, "ca-cert.pem", "x");
        test_write(dir, "server-cert.pem", "x");
        migration_tls_probe(conf, &p);
        free(want);
        assert_true(asprintf(&want, "%s/server-key.pem", dir) > 0);
        assert_string_equal(p.missing, want);
        assert_false(migration_tls_default(MIGRATION_TLS_AUTO, &p));

        test_write(dir, "server-key.pem", "x");
        migration_tls_probe(conf, &p);
        assert_string_equal(p.missing, "");
        assert_true(migration_tls_default(MIGRATION_TLS_AUTO, &p));
        assert_false(migration_tls_default(MIGRATION_TLS_NO, &p));
        assert_true(test_contains(p.missing_client, "client-cert.pem"));
        test_write(dir, "client-cert.pem", "x");
        test_write(dir, "client-key.pem", "x");
        migration_tls_probe(conf, &p);
        assert_string_equal(p.missing_client, "");
        test_rm_rf(dir);
}

static void test_the_migration_directory_wins_and_settings_are_read(void **state)
{
        MigrationTlsProbe p;
        _cleanup_free_ char *conf =
                conf_with_dir("migrate_tls_x509_cert_dir", "/nonexistent/migrate",
                              "default_tls_x509_cert_dir = \"/nonexistent/default\"\n"
                              "migrate_tls_force = 1 # libvirt refuses migrations without TLS\n"
                              "default_tls_x509_verify = 0\n");

        migration_tls_probe(conf, &p);
        assert_string_equal(p.dir, "/nonexistent/migrate");
        assert_true(p.force);
        assert_false(p.verify); /* from default_tls_x509_verify */
        assert_string_equal(p.missing, "/nonexistent/migrate/ca-cert.pem");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_libvirt_defaults_without_a_qemu_conf),
                cmocka_unit_test(test_auto_follows_the_server_certificates),
                cmocka_unit_test(test_the_migration_directory_wins_and_settings_are_read),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
