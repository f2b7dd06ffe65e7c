/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A table that fits the screen: see table.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "util.h"

#define MIN_SHRUNK 8 /* a shrunk column keeps at least this many characters */

typedef struct Cell {
        char *text;
        const char *color;
} Cell;

struct Table {
        size_t n_columns;
        Cell *cells; /* header row first */
        size_t n_cells, allocated;
        bool *right;
        size_t shrink;
};

size_t utf8_width(const char *s)
{
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        n++;
        return n;
}

/* Prints the code points of s up to width, the last one "…" when s is longer or force is
 * set; control characters (C0, DEL, C1) become "?", so data never moves the cursor or
 * changes colours. Returns the code points printed. */
static size_t emit(FILE *f, const char *s, size_t width, bool force)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t n = utf8_width(s), keep, cps = 0;

        if (width == 0)
                return 0;
        force = force || n > width;
        keep = force ? width - 1 : n;
        for (; *p; p++) {
                if ((*p & 0xc0) != 0x80) {
                        if (cps == keep)
                                break;
                        cps++;
                }
                if (*p < 0x20 || *p == 0x7f)
                        fputc('?', f);
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        fputc('?', f); /* a C1 control, two bytes */
                        p++;
                } else
                        fputc(*p, f);
        }
        if (force)
                fputs("…", f);
        return force ? width : n;
}

size_t print_cut(FILE *f, const char *s, size_t width, size_t pad)
{
        size_t printed = emit(f, s, width, false);

        for (; printed < pad; printed++)
                fputc(' ', f);
        return printed;
}

static int add_cell(Table *t, const char *color, char *text)
{
        if (t->n_cells == t->allocated) {
                size_t a = t->allocated ? t->allocated * 2 : 64;
                Cell *c = reallocarray(t->cells, a, sizeof(Cell));

                if (!c) {
                        free(text);
                        return -ENOMEM;
                }
                t->cells = c;
                t->allocated = a;
        }
        t->cells[t->n_cells++] = (Cell){ .text = text, .color = color };
        return 0;
}

Table *table_new(const char *header, ...)
{
        Table *t = calloc(1, sizeof(Table));
        va_list ap;

        if (!t)
                return NULL;
        va_start(ap, header);
        for (const char *h = header; h; h = va_arg(ap, const char *)) {
                char *s = strdup(h);

                /* add_cell() frees s when it fails */
                if (!s || add_cell(t, NULL, s) < 0) {
                        va_end(ap);
                        return table_free(t);
                }
                t->n_columns++;
        }
        va_end(ap);
        t->right = calloc(t->n_columns ? t->n_columns : 1, sizeof(bool));
        if (!t->right)
                return table_free(t);
        t->shrink = t->n_columns ? t->n_columns - 1 : 0;
        return t;
}

Table *table_free(Table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i].text);
        free(t->cells);
        free(t->right);
        free(t);
        return NULL;
}

void table_set_right(Table *t, size_t column)
{
        if (column < t->n_columns)
                t->right[column] = true;
}

void table_set_shrink(Table *t, size_t column)
{
        if (column < t->n_columns)
                t->shrink = column;
}

int table_add(Table *t, const char *color, const char *text)
{
        char *s = strdup(text ? text : "-");

        if (!s)
                return -ENOMEM;
        return add_cell(t, color, s);
}

int table_addf(Table *t, const char *color, const char *fmt, ...)
{
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return add_cell(t, color, s);
}

size_t table_rows(const Table *t)
{
        return t->n_columns ? t->n_cells / t->n_columns - 1 : 0;
}

/* No trailing blanks: a row ends at its last non-empty cell. */
static bool rest_empty(const Table *t, size_t row, size_t column)
{
        for (size_t k = column; k < t->n_columns && row * t->n_columns + k < t->n_cells; k++)
                if (!isempty(t->cells[row * t->n_columns + k].text))
                        return false;
        return true;
}

size_t table_print(const Table *t, FILE *f, size_t width, bool color)
{
        size_t nc = t->n_columns, lines = 0, total = 0;
        size_t *w, *lead, *shown;

        if (nc == 0)
                return 0;
        w = calloc(nc, sizeof(size_t));
        lead = calloc(nc, sizeof(size_t));
        shown = calloc(nc, sizeof(size_t));
        if (!w || !lead || !shown) {
                free(w);
                free(lead);
                free(shown);
                return 0;
        }
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t n = utf8_width(t->cells[i].text);

                if (n > w[i % nc])
                        w[i % nc] = n;
        }
        for (size_t c = 0; c < nc; c++)
                total += w[c] + (c + 1 < nc ? 1 : 0);
        if (width > 0 && total > width) {
                size_t over = total - width,
                       room = w[t->shrink] > MIN_SHRUNK ? w[t->shrink] - MIN_SHRUNK : 0;

                w[t->shrink] -= over < room ? over : room;
        }

        for (size_t row = 0; row * nc < t->n_cells; row++) {
                size_t n_shown = 0, pos = 0, limit = width > 0 ? width : SIZE_MAX;
                bool cut = false;

                /* what of each cell fits: the blanks before it (the previous cell's padding,
                 * the separator, right alignment) and how much of its text; nothing but text
                 * ends a line */
                for (size_t c = 0; c < nc && row * nc + c < t->n_cells; c++) {
                        size_t n = utf8_width(t->cells[row * nc + c].text);
                        size_t cw = n < w[c] ? n : w[c], blanks = 0;

                        if (rest_empty(t, row, c))
                                break;
                        if (c > 0)
                                blanks = (t->right[c - 1] ? 0 : w[c - 1] - shown[c - 1]) + 1;
                        if (t->right[c])
                                blanks += w[c] - cw;
                        if (pos + blanks >= limit) {
                                cut = true;
                                break;
                        }
                        lead[c] = blanks;
                        shown[c] = cw < limit - pos - blanks ? cw : limit - pos - blanks;
                        pos += blanks + shown[c];
                        n_shown = c + 1;
                        if (shown[c] < cw) {
                                cut = true;
                                break;
                        }
                }
                for (size_t c = 0; c < n_shown; c++) {
                        const Cell *cell = &t->cells[row * nc + c];
                        const char *col = row == 0 ? COLOR_UNDERLINE : cell->color;
                        /* columns left out: the last one shown ends with "…" */
                        bool last_of_cut = cut && c + 1 == n_shown;

                        if (last_of_cut && shown[c] == 0 && lead[c] > 0)
                                lead[c]--;
                        for (size_t k = 0; k < lead[c]; k++)
                                fputc(' ', f);
                        if (color && col)
                                fputs(col, f);
                        if (last_of_cut && shown[c] == 0)
                                fputs("…", f);
                        else
                                emit(f, cell->text, shown[c], last_of_cut);
                        if (color && col)
                                fputs(COLOR_RESET, f);
                }
                fputc('\n', f);
                lines++;
        }
        free(w);
        free(lead);
        free(shown);
        return lines;
}
