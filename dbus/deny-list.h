/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* Brings /run/hostwarden/deny/ in line with the instance records: every instance another
 * node owns is denied here, nothing else (docs/runtime-dir.md). */
int deny_list_sync(Manager *m);
/* The same from a listing of the instance records the caller just read. */
int deny_list_sync_from(Manager *m, const InstanceRecord *inst, size_t n);
