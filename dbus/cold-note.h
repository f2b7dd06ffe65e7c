/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "store.h"

/*
 * A cold migration's copy, noted while it runs in <runtime_dir>/cold/<uuid> (until the
 * instance record takes over, migration-cold.c): the daemon that copies, the destination,
 * the guest's power before, and the files created there so far (a file is noted after it
 * was created: one not noted is never deleted). A hostwardend restarted after it died
 * mid-copy removes those files and starts the guest again if it ran (docs/migration.md
 * "Cold migration"). Keys: pid, id, destination, power, disks (coldmig.h's
 * encoding).
 */
typedef struct ColdNote {
        pid_t pid;
        char *id; /* the migration's: its transient pools are hostwarden-ID-N */
        char *destination;
        InstancePower power;
        char **disks;
} ColdNote;

void cold_note_done(ColdNote *n);

/* Writes the note of uuid (replaced atomically). */
int cold_note_save(const char *runtime_dir, const char *uuid, const ColdNote *n);
/* 1 and *ret, 0 when there is none, < 0 on error (-EBADMSG: not a note we wrote). */
int cold_note_load(const char *runtime_dir, const char *uuid, ColdNote *ret);
int cold_note_forget(const char *runtime_dir, const char *uuid);
/* The UUIDs that have a note (*ret NULL when none). */
int cold_note_list(const char *runtime_dir, char ***ret);
