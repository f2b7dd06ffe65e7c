/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Instance records ↔ local libvirt (reconcile.h): the Reconciler and its passes. A pass
 * lists the local domains (a worker), gathers what lib/reconcile-plan.h decides on (the
 * records, the powered-off peers, the runtime markers, busy instances), and carries out the
 * plan's store steps in order; its actions go to reconcile-act.c's worker, their results to
 * reconcile-done.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "console-priority.h"
#include "deny-list.h"
#include "diskinfo.h"
#include "instance-ops.h"
#include "job.h"
#include "log.h"
#include "migration.h"
#include "paths.h"
#include "peers.h"
#include "reconcile-internal.h"
#include "reconcile-plan.h"
#include "reconcile.h"
#include "runtime.h"
#include "util.h"
#include "virt.h"
#include "window-keeper.h"

void reconcile_pass_free(Pass *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_domains; i++)
                reconcile_domain_done(&p->domains[i]);
        free(p->domains);
        for (size_t i = 0; i < p->n_actions; i++)
                reconcile_action_done(&p->actions[i]);
        free(p->actions);
        free(p->error_message);
        free(p);
}

static uint64_t fnv1a(const char *s)
{
        uint64_t h = 1469598103934665603ULL;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

/* ---- pass 1: list the local domains (worker) ---- */

static void gather_work(Manager *m, void *userdata)
{
        Pass *p = userdata;
        virDomainPtr *doms = NULL;
        char err[512];
        size_t n;
        int r;

        r = virt_list_domains(m->virt, 0, &doms, &n, err, sizeof(err));
        if (r < 0) {
                p->error = r; /* -EHOSTDOWN: no libvirtd; -EIO: it did not list */
                p->error_message = strdup(err);
                return;
        }
        p->domains = calloc(n + 1, sizeof(ReconcileDomain));
        for (size_t i = 0; i < n; i++) {
                ReconcileDomain *d = p->domains ? &p->domains[p->n_domains] : NULL;
                int state = 0, reason = 0, autostart = 0;

                if (d && virDomainGetUUIDString(doms[i], d->uuid) == 0 &&
                    virDomainGetState(doms[i], &state, &reason, 0) == 0) {
                        const char *name = virDomainGetName(doms[i]);

                        d->name = name ? strdup(name) : NULL;
                        d->active = virDomainIsActive(doms[i]) == 1;
                        d->has_state = state != VIR_DOMAIN_NOSTATE;
                        d->paused = state == VIR_DOMAIN_PAUSED;
                        d->running_migrated = state == VIR_DOMAIN_RUNNING &&
                                              reason == VIR_DOMAIN_RUNNING_MIGRATED;
                        d->shutoff_migrated = reason == VIR_DOMAIN_SHUTOFF_MIGRATED;
                        d->autostart = virDomainGetAutostart(doms[i], &autostart) == 0 && autostart;
                        d->migrating = d->active && virt_migration_in_progress(doms[i]);
                        d->ended_paused = d->migrating && virt_migration_ended_paused(doms[i]);
                        if (virDomainIsPersistent(doms[i]) == 1)
                                d->xml = virDomainGetXMLDesc(
                                        doms[i], VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
                        if (d->xml) {
                                /* the base images of its disks, for a Rebuild elsewhere */
                                char *annotated = NULL;

                                if (disk_bases_annotate(d->xml, &annotated) >= 0) {
                                        free(d->xml);
                                        d->xml = annotated;
                                }
                        }
                        p->n_domains++;
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        if (!p->domains && n > 0) {
                p->error = -ENOMEM;
                p->n_domains = 0;
        }
}

/* Forgets the hash of the definition this daemon saved of uuid: while another node owned
 * the instance it may have saved another, so this node writes its own again. */
static void forget_saved(Reconciler *rc, const char *uuid)
{
        SavedDefs *s = &rc->saved;

        for (size_t i = 0; i < s->n;)
                if (streq(s->items[i].uuid, uuid)) {
                        memmove(s->items + i, s->items + i + 1, (s->n - i - 1) * sizeof(*s->items));
                        s->n--;
                } else
                        i++;
}

static bool saved_contains(const SavedDefs *s, const char *uuid, uint64_t hash)
{
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->items[i].uuid, uuid) && s->items[i].hash == hash)
                        return true;
        return false;
}

static int saved_add(SavedDefs *s, const char *uuid, uint64_t hash)
{
        SavedDef *items = reallocarray(s->items, s->n + 1, sizeof(*items));

        if (!items)
                return -ENOMEM;
        s->items = items;
        snprintf(items[s->n].uuid, sizeof(items[s->n].uuid), "%s", uuid);
        items[s->n++].hash = hash;
        return 0;
}

static void saved_done(SavedDefs *s)
{
        free(s->items);
        *s = (SavedDefs){};
}

int reconcile_claim(Manager *m, const char *uuid, const char *name, InstancePower power,
                    uint64_t expected, const char *why)
{
        InstanceRecord rec = { .name = (char *)name,
                               .owner = m->config->node.name,
                               .time = now_realtime(),
                               .power = power };
        int r;

        memcpy(rec.uuid, uuid, sizeof(rec.uuid) - 1);
        /* whatever another owner saved meanwhile, this node saves its definition again */
        forget_saved(m->reconciler, uuid);
        r = store_instance_cas(m->store, &rec, expected, NULL);
        if (r < 0)
                return log_warning_errno(r, "Cannot claim instance %s (%s): %m", uuid, strna(name));
        log_fields(LOG_NOTICE, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECONCILED },
                              { "HOSTWARDEN_DOMAIN", name }, { "HOSTWARDEN_INSTANCE", uuid }),
                   "Instance %s (%s) recorded as this node's: %s", uuid, strna(name), why);
        return 0;
}

