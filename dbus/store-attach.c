/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Attaching this node to its cluster's store (store-attach.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "deny-list.h"
#include "diskinfo.h"
#include "errors.h"
#include "log.h"
#include "maintenance-drain.h"
#include "metrics.h"
#include "migration-cold.h"
#include "migration-slots.h"
#include "migration.h"
#include "node-state.h"
#include "paths.h"
#include "rebuild-note.h"
#include "reconcile.h"
#include "recovery.h"
#include "runtime.h"
#include "self-fence.h"
#include "store-attach.h"
#include "sysrun.h"

/* Retries start at once and slow down to this (or the heartbeat interval, if shorter). */
#define RETRY_MAX (5 * USEC_PER_SEC)

typedef struct StoreAttach {
        Store *pending; /* opened, not yet trusted */
        char *where;    /* the state directory or the etcd endpoints, for messages */
        StoreState state;
        char *detail;
        char cluster_id[37];
        sd_event_source *retry;
        usec_t delay;
        sd_bus_slot *filter;
        bool synced; /* node/synced written by this process */
} StoreAttach;

static const char *const store_state_table[_STORE_STATE_MAX] = {
        [STORE_STATE_WAITING] = "waiting",         [STORE_STATE_UNREACHABLE] = "unreachable",
        [STORE_STATE_NO_IDENTITY] = "no-identity", [STORE_STATE_FOREIGN] = "foreign",
        [STORE_STATE_ATTACHED] = "attached",       [STORE_STATE_LOST] = "lost",
};

const char *store_state_to_string(StoreState s)
{
        return s >= 0 && s < _STORE_STATE_MAX ? store_state_table[s] : NULL;
}

/* "strerror (what the store met)", for the state's detail: with etcd, which member said what
 * (a certificate refused, credentials refused, no answer). */
static const char *store_why(Store *s, int r, char *buf, size_t size)
{
        const char *d = s ? store_error_detail(s) : "";

        snprintf(buf, size, "%s%s%s%s", strerror(-r), *d ? " (" : "", d, *d ? ")" : "");
        return buf;
}

/* Records the state; says so (journal, systemd's status line) only when it changed. */
static void set_state(Manager *m, StoreState state, const char *format, ...) _printf_(3, 4);
static void set_state(Manager *m, StoreState state, const char *format, ...)
{
        StoreAttach *a = m->attach;
        _cleanup_free_ char *detail = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&detail, format, ap) < 0)
                detail = NULL;
        va_end(ap);
        if (a->state == state && streq_ptr(a->detail, detail))
                return;
        a->state = state;
        free(a->detail);
        a->detail = TAKE_PTR(detail);
        log_fields(state == STORE_STATE_ATTACHED ? LOG_NOTICE : LOG_ERR, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_STORE }), "%s", strna(a->detail));
        (void)sd_notifyf(false, "STATUS=%s", strna(a->detail));
        if (m->bus)
                (void)sd_bus_emit_properties_changed(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE,
                                                     "StoreState", "StoreDetail", NULL);
}

/* Stops the hook's refusal of every start: the deny list is this cluster's now. */
static void mark_synced(Manager *m)
{
        StoreAttach *a = m->attach;
        RuntimeRecord rec = { NULL };
        char since[64];
        int r;

        r = runtime_record_set(&rec, "cluster", a->cluster_id);
        if (r >= 0)
                r = runtime_record_set(&rec, "since", format_timestamp_now(since, sizeof(since)));
        if (r >= 0)
                r = runtime_marker_set(hw_runtime_dir(), NODE_MARKER_SYNCED, &rec);
        runtime_record_done(&rec);
        if (r < 0) {
                log_error_errno(r, "Cannot mark the runtime directory as synced: %m");
                return;
        }
        /* an operator's override has done its job */
        (void)runtime_marker_clear(hw_runtime_dir(), NODE_MARKER_ALLOW_UNSYNCED);
        a->synced = true;
}

void store_attach_deny_list_synced(Manager *m)
{
        if (m->attach && !m->attach->synced)
                mark_synced(m);
}

typedef struct Identity {
        const char *address;
        const char *storage_mark;
} Identity;

static int mutate_identity(NodeRecord *rec, void *userdata)
{
        const Identity *id = userdata;
        int r;

        r = free_and_strdup(&rec->address, id->address);
        if (r < 0)
                return r;
        r = free_and_strdup(&rec->storage_mark, id->storage_mark);
        return r < 0 ? r : 0; /* 1: changed, which the store does not ask */
}

