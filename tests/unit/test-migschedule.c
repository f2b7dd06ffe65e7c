/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Migration policies (lib/migschedule.c): their steps as written, the built-ins, and the
 * monitor following one (lib/migpolicy.c). */
#include <string.h>

#include "migpolicy.h"
#include "test-helpers.h"

#define MIB (1024ULL * 1024)
#define S   USEC_PER_SEC

static void expect_bad_step(const char *text, const char *needle)
{
        const char *why = NULL;
        MigStep step;

        assert_int_equal(mig_step_parse(text, &step, &why), -EINVAL);
        assert_non_null(why);
        if (!test_contains(why, needle))
                fail_msg("'%s': '%s' does not say '%s'", text, why, needle);
}

static void test_steps_parse_and_format_back(void **state)
{
        static const char *const texts[] = {
                "start: auto-converge",  "start: downtime 100", "stalled 3: downtime 300",
                "after 2min: post-copy", "stalled 1: pause",    "after 1h 30s: abort",
        };
        char buf[MIG_STEP_FORMAT_MAX];
        const char *why = NULL;
        MigStep step;

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                assert_int_equal(mig_step_parse(texts[i], &step, &why), 0);
                mig_step_format(&step, buf);
                assert_string_equal(buf, texts[i]);
        }
        /* white space around the parts is layout */
        assert_int_equal(mig_step_parse("  stalled   2 :downtime  150 ", &step, &why), 0);
        assert_int_equal(step.trigger, MIG_TRIGGER_STALLED);
        assert_int_equal(step.when, 2);
        assert_int_equal(step.action, MIG_ACTION_DOWNTIME);
        assert_int_equal(step.downtime_ms, 150);
        assert_int_equal(mig_step_parse("after 90s: abort", &step, &why), 0);
        assert_int_equal(step.when, 90 * S);
}

static void test_bad_steps_say_what_was_expected(void **state)
{
        expect_bad_step("downtime 300", "'TRIGGER: ACTION'");
        expect_bad_step("stalled: downtime 300", "'stalled N'");
        expect_bad_step("stalled 0: downtime 300", "from 1 to 1000");
        expect_bad_step("after 90: abort", "duration like 90s");
        expect_bad_step("soon: abort", "a trigger 'start'");
        expect_bad_step("stalled 2: downtime", "an action 'downtime MS'");
        expect_bad_step("stalled 2: downtime 0", "'downtime MS' with MS from 1");
        expect_bad_step("stalled 2: explode", "an action");
        expect_bad_step("stalled 2: auto-converge", "only when the migration starts");
        expect_bad_step("start: post-copy", "at 'start' only");
        expect_bad_step("start: abort", "at 'start' only");
}

static void test_policy_names(void **state)
{
        assert_true(mig_policy_name_is_valid("nova"));
        assert_true(mig_policy_name_is_valid("db_servers-2"));
        assert_false(mig_policy_name_is_valid(""));
        assert_false(mig_policy_name_is_valid("-x"));
        assert_false(mig_policy_name_is_valid("Big"));
        assert_false(mig_policy_name_is_valid("a b"));
        assert_false(mig_policy_name_is_valid(
                "a234567890123456789012345678901234567890123456789012345678901234"));
}

/* Every built-in's steps are steps the configuration could write, in an order that runs. */
static void test_builtins_are_well_formed(void **state)
{
        static const char *const names[] = { "nova", "minimal-downtime", "post-copy-when-stalled",
                                             "suspend-if-needed" };
        char buf[MIG_STEP_FORMAT_MAX];
        const char *why = NULL;
        MigStep again;

        assert_int_equal(mig_schedule_n_builtins, ELEMENTSOF(names));
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const MigSchedule *s = mig_schedule_builtin(names[i]);

                assert_non_null(s);
                assert_int_equal(s->nova, i == 0);
                assert_int_equal(s->n_steps == 0, i == 0);
                for (size_t k = 0; k < s->n_steps; k++) {
                        mig_step_format(&s->steps[k], buf);
                        assert_int_equal(mig_step_parse(buf, &again, &why), 0);
                        assert_memory_equal(&again, &s->steps[k], sizeof(again));
                }
        }
        assert_null(mig_schedule_builtin("fastest"));
        assert_true(mig_schedule_uses(mig_schedule_builtin("post-copy-when-stalled"),
                                      MIG_ACTION_POST_COPY));
        assert_true(mig_schedule_uses(mig_schedule_builtin("minimal-downtime"),
                                      MIG_ACTION_AUTO_CONVERGE));
        assert_false(
                mig_schedule_uses(mig_schedule_builtin("suspend-if-needed"), MIG_ACTION_POST_COPY));
}

