/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "macro.h"
#include "store.h"

typedef struct AuthQuery AuthQuery;
typedef struct Job Job;
typedef struct Limiter Limiter;
typedef struct Migration Migration;
typedef struct Virt Virt;

/*
 * One Manager owns the world: event loop, bus, configuration, pending polkit queries. What
 * the daemon does with it, one room each (docs/architecture.md):
 *   node-dbus.c, migration-dbus.c   the D-Bus interfaces: vtables and thin handlers
 *   node-state.c                    this node's record, markers and cached listings
 *   instance-ops.c                  who works on which instance (one registry)
 *   deny-list.c, notify.c, firewall.c   what the hook and the operator's scripts read
 *   store-attach.c                  the store, late at boot, and the heartbeat
 *   migration-*.c, drain.c          outgoing live migrations
 *   rebuild*.c, fence.c             recovery after a node failure
 *   reconcile*.c, window-keeper.c   what the world did behind our back
 *   check.c, preflight.c            CheckNode and CheckMigration's facts
 */
typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        Config *config;
        Store *store;               /* NULL until attached (store-attach.h) */
        struct StoreAttach *attach; /* store-attach.h */
        sd_event_source *heartbeat;
        AuthQuery *auth_queries; /* a list; each holds its slot and the method call */
        Virt *virt;              /* the local libvirt (virt.h) */
        Job *jobs;               /* running worker threads (job.h) */
        int job_pipe[2];         /* finished jobs come back through it */
        sd_event_source *job_source;
        Migration *migrations;              /* newest first (migration.h) */
        struct Reconciler *reconciler;      /* reconcile.h */
        struct WindowKeeper *window_keeper; /* window-keeper.h */
        struct HaRestart *ha_restart;       /* crashed guests restarted (ha-restart.h) */
        struct InstanceOps *instance_ops;   /* who works on which instance (instance-ops.h) */
        struct Reservations *reservations;  /* memory on its way to each peer (placement.h) */
        struct SelfFence *self_fence;       /* NULL until a heartbeat declared it (self-fence.h) */

        /* the consoles' TLS priority on the running guests (console-priority.h) */
        struct ConsolePriority *console_tls;
        struct Recovery *recovery;    /* automatic recovery (recovery.h) */
        struct MigrationSlots *slots; /* the cluster's migration slots (migration-slots.h) */
        char **config_warnings;       /* the last load's, "FILE:LINE: message" (ConfigWarnings) */
        /* the drain of this node's maintenance (maintenance-drain.c) */
        struct MaintenanceRun *maintenance_run;
        struct Metrics *metrics; /* counts and the textfile (metrics.h) */

        /* ListInstances answers from a listing at most LIST_INSTANCES_MAX_AGE old */
        InstanceRecord *instances_cache;
        size_t n_instances_cache;
        uint64_t instances_cache_time; /* CLOCK_MONOTONIC */
        bool instances_cache_valid;

        /* GetHistory answers from a listing at most HISTORY_MAX_AGE old, dropped by this
         * node's own records (history.c) */
        HistoryRecord *history_cache;
        size_t n_history_cache;
        uint64_t history_cache_time; /* CLOCK_MONOTONIC */
        bool history_cache_valid;

        /* caps on what callers can keep the daemon busy with (call-limits.h, docs/daemon.md) */
        Limiter *work_limits; /* worker threads of read-only methods */
        Limiter *auth_limits; /* polkit queries pending */

        /* FirewallState as last looked at (NULL: not yet), and when (CLOCK_MONOTONIC) */
        const char *firewall_state;
        uint64_t firewall_state_time;
} Manager;

int manager_new(Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Loads the configuration; on errors fills error (InvalidArgs-like, per-line messages) and
 * keeps the current configuration. */
int manager_load_config(Manager *m, sd_bus_error *error);
/* Connects to the system bus, exports the objects, takes the bus name; sets up the libvirt
 * connection (opened on first use) and the worker threads. */
int manager_startup(Manager *m);

extern const sd_bus_vtable node_vtable[];
