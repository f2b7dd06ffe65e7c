/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.hostwarden.Warden1.Migration (DESIGN.md §7): the objects' vtable and properties, Abort
 * and ForceComplete, PropertiesChanged at most twice a second, MigrationNew and Removed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "instance-ops.h"
#include "log.h"
#include "migration-cold.h"
#include "migration-internal.h"
#include "polkit.h"
#include "util.h"

/* PropertiesChanged at most twice a second: never two within this (over 500 ms, so that no
 * window of one second can hold three, even as a client that receives them late sees it) */
#define PUBLISH_INTERVAL (550 * USEC_PER_MSEC)
#define QUIET_START      (1 * USEC_PER_SEC)

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
        CHANGED_U(network_downtime, "NetworkDowntime");
        CHANGED_U(progress, "Progress");
        CHANGED_U(post_copy, "PostCopy");
        if (!streq(a->policy, b->policy)) {
                memcpy(a->policy, b->policy, sizeof(a->policy));
                names[n++] = "Policy";
        }
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

        r = emit_changes(mig, false);
        /* the time it really went out, not when it was due nor when this loop iteration
         * began (sd_event_now(): handlers before this one may have taken a while): the
         * spacing is from emission to emission */
        usec = now_usec(CLOCK_MONOTONIC);
        if (r < 0)
                log_warning_errno(r, "Migration %s: cannot announce changes: %m", mig->id);
        if (r > 0)
                mig->last_emit = usec;
        if (migration_state_is_final(mig->pub.state))
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        /* while it runs: look again in PUBLISH_INTERVAL */
        r = sd_event_source_set_time(s, usec + PUBLISH_INTERVAL);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return r;
}

/* Changes go out now, or PUBLISH_INTERVAL after the last emission if that is later: never
 * more often, never later than needed (a completion is announced at once). */
void migration_publish_soon(Migration *mig)
{
        uint64_t now = 0, when;

        (void)sd_event_now(mig->manager->event, CLOCK_MONOTONIC, &now);
        when = now;
        /* progress is announced from the first second on; a migration that ends before
         * that is announced once, when it ends (Get shows the current values anyway) */
        if (!migration_state_is_final(mig->live.state) &&
            when < mig->created_monotonic + QUIET_START)
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

static int on_expire(sd_event_source *s, uint64_t usec, void *userdata)
{
        Migration *mig = userdata;
        Manager *m = mig->manager;

        (void)sd_bus_emit_signal(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "MigrationRemoved", "so",
                                 mig->id, mig->path);
        migration_unlink(m, mig);
        migration_free(mig);
        return 0;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Migration *mig = userdata;
        _cleanup_(migration_info_done) MigrationInfo copy = {};
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
        S("Mode", mig->opts.cold ? "cold" : mig->opts.block ? "block" : "live");
        S("State", migration_state_to_string(i->state));
        S("Error", i->error);
        S("Policy", i->policy);
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
        U("NetworkDowntime", i->network_downtime);
        if (streq(property, "Progress"))
                return sd_bus_message_append(reply, "u", i->progress);
        if (streq(property, "PostCopy"))
                return sd_bus_message_append(reply, "b", i->post_copy);
#undef U
#undef S
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property);
}

/* Abort() [migrate]: a queued migration ends at once; a running one when libvirt has aborted
 * it, and the call is answered then. */
static int method_abort(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Migration *mig = userdata;
        sd_bus_message **calls;
        bool post_copy;
        int r;

        /* the checks come after polkit, so they are of the state of now; a migration removed
         * while polkit answered is no object any more, and sd-bus answers UnknownObject */
        r = polkit_verify(mig->manager, msg, error);
        if (r != 0)
                return r;
        if (migration_cold_refuse_abort(mig, error))
                return -EBUSY;
        if (mig->live.state == MIGRATION_QUEUED) {
                mig->live.state = MIGRATION_ABORTED;
                mig->live.finished = now_realtime();
                (void)free_and_strdup(&mig->live.error, "Aborted by an operator before it started");
                migration_let_go(mig);
                migration_publish_soon(mig);
                migration_keep_finished(mig);
                return sd_bus_reply_method_return(msg, NULL);
        }
        if (migration_state_is_final(mig->live.state) || !mig->work)
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

/* ForceComplete() [migrate]: asks a running migration to complete now (migration-engine.c). */
static int method_force_complete(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Migration *mig = userdata;
        int r;

        r = polkit_verify(mig->manager, msg, error);
        if (r != 0)
                return r;
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

/* Confirm() and Revert() [migrate]: a cold migration in verify (migration-cold.c); answered
 * when done. */
static int method_confirm(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Migration *mig = userdata;
        int r;

        r = migration_cold_check(mig, "Confirm", error);
        if (r < 0)
                return r;
        r = polkit_verify(mig->manager, msg, error);
        if (r != 0)
                return r;
        return migration_cold_confirm(mig, msg);
}

static int method_revert(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Migration *mig = userdata;
        int r;

        r = migration_cold_check(mig, "Revert", error);
        if (r < 0)
                return r;
        r = polkit_verify(mig->manager, msg, error);
        if (r != 0)
                return r;
        return migration_cold_revert(mig, msg);
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
        PROP_S("Policy"),
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
        PROP_T("NetworkDowntime"),
        SD_BUS_PROPERTY("Progress", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PostCopy", "b", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Abort", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_abort,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ForceComplete", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_force_complete, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Confirm", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_confirm,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Revert", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_revert,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* Exports it on the bus in state and announces it with MigrationNew. */
int migration_publish(Manager *m, Migration *mig, MigrationState state)
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

        /* the callers asked migration_busy() first, in this same turn of the event loop */
        if (mig->live.domain_uuid) {
                r = instance_ops_claim(m->instance_ops, mig->live.domain_uuid,
                                       INSTANCE_OP_MIGRATION, mig, 0, NULL);
                if (r < 0)
                        return r;
        }
        mig->live.state = state;
        mig->next = m->migrations;
        m->migrations = mig;
        (void)emit_changes(mig, true); /* pub = live: the initial values, not changes */
        (void)sd_bus_emit_signal(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "MigrationNew", "so",
                                 mig->id, mig->path);
        return 0;
}
