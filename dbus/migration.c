/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration engine and org.hostwarden.Warden1.Migration (DESIGN.md §7). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "domxml.h"
#include "errors.h"
#include "job.h"
#include "log.h"
#include "migration-leftovers.h"
#include "migration.h"
#include "paths.h"
#include "peers.h"
#include "placement.h"
#include "polkit.h"
#include "preflight.h"
#include "util.h"
#include "virt.h"

#define MONITOR_INTERVAL_MS 500
/* PropertiesChanged at most twice a second: never two within this (a little over 500 ms, so
 * that no window of one second can hold three) */
#define PUBLISH_INTERVAL (510 * USEC_PER_MSEC)
#define QUIET_START      (1 * USEC_PER_SEC)
#define KEEP_FINISHED    (USEC_PER_HOUR) /* finished migrations stay listed this long */

static const char *const state_table[_MIGRATION_STATE_MAX] = {
        [MIGRATION_QUEUED] = "queued",       [MIGRATION_PREPARING] = "preparing",
        [MIGRATION_RUNNING] = "running",     [MIGRATION_POST_MIGRATING] = "post-migrating",
        [MIGRATION_COMPLETED] = "completed", [MIGRATION_FAILED] = "failed",
        [MIGRATION_ABORTED] = "aborted",
};

const char *migration_state_to_string(MigrationState s)
{
        return s >= 0 && s < _MIGRATION_STATE_MAX ? state_table[s] : "unknown";
}

static bool state_is_final(MigrationState s)
{
        return s == MIGRATION_COMPLETED || s == MIGRATION_FAILED || s == MIGRATION_ABORTED;
}

static bool state_is_active(MigrationState s)
{
        return s == MIGRATION_PREPARING || s == MIGRATION_RUNNING || s == MIGRATION_POST_MIGRATING;
}

static void info_done(MigrationInfo *i)
{
        free(i->domain_uuid);
        free(i->domain_name);
        free(i->destination);
        free(i->error);
        *i = (MigrationInfo){};
}

/* ---- worker state --------------------------------------------------------------------- */

typedef struct MigrationWork {
        /* set up in the event loop */
        Preflight **candidates;
        char **candidate_addresses; /* the peers' addresses, for the console listen */
        size_t n_candidates;
        ConsoleListen console_listen;
        unsigned downtime_steps, stall_iterations;
        usec_t downtime_delay;

        /* the worker's */
        Preflight *chosen;
        const char *dest_address;
        virConnectPtr conn, dconn, mconn; /* mconn: the monitor thread's */
        virDomainPtr dom, mdom;
        char *persist_xml;
        Leftovers made; /* block migration: what it made on the destination */
        MigPolicy policy;
        uint64_t started_monotonic;

        pthread_mutex_t wait_lock;
        pthread_cond_t wait_cond;
        bool migrate_returned; /* under wait_lock */
        bool aborted;          /* by Abort() or timeout_action=abort */
        bool abort_sent;       /* libvirt took virDomainAbortJob() */
        bool paused_by_us;     /* ForceComplete without post-copy: we resume it, nothing else */
        bool succeeded;
        char error[1024];

        uint64_t reserved; /* bytes counted against the chosen destination (placement.h) */

        /* adopted: in flight when this daemon started (a previous one started it) */
        bool adopted;
        char *a_uuid, *a_name, *a_dest, *a_dest_uri; /* a_dest, a_dest_uri may be NULL */
        PeerTargets a_peers;                         /* where it may be going */
} MigrationWork;

static void work_free(MigrationWork *w)
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

static void live_update(Migration *mig, void (*f)(MigrationInfo *i, void *u), void *u)
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

static void live_set_state(Migration *mig, MigrationState s)
{
        live_update(mig, set_state_cb, &s);
}

static void fail(MigrationWork *w, const char *format, ...) _printf_(2, 3);
static void fail(MigrationWork *w, const char *format, ...)
{
        va_list ap;

        if (w->error[0])
                return; /* the first reason is the one to tell */
        va_start(ap, format);
        vsnprintf(w->error, sizeof(w->error), format, ap);
        va_end(ap);
}

/* ---- choosing and checking the destination -------------------------------------------- */

/* The preflights gathered, the choice made by lib/placement.c (which reserves the memory of the
 * chosen destination's in m->reservations until migration_done()). */
static int choose_destination(Manager *m, Migration *mig, MigrationWork *w)
{
        _cleanup_free_ PlacementCandidate *c = NULL;
        bool named = !mig->dest_chosen_by_us;
        Placement pl;

        for (size_t i = 0; i < w->n_candidates; i++)
                preflight_gather(m, w->candidates[i]);

        c = calloc(w->n_candidates ?: 1, sizeof(PlacementCandidate));
        if (!c)
                return fail(w, "Out of memory"), -ENOMEM;
        for (size_t i = 0; i < w->n_candidates; i++) {
                const Preflight *p = w->candidates[i];

                c[i] = (PlacementCandidate){
                        .name = p->dest_name,
                        .error = p->error,
                        .no_such_domain = p->error < 0 && p->error_name &&
                                          streq(p->error_name, HW_ERROR_NO_SUCH_DOMAIN),
                        .error_message = p->error_message,
                        .findings = &p->findings,
                        .free_bytes = p->dest_free_bytes,
                        .need_bytes = p->domain ? p->domain->current_memory_kib * 1024 : 0,
                };
        }
        placement_choose(m->reservations, c, w->n_candidates, named, &pl);
        if (pl.error == -ENOENT) {
                const Preflight *p = w->candidates[pl.culprit];

                return fail(w, "%s", p->error_message), -ENOENT;
        }
        if (pl.error < 0) {
                if (named && w->n_candidates == 1)
                        fail(w, "Cannot migrate to %s: %s", w->candidates[0]->dest_name, pl.why);
                else
                        fail(w, "No peer can take the domain: %s", pl.why);
                return -EPERM;
        }
        w->chosen = w->candidates[pl.chosen];
        w->dest_address = w->candidate_addresses[pl.chosen];
        w->reserved = pl.reserved;
        return 0;
}

static void unreserve(Manager *m, MigrationWork *w)
{
        if (w->chosen)
                placement_release(m->reservations, w->chosen->dest_name, w->reserved);
        w->reserved = 0;
}

typedef struct Chosen {
        const Preflight *p;
} Chosen;

static void set_chosen_cb(MigrationInfo *i, void *u)
{
        const Preflight *p = ((Chosen *)u)->p;

        (void)free_and_strdup(&i->destination, p->dest_name);
        (void)free_and_strdup(&i->domain_uuid, p->domain->uuid);
        (void)free_and_strdup(&i->domain_name, p->domain->name);
}

/* ---- libvirt --------------------------------------------------------------------------- */

/* The domain's XML for the destination: console listen rewritten for its address. */
static char *dest_xml(MigrationWork *w, unsigned flags)
{
        _cleanup_free_ char *xml = virDomainGetXMLDesc(w->dom, flags);
        _cleanup_free_ char *error = NULL;
        DomIdentity id = {};
        char *out = NULL;
        size_t size = 0;
        unsigned changed = 0;
        int r;

        if (!xml)
                return NULL;
        r = domxml_rewrite_listen_text(xml, strlen(xml), w->console_listen, w->dest_address, &id,
                                       &out, &size, &changed, &error);
        dom_identity_done(&id);
        if (r < 0)
                return NULL;
        return out ? out : TAKE_PTR(xml);
}

/* Is path a file on the destination? Asked through its pool (refreshed: libvirt lists a
 * pool's volumes as of its last scan). */
static bool dest_file_exists(virConnectPtr dconn, virStoragePoolPtr pool, const char *path)
{
        virStorageVolPtr vol;

        (void)virStoragePoolRefresh(pool, 0);
        vol = virStorageVolLookupByPath(dconn, path);
        if (!vol)
                return false;
        virStorageVolFree(vol);
        return true;
}

/*
 * Block migration: libvirt creates the copied disks on the destination itself when their
 * directory is a storage pool there. Where it is not, a transient pool is created for the
 * time of the migration (and destroyed after; the disks stay). The disks that do not exist
 * there yet are remembered: if the migration fails, the partial copies are removed.
 */
