/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * "migrate begin": run on the destination when an incoming migration starts. libvirt uses
 * what we print on stdout as the domain XML (the original when we print nothing), so this
 * is where a console bound to the source's address is moved to one that exists here, and
 * where the migration ports open for the sources (hook-firewall.c).
 */
#include "hook.h"
#include "log.h"
#include "runtime.h"

int hook_migrate_begin(HookContext *ctx)
{
        const DomIdentity *id;
        int r;

        r = hook_check_node_markers(ctx, "receive");
        if (r != HOOK_CONTINUE)
                return r;

        if (ctx->config && ctx->config->hook.refuse_incoming_when_disabled) {
                RuntimeRecord rec = { NULL };

                if (runtime_marker_lookup(ctx->runtime_dir, NODE_MARKER_DISABLED, &rec) > 0) {
                        const char *reason = runtime_record_get(&rec, "reason");
                        r = hook_refuse(ctx, "disabled",
                                        "refusing incoming migration of '%s': node '%s' is "
                                        "disabled (%s) and [hook] refuse_incoming_when_disabled "
                                        "is set; enable the node or pick another destination",
                                        ctx->domain, ctx->config->node.name,
                                        reason ? reason : "no reason given");
                        runtime_record_done(&rec);
                        return r;
                }
        }

        r = hook_rewrite_listen(ctx);
        if (r != HOOK_CONTINUE)
                return r;
        /* "prepare begin" comes next: the deny list does not apply to an arriving migration
         * (the instance is owned elsewhere until it succeeds) */
        id = hook_identity(ctx);
        if (id) {
                r = runtime_arriving_add(ctx->runtime_dir, id->uuid);
                if (r < 0)
                        log_warning_errno(r, "Cannot record the arriving migration of %s: %m",
                                          id->uuid);
        }
        /* a window that cannot open is logged, not a refusal: without our table's drop the
         * migration still works, and with it the error says why it did not */
        (void)hook_window_open(ctx);
        return HOOK_CONTINUE;
}
