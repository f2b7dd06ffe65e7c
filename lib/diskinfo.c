/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "diskinfo.h"
#include "util.h"

/* Is the FUSE file system with this st_dev GlusterFS's ("fuse.glusterfs" in mountinfo)? */
static bool fuse_is_glusterfs(dev_t dev)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];

        while (f && fgets(line, sizeof(line), f)) {
                unsigned maj, min;
                const char *sep = strstr(line, " - ");

                /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE OPTIONS" */
                if (sep && sscanf(line, "%*u %*u %u:%u", &maj, &min) == 2 &&
                    makedev(maj, min) == dev)
                        return startswith(sep + 3, "fuse.glusterfs ");
        }
        return false;
}

static const char *fs_type_shared_name(long type)
{
        static const struct {
                long type;
                const char *name;
        } fs[] = {
                { NFS_SUPER_MAGIC, "nfs" }, { 0xFF534D42, "cifs" }, { 0xFE534D42, "smb2" },
                { 0x00C36400, "ceph" },     { 0x01161970, "gfs2" }, { 0x7461636f, "ocfs2" },
                { 0x0BD00BD0, "lustre" },   { 0x47504653, "gpfs" },
        };

        for (size_t i = 0; i < ELEMENTSOF(fs); i++)
                if (fs[i].type == type)
                        return fs[i].name;
        return NULL;
}

const char *fs_shared_name(const char *path)
{
        struct statfs sfs;
        struct stat st;

        if (statfs(path, &sfs) < 0 || stat(path, &st) < 0)
                return NULL;
        if (sfs.f_type == FUSE_SUPER_MAGIC)
                return fuse_is_glusterfs(st.st_dev) ? "glusterfs" : NULL;
        return fs_type_shared_name((long)sfs.f_type);
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

static bool on_shared_storage(const char *path, const SharedFs *shared, size_t n_shared)
{
        struct statfs sfs;
        struct stat st;

        if (stat(path, &st) < 0 || statfs(path, &sfs) < 0)
                return true; /* not readable here: not ours to judge (libvirt will say) */
        for (size_t i = 0; i < n_shared; i++)
                if (st.st_dev == shared[i].dev)
                        return true;
        return fs_shared_name(path) != NULL;
}

/* A disk on shared storage is only shared if its whole qcow2 backing chain is: Nova's
 * _base images are often kept on each node's own disk. */
static void find_local_backing(const char *source, const SharedFs *shared, size_t n_shared,
                               MigDiskInfo *ret)
{
        _cleanup_free_ char *path = strdup(source);

        for (int depth = 0; path && depth < 16; depth++) {
                char *backing = NULL;
                uint64_t size;

                if (qcow2_probe(path, &backing, &size) < 0 || !backing)
                        return;
                free(path);
                path = backing;
                if (!on_shared_storage(path, shared, n_shared)) {
                        snprintf(ret->local_backing, sizeof(ret->local_backing), "%s", path);
                        return;
                }
        }
}

void disk_classify(const DomDisk *d, const SharedFs *shared, size_t n_shared, MigDiskInfo *ret,
                   char *where_buf, size_t where_size)
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
        ret->libvirt_shared = fs_shared_name(d->source) != NULL;
        for (size_t i = 0; i < n_shared; i++)
                if (st.st_dev == shared[i].dev) {
                        ret->storage = DISK_SHARED;
                        snprintf(where_buf, where_size, "%s", shared[i].what);
                        find_local_backing(d->source, shared, n_shared, ret);
                        return;
                }
        if ((name = fs_shared_name(d->source))) {
                ret->storage = DISK_SHARED;
                snprintf(where_buf, where_size, "%s", name);
                find_local_backing(d->source, shared, n_shared, ret);
        } else if ((name = local_fs_name((long)sfs.f_type)))
                snprintf(where_buf, where_size, "%s", name);
        else
                snprintf(where_buf, where_size, "a local file system, type 0x%lx",
                         (unsigned long)sfs.f_type);
}

static int mark_path(const char *instances_path, const char *node, char **ret)
{
        if (isempty(instances_path) || isempty(node) || strchr(node, '/') || node[0] == '.')
                return -EINVAL;
        return asprintf(ret, "%s/" STORAGE_MARK_DIR "/%s", instances_path, node) < 0 ? -ENOMEM : 0;
}

