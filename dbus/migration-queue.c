/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Migration objects' lifecycle, the queue ([migration] max_concurrent), the end of a
 * migration (the record and definition move) and Migrate's admission (name → instance). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <libvirt/virterror.h>

#include "deny-list.h"
#include "errors.h"
#include "history.h"
#include "instance-ops.h"
#include "job.h"
#include "log.h"
#include "maintenance-drain.h"
#include "metrics.h"
#include "migration-cold.h"
#include "migration-internal.h"
#include "migration-slots.h"
#include "network-watch.h"
#include "util.h"
#include "virt.h"

static const char *const state_table[_MIGRATION_STATE_MAX] = {
        [MIGRATION_QUEUED] = "queued",   [MIGRATION_PREPARING] = "preparing",
        [MIGRATION_RUNNING] = "running", [MIGRATION_POST_MIGRATING] = "post-migrating",
        [MIGRATION_VERIFY] = "verify",   [MIGRATION_COMPLETED] = "completed",
        [MIGRATION_FAILED] = "failed",   [MIGRATION_ABORTED] = "aborted",
};

const char *migration_state_to_string(MigrationState s)
{
        return s >= 0 && s < _MIGRATION_STATE_MAX ? state_table[s] : "unknown";
}

bool migration_state_is_final(MigrationState s)
{
        return s == MIGRATION_COMPLETED || s == MIGRATION_FAILED || s == MIGRATION_ABORTED;
}

static bool state_is_active(MigrationState s)
{
        return s == MIGRATION_PREPARING || s == MIGRATION_RUNNING || s == MIGRATION_POST_MIGRATING;
}

void migration_info_done(MigrationInfo *i)
{
        free(i->domain_uuid);
        free(i->domain_name);
        free(i->destination);
        free(i->error);
        *i = (MigrationInfo){};
}

void migration_work_free(MigrationWork *w)
{
        if (!w)
                return;
        for (size_t i = 0; i < w->n_candidates; i++) {
                preflight_free(w->candidates[i]);
                free(w->candidate_addresses[i]);
        }
        free(w->candidates);
        free(w->candidate_addresses);
        free(w->persist_xml);
        free(w->a_uuid);
        free(w->a_name);
        free(w->a_dest);
        free(w->a_dest_uri);
        peer_targets_done(&w->a_peers);
        leftovers_done(&w->made);
        net_watch_free(w->net_watch);
        if (w->dom)
                virDomainFree(w->dom);
        if (w->mdom)
                virDomainFree(w->mdom);
        if (w->mconn)
                virConnectClose(w->mconn);
        if (w->conn)
                virConnectClose(w->conn);
        if (w->dconn)
                virConnectClose(w->dconn);
        pthread_mutex_destroy(&w->wait_lock);
        pthread_cond_destroy(&w->wait_cond);
        free(w);
}

