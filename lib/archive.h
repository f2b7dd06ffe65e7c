/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * One archive run (issue 21, docs/history-and-archiving.md; the seeds' "Database
 * cleaning"): history records and records of deleted instances whose time is archive_after
 * old move to the store's archive; archived entries purge_after after their move are
 * deleted. At most one node of the cluster runs at a time: the lease ARCHIVE_LEASE in the
 * store, taken for lease_ttl and renewed as the run goes, so that a node that died holding
 * it blocks the others for lease_ttl at most.
 *
 * The clock is the caller's (now), so that tests write records with old times and run the
 * archive at the time they choose.
 */

#define ARCHIVE_LEASE       "archive"
#define ARCHIVE_LEASE_TTL   (15U * 60U * 1000000ULL)
#define ARCHIVE_RENEW_EVERY 64U /* entries between two renewals of the lease */
#define ARCHIVE_MAX_PER_RUN 10000U

typedef enum ArchiveStep {
        ARCHIVE_STEP_ARCHIVE, /* moved (or to move) to the archive */
        ARCHIVE_STEP_PURGE,   /* deleted (or to delete) from the archive */
        _ARCHIVE_STEP_MAX,
} ArchiveStep;

const char *archive_step_to_string(ArchiveStep s); /* "archive", "purge" */

typedef struct ArchiveAction {
        ArchiveStep step;
        ArchiveKind kind;
        char *key;     /* history id, or instance UUID */
        char *name;    /* the domain's name, may be NULL */
        uint64_t time; /* the entry's: finished, deleted, or archived (purge) */
        int error;     /* 0: done (or, dry run, would be); < 0: not done, why */
} ArchiveAction;

ArchiveAction *archive_action_array_free(ArchiveAction *a, size_t n);

typedef struct ArchiveOptions {
        uint64_t now; /* usec realtime */
        uint64_t archive_after, purge_after;
        bool dry_run;       /* only say what would be done: no lease, no change */
        uint64_t lease_ttl; /* 0: ARCHIVE_LEASE_TTL */
} ArchiveOptions;

/*
 * Runs (or, dry_run, plans) one archive pass: 0 and the actions in order (*ret_n may be 0),
 * an entry that could not be moved among them with its error; -EBUSY when another node holds
 * the lease (*ret_holder, may be NULL, gets its name); < 0 when the store cannot be listed.
 * A pass that loses its lease midway stops there and answers -EBUSY too: what it did stays
 * done, the holder does the rest.
 */
int archive_run(Store *s, const ArchiveOptions *o, ArchiveAction **ret, size_t *ret_n,
                char **ret_holder);
