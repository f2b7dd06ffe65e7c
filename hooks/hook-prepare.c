/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * "prepare begin": the last word before libvirt starts QEMU for a domain (a start, an
 * autostart, or the destination side of an incoming migration). Split-brain protection:
 * an instance that was evacuated to another node must never start here again, or two
 * QEMUs would write the same disk on shared storage.
 */
#include <string.h>

#include "hook.h"
#include "log.h"
#include "runtime.h"
#include "util.h"

/* The destination side of a live migration whose "migrate begin" passed here, and recently
 * enough to be still arriving: a marker left by a migration that never came (refused, or
 * its source died before "prepare") must not let a denied instance start for good. */
static bool arriving(HookContext *ctx, const char *uuid)
{
        uint64_t since = 0, now = now_realtime();

        if (runtime_arriving_lookup(ctx->runtime_dir, uuid, &since) <= 0)
                return false;
        /* a broken configuration knows no window: fail closed */
        return ctx->config && since <= now && now - since <= ctx->config->firewall.open_window;
}

/* Until hostwardend has read the cluster's store since this boot, the deny list may be
 * missing what was evacuated from here while this node was away: nothing starts, except
 * an incoming migration (its source stops its copy) or what an operator allowed. */
static int check_synced(HookContext *ctx, const DomIdentity *id)
{
        RuntimeRecord rec = { NULL };
        int r;

        if (runtime_marker_lookup(ctx->runtime_dir, NODE_MARKER_SYNCED, NULL) > 0)
                return HOOK_CONTINUE;
        if (runtime_marker_lookup(ctx->runtime_dir, NODE_MARKER_ALLOW_UNSYNCED, &rec) > 0) {
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_UNSYNCED_START },
                                      { "HOSTWARDEN_DOMAIN", id ? id->uuid : NULL }),
                           "Starting domain '%s' although hostwardend has not read the cluster "
                           "store since this node booted: allowed by %s at %s (%s)",
                           ctx->domain, strna(runtime_record_get(&rec, "by")),
                           strna(runtime_record_get(&rec, "since")),
                           strna(runtime_record_get(&rec, "reason")));
                runtime_record_done(&rec);
                return HOOK_CONTINUE;
        }
        if (id) {
                r = runtime_deferred_add(ctx->runtime_dir, id->uuid);
                if (r < 0)
                        log_warning_errno(r, "Cannot remember the deferred start of %s: %m",
                                          id->uuid);
        }
        return hook_refuse(
                ctx, "unsynced",
                "refusing to start domain '%s' on node '%s': hostwardend has not read the "
                "cluster store since this node booted, so it cannot tell whether the instance "
                "was evacuated to another node and runs there. 'hostwardenctl status' says "
                "why (shared storage not mounted, etcd unreachable, no cluster initialized); "
                "an autostart is carried out once the store is read. If you know that no "
                "other node runs it: 'hostwardenctl allow-unsynced-starts --reason TEXT'.",
                ctx->domain,
                ctx->config && ctx->config->node.name ? ctx->config->node.name : "this node");
}

/* The refusal says what the record says, and nothing more: an instance recorded elsewhere
 * was not necessarily evacuated (a migration hostwarden did not make, a save here and a
 * restore there, moves its record within seconds). */
static int refuse_denied(HookContext *ctx, const DomIdentity *id, const RuntimeRecord *rec)
{
        const char *owner = runtime_record_get(rec, "owner");
        const char *since = runtime_record_get(rec, "since");
        const char *from = runtime_record_get(rec, "evacuated_from");
        const char *here =
                ctx->config && ctx->config->node.name ? ctx->config->node.name : "this node";

        owner = isempty(owner) ? "unknown" : owner;
        since = isempty(since) ? "an unknown time" : since;
        if (runtime_record_get(rec, "deleted"))
                return hook_refuse(ctx, "deleted",
                                   "refusing to start domain '%s' (%s) on node '%s': the instance "
                                   "was deleted (seen on node '%s' at %s) after it was evacuated "
                                   "from here; this copy is stale. Remove it with 'virsh "
                                   "undefine %s'.",
                                   ctx->domain, id->uuid, here, owner, since, ctx->domain);
        if (!isempty(from))
                return hook_refuse(ctx, "evacuated",
                                   "refusing to start domain '%s' (%s) on node '%s': it was "
                                   "evacuated to node '%s' at %s and runs there; this copy is "
                                   "stale and must not start (its disks belong to the instance "
                                   "on '%s'). Remove it here with 'virsh undefine %s'.",
                                   ctx->domain, id->uuid, here, owner, since, owner, ctx->domain);
        return hook_refuse(ctx, "owned-elsewhere",
                           "refusing to start domain '%s' (%s) on node '%s': the cluster store "
                           "records it as node '%s''s (since %s), so it may run there. If it "
                           "moved here by other means (a migration, a restore), node '%s' hands "
                           "the record over within seconds once it sees the instance gone: try "
                           "again then; 'hostwardenctl instances' shows the record.",
                           ctx->domain, id->uuid, here, owner, since, owner);
}

int hook_prepare_begin(HookContext *ctx)
{
        const DomIdentity *id;
        RuntimeRecord rec = { NULL };
        bool incoming;
        int r;

        r = hook_check_node_markers(ctx, "start");
        if (r != HOOK_CONTINUE)
                return r;
        id = hook_identity(ctx);
        incoming = id && arriving(ctx, id->uuid);
        if (!incoming) {
                r = check_synced(ctx, id);
                if (r != HOOK_CONTINUE)
                        return r;
        }
        if (!id)
                return HOOK_CONTINUE; /* no UUID to look up; libvirt will reject such XML */

        r = runtime_deny_lookup(ctx->runtime_dir, id->uuid, &rec);
        if (r <= 0)
                return HOOK_CONTINUE;
        if (incoming) {
                /* the destination side of a live migration the owner started */
                runtime_record_done(&rec);
                return HOOK_CONTINUE;
        }

        r = refuse_denied(ctx, id, &rec);
        runtime_record_done(&rec);
        return r;
}
