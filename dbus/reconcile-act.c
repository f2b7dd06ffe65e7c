/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reconciliation, the second worker of a pass (reconcile.h): what the plan's actions need of
 * libvirt, here and on the peers. It asks the owners and peers whether they have or run the
 * instance, and destroys, undefines, resumes or starts the local copy; it writes nothing to
 * the store (reconcile-done.c does, in the event loop). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile-internal.h"
#include "util.h"
#include "virt.h"

/* ASK_OWNER: 1 the owner runs it, 0 it does not, -1 the owner cannot be asked (a->error
 * set). One look at the owner's copy (*ret_owner) decides all that follows: two looks could
 * see two states. A copy on the owner that paused for the switchover of a migration to here,
 * while this one runs, does not count: this one holds the guest (precopy resumes the
 * destination only once the source sent everything; libvirtd died before it killed the
 * source). A copy in post-copy counts (a->postcopy): both hold part of the guest. So does a
 * copy still starting (a->owner_starting): what it will hold is not known yet. */
static int owner_runs_it(ReconcileAction *a, virConnectPtr conn, RemoteDomain *ret_owner)
{
        int lstate = VIR_DOMAIN_NOSTATE, lreason = 0;
        virDomainPtr dom;
        RemoteDomain o;

        if (virt_remote_domain_lookup(a->owner_uri, a->uuid, &o) < 0) {
                a->error = strdup(virt_last_error("cannot connect"));
                return -1;
        }
        *ret_owner = o;
        if (!o.active)
                return 0;
        if (o.state != VIR_DOMAIN_PAUSED)
                return 1;
        if (o.reason == VIR_DOMAIN_PAUSED_POSTCOPY ||
            o.reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) {
                a->postcopy = true;
                return 1;
        }
        /* QEMU launched, its CPUs not started yet: a start, a restore or an incoming
         * migration that has not finished. Judged by how it ends, on a later pass. */
        if (o.reason == VIR_DOMAIN_PAUSED_STARTING_UP) {
                a->owner_starting = true;
                return 1;
        }
        dom = virDomainLookupByUUIDString(conn, a->uuid);
        if (dom) {
                if (virDomainGetState(dom, &lstate, &lreason, 0) < 0)
                        lstate = VIR_DOMAIN_NOSTATE;
                virDomainFree(dom);
        }
        if (o.reason == VIR_DOMAIN_PAUSED_MIGRATION && lstate == VIR_DOMAIN_RUNNING) {
                a->owner_paused = true;
                return 0;
        }
        return 1;
}

/* Both copies run: the one that arrived by migration holds the guest's memory and devices;
 * one the owner booted afresh from the definition left behind (a live migration that kept
 * its source's definition, then a start there) holds nothing the other does not. */
static bool owner_copy_booted_afresh(const RemoteDomain *o)
{
        return o->active && o->state == VIR_DOMAIN_RUNNING &&
               o->reason == VIR_DOMAIN_RUNNING_BOOTED;
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

void reconcile_act_work(Manager *m, void *userdata)
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
                        RemoteDomain owner = { .state = VIR_DOMAIN_NOSTATE };

                        a->result = owner_runs_it(a, conn, &owner);
                        if (a->result < 0)
                                a->result = 0; /* unreachable: it does not run there for us */
                        if (a->result != 1 || a->postcopy || a->owner_starting)
                                continue;
                        if (a->holds_state && owner_copy_booted_afresh(&owner)) {
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
