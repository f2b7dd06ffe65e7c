/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "log.h"
#include "refusals.h"
#include "runtime.h"
#include "util.h"

static const char *node_name(const HookContext *ctx)
{
        return ctx->config && ctx->config->node.name ? ctx->config->node.name : "this node";
}

void hook_context_done(HookContext *ctx)
{
        dom_identity_done(&ctx->identity);
        ctx->identity_read = false;
}

static void log_unreadable(HookContext *ctx, int r, const char *error)
{
        log_fields(LOG_ERR, r, LOG_FIELDS({ "HOSTWARDEN_DOMAIN_NAME", ctx->domain }),
                   "%s %s for domain '%s': cannot read the domain XML: %s", ctx->op, ctx->subop,
                   ctx->domain, error ? error : strerror(-r));
}

const DomIdentity *hook_identity(HookContext *ctx)
{
        _cleanup_free_ char *error = NULL;
        int r;

        if (ctx->identity_read)
                return ctx->identity.uuid ? &ctx->identity : NULL;
        ctx->identity_read = true;
        r = domxml_peek_identity(ctx->input, ctx->input_size, &ctx->identity, &error);
        if (r < 0) {
                log_unreadable(ctx, r, error);
                return NULL;
        }
        return &ctx->identity;
}

int hook_refuse(HookContext *ctx, const char *reason, const char *format, ...)
{
        const DomIdentity *id = hook_identity(ctx);
        char message[1024];
        va_list ap;
        int r;

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        /* libvirt puts the hook's stderr into the error the operator sees. */
        fprintf(ctx->err, "hostwarden: %s\n", message);
        fflush(ctx->err);
        log_fields(LOG_WARNING, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_REFUSED },
                              { "HOSTWARDEN_DOMAIN", id ? id->uuid : NULL },
                              { "HOSTWARDEN_DOMAIN_NAME", ctx->domain },
                              { "HOSTWARDEN_REASON", reason }, { "HOSTWARDEN_OP", ctx->op }),
                   "%s", message);
        /* for hostwardend's metrics; a count that cannot be kept never changes the answer */
        r = refusal_count_bump(ctx->runtime_dir, reason);
        if (r < 0)
                log_full_errno(LOG_DEBUG, r, "Cannot count the refusal (%s): %m", reason);
        return HOOK_REFUSE;
}

static const char *get_or(const RuntimeRecord *rec, const char *key, const char *fallback)
{
        const char *v = runtime_record_get(rec, key);
        return isempty(v) ? fallback : v;
}

int hook_check_node_markers(HookContext *ctx, const char *what)
{
        /* what takes the marker back: a peer's record of this node, never this node alone */
        static const struct {
                NodeMarker marker;
                const char *state;
                const char *clear_pre, *clear_post;
        } checks[] = {
                { NODE_MARKER_FENCED, "fenced", "once it is on, 'hostwardenctl fence ",
                  " status'" },
                { NODE_MARKER_FORCED_DOWN, "forced down", "'hostwardenctl force-up ", "'" },
        };

        for (size_t i = 0; i < ELEMENTSOF(checks); i++) {
                RuntimeRecord rec = { NULL };
                int r;

                r = runtime_marker_lookup(ctx->runtime_dir, checks[i].marker, &rec);
                if (r <= 0)
                        continue;
                r = hook_refuse(ctx, node_marker_to_string(checks[i].marker),
                                "refusing to %s domain '%s' on node '%s': this node is %s "
                                "(since %s, by %s); its instances may be running elsewhere. "
                                "%s%s%s run on a peer clears this.",
                                what, ctx->domain, node_name(ctx), checks[i].state,
                                get_or(&rec, "since", "an unknown time"),
                                get_or(&rec, "by", "unknown"), checks[i].clear_pre, node_name(ctx),
                                checks[i].clear_post);
                runtime_record_done(&rec);
                return r;
        }
        return HOOK_CONTINUE;
}

int hook_rewrite_listen(HookContext *ctx)
{
        _cleanup_free_ char *text = NULL, *error = NULL;
        unsigned changed = 0;
        size_t size = 0;
        int r;

        if (!ctx->config)
                return HOOK_CONTINUE; /* broken configuration: already logged, keep as is */

        dom_identity_done(&ctx->identity);
        r = domxml_rewrite_listen_text(ctx->input, ctx->input_size, ctx->config->console.listen,
                                       ctx->config->node.address, &ctx->identity, &text, &size,
                                       &changed, &error);
        ctx->identity_read = true;
        if (r < 0) {
                log_unreadable(ctx, r, error);
                return HOOK_CONTINUE;
        }
        if (changed == 0)
                return HOOK_CONTINUE;

        if (fwrite(text, 1, size, ctx->out) != size || fflush(ctx->out) != 0) {
                log_error_errno(errno, "Failed to hand the rewritten XML of '%s' to libvirt: %m",
                                ctx->domain);
                return HOOK_CONTINUE;
        }

        log_fields(LOG_INFO, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_LISTEN },
                              { "HOSTWARDEN_DOMAIN", ctx->identity.uuid },
                              { "HOSTWARDEN_DOMAIN_NAME", ctx->domain },
                              { "HOSTWARDEN_OP", ctx->op }),
                   "%s: console of '%s' moved to this node's listen address ([console] listen = "
                   "%s, %u address%s changed)",
                   ctx->op, ctx->domain, console_listen_to_string(ctx->config->console.listen),
                   changed, changed == 1 ? "" : "es");
        return HOOK_CONTINUE;
}

/* "stopped end", "release end": no migration arrives for this domain any more. */
static int hook_domain_gone(HookContext *ctx)
{
        const DomIdentity *id = hook_identity(ctx);

        if (id)
                (void)runtime_arriving_remove(ctx->runtime_dir, id->uuid);
        return hook_window_release(ctx);
}

int hook_dispatch(HookContext *ctx)
{
        static const struct {
                const char *op;
                const char *subop;
                int (*run)(HookContext *ctx);
        } table[] = {
                { "migrate", "begin", hook_migrate_begin },
                { "restore", "begin", hook_restore_begin },
                { "prepare", "begin", hook_prepare_begin },
                { "started", "begin", hook_window_started },
                { "stopped", "end", hook_domain_gone },
                { "release", "end", hook_domain_gone },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(ctx->op, table[i].op) && streq(ctx->subop, table[i].subop))
                        return table[i].run(ctx);

        /* start, reconnect, attach...: nothing to do here yet. */
        return HOOK_CONTINUE;
}
