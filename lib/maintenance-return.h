/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Exit's return of the guests that left a node during its maintenance (docs/maintenance.md
 * "Maintenance: exit"): the node's record lists them ("UUID@NODE", comma-separated: the
 * guest and where it went) and asks for their return; the node that runs each one now, by
 * its instance record, migrates it back on its heartbeat and takes its entry out. Here: the
 * decision on one entry, and the list without it.
 */

#include <stdbool.h>

typedef enum ReturnAction {
        RETURN_SEND_BACK, /* ours: queue a migration of it to the returning node, drop it */
        RETURN_WAIT,      /* ours, but a migration of it is under way: next heartbeat */
        RETURN_DROP,      /* nobody's any more (no record, deleted): drop it */
        RETURN_LEAVE,     /* another node's (or the returning node's own again): not ours */
} ReturnAction;

typedef struct ReturnFacts {
        const char *self;      /* this node */
        const char *returning; /* the node whose record asks for the return */
        bool has_record;       /* the guest's instance record exists ... */
        bool deleted;          /* ... and is a tombstone */
        const char *owner;     /* ... its owner */
        bool busy;             /* a migration of it is queued or running here */
} ReturnFacts;

ReturnAction maintenance_return_decide(const ReturnFacts *f);

/* The UUID of an entry "UUID@NODE" (at most size - 1 characters), or false when it is not
 * one. */
bool maintenance_left_entry_uuid(const char *entry, char *ret, size_t size);

/* left without the entries of uuid: a new string, NULL for an empty list (*ret), or -ENOMEM. */
int maintenance_left_without(const char *left, const char *uuid, char **ret);