MigrationWork *migration_work_new(void)
{
        MigrationWork *w = calloc(1, sizeof(MigrationWork));
        pthread_condattr_t attr;

        if (!w)
                return NULL;
        pthread_mutex_init(&w->wait_lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* the deadlines' clock */
        pthread_cond_init(&w->wait_cond, &attr);
        pthread_condattr_destroy(&attr);
        return w;
}

void migration_live_update(Migration *mig, void (*f)(MigrationInfo *i, void *u), void *u)
{
        pthread_mutex_lock(&mig->lock);
        f(&mig->live, u);
        pthread_mutex_unlock(&mig->lock);
}

static void set_state_cb(MigrationInfo *i, void *u)
{
        i->state = *(MigrationState *)u;
        if (i->state == MIGRATION_RUNNING && i->started == 0)
                i->started = now_realtime();
}

void migration_live_set_state(Migration *mig, MigrationState s)
{
        migration_live_update(mig, set_state_cb, &s);
}

static void set_final_cb(MigrationInfo *i, void *u)
{
        const MigrationWork *w = u;

        i->finished = now_realtime();
        if (w->succeeded) {
                i->state = MIGRATION_COMPLETED;
                i->progress = 100;
        } else {
                i->state = w->aborted ? MIGRATION_ABORTED : MIGRATION_FAILED;
                (void)free_and_strdup(&i->error, w->error[0] ? w->error : "failed");
        }
}

/* The instance record and its definition follow the guest to the destination. */
static void move_ownership(Manager *m, Migration *mig, MigrationWork *w)
{
        const char *uuid = w->chosen ? w->chosen->domain->uuid : w->a_uuid;
        const char *name = w->chosen ? w->chosen->domain->name : w->a_name;
        const char *dest = w->chosen ? w->chosen->dest_name : w->a_dest;
        InstanceRecord rec = {};
        int r = -ESTALE;

        if (!uuid || !dest)
                return; /* adopted, destination unknown: its reconciliation claims it */

        for (unsigned attempt = 0; attempt < 5 && r == -ESTALE; attempt++) {
                _cleanup_free_ char *evacuated_from = NULL;
                InstanceRecord cur = {};
                uint64_t gen = 0;

                r = store_instance_get(m->store, uuid, &cur);
                if (r == -ENOENT)
                        gen = 0;
                else if (r < 0)
                        break;
                else {
                        gen = cur.generation;
                        if (!streq(cur.owner, mig->source))
                                log_warning("Instance %s was recorded as %s's, not this node's; "
                                            "it now runs on %s",
                                            uuid, cur.owner, dest);
                }
                /* Where it was evacuated from stays known: that node must keep denying it
                 * wherever the instance moves next (unless it moves back there). */
                if (cur.evacuated_from && !streq(cur.evacuated_from, dest))
                        evacuated_from = TAKE_PTR(cur.evacuated_from);
                instance_record_done(&cur);
                rec = (InstanceRecord){ .name = (char *)name,
                                        .owner = (char *)dest,
                                        .evacuated_from = evacuated_from,
                                        .time = now_realtime() };
                memcpy(rec.uuid, uuid, sizeof(rec.uuid) - 1);
                r = store_instance_cas(m->store, &rec, gen, NULL);
                if (r == -EEXIST)
                        r = -ESTALE;
        }
        if (r < 0)
                log_error_errno(r,
                                "Migration %s completed but the instance record of %s cannot be "
                                "moved to %s: %m",
                                mig->id, uuid, dest);
        if (w->persist_xml) {
                r = store_definition_put(m->store, uuid, w->persist_xml);
                if (r < 0)
                        log_error_errno(r, "Cannot save the definition of %s: %m", uuid);
        }
        (void)deny_list_sync(m);
}

/* The Abort calls of a migration that has ended: done if the guest stayed here. */
static void answer_aborts(Migration *mig)
{
        for (size_t i = 0; i < mig->n_abort_calls; i++) {
                sd_bus_message *call = mig->abort_calls[i];
                int r;

                if (mig->live.state == MIGRATION_ABORTED || mig->live.state == MIGRATION_FAILED)
                        r = sd_bus_reply_method_return(call, NULL);
                else if (mig->live.state == MIGRATION_COMPLETED)
                        r = sd_bus_reply_method_errorf(
                                call, HW_ERROR_NOT_RUNNING,
                                "Migration %s completed before the abort took effect: the "
                                "guest runs on %s",
                                mig->id, strna(mig->live.destination));
                else
                        r = sd_bus_reply_method_errorf(call, HW_ERROR_NOT_RUNNING,
                                                       "Migration %s is no longer followed: "
                                                       "hostwardend is stopping",
                                                       mig->id);
                if (r < 0)
                        log_full_errno(LOG_DEBUG, r, "Cannot answer an Abort of %s: %m", mig->id);
                sd_bus_message_unref(call);
        }
        free(mig->abort_calls);
        mig->abort_calls = NULL;
        mig->n_abort_calls = 0;
}

/* A finished migration stays listed for KEEP_FINISHED from now. */
void migration_keep_finished(Migration *mig)
{
        (void)sd_event_source_set_time_relative(mig->expire_timer, KEEP_FINISHED);
        (void)sd_event_source_set_enabled(mig->expire_timer, SD_EVENT_ONESHOT);
}

void migration_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        const char *name = w->chosen    ? w->chosen->domain->name
                           : w->adopted ? w->a_name
                                        : mig->domain_arg;
        /* the destination the caller named, when it failed before one was chosen */
        const char *dest = w->chosen               ? w->chosen->dest_name
                           : w->a_dest             ? w->a_dest
                           : mig->live.destination ? mig->live.destination
                                                   : "(none)";

        migration_unreserve(m, w);
        migration_slots_release(m, mig);
        if (w->succeeded)
                move_ownership(m, mig, w);
        migration_live_update(mig, set_final_cb, w);
        history_migration_ended(m, mig);
        if (w->succeeded)
                log_fields(LOG_INFO, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_MIGRATION_COMPLETED },
                                      { "HOSTWARDEN_MIGRATION", mig->id },
                                      { "HOSTWARDEN_DOMAIN", name }, { "HOSTWARDEN_NODE", dest }),
                           "Migration %s of %s to %s completed", mig->id, name, dest);
        else
                log_fields(LOG_ERR, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_MIGRATION_FAILED },
                                      { "HOSTWARDEN_MIGRATION", mig->id },
                                      { "HOSTWARDEN_DOMAIN", name }, { "HOSTWARDEN_NODE", dest }),
                           "Migration %s of %s to %s %s: %s", mig->id, name, dest,
                           w->aborted ? "aborted" : "failed", w->error);
        log_debug("Migration %s: done in the event loop in %llu us", mig->id,
                  (unsigned long long)(now_usec(CLOCK_MONOTONIC) - t0));
        migration_let_go(mig);
        answer_aborts(mig);
        migration_publish_soon(mig);
        migration_keep_finished(mig);
        migrations_schedule(m);
        maintenance_migration_ended(m, mig);
}

