/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "manager.h"

/*
 * The history of operations (issue 21; docs/history-and-archiving.md): one record in the
 * store for every migration, rebuild, live evacuation (drain) and fence this node ran,
 * written when it ended; GetHistory reads them, Archive moves the old ones to the store's
 * archive (lib/archive.h).
 *
 * The capability files call one function here where their operation ends; what a record
 * holds is decided here, not there.
 */

/* Who asked for an operation: the caller's uid and its bus name, which is the polkit subject
 * ("system-bus-name") its authorization was asked for. known false: nobody (an adopted
 * migration) or the bus could not tell. */
typedef struct HistoryCaller {
        bool known;
        uint32_t uid;
        char name[256];
} HistoryCaller;

/* The sender of msg (NULL: unknown). */
void history_caller_of(sd_bus_message *msg, HistoryCaller *ret);

struct Migration;
struct Rebuild;

/* migration-queue.c: a migration's end is handled (its final state is set). */
void history_migration_ended(Manager *m, const struct Migration *mig);
/* rebuild.c: one instance's steps are over (rebuilt, refused or failed), for msg's caller. */
void history_rebuild_ended(Manager *m, sd_bus_message *msg, const struct Rebuild *r);
/* drain.c: EvacuateLive queued n migrations to dest ("" = chosen each) or failed with error. */
void history_drain_ended(Manager *m, sd_bus_message *msg, const char *dest, size_t n,
                         const char *error, uint64_t began);
/* fence.c: the fence agent's action on node ended in power ("on", "off") or error (scrubbed
 * of secrets). */
void history_fence_ended(Manager *m, sd_bus_message *msg, const char *node, const char *action,
                         const char *power, const char *error, uint64_t began);

/* ha-restart.c: a crashed guest (uuid, name) was restarted here, moved to dest (NULL: it
 * stayed here), or left shut off: result "restarted", "relocated", "failed" or "given-up"
 * (error says why). */
void history_restart_ended(Manager *m, const char *uuid, const char *name, const char *dest,
                           const char *result, const char *error, uint64_t began);

/* GetHistory(s dom, t since_usec), its arguments read: checks them and answers msg. */
int history_method_get(Manager *m, sd_bus_message *msg, const char *dom, uint64_t since,
                       sd_bus_error *error);
/* Archive(b dry_run), authorized: one archive pass, answered on msg. */
int history_method_archive(Manager *m, sd_bus_message *msg, bool dry_run, sd_bus_error *error);
