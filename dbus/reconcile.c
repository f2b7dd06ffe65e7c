/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Instance records ↔ local libvirt (reconcile.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "diskinfo.h"
#include "job.h"
#include "log.h"
#include "migration.h"
#include "paths.h"
#include "peers.h"
#include "reconcile-plan.h"
#include "reconcile.h"
#include "runtime.h"
#include "util.h"
#include "virt.h"
#include "window-keeper.h"

/* RECONCILE_DESTROY_UNDEFINE's outcomes other than done (0) or failed (< 0) */
enum {
        RESULT_NOT_ON_OWNER = 1, /* the owner does not run it: it migrated back here */
        RESULT_OWNER_UNREACHABLE = 2,
};

/* RECONCILE_RESUME's outcomes other than resumed (0) or failed (< 0) */
enum {
        RESULT_ON_PEER = 1,      /* a peer has it active (a->owner names it): left paused */
        RESULT_PEER_UNREACHABLE, /* a peer cannot be asked (a->owner, a->error): left paused */
        RESULT_CHANGED,          /* no longer paused so: libvirt or someone else acted */
};

typedef struct Pass {
        /* gather */
        int error;
        char *error_message;
        ReconcileDomain *domains;
        size_t n_domains;
        /* act */
        ReconcileAction *actions;
        size_t n_actions;
} Pass;

/* The definitions saved by this daemon: uuid and hash of the text. */
typedef struct SavedDef {
        char uuid[VIR_UUID_STRING_BUFLEN];
        uint64_t hash;
} SavedDef;

typedef struct SavedDefs {
        SavedDef *items;
        size_t n;
} SavedDefs;

typedef struct Reconciler {
        sd_event_source *wakeup; /* eventfd written by libvirt's event thread */
        int fd;
        bool running, again;
        ReconcileMemory memory; /* what the last passes noticed (reconcile-plan.h) */
        SavedDefs saved;
        char **acting; /* uuids with an action of the pass under way */
} Reconciler;

static void pass_free(Pass *p)
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
        virConnectPtr conn = NULL;
        virDomainPtr *doms = NULL;
        char err[512];
        int n;

        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                p->error = -EHOSTDOWN;
                p->error_message = strdup(err);
                return;
        }
        n = virConnectListAllDomains(conn, &doms, 0);
        if (n < 0) {
                p->error = -EIO;
                p->error_message = strdup(virt_last_error("cannot list domains"));
                virConnectClose(conn);
                return;
        }
        p->domains = calloc((size_t)n + 1, sizeof(ReconcileDomain));
        for (int i = 0; i < n; i++) {
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
        virConnectClose(conn);
        if (!p->domains && n > 0) {
                p->error = -ENOMEM;
                p->n_domains = 0;
        }
}

/* ---- pass 2: what libvirt has to do (worker) ---- */

/* ASK_OWNER: 1 the owner runs it, 0 it does not, -1 the owner cannot be asked (a->error
 * set). A copy on the owner that paused for the switchover of a migration to here, while
 * this one runs, does not count: this one holds the guest (precopy resumes the destination
 * only once the source sent everything; libvirtd died before it killed the source). A copy
 * in post-copy counts (a->postcopy): both hold part of the guest. */
static int owner_runs_it(ReconcileAction *a, virConnectPtr conn)
{
        int state, reason, r, lstate = VIR_DOMAIN_NOSTATE, lreason = 0;
        virDomainPtr dom;

        r = virt_remote_domain_state(a->owner_uri, a->uuid, &state, &reason);
        if (r < 0) {
                a->error = strdup(virt_last_error("cannot connect"));
                return r;
        }
        if (r == 0 || state != VIR_DOMAIN_PAUSED)
                return r;
        if (reason == VIR_DOMAIN_PAUSED_POSTCOPY || reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) {
                a->postcopy = true;
                return 1;
        }
        dom = virDomainLookupByUUIDString(conn, a->uuid);
        if (dom) {
                if (virDomainGetState(dom, &lstate, &lreason, 0) < 0)
                        lstate = VIR_DOMAIN_NOSTATE;
                virDomainFree(dom);
        }
        if (reason == VIR_DOMAIN_PAUSED_MIGRATION && lstate == VIR_DOMAIN_RUNNING) {
                a->owner_paused = true;
                return 0;
        }
        return 1;
}

