/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/*
 * The runtime directory (default /run/hostwarden) is what the hook reads on its hot path
 * instead of the shared store: hostwardend keeps it in sync (docs/runtime-dir.md).
 *
 *   deny/<uuid>          an instance this node must not start (it was evacuated elsewhere)
 *   node/fenced          this node was fenced: start and receive nothing
 *   node/forced-down     an admin declared this node down: start and receive nothing
 *   node/disabled        this node is disabled (refuse incoming only when configured)
 *   node/synced          hostwardend has read this cluster's store since this boot: until
 *                        then the deny list may be incomplete, and nothing starts here
 *   node/allow-unsynced  an operator allowed starts before that (until the next boot)
 *   arriving/<uuid>      an incoming migration of the instance is under way here
 *   deferred/<uuid>      a start refused before the store was read, carried out once it is
 *
 * Each file holds "key=value" lines. Presence is what counts: a file that exists but cannot
 * be read or parsed still denies (fail closed), its details are then unknown.
 */

typedef enum NodeMarker {
        NODE_MARKER_FENCED,
        NODE_MARKER_FORCED_DOWN,
        NODE_MARKER_DISABLED,
        NODE_MARKER_SYNCED,
        NODE_MARKER_ALLOW_UNSYNCED,
        _NODE_MARKER_MAX,
} NodeMarker;

const char *node_marker_to_string(NodeMarker m);

/* Parsed "key=value" lines; keys used: owner, since, evacuated_from, name, reason, by. */
typedef struct RuntimeRecord {
        char **kv; /* key, value, key, value, ..., NULL */
} RuntimeRecord;

void runtime_record_done(RuntimeRecord *r);
const char *runtime_record_get(const RuntimeRecord *r, const char *key);
int runtime_record_set(RuntimeRecord *r, const char *key, const char *value);
/* Parses text; unknown and malformed lines are skipped. */
int runtime_record_parse(const char *text, RuntimeRecord *ret);
/* The inverse: one "key=value\n" line per pair, in insertion order (rec may be NULL: ""). */
int runtime_record_format(const RuntimeRecord *rec, char **ret);

/* 1 and *ret filled (possibly empty when unreadable) if denied, 0 if not, <0 on bad input. */
int runtime_deny_lookup(const char *runtime_dir, const char *uuid, RuntimeRecord *ret);
int runtime_deny_add(const char *runtime_dir, const char *uuid, const RuntimeRecord *rec);
int runtime_deny_remove(const char *runtime_dir, const char *uuid);

/*
 * arriving/<uuid>: an incoming migration of the instance passed "migrate begin" on this node.
 * Its "prepare begin" is then not refused for the deny list: the instance is owned elsewhere
 * until the migration succeeds, when the source moves the record here. Removed when the
 * domain stops or is released here ("stopped end", "release end").
 */
int runtime_arriving_add(const char *runtime_dir, const char *uuid);
/* 1 and the time it was written (usec, realtime; ret_since may be NULL), 0, or < 0. */
int runtime_arriving_lookup(const char *runtime_dir, const char *uuid, uint64_t *ret_since);
int runtime_arriving_remove(const char *runtime_dir, const char *uuid);

/*
 * deferred/<uuid>: the hook refused to start the instance because the store had not been
 * read since this boot (node/synced absent). Once it is, hostwardend starts the instances
 * that are this node's and set to autostart (libvirt does not retry an autostart).
 */
int runtime_deferred_add(const char *runtime_dir, const char *uuid);
/* The UUIDs in deferred/ (*ret NULL when none). */
int runtime_deferred_list(const char *runtime_dir, char ***ret);
int runtime_deferred_remove(const char *runtime_dir, const char *uuid);
/* The UUIDs in arriving/ with the time each was written (usec realtime), for clean-up. */
int runtime_arriving_list(const char *runtime_dir, char ***ret_uuids, uint64_t **ret_since);

/*
 * Notes of work under way that a restarted hostwardend takes up, one file per instance:
 *   cold/<uuid>     a cold migration's copy (dbus/cold-note.h says what it holds)
 *   rebuild/<uuid>  a rebuild that claimed the instance's record (dbus/rebuild-note.h)
 * Lookup: 1 and *ret (possibly empty when unreadable), 0 when there is none.
 */
typedef enum RuntimeNote {
        RUNTIME_NOTE_COLD,
        RUNTIME_NOTE_REBUILD,
        _RUNTIME_NOTE_MAX,
} RuntimeNote;

int runtime_note_lookup(const char *runtime_dir, RuntimeNote kind, const char *uuid,
                        RuntimeRecord *ret);
int runtime_note_write(const char *runtime_dir, RuntimeNote kind, const char *uuid,
                       const RuntimeRecord *rec);
int runtime_note_remove(const char *runtime_dir, RuntimeNote kind, const char *uuid);
int runtime_note_list(const char *runtime_dir, RuntimeNote kind, char ***ret);
/* A note with what every kind holds: pid (the hostwardend that wrote it, > 0) and a node name
 * under node_key. 1 and *ret, *ret_pid, *ret_node (pointing into *ret), 0 when there is none,
 * -EBADMSG when those two do not parse. */
int runtime_note_load(const char *runtime_dir, RuntimeNote kind, const char *uuid,
                      const char *node_key, RuntimeRecord *ret, pid_t *ret_pid,
                      const char **ret_node);

int runtime_marker_lookup(const char *runtime_dir, NodeMarker m, RuntimeRecord *ret);
int runtime_marker_set(const char *runtime_dir, NodeMarker m, const RuntimeRecord *rec);
int runtime_marker_clear(const char *runtime_dir, NodeMarker m);
