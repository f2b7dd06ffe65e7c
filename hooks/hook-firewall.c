/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration window (DESIGN.md §5, §6; docs/firewall.md). "migrate begin" records the
 * incoming migration in <runtime>/incoming/<uuid> and opens the window: the migration ports
 * accept the configured migration sources for [firewall] open_window. "started begin" marks
 * it started: QEMU runs here, but the source connects its streams only after that, and
 * with block migration the memory stream only once every disk is copied, which can take
 * any time. So the window stays; hostwardend (window-keeper.c) keeps it open while the
 * migration runs and closes it when the migration ends. "stopped end" and "release end"
 * (the migration failed, or the domain went away) remove the record, and the last one out
 * closes the window; a migration libvirt refuses before it has the domain runs neither,
 * and the keeper drops its record once libvirt has had time to create the domain. The
 * kernel drops each window element after open_window by itself, so a crash or a lost event
 * can never leave the ports open longer than that.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "fw-window.h"
#include "hook.h"
#include "log.h"
#include "util.h"

int hook_window_open(HookContext *ctx)
{
        _cleanup_close_ int lock = -EBADF;
        const DomIdentity *id;
        int r;

        if (!fw_window_active(ctx->config))
                return 0;
        id = hook_identity(ctx);
        lock = fw_window_lock(ctx->runtime_dir);
        if (lock < 0)
                return log_error_errno(lock, "Cannot lock %s: %m", ctx->runtime_dir);

        if (id) {
                r = fw_incoming_mark(ctx->runtime_dir, id->uuid, "begun");
                if (r < 0)
                        log_warning_errno(r, "Cannot record the incoming migration: %m");
        }

        r = fw_window_apply(ctx->config, ctx->runtime_dir, FW_WINDOW_OPEN);
        if (r < 0)
                return log_fields(LOG_ERR, r,
                                  LOG_FIELDS({ "HOSTWARDEN_DOMAIN", id ? id->uuid : NULL }),
                                  "Failed to open the migration window for '%s': %m; the "
                                  "migration fails if the migration ports are dropped",
                                  ctx->domain);
        log_fields(LOG_INFO, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_WINDOW },
                              { "HOSTWARDEN_DOMAIN", id ? id->uuid : NULL },
                              { "HOSTWARDEN_WINDOW", "open" }),
                   "Migration window open for the incoming migration of '%s': ports %u-%u "
                   "accept the migration sources for %llus, kept open by hostwardend while "
                   "the migration runs",
                   ctx->domain, ctx->config->migration.port_min, ctx->config->migration.port_max,
                   (unsigned long long)(ctx->config->firewall.open_window / USEC_PER_SEC));
        return 0;
}

/* Is uuid's incoming migration recorded? A cheap test first: most starts and stops are not
 * part of an incoming migration. */
static const DomIdentity *incoming_identity(HookContext *ctx)
{
        const DomIdentity *id;
        char path[4096];

        if (!fw_window_active(ctx->config))
                return NULL;
        id = hook_identity(ctx);
        if (!id || snprintf(path, sizeof(path), "%s/incoming/%s", ctx->runtime_dir, id->uuid) >=
                           (int)sizeof(path))
                return NULL;
        return access(path, F_OK) == 0 ? id : NULL;
}

/* The window's lock, for an incoming migration's event (or <0: not one, or no lock). */
static int lock_incoming(HookContext *ctx, const DomIdentity **ret_id)
{
        int lock;

        *ret_id = incoming_identity(ctx);
        if (!*ret_id)
                return -ENOENT;
        lock = fw_window_lock(ctx->runtime_dir);
        if (lock < 0)
                log_error_errno(lock, "Cannot lock %s: %m", ctx->runtime_dir);
        return lock;
}

/* "started begin": QEMU runs here. The record says so (the keeper then asks libvirt whether
 * the migration still runs); the window stays as it is. */
int hook_window_started(HookContext *ctx)
{
        const DomIdentity *id;
        _cleanup_close_ int lock = lock_incoming(ctx, &id);
        int r;

        if (lock < 0)
                return HOOK_CONTINUE;
        r = fw_incoming_mark(ctx->runtime_dir, id->uuid, "started");
        if (r < 0)
                log_warning_errno(r, "Cannot mark the incoming migration of '%s' started: %m",
                                  ctx->domain);
        return HOOK_CONTINUE;
}

/* "stopped end", "release end": the domain is gone here (the migration failed, or it
 * ended long ago); the last incoming migration out closes the window. */
int hook_window_release(HookContext *ctx)
{
        _cleanup_free_ FwIncoming *left = NULL;
        const DomIdentity *id;
        _cleanup_close_ int lock = lock_incoming(ctx, &id);
        size_t n_left = 0;
        int r;

        if (lock < 0)
                return HOOK_CONTINUE;
        r = fw_incoming_drop(ctx->runtime_dir, id->uuid);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Cannot remove the incoming record of '%s': %m", ctx->domain);
        (void)fw_incoming_list(ctx->config, ctx->runtime_dir, &left, &n_left);
        if (n_left > 0) {
                log_debug("%zu incoming migration(s) remain: the window stays open", n_left);
                return HOOK_CONTINUE;
        }
        r = fw_window_apply(ctx->config, ctx->runtime_dir, FW_WINDOW_CLOSE);
        if (r < 0)
                log_error_errno(r,
                                "Failed to close the migration window after '%s': %m; it "
                                "closes by itself within [firewall] open_window",
                                ctx->domain);
        else
                log_fields(LOG_INFO, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_WINDOW },
                                      { "HOSTWARDEN_DOMAIN", id->uuid },
                                      { "HOSTWARDEN_WINDOW", "closed" }),
                           "Migration window closed: no incoming migration remains "
                           "(%s %s of '%s')",
                           ctx->op, ctx->subop, ctx->domain);
        return HOOK_CONTINUE;
}