/* Both copies run: the one that arrived by migration holds the guest's memory and devices;
 * one the owner booted afresh from the definition left behind (a live migration that kept
 * its source's definition, then a start there) holds nothing the other does not. */
static bool owner_copy_booted_afresh(const char *uri, const char *uuid)
{
        RemoteDomain o;

        return virt_remote_domain_lookup(uri, uuid, &o) == 0 && o.active &&
               o.state == VIR_DOMAIN_RUNNING && o.reason == VIR_DOMAIN_RUNNING_BOOTED;
}

/* UNDEFINE_UNLESS_MOVED: 1 the owner has the domain (this copy is a second definition), 0 it
 * does not (it moved here), -1 the owner cannot be asked (a->error set). */
static int owner_has_it(ReconcileAction *a)
{
        RemoteDomain o;

        if (virt_remote_domain_lookup(a->owner_uri, a->uuid, &o) < 0) {
                a->error = strdup(virt_last_error("cannot connect"));
                return -1;
        }
        return o.present;
}

/* FIND_ELSEWHERE: asks every peer; a->found is the one that runs it, or else (when it is gone
 * here) one that has it defined; a copy on the node it was evacuated from is stale and does
 * not count unless it runs. RESULT_PEER_UNREACHABLE when nothing was found and a peer could
 * not be asked (a->owner names it). */
static int find_elsewhere(ReconcileAction *a)
{
        bool unreachable = false;

        for (size_t k = 0; k < a->peers.n; k++) {
                const PeerTarget *t = &a->peers.items[k];
                RemoteDomain o;
                bool stale;

                if (isempty(t->uri) || virt_remote_domain_lookup(t->uri, a->uuid, &o) < 0) {
                        if (!unreachable) {
                                free(a->owner);
                                a->owner = strdup(t->name);
                                a->error =
                                        strdup(isempty(t->uri) ? "no libvirt_uri"
                                                               : virt_last_error("cannot connect"));
                        }
                        unreachable = true;
                        continue;
                }
                stale = !o.active && streq_ptr(t->name, a->evacuated_from);
                if (!o.present || stale || (!a->gone && !o.active) || a->found_active)
                        continue;
                free(a->found);
                a->found = strdup(t->name);
                a->found_active = o.active;
                a->found_power = !o.active                      ? INSTANCE_POWER_SHUTOFF
                                 : o.state == VIR_DOMAIN_PAUSED ? INSTANCE_POWER_PAUSED
                                                                : INSTANCE_POWER_RUNNING;
        }
        if (a->found)
                return 0;
        return unreachable ? RESULT_PEER_UNREACHABLE : RESULT_NOT_ON_OWNER;
}

/* 1 the owner runs it, 0 it does not, -1 the owner cannot be asked (a->error set). */
static int runs_on_owner(ReconcileAction *a)
{
        int r = virt_remote_domain_active(a->owner_uri, a->uuid, NULL);

        if (r < 0)
                a->error = strdup(virt_last_error("cannot connect"));
        return r;
}

/* RESUME: the copy here paused for the switchover of a migration that ended while libvirtd
 * was away (libvirt leaves it to a third party: it cannot know whether the destination took
 * over). Resumed only if every peer says it does not have the guest active; a peer that
 * runs it, or is still receiving it, or cannot be asked, leaves it paused. */
static int resume_if_nowhere_else(ReconcileAction *a, virConnectPtr conn)
{
        virDomainPtr dom;
        int r;

        for (size_t k = 0; k < a->peers.n; k++) {
                const PeerTarget *t = &a->peers.items[k];
                int state, reason;

                r = isempty(t->uri) ? -1
                                    : virt_remote_domain_state(t->uri, a->uuid, &state, &reason);
                if (r != 0) {
                        free(a->owner);
                        a->owner = strdup(t->name);
                        if (r < 0) {
                                a->error =
                                        strdup(isempty(t->uri) ? "no libvirt_uri"
                                                               : virt_last_error("cannot connect"));
                                return RESULT_PEER_UNREACHABLE;
                        }
                        return RESULT_ON_PEER;
                }
        }
        dom = virDomainLookupByUUIDString(conn, a->uuid);
        if (!dom || !virt_migration_ended_paused(dom))
                r = RESULT_CHANGED;
        else if (virDomainResume(dom) < 0) {
                a->error = strdup(virt_last_error("resume failed"));
                r = -EIO;
        } else
                r = 0;
        if (dom)
                virDomainFree(dom);
        return r;
}

