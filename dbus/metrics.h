/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "manager.h"

/*
 * Prometheus metrics (docs/metrics.md): hostwardend counts what ended here and writes the
 * numbers to node_exporter's textfile ([metrics] textfile), every [metrics] interval and a
 * second after each outcome. No socket of its own: node_exporter serves the file with its
 * own web configuration (TLS, authentication).
 *
 * The capability files tell this file what happened at one place each: history.c for every
 * ended operation (the history record holds kind, mode, result, times, downtime and bytes),
 * migration-queue.c for a migration's start, store-attach.c for the heartbeat's write and the
 * node listing it reads. The hook's refusals are read from the runtime directory
 * (lib/refusals.h).
 */

/* Starts the timer (from manager_startup()); the keys are read again at every write, so a
 * Reload takes effect at the next one. */
int metrics_setup(Manager *m);
void metrics_free(Manager *m);

/* history.c: an operation ended with this record (whether or not the store took it). */
void metrics_operation_ended(Manager *m, const HistoryRecord *h);
/* migration-queue.c: a migration of mode ("live", "block", "cold") left the queue. */
void metrics_migration_started(Manager *m, const char *mode);
/* store-attach.c: the heartbeat's write returned r after usec µs. */
void metrics_heartbeat_written(Manager *m, int r, uint64_t usec);
/* store-attach.c: the nodes as the heartbeat listed them, judged at now (CLOCK_MONOTONIC). */
void metrics_nodes_listed(Manager *m, const NodeRecord *nodes, size_t n, uint64_t now);
