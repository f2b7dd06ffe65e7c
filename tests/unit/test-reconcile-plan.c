/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reconciliation plan (lib/reconcile-plan.h) against the rules of dbus/reconcile.h: given
 * these domains, records, markers and times, what a pass does. */
#include <stdlib.h>
#include <string.h>

#include "reconcile-plan.h"
#include "test-helpers.h"

#define U1 "11111111-1111-1111-1111-111111111111"
#define U2 "22222222-2222-2222-2222-222222222222"
#define U3 "33333333-3333-3333-3333-333333333333"
#define U4 "44444444-4444-4444-4444-444444444444"

#define SEC      1000000ULL
#define NOW      (100 * SEC)
#define NOW_RT   (1000000 * SEC)
#define SETTLE   (2 * SEC)
#define WINDOW   (60 * SEC)
#define REC_TIME (NOW_RT - 10 * SEC)

/* This node is node1; node2 and node3 have a libvirt URI, node4 none; node3 is fenced. */
typedef struct Fixture {
        ReconcileDomain domains[4];
        size_t n_domains;
        InstanceRecord records[4];
        size_t n_records;
        PeerTargets peers;
        char **busy;
        char **fenced;
        char **deferred;
        bool synced;
        ReconcileArrival arrivals[4];
        size_t n_arrivals;
        uint64_t now;
} Fixture;

static bool busy_cb(const char *uuid, void *userdata)
{
        Fixture *f = userdata;

        return strv_contains(f->busy, uuid);
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(Fixture));

        assert_non_null(f);
        assert_int_equal(peer_targets_add(&f->peers, "node2", "qemu+tls://node2/system"), 0);
        assert_int_equal(peer_targets_add(&f->peers, "node3", "qemu+tls://node3/system"), 0);
        assert_int_equal(peer_targets_add(&f->peers, "node4", NULL), 0);
        assert_int_equal(strv_extend(&f->fenced, "node3"), 0);
        f->now = NOW;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        peer_targets_done(&f->peers);
        strv_free(f->busy);
        strv_free(f->fenced);
        strv_free(f->deferred);
        free(f);
        return 0;
}

static ReconcileDomain *add_domain(Fixture *f, const char *uuid, const char *name, bool active)
{
        ReconcileDomain *d = &f->domains[f->n_domains++];

        *d = (ReconcileDomain){ .name = (char *)name, .active = active, .has_state = true };
        strcpy(d->uuid, uuid);
        return d;
}

static InstanceRecord *add_record(Fixture *f, const char *uuid, const char *name, const char *owner,
                                  uint64_t generation)
{
        InstanceRecord *r = &f->records[f->n_records++];

        *r = (InstanceRecord){ .name = (char *)name,
                               .owner = (char *)owner,
                               .time = REC_TIME,
                               .power = INSTANCE_POWER_RUNNING,
                               .generation = generation };
        strcpy(r->uuid, uuid);
        return r;
}

static void plan(Fixture *f, const ReconcileMemory *last, ReconcilePlan *ret)
{
        ReconcileMemory none = {};
        ReconcileInput in = {
                .self = "node1",
                .domains = f->domains,
                .n_domains = f->n_domains,
                .records = f->records,
                .n_records = f->n_records,
                .peers = &f->peers,
                .fenced = f->fenced,
                .busy = busy_cb,
                .userdata = f,
                .synced = f->synced,
                .deferred = f->deferred,
                .arrivals = f->arrivals,
                .n_arrivals = f->n_arrivals,
                .now = f->now,
                .now_realtime = NOW_RT,
                .settle = SETTLE,
                .open_window = WINDOW,
        };

        assert_int_equal(reconcile_plan(&in, last ?: &none, ret), 0);
}

/* The next pass: the same facts, at now + after, after the memory of p (which is freed). */
static void plan_again(Fixture *f, ReconcilePlan *p, uint64_t after)
{
        ReconcileMemory mem = p->memory;

        p->memory = (ReconcileMemory){};
        reconcile_plan_done(p);
        f->now += after;
        plan(f, &mem, p);
        reconcile_memory_done(&mem);
}

