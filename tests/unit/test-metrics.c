/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What hostwardend counts (dbus/metrics.c), from the history records its operations leave,
 * as the textfile shows it: migrations by mode and result, durations and downtimes of the
 * completed ones only, every ended one's bytes, fences by action and result, the label sets
 * alerts look for present at 0 from the start. Built with the daemon's library, without a
 * bus or a store.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"
#include "metrics-internal.h"
#include "test-helpers.h"

#define S USEC_PER_SEC

static char *exposition(Manager *m)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        assert_non_null(f);
        metrics_format(m, f);
        assert_int_equal(fclose(f), 0);
        return text;
}

static bool has_line(const char *text, const char *line)
{
        size_t n = strlen(line);

        for (const char *p = text; (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return true;
        fprintf(stderr, "no line '%s' in:\n%s\n", line, text);
        return false;
}

static void ended(Manager *m, const char *kind, const char *mode, const char *result,
                  const char *name, uint64_t seconds, uint64_t downtime_ms, uint64_t bytes)
{
        HistoryRecord h = {
                .kind = (char *)kind,
                .mode = (char *)mode,
                .result = (char *)result,
                .domain_name = (char *)name,
                .started = 1000 * S,
                .finished = 1000 * S + seconds * S,
                .downtime = downtime_ms * USEC_PER_MSEC,
                .bytes = bytes,
        };

        metrics_operation_ended(m, &h);
}

static void test_nothing_happened_yet_every_alerted_series_is_zero(void **state)
{
        Manager m = { .metrics = metrics_new() };
        char *text;

        assert_non_null(m.metrics);
        text = exposition(&m);
        assert_true(has_line(text, "# TYPE hostwarden_migrations_total counter"));
        assert_true(
                has_line(text, "hostwarden_migrations_total{mode=\"live\",result=\"failed\"} 0"));
        assert_true(has_line(text, "hostwarden_migrations_started_total{mode=\"cold\"} 0"));
        assert_true(has_line(text, "hostwarden_fences_total{action=\"off\",result=\"failed\"} 0"));
        assert_true(has_line(text, "hostwarden_hook_refusals_total{reason=\"evacuated\"} 0"));
        assert_true(
                has_line(text, "hostwarden_migration_duration_seconds_count{mode=\"block\"} 0"));
        assert_true(has_line(text, "hostwarden_store_heartbeat_failures_total 0"));
        /* no store attached, no node listed: nothing said about them */
        assert_true(has_line(text, "hostwarden_store_attached 0"));
        assert_null(strstr(text, "hostwarden_nodes"));
        free(text);
        metrics_state_free(m.metrics);
}

static void test_outcomes_are_counted_by_kind_mode_and_result(void **state)
{
        Manager m = { .metrics = metrics_new() };
        char *text;

        metrics_migration_started(&m, "live");
        metrics_migration_started(&m, "live");
        metrics_migration_started(&m, "cold");
        ended(&m, "migration", "live", "completed", "web1", 3, 20, 5 << 20);
        ended(&m, "migration", "live", "aborted", "web \"2\"", 40, 0, 100 << 20);
        ended(&m, "migration", "cold", "completed", "db1", 90, 0, 1 << 30);
        ended(&m, "fence", "off", "off", NULL, 2, 0, 0);
        ended(&m, "drain", "2-migrations", "queued", NULL, 0, 0, 0);
        ended(&m, "rebuild", NULL, "refused", "vm9", 0, 0, 0);
        text = exposition(&m);

        assert_true(has_line(text, "hostwarden_migrations_started_total{mode=\"live\"} 2"));
        assert_true(has_line(text, "hostwarden_migrations_started_total{mode=\"cold\"} 1"));
        assert_true(has_line(text,
                             "hostwarden_migrations_total{mode=\"live\",result=\"completed\"} 1"));
        assert_true(
                has_line(text, "hostwarden_migrations_total{mode=\"live\",result=\"aborted\"} 1"));
        assert_true(has_line(text,
                             "hostwarden_migrations_total{mode=\"cold\",result=\"completed\"} 1"));
        assert_true(has_line(text, "hostwarden_domain_migrations_total{domain=\"web1\"} 1"));
        assert_true(
                has_line(text, "hostwarden_domain_migrations_total{domain=\"web \\\"2\\\"\"} 1"));
        /* the aborted one's time says nothing about how long migrations take */
        assert_true(has_line(text, "hostwarden_migration_duration_seconds_count{mode=\"live\"} 1"));
        assert_true(has_line(text, "hostwarden_migration_duration_seconds_sum{mode=\"live\"} 3"));
        assert_true(has_line(
                text, "hostwarden_migration_duration_seconds_bucket{mode=\"live\",le=\"2.5\"} 0"));
        assert_true(has_line(
                text, "hostwarden_migration_duration_seconds_bucket{mode=\"live\",le=\"5\"} 1"));
        assert_true(
                has_line(text, "hostwarden_migration_downtime_seconds_sum{mode=\"live\"} 0.02"));
        /* a cold migration has no switchover: no downtime series for it at all */
        assert_null(strstr(text, "hostwarden_migration_downtime_seconds_count{mode=\"cold\"}"));
        assert_true(has_line(text, "hostwarden_migration_duration_seconds_count{mode=\"cold\"} 1"));
        /* the aborted one's bytes crossed the network too */
        assert_true(
                has_line(text, "hostwarden_migration_data_processed_bytes_count{mode=\"live\"} 2"));
        assert_true(has_line(
                text, "hostwarden_migration_data_processed_bytes_sum{mode=\"live\"} 110100480"));
        assert_true(has_line(text, "hostwarden_fences_total{action=\"off\",result=\"off\"} 1"));
        assert_true(has_line(text, "hostwarden_drains_total{result=\"queued\"} 1"));
        assert_true(has_line(text, "hostwarden_rebuilds_total{result=\"refused\"} 1"));
        free(text);
        metrics_state_free(m.metrics);
}

/* The heartbeat's time goes to its histogram; a failed write is counted besides. */
static void test_heartbeats_are_timed_and_failures_counted(void **state)
{
        Manager m = { .metrics = metrics_new() };
        char *text;

        metrics_heartbeat_written(&m, 0, 3 * USEC_PER_MSEC);
        metrics_heartbeat_written(&m, -ETIMEDOUT, 5 * S);
        text = exposition(&m);
        assert_true(has_line(
                text, "hostwarden_store_heartbeat_duration_seconds_bucket{le=\"0.0025\"} 0"));
        assert_true(has_line(text,
                             "hostwarden_store_heartbeat_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert_true(
                has_line(text, "hostwarden_store_heartbeat_duration_seconds_bucket{le=\"5\"} 2"));
        assert_true(has_line(text, "hostwarden_store_heartbeat_duration_seconds_count 2"));
        assert_true(has_line(text, "hostwarden_store_heartbeat_failures_total 1"));
        free(text);
        metrics_state_free(m.metrics);
}

/* Every reason hostwarden-hook refuses for (hook_refuse(ctx, "REASON", ...) in hooks/, and
 * the fenced and forced-down markers) is a series from the start, so that an alert on its
 * first refusal sees it: the daemon's list cannot fall behind the hook's. */
static void test_every_reason_the_hook_refuses_for_is_a_series(void **state)
{
        static const char *const files[] = { "hook-migrate.c", "hook-prepare.c", "hook.c" };
        const char *src = getenv("HW_SOURCE_DIR");
        Manager m = { .metrics = metrics_new() };
        char *text = exposition(&m);
        regmatch_t g[2];
        regex_t re;
        size_t found = 0;

        assert_non_null(src);
        assert_int_equal(regcomp(&re, "hook_refuse\\(\\s*ctx,\\s*\"([a-z-]+)\"", REG_EXTENDED), 0);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char *path, *code = NULL;

                assert_true(asprintf(&path, "%s/hooks/%s", src, files[i]) > 0);
                assert_int_equal(read_full_file(path, 1 << 20, &code, NULL), 0);
                for (const char *p = code; regexec(&re, p, 2, g, 0) == 0; p += g[0].rm_eo) {
                        char line[256];

                        snprintf(line, sizeof(line),
                                 "hostwarden_hook_refusals_total{reason=\"%.*s\"} 0",
                                 (int)(g[1].rm_eo - g[1].rm_so), p + g[1].rm_so);
                        assert_true(has_line(text, line));
                        found++;
                }
                free(code);
                free(path);
        }
        assert_true(found >= 5); /* the pattern still finds the hook's refusals */
        assert_true(has_line(text, "hostwarden_hook_refusals_total{reason=\"fenced\"} 0"));
        assert_true(has_line(text, "hostwarden_hook_refusals_total{reason=\"forced-down\"} 0"));
        regfree(&re);
        free(text);
        metrics_state_free(m.metrics);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nothing_happened_yet_every_alerted_series_is_zero),
                cmocka_unit_test(test_outcomes_are_counted_by_kind_mode_and_result),
                cmocka_unit_test(test_heartbeats_are_timed_and_failures_counted),
                cmocka_unit_test(test_every_reason_the_hook_refuses_for_is_a_series),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
