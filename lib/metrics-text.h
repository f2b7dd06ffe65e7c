/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Prometheus' text exposition format (version 0.0.4), as node_exporter's textfile collector
 * reads it (docs/metrics.md): families with their HELP and TYPE, samples with escaped label
 * values, histograms with cumulative buckets up to +Inf, _sum and _count.
 *
 * Labels are given as NULL-terminated lists of name, value pairs; names are the caller's
 * constants, values may be anything (a domain's name) and are escaped here.
 */

#define METRICS_BUCKETS_MAX 16

typedef struct MetricsHistogram {
        const double *bounds;                     /* upper bounds, ascending; +Inf is implied */
        size_t n_bounds;                          /* at most METRICS_BUCKETS_MAX */
        uint64_t counts[METRICS_BUCKETS_MAX + 1]; /* per bucket, not cumulative; last: +Inf */
        double sum;
        uint64_t count;
} MetricsHistogram;

/* An empty histogram over bounds (n at most METRICS_BUCKETS_MAX: more are ignored). */
void metrics_histogram_init(MetricsHistogram *h, const double *bounds, size_t n);
void metrics_histogram_observe(MetricsHistogram *h, double value);

/* "# HELP" and "# TYPE" of a family (type: counter, gauge, histogram). */
void metrics_text_family(FILE *f, const char *name, const char *type, const char *help);
void metrics_text_sample(FILE *f, const char *name, const char *const *labels, double value);
/* name_bucket{labels,le="..."} for every bound and +Inf, then name_sum and name_count. */
void metrics_text_histogram(FILE *f, const char *name, const char *const *labels,
                            const MetricsHistogram *h);