static const ReconcileStep *step(const ReconcilePlan *p, size_t i, ReconcileStepKind kind)
{
        assert_true(i < p->n_steps);
        assert_int_equal(p->steps[i].kind, kind);
        return &p->steps[i];
}

static const ReconcileAction *action(const ReconcilePlan *p, size_t i, ReconcileActionKind kind)
{
        const ReconcileStep *s = step(p, i, RECONCILE_STEP_ACT);

        assert_true(s->action < p->n_actions);
        assert_int_equal(p->actions[s->action].kind, kind);
        return &p->actions[s->action];
}

static void assert_peers(const PeerTargets *t, const char *a, const char *b, const char *c)
{
        const char *want[] = { a, b, c };
        size_t n = !!a + !!b + !!c;

        assert_int_equal(t->n, n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(t->items[i].name, want[i]);
}

/* 1 */
static void test_no_record_claimed_unless_busy(void **state)
{
        Fixture *f = *state;
        ReconcilePlan p = {};
        const ReconcileStep *s;

        add_domain(f, U1, "vm1", true);
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 1);
        s = step(&p, 0, RECONCILE_STEP_CLAIM);
        assert_int_equal(s->domain, 0);
        assert_int_equal(s->expected, 0);
        assert_int_equal(s->power, INSTANCE_POWER_RUNNING);
        assert_string_equal(s->why, "it has no record");
        assert_true(s->save_after);
        assert_int_equal(p.n_actions, 0);
        reconcile_plan_done(&p);

        assert_int_equal(strv_extend(&f->busy, U1), 0);
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        reconcile_plan_done(&p);
}

/* 2 */
static void test_tombstone(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d = add_domain(f, U1, "vm1", false);
        InstanceRecord *r = add_record(f, U1, "vm1", "node2", 7);
        ReconcilePlan p = {};
        const ReconcileStep *s;

        r->deleted = true;
        r->evacuated_from = "node1";
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 1);
        assert_true(action(&p, 0, RECONCILE_UNDEFINE)->deleted);
        reconcile_plan_done(&p);

        /* running: defined here again, whatever the record says it was evacuated from */
        d->active = true;
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 1);
        s = step(&p, 0, RECONCILE_STEP_CLAIM);
        assert_int_equal(s->expected, 7);
        assert_string_equal(s->why, "it was deleted, and is defined here again");
        assert_true(s->save_after);
        reconcile_plan_done(&p);

        d->active = false;
        r->evacuated_from = "node2";
        plan(f, NULL, &p);
        assert_int_equal(step(&p, 0, RECONCILE_STEP_CLAIM)->power, INSTANCE_POWER_SHUTOFF);
        reconcile_plan_done(&p);

        /* migrating: not yet */
        d->active = d->migrating = true;
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        reconcile_plan_done(&p);

        /* paused for a migration that ended: decided */
        d->paused = d->ended_paused = true;
        plan(f, NULL, &p);
        assert_int_equal(step(&p, 0, RECONCILE_STEP_CLAIM)->power, INSTANCE_POWER_PAUSED);
        reconcile_plan_done(&p);

        assert_int_equal(strv_extend(&f->busy, U1), 0);
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        reconcile_plan_done(&p);
}

/* 3 */
static void test_own_record_follows_name_and_power(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d = add_domain(f, U1, "vm1", true);
        ReconcilePlan p = {};
        const ReconcileStep *s;

        add_record(f, U1, "vm1", "node1", 3);
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 1);
        assert_int_equal(step(&p, 0, RECONCILE_STEP_SAVE_DEFINITION)->domain, 0);
        reconcile_plan_done(&p);

        d->name = "vm1-renamed";
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 2);
        step(&p, 0, RECONCILE_STEP_SAVE_DEFINITION);
        s = step(&p, 1, RECONCILE_STEP_REFRESH);
        assert_int_equal(s->domain, 0);
        assert_int_equal(s->record, 0);
        assert_int_equal(s->power, INSTANCE_POWER_RUNNING);
        reconcile_plan_done(&p);

        d->name = "vm1";
        d->paused = true;
        plan(f, NULL, &p);
        assert_int_equal(step(&p, 1, RECONCILE_STEP_REFRESH)->power, INSTANCE_POWER_PAUSED);
        reconcile_plan_done(&p);

        d->paused = false;
        d->active = false;
        plan(f, NULL, &p);
        assert_int_equal(step(&p, 1, RECONCILE_STEP_REFRESH)->power, INSTANCE_POWER_SHUTOFF);
        assert_int_equal(p.n_actions, 0);
        reconcile_plan_done(&p);

        /* not while it migrates */
        d->active = d->paused = d->migrating = true;
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 1);
        step(&p, 0, RECONCILE_STEP_SAVE_DEFINITION);
        reconcile_plan_done(&p);
}