static int heartbeat_cb(sd_event_source *s, uint64_t usec, void *userdata);

/* The store is this cluster's: from now on it is the store. */
static int attach(Manager *m)
{
        StoreAttach *a = m->attach;
        const Config *c = m->config;
        _cleanup_free_ char *mark = NULL;
        InstanceRecord *inst = NULL;
        size_t n_inst = 0;
        int listed, r;

        r = store_heartbeat(a->pending);
        if (r < 0) {
                char why[1024];

                set_state(m, STORE_STATE_UNREACHABLE,
                          "Cannot write this node's heartbeat to the cluster store at %s: %s",
                          a->where, store_why(a->pending, r, why, sizeof(why)));
                return r;
        }
        /* A new storage mark in instances_path: peers that read it there share the directory
         * with this node (diskinfo.h). Without one, they take its files for local disks. */
        r = storage_mark_write(c->node.instances_path, c->node.name, &mark);
        if (r == -EACCES) {
                /* instances_path is Nova's (the nova user's, 0755): systemd makes the mark
                 * directory, root's, once; the marks in it are hostwardend's own */
                _cleanup_free_ char *dir = NULL;
                char err[512];

                if (asprintf(&dir, "%s/" STORAGE_MARK_DIR, c->node.instances_path) < 0)
                        return -ENOMEM;
                const char *argv[] = { "/bin/mkdir", "-m", "0755", "--", dir, NULL };
                r = sysrun(argv, 0, 0, c->node.instances_path, 30 * USEC_PER_SEC, err, sizeof(err));
                if (r < 0)
                        log_warning("Cannot make %s: %s", dir, err);
                else
                        r = storage_mark_write(c->node.instances_path, c->node.name, &mark);
        }
        if (r < 0)
                log_warning_errno(r,
                                  "Failed to write this node's storage mark in %s/" STORAGE_MARK_DIR
                                  ": %m: peers will not count instances_path as shared with "
                                  "this node unless its file system is a network one",
                                  c->node.instances_path);
        /* peers list this node with the address they migrate to */
        r = store_node_update(a->pending, c->node.name, mutate_identity,
                              &(Identity){ .address = c->node.address, .storage_mark = mark },
                              NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to record this node's address and storage mark: %m");

        m->store = TAKE_PTR(a->pending);
        set_state(m, STORE_STATE_ATTACHED, "Attached to the cluster store at %s (cluster %s)",
                  a->where, a->cluster_id);
        r = node_sync_runtime(m);
        if (r < 0)
                log_warning_errno(r, "Failed to update the runtime markers: %m");
        /* one listing for the deny list and the cold migrations in verify */
        listed = r = store_instance_list(m->store, &inst, &n_inst);
        if (r >= 0)
                r = deny_list_sync_from(m, inst, n_inst); /* marks the runtime directory synced */
        if (r < 0)
                log_warning_errno(r, "Failed to update the deny list (retried on every "
                                     "heartbeat; until then nothing starts here): %m");

        r = sd_event_add_time_relative(m->event, &m->heartbeat, CLOCK_MONOTONIC,
                                       c->cluster.heartbeat_interval, 0, heartbeat_cb, m);
        if (r >= 0) /* every interval, not once */
                r = sd_event_source_set_enabled(m->heartbeat, SD_EVENT_ON);
        if (r < 0) {
                instance_record_array_free(inst, n_inst);
                return log_error_errno(r, "Failed to start the heartbeat: %m");
        }
        rebuilds_resume(m); /* before reconciliation takes a claimed record for a deletion */
        reconcile_schedule(m);
        r = migrations_adopt(m);
        if (r < 0)
                log_warning_errno(r, "Cannot look for migrations in flight: %m");
        r = listed < 0 ? listed : migrations_cold_adopt(m, inst, n_inst);
        if (r < 0)
                log_warning_errno(r, "Cannot look for cold migrations in verify: %m");
        instance_record_array_free(inst, n_inst);
        return 0;
}

/* 0 when the store is this cluster's (and this node has joined it), else the state set. */
static int check_identity(Manager *m)
{
        StoreAttach *a = m->attach;
        _cleanup_(cluster_identity_done) ClusterIdentity found = {}, joined = {};
        int r;

        r = store_cluster_get(a->pending, &found);
        if (r == -ENOENT) {
                set_state(m, STORE_STATE_NO_IDENTITY,
                          "No cluster identity in the store at %s: the shared storage may not "
                          "be mounted yet (mount it; hostwardend keeps trying), or no cluster "
                          "was made ('hostwardenctl init-cluster' on one node, once). Nothing "
                          "starts on this node until then",
                          a->where);
                return r;
        }
        if (r == -EBADMSG) {
                set_state(m, STORE_STATE_FOREIGN,
                          "The cluster identity in the store at %s cannot be parsed: look at "
                          "it. Nothing starts on this node until then",
                          a->where);
                return r;
        }
        if (r < 0) {
                char why[1024];

                set_state(m, STORE_STATE_UNREACHABLE,
                          "Cannot read the cluster store at %s: %s; hostwardend keeps trying. "
                          "Nothing starts on this node until then",
                          a->where, store_why(a->pending, r, why, sizeof(why)));
                return r;
        }
        r = cluster_identity_load(hw_lib_dir(), &joined);
        if (r == -ENOENT) {
                r = cluster_identity_save(hw_lib_dir(), &found);
                if (r < 0) {
                        set_state(m, STORE_STATE_FOREIGN,
                                  "Cannot record the cluster this node joins in %s/cluster-id: "
                                  "%s",
                                  hw_lib_dir(), strerror(-r));
                        return r;
                }
                log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_STORE }),
                           "This node joined cluster %s (%s), made by %s", found.id,
                           strna(found.name), strna(found.created_by));
        } else if (r < 0) {
                set_state(m, STORE_STATE_FOREIGN,
                          "Cannot read %s/cluster-id, the cluster this node joined: %s",
                          hw_lib_dir(), strerror(-r));
                return r;
        } else if (!streq(joined.id, found.id)) {
                set_state(m, STORE_STATE_FOREIGN,
                          "The store at %s is cluster %s (%s), not cluster %s (%s) that this "
                          "node joined: the configuration or a mount points at another "
                          "cluster's store. If this node moved to that cluster, remove %s/"
                          "cluster-id. Nothing starts on this node until then",
                          a->where, found.id, strna(found.name), joined.id, strna(joined.name),
                          hw_lib_dir());
                /* what the hook knows came from the store this node joined, which may not
                 * be the one mounted now: nothing starts until that is sorted out */
                (void)runtime_marker_clear(hw_runtime_dir(), NODE_MARKER_SYNCED);
                return -EXDEV;
        }
        memcpy(a->cluster_id, found.id, sizeof(a->cluster_id));
        return 0;
}

