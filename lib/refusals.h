/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The hook's refusals, counted for hostwardend's metrics (docs/metrics.md): the hook is a
 * short-lived process whose exec time matters, so a refusal costs it one append of one line
 * to <runtime_dir>/refusals/<reason> (O_APPEND: no lock, no read), and the file's size is the
 * count. hostwardend reads the sizes when it writes its metrics. The files live in the
 * runtime directory (tmpfs): they start again from zero at boot, which a Prometheus counter
 * allows.
 */

#define REFUSAL_REASON_MAX 63

typedef struct RefusalCount {
        char reason[REFUSAL_REASON_MAX + 1];
        uint64_t count;
} RefusalCount;

/* Whether reason can name a count: [a-z0-9-], 1 to REFUSAL_REASON_MAX characters. */
bool refusal_reason_is_valid(const char *reason);
/* One more refusal for reason. */
int refusal_count_bump(const char *runtime_dir, const char *reason);
/* Every reason counted so far, sorted by name (*ret NULL, *ret_n 0 when none). */
int refusal_counts_read(const char *runtime_dir, RefusalCount **ret, size_t *ret_n);
