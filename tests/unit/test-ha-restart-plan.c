/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What hostwardend does about a crashed guest (lib/ha-restart-plan.c): restart, relocate, give
 * up; the window and the back-off. */
#include <string.h>

#include "ha-restart-plan.h"
#include "test-helpers.h"

#define S   USEC_PER_SEC
#define T0  (1000000 * S) /* any monotonic time */
#define WIN HA_RESTART_WINDOW

static void test_ignored_unless_enabled_and_restart(void **state)
{
        HaCrashTimes t = {};

        assert_int_equal(ha_crash_plan(false, HA_RESTART, &t, T0, 3, 1), HA_CRASH_IGNORE);
        assert_int_equal(ha_crash_plan(true, HA_OFF, &t, T0, 3, 1), HA_CRASH_IGNORE);
        assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, T0, 3, 1), HA_CRASH_RESTART);
}

static void test_restart_then_relocate_then_give_up(void **state)
{
        HaCrashTimes t = {};
        uint64_t now = T0;

        for (int i = 0; i < 3; i++) {
                assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, now, 3, 1), HA_CRASH_RESTART);
                ha_times_note(t.restarts, &t.n_restarts, now, WIN);
                now += 10 * S;
        }
        assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, now, 3, 1), HA_CRASH_RELOCATE);
        ha_times_note(t.relocations, &t.n_relocations, now, WIN);
        assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, now + S, 3, 1), HA_CRASH_GIVE_UP);
        /* max_relocate = 0: straight from restarts to giving up */
        assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, now, 3, 0), HA_CRASH_GIVE_UP);
        /* max_restart = 0: never restarted here */
        memset(&t, 0, sizeof(t));
        assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, now, 0, 1), HA_CRASH_RELOCATE);
        assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, now, 0, 0), HA_CRASH_GIVE_UP);
}

static void test_the_window_forgets(void **state)
{
        HaCrashTimes t = {};

        ha_times_note(t.restarts, &t.n_restarts, T0, WIN);
        ha_times_note(t.restarts, &t.n_restarts, T0 + 10 * S, WIN);
        assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, T0 + 20 * S, 2, 0), HA_CRASH_GIVE_UP);
        /* an hour after the first, one is left in the window */
        assert_int_equal(ha_times_in_window(t.restarts, t.n_restarts, T0 + WIN, WIN), 1);
        assert_int_equal(ha_crash_plan(true, HA_RESTART, &t, T0 + WIN, 2, 0), HA_CRASH_RESTART);
        /* noting drops what left the window */
        ha_times_note(t.restarts, &t.n_restarts, T0 + WIN + 11 * S, WIN);
        assert_int_equal(t.n_restarts, 1);
        assert_int_equal(t.restarts[0], T0 + WIN + 11 * S);
}

static void test_times_kept_are_capped(void **state)
{
        HaCrashTimes t = {};

        for (uint64_t i = 0; i < HA_RESTART_TIMES_MAX + 5; i++)
                ha_times_note(t.restarts, &t.n_restarts, T0 + i * S, WIN);
        assert_int_equal(t.n_restarts, HA_RESTART_TIMES_MAX);
        assert_int_equal(t.restarts[HA_RESTART_TIMES_MAX - 1], T0 + (HA_RESTART_TIMES_MAX + 4) * S);
        assert_int_equal(t.restarts[0], T0 + 5 * S);
}

static void test_backoff_doubles_up_to_its_cap(void **state)
{
        HaCrashTimes t = {};

        assert_int_equal(ha_restart_backoff(&t, T0), 2 * S);
        ha_times_note(t.restarts, &t.n_restarts, T0, WIN);
        assert_int_equal(ha_restart_backoff(&t, T0 + S), 4 * S);
        ha_times_note(t.restarts, &t.n_restarts, T0 + S, WIN);
        assert_int_equal(ha_restart_backoff(&t, T0 + 2 * S), 8 * S);
        for (int i = 0; i < 10; i++)
                ha_times_note(t.restarts, &t.n_restarts, T0 + 2 * S, WIN);
        assert_int_equal(ha_restart_backoff(&t, T0 + 3 * S), HA_RESTART_BACKOFF_MAX);
        /* after the window, back to the first */
        assert_int_equal(ha_restart_backoff(&t, T0 + 3 * S + WIN), 2 * S);
}

static void test_action_names(void **state)
{
        assert_string_equal(ha_crash_action_to_string(HA_CRASH_RESTART), "restart");
        assert_string_equal(ha_crash_action_to_string(HA_CRASH_GIVE_UP), "give-up");
        assert_null(ha_crash_action_to_string(_HA_CRASH_ACTION_MAX));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ignored_unless_enabled_and_restart),
                cmocka_unit_test(test_restart_then_relocate_then_give_up),
                cmocka_unit_test(test_the_window_forgets),
                cmocka_unit_test(test_times_kept_are_capped),
                cmocka_unit_test(test_backoff_doubles_up_to_its_cap),
                cmocka_unit_test(test_action_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
