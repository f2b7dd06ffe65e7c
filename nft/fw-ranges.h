/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address range [start, end], big-endian bytes, 4 of them used for IPv4. */
typedef struct FwRange {
        uint8_t start[16];
        uint8_t end[16];
} FwRange;

/*
 * The CIDRs (or bare addresses) of one family (AF_INET or AF_INET6) as sorted ranges,
 * overlapping and adjacent ones merged: the kernel refuses overlapping intervals in a set.
 * Items of the other family are skipped; an invalid item is -EINVAL.
 */
int fw_ranges_from_cidrs(char *const *cidrs, int family, FwRange **ret, size_t *ret_n);

/* end + 1 into out; false when that wraps (the range reaches the last address). */
bool fw_range_end_exclusive(const FwRange *r, size_t len, uint8_t out[16]);

/* "a.b.c.d/len", "start-end" or "addr" for a range. */
int fw_range_format(const FwRange *r, int family, char **ret);
