/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

/*
 * A cold migration's disk files, through libvirt's storage API on both nodes (no SSH, no
 * file access of the daemon's own): a file is read with virStorageVolDownload here and
 * written with virStorageVolUpload into a new volume of the same path on the destination,
 * both as sparse streams, so that holes stay holes and only data crosses the network. A
 * directory that is no storage pool gets a transient one for the time (hostwarden-ID-N),
 * destroyed afterwards (the files stay).
 *
 * Worker threads only (libvirt calls that may block).
 */

typedef struct ColdCopy {
        virConnectPtr conn, dconn; /* here, the destination */
        char *prefix;              /* of the transient pools: "hostwarden-<migration id>" */
        char **pools, **dpools;    /* transient pools made here, there */
        uint64_t done;             /* bytes of the files covered so far, data and holes */
        /* called after every chunk with done; may be NULL */
        void (*progress)(uint64_t done, void *userdata);
        /* asked between chunks: true stops the copy (-ECANCELED); may be NULL */
        bool (*cancelled)(void *userdata);
        /* called when a file was created on the destination, before anything is written to
         * it (to note it for its removal); a negative return stops the copy; may be NULL */
        int (*created)(const char *path, void *userdata);
        void *userdata;
        char error[768]; /* why the last call failed */
} ColdCopy;

/* The length in bytes of the local file path (what a copy covers). */
int cold_copy_length(ColdCopy *c, const char *path, uint64_t *ret);

/*
 * Copies the local file path to the same path on the destination, which must not have it
 * (a file there is never overwritten: -EEXIST). *ret_created says whether the file was
 * created there (also on failure: the caller removes a partial copy).
 */
int cold_copy_file(ColdCopy *c, const char *path, bool *ret_created);

/*
 * Deletes the file path on conn (here or the destination) through a pool that covers it,
 * made transient when there is none (its name added to *pools). 0 also when it is gone
 * already. Never a directory.
 */
int cold_delete_file(virConnectPtr conn, const char *path, const char *prefix, char ***pools,
                     char *err, size_t err_size);

/* Destroys the transient pools in *pools on conn and empties the list. */
void cold_pools_destroy(virConnectPtr conn, char ***pools);
/* Destroys the transient pools on conn whose names start with prefix- (a copy's, after its
 * daemon died). */
void cold_pools_destroy_prefix(virConnectPtr conn, const char *prefix);
