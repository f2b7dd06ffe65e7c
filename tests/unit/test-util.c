/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spelling.h"
#include "test-helpers.h"
#include "util.h"

static void test_strv_join(void **state)
{
        char *three[] = { "a", "bc", "", NULL }, *one[] = { "x", NULL }, *none[] = { NULL };
        _cleanup_free_ char *j3 = strv_join(three, ", "), *j1 = strv_join(one, ", "),
                            *j0 = strv_join(none, ", "), *jn = strv_join(NULL, "-");

        assert_string_equal(j3, "a, bc, ");
        assert_string_equal(j1, "x");
        assert_string_equal(j0, "");
        assert_string_equal(jn, "");
}

static void test_free_and_strdup(void **state)
{
        _cleanup_free_ char *p = NULL;

        assert_int_equal(free_and_strdup(&p, NULL), 0);
        assert_null(p);
        assert_int_equal(free_and_strdup(&p, "a"), 1);
        assert_string_equal(p, "a");
        assert_int_equal(free_and_strdup(&p, "a"), 0);
        assert_int_equal(free_and_strdup(&p, "b"), 1);
        assert_string_equal(p, "b");
        assert_int_equal(free_and_strdup(&p, NULL), 1);
        assert_null(p);
        erase_and_free(strdup("secret"));
        erase_and_free(NULL);
}

static void test_parse_duration(void **state)
{
        usec_t u;

        assert_int_equal(parse_duration("500ms", &u), 0);
        assert_int_equal(u, 500 * USEC_PER_MSEC);
        assert_int_equal(parse_duration("10s", &u), 0);
        assert_int_equal(u, 10 * USEC_PER_SEC);
        assert_int_equal(parse_duration("2min", &u), 0);
        assert_int_equal(u, 120 * USEC_PER_SEC);
        assert_int_equal(parse_duration("1h", &u), 0);
        assert_int_equal(u, USEC_PER_HOUR);
        assert_int_equal(parse_duration(" 1min 30s ", &u), 0);
        assert_int_equal(u, 90 * USEC_PER_SEC);
        assert_int_equal(parse_duration("1min30s", &u), 0);
        assert_int_equal(u, 90 * USEC_PER_SEC);
        assert_int_equal(parse_duration("0s", &u), 0);
        assert_int_equal(u, 0);

        assert_int_equal(parse_duration("500", &u), -EINVAL); /* ambiguous */
        assert_int_equal(parse_duration("", &u), -EINVAL);
        assert_int_equal(parse_duration("s", &u), -EINVAL);
        assert_int_equal(parse_duration("5 minutes", &u), -EINVAL);
        assert_int_equal(parse_duration("-5s", &u), -EINVAL);
        assert_int_equal(parse_duration("1.5s", &u), -EINVAL);
        assert_int_equal(parse_duration("99999999999999999999s", &u), -ERANGE);
        assert_int_equal(parse_duration("9999999999999h", &u), -ERANGE);
}

/* Digits only, the whole string, within [min, max]: what the configuration and the store's
 * records take as a number. */
