/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Maintenance's drain (maintenance-drain.h, docs/maintenance.md): Enter, Cancel and Exit,
 * the looks at the node that move the state on, and the shutdowns of the guests whose
 * strategy is to shut down.
 *
 * The state lives in this node's record in the store (maintenance-state.h), so that a
 * restart of hostwardend, or of the node, goes on from where it was: a look at the node is
 * the same whether it follows Enter, the end of a migration or a heartbeat. A look is Plan()'s
 * decisions (maintenance.c), acted on: a guest to migrate is queued to the plan's
 * destination unless a migration of it is under way already, a guest to shut down gets its
 * ACPI shutdown and is destroyed after [migration] shutdown_timeout, a blocked guest is
 * listed in Blocked. What the drain queued is remembered here (in memory): Cancel aborts
 * what has not started, and a migration of the drain that failed is not tried again by the
 * next look (its guest is blocked, with its error) until the next Enter.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus-args.h"
#include "errors.h"
#include "job.h"
#include "log.h"
#include "maintenance-dbus.h"
#include "maintenance-drain.h"
#include "migrate-opts.h"
#include "migration-internal.h"
#include "node-state.h"
#include "polkit.h"
#include "store-attach.h"
#include "util.h"
#include "virt.h"

#define SHUTDOWN_POLL_MS 500
/* A blocked node is looked at on the heartbeat at most this often: a look runs CheckMigration
 * on every peer for each blocked guest, and what unblocks it is an operator's doing. */
#define BLOCKED_LOOK_INTERVAL (15 * USEC_PER_SEC)

/* A migration the drain queued. */
/* A migration the drain queued, or one of a guest of this node it found under way (an
 * operator's, or one adopted after a restart): its guest leaves with it, and its end is
 * the drain's (recorded for the return, or the guest blocked), but Cancel leaves it be. */
typedef struct DrainMigration {
        char id[17];
        char uuid[VIR_UUID_STRING_BUFLEN];
        bool found;
} DrainMigration;

/* A guest being shut down by the drain, in a worker. */
typedef struct DrainShutdown {
        Manager *manager;
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *name;
        usec_t timeout;
        atomic_bool stop; /* Cancel, or the daemon's stop: stop waiting, destroy nothing */
        char *error;
        struct DrainShutdown *next;
} DrainShutdown;

typedef struct MaintenanceRun {
        bool evaluating, again; /* one look at a time; another after it when asked meanwhile */
        bool stopping;          /* the daemon stops: a look that ends starts nothing */
        uint64_t last_look;     /* CLOCK_MONOTONIC of the last look's start */
        DrainMigration *migrations;
        size_t n_migrations;
        char **failed;  /* UUID, then the reason, of guests whose move failed */
        char **blocked; /* domain, then why: Blocked */
        DrainShutdown *shutdowns;
} MaintenanceRun;

/* Appends a pair (key, printf-formatted value) to the list l of pairs. */
_printf_(3, 4) static void pair_add(char ***l, const char *key, const char *format, ...)
{
        char *v = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&v, format, ap) < 0)
                v = NULL;
        va_end(ap);
        if (v && strv_extend(l, key) >= 0)
                (void)strv_push(l, v);
        else
                free(v);
}

static const char *pair_find(char **l, const char *key)
{
        for (size_t i = 0; l && l[i] && l[i + 1]; i += 2)
                if (streq(l[i], key))
                        return l[i + 1];
        return NULL;
}

static MaintenanceRun *run_get(Manager *m)
{
        if (!m->maintenance_run)
                m->maintenance_run = calloc(1, sizeof(MaintenanceRun));
        return m->maintenance_run;
}

/* What the last Enter started, forgotten (Cancel, Exit, the next Enter). */
static void run_forget(MaintenanceRun *run)
{
        free(run->migrations);
        run->migrations = NULL;
        run->n_migrations = 0;
        run->failed = strv_free(run->failed);
        run->blocked = strv_free(run->blocked);
        for (DrainShutdown *s = run->shutdowns; s; s = s->next)
                atomic_store(&s->stop, true);
}

/* ---- the record ------------------------------------------------------------------------- */

typedef struct RecordArgs {
        MaintenanceState state;
        bool set_deadline;
        uint64_t deadline;
        bool clear_left;
        bool ask_return;  /* Exit(true): ask for the guests that left */
        const char *left; /* "UUID@NODE" to append */
} RecordArgs;

