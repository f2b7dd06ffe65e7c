/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rebuild(s uuid, s source, a{sv}) and EvacuateFrom(s source, a{sv}) → a(sss) [evacuate]:
 * the instances of a dead node started again here, as Nova's evacuate does, from the saved
 * definition: same name, UUID, MACs, disks. Allowed only when the source is down (by this
 * node's clock) or forced down, and fenced (DESIGN.md §4); nothing else unlocks it.
 *
 * One instance goes through three steps:
 *  1. event loop: the checks against the store (source down and fenced, record owned by the
 *     source, definition saved);
 *  2. worker: the source's libvirt, when it answers, must not run it (an operator may have
 *     forced down a node that runs), nor may any peer that is not fenced; then the disk plan: every
 * file disk that exists is used as it is (shared storage); a lost one is re-created from the base
 * image annotated in the definition (diskinfo.h), which must be in <instances_path>/_base;
 * otherwise the rebuild is refused before anything changed (no data is invented, nothing deleted);
 *  3. event loop: compare-and-swap of the record to this node with evacuated_from; then a
 *     worker creates the lost disks (qemu-img), defines and starts the domain.
 * The record moves before the domain starts here, so at no time do two nodes own it; if the
 * start fails (after trying again for a while when libvirtd or the shared storage was out of
 * reach) the instance stays this node's, defined and shut off, for an operator.
 *
 * Here: the steps of each instance in turn (rebuild-plan.c checks, rebuild-disk.c makes lost
 * disks), the claim of the record and its give-back when nothing was defined, and the reply.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "announce.h"
#include "config.h"
#include "deny-list.h"
#include "errors.h"
#include "history.h"
#include "instance-ops.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "paths.h"
#include "rebuild-note.h"
#include "rebuild.h"
#include "reconcile.h"
#include "virt.h"

typedef struct Evacuation {
        sd_bus_message *msg; /* the Rebuild or EvacuateFrom call; NULL for recovery's */
        RebuildCallback cb;  /* recovery's: called instead of a reply */
        void *userdata;
        char *source;
        Rebuild *items;
        size_t n, next;
} Evacuation;

void rebuild_fail(Rebuild *r, const char *error_name, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        set_messagev(&r->message, format, ap);
        va_end(ap);
        r->error_name = error_name;
}

static void rebuild_done_free(Rebuild *r)
{
        free(r->name);
        free(r->source);
        free(r->xml);
        for (size_t i = 0; i < r->n_fixes; i++) {
                free(r->fixes[i].path);
                free(r->fixes[i].backing);
        }
        free(r->fixes);
        peer_targets_done(&r->ask);
        free(r->source_uri);
        free(r->base_dir);
        free(r->orig_evacuated_from);
        free(r->message);
}

static void evacuation_free(Evacuation *e)
{
        if (!e)
                return;
        for (size_t i = 0; i < e->n; i++)
                rebuild_done_free(&e->items[i]);
        free(e->items);
        free(e->source);
        sd_bus_message_unref(e->msg);
        free(e);
}

#define REBUILD_LIBVIRT_WAIT_SEC 30U

/* Did the start fail because the shared storage was out of reach for a moment (a network
 * cut: the GlusterFS client answers ENOTCONN until it has reconnected, ~3 s after the
 * network is back)? Then it is tried again, as after a lost libvirtd: the instance is this
 * node's already, and an operator would only start it again. Any other failure stays. */
static bool storage_out_of_reach(const Rebuild *r, const char *error)
{
        static const int transient[] = { ENOTCONN, ESTALE, EHOSTDOWN, EHOSTUNREACH, ETIMEDOUT };

        for (size_t i = 0; i < ELEMENTSOF(transient); i++)
                if (strstr(error, strerrordesc_np(transient[i])))
                        return true;
        return access(r->base_dir, F_OK) < 0 && errno != ENOENT;
}

