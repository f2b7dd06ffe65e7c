/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "config.h"

/* The a{sv} options of CheckMigration and Migrate (DESIGN.md §7), defaults from [migration]. */
typedef struct MigrateOptions {
        bool block;                   /* "block" b: copy local disks */
        uint64_t bandwidth;           /* "bandwidth" t|u: MiB/s, 0 = unlimited */
        bool auto_converge;           /* "auto-converge" b */
        bool post_copy;               /* "post-copy" b */
        bool post_copy_asked;         /* the caller asked for it, not [migration]'s default */
        bool tls;                     /* "tls" b: [migration] tls, auto resolved (migtls.h) */
        uint64_t max_downtime_ms;     /* "max-downtime-ms" t|u: the last downtime step */
        usec_t completion_timeout;    /* "completion-timeout" t|u: seconds per GiB, 0 = none */
        TimeoutAction timeout_action; /* "timeout-action" s: abort | force_complete */
        bool cold;                    /* MigrateCold (migration-cold.h); CheckMigration "cold" b */
        usec_t shutdown_timeout;      /* MigrateCold "shutdown-timeout" t|u: seconds */
        char policy[MIG_POLICY_NAME_MAX + 1]; /* "policy" s: the caller's, "" for none */
        MigSchedule schedule; /* the policy the migration follows: migrate_options_choose_policy */
} MigrateOptions;

void migrate_options_defaults(const Config *c, MigrateOptions *ret);

/* One option's unsigned integer (t or u) up to max: InvalidArgs saying what was expected
 * (also for MigrateCold's options, migration-cold.c). */
int migrate_options_read_uint(sd_bus_message *msg, const char *key, const char *type, uint64_t max,
                              uint64_t *ret, sd_bus_error *error);

/*
 * Reads an a{sv} from msg over the defaults. Unknown keys, wrong types and values out of
 * range, asking for auto-converge or post-copy where [migration] does not permit them, and
 * 'tls' false where [migration] tls = yes, are InvalidArgs saying what was expected (returns
 * -EINVAL with error set).
 */
int migrate_options_read(sd_bus_message *msg, const Config *c, MigrateOptions *opts,
                         sd_bus_error *error);

/*
 * The migration policy of a live migration: the caller's (option "policy"), else the
 * domain's (domain_policy: its metadata, NULL for none), else [migration] policy. Copies it
 * into opts->schedule and sets the flags its steps need (post-copy, auto-converge). -ENOENT
 * (a policy nobody defined) or -EPERM (one [migration] does not permit), with why in error.
 */
int migrate_options_choose_policy(const Config *c, MigrateOptions *opts, const char *domain_policy,
                                  char *error, size_t size);

/*
 * Whether opts->tls can be had on this node: TLS without its QEMU certificates, or no TLS
 * where libvirt forces it (migrate_tls_force), is ConstraintViolated naming what is missing
 * (Migrate and EvacuateLive refuse before anything starts).
 */
int migrate_options_check_tls(const Config *c, const MigrateOptions *opts, sd_bus_error *error);
