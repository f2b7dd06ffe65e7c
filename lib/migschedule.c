/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Migration policies: their steps and the built-ins (migschedule.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migschedule.h"

static const char *const mig_trigger_table[_MIG_TRIGGER_MAX] = {
        [MIG_TRIGGER_START] = "start",
        [MIG_TRIGGER_STALLED] = "stalled",
        [MIG_TRIGGER_AFTER] = "after",
};

static const char *const mig_action_table[_MIG_ACTION_MAX] = {
        [MIG_ACTION_DOWNTIME] = "downtime",   [MIG_ACTION_AUTO_CONVERGE] = "auto-converge",
        [MIG_ACTION_POST_COPY] = "post-copy", [MIG_ACTION_PAUSE] = "pause",
        [MIG_ACTION_ABORT] = "abort",
};

DEFINE_STRING_TABLE_TO_STRING(mig_action, MigAction);

#define STALLED(n)     .trigger = MIG_TRIGGER_STALLED, .when = (n)
#define DOWNTIME(ms)   .action = MIG_ACTION_DOWNTIME, .downtime_ms = (ms)
#define AT_START       .trigger = MIG_TRIGGER_START
#define AFTER_SEC(sec) .trigger = MIG_TRIGGER_AFTER, .when = (sec)*USEC_PER_SEC

/*
 * The built-ins, after oVirt's (its "Minimal downtime", "Post-copy migration" and "Suspend
 * workload if needed") with one difference: a stall counts iterations since the last step,
 * not since the start, so each step gets the same chance to help.
 */
const MigSchedule mig_schedule_builtins[] = {
        { .name = MIG_POLICY_DEFAULT, .nova = true },
        /* the guest is slowed rather than stopped long: throttled from the start (QEMU raises
         * the throttle while the copy does not converge), the downtime raised in small steps,
         * and the migration given up rather than a long pause */
        { .name = "minimal-downtime",
          .steps = { { AT_START, .action = MIG_ACTION_AUTO_CONVERGE },
                     { AT_START, DOWNTIME(100) },
                     { STALLED(2), DOWNTIME(150) },
                     { STALLED(2), DOWNTIME(200) },
                     { STALLED(2), DOWNTIME(300) },
                     { STALLED(2), DOWNTIME(400) },
                     { STALLED(2), DOWNTIME(500) },
                     { STALLED(4), .action = MIG_ACTION_ABORT } },
          .n_steps = 8 },
        /* the downtime of Nova's last step at once, then post-copy as soon as the copy stalls:
         * the guest runs on the destination while the rest of its memory follows (a network
         * failure then loses the guest: libvirt cannot go back) */
        { .name = "post-copy-when-stalled",
          .steps = { { AT_START, DOWNTIME(500) }, { STALLED(3), .action = MIG_ACTION_POST_COPY } },
          .n_steps = 2 },
        /* converges whatever the guest does: downtime up to 5 s, then the guest is paused
         * until the copy completes (it runs again on the destination) */
        { .name = "suspend-if-needed",
          .steps = { { AT_START, DOWNTIME(100) },
                     { STALLED(2), DOWNTIME(300) },
                     { STALLED(2), DOWNTIME(1000) },
                     { STALLED(2), DOWNTIME(5000) },
                     { STALLED(3), .action = MIG_ACTION_PAUSE } },
          .n_steps = 5 },
};
const size_t mig_schedule_n_builtins = ELEMENTSOF(mig_schedule_builtins);

const MigSchedule *mig_schedule_builtin(const char *name)
{
        for (size_t i = 0; name && i < mig_schedule_n_builtins; i++)
                if (streq(mig_schedule_builtins[i].name, name))
                        return &mig_schedule_builtins[i];
        return NULL;
}

bool mig_policy_name_is_valid(const char *name)
{
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > MIG_POLICY_NAME_MAX || name[0] == '-' || name[0] == '_')
                return false;
        return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

bool mig_schedule_uses(const MigSchedule *s, MigAction a)
{
        for (size_t i = 0; i < s->n_steps; i++)
                if (s->steps[i].action == a)
                        return true;
        return false;
}

static int parse_trigger(char *t, MigStep *ret, const char **ret_error)
{
        const char *arg;
        uint64_t n;

        if (streq(t, "start")) {
                ret->trigger = MIG_TRIGGER_START;
                return 0;
        }
        if ((arg = startswith(t, "stalled")) && (*arg == ' ' || *arg == '\t')) {
                ret->trigger = MIG_TRIGGER_STALLED;
                if (parse_uint_range(arg + strspn(arg, " \t"), 1, MIG_STEP_MAX_STALLED, &n) < 0)
                        return *ret_error = "'stalled N' with N from 1 to 1000 memory iterations",
                               -EINVAL;
                ret->when = n;
                return 0;
        }
        if ((arg = startswith(t, "after")) && (*arg == ' ' || *arg == '\t')) {
                ret->trigger = MIG_TRIGGER_AFTER;
                if (parse_duration(arg + strspn(arg, " \t"), &ret->when) < 0 || ret->when == 0)
                        return *ret_error = "'after DURATION' with a duration like 90s or 2min",
                               -EINVAL;
                return 0;
        }
        return *ret_error = "a trigger 'start', 'stalled N' or 'after DURATION' before the ':'",
               -EINVAL;
}

static int parse_action(char *a, MigStep *ret, const char **ret_error)
{
        const char *arg;
        uint64_t ms;

        if ((arg = startswith(a, "downtime")) && (*arg == ' ' || *arg == '\t')) {
                ret->action = MIG_ACTION_DOWNTIME;
                if (parse_uint_range(arg + strspn(arg, " \t"), 1, MIG_STEP_MAX_DOWNTIME, &ms) < 0)
                        return *ret_error = "'downtime MS' with MS from 1 to 3600000 milliseconds",
                               -EINVAL;
                ret->downtime_ms = ms;
                return 0;
        }
        for (MigAction i = MIG_ACTION_AUTO_CONVERGE; i < _MIG_ACTION_MAX; i++)
                if (streq(a, mig_action_table[i])) {
                        ret->action = i;
                        return 0;
                }
        return *ret_error = "an action 'downtime MS', 'auto-converge', 'post-copy', 'pause' or "
                            "'abort' after the ':'",
               -EINVAL;
}

int mig_step_parse(const char *s, MigStep *ret, const char **ret_error)
{
        char buf[128], *colon, *trigger, *action;
        MigStep step = {};
        int r;

        if (!s || strlen(s) >= sizeof(buf))
                return *ret_error = "'TRIGGER: ACTION' of at most 127 characters", -EINVAL;
        strcpy(buf, s);
        colon = strchr(buf, ':');
        if (!colon)
                return *ret_error = "'TRIGGER: ACTION', e.g. 'stalled 3: downtime 300'", -EINVAL;
        *colon = 0;
        trigger = strstrip(buf);
        action = strstrip(colon + 1);
        r = parse_trigger(trigger, &step, ret_error);
        if (r >= 0)
                r = parse_action(action, &step, ret_error);
        if (r < 0)
                return r;
        if (step.action == MIG_ACTION_AUTO_CONVERGE && step.trigger != MIG_TRIGGER_START)
                return *ret_error = "'start: auto-converge': QEMU turns auto-converge on only "
                                    "when the migration starts",
                       -EINVAL;
        if (step.trigger == MIG_TRIGGER_START && step.action != MIG_ACTION_AUTO_CONVERGE &&
            step.action != MIG_ACTION_DOWNTIME)
                return *ret_error = "at 'start' only 'downtime MS' or 'auto-converge'", -EINVAL;
        *ret = step;
        return 0;
}

void mig_step_format(const MigStep *s, char buf[static MIG_STEP_FORMAT_MAX])
{
        char when[32] = "";
        char what[32];

        if (s->trigger == MIG_TRIGGER_STALLED)
                snprintf(when, sizeof(when), " %llu", (unsigned long long)s->when);
        else if (s->trigger == MIG_TRIGGER_AFTER) {
                when[0] = ' ';
                format_duration(when + 1, sizeof(when) - 1, s->when);
        }
        if (s->action == MIG_ACTION_DOWNTIME)
                snprintf(what, sizeof(what), "downtime %llu", (unsigned long long)s->downtime_ms);
        else
                snprintf(what, sizeof(what), "%s", mig_action_table[s->action]);
        snprintf(buf, MIG_STEP_FORMAT_MAX, "%s%s: %s", mig_trigger_table[s->trigger], when, what);
}
