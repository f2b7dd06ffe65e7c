/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The decision of a reconciliation pass (reconcile-plan.h; the rules: dbus/reconcile.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile-plan.h"

void reconcile_domain_done(ReconcileDomain *d)
{
        free(d->name);
        free(d->xml);
        *d = (ReconcileDomain){};
}

void reconcile_action_done(ReconcileAction *a)
{
        free(a->name);
        free(a->owner);
        free(a->owner_uri);
        free(a->evacuated_from);
        free(a->found);
        peer_targets_done(&a->peers);
        free(a->error);
}

uint64_t seen_set_since(const SeenSet *s, const char *uuid)
{
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->items[i].uuid, uuid))
                        return s->items[i].since;
        return 0;
}

bool seen_set_settled(const SeenSet *s, const char *uuid, uint64_t now, usec_t settle)
{
        uint64_t since = seen_set_since(s, uuid);

        return since > 0 && now - since >= settle;
}

int seen_set_carry(SeenSet *next, const SeenSet *last, const char *uuid, uint64_t now)
{
        uint64_t since = seen_set_since(last, uuid);
        SeenEntry *items = reallocarray(next->items, next->n + 1, sizeof(*items));

        if (!items)
                return -ENOMEM;
        next->items = items;
        snprintf(items[next->n].uuid, sizeof(items[next->n].uuid), "%s", uuid);
        items[next->n++].since = since ? since : now;
        return 0;
}

void seen_set_done(SeenSet *s)
{
        free(s->items);
        *s = (SeenSet){};
}

void reconcile_memory_done(ReconcileMemory *m)
{
        seen_set_done(&m->missing);
        seen_set_done(&m->suspect);
        seen_set_done(&m->paused);
        seen_set_done(&m->moved);
        strv_free(m->told);
        strv_free(m->unknown);
        *m = (ReconcileMemory){};
}

void reconcile_plan_done(ReconcilePlan *p)
{
        for (size_t i = 0; i < p->n_actions; i++)
                reconcile_action_done(&p->actions[i]);
        free(p->actions);
        free(p->steps);
        reconcile_memory_done(&p->memory);
        *p = (ReconcilePlan){};
}

InstancePower reconcile_power_of(const ReconcileDomain *d)
{
        if (!d->active)
                return INSTANCE_POWER_SHUTOFF;
        return d->paused ? INSTANCE_POWER_PAUSED : INSTANCE_POWER_RUNNING;
}

static bool busy(const ReconcileInput *in, const char *uuid)
{
        return in->busy && in->busy(uuid, in->userdata);
}

static const ReconcileDomain *local_domain(const ReconcileInput *in, const char *uuid)
{
        for (size_t i = 0; i < in->n_domains; i++)
                if (streq(in->domains[i].uuid, uuid))
                        return &in->domains[i];
        return NULL;
}

static int add_step(ReconcilePlan *p, ReconcileStepKind kind, ReconcileStep **ret)
{
        ReconcileStep *steps = reallocarray(p->steps, p->n_steps + 1, sizeof(*steps));

        if (!steps)
                return -ENOMEM;
        p->steps = steps;
        steps[p->n_steps] = (ReconcileStep){ .kind = kind };
        *ret = &steps[p->n_steps++];
        return 0;
}

static int add_claim(ReconcilePlan *p, const ReconcileInput *in, size_t domain, uint64_t expected,
                     const char *why)
{
        ReconcileStep *s;
        int r;

        r = add_step(p, RECONCILE_STEP_CLAIM, &s);
        if (r < 0)
                return r;
        s->domain = domain;
        s->power = reconcile_power_of(&in->domains[domain]);
        s->expected = expected;
        s->why = why;
        s->save_after = true;
        return 0;
}

