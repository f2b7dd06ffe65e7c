/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Prometheus' text format as lib/metrics-text.c writes it: families, escaped label values,
 * histograms with cumulative buckets up to +Inf, _sum and _count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "metrics-text.h"

/* What the writer made of one call, NUL-terminated (free it). */
typedef struct Out {
        char *text;
        size_t size;
        FILE *f;
} Out;

static void out_open(Out *o)
{
        memset(o, 0, sizeof(*o));
        o->f = open_memstream(&o->text, &o->size);
        assert_non_null(o->f);
}

static char *out_close(Out *o)
{
        assert_int_equal(fclose(o->f), 0);
        return o->text;
}

static void test_a_family_and_its_samples(void **state)
{
        const char *labels[] = { "mode", "live", "result", "completed", NULL };
        Out o;

        out_open(&o);
        metrics_text_family(o.f, "hw_migrations_total", "counter", "Migrations ended.");
        metrics_text_sample(o.f, "hw_migrations_total", labels, 3);
        metrics_text_sample(o.f, "hw_up", NULL, 1);
        /* bytes pass 2^32 and stay integers; fractions keep their digits */
        metrics_text_sample(o.f, "hw_bytes", NULL, 68719476736.0);
        metrics_text_sample(o.f, "hw_seconds", NULL, 0.025);
        char *text = out_close(&o);
        assert_string_equal(text, "# HELP hw_migrations_total Migrations ended.\n"
                                  "# TYPE hw_migrations_total counter\n"
                                  "hw_migrations_total{mode=\"live\",result=\"completed\"} 3\n"
                                  "hw_up 1\n"
                                  "hw_bytes 68719476736\n"
                                  "hw_seconds 0.025\n");
        free(text);
}

/* A guest's name is anybody's text: quote, backslash and newline are escaped in a label
 * value; in HELP only backslash and newline are. */
static void test_label_values_and_help_are_escaped(void **state)
{
        const char *labels[] = { "domain", "web \"one\"\\prod\nx", NULL };
        Out o;

        out_open(&o);
        metrics_text_family(o.f, "hw_x", "gauge", "a \"quoted\" back\\slash\nand a line");
        metrics_text_sample(o.f, "hw_x", labels, 1);
        char *text = out_close(&o);
        assert_string_equal(text, "# HELP hw_x a \"quoted\" back\\\\slash\\nand a line\n"
                                  "# TYPE hw_x gauge\n"
                                  "hw_x{domain=\"web \\\"one\\\"\\\\prod\\nx\"} 1\n");
        free(text);
}

/* Buckets count what is at most their bound (le), cumulatively, +Inf holds everything and
 * equals _count; le comes after the caller's labels. */
static void test_histogram_buckets_are_cumulative_up_to_inf(void **state)
{
        static const double bounds[] = { 1, 2.5 };
        const char *labels[] = { "mode", "live", NULL };
        MetricsHistogram h;
        Out o;

        metrics_histogram_init(&h, bounds, 2);
        metrics_histogram_observe(&h, 0.5);
        metrics_histogram_observe(&h, 1); /* on the bound: in it */
        metrics_histogram_observe(&h, 2);
        metrics_histogram_observe(&h, 10);
        out_open(&o);
        metrics_text_histogram(o.f, "hw_d_seconds", labels, &h);
        char *text = out_close(&o);
        assert_string_equal(text, "hw_d_seconds_bucket{mode=\"live\",le=\"1\"} 2\n"
                                  "hw_d_seconds_bucket{mode=\"live\",le=\"2.5\"} 3\n"
                                  "hw_d_seconds_bucket{mode=\"live\",le=\"+Inf\"} 4\n"
                                  "hw_d_seconds_sum{mode=\"live\"} 13.5\n"
                                  "hw_d_seconds_count{mode=\"live\"} 4\n");
        free(text);
}

/* Before anything is observed, every bucket is there with 0; a NaN is not counted. */
static void test_an_empty_histogram_has_every_bucket(void **state)
{
        static const double bounds[] = { 0.01 };
        MetricsHistogram h;
        Out o;

        metrics_histogram_init(&h, bounds, 1);
        metrics_histogram_observe(&h, 0.0 / 0.0);
        out_open(&o);
        metrics_text_histogram(o.f, "hw_s", NULL, &h);
        char *text = out_close(&o);
        assert_string_equal(text, "hw_s_bucket{le=\"0.01\"} 0\n"
                                  "hw_s_bucket{le=\"+Inf\"} 0\n"
                                  "hw_s_sum 0\n"
                                  "hw_s_count 0\n");
        free(text);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_family_and_its_samples),
                cmocka_unit_test(test_label_values_and_help_are_escaped),
                cmocka_unit_test(test_histogram_buckets_are_cumulative_up_to_inf),
                cmocka_unit_test(test_an_empty_histogram_has_every_bucket),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
