/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A cold migration's disk files as sparse storage volume streams (cold-copy.h). */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "cold-copy.h"
#include "coldmig.h"
#include "log.h"
#include "util.h"
#include "virt.h"

#define CHUNK (256 * 1024)

static int fail(char *err, size_t size, int r, const char *format, ...) _printf_(4, 5);
static int fail(char *err, size_t size, int r, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        vsnprintf(err, size, format, ap);
        va_end(ap);
        return r;
}

/* A pool whose target is path's directory: libvirt's own, or a transient one made now (with
 * build: its directory too) and added to *made. */
static virStoragePoolPtr pool_for(virConnectPtr conn, const char *path, const char *prefix,
                                  char ***made, bool build, char *err, size_t err_size)
{
        _cleanup_free_ char *copy = strdup(path), *name = NULL, *xml = NULL;
        virStoragePoolPtr pool;
        const char *dir;

        if (!copy)
                return NULL;
        dir = dirname(copy);
        pool = virStoragePoolLookupByTargetPath(conn, dir);
        if (pool) {
                /* libvirt lists a pool's volumes as of its last scan */
                (void)virStoragePoolRefresh(pool, 0);
                return pool;
        }
        if (asprintf(&name, "%s-%zu", prefix, strv_length(*made)) < 0 ||
            asprintf(&xml,
                     "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>",
                     name, dir) < 0)
                return NULL;
        pool = virStoragePoolCreateXML(conn, xml, build ? VIR_STORAGE_POOL_CREATE_WITH_BUILD : 0);
        if (!pool) {
                fail(err, err_size, -EIO, "cannot make %s a storage pool: %s", dir,
                     virt_last_error("unknown error"));
                return NULL;
        }
        if (strv_push(made, TAKE_PTR(name)) < 0) {
                (void)virStoragePoolDestroy(pool);
                virStoragePoolFree(pool);
                return NULL;
        }
        return pool;
}

void cold_pools_destroy_prefix(virConnectPtr conn, const char *prefix)
{
        virStoragePoolPtr *pools = NULL;
        size_t len = strlen(prefix);
        int n;

        n = virConnectListAllStoragePools(conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_TRANSIENT);
        for (int i = 0; i < n; i++) {
                const char *name = virStoragePoolGetName(pools[i]);

                if (name && strncmp(name, prefix, len) == 0 && name[len] == '-' &&
                    virStoragePoolDestroy(pools[i]) < 0)
                        log_warning("Cannot remove the transient storage pool %s: %s", name,
                                    virt_last_error("unknown error"));
                virStoragePoolFree(pools[i]);
        }
        free(pools);
}

void cold_pools_destroy(virConnectPtr conn, char ***pools)
{
        STRV_FOREACH (n, *pools) {
                virStoragePoolPtr pool = conn ? virStoragePoolLookupByName(conn, *n) : NULL;

                if (!pool || virStoragePoolDestroy(pool) < 0)
                        log_warning("Cannot remove the transient storage pool %s: %s", *n,
                                    virt_last_error("unknown error"));
                if (pool)
                        virStoragePoolFree(pool);
        }
        *pools = strv_free(*pools);
}

/* The volume of path here, its pool made if needed. */
static virStorageVolPtr local_volume(ColdCopy *c, const char *path)
{
        virStoragePoolPtr pool;
        virStorageVolPtr vol;

        pool = pool_for(c->conn, path, c->prefix, &c->pools, false, c->error, sizeof(c->error));
        if (!pool)
                return NULL;
        virStoragePoolFree(pool);
        vol = virStorageVolLookupByPath(c->conn, path);
        if (!vol)
                fail(c->error, sizeof(c->error), -ENOENT, "cannot find %s here: %s", path,
                     virt_last_error("unknown error"));
        return vol;
}

int cold_copy_length(ColdCopy *c, const char *path, uint64_t *ret)
{
        virStorageVolInfo info;
        virStorageVolPtr vol = local_volume(c, path);
        int r;

        if (!vol)
                return -ENOENT;
        /* with GET_PHYSICAL, allocation is the file's length (a qcow2 file's, not its disk's) */
        r = virStorageVolGetInfoFlags(vol, &info, VIR_STORAGE_VOL_GET_PHYSICAL);
        virStorageVolFree(vol);
        if (r < 0)
                return fail(c->error, sizeof(c->error), -EIO, "cannot read the size of %s: %s",
                            path, virt_last_error("unknown error"));
        *ret = info.allocation;
        return 0;
}

static void set_progress(ColdCopy *c, uint64_t n)
{
        c->done += n;
        if (c->progress)
                c->progress(c->done, c->userdata);
}

/* The streams' data and holes, from in to out. */
static int pump(ColdCopy *c, virStreamPtr in, virStreamPtr out, const char *path)
{
        _cleanup_free_ char *buf = malloc(CHUNK);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                int n;

                if (c->cancelled && c->cancelled(c->userdata))
                        return fail(c->error, sizeof(c->error), -ECANCELED,
                                    "aborted by an operator while copying %s", path);
                n = virStreamRecvFlags(in, buf, CHUNK, VIR_STREAM_RECV_STOP_AT_HOLE);
                if (n == 0)
                        return 0;
                if (n == -3) {
                        long long hole = 0;

                        if (virStreamRecvHole(in, &hole, 0) < 0 ||
                            virStreamSendHole(out, hole, 0) < 0)
                                return fail(c->error, sizeof(c->error), -EIO,
                                            "cannot copy a hole of %s: %s", path,
                                            virt_last_error("unknown error"));
                        set_progress(c, (uint64_t)hole);
                        continue;
                }
                if (n < 0)
                        return fail(c->error, sizeof(c->error), -EIO, "cannot read %s here: %s",
                                    path, virt_last_error("unknown error"));
                for (int sent = 0; sent < n;) {
                        int k = virStreamSend(out, buf + sent, n - sent);

                        if (k < 0)
                                return fail(c->error, sizeof(c->error), -EIO,
                                            "cannot write %s on the destination: %s", path,
                                            virt_last_error("unknown error"));
                        sent += k;
                }
                set_progress(c, (uint64_t)n);
        }
}