static int mutate_maintenance(NodeRecord *rec, void *userdata)
{
        const RecordArgs *a = userdata;

        if (a->left) {
                char *v = NULL;

                if (asprintf(&v, "%s%s%s", strempty(rec->maintenance_left),
                             rec->maintenance_left ? "," : "", a->left) < 0)
                        return -ENOMEM;
                free(rec->maintenance_left);
                rec->maintenance_left = v;
                return 0;
        }
        if (rec->maintenance != a->state)
                rec->maintenance_since = a->state == MAINTENANCE_OFF ? 0 : now_realtime();
        rec->maintenance = a->state;
        if (a->set_deadline)
                rec->maintenance_deadline = a->deadline;
        if (a->clear_left) {
                free(rec->maintenance_left);
                rec->maintenance_left = NULL;
        }
        /* asked only when there is something to return, and never while in maintenance */
        rec->maintenance_return = a->ask_return && rec->maintenance_left;
        return 0;
}

static int record_update(Manager *m, const RecordArgs *a)
{
        int r;

        if (!m->store)
                return -ENOTCONN;
        r = store_node_update(m->store, m->config->node.name, mutate_maintenance, (void *)a, NULL);
        if (r >= 0 && !a->left)
                (void)sd_bus_emit_properties_changed(m->bus, HW_MAINTENANCE_PATH,
                                                     HW_MAINTENANCE_INTERFACE, "State", "Blocked",
                                                     "Deadline", NULL);
        return r;
}

static int record_state(Manager *m, MaintenanceState s)
{
        return record_update(m, &(RecordArgs){ .state = s });
}

/* This node's maintenance state and deadline, from its record (off when there is none). */
static MaintenanceState own_state(Manager *m, uint64_t *ret_deadline)
{
        NodeRecord rec = { 0 };
        MaintenanceState s;

        if (node_own_record(m, &rec) < 0)
                rec.maintenance = MAINTENANCE_OFF;
        s = rec.maintenance;
        if (ret_deadline)
                *ret_deadline = rec.maintenance_deadline;
        node_record_done(&rec);
        return s;
}

/* ---- shutdowns -------------------------------------------------------------------------- */

static void shutdown_free(DrainShutdown *s)
{
        free(s->name);
        free(s->error);
        free(s);
}

/* ACPI first, so that the guest's OS shuts down cleanly; destroyed when the timeout passed
 * (as a cold migration's shutdown, migration-cold.c). Stopped waiting, nothing destroyed,
 * when the drain is cancelled. */
static void shutdown_work(Manager *m, void *userdata)
{
        DrainShutdown *s = userdata;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + s->timeout;
        virConnectPtr conn = NULL;
        virDomainPtr dom = NULL;
        int state = 0, reason = 0;
        char err[512];

        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                s->error = strdup(err);
                return;
        }
        dom = virDomainLookupByUUIDString(conn, s->uuid);
        if (!dom)
                goto out; /* gone meanwhile: nothing to shut down */
        if (s->timeout > 0 && virDomainShutdown(dom) < 0)
                log_info("Maintenance: %s refuses an ACPI shutdown (%s): destroyed at once",
                         s->name, virt_last_error("unknown error"));
        else
                while (now_usec(CLOCK_MONOTONIC) < deadline) {
                        if (virDomainGetState(dom, &state, &reason, 0) == 0 &&
                            state == VIR_DOMAIN_SHUTOFF)
                                goto out;
                        if (atomic_load(&s->stop))
                                goto out;
                        (void)nanosleep(
                                &(struct timespec){ .tv_nsec = SHUTDOWN_POLL_MS * 1000000L }, NULL);
                }
        if (virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_SHUTOFF)
                goto out;
        if (s->timeout > 0)
                log_info("Maintenance: %s did not shut down within %llu s: destroyed", s->name,
                         (unsigned long long)(s->timeout / USEC_PER_SEC));
        if (virDomainDestroy(dom) < 0)
                s->error = strdup(virt_last_error("unknown error"));
out:
        if (dom)
                virDomainFree(dom);
        virConnectClose(conn);
}

static void shutdown_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        DrainShutdown *s = userdata;
        MaintenanceRun *run = m->maintenance_run;
        bool stopped = atomic_load(&s->stop);

        for (DrainShutdown **p = &run->shutdowns; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        if (s->error && !stopped) {
                log_warning("Maintenance: %s cannot be shut down: %s", s->name, s->error);
                pair_add(&run->failed, s->uuid, "its shutdown failed: %s", s->error);
        } else if (!stopped)
                log_info("Maintenance: %s is shut down", s->name);
        shutdown_free(s);
        if (!stopped)
                maintenance_evaluate(m);
}

