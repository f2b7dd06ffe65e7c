/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "maintenance-plan.h"
#include "manager.h"

/*
 * org.hostwarden.Warden1.Maintenance on /org/hostwarden/Warden1/maintenance (DESIGN.md §11,
 * docs/maintenance.md): Plan() here; Enter, Cancel and Exit in maintenance-drain.c.
 */
#define HW_MAINTENANCE_PATH      "/org/hostwarden/Warden1/maintenance"
#define HW_MAINTENANCE_INTERFACE "org.hostwarden.Warden1.Maintenance"

extern const sd_bus_vtable maintenance_vtable[];

/* Exports the object; called by manager_startup(). */
int maintenance_setup(Manager *m);

/* One domain's decision, as Plan() answers it, for the drain (maintenance-drain.c). */
typedef struct MaintenanceDecision {
        char uuid[37];
        const char *name;
        bool active;
        const char *migrating_id; /* a migration of it under way, or NULL */
        MaintenanceAction action;
        const char *dest; /* MAINTENANCE_ACTION_MIGRATE: the peer chosen */
        char reason[4096];
} MaintenanceDecision;

/* The decisions (valid during the call only), or error (NULL: none). */
typedef void (*MaintenancePlanDone)(Manager *m, const MaintenanceDecision *d, size_t n,
                                    const char *error, void *userdata);

/* Plans as Plan() does, without a caller; done() gets the decisions, in the event loop. */
int maintenance_plan_start(Manager *m, MaintenancePlanDone done, void *userdata);
