/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cold migration (migration-cold.h): its steps, each a worker job followed by the event
 * loop's part (the store is written there):
 *
 *   copy    (worker) destination chosen (lib/placement.c, CheckMigration in cold mode), the
 *           guest shut down (ACPI, destroyed after shutdown_timeout), its local files copied
 *   claim   (loop)   the record moves to the destination with the cold keys (landing)
 *   land    (worker) defined there, started if it ran
 *   verify  (loop)   the record says verify; Confirm, Revert or confirm_window follow
 *   confirm (worker) the source's copy undefined, the copied files here deleted; (loop) the
 *           record's cold keys go; completed
 *   revert  (worker) the destination's copy destroyed and undefined, the files copied there
 *           deleted; (loop) the record comes back; (worker) the guest started here if it ran;
 *           aborted (by Revert) or failed (a failure after the claim)
 *
 * A failure before the claim restarts the guest here and removes the copies in the copy
 * job itself. Every end goes through migration_done(), as a live migration's.
 *
 * One file of about 1050 lines rather than two: the steps chain each other (each job's
 * event-loop part starts the next) around one private state (ColdMigration); split, both
 * halves would share that struct and most of these functions through a header.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "bus-args.h"
#include "cold-copy.h"
#include "cold-note.h"
#include "cold-recover.h"
#include "coldmig.h"
#include "deny-list.h"
#include "errors.h"
#include "job.h"
#include "log.h"
#include "migration-cold.h"
#include "migration-internal.h"
#include "paths.h"
#include "util.h"
#include "virt.h"

/* Waits of a worker for a state (the guest shut off, the destination's deny list current) */
#define POLL_INTERVAL_MS 200
/* How long the destination's deny list may take to learn that the record moved there: its
 * reconciliation passes run on every heartbeat and libvirt event */
#define START_TIMEOUT_MIN (60 * USEC_PER_SEC)

typedef struct ColdMigration {
        /* the instance and where it goes: from the worker, or the record (adopted) */
        char *uuid, *name, *dest, *dest_uri;
        char **disks;        /* the files copied: the same path on both nodes */
        InstancePower power; /* the guest's before: RUNNING or SHUTOFF */
        usec_t shutdown_timeout, start_timeout;
        uint64_t verify_since; /* usec realtime */

        ColdCopy copy;
        bool copied, landed, done_ok; /* what the last job achieved */
        bool by_operator;             /* a Revert() (aborted) rather than a failure (failed) */
        bool restart_failed;          /* the guest could not be started here again */
        char error[1024];             /* the last job's reason */
        sd_bus_message *call;         /* the Confirm or Revert under way, answered at the end */
        bool job_running;             /* a worker of this migration runs */
        JobDoneFunc next_done;        /* what follows it in the event loop */
        sd_event_source *confirm_timer;
} ColdMigration;

static ColdMigration *cold_of(Migration *mig)
{
        return mig->cold;
}

static void cold_fail(ColdMigration *c, const char *format, ...) _printf_(2, 3);
static void cold_fail(ColdMigration *c, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        vsnprintf(c->error, sizeof(c->error), format, ap);
        va_end(ap);
}

void migration_cold_free(Migration *mig)
{
        ColdMigration *c = mig->cold;

        if (!c)
                return;
        if (c->call) {
                (void)sd_bus_reply_method_errorf(c->call, HW_ERROR_NOT_RUNNING,
                                                 "Migration %s is no longer followed: "
                                                 "hostwardend is stopping; it stays in the store",
                                                 mig->id);
                sd_bus_message_unref(c->call);
        }
        sd_event_source_disable_unref(c->confirm_timer);
        free(c->copy.prefix);
        strv_free(c->copy.pools);
        strv_free(c->copy.dpools);
        free(c->uuid);
        free(c->name);
        free(c->dest);
        free(c->dest_uri);
        strv_free(c->disks);
        free(c);
        mig->cold = NULL;
}

static ColdMigration *cold_new(const Config *cfg, const char *id)
{
        ColdMigration *c = calloc(1, sizeof(ColdMigration));

        if (!c)
                return NULL;
        c->shutdown_timeout = cfg->migration.shutdown_timeout;
        c->start_timeout = MAX(START_TIMEOUT_MIN, 6 * cfg->cluster.heartbeat_interval);
        if (asprintf(&c->copy.prefix, "hostwarden-%s", id) < 0) {
                free(c);
                return NULL;
        }
        return c;
}

/* ---- options ------------------------------------------------------------------------ */

