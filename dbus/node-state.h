/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "manager.h"

/* This node's own record from a listing at most a second old (an absent one is an enabled
 * node; *ret is zeroed). */
int node_own_record(Manager *m, NodeRecord *ret);
/* Disable (with reason) or enable this node: the store, the hook's marker, disable_action,
 * notify.d, NodeChanged. */
int node_set_disabled(Manager *m, bool disable, const char *reason, sd_bus_error *error);
/* Brings the runtime dir's node markers in line with this node's record (docs/runtime-dir.md). */
int node_sync_runtime(Manager *m);
/* A node's state as ListNodes shows it (up, disabled, down, forced-down, unknown), liveness
 * judged by this daemon at now (CLOCK_MONOTONIC). */
const char *node_state_of(Manager *m, const NodeRecord *rec, uint64_t now);
/* The instance records from a listing at most a second old, sorted by UUID; they belong to
 * the Manager. */
int node_instances_cached(Manager *m, const InstanceRecord **ret, size_t *ret_n);
/* Records node as forced down (or no longer) by whom, and says so: a warning in the log (the
 * louder one when the caller insisted over a heartbeat seen seen_ago µs ago) and NodeChanged.
 * NoSuchNode when the store has no such node. */
int node_set_forced_down(Manager *m, const char *node, bool down, const char *by, bool overrode,
                         uint64_t seen_ago, sd_bus_error *error);