static int ensure_dest_pools(Migration *mig, MigrationWork *w)
{
        const Preflight *p = w->chosen;

        for (size_t i = 0; i < p->domain->n_disks; i++) {
                const DomDisk *d = &p->domain->disks[i];
                _cleanup_free_ char *copy = NULL, *xml = NULL, *name = NULL;
                virStoragePoolPtr pool;
                const char *dir;

                if (!p->disk_copied || !p->disk_copied[i] || !d->source)
                        continue;
                copy = strdup(d->source);
                if (!copy)
                        return -ENOMEM;
                dir = dirname(copy);
                pool = virStoragePoolLookupByTargetPath(w->dconn, dir);
                if (pool) {
                        bool exists = dest_file_exists(w->dconn, pool, d->source);

                        virStoragePoolFree(pool);
                        if (!exists && strv_extend(&w->made.disks, d->source) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (asprintf(&name, "hostwarden-%s-%zu", mig->id, strv_length(w->made.pools)) < 0 ||
                    asprintf(&xml,
                             "<pool type='dir'><name>%s</name><target><path>%s</path></target>"
                             "</pool>",
                             name, dir) < 0)
                        return -ENOMEM;
                pool = virStoragePoolCreateXML(w->dconn, xml, VIR_STORAGE_POOL_CREATE_WITH_BUILD);
                if (!pool) {
                        fail(w, "Cannot prepare %s on %s for the copied disks: %s", dir,
                             p->dest_name, virt_last_error("unknown error"));
                        return -EIO;
                }
                if (strv_push(&w->made.pools, TAKE_PTR(name)) < 0) {
                        (void)virStoragePoolDestroy(pool);
                        virStoragePoolFree(pool);
                        return -ENOMEM;
                }
                if (!dest_file_exists(w->dconn, pool, d->source) &&
                    strv_extend(&w->made.disks, d->source) < 0) {
                        virStoragePoolFree(pool);
                        return -ENOMEM;
                }
                virStoragePoolFree(pool);
        }
        return 0;
}

/*
 * What ensure_dest_pools() made, kept in the runtime directory while the migration runs: a
 * hostwardend restarted meanwhile adopts the migration and removes them at its end.
 */
static void keep_leftovers(Migration *mig, MigrationWork *w)
{
        int r;

        if (!w->made.pools && !w->made.disks)
                return;
        if (!w->made.destination && !(w->made.destination = strdup(w->chosen->dest_name)))
                return;
        r = leftovers_save(hw_runtime_dir(), w->chosen->domain->uuid, &w->made);
        if (r < 0)
                log_warning_errno(r,
                                  "Migration %s: cannot note what it makes on %s in %s: a "
                                  "restarted hostwardend could not remove it: %m",
                                  mig->id, w->chosen->dest_name, hw_runtime_dir());
}

/* At the end: the pools go; after a failure the partial copies libvirt created for it too
 * (libvirt leaves them). */
static void remove_leftovers(Migration *mig, MigrationWork *w, bool failed)
{
        if (!w->made.pools && !w->made.disks)
                return;
        leftovers_remove(w->dconn, &w->made, w->chosen->domain->uuid, mig->id, failed);
        (void)leftovers_forget(hw_runtime_dir(), w->chosen->domain->uuid);
}

/* The domain as the monitor thread sees it. */
static virDomainPtr mon_dom(MigrationWork *w)
{
        return w->mdom ? w->mdom : w->dom;
}

/*
 * Is the guest paused already? Then the pause is not ours to undo: an operator's from before
 * the migration (libvirt keeps such a guest paused on the destination, and here after a
 * failure), or one made during it, which libvirt records as a pause for the migration (reason
 * migration, as the switchover's) and undoes itself, on the destination or here.
 */
static bool guest_paused(MigrationWork *w)
{
        int state = 0, reason = 0;

        if (w->paused_by_us)
                return true;
        return virDomainGetState(mon_dom(w), &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED;
}

static void force_complete(Migration *mig, MigrationWork *w)
{
        if (mig->opts.post_copy) {
                if (virDomainMigrateStartPostCopy(mon_dom(w), 0) == 0) {
                        bool on = true;

                        pthread_mutex_lock(&mig->lock);
                        mig->live.post_copy = on;
                        pthread_mutex_unlock(&mig->lock);
                        return;
                }
                log_warning("Migration %s: cannot switch to post-copy (%s); pausing instead",
                            mig->id, virt_last_error("unknown error"));
        }
        /* paused, the guest dirties nothing: the copy converges; it runs again on the
         * destination afterwards. virDomainSuspend() succeeds on a paused guest too: one that
         * was paused already must not count as paused by us, or it would be resumed. */
        if (guest_paused(w))
                log_info("Migration %s: the domain is paused already; completing without pausing "
                         "it (hostwarden does not resume it)",
                         mig->id);
        else if (virDomainSuspend(mon_dom(w)) == 0)
                w->paused_by_us = true;
        else
                log_warning("Migration %s: cannot pause the domain to complete: %s", mig->id,
                            virt_last_error("unknown error"));
}

static uint64_t param_u64(virTypedParameterPtr params, int n, const char *name)
{
        unsigned long long v = 0;

        if (virTypedParamsGetULLong(params, n, name, &v) <= 0)
                return 0;
        return v;
}

/* What virDomainGetJobStats() says of the copy (running or completed). */
static void stats_from_params(virTypedParameterPtr params, int n, MigrationInfo *s)
{
        s->memory_total = param_u64(params, n, VIR_DOMAIN_JOB_MEMORY_TOTAL);
        s->memory_processed = param_u64(params, n, VIR_DOMAIN_JOB_MEMORY_PROCESSED);
        s->memory_remaining = param_u64(params, n, VIR_DOMAIN_JOB_MEMORY_REMAINING);
        s->disk_total = param_u64(params, n, VIR_DOMAIN_JOB_DISK_TOTAL);
        s->disk_processed = param_u64(params, n, VIR_DOMAIN_JOB_DISK_PROCESSED);
        s->disk_remaining = param_u64(params, n, VIR_DOMAIN_JOB_DISK_REMAINING);
        /* pages per second → bytes per second */
        s->dirty_rate = param_u64(params, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE) *
                        (param_u64(params, n, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE) ?: 4096);
        s->iteration = param_u64(params, n, VIR_DOMAIN_JOB_MEMORY_ITERATION);
        s->downtime = param_u64(params, n, VIR_DOMAIN_JOB_DOWNTIME);
}

static void store_sample_cb(MigrationInfo *i, void *u)
{
        const MigrationInfo *s = u;

        i->memory_total = s->memory_total;
        i->memory_processed = s->memory_processed;
        i->memory_remaining = s->memory_remaining;
        i->disk_total = s->disk_total;
        i->disk_processed = s->disk_processed;
        i->disk_remaining = s->disk_remaining;
        i->dirty_rate = s->dirty_rate;
        i->iteration = s->iteration;
        i->max_downtime = s->max_downtime;
        i->progress = s->progress;
}

static void monitor_once(Migration *mig, MigrationWork *w)
{
        virTypedParameterPtr params = NULL;
        MigrationInfo stats = {};
        MigDecision d;
        MigSample s = {};
        int type = 0, n = 0;
        int req;

        /* An abort stays requested until libvirt takes it: its job may not exist yet (the
         * call is setting it up) or be between phases. A force-complete is done once. */
        req = atomic_load(&mig->request);
        if (req == MIGRATION_REQUEST_ABORT && !w->abort_sent) {
                if (!w->aborted)
                        fail(w, "Aborted by an operator");
                w->aborted = true;
                if (virDomainAbortJob(mon_dom(w)) == 0)
                        w->abort_sent = true;
                else
                        log_debug("Migration %s: abort not taken yet (%s); trying again", mig->id,
                                  virt_last_error("unknown error"));
        } else if (req == MIGRATION_REQUEST_FORCE_COMPLETE &&
                   atomic_compare_exchange_strong(&mig->request, &req, MIGRATION_REQUEST_NONE))
                force_complete(mig, w);

        if (virDomainGetJobStats(mon_dom(w), &type, &params, &n, 0) < 0 ||
            type == VIR_DOMAIN_JOB_NONE) {
                virTypedParamsFree(params, n);
                return;
        }
        stats_from_params(params, n, &stats);
        virTypedParamsFree(params, n);

        s.elapsed = (now_usec(CLOCK_MONOTONIC) - w->started_monotonic);
        s.total = stats.memory_total + stats.disk_total;
        s.remaining = stats.memory_remaining + stats.disk_remaining;
        s.memory_remaining = stats.memory_remaining;
        s.iteration = stats.iteration;
        mig_policy_sample(&w->policy, &s, &d);
        if (d.set_downtime) {
                if (virDomainMigrateSetMaxDowntime(mon_dom(w), d.downtime_ms, 0) < 0 &&
                    virGetLastErrorCode() != VIR_ERR_NO_DOMAIN) /* it just completed */
                        log_warning("Migration %s: cannot set max downtime %llu ms: %s", mig->id,
                                    (unsigned long long)d.downtime_ms,
                                    virt_last_error("unknown error"));
                else if (d.stalled)
                        log_info("Migration %s stalls (no new low of remaining memory in %u "
                                 "iterations): max downtime now %llu ms",
                                 mig->id, w->stall_iterations, (unsigned long long)d.downtime_ms);
        }
        if (d.timeout) {
                if (mig->opts.timeout_action == TIMEOUT_ACTION_ABORT) {
                        w->aborted = true;
                        fail(w,
                             "Not completed within completion-timeout (%llu s): aborted "
                             "(timeout-action abort)",
                             (unsigned long long)(w->policy.timeout / USEC_PER_SEC));
                        atomic_store(&mig->request, MIGRATION_REQUEST_ABORT);
                        if (virDomainAbortJob(mon_dom(w)) == 0)
                                w->abort_sent = true;
                } else {
                        log_info("Migration %s: completion timeout, forcing completion", mig->id);
                        force_complete(mig, w);
                }
        }
        log_debug("Migration %s: sample at %llu ms: remaining %llu, iteration %llu", mig->id,
                  (unsigned long long)(s.elapsed / 1000), (unsigned long long)s.remaining,
                  (unsigned long long)s.iteration);
        stats.max_downtime = w->policy.current_downtime_ms;
        stats.progress = mig_policy_percent(&w->policy, &s, false);
        live_update(mig, store_sample_cb, &stats);
}

/* Sleeps one interval; false when the migration call returned meanwhile. */
static bool monitor_wait(MigrationWork *w)
{
        struct timespec deadline;
        bool go_on;

        pthread_mutex_lock(&w->wait_lock);
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += MONITOR_INTERVAL_MS * 1000000L;
        deadline.tv_sec += deadline.tv_nsec / 1000000000L;
        deadline.tv_nsec %= 1000000000L;
        while (!w->migrate_returned &&
               pthread_cond_timedwait(&w->wait_cond, &w->wait_lock, &deadline) == 0)
                ;
        go_on = !w->migrate_returned;
        pthread_mutex_unlock(&w->wait_lock);
        return go_on;
}

static void *monitor_thread(void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;

        /* nothing to look at in the first interval (libvirt is setting the copy up, and a
         * small guest is done by then): the monitor costs a migration nothing until then */
        while (monitor_wait(w)) {
                if (!w->mconn) {
                        /* a connection of its own: the shared one carries the migration call */
                        w->mconn = virConnectOpen(virt_uri(mig->manager->virt));
                        if (w->mconn)
                                w->mdom = virDomainLookupByUUIDString(w->mconn,
                                                                      w->chosen->domain->uuid);
                        if (!w->mdom)
                                log_warning("Migration %s: no monitor connection (%s); "
                                            "monitoring on the migration's",
                                            mig->id, virt_last_error("unknown error"));
                }
                monitor_once(mig, w);
        }
        return NULL;
}

typedef struct Params {
        virTypedParameterPtr p;
        int n, max;
} Params;

static void params_done(Params *p)
{
        virTypedParamsFree(p->p, p->n);
        *p = (Params){};
}

/* An Abort accepted while the migration was being prepared: nothing to undo in libvirt. */
static bool aborted_before_copy(Migration *mig, MigrationWork *w)
{
        if (atomic_load(&mig->request) != MIGRATION_REQUEST_ABORT)
                return false;
        w->aborted = true;
        fail(w, "Aborted by an operator before the copy started");
        return true;
}

static int run_migration(Manager *m, Migration *mig, MigrationWork *w)
{
        const Preflight *p = w->chosen;
        _cleanup_free_ char *xml = NULL;
        _cleanup_(params_done) Params params = {};
        unsigned flags;
        pthread_t monitor;
        char err[512];
        int r, state = 0, reason = 0;
        uint64_t disk_mib = 0;

        r = virt_connect(m->virt, &w->conn, err, sizeof(err));
        if (r < 0)
                return fail(w, "Cannot connect to libvirt here: %s", err), r;
        w->dom = virDomainLookupByUUIDString(w->conn, p->domain->uuid);
        if (!w->dom)
                return fail(w, "Domain %s is gone", p->domain->name), -ENOENT;
        if (virDomainGetState(w->dom, &state, &reason, 0) < 0)
                return fail(w, "Cannot read the state of %s: %s", p->domain->name,
                            virt_last_error("unknown error")),
                       -EIO;
        /* the preflight said so already (domain-shutoff ...); it may have stopped since */
        if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED)
                return fail(w,
                            "Domain %s is %s: live migration needs a running or paused domain; "
                            "start it or use cold migration (not yet available)",
                            p->domain->name, virt_state_to_string(state)),
                       -EINVAL;

        xml = dest_xml(w, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE);
        w->persist_xml = dest_xml(w, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE |
                                             VIR_DOMAIN_XML_INACTIVE);
        if (!xml || !w->persist_xml)
                return fail(w, "Cannot read the XML of %s: %s", p->domain->name,
                            virt_last_error("unknown error")),
                       -EIO;

        /* libvirt refuses post-copy for a paused domain, which needs none (it changes no
         * memory): one only [migration] permit_post_copy turned on is left off. Asked for,
         * the preflight refused it (post-copy-paused). */
        if (state == VIR_DOMAIN_PAUSED && !mig->opts.post_copy_asked)
                mig->opts.post_copy = false;
        flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
                VIR_MIGRATE_UNDEFINE_SOURCE;
        if (mig->opts.auto_converge)
                flags |= VIR_MIGRATE_AUTO_CONVERGE;
        if (mig->opts.post_copy)
                flags |= VIR_MIGRATE_POSTCOPY;
        if (mig->opts.tls)
                flags |= VIR_MIGRATE_TLS;
        if (virTypedParamsAddString(&params.p, &params.n, &params.max, VIR_MIGRATE_PARAM_DEST_XML,
                                    xml) < 0 ||
            virTypedParamsAddString(&params.p, &params.n, &params.max,
                                    VIR_MIGRATE_PARAM_PERSIST_XML, w->persist_xml) < 0 ||
            (mig->opts.bandwidth > 0 &&
             virTypedParamsAddULLong(&params.p, &params.n, &params.max, VIR_MIGRATE_PARAM_BANDWIDTH,
                                     mig->opts.bandwidth) < 0))
                return fail(w, "Out of memory"), -ENOMEM;

        if (mig->opts.block) {
                bool any = false;

                flags |= VIR_MIGRATE_NON_SHARED_DISK;
                for (size_t i = 0; i < p->domain->n_disks; i++) {
                        virDomainBlockInfo info;

                        if (!p->disk_copied || !p->disk_copied[i])
                                continue;
                        any = true;
                        if (virTypedParamsAddString(&params.p, &params.n, &params.max,
                                                    VIR_MIGRATE_PARAM_MIGRATE_DISKS,
                                                    p->domain->disks[i].target) < 0)
                                return fail(w, "Out of memory"), -ENOMEM;
                        if (virDomainGetBlockInfo(w->dom, p->domain->disks[i].target, &info, 0) ==
                            0)
                                disk_mib += info.capacity >> 20;
                }
                if (!any) /* nothing local to copy: a plain live migration */
                        flags &= ~VIR_MIGRATE_NON_SHARED_DISK;
                else {
                        w->dconn = virConnectOpen(p->dest_uri);
                        if (!w->dconn)
                                return fail(w, "Cannot connect to libvirt on %s: %s", p->dest_name,
                                            virt_last_error("unknown error")),
                                       -EHOSTDOWN;
                        r = ensure_dest_pools(mig, w);
                        keep_leftovers(mig, w);
                        if (r < 0)
                                return r;
                }
        }

        if (aborted_before_copy(mig, w))
                return -ECANCELED;
        mig_policy_init(&w->policy, mig->opts.max_downtime_ms, w->downtime_steps, w->downtime_delay,
                        w->stall_iterations, mig->opts.completion_timeout,
                        p->domain->current_memory_kib >> 10, disk_mib);
        w->started_monotonic = now_usec(CLOCK_MONOTONIC);
        live_set_state(mig, MIGRATION_RUNNING);

        r = -pthread_create(&monitor, NULL, monitor_thread, mig);
        if (r < 0)
                return fail(w, "Cannot start the migration monitor: %s", strerror(-r)), r;
        log_debug("Migration %s: calling virDomainMigrateToURI3", mig->id);
        r = virDomainMigrateToURI3(w->dom, p->dest_uri, params.p, params.n, flags);
        if (r < 0)
                fail(w, "%s", virt_last_error("migration failed"));
        pthread_mutex_lock(&w->wait_lock);
        w->migrate_returned = true;
        pthread_cond_signal(&w->wait_cond);
        pthread_mutex_unlock(&w->wait_lock);
        pthread_join(monitor, NULL);
        return r < 0 ? -EIO : 0;
}

/* The completed job's statistics: what a migration shorter than a monitor interval shows. */
static void set_completed_cb(MigrationInfo *i, void *u)
{
        const MigrationInfo *c = u;

        i->downtime = c->downtime;
        if (c->memory_total > 0) {
                i->memory_total = c->memory_total;
                i->memory_processed = c->memory_processed;
                i->memory_remaining = c->memory_remaining;
        }
        if (c->disk_total > 0) {
                i->disk_total = c->disk_total;
                i->disk_processed = c->disk_processed;
                i->disk_remaining = c->disk_remaining;
        } else if (i->disk_total > 0) {
                /* completed: the mirrored disks are all there (libvirt keeps no completed disk
                 * figures after the source is undefined) */
                i->disk_processed = i->disk_total;
                i->disk_remaining = 0;
        }
}

/* Landed on dest: resume it there if we paused it (only then), measure the downtime there.
 * Frees ddom. */
static void landed(Migration *mig, MigrationWork *w, virDomainPtr ddom, const char *dest)
{
        virTypedParameterPtr params = NULL;
        MigrationInfo c = {};
        int type, n = 0;

        if (w->paused_by_us && virDomainResume(ddom) < 0)
                log_warning("Migration %s: the domain is paused on %s and cannot be resumed: %s",
                            mig->id, dest, virt_last_error("unknown error"));
        /* the source's domain is gone (undefined); the destination has the completed job's
         * statistics (the source sends them in the migration cookie): keep them there for
         * 'virsh domjobinfo --completed' */
        if (virDomainGetJobStats(ddom, &type, &params, &n,
                                 VIR_DOMAIN_JOB_STATS_COMPLETED |
                                         VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) == 0) {
                stats_from_params(params, n, &c);
                virTypedParamsFree(params, n);
        }
        live_update(mig, set_completed_cb, &c);
        virDomainFree(ddom);
}

/* After success: see landed(). */
static void after_success(Migration *mig, MigrationWork *w)
{
        const Preflight *p = w->chosen;
        virDomainPtr ddom;

        live_set_state(mig, MIGRATION_POST_MIGRATING);
        if (!w->dconn)
                w->dconn = virConnectOpen(p->dest_uri);
        if (!w->dconn)
                return;
        ddom = virDomainLookupByUUIDString(w->dconn, p->domain->uuid);
        if (ddom)
                landed(mig, w, ddom, p->dest_name);
}

/* After failure: the guest must still run here. */
static void after_failure(Migration *mig, MigrationWork *w)
{
        int state = 0, reason = 0;

        if (!w->dom)
                return;
        if (w->paused_by_us && virDomainResume(w->dom) < 0)
                log_error("Migration %s failed and the domain, paused to complete it, cannot be "
                          "resumed: %s",
                          mig->id, virt_last_error("unknown error"));
        if (virDomainGetState(w->dom, &state, &reason, 0) == 0 && state != VIR_DOMAIN_RUNNING) {
                size_t len = strlen(w->error);

                snprintf(w->error + len, sizeof(w->error) - len, " (the domain is %s on this node)",
                         virt_state_to_string(state));
        }
}

static void migration_work(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        Chosen c;

        uint64_t t0 = now_usec(CLOCK_MONOTONIC);

        if (choose_destination(m, mig, w) < 0)
                return;
        log_debug("Migration %s: preflight took %llu us", mig->id,
                  (unsigned long long)(now_usec(CLOCK_MONOTONIC) - t0));
        c.p = w->chosen;
        live_update(mig, set_chosen_cb, &c);
        if (aborted_before_copy(mig, w))
                return;
        if (run_migration(m, mig, w) < 0) {
                after_failure(mig, w);
                remove_leftovers(mig, w, true);
                return;
        }
        w->succeeded = true;
        log_debug("Migration %s: migrated after %llu us", mig->id,
                  (unsigned long long)(now_usec(CLOCK_MONOTONIC) - t0));
        after_success(mig, w);
        log_debug("Migration %s: after-success done after %llu us", mig->id,
                  (unsigned long long)(now_usec(CLOCK_MONOTONIC) - t0));
        remove_leftovers(mig, w, false);
}

/* ---- event loop side ------------------------------------------------------------------- */

static Migration *migration_free(Migration *mig);
static void migrations_schedule(Manager *m);

/* Returns 1 when PropertiesChanged went out. */
static int emit_changes(Migration *mig, bool silently)
{
        MigrationInfo *a = &mig->pub, *b = &mig->live;
        int r;
        const char *names[32];
        size_t n = 0;

#define CHANGED_U(field, name)               \
        do {                                 \
                if (a->field != b->field) {  \
                        a->field = b->field; \
                        names[n++] = name;   \
                }                            \
        } while (0)
#define CHANGED_S(field, name)                                        \
        do {                                                          \
                if (!streq_ptr(a->field, b->field)) {                 \
                        if (free_and_strdup(&a->field, b->field) < 0) \
                                return -ENOMEM;                       \
                        names[n++] = name;                            \
                }                                                     \
        } while (0)

        pthread_mutex_lock(&mig->lock);
        CHANGED_U(state, "State");
        CHANGED_U(started, "Started");
        CHANGED_U(finished, "Finished");
        CHANGED_U(memory_total, "MemoryTotal");
        CHANGED_U(memory_processed, "MemoryProcessed");
        CHANGED_U(memory_remaining, "MemoryRemaining");
        CHANGED_U(disk_total, "DiskTotal");
        CHANGED_U(disk_processed, "DiskProcessed");
        CHANGED_U(disk_remaining, "DiskRemaining");
        CHANGED_U(dirty_rate, "DirtyRate");
        CHANGED_U(iteration, "Iteration");
        CHANGED_U(max_downtime, "MaxDowntime");
        CHANGED_U(downtime, "Downtime");
        CHANGED_U(progress, "Progress");
        CHANGED_U(post_copy, "PostCopy");
        pthread_mutex_unlock(&mig->lock);
        /* strings are only set by the event loop or before the worker reads them: the lock
         * also covers them for the worker's set_chosen_cb */
        pthread_mutex_lock(&mig->lock);
        CHANGED_S(domain_uuid, "Domain");
        CHANGED_S(domain_name, "DomainName");
        CHANGED_S(destination, "Destination");
        CHANGED_S(error, "Error");
        pthread_mutex_unlock(&mig->lock);
#undef CHANGED_U
#undef CHANGED_S
        if (n == 0 || silently)
                return 0;
        names[n] = NULL;
        r = sd_bus_emit_properties_changed_strv(mig->manager->bus, mig->path,
                                                HW_MIGRATION_INTERFACE, (char **)names);
        return r < 0 ? r : 1;
}

static int on_publish(sd_event_source *s, uint64_t usec, void *userdata)
{
        Migration *mig = userdata;
        int r;

        /* the time it really fired, not when it was due: the spacing is from emission to
         * emission */
        (void)sd_event_now(mig->manager->event, CLOCK_MONOTONIC, &usec);
        r = emit_changes(mig, false);
        if (r < 0)
                log_warning_errno(r, "Migration %s: cannot announce changes: %m", mig->id);
        if (r > 0)
                mig->last_emit = usec;
        if (state_is_final(mig->pub.state))
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        /* while it runs: look again in PUBLISH_INTERVAL */
        r = sd_event_source_set_time(s, usec + PUBLISH_INTERVAL);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return r;
}

/* Changes go out now, or PUBLISH_INTERVAL after the last emission if that is later: never
 * more often, never later than needed (a completion is announced at once). */
static void publish_soon(Migration *mig)
{
        uint64_t now = 0, when;

        (void)sd_event_now(mig->manager->event, CLOCK_MONOTONIC, &now);
        when = now;
        /* progress is announced from the first second on; a migration that ends before
         * that is announced once, when it ends (Get shows the current values anyway) */
        if (!state_is_final(mig->live.state) && when < mig->created_monotonic + QUIET_START)
                when = mig->created_monotonic + QUIET_START;
        if (mig->last_emit > 0 && when < mig->last_emit + PUBLISH_INTERVAL)
                when = mig->last_emit + PUBLISH_INTERVAL;
        if (!mig->publish_timer) {
                /* accuracy 1 µs: sd-event's default (250 ms) would let it coalesce late */
                if (sd_event_add_time(mig->manager->event, &mig->publish_timer, CLOCK_MONOTONIC,
                                      when, 1, on_publish, mig) < 0)
                        return;
        } else
                (void)sd_event_source_set_time(mig->publish_timer, when);
        (void)sd_event_source_set_enabled(mig->publish_timer, SD_EVENT_ONESHOT);
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
        (void)manager_sync_deny_list(m);
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
static void keep_finished(Migration *mig)
{
        (void)sd_event_source_set_time_relative(mig->expire_timer, KEEP_FINISHED);
        (void)sd_event_source_set_enabled(mig->expire_timer, SD_EVENT_ONESHOT);
}

static void migration_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        const char *name = w->chosen    ? w->chosen->domain->name
                           : w->adopted ? w->a_name
                                        : mig->domain_arg;
        const char *dest = w->chosen ? w->chosen->dest_name : w->a_dest ? w->a_dest : "(none)";

        unreserve(m, w);
        if (w->succeeded)
                move_ownership(m, mig, w);
        live_update(mig, set_final_cb, w);
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
        mig->work = NULL;
        work_free(w);
        answer_aborts(mig);
        publish_soon(mig);
        keep_finished(mig);
        migrations_schedule(m);
}

static int start(Manager *m, Migration *mig)
{
        int r;

        mig->live.state = MIGRATION_PREPARING;
        r = job_start(m, NULL, migration_work, migration_done, mig);
        if (r < 0) {
                mig->live.state = MIGRATION_FAILED;
                (void)free_and_strdup(&mig->live.error, "Cannot start a worker thread");
        } else
                log_fields(LOG_INFO, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_MIGRATION_STARTED },
                                      { "HOSTWARDEN_MIGRATION", mig->id },
                                      { "HOSTWARDEN_DOMAIN", strna(mig->live.domain_name) }),
                           "Migration %s of %s started", mig->id, strna(mig->live.domain_name));
        publish_soon(mig);
        return r;
}