static int retry_cb(sd_event_source *s, uint64_t usec, void *userdata);

static void attempt(Manager *m)
{
        StoreAttach *a = m->attach;
        usec_t cap = MIN(RETRY_MAX, m->config->cluster.heartbeat_interval);

        if (check_identity(m) >= 0 && attach(m) >= 0)
                return;
        a->delay = a->delay ? MIN(a->delay * 2, cap) : MIN(USEC_PER_SEC / 2, cap);
        if (!a->retry) {
                if (sd_event_add_time_relative(m->event, &a->retry, CLOCK_MONOTONIC, a->delay, 0,
                                               retry_cb, m) < 0)
                        log_error("Cannot schedule another attempt to read the cluster store");
                return;
        }
        (void)sd_event_source_set_time_relative(a->retry, a->delay);
        (void)sd_event_source_set_enabled(a->retry, SD_EVENT_ONESHOT);
}

static int retry_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        attempt(userdata);
        return 0;
}

static int heartbeat_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        uint64_t t0;
        int beat, r;

        recovery_heartbeat_facts(m);
        store_set_max_incoming(m->store, m->config->migration.max_incoming);
        t0 = now_usec(CLOCK_MONOTONIC);
        beat = store_heartbeat(m->store);
        metrics_heartbeat_written(m, beat, now_usec(CLOCK_MONOTONIC) - t0);
        if (beat < 0)
                log_warning_errno(beat, "Failed to write this node's heartbeat: %m");
        store_attach_heartbeat_result(m, beat);
        r = node_sync_runtime(m);
        if (r < 0)
                log_warning_errno(r, "Failed to update the runtime markers: %m");
        reconcile_schedule(m); /* brings the deny list in line, too */
        /* a store that does not answer blocks each call for its timeout, and the loop with
         * it: the slots and the maintenance wait for a heartbeat that gets through */
        if (beat >= 0) {
                migration_slots_heartbeat(m);
                maintenance_heartbeat(m);
        }
        /* watch the peers' counters: liveness is judged by our own clock */
        NodeRecord *nodes = NULL;
        size_t n = 0;
        if (store_node_list(m->store, &nodes, &n) >= 0) {
                uint64_t now = 0;
                (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
                for (size_t i = 0; i < n; i++) {
                        NodeLiveness l;
                        (void)store_node_liveness_of(m->store, &nodes[i], now,
                                                     m->config->cluster.down_after, &l);
                }
                recovery_tick(m, nodes, n);
                metrics_nodes_listed(m, nodes, n, now);
                node_record_array_free(nodes, n);
        }
        return sd_event_source_set_time_relative(s, m->config->cluster.heartbeat_interval);
}

