/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "config.h"
#include "manager.h"
#include "migrate-opts.h"
#include "migration.h"

/*
 * Cold migration (MigrateCold; docs/migration.md "Cold migration"): a Migration of mode cold
 * shuts the guest down, copies its local disk files to the destination (cold-copy.h),
 * defines it there with the console listen rewritten, starts it there if it ran, moves the
 * instance record and waits in state verify for Confirm() (the source's copy and its copied
 * files go) or Revert() (the destination's go, and the guest runs here again as it was).
 * The record says so meanwhile (its cold keys, store.h), so that a restarted daemon finds
 * the migration in verify again and reconciliation keeps both copies.
 */

/* MigrateCold's a{sv} over [migration]'s defaults: "shutdown-timeout" (t|u, seconds).
 * InvalidArgs saying what was expected. */
int migration_cold_options_read(sd_bus_message *msg, const Config *c, MigrateOptions *opts,
                                sd_bus_error *error);

/* The queue runs a cold migration: its worker starts (migration-queue.c start()). */
int migration_cold_start(Manager *m, Migration *mig);

/* Confirm() and Revert(): whether mig can take one now (a cold migration in verify, no
 * Confirm or Revert under way), error set if not; checked before and after polkit. */
int migration_cold_check(Migration *mig, const char *verb, sd_bus_error *error);
/* Authorized: starts it; msg is answered when it has ended. 1, or a negative errno. */
int migration_cold_confirm(Migration *mig, sd_bus_message *msg);
int migration_cold_revert(Migration *mig, sd_bus_message *msg);

/* Abort() of a cold migration in verify is refused (Revert is its way back): 1 and error
 * set then, else 0. */
int migration_cold_refuse_abort(Migration *mig, sd_bus_error *error);

/* At start, once the store is read (inst, its instance records): a Migration in verify for
 * every cold migration the store says this node is the source of; one that was landing or
 * reverting is reverted. */
int migrations_cold_adopt(Manager *m, const InstanceRecord *inst, size_t n);

/* Frees mig->cold. */
void migration_cold_free(Migration *mig);
