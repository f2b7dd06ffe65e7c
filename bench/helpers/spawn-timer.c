/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spawn-timer N INPUT -- CMD1 [ARGS] -- CMD2 [ARGS] ...
 *
 * Times N executions of each command as libvirt runs a hook: fork+exec, INPUT on stdin,
 * stdout to /dev/null, wait for exit. The commands are run round-robin, so drift of the
 * machine (other load, frequency) hits all of them alike. Prints one line per command:
 *   NAME p50_us p99_us mean_us failures
 * HW_SPAWN_GAP_US: an untimed pause after each command (lets the kernel finish deferred
 * work a command left, so it is not billed to the next one).
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char *argv[])
{
        char **cmds[64];
        size_t n_cmds = 0;
        double *samples[64];
        unsigned failures[64] = { 0 };
        long n;

        if (argc < 5 || strcmp(argv[3], "--") != 0) {
                fprintf(stderr, "usage: %s N INPUT -- CMD [ARGS] [-- CMD [ARGS]]...\n", argv[0]);
                return 2;
        }
        n = strtol(argv[1], NULL, 10);
        const char *gap_env = getenv("HW_SPAWN_GAP_US");
        long gap = gap_env ? strtol(gap_env, NULL, 10) : 0;
        if (n < 10) {
                fprintf(stderr, "N must be at least 10\n");
                return 2;
        }
        for (int i = 3; i < argc && n_cmds < 64; i++)
                if (strcmp(argv[i], "--") == 0) {
                        argv[i] = NULL;
                        if (i + 1 < argc)
                                cmds[n_cmds++] = &argv[i + 1];
                }
        for (size_t c = 0; c < n_cmds; c++) {
                samples[c] = calloc((size_t)n, sizeof(double));
                if (!samples[c])
                        return 1;
        }

        for (long i = 0; i < n; i++)
                for (size_t c = 0; c < n_cmds; c++) {
                        posix_spawn_file_actions_t fa;
                        double start;
                        int status;
                        pid_t pid;

                        posix_spawn_file_actions_init(&fa);
                        posix_spawn_file_actions_addopen(&fa, 0, argv[2], O_RDONLY, 0);
                        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
                        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
                        start = now_us();
                        if (posix_spawn(&pid, cmds[c][0], &fa, NULL, cmds[c], environ) != 0) {
                                perror(cmds[c][0]);
                                return 1;
                        }
                        if (waitpid(pid, &status, 0) != pid)
                                return 1;
                        samples[c][i] = now_us() - start;
                        posix_spawn_file_actions_destroy(&fa);
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                                failures[c]++;
                        if (gap > 0)
                                usleep((useconds_t)gap);
                }

        for (size_t c = 0; c < n_cmds; c++) {
                double sum = 0;

                for (long i = 0; i < n; i++)
                        sum += samples[c][i];
                qsort(samples[c], (size_t)n, sizeof(double), cmp_double);
                printf("%s %.0f %.0f %.0f %u\n", cmds[c][0], samples[c][n / 2],
                       samples[c][(n * 99) / 100], sum / (double)n, failures[c]);
                free(samples[c]);
        }
        return 0;
}
