/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scrubbing a fence agent's output of the agent's options (docs/evacuation.md, "Secrets").
 *
 * Replacing one value after the other corrupts the text the next value is looked for in:
 * with username=admin and password=admin123, "-P admin123" became "-P ***123" and the rest
 * of the password was no longer found. So nothing is replaced until everything is found:
 * every occurrence of every value (literal, or as an agent echoes it in quotes or with
 * backslashes) marks its bytes in the original text, the words after password flags are
 * marked too, and then each run of marked bytes becomes one mask. Overlapping values, values
 * that contain each other and values inside other text all end up inside a marked run.
 *
 * The mask is three of one character that no masked value holds (the first of MASK_CHARS,
 * else of the printable ASCII characters), so a mask next to kept text can never spell a
 * value, and whatever is left between two masks is text of the agent's own.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fence.h"

#define MASK_CHARS "*#~^%"
#define MASK_LEN   3
#define WORD_MAX   256 /* longer than any password */

/* Option names that say "secret", as fence-agents spell them (passwd, password,
 * snmp_priv_passwd, community, hexadecimal_kg, secret-key...) and as other agents might. */
static const char *const secret_words[] = { "pass", "secret", "community", "token",
                                            "key",  "_kg",    "credential" };

bool fence_option_is_secret(const char *key, size_t n)
{
        for (size_t i = 0; i < ELEMENTSOF(secret_words); i++) {
                size_t w = strlen(secret_words[i]);

                for (size_t j = 0; j + w <= n; j++)
                        if (strncasecmp(key + j, secret_words[i], w) == 0)
                                return true;
        }
        return false;
}

typedef struct Value {
        const char *s;
        size_t n;
} Value;

/* The masked values of options: a secret's value whatever its length, any other value of
 * FENCE_SCRUB_MIN_VALUE characters or more (an address or a user name is not a secret, but
 * an option name does not reliably say what is one). */
