/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * Crashed guests restarted here (issue 22 item 2, docs/recovery-restart.md): with [recovery]
 * enable = yes, a guest whose HA mode is restart and whose QEMU died on this live node
 * (libvirt's event: stopped, failed or crashed; never a shutdown, destroy, migration or save)
 * is started again here after a back-off, up to [recovery] max_restart times in
 * HA_RESTART_WINDOW (lib/ha-restart-plan.h); past that it is moved to another node
 * (ha-relocate.h) up to max_relocate times in the window, and past that left shut off. Each
 * step is in the journal (HW_MESSAGE_HA_RESTART, _RELOCATE, _GIVE_UP) and the history (kind
 * "restart").
 */

int ha_restart_setup(Manager *m);
void ha_restart_free(Manager *m);