static void migrations_schedule(Manager *m)
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

static void unlink_migration(Manager *m, Migration *mig)
{
        for (Migration **p = &m->migrations; *p; p = &(*p)->next)
                if (*p == mig) {
                        *p = mig->next;
                        break;
                }
}

static int on_expire(sd_event_source *s, uint64_t usec, void *userdata)
{
        Migration *mig = userdata;
        Manager *m = mig->manager;

        (void)sd_bus_emit_signal(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "MigrationRemoved", "so",
                                 mig->id, mig->path);
        unlink_migration(m, mig);
        migration_free(mig);
        return 0;
}

static Migration *migration_free(Migration *mig)
{
        if (!mig)
                return NULL;
        answer_aborts(mig);
        sd_bus_slot_unref(mig->slot);
        sd_event_source_disable_unref(mig->publish_timer);
        sd_event_source_disable_unref(mig->expire_timer);
        work_free(mig->work);
        info_done(&mig->live);
        info_done(&mig->pub);
        pthread_mutex_destroy(&mig->lock);
        free(mig->path);
        free(mig->domain_arg);
        free(mig->source);
        free(mig);
        return NULL;
}

Migration *migration_busy(Manager *m, const char *uuid)
{
        if (!uuid)
                return NULL;
        for (Migration *x = m->migrations; x; x = x->next) {
                bool match;

                if (!x->work && x->live.state != MIGRATION_QUEUED)
                        continue; /* finished in the event loop */
                pthread_mutex_lock(&x->lock);
                match = x->live.domain_uuid && strcasecmp(x->live.domain_uuid, uuid) == 0;
                pthread_mutex_unlock(&x->lock);
                if (match)
                        return x;
        }
        return NULL;
}