/* 4 */
static void test_own_stopped_by_migration_asks_peers_once(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d = add_domain(f, U1, "vm1", false);
        InstanceRecord *r = add_record(f, U1, "vm1", "node1", 3);
        ReconcilePlan p = {};
        const ReconcileAction *a;

        d->shutoff_migrated = true;
        plan(f, NULL, &p);
        /* the record says running: refreshed first, and the FIND takes its generation */
        assert_int_equal(p.n_steps, 3);
        step(&p, 0, RECONCILE_STEP_SAVE_DEFINITION);
        step(&p, 1, RECONCILE_STEP_REFRESH);
        a = action(&p, 2, RECONCILE_FIND_ELSEWHERE);
        assert_true(p.steps[2].generation_from_refresh);
        assert_false(a->gone);
        assert_int_equal(a->generation, 3);
        assert_peers(&a->peers, "node2", "node4", NULL); /* node3 is fenced */
        assert_string_equal(a->peers.items[1].uri, "");
        assert_int_equal(p.memory.moved.n, 1);
        assert_int_equal(seen_set_since(&p.memory.moved, U1), NOW);

        /* later passes only carry it */
        plan_again(f, &p, 10 * SEC);
        assert_int_equal(p.n_steps, 2);
        assert_int_equal(p.n_actions, 0);
        assert_int_equal(seen_set_since(&p.memory.moved, U1), NOW);
        reconcile_plan_done(&p);

        /* recorded shut off already: no refresh, the record's generation */
        r->power = INSTANCE_POWER_SHUTOFF;
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 2);
        a = action(&p, 1, RECONCILE_FIND_ELSEWHERE);
        assert_false(p.steps[1].generation_from_refresh);
        assert_int_equal(a->generation, 3);
        reconcile_plan_done(&p);

        assert_int_equal(strv_extend(&f->busy, U1), 0);
        plan(f, NULL, &p);
        assert_int_equal(p.n_actions, 0);
        assert_int_equal(p.memory.moved.n, 0);
        reconcile_plan_done(&p);
}

/* 5 */
static void test_own_ended_paused_resumed_once_settled(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d = add_domain(f, U1, "vm1", true);
        InstanceRecord *r = add_record(f, U1, "vm1", "node1", 3);
        ReconcilePlan p = {};
        const ReconcileAction *a;

        d->paused = d->migrating = d->ended_paused = true;
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 1); /* SAVE_DEFINITION; no refresh while it migrates */
        assert_int_equal(seen_set_since(&p.memory.paused, U1), NOW);

        plan_again(f, &p, SETTLE - 1);
        assert_int_equal(p.n_actions, 0);

        plan_again(f, &p, 1);
        assert_int_equal(p.n_steps, 2);
        a = action(&p, 1, RECONCILE_RESUME);
        assert_peers(&a->peers, "node2", "node3", "node4"); /* every one, the fenced too */
        assert_int_equal(a->power, INSTANCE_POWER_PAUSED);
        assert_int_equal(seen_set_since(&p.memory.paused, U1), NOW);
        reconcile_plan_done(&p);

        /* a guest the record saw paused stays so */
        r->power = INSTANCE_POWER_PAUSED;
        plan(f, NULL, &p);
        assert_int_equal(p.n_actions, 0);
        assert_int_equal(p.memory.paused.n, 0);
        reconcile_plan_done(&p);
}