/* Step 3b (worker): create the lost disks, define, start. */
static void rebuild_apply(Manager *m, Rebuild *r)
{
        virConnectPtr conn = NULL;
        virDomainPtr dom = NULL;
        char err[1024];

        for (size_t i = 0; i < r->n_fixes; i++) {
                DiskFix *f = &r->fixes[i];
                char fmt[16] = "raw", info[1024];
                const char *info_argv[] = { "qemu-img", "info", "--output=json", f->backing, NULL };

                /* the base's own format ("raw" as Nova's _base, or qcow2) */
                if (rebuild_run_qemu_img(info_argv, info, sizeof(info)) == 0 &&
                    strstr(info, "\"format\": \"qcow2\""))
                        snprintf(fmt, sizeof(fmt), "qcow2");
                if (rebuild_create_disk(f, fmt, err, sizeof(err)) < 0) {
                        rebuild_fail(r, HW_ERROR_CONSTRAINT, "Cannot re-create disk %s from %s: %s",
                                     f->path, f->backing, err);
                        return;
                }
                log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "HOSTWARDEN_INSTANCE", r->uuid }),
                           "Disk %s of %s re-created from its base image %s", f->path, r->uuid,
                           f->backing);
        }
        /* libvirtd may go away under the define or the start (killed, restarted): the
         * record is this node's already, so once libvirtd is back, look again and start
         * what is not running, for up to REBUILD_LIBVIRT_WAIT_SEC */
        for (unsigned waited = 0, losses = 0;; waited += 2) {
                bool lost;

                if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                        if (waited < REBUILD_LIBVIRT_WAIT_SEC) {
                                sleep(2);
                                continue;
                        }
                        rebuild_fail(r, HW_ERROR_LIBVIRT, "Cannot connect to libvirt: %s", err);
                        return;
                }
                dom = virDomainLookupByUUIDString(conn, r->uuid);
                if (!dom)
                        dom = virDomainDefineXML(conn, r->xml);
                r->defined = dom != NULL;
                if (dom && losses > 0)
                        rebuild_finish_cut_start(dom, r->uuid);
                if (dom && (virDomainIsActive(dom) == 1 || r->power == INSTANCE_POWER_SHUTOFF ||
                            virDomainCreateWithFlags(dom, r->power == INSTANCE_POWER_PAUSED
                                                                  ? VIR_DOMAIN_START_PAUSED
                                                                  : 0) >= 0)) {
                        r->started = true;
                        (void)announce_guest(dom, &r->announce, "Rebuild", r->uuid, "this node");
                        virDomainFree(dom);
                        virConnectClose(conn);
                        return;
                }
                snprintf(err, sizeof(err), "%s", virt_last_error("unknown error"));
                lost = virConnectIsAlive(conn) != 1;
                if (dom)
                        virDomainFree(dom);
                dom = NULL;
                virConnectClose(conn);
                conn = NULL;
                if (lost && waited < REBUILD_LIBVIRT_WAIT_SEC) {
                        losses++;
                        log_warning("Lost libvirt while rebuilding %s (%s): trying again once it "
                                    "is back",
                                    r->uuid, err);
                        sleep(2);
                        continue;
                }
                if (r->defined && storage_out_of_reach(r, err) &&
                    waited < REBUILD_LIBVIRT_WAIT_SEC) {
                        log_warning("Rebuilt %s does not start while its storage is out of reach "
                                    "(%s): trying again",
                                    r->uuid, err);
                        sleep(2);
                        continue;
                }
                if (!r->defined)
                        rebuild_fail(r, HW_ERROR_LIBVIRT, "Cannot define %s here: %s", r->uuid,
                                     err);
                else
                        rebuild_fail(r, HW_ERROR_LIBVIRT,
                                     "%s is defined here but does not start: %s", r->uuid, err);
                return;
        }
}

static void evacuation_step(Manager *m, Evacuation *e);

/* The instance's steps are over: reconciliation may look at it again. */
static void item_done(Manager *m, Evacuation *e)
{
        Rebuild *r = &e->items[e->next];

        if (r->locked)
                instance_ops_release(m->instance_ops, r->uuid, INSTANCE_OP_REBUILD, r);
        r->locked = false;
        if (r->noted)
                (void)rebuild_note_forget(hw_runtime_dir(), r->uuid);
        r->noted = false;
        history_rebuild_ended(m, e->msg, r);
        e->next++;
}

static void apply_work(Manager *m, void *userdata)
{
        Evacuation *e = userdata;

        rebuild_apply(m, &e->items[e->next]);
}

/* Nothing was defined here (a disk could not be created, or the definition was refused): the
 * record goes back to the source as it was, so that the instance is not left owned by a
 * node that has no domain of it (reconciliation would take that for a deleted instance). */
