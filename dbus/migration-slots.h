/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The cluster's migration slots (issue 23): a destination takes at most its [migration]
 * max_incoming live migrations at once, and the cluster at most [cluster] max_migrations,
 * each counted as leases in the store (slot K of a destination, slot K of the cluster), so
 * that nodes that never talk to each other share them. A migration's worker waits for its
 * slots after it chose the destination and before the copy starts; the event loop takes them
 * (the store is the loop's), renews them with each heartbeat, and gives them back when the
 * migration ends. A node that dies holding slots loses them when they expire (down_after).
 * [migration] max_outgoing (max_concurrent) is this node's own queue (migration-queue.c).
 */

#include "manager.h"
#include "migration.h"

typedef struct MigrationSlots MigrationSlots;

/* In the event loop, before a worker may wait (migration_prepare_work). */
int migration_slots_ensure(Manager *m);
void migration_slots_free(Manager *m);

/*
 * The worker's wait for the slots of a migration to dest (whose max_incoming the store said;
 * cap: [cluster] max_migrations; both 0: nothing to wait for). 0 when they are held, and
 * -ECANCELED when an Abort came first.
 */
int migration_slots_wait(Manager *m, Migration *mig, const char *dest, unsigned max_incoming,
                         unsigned cap);

/* Event loop: the migration ended (any way): its slots go back to the store. */
void migration_slots_release(Manager *m, Migration *mig);

/* Event loop, each heartbeat: held slots renewed, waiting migrations tried again. */
void migration_slots_heartbeat(Manager *m);