/* Busy, naming the migration that has the instance: what the caller can follow or abort. */
static int busy_error(sd_bus_error *error, const Migration *x, const char *dom)
{
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

/* ---- D-Bus ---------------------------------------------------------------------------- */

static Migration *find_by_path(Manager *m, const char *path)
{
        for (Migration *x = m->migrations; x; x = x->next)
                if (streq(x->path, path))
                        return x;
        return NULL;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Migration *mig = userdata;
        _cleanup_(info_done) MigrationInfo copy = {};
        const MigrationInfo *i = &copy;

        /* the current values: PropertiesChanged is rate-limited, Get is not */
        pthread_mutex_lock(&mig->lock);
        copy = mig->live;
        copy.domain_uuid = copy.domain_uuid ? strdup(copy.domain_uuid) : NULL;
        copy.domain_name = copy.domain_name ? strdup(copy.domain_name) : NULL;
        copy.destination = copy.destination ? strdup(copy.destination) : NULL;
        copy.error = copy.error ? strdup(copy.error) : NULL;
        pthread_mutex_unlock(&mig->lock);

#define U(name, value)             \
        if (streq(property, name)) \
                return sd_bus_message_append(reply, "t", (uint64_t)(value));
#define S(name, value)             \
        if (streq(property, name)) \
                return sd_bus_message_append(reply, "s", (value) ? (value) : "");

        S("Id", mig->id);
        S("Domain", i->domain_uuid ? i->domain_uuid : mig->domain_arg);
        S("DomainName", i->domain_name);
        S("Source", mig->source);
        S("Destination", i->destination);
        S("Mode", mig->opts.block ? "block" : "live");
        S("State", migration_state_to_string(i->state));
        S("Error", i->error);
        U("Created", mig->created);
        U("Started", i->started);
        U("Finished", i->finished);
        U("MemoryTotal", i->memory_total);
        U("MemoryProcessed", i->memory_processed);
        U("MemoryRemaining", i->memory_remaining);
        U("DiskTotal", i->disk_total);
        U("DiskProcessed", i->disk_processed);
        U("DiskRemaining", i->disk_remaining);
        U("DirtyRate", i->dirty_rate);
        U("Iteration", i->iteration);
        U("MaxDowntime", i->max_downtime);
        U("Downtime", i->downtime);
        if (streq(property, "Progress"))
                return sd_bus_message_append(reply, "u", i->progress);
        if (streq(property, "PostCopy"))
                return sd_bus_message_append(reply, "b", i->post_copy);
#undef U
#undef S
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property);
}