static int start(Manager *m, Migration *mig)
{
        int r;

        mig->live.state = MIGRATION_PREPARING;
        metrics_migration_started(m, mig->opts.cold ? "cold" : mig->opts.block ? "block" : "live");
        r = mig->opts.cold ? migration_cold_start(m, mig)
                           : job_start(m, NULL, migration_work, migration_done, mig);
        if (r < 0) {
                mig->live.state = MIGRATION_FAILED;
                mig->live.finished = now_realtime();
                (void)free_and_strdup(&mig->live.error, "Cannot start a worker thread");
                history_migration_ended(m, mig);
                /* it never ran: the instance is free again, and the object expires */
                migration_let_go(mig);
                migration_keep_finished(mig);
        } else
                log_fields(LOG_INFO, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_MIGRATION_STARTED },
                                      { "HOSTWARDEN_MIGRATION", mig->id },
                                      { "HOSTWARDEN_DOMAIN", strna(mig->live.domain_name) }),
                           "Migration %s of %s started", mig->id, strna(mig->live.domain_name));
        migration_publish_soon(mig);
        return r;
}

void migrations_schedule(Manager *m)
{
        unsigned active = 0;
        Migration *oldest;

        for (Migration *x = m->migrations; x; x = x->next)
                if (state_is_active(x->live.state))
                        active++;
        while (active < m->config->migration.max_concurrent) {
                oldest = NULL;
                /* the list is newest first: the last queued one is the oldest */
                for (Migration *x = m->migrations; x; x = x->next)
                        if (x->live.state == MIGRATION_QUEUED)
                                oldest = x;
                if (!oldest)
                        break;
                if (start(m, oldest) >= 0)
                        active++;
        }
}

void migration_unlink(Manager *m, Migration *mig)
{
        for (Migration **p = &m->migrations; *p; p = &(*p)->next)
                if (*p == mig) {
                        *p = mig->next;
                        break;
                }
}

Migration *migration_free(Migration *mig)
{
        if (!mig)
                return NULL;
        answer_aborts(mig);
        migration_let_go(mig); /* a failed creation, or the daemon's stop */
        migration_cold_free(mig);
        sd_bus_slot_unref(mig->slot);
        sd_event_source_disable_unref(mig->publish_timer);
        sd_event_source_disable_unref(mig->expire_timer);
        migration_info_done(&mig->live);
        migration_info_done(&mig->pub);
        pthread_mutex_destroy(&mig->lock);
        free(mig->path);
        free(mig->domain_arg);
        free(mig->source);
        free(mig);
        return NULL;
}

