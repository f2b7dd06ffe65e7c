/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration window (DESIGN.md §5, §6). "migrate begin" records the incoming migration
 * in <runtime>/incoming/<uuid> and opens the window: the migration ports accept the
 * configured migration sources for [firewall] open_window. "started begin" (the migration
 * completed), "stopped end" and "release end" (it failed) remove the record, and the last
 * one out closes the window. The kernel drops each window element after open_window by
 * itself, so a crash or a lost event can never leave the ports open longer.
 *
 * The hook replays batches hostwarden-firewall prepared (nft/fw-replay.h); when they are
 * missing or stale, or the table is gone, it runs hostwarden-firewall, which rebuilds them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fw-replay.h"
#include "fw.h"
#include "hook.h"
#include "log.h"
#include "runtime.h"
#include "util.h"

#ifndef HW_FIREWALL_HELPER
#error "HW_FIREWALL_HELPER must be set"
#endif

static const char *helper_path(void)
{
        const char *e = getenv("HOSTWARDEN_FIREWALL_HELPER");
        return e && e[0] == '/' ? e : HW_FIREWALL_HELPER;
}

/* Runs hostwarden-firewall VERB; its output goes to the journal, never to our stdout,
 * which libvirt reads as the domain XML. */
static int run_helper(const char *verb)
{
        const char *path = helper_path();
        char *argv[] = { (char *)path, (char *)verb, NULL };
        posix_spawn_file_actions_t fa;
        int status, r;
        pid_t pid;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        r = posix_spawn(&pid, path, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}

/* Serializes window changes of concurrent hooks (different domains migrate at once). */
static int lock_runtime(const char *runtime_dir)
{
        char path[4096];
        int fd;

        if (mkdir(runtime_dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        snprintf(path, sizeof(path), "%s/firewall.lock", runtime_dir);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        int r = negative_errno();
                        close(fd);
                        return r;
                }
        return fd;
}

static int incoming_path(const HookContext *ctx, const char *uuid, char *buf, size_t size)
{
        if (snprintf(buf, size, "%s/incoming/%s", ctx->runtime_dir, uuid ? uuid : "") >= (int)size)
                return -ENAMETOOLONG;
        return 0;
}

/* Replays the prepared batch; falls back to hostwarden-firewall when it cannot. */
static int window_change(HookContext *ctx, FwWindow w)
{
        static const char *const verbs[_FW_WINDOW_MAX] = {
                [FW_WINDOW_OPEN] = "open-window",
                [FW_WINDOW_GRACE] = "grace-window",
                [FW_WINDOW_CLOSE] = "close-window",
        };
        FwSpec spec;
        int r;

        fw_spec_from_config(ctx->config, &spec);
        r = fw_replay(ctx->runtime_dir, fw_blob_name(w), fw_spec_digest(&spec),
                      w == FW_WINDOW_CLOSE);
        if (r == 0)
                return 0;
        /* -ESTALE: not prepared for this configuration; -ENOENT: the table is gone */
        log_debug("replaying %s failed (%s), running %s", fw_blob_name(w), strerror(-r),
                  helper_path());
        return run_helper(verbs[w]);
}

static int write_record(const char *path, const char *state)
{
        char text[160], since[64];

        snprintf(text, sizeof(text), "state=%s\nsince=%s\n", state,
                 format_timestamp_now(since, sizeof(since)));
        return write_file_atomic(path, text, 0644);
}

static bool firewall_active(const HookContext *ctx)
{
        FwSpec spec;

        if (!ctx->config || !ctx->config->firewall.enable)
                return false;
        fw_spec_from_config(ctx->config, &spec);
        return fw_spec_active(&spec);
}

int hook_window_open(HookContext *ctx)
{
        _cleanup_close_ int lock = -EBADF;
        const DomIdentity *id;
        char path[4096];
        int r;

        if (!firewall_active(ctx))
                return 0;
        id = hook_identity(ctx);
        lock = lock_runtime(ctx->runtime_dir);
        if (lock < 0)
                return log_error_errno(lock, "Cannot lock %s: %m", ctx->runtime_dir);

        if (id) {
                snprintf(path, sizeof(path), "%s/incoming", ctx->runtime_dir);
                (void)mkdir(path, 0755);
                if (incoming_path(ctx, id->uuid, path, sizeof(path)) == 0) {
                        r = write_record(path, "begun");
                        if (r < 0)
                                log_warning_errno(r, "Cannot record the incoming migration: %m");
                }
        }

        r = window_change(ctx, FW_WINDOW_OPEN);
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
                   "accept the migration sources for at most %llus",
                   ctx->domain, ctx->config->migration.port_min, ctx->config->migration.port_max,
                   (unsigned long long)(ctx->config->firewall.open_window / USEC_PER_SEC));
        return 0;
}

/* Incoming migrations still recorded, and how many of them have not started yet; drops
 * records older than open_window (their window element has expired in the kernel anyway:
 * a lost event, or a migration long done). */
static unsigned incoming_remaining(HookContext *ctx, unsigned *ret_pending)
{
        time_t max_age = (time_t)(ctx->config->firewall.open_window / USEC_PER_SEC);
        time_t now = time(NULL);
        unsigned n = 0, pending = 0;
        struct dirent *de;
        char dir[4096];
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/incoming", ctx->runtime_dir);
        d = opendir(dir);
        while (d && (de = readdir(d))) {
                _cleanup_free_ char *text = NULL;
                RuntimeRecord rec = { NULL };
                char path[4096 + 256];
                struct stat st;

                if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                        continue;
                if (now - st.st_mtime > max_age) {
                        (void)unlinkat(dirfd(d), de->d_name, 0);
                        continue;
                }
                n++;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (read_full_file(path, 4096, &text, NULL) >= 0 &&
                    runtime_record_parse(text, &rec) >= 0 &&
                    !streq_ptr(runtime_record_get(&rec, "state"), "started"))
                        pending++;
                runtime_record_done(&rec);
        }
        if (d)
                closedir(d);
        *ret_pending = pending;
        return n;
}

/*
 * "started begin" of an incoming migration comes when QEMU runs on this node, before the
 * source connects to it; "stopped end" and "release end" when the domain is gone (the
 * migration failed, or it ended later). Once no incoming migration is still starting, the
 * window only has to last until the sources are connected (conntrack keeps them): grace.
 * Once none remains at all, it closes.
 */
int hook_window_release(HookContext *ctx)
{
        _cleanup_close_ int lock = -EBADF;
        bool started = streq(ctx->op, "started");
        const DomIdentity *id;
        unsigned left, pending;
        char path[4096];
        FwWindow w;
        int r;

        if (!firewall_active(ctx))
                return HOOK_CONTINUE;
        /* cheap test first: most starts and stops are not part of an incoming migration */
        id = hook_identity(ctx);
        if (!id || incoming_path(ctx, id->uuid, path, sizeof(path)) < 0 || access(path, F_OK) < 0)
                return HOOK_CONTINUE;

        lock = lock_runtime(ctx->runtime_dir);
        if (lock < 0) {
                log_error_errno(lock, "Cannot lock %s: %m", ctx->runtime_dir);
                return HOOK_CONTINUE;
        }
        r = started ? write_record(path, "started") : (unlink(path) < 0 ? negative_errno() : 0);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Cannot update %s: %m", path);

        left = incoming_remaining(ctx, &pending);
        if (pending > 0) {
                log_debug("%u incoming migration(s) still starting: the window stays open",
                          pending);
                return HOOK_CONTINUE;
        }
        w = left > 0 ? FW_WINDOW_GRACE : FW_WINDOW_CLOSE;
        r = window_change(ctx, w);
        if (r < 0)
                log_error_errno(r,
                                "Failed to %s the migration window after '%s': %m; it closes "
                                "by itself within [firewall] open_window",
                                w == FW_WINDOW_CLOSE ? "close" : "shorten", ctx->domain);
        else
                log_fields(LOG_INFO, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_WINDOW },
                                      { "HOSTWARDEN_DOMAIN", id->uuid },
                                      { "HOSTWARDEN_WINDOW",
                                        w == FW_WINDOW_CLOSE ? "closed" : "grace" }),
                           w == FW_WINDOW_CLOSE
                                   ? "Migration window closed: no incoming migration remains "
                                     "(%s %s of '%s')"
                                   : "Migration window closes within 30s: every incoming "
                                     "migration has started (%s %s of '%s')",
                           ctx->op, ctx->subop, ctx->domain);
        return HOOK_CONTINUE;
}
