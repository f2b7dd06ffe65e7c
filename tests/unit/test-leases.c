/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/leases.c: libvirt's lockd setup as hostwardenctl setup-leases writes it and CheckNode
 * reads it. */
#include <stdlib.h>
#include <string.h>

#include "leases.h"
#include "test-helpers.h"
#include "util.h"

static void test_lockd_conf(void **state)
{
        _cleanup_free_ char *text = NULL, *v = NULL;

        assert_int_equal(leases_lockd_conf("/srv/nova/.leases", &text), 0);
        assert_int_equal(libvirt_conf_get(text, "file_lockspace_dir", &v), 0);
        assert_string_equal(v, "/srv/nova/.leases");
        free(v);
        assert_int_equal(libvirt_conf_get(text, "require_lease_for_disks", &v), 0);
        assert_string_equal(v, "1");

        /* what cannot go into a libvirt string, or is not a place */
        assert_int_equal(leases_lockd_conf("relative", &v), -EINVAL);
        assert_int_equal(leases_lockd_conf("/a\"b", &v), -EINVAL);
        assert_int_equal(leases_lockd_conf("", &v), -EINVAL);
}

static void test_conf_get_takes_the_last_uncommented_setting(void **state)
{
        static const char text[] = "#lock_manager = \"sanlock\"\n"
                                   "lock_manager = \"nop\"\n"
                                   "  lock_manager=\"lockd\"   # the one\n"
                                   "lock_managers = \"x\"\n"
                                   "user = \"root\"\n";
        _cleanup_free_ char *v = NULL;

        assert_int_equal(libvirt_conf_get(text, "lock_manager", &v), 0);
        assert_string_equal(v, "lockd");
        free(v);
        assert_int_equal(libvirt_conf_get(text, "user", &v), 0);
        assert_string_equal(v, "root");
        assert_int_equal(libvirt_conf_get(text, "group", &v), -ENOENT);
}

static void test_qemu_conf_keeps_everything_else(void **state)
{
        _cleanup_free_ char *added = NULL, *replaced = NULL, *again = NULL;

        /* added at the end, after a missing newline */
        assert_int_equal(leases_qemu_conf("user = \"root\"", &added), 0);
        assert_true(test_contains(added, "user = \"root\"\n"));
        assert_true(test_contains(added, "\nlock_manager = \"lockd\"\n"));
        /* an existing setting replaced in place, comments kept */
        assert_int_equal(
                leases_qemu_conf("# x\nlock_manager = \"nop\"\ngroup = \"kvm\"\n", &replaced), 0);
        assert_string_equal(replaced, "# x\nlock_manager = \"lockd\"\ngroup = \"kvm\"\n");
        /* idempotent */
        assert_int_equal(leases_qemu_conf(replaced, &again), 0);
        assert_string_equal(again, replaced);
}

static void test_verify_says_what_differs(void **state)
{
        _cleanup_free_ char *lockd = NULL, *problem = NULL;

        assert_int_equal(leases_lockd_conf("/srv/l", &lockd), 0);
        assert_int_equal(leases_verify("lock_manager = \"lockd\"\n", lockd, "/srv/l", &problem), 0);
        assert_null(problem);
        assert_int_equal(leases_verify("", lockd, "/srv/l", &problem), -EINVAL);
        assert_true(test_contains(problem, "lock_manager = nothing, not lockd"));
        free(problem);
        assert_int_equal(leases_verify("lock_manager = \"lockd\"\n", lockd, "/srv/other", &problem),
                         -EINVAL);
        assert_true(test_contains(problem, "file_lockspace_dir = /srv/l, not /srv/other"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lockd_conf),
                cmocka_unit_test(test_conf_get_takes_the_last_uncommented_setting),
                cmocka_unit_test(test_qemu_conf_keeps_everything_else),
                cmocka_unit_test(test_verify_says_what_differs),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