/* One memory iteration per sample, the remaining memory never lower: a copy that stalls. */
static void stalling_sample(MigSample *s, usec_t t)
{
        s->elapsed = t;
        s->iteration++;
}

static MigSchedule schedule_of(const char *const *steps, size_t n)
{
        MigSchedule s = { .name = "test" };
        const char *why = NULL;

        for (size_t i = 0; i < n; i++)
                assert_int_equal(mig_step_parse(steps[i], &s.steps[s.n_steps++], &why), 0);
        return s;
}

static void test_a_policy_takes_its_steps_in_order_on_their_triggers(void **state)
{
        static const char *const steps[] = {
                "start: auto-converge", "start: downtime 100", "stalled 2: downtime 300",
                "stalled 2: post-copy", "after 60s: abort",
        };
        MigSchedule sched = schedule_of(steps, ELEMENTSOF(steps));
        MigSample s = { .total = 100 * MIB, .remaining = 50 * MIB, .memory_remaining = 50 * MIB };
        MigDecision d;
        MigPolicy p;

        /* the Nova steps (10 of them, every 2 s) must not be taken: the policy replaces them */
        mig_policy_init(&p, 500, 10, 1 * S, 3, 0, 64, 0);
        mig_policy_set_schedule(&p, &sched);

        /* first sample: the start downtime (auto-converge is the migration's flag) */
        stalling_sample(&s, S / 2);
        mig_policy_sample(&p, &s, &d);
        assert_ptr_equal(d.step, &sched.steps[1]);
        assert_true(d.set_downtime);
        assert_int_equal(d.downtime_ms, 100);
        assert_int_equal(p.current_downtime_ms, 100);

        /* the iteration of the first sample set the low; two more without a new low */
        stalling_sample(&s, S);
        mig_policy_sample(&p, &s, &d);
        assert_null(d.step);
        assert_false(d.set_downtime);
        stalling_sample(&s, 3 * S / 2);
        mig_policy_sample(&p, &s, &d);
        assert_ptr_equal(d.step, &sched.steps[2]);
        assert_int_equal(d.downtime_ms, 300);

        /* the count starts again after a step; a new low resets it too */
        stalling_sample(&s, 2 * S);
        mig_policy_sample(&p, &s, &d);
        assert_null(d.step);
        s.memory_remaining = 40 * MIB;
        stalling_sample(&s, 5 * S / 2);
        mig_policy_sample(&p, &s, &d);
        assert_null(d.step);
        stalling_sample(&s, 3 * S);
        mig_policy_sample(&p, &s, &d);
        assert_null(d.step);
        stalling_sample(&s, 7 * S / 2);
        mig_policy_sample(&p, &s, &d);
        assert_ptr_equal(d.step, &sched.steps[3]);
        assert_int_equal(d.step->action, MIG_ACTION_POST_COPY);
        assert_false(d.set_downtime);

        /* the time trigger: not before 60 s, once */
        for (usec_t t = 4 * S; t < 60 * S; t += S / 2) {
                s.elapsed = t;
                mig_policy_sample(&p, &s, &d);
                assert_null(d.step);
                assert_false(d.set_downtime);
        }
        s.elapsed = 60 * S;
        mig_policy_sample(&p, &s, &d);
        assert_ptr_equal(d.step, &sched.steps[4]);
        assert_int_equal(d.step->action, MIG_ACTION_ABORT);
        s.elapsed = 61 * S;
        mig_policy_sample(&p, &s, &d);
        assert_null(d.step);
}

static void test_nova_policy_keeps_the_downtime_steps(void **state)
{
        MigSample s = { .total = 100 * MIB, .remaining = 50 * MIB, .memory_remaining = 50 * MIB };
        MigDecision d;
        MigPolicy p;

        mig_policy_init(&p, 500, 10, 1 * S, 3, 0, 64, 0);
        mig_policy_set_schedule(&p, mig_schedule_builtin("nova"));
        s.elapsed = 0;
        mig_policy_sample(&p, &s, &d);
        assert_true(d.set_downtime);
        assert_null(d.step);
        assert_int_equal(d.downtime_ms, 50);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_steps_parse_and_format_back),
                cmocka_unit_test(test_bad_steps_say_what_was_expected),
                cmocka_unit_test(test_policy_names),
                cmocka_unit_test(test_builtins_are_well_formed),
                cmocka_unit_test(test_a_policy_takes_its_steps_in_order_on_their_triggers),
                cmocka_unit_test(test_nova_policy_keeps_the_downtime_steps),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