void store_attach_heartbeat_result(Manager *m, int r)
{
        StoreAttach *a = m->attach;
        char why[1024];

        if (r >= 0)
                set_state(m, STORE_STATE_ATTACHED,
                          "Attached to the cluster store at %s (cluster %s)", a->where,
                          a->cluster_id);
        else
                set_state(m, STORE_STATE_LOST,
                          "Cannot write this node's heartbeat to the cluster store at %s: %s "
                          "(peers will see this node down after [cluster] down_after)",
                          a->where, store_why(m->store, r, why, sizeof(why)));
        self_fence_heartbeat_result(m, r);
}

/* Methods that answer without the store; every other Node method waits for it. */
static const char *const without_store[] = { "CheckNode", "Reload", "ListMigrations" };

static int filter_cb(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Manager *m = userdata;
        const char *member;

        if (m->store || !sd_bus_message_is_method_call(msg, HW_NODE_INTERFACE, NULL))
                return 0;
        member = sd_bus_message_get_member(msg);
        for (size_t i = 0; i < ELEMENTSOF(without_store); i++)
                if (streq_ptr(member, without_store[i]))
                        return 0;
        (void)store_attach_require(m, &error);
        (void)sd_bus_reply_method_error(msg, &error);
        return 1; /* answered */
}

int store_attach_require(Manager *m, sd_bus_error *error)
{
        StoreAttach *a = m->attach;

        if (m->store)
                return 0;
        return sd_bus_error_setf(error, HW_ERROR_STORE_UNAVAILABLE,
                                 "This node is not attached to its cluster store yet (%s): %s",
                                 store_state_to_string(a ? a->state : STORE_STATE_WAITING),
                                 a && a->detail ? a->detail : "not read yet");
}

StoreState store_attach_state(Manager *m)
{
        return m->attach ? m->attach->state : STORE_STATE_WAITING;
}

const char *store_attach_detail(Manager *m)
{
        return m->attach && m->attach->detail ? m->attach->detail : "";
}

int store_attach_open(const Config *c, Store **ret)
{
        if (c->cluster.store == STORE_BACKEND_ETCD) {
                /* the lease of this node's heartbeats lasts as long as it takes to be down */
                uint64_t ttl = (c->cluster.down_after + USEC_PER_SEC - 1) / USEC_PER_SEC;
                EtcdOptions opts = store_etcd_options(c);

                return store_open_etcd(c->cluster.etcd_endpoints, NULL, c->node.name, MAX(ttl, 2U),
                                       &opts, ret);
        }
        return store_open_dir(hw_state_dir(c->cluster.state_dir), c->node.name, ret);
}

int store_attach_start(Manager *m)
{
        const Config *c = m->config;
        StoreAttach *a;
        int r;

        a = m->attach = calloc(1, sizeof(StoreAttach));
        if (!a)
                return log_error_errno(-ENOMEM, "Out of memory");
        a->where = c->cluster.store == STORE_BACKEND_ETCD
                           ? strv_join(c->cluster.etcd_endpoints, ", ")
                           : strdup(hw_state_dir(c->cluster.state_dir));
        r = a->where ? store_attach_open(c, &a->pending) : -ENOMEM;
        if (r < 0)
                return log_error_errno(r, "Failed to open the cluster store (%s) at %s: %m",
                                       store_backend_to_string(c->cluster.store), strna(a->where));
        if (m->bus) {
                r = sd_bus_add_filter(m->bus, &a->filter, filter_cb, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to install the bus filter: %m");
        }
        attempt(m);
        return 0;
}

void store_attach_retry_now(Manager *m)
{
        StoreAttach *a = m->attach;

        if (!a || m->store)
                return;
        a->delay = 0;
        (void)sd_event_source_set_enabled(a->retry, SD_EVENT_OFF);
        attempt(m);
}

void store_attach_free(Manager *m)
{
        StoreAttach *a = m->attach;

        if (!a)
                return;
        sd_event_source_disable_unref(a->retry);
        sd_bus_slot_unref(a->filter);
        store_free(a->pending);
        free(a->where);
        free(a->detail);
        free(a);
        m->attach = NULL;
}
