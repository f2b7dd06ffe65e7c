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

/* One Manager owns the world: event loop, bus, configuration, pending polkit queries. */
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
        char **rebuilding;                  /* UUIDs of instances a Rebuild works on here */
        struct Reservations *reservations;  /* memory on its way to each peer (placement.h) */

        /* ListInstances answers from a listing at most LIST_INSTANCES_MAX_AGE old */
        InstanceRecord *instances_cache;
        size_t n_instances_cache;
        uint64_t instances_cache_time; /* CLOCK_MONOTONIC */
        bool instances_cache_valid;

        /* caps on what callers can keep the daemon busy with (limits.h, docs/daemon.md) */
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
/* Brings the runtime dir's node markers in line with this node's record (docs/runtime-dir.md). */
int manager_sync_runtime(Manager *m);
/* Brings /run/hostwarden/deny/ in line with the instance records: every instance another
 * node owns is denied here, nothing else (docs/runtime-dir.md). */
int manager_sync_deny_list(Manager *m);
/* The same from a listing of the instance records the caller just read. */
int manager_sync_deny_list_from(Manager *m, const InstanceRecord *inst, size_t n);
/* Runs <conf>/notify.d/ * with HOSTWARDEN_EVENT, _NODE, _STATE, _REASON in the environment. */
void manager_run_notify(Manager *m, const char *event, const char *state, const char *reason);
/* Applies [firewall] (table and the hook's window batches). */
int manager_apply_firewall(Manager *m, sd_bus_error *error);
/* "active", "absent", "stale" (differs from the configuration), "disabled", "unconfigured" */
const char *manager_firewall_state(Manager *m);
/* The same for a spec of one's own (any thread): one netlink dump of the table. */
struct FwSpec;
const char *firewall_state_of(bool enable, const struct FwSpec *spec);

/* Disable (with reason) or enable this node: the store, the hook's marker, disable_action,
 * notify.d, NodeChanged (node-dbus.c). */
int manager_set_disabled(Manager *m, bool disable, const char *reason, sd_bus_error *error);

/* A node's state as ListNodes shows it (up, disabled, down, forced-down, unknown), liveness
 * judged by this daemon at now (CLOCK_MONOTONIC). */
const char *manager_node_state(Manager *m, const NodeRecord *rec, uint64_t now);

extern const sd_bus_vtable node_vtable[];
