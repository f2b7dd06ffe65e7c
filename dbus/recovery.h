/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Automatic recovery from a node failure (issue 22, docs/recovery.md), in dbus/recovery.c. */

#include "manager.h"

typedef struct Recovery Recovery;

/* Each heartbeat, with the node records just listed and their liveness looked at: takes the
 * rebuilds assigned to this node and, on the coordinator, fences and assigns. Nothing unless
 * [recovery] enable = yes. */
void recovery_tick(Manager *m, const NodeRecord *nodes, size_t n);
/* Before each heartbeat: the facts it writes (free memory, self-fencing declared). */
void recovery_heartbeat_facts(Manager *m);
/* One line for the Node's Recovery property: "off", "watching; coordinator: node1", ... */
const char *recovery_summary(Manager *m);
void recovery_free(Manager *m);
