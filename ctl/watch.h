/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include <systemd/sd-bus.h>

typedef struct Screen {
        size_t width, height; /* 0: no limit (not a terminal) */
        bool color;
        bool tty;
        bool watching; /* --watch: frames follow each other (each says when it is from) */
} Screen;

/*
 * Draws one frame of a view into f. A view that cannot reach hostwardend draws what is
 * wrong instead and returns 1; < 0 is running out of memory.
 */
typedef int (*ViewFunc)(sd_bus *bus, FILE *f, const Screen *screen, void *userdata);

/* The screen of stdout (not watching: its width, so tables fit). */
void screen_get(Screen *ret);

/*
 * --watch: redraws the view in place every second and at most twice a second when
 * hostwardend announces a change (its signals), until SIGINT, SIGTERM, SIGHUP or SIGQUIT,
 * then returns 0 with the last frame left on the screen and the cursor back. Lines are cut
 * to the screen's width. Not on a terminal: a frame when something changed (at most every
 * 2 s), else every 5 s, separated by blank lines, without escape sequences.
 */
int watch_run(sd_bus *bus, ViewFunc view, void *userdata);

/* "3s ago", "5m ago", "2h ago", "4d ago"; "-" for 0 (never) */
void format_ago(uint64_t usec_realtime, char *buf, size_t size);
/* A frame as a command prints it once: on a terminal each line cut to its width; control
 * characters from the data (anything but colours, when colour is on) shown as "?". */
void frame_print(FILE *out, const char *frame, const Screen *s);

/* The first line of a view, bold; while watching with the time at its right. */
void view_title(FILE *f, const Screen *screen, const char *title);
/* "14:03:07", local time */
void format_clock(char *buf, size_t size);
