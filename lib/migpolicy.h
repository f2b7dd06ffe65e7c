/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "migschedule.h"
#include "util.h"

/*
 * What the migration monitor decides from each sample of libvirt's job statistics
 * (DESIGN.md §7, after Nova's libvirt driver, with two lessons from oVirt VDSM):
 *
 *  - max downtime is raised in downtime_steps steps, step i (0..steps) at delay × i with
 *    downtime base + offset × i, base = downtime / steps, offset = (downtime − base) / steps,
 *    where delay = downtime_delay × data GiB (Nova's live_migration_downtime_*);
 *  - stall detection: when the remaining memory has not reached a new low for
 *    stall_iterations memory iterations, the next step is taken at once;
 *  - completion timeout: after completion_timeout × data GiB, timeout_action;
 *  - monotonic progress: 100 − remaining/total, never lower than before, at most 99 until the
 *    migration completes.
 *
 * Data GiB is memory (+ the copied disks for block migration), each at least 2 GiB, as Nova.
 * Pure: the caller passes time (since the migration started) and statistics.
 *
 * A migration policy other than "nova" (migschedule.h) takes the place of the downtime
 * steps: its steps are taken in order, each when its trigger holds, one per sample. Stall
 * detection counts for its "stalled N" triggers; the completion timeout stays, the last
 * resort of every policy.
 */
typedef struct MigPolicy {
        uint64_t downtime_ms;
        unsigned steps;
        usec_t step_delay; /* between steps: downtime_delay × data GiB */
        unsigned stall_iterations;
        usec_t timeout; /* 0: none */

        unsigned next_step; /* the next step to take (0 at start) */
        uint64_t current_downtime_ms;
        uint64_t lowest_remaining;
        uint64_t last_iteration;
        unsigned stalled; /* memory iterations without a new low */
        bool timed_out;
        unsigned percent;

        const MigSchedule *schedule; /* NULL: the steps above */
        size_t next_scheduled;       /* the schedule's next step */
} MigPolicy;

/* memory_mib: the domain's memory; disk_mib: what block migration copies (0 for none). */
void mig_policy_init(MigPolicy *p, uint64_t downtime_ms, unsigned steps, usec_t delay_per_gib,
                     unsigned stall_iterations, usec_t completion_timeout_per_gib,
                     uint64_t memory_mib, uint64_t disk_mib);

/* Follow schedule s (kept by the caller) instead of the downtime steps; NULL or "nova":
 * the downtime steps. Auto-converge is the caller's, a flag the migration starts with. */
void mig_policy_set_schedule(MigPolicy *p, const MigSchedule *s);

/* The data GiB as Nova counts them, in MiB (memory and each disk at least 2 GiB). */
uint64_t mig_policy_data_mib(uint64_t memory_mib, uint64_t disk_mib);

/* Downtime of step i (0..steps). */
uint64_t mig_policy_step_downtime(const MigPolicy *p, unsigned i);

typedef struct MigSample {
        usec_t elapsed;     /* since the migration started */
        uint64_t total;     /* memory (+ disk) bytes in all */
        uint64_t remaining; /* memory (+ disk) bytes still to copy */
        uint64_t memory_remaining;
        uint64_t iteration; /* memory iteration (libvirt's memory_iteration), 0 if unknown */
} MigSample;

typedef struct MigDecision {
        bool set_downtime; /* apply downtime_ms now */
        uint64_t downtime_ms;
        bool stalled;        /* the step was taken early because of a stall */
        bool timeout;        /* apply timeout_action now (reported once) */
        const MigStep *step; /* a schedule's step to take now (downtime: set_downtime too) */
} MigDecision;

void mig_policy_sample(MigPolicy *p, const MigSample *s, MigDecision *ret);

/* The percentage an operator sees; completed makes it 100. */
unsigned mig_policy_percent(MigPolicy *p, const MigSample *s, bool completed);
