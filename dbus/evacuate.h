/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* Node methods of fencing and evacuation (DESIGN.md §7), registered in node-dbus.c. */

/* Fence(s node, s action) → s [fence]: runs the peer's fence agent (dbus/fence.c). */
int method_fence(sd_bus_message *msg, void *userdata, sd_bus_error *error);
/* Rebuild(s uuid, s source, a{sv} opts) [evacuate] (dbus/evacuate.c) */
int method_rebuild(sd_bus_message *msg, void *userdata, sd_bus_error *error);
/* EvacuateFrom(s source, a{sv} opts) → a(sss) [evacuate]: uuid, result, name or message */
int method_evacuate_from(sd_bus_message *msg, void *userdata, sd_bus_error *error);
