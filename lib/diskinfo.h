/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "domxml.h"
#include "migcheck.h"
#include "store.h"

/* The name of the file system path is on if it is one nodes share and libvirt takes for
 * shared storage (nfs, ceph, glusterfs ...), or NULL. FUSE counts only as glusterfs, as for
 * libvirt: sshfs and the like are one node's view. */
const char *fs_shared_name(const char *path);

/* A file system whose disks every peer in question sees: dev is its st_dev, what a few
 * words for messages ("the file system of the shared state directory"). */
typedef struct SharedFs {
        dev_t dev;
        const char *what;
} SharedFs;

/*
 * Where a disk of a domain on this node lives (migcheck.h DiskStorage), looking at the
 * file or device itself:
 *  - no source: DISK_EMPTY;
 *  - network disks (rbd, iscsi, nbd ...), and block devices of attached volumes (iSCSI or
 *    FC paths under /dev/disk/, multipath under /dev/mapper/, /dev/rbd*): DISK_VOLUME;
 *  - files on one of the n_shared file systems known to be shared (the dir store's, whose
 *    peers' heartbeats arrive there; an instances_path whose storage mark the peer wrote)
 *    or on a network file system: DISK_SHARED;
 *  - anything else (a file on a local file system, an LVM volume): DISK_LOCAL.
 * where_buf gets a few words for messages (ret->where points to it); iso9660 is set for an
 * ISO 9660 image (a config drive in that format).
 */
void disk_classify(const DomDisk *d, const SharedFs *shared, size_t n_shared, MigDiskInfo *ret,
                   char *where_buf, size_t where_size);

/*
 * Storage marks: proof that two nodes mount the same instances_path, whatever its file
 * system (Nova's check writes a temporary file on the destination and looks for it on the
 * source). At start, hostwardend writes a fresh random mark (STORAGE_MARK_LEN lowercase hex
 * digits) to <instances_path>/.hostwarden-storage/<node> and records it in its node record
 * (NodeRecord.storage_mark). A node that reads a peer's recorded mark from that file under
 * its own instances_path shares the directory with that peer; a copy of an old directory
 * holds an old mark.
 */
#define STORAGE_MARK_DIR ".hostwarden-storage"

/* Writes a new mark for node (0644, atomically) and returns it. */
int storage_mark_write(const char *instances_path, const char *node, char **ret_mark);

/* 1 when node's mark file under instances_path holds mark, 0 when it holds another or there is
 * none (or mark is NULL), < 0 when it cannot be read. */
int storage_mark_check(const char *instances_path, const char *node, const char *mark);

/*
 * qcow2 header of path: the backing file (NULL when none; a relative one is made absolute
 * against the image's directory) and the virtual size. -EMEDIUMTYPE when it is not qcow2.
 */
int qcow2_probe(const char *path, char **ret_backing, uint64_t *ret_size);

/*
 * The base images of a domain's disks, kept with its saved definition so that a lost local
 * disk can be re-created from its base after its node died (Rebuild). Each qcow2 file disk
 * with a backing file adds, after the root element (libvirt ignores comments there), a line
 *   <!-- hostwarden-disk-base path="P" backing="B" size=N -->
 * Paths holding '"', "--", '<' or '>' are left out. *ret is a copy of xml with the lines.
 */
int disk_bases_annotate(const char *xml, char **ret);

/* The base (and virtual size) annotated for disk path in xml: -ENOENT when none is. */
int disk_bases_lookup(const char *xml, const char *path, char **ret_backing, uint64_t *ret_size);
