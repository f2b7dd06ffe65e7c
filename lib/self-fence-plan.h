/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Fencing without a BMC, the node's own side (issue 22, docs/recovery-self-fence.md): when
 * a node that declared self-fencing in the store has not written a heartbeat for the
 * self_fence_after it declared, it stops its guests and powers itself off. Its peers take
 * it as off only after that time plus a margin, on their own clocks (lib/recovery-plan.h).
 * dbus/self-fence.c keeps the facts and carries the decision out; the decision is here.
 */

#include <stdbool.h>

#include "config.h"
#include "util.h"

/* What this node writes as self_fence_after in its record with each heartbeat (usec;
 * lib/store.h NodeRecord): [recovery] self_fence_after when enable = yes and self_fence =
 * yes, else 0 (it declares nothing, and never self-fences). */
usec_t self_fence_declared(const Config *c);

/* The watchdog device's timeout while self-fencing is armed (petted every second): a node
 * that hangs, or fails to power itself off, is reset this long after its deadline at most.
 * The margin its peers add to self_fence_after (recovery-plan.h) must be longer. */
#define SELF_FENCE_WATCHDOG_USEC (10 * USEC_PER_SEC)
/* How long a node's sync() before its power-off may take (dbus/self-fence.c). */
#define SELF_FENCE_SYNC_USEC (5 * USEC_PER_SEC)

/*
 * The margin a peer adds to a node's declared self_fence_after before it takes that node as
 * off (docs/recovery-self-fence.md): at least down_after, and never less than what the node
 * may take past its deadline when its own power-off does not end (the watchdog's timeout),
 * plus the sync and 5 s for a loaded node's late wake-up or a restarted hostwardend.
 */
usec_t self_fence_peer_margin(usec_t down_after);

typedef enum SelfFenceAction {
        SELF_FENCE_NOTHING, /* nothing declared by a heartbeat that got through: no promise */
        SELF_FENCE_ARM,     /* declared: fence at *ret_deadline unless a heartbeat gets through */
        SELF_FENCE_NOW,     /* no heartbeat got through for the time declared: fence */
        _SELF_FENCE_ACTION_MAX,
} SelfFenceAction;

const char *self_fence_action_to_string(SelfFenceAction a);

typedef struct SelfFenceFacts {
        bool ever;           /* a heartbeat write ever succeeded (this process) */
        usec_t declared;     /* self_fence_after that the last successful one wrote, 0: none */
        usec_t last_success; /* CLOCK_MONOTONIC: when that write started */
} SelfFenceFacts;

/*
 * What to do at now (CLOCK_MONOTONIC). A node that never wrote a heartbeat declared nothing:
 * NOTHING. The time counts from the start of the last write that got through (the peers may
 * have seen it as early as that), never from a later one that failed. *ret_deadline (may be
 * NULL) gets when ARM turns into NOW (0 otherwise).
 */
SelfFenceAction self_fence_plan(const SelfFenceFacts *f, usec_t now, usec_t *ret_deadline);

/*
 * The facts as hostwardend keeps them in its runtime directory while armed (self-fence in
 * docs/runtime-dir.md's list): "declared=USEC" and "last_success=USEC" lines, so that a
 * hostwardend restarted after a crash keeps the promise the previous one made (CLOCK_MONOTONIC
 * is the machine's, the same in every process of this boot). Parse: -EBADMSG when a field is
 * missing or is not a number.
 */
int self_fence_facts_format(const SelfFenceFacts *f, char **ret);
int self_fence_facts_parse(const char *text, SelfFenceFacts *ret);
