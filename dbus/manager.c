/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diskinfo.h"
#include "errors.h"
#include "fw.h"
#include "job.h"
#include "call-limits.h"
#include "migration.h"
#include "reconcile.h"
#include "log.h"
#include "manager.h"
#include "paths.h"
#include "placement.h"
#include "polkit.h"
#include "runtime.h"
#include "store-attach.h"
#include "virt.h"
#include "window-keeper.h"

#include <dirent.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

/*
 * Read-only methods that run a worker thread (CheckMigration, ListDomains, CheckNode): a
 * client that waits for its answers, as hostwardenctl and monitoring do, never has more
 * than a few at once; libvirtd serves 5 calls per client and 20 workers by default, and
 * every one of these threads holds a libvirt connection (docs/daemon.md, "Limits").
 */
static const LimitCaps WORK_LIMITS = { .per_sender = 4, .per_uid = 8, .total = 16, .root = 64 };
/* Mutating calls of unprivileged callers waiting for polkit, which may be minutes for an
 * admin typing a password; dbus-daemon lets this daemon wait for 128 replies at most. Root
 * never asks polkit. */
static const LimitCaps AUTH_LIMITS = { .per_sender = 8, .per_uid = 16, .total = 64, .root = 0 };

int manager_new(Manager **ret)
{
        Manager *m;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        r = sd_event_default(&m->event);
        if (r < 0) {
                free(m);
                return r;
        }
        m->job_pipe[0] = m->job_pipe[1] = -EBADF;
        r = limiter_new("worker threads", &WORK_LIMITS, &m->work_limits);
        if (r >= 0)
                r = limiter_new("pending authorizations", &AUTH_LIMITS, &m->auth_limits);
        if (r >= 0)
                r = reservations_new(&m->reservations);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        window_keeper_free(m); /* before the drain: its last pass must not start another */
        jobs_drain(m);         /* their replies go out before the bus is closed */
        reconcile_free(m);
        store_attach_free(m);
        strv_free(m->rebuilding);
        migrations_free(m);
        reservations_free(m->reservations);
        virt_free(m->virt);
        auth_queries_free(m);
        sd_event_source_disable_unref(m->heartbeat);
        instance_record_array_free(m->instances_cache, m->n_instances_cache);
        store_free(m->store);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        config_free(m->config);
        limiter_free(m->work_limits); /* after the jobs and queries that hold places */
        limiter_free(m->auth_limits);
        free(m);
        return NULL;
}

int manager_load_config(Manager *m, sd_bus_error *error)
{
        ConfigDiags diags = { 0 };
        Config *c = NULL;
        char *all = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        r = config_load(hw_conf_dir(), &diags, &c);
        f = open_memstream(&all, &size);
        for (size_t i = 0; i < diags.n; i++) {
                char buf[1024];
                const ConfigDiag *d = &diags.items[i];

                config_diag_format(d, buf, sizeof(buf));
                log_fields(d->level == CONFIG_DIAG_ERROR ? LOG_ERR : LOG_WARNING, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_CONFIG_BAD }), "%s", buf);
                if (f && d->level == CONFIG_DIAG_ERROR)
                        fprintf(f, "%s%s", ftell(f) > 0 ? "; " : "", buf);
        }
        if (f)
                fclose(f);
        config_diags_clear(&diags);
        if (r < 0) {
                if (r == -EINVAL)
                        sd_bus_error_setf(error, HW_ERROR_CONFIG_INVALID,
                                          "The configuration in %s has errors, nothing changed: %s",
                                          hw_conf_dir(), all ? all : "");
                free(all);
                return r;
        }
        free(all);
        config_free(m->config);
        m->config = c;
        return 0;
}

const char *firewall_state_of(bool enable, const FwSpec *spec)
{
        _cleanup_(fw_closep) FwContext *fw = NULL;
        uint64_t digest = 0;
        int r;

        if (!enable)
                return "disabled";
        if (!fw_spec_active(spec))
                return "unconfigured";
        if (fw_open(&fw) < 0)
                return "unknown";
        r = fw_table_digest(fw, &digest);
        if (r < 0)
                return "unknown";
        if (r == 0)
                return "absent";
        return digest == fw_spec_digest(spec) ? "active" : "stale";
}

const char *manager_firewall_state(Manager *m)
{
        FwSpec spec;

        fw_spec_from_config(m->config, &spec);
        return firewall_state_of(m->config->firewall.enable, &spec);
}

int manager_apply_firewall(Manager *m, sd_bus_error *error)
{
        _cleanup_(fw_closep) FwContext *fw = NULL;
        bool changed = false;
        FwSpec spec;
        int r;

        if (!m->config->firewall.enable)
                return 0;
        fw_spec_from_config(m->config, &spec);
        r = fw_open(&fw);
        if (r >= 0)
                r = fw_spec_active(&spec) ? fw_apply(fw, &spec, &changed) : fw_remove(fw);
        if (r >= 0 && fw_spec_active(&spec))
                r = fw_blobs_write(hw_runtime_dir(), &spec);
        if (r < 0)
                return sd_bus_error_setf(error, HW_ERROR_FIREWALL,
                                         "Cannot apply the firewall table: %s", strerror(-r));
        if (changed)
                log_info("Firewall table inet %s applied", FW_TABLE);
        return 0;
}