/* START: the autostart the hook held back while the store could not be read. */
static int start_deferred(ReconcileAction *a, virConnectPtr conn)
{
        virDomainPtr dom = virDomainLookupByUUIDString(conn, a->uuid);
        int r = 0;

        if (!dom)
                return RESULT_CHANGED;
        if (virDomainIsActive(dom) == 1)
                r = RESULT_CHANGED; /* someone started it meanwhile */
        else if (virDomainCreate(dom) < 0) {
                a->error = strdup(virt_last_error("start failed"));
                r = -EIO;
        }
        virDomainFree(dom);
        return r;
}

static void act_work(Manager *m, void *userdata)
{
        Pass *p = userdata;
        virConnectPtr conn = NULL;
        char err[512];

        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                for (size_t i = 0; i < p->n_actions; i++) {
                        p->actions[i].result = -EHOSTDOWN;
                        p->actions[i].error = strdup(err);
                }
                return;
        }
        for (size_t i = 0; i < p->n_actions; i++) {
                ReconcileAction *a = &p->actions[i];
                virDomainPtr dom;

                if (a->kind == RECONCILE_RESUME) {
                        a->result = resume_if_nowhere_else(a, conn);
                        continue;
                }
                if (a->kind == RECONCILE_START) {
                        a->result = start_deferred(a, conn);
                        continue;
                }
                if (a->kind == RECONCILE_FIND_ELSEWHERE) {
                        a->result = find_elsewhere(a);
                        continue;
                }
                if (a->kind == RECONCILE_UNDEFINE_UNLESS_MOVED) {
                        int has = owner_has_it(a);

                        if (has <= 0) {
                                a->result =
                                        has < 0 ? RESULT_OWNER_UNREACHABLE : RESULT_NOT_ON_OWNER;
                                continue;
                        }
                }
                if (a->kind == RECONCILE_ASK_OWNER) {
                        a->result = owner_runs_it(a, conn);
                        if (a->result < 0)
                                a->result = 0; /* unreachable: it does not run there for us */
                        if (a->result != 1 || a->postcopy)
                                continue;
                        if (a->holds_state && owner_copy_booted_afresh(a->owner_uri, a->uuid)) {
                                a->keep_here = true; /* claimed: the owner's copy goes */
                                continue;
                        }
                        /* It runs on its owner too: this copy started without its record
                         * (libvirt resumed an incoming migration its source gave up on, and
                         * the source resumed its own). The record decides: this one goes. */
                        a->kind = RECONCILE_DESTROY_UNDEFINE;
                        a->split = true;
                } else if (a->kind == RECONCILE_DESTROY_UNDEFINE && a->owner_uri) {
                        /* The owner rebuilt it, or it migrated back here and the record did
                         * not follow (its source died): only the owner can tell. */
                        int there = runs_on_owner(a);

                        if (there == 0) {
                                a->result = RESULT_NOT_ON_OWNER;
                                continue;
                        }
                        if (there < 0) {
                                a->result = RESULT_OWNER_UNREACHABLE;
                                continue;
                        }
                }
                dom = virDomainLookupByUUIDString(conn, a->uuid);
                if (!dom) {
                        a->result = 0; /* gone already */
                        continue;
                }
                if (a->kind == RECONCILE_DESTROY_UNDEFINE && virDomainIsActive(dom) == 1 &&
                    virDomainDestroy(dom) < 0) {
                        a->result = -EIO;
                        a->error = strdup(virt_last_error("destroy failed"));
                } else if (virDomainIsPersistent(dom) == 1 &&
                           virDomainUndefineFlags(dom,
                                                  VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                                          VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                          VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
                                                          VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) < 0) {
                        a->result = -EIO;
                        a->error = strdup(virt_last_error("undefine failed"));
                } else
                        a->result = 0;
                virDomainFree(dom);
        }
        virConnectClose(conn);
}

static void pass_finished(Manager *m);

static void forget_saved(Reconciler *rc, const char *uuid);
static bool saved_contains(const SavedDefs *s, const char *uuid, uint64_t hash);
static int saved_add(SavedDefs *s, const char *uuid, uint64_t hash);

static int claim(Manager *m, const char *uuid, const char *name, InstancePower power,
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
        return migration_busy(m, uuid) || strv_contains(m->rebuilding, uuid);
}

