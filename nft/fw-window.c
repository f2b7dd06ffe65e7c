/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration window's records and its changes, for the hook and hostwardend (fw-window.h). */
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
#include "fw-window.h"
#include "log.h"
#include "runtime.h"
#include "util.h"

#ifndef HW_FIREWALL_HELPER
#error "HW_FIREWALL_HELPER must be set"
#endif

bool fw_window_active(const Config *c)
{
        FwSpec spec;

        if (!c || !c->firewall.enable)
                return false;
        fw_spec_from_config(c, &spec);
        return fw_spec_active(&spec);
}

static const char *helper_path(void)
{
        const char *e = getenv("HOSTWARDEN_FIREWALL_HELPER");
        return e && e[0] == '/' ? e : HW_FIREWALL_HELPER;
}

/* Runs hostwarden-firewall VERB; its output goes to the journal, never to our stdout,
 * which libvirt reads as the domain XML when the hook runs this. */
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

int fw_window_lock(const char *runtime_dir)
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

int fw_window_apply(const Config *c, const char *runtime_dir, FwWindow w)
{
        FwSpec spec;
        int r;

        fw_spec_from_config(c, &spec);
        r = fw_replay(runtime_dir, fw_blob_name(w), fw_spec_digest(&spec), w == FW_WINDOW_CLOSE);
        if (r == 0)
                return 0;
        /* -ESTALE: not prepared for this configuration; -ENOENT: the table is gone */
        log_debug("replaying %s failed (%s), running %s", fw_blob_name(w), strerror(-r),
                  helper_path());
        return run_helper(w == FW_WINDOW_CLOSE ? "close-window" : "open-window");
}

static int incoming_path(const char *runtime_dir, const char *uuid, char *buf, size_t size)
{
        if (!uuid || snprintf(buf, size, "%s/incoming/%s", runtime_dir, uuid) >= (int)size)
                return -ENAMETOOLONG;
        return 0;
}

int fw_incoming_mark(const char *runtime_dir, const char *uuid, const char *state)
{
        char text[160], since[64], path[4096];
        int r;

        r = incoming_path(runtime_dir, uuid, path, sizeof(path));
        if (r < 0)
                return r;
        snprintf(text, sizeof(text), "%s/incoming", runtime_dir);
        if (mkdir(text, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        snprintf(text, sizeof(text), "state=%s\nsince=%s\n", state,
                 format_timestamp_now(since, sizeof(since)));
        return write_file_atomic(path, text, 0644);
}

int fw_incoming_drop(const char *runtime_dir, const char *uuid)
{
        char path[4096];
        int r = incoming_path(runtime_dir, uuid, path, sizeof(path));

        if (r < 0)
                return r;
        return unlink(path) < 0 ? negative_errno() : 0;
}

int fw_incoming_touch(const char *runtime_dir, const char *uuid)
{
        char path[4096];
        int r = incoming_path(runtime_dir, uuid, path, sizeof(path));

        if (r < 0)
                return r;
        return utimensat(AT_FDCWD, path, NULL, 0) < 0 ? negative_errno() : 0;
}

int fw_incoming_list(const Config *c, const char *runtime_dir, FwIncoming **ret, size_t *ret_n)
{
        time_t max_age = (time_t)(c->firewall.open_window / USEC_PER_SEC);
        time_t now = time(NULL);
        FwIncoming *list = NULL;
        size_t n = 0;
        struct dirent *de;
        char dir[4096];
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/incoming", runtime_dir);
        d = opendir(dir);
        if (!d) {
                *ret = NULL;
                *ret_n = 0;
                return errno == ENOENT ? 0 : negative_errno();
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *text = NULL;
                RuntimeRecord rec = { NULL };
                char path[4096 + 256];
                struct stat st;
                FwIncoming *grown;

                if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(list->uuid) ||
                    fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                        continue;
                if (now - st.st_mtime > max_age) {
                        (void)unlinkat(dirfd(d), de->d_name, 0);
                        continue;
                }
                grown = realloc(list, (n + 1) * sizeof(*list));
                if (!grown) {
                        free(list);
                        closedir(d);
                        return -ENOMEM;
                }
                list = grown;
                snprintf(list[n].uuid, sizeof(list[n].uuid), "%s", de->d_name);
                list[n].marked = st.st_mtime;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                list[n].started = read_full_file(path, 4096, &text, NULL) >= 0 &&
                                  runtime_record_parse(text, &rec) >= 0 &&
                                  streq_ptr(runtime_record_get(&rec, "state"), "started");
                runtime_record_done(&rec);
                n++;
        }
        closedir(d);
        *ret = list;
        *ret_n = n;
        return 0;
}