static void give_back(Manager *m, Rebuild *r)
{
        /* a resumed rebuild read its own claim: what the record said before is not known,
         * and evacuated_from = its owner would make the source undefine its copy */
        InstanceRecord rec = { .name = r->name,
                               .owner = r->source,
                               .evacuated_from = r->resumed ? NULL : r->orig_evacuated_from,
                               .time = now_realtime() };
        int k;

        memcpy(rec.uuid, r->uuid, sizeof(rec.uuid));
        k = store_instance_cas(m->store, &rec, r->claimed_generation, NULL);
        if (k < 0) {
                log_error_errno(k,
                                "Instance %s is recorded as this node's but not defined here, "
                                "and its record cannot go back to %s: %m",
                                r->uuid, r->source);
                return;
        }
        r->claimed = false; /* reported as refused: nothing changed */
        log_notice("Instance %s was not defined here: its record goes back to %s", r->uuid,
                   r->source);
}

static void apply_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        Evacuation *e = userdata;
        Rebuild *r = &e->items[e->next];

        if (r->claimed && !r->defined)
                give_back(m, r);
        log_fields(r->started ? LOG_WARNING : LOG_ERR, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_EVACUATION },
                              { "HOSTWARDEN_INSTANCE", r->uuid }, { "HOSTWARDEN_DOMAIN", r->name },
                              { "HOSTWARDEN_NODE", r->source }),
                   r->started   ? "Instance %s (%s) of fenced node %s rebuilt here%s"
                   : r->claimed ? "Instance %s (%s) of fenced node %s is this node's now but did "
                                  "not start: %s"
                                : "Instance %s (%s) of fenced node %s was not rebuilt: %s",
                   r->uuid, strna(r->name), r->source,
                   !r->started                          ? strna(r->message)
                   : r->power == INSTANCE_POWER_SHUTOFF ? ", shut off as it was"
                   : r->power == INSTANCE_POWER_PAUSED  ? ", paused as it was"
                                                        : "");
        (void)deny_list_sync(m);
        item_done(m, e);
        evacuation_step(m, e);
}

static void plan_work(Manager *m, void *userdata)
{
        Evacuation *e = userdata;

        rebuild_plan(m, &e->items[e->next]);
}

/* A resumed rebuild's record is this node's already: reconciliation, which does not wait for
 * a rebuild to refresh an own record, may have recorded the domain's power (shut off) since it
 * was checked. Claimed again as long as it is still this node's from the same source. */
static int claim_again(Manager *m, Rebuild *r, const InstanceRecord *claim)
{
        _cleanup_(instance_record_done) InstanceRecord cur = {};
        int k;

        k = store_instance_get(m->store, r->uuid, &cur);
        if (k < 0)
                return k;
        if (cur.deleted || !streq(cur.owner, m->config->node.name) ||
            !streq_ptr(cur.evacuated_from, r->source))
                return -ESTALE;
        return store_instance_cas(m->store, claim, cur.generation, &r->claimed_generation);
}

static void plan_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        Evacuation *e = userdata;
        Rebuild *r = &e->items[e->next];
        InstanceRecord rec = {};
        int k;

        if (r->error_name)
                goto next;
        /* Step 3a: the record moves here (compare-and-swap on what was checked). */
        rec = (InstanceRecord){ .name = r->name,
                                .owner = m->config->node.name,
                                .evacuated_from = r->source,
                                .time = now_realtime() };
        memcpy(rec.uuid, r->uuid, sizeof(rec.uuid));
        if (!rebuild_source_fenced(m, r->source, r))
                goto next; /* it came back while we planned */
        /* from the claim to the outcome, a note: a hostwardend that dies in between leaves
         * the record this node's and the domain not started; the next one finishes it */
        k = rebuild_note_save(
                hw_runtime_dir(), r->uuid,
                &(RebuildNote){ .pid = getpid(), .source = r->source, .power = r->power });
        if (k < 0)
                log_warning_errno(k,
                                  "Cannot note the rebuild of %s in %s/rebuild (should "
                                  "hostwardend stop before it started, it stays shut off here): "
                                  "%m",
                                  r->uuid, hw_runtime_dir());
        r->noted = r->noted || k >= 0;
        k = store_instance_cas(m->store, &rec, r->generation, &r->claimed_generation);
        if (k == -ESTALE && r->resumed)
                k = claim_again(m, r, &rec);
        if (k == -ESTALE || k == -EEXIST) {
                rebuild_fail(r, HW_ERROR_BUSY,
                             "The record of %s changed while it was being rebuilt: look again",
                             r->uuid);
                goto next;
        }
        if (k < 0) {
                rebuild_fail(r, HW_ERROR_STORE_UNAVAILABLE, "Cannot record %s as this node's: %s",
                             r->uuid, strerror(-k));
                goto next;
        }
        r->claimed = true;
        /* the hook must not refuse it for the deny list: it is this node's now */
        (void)deny_list_sync(m);
        k = job_start(m, NULL, apply_work, apply_done, e);
        if (k >= 0)
                return;
        rebuild_fail(r, HW_ERROR_BUSY, "Cannot start a worker thread");
