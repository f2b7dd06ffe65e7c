/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "log.h"
#include "runtime.h"
#include "util.h"

static const char *node_name(const HookContext *ctx)
{
        return ctx->config && ctx->config->node.name ? ctx->config->node.name : "this node";
}

DomXml *hook_parse_domain(HookContext *ctx)
{
        _cleanup_free_ char *error = NULL;
        DomXml *d = NULL;
        int r;

        r = domxml_parse(ctx->input, ctx->input_size, &d, &error);
        if (r < 0) {
                log_fields(LOG_ERR, r, LOG_FIELDS({ "HOSTWARDEN_DOMAIN", ctx->domain }),
                           "%s %s for domain '%s': cannot read the domain XML: %s", ctx->op,
                           ctx->subop, ctx->domain, error ? error : strerror(-r));
                return NULL;
        }
        return d;
}

int hook_refuse(HookContext *ctx, const DomXml *d, const char *reason, const char *format, ...)
{
        char message[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        /* libvirt puts the hook's stderr into the error the operator sees. */
        fprintf(ctx->err, "hostwarden: %s\n", message);
        fflush(ctx->err);
        log_fields(LOG_WARNING, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_REFUSED },
                              { "HOSTWARDEN_DOMAIN", d ? d->uuid : NULL },
                              { "HOSTWARDEN_DOMAIN_NAME", ctx->domain },
                              { "HOSTWARDEN_REASON", reason }, { "HOSTWARDEN_OP", ctx->op }),
                   "%s", message);
        return HOOK_REFUSE;
}

static const char *get_or(const RuntimeRecord *rec, const char *key, const char *fallback)
{
        const char *v = runtime_record_get(rec, key);
        return isempty(v) ? fallback : v;
}

int hook_check_node_markers(HookContext *ctx, const DomXml *d, const char *what)
{
        static const struct {
                NodeMarker marker;
                const char *state;
        } checks[] = {
                { NODE_MARKER_FENCED, "fenced" },
                { NODE_MARKER_FORCED_DOWN, "forced down" },
        };

        for (size_t i = 0; i < ELEMENTSOF(checks); i++) {
                RuntimeRecord rec = { NULL };
                int r;

                r = runtime_marker_lookup(ctx->runtime_dir, checks[i].marker, &rec);
                if (r <= 0)
                        continue;
                r = hook_refuse(ctx, d, node_marker_to_string(checks[i].marker),
                                "refusing to %s domain '%s' on node '%s': this node is %s "
                                "(since %s, by %s); its instances may be running elsewhere. "
                                "hostwardend clears this once the node is reconciled.",
                                what, ctx->domain, node_name(ctx), checks[i].state,
                                get_or(&rec, "since", "an unknown time"),
                                get_or(&rec, "by", "unknown"));
                runtime_record_done(&rec);
                return r;
        }
        return HOOK_CONTINUE;
}

int hook_rewrite_listen(HookContext *ctx, DomXml *d)
{
        _cleanup_free_ char *text = NULL;
        unsigned changed = 0;
        size_t size;
        int r;

        if (!ctx->config)
                return HOOK_CONTINUE; /* broken configuration: already logged, keep as is */

        r = domxml_rewrite_listen(d, ctx->config->console.listen, ctx->config->node.address,
                                  &changed);
        if (r < 0) {
                log_error_errno(r, "Failed to rewrite the console listen address of '%s': %m",
                                ctx->domain);
                return HOOK_CONTINUE;
        }
        if (changed == 0)
                return HOOK_CONTINUE;

        r = domxml_format(d, &text, &size);
        if (r < 0) {
                log_error_errno(r, "Failed to format the domain XML of '%s': %m", ctx->domain);
                return HOOK_CONTINUE;
        }
        if (fwrite(text, 1, size, ctx->out) != size || fflush(ctx->out) != 0) {
                log_error_errno(errno, "Failed to hand the rewritten XML of '%s' to libvirt: %m",
                                ctx->domain);
                return HOOK_CONTINUE;
        }

        log_fields(LOG_INFO, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_LISTEN }, { "HOSTWARDEN_DOMAIN", d->uuid },
                              { "HOSTWARDEN_DOMAIN_NAME", ctx->domain },
                              { "HOSTWARDEN_OP", ctx->op }),
                   "%s: console of '%s' now listens on %s ([console] listen = %s, %u address%s "
                   "changed)",
                   ctx->op, ctx->domain,
                   d->n_graphics > 0 && d->graphics[0].listen ? d->graphics[0].listen : "?",
                   console_listen_to_string(ctx->config->console.listen), changed,
                   changed == 1 ? "" : "es");
        return HOOK_CONTINUE;
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
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(ctx->op, table[i].op) && streq(ctx->subop, table[i].subop))
                        return table[i].run(ctx);

        /* started, stopped, release, reconnect, attach...: nothing to do here yet. */
        return HOOK_CONTINUE;
}