Migration *migration_busy(Manager *m, const char *uuid)
{
        const InstanceOp *op;

        if (!uuid)
                return NULL;
        op = instance_ops_busy(m->instance_ops, uuid, INSTANCE_OP(INSTANCE_OP_MIGRATION));
        return op ? op->owner : NULL;
}

void migration_let_go(Migration *mig)
{
        if (mig->live.domain_uuid)
                instance_ops_release(mig->manager->instance_ops, mig->live.domain_uuid,
                                     INSTANCE_OP_MIGRATION, mig);
        migration_work_free(mig->work);
        mig->work = NULL;
}

/* Busy, naming the migration that has the instance: what the caller can follow or abort. */
int migration_busy_error(sd_bus_error *error, const Migration *x, const char *dom)
{
        if (x->live.state == MIGRATION_VERIFY)
                return sd_bus_error_setf(error, HW_ERROR_BUSY,
                                         "Domain %s is in a cold migration waiting in verify: "
                                         "migration %s (%s); keep it with 'hostwardenctl "
                                         "migration confirm %s' or undo it with 'hostwardenctl "
                                         "migration revert %s'",
                                         dom, x->id, x->path, x->id, x->id);
        return sd_bus_error_setf(error, HW_ERROR_BUSY,
                                 "Domain %s is being migrated already: migration %s (%s, %s, "
                                 "state %s); follow it with 'hostwardenctl migration show %s' or "
                                 "stop it with 'hostwardenctl migration abort %s'",
                                 dom, x->id, x->path, strna(x->live.domain_uuid),
                                 migration_state_to_string(x->live.state), x->id, x->id);
}

void migrations_free(Manager *m)
{
        /* jobs_drain() ran first: no thread uses them any more */
        while (m->migrations) {
                Migration *mig = m->migrations;

                m->migrations = mig->next;
                migration_free(mig);
        }
}

/* A Migration of dom with opts, not published yet. */
int migration_new(Manager *m, const char *dom, const MigrateOptions *opts, Migration **ret)
{
        Migration *mig;
        uint64_t rnd;

        mig = calloc(1, sizeof(Migration));
        if (!mig)
                return -ENOMEM;
        mig->manager = m;
        pthread_mutex_init(&mig->lock, NULL);
        mig->opts = *opts;
        if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
                int r = -errno;

                migration_free(mig);
                return r;
        }
        snprintf(mig->id, sizeof(mig->id), "%016llx", (unsigned long long)rnd);
        mig->created = now_realtime();
        mig->created_monotonic = now_usec(CLOCK_MONOTONIC);
        mig->domain_arg = strdup(dom);
        mig->source = strdup(m->config->node.name);
        if (!mig->domain_arg || !mig->source ||
            asprintf(&mig->path, HW_MIGRATION_PATH_PREFIX "/%s", mig->id) < 0) {
                migration_free(mig);
                return -ENOMEM;
        }
        *ret = mig;
        return 0;
}

/* A queued Migration of dom (as the caller named it; the instance uuid, name) to dest ("" =
 * hostwarden chooses) with opts, announced with MigrationNew; the queue is not run (the caller
 * calls migrations_schedule()). Domain and DomainName are known from now on: the busy check
 * and a client that reads them at once see the instance. */