next:
        item_done(m, e);
        evacuation_step(m, e);
}

static void evacuation_reply(Manager *m, Evacuation *e)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int k;

        if (e->cb) {
                e->cb(m, e->source, e->items, e->n, e->userdata);
                return;
        }
        if (streq(sd_bus_message_get_member(e->msg), "Rebuild")) {
                Rebuild *r = &e->items[0];

                if (r->error_name && !r->claimed)
                        (void)sd_bus_reply_method_errorf(e->msg, r->error_name, "%s",
                                                         strna(r->message));
                else if (!r->started)
                        (void)sd_bus_reply_method_errorf(
                                e->msg, r->error_name ? r->error_name : HW_ERROR_LIBVIRT,
                                "%s (the instance is recorded as this node's now)",
                                strna(r->message));
                else
                        (void)sd_bus_reply_method_return(e->msg, NULL);
                return;
        }
        k = sd_bus_message_new_method_return(e->msg, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; k >= 0 && i < e->n; i++) {
                Rebuild *r = &e->items[i];

                k = sd_bus_message_append(reply, "(sss)", r->uuid,
                                          r->started   ? "rebuilt"
                                          : r->claimed ? "failed"
                                                       : "refused",
                                          r->started ? (r->name ? r->name : "")
                                                     : strna(r->message));
        }
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k >= 0)
                k = sd_bus_send(NULL, reply, NULL);
        if (k < 0)
                (void)sd_bus_reply_method_errnof(e->msg, -k, "Cannot send the results: %m");
}

/* Runs the next instance's steps, or replies when all are done. */
static void evacuation_step(Manager *m, Evacuation *e)
{
        while (e->next < e->n) {
                Rebuild *r = &e->items[e->next];
                int k;

                r->began = now_realtime();
                /* From the checks to the start, reconciliation leaves it alone, and it
                 * waits for what reconciliation is doing to it. */
                const InstanceOp *holder =
                        instance_ops_busy(m->instance_ops, r->uuid,
                                          INSTANCE_OP(INSTANCE_OP_REBUILD))
                                ?: instance_ops_busy(m->instance_ops, r->uuid,
                                                     INSTANCE_OP(INSTANCE_OP_RECONCILE));

                if (holder && holder->kind == INSTANCE_OP_REBUILD)
                        rebuild_fail(r, HW_ERROR_BUSY, "Instance %s is being rebuilt here already",
                                     r->uuid);
                else if (holder)
                        rebuild_fail(
                                r, HW_ERROR_BUSY,
                                "Instance %s is being reconciled with libvirt right now: try again "
                                "in a moment",
                                r->uuid);
                else if (instance_ops_claim(m->instance_ops, r->uuid, INSTANCE_OP_REBUILD, r, 0,
                                            NULL) < 0)
                        rebuild_fail(r, SD_BUS_ERROR_NO_MEMORY, "Out of memory");
                else {
                        r->locked = true;
                        rebuild_check(m, r);
                }
                if (!r->error_name) {
                        k = job_start(m, NULL, plan_work, plan_done, e);
                        if (k >= 0)
                                return;
                        rebuild_fail(r, HW_ERROR_BUSY, "Cannot start a worker thread");
                }
                item_done(m, e);
        }
        evacuation_reply(m, e);
        evacuation_free(e);
}

static int add_item(Evacuation *e, const char *uuid, const char *name)
{
        Rebuild *n = realloc(e->items, (e->n + 1) * sizeof(Rebuild));

        if (!n)
                return -ENOMEM;
        e->items = n;
        n = &e->items[e->n];
        *n = (Rebuild){};
        snprintf(n->uuid, sizeof(n->uuid), "%s", uuid);
        n->name = name ? strdup(name) : NULL;
        n->source = strdup(e->source);
        if (!n->source)
                return -ENOMEM;
        n->automatic = e->cb != NULL;
        e->n++;
        return 0;
}

