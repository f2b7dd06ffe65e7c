/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --watch: a view redrawn in place, like watch(1) but woken by hostwardend's signals. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "table.h"
#include "util.h"
#include "watch.h"

#define TTY_PERIOD    (1 * USEC_PER_SEC)
#define TTY_MIN_GAP   (USEC_PER_SEC / 2) /* hostwardend's own rate of PropertiesChanged */
#define PLAIN_PERIOD  (5 * USEC_PER_SEC)
#define PLAIN_MIN_GAP (2 * USEC_PER_SEC)
/* a hung hostwardend must not keep Ctrl-C waiting for sd-bus' 25 s default */
#define WATCH_CALL_TIMEOUT (5 * USEC_PER_SEC)

/* the terminal while watching: no cursor, no automatic wrap (lines are cut anyway) */
#define TTY_ENTER "\033[?25l\033[?7l"
#define TTY_LEAVE "\033[?7h\033[?25h"

static volatile sig_atomic_t quit_signal, resized, stopped;

static void on_signal(int sig)
{
        if (sig == SIGWINCH)
                resized = 1;
        else if (sig == SIGTSTP)
                stopped = 1;
        else
                quit_signal = sig;
}

void screen_get(Screen *ret)
{
        struct winsize ws = {};
        const char *columns = getenv("COLUMNS"), *term = getenv("TERM"),
                   *no_color = getenv("NO_COLOR");
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
                /* https://no-color.org: set and not empty */
                ret->color = isempty(no_color) && !streq_ptr(term, "dumb");
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

void format_clock(char *buf, size_t size)
{
        time_t t = time(NULL);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, size, "%H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
}

void view_title(FILE *f, const Screen *screen, const char *title)
{
        char clock[16] = "";
        size_t n;

        if (screen->watching)
                format_clock(clock, sizeof(clock));
        if (screen->color)
                fputs(COLOR_BOLD, f);
        n = print_cut(f, title, screen->width > 0 ? screen->width : SIZE_MAX, 0);
        if (screen->color)
                fputs(COLOR_RESET, f);
        /* the time at the right edge; not on a terminal after the title */
        if (clock[0] && screen->width > 0 && screen->width >= n + 2 + strlen(clock))
                fprintf(f, "%*s", (int)(screen->width - n), clock);
        else if (clock[0] && screen->width == 0)
                fprintf(f, "  %s", clock);
        fputc('\n', f);
}

static int on_bus_signal(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        *(bool *)userdata = true;
        return 0;
}

/* One line of a frame, cut to width code points ("…" ends a cut one; 0: no limit). Colour
 * sequences (ESC [ ... m) are copied, when keep_sgr, and not counted; any other control
 * character becomes "?": what comes from the data never moves the cursor. */
static void put_line(FILE *out, const char *p, size_t len, size_t width, bool keep_sgr)
{
        const char *end = p + len;
        size_t cps = 0, total = 0;

        if (width == 0)
                width = SIZE_MAX;
        for (const char *q = p; q < end; q++) {
                const char *sgr = q + 1 < end && *q == '\033' && q[1] == '[' ? q + 2 : NULL;

                while (sgr && sgr < end && ((*sgr >= '0' && *sgr <= '9') || *sgr == ';'))
                        sgr++;
                if (sgr && sgr < end && *sgr == 'm') {
                        q = sgr;
                        continue;
                }
                if ((*q & 0xc0) != 0x80)
                        total++;
        }
        while (p < end) {
                const char *sgr = p + 1 < end && *p == '\033' && p[1] == '[' ? p + 2 : NULL;
                unsigned char c = (unsigned char)*p;

                while (sgr && sgr < end && ((*sgr >= '0' && *sgr <= '9') || *sgr == ';'))
                        sgr++;
                if (sgr && sgr < end && *sgr == 'm') {
                        if (keep_sgr)
                                fwrite(p, 1, (size_t)(sgr + 1 - p), out);
                        p = sgr + 1;
                        continue;
                }
                if ((c & 0xc0) != 0x80) {
                        if (total > width && cps + 1 == width) {
                                fputs(keep_sgr ? "…\033[0m" : "…", out);
                                return;
                        }
                        cps++;
                }
                fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
                p++;
        }
}

void frame_print(FILE *out, const char *frame, const Screen *s)
{
        for (const char *p = frame; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);

                put_line(out, p, len, s->tty ? s->width : 0, s->color);
                fputc('\n', out);
                p += len + (nl ? 1 : 0);
        }
}

/* One frame on the terminal, written at once: from the top left, each line erased before it
 * is written (erasing after would take the last column on some terminals), at most
 * height - 1 lines (a line on the last row would scroll). */
static void draw_tty(const char *frame, const Screen *s, bool clear)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, rows = s->height > 1 ? s->height - 1 : 1, n_lines = 0, shown = 0;
        FILE *out = open_memstream(&buf, &size);
        const char *p;

        if (!out)
                return;
        for (p = frame; *p; p++)
                if (*p == '\n')
                        n_lines++;
        fputs(clear ? "\033[H\033[2J" : "\033[H", out);
        for (p = frame; *p && shown < rows; shown++) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);

                fputs("\033[2K", out);
                if (shown + 1 == rows && n_lines > rows) {
                        char more[96];

                        snprintf(more, sizeof(more), "… %zu more line(s): make the window taller",
                                 n_lines - shown);
                        put_line(out, more, strlen(more), s->width, s->color);
                        fputc('\n', out);
                        shown++;
                        break;
                }
                put_line(out, p, len, s->width, s->color);
                fputc('\n', out);
                p += len + (nl ? 1 : 0);
        }
        fputs("\033[J", out);
        if (fclose(out) == 0) {
                fwrite(buf, 1, size, stdout);
                fflush(stdout);
        }
}

