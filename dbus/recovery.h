/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Automatic recovery from a node failure (issue 22, docs/recovery.md), in dbus/recovery.c. */

#include "manager.h"

typedef struct Recovery Recovery;

/* Each heartbeat, after the peers' liveness was looked at: takes the rebuilds assigned to this
 * node and, on the coordinator, fences and assigns. Nothing unless [recovery] enable = yes. */
void recovery_tick(Manager *m);
/* Before each heartbeat: the facts it writes (free memory, self-fencing declared). */
void recovery_heartbeat_facts(Manager *m);
/* One line for the Node's Recovery property: "off", "watching; coordinator: node1", ... */
const char *recovery_summary(Manager *m);
void recovery_free(Manager *m);
