/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The state of this node's maintenance (Maintenance.State, issue 23, docs/maintenance.md
 * "Maintenance: the states"), kept in this node's record in the store, and the decision of
 * the next one from the facts of one look at the node: what still runs here, what is on its
 * way out, what cannot leave, and whether the deadline passed.
 */

#include <stdbool.h>
#include <stddef.h>

typedef enum MaintenanceState {
        MAINTENANCE_OFF,      /* not in maintenance (the record has no key: off) */
        MAINTENANCE_DRAINING, /* migrations or shutdowns of the drain are under way */
        MAINTENANCE_READY,    /* no guest left running here: safe to reboot */
        MAINTENANCE_BLOCKED,  /* guests still run here and none of them is leaving */
        _MAINTENANCE_STATE_MAX,
        _MAINTENANCE_STATE_INVALID = -1,
} MaintenanceState;

const char *maintenance_state_to_string(MaintenanceState s);
MaintenanceState maintenance_state_from_string(const char *s);

typedef struct MaintenanceStateFacts {
        MaintenanceState current;
        size_t n_running; /* guests active here (running, paused, being shut down, migrating) */
        size_t n_moving;  /* of those, being migrated away or shut down now, or queued to */
        bool deadline_passed;
} MaintenanceStateFacts;

/*
 * The next state: off stays off (only Enter leaves it); nothing running is ready, whatever
 * else; a passed deadline with guests still here is blocked (nothing is destroyed for it:
 * what runs may still finish, and then it is ready); something moving is draining; guests
 * that run and none moving is blocked.
 */
MaintenanceState maintenance_state_next(const MaintenanceStateFacts *f);
