/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <stdio.h>

/* What 'hostwardenctl status' says about this node's state, from its Node properties. */
typedef struct NodeStatus {
        const char *name;
        const char *state;           /* State: "enabled" | "disabled" */
        const char *disabled_reason; /* DisabledReason, "" or NULL: none */
        const char *forced_down_by;  /* ForcedDownBy, "" or NULL: not forced down */
        uint64_t forced_down_since;  /* ForcedDownSince, usec since the epoch */
        const char *fence_state;     /* FenceState: "unknown" | "on" | "off", NULL: unknown */
        uint64_t fence_time;         /* FenceTime */
} NodeStatus;

/*
 * The "State:" line and, when a peer forced this node down or fenced it, what that means
 * here (the hook refuses every start) and what clears it. Times in local time.
 */
void status_print_state(FILE *f, const NodeStatus *s);
