/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CheckNode's reading of TLS certificates (lib/certcheck.c), on fixtures made with certtool
 * (tests/data/tls): node.pem names node1, 10.0.0.1 and fd00::1, is signed by ca.pem and valid
 * from 2020-01-01 to 2100-01-01. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "certcheck.h"
#include "util.h"

#define Y2025 ((time_t)1735689600) /* 2025-01-01 */
#define Y2100 ((time_t)4102444800) /* 2100-01-01, node.pem's expiry */
#define DAY   ((time_t)24 * 3600)

static char *data(const char *name)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/tls/%s", getenv("HW_TEST_DATA"), name) > 0);
        return p;
}

static void check(const char *cert, const char *ca, const char *const *names, time_t now,
                  CertCheck *ret)
{
        _cleanup_free_ char *c = data(cert), *a = data(ca);

        cert_check(c, a, names, now, ret);
}

static void test_a_good_certificate_names_its_host_and_addresses(void **state)
{
        const char *const names[] = { "10.0.0.1", "node1", "fd00::1", "", NULL };
        CertCheck cc;

        check("node.pem", "ca.pem", names, Y2025, &cc);
        assert_int_equal(cc.error, 0);
        assert_true(cc.signed_by_ca);
        assert_false(cc.expired || cc.not_yet_valid || cc.expiring);
        assert_int_equal(cc.not_after, Y2100);
        assert_string_equal(cc.missing_name, "");
}

static void test_a_name_or_address_it_lacks_is_named(void **state)
{
        const char *const other_host[] = { "node1", "node2", NULL };
        const char *const other_ip[] = { "10.0.0.2", NULL };
        const char *const other_ip6[] = { "fd00::2", NULL };
        CertCheck cc;

        check("node.pem", "ca.pem", other_host, Y2025, &cc);
        assert_string_equal(cc.missing_name, "node2");
        check("node.pem", "ca.pem", other_ip, Y2025, &cc);
        assert_string_equal(cc.missing_name, "10.0.0.2");
        check("node.pem", "ca.pem", other_ip6, Y2025, &cc);
        assert_string_equal(cc.missing_name, "fd00::2");
}

static void test_validity_is_judged_at_the_time_given(void **state)
{
        CertCheck cc;

        check("node.pem", "ca.pem", NULL, Y2100 - 10 * DAY, &cc);
        assert_true(cc.expiring);
        assert_false(cc.expired);
        check("node.pem", "ca.pem", NULL, Y2100 - (CERT_EXPIRY_WARNING_DAYS + 1) * DAY, &cc);
        assert_false(cc.expiring);
        check("node.pem", "ca.pem", NULL, Y2100 + DAY, &cc);
        assert_true(cc.expired);
        assert_false(cc.expiring);
        assert_true(cc.signed_by_ca); /* the signature is judged apart from the time */
        check("node.pem", "ca.pem", NULL, Y2025 - 6 * 365 * DAY, &cc);
        assert_true(cc.not_yet_valid);
}

static void test_another_ca_does_not_sign_it(void **state)
{
        CertCheck cc;

        check("node.pem", "other-ca.pem", NULL, Y2025, &cc);
        assert_int_equal(cc.error, 0);
        assert_false(cc.signed_by_ca);
}

static void test_missing_and_garbage_files_are_errors_saying_which(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp(), *garbage = NULL;
        CertCheck cc;

        check("nonexistent.pem", "ca.pem", NULL, Y2025, &cc);
        assert_true(cc.error < 0);
        assert_true(test_contains(cc.detail, "nonexistent.pem"));
        test_write(dir, "garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
        assert_true(asprintf(&garbage, "%s/garbage.pem", dir) > 0);
        cert_check(garbage, garbage, NULL, Y2025, &cc);
        assert_true(cc.error < 0);
        assert_true(test_contains(cc.detail, "is not a PEM certificate"));
        test_rm_rf(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_good_certificate_names_its_host_and_addresses),
                cmocka_unit_test(test_a_name_or_address_it_lacks_is_named),
                cmocka_unit_test(test_validity_is_judged_at_the_time_given),
                cmocka_unit_test(test_another_ca_does_not_sign_it),
                cmocka_unit_test(test_missing_and_garbage_files_are_errors_saying_which),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