static int abort_authorized(Manager *m, sd_bus_message *msg, sd_bus_error *error)
{
        Migration *mig = find_by_path(m, sd_bus_message_get_path(msg));
        sd_bus_message **calls;
        bool post_copy;

        if (!mig)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                         "The migration is gone");
        if (mig->live.state == MIGRATION_QUEUED) {
                mig->live.state = MIGRATION_ABORTED;
                mig->live.finished = now_realtime();
                (void)free_and_strdup(&mig->live.error, "Aborted by an operator before it started");
                work_free(mig->work);
                mig->work = NULL;
                publish_soon(mig);
                keep_finished(mig);
                return sd_bus_reply_method_return(msg, NULL);
        }
        if (state_is_final(mig->live.state) || !mig->work)
                return sd_bus_error_setf(error, HW_ERROR_NOT_RUNNING, "Migration %s is %s already",
                                         mig->id, migration_state_to_string(mig->live.state));
        pthread_mutex_lock(&mig->lock);
        post_copy = mig->live.post_copy;
        pthread_mutex_unlock(&mig->lock);
        if (post_copy)
                return sd_bus_error_setf(error, HW_ERROR_NOT_RUNNING,
                                         "Migration %s is in post-copy: the guest runs on the "
                                         "destination already, and the migration can only "
                                         "complete",
                                         mig->id);
        calls = reallocarray(mig->abort_calls, mig->n_abort_calls + 1, sizeof(*calls));
        if (!calls)
                return -ENOMEM;
        mig->abort_calls = calls;
        mig->abort_calls[mig->n_abort_calls++] = sd_bus_message_ref(msg);
        mig->abort_accepted = true;
        atomic_store(&mig->request, MIGRATION_REQUEST_ABORT);
        return 1; /* answered when the migration has ended: answer_aborts() */
}

