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
 * A handler reads and checks its arguments and the state, then calls polkit_verify():
 *
 *         r = polkit_verify(m, msg, error);
 *         if (r != 0)
 *                 return r;
 *         ... make the change, reply ...
 *
 * 0 means go on: the caller is uid 0, or polkit said yes to this very request. 1 means polkit
 * was asked and the handler returns 1 (handled, answered later): when polkit says yes, the
 * request is dispatched again through the vtable (systemd's bus-polkit.c does the same), so
 * the handler runs from the top, makes its checks again against the state of now, and this
 * time polkit_verify() says 0. So a check made before asking is never stale when the change
 * is made, however long the admin took to type a password. When polkit says no, the caller
 * gets the error reply from here; < 0 is a refusal now, with error set.
 */
int polkit_verify(Manager *m, sd_bus_message *msg, sd_bus_error *error);

typedef struct PolkitEntry {
        const char *interface;
        const char *member;
        const char *action; /* NULL in the read-only list */
} PolkitEntry;

/* The polkit table (method -> action), and the explicit list of read-only methods. */
const PolkitEntry *polkit_table(size_t *ret_n);
const PolkitEntry *polkit_read_only_methods(size_t *ret_n);

/* Every vtable the daemon registers, with its interface; ends with { NULL }. */
typedef struct BusVtable {
        const char *interface;
        const char *name; /* the array's name in dbus/ *.c */
        const sd_bus_vtable *vtable;
} BusVtable;
extern const BusVtable bus_vtables[];

/* The action of a method of interface.member, or NULL (denied). */
const char *polkit_action_for(const char *interface, const char *member);
void auth_queries_free(Manager *m);
