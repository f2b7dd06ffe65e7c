/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A crashed guest moved to another node (ha-relocate.h). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ha-relocate.h"
#include "job.h"
#include "log.h"
#include "migrate-opts.h"
#include "migration-cold.h"
#include "migration-internal.h"
#include "migration.h"
#include "util.h"
#include "virt.h"

/* How often the cold migration's state is looked at; how long the destination's hook may
 * refuse the start (its hostwardend has not read that the record moved there: a heartbeat) */
#define RELOCATE_POLL          (500 * USEC_PER_MSEC)
#define RELOCATE_START_TIMEOUT (60 * USEC_PER_SEC)

struct HaRelocation {
        Manager *manager;
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *name;
        char id[17]; /* the cold migration's */
        char *dest;
        bool confirmed;
        struct StartThere *starting; /* its start on dest, under way */
        sd_event_source *timer;
        HaRelocateDone done;
        void *userdata;
};

/* The start on the destination, in a worker. */
typedef struct StartThere StartThere;
struct StartThere {
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *uri;
        char error[512]; /* "": started */
        HaRelocation *r; /* NULL once the relocation was freed meanwhile */
};

HaRelocation *ha_relocation_free(HaRelocation *r)
{
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->timer);
        if (r->starting) /* its worker's done() finds nobody to tell */
                r->starting->r = NULL;
        free(r->name);
        free(r->dest);
        free(r);
        return NULL;
}

static void finish(HaRelocation *r, const char *error)
{
        r->timer = sd_event_source_disable_unref(r->timer);
        /* done() may free r */
        r->done(r->manager, r->uuid, r->dest, error, r->userdata);
}

static void start_work(Manager *m, void *userdata)
{
        StartThere *s = userdata;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + RELOCATE_START_TIMEOUT;
        virConnectPtr conn;
        virDomainPtr d;

        conn = virConnectOpen(s->uri);
        if (!conn) {
                snprintf(s->error, sizeof(s->error), "cannot connect to %s: %s", s->uri,
                         virt_last_error("unknown error"));
                return;
        }
        d = virDomainLookupByUUIDString(conn, s->uuid);
        if (!d)
                snprintf(s->error, sizeof(s->error), "it is not defined there: %s",
                         virt_last_error("unknown error"));
        /* the hook there refuses the start until its hostwardend read that the record moved
         * there (a heartbeat at most), as the land step of a cold migration knows */
        while (d && virDomainCreate(d) < 0) {
                const char *e = virt_last_error("unknown error");
                struct timespec pause = { .tv_nsec = 250 * 1000 * 1000 };

                if (!strstr(e, "records it as node") || now_usec(CLOCK_MONOTONIC) > deadline) {
                        snprintf(s->error, sizeof(s->error), "cannot start it there: %s", e);
                        break;
                }
                nanosleep(&pause, NULL);
        }
        if (d)
                virDomainFree(d);
        virConnectClose(conn);
}

static void start_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        StartThere *s = userdata;
        HaRelocation *r = s->r;

        if (r) {
                r->starting = NULL;
                finish(r, s->error[0] ? s->error : NULL);
        }
        free(s->uri);
        free(s);
}

static int start_there(HaRelocation *r)
{
        const ConfigPeer *peer = config_find_peer(r->manager->config, r->dest);
        StartThere *s;
        int k;

        if (!peer || !peer->libvirt_uri)
                return -ENOENT;
        s = calloc(1, sizeof(StartThere));
        if (!s)
                return -ENOMEM;
        snprintf(s->uuid, sizeof(s->uuid), "%s", r->uuid);
        s->uri = strdup(peer->libvirt_uri);
        s->r = r;
        k = s->uri ? job_start(r->manager, NULL, start_work, start_done, s) : -ENOMEM;
        if (k < 0) {
                free(s->uri);
                free(s);
                return k;
        }
        r->starting = s;
        return 0;
}

/* The cold migration, followed: verify is confirmed at once; once completed, the start. */
static int poll_cb(sd_event_source *src, uint64_t usec, void *userdata)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        HaRelocation *r = userdata;
        Migration *mig = migration_by_id(r->manager, r->id);
        _cleanup_free_ char *why = NULL, *dest = NULL;
        MigrationState state;
        int k;

        if (!mig)
                return finish(r, "its cold migration is gone"), 0;
        pthread_mutex_lock(&mig->lock);
        state = mig->live.state;
        why = mig->live.error ? strdup(mig->live.error) : NULL;
        dest = mig->live.destination ? strdup(mig->live.destination) : NULL;
        pthread_mutex_unlock(&mig->lock);
        if (dest && !r->dest)
                r->dest = TAKE_PTR(dest);

        if (state == MIGRATION_VERIFY && !r->confirmed &&
            migration_cold_check(mig, "Confirm", &error) >= 0) {
                r->confirmed = true;
                (void)migration_cold_confirm(mig, NULL);
        } else if (state == MIGRATION_COMPLETED) {
                r->timer = sd_event_source_disable_unref(r->timer);
                k = r->dest ? start_there(r) : -ENOENT;
                if (k < 0)
                        finish(r, "cannot start it on its destination");
                return 0;
        } else if (migration_state_is_final(state))
                return finish(r, why ? why : "its cold migration failed"), 0;
        (void)sd_event_source_set_time_relative(src, RELOCATE_POLL);
        (void)sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        return 0;
}

int ha_relocate_start(Manager *m, const char *uuid, const char *name, HaRelocateDone done,
                      void *userdata, HaRelocation **ret, char **error)
{
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        HaRelocation *r;
        MigrateOptions opts;
        Migration *mig;
        int k;

        if (migration_busy(m, uuid)) {
                if (error)
                        *error = strdup("a migration of it is under way");
                return -EBUSY;
        }
        r = calloc(1, sizeof(HaRelocation));
        if (!r)
                return -ENOMEM;
        r->manager = m;
        r->done = done;
        r->userdata = userdata;
        snprintf(r->uuid, sizeof(r->uuid), "%s", uuid);
        r->name = strdup(name);
        if (!r->name) {
                ha_relocation_free(r);
                return -ENOMEM;
        }
        /* MigrateCold's options with no caller's: [migration]'s defaults, no live options */
        migrate_options_defaults(m->config, &opts);
        opts.cold = true;
        opts.block = opts.post_copy = opts.auto_converge = opts.tls = false;
        opts.shutdown_timeout = m->config->migration.shutdown_timeout;
        k = migration_create(m, name, uuid, name, "", &opts, &mig, &e);
        if (k < 0) {
                if (error)
                        *error = strdup(e.message ? e.message : strerror(-k));
                ha_relocation_free(r);
                return k;
        }
        memcpy(r->id, mig->id, sizeof(r->id));
        migrations_schedule(m);
        k = sd_event_add_time_relative(m->event, &r->timer, CLOCK_MONOTONIC, RELOCATE_POLL, 0,
                                       poll_cb, r);
        if (k < 0) {
                /* the migration goes on without us: it is the operator's (ListMigrations) */
                if (error)
                        *error = strdup("cannot follow its cold migration");
                ha_relocation_free(r);
                return k;
        }
        *ret = r;
        return 0;
}
