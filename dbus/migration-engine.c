/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One outgoing migration in its worker: the choice of destination (lib/placement.c), the
 * destination's XML and pools, virDomainMigrateToURI3, and what follows success or failure. */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "announce.h"
#include "domxml.h"
#include "errors.h"
#include "log.h"
#include "migration-internal.h"
#include "migration-slots.h"
#include "migration-network.h"
#include "paths.h"
#include "placement.h"
#include "util.h"
#include "virt.h"

void migration_fail(MigrationWork *w, const char *format, ...)
{
        va_list ap;

        if (w->error[0])
                return; /* the first reason is the one to tell */
        va_start(ap, format);
        vsnprintf(w->error, sizeof(w->error), format, ap);
        va_end(ap);
}

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
                return migration_fail(w, "Out of memory"), -ENOMEM;
        for (size_t i = 0; i < w->n_candidates; i++)
                preflight_candidate(w->candidates[i], &c[i]);
        placement_choose(m->reservations, c, w->n_candidates, named, &pl);
        if (pl.error == -ENOENT) {
                const Preflight *p = w->candidates[pl.culprit];

                return migration_fail(w, "%s", p->error_message), -ENOENT;
        }
        if (pl.error < 0) {
                if (named && w->n_candidates == 1)
                        migration_fail(w, "Cannot migrate to %s: %s", w->candidates[0]->dest_name,
                                       pl.why);
                else
                        migration_fail(w, "No peer can take the domain: %s", pl.why);
                return -EPERM;
        }
        w->chosen = w->candidates[pl.chosen];
        w->dest_address = w->candidate_addresses[pl.chosen];
        w->reserved = pl.reserved;
        return 0;
}

void migration_unreserve(Manager *m, MigrationWork *w)
{
        if (w->chosen)
                placement_release(m->reservations, w->chosen->dest_name, w->reserved);
        w->reserved = 0;
}

typedef struct Chosen {
        const Preflight *p;
        const char *policy;
} Chosen;

