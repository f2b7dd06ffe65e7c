/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The history of operations (history.h, docs/history-and-archiving.md): the record each
 * ended operation leaves in the store, GetHistory(s dom, t since_usec) and Archive(b dry_run).
 *
 * Records are written in the event loop when an operation ends, like the other writes that
 * end an operation (an instance record's move). A record that cannot be written is logged
 * whole instead, so that the journal keeps what the store could not; the operation's own
 * outcome does not depend on it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "archive.h"
#include "errors.h"
#include "history.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "migration.h"
#include "rebuild.h"
#include "store-attach.h"
#include "util.h"

/* a since_usec later than now by more than this is a unit mistake (nanoseconds for
 * microseconds), not a question */
#define SINCE_FUTURE_SLACK USEC_PER_DAY
#define DOMAIN_ARG_MAX     256U
/* GetHistory is read-only, anybody's to call, and monitoring may poll it: at most one
 * listing of the store per HISTORY_MAX_AGE (this node's own records are seen at once) */
#define HISTORY_MAX_AGE (1 * USEC_PER_SEC)

void history_caller_of(sd_bus_message *msg, HistoryCaller *ret)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = msg ? sd_bus_message_get_sender(msg) : NULL;
        HistoryCaller c = {};
        uid_t uid;

        if (sender) {
                snprintf(c.name, sizeof(c.name), "%s", sender);
                if (sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT,
                                              &creds) >= 0 &&
                    sd_bus_creds_get_euid(creds, &uid) >= 0) {
                        c.known = true;
                        c.uid = (uint32_t)uid;
                }
        }
        *ret = c;
}

/* A text for a record's line: what the store refuses (newlines, other control characters)
 * becomes a blank, and it is cut at 1000 characters. */
static char *one_line(const char *s)
{
        char *t;

        if (!s)
                return NULL;
        t = strndup(s, 1000);
        for (char *p = t; p && *p; p++)
                if (iscntrl((unsigned char)*p))
                        *p = ' ';
        return t;
}

/* A host name for a record, or NULL (a name the store would refuse is not a node's). */
static const char *node_or_null(const char *s)
{
        return s && hostname_is_valid(s) ? s : NULL;
}

/* Writes h (id made here from tag, or at random), or logs it whole. */
static void history_write(Manager *m, HistoryRecord *h, const char *tag)
{
        _cleanup_free_ char *id = NULL, *error = one_line(h->error);
        int r;

        h->node = m->config->node.name;
        h->error = error;
        h->source = (char *)node_or_null(h->source);
        h->destination = (char *)node_or_null(h->destination);
        if (h->finished < h->started)
                h->finished = h->started;
        r = history_id_new(h->node, h->started, tag, &id);
        h->id = id;
        if (r >= 0 && !m->store)
                r = -EHOSTDOWN;
        if (r >= 0)
                r = store_history_add(m->store, h);
        m->history_cache_valid = false;
        if (r == -EEXIST && tag) {
                /* a tag of the same start used before: the record keeps its own, random */
                free(id);
                id = NULL;
                r = history_id_new(h->node, h->started, NULL, &id);
                h->id = id;
                if (r >= 0)
                        r = store_history_add(m->store, h);
        }
        if (r < 0)
                log_warning_errno(
                        r,
                        "Cannot record in the history: %s %s of %s from %s to %s, %s%s%s "
                        "(started %llu, finished %llu, uid %lld): %m",
                        h->kind, strempty(h->mode), strna(h->domain_name), strna(h->source),
                        strna(h->destination), h->result, h->error ? ": " : "", strempty(h->error),
                        (unsigned long long)h->started, (unsigned long long)h->finished,
                        h->caller_uid == HISTORY_UID_UNKNOWN ? -1LL : (long long)h->caller_uid);
        else
                log_debug("History record %s written", h->id);
        metrics_operation_ended(m, h); /* counted whether or not the store took it */
}

static void set_caller(HistoryRecord *h, const HistoryCaller *c)
{
        h->caller_uid = c->known ? c->uid : HISTORY_UID_UNKNOWN;
        h->caller = c->name[0] ? (char *)c->name : NULL;
}

/* The Mode property's name of a migration (one place for it: cold joins here). */
static const char *migration_mode(const Migration *mig)
{
        return mig->opts.cold ? "cold" : mig->opts.block ? "block" : "live";
}