static int force_complete_authorized(Manager *m, sd_bus_message *msg, sd_bus_error *error)
{
        Migration *mig = find_by_path(m, sd_bus_message_get_path(msg));

        if (!mig)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                         "The migration is gone");
        if (mig->live.state != MIGRATION_RUNNING)
                return sd_bus_error_setf(error, HW_ERROR_NOT_RUNNING,
                                         "Migration %s is %s: only a running migration can be "
                                         "forced to complete",
                                         mig->id, migration_state_to_string(mig->live.state));
        if (mig->abort_accepted || atomic_load(&mig->request) == MIGRATION_REQUEST_ABORT)
                return sd_bus_error_setf(error, HW_ERROR_NOT_RUNNING,
                                         "Migration %s is being aborted: it cannot be forced to "
                                         "complete any more",
                                         mig->id);
        atomic_store(&mig->request, MIGRATION_REQUEST_FORCE_COMPLETE);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_abort(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Migration *mig = userdata;

        return polkit_authorize(mig->manager, msg, abort_authorized, error);
}

static int method_force_complete(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Migration *mig = userdata;

        return polkit_authorize(mig->manager, msg, force_complete_authorized, error);
}

#define PROP_S(name) \
        SD_BUS_PROPERTY(name, "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)
#define PROP_T(name) \
        SD_BUS_PROPERTY(name, "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

const sd_bus_vtable migration_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        PROP_S("Domain"),
        PROP_S("DomainName"),
        SD_BUS_PROPERTY("Source", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        PROP_S("Destination"),
        SD_BUS_PROPERTY("Mode", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        PROP_S("State"),
        PROP_S("Error"),
        SD_BUS_PROPERTY("Created", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        PROP_T("Started"),
        PROP_T("Finished"),
        PROP_T("MemoryTotal"),
        PROP_T("MemoryProcessed"),
        PROP_T("MemoryRemaining"),
        PROP_T("DiskTotal"),
        PROP_T("DiskProcessed"),
        PROP_T("DiskRemaining"),
        PROP_T("DirtyRate"),
        PROP_T("Iteration"),
        PROP_T("MaxDowntime"),
        PROP_T("Downtime"),
        SD_BUS_PROPERTY("Progress", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PostCopy", "b", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Abort", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_abort,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ForceComplete", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_force_complete, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static MigrationWork *work_new(void)
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

/* Builds the candidates (the given destination, or every peer) in the event loop; they look
 * the domain up by uuid, the instance the caller's name or UUID resolved to. */
static int prepare_work(Manager *m, Migration *mig, const char *uuid, const char *dest,
                        sd_bus_error *error)
{
        const Config *c = m->config;
        MigrationWork *w;
        int r = 0;

        w = work_new();
        if (!w)
                return -ENOMEM;
        w->console_listen = c->console.listen;
        w->downtime_steps = c->migration.downtime_steps;
        w->downtime_delay = c->migration.downtime_delay;
        w->stall_iterations = c->migration.stall_iterations;
        mig->work = w;

        w->candidates = calloc(c->n_peers + 1, sizeof(Preflight *));
        w->candidate_addresses = calloc(c->n_peers + 1, sizeof(char *));
        if (!w->candidates || !w->candidate_addresses)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_peers; i++) {
                const ConfigPeer *peer = &c->peers[i];

                if (!isempty(dest) && !streq(dest, peer->name))
                        continue;
                r = preflight_new(m, uuid, peer->name, &mig->opts, &w->candidates[w->n_candidates],
                                  error);
                if (r < 0)
                        return r;
                w->candidate_addresses[w->n_candidates] = strdup(peer->address);
                if (!w->candidate_addresses[w->n_candidates]) {
                        w->n_candidates++;
                        return -ENOMEM;
                }
                w->n_candidates++;
        }
        return 0;
}

/* A Migration of dom with opts, not published yet. */
static int migration_new(Manager *m, const char *dom, const MigrateOptions *opts, Migration **ret)
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

/* Exports it on the bus in state and announces it with MigrationNew. */
static int migration_publish(Manager *m, Migration *mig, MigrationState state)
{
        int r;

        r = sd_bus_add_object_vtable(m->bus, &mig->slot, mig->path, HW_MIGRATION_INTERFACE,
                                     migration_vtable, mig);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(m->event, &mig->expire_timer, CLOCK_MONOTONIC, KEEP_FINISHED,
                                       0, on_expire, mig);
        if (r < 0)
                return r;
        (void)sd_event_source_set_enabled(mig->expire_timer, SD_EVENT_OFF);

        mig->live.state = state;
        mig->next = m->migrations;
        m->migrations = mig;
        (void)emit_changes(mig, true); /* pub = live: the initial values, not changes */
        (void)sd_bus_emit_signal(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "MigrationNew", "so",
                                 mig->id, mig->path);
        return 0;
}

/* A queued Migration of dom (as the caller named it; the instance uuid, name) to dest ("" =
 * hostwarden chooses) with opts, announced with MigrationNew; the queue is not run (the caller
 * calls migrations_schedule()). Domain and DomainName are known from now on: the busy check
 * and a client that reads them at once see the instance. */
static int migration_create(Manager *m, const char *dom, const char *uuid, const char *name,
                            const char *dest, const MigrateOptions *opts, Migration **ret,
                            sd_bus_error *error)
{
        Migration *mig;
        int r;

        r = migration_new(m, dom, opts, &mig);
        if (r < 0)
                return r;
        r = prepare_work(m, mig, uuid, dest, error);
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

/* ---- adopted: migrations in flight when this daemon started ------------------------------ */

/* An outgoing migration job on dom? Its elapsed time (ms) then. */
static bool migrating_out(virDomainPtr dom, uint64_t *ret_elapsed_ms)
{
        virTypedParameterPtr params = NULL;
        int type = VIR_DOMAIN_JOB_NONE, n = 0, op = 0;
        unsigned long long elapsed = 0;
        bool out;

        if (virDomainGetJobStats(dom, &type, &params, &n, 0) < 0)
                return false;
        out = type != VIR_DOMAIN_JOB_NONE &&
              virTypedParamsGetInt(params, n, VIR_DOMAIN_JOB_OPERATION, &op) > 0 &&
              op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT;
        (void)virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &elapsed);
        *ret_elapsed_ms = elapsed;
        virTypedParamsFree(params, n);
        return out;
}

typedef struct Adoptee {
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *name, *dest, *dest_uri;
        uint64_t elapsed_ms;
} Adoptee;

typedef struct AdoptScan {
        PeerTargets peers; /* those with a libvirt_uri */
        Adoptee *items;
        size_t n;
} AdoptScan;

static void adopt_scan_free(AdoptScan *a)
{
        for (size_t i = 0; i < a->n; i++) {
                free(a->items[i].name);
                free(a->items[i].dest);
                free(a->items[i].dest_uri);
        }
        free(a->items);
        peer_targets_done(&a->peers);
        free(a);
}

/* The peer whose libvirt runs (or receives) the domain: its name and uri. */
static bool find_destination(const PeerTargets *peers, const char *uuid, char **ret_name,
                             char **ret_uri)
{
        for (size_t i = 0; i < peers->n; i++) {
                const PeerTarget *p = &peers->items[i];

                if (virt_remote_domain_active(p->uri, uuid, NULL) == 1) {
                        *ret_name = strdup(p->name);
                        *ret_uri = strdup(p->uri);
                        return *ret_name && *ret_uri;
                }
        }
        return false;
}

/* The uri of peer name, or NULL. */
static const char *peer_uri(const PeerTargets *peers, const char *name)
{
        const PeerTarget *p = peer_targets_find(peers, name);

        return p ? p->uri : NULL;
}

/*
 * Block migrations that ended while no hostwardend ran (stopped for an upgrade, say): what
 * they made on the destination, noted by the daemon that started them, goes as their end
 * would have removed it. Still running here means it failed: the copies are partial. A note
 * this daemon wrote is skipped: its migration has only just begun.
 */
static void remove_stale_leftovers(virConnectPtr conn, const AdoptScan *a)
{
        _cleanup_strv_free_ char **uuids = NULL;

        if (leftovers_list(hw_runtime_dir(), &uuids) < 0)
                return;
        STRV_FOREACH (u, uuids) {
                Leftovers l = {};
                virConnectPtr dconn = NULL;
                virDomainPtr dom;
                const char *uri;
                bool failed, in_flight = false;

                for (size_t i = 0; i < a->n; i++)
                        in_flight = in_flight || strcasecmp(a->items[i].uuid, *u) == 0;
                if (in_flight || leftovers_load(hw_runtime_dir(), *u, &l) <= 0)
                        continue; /* in flight: adopted, and removed at its end */
                if (l.pid == getpid()) {
                        leftovers_done(&l);
                        continue;
                }
                dom = virDomainLookupByUUIDString(conn, *u);
                failed = dom && virDomainIsActive(dom) == 1;
                if (dom)
                        virDomainFree(dom);
                uri = l.destination ? peer_uri(&a->peers, l.destination) : NULL;
                if (uri && (dconn = virConnectOpen(uri))) {
                        leftovers_remove(dconn, &l, *u,
                                         "that ended while hostwardend was not running", failed);
                        virConnectClose(dconn);
                        (void)leftovers_forget(hw_runtime_dir(), *u);
                } else
                        log_warning("Cannot reach %s to remove what a migration of %s made there "
                                    "(%s/outgoing/%s): tried again at the next start",
                                    strna(l.destination), *u, hw_runtime_dir(), *u);
                leftovers_done(&l);
        }
}

/* Worker: the local domains with an outgoing migration job, and where each is going (the
 * peer whose libvirt has it). */
static void adopt_scan_work(Manager *m, void *userdata)
{
        AdoptScan *a = userdata;
        virConnectPtr conn = NULL;
        virDomainPtr *doms = NULL;
        size_t n = 0;
        char err[512];

        if (virt_list_domains(m->virt, VIR_CONNECT_LIST_DOMAINS_ACTIVE, &doms, &n, err,
                              sizeof(err)) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                uint64_t elapsed = 0;
                Adoptee *x;

                if (migrating_out(doms[i], &elapsed) &&
                    (x = realloc(a->items, (a->n + 1) * sizeof(Adoptee)))) {
                        const char *name = virDomainGetName(doms[i]);

                        a->items = x;
                        x = &a->items[a->n++];
                        *x = (Adoptee){ .elapsed_ms = elapsed };
                        (void)virDomainGetUUIDString(doms[i], x->uuid);
                        x->name = name ? strdup(name) : NULL;
                        (void)find_destination(&a->peers, x->uuid, &x->dest, &x->dest_uri);
                }
        }
        virt_domains_free(doms, n);
        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0)
                return;
        remove_stale_leftovers(conn, a);
        virConnectClose(conn);
}

static void adopted_sample_cb(MigrationInfo *i, void *u)
{
        const MigrationInfo *s = u;
        unsigned progress = i->progress;

        store_sample_cb(i, (void *)s);
        i->max_downtime = 0; /* not steered by this daemon: unknown */
        if (s->memory_total + s->disk_total > 0) {
                uint64_t done = s->memory_processed + s->disk_processed;
                uint64_t total = s->memory_total + s->disk_total;

                i->progress = (unsigned)MIN(99, done * 100 / total);
        }
        i->progress = MAX(i->progress, progress); /* never backwards */
}

/*
 * An adopted block migration ended: what the daemon that started it made on the destination
 * (its note in the runtime directory) is removed as that daemon would have: the partial
 * copies after a failure, the pools either way. Without this they stayed: the pools until
 * that libvirtd restarts, the partial copies for good.
 */
static void adopted_leftovers(Migration *mig, MigrationWork *w, bool failed)
{
        const char *uri;

        if (!w->made.pools && !w->made.disks)
                return;
        uri = w->made.destination ? peer_uri(&w->a_peers, w->made.destination) : w->a_dest_uri;
        if (!w->dconn && uri && !(w->dconn = virConnectOpen(uri))) {
                log_warning("Migration %s: cannot reach %s to remove what the migration made "
                            "there: %s",
                            mig->id, strna(w->made.destination), virt_last_error("unknown error"));
                return;
        }
        leftovers_remove(w->dconn, &w->made, w->a_uuid, mig->id, failed);
        (void)leftovers_forget(hw_runtime_dir(), w->a_uuid);
}

/* Worker: follows libvirt's job until it ends (Abort and ForceComplete act on it), then
 * tells how it ended: the domain gone here and running on the destination, no migration of
 * it under way there any more, is a success. */
static void adopted_work(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        virDomainPtr ddom = NULL;
        char err[512];
        int state = 0, reason = 0;
        unsigned errors = 0;
        bool settled = false;

        if (virt_connect(m->virt, &w->conn, err, sizeof(err)) < 0) {
                fail(w, "Cannot connect to libvirt here: %s", err);
                return;
        }
        if (leftovers_load(hw_runtime_dir(), w->a_uuid, &w->made) < 0)
                log_warning("Migration %s: cannot read what it made on the destination (%s/"
                            "outgoing): a block migration's leftovers stay there",
                            mig->id, hw_runtime_dir());
        w->dom = virDomainLookupByUUIDString(w->conn, w->a_uuid);
        while (w->dom) {
                virTypedParameterPtr params = NULL;
                MigrationInfo stats = {};
                int type = VIR_DOMAIN_JOB_NONE, n = 0;
                int req = atomic_exchange(&mig->request, MIGRATION_REQUEST_NONE);

                if (req == MIGRATION_REQUEST_ABORT) {
                        w->aborted = true;
                        fail(w, "Aborted by an operator");
                        if (virDomainAbortJob(w->dom) < 0)
                                log_warning("Migration %s: abort failed: %s", mig->id,
                                            virt_last_error("unknown error"));
                } else if (req == MIGRATION_REQUEST_FORCE_COMPLETE)
                        force_complete(mig, w);
                if (virDomainGetJobStats(w->dom, &type, &params, &n, 0) < 0) {
                        /* gone (it completed), or libvirt is away for a moment */
                        if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN || ++errors > 20)
                                break;
                        (void)usleep(MONITOR_INTERVAL_MS * 1000);
                        continue;
                }
                errors = 0;
                if (type == VIR_DOMAIN_JOB_NONE)
                        break;
                stats_from_params(params, n, &stats);
                virTypedParamsFree(params, n);
                live_update(mig, adopted_sample_cb, &stats);
                (void)usleep(MONITOR_INTERVAL_MS * 1000);
        }
        /* how it ended: still here? */
        if (w->dom && virDomainGetState(w->dom, &state, &reason, 0) < 0 &&
            virGetLastErrorCode() != VIR_ERR_NO_DOMAIN) {
                fail(w, "Cannot tell how the migration ended: %s",
                     virt_last_error("unknown error"));
                return;
        }
        if (w->dom && state != 0 && state != VIR_DOMAIN_SHUTOFF) {
                if (w->paused_by_us && virDomainResume(w->dom) < 0)
                        log_error("Migration %s failed and the domain, paused to complete it, "
                                  "cannot be resumed: %s",
                                  mig->id, virt_last_error("unknown error"));
                fail(w, "%s",
                     w->aborted ? "Aborted by an operator"
                                : "libvirt's migration job ended without completing; "
                                  "the domain runs here");
                adopted_leftovers(mig, w, true);
                return;
        }
        /* gone here: it must run on the destination, its incoming migration finished */
        if (!w->a_dest)
                (void)find_destination(&w->a_peers, w->a_uuid, &w->a_dest, &w->a_dest_uri);
        if (w->a_dest_uri && (w->dconn = virConnectOpen(w->a_dest_uri)))
                ddom = virDomainLookupByUUIDString(w->dconn, w->a_uuid);
        for (unsigned i = 0; ddom && i < 60 && !settled; i++) {
                settled = virDomainIsActive(ddom) == 1 && !virt_migration_in_progress(ddom);
                if (!settled)
                        (void)usleep(MONITOR_INTERVAL_MS * 1000);
        }
        if (!settled) {
                fail(w, "The domain no longer runs here, and %s",
                     !w->a_dest ? "no peer that could be asked runs it"
                     : !ddom    ? "not on the destination either"
                                : "its migration into the destination did not finish");
                if (ddom)
                        virDomainFree(ddom);
                return;
        }
        w->succeeded = true;
        landed(mig, w, ddom, w->a_dest);
        adopted_leftovers(mig, w, false);
}

static int adopt(Manager *m, const Adoptee *x, const PeerTargets *peers)
{
        MigrateOptions opts = {};
        Migration *mig;
        MigrationWork *w;
        int r;

        r = migration_new(m, x->uuid, &opts, &mig);
        if (r < 0)
                return r;
        w = mig->work = work_new();
        if (!w) {
                migration_free(mig);
                return -ENOMEM;
        }
        w->adopted = true;
        w->a_uuid = strdup(x->uuid);
        w->a_name = x->name ? strdup(x->name) : NULL;
        w->a_dest = x->dest ? strdup(x->dest) : NULL;
        w->a_dest_uri = x->dest_uri ? strdup(x->dest_uri) : NULL;
        if (peer_targets_copy(peers, &w->a_peers) < 0) {
                migration_free(mig);
                return -ENOMEM;
        }
        if (!w->a_uuid || free_and_strdup(&mig->live.domain_uuid, x->uuid) < 0 ||
            (x->name && free_and_strdup(&mig->live.domain_name, x->name) < 0) ||
            (x->dest && free_and_strdup(&mig->live.destination, x->dest) < 0)) {
                migration_free(mig);
                return -ENOMEM;
        }
        mig->live.started = now_realtime() - MIN(now_realtime(), x->elapsed_ms * USEC_PER_MSEC);
        r = migration_publish(m, mig, MIGRATION_RUNNING);
        if (r < 0) {
                migration_free(mig);
                return r;
        }
        r = job_start(m, NULL, adopted_work, migration_done, mig);
        if (r < 0) {
                fail(w, "Cannot start a worker thread");
                migration_done(m, NULL, mig);
                return r;
        }
        log_fields(LOG_NOTICE, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_MIGRATION_STARTED },
                              { "HOSTWARDEN_MIGRATION", mig->id },
                              { "HOSTWARDEN_DOMAIN", x->name }),
                   "Migration %s of %s to %s was in flight when hostwardend started: followed "
                   "from libvirt's job",
                   mig->id, strna(x->name), x->dest ? x->dest : "(a node that cannot be told)");
        return 0;
}

static void adopt_scan_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        AdoptScan *a = userdata;

        for (size_t i = 0; i < a->n; i++)
                if (!migration_busy(m, a->items[i].uuid)) {
                        int r = adopt(m, &a->items[i], &a->peers);

                        if (r < 0)
                                log_warning_errno(r, "Cannot follow the migration of %s: %m",
                                                  a->items[i].uuid);
                }
        adopt_scan_free(a);
}

