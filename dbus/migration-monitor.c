/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The monitor of a running migration: libvirt's job statistics every 500 ms, the steps of
 * lib/migpolicy.c, and the operator's Abort and ForceComplete requests. Its step (requests,
 * then statistics) is also the one an adopted migration's worker takes in its own loop
 * (migration-adopt.c). */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "log.h"
#include "migration-internal.h"
#include "util.h"
#include "virt.h"

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

static void pause_to_complete(Migration *mig, MigrationWork *w)
{
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
        pause_to_complete(mig, w);
}

/* A policy step (migschedule.h) other than a downtime, which the caller sets. */
static void take_step(Migration *mig, MigrationWork *w, const MigStep *step)
{
        char what[MIG_STEP_FORMAT_MAX];

        mig_step_format(step, what);
        log_info("Migration %s: policy %s, step '%s'", mig->id, mig->opts.schedule.name, what);
        switch (step->action) {
        case MIG_ACTION_POST_COPY:
                if (virDomainMigrateStartPostCopy(mon_dom(w), 0) == 0) {
                        pthread_mutex_lock(&mig->lock);
                        mig->live.post_copy = true;
                        pthread_mutex_unlock(&mig->lock);
                } else
                        log_warning("Migration %s: cannot switch to post-copy: %s", mig->id,
                                    virt_last_error("unknown error"));
                break;
        case MIG_ACTION_PAUSE:
                pause_to_complete(mig, w);
                break;
        case MIG_ACTION_ABORT:
                w->aborted = true;
                migration_fail(w,
                               "Aborted by migration policy %s (step '%s'): the copy did not "
                               "converge; the domain runs here as before",
                               mig->opts.schedule.name, what);
                atomic_store(&mig->request, MIGRATION_REQUEST_ABORT);
                if (virDomainAbortJob(mon_dom(w)) == 0)
                        w->abort_sent = true;
                break;
        default: /* downtime: the caller's; auto-converge: a flag at start */
                break;
        }
}

static uint64_t param_u64(virTypedParameterPtr params, int n, const char *name)
{
        unsigned long long v = 0;

        if (virTypedParamsGetULLong(params, n, name, &v) <= 0)
                return 0;
        return v;
}

/* What virDomainGetJobStats() says of the copy (running or completed). */
void migration_stats_from_params(virTypedParameterPtr params, int n, MigrationInfo *s)
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

void migration_store_sample_cb(MigrationInfo *i, void *u)
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

/*
 * The operator's requests. A force-complete is done once. An abort of a migration started
 * here stays requested until libvirt takes it: its job may not exist yet (the call is setting
 * it up) or be between phases. An adopted migration's job ran when it was found: its request
 * is taken at once and an abort sent once (a refusal is told); another Abort sends it again.
 */
static void monitor_requests(Migration *mig, MigrationWork *w)
{
        int req = w->adopted ? atomic_exchange(&mig->request, MIGRATION_REQUEST_NONE)
                             : atomic_load(&mig->request);

        if (req == MIGRATION_REQUEST_ABORT && !w->abort_sent) {
                if (!w->aborted)
                        migration_fail(w, "Aborted by an operator");
                w->aborted = true;
                if (virDomainAbortJob(mon_dom(w)) == 0)
                        w->abort_sent = !w->adopted; /* adopted: the next Abort is sent too */
                else if (w->adopted)
                        log_warning("Migration %s: abort failed: %s", mig->id,
                                    virt_last_error("unknown error"));
                else
                        log_debug("Migration %s: abort not taken yet (%s); trying again", mig->id,
                                  virt_last_error("unknown error"));
        } else if (req == MIGRATION_REQUEST_FORCE_COMPLETE &&
                   (w->adopted ||
                    atomic_compare_exchange_strong(&mig->request, &req, MIGRATION_REQUEST_NONE)))
                force_complete(mig, w);
}

int migration_monitor_step(Migration *mig, MigrationWork *w, MigrationInfo *ret)
{
        virTypedParameterPtr params = NULL;
        int type = VIR_DOMAIN_JOB_NONE, n = 0, r;

        monitor_requests(mig, w);
        if (virDomainGetJobStats(mon_dom(w), &type, &params, &n, 0) < 0)
                r = virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? -ENOENT : -EIO;
        else if (type == VIR_DOMAIN_JOB_NONE)
                r = 0;
        else {
                migration_stats_from_params(params, n, ret);
                r = 1;
        }
        virTypedParamsFree(params, n);
        return r;
}

static void monitor_once(Migration *mig, MigrationWork *w)
{
        MigrationInfo stats = {};
        MigDecision d;
        MigSample s = {};

        if (migration_monitor_step(mig, w, &stats) <= 0)
                return;
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
                else if (d.step)
                        log_info("Migration %s: policy %s: max downtime now %llu ms", mig->id,
                                 mig->opts.schedule.name, (unsigned long long)d.downtime_ms);
                else if (d.stalled)
                        log_info("Migration %s stalls (no new low of remaining memory in %u "
                                 "iterations): max downtime now %llu ms",
                                 mig->id, w->stall_iterations, (unsigned long long)d.downtime_ms);
        }
        if (d.step && d.step->action != MIG_ACTION_DOWNTIME)
                take_step(mig, w, d.step);
        if (d.timeout) {
                if (mig->opts.timeout_action == TIMEOUT_ACTION_ABORT) {
                        w->aborted = true;
                        migration_fail(w,
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
        migration_live_update(mig, migration_store_sample_cb, &stats);
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

void *migration_monitor_thread(void *userdata)
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
