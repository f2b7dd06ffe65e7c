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
 * and has lib/nodecheck.h judge what it saw, check_append() answers in the event loop.
 */
typedef struct NodeCheck NodeCheck;

int check_new(Manager *m, NodeCheck **ret);
NodeCheck *check_free(NodeCheck *c);
void check_gather(NodeCheck *c);
/* Appends findings as a(sss) (severity, code, message): CheckNode's and CheckMigration's. */
int findings_append(sd_bus_message *reply, const MigFindings *f);
/* Appends the a(sss) findings to reply; < 0 when gathering or appending failed. */
int check_append(NodeCheck *c, sd_bus_message *reply);
