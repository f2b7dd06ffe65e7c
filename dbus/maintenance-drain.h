/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>

#include "manager.h"
#include "migration.h"

/*
 * Maintenance's Enter, Cancel and Exit [manage-node], and the looks at this node that move
 * its state on (maintenance-drain.c, docs/maintenance.md). The state is in this node's
 * record in the store.
 */
int maintenance_method_enter(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int maintenance_method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int maintenance_method_exit(sd_bus_message *msg, void *userdata, sd_bus_error *error);

/* The properties: State's word, Deadline (µs since the epoch, 0: none), Blocked's a(ss). */
const char *maintenance_state_word(Manager *m);
uint64_t maintenance_deadline(Manager *m);
int maintenance_append_blocked(Manager *m, sd_bus_message *reply);

/* A look at this node (a plan, acted on) unless it is not in maintenance; one at a time. */
void maintenance_evaluate(Manager *m);
/* Hooks: the end of a migration (migration-queue.c), the heartbeat (store-attach.c), which
 * also takes a maintenance up again after a restart. */
void maintenance_migration_ended(Manager *m, Migration *mig);
void maintenance_heartbeat(Manager *m);
/* On the heartbeat too: the guests other nodes ask back after their maintenance, sent back
 * from here (maintenance-return.c). */
void maintenance_return_tick(Manager *m);
/* At the daemon's stop: maintenance_stop() before the jobs are drained (the shutdowns stop
 * waiting), maintenance_free() after. */
void maintenance_stop(Manager *m);
void maintenance_free(Manager *m);
