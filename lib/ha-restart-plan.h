/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What hostwardend does when a guest's QEMU crashed on this live node (issue 22 item 2,
 * docs/recovery-restart.md): restart it here up to [recovery] max_restart times in
 * HA_RESTART_WINDOW, then move it to another node up to max_relocate times in the window,
 * then leave it shut off and say so. Pure: the daemon (dbus/ha-restart.c) keeps the times.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "macro.h"

/* A guest that crashes more often than max_restart times an hour has a fault a restart does
 * not cure; an hour also outlasts any back-off below. */
#define HA_RESTART_WINDOW (60 * 60 * USEC_PER_SEC)
/* The first restart waits this long, each further one in the window twice as long as the
 * one before, up to HA_RESTART_BACKOFF_MAX: libvirt has cleaned up, and a guest that dies at
 * once is not restarted in a tight loop. */
#define HA_RESTART_BACKOFF     (2 * USEC_PER_SEC)
#define HA_RESTART_BACKOFF_MAX (60 * USEC_PER_SEC)
/* At most this many times are kept per instance (more than max_restart is never needed). */
#define HA_RESTART_TIMES_MAX 64

typedef enum HaCrashAction {
        HA_CRASH_IGNORE,   /* recovery off, or the guest's mode is off: it stays shut off */
        HA_CRASH_RESTART,  /* started again here after ha_restart_backoff() */
        HA_CRASH_RELOCATE, /* max_restart reached: moved to another node */
        HA_CRASH_GIVE_UP,  /* max_relocate reached too: left shut off, reported */
        _HA_CRASH_ACTION_MAX,
        _HA_CRASH_ACTION_INVALID = -EINVAL,
} HaCrashAction;

const char *ha_crash_action_to_string(HaCrashAction a);

/* The times (usec, CLOCK_MONOTONIC or any one clock) of a guest's restarts and relocations. */
typedef struct HaCrashTimes {
        uint64_t restarts[HA_RESTART_TIMES_MAX];
        size_t n_restarts;
        uint64_t relocations[HA_RESTART_TIMES_MAX];
        size_t n_relocations;
} HaCrashTimes;

/* How many of times[0..n) lie in the window that ends at now. */
size_t ha_times_in_window(const uint64_t *times, size_t n, uint64_t now, uint64_t window);

/* A crash at now: what to do, given recovery enabled, the guest's mode and its times. */
HaCrashAction ha_crash_plan(bool enabled, HaMode mode, const HaCrashTimes *t, uint64_t now,
                            unsigned max_restart, unsigned max_relocate);

/* How long to wait before the next restart, given the times (restarts in the window). */
uint64_t ha_restart_backoff(const HaCrashTimes *t, uint64_t now);

/* Notes a restart (or relocation) at now, dropping times outside the window first. */
void ha_times_note(uint64_t *times, size_t *n, uint64_t now, uint64_t window);
