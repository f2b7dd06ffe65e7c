/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration monitor's decisions (lib/migpolicy.c): downtime steps, stall detection,
 * completion timeout, monotonic progress. */
#include "migpolicy.h"
#include "test-helpers.h"

#define MIB (1024ULL * 1024)
#define S   USEC_PER_SEC

static void test_data_gib_as_nova(void **state)
{
        assert_int_equal(mig_policy_data_mib(64, 0), 2048); /* at least 2 GiB */
        assert_int_equal(mig_policy_data_mib(4096, 0), 4096);
        assert_int_equal(mig_policy_data_mib(64, 100), 4096); /* + a disk, at least 2 GiB */
        assert_int_equal(mig_policy_data_mib(8192, 10240), 18432);
}

static void test_downtime_steps_as_nova(void **state)
{
        MigPolicy p;

        /* Nova's defaults: 500 ms, 10 steps, 75 s per GiB; an 8 GiB guest */
        mig_policy_init(&p, 500, 10, 75 * S, 3, 800 * S, 8192, 0);
        assert_int_equal(p.step_delay, 600 * S);
        assert_int_equal(p.timeout, 6400 * S);
        assert_int_equal(mig_policy_step_downtime(&p, 0), 50);
        assert_int_equal(mig_policy_step_downtime(&p, 1), 95);
        assert_int_equal(mig_policy_step_downtime(&p, 5), 275);
        assert_int_equal(mig_policy_step_downtime(&p, 10), 500);
}

static void test_steps_are_taken_on_time_once_each(void **state)
{
        MigSample s = { .total = 100 * MIB, .remaining = 50 * MIB, .memory_remaining = 50 * MIB };
        uint64_t seen[12];
        unsigned n = 0;
        MigDecision d;
        MigPolicy p;

        mig_policy_init(&p, 500, 10, 1 * S, 0, 0, 64, 0); /* a step every 2 s */
        for (usec_t t = 0; t <= 30 * S; t += S / 2) {
                s.elapsed = t;
                mig_policy_sample(&p, &s, &d);
                assert_false(d.timeout); /* no completion timeout configured */
                if (d.set_downtime) {
                        assert_true(n < ELEMENTSOF(seen));
                        /* step n is due at 2 s × n, not before, and at most half a second late */
                        assert_true(t >= 2 * S * n && t < 2 * S * n + S / 2);
                        seen[n++] = d.downtime_ms;
                }
        }
        assert_int_equal(n, 11); /* steps 0..10 */
        assert_int_equal(seen[0], 50);
        assert_int_equal(seen[10], 500);
        for (unsigned i = 1; i < n; i++)
                assert_true(seen[i] > seen[i - 1]);
        assert_int_equal(p.current_downtime_ms, 500);
}

static void test_a_stall_takes_the_next_step_at_once(void **state)
{
        MigSample s = { .total = 64 * MIB };
        MigDecision d;
        MigPolicy p;
        unsigned early = 0;

        mig_policy_init(&p, 500, 10, 75 * S, 3, 0, 64, 0); /* steps 150 s apart */
        s.elapsed = 0;
        s.remaining = s.memory_remaining = 60 * MIB;
        s.iteration = 1;
        mig_policy_sample(&p, &s, &d);
        assert_true(d.set_downtime && d.downtime_ms == 50 && !d.stalled); /* step 0 at start */

        /* iterations 2..3 reach new lows: no stall */
        for (uint64_t it = 2; it <= 3; it++) {
                s.elapsed += S;
                s.iteration = it;
                s.remaining = s.memory_remaining = (60 - it * 10) * MIB;
                mig_policy_sample(&p, &s, &d);
                assert_false(d.set_downtime);
        }
        /* then the guest dirties memory as fast as it is sent: iterations 4 and 5 without a
         * new low; lows inside an iteration (same iteration number) do not count */
        for (uint64_t it = 4; it <= 5; it++) {
                s.elapsed += S;
                s.iteration = it;
                s.remaining = s.memory_remaining = 45 * MIB;
                mig_policy_sample(&p, &s, &d);
                early += d.set_downtime;
                s.elapsed += S / 2;
                s.remaining = s.memory_remaining = 1 * MIB;
                mig_policy_sample(&p, &s, &d);
                early += d.set_downtime;
        }
        assert_int_equal(early, 0);
        s.elapsed += S;
        s.iteration = 6;
        s.remaining = s.memory_remaining = 45 * MIB;
        mig_policy_sample(&p, &s, &d);
        /* the third iteration without a new low: step 1 now, long before 150 s */
        assert_true(d.set_downtime);
        assert_true(d.stalled);
        assert_int_equal(d.downtime_ms, 95);
        /* and the count starts again */
        s.elapsed += S;
        s.iteration = 7;
        mig_policy_sample(&p, &s, &d);
        assert_false(d.set_downtime);
}

static void test_completion_timeout_fires_once(void **state)
{
        MigSample s = { .total = 64 * MIB, .remaining = 10 * MIB };
        unsigned fired = 0;
        MigDecision d;
        MigPolicy p;

        mig_policy_init(&p, 500, 10, 1 * S, 3, 5 * S, 64, 0); /* 5 s/GiB × 2 GiB = 10 s */
        for (usec_t t = 0; t <= 20 * S; t += S / 2) {
                s.elapsed = t;
                mig_policy_sample(&p, &s, &d);
                if (d.timeout) {
                        assert_int_equal(t, 10 * S);
                        fired++;
                }
        }
        assert_int_equal(fired, 1);
}

static void test_progress_never_goes_backwards(void **state)
{
        MigSample s = { .total = 100 };
        MigPolicy p;

        mig_policy_init(&p, 500, 10, 1 * S, 3, 0, 64, 0);
        s.remaining = 100;
        assert_int_equal(mig_policy_percent(&p, &s, false), 0);
        s.remaining = 40;
        assert_int_equal(mig_policy_percent(&p, &s, false), 60);
        s.remaining = 70; /* a new iteration: more to copy again */
        assert_int_equal(mig_policy_percent(&p, &s, false), 60);
        s.remaining = 0; /* everything sent, not completed yet */
        assert_int_equal(mig_policy_percent(&p, &s, false), 99);
        s.total = 0; /* no statistics */
        assert_int_equal(mig_policy_percent(&p, &s, false), 99);
        assert_int_equal(mig_policy_percent(&p, &s, true), 100);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_data_gib_as_nova),
                cmocka_unit_test(test_downtime_steps_as_nova),
                cmocka_unit_test(test_steps_are_taken_on_time_once_each),
                cmocka_unit_test(test_a_stall_takes_the_next_step_at_once),
                cmocka_unit_test(test_completion_timeout_fires_once),
                cmocka_unit_test(test_progress_never_goes_backwards),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
