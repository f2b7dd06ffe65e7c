/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Prometheus' text exposition format (metrics-text.h). */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "metrics-text.h"

void metrics_histogram_init(MetricsHistogram *h, const double *bounds, size_t n)
{
        memset(h, 0, sizeof(*h));
        h->bounds = bounds;
        h->n_bounds = n < METRICS_BUCKETS_MAX ? n : METRICS_BUCKETS_MAX;
}

void metrics_histogram_observe(MetricsHistogram *h, double value)
{
        size_t i = 0;

        if (isnan(value))
                return; /* it would poison _sum for good */
        while (i < h->n_bounds && value > h->bounds[i])
                i++;
        h->counts[i]++;
        h->sum += value;
        h->count++;
}

/* %.15g: integers below 10^15 (bytes, counts) stay integers, other values keep what a double
 * holds meaningfully; and Prometheus' spellings of the infinities */
static void put_value(FILE *f, double v)
{
        if (isnan(v))
                fputs("NaN", f);
        else if (isinf(v))
                fputs(v > 0 ? "+Inf" : "-Inf", f);
        else
                fprintf(f, "%.15g", v);
}

/* HELP text escapes backslash and newline; label values escape the double quote too. */
static void put_escaped(FILE *f, const char *s, bool quote)
{
        for (; s && *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else if (*s == '"' && quote)
                        fputs("\\\"", f);
                else
                        fputc(*s, f);
        }
}

void metrics_text_family(FILE *f, const char *name, const char *type, const char *help)
{
        fprintf(f, "# HELP %s ", name);
        put_escaped(f, help, false);
        fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* {a="x",b="y"} with le last when given; nothing when there are no labels at all. */
static void put_labels(FILE *f, const char *const *labels, const char *le)
{
        bool any = false;

        for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
                fprintf(f, "%s%s=\"", any ? "," : "{", labels[i]);
                put_escaped(f, labels[i + 1], true);
                fputc('"', f);
                any = true;
        }
        if (le) {
                fprintf(f, "%sle=\"%s\"", any ? "," : "{", le);
                any = true;
        }
        if (any)
                fputc('}', f);
}

void metrics_text_sample(FILE *f, const char *name, const char *const *labels, double value)
{
        fputs(name, f);
        put_labels(f, labels, NULL);
        fputc(' ', f);
        put_value(f, value);
        fputc('\n', f);
}

void metrics_text_histogram(FILE *f, const char *name, const char *const *labels,
                            const MetricsHistogram *h)
{
        uint64_t cumulative = 0;

        for (size_t i = 0; i <= h->n_bounds; i++) {
                char le[64];

                if (i < h->n_bounds)
                        snprintf(le, sizeof(le), "%.15g", h->bounds[i]);
                else
                        strcpy(le, "+Inf");
                cumulative += h->counts[i];
                fprintf(f, "%s_bucket", name);
                put_labels(f, labels, le);
                fprintf(f, " %llu\n", (unsigned long long)cumulative);
        }
        fprintf(f, "%s_sum", name);
        put_labels(f, labels, NULL);
        fputc(' ', f);
        put_value(f, h->sum);
        fprintf(f, "\n%s_count", name);
        put_labels(f, labels, NULL);
        fprintf(f, " %llu\n", (unsigned long long)h->count);
}