static bool self_may_host(Manager *m, sd_bus_error *error)
{
        NodeRecord rec = {};
        bool ok = true;

        if (store_node_get(m->store, m->config->node.name, &rec) == 0 &&
            (rec.forced_down || rec.fence == FENCE_OFF)) {
                sd_bus_error_setf(error, HW_ERROR_NOT_FENCED,
                                  "This node (%s) is itself recorded as %s: it hosts nothing "
                                  "until that is cleared",
                                  m->config->node.name, rec.forced_down ? "forced down" : "fenced");
                ok = false;
        }
        node_record_done(&rec);
        return ok;
}

int rebuild_for_recovery(Manager *m, const char *source, char *const *uuids, RebuildCallback cb,
                         void *userdata)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Evacuation *e;
        int k = 0;

        if (!self_may_host(m, &error))
                return -EPERM;
        e = calloc(1, sizeof(Evacuation));
        if (!e)
                return -ENOMEM;
        e->cb = cb;
        e->userdata = userdata;
        e->source = strdup(source);
        if (!e->source)
                k = -ENOMEM;
        STRV_FOREACH (u, uuids)
                if (k >= 0)
                        k = add_item(e, *u, NULL);
        if (k < 0) {
                evacuation_free(e);
                return k;
        }
        log_fields(
                LOG_WARNING, 0,
                LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_EVACUATION }, { "HOSTWARDEN_NODE", source }),
                "Automatic recovery: %zu instance(s) of %s are rebuilt on this node", e->n, source);
        evacuation_step(m, e);
        return 0;
}

static void resumed_done(Manager *m, const char *source, const Rebuild *items, size_t n,
                         void *userdata)
{
        /* apply_done logged the outcome of one that went as far as the start */
        for (size_t i = 0; i < n; i++)
                if (items[i].error_name && !items[i].claimed)
                        log_error("The rebuild of %s cut short when hostwardend stopped cannot be "
                                  "finished: %s. It is recorded as this node's; start it here "
                                  "once that is resolved",
                                  items[i].uuid, strna(items[i].message));
}

int rebuild_resume(Manager *m, const char *source, const char *uuid, InstancePower power)
{
        Evacuation *e = calloc(1, sizeof(Evacuation));
        int k = -ENOMEM;

        if (!e)
                return -ENOMEM;
        e->cb = resumed_done;
        e->source = strdup(source);
        if (e->source)
                k = add_item(e, uuid, NULL);
        if (k < 0) {
                evacuation_free(e);
                return k;
        }
        e->items[0].automatic = false;
        e->items[0].resumed = true;
        e->items[0].noted = true; /* the dead one's note, forgotten at the outcome */
        e->items[0].power = power;
        evacuation_step(m, e);
        return 0;
}

int rebuild_start(Manager *m, sd_bus_message *msg, const char *uuid, const char *source,
                  sd_bus_error *error)
{
        bool single = uuid != NULL;
        Evacuation *e;
        int k;

        if (!self_may_host(m, error))
                return -EPERM;
        e = calloc(1, sizeof(Evacuation));
        if (!e)
                return -ENOMEM;
        e->msg = sd_bus_message_ref(msg);
        e->source = strdup(source);
        if (!e->source) {
                evacuation_free(e);
                return -ENOMEM;
        }
        if (single)
                k = add_item(e, uuid, NULL);
        else {
                InstanceRecord *inst = NULL;
                size_t n = 0;
                Rebuild probe = {};

                /* refuse the whole call at once when the source may not be evacuated */
                if (!rebuild_source_fenced(m, source, &probe)) {
                        k = sd_bus_error_setf(error, probe.error_name, "%s", strna(probe.message));
                        rebuild_done_free(&probe);
                        evacuation_free(e);
                        return k;
                }
                k = store_instance_list(m->store, &inst, &n);
                for (size_t i = 0; k >= 0 && i < n; i++)
                        if (streq(inst[i].owner, source) && !inst[i].deleted)
                                k = add_item(e, inst[i].uuid, inst[i].name);
                instance_record_array_free(inst, n);
        }
        if (k < 0) {
                evacuation_free(e);
                return sd_bus_error_set_errnof(error, -k, "Cannot read the instance records: %m");
        }
        log_fields(
                LOG_WARNING, 0,
                LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_EVACUATION }, { "HOSTWARDEN_NODE", source }),
                "Evacuation of %zu instance(s) from %s to this node begins", e->n, source);
        evacuation_step(m, e);
        return 1;
}
