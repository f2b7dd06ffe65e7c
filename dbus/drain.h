/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/* EvacuateLive's work (drain.c), started by its handler in node-dbus.c. */

#include <systemd/sd-bus.h>

#include "manager.h"
#include "migrate-opts.h"

/* EvacuateLive, authorized: disables this node (reason "evacuating live"), then lists its
 * running domains in a worker and queues a migration of each to dest ("" = hostwarden chooses)
 * with opts; answers msg with their objects. 1, or a negative errno / error. */
int drain_start(Manager *m, sd_bus_message *msg, const char *dest, const MigrateOptions *opts,
                sd_bus_error *error);
