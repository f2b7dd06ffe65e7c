/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --watch: a view redrawn in place, like watch(1) but woken by hostwardend's signals. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"
#include "watch.h"

#define TTY_PERIOD    (1 * USEC_PER_SEC)
#define TTY_MIN_GAP   (USEC_PER_SEC / 2) /* hostwardend's own rate of PropertiesChanged */
#define PLAIN_PERIOD  (5 * USEC_PER_SEC)
#define PLAIN_MIN_GAP (2 * USEC_PER_SEC)

static volatile sig_atomic_t quit_signal, resized;

static void on_signal(int sig)
{
        if (sig == SIGWINCH)
                resized = 1;
        else
                quit_signal = sig;
}

static usec_t now_mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

void screen_get(Screen *ret)
{
        struct winsize ws = {};
        const char *columns = getenv("COLUMNS"), *term = getenv("TERM");
        uint64_t c;

        *ret = (Screen){ .tty = isatty(STDOUT_FILENO) };
        if (ret->tty) {
                if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
                        ret->width = ws.ws_col;
                        ret->height = ws.ws_row;
                } else {
                        ret->width = 80;
                        ret->height = 24;
                }
                ret->color = !getenv("NO_COLOR") && !streq_ptr(term, "dumb");
        }
        /* as systemd's tools: $COLUMNS wins */
        if (columns && parse_uint_range(columns, 20, 10000, &c) >= 0)
                ret->width = c;
}

void format_ago(uint64_t usec_realtime, char *buf, size_t size)
{
        usec_t now = now_realtime();
        uint64_t s;

        if (usec_realtime == 0) {
                snprintf(buf, size, "-");
                return;
        }
        if (usec_realtime > now) { /* another node's clock is ahead */
                snprintf(buf, size, "now");
                return;
        }
        s = (now - usec_realtime) / USEC_PER_SEC;
        if (s < 120)
                snprintf(buf, size, "%llus ago", (unsigned long long)s);
        else if (s < 120 * 60)
                snprintf(buf, size, "%llum ago", (unsigned long long)s / 60);
        else if (s < 48 * 3600)
                snprintf(buf, size, "%lluh ago", (unsigned long long)s / 3600);
        else
                snprintf(buf, size, "%llud ago", (unsigned long long)s / 86400);
}

static int on_bus_signal(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        *(bool *)userdata = true;
        return 0;
}

/* One frame on the terminal: in place from the top left, every line erased to its end,
 * at most height - 1 lines (the last row would scroll). */
static void draw_tty(const char *frame, const Screen *s, bool clear)
{
        size_t rows = s->height > 1 ? s->height - 1 : 1, n_lines = 0, shown = 0;
        const char *p;

        for (p = frame; *p; p++)
                if (*p == '\n')
                        n_lines++;
        fputs(clear ? "\033[H\033[2J" : "\033[H", stdout);
        p = frame;
        while (*p && shown < rows) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);

                if (shown + 1 == rows && n_lines > rows) {
                        printf("… %zu more line(s): make the window taller\033[K\n",
                               n_lines - shown);
                        shown++;
                        break;
                }
                fwrite(p, 1, len, stdout);
                fputs("\033[K\n", stdout);
                shown++;
                p += len + (nl ? 1 : 0);
        }
        fputs("\033[J", stdout);
        fflush(stdout);
}

int watch_run(sd_bus *bus, ViewFunc view, void *userdata)
{
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        struct sigaction sa = { .sa_handler = on_signal }, old[4];
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
        Screen s;
        bool changed = true, first = true, clear = true;
        usec_t period, min_gap, last_draw = 0, next_draw = 0;
        int r, ret = 0;

        /* no SA_RESTART: the wait below returns at once */
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaction(sigs[i], &sa, &old[i]);
        screen_get(&s);
        period = s.tty ? TTY_PERIOD : PLAIN_PERIOD;
        min_gap = s.tty ? TTY_MIN_GAP : PLAIN_MIN_GAP;

        /* MigrationNew/Removed, NodeChanged, DomainRefused and every PropertiesChanged */
        r = sd_bus_add_match(bus, &slot,
                             "type='signal',sender='" DEST "',path_namespace='" PATH "'",
                             on_bus_signal, &changed);
        if (r < 0)
                fprintf(stderr,
                        "Cannot subscribe to hostwardend's signals, redrawing every "
                        "second: %s\n",
                        strerror(-r));
        if (s.tty)
                fputs("\033[?25l", stdout); /* no cursor jumping about */

        while (!quit_signal) {
                usec_t now = now_mono(), wake;

                if (resized) {
                        resized = 0;
                        screen_get(&s);
                        changed = clear = true;
                        last_draw = 0;
                }
                if (now >= next_draw || (changed && now >= last_draw + min_gap)) {
                        _cleanup_free_ char *frame = NULL;
                        size_t size = 0;
                        FILE *f = open_memstream(&frame, &size);

                        changed = false;
                        if (!f || view(bus, f, &s, userdata) < 0) {
                                if (f)
                                        fclose(f);
                                fprintf(stderr, "Out of memory.\n");
                                ret = 1;
                                break;
                        }
                        fclose(f);
                        if (s.tty)
                                draw_tty(frame, &s, clear);
                        else {
                                printf("%s%s", first ? "" : "\n", frame);
                                fflush(stdout);
                        }
                        first = clear = false;
                        last_draw = now;
                        next_draw = now + period;
                }

                /* the signals that came meanwhile, then sleep until something is due */
                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "%sLost the bus: %s\n", s.tty ? "\n" : "", strerror(-r));
                        ret = 1;
                        break;
                }
                now = now_mono();
                wake = next_draw;
                if (changed && last_draw + min_gap < wake)
                        wake = last_draw + min_gap;
                if (wake > now) {
                        r = sd_bus_wait(bus, wake - now);
                        if (r < 0 && r != -EINTR) {
                                fprintf(stderr, "%sLost the bus: %s\n", s.tty ? "\n" : "",
                                        strerror(-r));
                                ret = 1;
                                break;
                        }
                }
        }

        if (s.tty) {
                fputs("\033[?25h", stdout);
                fflush(stdout);
        }
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaction(sigs[i], &old[i], NULL);
        return ret;
}