static int read_option(sd_bus_message *msg, const char *key, const char *type, void *userdata,
                       sd_bus_error *error)
{
        MigrateOptions *opts = userdata;
        uint64_t v;
        int r;

        if (!streq(key, "shutdown-timeout"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown option '%s'; expected shutdown-timeout (t, "
                                         "seconds)",
                                         key);
        r = migrate_options_read_uint(msg, key, type, 3600, &v, error);
        if (r < 0)
                return r;
        opts->shutdown_timeout = v * USEC_PER_SEC;
        return 0;
}

int migration_cold_options_read(sd_bus_message *msg, const Config *c, MigrateOptions *opts,
                                sd_bus_error *error)
{
        migrate_options_defaults(c, opts);
        /* a cold migration copies files itself: none of the live options apply */
        opts->cold = true;
        opts->block = opts->post_copy = opts->auto_converge = opts->tls = false;
        opts->shutdown_timeout = c->migration.shutdown_timeout;
        return bus_options_foreach(msg, read_option, opts, error);
}

/* ---- the instance record ---------------------------------------------------------------- */

typedef enum RecordChange {
        RECORD_TO_DEST,   /* owner the destination, the cold keys with state */
        RECORD_BACK,      /* owner this node, no cold keys (Revert, a failure) */
        RECORD_CONFIRMED, /* the cold keys go (Confirm) */
} RecordChange;

/* Compare-and-swap of the instance record; a record that is neither this node's nor this
 * migration's is not taken (-EBUSY). */
static int record_change(Manager *m, Migration *mig, RecordChange change, ColdState state,
                         uint64_t *ret_time)
{
        ColdMigration *c = mig->cold;
        const char *self = m->config->node.name;
        int r = -ESTALE;

        for (unsigned attempt = 0; attempt < 5 && r == -ESTALE; attempt++) {
                _cleanup_(instance_record_done) InstanceRecord cur = {};
                InstanceRecord rec;
                uint64_t gen = 0;
                bool ours;

                r = store_instance_get(m->store, c->uuid, &cur);
                if (r < 0 && r != -ENOENT)
                        return r;
                gen = r >= 0 ? cur.generation : 0;
                ours = r == -ENOENT || (streq(cur.owner, self) && !cur.cold_source) ||
                       streq_ptr(cur.cold_migration, mig->id);
                if (!ours)
                        return -EBUSY;
                rec = (InstanceRecord){
                        .name = c->name,
                        .owner = change == RECORD_BACK ? (char *)self : c->dest,
                        /* where it was evacuated from stays known (move_ownership()) */
                        .evacuated_from = r >= 0 ? cur.evacuated_from : NULL,
                        .time = now_realtime(),
                        .power = change == RECORD_BACK ? c->power
                                 : r >= 0              ? cur.power
                                                       : c->power,
                };
                snprintf(rec.uuid, sizeof(rec.uuid), "%s", c->uuid);
                if (change == RECORD_TO_DEST) {
                        rec.cold_source = (char *)self;
                        rec.cold_migration = mig->id;
                        rec.cold_state = (char *)cold_state_to_string(state);
                        rec.cold_disks = c->disks;
                        rec.cold_power = c->power;
                        rec.power = c->power;
                }
                if (change == RECORD_CONFIRMED && streq_ptr(cur.owner, self))
                        return -EBUSY; /* reverted meanwhile */
                r = store_instance_cas(m->store, &rec, gen, NULL);
                if (r == -EEXIST)
                        r = -ESTALE;
                if (r >= 0 && ret_time)
                        *ret_time = rec.time;
        }
        (void)deny_list_sync(m);
        return r;
}

/* ---- jobs ---------------------------------------------------------------------------- */

static bool abort_requested(Migration *mig)
{
        return atomic_load(&mig->request) == MIGRATION_REQUEST_ABORT;
}

static bool copy_cancelled(void *userdata)
{
        return abort_requested(userdata);
}

static void disk_progress_cb(MigrationInfo *i, void *u)
{
        uint64_t done = *(uint64_t *)u;

        i->disk_processed = MIN(done, i->disk_total);
        i->disk_remaining = i->disk_total - i->disk_processed;
        if (i->disk_total > 0)
                /* never backwards, 99 until verify */
                i->progress = MAX(i->progress,
                                  (unsigned)MIN(99, i->disk_processed * 100 / i->disk_total));
}

static void copy_progress(uint64_t done, void *userdata)
{
        migration_live_update(userdata, disk_progress_cb, &done);
}

static void disk_total_cb(MigrationInfo *i, void *u)
{
        i->disk_total = *(uint64_t *)u;
        i->disk_processed = 0;
        i->disk_remaining = i->disk_total;
}

/* Connections of this job: the worker's own (w->conn, w->dconn). */
static int connect_both(Manager *m, Migration *mig, MigrationWork *w, bool dest)
{
        ColdMigration *c = mig->cold;
        char err[512];

        if (!w->conn && virt_connect(m->virt, &w->conn, err, sizeof(err)) < 0)
                return cold_fail(c, "Cannot connect to libvirt here: %s", err), -EHOSTDOWN;
        if (dest && !w->dconn) {
                w->dconn = c->dest_uri ? virConnectOpen(c->dest_uri) : NULL;
                if (!w->dconn)
                        return cold_fail(c, "Cannot connect to libvirt on %s (%s): %s", c->dest,
                                         strna(c->dest_uri), virt_last_error("unknown error")),
                               -EHOSTDOWN;
        }
        c->copy.conn = w->conn;
        c->copy.dconn = w->dconn;
        return 0;
}

/* ACPI first (the guest's OS shuts down cleanly), destroyed after timeout. */
static int shut_down(Migration *mig, MigrationWork *w, usec_t timeout)
{
        ColdMigration *c = mig->cold;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;
        int state = 0, reason = 0;

        if (timeout > 0 && virDomainShutdown(w->dom) < 0)
                log_info("Migration %s: %s refuses an ACPI shutdown (%s): destroyed at once",
                         mig->id, c->name, virt_last_error("unknown error"));
        else
                while (now_usec(CLOCK_MONOTONIC) < deadline) {
                        if (virDomainGetState(w->dom, &state, &reason, 0) == 0 &&
                            state == VIR_DOMAIN_SHUTOFF)
                                return 0;
                        if (abort_requested(mig))
                                return cold_fail(c, "Aborted by an operator while the guest "
                                                    "was shutting down"),
                                       -ECANCELED;
                        (void)nanosleep(
                                &(struct timespec){ .tv_nsec = POLL_INTERVAL_MS * 1000000L }, NULL);
                }
        if (virDomainGetState(w->dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_SHUTOFF)
                return 0;
        if (timeout > 0)
                log_info("Migration %s: %s did not shut down within %llu s: destroyed", mig->id,
                         c->name, (unsigned long long)(timeout / USEC_PER_SEC));
        if (virDomainDestroy(w->dom) < 0)
                return cold_fail(c, "Cannot stop %s: %s", c->name,
                                 virt_last_error("unknown error")),
                       -EIO;
        return 0;
}

/* The guest here again, as it was: started if it ran. Appends to the error what fails. */
static void restart_here(Migration *mig, MigrationWork *w)
{
        ColdMigration *c = mig->cold;
        size_t len = strlen(c->error);
        int state = 0, reason = 0;

        if (c->power != INSTANCE_POWER_RUNNING)
                return;
        if (!w->dom && w->conn)
                w->dom = virDomainLookupByUUIDString(w->conn, c->uuid);
        if (!w->dom ||
            (virDomainGetState(w->dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING))
                return;
        c->restart_failed = virDomainCreate(w->dom) < 0;
        if (c->restart_failed)
                snprintf(c->error + len, sizeof(c->error) - len,
                         "%sand %s cannot be started here again: %s", len ? "; " : "", c->name,
                         virt_last_error("unknown error"));
}

/* What the migration made on the destination goes: its domain (destroyed, undefined) and
 * the files it copied. 0, or < 0 with the error set (the destination cannot be asked). */
static int remove_there(Migration *mig, MigrationWork *w)
{
        ColdMigration *c = mig->cold;
        virDomainPtr ddom;
        char err[512] = "";
        int r = 0;

        ddom = virDomainLookupByUUIDString(w->dconn, c->uuid);
        if (ddom) {
                if (virDomainIsActive(ddom) == 1 && virDomainDestroy(ddom) < 0)
                        r = -EIO;
                else if (virDomainIsPersistent(ddom) == 1 &&
                         virDomainUndefineFlags(ddom,
                                                VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                                        VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                        VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) < 0)
                        r = -EIO;
                virDomainFree(ddom);
                if (r < 0)
                        return cold_fail(c, "Cannot remove %s from %s: %s", c->name, c->dest,
                                         virt_last_error("unknown error")),
                               r;
        }
        STRV_FOREACH (p, c->disks) {
                r = cold_delete_file(w->dconn, *p, c->copy.prefix, &c->copy.dpools, err,
                                     sizeof(err));
                if (r < 0)
                        break;
        }
        cold_pools_destroy(w->dconn, &c->copy.dpools);
        if (r < 0)
                return cold_fail(c, "Cannot delete the copy of %s on %s: %s", c->name, c->dest,
                                 err),
                       r;
        return 0;
}

static void set_chosen_cb(MigrationInfo *i, void *u)
{
        const Preflight *p = u;

        (void)free_and_strdup(&i->destination, p->dest_name);
}

/* What the copy needs to know, from the preflight of the chosen destination. */
static int learn(Migration *mig, MigrationWork *w, uint64_t *ret_total)
{
        ColdMigration *c = mig->cold;
        const Preflight *p = w->chosen;
        uint64_t total = 0;
        int r;

        if (!p->dest_uri)
                return cold_fail(c, "%s is this node", p->dest_name), -EINVAL;
        if (!(c->uuid = strdup(p->domain->uuid)) || !(c->name = strdup(p->domain->name)) ||
            !(c->dest = strdup(p->dest_name)) || !(c->dest_uri = strdup(p->dest_uri)))
                return cold_fail(c, "Out of memory"), -ENOMEM;
        for (size_t i = 0; i < p->domain->n_disks; i++) {
                const char *path = p->domain->disks[i].source;
                uint64_t length = 0;

                if (!p->disk_copied || !p->disk_copied[i] || !path)
                        continue;
                r = cold_copy_length(&c->copy, path, &length);
                if (r < 0)
                        return cold_fail(c, "Cannot read disk %s: %s", path, c->copy.error), r;
                total += length;
        }
        *ret_total = total;
        return 0;
}

/* What the copy made so far, for a daemon restarted after this one died (cold-note.h). */
static void note_copy(Migration *mig)
{
        ColdMigration *c = mig->cold;
        ColdNote n = { .pid = getpid(),
                       .id = mig->id,
                       .destination = c->dest,
                       .power = c->power,
                       .disks = c->disks };
        int r;

        r = cold_note_save(hw_runtime_dir(), c->uuid, &n);
        if (r < 0)
                log_warning_errno(r, "Migration %s: cannot note its copy in %s/cold: %m", mig->id,
                                  hw_runtime_dir());
}

/* A file was created there: noted before anything is written to it. */
static int copy_created(const char *path, void *userdata)
{
        Migration *mig = userdata;
        int r;

        r = strv_extend(&cold_of(mig)->disks, path);
        if (r < 0)
                return r;
        note_copy(mig);
        return 0;
}

/* The copy job: everything before the record moves. A failure restarts the guest here and
 * removes what was copied. */
static void work_copy(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        ColdMigration *c = mig->cold;
        const Preflight *p;
        int state = 0, reason = 0;
        uint64_t total = 0;
        int r;

        if (migration_choose_destination(m, mig, w) < 0) {
                cold_fail(c, "%s", w->error);
                return;
        }
        p = w->chosen;
        migration_live_update(mig, set_chosen_cb, (void *)p);
        if (connect_both(m, mig, w, false) < 0)
                return;
        w->dom = virDomainLookupByUUIDString(w->conn, p->domain->uuid);
        if (!w->dom)
                return cold_fail(c, "Domain %s is gone", p->domain->name);
        if (virDomainIsPersistent(w->dom) != 1)
                return cold_fail(c,
                                 "Domain %s is transient: cold migration shuts it down, and "
                                 "a transient domain is gone then; define it first ('virsh "
                                 "define')",
                                 p->domain->name);
        if (virDomainGetState(w->dom, &state, &reason, 0) < 0)
                return cold_fail(c, "Cannot read the state of %s: %s", p->domain->name,
                                 virt_last_error("unknown error"));
        /* the preflight said so already (domain-paused ...); it may have changed since */
        if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_SHUTOFF)
                return cold_fail(c,
                                 "Domain %s is %s: cold migration needs a running or shut-off "
                                 "domain",
                                 p->domain->name, virt_state_to_string(state));
        c->power = state == VIR_DOMAIN_RUNNING ? INSTANCE_POWER_RUNNING : INSTANCE_POWER_SHUTOFF;
        w->persist_xml = migration_dest_xml(w, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE |
                                                       VIR_DOMAIN_XML_INACTIVE);
        if (!w->persist_xml)
                return cold_fail(c, "Cannot read the XML of %s: %s", p->domain->name,
                                 virt_last_error("unknown error"));
        if (learn(mig, w, &total) < 0 || connect_both(m, mig, w, true) < 0)
                return;
        migration_live_update(mig, disk_total_cb, &total);
        if (abort_requested(mig))
                return cold_fail(c, "Aborted by an operator before the guest was shut down");

        note_copy(mig);
        r = c->power == INSTANCE_POWER_RUNNING ? shut_down(mig, w, mig->opts.shutdown_timeout) : 0;
        if (r >= 0) {
                migration_live_set_state(mig, MIGRATION_RUNNING);
                c->copy.progress = copy_progress;
                c->copy.cancelled = copy_cancelled;
                c->copy.created = copy_created;
                c->copy.userdata = mig;
                for (size_t i = 0; r >= 0 && i < p->domain->n_disks; i++) {
                        const char *path = p->domain->disks[i].source;
                        bool created = false;

                        if (!p->disk_copied || !p->disk_copied[i] || !path)
                                continue;
                        r = cold_copy_file(&c->copy, path, &created);
                        if (r < 0)
                                cold_fail(c, "Cannot copy disk %s to %s: %s", path, c->dest,
                                          c->copy.error);
                }
                cold_pools_destroy(w->conn, &c->copy.pools);
                cold_pools_destroy(w->dconn, &c->copy.dpools);
        }
        if (r >= 0) {
                c->copied = true;
                return;
        }
        /* nothing moved yet: the guest runs here again, the copies go */
        (void)remove_there(mig, w);
        restart_here(mig, w);
        (void)cold_note_forget(hw_runtime_dir(), c->uuid);
}

/* The land job: defined there, started there if it ran. A failure removes it there. */
static void work_land(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        ColdMigration *c = mig->cold;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + c->start_timeout;
        virDomainPtr ddom;

        ddom = virDomainDefineXML(w->dconn, w->persist_xml);
        if (!ddom) {
                cold_fail(c, "Cannot define %s on %s: %s", c->name, c->dest,
                          virt_last_error("unknown error"));
                (void)remove_there(mig, w);
                return;
        }
        /* the destination's hook refuses the start until its hostwardend read that the
         * record moved there (its next reconciliation pass: a heartbeat at most) */
        while (c->power == INSTANCE_POWER_RUNNING && virDomainCreate(ddom) < 0) {
                const char *e = virt_last_error("unknown error");

                if (!strstr(e, "records it as node") || now_usec(CLOCK_MONOTONIC) > deadline) {
                        cold_fail(c, "Cannot start %s on %s: %s", c->name, c->dest, e);
                        virDomainFree(ddom);
                        (void)remove_there(mig, w);
                        return;
                }
                (void)nanosleep(&(struct timespec){ .tv_nsec = POLL_INTERVAL_MS * 1000000L }, NULL);
        }
        virDomainFree(ddom);
        c->landed = true;
}

/* The revert job, first part: the destination's copy goes. */
static void work_unland(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        ColdMigration *c = mig->cold;

        c->done_ok = connect_both(m, mig, w, true) >= 0 && remove_there(mig, w) >= 0;
}

/* After a failed claim (the record never moved): the copies go, the guest runs here again. */
static void work_undo_copy(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;

        if (connect_both(m, mig, w, true) >= 0)
                (void)remove_there(mig, w);
        restart_here(mig, w);
        (void)cold_note_forget(hw_runtime_dir(), cold_of(mig)->uuid);
}

/* The revert job, second part: the guest here again. */
static void work_restart(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;

        if (connect_both(m, mig, w, false) < 0)
                return;
        restart_here(mig, w);
}

/* The confirm job: the source's copy and the files copied from here go; never another file. */
static void work_confirm(Manager *m, void *userdata)
{
        Migration *mig = userdata;
        MigrationWork *w = mig->work;
        ColdMigration *c = mig->cold;
        char err[512] = "";
        virDomainPtr dom;
        int r = 0;

        c->done_ok = false;
        if (connect_both(m, mig, w, false) < 0)
                return;
        dom = virDomainLookupByUUIDString(w->conn, c->uuid);
        if (dom) {
                if (virDomainIsActive(dom) == 1) {
                        cold_fail(c,
                                  "%s runs here although the record is %s's: stop it ('virsh "
                                  "destroy %s') and confirm again",
                                  c->name, c->dest, c->name);
                        r = -EBUSY;
                } else if (virDomainUndefineFlags(dom,
                                                  VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                                          VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                          VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) < 0) {
                        cold_fail(c, "Cannot undefine %s here: %s", c->name,
                                  virt_last_error("unknown error"));
                        r = -EIO;
                }
                virDomainFree(dom);
                if (r < 0)
                        return;
        }
        STRV_FOREACH (p, c->disks) {
                r = cold_delete_file(w->conn, *p, c->copy.prefix, &c->copy.pools, err, sizeof(err));
                if (r < 0) {
                        cold_fail(c, "Cannot delete %s here: %s", *p, err);
                        break;
                }
        }
        cold_pools_destroy(w->conn, &c->copy.pools);
        c->done_ok = r >= 0;
}

/* ---- the event loop's parts ------------------------------------------------------------ */

static void start_job(Manager *m, Migration *mig, JobWorkFunc work, JobDoneFunc done);

/* The end, through migration_done() as every migration's: completed (confirmed), aborted
 * (reverted by an operator) or failed (the reason in c->error). */
static void finish(Manager *m, Migration *mig, bool completed)
{
        ColdMigration *c = mig->cold;
        MigrationWork *w = mig->work;
        sd_bus_message *call = TAKE_PTR(c->call);

        c->confirm_timer = sd_event_source_disable_unref(c->confirm_timer);
        /* the record moved already (or back): migration_done() moves nothing; the names
         * for its log are these */
        migration_unreserve(m, w);
        w->chosen = NULL;
        free(w->a_uuid);
        w->a_uuid = NULL;
        if (c->name) { /* else (refused before a destination was chosen) the caller's name */
                w->adopted = true;
                (void)free_and_strdup(&w->a_name, c->name);
                (void)free_and_strdup(&w->a_dest, c->dest);
        }
        w->succeeded = completed;
        w->aborted = !completed && c->by_operator;
        if (!completed)
                migration_fail(w, "%s", c->error[0] ? c->error : "failed");
        migration_done(m, NULL, mig);
        if (call) {
                if (completed || (c->by_operator && !c->restart_failed))
                        (void)sd_bus_reply_method_return(call, NULL);
                else
                        (void)sd_bus_reply_method_errorf(call, HW_ERROR_LIBVIRT, "%s", c->error);
                sd_bus_message_unref(call);
        }
}

static void done_restart(Manager *m, sd_bus_message *msg, void *userdata)
{
        finish(m, userdata, false);
}

/* The record comes back here, then the guest starts here again. */
static void give_back(Manager *m, Migration *mig)
{
        ColdMigration *c = mig->cold;
        int r;

        r = record_change(m, mig, RECORD_BACK, COLD_VERIFY, NULL);
        if (r < 0) {
                size_t len = strlen(c->error);

                snprintf(c->error + len, sizeof(c->error) - len,
                         "%sthe instance record cannot come back to %s (%s): the guest is not "
                         "started here; see 'hostwardenctl instances'",
                         len ? "; " : "", m->config->node.name, strerror(-r));
                finish(m, mig, false);
                return;
        }
        start_job(m, mig, work_restart, done_restart);
}

static void arm_confirm_window(Manager *m, Migration *mig);

static void done_unland(Manager *m, sd_bus_message *msg, void *userdata)
{
        Migration *mig = userdata;
        ColdMigration *c = mig->cold;

        if (c->done_ok) {
                if (c->by_operator)
                        snprintf(c->error, sizeof(c->error),
                                 "Reverted by an operator: %s runs on %s again", c->name,
                                 m->config->node.name);
                give_back(m, mig);
                return;
        }
        /* the destination could not be asked: still in verify, the guest there */
        log_error("Migration %s: cannot revert: %s", mig->id, c->error);
        (void)record_change(m, mig, RECORD_TO_DEST, COLD_VERIFY, NULL);
        if (c->call) {
                (void)sd_bus_reply_method_errorf(c->call, HW_ERROR_LIBVIRT,
                                                 "Migration %s stays in verify: %s", mig->id,
                                                 c->error);
                c->call = sd_bus_message_unref(c->call);
        }
        c->by_operator = false;
        c->error[0] = '\0';
        arm_confirm_window(m, mig);
}

/* Back to the source: the destination's copy goes first (the record says reverting, so a
 * restarted daemon goes on with it). */
static void revert(Manager *m, Migration *mig)
{
        ColdMigration *c = mig->cold;

        c->confirm_timer = sd_event_source_disable_unref(c->confirm_timer);
        (void)record_change(m, mig, RECORD_TO_DEST, COLD_REVERTING, NULL);
        start_job(m, mig, work_unland, done_unland);
}

static void done_confirm(Manager *m, sd_bus_message *msg, void *userdata)
{
        Migration *mig = userdata;
        ColdMigration *c = mig->cold;
        int r;

        r = c->done_ok ? record_change(m, mig, RECORD_CONFIRMED, COLD_VERIFY, NULL) : 0;
        if (!c->done_ok || r < 0) {
                if (r < 0)
                        cold_fail(c, "Cannot clear the cold migration from the instance record: %s",
                                  strerror(-r));
                log_error("Migration %s: cannot confirm: %s", mig->id, c->error);
                if (c->call) {
                        (void)sd_bus_reply_method_errorf(c->call, HW_ERROR_LIBVIRT,
                                                         "Migration %s stays in verify: %s",
                                                         mig->id, c->error);
                        c->call = sd_bus_message_unref(c->call);
                }
                c->error[0] = '\0';
                return;
        }
        log_info("Migration %s: confirmed; %s is %s's, its copy and copied files here are gone",
                 mig->id, c->name, c->dest);
        finish(m, mig, true);
}

static void confirm(Manager *m, Migration *mig)
{
        cold_of(mig)->confirm_timer = sd_event_source_disable_unref(cold_of(mig)->confirm_timer);
        start_job(m, mig, work_confirm, done_confirm);
}

static int on_confirm_window(sd_event_source *s, uint64_t usec, void *userdata)
{
        Migration *mig = userdata;

        /* (a Confirm or Revert under way, or the revert of an adopted one, goes first) */
        if (mig->live.state != MIGRATION_VERIFY || cold_of(mig)->call || cold_of(mig)->job_running)
                return 0;
        log_info("Migration %s: confirm_window passed: confirmed", mig->id);
        confirm(mig->manager, mig);
        return 0;
}

static void arm_confirm_window(Manager *m, Migration *mig)
{
        ColdMigration *c = mig->cold;
        usec_t left = 0;
        int r;

        c->confirm_timer = sd_event_source_disable_unref(c->confirm_timer);
        if (m->config->migration.confirm_window == 0)
                return;
        if (cold_confirm_due(c->verify_since, m->config->migration.confirm_window, now_realtime(),
                             &left))
                left = 0;
        r = sd_event_add_time_relative(m->event, &c->confirm_timer, CLOCK_REALTIME, left, 0,
                                       on_confirm_window, mig);
        if (r < 0)
                log_warning_errno(r, "Migration %s: cannot arm confirm_window: %m", mig->id);
}

static void enter_verify(Manager *m, Migration *mig)
{
        ColdMigration *c = mig->cold;

        mig->live.state = MIGRATION_VERIFY;
        pthread_mutex_lock(&mig->lock);
        mig->live.progress = 100;
        mig->live.disk_processed = mig->live.disk_total;
        mig->live.disk_remaining = 0;
        pthread_mutex_unlock(&mig->lock);
        migration_publish_soon(mig);
        arm_confirm_window(m, mig);
        log_fields(LOG_INFO, 0,
                   LOG_FIELDS({ "HOSTWARDEN_MIGRATION", mig->id }, { "HOSTWARDEN_DOMAIN", c->name },
                              { "HOSTWARDEN_NODE", c->dest }),
                   "Migration %s: %s runs on %s; waiting in verify for 'hostwardenctl migration "
                   "confirm %s' or 'revert %s'",
                   mig->id, c->name, c->dest, mig->id, mig->id);
}

static void done_land(Manager *m, sd_bus_message *msg, void *userdata)
{
        Migration *mig = userdata;
        ColdMigration *c = mig->cold;
        MigrationWork *w = mig->work;
        int r;

        if (!c->landed) {
                give_back(m, mig);
                return;
        }
        r = record_change(m, mig, RECORD_TO_DEST, COLD_VERIFY, &c->verify_since);
        if (r < 0)
                log_warning_errno(r,
                                  "Migration %s: cannot note verify in the record (a "
                                  "restarted hostwardend reverts it): %m",
                                  mig->id);
        if (store_definition_put(m->store, c->uuid, w->persist_xml) < 0)
                log_warning("Migration %s: cannot save the definition of %s", mig->id, c->uuid);
        if (!c->verify_since)
                c->verify_since = now_realtime();
        migration_unreserve(m, w);
        enter_verify(m, mig);
}

static void done_copy(Manager *m, sd_bus_message *msg, void *userdata)
{
        Migration *mig = userdata;
        ColdMigration *c = mig->cold;
        int r;

        if (!c->copied) {
                c->by_operator = abort_requested(mig);
                finish(m, mig, false);
                return;
        }
        r = record_change(m, mig, RECORD_TO_DEST, COLD_LANDING, NULL);
        if (r < 0) {
                cold_fail(c, "Cannot move the instance record to %s: %s", c->dest,
                          r == -EBUSY ? "it is no longer this node's" : strerror(-r));
                /* the record did not move: unland only removes what was copied */
                start_job(m, mig, work_undo_copy, done_restart);
                return;
        }
        /* the record remembers it from now on */
        (void)cold_note_forget(hw_runtime_dir(), c->uuid);
        migration_live_set_state(mig, MIGRATION_POST_MIGRATING);
        migration_publish_soon(mig);
        start_job(m, mig, work_land, done_land);
}

static void done_any(Manager *m, sd_bus_message *msg, void *userdata)
{
        Migration *mig = userdata;

        cold_of(mig)->job_running = false;
        cold_of(mig)->next_done(m, msg, mig);
}

static void start_job(Manager *m, Migration *mig, JobWorkFunc work, JobDoneFunc done)
{
        int r;

        cold_of(mig)->next_done = done;
        cold_of(mig)->job_running = true;
        r = job_start(m, NULL, work, done_any, mig);
        if (r < 0) {
                cold_of(mig)->job_running = false;
                cold_fail(mig->cold, "Cannot start a worker thread: %s", strerror(-r));
                finish(m, mig, false);
        }
}

/* ---- the doors ------------------------------------------------------------------------- */

int migration_cold_start(Manager *m, Migration *mig)
{
        int r;

        mig->cold = cold_new(m->config, mig->id);
        if (!mig->cold)
                return -ENOMEM;
        cold_of(mig)->next_done = done_copy;
        cold_of(mig)->job_running = true;
        r = job_start(m, NULL, work_copy, done_any, mig);
        if (r < 0)
                migration_cold_free(mig);
        return r;
}

int migration_cold_check(Migration *mig, const char *verb, sd_bus_error *error)
{
        if (!mig->opts.cold)
                return sd_bus_error_setf(error, HW_ERROR_NOT_RUNNING,
                                         "Migration %s is a %s migration: only a cold migration "
                                         "waits in state verify for %s",
                                         mig->id, mig->opts.block ? "block" : "live", verb);
        if (mig->live.state != MIGRATION_VERIFY)
                return sd_bus_error_setf(error, HW_ERROR_NOT_RUNNING,
                                         "Migration %s is %s: %s applies to a cold migration in "
                                         "state verify",
                                         mig->id, migration_state_to_string(mig->live.state), verb);
        if (cold_of(mig)->call || cold_of(mig)->job_running)
                return sd_bus_error_setf(error, HW_ERROR_BUSY,
                                         "Migration %s is being confirmed or reverted already",
                                         mig->id);
        return 0;
}

int migration_cold_confirm(Migration *mig, sd_bus_message *msg)
{
        cold_of(mig)->call = sd_bus_message_ref(msg);
        confirm(mig->manager, mig);
        return 1;
}

int migration_cold_revert(Migration *mig, sd_bus_message *msg)
{
        cold_of(mig)->call = sd_bus_message_ref(msg);
        cold_of(mig)->by_operator = true;
        revert(mig->manager, mig);
        return 1;
}

int migration_cold_refuse_abort(Migration *mig, sd_bus_error *error)
{
        if (!mig->opts.cold ||
            (mig->live.state != MIGRATION_POST_MIGRATING && mig->live.state != MIGRATION_VERIFY))
                return 0;
        sd_bus_error_setf(error, HW_ERROR_NOT_RUNNING,
                          "Migration %s is %s: the guest is on %s already; 'hostwardenctl "
                          "migration revert %s' brings it back once in verify",
                          mig->id, migration_state_to_string(mig->live.state),
                          strna(mig->live.destination), mig->id);
        return 1;
}

static bool id_is_valid(const char *id)
{
        if (!id || strlen(id) != 16)
                return false;
        for (const char *p = id; *p; p++)
                if (!strchr("0123456789abcdef", *p))
                        return false;
        return true;
}

static int copy_disks(char *const *from, char ***to)
{
        STRV_FOREACH (p, from)
                if (strv_extend(to, *p) < 0)
                        return -ENOMEM;
        return 0;
}

/* The Migration of a cold migration the record says this node is the source of. */
static int adopt(Manager *m, const InstanceRecord *rec)
{
        const ConfigPeer *peer = config_find_peer(m->config, rec->owner);
        MigrateOptions opts;
        ColdMigration *c;
        MigrationWork *w;
        Migration *mig;
        int r;

        migrate_options_defaults(m->config, &opts);
        opts.cold = true;
        opts.shutdown_timeout = m->config->migration.shutdown_timeout;
        r = migration_new(m, rec->name ?: rec->uuid, &opts, &mig);
        if (r < 0)
                return r;
        /* the same object as before the restart */
        memcpy(mig->id, rec->cold_migration, sizeof(mig->id));
        free(mig->path);
        mig->path = NULL;
        c = mig->cold = cold_new(m->config, mig->id);
        mig->work = w = migration_work_new();
        if (!c || !w || asprintf(&mig->path, HW_MIGRATION_PATH_PREFIX "/%s", mig->id) < 0 ||
            !(c->uuid = strdup(rec->uuid)) || !(c->name = strdup(rec->name ?: rec->uuid)) ||
            !(c->dest = strdup(rec->owner)) ||
            (peer && !(c->dest_uri = strdup(peer->libvirt_uri))) ||
            copy_disks(rec->cold_disks, &c->disks) < 0 ||
            free_and_strdup(&mig->live.domain_uuid, rec->uuid) < 0 ||
            free_and_strdup(&mig->live.domain_name, c->name) < 0 ||
            free_and_strdup(&mig->live.destination, rec->owner) < 0) {
                migration_free(mig);
                return -ENOMEM;
        }
        c->power = rec->cold_power;
        c->verify_since = rec->time;
        w->adopted = true;
        mig->live.started = rec->time;
        r = migration_publish(m, mig, MIGRATION_VERIFY);
        if (r < 0) {
                migration_free(mig);
                return r;
        }
        if (cold_state_from_string(rec->cold_state) != COLD_VERIFY) {
                /* it was landing or reverting when this daemon stopped: back here */
                log_warning("Migration %s of %s was %s when hostwardend stopped: reverted", mig->id,
                            c->name, rec->cold_state);
                cold_fail(c, "hostwardend stopped while the migration was %s; reverted",
                          rec->cold_state);
                revert(m, mig);
                return 0;
        }
        log_info("Migration %s: %s is in verify on %s (found in the store)", mig->id, c->name,
                 c->dest);
        enter_verify(m, mig);
        return 0;
}

int migrations_cold_adopt(Manager *m, const InstanceRecord *inst, size_t n)
{
        const char *self = m->config->node.name;
        int r;

        for (size_t i = 0; i < n; i++) {
                const InstanceRecord *rec = &inst[i];
                bool known = false;

                if (!streq_ptr(rec->cold_source, self) || rec->deleted ||
                    !id_is_valid(rec->cold_migration))
                        continue;
                for (Migration *x = m->migrations; x && !known; x = x->next)
                        known = streq(x->id, rec->cold_migration);
                if (known || migration_busy(m, rec->uuid))
                        continue;
                r = adopt(m, rec);
                if (r < 0)
                        log_warning_errno(r, "Cannot take up the cold migration of %s: %m",
                                          rec->uuid);
        }
        cold_copies_recover(m);
        return 0;
}
