/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager: what one hostwardend owns (DESIGN.md §7), its configuration, and its start on
 * the bus. What it does lives in the files named in manager.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "call-limits.h"
#include "console-priority.h"
#include "errors.h"
#include "ha-restart.h"
#include "instance-ops.h"
#include "job.h"
#include "log.h"
#include "maintenance-dbus.h"
#include "maintenance-drain.h"
#include "manager.h"
#include "metrics.h"
#include "migration.h"
#include "paths.h"
#include "placement.h"
#include "polkit.h"
#include "reconcile.h"
#include "migration-slots.h"
#include "recovery.h"
#include "self-fence.h"
#include "store-attach.h"
#include "virt.h"
#include "window-keeper.h"

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
        if (r >= 0)
                r = instance_ops_new(&m->instance_ops);
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
        self_fence_free(m);    /* first: it withdraws the declaration from the store */
        window_keeper_free(m); /* before the drain: its last pass must not start another */
        ha_restart_free(m);    /* before the drain too: no restart starts after it */
        /* before the drain too: a pass that ends starts no other */
        console_priority_free(m);
        /* before the drain too: its shutdowns stop waiting */
        maintenance_stop(m);
        jobs_drain(m);           /* their replies go out before the bus is closed */
        recovery_free(m);        /* after the jobs, whose ends it hears of */
        migration_slots_free(m); /* after the jobs: workers wait on it */
        reconcile_free(m);
        store_attach_free(m);
        metrics_free(m); /* before the migrations it counts */
        migrations_free(m);
        maintenance_free(m);
        reservations_free(m->reservations);
        instance_ops_free(m->instance_ops); /* after those that hold claims in it */
        virt_free(m->virt);
        auth_queries_free(m);
        sd_event_source_disable_unref(m->heartbeat);
        instance_record_array_free(m->instances_cache, m->n_instances_cache);
        history_record_array_free(m->history_cache, m->n_history_cache);
        store_free(m->store);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        config_free(m->config);
        strv_free(m->config_warnings);
        limiter_free(m->work_limits); /* after the jobs and queries that hold places */
        limiter_free(m->auth_limits);
        free(m);
        return NULL;
}

int manager_load_config(Manager *m, sd_bus_error *error)
{
        ConfigDiags diags = { 0 };
        _cleanup_strv_free_ char **warnings = NULL;
        bool oom = false;
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
                /* kept only when the configuration is taken (below) */
                if (d->level == CONFIG_DIAG_WARNING && strv_extend(&warnings, buf) < 0)
                        oom = true;
                log_fields(d->level == CONFIG_DIAG_ERROR ? LOG_ERR : LOG_WARNING, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_CONFIG_BAD }), "%s", buf);
                if (f && d->level == CONFIG_DIAG_ERROR)
                        fprintf(f, "%s%s", ftell(f) > 0 ? "; " : "", buf);
        }
        if (f)
                fclose(f);
        config_diags_clear(&diags);
        if (r >= 0 && oom) {
                c = config_free(c);
                r = -ENOMEM;
        }
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
        strv_free(m->config_warnings);
        m->config_warnings = TAKE_PTR(warnings);
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
        r = ha_restart_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the restart of crashed guests: %m");
        r = metrics_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the metrics: %m");
        r = sd_bus_default_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_add_object_vtable(m->bus, NULL, HW_BUS_PATH, HW_NODE_INTERFACE, node_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to export %s: %m", HW_NODE_INTERFACE);
        r = maintenance_setup(m);
        if (r < 0)
                return r;
        r = sd_bus_request_name(m->bus, HW_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to take the bus name %s: %m", HW_BUS_NAME);
        return 0;
}