static void resume_done(Manager *m, const ReconcileAction *a)
{
        Reconciler *rc = m->reconciler;
        bool told = strv_contains(rc->memory.told, a->uuid);

        if (a->result == RESULT_CHANGED)
                return;
        if (a->result == 0) {
                strv_remove(rc->memory.told, a->uuid);
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECONCILED },
                                      { "HOSTWARDEN_DOMAIN", a->name },
                                      { "HOSTWARDEN_INSTANCE", a->uuid }),
                           "Instance %s (%s) was paused here for the end of a migration that "
                           "libvirtd did not see finish, and no peer has it: resumed here",
                           a->uuid, strna(a->name));
                return;
        }
        if (told)
                return; /* once: it is asked again on every pass */
        (void)strv_extend(&rc->memory.told, a->uuid);
        if (a->result == RESULT_ON_PEER)
                log_notice("Instance %s (%s) is paused here for the end of a migration, and %s "
                           "has it: left paused (the node that runs it takes its record, and "
                           "this copy goes)",
                           a->uuid, strna(a->name), strna(a->owner));
        else if (a->result == RESULT_PEER_UNREACHABLE)
                log_warning("Instance %s (%s) is paused here for the end of a migration that "
                            "libvirtd did not see finish, and %s cannot be asked whether it has "
                            "it (%s): left paused until every peer answers ('virsh resume %s' "
                            "once you know no other node runs it)",
                            a->uuid, strna(a->name), strna(a->owner), strna(a->error), a->uuid);
        else
                log_error("Instance %s (%s) is paused here for the end of a migration, no peer "
                          "has it, and it cannot be resumed: %s",
                          a->uuid, strna(a->name), strna(a->error));
}

/* Whether uuid is new to the list l (then added): for what is logged once. */
static bool tell_once(char ***l, const char *uuid)
{
        if (strv_contains(*l, uuid))
                return false;
        (void)strv_extend(l, uuid);
        return true;
}

static const char *stale_reason(const ReconcileAction *a)
{
        static __thread char buf[256];

        if (a->kind == RECONCILE_UNDEFINE_UNLESS_MOVED)
                snprintf(buf, sizeof(buf),
                         "%s has the instance too, and its record says it is %s's (a migration "
                         "that kept its source's definition, or a definition copied here)",
                         a->owner, a->owner);
        else if (a->deleted)
                snprintf(buf, sizeof(buf),
                         "the instance was deleted (on %s) after it was evacuated from here",
                         a->owner);
        else
                snprintf(buf, sizeof(buf), "it belongs to %s now", a->owner);
        return buf;
}

/* The record follows the instance to the peer that has it, or becomes a tombstone when no
 * node has it any more (every peer answered). Returns whether the record changed. */
static bool found_elsewhere(Manager *m, const ReconcileAction *a)
{
        InstanceRecord rec = {}, cur = {};
        bool changed = false;
        int r;

        if (a->result == RESULT_PEER_UNREACHABLE) {
                if (a->gone && tell_once(&m->reconciler->memory.unknown, a->uuid))
                        log_warning("Instance %s (%s) is no longer defined here, and %s cannot "
                                    "be asked whether it has it (%s): its record is kept until "
                                    "every peer answers (it may have moved, or been deleted)",
                                    a->uuid, strna(a->name), strna(a->owner), strna(a->error));
                return false;
        }
        if (a->result < 0 || (!a->found && !a->gone))
                return false;
        if (store_instance_get(m->store, a->uuid, &cur) < 0 || cur.generation != a->generation) {
                instance_record_done(&cur);
                return false; /* changed meanwhile: decided again next pass */
        }
        rec = (InstanceRecord){ .name = cur.name, .time = now_realtime() };
        memcpy(rec.uuid, a->uuid, sizeof(rec.uuid));
        if (a->found) {
                rec.owner = a->found;
                /* back on the node it was evacuated from: nothing there is stale any more */
                rec.evacuated_from =
                        streq_ptr(a->found, cur.evacuated_from) ? NULL : cur.evacuated_from;
                rec.power = a->found_power;
        } else {
                rec.owner = m->config->node.name;
                rec.evacuated_from = cur.evacuated_from;
                rec.power = INSTANCE_POWER_SHUTOFF;
                rec.deleted = true;
        }
        r = store_instance_cas(m->store, &rec, cur.generation, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot update the record of instance %s: %m", a->uuid);
        else if (a->found)
                log_fields(LOG_NOTICE, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECONCILED },
                                      { "HOSTWARDEN_DOMAIN", a->name },
                                      { "HOSTWARDEN_INSTANCE", a->uuid }),
                           "Instance %s (%s) %s %s: its record follows it there (a migration "
                           "hostwarden did not make)",
                           a->uuid, strna(cur.name), a->found_active ? "runs on" : "is defined on",
                           a->found);
        else
                log_fields(LOG_NOTICE, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECONCILED },
                                      { "HOSTWARDEN_DOMAIN", a->name },
                                      { "HOSTWARDEN_INSTANCE", a->uuid }),
                           "Instance %s (%s) is no longer defined here nor on any peer: deleted. "
                           "Its record stays as a tombstone (with its last definition), so "
                           "that no stale copy takes it back",
                           a->uuid, strna(cur.name));
        changed = r >= 0;
        instance_record_done(&cur);
        return changed;
}

