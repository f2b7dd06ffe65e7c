/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "store.h"
#include "util.h"

/*
 * Fence agents (fence-agents' protocol, as pacemaker's stonith and Nova's operators use them):
 * the agent gets its options on stdin, one "key=value" line each, "action=status|off|on"
 * among them. The exit status is the answer: for status 0 = on, 2 = off, anything else an
 * error; for off and on 0 = done. The options hold the BMC's password: nothing here logs
 * them, and agent output meant for a log goes through fence_scrub() first.
 */

typedef enum FenceAction {
        FENCE_ACTION_STATUS,
        FENCE_ACTION_OFF,
        FENCE_ACTION_ON,
        _FENCE_ACTION_MAX,
        _FENCE_ACTION_INVALID = -EINVAL,
} FenceAction;

const char *fence_action_to_string(FenceAction a);
FenceAction fence_action_from_string(const char *s);

/* The agent's executable: an absolute path as is, a name looked up in the sbin and bin
 * directories. -ENOENT when there is no executable of that name. */
int fence_agent_path(const char *agent, char **ret);

/* The agent's stdin: options (key=value lines, may be NULL) without any "action" line of
 * their own, then "action=ACTION". */
int fence_agent_input(const char *options, FenceAction action, char **ret);

/*
 * Scrubbing (lib/fence-scrub.c): a copy of text in which no masked value of the options is
 * left, nor any part of one. Masked are the value of every option whose name says secret
 * (fence_option_is_secret(): pass, secret, community, token, key...), whatever its length,
 * and every other value of FENCE_SCRUB_MIN_VALUE characters or more. Every occurrence of a
 * masked value, literal or escaped as an agent may echo it (\x, '\'' and '"'"'), and the word
 * after a password flag (-p, -P, --password, --passwd, password=, passwd:...) is marked in
 * the original text; each run of marked bytes becomes three of fence_scrub_mask_char(): the
 * first of * # ~ ^ % (else of the printable ASCII characters) that no masked value holds, so
 * that the text left between masks is the agent's own. When every printable character is in
 * some masked value, the result is "". NULL when out of memory.
 */
#define FENCE_SCRUB_MIN_VALUE 3
bool fence_option_is_secret(const char *key, size_t n);
char fence_scrub_mask_char(const char *options);
char *fence_scrub(const char *text, const char *options);

typedef struct FenceRun {
        int status;     /* exit status, or 128 + signal number, or -1 after a timeout */
        bool timed_out; /* killed after the timeout */
        char *output;   /* stdout and stderr, at most 64 KiB, unscrubbed */
} FenceRun;

void fence_run_done(FenceRun *r);

/* Runs the agent at path with input on stdin (no arguments), reading its output, SIGKILLing
 * it after timeout. The child gets an empty signal mask and default dispositions. */
int fence_run(const char *path, const char *input, usec_t timeout, FenceRun *ret);

/* What the run says: the node's power state after it (FENCE_ON or FENCE_OFF), or -EIO when the
 * agent failed (or, for status, answered something that is neither). */
int fence_result(FenceAction action, const FenceRun *run, FenceState *ret);
