/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <libvirt/libvirt.h>

/*
 * What a block migration makes on its destination: a transient storage pool (hostwarden-*)
 * for each disk directory that is no pool there, and the copies of the disks, which libvirt
 * creates. Until the migration completes the copies are partial: after a failure both must
 * go, after a success the pools only.
 *
 * The worker that made them removes them. libvirt's job outlives a hostwardend that dies, and
 * the restarted daemon adopts it (migration-adopt.c, adopt()): so that it can remove them too, the
 * list is kept while the migration runs in <runtime_dir>/outgoing/<uuid>, lines
 * "pid=PID", "destination=NAME", "pool=NAME" and "disk=PATH" (docs/runtime-dir.md).
 */
typedef struct Leftovers {
        pid_t pid;         /* the hostwardend that made them (leftovers_save() writes its own) */
        char *destination; /* the destination's node name */
        char **pools;      /* transient pools made there */
        char **disks;      /* files that did not exist there: libvirt creates them */
} Leftovers;

void leftovers_done(Leftovers *l);

/* Writes the record for uuid (removes it when there is nothing in l). */
int leftovers_save(const char *runtime_dir, const char *uuid, const Leftovers *l);
/* 1 and *ret filled, 0 when there is none, < 0 on error. */
int leftovers_load(const char *runtime_dir, const char *uuid, Leftovers *ret);
int leftovers_forget(const char *runtime_dir, const char *uuid);
/* The UUIDs that have a record (*ret NULL when none). */
int leftovers_list(const char *runtime_dir, char ***ret);

/*
 * Removes from the destination (dconn) what l lists for the domain uuid: the disks when
 * failed (unless the domain runs there after all: then they are its disks), then the pools.
 * mig_id is for the log.
 */
void leftovers_remove(virConnectPtr dconn, const Leftovers *l, const char *uuid, const char *mig_id,
                      bool failed);
