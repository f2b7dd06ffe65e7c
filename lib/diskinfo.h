/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
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