static void set_chosen_cb(MigrationInfo *i, void *u)
{
        const Preflight *p = ((Chosen *)u)->p;

        (void)free_and_strdup(&i->destination, p->dest_name);
        (void)free_and_strdup(&i->domain_uuid, p->domain->uuid);
        (void)free_and_strdup(&i->domain_name, p->domain->name);
        snprintf(i->policy, sizeof(i->policy), "%s", ((Chosen *)u)->policy);
}

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
                        migration_fail(w, "Cannot prepare %s on %s for the copied disks: %s", dir,
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
        migration_fail(w, "Aborted by an operator before the copy started");
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
                return migration_fail(w, "Cannot connect to libvirt here: %s", err), r;
        w->dom = virDomainLookupByUUIDString(w->conn, p->domain->uuid);
        if (!w->dom)
                return migration_fail(w, "Domain %s is gone", p->domain->name), -ENOENT;
        if (virDomainGetState(w->dom, &state, &reason, 0) < 0)
                return migration_fail(w, "Cannot read the state of %s: %s", p->domain->name,
                                      virt_last_error("unknown error")),
                       -EIO;
        /* the preflight said so already (domain-shutoff ...); it may have stopped since */
        if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED)
                return migration_fail(
                               w,
                               "Domain %s is %s: live migration needs a running or paused domain; "
                               "start it or use cold migration ('hostwardenctl migrate --cold')",
                               p->domain->name, virt_state_to_string(state)),
                       -EINVAL;

        xml = dest_xml(w, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE);
        w->persist_xml = dest_xml(w, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE |
                                             VIR_DOMAIN_XML_INACTIVE);
        if (!xml || !w->persist_xml)
                return migration_fail(w, "Cannot read the XML of %s: %s", p->domain->name,
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
                return migration_fail(w, "Out of memory"), -ENOMEM;
        /* the configuration let no bad migration_address through: only memory can fail */
        if (migration_network_params(p, mig->opts.tls, &params.p, &params.n, &params.max) < 0)
                return migration_fail(w, "Out of memory"), -ENOMEM;

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
                                return migration_fail(w, "Out of memory"), -ENOMEM;
                        if (virDomainGetBlockInfo(w->dom, p->domain->disks[i].target, &info, 0) ==
                            0)
                                disk_mib += info.capacity >> 20;
                }
                if (!any) /* nothing local to copy: a plain live migration */
                        flags &= ~VIR_MIGRATE_NON_SHARED_DISK;
                else {
                        w->dconn = virConnectOpen(p->dest_uri);
                        if (!w->dconn)
                                return migration_fail(w, "Cannot connect to libvirt on %s: %s",
                                                      p->dest_name,
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
        mig_policy_set_schedule(&w->policy, &mig->opts.schedule);
        w->started_monotonic = now_usec(CLOCK_MONOTONIC);
        migration_live_set_state(mig, MIGRATION_RUNNING);

        r = -pthread_create(&monitor, NULL, migration_monitor_thread, mig);
        if (r < 0)
                return migration_fail(w, "Cannot start the migration monitor: %s", strerror(-r)), r;
        migration_announce_before(mig, w);
        log_debug("Migration %s: calling virDomainMigrateToURI3", mig->id);
        r = virDomainMigrateToURI3(w->dom, p->dest_uri, params.p, params.n, flags);
        if (r < 0)
                migration_fail(w, "%s", virt_last_error("migration failed"));
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
void migration_landed(Migration *mig, MigrationWork *w, virDomainPtr ddom, const char *dest)
{
        virTypedParameterPtr params = NULL;
        MigrationInfo c = {};
        int type, n = 0;

        if (w->paused_by_us && virDomainResume(ddom) < 0)
                log_warning("Migration %s: the domain is paused on %s and cannot be resumed: %s",
                            mig->id, dest, virt_last_error("unknown error"));
        (void)announce_guest(ddom, &w->announce, "Migration", mig->id, dest);
        /* the source's domain is gone (undefined); the destination has the completed job's
         * statistics (the source sends them in the migration cookie): keep them there for
         * 'virsh domjobinfo --completed' */
        if (virDomainGetJobStats(ddom, &type, &params, &n,
                                 VIR_DOMAIN_JOB_STATS_COMPLETED |
                                         VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) == 0) {
                migration_stats_from_params(params, n, &c);
                virTypedParamsFree(params, n);
        }
        migration_live_update(mig, set_completed_cb, &c);
        migration_announce_landed(mig, w, c.downtime);
        virDomainFree(ddom);
}

/* After success: see migration_landed(). */
static void after_success(Migration *mig, MigrationWork *w)
{
        const Preflight *p = w->chosen;
        virDomainPtr ddom;

        migration_live_set_state(mig, MIGRATION_POST_MIGRATING);
        if (!w->dconn)
                w->dconn = virConnectOpen(p->dest_uri);
        if (!w->dconn)
                return;
        ddom = virDomainLookupByUUIDString(w->dconn, p->domain->uuid);
        if (ddom)
                migration_landed(mig, w, ddom, p->dest_name);
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

void migration_work(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        char why[512];
        Chosen c;

        uint64_t t0 = now_usec(CLOCK_MONOTONIC);

        if (choose_destination(m, mig, w) < 0)
                return;
        log_debug("Migration %s: preflight took %llu us", mig->id,
                  (unsigned long long)(now_usec(CLOCK_MONOTONIC) - t0));
        /* the domain's metadata may name it: known once its XML is read */
        if (migrate_options_choose_policy(&w->chosen->policies, &mig->opts,
                                          w->chosen->domain->hw_policy, why, sizeof(why)) < 0) {
                migration_fail(w, "%s", why);
                return;
        }
        c.p = w->chosen;
        c.policy = mig->opts.schedule.name;
        migration_live_update(mig, set_chosen_cb, &c);
        if (aborted_before_copy(mig, w))
                return;
        if (migration_slots_wait(m, mig, w->chosen->dest_name, w->chosen->dest_max_incoming,
                                 w->cluster_cap) == -ENOMEM) {
                migration_fail(w, "Out of memory");
                return;
        }
        /* an Abort while it waited for its slots (-ECANCELED), or since */
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

/* Builds the candidates (the given destination, or every peer) in the event loop; they look
 * the domain up by uuid, the instance the caller's name or UUID resolved to. */
int migration_prepare_work(Manager *m, Migration *mig, const char *uuid, const char *dest,
                           sd_bus_error *error)
{
        const Config *c = m->config;
        MigrationWork *w;
        int r = 0;

        w = migration_work_new();
        if (!w)
                return -ENOMEM;
        w->console_listen = c->console.listen;
        w->downtime_steps = c->migration.downtime_steps;
        w->downtime_delay = c->migration.downtime_delay;
        w->stall_iterations = c->migration.stall_iterations;
        w->cluster_cap = c->cluster.max_migrations;
        announce_schedule_from_config(c, &w->announce);
        r = migration_slots_ensure(m);
        if (r < 0)
                return r;
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

/* For migration-cold.c: the same choice of destination and destination XML. */
int migration_choose_destination(Manager *m, Migration *mig, MigrationWork *w)
{
        return choose_destination(m, mig, w);
}

char *migration_dest_xml(MigrationWork *w, unsigned flags)
{
        return dest_xml(w, flags);
}
