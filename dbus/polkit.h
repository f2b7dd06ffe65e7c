/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

/*
 * Authorization (DESIGN.md §7): uid 0 is allowed; anyone else is asked about through
 * polkit's CheckAuthorization, asynchronously: the daemon keeps serving while polkit
 * decides (which may take a password prompt). One table maps each mutating method to its
 * action; a method not in it is denied. No polkit means deny.
 *
 * A handler validates its input, then returns polkit_authorize(m, msg, then, error);
 * then(m, msg, error) makes the change and sends the reply, now or when polkit answers.
 */
typedef int (*AuthContinuation)(Manager *m, sd_bus_message *msg, sd_bus_error *error);

int polkit_authorize(Manager *m, sd_bus_message *msg, AuthContinuation then, sd_bus_error *error);
/* The action of a method of interface.member, or NULL (denied). */
const char *polkit_action_for(const char *interface, const char *member);
void auth_queries_free(Manager *m);
