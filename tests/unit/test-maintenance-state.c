/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/maintenance-state.c: the states' names and the next state from one look at the node. */
#include "maintenance-state.h"
#include "test-helpers.h"

static MaintenanceState next(MaintenanceState current, size_t running, size_t moving,
                             bool deadline_passed)
{
        const MaintenanceStateFacts f = {
                .current = current,
                .n_running = running,
                .n_moving = moving,
                .deadline_passed = deadline_passed,
        };

        return maintenance_state_next(&f);
}

static void test_names_round_trip(void **state)
{
        for (MaintenanceState s = 0; s < _MAINTENANCE_STATE_MAX; s++)
                assert_int_equal(maintenance_state_from_string(maintenance_state_to_string(s)), s);
        assert_string_equal(maintenance_state_to_string(MAINTENANCE_READY), "ready");
        assert_int_equal(maintenance_state_from_string("Ready"), _MAINTENANCE_STATE_INVALID);
        assert_int_equal(maintenance_state_from_string(NULL), _MAINTENANCE_STATE_INVALID);
        assert_null(maintenance_state_to_string(_MAINTENANCE_STATE_MAX));
}

/* only Enter leaves off: a look at the node never starts a maintenance */
static void test_off_stays_off(void **state)
{
        assert_int_equal(next(MAINTENANCE_OFF, 3, 1, false), MAINTENANCE_OFF);
        assert_int_equal(next(MAINTENANCE_OFF, 0, 0, true), MAINTENANCE_OFF);
}

static void test_nothing_running_is_ready_whatever_else(void **state)
{
        for (MaintenanceState s = MAINTENANCE_DRAINING; s < _MAINTENANCE_STATE_MAX; s++) {
                assert_int_equal(next(s, 0, 0, false), MAINTENANCE_READY);
                assert_int_equal(next(s, 0, 0, true), MAINTENANCE_READY);
        }
}

static void test_moving_guests_are_draining(void **state)
{
        assert_int_equal(next(MAINTENANCE_DRAINING, 2, 1, false), MAINTENANCE_DRAINING);
        /* a guest returned to running here (blocked) is drained again by the next look */
        assert_int_equal(next(MAINTENANCE_BLOCKED, 2, 2, false), MAINTENANCE_DRAINING);
        /* a guest started here while ready is drained too */
        assert_int_equal(next(MAINTENANCE_READY, 1, 1, false), MAINTENANCE_DRAINING);
}

static void test_guests_that_cannot_leave_block(void **state)
{
        assert_int_equal(next(MAINTENANCE_DRAINING, 1, 0, false), MAINTENANCE_BLOCKED);
        assert_int_equal(next(MAINTENANCE_READY, 1, 0, false), MAINTENANCE_BLOCKED);
}

/* the deadline blocks even with migrations under way; they go on, and ready follows */
static void test_passed_deadline_blocks_until_nothing_runs(void **state)
{
        assert_int_equal(next(MAINTENANCE_DRAINING, 2, 2, true), MAINTENANCE_BLOCKED);
        assert_int_equal(next(MAINTENANCE_BLOCKED, 1, 1, true), MAINTENANCE_BLOCKED);
        assert_int_equal(next(MAINTENANCE_BLOCKED, 0, 0, true), MAINTENANCE_READY);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names_round_trip),
                cmocka_unit_test(test_off_stays_off),
                cmocka_unit_test(test_nothing_running_is_ready_whatever_else),
                cmocka_unit_test(test_moving_guests_are_draining),
                cmocka_unit_test(test_guests_that_cannot_leave_block),
                cmocka_unit_test(test_passed_deadline_blocks_until_nothing_runs),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