static void test_parse_uint_range(void **state)
{
        uint64_t v = 7;

        assert_int_equal(parse_uint_range("42", 0, 100, &v), 0);
        assert_int_equal(v, 42);
        assert_int_equal(parse_uint_range("18446744073709551615", 0, UINT64_MAX, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_uint_range("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        assert_int_equal(parse_uint_range("101", 0, 100, &v), -ERANGE);
        assert_int_equal(parse_uint_range("0", 1, 100, &v), -ERANGE);
        assert_int_equal(parse_uint_range("", 0, 100, &v), -EINVAL);
        assert_int_equal(parse_uint_range(" 42", 0, 100, &v), -EINVAL);
        assert_int_equal(parse_uint_range("+42", 0, 100, &v), -EINVAL);
        assert_int_equal(parse_uint_range("-1", 0, UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_uint_range("42 ", 0, 100, &v), -EINVAL);
        assert_int_equal(parse_uint_range("4x", 0, 100, &v), -EINVAL);
        assert_true(v == UINT64_MAX); /* written only on success */
}

static void test_format_duration(void **state)
{
        char buf[64];

        assert_string_equal(format_duration(buf, sizeof(buf), 0), "0s");
        assert_string_equal(format_duration(buf, sizeof(buf), 90 * USEC_PER_SEC), "1min 30s");
        assert_string_equal(format_duration(buf, sizeof(buf), 500 * USEC_PER_MSEC), "500ms");
}

static void test_parse_boolean(void **state)
{
        assert_int_equal(parse_boolean("yes"), 1);
        assert_int_equal(parse_boolean("On"), 1);
        assert_int_equal(parse_boolean("1"), 1);
        assert_int_equal(parse_boolean("no"), 0);
        assert_int_equal(parse_boolean("FALSE"), 0);
        assert_int_equal(parse_boolean("maybe"), -EINVAL);
        assert_int_equal(parse_boolean(""), -EINVAL);
}

static void test_addresses(void **state)
{
        int family;

        assert_true(ip_address_is_valid("192.0.2.1", &family));
        assert_int_equal(family, AF_INET);
        assert_true(ip_address_is_valid("2001:db8::1", &family));
        assert_int_equal(family, AF_INET6);
        assert_false(ip_address_is_valid("192.0.2.256", NULL));
        assert_false(ip_address_is_valid("node1", NULL));
        assert_true(ip_address_is_any("0.0.0.0"));
        assert_true(ip_address_is_any("::"));
        assert_true(ip_address_is_any("0:0::0"));
        assert_false(ip_address_is_any("192.0.2.1"));
        assert_true(ip_address_is_loopback("127.0.0.1"));
        assert_true(ip_address_is_loopback("127.1.2.3"));
        assert_true(ip_address_is_loopback("::1"));
        assert_false(ip_address_is_loopback("192.0.2.1"));

        assert_true(cidr_is_valid("192.0.2.0/24"));
        assert_true(cidr_is_valid("192.0.2.7"));
        assert_true(cidr_is_valid("2001:db8::/64"));
        assert_true(cidr_is_valid("0.0.0.0/0"));
        assert_false(cidr_is_valid("192.0.2.0/33"));
        assert_false(cidr_is_valid("192.0.2.0/"));
        assert_false(cidr_is_valid("192.0.2.0/-1"));
        assert_false(cidr_is_valid("/24"));
        assert_false(cidr_is_valid("2001:db8::/129"));
        assert_false(cidr_is_valid("example.com/24"));

        assert_true(hostname_is_valid("node1"));
        assert_true(hostname_is_valid("node1.example.com"));
        assert_false(hostname_is_valid(""));
        assert_false(hostname_is_valid("-node"));
        assert_false(hostname_is_valid("node-"));
        assert_false(hostname_is_valid("a..b"));
        assert_false(hostname_is_valid("a b"));
}

static void test_uuid(void **state)
{
        assert_true(uuid_is_valid("3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b"));
        assert_true(uuid_is_valid("3F8C5B9E-2D4A-4F61-9B7E-0C1D2E3F4A5B"));
        assert_false(uuid_is_valid("3f8c5b9e2d4a4f619b7e0c1d2e3f4a5b"));
        assert_false(uuid_is_valid("3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5"));
        assert_false(uuid_is_valid("3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5g"));
        assert_false(uuid_is_valid("../../../../etc/passwd/../../../x"));
}

static void test_split_list(void **state)
{
        char **l = NULL;

        assert_int_equal(strv_split_list(" a, b\n\tc,,", &l), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[2], "c");
        strv_free(l);
        assert_int_equal(strv_split_list("  ", &l), 0);
        assert_non_null(l);
        assert_int_equal(strv_length(l), 0);
        strv_free(l);
}

static void test_read_full_fd_limits(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        char path[4096], *text = NULL;
        size_t size;

        test_write(dir, "f", "hello");
        snprintf(path, sizeof(path), "%s/f", dir);
        assert_int_equal(read_full_file(path, 5, &text, &size), 0);
        assert_int_equal(size, 5);
        assert_string_equal(text, "hello");
        free(text);
        assert_int_equal(read_full_file(path, 4, &text, &size), -EFBIG);
        assert_int_equal(read_full_file("/nonexistent", 4, &text, &size), -ENOENT);
        test_rm_rf(dir);
}

static void test_write_file_atomic(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        char path[4096], *text = NULL;
        struct stat st;

        snprintf(path, sizeof(path), "%s/state", dir);
        assert_int_equal(write_file_atomic(path, "one\n", 0600), 0);
        assert_int_equal(write_file_atomic(path, "two\n", 0600), 0);
        assert_int_equal(read_full_file(path, 100, &text, NULL), 0);
        assert_string_equal(text, "two\n");
        free(text);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        snprintf(path, sizeof(path), "%s/missing/state", dir);
        assert_int_equal(write_file_atomic(path, "x", 0600), -ENOENT);
        test_rm_rf(dir);
}

/* hostwardend calls it first thing: checked in a child, which it changes for good. */
static void test_process_forbid_core_dumps(void **state)
{
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                struct rlimit rl;

                if (prctl(PR_GET_DUMPABLE) != 1)
                        _exit(2); /* the test could not tell */
                if (process_forbid_core_dumps() < 0 || prctl(PR_GET_DUMPABLE) != 0 ||
                    getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
                        _exit(1);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_spelling_closest(void **state)
{
        static const char *const keys[] = { "address", "name", "max_concurrent", "max_incoming",
                                            "enable" };

        assert_string_equal(spelling_closest("adress", keys, ELEMENTSOF(keys)), "address");
        assert_string_equal(spelling_closest("adrsess", keys, ELEMENTSOF(keys)), "address");
        assert_string_equal(spelling_closest("nmae", keys, ELEMENTSOF(keys)), "name"); /* swap */
        assert_string_equal(spelling_closest("max_concurent", keys, ELEMENTSOF(keys)),
                            "max_concurrent");
        assert_string_equal(spelling_closest("enalbe", keys, ELEMENTSOF(keys)), "enable");
        /* a known word is no misspelling; short words and far ones get no guess */
        assert_null(spelling_closest("name", keys, ELEMENTSOF(keys)));
        assert_null(spelling_closest("nm", keys, ELEMENTSOF(keys)));
        assert_null(spelling_closest("colour", keys, ELEMENTSOF(keys)));
        assert_null(spelling_closest(NULL, keys, ELEMENTSOF(keys)));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_strv_join),
                cmocka_unit_test(test_free_and_strdup),
                cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_parse_uint_range),
                cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_parse_boolean),
                cmocka_unit_test(test_addresses),
                cmocka_unit_test(test_uuid),
                cmocka_unit_test(test_split_list),
                cmocka_unit_test(test_read_full_fd_limits),
                cmocka_unit_test(test_write_file_atomic),
                cmocka_unit_test(test_process_forbid_core_dumps),
                cmocka_unit_test(test_spelling_closest),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