int migrations_adopt(Manager *m)
{
        AdoptScan *a = calloc(1, sizeof(AdoptScan));
        int r;

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < m->config->n_peers; i++) {
                const ConfigPeer *peer = &m->config->peers[i];

                if (!peer->libvirt_uri)
                        continue;
                if (peer_targets_add(&a->peers, peer->name, peer->libvirt_uri) < 0) {
                        adopt_scan_free(a);
                        return -ENOMEM;
                }
        }
        r = job_start(m, NULL, adopt_scan_work, adopt_scan_done, a);
        if (r < 0)
                adopt_scan_free(a);
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
                r = busy_error(&error, busy, c->dom);
        else
                r = migration_create(m, c->dom, c->uuid, c->name, c->dest, &c->opts, &mig, &error);
        if (r < 0) {
                if (sd_bus_error_is_set(&error))
                        (void)sd_bus_reply_method_error(msg, &error);
                else
                        (void)sd_bus_reply_method_errnof(msg, -r, "Cannot queue the migration: %m");
        } else {
                r = sd_bus_reply_method_return(msg, "o", mig->path);
                if (r < 0)
                        log_warning_errno(r, "Cannot answer Migrate: %m");
                migrations_schedule(m);
        }
        migrate_call_free(c);
}

static int migrate_authorized(Manager *m, sd_bus_message *msg, sd_bus_error *error)
{
        const char *dom, *dest;
        MigrateCall *c;
        int r;

        r = sd_bus_message_read(msg, "ss", &dom, &dest);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(MigrateCall));
        if (!c)
                return -ENOMEM;
        migrate_options_defaults(m->config, &c->opts);
        r = migrate_options_read(msg, m->config, &c->opts, error);
        if (r >= 0) {
                c->dom = strdup(dom);
                c->dest = strdup(dest);
                r = c->dom && c->dest ? 0 : -ENOMEM;
        }
        if (r >= 0)
                r = job_start(m, msg, resolve_work, resolve_done, c);
        if (r < 0) {
                migrate_call_free(c);
                return r;
        }
        return 1;
}

