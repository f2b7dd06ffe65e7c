/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "migcheck.h"

/*
 * The choice of a migration's destination (DESIGN.md §7) as a decision on data: each
 * candidate peer's preflight (CheckMigration's findings, or why it could not be asked) and
 * free memory, and the reservations: the memory of the migrations this node is sending to each
 * peer right now, which the peer's free memory does not show yet. Counting them makes
 * migrations chosen at the same moment (a drain with max_concurrent > 1) spread over the
 * peers instead of all taking the one that looked emptiest.
 */

typedef struct PlacementCandidate {
        const char *name;    /* the peer */
        int error;           /* < 0: its preflight failed; error_message says why */
        bool no_such_domain; /* that failure: the domain is not here (any more) */
        const char *error_message;
        const MigFindings *findings; /* when error >= 0 */
        uint64_t free_bytes;         /* UINT64_MAX: unknown */
        uint64_t need_bytes;         /* the domain's memory */
} PlacementCandidate;

/* Bytes on their way to each peer, by name; thread-safe (its own lock). The Manager owns it. */
typedef struct Reservations Reservations;

int reservations_new(Reservations **ret);
Reservations *reservations_free(Reservations *r);
/* The bytes counted against name now. */
uint64_t reservations_get(Reservations *r, const char *name);

typedef struct Placement {
        ssize_t chosen;    /* index of the candidate chosen; -1 on error */
        uint64_t reserved; /* bytes counted against it (0: they could not be counted) */
        /* 0; -ENOENT: candidate culprit says the domain is not here (its error_message);
         * -EPERM: no candidate can take it, why says why */
        int error;
        size_t culprit;
        /* named: the candidate's refusal ("message (code); ..."); chosen by us: every
         * candidate's ("name: refusal; ..."), or that no peer is configured */
        char why[2048];
} Placement;

/*
 * Chooses among the n candidates and reserves the chosen one's need_bytes, under one lock:
 * the next choice, in any thread, counts this one. named: the caller named the destination
 * (n == 1): it is taken if its preflight passed, without weighing its memory against the
 * reservations. Otherwise the candidate that passed with the most free memory after the
 * reservations (known free memory beats unknown; the first of equals), skipping those that
 * have too little; a candidate that says the domain is not here ends the choice at once.
 */
void placement_choose(Reservations *r, const PlacementCandidate *c, size_t n, bool named,
                      Placement *ret);
/* Takes back what placement_choose() reserved for name (bytes 0: nothing). */
void placement_release(Reservations *r, const char *name, uint64_t bytes);
/* Why c cannot be used, in one line: its preflight's failure, or its error findings as
 * "message (code); ...". */
void placement_describe_refusal(const PlacementCandidate *c, char *buf, size_t size);