static bool shutting_down(MaintenanceRun *run, const char *uuid)
{
        for (DrainShutdown *s = run->shutdowns; s; s = s->next)
                if (streq(s->uuid, uuid))
                        return true;
        return false;
}

static int shutdown_start(Manager *m, MaintenanceRun *run, const MaintenanceDecision *d)
{
        DrainShutdown *s;
        int r;

        s = calloc(1, sizeof(DrainShutdown));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        memcpy(s->uuid, d->uuid, sizeof(s->uuid));
        s->timeout = m->config->migration.shutdown_timeout;
        s->name = strdup(d->name);
        if (!s->name) {
                shutdown_free(s);
                return -ENOMEM;
        }
        r = job_start(m, NULL, shutdown_work, shutdown_done, s);
        if (r < 0) {
                shutdown_free(s);
                return r;
        }
        s->next = run->shutdowns;
        run->shutdowns = s;
        log_info("Maintenance: %s is shut down (ACPI, destroyed after %llu s)", d->name,
                 (unsigned long long)(s->timeout / USEC_PER_SEC));
        return 0;
}

/* ---- the migrations of the drain -------------------------------------------------------- */

/* The drain's migrations that ended, out of its list: a guest that left is recorded for
 * Exit's return, one that did not is not tried again. */
static void sweep_migrations(Manager *m, MaintenanceRun *run)
{
        size_t kept = 0;

        for (size_t i = 0; i < run->n_migrations; i++) {
                DrainMigration *d = &run->migrations[i];
                Migration *x = migration_by_id(m, d->id);
                char left[VIR_UUID_STRING_BUFLEN + 256];

                if (x && !migration_state_is_final(x->live.state)) {
                        run->migrations[kept++] = *d;
                        continue;
                }
                if (x && x->live.state == MIGRATION_COMPLETED) {
                        snprintf(left, sizeof(left), "%s@%s", d->uuid, strna(x->live.destination));
                        if (record_update(m, &(RecordArgs){ .left = left }) < 0)
                                log_warning("Maintenance: cannot record that %s left for %s "
                                            "(Exit's return will not bring it back)",
                                            d->uuid, strna(x->live.destination));
                        continue;
                }
                pair_add(&run->failed, d->uuid, "its migration %s %s: %s", d->id,
                         x ? migration_state_to_string(x->live.state) : "ended",
                         x ? strna(x->live.error) : "no longer followed");
        }
        run->n_migrations = kept;
}

static int track(MaintenanceRun *run, const char *id, const char *uuid, bool found)
{
        DrainMigration *a;

        for (size_t i = 0; i < run->n_migrations; i++)
                if (streq(run->migrations[i].id, id))
                        return 0;
        a = reallocarray(run->migrations, run->n_migrations + 1, sizeof(DrainMigration));
        if (!a)
                return -ENOMEM;
        run->migrations = a;
        a = &run->migrations[run->n_migrations++];
        *a = (DrainMigration){ .found = found };
        snprintf(a->id, sizeof(a->id), "%s", id);
        snprintf(a->uuid, sizeof(a->uuid), "%s", uuid);
        return 0;
}

static int migration_queue(Manager *m, MaintenanceRun *run, const MaintenanceDecision *d,
                           sd_bus_error *error)
{
        MigrateOptions opts;
        Migration *mig;
        int r;

        /* what EvacuateLive without options queues: [migration]'s defaults */
        migrate_options_defaults(m->config, &opts);
        r = migrate_options_check_tls(m->config, &opts, error);
        if (r >= 0)
                r = migration_create(m, d->uuid, d->uuid, d->name, strempty(d->dest), &opts, &mig,
                                     error);
        if (r < 0)
                return r;
        /* not followed, on ENOMEM: the next look finds it under way and follows it */
        (void)track(run, mig->id, d->uuid, false);
        log_info("Maintenance: migration %s of %s to %s queued", mig->id, d->name,
                 strempty(d->dest));
        return 0;
}

/* ---- a look at the node ----------------------------------------------------------------- */

static void add_blocked(MaintenanceRun *run, const char *name, const char *why)
{
        pair_add(&run->blocked, name, "%s", why);
}

