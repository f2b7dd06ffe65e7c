/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "config.h"
#include "manager.h"

/*
 * SetHA and GetHA (DESIGN.md §11, docs/recovery-restart.md): a guest's HA setting, kept by
 * libvirt in the domain's metadata in hostwarden's namespace (lib/ha.h), so that it travels
 * with the definition: reconciliation saves the changed definition in the store, and a
 * rebuild on another node defines it with the setting.
 */

/* SetHA's and GetHA's dom and SetHA's mode and priority, checked: InvalidArgs saying what was
 * expected. ret_mode may be NULL (GetHA: mode NULL). */
int ha_check_args(const char *dom, const char *mode, int priority, HaMode *ret_mode,
                  sd_bus_error *error);

/* SetHA, its arguments checked and authorized: in a worker, the domain is looked up here
 * (NoSuchDomain), its element read and written back with mode and priority (the persistent
 * definition, and the running guest's too). msg is answered when it is done. 1 or < 0. */
int ha_set_start(Manager *m, sd_bus_message *msg, const char *dom, HaMode mode, int priority,
                 sd_bus_error *error);

/* GetHA(s dom) → (s mode, i priority, b own): read-only, a worker under the callers' caps. */
int ha_get_start(Manager *m, sd_bus_message *msg, const char *dom, sd_bus_error *error);
