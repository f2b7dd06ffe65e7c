/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * A crashed guest moved to another node (issue 22 item 2, docs/recovery-restart.md): after
 * [recovery] max_restart restarts here in the window, ha-restart.c relocates it: a cold
 * migration of the shut-off guest to the peer hostwarden chooses (migration-cold.c, the
 * placement of any MigrateCold), its verify confirmed at once (nobody is there to check the
 * guest by hand), and the guest started there. The migration leaves its own history record.
 */

typedef struct HaRelocation HaRelocation;

/* done(m, uuid, dest, error, userdata) runs in the loop when it ended: error NULL when the
 * guest runs on dest; otherwise the guest is wherever the cold migration left it (here, shut
 * off, when it failed before landing: a failed cold migration goes back). */
typedef void (*HaRelocateDone)(Manager *m, const char *uuid, const char *dest, const char *error,
                               void *userdata);

/* Starts it; 0 with *ret (freed by ha_relocation_free(), which stops following it), or a
 * negative errno with error (may be NULL) saying why. */
int ha_relocate_start(Manager *m, const char *uuid, const char *name, HaRelocateDone done,
                      void *userdata, HaRelocation **ret, char **error);
HaRelocation *ha_relocation_free(HaRelocation *r);
