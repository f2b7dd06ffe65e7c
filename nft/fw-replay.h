/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * The migration window for the hook. libvirtd runs the hook for every domain event and
 * waits; linked statically it costs about 1.2x an exec of /bin/true, but libmnl (which
 * libnftnl needs) has no static library in Debian, and linked dynamically the hook costs
 * 2x (docs/decisions.md). So hostwarden-firewall, which links libnftnl, prepares the two
 * window batches as bytes in the runtime directory, and the hook replays them on a plain
 * netlink socket. Each file carries the spec digest it was built for: a stale or missing
 * file is not replayed, the hook runs hostwarden-firewall instead.
 *
 *   <runtime>/firewall/window-open    add the sources to migration_open4/6 (open_window)
 *   <runtime>/firewall/window-close   flush migration_open4/6
 */

#define FW_BLOB_SUBDIR   "firewall"
#define FW_BLOB_OPEN     "window-open"
#define FW_BLOB_CLOSE    "window-close"
#define FW_BLOB_MAX_SIZE (4U * 1024U * 1024U)

typedef struct FwBlobHeader {
        char magic[8]; /* "HWFWBLB1" */
        uint64_t digest;
        uint32_t last_seq; /* the message whose ack ends the batch */
        uint32_t size;     /* of the batch that follows */
} FwBlobHeader;

#define FW_BLOB_MAGIC "HWFWBLB1"

/* Sends <runtime>/firewall/NAME if it was built for digest. 0 on success; -ESTALE when
 * the file is missing or built for another spec; otherwise the kernel's -errno (-ENOENT:
 * the table is gone). removes: the batch removes elements (fw-replay.c says why that
 * matters). */
int fw_replay(const char *runtime_dir, const char *name, uint64_t digest, bool removes);

#include "fw.h"
/* The file name of a window batch. */
const char *fw_blob_name(FwWindow w);
