/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * Crashed guests restarted here (issue 22 item 2, docs/recovery-restart.md): with [recovery]
 * enable = yes, a guest whose HA mode is restart and whose QEMU died on this live node
 * (libvirt's event: stopped, failed or crashed; never a shutdown, destroy, migration or save)
 * is started again here after a back-off, up to [recovery] max_restart times in
 * HA_RESTART_WINDOW (lib/ha-restart-plan.h); past that it is left shut off, with a journal
 * message and a history record. Each restart is in the journal (HW_MESSAGE_HA_RESTART) and
 * the history (kind "restart").
 */

int ha_restart_setup(Manager *m);
void ha_restart_free(Manager *m);
