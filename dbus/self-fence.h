/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

#define SELF_FENCE_MARKER "self-fence" /* in the runtime directory (docs/runtime-dir.md) */

/*
 * Fencing without a BMC, this node's side (issue 22, docs/recovery-self-fence.md).
 *
 * With [recovery] enable = yes and self_fence = yes, every heartbeat declares
 * self_fence_after in this node's record (self_fence_declared(), lib/self-fence-plan.h).
 * Once one such heartbeat got through, a thread of its own (so that a store call that
 * hangs in the event loop cannot delay it) watches the time since the last one that got
 * through: at self_fence_after it destroys every running guest and powers the node off
 * (reboot(RB_POWER_OFF) after a bounded sync). Where the machine has a watchdog device, the
 * thread pets it while armed and stops at fence time, so a node whose hostwardend or kernel
 * hangs is reset within SELF_FENCE_WATCHDOG_USEC after that.
 */

/* The heartbeat's result (r < 0: it did not get through), from the heartbeat callback right
 * after the write that carried self_fence_declared(m->config) (dbus/store-attach.c). Arms
 * self-fencing on a success that declared it, disarms it on one that declared nothing. */
void self_fence_heartbeat_result(Manager *m, int r);

/* At start, before the store is read: a hostwardend that stopped without withdrawing its
 * declaration (a crash, SIGKILL) left the facts in the runtime directory; they are kept as if
 * this one had made them, so the node still fences itself at that time unless a heartbeat
 * gets through first. */
void self_fence_resume(Manager *m);

/* At exit: withdraws the declaration from the store (self_fence_after = 0) before the
 * watchdog is disarmed; while that does not get through, self-fencing stays armed (and
 * fences at its time): the peers may already count on it. */
void self_fence_free(Manager *m);
