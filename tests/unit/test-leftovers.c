/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The note of what a block migration made on its destination (dbus/migration-leftovers.c):
 * written, read back by a restarted hostwardend, listed, forgotten.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration-leftovers.h"
#include "test-helpers.h"
#include "util.h"

#define UUID  "3F8C5B9E-2D4A-4F61-9B7E-0C1D2E3F4A5B"
#define LOWER "3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b"

static void test_a_note_is_read_back_as_written(void **state)
{
        char *dir = test_mkdtemp(), *text;
        char *pools[] = { "hostwarden-0123456789abcdef-0", "hostwarden-0123456789abcdef-1", NULL };
        char *disks[] = { "/var/lib/nova/instances/" LOWER "/disk", "/srv/a b/disk.eph0", NULL };
        Leftovers l = { .destination = "node2", .pools = pools, .disks = disks }, back = {};
        char **uuids = NULL;

        assert_int_equal(leftovers_load(dir, UUID, &back), 0); /* none yet */
        assert_int_equal(leftovers_save(dir, UUID, &l), 0);
        /* one file per instance, by its UUID in lower case, a line per item */
        text = test_read_file(dir, "outgoing/" LOWER);
        assert_true(test_contains(text, "destination=node2\npool=hostwarden-0123456789abcdef-0\n"
                                        "pool=hostwarden-0123456789abcdef-1\n"));
        assert_true(test_contains(text, "disk=/srv/a b/disk.eph0\n"));
        free(text);

        assert_int_equal(leftovers_load(dir, LOWER, &back), 1);
        assert_int_equal(back.pid, getpid());
        assert_string_equal(back.destination, "node2");
        assert_int_equal(strv_length(back.pools), 2);
        assert_string_equal(back.pools[1], pools[1]);
        assert_int_equal(strv_length(back.disks), 2);
        assert_string_equal(back.disks[0], disks[0]);
        assert_string_equal(back.disks[1], disks[1]);
        leftovers_done(&back);

        assert_int_equal(leftovers_list(dir, &uuids), 0);
        assert_int_equal(strv_length(uuids), 1);
        assert_string_equal(uuids[0], LOWER);
        strv_free(uuids);

        assert_int_equal(leftovers_forget(dir, UUID), 0);
        assert_int_equal(leftovers_load(dir, UUID, &back), 0);
        assert_int_equal(leftovers_forget(dir, UUID), 0); /* gone already: fine */
        test_rm_rf(dir);
        free(dir);
}

static void test_nothing_made_leaves_no_note(void **state)
{
        char *dir = test_mkdtemp();
        char *pools[] = { "hostwarden-x-0", NULL };
        Leftovers l = { .destination = "node2", .pools = pools }, none = { .destination = "node2" };
        Leftovers back = {};
        char **uuids = NULL;

        assert_int_equal(leftovers_list(dir, &uuids), 0); /* no directory yet */
        assert_null(uuids);
        assert_int_equal(leftovers_save(dir, UUID, &l), 0);
        assert_int_equal(leftovers_save(dir, UUID, &none), 0); /* removes it */
        assert_int_equal(leftovers_load(dir, UUID, &back), 0);
        /* never a path from something that is not a UUID */
        assert_int_equal(leftovers_save(dir, "../../etc/passwd", &l), -EINVAL);
        assert_int_equal(leftovers_load(dir, "node2", &back), -EINVAL);
        test_rm_rf(dir);
        free(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_note_is_read_back_as_written),
                cmocka_unit_test(test_nothing_made_leaves_no_note),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
