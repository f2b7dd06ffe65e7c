/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * "restore begin": a domain restored from a save image may have been saved on another
 * node; its console gets this node's listen address, as for an incoming migration.
 */
#include "hook.h"

int hook_restore_begin(HookContext *ctx)
{
        return hook_rewrite_listen(ctx);
}
