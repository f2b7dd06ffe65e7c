/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fence agents (lib/fence.c): the stdin protocol, exit status meanings, timeouts, and that
 * option values (the BMC password) are scrubbed from anything meant for a log. The agent here
 * is a stand-in shell script that records its stdin and answers as told; the real
 * fence_ipmilan against ipmi_sim BMCs runs in the cluster tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fence.h"
#include "test-helpers.h"

#define OPTIONS "ip=10.77.0.254\nipport=7001\nusername=admin\npassword=Secr3t-pw\nlanplus=1\n"

static char *make_agent(const char *dir, const char *body)
{
        char *path;

        assert_true(asprintf(&path, "%s/fence_standin", dir) > 0);
        test_write(dir, "fence_standin", body);
        assert_int_equal(chmod(path, 0755), 0);
        return path;
}

static void test_actions(void **state)
{
        assert_string_equal(fence_action_to_string(FENCE_ACTION_OFF), "off");
        assert_int_equal(fence_action_from_string("status"), FENCE_ACTION_STATUS);
        assert_int_equal(fence_action_from_string("on"), FENCE_ACTION_ON);
        assert_int_equal(fence_action_from_string("reboot"), -EINVAL);
        assert_int_equal(fence_action_from_string(NULL), -EINVAL);
}

static void test_input_is_options_then_action(void **state)
{
        char *in;

        assert_int_equal(fence_agent_input(OPTIONS, FENCE_ACTION_OFF, &in), 0);
        assert_string_equal(in, OPTIONS "action=off\n");
        free(in);
        /* An action among the options never wins over the one asked for. */
        assert_int_equal(
                fence_agent_input("ip=1.2.3.4\naction=on\nport=3", FENCE_ACTION_STATUS, &in), 0);
        assert_string_equal(in, "ip=1.2.3.4\nport=3\naction=status\n");
        free(in);
        assert_int_equal(fence_agent_input(NULL, FENCE_ACTION_ON, &in), 0);
        assert_string_equal(in, "action=on\n");
        free(in);
}

static void test_scrub_hides_every_value(void **state)
{
        char *s = fence_scrub("Failed: ipmitool -H 10.77.0.254 -U admin -P Secr3t-pw -p 7001 "
                              "(lanplus=1) Secr3t-pw",
                              OPTIONS);

        assert_non_null(s);
        assert_null(strstr(s, "Secr3t-pw"));
        assert_null(strstr(s, "10.77.0.254"));
        assert_true(test_contains(s, "-P *** -p ***"));
        assert_true(test_contains(s, "(lanplus=1)")); /* short values stay */
        free(s);
}

static void assert_scrubbed(const char *text, const char *options, const char *expected)
{
        char *s = fence_scrub(text, options);

        assert_non_null(s);
        assert_string_equal(s, expected);
        free(s);
}

/* Seen: username=admin was replaced first, and "-P admin123" became "-P ***123". */
static void test_scrub_values_that_contain_each_other(void **state)
{
        assert_scrubbed("ipmitool -U admin -P admin123 -H bmc", "username=admin\npassword=admin123",
                        "ipmitool -U *** -P *** -H bmc");
        assert_scrubbed("ipmitool -U admin -P admin123 -H bmc", "password=admin123\nusername=admin",
                        "ipmitool -U *** -P *** -H bmc");
        /* overlapping: "abcdef" and "defghi" in "abcdefghi" */
        assert_scrubbed("x abcdefghi y", "password=abcdef\nusername=defghi", "x *** y");
        /* the password inside a value that is not a secret, and the other way round */
        assert_scrubbed("connect to bmc-pw1.example failed", "ip=bmc-pw1.example\npassword=pw1",
                        "connect to *** failed");
        assert_scrubbed("login ops failed (pw ops1)", "login=ops\npasswd=ops1",
                        "login *** failed (pw ***)");
}

