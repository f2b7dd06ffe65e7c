/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the migration files (migration-*.c, drain.c) share: the state of one migration's
 * worker and the functions they call in each other. Not for the rest of dbus/. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "announce-cmd.h"
#include "migration-leftovers.h"
#include "migration.h"
#include "migpolicy.h"
#include "peers.h"
#include "preflight.h"

#define MONITOR_INTERVAL_MS 500
#define KEEP_FINISHED       (USEC_PER_HOUR) /* finished migrations stay listed this long */

typedef struct MigrationWork {
        /* set up in the event loop */
        Preflight **candidates;
        char **candidate_addresses; /* the peers' addresses, for the console listen */
        size_t n_candidates;
        ConsoleListen console_listen;
        unsigned downtime_steps, stall_iterations;
        usec_t downtime_delay;
        AnnounceSchedule announce; /* announce.h: once it landed */
        unsigned cluster_cap;      /* [cluster] max_migrations (migration-slots.h) */

        /* the worker's */
        Preflight *chosen;
        const char *dest_address;
        virConnectPtr conn, dconn, mconn; /* mconn: the monitor thread's */
        virDomainPtr dom, mdom;
        char *persist_xml;
        Leftovers made; /* block migration: what it made on the destination */
        /* network-watch.h: NetworkDowntime */
        struct NetWatch *net_watch;
        MigPolicy policy;
        uint64_t started_monotonic;

        pthread_mutex_t wait_lock;
        pthread_cond_t wait_cond;
        bool migrate_returned; /* under wait_lock */
        bool aborted;          /* by Abort() or timeout_action=abort */
        bool abort_sent;       /* libvirt took virDomainAbortJob() */
        bool paused_by_us;     /* ForceComplete without post-copy: we resume it, nothing else */
        bool succeeded;
        char error[1024];

        uint64_t reserved; /* bytes counted against the chosen destination (placement.h) */

        /* adopted: in flight when this daemon started (a previous one started it) */
        bool adopted;
        char *a_uuid, *a_name, *a_dest, *a_dest_uri; /* a_dest, a_dest_uri may be NULL */
        PeerTargets a_peers;                         /* where it may be going */
} MigrationWork;

/* migration-queue.c: the objects, the queue, the end of a migration */
bool migration_state_is_final(MigrationState s);
void migration_info_done(MigrationInfo *i);
MigrationWork *migration_work_new(void);
void migration_work_free(MigrationWork *w);
/* f(&mig->live, u) under mig->lock */
void migration_live_update(Migration *mig, void (*f)(MigrationInfo *i, void *u), void *u);
void migration_live_set_state(Migration *mig, MigrationState s);
/* A Migration of dom with opts, not published yet. */
int migration_new(Manager *m, const char *dom, const MigrateOptions *opts, Migration **ret);
Migration *migration_free(Migration *mig);
void migration_unlink(Manager *m, Migration *mig);
/* The job's done callback of a migration's worker (engine and adopted). */
void migration_done(Manager *m, sd_bus_message *msg, void *userdata);
void migration_keep_finished(Migration *mig);
/* Its end is handled: the worker state goes, and so does its claim on the instance. */
void migration_let_go(Migration *mig);
int migration_create(Manager *m, const char *dom, const char *uuid, const char *name,
                     const char *dest, const MigrateOptions *opts, Migration **ret,
                     sd_bus_error *error);
void migrations_schedule(Manager *m);

/* migration-engine.c: one outgoing migration */
/* The first reason is the one to tell (Error). */
void migration_fail(MigrationWork *w, const char *format, ...) _printf_(2, 3);
int migration_prepare_work(Manager *m, Migration *mig, const char *uuid, const char *dest,
                           sd_bus_error *error);
/* The worker of a migration started here. */
void migration_work(Manager *m, void *userdata);
void migration_unreserve(Manager *m, MigrationWork *w);
void migration_landed(Migration *mig, MigrationWork *w, virDomainPtr ddom, const char *dest);
/* In a worker: the preflights gathered and the destination chosen (w->chosen,
 * w->dest_address); the reason in w->error otherwise. */
int migration_choose_destination(Manager *m, Migration *mig, MigrationWork *w);
/* w->dom's XML with flags for w->chosen, console listen rewritten. NULL on failure. */
char *migration_dest_xml(MigrationWork *w, unsigned flags);

/* migration-announce.c: the network follows the guest (announce.h, network-watch.h) */
/* Before virDomainMigrateToURI3: the destination's connection opened for the announcement,
 * the watch for NetworkDowntime started. */
void migration_announce_before(Migration *mig, MigrationWork *w);
/* Once it landed (after the announcement), libvirt's downtime known: NetworkDowntime. */
void migration_announce_landed(Migration *mig, MigrationWork *w, uint64_t downtime_ms);

/* migration-monitor.c: libvirt's job statistics, the policy, Abort and ForceComplete */
void migration_stats_from_params(virTypedParameterPtr params, int n, MigrationInfo *s);
void migration_store_sample_cb(MigrationInfo *i, void *u);
/* One look at a running migration: the operator's requests acted on, then libvirt's job
 * statistics read. 1 with *ret, 0 when the domain has no job, -ENOENT when it is gone here,
 * -EIO when the statistics cannot be read. */
int migration_monitor_step(Migration *mig, MigrationWork *w, MigrationInfo *ret);
void *migration_monitor_thread(void *userdata);

/* migration-dbus.c: the org.hostwarden.Warden1.Migration objects */
int migration_publish(Manager *m, Migration *mig, MigrationState state);
void migration_publish_soon(Migration *mig);
