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

size_t print_cut(FILE *f, const char *s, size_t width, size_t pad)
{
        size_t n = utf8_width(s), printed = 0;

        if (n <= width) {
                fputs(s, f);
                printed = n;
        } else if (width > 0) {
                /* width - 1 code points, then the ellipsis */
                const unsigned char *p = (const unsigned char *)s;
                size_t cps = 0;

                for (; *p; p++) {
                        if ((*p & 0xc0) != 0x80) {
                                if (cps == width - 1)
                                        break;
                                cps++;
                        }
                        fputc(*p, f);
                }
                fputs("…", f);
                printed = width;
        }
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

                if (!s || add_cell(t, NULL, s) < 0) {
                        free(s);
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
        size_t *w;

        if (nc == 0)
                return 0;
        w = calloc(nc, sizeof(size_t));
        if (!w)
                return 0;
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
                size_t left = width > 0 ? width : SIZE_MAX;

                for (size_t c = 0; c < nc && row * nc + c < t->n_cells && left > 0; c++) {
                        const Cell *cell = &t->cells[row * nc + c];
                        const char *col = row == 0 ? COLOR_UNDERLINE : cell->color;
                        bool last = c + 1 == nc;

                        if (rest_empty(t, row, c))
                                break;
                        size_t cw = w[c] < left ? w[c] : left, n = utf8_width(cell->text);

                        if (c > 0) {
                                fputc(' ', f);
                                left--;
                                if (left == 0)
                                        break;
                                cw = w[c] < left ? w[c] : left;
                        }
                        if (color && col)
                                fputs(col, f);
                        if (t->right[c] && n < cw)
                                for (size_t k = n; k < cw; k++)
                                        fputc(' ', f);
                        /* nothing after it: not padded, no trailing blanks */
                        print_cut(f, cell->text, cw,
                                  t->right[c] || last || rest_empty(t, row, c + 1) ? 0 : cw);
                        if (color && col)
                                fputs(COLOR_RESET, f);
                        left -= cw;
                }
                fputc('\n', f);
                lines++;
        }
        free(w);
        return lines;
}
