/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * NetworkDowntime of a migration from here (lib/netdowntime.h, docs/migration.md "What
 * NetworkDowntime measures"): from before the migration until some time after it landed,
 * this node's Linux bridges of the guest's NICs are watched (rtnetlink's FDB notifications)
 * for the guest's MACs coming back through their uplinks, and libvirt's events for the
 * moment the guest stopped here for the switchover.
 */

#include <stdint.h>

#include <libvirt/libvirt.h>

#include "domxml.h"
#include "util.h"

typedef struct NetWatch NetWatch;

/* Starts watching for dom (d: its XML, conn: this node's libvirtd). 0 with *ret NULL when no
 * NIC of dom is on a Linux bridge here (nothing to measure), a negative errno on failure. */
int net_watch_start(virConnectPtr conn, virDomainPtr dom, const DomXml *d, NetWatch **ret);

/* After the migration landed, its downtime as libvirt measured it: NetworkDowntime in µs,
 * waiting up to wait for a first frame; 0 when it cannot be told. Stops the watch. */
uint64_t net_watch_result(NetWatch *w, uint64_t downtime_ms, usec_t wait);

/* Stops the watch (if it runs) and frees it. NULL is fine. */
void net_watch_free(NetWatch *w);
