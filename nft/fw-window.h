/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "fw.h"

/*
 * The migration window's bookkeeping, shared by the hook and hostwardend (DESIGN.md §5,
 * docs/firewall.md). Each incoming migration has a record <runtime>/incoming/<uuid>
 * ("state=begun" at "migrate begin", "state=started" once QEMU runs here); the window is
 * open while any record is, and whoever removes the last one closes it. Callers hold the
 * lock (fw_window_lock) around a read-modify-apply sequence: the hooks of concurrent
 * migrations and the daemon's keeper run at once.
 *
 * No libnftnl here: the hook links this (fw-replay.h says why).
 */

/* Is there a window to keep: [firewall] enabled with migration sources? */
bool fw_window_active(const Config *c);

/* An exclusive lock on <runtime>/firewall.lock: the fd to close, or -errno. */
int fw_window_lock(const char *runtime_dir);

/* Opens (adds the sources for open_window again: a refresh) or closes the window, by
 * replaying the prepared batch, or through hostwarden-firewall when it is missing or
 * stale. */
int fw_window_apply(const Config *c, const char *runtime_dir, FwWindow w);

/* Writes the record of uuid with state ("begun", "started"); its mtime is now. */
int fw_incoming_mark(const char *runtime_dir, const char *uuid, const char *state);
/* 0, or -ENOENT when there was none. */
int fw_incoming_drop(const char *runtime_dir, const char *uuid);
/* Keeps a record alive (mtime now): a migration the keeper saw still running. */
int fw_incoming_touch(const char *runtime_dir, const char *uuid);

typedef struct FwIncoming {
        char uuid[37];
        bool started;  /* "started begin" ran: QEMU is up here */
        time_t marked; /* when the hook last wrote it, or the keeper last touched it */
} FwIncoming;

/* The records, after dropping those not touched for open_window (their window elements
 * have expired in the kernel anyway: a lost event, or nobody keeping them). */
int fw_incoming_list(const Config *c, const char *runtime_dir, FwIncoming **ret, size_t *ret_n);
