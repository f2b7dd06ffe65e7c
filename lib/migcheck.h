/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caps.h"
#include "domxml.h"

/*
 * The migration constraints (live, block, cold) of the operator procedures (DESIGN.md §7
 * CheckMigration), as a pure function of what the daemon gathered: the domain's live XML, both
 * hosts' capabilities, the destination's free memory and CPU comparison, where each disk lives, and
 * the destination's state in the store. Every finding says what to do.
 */

typedef enum MigSeverity {
        MIG_OK,
        MIG_WARNING,
        MIG_ERROR,
} MigSeverity;

const char *mig_severity_to_string(MigSeverity s); /* "ok", "warning", "error" */

/* Where a disk's data lives, as seen from the source (the daemon works it out). */
typedef enum DiskStorage {
        DISK_EMPTY,  /* no source (an empty CD-ROM tray) */
        DISK_LOCAL,  /* a file or device only this node sees */
        DISK_SHARED, /* a file on storage the destination sees too */
        DISK_VOLUME, /* a network disk or a block device attached on both (Cinder volume) */
} DiskStorage;

typedef struct MigDiskInfo {
        DiskStorage storage;
        bool iso9660; /* the source is an ISO 9660 image (a config drive in that format) */
        const char
                *where; /* for messages, in brackets: "ext4", "nfs4", "the store's file system" */
        /* a shared qcow2 disk whose backing chain has a file on this node's own storage: the
         * first such file ("" when none); the destination cannot open it */
        char local_backing[4096];
        /* its file system is one libvirt itself takes for shared (NFS, GlusterFS, Ceph ...):
         * libvirt refuses to migrate a writable disk on any other one without copying it
         * ("Migration without shared storage is unsafe"), whatever hostwarden knows */
        bool libvirt_shared;
} MigDiskInfo;

/* virConnectCompareCPU() on the destination with the domain's CPU (VIR_CPU_COMPARE_*). */
typedef enum MigCpuCompare {
        MIG_CPU_NOT_COMPARED = -2, /* no custom/host-model CPU to compare */
        MIG_CPU_COMPARE_FAILED = -1,
        MIG_CPU_INCOMPATIBLE = 0,
        MIG_CPU_IDENTICAL = 1,
        MIG_CPU_SUPERSET = 2,
} MigCpuCompare;

/* What the domain is doing on the source: live migration takes only an active domain. */
typedef enum MigDomainState {
        MIG_DOMAIN_ACTIVE,       /* running or paused (a paused one lands paused) */
        MIG_DOMAIN_SHUTOFF,      /* defined, not running */
        MIG_DOMAIN_MANAGED_SAVE, /* shut off with a managed save image on this node */
        MIG_DOMAIN_OTHER,        /* crashed, pmsuspended, shutting down: domain_state_word */
} MigDomainState;

typedef struct MigCheckInput {
        const DomXml *domain;
        MigDomainState domain_state;
        const char *domain_state_word; /* libvirt's state as a word, for MIG_DOMAIN_OTHER */
        bool paused;                   /* active and paused */
        bool post_copy_asked;          /* the caller asked for post-copy (not a default) */
        unsigned snapshots;            /* libvirt's snapshots of the domain (its metadata) */
        const MigDiskInfo *disks;      /* one per domain->disks */
        const HostCaps *source;
        const HostCaps *dest; /* NULL: the destination could not be asked (a finding says so) */
        const char *source_name;
        const char *dest_name;
        const char *dest_state;   /* as ListNodes: up, disabled, down, forced-down, unknown */
        const char *dest_fence;   /* unknown, on, off */
        uint64_t dest_free_bytes; /* UINT64_MAX: unknown */
        MigCpuCompare cpu_compare;
        const char *cpu_compare_error; /* libvirt's message when COMPARE_FAILED */
        bool block;                    /* block migration (copy local disks) */
        /* cold migration (MigrateCold): the guest is shut down and its local disks copied, so
         * the constraints that are only live (CPU model, pinning, NUMA, host devices) are
         * warnings, a shut-off domain is fine and local disks are no constraint */
        bool cold;
        /* The UUID of another domain (a different instance) that the destination's libvirt has
         * under the domain's name; NULL: none, or the destination could not be asked. */
        const char *dest_same_name_uuid;
} MigCheckInput;

typedef struct MigFinding {
        MigSeverity severity;
        char *code;
        char *message;
} MigFinding;

typedef struct MigFindings {
        MigFinding *items;
        size_t n;
} MigFindings;

void mig_findings_done(MigFindings *f);
/* The worst severity among them (MIG_OK when none). */
MigSeverity mig_findings_worst(const MigFindings *f);

int mig_findings_add(MigFindings *f, MigSeverity severity, const char *code, const char *format,
                     ...) _printf_(4, 5);

/* Appends every finding for in; an empty list means nothing stands in the way. */
int mig_check(const MigCheckInput *in, MigFindings *ret);

/* Does this disk take part in a block migration's copy (virDomainMigrateToURI3 migrate_disks)? */
bool mig_disk_is_copied(const DomDisk *disk, const MigDiskInfo *info);
