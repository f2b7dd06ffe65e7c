/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/*
 * NetworkDowntime (issue 21 item 4, docs/migration.md "What NetworkDowntime measures"): the
 * µs from the switchover until the switch learned the guest on the destination. The switch
 * cannot be asked; what the source node can see is its own Linux bridge of the guest's NIC
 * learning the guest's MAC from its uplink after the switchover: a frame from that MAC
 * (QEMU's RARP, the guest's own ARP) came through the switch, which learned the MAC on the
 * port that frame came in, the destination's, before it flooded the frame to us.
 */

/* One entry of a bridge's forwarding database as the kernel announces it (RTM_NEWNEIGH of
 * family AF_BRIDGE, group RTNLGRP_NEIGH). */
typedef struct FdbEvent {
        uint8_t mac[6];
        int port;   /* ifindex of the bridge port it was learned on */
        int master; /* ifindex of the bridge, 0 if not said */
} FdbEvent;

/*
 * One netlink message of len bytes: 1 with *ret for an entry learned (or moved) on a
 * bridge port, 0 for anything else (other families and types, entries the bridge did not
 * learn from traffic: permanent, static, its own), -EBADMSG when it is truncated.
 */
int fdb_event_parse(const void *msg, size_t len, FdbEvent *ret);

/* "52:54:00:12:34:56" (either case) into ret. -EINVAL when it is not a MAC. */
int mac_parse(const char *s, uint8_t ret[6]);

/* From the switchover (the guest stopped on the source at stopped, then resumed on the
 * destination downtime_ms later) until seen, all CLOCK_MONOTONIC of this node: µs, at least
 * 1; 0 (unknown) when stopped or seen is 0, or seen comes before the stop. */
uint64_t network_downtime_usec(usec_t stopped, uint64_t downtime_ms, usec_t seen);