int migration_create(Manager *m, const char *dom, const char *uuid, const char *name,
                     const char *dest, const MigrateOptions *opts, Migration **ret,
                     sd_bus_error *error)
{
        Migration *mig;
        int r;

        r = migration_new(m, dom, opts, &mig);
        if (r < 0)
                return r;
        r = migration_prepare_work(m, mig, uuid, dest, error);
        if (r < 0)
                goto fail;
        if (free_and_strdup(&mig->live.domain_uuid, uuid) < 0 ||
            free_and_strdup(&mig->live.domain_name, name) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        if (!isempty(dest) && free_and_strdup(&mig->live.destination, dest) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        mig->dest_chosen_by_us = isempty(dest);
        r = migration_publish(m, mig, MIGRATION_QUEUED);
        if (r < 0)
                goto fail;
        *ret = mig;
        return 0;
fail:
        migration_free(mig);
        return r;
}

/* Migrate, authorized: the domain is looked up (a worker: libvirt), so that the busy check
 * and the Migration object know the instance, whichever name or UUID the caller used. */
typedef struct MigrateCall {
        char *dom, *dest;
        MigrateOptions opts;
        /* the worker's */
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *name;
        const char *error_name; /* NULL: found */
        char error_message[768];
} MigrateCall;

static void migrate_call_free(MigrateCall *c)
{
        if (!c)
                return;
        free(c->dom);
        free(c->dest);
        free(c->name);
        free(c);
}

static void resolve_work(Manager *m, void *userdata)
{
        MigrateCall *c = userdata;
        virConnectPtr conn = NULL;
        virDomainPtr d = NULL;
        char err[512];
        const char *name;

        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                c->error_name = HW_ERROR_LIBVIRT;
                snprintf(c->error_message, sizeof(c->error_message),
                         "Cannot connect to libvirt at %s: %s (is libvirtd running?)",
                         virt_uri(m->virt), err);
                return;
        }
        if (uuid_is_valid(c->dom))
                d = virDomainLookupByUUIDString(conn, c->dom);
        if (!d)
                d = virDomainLookupByName(conn, c->dom);
        if (!d) {
                c->error_name = HW_ERROR_NO_SUCH_DOMAIN;
                snprintf(c->error_message, sizeof(c->error_message),
                         "No domain '%s' on %s: ListDomains() shows this node's domains", c->dom,
                         m->config->node.name);
        } else if (virDomainGetUUIDString(d, c->uuid) < 0 || !(name = virDomainGetName(d)) ||
                   !(c->name = strdup(name))) {
                c->error_name = HW_ERROR_LIBVIRT;
                snprintf(c->error_message, sizeof(c->error_message),
                         "Cannot read the UUID and name of domain '%s': %s", c->dom,
                         virt_last_error("unknown error"));
        }
        if (d)
                virDomainFree(d);
        virConnectClose(conn);
}

static void resolve_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        MigrateCall *c = userdata;
        Migration *mig, *busy;
        int r;

        if (c->error_name) {
                (void)sd_bus_reply_method_errorf(msg, c->error_name, "%s", c->error_message);
                migrate_call_free(c);
                return;
        }
        /* in the event loop, like the creation below: two calls for one instance cannot both
         * pass, whatever they named it */
        busy = migration_busy(m, c->uuid);
        if (busy)
                r = migration_busy_error(&error, busy, c->dom);
        else
                r = migration_create(m, c->dom, c->uuid, c->name, c->dest, &c->opts, &mig, &error);
        if (r < 0) {
                if (sd_bus_error_is_set(&error))
                        (void)sd_bus_reply_method_error(msg, &error);
                else
                        (void)sd_bus_reply_method_errnof(msg, -r, "Cannot queue the migration: %m");
        } else {
                history_caller_of(msg, &mig->caller);
                r = sd_bus_reply_method_return(msg, "o", mig->path);
                if (r < 0)
                        log_warning_errno(r, "Cannot answer Migrate: %m");
                migrations_schedule(m);
        }
        migrate_call_free(c);
}

Migration *migration_by_id(Manager *m, const char *id)
{
        for (Migration *x = m->migrations; x; x = x->next)
                if (streq(x->id, id))
                        return x;
        return NULL;
}

Migration *migration_find_unfinished(Manager *m, const char *dom)
{
        for (Migration *x = m->migrations; x; x = x->next)
                if (!migration_state_is_final(x->live.state) &&
                    (streq_ptr(x->live.domain_uuid, dom) || streq_ptr(x->live.domain_name, dom)))
                        return x;
        return NULL;
}

int migration_request(Manager *m, sd_bus_message *msg, const char *dom, const char *dest,
                      const MigrateOptions *opts)
{
        MigrateCall *c;
        int r;

        c = calloc(1, sizeof(MigrateCall));
        if (!c)
                return -ENOMEM;
        c->opts = *opts;
        c->dom = strdup(dom);
        c->dest = strdup(dest);
        r = c->dom && c->dest ? 0 : -ENOMEM;
        if (r >= 0)
                r = job_start(m, msg, resolve_work, resolve_done, c);
        if (r < 0) {
                migrate_call_free(c);
                return r;
        }
        return 1;
}
