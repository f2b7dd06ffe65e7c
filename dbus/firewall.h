/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "manager.h"

struct FwSpec;

/* Applies [firewall] (table and the hook's window batches); removes the table when
 * [firewall] configures nothing. Nothing when enable = no. */
int firewall_apply(Manager *m, sd_bus_error *error);
/* "active", "absent", "stale" (differs from the configuration), "disabled", "unconfigured",
 * or "unknown" when netlink cannot be read. */
const char *firewall_state(Manager *m);
/* The same for a spec of one's own (any thread): one netlink dump of the table. */
const char *firewall_state_of(bool enable, const struct FwSpec *spec);
