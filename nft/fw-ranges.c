/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fw-ranges.h"
#include "util.h"

static int parse_cidr(const char *s, int family, FwRange *ret)
{
        char addr[INET6_ADDRSTRLEN + 1];
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        size_t len = family == AF_INET ? 4 : 16;
        uint64_t prefix = len * 8;
        uint8_t a[16] = { 0 };

        if (n == 0 || n >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, s, n);
        addr[n] = 0;
        if (inet_pton(family, addr, a) != 1)
                return 0; /* another family */
        if (slash && parse_uint_range(slash + 1, 0, len * 8, &prefix) < 0)
                return -EINVAL;

        for (size_t i = 0; i < len; i++) {
                unsigned bits = prefix > i * 8 ? (unsigned)MIN(prefix - i * 8, 8) : 0;
                uint8_t mask = bits == 0 ? 0 : (uint8_t)(0xff << (8 - bits));

                ret->start[i] = a[i] & mask;
                ret->end[i] = a[i] | (uint8_t)~mask;
        }
        return 1;
}

static size_t cmp_len; /* qsort has no context argument */

static int cmp_range(const void *x, const void *y)
{
        return memcmp(((const FwRange *)x)->start, ((const FwRange *)y)->start, cmp_len);
}

bool fw_range_end_exclusive(const FwRange *r, size_t len, uint8_t out[16])
{
        memcpy(out, r->end, len);
        for (size_t i = len; i > 0; i--)
                if (++out[i - 1] != 0)
                        return true;
        return false;
}

int fw_ranges_from_cidrs(char *const *cidrs, int family, FwRange **ret, size_t *ret_n)
{
        size_t len = family == AF_INET ? 4 : 16, n = 0, m = 0;
        FwRange *r = NULL;

        for (char *const *s = cidrs; s && *s; s++) {
                FwRange *t = realloc(r, sizeof(FwRange) * (n + 1));
                int k;

                if (!t) {
                        free(r);
                        return -ENOMEM;
                }
                r = t;
                memset(&r[n], 0, sizeof(FwRange));
                k = parse_cidr(*s, family, &r[n]);
                if (k < 0 && !ip_address_is_valid(*s, NULL) && !cidr_is_valid(*s)) {
                        free(r);
                        return -EINVAL;
                }
                if (k > 0)
                        n++;
        }

        cmp_len = len;
        if (n > 1)
                qsort(r, n, sizeof(FwRange), cmp_range);

        /* merge overlapping and adjacent ranges */
        for (size_t i = 0; i < n; i++) {
                uint8_t next[16];

                if (m > 0 && (!fw_range_end_exclusive(&r[m - 1], len, next) ||
                              memcmp(r[i].start, next, len) <= 0)) {
                        if (memcmp(r[i].end, r[m - 1].end, len) > 0)
                                memcpy(r[m - 1].end, r[i].end, len);
                        continue;
                }
                r[m++] = r[i];
        }

        *ret = r;
        *ret_n = m;
        return 0;
}

int fw_range_format(const FwRange *r, int family, char **ret)
{
        size_t len = family == AF_INET ? 4 : 16;
        char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
        unsigned prefix = 0;
        bool is_prefix = true;

        /* a prefix when start has a run of host bits 0 that end fills with 1 */
        for (size_t i = 0; i < len * 8; i++) {
                unsigned bit = 7 - (unsigned)(i % 8);
                bool s = (r->start[i / 8] >> bit) & 1, e = (r->end[i / 8] >> bit) & 1;

                if (s == e && prefix == i)
                        prefix++;
                else if (s || !e)
                        is_prefix = false;
        }
        inet_ntop(family, r->start, a, sizeof(a));
        inet_ntop(family, r->end, b, sizeof(b));
        if (is_prefix && prefix == len * 8)
                return asprintf(ret, "%s", a) < 0 ? -ENOMEM : 0;
        if (is_prefix)
                return asprintf(ret, "%s/%u", a, prefix) < 0 ? -ENOMEM : 0;
        return asprintf(ret, "%s-%s", a, b) < 0 ? -ENOMEM : 0;
}
