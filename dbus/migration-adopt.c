/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Migrations in flight when this daemon started (a previous hostwardend started them): the
 * scan at start, following libvirt's job until it ends, and their end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "announce.h"
#include "errors.h"
#include "job.h"
#include "log.h"
#include "migration-internal.h"
#include "paths.h"
#include "util.h"
#include "virt.h"

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

        migration_store_sample_cb(i, (void *)s);
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
                migration_fail(w, "Cannot connect to libvirt here: %s", err);
                return;
        }
        if (leftovers_load(hw_runtime_dir(), w->a_uuid, &w->made) < 0)
                log_warning("Migration %s: cannot read what it made on the destination (%s/"
                            "outgoing): a block migration's leftovers stay there",
                            mig->id, hw_runtime_dir());
        w->dom = virDomainLookupByUUIDString(w->conn, w->a_uuid);
        /* the monitor's step, in a loop of its own: unlike the engine's monitor thread, it
         * looks at once (the job runs already), ends with the job rather than with a call
         * here, and steers nothing (no policy) */
        while (w->dom) {
                MigrationInfo stats = {};
                int r = migration_monitor_step(mig, w, &stats);

                if (r < 0) {
                        /* gone (it completed), or libvirt is away for a moment */
                        if (r == -ENOENT || ++errors > 20)
                                break;
                        (void)usleep(MONITOR_INTERVAL_MS * 1000);
                        continue;
                }
                errors = 0;
                if (r == 0)
                        break;
                migration_live_update(mig, adopted_sample_cb, &stats);
                (void)usleep(MONITOR_INTERVAL_MS * 1000);
        }
        /* how it ended: still here? */
        if (w->dom && virDomainGetState(w->dom, &state, &reason, 0) < 0 &&
            virGetLastErrorCode() != VIR_ERR_NO_DOMAIN) {
                migration_fail(w, "Cannot tell how the migration ended: %s",
                               virt_last_error("unknown error"));
                return;
        }
        if (w->dom && state != 0 && state != VIR_DOMAIN_SHUTOFF) {
                if (w->paused_by_us && virDomainResume(w->dom) < 0)
                        log_error("Migration %s failed and the domain, paused to complete it, "
                                  "cannot be resumed: %s",
                                  mig->id, virt_last_error("unknown error"));
                migration_fail(w, "%s",
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
                migration_fail(w, "The domain no longer runs here, and %s",
                               !w->a_dest ? "no peer that could be asked runs it"
                               : !ddom    ? "not on the destination either"
                                          : "its migration into the destination did not finish");
                if (ddom)
                        virDomainFree(ddom);
                return;
        }
        w->succeeded = true;
        migration_landed(mig, w, ddom, w->a_dest);
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
        w = mig->work = migration_work_new();
        if (!w) {
                migration_free(mig);
                return -ENOMEM;
        }
        w->adopted = true;
        announce_schedule_from_config(m->config, &w->announce);
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
                migration_fail(w, "Cannot start a worker thread");
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
