/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * One archive pass over the store (archive.h): under the cluster's lease, first finish the
 * moves a killed pass left halfway, then move what is old enough, then purge. Every move is
 * store-history.c's copy-then-remove, so a pass killed anywhere leaves each entry live, or
 * archived, or (cut between the two steps) both, which the next pass finishes.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "store-internal.h"
#include "util.h"

static const char *const archive_step_table[_ARCHIVE_STEP_MAX] = {
        [ARCHIVE_STEP_ARCHIVE] = "archive",
        [ARCHIVE_STEP_PURGE] = "purge",
};

DEFINE_STRING_TABLE_TO_STRING(archive_step, ArchiveStep);

ArchiveAction *archive_action_array_free(ArchiveAction *a, size_t n)
{
        for (size_t i = 0; a && i < n; i++) {
                free(a[i].key);
                free(a[i].name);
        }
        free(a);
        return NULL;
}

typedef struct Pass {
        Store *store;
        const ArchiveOptions *o;
        StoreLease lease;
        ArchiveAction *actions;
        size_t n_actions;
        unsigned since_renewal;
} Pass;

static bool is_old(uint64_t t, uint64_t age, uint64_t now)
{
        return t <= now && now - t >= age;
}

static int add_action(Pass *p, ArchiveStep step, ArchiveKind kind, const char *key,
                      const char *name, uint64_t time, ArchiveAction **ret)
{
        ArchiveAction *a = reallocarray(p->actions, p->n_actions + 1, sizeof(ArchiveAction));

        if (!a)
                return -ENOMEM;
        p->actions = a;
        a = &p->actions[p->n_actions];
        *a = (ArchiveAction){ .step = step, .kind = kind, .time = time };
        a->key = strdup(key);
        a->name = name ? strdup(name) : NULL;
        if (!a->key || (name && !a->name)) {
                free(a->key);
                free(a->name);
                return -ENOMEM;
        }
        p->n_actions++;
        *ret = a;
        return 0;
}

/* Keeps the lease while the pass goes on: -EBUSY when it was lost (expired and taken). */
static int keep_lease(Pass *p)
{
        int r;

        if (p->o->dry_run || ++p->since_renewal < ARCHIVE_RENEW_EVERY)
                return 0;
        p->since_renewal = 0;
        r = store_lease_acquire(p->store, ARCHIVE_LEASE, p->o->now,
                                p->o->lease_ttl ?: ARCHIVE_LEASE_TTL, &p->lease, NULL);
        return r;
}

/* One entry to move: noted, and (not a dry run) moved, the lease kept. */
static int move_one(Pass *p, ArchiveKind kind, const char *key, const char *name, uint64_t time,
                    uint64_t generation)
{
        ArchiveAction *a;
        int r;

        if (!is_old(time, p->o->archive_after, p->o->now) || p->n_actions >= ARCHIVE_MAX_PER_RUN)
                return 0;
        r = add_action(p, ARCHIVE_STEP_ARCHIVE, kind, key, name, time, &a);
        if (r < 0 || p->o->dry_run)
                return r;
        a->error = kind == ARCHIVE_HISTORY
                           ? store_history_archive(p->store, key, p->o->now)
                           : store_instance_archive(p->store, key, generation, p->o->now);
        store_test_step(p->store, "entry-done");
        return keep_lease(p);
}

/* Moves to the archive what is archive_after old: history records, then deleted instances. */
static int pass_live(Pass *p)
{
        HistoryRecord *h = NULL;
        InstanceRecord *inst = NULL;
        size_t n_h = 0, n_inst = 0;
        int r;

        r = store_history_list(p->store, &h, &n_h);
        for (size_t i = 0; i < n_h && r >= 0; i++)
                r = move_one(p, ARCHIVE_HISTORY, h[i].id, h[i].domain_name, h[i].finished, 0);
        if (r >= 0)
                r = store_instance_list(p->store, &inst, &n_inst);
        for (size_t i = 0; i < n_inst && r >= 0; i++)
                if (inst[i].deleted)
                        r = move_one(p, ARCHIVE_INSTANCE, inst[i].uuid, inst[i].name, inst[i].time,
                                     inst[i].generation);
        history_record_array_free(h, n_h);
        instance_record_array_free(inst, n_inst);
        return r;
}

/* Finishes the moves a killed pass left halfway (an archived instance whose definition is
 * still live), then purges what was archived purge_after ago. */
static int pass_archive(Pass *p)
{
        ArchivedEntry *e = NULL;
        size_t n = 0;
        int r;

        r = store_archive_list(p->store, &e, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0 && !p->o->dry_run; i++)
                if (e[i].kind == ARCHIVE_INSTANCE)
                        r = store_instance_archive_finish(p->store, e[i].key);
        for (size_t i = 0; i < n && r >= 0 && p->n_actions < ARCHIVE_MAX_PER_RUN; i++) {
                ArchiveAction *a;

                if (!is_old(e[i].archived, p->o->purge_after, p->o->now))
                        continue;
                r = add_action(p, ARCHIVE_STEP_PURGE, e[i].kind, e[i].key, e[i].name, e[i].archived,
                               &a);
                if (r < 0 || p->o->dry_run)
                        continue;
                a->error = store_archive_remove(p->store, e[i].kind, e[i].key);
                if (a->error == -ENOENT)
                        a->error = 0; /* purged meanwhile by the pass before */
                store_test_step(p->store, "entry-done");
                r = keep_lease(p);
        }
        archived_entry_array_free(e, n);
        return r;
}

int archive_run(Store *s, const ArchiveOptions *o, ArchiveAction **ret, size_t *ret_n,
                char **ret_holder)
{
        Pass p = { .store = s, .o = o };
        int r;

        if (!o->dry_run) {
                r = store_lease_acquire(s, ARCHIVE_LEASE, o->now, o->lease_ttl ?: ARCHIVE_LEASE_TTL,
                                        &p.lease, ret_holder);
                if (r < 0)
                        return r;
                store_test_step(s, "lease-taken");
        }
        /* the purge looks at the archive as it was before this pass moved anything: what
         * this pass archives is purged purge_after from now, by a later pass */
        r = pass_archive(&p);
        if (r >= 0)
                r = pass_live(&p);
        if (!o->dry_run) {
                int k = store_lease_release(s, ARCHIVE_LEASE, &p.lease);

                if (r >= 0 && k == -ESTALE)
                        r = -EBUSY; /* it expired during the pass and another took it */
                store_lease_done(&p.lease);
        }
        if (r < 0) {
                archive_action_array_free(p.actions, p.n_actions);
                return r;
        }
        *ret = p.actions;
        *ret_n = p.n_actions;
        return 0;
}
