/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * The migration window while an incoming migration runs here (docs/firewall.md). The hook
 * opens it at "migrate begin" for [firewall] open_window, but cannot see the end of the
 * migration (libvirt runs no hook then), nor when the source connects its streams: with
 * block migration the memory stream connects only after every disk is copied, minutes
 * later. So hostwardend asks libvirt, periodically and on every domain event, whether each
 * recorded incoming migration still runs: while one does, the window is opened again (a
 * fresh open_window); once none remains, it is closed.
 */

int window_keeper_setup(Manager *m);
void window_keeper_free(Manager *m);
/* A domain event came: an incoming migration may have ended. */
void window_keeper_kick(Manager *m);