static bool strv_same(char **a, char **b)
{
        size_t i = 0;

        for (; a && b && a[i] && b[i]; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return (!a || !a[i]) && (!b || !b[i]);
}

static void evaluated(Manager *m, const MaintenanceDecision *dec, size_t n, const char *error,
                      void *userdata)
{
        _cleanup_strv_free_ char **before = NULL; /* Blocked, from the look before */
        MaintenanceRun *run = userdata;
        MaintenanceStateFacts f = { 0 };
        uint64_t deadline = 0;
        bool queued = false;

        run->evaluating = false;
        if (run->stopping)
                return;
        f.current = own_state(m, &deadline);
        if (f.current == MAINTENANCE_OFF)
                return; /* cancelled or exited meanwhile */
        if (error) {
                log_warning("Maintenance: cannot look at this node's domains (tried again on "
                            "the next heartbeat): %s",
                            error);
                goto again;
        }
        f.deadline_passed = deadline > 0 && now_realtime() >= deadline;
        sweep_migrations(m, run);
        before = TAKE_PTR(run->blocked);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                const MaintenanceDecision *d = &dec[i];
                const char *failed;

                if (!d->active)
                        continue;
                f.n_running++;
                /* a migration of it under way (the drain's, or anybody's) moves it */
                if (d->migrating_id || shutting_down(run, d->uuid)) {
                        if (d->migrating_id)
                                (void)track(run, d->migrating_id, d->uuid, true);
                        f.n_moving++;
                        /* it may still leave, but the operator is told what is left */
                        if (f.deadline_passed && d->migrating_id)
                                pair_add(&run->blocked, d->name,
                                         "deadline passed (its migration %s is still under way)",
                                         d->migrating_id);
                        else if (f.deadline_passed)
                                add_blocked(run, d->name,
                                            "deadline passed (its shutdown is still under way)");
                        continue;
                }
                failed = pair_find(run->failed, d->uuid);
                if (failed) {
                        add_blocked(run, d->name, failed);
                        continue;
                }
                if (d->action == MAINTENANCE_ACTION_BLOCKED ||
                    d->action == MAINTENANCE_ACTION_NONE) {
                        add_blocked(run, d->name, d->reason);
                        continue;
                }
                /* no guest is destroyed for a deadline, and none starts leaving after it */
                if (f.deadline_passed) {
                        add_blocked(run, d->name, "deadline passed");
                        continue;
                }
                if (d->action == MAINTENANCE_ACTION_SHUTDOWN) {
                        if (shutdown_start(m, run, d) < 0)
                                add_blocked(run, d->name, "its shutdown cannot be started");
                        else
                                f.n_moving++;
                        continue;
                }
                if (migration_queue(m, run, d, &e) < 0) {
                        pair_add(&run->failed, d->uuid, "its migration cannot be queued: %s",
                                 e.message ?: "error");
                        add_blocked(run, d->name, pair_find(run->failed, d->uuid) ?: "error");
                        continue;
                }
                f.n_moving++;
                queued = true;
        }
        if (queued)
                migrations_schedule(m);
        {
                MaintenanceState next = maintenance_state_next(&f);

                if (next != f.current) {
                        log_fields(LOG_NOTICE, 0,
                                   LOG_FIELDS({ "HOSTWARDEN_NODE", m->config->node.name }),
                                   "Maintenance of %s: %s%s", m->config->node.name,
                                   maintenance_state_to_string(next),
                                   next == MAINTENANCE_READY ? " (no guest left running: safe to "
                                                               "reboot)"
                                                             : "");
                        if (record_state(m, next) < 0)
                                log_warning("Maintenance: cannot record the state %s (tried "
                                            "again on the next heartbeat)",
                                            maintenance_state_to_string(next));
                } else if (!strv_same(before, run->blocked))
                        (void)sd_bus_emit_properties_changed(m->bus, HW_MAINTENANCE_PATH,
                                                             HW_MAINTENANCE_INTERFACE, "Blocked",
                                                             NULL);
        }
again:
        if (run->again) {
                run->again = false;
                maintenance_evaluate(m);
        }
}

void maintenance_evaluate(Manager *m)
{
        MaintenanceRun *run = run_get(m);
        int r;

        if (!run || !m->store || run->stopping)
                return;
        if (run->evaluating) {
                run->again = true;
                return;
        }
        if (own_state(m, NULL) == MAINTENANCE_OFF)
                return;
        r = maintenance_plan_start(m, evaluated, run);
        if (r < 0)
                log_warning_errno(r, "Maintenance: cannot look at this node's domains: %m");
        else {
                run->evaluating = true;
                run->last_look = now_usec(CLOCK_MONOTONIC);
        }
}

