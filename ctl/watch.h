/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include <systemd/sd-bus.h>

typedef struct Screen {
        size_t width, height; /* 0: no limit (not a terminal) */
        bool color;
        bool tty;
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
 * hostwardend announces a change (its signals), until SIGINT, SIGTERM or SIGHUP, then exits
 * 0 with the last frame left on the screen. Not on a terminal: a frame when something
 * changed, else every 5 s, separated by blank lines, without escape sequences.
 */
int watch_run(sd_bus *bus, ViewFunc view, void *userdata);

/* "3s ago", "5m ago", "2h ago", "4d ago"; "-" for 0 (never) */
void format_ago(uint64_t usec_realtime, char *buf, size_t size);
