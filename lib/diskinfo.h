/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "domxml.h"
#include "migcheck.h"

/* The name of a file system type (statfs f_type) that nodes share (nfs, cephfs, ...), or NULL. */
const char *fs_shared_name(long type);

/*
 * Where a disk of a domain on this node lives (migcheck.h DiskStorage), looking at the
 * file or device itself:
 *  - no source: DISK_EMPTY;
 *  - network disks (rbd, iscsi, nbd ...), and block devices of attached volumes (iSCSI or
 *    FC paths under /dev/disk/, multipath under /dev/mapper/, /dev/rbd*): DISK_VOLUME;
 *  - files on the file system of the shared state directory (store_dev, st_dev of
 *    state_dir; the peers' heartbeats arrive there, so they mount it) or on a network file
 *    system: DISK_SHARED;
 *  - anything else (a file on a local file system, an LVM volume): DISK_LOCAL.
 * where_buf gets a few words for messages (ret->where points to it); iso9660 is set for an
 * ISO 9660 image (a config drive in that format).
 */
void disk_classify(const DomDisk *d, dev_t store_dev, MigDiskInfo *ret, char *where_buf,
                   size_t where_size);

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