static void act_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        bool changed = false;
        Pass *p = userdata;

        strv_free(m->reconciler->acting);
        m->reconciler->acting = NULL;
        for (size_t i = 0; i < p->n_actions; i++) {
                ReconcileAction *a = &p->actions[i];

                if (a->kind == RECONCILE_RESUME) {
                        resume_done(m, a);
                        continue;
                }
                if (a->kind == RECONCILE_START) {
                        (void)runtime_deferred_remove(hw_runtime_dir(), a->uuid);
                        if (a->result == 0)
                                log_fields(LOG_NOTICE, 0,
                                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECONCILED },
                                                      { "HOSTWARDEN_DOMAIN", a->name },
                                                      { "HOSTWARDEN_INSTANCE", a->uuid }),
                                           "Instance %s (%s) started: its autostart waited for "
                                           "the cluster store, which says it is this node's",
                                           a->uuid, strna(a->name));
                        else if (a->result < 0)
                                log_error("Instance %s (%s), whose autostart waited for the "
                                          "cluster store, cannot be started: %s",
                                          a->uuid, strna(a->name), strna(a->error));
                        continue;
                }
                if (a->kind == RECONCILE_FIND_ELSEWHERE) {
                        changed |= found_elsewhere(m, a);
                        continue;
                }
                if (a->kind == RECONCILE_UNDEFINE_UNLESS_MOVED &&
                    a->result == RESULT_OWNER_UNREACHABLE) {
                        if (tell_once(&m->reconciler->memory.unknown, a->uuid))
                                log_warning("Instance %s (%s) is defined here, shut off, and "
                                            "recorded as %s's, which cannot be asked whether it "
                                            "has it (%s): left alone until it can",
                                            a->uuid, strna(a->name), a->owner, strna(a->error));
                        continue;
                }
                if (a->keep_here) {
                        InstanceRecord cur = {};

                        if (store_instance_get(m->store, a->uuid, &cur) == 0 &&
                            cur.generation == a->generation)
                                changed |= claim(m, a->uuid, a->name, a->power, a->generation,
                                                 "it runs here and on the recorded owner, and "
                                                 "this copy arrived by migration while the "
                                                 "owner's was booted afresh from the definition "
                                                 "left behind: this one holds the guest, the "
                                                 "owner's copy goes") == 0;
                        instance_record_done(&cur);
                        continue;
                }
                if (a->kind == RECONCILE_DESTROY_UNDEFINE &&
                    a->result == RESULT_OWNER_UNREACHABLE) {
                        log_fields(LOG_WARNING, 0,
                                   LOG_FIELDS({ "HOSTWARDEN_DOMAIN", a->name },
                                              { "HOSTWARDEN_INSTANCE", a->uuid }),
                                   "Instance %s (%s), evacuated from here to %s, runs here; %s "
                                   "cannot be asked whether it runs there (%s): left alone",
                                   a->uuid, strna(a->name), a->owner, a->owner, strna(a->error));
                        continue;
                }
                if (a->postcopy) {
                        log_fields(LOG_ERR, 0,
                                   LOG_FIELDS({ "HOSTWARDEN_DOMAIN", a->name },
                                              { "HOSTWARDEN_INSTANCE", a->uuid }),
                                   "Instance %s (%s) runs here and is paused in post-copy on its "
                                   "owner %s: each copy holds part of the guest, left alone for "
                                   "an operator ('virsh domjobinfo' on %s)",
                                   a->uuid, strna(a->name), a->owner, a->owner);
                        continue;
                }
                if (a->split) {
                        if (a->result < 0)
                                log_error("Instance %s (%s) runs here and on its owner %s, and "
                                          "the copy here cannot be destroyed: %s. Destroy it "
                                          "('virsh destroy %s'): two copies write its disks",
                                          a->uuid, strna(a->name), a->owner, strna(a->error),
                                          a->uuid);
                        else
                                log_fields(LOG_ERR, 0,
                                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECONCILED },
                                                      { "HOSTWARDEN_DOMAIN", a->name },
                                                      { "HOSTWARDEN_INSTANCE", a->uuid }),
                                           "Instance %s (%s) ran here and on its owner %s: the "
                                           "copy here, which its record does not name, was "
                                           "destroyed and undefined (no file was deleted)",
                                           a->uuid, strna(a->name), a->owner);
                        continue;
                }
                if (a->kind == RECONCILE_ASK_OWNER ||
                    (a->kind == RECONCILE_UNDEFINE_UNLESS_MOVED &&
                     a->result == RESULT_NOT_ON_OWNER) ||
                    (a->kind == RECONCILE_DESTROY_UNDEFINE && a->result == RESULT_NOT_ON_OWNER)) {
                        InstanceRecord cur = {};

                        /* Claim only if the record is still what was looked at. */
                        if (store_instance_get(m->store, a->uuid, &cur) == 0 &&
                            cur.generation == a->generation)
                                changed |= claim(m, a->uuid, a->name, a->power, a->generation,
                                                 a->kind == RECONCILE_UNDEFINE_UNLESS_MOVED
                                                         ? "it is defined here and the recorded "
                                                           "owner does not have it any more (it "
                                                           "moved here, by a migration "
                                                           "hostwarden did not make)"
                                                 : a->owner_paused
                                                         ? "it runs here, and its copy on the "
                                                           "recorded owner is paused for the "
                                                           "end of a migration to here that its "
                                                           "libvirtd did not see finish"
                                                         : "it runs here and not on the recorded "
                                                           "owner (a migration that completed "
                                                           "while its source's daemon was away, "
                                                           "or one hostwarden did not make)") == 0;
                        instance_record_done(&cur);
                        continue;
                }
                if (a->result < 0)
                        log_error(
                                "Cannot remove the stale copy of instance %s (%s) owned by %s: %s",
                                a->uuid, strna(a->name), a->owner, strna(a->error));
                else
                        log_fields(LOG_WARNING, 0,
                                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECONCILED },
                                              { "HOSTWARDEN_DOMAIN", a->name },
                                              { "HOSTWARDEN_INSTANCE", a->uuid }),
                                   "Stale copy of instance %s (%s) %s: %s (no file was deleted)",
                                   a->uuid, strna(a->name),
                                   a->kind == RECONCILE_DESTROY_UNDEFINE ? "destroyed and undefined"
                                                                         : "undefined",
                                   stale_reason(a));
        }
        pass_free(p);
        if (changed)
                (void)manager_sync_deny_list(m); /* claims and hand-overs change its entries */
        pass_finished(m);
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

                        if (claim(m, d->uuid, d->name, s->power, s->expected, s->why) == 0 &&
                            s->save_after)
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
        r = manager_sync_deny_list_from(m, inst, n_inst);
        if (r < 0)
                log_warning_errno(r, "Failed to update the deny list: %m");
        if (p->error < 0) {
                log_debug("Reconciliation skipped: libvirt cannot be listed (%s)",
                          strna(p->error_message));
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
                /* an evacuation leaves these alone until the actions are done */
                for (size_t i = 0; i < p->n_actions; i++)
                        (void)strv_extend(&rc->acting, p->actions[i].uuid);
                r = job_start(m, NULL, act_work, act_done, p);
                if (r >= 0)
                        return;
                strv_free(rc->acting);
                rc->acting = NULL;
                log_warning_errno(r, "Cannot start a worker thread: %m");
        }
finish:
        pass_free(p);
        pass_finished(m);
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

static void pass_finished(Manager *m)
{
        Reconciler *rc = m->reconciler;

        rc->running = false;
        if (rc->again)
                pass_start(m);
}

void reconcile_schedule(Manager *m)
{
        Reconciler *rc = m->reconciler;

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
        strv_free(rc->acting);
        free(rc);
        m->reconciler = NULL;
}

bool reconcile_acting_on(Manager *m, const char *uuid)
{
        return m->reconciler && strv_contains(m->reconciler->acting, uuid);
}
