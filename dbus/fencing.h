/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Fencing a peer (DESIGN.md §4): the job behind Node.Fence, in dbus/fence.c. */
#include <systemd/sd-bus.h>

#include "manager.h"

/*
 * After polkit: looks up node's fence agent again (a Reload may have removed it meanwhile:
 * NoSuchNode), runs it with action ("status", "off" or "on", checked by the handler) in a
 * worker, records the result in node's record and answers msg with the power state. 1 once
 * the job runs.
 */
int fence_start(Manager *m, sd_bus_message *msg, const char *node, const char *action,
                sd_bus_error *error);

/*
 * Automatic recovery's fencing (recovery.c): node's agent with action off, then status, which
 * must say off; the result is recorded as Fence's (node record, history, journal). Then, in
 * the event loop, cb(error < 0 with the agent's scrubbed last line in message, or state
 * FENCE_OFF). -ENOENT: no agent configured for node; other errors: nothing started.
 */
typedef void (*FenceCallback)(Manager *m, const char *node, int error, FenceState state,
                              const char *message, void *userdata);
int fence_power_off_confirmed(Manager *m, const char *node, FenceCallback cb, void *userdata);
