/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * [console] tls_min_version and tls_ciphers on the running guests' VNC consoles. QEMU takes a
 * TLS priority per credentials object and uses it for every new session, but libvirt 9.0
 * (Debian 12) has no setting that passes one (qemu.conf's vnc_tls_priority came later): so
 * hostwardend sets it through QEMU's monitor (qom-set) on every guest whose console has TLS
 * credentials, when it starts or arrives by migration (a domain lifecycle event, which makes a
 * reconciliation pass too), and on the guests already running when hostwardend starts.
 * Once per guest and QEMU process; libvirt marks the domain "custom-monitor" for it.
 */

/* Starts a pass (a worker) unless one runs; then one more after it. Nothing when consoles
 * have no TLS or the default priority. */
void console_priority_kick(Manager *m);
/* At shutdown, before the jobs are drained: a pass that ends then starts no other. */
void console_priority_free(Manager *m);

/* How many running guests' consoles hostwardend has set the priority on (CheckNode). */
size_t console_priority_count(Manager *m);