/* 6 */
static void test_owned_elsewhere_inactive(void **state)
{
        Fixture *f = *state;
        InstanceRecord *r;
        ReconcilePlan p = {};
        const ReconcileAction *a;

        add_domain(f, U1, "vm1", false);
        r = add_record(f, U1, "vm1", "node2", 4);
        r->evacuated_from = "node1";
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 1);
        a = action(&p, 0, RECONCILE_UNDEFINE);
        assert_string_equal(a->owner, "node2");
        assert_false(a->deleted);
        reconcile_plan_done(&p);

        r->evacuated_from = NULL;
        plan(f, NULL, &p);
        a = action(&p, 0, RECONCILE_UNDEFINE_UNLESS_MOVED);
        assert_string_equal(a->owner_uri, "qemu+tls://node2/system");
        assert_int_equal(a->generation, 4);
        reconcile_plan_done(&p);

        /* an owner that cannot be asked: left alone */
        r->owner = "node4";
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        reconcile_plan_done(&p);
        r->owner = "node9";
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        reconcile_plan_done(&p);
}

/* 7 */
static void test_evacuated_copy_running_destroyed_once_settled(void **state)
{
        Fixture *f = *state;
        InstanceRecord *r;
        ReconcilePlan p = {};
        const ReconcileAction *a;

        add_domain(f, U1, "vm1", true);
        r = add_record(f, U1, "vm1", "node2", 4);
        r->evacuated_from = "node1";
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        assert_int_equal(seen_set_since(&p.memory.suspect, U1), NOW);

        plan_again(f, &p, SETTLE);
        assert_int_equal(p.n_steps, 1);
        a = action(&p, 0, RECONCILE_DESTROY_UNDEFINE);
        assert_string_equal(a->owner_uri, "qemu+tls://node2/system");
        assert_false(a->holds_state);
        assert_int_equal(a->power, INSTANCE_POWER_RUNNING);

        /* an owner not configured here: destroyed all the same (the record decides) */
        r->owner = "node9";
        plan_again(f, &p, 1);
        a = action(&p, 0, RECONCILE_DESTROY_UNDEFINE);
        assert_null(a->owner_uri);
        reconcile_plan_done(&p);
}

/* 8 */
static void test_evacuated_copy_that_arrived_since_asks_owner(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d = add_domain(f, U1, "vm1", true);
        InstanceRecord *r = add_record(f, U1, "vm1", "node2", 4);
        ReconcilePlan p = {};
        const ReconcileAction *a;

        r->evacuated_from = "node1";
        d->arrived = REC_TIME + 1;
        plan(f, NULL, &p);
        plan_again(f, &p, SETTLE);
        assert_int_equal(p.n_steps, 1);
        a = action(&p, 0, RECONCILE_ASK_OWNER);
        assert_true(a->holds_state);
        assert_string_equal(a->owner_uri, "qemu+tls://node2/system");

        /* not stale, and the owner cannot be asked: left alone */
        r->owner = "node4";
        plan_again(f, &p, 1);
        assert_int_equal(p.n_steps, 0);
        assert_int_equal(p.memory.suspect.n, 1);

        /* a marker older than the record's hand-over does not count */
        r->owner = "node2";
        d->arrived = REC_TIME;
        plan_again(f, &p, 1);
        a = action(&p, 0, RECONCILE_DESTROY_UNDEFINE);
        assert_false(a->holds_state);
        reconcile_plan_done(&p);
}

/* 9 */
static void test_running_elsewhere_asks_owner_once_settled(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d = add_domain(f, U1, "vm1", true);
        ReconcilePlan p = {};
        const ReconcileAction *a;

        add_record(f, U1, "vm1", "node2", 4);
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        plan_again(f, &p, SETTLE - 1);
        assert_int_equal(p.n_steps, 0);
        plan_again(f, &p, 1);
        a = action(&p, 0, RECONCILE_ASK_OWNER);
        assert_false(a->holds_state);
        assert_int_equal(a->generation, 4);

        d->running_migrated = true;
        plan_again(f, &p, 1);
        assert_true(action(&p, 0, RECONCILE_ASK_OWNER)->holds_state);

        /* while it migrates: nothing, and forgotten */
        d->migrating = true;
        plan_again(f, &p, 1);
        assert_int_equal(p.n_steps, 0);
        assert_int_equal(p.memory.suspect.n, 0);
        reconcile_plan_done(&p);

        d->migrating = false;
        assert_int_equal(strv_extend(&f->busy, U1), 0);
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        assert_int_equal(p.memory.suspect.n, 0);
        reconcile_plan_done(&p);
}

