/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The announcement after a migration or a rebuild (lib/announce-cmd.c): [migration]
 * announce_rounds and announce_interval, the QMP command they make, QEMU's answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "test-helpers.h"

#include "announce-cmd.h"
#include "config.h"
#include "util.h"

/* text as /etc/hostwarden/hostwarden.conf, read as hostwardend reads it; NULL on errors. */
static Config *load(const char *text, ConfigDiags *diags, char **ret_path)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        Config *c = NULL;

        test_write(dir, "hostwarden.conf", text);
        (void)config_load(dir, diags, &c);
        assert_true(asprintf(ret_path, "%s/hostwarden.conf", dir) > 0);
        test_rm_rf(dir);
        return c;
}

/* The schedule of text's keys, which must read as rounds and interval. */
static void schedule_of(const char *text, unsigned rounds, usec_t interval, AnnounceSchedule *ret)
{
        _cleanup_free_ char *path = NULL;
        ConfigDiags d = {};
        Config *c = load(text, &d, &path);

        assert_non_null(c);
        assert_int_equal(d.n, 0);
        assert_int_equal(c->migration.announce_rounds, rounds);
        assert_int_equal(c->migration.announce_interval, interval);
        assert_int_equal(announce_schedule(c->migration.announce_rounds,
                                           c->migration.announce_interval, ret),
                         0);
        config_free(c);
}

static void test_defaults_are_qemus_own_announcement(void **state)
{
        AnnounceSchedule s;

        schedule_of("", 5, 100 * USEC_PER_MSEC, &s);
        /* QEMU's defaults for its announcement after an incoming migration */
        assert_int_equal(s.rounds, 5);
        assert_int_equal(s.initial_ms, 50);
        assert_int_equal(s.max_ms, 550);
        assert_int_equal(s.step_ms, 100);
        /* rounds at 0, 50, 200, 450, 800 ms */
        assert_int_equal(announce_schedule_length(&s), 800 * USEC_PER_MSEC);
}

static void test_keys_are_read(void **state)
{
        AnnounceSchedule s;

        schedule_of("[migration]\nannounce_rounds = 3\nannounce_interval = 1s\n", 3, USEC_PER_SEC,
                    &s);
        assert_int_equal(s.rounds, 3);
        assert_int_equal(s.initial_ms, 500);
        assert_int_equal(s.step_ms, 1000);
        assert_int_equal(s.max_ms, 3500);
        assert_int_equal(announce_schedule_length(&s), (500 + 1500) * USEC_PER_MSEC);
}

static void expect_error(const char *text, const char *line, const char *needle)
{
        _cleanup_free_ char *path = NULL;
        ConfigDiags d = {};
        Config *c = load(text, &d, &path);
        char buf[1024];

        assert_null(c);
        assert_int_equal(d.n_errors, 1);
        for (size_t i = 0; i < d.n; i++)
                if (d.items[i].level == CONFIG_DIAG_ERROR) {
                        config_diag_format(&d.items[i], buf, sizeof(buf));
                        assert_true(test_contains(buf, path));
                        assert_true(test_contains(buf, line));
                        assert_true(test_contains(buf, needle));
                }
        config_diags_clear(&d);
}

static void test_bad_values_name_file_line_and_what_was_expected(void **state)
{
        expect_error("[migration]\nannounce_rounds = 1001\n",
                     ":2:", "an integer from 0 (no announcement) to 1000");
        expect_error("[migration]\nannounce_rounds = five\n", ":2:", "announce_rounds");
        expect_error("[migration]\n\nannounce_interval = 5ms\n",
                     ":3:", "a duration from 10ms to 10s");
        expect_error("[migration]\nannounce_interval = 11s\n", ":2:", "announce_interval");
}

static void test_zero_rounds_is_no_announcement(void **state)
{
        AnnounceSchedule s = { .rounds = 9 };

        assert_int_equal(announce_schedule(0, 100 * USEC_PER_MSEC, &s), 0);
        assert_int_equal(s.rounds, 0);
        assert_int_equal(announce_schedule_length(&s), 0);
}

static void test_beyond_qemus_limits_is_refused(void **state)
{
        AnnounceSchedule s;

        assert_int_equal(announce_schedule(1001, 100 * USEC_PER_MSEC, &s), -ERANGE);
        assert_int_equal(announce_schedule(5, 1 * USEC_PER_MSEC, &s), -ERANGE);
        assert_int_equal(announce_schedule(5, 10001 * USEC_PER_MSEC, &s), -ERANGE);
        /* the largest the configuration allows: max stays within QEMU's bound */
        assert_int_equal(announce_schedule(1000, 10 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.max_ms, ANNOUNCE_DELAY_MAX);
        assert_int_equal(s.step_ms, 10000);
}

static void test_the_command_is_qmp_announce_self_with_every_parameter(void **state)
{
        AnnounceSchedule s;
        struct json_object *root, *args, *v;
        char *cmd;

        assert_int_equal(announce_schedule(7, 200 * USEC_PER_MSEC, &s), 0);
        cmd = announce_qmp_command(&s);
        assert_non_null(cmd);
        root = json_tokener_parse(cmd);
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "execute", &v));
        assert_string_equal(json_object_get_string(v), "announce-self");
        assert_true(json_object_object_get_ex(root, "arguments", &args));
        /* QEMU 7.2's AnnounceParameters: the four are mandatory */
        assert_true(json_object_object_get_ex(args, "initial", &v));
        assert_int_equal(json_object_get_int(v), 100);
        assert_true(json_object_object_get_ex(args, "max", &v));
        assert_int_equal(json_object_get_int(v), 1500);
        assert_true(json_object_object_get_ex(args, "rounds", &v));
        assert_int_equal(json_object_get_int(v), 7);
        assert_true(json_object_object_get_ex(args, "step", &v));
        assert_int_equal(json_object_get_int(v), 200);
        assert_int_equal(json_object_object_length(args), 4);
        json_object_put(root);
        free(cmd);
}

static void test_qemus_reply_is_read(void **state)
{
        char *error = NULL;

        assert_int_equal(announce_reply_check("{\"return\":{},\"id\":\"libvirt-42\"}", &error), 0);
        assert_null(error);
        assert_int_equal(announce_reply_check("{\"id\":\"libvirt-43\",\"error\":{\"class\":"
                                              "\"CommandNotFound\",\"desc\":\"The command "
                                              "announce-self has not been found\"}}",
                                              &error),
                         -EIO);
        assert_string_equal(error, "The command announce-self has not been found");
        free(error);
        assert_int_equal(announce_reply_check("not json", &error), -EBADMSG);
        assert_true(test_contains(error, "not json"));
        free(error);
        assert_int_equal(announce_reply_check("{\"id\":1}", &error), -EBADMSG);
        free(error);
        assert_int_equal(announce_reply_check(NULL, &error), -EBADMSG);
        free(error);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults_are_qemus_own_announcement),
                cmocka_unit_test(test_keys_are_read),
                cmocka_unit_test(test_bad_values_name_file_line_and_what_was_expected),
                cmocka_unit_test(test_zero_rounds_is_no_announcement),
                cmocka_unit_test(test_beyond_qemus_limits_is_refused),
                cmocka_unit_test(test_the_command_is_qmp_announce_self_with_every_parameter),
                cmocka_unit_test(test_qemus_reply_is_read),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
