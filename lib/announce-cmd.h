/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "util.h"

/*
 * The guest announced on its new node (issue 21 item 4, the seeds' ML2/OVN "announce the
 * instance on the destination host once migration is complete"): QEMU's QMP announce-self,
 * which sends a RARP from every NIC of the guest (or, for a virtio-net whose driver offers
 * it, asks the guest to send its own gratuitous ARPs), so that the switches learn the guest's
 * MAC on the node's port. Its schedule comes from [migration] announce_rounds and
 * announce_interval (docs/migration.md).
 */

/* QEMU's limits for the announce parameters (migrate-set-parameters checks them). */
#define ANNOUNCE_ROUNDS_MAX 1000U
#define ANNOUNCE_STEP_MAX   10000U  /* ms */
#define ANNOUNCE_DELAY_MAX  100000U /* ms: initial and max */

/* QEMU's AnnounceParameters: round k+1 follows round k after
 * min(initial + k × step, max) ms; the first round goes out at once. */
typedef struct AnnounceSchedule {
        unsigned rounds; /* 0: no announcement */
        unsigned initial_ms, max_ms, step_ms;
} AnnounceSchedule;

/* The schedule of rounds rounds, interval apart in the way QEMU spaces its own announcement
 * after an incoming migration: the first gap is half the interval and each gap is one
 * interval longer than the one before (5 rounds, 100 ms: QEMU's own defaults, initial 50,
 * max 550, step 100). -ERANGE when rounds or interval are beyond QEMU's limits. */
int announce_schedule(unsigned rounds, usec_t interval, AnnounceSchedule *ret);

/* From the first round to the last. */
usec_t announce_schedule_length(const AnnounceSchedule *s);

/* {"execute":"announce-self","arguments":{...}} for s, or NULL (out of memory). */
char *announce_qmp_command(const AnnounceSchedule *s);

/* QEMU's reply to the command: 0 for a "return", -EIO with *ret_error (QEMU's "desc") for an
 * "error", -EBADMSG with *ret_error for anything else. *ret_error is freed by the caller. */
int announce_reply_check(const char *reply, char **ret_error);
