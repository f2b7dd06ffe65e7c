/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "manager.h"
#include "store.h"

/*
 * A rebuild that claims its instance's record, noted in <runtime_dir>/rebuild/<uuid> from
 * just before the claim until its outcome (rebuild.c): the hostwardend that rebuilds, the
 * fenced source, and the power the instance is rebuilt to. A hostwardend that dies in between
 * leaves the record this node's and the domain undefined or shut off, which nothing else
 * would start (reconciliation follows libvirt); the next one finishes that rebuild
 * (rebuilds_resume) with the same checks. Keys: pid, source, power.
 */
typedef struct RebuildNote {
        pid_t pid;
        char *source;
        InstancePower power;
} RebuildNote;

void rebuild_note_done(RebuildNote *n);

int rebuild_note_save(const char *runtime_dir, const char *uuid, const RebuildNote *n);
/* 1 and *ret, 0 when there is none, < 0 on error (-EBADMSG: not a note we wrote). */
int rebuild_note_load(const char *runtime_dir, const char *uuid, RebuildNote *ret);
int rebuild_note_forget(const char *runtime_dir, const char *uuid);

/*
 * Once attached to the store (store-attach.c), before the first reconciliation pass looks at
 * the instances: every note another hostwardend left whose record is still this node's,
 * evacuated from the noted source, is rebuilt again from step 1 (rebuild.h); the others
 * (the claim never happened, or the record has moved on since) are forgotten.
 */
void rebuilds_resume(Manager *m);
