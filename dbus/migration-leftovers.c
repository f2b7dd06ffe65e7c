/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a block migration made on its destination, kept and removed (migration-leftovers.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "migration-leftovers.h"
#include "util.h"
#include "virt.h"

#define RECORD_MAX_SIZE (64 * 1024)

void leftovers_done(Leftovers *l)
{
        free(l->destination);
        strv_free(l->pools);
        strv_free(l->disks);
        *l = (Leftovers){};
}

static int record_path(const char *runtime_dir, const char *uuid, char *buf, size_t size)
{
        char u[37];

        if (!uuid_is_valid(uuid))
                return -EINVAL;
        for (size_t i = 0; i < 36; i++)
                u[i] = (char)tolower((unsigned char)uuid[i]);
        u[36] = 0;
        if (snprintf(buf, size, "%s/outgoing/%s", runtime_dir, u) >= (int)size)
                return -ENAMETOOLONG;
        return 0;
}

int leftovers_forget(const char *runtime_dir, const char *uuid)
{
        char path[PATH_MAX];
        int r;

        r = record_path(runtime_dir, uuid, path, sizeof(path));
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int leftovers_save(const char *runtime_dir, const char *uuid, const Leftovers *l)
{
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX], dir[PATH_MAX];
        size_t size = 0;
        FILE *f;
        int r;

        if (!l->pools && !l->disks)
                return leftovers_forget(runtime_dir, uuid);
        r = record_path(runtime_dir, uuid, path, sizeof(path));
        if (r < 0)
                return r;
        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "pid=%d\ndestination=%s\n", (int)getpid(), l->destination);
        /* a line each: a name or path holding a newline cannot be kept (libvirt's are not) */
        STRV_FOREACH (p, l->pools)
                if (!strchr(*p, '\n'))
                        fprintf(f, "pool=%s\n", *p);
        STRV_FOREACH (d, l->disks)
                if (!strchr(*d, '\n'))
                        fprintf(f, "disk=%s\n", *d);
        if (fclose(f) != 0)
                return -ENOMEM;
        snprintf(dir, sizeof(dir), "%s/outgoing", runtime_dir);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        return write_file_atomic(path, text, 0644);
}

int leftovers_load(const char *runtime_dir, const char *uuid, Leftovers *ret)
{
        _cleanup_free_ char *text = NULL;
        Leftovers l = {};
        char path[PATH_MAX];
        int r;

        r = record_path(runtime_dir, uuid, path, sizeof(path));
        if (r < 0)
                return r;
        r = read_full_file(path, RECORD_MAX_SIZE, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (startswith(line, "pid="))
                        l.pid = (pid_t)atoi(line + strlen("pid="));
                else if (startswith(line, "destination=")) {
                        free(l.destination);
                        l.destination = strdup(line + strlen("destination="));
                        r = l.destination ? 0 : -ENOMEM;
                } else if (startswith(line, "pool="))
                        r = strv_extend(&l.pools, line + strlen("pool="));
                else if (startswith(line, "disk="))
                        r = strv_extend(&l.disks, line + strlen("disk="));
                if (r < 0) {
                        leftovers_done(&l);
                        return r;
                }
        }
        *ret = l;
        return 1;
}

int leftovers_list(const char *runtime_dir, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        char path[PATH_MAX];
        struct dirent *de;
        DIR *d;

        if (snprintf(path, sizeof(path), "%s/outgoing", runtime_dir) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        d = opendir(path);
        if (!d) {
                *ret = NULL;
                return errno == ENOENT ? 0 : -errno;
        }
        while ((de = readdir(d)))
                if (uuid_is_valid(de->d_name) && strv_extend(&l, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        closedir(d);
        *ret = TAKE_PTR(l);
        return 0;
}

/* Is the domain active on the destination? Then the copies are its disks. */
static bool runs_there(virConnectPtr dconn, const char *uuid)
{
        virDomainPtr ddom = virDomainLookupByUUIDString(dconn, uuid);
        bool active;

        if (!ddom)
                return false;
        active = virDomainIsActive(ddom) == 1;
        virDomainFree(ddom);
        return active;
}

static void remove_disk(virConnectPtr dconn, const char *path, const char *mig_id, const char *dest)
{
        _cleanup_free_ char *copy = strdup(path);
        virStoragePoolPtr pool;
        virStorageVolPtr vol;

        /* libvirt lists a pool's volumes as of its last scan */
        if (copy && (pool = virStoragePoolLookupByTargetPath(dconn, dirname(copy)))) {
                (void)virStoragePoolRefresh(pool, 0);
                virStoragePoolFree(pool);
        }
        vol = virStorageVolLookupByPath(dconn, path);
        if (!vol)
                return; /* libvirt did not get to create it */
        if (virStorageVolDelete(vol, 0) == 0)
                log_info("Migration %s: removed the partial copy %s on %s", mig_id, path, dest);
        else
                log_warning("Migration %s: cannot remove the partial copy %s on %s: %s", mig_id,
                            path, dest, virt_last_error("unknown error"));
        virStorageVolFree(vol);
}

void leftovers_remove(virConnectPtr dconn, const Leftovers *l, const char *uuid, const char *mig_id,
                      bool failed)
{
        const char *dest = strna(l->destination);

        if (!dconn)
                return;
        if (failed && l->disks) {
                if (runs_there(dconn, uuid))
                        log_warning("Migration %s failed but the domain runs on %s: its disks "
                                    "there are kept",
                                    mig_id, dest);
                else
                        STRV_FOREACH (path, l->disks)
                                remove_disk(dconn, *path, mig_id, dest);
        }
        STRV_FOREACH (name, l->pools) {
                virStoragePoolPtr pool = virStoragePoolLookupByName(dconn, *name);

                if (pool) {
                        (void)virStoragePoolDestroy(pool); /* transient: gone; files stay */
                        virStoragePoolFree(pool);
                }
        }
}
