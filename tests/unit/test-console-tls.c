/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/console-tls.c: [console] tls_min_version and tls_ciphers as GnuTLS priority strings,
 * held against GnuTLS itself, and qemu.conf as hostwardenctl setup-console-tls writes it and
 * CheckNode reads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "console-tls.h"
#include "leases.h"
#include "test-helpers.h"
#include "util.h"

/* What GnuTLS makes of priority: the versions and ciphers it enables, "V:C,C,..." */
static void gnutls_view(const char *priority, char *buf, size_t size)
{
        gnutls_priority_t p;
        const unsigned *list;
        const char *err = NULL;
        int n;

        assert_int_equal(gnutls_priority_init(&p, priority, &err), 0);
        buf[0] = 0;
        n = gnutls_priority_protocol_list(p, &list);
        for (int i = 0; i < n; i++)
                if (list[i] < GNUTLS_DTLS_VERSION_MIN) {
                        strncat(buf, gnutls_protocol_get_name(list[i]), size - strlen(buf) - 1);
                        strncat(buf, ",", size - strlen(buf) - 1);
                }
        strncat(buf, ":", size - strlen(buf) - 1);
        n = gnutls_priority_cipher_list(p, &list);
        for (int i = 0; i < n; i++) {
                strncat(buf, gnutls_cipher_get_name(list[i]), size - strlen(buf) - 1);
                strncat(buf, ",", size - strlen(buf) - 1);
        }
        gnutls_priority_deinit(p);
}

static void test_min_version_is_what_gnutls_enables(void **state)
{
        _cleanup_free_ char *p12 = NULL, *p13 = NULL, *p11 = NULL, *pd = NULL;
        char view[512];

        assert_int_equal(console_tls_priority(CONSOLE_TLS_VERSION_DEFAULT, NULL, &pd), 0);
        assert_string_equal(pd, ""); /* QEMU keeps its own */

        assert_int_equal(console_tls_priority(CONSOLE_TLS_VERSION_1_2, NULL, &p12), 0);
        gnutls_view(p12, view, sizeof(view));
        assert_true(test_contains(view, "TLS1.3,TLS1.2,:"));
        assert_false(strstr(view, "TLS1.1") || strstr(view, "TLS1.0"));

        assert_int_equal(console_tls_priority(CONSOLE_TLS_VERSION_1_3, NULL, &p13), 0);
        gnutls_view(p13, view, sizeof(view));
        assert_true(test_contains(view, "TLS1.3,:"));
        assert_false(strstr(view, "TLS1.2"));

        assert_int_equal(console_tls_priority(CONSOLE_TLS_VERSION_1_1, NULL, &p11), 0);
        gnutls_view(p11, view, sizeof(view));
        assert_true(test_contains(view, "TLS1.3,TLS1.2,TLS1.1,:"));
        assert_false(strstr(view, "TLS1.0"));
}

static void test_ciphers_are_the_only_ones_gnutls_enables(void **state)
{
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *p = NULL;
        char view[512];

        assert_int_equal(console_tls_ciphers_parse("aes-256-gcm: CHACHA20-POLY1305", &l), 0);
        assert_string_equal(l[0], "AES-256-GCM");
        assert_string_equal(l[1], "CHACHA20-POLY1305");
        assert_null(l[2]);
        assert_int_equal(console_tls_priority(CONSOLE_TLS_VERSION_1_2, l, &p), 0);
        assert_string_equal(p,
                            "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"
                            "+CHACHA20-POLY1305");
        gnutls_view(p, view, sizeof(view));
        assert_string_equal(view, "TLS1.3,TLS1.2,:AES-256-GCM,CHACHA20-POLY1305,");
}

static void test_every_cipher_offered_is_a_gnutls_cipher(void **state)
{
        static const char *const all[] = {
                "AES-256-GCM",      "AES-128-GCM",      "CHACHA20-POLY1305", "AES-128-CCM",
                "AES-256-CCM",      "AES-256-CBC",      "AES-128-CBC",       "CAMELLIA-256-GCM",
                "CAMELLIA-128-GCM", "CAMELLIA-256-CBC", "CAMELLIA-128-CBC",
        };

        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                _cleanup_strv_free_ char **l = NULL;
                _cleanup_free_ char *p = NULL;
                char view[512];

                assert_int_not_equal(gnutls_cipher_get_id(all[i]), GNUTLS_CIPHER_UNKNOWN);
                assert_int_equal(console_tls_ciphers_parse(all[i], &l), 0);
                assert_int_equal(console_tls_priority(CONSOLE_TLS_VERSION_1_2, l, &p), 0);
                gnutls_view(p, view, sizeof(view));
                assert_true(test_contains(view, all[i]));
        }
}

