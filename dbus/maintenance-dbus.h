/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

/*
 * org.hostwarden.Warden1.Maintenance on /org/hostwarden/Warden1/maintenance (DESIGN.md §11,
 * docs/maintenance.md): Plan() so far; Enter, Cancel and Exit come with the drain itself.
 */
#define HW_MAINTENANCE_PATH      "/org/hostwarden/Warden1/maintenance"
#define HW_MAINTENANCE_INTERFACE "org.hostwarden.Warden1.Maintenance"

extern const sd_bus_vtable maintenance_vtable[];

/* Exports the object; called by manager_startup(). */
int maintenance_setup(Manager *m);
