/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "migpolicy.h"

#define MIN_DATA_MIB 2048ULL

uint64_t mig_policy_data_mib(uint64_t memory_mib, uint64_t disk_mib)
{
        uint64_t data = memory_mib < MIN_DATA_MIB ? MIN_DATA_MIB : memory_mib;

        if (disk_mib > 0)
                data += disk_mib < MIN_DATA_MIB ? MIN_DATA_MIB : disk_mib;
        return data;
}

void mig_policy_init(MigPolicy *p, uint64_t downtime_ms, unsigned steps, usec_t delay_per_gib,
                     unsigned stall_iterations, usec_t completion_timeout_per_gib,
                     uint64_t memory_mib, uint64_t disk_mib)
{
        uint64_t data = mig_policy_data_mib(memory_mib, disk_mib);

        *p = (MigPolicy){
                .downtime_ms = downtime_ms,
                .steps = steps ? steps : 1,
                .step_delay = delay_per_gib * data / 1024,
                .stall_iterations = stall_iterations,
                .timeout = completion_timeout_per_gib * data / 1024,
                .lowest_remaining = UINT64_MAX,
        };
}

void mig_policy_set_schedule(MigPolicy *p, const MigSchedule *s)
{
        p->schedule = s && !s->nova ? s : NULL;
        p->next_scheduled = 0;
}

/* The schedule's next step, when its trigger holds. A start step holds at the first sample
 * (auto-converge is a flag the migration started with: nothing to do). */
static void schedule_sample(MigPolicy *p, const MigSample *s, MigDecision *ret)
{
        const MigStep *step;

        while (p->next_scheduled < p->schedule->n_steps &&
               p->schedule->steps[p->next_scheduled].action == MIG_ACTION_AUTO_CONVERGE)
                p->next_scheduled++;
        if (p->next_scheduled >= p->schedule->n_steps)
                return;
        step = &p->schedule->steps[p->next_scheduled];
        if (step->trigger == MIG_TRIGGER_STALLED && p->stalled < step->when)
                return;
        if (step->trigger == MIG_TRIGGER_AFTER && s->elapsed < step->when)
                return;
        ret->step = step;
        ret->stalled = step->trigger == MIG_TRIGGER_STALLED;
        if (step->action == MIG_ACTION_DOWNTIME) {
                ret->set_downtime = true;
                ret->downtime_ms = step->downtime_ms;
                p->current_downtime_ms = step->downtime_ms;
        }
        p->next_scheduled++;
        p->stalled = 0;
}

uint64_t mig_policy_step_downtime(const MigPolicy *p, unsigned i)
{
        uint64_t base = p->downtime_ms / p->steps;
        uint64_t offset = (p->downtime_ms - base) / p->steps;

        if (i >= p->steps)
                return p->downtime_ms;
        return base + offset * i;
}

void mig_policy_sample(MigPolicy *p, const MigSample *s, MigDecision *ret)
{
        *ret = (MigDecision){};

        /* stall detection: the remaining memory at the start of each memory iteration (the
         * first sample that shows it), against the lowest such value so far (as VDSM) */
        if (s->iteration > 0 && s->iteration != p->last_iteration) {
                if (s->memory_remaining < p->lowest_remaining) {
                        p->lowest_remaining = s->memory_remaining;
                        p->stalled = 0;
                } else
                        p->stalled++;
                p->last_iteration = s->iteration;
        }

        if (p->schedule)
                schedule_sample(p, s, ret);
        else if (p->next_step <= p->steps) {
                bool due = s->elapsed >= p->step_delay * p->next_step;
                bool stall = !due && p->next_step > 0 && p->stall_iterations > 0 &&
                             p->stalled >= p->stall_iterations;

                if (due || stall) {
                        ret->set_downtime = true;
                        ret->stalled = stall;
                        ret->downtime_ms = mig_policy_step_downtime(p, p->next_step);
                        p->current_downtime_ms = ret->downtime_ms;
                        p->next_step++;
                        if (stall)
                                p->stalled = 0;
                }
        }

        if (!p->timed_out && p->timeout > 0 && s->elapsed >= p->timeout) {
                p->timed_out = true;
                ret->timeout = true;
        }
}

unsigned mig_policy_percent(MigPolicy *p, const MigSample *s, bool completed)
{
        unsigned pct;

        if (completed) {
                p->percent = 100;
                return 100;
        }
        if (s->total == 0)
                return p->percent;
        pct = s->remaining >= s->total ? 0 : (unsigned)(100 - s->remaining * 100 / s->total);
        if (pct > 99)
                pct = 99;
        if (pct > p->percent)
                p->percent = pct;
        return p->percent;
}