/* 10 */
static void test_own_record_without_domain_asks_peers_once_settled(void **state)
{
        Fixture *f = *state;
        InstanceRecord *r = add_record(f, U1, "vm1", "node1", 5);
        ReconcilePlan p = {};
        const ReconcileAction *a;

        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        assert_int_equal(seen_set_since(&p.memory.missing, U1), NOW);
        plan_again(f, &p, SETTLE);
        assert_int_equal(p.n_steps, 1);
        a = action(&p, 0, RECONCILE_FIND_ELSEWHERE);
        assert_true(a->gone);
        assert_false(p.steps[0].generation_from_refresh);
        assert_int_equal(a->generation, 5);
        assert_string_equal(a->name, "vm1");
        assert_string_equal(a->uuid, U1);
        assert_int_equal(a->power, INSTANCE_POWER_UNKNOWN);
        assert_peers(&a->peers, "node2", "node4", NULL);
        reconcile_plan_done(&p);

        r->deleted = true;
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0);
        assert_int_equal(p.memory.missing.n, 0);
        reconcile_plan_done(&p);

        r->deleted = false;
        assert_int_equal(strv_extend(&f->busy, U1), 0);
        plan(f, NULL, &p);
        assert_int_equal(p.memory.missing.n, 0);
        reconcile_plan_done(&p);
}

/* 11 */
static void test_deferred_starts(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d1;
        ReconcilePlan p = {};
        size_t starts = 0, drops = 0;

        d1 = add_domain(f, U1, "vm1", false); /* own, autostart */
        d1->autostart = true;
        add_record(f, U1, "vm1", "node1", 1)->power = INSTANCE_POWER_SHUTOFF;
        add_domain(f, U2, "vm2", false); /* no record: claimed by this pass */
        add_domain(f, U3, "vm3", false); /* owned elsewhere, owner without a URI */
        add_record(f, U3, "vm3", "node4", 1);
        assert_int_equal(strv_extend(&f->deferred, U1), 0);
        assert_int_equal(strv_extend(&f->deferred, U2), 0);
        assert_int_equal(strv_extend(&f->deferred, U3), 0);
        assert_int_equal(strv_extend(&f->deferred, U4), 0); /* no domain any more */

        /* nothing before the store was read */
        plan(f, NULL, &p);
        for (size_t i = 0; i < p.n_steps; i++)
                assert_int_not_equal(p.steps[i].kind, RECONCILE_STEP_DROP_DEFERRED);
        assert_int_equal(p.n_actions, 0);
        reconcile_plan_done(&p);

        f->synced = true;
        plan(f, NULL, &p);
        /* the domains' steps (U1 saved, U2 claimed), then the deferred ones in order */
        step(&p, 0, RECONCILE_STEP_SAVE_DEFINITION);
        step(&p, 1, RECONCILE_STEP_CLAIM);
        assert_string_equal(action(&p, 2, RECONCILE_START)->uuid, U1);
        assert_string_equal(step(&p, 3, RECONCILE_STEP_DROP_DEFERRED)->uuid, U3);
        assert_string_equal(step(&p, 4, RECONCILE_STEP_DROP_DEFERRED)->uuid, U4);
        assert_int_equal(p.n_steps, 5);
        reconcile_plan_done(&p);

        /* not set to autostart, or busy: forgotten */
        d1->autostart = false;
        plan(f, NULL, &p);
        for (size_t i = 0; i < p.n_steps; i++) {
                starts += p.steps[i].kind == RECONCILE_STEP_ACT;
                drops += p.steps[i].kind == RECONCILE_STEP_DROP_DEFERRED;
        }
        assert_int_equal(starts, 0);
        assert_int_equal(drops, 3);
        reconcile_plan_done(&p);

        d1->autostart = true;
        assert_int_equal(strv_extend(&f->busy, U1), 0);
        plan(f, NULL, &p);
        assert_int_equal(p.n_actions, 0);
        assert_string_equal(step(&p, 2, RECONCILE_STEP_DROP_DEFERRED)->uuid, U1);
        reconcile_plan_done(&p);
}

