/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* This node's state: its record in the store (disabled, forced down), the runtime markers the
 * hook reads, and the cached listings the Node interface answers from. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "node-state.h"
#include "notify.h"
#include "paths.h"
#include "runtime.h"

#define OWN_RECORD_MAX_AGE (1 * USEC_PER_SEC)

typedef struct DisableArgs {
        bool disable;
        const char *reason;
} DisableArgs;

/* This node's own record; an absent one is an enabled node, and so is one not read yet
 * (StoreState says why). Anybody may read the properties built from it, as often as they
 * like: it comes from the node listing ListNodes keeps, read from the store at most once per
 * OWN_RECORD_MAX_AGE; this node's own writes drop that listing, so they show at once. */
int node_own_record(Manager *m, NodeRecord *ret)
{
        NodeRecord *nodes = NULL;
        uint64_t now = 0;
        size_t n = 0;
        int r;

        *ret = (NodeRecord){ 0 };
        if (!m->store)
                return 0;
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        r = store_node_list_cached(m->store, now, OWN_RECORD_MAX_AGE, &nodes, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (streq(nodes[i].name, m->config->node.name)) {
                        *ret = nodes[i];
                        nodes[i] = (NodeRecord){ 0 }; /* taken */
                        break;
                }
        node_record_array_free(nodes, n);
        return 0;
}

static int mutate_disabled(NodeRecord *rec, void *userdata)
{
        const DisableArgs *a = userdata;

        rec->disabled = a->disable;
        free(rec->disabled_reason);
        rec->disabled_reason = a->disable && a->reason ? strdup(a->reason) : NULL;
        if (a->disable && a->reason && !rec->disabled_reason)
                return -ENOMEM;
        rec->disabled_since = a->disable ? now_realtime() : 0;
        return 0;
}

/* [node] disable_action = stop: stop compute_unit on Disable, start it on Enable. */
static void apply_disable_action(Manager *m, bool disable)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (m->config->node.disable_action != DISABLE_ACTION_STOP)
                return;
        r = sd_bus_call_method(m->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager",
                               disable ? "StopUnit" : "StartUnit", &error, NULL, "ss",
                               m->config->node.compute_unit, "replace");
        if (r < 0)
                log_warning("Failed to %s %s ([node] disable_action = stop): %s",
                            disable ? "stop" : "start", m->config->node.compute_unit,
                            error.message ? error.message : strerror(-r));
}

int node_set_disabled(Manager *m, bool disable, const char *reason, sd_bus_error *error)
{
        const DisableArgs args = { .disable = disable, .reason = reason }, *a = &args;
        const char *state = a->disable ? "disabled" : "enabled";
        int r;

        r = store_node_update(m->store, m->config->node.name, mutate_disabled, (void *)a, NULL);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot record the node's state: %m");
        r = node_sync_runtime(m);
        if (r < 0)
                log_warning_errno(r, "Failed to update the runtime markers: %m");
        apply_disable_action(m, a->disable);
        notify_run(m, a->disable ? "disable" : "enable", state, a->reason);
        log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "HOSTWARDEN_NODE", m->config->node.name }),
                   "Node %s %s%s%s", m->config->node.name, state, a->reason ? ": " : "",
                   a->reason ? a->reason : "");
        (void)sd_bus_emit_signal(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "NodeChanged", "ss",
                                 m->config->node.name, state);
        (void)sd_bus_emit_properties_changed(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "State",
                                             "DisabledReason", "DisabledSince", NULL);
        return 0;
}

#define LIST_INSTANCES_MAX_AGE (1 * USEC_PER_SEC)

/* The instance records from a listing at most LIST_INSTANCES_MAX_AGE old, sorted by UUID;
 * they belong to the Manager. */
int node_instances_cached(Manager *m, const InstanceRecord **ret, size_t *ret_n)
{
        InstanceRecord *inst = NULL;
        uint64_t now = 0;
        size_t n = 0;
        int r;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!m->instances_cache_valid || now >= m->instances_cache_time + LIST_INSTANCES_MAX_AGE) {
                r = store_instance_list(m->store, &inst, &n);
                if (r < 0)
                        return r;
                instance_record_array_free(m->instances_cache, m->n_instances_cache);
                m->instances_cache = inst;
                m->n_instances_cache = n;
                m->instances_cache_time = now;
                m->instances_cache_valid = true;
        }
        *ret = m->instances_cache;
        *ret_n = m->n_instances_cache;
        return 0;
}

/* Sets or clears one marker; returns whether it changed. */
static int sync_marker(const char *rt, NodeMarker marker, bool on, const char *since,
                       const char *key, const char *value)
{
        bool was = runtime_marker_lookup(rt, marker, NULL) > 0;
        RuntimeRecord rec = { NULL };
        int r;

        if (was == on)
                return 0;
        if (!on)
                return runtime_marker_clear(rt, marker) < 0 ? -EIO : 1;
        (void)runtime_record_set(&rec, "since", since);
        if (value)
                (void)runtime_record_set(&rec, key, value);
        r = runtime_marker_set(rt, marker, &rec);
        runtime_record_done(&rec);
        return r < 0 ? r : 1;
}

