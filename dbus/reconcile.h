/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * Reconciliation of the instance records with the local libvirt (DESIGN.md §4, §7 Recovery),
 * at start, on every libvirt lifecycle event and every heartbeat. One pass at a time: a worker
 * lists the local domains, the event loop decides against the store, a second worker does
 * what libvirt has to do:
 *
 *  - a local domain without a record: claimed for this node (compare-and-swap, generation 0),
 *    its inactive definition saved;
 *  - a record of this node's: its definition kept current;
 *  - a domain whose record names another node:
 *      inactive: undefined here (never a file deleted: libvirt's undefine keeps disks);
 *      running, and the record says it was evacuated from this node (and it did not arrive
 *      by a migration since the record changed hands), still so after the settle time: the
 *      owner's libvirt is asked first; when the owner runs it, this copy is destroyed and undefined
 * (the evacuated copy is the instance now); when it does not, this node claims it (it migrated back
 * here and its source died before the record followed); when the owner cannot be asked, it is
 * logged and left alone; running otherwise, no migration job, and still so after the settle time
 * (two heartbeat intervals, at least 2 s; passes come in bursts on lifecycle events): the owner's
 * libvirt is asked; when the guest does not run there (a migration completed while the source's
 * daemon was down) this node claims it, when it does both are logged and left alone (split brain:
 * an operator decides);
 *  - a record of this node's whose domain is gone for the settle time, with no migration or
 *    rebuild of it under way here: removed with its definition (the instance was deleted).
 *
 * Nothing is decided while libvirt cannot be listed.
 */

int reconcile_setup(Manager *m);
void reconcile_free(Manager *m);
/* Asks for a pass (coalesced with one running or asked for). */
void reconcile_schedule(Manager *m);
/* True while a pass is destroying, undefining or claiming instance uuid. */
bool reconcile_acting_on(Manager *m, const char *uuid);
