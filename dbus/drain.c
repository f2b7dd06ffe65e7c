/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* EvacuateLive's work: disable this node, list its running domains, queue a migration of each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain.h"
#include "errors.h"
#include "history.h"
#include "job.h"
#include "log.h"
#include "migration-internal.h"
#include "node-state.h"
#include "util.h"
#include "virt.h"

/* A running domain to migrate. */
typedef struct DrainDomain {
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *name;
} DrainDomain;

typedef struct Drain {
        char *dest;
        MigrateOptions opts;
        DrainDomain *domains; /* the running domains */
        size_t n_domains;
        char *error;
        uint64_t began; /* usec realtime, for the history */
} Drain;

static void drain_free(Drain *d)
{
        if (!d)
                return;
        free(d->dest);
        for (size_t i = 0; i < d->n_domains; i++)
                free(d->domains[i].name);
        free(d->domains);
        free(d->error);
        free(d);
}

static void drain_work(Manager *m, void *userdata)
{
        Drain *d = userdata;
        virDomainPtr *doms = NULL;
        size_t n = 0;
        char err[512];

        if (virt_list_domains(m->virt, VIR_CONNECT_LIST_DOMAINS_ACTIVE, &doms, &n, err,
                              sizeof(err)) < 0) {
                d->error = strdup(err);
                return;
        }
        d->domains = calloc(n > 0 ? n : 1, sizeof(DrainDomain));
        for (size_t i = 0; d->domains && i < n; i++) {
                DrainDomain *x = &d->domains[d->n_domains];
                const char *name = virDomainGetName(doms[i]);

                if (name && virDomainGetUUIDString(doms[i], x->uuid) == 0 &&
                    (x->name = strdup(name)))
                        d->n_domains++;
        }
        virt_domains_free(doms, n);
}

static void drain_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Drain *d = userdata;
        size_t queued = 0;
        int r;

        if (d->error) {
                history_drain_ended(m, msg, d->dest, 0, d->error, d->began);
                (void)sd_bus_reply_method_errorf(msg, HW_ERROR_LIBVIRT,
                                                 "Cannot list this node's domains: %s", d->error);
                drain_free(d);
                return;
        }
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < d->n_domains; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                const DrainDomain *x = &d->domains[i];
                Migration *mig;
                int k;

                if (migration_busy(m, x->uuid))
                        continue; /* being migrated already: that migration drains it */
                k = migration_create(m, x->uuid, x->uuid, x->name, d->dest, &d->opts, &mig, &e);
                if (k < 0) {
                        log_warning("EvacuateLive: %s cannot be queued: %s", x->uuid,
                                    e.message ? e.message : "error");
                        continue;
                }
                history_caller_of(msg, &mig->caller);
                queued++;
                r = sd_bus_message_append(reply, "o", mig->path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                (void)sd_bus_reply_method_errnof(msg, -r, "Cannot reply: %m");
        log_fields(LOG_WARNING, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_EVACUATION },
                              { "HOSTWARDEN_NODE", m->config->node.name }),
                   "Live evacuation of %zu running domain(s) of this node begins", d->n_domains);
        history_drain_ended(m, msg, d->dest, queued, NULL, d->began);
        migrations_schedule(m);
        drain_free(d);
}

int drain_start(Manager *m, sd_bus_message *msg, const char *dest, const MigrateOptions *opts,
                sd_bus_error *error)
{
        char reason[128], since[64];
        Drain *d;
        int r;

        d = calloc(1, sizeof(Drain));
        if (!d)
                return -ENOMEM;
        d->opts = *opts;
        d->began = now_realtime();
        d->dest = strdup(dest);
        r = d->dest ? 0 : -ENOMEM;
        if (r >= 0) {
                snprintf(reason, sizeof(reason), "evacuating live (EvacuateLive at %s)",
                         format_timestamp_now(since, sizeof(since)));
                r = node_set_disabled(m, true, reason, error);
        }
        if (r >= 0)
                r = job_start(m, msg, drain_work, drain_done, d);
        if (r < 0) {
                drain_free(d);
                return r;
        }
        return 1;
}