void history_migration_ended(Manager *m, const Migration *mig)
{
        const MigrationInfo *i = &mig->live;
        HistoryRecord h = {
                .kind = (char *)"migration",
                .mode = (char *)migration_mode(mig),
                .domain = i->domain_uuid,
                .domain_name = i->domain_name,
                .source = mig->source,
                .destination = i->destination,
                .result = (char *)migration_state_to_string(i->state),
                .error = i->state == MIGRATION_COMPLETED ? NULL : i->error,
                .started = mig->created,
                .finished = i->finished,
                .downtime = i->downtime * USEC_PER_MSEC,
                .bytes = i->memory_processed + i->disk_processed,
        };
        _cleanup_free_ char *domain = NULL;

        /* lower case, as the store keeps UUIDs */
        if (h.domain && (domain = strdup(h.domain)))
                for (char *p = domain; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
        h.domain = domain && uuid_is_valid(domain) ? domain : NULL;
        set_caller(&h, &mig->caller);
        history_write(m, &h, mig->id);
}

void history_rebuild_ended(Manager *m, sd_bus_message *msg, const Rebuild *r)
{
        HistoryCaller c;
        HistoryRecord h = {
                .kind = (char *)"rebuild",
                .mode = (char *)(r->automatic ? "automatic"
                                 : r->resumed ? "resumed"
                                              : NULL),
                .domain = uuid_is_valid(r->uuid) ? (char *)r->uuid : NULL,
                .domain_name = r->name,
                .source = r->source,
                .destination = m->config->node.name,
                .result = (char *)(r->started   ? "rebuilt"
                                   : r->claimed ? "failed"
                                                : "refused"),
                .error = r->started ? NULL : r->message,
                .started = r->began,
                .finished = now_realtime(),
        };
        _cleanup_free_ char *domain = h.domain ? strdup(h.domain) : NULL;

        for (char *p = domain; p && *p; p++)
                *p = (char)tolower((unsigned char)*p);
        h.domain = domain;
        history_caller_of(msg, &c);
        set_caller(&h, &c);
        history_write(m, &h, NULL);
}

void history_drain_ended(Manager *m, sd_bus_message *msg, const char *dest, size_t n,
                         const char *error, uint64_t began)
{
        _cleanup_free_ char *queued = NULL;
        HistoryCaller c;
        HistoryRecord h = {
                .kind = (char *)"drain",
                .source = m->config->node.name,
                .destination = isempty(dest) ? NULL : (char *)dest,
                .result = (char *)(error ? "failed" : "queued"),
                .error = (char *)error,
                .started = began,
                .finished = now_realtime(),
        };

        /* how many migrations it queued: each leaves its own record when it ends */
        if (!error && asprintf(&queued, "%zu-migrations", n) >= 0)
                h.mode = queued;
        history_caller_of(msg, &c);
        set_caller(&h, &c);
        history_write(m, &h, NULL);
}

void history_fence_ended(Manager *m, sd_bus_message *msg, const char *node, const char *action,
                         const char *power, const char *error, uint64_t began)
{
        HistoryCaller c;
        HistoryRecord h = {
                .kind = (char *)"fence",
                .mode = (char *)action,
                .source = m->config->node.name,
                .destination = (char *)node,
                .result = (char *)(error ? "failed" : power),
                .error = (char *)error,
                .started = began,
                .finished = now_realtime(),
        };

        history_caller_of(msg, &c);
        set_caller(&h, &c);
        history_write(m, &h, NULL);
}

void history_restart_ended(Manager *m, const char *uuid, const char *name, const char *dest,
                           const char *result, const char *error, uint64_t began)
{
        _cleanup_free_ char *domain = uuid_is_valid(uuid) ? strdup(uuid) : NULL;
        HistoryRecord h = {
                .kind = (char *)"restart",
                .domain_name = (char *)name,
                .source = m->config->node.name,
                .destination = dest ? (char *)dest : m->config->node.name,
                .result = (char *)result,
                .error = (char *)error,
                .caller_uid = HISTORY_UID_UNKNOWN, /* nobody asked: [recovery] did */
                .started = began,
                .finished = now_realtime(),
        };

        for (char *p = domain; p && *p; p++)
                *p = (char)tolower((unsigned char)*p);
        h.domain = domain;
        history_write(m, &h, NULL);
}

/* ---- GetHistory ----------------------------------------------------------------------- */

/* The history as listed at most HISTORY_MAX_AGE ago. */
static int history_cached(Manager *m, const HistoryRecord **ret, size_t *ret_n)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (!m->history_cache_valid || now >= m->history_cache_time + HISTORY_MAX_AGE) {
                HistoryRecord *h = NULL;
                size_t n = 0;
                int r;

                r = store_history_list(m->store, &h, &n);
                if (r < 0)
                        return r;
                history_record_array_free(m->history_cache, m->n_history_cache);
                m->history_cache = h;
                m->n_history_cache = n;
                m->history_cache_time = now;
                m->history_cache_valid = true;
        }
        *ret = m->history_cache;
        *ret_n = m->n_history_cache;
        return 0;
}

static bool record_matches(const HistoryRecord *h, const char *dom, uint64_t since)
{
        if (h->finished < since)
                return false;
        return isempty(dom) || (h->domain && strcasecmp(h->domain, dom) == 0) ||
               streq_ptr(h->domain_name, dom);
}