int storage_mark_write(const char *instances_path, const char *node, char **ret_mark)
{
        _cleanup_free_ char *path = NULL, *dir = NULL, *text = NULL;
        unsigned char rnd[STORAGE_MARK_LEN / 2];
        char mark[STORAGE_MARK_LEN + 1];
        int r;

        r = mark_path(instances_path, node, &path);
        if (r < 0)
                return r;
        if (asprintf(&dir, "%s/" STORAGE_MARK_DIR, instances_path) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return -EIO;
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(mark + 2 * i, 3, "%02x", rnd[i]);
        if (asprintf(&text, "%s\n", mark) < 0)
                return -ENOMEM;
        r = write_file_atomic(path, text, 0644);
        if (r < 0)
                return r;
        *ret_mark = strdup(mark);
        return *ret_mark ? 0 : -ENOMEM;
}

int storage_mark_check(const char *instances_path, const char *node, const char *mark)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (isempty(mark))
                return 0;
        r = mark_path(instances_path, node, &path);
        if (r < 0)
                return r;
        r = read_full_file(path, 256, &text, NULL);
        if (r == -ENOENT || r == -EFBIG)
                return 0;
        if (r < 0)
                return r;
        return streq(strstrip(text), mark);
}

static uint64_t be64(const unsigned char *p)
{
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = (v << 8) | p[i];
        return v;
}

static uint32_t be32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int qcow2_probe(const char *path, char **ret_backing, uint64_t *ret_size)
{
        _cleanup_close_ int fd = -EBADF;
        unsigned char h[72];
        uint64_t off;
        uint32_t len;
        char *backing = NULL;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || memcmp(h, "QFI\xfb", 4) != 0)
                return -EMEDIUMTYPE;
        off = be64(h + 8);
        len = be32(h + 16);
        if (off > 0 && len > 0) {
                char name[4097];
                ssize_t k;

                if (len >= sizeof(name))
                        return -EBADMSG;
                k = pread(fd, name, len, (off_t)off);
                if (k != (ssize_t)len)
                        return -EBADMSG;
                name[len] = '\0';
                if (memchr(name, '\0', len))
                        return -EBADMSG;
                if (name[0] == '/')
                        backing = strdup(name);
                else {
                        const char *slash = strrchr(path, '/');
                        int n = slash ? (int)(slash - path) : 1;

                        if (asprintf(&backing, "%.*s/%s", n, slash ? path : ".", name) < 0)
                                backing = NULL;
                }
                if (!backing)
                        return -ENOMEM;
        }
        *ret_backing = backing;
        *ret_size = be64(h + 24);
        return 0;
}

static bool annotatable(const char *s)
{
        return s && !strpbrk(s, "\"<>\n") && !strstr(s, "--");
}

int disk_bases_annotate(const char *xml, char **ret)
{
        _cleanup_(domxml_freep) DomXml *d = NULL;
        size_t len = strlen(xml), cap = len + 1, used = len;
        char *out;
        int r;

        r = domxml_parse(xml, len, &d, NULL);
        if (r < 0)
                return r;
        out = malloc(cap);
        if (!out)
                return -ENOMEM;
        memcpy(out, xml, len + 1);
        for (size_t i = 0; i < d->n_disks; i++) {
                const DomDisk *disk = &d->disks[i];
                _cleanup_free_ char *backing = NULL;
                char line[9000];
                uint64_t size;
                int n;

                if (!streq_ptr(disk->type, "file") || !annotatable(disk->source) ||
                    qcow2_probe(disk->source, &backing, &size) < 0 || !annotatable(backing))
                        continue;
                n = snprintf(line, sizeof(line),
                             "\n<!-- hostwarden-disk-base path=\"%s\" backing=\"%s\" size=%llu -->",
                             disk->source, backing, (unsigned long long)size);
                if (n < 0 || (size_t)n >= sizeof(line))
                        continue;
                if (used + (size_t)n + 1 > cap) {
                        char *bigger = realloc(out, used + (size_t)n + 1);

                        if (!bigger) {
                                free(out);
                                return -ENOMEM;
                        }
                        out = bigger;
                        cap = used + (size_t)n + 1;
                }
                memcpy(out + used, line, (size_t)n + 1);
                used += (size_t)n;
        }
        *ret = out;
        return 0;
}

int disk_bases_lookup(const char *xml, const char *path, char **ret_backing, uint64_t *ret_size)
{
        const char *p = xml;
        size_t plen;

        if (!annotatable(path))
                return -ENOENT;
        plen = strlen(path);
        while ((p = strstr(p, "<!-- hostwarden-disk-base path=\""))) {
                const char *v = p + strlen("<!-- hostwarden-disk-base path=\"");
                const char *b, *e;
                unsigned long long size;

                p = v;
                if (strncmp(v, path, plen) != 0 || v[plen] != '"')
                        continue;
                b = v + plen + 1;
                if (strncmp(b, " backing=\"", 10) != 0)
                        return -EBADMSG;
                b += 10;
                e = strchr(b, '"');
                if (!e || sscanf(e, "\" size=%llu -->", &size) != 1)
                        return -EBADMSG;
                *ret_backing = strndup(b, (size_t)(e - b));
                if (!*ret_backing)
                        return -ENOMEM;
                *ret_size = size;
                return 0;
        }
        return -ENOENT;
}
