/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "Did you mean": the closest known word (spelling.h). */
#include <string.h>

#include "spelling.h"
#include "util.h"

/* longer words are not keys or sections: no hint, rather than a large table */
#define SPELLING_MAX 64

static size_t distance(const char *a, const char *b)
{
        size_t n = strlen(a), m = strlen(b);
        size_t d[SPELLING_MAX + 1][SPELLING_MAX + 1];

        if (n > SPELLING_MAX || m > SPELLING_MAX)
                return SIZE_MAX;
        for (size_t i = 0; i <= n; i++)
                d[i][0] = i;
        for (size_t j = 0; j <= m; j++)
                d[0][j] = j;
        for (size_t i = 1; i <= n; i++)
                for (size_t j = 1; j <= m; j++) {
                        size_t cost = a[i - 1] != b[j - 1];
                        size_t v =
                                MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);

                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                v = MIN(v, d[i - 2][j - 2] + 1); /* "adress" ↔ "adrses" */
                        d[i][j] = v;
                }
        return d[n][m];
}

const char *spelling_closest(const char *word, const char *const *candidates, size_t n)
{
        size_t best = SIZE_MAX, limit;
        const char *found = NULL;

        if (!word)
                return NULL;
        limit = MIN((size_t)2, strlen(word) / 3);
        for (size_t i = 0; i < n; i++) {
                size_t d = distance(word, candidates[i]);

                if (d > 0 && d <= limit && d < best) {
                        best = d;
                        found = candidates[i];
                }
        }
        return found;
}
