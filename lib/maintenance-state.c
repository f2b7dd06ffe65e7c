/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The maintenance states and the next one (maintenance-state.h). */
#include "maintenance-state.h"
#include "util.h"

static const char *const maintenance_state_table[_MAINTENANCE_STATE_MAX] = {
        [MAINTENANCE_OFF] = "off",
        [MAINTENANCE_DRAINING] = "draining",
        [MAINTENANCE_READY] = "ready",
        [MAINTENANCE_BLOCKED] = "blocked",
};

DEFINE_STRING_TABLE_LOOKUP(maintenance_state, MaintenanceState, _MAINTENANCE_STATE_INVALID);

MaintenanceState maintenance_state_next(const MaintenanceStateFacts *f)
{
        if (f->current == MAINTENANCE_OFF)
                return MAINTENANCE_OFF;
        if (f->n_running == 0)
                return MAINTENANCE_READY;
        if (f->deadline_passed)
                return MAINTENANCE_BLOCKED;
        if (f->n_moving > 0)
                return MAINTENANCE_DRAINING;
        return MAINTENANCE_BLOCKED;
}
