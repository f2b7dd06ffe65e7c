/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pure parts of a cold migration (lib/coldmig.h). */
#include <stdlib.h>
#include <string.h>

#include "coldmig.h"
#include "test-helpers.h"

static void test_states_have_names(void **state)
{
        for (ColdState s = 0; s < _COLD_STATE_MAX; s++)
                assert_int_equal(cold_state_from_string(cold_state_to_string(s)), s);
        assert_string_equal(cold_state_to_string(COLD_VERIFY), "verify");
        assert_int_equal(cold_state_from_string("Verify"), _COLD_STATE_INVALID);
        assert_int_equal(cold_state_from_string(NULL), _COLD_STATE_INVALID);
}

static void test_paths_round_trip(void **state)
{
        char *paths[] = { "/var/lib/libvirt/images/vm.qcow2", "/a b/c%d\te\n", "/ü/\x7f", NULL };
        _cleanup_free_ char *text = NULL;
        _cleanup_strv_free_ char **back = NULL;

        assert_int_equal(cold_paths_format(paths, &text), 0);
        assert_string_equal(text, "/var/lib/libvirt/images/vm.qcow2 /a%20b/c%25d%09e%0A /ü/%7F");
        assert_null(strchr(text, '\n'));
        assert_int_equal(cold_paths_parse(text, &back), 0);
        assert_int_equal(strv_length(back), 3);
        for (size_t i = 0; i < 3; i++)
                assert_string_equal(back[i], paths[i]);
}

static void test_paths_refuse_what_is_never_written(void **state)
{
        static const char *const bad[] = {
                "",       "relative", "/a  /b", "/a%2", "/a%zz",
                "/a%00b", "/a%2F ",   " /a",    "%2Fa", "/a /b/", /* ok */
        };
        char *rel[] = { "/a", "b", NULL };
        char *none[] = { NULL };
        char **l = NULL;
        char *text = NULL;

        for (size_t i = 0; i + 1 < ELEMENTSOF(bad); i++) {
                assert_int_equal(cold_paths_parse(bad[i], &l), -EINVAL);
                assert_null(l);
        }
        assert_int_equal(cold_paths_parse(bad[ELEMENTSOF(bad) - 1], &l), 0);
        assert_int_equal(strv_length(l), 2);
        l = strv_free(l);
        assert_int_equal(cold_paths_format(rel, &text), -EINVAL);
        assert_int_equal(cold_paths_format(none, &text), -EINVAL);
        assert_int_equal(cold_paths_format(NULL, &text), -EINVAL);
        assert_null(text);
}

static void test_volume_xml(void **state)
{
        static const char src[] =
                "<volume type='file'><name>vm.qcow2</name><target><path>/x/vm.qcow2</path>"
                "<format type='qcow2'/><permissions>\n<mode>0640</mode>\n<owner>64060</owner>"
                "\n<group>64060</group>\n</permissions></target></volume>";
        _cleanup_free_ char *xml = cold_volume_xml("vm.qcow2", 200704, src);
        _cleanup_free_ char *bare = cold_volume_xml("vm.raw", 1, "<volume/>");

        assert_non_null(xml);
        assert_true(test_contains(xml, "<name>vm.qcow2</name>"));
        assert_true(test_contains(xml, "<capacity unit='bytes'>200704</capacity>"));
        assert_true(test_contains(xml, "<allocation unit='bytes'>0</allocation>"));
        assert_true(test_contains(xml, "<format type='raw'/>"));
        assert_true(test_contains(xml, "<owner>64060</owner>\n<group>64060</group>\n"
                                       "</permissions></target>"));
        assert_non_null(bare);
        assert_null(strstr(bare, "permissions"));
        assert_null(cold_volume_xml("a/b", 1, NULL));
        assert_null(cold_volume_xml("a<b", 1, NULL));
        assert_null(cold_volume_xml("..", 1, NULL));
        assert_null(cold_volume_xml("", 1, NULL));
}

static void test_confirm_window(void **state)
{
        usec_t left = 0;

        assert_false(cold_confirm_due(100, 0, UINT64_MAX, &left));
        assert_true(left == UINT64_MAX);
        assert_false(cold_confirm_due(100, 50, 120, &left));
        assert_int_equal(left, 30);
        assert_true(cold_confirm_due(100, 50, 150, NULL));
        assert_true(cold_confirm_due(100, 50, 1000, NULL));
        /* no overflow far in the future */
        assert_false(cold_confirm_due(UINT64_MAX - 10, 50, UINT64_MAX - 1, &left));
        assert_int_equal(left, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_states_have_names),
                cmocka_unit_test(test_paths_round_trip),
                cmocka_unit_test(test_paths_refuse_what_is_never_written),
                cmocka_unit_test(test_volume_xml),
                cmocka_unit_test(test_confirm_window),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
