/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pure parts of a cold migration (coldmig.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coldmig.h"

static const char *const cold_state_table[_COLD_STATE_MAX] = {
        [COLD_LANDING] = "landing",
        [COLD_VERIFY] = "verify",
        [COLD_REVERTING] = "reverting",
};

DEFINE_STRING_TABLE_LOOKUP(cold_state, ColdState, _COLD_STATE_INVALID);

static bool needs_escape(unsigned char c)
{
        return c <= ' ' || c == '%' || c == 0x7f;
}

int cold_paths_format(char *const *paths, char **ret)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (strv_length(paths) == 0)
                return -EINVAL;
        STRV_FOREACH (p, paths)
                if ((*p)[0] != '/')
                        return -EINVAL;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        STRV_FOREACH (p, paths) {
                if (p != paths)
                        fputc(' ', f);
                for (const unsigned char *c = (const unsigned char *)*p; *c; c++)
                        if (needs_escape(*c))
                                fprintf(f, "%%%02X", *c);
                        else
                                fputc(*c, f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -EINVAL;
}

/* One path of the list: [s, end) unescaped. */
static int unescape(const char *s, const char *end, char **ret)
{
        char *out = malloc(end - s + 1), *o = out;

        if (!out)
                return -ENOMEM;
        while (s < end) {
                int hi, lo;

                if (*s != '%') {
                        *o++ = *s++;
                        continue;
                }
                hi = end - s >= 3 ? hex_value(s[1]) : -EINVAL;
                lo = end - s >= 3 ? hex_value(s[2]) : -EINVAL;
                /* only what formatting escapes: one text per list */
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0) ||
                    !needs_escape((unsigned char)(hi << 4 | lo))) {
                        free(out);
                        return -EINVAL;
                }
                *o++ = (char)(hi << 4 | lo);
                s += 3;
        }
        *o = '\0';
        if (out[0] != '/') {
                free(out);
                return -EINVAL;
        }
        *ret = out;
        return 0;
}

int cold_paths_parse(const char *text, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        const char *s = text;
        int r;

        if (isempty(text))
                return -EINVAL;
        for (;;) {
                const char *end = strchrnul(s, ' ');
                char *path;

                r = unescape(s, end, &path);
                if (r < 0)
                        return r;
                r = strv_push(&l, path);
                if (r < 0)
                        return r;
                if (!*end)
                        break;
                s = end + 1;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

char *cold_volume_xml(const char *name, uint64_t length, const char *source_volume_xml)
{
        const char *perm = source_volume_xml ? strstr(source_volume_xml, "<permissions>") : NULL;
        const char *perm_end = perm ? strstr(perm, "</permissions>") : NULL;
        char *xml;

        if (isempty(name) || strpbrk(name, "/<>&'\"") || streq(name, ".") || streq(name, ".."))
                return NULL;
        if (!perm_end)
                perm = perm_end = "";
        else
                perm_end += strlen("</permissions>");
        if (asprintf(&xml,
                     "<volume type='file'><name>%s</name>"
                     "<capacity unit='bytes'>%llu</capacity>"
                     "<allocation unit='bytes'>0</allocation>"
                     "<target><format type='raw'/>%.*s</target></volume>",
                     name, (unsigned long long)length, (int)(perm_end - perm), perm) < 0)
                return NULL;
        return xml;
}

bool cold_confirm_due(uint64_t verify_since, usec_t window, uint64_t now, usec_t *ret_left)
{
        uint64_t due;

        if (window == 0) {
                if (ret_left)
                        *ret_left = UINT64_MAX;
                return false;
        }
        due = verify_since > UINT64_MAX - window ? UINT64_MAX : verify_since + window;
        if (now >= due)
                return true;
        if (ret_left)
                *ret_left = due - now;
        return false;
}
