/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "util.h"

/*
 * Migration policies (issue 23, after oVirt's convergence schedules and KubeVirt's
 * MigrationPolicy): a named list of steps, each an action taken when its trigger holds,
 * in order. Triggers:
 *
 *   start        when the migration starts;
 *   stalled N    the remaining memory has not reached a new low for N memory iterations
 *                (counted again from 0 after each step taken);
 *   after D      D (a duration: 90s, 2min) after the migration started.
 *
 * Actions: "downtime MS" (raise the max downtime), "auto-converge" (at start only: neither
 * QEMU nor libvirt can turn it on while the copy runs), "post-copy", "pause", "abort".
 *
 * The policy "nova" has no steps: it is hostwarden's Nova schedule (migpolicy.h) and the
 * default. The built-ins are below; the configuration adds [policy NAME] sections.
 */

typedef enum MigTrigger {
        MIG_TRIGGER_START,
        MIG_TRIGGER_STALLED,
        MIG_TRIGGER_AFTER,
        _MIG_TRIGGER_MAX,
} MigTrigger;

typedef enum MigAction {
        MIG_ACTION_DOWNTIME,
        MIG_ACTION_AUTO_CONVERGE,
        MIG_ACTION_POST_COPY,
        MIG_ACTION_PAUSE,
        MIG_ACTION_ABORT,
        _MIG_ACTION_MAX,
} MigAction;

typedef struct MigStep {
        MigTrigger trigger;
        uint64_t when; /* STALLED: iterations; AFTER: µs */
        MigAction action;
        uint64_t downtime_ms; /* DOWNTIME */
} MigStep;

#define MIG_POLICY_NAME_MAX    63
#define MIG_SCHEDULE_MAX_STEPS 16
#define MIG_POLICY_DEFAULT     "nova"
#define MIG_STEP_MAX_DOWNTIME  3600000 /* ms, as the Migrate option max-downtime-ms */
#define MIG_STEP_MAX_STALLED   1000
#define MIG_STEP_FORMAT_MAX    64

/* Fixed size, so that a copy (in a migration's options) needs no ownership. */
typedef struct MigSchedule {
        char name[MIG_POLICY_NAME_MAX + 1];
        bool nova; /* the Nova schedule of migpolicy.h: no steps */
        MigStep steps[MIG_SCHEDULE_MAX_STEPS];
        size_t n_steps;
} MigSchedule;

const char *mig_action_to_string(MigAction a);

/* A policy name: 1 to 63 of [a-z0-9_-], starting with a letter or digit. */
bool mig_policy_name_is_valid(const char *name);

/*
 * One step, as the configuration writes it: "TRIGGER: ACTION", e.g. "stalled 3: downtime
 * 300", "after 2min: post-copy", "start: auto-converge". -EINVAL with what was expected in
 * ret_error (static text) when it is not one.
 */
int mig_step_parse(const char *s, MigStep *ret, const char **ret_error);
/* The step as mig_step_parse() reads it. */
void mig_step_format(const MigStep *s, char buf[static MIG_STEP_FORMAT_MAX]);

/* The built-in policies: nova, minimal-downtime, post-copy-when-stalled, suspend-if-needed. */
extern const MigSchedule mig_schedule_builtins[];
extern const size_t mig_schedule_n_builtins;
const MigSchedule *mig_schedule_builtin(const char *name);

/* Whether a step of s takes action a (post-copy needs the migration started with it). */
bool mig_schedule_uses(const MigSchedule *s, MigAction a);
