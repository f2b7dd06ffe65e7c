/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * "prepare begin": the last word before libvirt starts QEMU for a domain (a start, an
 * autostart, or the destination side of an incoming migration). Split-brain protection:
 * an instance that was evacuated to another node must never start here again, or two
 * QEMUs would write the same disk on shared storage.
 */
#include <string.h>

#include "hook.h"
#include "runtime.h"
#include "util.h"

int hook_prepare_begin(HookContext *ctx)
{
        const DomIdentity *id;
        RuntimeRecord rec = { NULL };
        int r;

        r = hook_check_node_markers(ctx, "start");
        if (r != HOOK_CONTINUE)
                return r;
        id = hook_identity(ctx);
        if (!id)
                return HOOK_CONTINUE; /* no UUID to look up; libvirt will reject such XML */

        r = runtime_deny_lookup(ctx->runtime_dir, id->uuid, &rec);
        if (r <= 0)
                return HOOK_CONTINUE;
        if (runtime_arriving_lookup(ctx->runtime_dir, id->uuid, NULL) > 0) {
                /* the destination side of a live migration the owner started */
                runtime_record_done(&rec);
                return HOOK_CONTINUE;
        }

        const char *owner = runtime_record_get(&rec, "owner");
        const char *since = runtime_record_get(&rec, "since");
        r = hook_refuse(
                ctx, "evacuated",
                "refusing to start domain '%s' (%s) on node '%s': it was evacuated to "
                "node '%s' at %s and runs there; this copy is stale and must not start "
                "(its disks belong to the instance on '%s'). Remove it here with "
                "'virsh undefine %s'.",
                ctx->domain, id->uuid,
                ctx->config && ctx->config->node.name ? ctx->config->node.name : "this node",
                isempty(owner) ? "unknown" : owner, isempty(since) ? "an unknown time" : since,
                isempty(owner) ? "unknown" : owner, ctx->domain);
        runtime_record_done(&rec);
        return r;
}
