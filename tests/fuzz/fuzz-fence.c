/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fence agent's output goes to the journal only through fence_scrub(), with the agent's
 * options (fence_options: passwords) masked. The input is the options, a NUL byte, then the
 * agent's output.
 *
 * The oracle, beyond "no crash, no leak". The masked values are, as lib/fence.h promises, the
 * value of every option whose name says secret, and every other value of 3 characters or
 * more; the mask character is the first of * # ~ ^ % (else of printable ASCII) that none of
 * them holds. Then:
 *  1. no masked value occurs in the scrubbed text;
 *  2. no part of one is left: cut the raw output at every literal occurrence of every masked
 *     value, and call the pieces left the agent's own text. Every run of the scrubbed text
 *     between two masks must be a piece of the agent's own text (a substring of one piece).
 *     A remainder of a value ("-P ***123": "123" of admin123) is text from inside an
 *     occurrence, and fails this unless the very same characters are also the agent's own,
 *     in which case showing them shows nothing of the secret. This is sound for a correct
 *     scrubber whatever else it masks (each extra mask only shortens the runs), and it holds
 *     for substrings of every length, so no threshold is needed.
 * The mask character is the one thing runs are cut at: a remainder that holds it is not
 * seen, which is why the scrubber picks a character that no masked value holds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fence.h"
#include "fuzz.h"
#include "util.h"

typedef struct Span {
        const char *s;
        size_t n;
} Span;

static bool key_says_secret(const char *k, size_t n)
{
        static const char *const words[] = { "pass", "secret", "community", "token",
                                             "key",  "_kg",    "credential" };

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                for (size_t j = 0; j + strlen(words[i]) <= n; j++)
                        if (strncasecmp(k + j, words[i], strlen(words[i])) == 0)
                                return true;
        return false;
}

static size_t masked_values(const char *options, Span *v, size_t max)
{
        size_t n = 0;

        for (const char *p = options; *p && n < max;) {
                size_t len = strcspn(p, "\n");
                const char *eq = memchr(p, '=', len);

                if (eq) {
                        size_t kn = (size_t)(eq - p), vn = len - kn - 1;

                        if (vn > 0 && (vn >= 3 || key_says_secret(p, kn)))
                                v[n++] = (Span){ eq + 1, vn };
                }
                p += len;
                if (*p)
                        p++;
        }
        return n;
}

static char mask_char(const Span *v, size_t n)
{
        static const char first[] = "*#~^%";
        char order[sizeof(first) - 1 + 0x7f - 0x21];
        size_t k = 0;

        memcpy(order, first, sizeof(first) - 1);
        k = sizeof(first) - 1;
        for (int c = 0x21; c <= 0x7e; c++)
                order[k++] = (char)c;
        for (size_t i = 0; i < k; i++) {
                bool used = false;

                for (size_t j = 0; j < n && !used; j++)
                        used = memchr(v[j].s, order[i], v[j].n) != NULL;
                if (!used)
                        return order[i];
        }
        return 0;
}

/* Is run (n bytes) inside one of the pieces of text that no literal occurrence covers? */
static bool run_is_agents_own(const char *run, size_t n, const char *text, const bool *covered)
{
        size_t len = strlen(text);

        for (size_t i = 0; i + n <= len; i++) {
                bool free_span = true;

                if (memcmp(text + i, run, n) != 0)
                        continue;
                for (size_t j = i; j < i + n && free_span; j++)
                        free_span = !covered[j];
                if (free_span)
                        return true;
        }
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *buf = malloc(size + 2), *out = NULL;
        _cleanup_free_ bool *covered = NULL;
        const char *options, *output;
        Span v[64];
        size_t n, nv, len;
        char mask;

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = buf[size + 1] = 0;
        options = buf;
        n = strlen(options);
        output = n < size ? buf + n + 1 : "";

        out = fence_scrub(output, options);
        if (!out)
                return 0; /* out of memory */
        nv = masked_values(options, v, ELEMENTSOF(v));
        if (nv == ELEMENTSOF(v))
                return 0; /* more values than this oracle keeps: no verdict */
        mask = mask_char(v, nv);

        /* 1. no masked value */
        for (size_t k = 0; k < nv; k++)
                if (memmem(out, strlen(out), v[k].s, v[k].n))
                        abort(); /* a secret reached the journal */

        /* 2. no remainder: every run between masks is the agent's own text */
        len = strlen(output);
        covered = calloc(len + 1, sizeof(bool));
        if (!covered)
                return 0;
        for (size_t i = 0; i < len; i++)
                for (size_t k = 0; k < nv; k++)
                        if (len - i >= v[k].n && memcmp(output + i, v[k].s, v[k].n) == 0)
                                for (size_t j = i; j < i + v[k].n; j++)
                                        covered[j] = true;
        if (!mask) {
                if (*out)
                        abort(); /* nothing to mask with, yet something shown */
                return 0;
        }
        for (const char *p = out; *p;) {
                size_t run = strcspn(p, (char[]){ mask, 0 });

                if (run > 0 && !run_is_agents_own(p, run, output, covered))
                        abort(); /* a part of a secret reached the journal */
                p += run;
                p += strspn(p, (char[]){ mask, 0 });
        }
        return 0;
}