static void tty_restore(const Screen *s)
{
        if (s->tty) {
                fputs(TTY_LEAVE, stdout);
                fflush(stdout);
        }
}

int watch_run(sd_bus *bus, ViewFunc view, void *userdata)
{
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGWINCH };
        struct sigaction sa = { .sa_handler = on_signal }, old[ELEMENTSOF(sigs)];
        bool installed[ELEMENTSOF(sigs)] = {};
        sigset_t block, unblocked;
        Screen s;
        bool changed = true, first = true, clear = true;
        usec_t period, min_gap, last_draw = 0, next_draw = 0;
        int r, ret = 0;

        /*
         * The signals are blocked except while waiting in ppoll(), which lets them in
         * atomically: one that comes while a frame is drawn is seen at the next wait, at
         * once, and a D-Bus call is never interrupted half-way. Signals this process was
         * started with ignored stay ignored (nohup, background jobs).
         */
        sigemptyset(&block);
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                struct sigaction cur;

                if (sigaction(sigs[i], NULL, &cur) == 0 && cur.sa_handler == SIG_IGN)
                        continue;
                if (sigaction(sigs[i], &sa, &old[i]) == 0) {
                        installed[i] = true;
                        sigaddset(&block, sigs[i]);
                }
        }
        sigprocmask(SIG_BLOCK, &block, &unblocked);
        (void)sd_bus_set_method_call_timeout(bus, WATCH_CALL_TIMEOUT);

        screen_get(&s);
        s.watching = true;
        period = s.tty ? TTY_PERIOD : PLAIN_PERIOD;
        min_gap = s.tty ? TTY_MIN_GAP : PLAIN_MIN_GAP;

        /* MigrationNew/Removed, NodeChanged, DomainRefused and every PropertiesChanged */
        r = sd_bus_add_match(bus, &slot,
                             "type='signal',sender='" DEST "',path_namespace='" PATH "'",
                             on_bus_signal, &changed);
        if (r < 0)
                fprintf(stderr,
                        "Cannot subscribe to hostwardend's signals, redrawing every %s: %s\n",
                        s.tty ? "second" : "5 s", strerror(-r));
        if (s.tty) {
                fputs(TTY_ENTER, stdout);
                fflush(stdout);
        }

        while (!quit_signal) {
                struct pollfd pfd;
                usec_t now = now_usec(CLOCK_MONOTONIC), wake, bus_timeout = UINT64_MAX;
                struct timespec ts;

                if (stopped) { /* Ctrl-Z: the terminal as it was, then stop for real */
                        stopped = 0;
                        tty_restore(&s);
                        signal(SIGTSTP, SIG_DFL);
                        raise(SIGTSTP);
                        sigprocmask(SIG_SETMASK, &unblocked, NULL); /* stops here */
                        sigprocmask(SIG_BLOCK, &block, NULL);
                        sigaction(SIGTSTP, &sa, NULL);
                        if (s.tty) {
                                fputs(TTY_ENTER, stdout);
                                fflush(stdout);
                        }
                        resized = 1;
                }
                if (resized) {
                        resized = 0;
                        screen_get(&s);
                        s.watching = true;
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
                                if (!first)
                                        putchar('\n');
                                frame_print(stdout, frame, &s);
                                fflush(stdout);
                        }
                        first = clear = false;
                        last_draw = now;
                        next_draw = now + period;
                }

                /* the signals that came meanwhile, then sleep until something is due */
                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                if (r < 0) {
                        fprintf(stderr, "%sLost the bus: %s\n", s.tty ? "\n" : "", strerror(-r));
                        ret = 1;
                        break;
                }
                now = now_usec(CLOCK_MONOTONIC);
                wake = next_draw;
                if (changed && last_draw + min_gap < wake)
                        wake = last_draw + min_gap;
                if (sd_bus_get_timeout(bus, &bus_timeout) > 0 && bus_timeout != UINT64_MAX) {
                        usec_t mono = bus_timeout; /* absolute, CLOCK_MONOTONIC */

                        if (mono < wake)
                                wake = mono;
                }
                wake = wake > now ? wake - now : 0;
                pfd = (struct pollfd){ .fd = sd_bus_get_fd(bus), .events = 0 };
                r = sd_bus_get_events(bus);
                if (pfd.fd < 0 || r < 0) {
                        fprintf(stderr, "%sLost the bus: %s\n", s.tty ? "\n" : "",
                                strerror(pfd.fd < 0 ? -pfd.fd : -r));
                        ret = 1;
                        break;
                }
                pfd.events = (short)r;
                ts = (struct timespec){ .tv_sec = (time_t)(wake / USEC_PER_SEC),
                                        .tv_nsec = (long)(wake % USEC_PER_SEC) * 1000 };
                if (ppoll(&pfd, 1, &ts, &unblocked) < 0 && errno != EINTR) {
                        fprintf(stderr, "%sCannot wait: %m\n", s.tty ? "\n" : "");
                        ret = 1;
                        break;
                }
        }

        tty_restore(&s);
        sigprocmask(SIG_SETMASK, &unblocked, NULL);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                if (installed[i])
                        sigaction(sigs[i], &old[i], NULL);
        return ret;
}