static void test_bad_cipher_lists(void **state)
{
        char **l = NULL;

        /* OpenSSL's suite names, as the seeds' "retrieve the list from openssl" gives */
        assert_int_equal(console_tls_ciphers_parse("ECDHE-RSA-AES256-GCM-SHA384", &l), -EINVAL);
        assert_int_equal(console_tls_ciphers_parse("AES-256-GCM:", &l), -EINVAL);
        assert_int_equal(console_tls_ciphers_parse("AES-256-GCM::AES-128-GCM", &l), -EINVAL);
        assert_int_equal(console_tls_ciphers_parse("AES-256-GCM:aes-256-gcm", &l), -EINVAL);
        /* broken ones are not offered: naming them would enable them */
        assert_int_equal(console_tls_ciphers_parse("3DES-CBC", &l), -EINVAL);
        assert_int_equal(console_tls_ciphers_parse("ARCFOUR-128", &l), -EINVAL);
        assert_int_equal(console_tls_ciphers_parse("NULL", &l), -EINVAL);
        assert_int_equal(console_tls_ciphers_parse("", &l), -EINVAL);
        assert_null(l);
}

static void test_tls13_needs_an_aead_cipher(void **state)
{
        _cleanup_strv_free_ char **cbc = NULL, **mixed = NULL;

        assert_int_equal(console_tls_ciphers_parse("AES-256-CBC:CAMELLIA-256-GCM", &cbc), 0);
        assert_int_equal(console_tls_ciphers_parse("AES-256-CBC:AES-128-GCM", &mixed), 0);
        assert_false(console_tls_ciphers_usable(CONSOLE_TLS_VERSION_1_3, cbc));
        assert_true(console_tls_ciphers_usable(CONSOLE_TLS_VERSION_1_2, cbc));
        assert_true(console_tls_ciphers_usable(CONSOLE_TLS_VERSION_1_3, mixed));
        assert_true(console_tls_ciphers_usable(CONSOLE_TLS_VERSION_1_3, NULL));
}

/* A [console] section after "[console]\ntls = yes\n" (so its own lines are 3 and 4), parsed
 * and finished. */
static Config *parse_console(const char *lines, ConfigDiags *d)
{
        _cleanup_free_ char *text = NULL;
        Config *c = NULL;

        assert_true(asprintf(&text, "[console]\ntls = yes\n%s", lines) > 0);
        assert_int_equal(config_new(&c), 0);
        assert_int_equal(config_parse_text(c, "/etc/hostwarden/hostwarden.conf", text, d), 0);
        assert_int_equal(config_finish(c, d), 0);
        return c;
}

/* The i-th diagnostic, formatted, contains needle. */
static void expect_diag(const ConfigDiags *d, size_t i, const char *needle)
{
        char buf[512];

        assert_true(i < d->n);
        assert_true(test_contains(config_diag_format(&d->items[i], buf, sizeof(buf)), needle));
}

static void test_config_keys(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = NULL;

        assert_int_equal(config_new(&c), 0);
        assert_false(c->console.tls);
        assert_int_equal(c->console.tls_min_version, CONSOLE_TLS_VERSION_DEFAULT);
        assert_null(c->console.tls_ciphers);
        config_free(c);

        c = parse_console("tls_min_version = tlsv1_2\ntls_ciphers = AES-256-GCM:AES-128-GCM\n", &d);
        assert_int_equal(d.n, 0);
        assert_true(c->console.tls);
        assert_int_equal(c->console.tls_min_version, CONSOLE_TLS_VERSION_1_2);
        assert_string_equal(console_tls_version_to_string(c->console.tls_min_version), "tlsv1.2");
        assert_string_equal(c->console.tls_ciphers[1], "AES-128-GCM");
        config_free(c);

        /* a typo names the file and the line */
        c = parse_console("tls_min_version = tls1.2\ntls_ciphers = ECDHE-RSA-AES128-GCM-SHA256\n",
                          &d);
        assert_int_equal(d.n_errors, 2);
        expect_diag(&d, 0,
                    "/etc/hostwarden/hostwarden.conf:3: [console] tls_min_version = 'tls1.2': "
                    "expected default, tlsv1.1, tlsv1.2 or tlsv1.3");
        expect_diag(&d, 1,
                    "/etc/hostwarden/hostwarden.conf:4: [console] tls_ciphers = "
                    "'ECDHE-RSA-AES128-GCM-SHA256': expected GnuTLS cipher names");
        config_diags_clear(&d);
        config_free(c);

        /* TLS 1.3 only with CBC ciphers: no client could connect */
        c = parse_console("tls_min_version = tlsv1.3\ntls_ciphers = AES-256-CBC\n", &d);
        assert_int_equal(d.n_errors, 1);
        expect_diag(&d, 0,
                    "hostwarden.conf:4: [console] tls_ciphers: none of them is a TLS 1.3 cipher");
        config_diags_clear(&d);
        config_free(c);
}

