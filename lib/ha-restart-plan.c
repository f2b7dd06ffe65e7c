/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What to do about a crashed guest (ha-restart-plan.h). */

#include <string.h>

#include "ha-restart-plan.h"
#include "util.h"

static const char *const ha_crash_action_table[_HA_CRASH_ACTION_MAX] = {
        [HA_CRASH_IGNORE] = "ignore",
        [HA_CRASH_RESTART] = "restart",
        [HA_CRASH_RELOCATE] = "relocate",
        [HA_CRASH_GIVE_UP] = "give-up",
};

const char *ha_crash_action_to_string(HaCrashAction a)
{
        return a >= 0 && a < _HA_CRASH_ACTION_MAX ? ha_crash_action_table[a] : NULL;
}

size_t ha_times_in_window(const uint64_t *times, size_t n, uint64_t now, uint64_t window)
{
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                /* a time after now (another clock's) counts: never fewer than there were */
                if (times[i] > now || now - times[i] < window)
                        k++;
        return k;
}

HaCrashAction ha_crash_plan(bool enabled, HaMode mode, const HaCrashTimes *t, uint64_t now,
                            unsigned max_restart, unsigned max_relocate)
{
        if (!enabled || mode != HA_RESTART)
                return HA_CRASH_IGNORE;
        if (ha_times_in_window(t->restarts, t->n_restarts, now, HA_RESTART_WINDOW) < max_restart)
                return HA_CRASH_RESTART;
        if (ha_times_in_window(t->relocations, t->n_relocations, now, HA_RESTART_WINDOW) <
            max_relocate)
                return HA_CRASH_RELOCATE;
        return HA_CRASH_GIVE_UP;
}

uint64_t ha_restart_backoff(const HaCrashTimes *t, uint64_t now)
{
        size_t k = ha_times_in_window(t->restarts, t->n_restarts, now, HA_RESTART_WINDOW);
        uint64_t d = HA_RESTART_BACKOFF;

        for (size_t i = 0; i < k && d < HA_RESTART_BACKOFF_MAX; i++)
                d *= 2;
        return MIN(d, (uint64_t)HA_RESTART_BACKOFF_MAX);
}

void ha_times_note(uint64_t *times, size_t *n, uint64_t now, uint64_t window)
{
        size_t k = 0;

        for (size_t i = 0; i < *n; i++)
                if (times[i] > now || now - times[i] < window)
                        times[k++] = times[i];
        if (k == HA_RESTART_TIMES_MAX) { /* the oldest goes */
                memmove(times, times + 1, (k - 1) * sizeof(times[0]));
                k--;
        }
        times[k++] = now;
        *n = k;
}