static int masked_values(const char *options, Value **ret, size_t *ret_n)
{
        Value *v = NULL;
        size_t n = 0;

        for (const char *p = options; p && *p;) {
                size_t len = strcspn(p, "\n");
                const char *eq = memchr(p, '=', len);

                if (eq) {
                        size_t kn = (size_t)(eq - p), vn = len - kn - 1;

                        if (vn > 0 &&
                            (vn >= FENCE_SCRUB_MIN_VALUE || fence_option_is_secret(p, kn))) {
                                Value *t = realloc(v, sizeof(Value) * (n + 1));

                                if (!t) {
                                        free(v);
                                        return -ENOMEM;
                                }
                                v = t;
                                v[n++] = (Value){ eq + 1, vn };
                        }
                }
                p += len;
                if (*p)
                        p++;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* The length of value as it appears escaped at text (len bytes left), or 0: with characters
 * backslash-escaped (shell double quotes, JSON, Python's repr), or with a single quote written
 * the shell's ways inside single quotes ('\'' and '"'"'). Escapes are tried first; the
 * literal value is looked for apart (memcmp), so that it is always found. */
static size_t match_escaped_at(const char *text, size_t len, const Value *v)
{
        size_t j = 0;

        for (size_t i = 0; i < v->n; i++) {
                char c = v->s[i];

                if (c == '\'' && len - j >= 4 && memcmp(text + j, "'\\''", 4) == 0)
                        j += 4;
                else if (c == '\'' && len - j >= 5 && memcmp(text + j, "'\"'\"'", 5) == 0)
                        j += 5;
                else if (j + 1 < len && text[j] == '\\' && text[j + 1] == c)
                        j += 2;
                else if (j < len && text[j] == c)
                        j++;
                else
                        return 0;
        }
        return j;
}

static bool is_boundary(const char *text, size_t i)
{
        return i == 0 || isspace((unsigned char)text[i - 1]) || strchr("'\"([{,;", text[i - 1]);
}

/* The end of the word that starts at i: a quoted string up to its closing quote (past
 * backslash escapes; a quote not closed within WORD_MAX bytes is taken as a character), else
 * up to white space (next_space[i]: the first white space at or after i). */
static size_t word_end(const char *text, size_t len, const size_t *next_space, size_t i)
{
        char q = i < len ? text[i] : 0;

        if (q == '\'' || q == '"') {
                size_t limit = MIN(len, i + WORD_MAX);

                for (size_t j = i + 1; j < limit; j++) {
                        if (text[j] == q)
                                return j + 1;
                        if (text[j] == '\\')
                                j++;
                }
        }
        return next_space[i];
}

/* The value of a password flag or key, whatever it is (say, a password_script's output,
 * which is in no option): "-p X", "-P X", "--password X", "--passwd=X", "password=X",
 * "passwd: X" and the like. Marks [start, end) of X. */
static bool flag_value_at(const char *text, size_t len, const size_t *next_space, size_t i,
                          size_t *ret_start, size_t *ret_end)
{
        static const char *const flags[] = { "--password", "--passwd", "-p", "-P" };
        static const char *const keys[] = { "password", "passwd" };
        size_t j = 0;
        bool flag = false;

        if (!is_boundary(text, i))
                return false;
        for (size_t k = 0; k < ELEMENTSOF(flags) && !flag; k++) {
                size_t n = strlen(flags[k]);

                if (len - i >= n && memcmp(text + i, flags[k], n) == 0 &&
                    (i + n == len || isspace((unsigned char)text[i + n]) || text[i + n] == '=')) {
                        j = i + n;
                        flag = true;
                }
        }
        for (size_t k = 0; k < ELEMENTSOF(keys) && !flag; k++) {
                size_t n = strlen(keys[k]);

                if (len - i > n && strncasecmp(text + i, keys[k], n) == 0 &&
                    (text[i + n] == '=' || text[i + n] == ':')) {
                        j = i + n;
                        flag = true;
                }
        }
        if (!flag)
                return false;
        if (j < len && (text[j] == '=' || text[j] == ':'))
                j++;
        /* one line at most: "-p" at the end of a line takes no word from the next */
        while (j < len && (text[j] == ' ' || text[j] == '\t'))
                j++;
        if (j >= len || text[j] == '\n' || text[j] == '\r')
                return false;
        *ret_start = j;
        *ret_end = word_end(text, len, next_space, j);
        return true;
}

static bool char_in_values(const Value *v, size_t n, char c)
{
        for (size_t i = 0; i < n; i++)
                if (memchr(v[i].s, c, v[i].n))
                        return true;
        return false;
}

char fence_scrub_mask_char(const char *options)
{
        _cleanup_free_ Value *v = NULL;
        size_t n = 0;

        if (masked_values(options, &v, &n) < 0)
                return 0;
        for (const char *c = MASK_CHARS; *c; c++)
                if (!char_in_values(v, n, *c))
                        return *c;
        for (char c = 0x21; c <= 0x7e; c++)
                if (!char_in_values(v, n, c))
                        return c;
        return 0;
}

char *fence_scrub(const char *text, const char *options)
{
        _cleanup_free_ Value *v = NULL;
        _cleanup_free_ size_t *next_space = NULL;
        _cleanup_free_ int *depth = NULL; /* +1 where a marked range starts, -1 past its end */
        size_t n = 0, len;
        char mask = fence_scrub_mask_char(options);
        char *out, *w;
        int marked = 0;

        text = text ? text : "";
        len = strlen(text);
        if (masked_values(options, &v, &n) < 0)
                return NULL;
        if (!mask)
                return strdup(""); /* no character to mask with: nothing can be shown */
        depth = calloc(len + 1, sizeof(int));
        next_space = malloc(sizeof(size_t) * (len + 1));
        out = malloc(len * MASK_LEN + 1);
        if (!depth || !next_space || !out) {
                free(out);
                return NULL;
        }
        next_space[len] = len;
        for (size_t i = len; i > 0; i--)
                next_space[i - 1] = isspace((unsigned char)text[i - 1]) ? i - 1 : next_space[i];

        for (size_t i = 0; i < len; i++) {
                size_t s, e;

                for (size_t k = 0; k < n; k++) {
                        size_t m = 0;

                        if (len - i >= v[k].n && memcmp(text + i, v[k].s, v[k].n) == 0)
                                m = v[k].n;
                        m = MAX(m, match_escaped_at(text + i, len - i, &v[k]));
                        if (m > 0) {
                                depth[i]++;
                                depth[i + m]--;
                        }
                }
                if (flag_value_at(text, len, next_space, i, &s, &e) && e > s) {
                        depth[s]++;
                        depth[e]--;
                }
        }

        w = out;
        for (size_t i = 0; i < len; i++) {
                bool was = marked > 0;

                marked += depth[i];
                if (marked == 0)
                        *w++ = text[i];
                else if (!was) {
                        memset(w, mask, MASK_LEN);
                        w += MASK_LEN;
                }
        }
        *w = 0;

        /* Cannot happen (see the top of this file); if it ever did, show nothing. */
        for (size_t k = 0; k < n; k++)
                if (memmem(out, (size_t)(w - out), v[k].s, v[k].n)) {
                        explicit_bzero(out, (size_t)(w - out));
                        out[0] = 0;
                        break;
                }
        return out;
}
