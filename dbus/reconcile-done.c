/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reconciliation, the end of a pass (reconcile.h): the results of the worker's actions
 * become claims, records that follow the instance elsewhere, tombstones, and the logs told
 * once (the memory's told and unknown lists). Event loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deny-list.h"
#include "instance-ops.h"
#include "log.h"
#include "paths.h"
#include "reconcile-internal.h"
#include "runtime.h"
#include "util.h"
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

void reconcile_act_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        bool changed = false;
        Pass *p = userdata;

        instance_ops_release_owner(m->instance_ops, INSTANCE_OP_RECONCILE, p);
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
                if (a->owner_starting) {
                        /* Which copy holds the guest depends on how the owner's start ends
                         * (booted afresh, or resumed from a migration or a saved state):
                         * both are left running until a later pass can tell. */
                        log_notice("Instance %s (%s) runs here and is still starting on its "
                                   "owner %s: decided once it has started",
                                   a->uuid, strna(a->name), a->owner);
                        continue;
                }
                if (a->keep_here) {
                        InstanceRecord cur = {};

                        if (store_instance_get(m->store, a->uuid, &cur) == 0 &&
                            cur.generation == a->generation)
                                changed |= reconcile_claim(
                                                   m, a->uuid, a->name, a->power, a->generation,
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
                                changed |=
                                        reconcile_claim(
                                                m, a->uuid, a->name, a->power, a->generation,
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
        reconcile_pass_free(p);
        if (changed)
                (void)deny_list_sync(m); /* claims and hand-overs change its entries */
        reconcile_pass_finished(m);
}