static void test_qemu_conf_written_keeps_the_rest_and_verifies(void **state)
{
        static const char before[] = "# the operator's\n"
                                     "user = \"root\"\n"
                                     "#vnc_tls = 1\n"
                                     "vnc_tls = 0\n"
                                     "migration_port_min = 49152";
        _cleanup_free_ char *text = NULL, *again = NULL, *problem = NULL, *v = NULL, *off = NULL;
        const char *prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

        assert_int_equal(console_tls_verify_qemu_conf(before, prio, &problem), -EINVAL);
        assert_string_equal(problem, "/etc/libvirt/qemu.conf sets vnc_tls = 0, not 1");
        free(problem);

        assert_int_equal(console_tls_qemu_conf(before, prio, &text), 0);
        assert_true(startswith(text,
                               "# the operator's\nuser = \"root\"\n#vnc_tls = 1\nvnc_tls = 1\n"
                               "migration_port_min = 49152\n"));
        assert_int_equal(libvirt_conf_get(text, "vnc_tls_x509_cert_dir", &v), 0);
        assert_string_equal(v, CONSOLE_TLS_CERT_DIR);
        assert_int_equal(console_tls_verify_qemu_conf(text, prio, &problem), 0);
        assert_null(problem);

        /* idempotent: a second run changes nothing */
        assert_int_equal(console_tls_qemu_conf(text, prio, &again), 0);
        assert_string_equal(again, text);

        /* another min version: the priority differs, then back to the default: none set */
        assert_int_equal(
                console_tls_verify_qemu_conf(text, "NORMAL:-VERS-ALL:+VERS-TLS1.3", &problem),
                -EINVAL);
        assert_true(test_contains(problem, "sets vnc_tls_priority = NORMAL:-VERS-ALL:+VERS-TLS1.3"
                                           ":+VERS-TLS1.2, not NORMAL:-VERS-ALL:+VERS-TLS1.3"));
        free(problem);
        assert_int_equal(console_tls_qemu_conf(text, "", &off), 0);
        assert_int_equal(console_tls_verify_qemu_conf(off, "", &problem), 0);
        assert_int_equal(console_tls_verify_qemu_conf(text, "", &problem), -EINVAL);
        assert_true(test_contains(problem, "which [console] does not ask for"));
}

static void test_qmp_command(void **state)
{
        _cleanup_free_ char *cmd = NULL;

        assert_int_equal(console_tls_qmp_set_priority("NORMAL:-VERS-ALL:+VERS-TLS1.3", &cmd), 0);
        assert_string_equal(cmd, "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/objects/"
                                 "vnc-tls-creds0\",\"property\":\"priority\",\"value\":\"NORMAL:-"
                                 "VERS-ALL:+VERS-TLS1.3\"}}");
        assert_int_equal(console_tls_qmp_set_priority("a\"b", &cmd), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_min_version_is_what_gnutls_enables),
                cmocka_unit_test(test_ciphers_are_the_only_ones_gnutls_enables),
                cmocka_unit_test(test_every_cipher_offered_is_a_gnutls_cipher),
                cmocka_unit_test(test_bad_cipher_lists),
                cmocka_unit_test(test_tls13_needs_an_aead_cipher),
                cmocka_unit_test(test_config_keys),
                cmocka_unit_test(test_qemu_conf_written_keeps_the_rest_and_verifies),
                cmocka_unit_test(test_qmp_command),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
