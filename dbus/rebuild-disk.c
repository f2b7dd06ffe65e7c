/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rebuild's disks and domain in its worker (rebuild.h): a lost disk made again from its base
 * image with qemu-img, as its directory's owner; a start that libvirtd did not finish before
 * it went away, resumed or destroyed.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "rebuild.h"
#include "sysrun.h"
#include "virt.h"

int rebuild_run_qemu_img(const char *const argv[], char *err, size_t err_size)
{
        int out[2], status;
        posix_spawn_file_actions_t fa;
        pid_t pid;
        ssize_t n;
        int r;

        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
        r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        if (r != 0) {
                close(out[0]);
                snprintf(err, err_size, "cannot run %s: %s", argv[0], strerror(r));
                return -r;
        }
        for (size_t used = 0;;) {
                n = read(out[0], err + used, err_size - 1 - used);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n > 0)
                        used += (size_t)n;
                err[used] = '\0';
                if (n <= 0 || used == err_size - 1)
                        break;
        }
        close(out[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* The owner of the nearest directory of path that exists, and that directory. */
static int nearest_dir(const char *path, char **ret_dir, struct stat *ret_st)
{
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        while ((slash = strrchr(dir, '/'))) {
                if (slash == dir)
                        slash[1] = '\0';
                else
                        *slash = '\0';
                if (stat(dir, ret_st) >= 0 && S_ISDIR(ret_st->st_mode)) {
                        *ret_dir = TAKE_PTR(dir);
                        return 0;
                }
                if (slash == dir)
                        break;
        }
        return -ENOENT;
}

/*
 * A lost disk made again from its base, in its directory, made too if need be: by the owner
 * of the nearest directory that exists. Nova's instance directories belong to the nova user
 * (0755): systemd runs qemu-img as that user (sysrun.h), so the disk and its directory are
 * Nova's as if Nova had made them, and hostwardend needs no right to write there itself.
 * Elsewhere (root's directories) hostwardend runs it, within its own sandbox.
 */
int rebuild_create_disk(const DiskFix *f, const char *fmt, char *err, size_t err_size)
{
        _cleanup_free_ char *dir = strdup(f->path), *top = NULL;
        char size[32];
        char *slash = dir ? strrchr(dir, '/') : NULL;
        struct stat st;
        int r;

        if (!slash || slash == dir) {
                snprintf(err, err_size, "not an absolute path in a directory");
                return -EINVAL;
        }
        *slash = '\0';
        snprintf(size, sizeof(size), "%llu", (unsigned long long)f->size);
        r = nearest_dir(f->path, &top, &st);
        if (r >= 0 && st.st_uid != 0) {
                const char *argv[] = { "/bin/sh",
                                       "-c",
                                       "mkdir -p -- \"$1\" && exec qemu-img create -q -f qcow2 "
                                       "-F \"$2\" -b \"$3\" \"$4\" \"$5\"",
                                       "sh",
                                       dir,
                                       fmt,
                                       f->backing,
                                       f->path,
                                       size,
                                       NULL };
                return sysrun(argv, st.st_uid, st.st_gid, top, 5 * 60 * USEC_PER_SEC, err,
                              err_size);
        }
        /* mkdir -p: the instance's directory on this node */
        for (char *p = strchr(dir + 1, '/');; p = strchr(p + 1, '/')) {
                if (p)
                        *p = '\0';
                (void)mkdir(dir, 0755);
                if (!p)
                        break;
                *p = '/';
        }
        const char *argv[] = { "qemu-img", "create", "-q",       "-f",    "qcow2", "-F",
                               fmt,        "-b",     f->backing, f->path, size,    NULL };
        return rebuild_run_qemu_img(argv, err, err_size);
}

/*
 * After libvirtd died under the rebuild's start: the domain may be left active but paused (QEMU
 * launched with its CPUs stopped, the start never finished; seen in the fault rounds, with the
 * dead libvirtd's start job still recorded). The guest never ran: resume it, or, when libvirt
 * refuses, destroy it so that the caller starts it again. Only this rebuild starts it here (the
 * record is this node's, the instance is locked against reconciliation).
 */
void rebuild_finish_cut_start(virDomainPtr dom, const char *uuid)
{
        int state = 0, reason = 0;

        if (virDomainIsActive(dom) != 1 || virDomainGetState(dom, &state, &reason, 0) < 0 ||
            state != VIR_DOMAIN_PAUSED)
                return;
        if (virDomainResume(dom) >= 0) {
                log_warning("Rebuilt %s was left paused by the start libvirtd did not finish: "
                            "resumed",
                            uuid);
                return;
        }
        log_warning("Rebuilt %s was left paused by the start libvirtd did not finish, and does "
                    "not resume (%s): destroyed, to be started again",
                    uuid, virt_last_error("unknown error"));
        (void)virDomainDestroy(dom);
}
