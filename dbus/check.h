/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"
#include "migcheck.h"

/*
 * CheckNode(): most of what it looks at may block (name lookups, netlink, statfs and reads
 * on the shared storage, systemd over D-Bus), so it runs in a worker thread: check_new()
 * copies in the event loop what the checks need of the Manager (the configuration may be
 * reloaded meanwhile, the store is not the thread's), check_gather() looks in the thread
 * and has lib/nodecheck.h judge what it saw; check_result() hands the findings to the event
 * loop, where node-dbus.c answers with them.
 */
typedef struct NodeCheck NodeCheck;

/* NULL: out of memory. */
NodeCheck *check_new(Manager *m);
NodeCheck *check_free(NodeCheck *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeCheck *, check_free);
DEFINE_VOID_FREE_FUNC(NodeCheck, check_free);
void check_gather(NodeCheck *c);
/* The findings (they belong to c), or < 0 when gathering failed. */
int check_result(const NodeCheck *c, const MigFindings **ret);