void maintenance_migration_ended(Manager *m, Migration *mig)
{
        MaintenanceRun *run = m->maintenance_run;

        if (!run)
                return;
        for (size_t i = 0; i < run->n_migrations; i++)
                if (streq(run->migrations[i].id, mig->id)) {
                        maintenance_evaluate(m);
                        return;
                }
}

void maintenance_heartbeat(Manager *m)
{
        MaintenanceRun *run = run_get(m);

        /* also what takes a maintenance up again after a restart of hostwardend or the node */
        if (run && (own_state(m, NULL) != MAINTENANCE_BLOCKED || run->last_look == 0 ||
                    now_usec(CLOCK_MONOTONIC) >= run->last_look + BLOCKED_LOOK_INTERVAL))
                maintenance_evaluate(m);
        maintenance_return_tick(m);
}

void maintenance_stop(Manager *m)
{
        MaintenanceRun *run = m->maintenance_run;

        /* the shutdowns stop waiting, so that the daemon's stop does not wait for them; the
         * next hostwardend's first look shuts those guests down again */
        if (!run)
                return;
        run->stopping = true;
        for (DrainShutdown *s = run->shutdowns; s; s = s->next)
                atomic_store(&s->stop, true);
}

void maintenance_free(Manager *m)
{
        MaintenanceRun *run = m->maintenance_run;

        if (!run)
                return;
        run_forget(run);
        free(run);
        m->maintenance_run = NULL;
}

/* ---- the properties --------------------------------------------------------------------- */

const char *maintenance_state_word(Manager *m)
{
        return maintenance_state_to_string(own_state(m, NULL));
}

uint64_t maintenance_deadline(Manager *m)
{
        uint64_t deadline = 0;

        (void)own_state(m, &deadline);
        return deadline;
}

int maintenance_append_blocked(Manager *m, sd_bus_message *reply)
{
        MaintenanceRun *run = m->maintenance_run;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        if (r < 0)
                return r;
        if (run && own_state(m, NULL) != MAINTENANCE_OFF)
                for (size_t i = 0; run->blocked && run->blocked[i] && run->blocked[i + 1]; i += 2) {
                        r = sd_bus_message_append(reply, "(ss)", run->blocked[i],
                                                  run->blocked[i + 1]);
                        if (r < 0)
                                return r;
                }
        return sd_bus_message_close_container(reply);
}

/* ---- the methods ------------------------------------------------------------------------ */

/* Enter's options: "deadline" (t or u, seconds from now, > 0). */
static int read_enter_option(sd_bus_message *msg, const char *key, const char *type, void *userdata,
                             sd_bus_error *error)
{
        uint64_t *deadline = userdata;
        int r;

        if (!streq(key, "deadline"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown option '%s'; expected deadline (t, seconds "
                                         "from now)",
                                         key);
        r = migrate_options_read_uint(msg, key, type, UINT64_MAX / USEC_PER_SEC / 2, deadline,
                                      error);
        if (r < 0)
                return r;
        if (*deadline == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'deadline' must be at least 1 (seconds from "
                                         "now); leave it out for no deadline");
        return 0;
}

/* Cancel's and Exit's end: the state off in the record, the node enabled. */
static int end_maintenance(Manager *m, bool ask_return, sd_bus_error *error)
{
        int r;

        if (m->maintenance_run)
                run_forget(m->maintenance_run);
        r = record_update(m, &(RecordArgs){
                                     .state = MAINTENANCE_OFF,
                                     .set_deadline = true,
                                     .ask_return = ask_return,
                             });
        if (r < 0)
                return sd_bus_error_set_errnof(error, r,
                                               "Cannot record the end of the maintenance: %m");
        return node_set_disabled(m, false, NULL, error);
}

static int not_in_maintenance(sd_bus_error *error, const char *method)
{
        return sd_bus_error_setf(error, HW_ERROR_NOT_RUNNING,
                                 "This node is not in maintenance: nothing to %s "
                                 "(hostwardenctl maintenance enter starts one)",
                                 method);
}

int maintenance_method_enter(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint64_t deadline = 0;
        MaintenanceState s;
        char reason[128], since[64];
        int r;

        r = bus_options_foreach(msg, read_enter_option, &deadline, error);
        if (r < 0)
                return r;
        r = store_attach_require(m, error);
        if (r < 0)
                return r;
        if (!run_get(m))
                return -ENOMEM;
        /* the state is checked after polkit: it is the state of now, however long polkit
         * took (so is Cancel's and Exit's) */
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        s = own_state(m, NULL);
        if (s != MAINTENANCE_OFF)
                return sd_bus_error_setf(error, HW_ERROR_BUSY,
                                         "This node is in maintenance already (%s): "
                                         "hostwardenctl maintenance status shows it; cancel or "
                                         "exit ends it",
                                         maintenance_state_to_string(s));

        run_forget(m->maintenance_run);
        r = record_update(
                m, &(RecordArgs){
                           .state = MAINTENANCE_DRAINING,
                           .set_deadline = true,
                           .deadline = deadline ? now_realtime() + deadline * USEC_PER_SEC : 0,
                           .clear_left = true,
                   });
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot record the maintenance: %m");
        snprintf(reason, sizeof(reason), "maintenance (entered at %s)",
                 format_timestamp_now(since, sizeof(since)));
        r = node_set_disabled(m, true, reason, error);
        if (r < 0) {
                (void)record_state(m, MAINTENANCE_OFF);
                return r;
        }
        log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "HOSTWARDEN_NODE", m->config->node.name }),
                   "Maintenance of %s: draining%s", m->config->node.name,
                   deadline ? " (with a deadline)" : "");
        maintenance_evaluate(m);
        return sd_bus_reply_method_return(msg, NULL);
}