/* The action and the ACT step that names it; *ret points into p->actions (until the next). */
static int add_action(ReconcilePlan *p, ReconcileActionKind kind, const ReconcileDomain *d,
                      const InstanceRecord *rec, const char *owner_uri, ReconcileAction **ret)
{
        ReconcileAction *n = reallocarray(p->actions, p->n_actions + 1, sizeof(*n));
        ReconcileStep *s;
        int r;

        if (!n)
                return -ENOMEM;
        p->actions = n;
        r = add_step(p, RECONCILE_STEP_ACT, &s);
        if (r < 0)
                return r;
        s->action = p->n_actions;
        n = &p->actions[p->n_actions++];
        *n = (ReconcileAction){ .kind = kind, .generation = rec->generation };
        memcpy(n->uuid, d->uuid, sizeof(n->uuid));
        n->name = d->name ? strdup(d->name) : NULL;
        n->owner = strdup(rec->owner);
        n->owner_uri = owner_uri ? strdup(owner_uri) : NULL;
        n->evacuated_from = rec->evacuated_from ? strdup(rec->evacuated_from) : NULL;
        n->deleted = rec->deleted;
        n->power = d->active || d->has_state ? reconcile_power_of(d) : INSTANCE_POWER_UNKNOWN;
        if ((d->name && !n->name) || !n->owner || (owner_uri && !n->owner_uri) ||
            (rec->evacuated_from && !n->evacuated_from))
                return -ENOMEM;
        if (ret)
                *ret = n;
        return 0;
}

/* FIND_ELSEWHERE for an own record: gone here (d NULL), or stopped by a migration. The
 * fenced peers are not asked: powered off, they run nothing, and a definition they keep
 * claims a tombstone back when they return (unless the instance was evacuated from there,
 * when it is stale). */
