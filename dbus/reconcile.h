/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * Reconciliation of the instance records with the local libvirt (DESIGN.md §4, §7 Recovery),
 * at start, on every libvirt lifecycle event and every heartbeat. One pass at a time: a worker
 * lists the local domains, the event loop decides against the store, a second worker asks the
 * peers' libvirt what it must and does what libvirt has to do. It follows what libvirt and
 * the operators did, whoever did it, and never removes the last definition of an instance:
 *
 *  - a local domain without a record: claimed for this node (compare-and-swap, generation 0),
 *    its inactive definition saved;
 *  - a record of this node's: its definition, name (domrename) and power state kept current;
 *    stopped here by a migration (shut-off reason "migrated"), the peer that runs it takes
 *    the record at once, so the definition left here is denied before anyone starts it;
 *  - a tombstone (the instance was deleted): a copy on the node it was evacuated from is
 *    stale and undefined; any other definition (a restore, a new guest with its UUID) claims
 *    the instance back;
 *  - a domain whose record names another node:
 *      inactive, evacuated from here: undefined (never a file deleted);
 *      inactive otherwise: the owner's libvirt is asked; if it has the domain, this second
 *      definition is undefined; if not, the instance moved here (an offline migration, or a
 *      live one and a stop) and this node claims it; if it cannot be asked, left alone;
 *      running, and the record says it was evacuated from here (and it did not arrive by a
 *      migration since the record changed hands), still so after the settle time: the
 *      owner's libvirt is asked first; when the owner runs it, this copy is destroyed and
 *      undefined; when it does not, this node claims it; when it cannot be asked, left alone;
 *      running otherwise, no migration job, still so after the settle time (two heartbeat
 *      intervals, at least 2 s; passes come in bursts): the owner's libvirt is asked; when it
 *      does not run there this node claims it; when it runs on both, the copy that arrived by
 *      migration is kept if the owner's was booted afresh (the record comes here), else the
 *      one here goes; while the owner's copy is still starting, nothing is decided;
 *  - a record of this node's whose domain is gone for the settle time, with no migration or
 *    rebuild of it under way here: every peer is asked; the record follows the one that runs
 *    it or has it defined (a copy on the node it was evacuated from does not count unless it
 *    runs); when none has it and every peer answered, the record becomes a tombstone (the
 *    saved definition is kept); fenced and forced-down peers (powered off) are not asked;
 *    when another peer cannot be asked, nothing changes.
 *
 * Nothing is decided while libvirt cannot be listed.
 */

int reconcile_setup(Manager *m);
void reconcile_free(Manager *m);
/* Asks for a pass (coalesced with one running or asked for). */
void reconcile_schedule(Manager *m);