/* 12 */
static void test_stale_arrivals(void **state)
{
        Fixture *f = *state;
        ReconcilePlan p = {};

        add_domain(f, U2, "vm2", true);
        add_record(f, U2, "vm2", "node1", 1);
        f->arrivals[0] = (ReconcileArrival){ U1, NOW_RT - WINDOW - 1 }; /* old, no domain */
        f->arrivals[1] = (ReconcileArrival){ U2, NOW_RT - WINDOW - 1 }; /* old, runs here */
        f->arrivals[2] = (ReconcileArrival){ U3, NOW_RT - WINDOW };     /* just the window */
        f->arrivals[3] = (ReconcileArrival){ U4, NOW_RT + SEC };        /* in the future */
        f->n_arrivals = 4;
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 2);
        step(&p, 0, RECONCILE_STEP_SAVE_DEFINITION);
        assert_string_equal(step(&p, 1, RECONCILE_STEP_DROP_ARRIVAL)->uuid, U1);
        reconcile_plan_done(&p);
}

/* 13 */
static void test_memory_carried_and_pruned(void **state)
{
        Fixture *f = *state;
        ReconcileMemory last = {};
        ReconcilePlan p = {};
        SeenEntry missing[] = { { U1, NOW - SETTLE }, { U4, NOW - 5 * SEC } };
        SeenEntry paused[] = { { U2, NOW - SETTLE + 1 } };

        add_record(f, U1, "vm1", "node1", 1); /* still missing */
        add_domain(f, U2, "vm2", true)->ended_paused = true;
        f->domains[1].migrating = f->domains[1].paused = true;
        add_record(f, U2, "vm2", "node1", 1);
        add_domain(f, U3, "vm3", true); /* local, own */
        add_record(f, U3, "vm3", "node1", 1);
        last.missing = (SeenSet){ missing, 2 };
        last.paused = (SeenSet){ paused, 1 };
        assert_int_equal(strv_extend(&last.unknown, U1), 0); /* still missing: kept */
        assert_int_equal(strv_extend(&last.unknown, U3), 0); /* local: kept */
        assert_int_equal(strv_extend(&last.unknown, U4), 0); /* gone from both: dropped */
        assert_int_equal(strv_extend(&last.told, U2), 0);    /* still paused: kept */
        assert_int_equal(strv_extend(&last.told, U3), 0);    /* not paused: dropped */

        plan(f, &last, &p);
        /* since is carried over; U4 was not seen again and is dropped */
        assert_int_equal(p.memory.missing.n, 1);
        assert_int_equal(seen_set_since(&p.memory.missing, U1), NOW - SETTLE);
        assert_int_equal(seen_set_since(&p.memory.missing, U4), 0);
        assert_int_equal(seen_set_since(&p.memory.paused, U2), NOW - SETTLE + 1);
        /* now - since == settle counts as settled; one less does not */
        assert_true(seen_set_settled(&p.memory.missing, U1, NOW, SETTLE));
        assert_false(seen_set_settled(&p.memory.paused, U2, NOW, SETTLE));
        assert_int_equal(p.n_actions, 1);
        assert_int_equal(p.actions[0].kind, RECONCILE_FIND_ELSEWHERE);
        assert_string_equal(p.actions[0].uuid, U1);

        assert_int_equal(strv_length(p.memory.unknown), 2);
        assert_true(strv_contains(p.memory.unknown, U1));
        assert_true(strv_contains(p.memory.unknown, U3));
        assert_int_equal(strv_length(p.memory.told), 1);
        assert_true(strv_contains(p.memory.told, U2));
        reconcile_plan_done(&p);
        strv_free(last.unknown);
        strv_free(last.told);
}

