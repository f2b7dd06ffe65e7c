/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "store.h"
#include "util.h"

/*
 * ForceDown(s node, b down) and ForceDownWithOptions(s node, b down, a{sv} options) [fence]:
 * the options and the decision, apart from the bus and the store so that unit tests can ask
 * "given this node, its liveness and these options, what happens?".
 */

/* The a{sv} options of ForceDownWithOptions. */
typedef struct ForceDownOptions {
        bool insist; /* "insist" b: force a node down although its heartbeat is fresh, or take
                      * back this node's own forced-down state when no peer can */
} ForceDownOptions;

/* Reads an a{sv} from msg. Unknown keys and wrong types are InvalidArgs saying what was
 * expected (returns -EINVAL with error set). */
int force_down_options_read(sd_bus_message *msg, ForceDownOptions *ret, sd_bus_error *error);

/* What the daemon knows when it decides. */
typedef struct ForceDownRequest {
        const char *self; /* this node's name */
        const char *node; /* the node to force down (or up) */
        bool down;
        bool insist;
        NodeLiveness liveness; /* of node, judged by this node's clock */
        usec_t seen_ago;       /* since its heartbeat was last seen changing; UINT64_MAX: never */
        usec_t down_after;     /* [cluster] down_after */
} ForceDownRequest;

/*
 * 0 when the request may go ahead, *ret_overrode (may be NULL) telling whether insist
 * overrode a refusal (to be logged); otherwise an error with a message an operator can act
 * on: InvalidArgs for this node itself (as Fence refuses to fence itself), NodeUp for a node
 * whose heartbeat is fresh. Unforcing is never refused for freshness.
 */
int force_down_decide(const ForceDownRequest *req, bool *ret_overrode, sd_bus_error *error);
