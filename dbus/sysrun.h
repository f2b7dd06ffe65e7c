/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "util.h"

/*
 * A command run by systemd as another user, in a transient service (what systemd-run does),
 * for files that must belong to that user: a rebuilt instance's disk in Nova's directories,
 * which belong to the nova user. hostwardend itself keeps no capability to write there or to
 * change owners (its unit), and the service is confined as hostwardend is (ProtectSystem=
 * strict, only rw_path writable, no new privileges).
 *
 * Blocking (a worker's): returns 0 when the command exited with 0; otherwise a negative errno
 * and err says why (its output is in the journal, under the unit named there).
 */
int sysrun(const char *const *argv, uid_t uid, gid_t gid, const char *rw_path, usec_t timeout,
           char *err, size_t err_size);