int history_method_get(Manager *m, sd_bus_message *msg, const char *dom, uint64_t since,
                       sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t now = now_realtime();
        const HistoryRecord *h = NULL;
        size_t n = 0;
        int r;

        if (strlen(dom) > DOMAIN_ARG_MAX || strpbrk(dom, "\n\r\t"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid domain: expected \"\" (all), a domain name or "
                                         "a UUID");
        if (since > now + SINCE_FUTURE_SLACK)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "since_usec %llu is in the future: expected "
                                         "microseconds since the epoch (realtime clock; now is "
                                         "%llu), 0 for all",
                                         (unsigned long long)since, (unsigned long long)now);
        r = history_cached(m, &h, &n);
        if (r < 0)
                return sd_bus_error_setf(error, HW_ERROR_STORE_UNAVAILABLE,
                                         "Cannot read the history from the store (%s): %s%s%s",
                                         store_backend_name(m->store), strerror(-r),
                                         *store_error_detail(m->store) ? ": " : "",
                                         store_error_detail(m->store));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssssssssssustttt)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const HistoryRecord *x = &h[i];

                if (!record_matches(x, dom, since))
                        continue;
                r = sd_bus_message_append(
                        reply, "(ssssssssssustttt)", x->id, x->kind, strempty(x->mode),
                        strempty(x->domain), strempty(x->domain_name), x->node, strempty(x->source),
                        strempty(x->destination), x->result, strempty(x->error), x->caller_uid,
                        strempty(x->caller), x->started, x->finished, x->downtime, x->bytes);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- Archive -------------------------------------------------------------------------- */

/*
 * A pass may move thousands of entries, each a few durable writes on the shared storage or
 * etcd requests: it runs in a worker thread with a Store of its own (a Store serves one
 * thread), so that the event loop keeps beating the heartbeat and answering meanwhile.
 */
typedef struct ArchiveCall {
        Store *store;
        ArchiveOptions o;
        /* the worker's */
        ArchiveAction *actions;
        size_t n;
        char *holder;
        char *detail; /* the store's error detail, when the pass failed */
        int r;
} ArchiveCall;

static void archive_call_free(ArchiveCall *c)
{
        if (!c)
                return;
        store_free(c->store);
        archive_action_array_free(c->actions, c->n);
        free(c->holder);
        free(c->detail);
        free(c);
}

static void archive_work(Manager *m, void *userdata)
{
        ArchiveCall *c = userdata;

        c->r = archive_run(c->store, &c->o, &c->actions, &c->n, &c->holder);
        if (c->r < 0 && c->r != -EBUSY)
                c->detail = strdup(store_error_detail(c->store));
}

static int archive_reply(ArchiveCall *c, sd_bus_message *msg)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        size_t moved = 0, purged = 0, failed = 0;
        int r;

        if (c->r == -EBUSY)
                return sd_bus_reply_method_errorf(msg, HW_ERROR_BUSY,
                                                  "The archive is being run by %s right now (its "
                                                  "lease in the store): nothing to do here",
                                                  c->holder ? c->holder : "another node");
        if (c->r < 0)
                return sd_bus_reply_method_errorf(
                        msg, HW_ERROR_STORE_UNAVAILABLE, "Cannot archive (%s): %s%s%s",
                        store_backend_name(c->store), strerror(-c->r),
                        !isempty(c->detail) ? ": " : "", strempty(c->detail));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssssts)");
        for (size_t i = 0; r >= 0 && i < c->n; i++) {
                const ArchiveAction *x = &c->actions[i];
                const char *result = x->error < 0   ? strerror(-x->error)
                                     : c->o.dry_run ? "dry-run"
                                                    : "done";

                if (x->error < 0)
                        failed++;
                else if (x->step == ARCHIVE_STEP_ARCHIVE)
                        moved++;
                else
                        purged++;
                r = sd_bus_message_append(reply, "(ssssts)", archive_step_to_string(x->step),
                                          archive_kind_to_string(x->kind), x->key,
                                          strempty(x->name), x->time, result);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return sd_bus_reply_method_errnof(msg, -r, "Cannot answer: %m");
        if (!c->o.dry_run)
                log_full_errno(failed > 0 ? LOG_WARNING : LOG_INFO, 0,
                               "Archive: %zu entr%s moved to the archive, %zu purged from it, "
                               "%zu not moved",
                               moved, moved == 1 ? "y" : "ies", purged, failed);
        return sd_bus_send(NULL, reply, NULL);
}

static void archive_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        ArchiveCall *c = userdata;

        m->history_cache_valid = false; /* the pass moved records out of the history */
        (void)archive_reply(c, msg);
        archive_call_free(c);
}

int history_method_archive(Manager *m, sd_bus_message *msg, bool dry_run, sd_bus_error *error)
{
        ArchiveCall *c;
        int r;

        c = calloc(1, sizeof(ArchiveCall));
        if (!c)
                return -ENOMEM;
        c->o = (ArchiveOptions){
                .now = now_realtime(),
                .archive_after = m->config->history.archive_after,
                .purge_after = m->config->history.purge_after,
                .dry_run = dry_run,
        };
        r = store_attach_open(m->config, &c->store);
        if (r >= 0)
                r = job_start(m, msg, archive_work, archive_done, c);
        if (r < 0) {
                archive_call_free(c);
                return sd_bus_error_set_errnof(error, r, "Cannot start the archive pass: %m");
        }
        return 1;
}
