/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "diskinfo.h"
#include "util.h"

const char *fs_shared_name(long type)
{
        static const struct {
                long type;
                const char *name;
        } fs[] = {
                { NFS_SUPER_MAGIC, "nfs" }, { 0xFF534D42, "cifs" },
                { 0xFE534D42, "smb2" },     { 0x00C36400, "ceph" },
                { 0x01161970, "gfs2" },     { 0x7461636f, "ocfs2" },
                { 0x0BD00BD0, "lustre" },   { 0x65735546, "fuse" /* glusterfs */ },
                { 0x47504653, "gpfs" },
        };

        for (size_t i = 0; i < ELEMENTSOF(fs); i++)
                if (fs[i].type == type)
                        return fs[i].name;
        return NULL;
}

static const char *local_fs_name(long type)
{
        static const struct {
                long type;
                const char *name;
        } fs[] = {
                { EXT4_SUPER_MAGIC, "ext4" },           { XFS_SUPER_MAGIC, "xfs" },
                { BTRFS_SUPER_MAGIC, "btrfs" },         { TMPFS_MAGIC, "tmpfs" },
                { OVERLAYFS_SUPER_MAGIC, "overlayfs" }, { 0x2fc12fc1, "zfs" },
        };

        for (size_t i = 0; i < ELEMENTSOF(fs); i++)
                if (fs[i].type == type)
                        return fs[i].name;
        return NULL;
}

static bool is_volume_device(const char *path)
{
        return startswith(path, "/dev/disk/") || startswith(path, "/dev/mapper/") ||
               startswith(path, "/dev/rbd") || startswith(path, "/dev/nbd");
}

/* ISO 9660: "CD001" at byte 0x8001 (the first volume descriptor, after 32 KiB of system area). */
static bool is_iso9660(const char *path)
{
        char magic[5];
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return false;
        n = pread(fd, magic, sizeof(magic), 0x8001);
        close(fd);
        return n == (ssize_t)sizeof(magic) && memcmp(magic, "CD001", 5) == 0;
}

void disk_classify(const DomDisk *d, dev_t store_dev, MigDiskInfo *ret, char *where_buf,
                   size_t where_size)
{
        struct statfs sfs;
        struct stat st;
        const char *name;

        *ret = (MigDiskInfo){ .storage = DISK_LOCAL, .where = where_buf };
        where_buf[0] = 0;
        if (isempty(d->source)) {
                ret->storage = DISK_EMPTY;
                return;
        }
        if (streq_ptr(d->type, "network") || streq_ptr(d->type, "volume")) {
                ret->storage = DISK_VOLUME;
                snprintf(where_buf, where_size, "%s disk", strna(d->type));
                return;
        }
        if (streq_ptr(d->type, "block")) {
                ret->storage = is_volume_device(d->source) ? DISK_VOLUME : DISK_LOCAL;
                snprintf(where_buf, where_size, "%s",
                         ret->storage == DISK_VOLUME ? "an attached volume"
                                                     : "a block device of this node");
                return;
        }
        /* a file (type file or unset) */
        ret->iso9660 = is_iso9660(d->source);
        if (stat(d->source, &st) < 0 || statfs(d->source, &sfs) < 0) {
                snprintf(where_buf, where_size, "cannot be read here: %s", strerror(errno));
                return;
        }
        if (store_dev != 0 && st.st_dev == store_dev) {
                ret->storage = DISK_SHARED;
                snprintf(where_buf, where_size, "the file system of the shared state directory");
        } else if ((name = fs_shared_name((long)sfs.f_type))) {
                ret->storage = DISK_SHARED;
                snprintf(where_buf, where_size, "%s", name);
        } else if ((name = local_fs_name((long)sfs.f_type)))
                snprintf(where_buf, where_size, "%s", name);
        else
                snprintf(where_buf, where_size, "a local file system, type 0x%lx",
                         (unsigned long)sfs.f_type);
}