static int add_find(ReconcilePlan *p, const ReconcileInput *in, const InstanceRecord *rec,
                    const ReconcileDomain *d, bool generation_from_refresh)
{
        ReconcileDomain none = { .name = rec->name };
        ReconcileAction *a;
        int r;

        memcpy(none.uuid, rec->uuid, sizeof(none.uuid));
        r = add_action(p, RECONCILE_FIND_ELSEWHERE, d ?: &none, rec, NULL, &a);
        if (r < 0)
                return r;
        p->steps[p->n_steps - 1].generation_from_refresh = generation_from_refresh;
        a->gone = !d;
        for (size_t i = 0; i < in->peers->n; i++) {
                const PeerTarget *t = &in->peers->items[i];

                if (strv_contains(in->fenced, t->name))
                        continue;
                r = peer_targets_add(&a->peers, t->name, t->uri);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_resume(ReconcilePlan *p, const ReconcileInput *in, const ReconcileDomain *d,
                      const InstanceRecord *rec)
{
        ReconcileAction *a;
        int r;

        r = add_action(p, RECONCILE_RESUME, d, rec, NULL, &a);
        if (r < 0)
                return r;
        return peer_targets_copy(in->peers, &a->peers); /* asking fewer peers is not an option */
}

bool reconcile_cold_keeps(const InstanceRecord *rec, const char *self)
{
        return rec->cold_source && !rec->deleted &&
               (streq(rec->cold_source, self) || streq(rec->owner, self));
}

/* Did the domain arrive here by a migration after the record last changed hands? Then the
 * record has not caught up with that migration yet (its source died before it moved the
 * record): not a stale copy. A node that was fenced kept no marker (the runtime directory
 * is a tmpfs). */
static bool arrived_since(const ReconcileDomain *d, const InstanceRecord *rec)
{
        return d->arrived > 0 && d->arrived > rec->time;
}

/* An own record follows the domain's name (virsh domrename) and power state (what an
 * evacuation rebuilds); not while it migrates. Whether a REFRESH was planned. */
static int plan_refresh(ReconcilePlan *p, size_t domain, size_t record, const ReconcileDomain *d,
                        const InstanceRecord *rec)
{
        ReconcileStep *s;
        int r;

        if (d->migrating || !d->name)
                return 0;
        if (streq_ptr(rec->name, d->name) && rec->power == reconcile_power_of(d))
                return 0;
        r = add_step(p, RECONCILE_STEP_REFRESH, &s);
        if (r < 0)
                return r;
        s->domain = domain;
        s->record = record;
        s->power = reconcile_power_of(d);
        return 1;
}

static int plan_domain(ReconcilePlan *p, const ReconcileInput *in, const ReconcileMemory *last,
                       size_t i)
{
        const ReconcileDomain *d = &in->domains[i];
        const InstanceRecord *rec = NULL;
        const PeerTarget *peer;
        const char *owner_uri;
        size_t k_rec = 0;
        ReconcileStep *s;
        bool stale;
        int r;

        for (size_t k = 0; k < in->n_records; k++)
                if (streq(in->records[k].uuid, d->uuid)) {
                        rec = &in->records[k];
                        k_rec = k;
                }
        if (!rec) {
                if (busy(in, d->uuid))
                        return 0;
                return add_claim(p, in, i, 0, "it has no record");
        }
        if (rec->deleted) {
                /* the copy left on the node it was evacuated from is stale; any other is a
                 * definition made after the deletion (a restore, a new guest with its UUID):
                 * the instance lives again */
                /* (a paused guest restored here is "paused for a migration" that no longer
                 * runs: decided like any other) */
                if (busy(in, d->uuid) || (d->migrating && !d->ended_paused))
                        return 0;
                if (streq_ptr(rec->evacuated_from, in->self) && !d->active)
                        return add_action(p, RECONCILE_UNDEFINE, d, rec, NULL, NULL);
                return add_claim(p, in, i, rec->generation,
                                 "it was deleted, and is defined here again");
        }
        /* the cold migration's source copy, kept for a Revert: nothing is decided about it
         * (the owner's copy keeps its record current below, and nothing more happens to it
         * than to any own domain's) */
        if (reconcile_cold_keeps(rec, in->self) && !streq(rec->owner, in->self))
                return 0;
        if (streq(rec->owner, in->self)) {
                int refreshed;

                r = add_step(p, RECONCILE_STEP_SAVE_DEFINITION, &s);
                if (r < 0)
                        return r;
                s->domain = i;
                refreshed = plan_refresh(p, i, k_rec, d, rec);
                if (refreshed < 0)
                        return refreshed;
                /* stopped here by a migration (libvirt's shut-off reason): the peer that runs
                 * it now takes the record at once, so that the definition left here is denied
                 * before anyone starts it */
                if (!d->active && d->shutoff_migrated && !busy(in, d->uuid)) {
                        if (!seen_set_since(&last->moved, d->uuid)) {
                                r = add_find(p, in, rec, d, refreshed > 0);
                                if (r < 0)
                                        return r;
                        }
                        r = seen_set_carry(&p->memory.moved, &last->moved, d->uuid, in->now);
                        if (r < 0)
                                return r;
                }
                /* paused for a migration that ended: resumed once so for the settle time, if
                 * no peer has it */
                /* (a guest the record saw paused stays so: a restore of a paused guest looks
                 * the same to libvirt) */
                if (d->ended_paused && rec->power != INSTANCE_POWER_PAUSED && !busy(in, d->uuid)) {
                        if (seen_set_settled(&last->paused, d->uuid, in->now, in->settle)) {
                                r = add_resume(p, in, d, rec);
                                if (r < 0)
                                        return r;
                        }
                        return seen_set_carry(&p->memory.paused, &last->paused, d->uuid, in->now);
                }
                return 0;
        }
        /* a copy paused for a migration that ended is decided as any other: the owner is
         * asked, and if it runs the guest this stale copy goes */
        if ((d->migrating && !d->ended_paused) || busy(in, d->uuid))
                return 0;
        peer = peer_targets_find(in->peers, rec->owner);
        owner_uri = peer && !isempty(peer->uri) ? peer->uri : NULL;
        if (!d->active && streq_ptr(rec->evacuated_from, in->self))
                return add_action(p, RECONCILE_UNDEFINE, d, rec, NULL, NULL);
        if (!d->active) {
                /* never the last definition: the owner is asked whether it has one */
                if (owner_uri)
                        return add_action(p, RECONCILE_UNDEFINE_UNLESS_MOVED, d, rec, owner_uri,
                                          NULL);
                return 0;
        }
        /* Running here, owned elsewhere: decided once it stays so for the settle time (the
         * owner may be between its claim and its start). */
        stale = streq_ptr(rec->evacuated_from, in->self) && !arrived_since(d, rec);
        if (seen_set_settled(&last->suspect, d->uuid, in->now, in->settle) &&
            (stale || owner_uri)) {
                ReconcileAction *a;

                r = add_action(p, stale ? RECONCILE_DESTROY_UNDEFINE : RECONCILE_ASK_OWNER, d, rec,
                               owner_uri, &a);
                if (r < 0)
                        return r;
                a->holds_state = d->running_migrated || arrived_since(d, rec);
        }
        return seen_set_carry(&p->memory.suspect, &last->suspect, d->uuid, in->now);
}

/* The starts the hook deferred while the store could not be read (runtime.h deferred/):
 * an autostart of an instance that the store says is this node's is carried out (libvirt
 * does not try again); any other is forgotten (an instance owned elsewhere is a stale copy,
 * and an operator's own start was refused with the reason). One without a record waits for
 * the claim this pass makes. */
static int plan_deferred_starts(ReconcilePlan *p, const ReconcileInput *in)
{
        ReconcileStep *s;
        int r;

        if (!in->synced)
                return 0;
        STRV_FOREACH (u, in->deferred) {
                const ReconcileDomain *d = local_domain(in, *u);
                const InstanceRecord *rec = NULL;

                for (size_t k = 0; k < in->n_records && !rec; k++)
                        if (streq(in->records[k].uuid, *u))
                                rec = &in->records[k];
                if (d && !rec && !d->active)
                        continue; /* claimed by this pass: started by the next */
                if (d && rec && streq(rec->owner, in->self) && !d->active && d->autostart &&
                    !busy(in, d->uuid)) {
                        r = add_action(p, RECONCILE_START, d, rec, NULL, NULL);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = add_step(p, RECONCILE_STEP_DROP_DEFERRED, &s);
                if (r < 0)
                        return r;
                snprintf(s->uuid, sizeof(s->uuid), "%s", *u);
        }
        return 0;
}

/* arriving/ markers of migrations that never came (refused before "prepare", or their
 * source died): past open_window the hook no longer honours them; removed once no domain
 * here is active under that UUID (a running one that arrived keeps its marker until it
 * stops: arrived_since() reads it). */
static int plan_stale_arrivals(ReconcilePlan *p, const ReconcileInput *in)
{
        ReconcileStep *s;
        int r;

        for (size_t i = 0; i < in->n_arrivals; i++) {
                const ReconcileArrival *a = &in->arrivals[i];
                const ReconcileDomain *d = local_domain(in, a->uuid);
                uint64_t now = in->now_realtime;

                if ((d && d->active) || a->since > now || now - a->since <= in->open_window)
                        continue;
                r = add_step(p, RECONCILE_STEP_DROP_ARRIVAL, &s);
                if (r < 0)
                        return r;
                memcpy(s->uuid, a->uuid, sizeof(s->uuid));
        }
        return 0;
}

/* Own records whose domain is gone for the settle time: the peers are asked; the record
 * follows the one that has it, or becomes a tombstone if none has. */
static int plan_missing(ReconcilePlan *p, const ReconcileInput *in, const ReconcileMemory *last)
{
        int r;

        for (size_t k = 0; k < in->n_records; k++) {
                const InstanceRecord *rec = &in->records[k];

                /* a cold migration's owner has no copy while it lands or reverts: the record
                 * must not follow the source's copy meanwhile */
                if (!streq(rec->owner, in->self) || rec->deleted || local_domain(in, rec->uuid) ||
                    busy(in, rec->uuid) || reconcile_cold_keeps(rec, in->self))
                        continue;
                if (seen_set_settled(&last->missing, rec->uuid, in->now, in->settle)) {
                        r = add_find(p, in, rec, NULL, false);
                        if (r < 0)
                                return r;
                }
                r = seen_set_carry(&p->memory.missing, &last->missing, rec->uuid, in->now);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int plan_memory(ReconcilePlan *p, const ReconcileInput *in, const ReconcileMemory *last)
{
        int r;

        /* what could not be decided is told about again once it is decided */
        STRV_FOREACH (u, last->unknown)
                if (seen_set_since(&p->memory.missing, *u) || local_domain(in, *u)) {
                        r = strv_extend(&p->memory.unknown, *u);
                        if (r < 0)
                                return r;
                }
        /* those no longer left paused are told about again if they are again */
        STRV_FOREACH (u, last->told)
                if (seen_set_since(&p->memory.paused, *u)) {
                        r = strv_extend(&p->memory.told, *u);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int reconcile_plan(const ReconcileInput *in, const ReconcileMemory *last, ReconcilePlan *ret)
{
        ReconcilePlan p = {};
        int r = 0;

        for (size_t i = 0; i < in->n_domains && r >= 0; i++)
                r = plan_domain(&p, in, last, i);
        if (r >= 0)
                r = plan_deferred_starts(&p, in);
        if (r >= 0)
                r = plan_stale_arrivals(&p, in);
        if (r >= 0)
                r = plan_missing(&p, in, last);
        if (r >= 0)
                r = plan_memory(&p, in, last);
        if (r < 0) {
                reconcile_plan_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}
