/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * A table for a terminal (systemd's format-table, much smaller): column widths follow the
 * content, and a line never gets wider than the screen. When it would, the table's shrink
 * column (the last one unless set) gives up width first, down to a few characters, and then
 * each line is cut at the screen's edge; a cut cell ends with "…". Widths count UTF-8 code
 * points, which is what hostwarden's names and messages are made of.
 */
typedef struct Table Table;

/* ANSI colours of a cell (NULL: none) */
#define COLOR_RED       "\033[0;31m"
#define COLOR_GREEN     "\033[0;32m"
#define COLOR_YELLOW    "\033[0;33m"
#define COLOR_CYAN      "\033[0;36m"
#define COLOR_GREY      "\033[0;90m"
#define COLOR_BOLD      "\033[1m"
#define COLOR_BOLD_RED  "\033[1;31m"
#define COLOR_RESET     "\033[0m"
#define COLOR_UNDERLINE "\033[4m"

/* A table with these column headers, NULL-terminated. NULL when out of memory. */
Table *table_new(const char *header, ...);
Table *table_free(Table *t);
static inline void table_freep(Table **t)
{
        table_free(*t);
}

/* Numbers: right aligned. */
void table_set_right(Table *t, size_t column);
void table_set_shrink(Table *t, size_t column);

/* Appends one cell (rows fill left to right). text NULL is shown as "-". */
int table_add(Table *t, const char *color, const char *text);
int table_addf(Table *t, const char *color, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
size_t table_rows(const Table *t); /* without the header */

/* Prints the table; width 0 means no limit; with color, the header is underlined and the
 * cells get their colour. Returns the number of lines printed. */
size_t table_print(const Table *t, FILE *f, size_t width, bool color);

/* Code points of a UTF-8 string. */
size_t utf8_width(const char *s);
/* Prints s, cut to at most width code points ("…" ends a cut one), padded with spaces to
 * pad (0: no padding). Returns the code points printed. */
size_t print_cut(FILE *f, const char *s, size_t width, size_t pad);
