/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every vtable the daemon registers, in one place, for tests/unit/test-polkit.c to hold
 * against the polkit table, the read-only list and the .policy file (that test also finds
 * any sd_bus_vtable array in dbus/ that is missing here). */
#include "errors.h"
#include "maintenance-dbus.h"
#include "manager.h"
#include "migration.h"
#include "polkit.h"

#define VTABLE(interface, v)     \
        {                        \
                interface, #v, v \
        }

const BusVtable bus_vtables[] = {
        VTABLE(HW_NODE_INTERFACE, node_vtable),
        VTABLE(HW_MIGRATION_INTERFACE, migration_vtable),
        VTABLE(HW_MAINTENANCE_INTERFACE, maintenance_vtable),
        { NULL, NULL, NULL },
};