int node_sync_runtime(Manager *m)
{
        const char *rt = hw_runtime_dir();
        NodeRecord rec = { 0 };
        char since[64];
        int r;

        r = store_node_get(m->store, m->config->node.name, &rec);
        if (r == -ENOENT) {
                (void)runtime_marker_clear(rt, NODE_MARKER_FORCED_DOWN);
                (void)runtime_marker_clear(rt, NODE_MARKER_FENCED);
                return runtime_marker_clear(rt, NODE_MARKER_DISABLED);
        }
        if (r < 0)
                return r;
        /* markers other nodes decide (ForceDown, fencing) reach the hook through the store */
        if (sync_marker(rt, NODE_MARKER_FORCED_DOWN, rec.forced_down,
                        format_realtime(rec.forced_down_since, since, sizeof(since)), "by",
                        rec.forced_down_by) > 0) {
                log_notice("This node is %s", rec.forced_down ? "forced down: the hook refuses "
                                                                "every start and incoming migration"
                                                              : "no longer forced down");
                if (m->bus)
                        (void)sd_bus_emit_properties_changed(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE,
                                                             "ForcedDownBy", "ForcedDownSince",
                                                             NULL);
        }
        (void)sync_marker(rt, NODE_MARKER_FENCED, rec.fence == FENCE_OFF,
                          format_realtime(rec.fence_time, since, sizeof(since)), "by",
                          "fence agent");
        if (rec.disabled) {
                RuntimeRecord marker = { NULL };
                (void)runtime_record_set(&marker, "since",
                                         format_realtime(rec.disabled_since, since, sizeof(since)));
                if (rec.disabled_reason)
                        (void)runtime_record_set(&marker, "reason", rec.disabled_reason);
                r = runtime_marker_set(rt, NODE_MARKER_DISABLED, &marker);
                runtime_record_done(&marker);
        } else
                r = runtime_marker_clear(rt, NODE_MARKER_DISABLED);
        node_record_done(&rec);
        return r;
}

const char *node_state_of(Manager *m, const NodeRecord *rec, uint64_t now)
{
        NodeLiveness l = NODE_UNKNOWN;

        if (streq(rec->name, m->config->node.name))
                l = NODE_UP;
        else
                (void)store_node_liveness_of(m->store, rec, now, m->config->cluster.down_after, &l);
        return rec->forced_down ? "forced-down"
               : l == NODE_DOWN ? "down"
               : rec->disabled  ? "disabled"
               : l == NODE_UP   ? "up"
                                : "unknown";
}

typedef struct ForceArgs {
        bool down;
        const char *by;
} ForceArgs;

static int mutate_forced(NodeRecord *rec, void *userdata)
{
        const ForceArgs *a = userdata;

        if (rec->generation == 0)
                return -ENOENT; /* no such node in the store */
        rec->forced_down = a->down;
        free(rec->forced_down_by);
        rec->forced_down_by = a->down ? strdup(a->by) : NULL;
        if (a->down && !rec->forced_down_by)
                return -ENOMEM;
        rec->forced_down_since = a->down ? now_realtime() : 0;
        return 0;
}

int node_set_forced_down(Manager *m, const char *node, bool down, const char *by, bool overrode,
                         uint64_t seen_ago, sd_bus_error *error)
{
        const ForceArgs a = { .down = down, .by = by };
        int r;

        r = store_node_update(m->store, node, mutate_forced, (void *)&a, NULL);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, HW_ERROR_NO_SUCH_NODE,
                                         "No node '%s' in the store: ListNodes() shows the nodes",
                                         node);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot record the node's state: %m");
        if (streq(node, m->config->node.name))
                (void)node_sync_runtime(m);
        if (overrode && down)
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "HOSTWARDEN_NODE", node }, { "HOSTWARDEN_INSIST", "yes" }),
                           "Node %s declared down (ForceDown) by %s, who insisted although its "
                           "heartbeat was fresh (last seen %llu s ago): an evacuation may start "
                           "its instances elsewhere",
                           node, by,
                           seen_ago == UINT64_MAX ? 0ULL
                                                  : (unsigned long long)(seen_ago / USEC_PER_SEC));
        else if (overrode)
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "HOSTWARDEN_NODE", node }, { "HOSTWARDEN_INSIST", "yes" }),
                           "Node %s no longer forced down: taken back on the node itself by %s, "
                           "who insisted",
                           node, by);
        else
                log_fields(LOG_WARNING, 0, LOG_FIELDS({ "HOSTWARDEN_NODE", node }),
                           "Node %s %s by %s", node,
                           down ? "declared down (ForceDown)" : "no longer forced down", by);
        (void)sd_bus_emit_signal(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "NodeChanged", "ss", node,
                                 down ? "forced-down" : "up");
        return 0;
}