/* An own record follows the domain's name (virsh domrename) and power state (what an
 * evacuation rebuilds): the plan's REFRESH. Returns the record's generation now. */
static uint64_t refresh_record(Manager *m, const InstanceRecord *rec, const ReconcileDomain *d,
                               InstancePower power)
{
        InstanceRecord n = *rec;
        uint64_t gen = rec->generation;
        int r;

        n.name = d->name;
        n.power = power;
        r = store_instance_cas(m->store, &n, rec->generation, &gen);
        if (r < 0) {
                if (r != -ESTALE)
                        log_warning_errno(r, "Cannot update the record of instance %s: %m",
                                          rec->uuid);
                return rec->generation;
        }
        if (!streq_ptr(rec->name, n.name))
                log_fields(LOG_NOTICE, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECONCILED },
                                      { "HOSTWARDEN_DOMAIN", n.name },
                                      { "HOSTWARDEN_INSTANCE", rec->uuid }),
                           "Instance %s was renamed from %s to %s", rec->uuid, strna(rec->name),
                           n.name);
        return gen;
}

static void save_definition(Manager *m, const ReconcileDomain *d)
{
        Reconciler *rc = m->reconciler;
        uint64_t hash;
        int r;

        if (!d->xml)
                return;
        hash = fnv1a(d->xml);
        if (saved_contains(&rc->saved, d->uuid, hash))
                return;
        r = store_definition_put(m->store, d->uuid, d->xml);
        if (r < 0) {
                log_warning_errno(r, "Cannot save the definition of %s: %m", d->uuid);
                return;
        }
        forget_saved(rc, d->uuid); /* the older hash of this instance */
        (void)saved_add(&rc->saved, d->uuid, hash);
}

static bool instance_busy(Manager *m, const char *uuid)
{
        return instance_ops_busy(m->instance_ops, uuid,
                                 INSTANCE_OP(INSTANCE_OP_MIGRATION) |
                                         INSTANCE_OP(INSTANCE_OP_REBUILD)) != NULL;
}

