/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "history.h"
#include "manager.h"
#include "migpolicy.h"
#include "migrate-opts.h"

/*
 * Live migrations out of this node (DESIGN.md §7), started here or, adopted, in flight when
 * this daemon started: one object each on /org/hostwarden/Warden1/migration/<id>, interface
 * org.hostwarden.Warden1.Migration.
 *
 * A migration is queued, then run by a worker thread (at most [migration] max_concurrent at
 * once): preflight (CheckMigration, and the choice of destination when none was given), then
 * peer-to-peer virDomainMigrateToURI3 while a monitor thread reads the job statistics every
 * 500 ms and applies lib/migpolicy.c (downtime steps, stalls, completion timeout) and the
 * operator's Abort/ForceComplete. The event loop publishes what the threads found with
 * PropertiesChanged at most twice a second, and on success moves the instance record and
 * definition to the destination.
 */

typedef enum MigrationState {
        MIGRATION_QUEUED,
        MIGRATION_PREPARING,
        MIGRATION_RUNNING,
        MIGRATION_POST_MIGRATING,
        MIGRATION_VERIFY, /* cold: the guest runs on the destination; Confirm or Revert */
        MIGRATION_COMPLETED,
        MIGRATION_FAILED,
        MIGRATION_ABORTED,
        _MIGRATION_STATE_MAX,
} MigrationState;

const char *migration_state_to_string(MigrationState s);

typedef enum MigrationRequest {
        MIGRATION_REQUEST_NONE,
        MIGRATION_REQUEST_ABORT,
        MIGRATION_REQUEST_FORCE_COMPLETE,
} MigrationRequest;

/* What is published: the worker writes a copy under the lock, the event loop publishes it. */
typedef struct MigrationInfo {
        MigrationState state;
        char *domain_uuid; /* known from the creation (the domain was looked up then) */
        char *domain_name;
        char *destination;
        char *error;
        uint64_t started, finished; /* usec realtime, 0 = not yet */
        uint64_t memory_total, memory_processed, memory_remaining;
        uint64_t disk_total, disk_processed, disk_remaining;
        uint64_t dirty_rate; /* bytes per second */
        uint64_t iteration;
        uint64_t max_downtime; /* ms: the current step */
        uint64_t downtime;     /* ms: measured, when completed */
        unsigned progress;     /* percent, never backwards */
        bool post_copy;
        /* µs from the switchover until the switch knew the guest there, 0 = unknown
         * (network-watch.h) */
        uint64_t network_downtime;
        char policy[MIG_POLICY_NAME_MAX + 1]; /* once the migration started: "" before */
} MigrationInfo;

typedef struct Migration Migration;
struct Migration {
        Manager *manager;
        char id[17];
        char *path;
        char *domain_arg; /* as the caller gave it */
        char *source;
        MigrateOptions opts;
        uint64_t created;
        uint64_t created_monotonic;
        bool dest_chosen_by_us;
        HistoryCaller caller; /* who asked (history.h); not known for an adopted one */

        pthread_mutex_t lock;
        MigrationInfo live;  /* guarded by lock */
        MigrationInfo pub;   /* event loop only: as last announced by PropertiesChanged */
        atomic_int request;  /* MigrationRequest, event loop → threads */
        bool abort_accepted; /* event loop: an Abort was accepted; ForceComplete is refused */
        sd_bus_message **abort_calls; /* answered when the migration has ended */
        size_t n_abort_calls;

        /* MigrationWork (migration-internal.h): set up and freed by the event loop, which
         * also reads whether it is there (NULL: not queued or running any more); used by the
         * worker between. */
        void *work;
        sd_bus_slot *slot;
        sd_event_source *publish_timer;
        uint64_t last_emit; /* CLOCK_MONOTONIC of the last PropertiesChanged, 0 = none */
        sd_event_source *expire_timer;
        void *cold; /* a cold migration's own state (migration-cold.c), else NULL */
        Migration *next;
};

/* The org.hostwarden.Warden1.Migration interface of each migration object. */
extern const sd_bus_vtable migration_vtable[];

/* At start: a Migration object for every outgoing migration libvirt is running here (a
 * previous hostwardend started it), followed from libvirt's job until it ends. */
int migrations_adopt(Manager *m);
/* The migration of the instance uuid that is queued or running here (its end not yet handled
 * by the event loop), or NULL: its claim in the Manager's instance registry. Every Migration
 * knows its instance's UUID from its creation, so a name and a UUID of one guest are one
 * instance here. */
Migration *migration_busy(Manager *m, const char *uuid);
/* An unfinished migration of the instance named or identified by dom as the caller gave it
 * (what can be told without libvirt, before polkit), or NULL. */
Migration *migration_find_unfinished(Manager *m, const char *dom);
/* The migration object of this id (ended ones too, until they expire), or NULL. */
Migration *migration_by_id(Manager *m, const char *id);
/* Busy, naming the migration that has the instance: what the caller can follow or abort. */
int migration_busy_error(sd_bus_error *error, const Migration *x, const char *dom);
/* Migrate, authorized: resolves dom (name or UUID) to the instance in a worker, then queues a
 * migration of it to dest ("" = hostwarden chooses) unless one is under way, and answers msg
 * with its object. 1, or a negative errno. */
int migration_request(Manager *m, sd_bus_message *msg, const char *dom, const char *dest,
                      const MigrateOptions *opts);
/* At shutdown, after jobs_drain() has waited for every worker (a stop waits for running
 * migrations to end): frees every Migration. */
void migrations_free(Manager *m);