/* A destination argument: "" (hostwarden chooses) or a configured peer, never this node. */
static int check_destination(Manager *m, const char *dest, sd_bus_error *error)
{
        if (streq(dest, m->config->node.name))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The destination %s is this node: name a peer, or \"\" "
                                         "to let hostwarden choose one",
                                         dest);
        if (!isempty(dest) && !config_find_peer(m->config, dest))
                return sd_bus_error_setf(error, HW_ERROR_NO_SUCH_NODE,
                                         "No peer '%s' in the configuration: nodes are [peer "
                                         "NAME] sections",
                                         dest);
        return 0;
}

/* ---- EvacuateLive ---------------------------------------------------------------------- */

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
        int r;

        if (d->error) {
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
        migrations_schedule(m);
        drain_free(d);
}

static int evacuate_live_authorized(Manager *m, sd_bus_message *msg, sd_bus_error *error)
{
        char reason[128], since[64];
        const char *dest;
        Drain *d;
        int r;

        r = sd_bus_message_read(msg, "s", &dest);
        if (r < 0)
                return r;
        d = calloc(1, sizeof(Drain));
        if (!d)
                return -ENOMEM;
        migrate_options_defaults(m->config, &d->opts);
        r = migrate_options_read(msg, m->config, &d->opts, error);
        if (r >= 0) {
                d->dest = strdup(dest);
                r = d->dest ? 0 : -ENOMEM;
        }
        if (r >= 0) {
                snprintf(reason, sizeof(reason), "evacuating live (EvacuateLive at %s)",
                         format_timestamp_now(since, sizeof(since)));
                r = manager_set_disabled(m, true, reason, error);
        }
        if (r >= 0)
                r = job_start(m, msg, drain_work, drain_done, d);
        if (r < 0) {
                drain_free(d);
                return r;
        }
        return 1;
}

/* EvacuateLive(s dest, a{sv} opts) -> ao [evacuate]: disable, then Migrate every running domain. */
int method_evacuate_live(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        MigrateOptions opts;
        const char *dest;
        int r;

        r = sd_bus_message_read(msg, "s", &dest);
        if (r < 0)
                return r;
        r = check_destination(m, dest, error);
        if (r < 0)
                return r;
        migrate_options_defaults(m->config, &opts);
        r = migrate_options_read(msg, m->config, &opts, error);
        if (r >= 0)
                r = migrate_options_check_tls(m->config, &opts, error);
        if (r < 0)
                return r;
        r = sd_bus_message_rewind(msg, true);
        if (r < 0)
                return r;
        return polkit_authorize(m, msg, evacuate_live_authorized, error);
}

/* Migrate(s dom, s dest, a{sv} opts) -> o [migrate]: validate, authorize, queue. */
int method_migrate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        MigrateOptions opts;
        const char *dom, *dest;
        int r;

        r = sd_bus_message_read(msg, "ss", &dom, &dest);
        if (r < 0)
                return r;
        if (isempty(dom))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a domain name or UUID");
        r = check_destination(m, dest, error);
        if (r < 0)
                return r;
        migrate_options_defaults(m->config, &opts);
        r = migrate_options_read(msg, m->config, &opts, error);
        if (r >= 0)
                r = migrate_options_check_tls(m->config, &opts, error);
        if (r < 0)
                return r;
        /* before asking polkit, what is plain without libvirt (the name or UUID of a
         * migration's instance); the instance the name resolves to is checked once
         * authorized (resolve_done) */
        for (Migration *x = m->migrations; x; x = x->next)
                if (!state_is_final(x->live.state) &&
                    (streq_ptr(x->live.domain_uuid, dom) || streq_ptr(x->live.domain_name, dom)))
                        return busy_error(error, x, dom);
        r = sd_bus_message_rewind(msg, true);
        if (r < 0)
                return r;
        return polkit_authorize(m, msg, migrate_authorized, error);
}

/* ListMigrations() -> a(sssssso): id, domain, source, destination, state, mode, path */
int method_list_migrations(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssssso)");
        for (Migration *x = m->migrations; r >= 0 && x; x = x->next) {
                pthread_mutex_lock(&x->lock);
                r = sd_bus_message_append(reply, "(sssssso)", x->id,
                                          x->live.domain_name ? x->live.domain_name : x->domain_arg,
                                          x->source, x->live.destination ? x->live.destination : "",
                                          migration_state_to_string(x->live.state),
                                          x->opts.block ? "block" : "live", x->path);
                pthread_mutex_unlock(&x->lock);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