/* The destination's new, empty volume for path: refused (-EEXIST) when the file exists there. */
static int create_there(ColdCopy *c, const char *path, uint64_t length, virStorageVolPtr src,
                        virStorageVolPtr *ret)
{
        _cleanup_free_ char *copy = strdup(path), *src_xml = NULL, *xml = NULL;
        virStoragePoolPtr pool;
        virStorageVolPtr vol;

        if (!copy)
                return -ENOMEM;
        pool = pool_for(c->dconn, path, c->prefix, &c->dpools, true, c->error, sizeof(c->error));
        if (!pool)
                return -EIO;
        vol = virStorageVolLookupByPath(c->dconn, path);
        if (vol) {
                virStorageVolFree(vol);
                virStoragePoolFree(pool);
                return fail(c->error, sizeof(c->error), -EEXIST,
                            "%s exists on the destination already: cold migration never "
                            "overwrites a file; remove it there or pick another node",
                            path);
        }
        src_xml = virStorageVolGetXMLDesc(src, 0);
        xml = cold_volume_xml(basename(copy), length, src_xml);
        if (!xml) {
                virStoragePoolFree(pool);
                return fail(c->error, sizeof(c->error), -EINVAL, "cannot describe a volume for %s",
                            path);
        }
        vol = virStorageVolCreateXML(pool, xml, 0);
        virStoragePoolFree(pool);
        if (!vol)
                return fail(c->error, sizeof(c->error), -EIO,
                            "cannot create %s on the destination: %s", path,
                            virt_last_error("unknown error"));
        *ret = vol;
        return 0;
}

int cold_copy_file(ColdCopy *c, const char *path, bool *ret_created)
{
        virStorageVolPtr src = NULL, dst = NULL;
        virStreamPtr in = NULL, out = NULL;
        uint64_t length = 0;
        int r;

        *ret_created = false;
        r = cold_copy_length(c, path, &length);
        if (r < 0)
                return r;
        src = local_volume(c, path);
        if (!src)
                return -ENOENT;
        r = create_there(c, path, length, src, &dst);
        if (r < 0)
                goto out;
        *ret_created = true;
        if (c->created) {
                r = c->created(path, c->userdata);
                if (r < 0) {
                        fail(c->error, sizeof(c->error), r, "cannot note %s: %s", path,
                             strerror(-r));
                        goto out;
                }
        }
        in = virStreamNew(c->conn, 0);
        out = virStreamNew(c->dconn, 0);
        if (!in || !out) {
                r = fail(c->error, sizeof(c->error), -ENOMEM, "cannot open streams for %s", path);
                goto out;
        }
        if (virStorageVolDownload(src, in, 0, 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM) < 0) {
                r = fail(c->error, sizeof(c->error), -EIO, "cannot read %s here: %s", path,
                         virt_last_error("unknown error"));
                goto out;
        }
        if (virStorageVolUpload(dst, out, 0, 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) < 0) {
                (void)virStreamAbort(in);
                r = fail(c->error, sizeof(c->error), -EIO, "cannot write %s on the destination: %s",
                         path, virt_last_error("unknown error"));
                goto out;
        }
        r = pump(c, in, out, path);
        if (r < 0) {
                (void)virStreamAbort(in);
                (void)virStreamAbort(out);
                goto out;
        }
        /* the destination's answer says the file is written */
        if (virStreamFinish(out) < 0) {
                (void)virStreamAbort(in);
                r = fail(c->error, sizeof(c->error), -EIO,
                         "cannot finish writing %s on the destination: %s", path,
                         virt_last_error("unknown error"));
                goto out;
        }
        if (virStreamFinish(in) < 0)
                r = fail(c->error, sizeof(c->error), -EIO, "cannot finish reading %s here: %s",
                         path, virt_last_error("unknown error"));
out:
        if (in)
                virStreamFree(in);
        if (out)
                virStreamFree(out);
        if (dst)
                virStorageVolFree(dst);
        virStorageVolFree(src);
        return r;
}

int cold_delete_file(virConnectPtr conn, const char *path, const char *prefix, char ***pools,
                     char *err, size_t err_size)
{
        virStoragePoolPtr pool;
        virStorageVolPtr vol;
        virStorageVolInfo info;
        int r = 0;

        pool = pool_for(conn, path, prefix, pools, false, err, err_size);
        if (!pool) {
                /* no directory: nothing in it */
                if (virGetLastErrorCode() == VIR_ERR_NO_STORAGE_POOL ||
                    strstr(err, "No such file or directory"))
                        return 0;
                return -EIO;
        }
        virStoragePoolFree(pool);
        vol = virStorageVolLookupByPath(conn, path);
        if (!vol)
                return 0; /* gone already */
        if (virStorageVolGetInfo(vol, &info) < 0 || info.type == VIR_STORAGE_VOL_DIR)
                r = fail(err, err_size, -EISDIR, "%s is not a file: left alone", path);
        else if (virStorageVolDelete(vol, 0) < 0)
                r = fail(err, err_size, -EIO, "cannot delete %s: %s", path,
                         virt_last_error("unknown error"));
        virStorageVolFree(vol);
        return r;
}
