/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The guest announced where it now runs (issue 21 item 4, docs/migration.md "The network
 * follows the guest"): after a live migration landed (over the connection to the
 * destination's libvirtd the migration already holds) and after a rebuild started a guest
 * here, QEMU's announce-self sends the guest's MACs out of its new node, so the switches
 * learn where it is now. A failed announcement is logged and fails nothing.
 */

#include <libvirt/libvirt.h>

#include "announce-cmd.h"
#include "config.h"

/* [migration] announce_rounds and announce_interval as QEMU's schedule (rounds 0: none). */
void announce_schedule_from_config(const Config *c, AnnounceSchedule *ret);

/*
 * QMP announce-self for dom, through libvirt (virDomainQemuMonitorCommand: dom may be a
 * peer's, over its qemu+tls connection). what and id ("Migration", its id; "Rebuild", the
 * instance's UUID) and node name the occasion in the log. Does nothing when s has no rounds or dom
 * is not running. 1 when QEMU took the command, 0 when nothing was sent, a negative errno on
 * failure (logged).
 */
int announce_guest(virDomainPtr dom, const AnnounceSchedule *s, const char *what, const char *id,
                   const char *node);
