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
 * A handler validates its input and checks the state, then returns
 * polkit_authorize(m, msg, then, error); then(m, msg, error) makes the change and sends the
 * reply. For uid 0 it runs at once. Otherwise, when polkit says yes, the request is
 * dispatched again through the vtable (systemd's bus-polkit.c does the same): the handler
 * runs from the top and makes its checks again against the state of now, and this time
 * polkit_authorize() runs then() at once. So a check made before asking is never stale
 * when the change is made, however long the admin took to type a password.
 */
typedef int (*AuthContinuation)(Manager *m, sd_bus_message *msg, sd_bus_error *error);

int polkit_authorize(Manager *m, sd_bus_message *msg, AuthContinuation then, sd_bus_error *error);
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