/* 14 */
static void test_action_power(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d = add_domain(f, U1, "vm1", false);
        ReconcilePlan p = {};

        add_record(f, U1, "vm1", "node2", 1);
        plan(f, NULL, &p);
        assert_int_equal(action(&p, 0, RECONCILE_UNDEFINE_UNLESS_MOVED)->power,
                         INSTANCE_POWER_SHUTOFF);
        reconcile_plan_done(&p);

        /* inactive, and libvirt gave no state: not known */
        d->has_state = false;
        plan(f, NULL, &p);
        assert_int_equal(action(&p, 0, RECONCILE_UNDEFINE_UNLESS_MOVED)->power,
                         INSTANCE_POWER_UNKNOWN);
        reconcile_plan_done(&p);

        /* active: what it runs as, state or not */
        d->active = true;
        d->paused = true;
        plan(f, NULL, &p);
        plan_again(f, &p, SETTLE);
        assert_int_equal(action(&p, 0, RECONCILE_ASK_OWNER)->power, INSTANCE_POWER_PAUSED);
        reconcile_plan_done(&p);
        assert_int_equal(reconcile_power_of(d), INSTANCE_POWER_PAUSED);
        d->paused = false;
        assert_int_equal(reconcile_power_of(d), INSTANCE_POWER_RUNNING);
}

/* A cold migration between node1 and node2: neither copy goes, the record stays. */
static void test_cold_migration_keeps_both_copies(void **state)
{
        Fixture *f = *state;
        ReconcileDomain *d;
        InstanceRecord *r;
        ReconcilePlan p = {};

        /* node1 is the source: its shut-off copy, the record node2's */
        d = add_domain(f, U1, "vm1", false);
        r = add_record(f, U1, "vm1", "node2", 4);
        r->cold_source = "node1";
        r->cold_migration = "0123456789abcdef";
        r->cold_state = "verify";
        assert_true(reconcile_cold_keeps(r, "node1"));
        assert_true(reconcile_cold_keeps(r, "node2"));
        assert_false(reconcile_cold_keeps(r, "node3"));
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 0); /* not UNDEFINE_UNLESS_MOVED */
        reconcile_plan_done(&p);
        /* even running (an operator got past the deny list) or evacuated from here: asked
         * about by nobody, the migration's Confirm or Revert decides */
        d->active = true;
        r->evacuated_from = "node1";
        plan(f, NULL, &p);
        plan_again(f, &p, 10 * SETTLE);
        assert_int_equal(p.n_steps, 0);
        reconcile_plan_done(&p);
        d->active = false;
        r->evacuated_from = NULL;

        /* without the cold keys, the same facts undefine the copy here */
        r->cold_source = NULL;
        plan(f, NULL, &p);
        action(&p, 0, RECONCILE_UNDEFINE_UNLESS_MOVED);
        reconcile_plan_done(&p);
        /* a tombstone is no migration */
        r->cold_source = "node1";
        r->deleted = true;
        assert_false(reconcile_cold_keeps(r, "node1"));
        r->deleted = false;

        /* node1 is the destination (the owner) and has no copy yet (landing) or no more
         * (reverting): the record does not follow the source's copy */
        f->n_domains = 0;
        r->owner = "node1";
        r->cold_source = "node2";
        r->cold_state = "landing";
        plan(f, NULL, &p);
        plan_again(f, &p, 10 * SETTLE);
        assert_int_equal(p.n_steps, 0);
        assert_int_equal(p.memory.missing.n, 0);
        reconcile_plan_done(&p);

        /* the owner's copy keeps its record current as any own domain */
        d = add_domain(f, U1, "vm1", false);
        plan(f, NULL, &p);
        assert_int_equal(p.n_steps, 2);
        step(&p, 0, RECONCILE_STEP_SAVE_DEFINITION);
        assert_int_equal(step(&p, 1, RECONCILE_STEP_REFRESH)->power, INSTANCE_POWER_SHUTOFF);
        reconcile_plan_done(&p);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_no_record_claimed_unless_busy),
                T(test_tombstone),
                T(test_own_record_follows_name_and_power),
                T(test_own_stopped_by_migration_asks_peers_once),
                T(test_own_ended_paused_resumed_once_settled),
                T(test_owned_elsewhere_inactive),
                T(test_evacuated_copy_running_destroyed_once_settled),
                T(test_evacuated_copy_that_arrived_since_asks_owner),
                T(test_running_elsewhere_asks_owner_once_settled),
                T(test_own_record_without_domain_asks_peers_once_settled),
                T(test_deferred_starts),
                T(test_stale_arrivals),
                T(test_memory_carried_and_pruned),
                T(test_action_power),
                T(test_cold_migration_keeps_both_copies),
        };
#undef T

        return cmocka_run_group_tests(tests, NULL, NULL);
}
