/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Automatic recovery's decisions (issue 22, docs/recovery.md), on data: what the
 * coordinator does about each node it watches, whether it may fence at all (the fence-storm
 * guard), and which survivor rebuilds which instance. dbus/recovery.c gathers the facts and
 * carries the decisions out.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

/* What the coordinator knows of one node. */
typedef struct RecoveryNode {
        const char *name;
        bool self;             /* the observer */
        NodeLiveness liveness; /* by the observer's clock */
        usec_t unseen;         /* its heartbeat counter stood still this long (observer) */
        bool fenced;           /* its record says off, or forced down */
        bool disabled;
        bool has_fence_agent; /* [peer NAME] fence_agent is set here */
        bool fence_failed;    /* the last run of its agent failed */
        /* powered on since its last fence (a fence result "on" recorded), and its heartbeat
         * not seen since: it boots, and is not fenced again for that */
        bool booting;
        uint64_t self_fence_after; /* declared in its record, 0: none */
        uint64_t mem_available;    /* bytes, 0: not known */
} RecoveryNode;

typedef enum RecoveryAction {
        RECOVERY_NOTHING,      /* up, or not watched long enough */
        RECOVERY_WAIT,         /* down, not for down_after + confirm_after yet */
        RECOVERY_FENCE,        /* run its fence agent: off, then status */
        RECOVERY_SELF_FENCED,  /* it declared self-fencing, and the margin has passed */
        RECOVERY_CANNOT_FENCE, /* no agent (or it fails) and no self-fencing: say so */
        RECOVERY_REBUILD,      /* fenced: its HA instances go to the survivors */
        _RECOVERY_ACTION_MAX,
} RecoveryAction;

const char *recovery_action_to_string(RecoveryAction a);

typedef struct RecoveryTimes {
        usec_t down_after, confirm_after;
        /* a node that declared self-fencing is taken as off after its self_fence_after plus
         * this, counted from its last heartbeat seen (recovery.md: why this margin) */
        usec_t self_fence_margin;
} RecoveryTimes;

RecoveryAction recovery_node_action(const RecoveryNode *n, const RecoveryTimes *t);

/*
 * The fence-storm guard: among the nodes not known to be off (fenced), the observer
 * included, how many look down; more than max_lost per mille of them, and the observer takes
 * itself for the one cut off: it fences nobody. *ret_lost and *ret_watched (may be NULL) get
 * the counts for the message.
 */
bool recovery_storm(const RecoveryNode *nodes, size_t n, unsigned max_lost, size_t *ret_lost,
                    size_t *ret_watched);

/* An instance of a fenced node that recovery may rebuild. */
typedef struct RecoveryGuest {
        const char *uuid;
        int priority;
        uint64_t memory;      /* bytes it needs */
        char *const *refused; /* nodes that refused it (strv, may be NULL) */
        const char *assigned; /* a live assignment already made (kept), NULL: none */
} RecoveryGuest;

/*
 * Which survivor rebuilds each guest: in order of priority (higher first, then uuid), each
 * on a node that is up, enabled, not fenced and did not refuse it, with the memory for it
 * after what this plan put there already: the reserved nodes first (reserved, strv), then
 * the one with the most memory left. A node whose memory is not known is taken last, as if
 * it had just enough. ret[i] gets the node for guests[i] (a name in nodes), or NULL when none
 * can take it (then why[i], if why is not NULL, says why, up to why_size bytes each). A guest
 * with a live assignment to a node that can still take it keeps it.
 */
void recovery_place(const RecoveryGuest *guests, size_t n_guests, const RecoveryNode *nodes,
                    size_t n_nodes, char *const *reserved, const char **ret, char (*why)[256]);