/* A queued migration of the drain ends before it starts (as Migration.Abort ends one); a
 * running one is asked to abort when abort is true, and finishes otherwise. */
static void stop_migration(Migration *mig, bool abort)
{
        if (mig->live.state == MIGRATION_QUEUED) {
                mig->live.state = MIGRATION_ABORTED;
                mig->live.finished = now_realtime();
                (void)free_and_strdup(&mig->live.error,
                                      "Aborted before it started: the maintenance was cancelled");
                migration_let_go(mig);
                migration_publish_soon(mig);
                migration_keep_finished(mig);
                log_info("Maintenance: queued migration %s aborted", mig->id);
                return;
        }
        if (!abort || migration_state_is_final(mig->live.state) || !mig->work ||
            mig->abort_accepted)
                return;
        mig->abort_accepted = true;
        atomic_store(&mig->request, MIGRATION_REQUEST_ABORT);
        log_info("Maintenance: running migration %s asked to abort", mig->id);
}

int maintenance_method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        MaintenanceRun *run;
        int abort, r;

        r = sd_bus_message_read(msg, "b", &abort);
        if (r < 0)
                return r;
        r = store_attach_require(m, error);
        if (r < 0)
                return r;
        run = run_get(m);
        if (!run)
                return -ENOMEM;
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        if (own_state(m, NULL) == MAINTENANCE_OFF)
                return not_in_maintenance(error, "cancel");

        for (size_t i = 0; i < run->n_migrations; i++) {
                Migration *mig = migration_by_id(m, run->migrations[i].id);

                if (mig && !run->migrations[i].found)
                        stop_migration(mig, abort);
        }
        r = end_maintenance(m, false, error);
        if (r < 0)
                return r;
        log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "HOSTWARDEN_NODE", m->config->node.name }),
                   "Maintenance of %s cancelled%s: the node is enabled again", m->config->node.name,
                   abort ? " (running migrations aborted)" : "");
        migrations_schedule(m);
        return sd_bus_reply_method_return(msg, NULL);
}

int maintenance_method_exit(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        MaintenanceState s;
        int return_guests, r;

        r = sd_bus_message_read(msg, "b", &return_guests);
        if (r < 0)
                return r;
        r = store_attach_require(m, error);
        if (r < 0)
                return r;
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        s = own_state(m, NULL);
        if (s == MAINTENANCE_OFF)
                return not_in_maintenance(error, "exit");
        if (s == MAINTENANCE_DRAINING)
                return sd_bus_error_setf(error, HW_ERROR_BUSY,
                                         "The drain is under way: cancel stops it (hostwardenctl "
                                         "maintenance cancel), or wait until the state is ready "
                                         "or blocked");

        /* the guests that left stay recorded: they are what a return brings back, now or
         * never (the next Enter forgets them) */
        r = end_maintenance(m, return_guests, error);
        if (r < 0)
                return r;
        log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "HOSTWARDEN_NODE", m->config->node.name }),
                   "Maintenance of %s ended: the node is enabled again%s", m->config->node.name,
                   return_guests ? "; the nodes running the guests that left send them back" : "");
        return sd_bus_reply_method_return(msg, NULL);
}
