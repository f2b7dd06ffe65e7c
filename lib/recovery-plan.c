/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Automatic recovery's decisions (recovery-plan.h). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recovery-plan.h"

static const char *const recovery_action_table[_RECOVERY_ACTION_MAX] = {
        [RECOVERY_NOTHING] = "nothing",
        [RECOVERY_WAIT] = "wait",
        [RECOVERY_FENCE] = "fence",
        [RECOVERY_SELF_FENCED] = "self-fenced",
        [RECOVERY_CANNOT_FENCE] = "cannot-fence",
        [RECOVERY_REBUILD] = "rebuild",
};

DEFINE_STRING_TABLE_TO_STRING(recovery_action, RecoveryAction);

RecoveryAction recovery_node_action(const RecoveryNode *n, const RecoveryTimes *t)
{
        bool self_fenced;

        if (n->self)
                return RECOVERY_NOTHING;
        /* a node whose heartbeat runs again is back, whatever its record says: nothing is
         * ever rebuilt from a node that is up */
        if (n->fenced)
                return n->liveness == NODE_UP ? RECOVERY_NOTHING : RECOVERY_REBUILD;
        if (n->liveness != NODE_DOWN)
                return RECOVERY_NOTHING;
        if (n->booting || n->unseen < t->down_after + t->confirm_after)
                return RECOVERY_WAIT;
        /* It said it powers itself off after self_fence_after without a heartbeat; the
         * margin covers our look coming late and its clock running slow. */
        self_fenced =
                n->self_fence_after > 0 && n->unseen >= n->self_fence_after + t->self_fence_margin;
        if (n->has_fence_agent && !n->fence_failed)
                return RECOVERY_FENCE;
        if (self_fenced)
                return RECOVERY_SELF_FENCED;
        if (n->has_fence_agent)
                return RECOVERY_FENCE; /* tried again: never assumed off */
        if (n->self_fence_after > 0)
                return RECOVERY_WAIT;
        return RECOVERY_CANNOT_FENCE;
}

bool recovery_storm(const RecoveryNode *nodes, size_t n, unsigned max_lost, size_t *ret_lost,
                    size_t *ret_watched)
{
        size_t lost = 0, watched = 0;

        for (size_t i = 0; i < n; i++) {
                if (nodes[i].fenced && nodes[i].liveness != NODE_UP)
                        continue; /* known to be off */
                watched++;
                if (!nodes[i].self && nodes[i].liveness == NODE_DOWN)
                        lost++;
        }
        if (ret_lost)
                *ret_lost = lost;
        if (ret_watched)
                *ret_watched = watched;
        return watched > 0 && (uint64_t)lost * 1000 > (uint64_t)max_lost * watched;
}

static bool node_may_host(const RecoveryNode *n)
{
        return !n->fenced && !n->disabled && (n->self || n->liveness == NODE_UP);
}

static int compare_guests(const void *a, const void *b, void *userdata)
{
        const RecoveryGuest *g = userdata;
        size_t i = *(const size_t *)a, j = *(const size_t *)b;

        if (g[i].priority != g[j].priority)
                return g[i].priority > g[j].priority ? -1 : 1;
        return strcmp(g[i].uuid, g[j].uuid);
}

/* Memory left on node k after what the plan put there; UINT64_MAX when not known. */
static uint64_t left_on(const RecoveryNode *n, uint64_t used)
{
        if (n->mem_available == 0)
                return UINT64_MAX;
        return n->mem_available > used ? n->mem_available - used : 0;
}

/* Can node k take g? Then 0, else why in buf. */
static int fits(const RecoveryGuest *g, const RecoveryNode *n, uint64_t used)
{
        if (!node_may_host(n))
                return -EHOSTDOWN;
        if (strv_contains(g->refused, n->name))
                return -EPERM;
        if (left_on(n, used) != UINT64_MAX && left_on(n, used) < g->memory)
                return -ENOSPC;
        return 0;
}

/* Better of a and b (indexes, a may be -1): known memory beats unknown, more beats less. */
static ssize_t better(const RecoveryNode *nodes, const uint64_t *used, ssize_t a, size_t b)
{
        uint64_t la, lb;

        if (a < 0)
                return (ssize_t)b;
        la = left_on(&nodes[a], used[a]);
        lb = left_on(&nodes[b], used[b]);
        if (la == UINT64_MAX && lb != UINT64_MAX)
                return (ssize_t)b;
        if (lb == UINT64_MAX)
                return a;
        return lb > la ? (ssize_t)b : a;
}

void recovery_place(const RecoveryGuest *guests, size_t n_guests, const RecoveryNode *nodes,
                    size_t n_nodes, char *const *reserved, const char **ret, char (*why)[256])
{
        _cleanup_free_ size_t *order = calloc(n_guests, sizeof(size_t));
        _cleanup_free_ uint64_t *used = calloc(n_nodes ?: 1, sizeof(uint64_t));

        for (size_t i = 0; i < n_guests; i++) {
                ret[i] = NULL;
                if (why)
                        snprintf(why[i], sizeof(why[i]), "no node is up, enabled and unfenced");
        }
        if (!order || !used)
                return;
        for (size_t i = 0; i < n_guests; i++)
                order[i] = i;
        qsort_r(order, n_guests, sizeof(size_t), compare_guests, (void *)guests);

        for (size_t o = 0; o < n_guests; o++) {
                const RecoveryGuest *g = &guests[order[o]];
                ssize_t best = -1;
                size_t refused = 0, full = 0;

                /* a live assignment stays where the node can still take it */
                for (size_t k = 0; g->assigned && k < n_nodes; k++)
                        if (streq(nodes[k].name, g->assigned) && fits(g, &nodes[k], used[k]) == 0)
                                best = (ssize_t)k;
                for (int pass = 0; best < 0 && pass < 2; pass++)
                        for (size_t k = 0; k < n_nodes; k++) {
                                int r;

                                if ((pass == 0) != strv_contains(reserved, nodes[k].name))
                                        continue;
                                r = fits(g, &nodes[k], used[k]);
                                if (r == -EPERM)
                                        refused++;
                                else if (r == -ENOSPC)
                                        full++;
                                if (r == 0)
                                        best = better(nodes, used, best, k);
                        }
                if (best < 0) {
                        if (why)
                                snprintf(why[order[o]], sizeof(why[order[o]]),
                                         "no node can take it: %zu refused it, %zu lack the "
                                         "memory (%llu MiB), the others are down, disabled or "
                                         "fenced",
                                         refused, full, (unsigned long long)(g->memory >> 20));
                        continue;
                }
                used[best] += g->memory;
                ret[order[o]] = nodes[best].name;
                if (why)
                        why[order[o]][0] = '\0';
        }
}
