/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dbus-call N DEST PATH INTERFACE METHOD [DEST PATH INTERFACE METHOD]: times N round trips
 * of each method (no arguments) on one system bus connection, alternating, and prints
 * "p50_us mean_us" per method.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-bus.h>

static double now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[])
{
        sd_bus *bus = NULL;
        int n, k = (argc - 2) / 4;
        double *t[2];

        if (argc != 6 && argc != 10)
                return 2;
        n = atoi(argv[1]);
        if (n < 10 || sd_bus_default_system(&bus) < 0)
                return 2;
        for (int j = 0; j < k; j++)
                t[j] = calloc((size_t)n, sizeof(double));
        for (int i = 0; i < n; i++)
                for (int j = 0; j < k; j++) {
                        sd_bus_error error = SD_BUS_ERROR_NULL;
                        sd_bus_message *reply = NULL;
                        double a = now_us();
                        char **x = argv + 2 + 4 * j;

                        if (sd_bus_call_method(bus, x[0], x[1], x[2], x[3], &error, &reply, NULL) <
                            0) {
                                fprintf(stderr, "%s: %s\n", x[3], error.message);
                                return 1;
                        }
                        t[j][i] = now_us() - a;
                        sd_bus_message_unref(reply);
                }
        for (int j = 0; j < k; j++) {
                double sum = 0;
                for (int i = 0; i < n; i++)
                        sum += t[j][i];
                qsort(t[j], (size_t)n, sizeof(double), cmp);
                printf("%s %.1f %.1f\n", argv[5 + 4 * j], t[j][n / 2], sum / n);
                free(t[j]);
        }
        sd_bus_unref(bus);
        return 0;
}
