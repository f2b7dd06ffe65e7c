/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "domxml.h"
#include "manager.h"
#include "migcheck.h"
#include "migrate-opts.h"
#include "placement.h"

/*
 * Everything CheckMigration looks at, and Migrate checks before it starts: gathered in a
 * worker thread from the local libvirt and the destination's (preflight_gather), judged by
 * lib/migcheck.c. The fields up to the results are filled in the event loop first (the store
 * is read there).
 */
typedef struct Preflight {
        /* in */
        char *domain_arg; /* name or UUID as the caller gave it */
        char *source_name;
        char *dest_name;
        char *dest_uri; /* NULL: the destination is this node, not contacted */
        /* its [peer] migration_address; NULL: none */
        char *dest_migration_address;
        char *dest_state;
        char *dest_fence;
        dev_t store_dev;            /* the dir store's file system (0: store = etcd) */
        char *instances_path;       /* this node's */
        char *dest_mark;            /* the destination's storage mark from the store, or NULL */
        unsigned dest_max_incoming; /* its [migration] max_incoming, from the store */
        MigrateOptions opts;
        char *tls_problem;     /* why opts.tls cannot be had here (migrate_options_check_tls) */
        MigPolicySet policies; /* this node's migration policies (the configuration's copy) */

        /* out */
        int error; /* < 0: error_name and error_message say why; no findings */
        const char *error_name;
        char error_message[1024];
        uint64_t dest_free_bytes; /* UINT64_MAX: unknown */
        DomXml *domain;           /* the live XML's model */
        bool *disk_copied;        /* per domain->disks: copied by a block migration */
        char *domain_xml;         /* the live XML as libvirt gave it */
        MigFindings findings;
} Preflight;

Preflight *preflight_free(Preflight *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Preflight *, preflight_free);
DEFINE_VOID_FREE_FUNC(Preflight, preflight_free);

/*
 * Validates and fills in the event loop: the destination must be this node or a [peer];
 * its state comes from the store. InvalidArgs / NoSuchNode in error.
 */
int preflight_new(Manager *m, const char *domain, const char *dest, const MigrateOptions *opts,
                  Preflight **ret, sd_bus_error *error);

/* In a worker thread: asks libvirt here and on the destination, runs the checks. */
void preflight_gather(Manager *m, Preflight *p);

/* What lib/placement.c weighs of p, once gathered (it points into p): the destination choice
 * of a migration to "" (migration-engine.c) and of Maintenance.Plan (maintenance.c). */
void preflight_candidate(const Preflight *p, PlacementCandidate *ret);
