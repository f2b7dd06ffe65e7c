/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fence.h"

#define FENCE_OUTPUT_MAX (64 * 1024)

static const char *const fence_action_table[_FENCE_ACTION_MAX] = {
        [FENCE_ACTION_STATUS] = "status",
        [FENCE_ACTION_OFF] = "off",
        [FENCE_ACTION_ON] = "on",
};

DEFINE_STRING_TABLE_LOOKUP(fence_action, FenceAction, _FENCE_ACTION_INVALID);

int fence_agent_path(const char *agent, char **ret)
{
        static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
        char *p;

        if (!agent || !*agent || strstr(agent, ".."))
                return -EINVAL;
        if (agent[0] == '/') {
                if (access(agent, X_OK) < 0)
                        return -errno;
                p = strdup(agent);
                if (!p)
                        return -ENOMEM;
                *ret = p;
                return 0;
        }
        if (strchr(agent, '/'))
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (asprintf(&p, "%s/%s", dirs[i], agent) < 0)
                        return -ENOMEM;
                if (access(p, X_OK) == 0) {
                        *ret = p;
                        return 0;
                }
                free(p);
        }
        return -ENOENT;
}

static bool line_is_action(const char *line, size_t n)
{
        return n >= 7 && strncmp(line, "action=", 7) == 0;
}

int fence_agent_input(const char *options, FenceAction action, char **ret)
{
        const char *name = fence_action_to_string(action);
        size_t len = options ? strlen(options) : 0;
        char *buf, *w;

        if (!name)
                return -EINVAL;
        buf = malloc(len + strlen(name) + 10);
        if (!buf)
                return -ENOMEM;
        w = buf;
        for (const char *p = options; p && *p;) {
                size_t n = strcspn(p, "\n");

                if (n > 0 && !line_is_action(p, n)) {
                        memcpy(w, p, n);
                        w += n;
                        *w++ = '\n';
                }
                p += n;
                if (*p)
                        p++;
        }
        w += sprintf(w, "action=%s\n", name);
        *ret = buf;
        return 0;
}

void fence_run_done(FenceRun *r)
{
        free(r->output);
        r->output = NULL;
}

int fence_run(const char *path, const char *input, usec_t timeout, FenceRun *ret)
{
        int in[2] = { -1, -1 }, out[2] = { -1, -1 }, r, status = 0;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        char *argv[] = { (char *)path, NULL };
        size_t in_len = strlen(input), in_off = 0, out_len = 0;
        char *buf = NULL;
        bool timed_out = false, exited = false;
        sigset_t empty, all;
        pid_t pid;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;

        if (access(path, X_OK) < 0)
                return -errno;
        buf = malloc(FENCE_OUTPUT_MAX + 1);
        if (!buf)
                return -ENOMEM;
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                goto finish;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
        posix_spawnattr_init(&attr);
        sigemptyset(&empty);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attr, &empty);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETSID);
        r = -posix_spawn(&pid, path, &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r < 0)
                goto finish;
        close(in[0]);
        close(out[1]);
        in[0] = out[1] = -1;
        (void)fcntl(in[1], F_SETFL, O_NONBLOCK);
        (void)fcntl(out[0], F_SETFL, O_NONBLOCK);

        while (out[0] >= 0) {
                struct pollfd p[2] = { { .fd = out[0], .events = POLLIN },
                                       { .fd = in[1], .events = POLLOUT } };
                usec_t now = now_usec(CLOCK_MONOTONIC);
                int n;

                if (now >= deadline) {
                        timed_out = true;
                        (void)kill(pid, SIGKILL);
                        break;
                }
                n = poll(p, in[1] >= 0 ? 2 : 1, (int)((deadline - now + 999) / 1000));
                if (n < 0 && errno != EINTR) {
                        r = -errno;
                        (void)kill(pid, SIGKILL);
                        break;
                }
                if (n <= 0)
                        continue;
                if (in[1] >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
                        ssize_t k = write(in[1], input + in_off, in_len - in_off);

                        if (k > 0)
                                in_off += (size_t)k;
                        if (k < 0 && errno != EAGAIN && errno != EINTR)
                                in_off = in_len; /* agent closed its stdin: fine */
                        if (in_off >= in_len) {
                                close(in[1]);
                                in[1] = -1;
                        }
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        char scratch[4096];
                        char *dst = out_len < FENCE_OUTPUT_MAX ? buf + out_len : scratch;
                        size_t room = out_len < FENCE_OUTPUT_MAX ? FENCE_OUTPUT_MAX - out_len
                                                                 : sizeof(scratch);
                        ssize_t k = read(out[0], dst, room);

                        if (k > 0 && dst != scratch)
                                out_len += (size_t)k;
                        else if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                                close(out[0]);
                                out[0] = -1;
                        }
                }
        }

        /* Output closed (or killed): reap, giving an agent that closed its output but lingers
         * the rest of the timeout. */
        while (!exited) {
                pid_t w = waitpid(pid, &status, timed_out ? 0 : WNOHANG);

                if (w == pid)
                        exited = true;
                else if (w < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                } else if (w == 0) {
                        if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                                timed_out = true;
                                (void)kill(pid, SIGKILL);
                        } else
                                (void)usleep(10000);
                }
        }
        if (r < 0 && !exited)
                goto finish;
        buf[out_len] = '\0';
        ret->output = buf;
        buf = NULL;
        ret->timed_out = timed_out;
        ret->status = timed_out             ? -1
                      : WIFEXITED(status)   ? WEXITSTATUS(status)
                      : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                            : -1;
        r = 0;
finish:
        for (int i = 0; i < 2; i++) {
                if (in[i] >= 0)
                        close(in[i]);
                if (out[i] >= 0)
                        close(out[i]);
        }
        free(buf);
        return r;
}

int fence_result(FenceAction action, const FenceRun *run, FenceState *ret)
{
        if (run->timed_out)
                return -EIO;
        switch (action) {
        case FENCE_ACTION_STATUS:
                if (run->status == 0)
                        *ret = FENCE_ON;
                else if (run->status == 2)
                        *ret = FENCE_OFF;
                else
                        return -EIO;
                return 0;
        case FENCE_ACTION_OFF:
        case FENCE_ACTION_ON:
                if (run->status != 0)
                        return -EIO;
                *ret = action == FENCE_ACTION_OFF ? FENCE_OFF : FENCE_ON;
                return 0;
        default:
                return -EINVAL;
        }
}