static void test_scrub_short_secrets_and_the_forms_agents_echo(void **state)
{
        /* a password's value is masked whatever its length; other short values stay */
        assert_scrubbed("login failed: ab (lanplus=1)", "password=ab\nlanplus=1",
                        "login failed: *** (lanplus=1)");
        /* argv as agents log it */
        assert_scrubbed("run: ipmitool --password=admin123 -I lanplus", "password=admin123",
                        "run: ipmitool --password=*** -I lanplus");
        assert_scrubbed("run: ['ipmitool', '-P', 'admin123']", "password=admin123",
                        "run: ['ipmitool', '-P', '***']");
        /* shell-quoted, with a quote in the password: '\'' and '"'"' */
        assert_scrubbed("ipmitool -P 'p'\\''w x' -H bmc", "password=p'w x",
                        "ipmitool -P ***' -H bmc");
        assert_scrubbed("sh -c 'echo p'\"'\"'w'", "password=p'w", "sh -c 'echo ***'");
        /* backslash escapes, as in JSON or double quotes */
        assert_scrubbed("{\"pw\": \"a\\\"b\\\\c\"}", "password=a\"b\\c", "{\"pw\": \"***\"}");
        /* a password no option holds (password_script's): the word after the flag */
        assert_scrubbed("ipmitool -P s3cr3t -H bmc\npassword: \"x y\" ok",
                        "password_script=/usr/local/bin/bmc-pw",
                        "ipmitool -P *** -H bmc\npassword: *** ok");
        /* -p at the end of a line takes nothing from the next one */
        assert_scrubbed("usage: -p\nnext line", "", "usage: -p\nnext line");
}

static void test_scrub_mask_is_never_part_of_a_secret(void **state)
{
        assert_int_equal(fence_scrub_mask_char("password=admin123"), '*');
        assert_int_equal(fence_scrub_mask_char("password=a*b"), '#');
        /* "a*" next to a mask of '*' would have spelled the password "a**" */
        assert_scrubbed("xa**b", "password=a**\nusername=**b", "x###");
        assert_scrubbed("a a**", "password=a**", "a ###");
        assert_true(fence_option_is_secret("snmp_priv_passwd", 16));
        assert_true(fence_option_is_secret("community", 9));
        assert_true(fence_option_is_secret("secret-key", 10));
        assert_false(fence_option_is_secret("username", 8));
        assert_false(fence_option_is_secret("ipport", 6));
}

static void test_agent_path(void **state)
{
        char *dir = test_mkdtemp(), *agent = make_agent(dir, "#!/bin/sh\nexit 0\n"), *p;

        assert_int_equal(fence_agent_path(agent, &p), 0);
        assert_string_equal(p, agent);
        free(p);
        assert_int_equal(fence_agent_path("sh", &p), 0); /* looked up */
        assert_true(test_contains(p, "/sh"));
        free(p);
        assert_int_equal(fence_agent_path("fence_no_such_agent", &p), -ENOENT);
        assert_int_equal(fence_agent_path("../sh", &p), -EINVAL);
        assert_int_equal(fence_agent_path("bin/sh", &p), -EINVAL);
        free(agent);
        test_rm_rf(dir);
        free(dir);
}

