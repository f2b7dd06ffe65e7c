/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/maintenance-return.c: which node sends a guest back after Exit(true), and the list of
 * the guests that left without one. */
#include <stdlib.h>

#include "maintenance-return.h"
#include "test-helpers.h"

#define A "3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b"
#define B "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

static ReturnAction decide(const char *owner, bool has_record, bool deleted, bool busy)
{
        const ReturnFacts f = {
                .self = "node2",
                .returning = "node1",
                .has_record = has_record,
                .deleted = deleted,
                .owner = owner,
                .busy = busy,
        };

        return maintenance_return_decide(&f);
}

static void test_the_owner_sends_it_back(void **state)
{
        assert_int_equal(decide("node2", true, false, false), RETURN_SEND_BACK);
        /* being migrated (by an operator, or back already): the next heartbeat looks again */
        assert_int_equal(decide("node2", true, false, true), RETURN_WAIT);
}

static void test_other_nodes_leave_it(void **state)
{
        assert_int_equal(decide("node3", true, false, false), RETURN_LEAVE);
        /* back home already (moved by hand): nobody migrates it */
        const ReturnFacts home = {
                .self = "node1", .returning = "node1", .has_record = true, .owner = "node1"
        };
        assert_int_equal(maintenance_return_decide(&home), RETURN_LEAVE);
}

static void test_gone_guests_are_dropped(void **state)
{
        assert_int_equal(decide(NULL, false, false, false), RETURN_DROP);
        assert_int_equal(decide("node2", true, true, false), RETURN_DROP);
}

static void test_entry_uuid(void **state)
{
        char u[64];

        assert_true(maintenance_left_entry_uuid(A "@node2", u, sizeof(u)));
        assert_string_equal(u, A);
        assert_false(maintenance_left_entry_uuid(A, u, sizeof(u)));
        assert_false(maintenance_left_entry_uuid("@node2", u, sizeof(u)));
        assert_false(maintenance_left_entry_uuid(A "@", u, sizeof(u)));
        assert_false(maintenance_left_entry_uuid(A "@node2", u, 8)); /* too long: not cut */
}

static void test_left_without(void **state)
{
        char *s = NULL;

        assert_int_equal(maintenance_left_without(A "@node2," B "@node3", A, &s), 0);
        assert_string_equal(s, B "@node3");
        free(s);
        assert_int_equal(maintenance_left_without(B "@node3", B, &s), 0);
        assert_null(s);
        assert_int_equal(maintenance_left_without(NULL, B, &s), 0);
        assert_null(s);
        /* a guest that left twice (returned by hand, drained again) goes with both entries */
        assert_int_equal(maintenance_left_without(A "@node2," B "@node2," A "@node3", A, &s), 0);
        assert_string_equal(s, B "@node2");
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_the_owner_sends_it_back),
                cmocka_unit_test(test_other_nodes_leave_it),
                cmocka_unit_test(test_gone_guests_are_dropped),
                cmocka_unit_test(test_entry_uuid),
                cmocka_unit_test(test_left_without),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