/* The nodes known to be powered off: fenced (their agent said off) or forced down. */
static int fenced_nodes(Manager *m, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        NodeRecord *nodes = NULL;
        size_t n = 0;
        int r;

        r = store_node_list_cached(m->store, now_usec(CLOCK_MONOTONIC), USEC_PER_SEC, &nodes, &n);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (nodes[i].fence == FENCE_OFF || nodes[i].forced_down)
                        r = strv_extend(&l, nodes[i].name);
        node_record_array_free(nodes, n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static bool busy_cb(const char *uuid, void *userdata)
{
        return instance_busy(userdata, uuid);
}

/* The arriving/ markers (runtime.h), for the plan to remove the stale ones; none when they
 * cannot be listed. */
static int arrivals(ReconcileArrival **ret, size_t *ret_n)
{
        _cleanup_strv_free_ char **uuids = NULL;
        _cleanup_free_ uint64_t *since = NULL;
        ReconcileArrival *a;
        size_t n;

        *ret = NULL;
        *ret_n = 0;
        if (runtime_arriving_list(hw_runtime_dir(), &uuids, &since) < 0)
                return 0;
        n = strv_length(uuids);
        a = calloc(n + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                snprintf(a[i].uuid, sizeof(a[i].uuid), "%s", uuids[i]);
                a[i].since = since[i];
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* Carries out the plan's store and runtime steps in order; its actions go to the worker.
 * A claim's definition is saved only if the claim worked; the FIND_ELSEWHERE planned after
 * a REFRESH takes the generation the refresh left. */
static void execute(Manager *m, const Pass *p, const InstanceRecord *inst, ReconcilePlan *plan)
{
        const char *rt = hw_runtime_dir();
        uint64_t refreshed = 0;

        for (size_t i = 0; i < plan->n_steps; i++) {
                const ReconcileStep *s = &plan->steps[i];

                switch (s->kind) {
                case RECONCILE_STEP_CLAIM: {
                        const ReconcileDomain *d = &p->domains[s->domain];
                        int r = reconcile_claim(m, d->uuid, d->name, s->power, s->expected, s->why);

                        if (r == 0 && s->save_after)
                                save_definition(m, d);
                        break;
                }
                case RECONCILE_STEP_REFRESH:
                        refreshed = refresh_record(m, &inst[s->record], &p->domains[s->domain],
                                                   s->power);
                        break;
                case RECONCILE_STEP_SAVE_DEFINITION:
                        save_definition(m, &p->domains[s->domain]);
                        break;
                case RECONCILE_STEP_ACT:
                        if (s->generation_from_refresh)
                                plan->actions[s->action].generation = refreshed;
                        break;
                case RECONCILE_STEP_DROP_DEFERRED:
                        (void)runtime_deferred_remove(rt, s->uuid);
                        break;
                case RECONCILE_STEP_DROP_ARRIVAL:
                        (void)runtime_arriving_remove(rt, s->uuid);
                        log_debug("Removed the arrival marker of %s: its migration never came",
                                  s->uuid);
                        break;
                }
        }
}

/* The archived tombstones of instances evacuated from here whose copy is still defined here
 * without a live record: the plan undefines such a copy as it would with the tombstone still
 * live. Without them, a node back after [history] archive_after would claim its stale copies
 * of deleted instances ("it has no record"). Appended to *records. */
static int add_archived_tombstones(Manager *m, const Pass *p, InstanceRecord **records,
                                   size_t *n_records)
{
        for (size_t i = 0; i < p->n_domains; i++) {
                _cleanup_(instance_record_done) InstanceRecord rec = {};
                const ReconcileDomain *d = &p->domains[i];
                InstanceRecord *grown;
                bool live = false;
                int r;

                for (size_t k = 0; k < *n_records && !live; k++)
                        live = streq((*records)[k].uuid, d->uuid);
                if (live)
                        continue;
                r = store_archive_instance_get(m->store, d->uuid, &rec);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                if (!rec.deleted || !streq_ptr(rec.evacuated_from, m->config->node.name))
                        continue;
                grown = reallocarray(*records, *n_records + 1, sizeof(InstanceRecord));
                if (!grown)
                        return -ENOMEM;
                *records = grown;
                (*records)[(*n_records)++] = rec;
                rec = (InstanceRecord){};
        }
        return 0;
}

static void gather_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        Reconciler *rc = m->reconciler;
        _cleanup_strv_free_ char **fenced = NULL, **deferred = NULL;
        _cleanup_free_ ReconcileArrival *arrived = NULL;
        PeerTargets peers = {};
        ReconcilePlan plan = {};
        InstanceRecord *inst = NULL;
        size_t n_inst = 0, n_arrived = 0;
        Pass *p = userdata;
        const char *rt = hw_runtime_dir();
        bool synced;
        uint64_t now = 0;
        int r;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        r = store_instance_list(m->store, &inst, &n_inst);
        if (r < 0) {
                log_warning_errno(r,
                                  "Reconciliation skipped: cannot read the instance records: %m");
                goto finish;
        }
        /* The deny list from this listing: what the pass changes below are records of this
         * node's own (claims, removals), which the deny list never holds. */
        r = deny_list_sync_from(m, inst, n_inst);
        if (r < 0)
                log_warning_errno(r, "Failed to update the deny list: %m");
        if (p->error < 0) {
                log_debug("Reconciliation skipped: libvirt cannot be listed (%s)",
                          strna(p->error_message));
                instance_record_array_free(inst, n_inst);
                goto finish;
        }
        r = add_archived_tombstones(m, p, &inst, &n_inst);
        if (r < 0) {
                log_warning_errno(r, "Reconciliation skipped: cannot read the archive: %m");
                instance_record_array_free(inst, n_inst);
                goto finish;
        }
        r = fenced_nodes(m, &fenced);
        if (r < 0) {
                log_warning_errno(r, "Reconciliation skipped: cannot read the node records: %m");
                instance_record_array_free(inst, n_inst);
                goto finish;
        }

        for (size_t i = 0; i < p->n_domains; i++)
                if (runtime_arriving_lookup(rt, p->domains[i].uuid, &p->domains[i].arrived) <= 0)
                        p->domains[i].arrived = 0;
        synced = runtime_marker_lookup(rt, NODE_MARKER_SYNCED, NULL) > 0 &&
                 runtime_deferred_list(rt, &deferred) >= 0;
        r = arrivals(&arrived, &n_arrived);
        if (r >= 0)
                r = peer_targets_from_config(m->config, NULL, &peers);
        if (r >= 0) {
                ReconcileInput in = {
                        .self = m->config->node.name,
                        .domains = p->domains,
                        .n_domains = p->n_domains,
                        .records = inst,
                        .n_records = n_inst,
                        .peers = &peers,
                        .fenced = fenced,
                        .busy = busy_cb,
                        .userdata = m,
                        .synced = synced,
                        .deferred = deferred,
                        .arrivals = arrived,
                        .n_arrivals = n_arrived,
                        .now = now,
                        .now_realtime = now_realtime(),
                        /* long enough for a migration's source to move the record, and more
                         * than a burst */
                        .settle = MAX(2 * m->config->cluster.heartbeat_interval, 2 * USEC_PER_SEC),
                        .open_window = m->config->firewall.open_window,
                };

                r = reconcile_plan(&in, &rc->memory, &plan);
        }
        peer_targets_done(&peers);
        if (r < 0) {
                log_warning_errno(r, "Reconciliation skipped: %m");
                instance_record_array_free(inst, n_inst);
                goto finish;
        }
        execute(m, p, inst, &plan);
        p->actions = TAKE_PTR(plan.actions);
        p->n_actions = plan.n_actions;
        plan.n_actions = 0;
        reconcile_memory_done(&rc->memory);
        rc->memory = plan.memory;
        plan.memory = (ReconcileMemory){};
        reconcile_plan_done(&plan);
        instance_record_array_free(inst, n_inst);

        if (p->n_actions > 0) {
                /* a Rebuild leaves these alone until the actions are done */
                for (size_t i = 0; i < p->n_actions; i++)
                        (void)instance_ops_claim(m->instance_ops, p->actions[i].uuid,
                                                 INSTANCE_OP_RECONCILE, p, 0, NULL);
                r = job_start(m, NULL, reconcile_act_work, reconcile_act_done, p);
                if (r >= 0)
                        return;
                instance_ops_release_owner(m->instance_ops, INSTANCE_OP_RECONCILE, p);
                log_warning_errno(r, "Cannot start a worker thread: %m");
        }
finish:
        reconcile_pass_free(p);
        reconcile_pass_finished(m);
}

static void pass_start(Manager *m)
{
        Reconciler *rc = m->reconciler;
        Pass *p = calloc(1, sizeof(Pass));

        if (!p || job_start(m, NULL, gather_work, gather_done, p) < 0) {
                free(p);
                log_warning("Cannot start a reconciliation pass");
                return;
        }
        rc->running = true;
        rc->again = false;
}

void reconcile_pass_finished(Manager *m)
{
        Reconciler *rc = m->reconciler;

        rc->running = false;
        if (rc->again)
                pass_start(m);
}

void reconcile_schedule(Manager *m)
{
        Reconciler *rc = m->reconciler;

        console_priority_kick(m); /* a guest started or arrived, or hostwardend did */
        if (!rc || !m->store)
                return;
        if (rc->running)
                rc->again = true;
        else
                pass_start(m);
}

static int wakeup_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        uint64_t v;

        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_full_errno(LOG_DEBUG, errno, "eventfd read: %m");
        reconcile_schedule(userdata);
        /* the same events may end an incoming migration: its window can close */
        window_keeper_kick(userdata);
        return 0;
}

/* libvirt's event thread: a domain was defined, started, stopped, undefined ... */
static void lifecycle_event(void *userdata)
{
        Reconciler *rc = userdata;
        uint64_t one = 1;

        if (write(rc->fd, &one, sizeof(one)) < 0) {
                /* full (never in practice): a pass is due anyway */
        }
}

int reconcile_setup(Manager *m)
{
        Reconciler *rc = calloc(1, sizeof(Reconciler));
        int r;

        if (!rc)
                return -ENOMEM;
        rc->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (rc->fd < 0) {
                r = -errno;
                free(rc);
                return r;
        }
        r = sd_event_add_io(m->event, &rc->wakeup, rc->fd, EPOLLIN, wakeup_cb, m);
        if (r < 0) {
                close(rc->fd);
                free(rc);
                return r;
        }
        m->reconciler = rc;
        virt_set_lifecycle_callback(m->virt, lifecycle_event, rc);
        return 0;
}

void reconcile_free(Manager *m)
{
        Reconciler *rc = m->reconciler;

        if (!rc)
                return;
        if (m->virt)
                virt_set_lifecycle_callback(m->virt, NULL, NULL);
        sd_event_source_disable_unref(rc->wakeup);
        close(rc->fd);
        reconcile_memory_done(&rc->memory);
        saved_done(&rc->saved);
        free(rc);
        m->reconciler = NULL;
}