static void test_run_protocol_and_status(void **state)
{
        char *dir = test_mkdtemp(), *agent, *in, *body, *got;
        FenceRun run = {};
        FenceState f;

        /* Records its stdin, answers by the action line: status of a powered-off node. */
        assert_true(
                asprintf(&body,
                         "#!/bin/sh\ncat > %s/stdin\n"
                         "grep -q '^action=status$' %s/stdin && { echo 'Status: OFF'; exit 2; }\n"
                         "grep -q '^action=on$' %s/stdin && { echo 'failed: password '"
                         "Secr3t-pw >&2; exit 1; }\n"
                         "echo Success; exit 0\n",
                         dir, dir, dir) > 0);
        agent = make_agent(dir, body);

        assert_int_equal(fence_agent_input(OPTIONS, FENCE_ACTION_STATUS, &in), 0);
        assert_int_equal(fence_run(agent, in, 10 * USEC_PER_SEC, &run), 0);
        assert_int_equal(run.status, 2);
        assert_false(run.timed_out);
        assert_true(test_contains(run.output, "Status: OFF"));
        got = test_read_file(dir, "stdin");
        assert_string_equal(got, in);
        free(got);
        assert_int_equal(fence_result(FENCE_ACTION_STATUS, &run, &f), 0);
        assert_int_equal(f, FENCE_OFF);
        fence_run_done(&run);
        free(in);

        assert_int_equal(fence_agent_input(OPTIONS, FENCE_ACTION_OFF, &in), 0);
        assert_int_equal(fence_run(agent, in, 10 * USEC_PER_SEC, &run), 0);
        assert_int_equal(run.status, 0);
        assert_int_equal(fence_result(FENCE_ACTION_OFF, &run, &f), 0);
        assert_int_equal(f, FENCE_OFF);
        fence_run_done(&run);
        free(in);

        assert_int_equal(fence_agent_input(OPTIONS, FENCE_ACTION_ON, &in), 0);
        assert_int_equal(fence_run(agent, in, 10 * USEC_PER_SEC, &run), 0);
        assert_int_equal(run.status, 1);
        assert_int_equal(fence_result(FENCE_ACTION_ON, &run, &f), -EIO);
        {
                char *s = fence_scrub(run.output, OPTIONS);

                assert_true(test_contains(run.output, "Secr3t-pw")); /* raw */
                assert_null(strstr(s, "Secr3t-pw"));
                free(s);
        }
        fence_run_done(&run);
        free(in);

        /* status 0 is on; anything else is an error, for status too */
        run = (FenceRun){ .status = 0 };
        assert_int_equal(fence_result(FENCE_ACTION_STATUS, &run, &f), 0);
        assert_int_equal(f, FENCE_ON);
        run.status = 1;
        assert_int_equal(fence_result(FENCE_ACTION_STATUS, &run, &f), -EIO);
        run = (FenceRun){ .status = 0, .timed_out = true };
        assert_int_equal(fence_result(FENCE_ACTION_OFF, &run, &f), -EIO);

        free(body);
        free(agent);
        test_rm_rf(dir);
        free(dir);
}

static void test_run_times_out_and_kills(void **state)
{
        char *dir = test_mkdtemp(), *agent = make_agent(dir, "#!/bin/sh\nexec sleep 30\n");
        FenceRun run = {};
        FenceState f;

        assert_int_equal(fence_run(agent, "action=off\n", 300 * USEC_PER_MSEC, &run), 0);
        assert_true(run.timed_out);
        assert_int_equal(run.status, -1);
        assert_int_equal(fence_result(FENCE_ACTION_OFF, &run, &f), -EIO);
        fence_run_done(&run);
        free(agent);
        test_rm_rf(dir);
        free(dir);
}

static void test_run_missing_agent(void **state)
{
        FenceRun run = {};

        assert_int_equal(fence_run("/nonexistent/fence_x", "action=status\n", USEC_PER_SEC, &run),
                         -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_actions),
                cmocka_unit_test(test_input_is_options_then_action),
                cmocka_unit_test(test_scrub_hides_every_value),
                cmocka_unit_test(test_scrub_values_that_contain_each_other),
                cmocka_unit_test(test_scrub_short_secrets_and_the_forms_agents_echo),
                cmocka_unit_test(test_scrub_mask_is_never_part_of_a_secret),
                cmocka_unit_test(test_agent_path),
                cmocka_unit_test(test_run_protocol_and_status),
                cmocka_unit_test(test_run_times_out_and_kills),
                cmocka_unit_test(test_run_missing_agent),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