int manager_startup(Manager *m)
{
        const char *uri = getenv("HOSTWARDEN_LIBVIRT_URI");
        int r;

        r = virt_new(uri && *uri ? uri : "qemu:///system", &m->virt);
        if (r < 0)
                return r;
        r = jobs_setup(m);
        if (r < 0)
                return r;
        r = reconcile_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up reconciliation: %m");
        r = window_keeper_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the migration window's keeper: %m");
        r = sd_bus_default_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_add_object_vtable(m->bus, NULL, HW_BUS_PATH, HW_NODE_INTERFACE, node_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to export %s: %m", HW_NODE_INTERFACE);
        r = sd_bus_request_name(m->bus, HW_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to take the bus name %s: %m", HW_BUS_NAME);
        return 0;
}

/* Whether this node must refuse to start instance rec: another node owns it, or it was
 * deleted after it was evacuated from here (any other node may define it again). */
static bool denied_here(Manager *m, const InstanceRecord *rec)
{
        const char *self = m->config->node.name;

        return rec->deleted ? streq_ptr(rec->evacuated_from, self) : !streq(rec->owner, self);
}

int manager_sync_deny_list_from(Manager *m, const InstanceRecord *inst, size_t n)
{
        _cleanup_free_ char *deny_dir = NULL;
        const char *rt = hw_runtime_dir();
        struct dirent *de;
        DIR *d;
        int r;

        /* an instance another node owns must not start here */
        for (size_t i = 0; i < n; i++) {
                RuntimeRecord cur = { NULL }, rec = { NULL };
                char since[64], gen[32];
                if (!denied_here(m, &inst[i])) {
                        (void)runtime_deny_remove(rt, inst[i].uuid);
                        continue;
                }
                snprintf(gen, sizeof(gen), "%llu", (unsigned long long)inst[i].generation);
                if (runtime_deny_lookup(rt, inst[i].uuid, &cur) > 0 &&
                    streq_ptr(runtime_record_get(&cur, "generation"), gen)) {
                        runtime_record_done(&cur);
                        continue; /* up to date */
                }
                runtime_record_done(&cur);
                (void)runtime_record_set(&rec, "owner", inst[i].owner);
                (void)runtime_record_set(&rec, "since",
                                         format_realtime(inst[i].time, since, sizeof(since)));
                if (inst[i].evacuated_from)
                        (void)runtime_record_set(&rec, "evacuated_from", inst[i].evacuated_from);
                if (inst[i].deleted)
                        (void)runtime_record_set(&rec, "deleted", "yes");
                if (inst[i].name)
                        (void)runtime_record_set(&rec, "name", inst[i].name);
                (void)runtime_record_set(&rec, "generation", gen);
                r = runtime_deny_add(rt, inst[i].uuid, &rec);
                runtime_record_done(&rec);
                if (r < 0)
                        log_warning_errno(r, "Failed to deny %s here: %m", inst[i].uuid);
                else
                        log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "HOSTWARDEN_DOMAIN", inst[i].uuid }),
                                   "Instance %s (%s) %s %s: it may not start here", inst[i].uuid,
                                   inst[i].name ? inst[i].name : "?",
                                   inst[i].deleted ? "was deleted on node" : "is owned by node",
                                   inst[i].owner);
        }

        /* entries whose record is gone or came back to this node */
        if (asprintf(&deny_dir, "%s/deny", rt) < 0)
                return -ENOMEM;
        d = opendir(deny_dir);
        while (d && (de = readdir(d))) {
                bool keep = false;

                if (!uuid_is_valid(de->d_name))
                        continue;
                for (size_t i = 0; i < n && !keep; i++)
                        keep = streq(inst[i].uuid, de->d_name) && denied_here(m, &inst[i]);
                if (!keep)
                        (void)runtime_deny_remove(rt, de->d_name);
        }
        if (d)
                closedir(d);
        store_attach_deny_list_synced(m);
        return 0;
}

int manager_sync_deny_list(Manager *m)
{
        InstanceRecord *inst = NULL;
        size_t n = 0;
        int r;

        r = store_instance_list(m->store, &inst, &n);
        if (r < 0)
                return r;
        r = manager_sync_deny_list_from(m, inst, n);
        instance_record_array_free(inst, n);
        return r;
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

int manager_sync_runtime(Manager *m)
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

static int notify_done(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        if (si->si_code != CLD_EXITED || si->si_status != 0)
                log_warning("notify.d script %s failed", (char *)userdata);
        free(userdata);
        sd_event_source_unref(s);
        return 0;
}

void manager_run_notify(Manager *m, const char *event, const char *state, const char *reason)
{
        _cleanup_free_ char *dir = NULL;
        struct dirent **entries = NULL;
        int n;

        if (asprintf(&dir, "%s/notify.d", hw_conf_dir()) < 0)
                return;
        n = scandir(dir, &entries, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
                sd_event_source *child = NULL;
                pid_t pid;

                if (entries[i]->d_name[0] == '.' ||
                    asprintf(&path, "%s/%s", dir, entries[i]->d_name) < 0 ||
                    access(path, X_OK) < 0) {
                        free(entries[i]);
                        continue;
                }
                free(entries[i]);
                if (asprintf(&e1, "HOSTWARDEN_EVENT=%s", event) < 0 ||
                    asprintf(&e2, "HOSTWARDEN_NODE=%s", m->config->node.name) < 0 ||
                    asprintf(&e3, "HOSTWARDEN_STATE=%s", state) < 0 ||
                    asprintf(&e4, "HOSTWARDEN_REASON=%s", reason ? reason : "") < 0)
                        continue;
                char *argv[] = { path, NULL };
                char *envp[] = {
                        e1, e2, e3, e4, (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL
                };
                if (posix_spawn(&pid, path, NULL, NULL, argv, envp) != 0) {
                        log_warning("Cannot run %s", path);
                        continue;
                }
                if (sd_event_add_child(m->event, &child, pid, WEXITED, notify_done, strdup(path)) <
                    0)
                        log_warning("Cannot watch %s", path);
        }
        free(entries);
}

const char *manager_node_state(Manager *m, const NodeRecord *rec, uint64_t now)
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
