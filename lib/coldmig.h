/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/*
 * The pure parts of a cold migration (dbus/migration-cold.c; docs/migration.md "Cold
 * migration"): the steps an instance record remembers while the guest is between two nodes,
 * the list of copied files as the record holds it, the volume a copy is written into, and
 * when confirm_window confirms.
 */

/* Where a cold migration is, as its instance record says (key cold_state). */
typedef enum ColdState {
        COLD_LANDING,   /* the record moved; the copy is being defined and started there */
        COLD_VERIFY,    /* the guest is the destination's; the source keeps its copy */
        COLD_REVERTING, /* going back: the destination's copy is being removed */
        _COLD_STATE_MAX,
        _COLD_STATE_INVALID = -EINVAL,
} ColdState;

const char *cold_state_to_string(ColdState s);
ColdState cold_state_from_string(const char *s);

/*
 * The copied files as one record value: space-separated, with '%', blanks and control
 * characters written as %XX, so that any path fits on one "key=value" line. Parsing refuses
 * what formatting never writes (-EINVAL): a relative path, a bad escape, an empty list.
 */
int cold_paths_format(char *const *paths, char **ret);
int cold_paths_parse(const char *text, char ***ret);

/*
 * The <volume> of a copy on the destination: name, the source file's length in bytes, a
 * sparse raw file (allocation 0: the upload's holes stay holes and read as zeros; what the
 * image is, qcow2 or raw, is in its bytes), with the permissions element of the source
 * volume's XML when it has one (owner, group, mode: the file as it was). NULL on ENOMEM or
 * a name that is not a plain file name.
 */
char *cold_volume_xml(const char *name, uint64_t length, const char *source_volume_xml);

/* Is a cold migration that entered verify at verify_since (usec realtime) due to be confirmed
 * at now by confirm_window window (0 = never)? When not, *ret_left (may be NULL) is how long
 * until it is (UINT64_MAX with window 0). */
bool cold_confirm_due(uint64_t verify_since, usec_t window, uint64_t now, usec_t *ret_left);
