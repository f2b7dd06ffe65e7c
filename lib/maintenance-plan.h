/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What maintenance would do to each domain of this node (Maintenance.Plan(), issue 23,
 * docs/maintenance.md "Maintenance: plan"), as a decision on data: the domain's state, its
 * strategy (its metadata's maintenance="...", else [maintenance] strategy), a migration of it
 * already under way, and the choice of destination lib/placement.c made from CheckMigration's
 * findings on every peer, the same choice a Migrate or EvacuateLive to "" makes.
 */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "domxml.h"
#include "placement.h"

typedef enum MaintenanceAction {
        MAINTENANCE_ACTION_NONE,     /* not running: nothing to do, it stays defined here */
        MAINTENANCE_ACTION_MIGRATE,  /* live-migrated to the node the reason names */
        MAINTENANCE_ACTION_SHUTDOWN, /* shut down here (its strategy, or no node can take it) */
        MAINTENANCE_ACTION_BLOCKED,  /* stays running here: the drain cannot end */
        _MAINTENANCE_ACTION_MAX,
} MaintenanceAction;

const char *maintenance_action_to_string(MaintenanceAction a); /* "none", "migrate", ... */

/*
 * The strategy of domain d: its <hostwarden:guest maintenance="..."/> (*ret_own true), else
 * default_strategy. A value that is not a strategy counts as not set, and *ret_bad (may be
 * NULL) says so: the default applies, never a guess.
 */
MaintenanceStrategy maintenance_strategy_of(const DomXml *d, MaintenanceStrategy default_strategy,
                                            bool *ret_own, bool *ret_bad);

typedef struct MaintenanceFacts {
        const char *name;
        bool active;            /* libvirt's active: running, paused ... (a live migration's) */
        const char *state_word; /* libvirt's state as a word (virt_state_to_string()) */
        MaintenanceStrategy strategy;
        bool strategy_own;          /* from its metadata, not [maintenance] strategy */
        const char *bad_strategy;   /* its metadata's value when that is no strategy, or NULL */
        const char *migrating_id;   /* a migration of it under way already: its id, or NULL */
        const char *migrating_dest; /* ... and its destination ("" or NULL: being chosen) */
        /* the choice of destination, for an active domain whose strategy may migrate it: each
         * peer's CheckMigration and the choice among them; placement NULL: not made */
        const PlacementCandidate *candidates;
        size_t n_candidates;
        const Placement *placement;
} MaintenanceFacts;

/*
 * The action for f and why, in one line for an operator (reason, at most size bytes): the
 * destination and why it was chosen, what blocks it and what would unblock it, or why it
 * is shut down or left alone.
 */
MaintenanceAction maintenance_decide(const MaintenanceFacts *f, char *reason, size_t size);

/* Whether the strategy asks for a destination: an active guest whose strategy is not
 * shutdown, not being migrated already (the daemon runs CheckMigration for these only). */
bool maintenance_needs_destination(bool active, MaintenanceStrategy s, bool migrating);
