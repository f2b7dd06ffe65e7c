/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ForceDown / ForceDownWithOptions (dbus/force-down-opts.c): the options and the decision;
 * and what 'hostwardenctl status' says of a forced-down or fenced node (ctl/status.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "force-down-opts.h"
#include "status.h"
#include "test-helpers.h"
#include "util.h"

#define DOWN_AFTER (60 * USEC_PER_SEC)

/* ---- options ---------------------------------------------------------------------------- */

typedef struct Bus {
        int sv[2];
        sd_bus *bus;
} Bus;

/* Messages need a started bus: one on a socket pair that is never used to send. */
static void bus_open(Bus *b)
{
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, b->sv),
                         0);
        assert_int_equal(sd_bus_new(&b->bus), 0);
        assert_int_equal(sd_bus_set_fd(b->bus, b->sv[0], b->sv[0]), 0);
        assert_int_equal(sd_bus_start(b->bus), 0);
}

static void bus_close(Bus *b)
{
        sd_bus_close_unref(b->bus);
        close(b->sv[1]);
}

/* A sealed ForceDownWithOptions("node1", true, {key: <variant of the rest>}), read up to the
 * options; key NULL: no options. */
static sd_bus_message *message(Bus *b, const char *key, ...)
{
        sd_bus_message *m = NULL;
        const char *node;
        int down;
        va_list ap;

        assert_int_equal(sd_bus_message_new_method_call(b->bus, &m, HW_BUS_NAME, HW_BUS_PATH,
                                                        HW_NODE_INTERFACE, "ForceDownWithOptions"),
                         0);
        assert_true(sd_bus_message_append(m, "sb", "node1", 1) >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        if (key) {
                assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
                assert_true(sd_bus_message_append(m, "s", key) >= 0);
                va_start(ap, key);
                assert_true(sd_bus_message_appendv(m, "v", ap) >= 0);
                va_end(ap);
                assert_true(sd_bus_message_close_container(m) >= 0);
        }
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_seal(m, 1, 0) >= 0);
        assert_true(sd_bus_message_rewind(m, true) >= 0);
        assert_true(sd_bus_message_read(m, "sb", &node, &down) >= 0);
        return m;
}

static void test_options_insist_and_none(void **state)
{
        Bus b;
        ForceDownOptions opts = { .insist = true };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m;

        bus_open(&b);
        m = message(&b, NULL);
        assert_int_equal(force_down_options_read(m, &opts, &error), 0);
        assert_false(opts.insist); /* no options: no insisting */
        sd_bus_message_unref(m);

        m = message(&b, "insist", "b", 1);
        assert_int_equal(force_down_options_read(m, &opts, &error), 0);
        assert_true(opts.insist);
        sd_bus_message_unref(m);

        m = message(&b, "insist", "b", 0);
        assert_int_equal(force_down_options_read(m, &opts, &error), 0);
        assert_false(opts.insist);
        sd_bus_message_unref(m);
        bus_close(&b);
}

static void test_options_refused_say_what_was_expected(void **state)
{
        Bus b;
        ForceDownOptions opts = { .insist = true };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m;

        bus_open(&b);
        m = message(&b, "insist", "s", "yes");
        assert_true(force_down_options_read(m, &opts, &error) < 0);
        assert_true(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        assert_true(test_contains(error.message, "Option 'insist' must be a boolean (b), not 's'"));
        assert_true(opts.insist); /* untouched on failure */
        sd_bus_error_free(&error);
        sd_bus_message_unref(m);

        m = message(&b, "force", "b", 1);
        assert_true(force_down_options_read(m, &opts, &error) < 0);
        assert_true(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        assert_true(test_contains(error.message, "Unknown option 'force'; expected insist (b)"));
        sd_bus_error_free(&error);
        sd_bus_message_unref(m);
        bus_close(&b);
}

/* ---- the decision ----------------------------------------------------------------------- */

static int decide(const char *node, bool down, bool insist, NodeLiveness l, usec_t seen_ago,
                  bool *ret_overrode, sd_bus_error *error)
{
        ForceDownRequest req = {
                .self = "node2",
                .node = node,
                .down = down,
                .insist = insist,
                .liveness = l,
                .seen_ago = seen_ago,
                .down_after = DOWN_AFTER,
        };

        *ret_overrode = true; /* must be written */
        return force_down_decide(&req, ret_overrode, error);
}

static void test_a_live_peer_is_refused_unless_insisted(void **state)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        bool overrode;

        assert_true(decide("node1", true, false, NODE_UP, 2 * USEC_PER_SEC, &overrode, &error) < 0);
        assert_true(sd_bus_error_has_name(&error, HW_ERROR_NODE_UP));
        assert_true(test_contains(error.message, "Node node1 is up: its heartbeat is fresh (last "
                                                 "seen 2 s ago by node2; it is down after 60 s"));
        assert_true(test_contains(error.message, "'hostwardenctl fence node1 off'"));
        assert_true(test_contains(error.message, "'hostwardenctl force-down node1 --insist'"));
        sd_bus_error_free(&error);

        assert_int_equal(decide("node1", true, true, NODE_UP, 2 * USEC_PER_SEC, &overrode, &error),
                         0);
        assert_true(overrode); /* to be logged with who insisted */
}

static void test_a_peer_not_known_up_is_forced_down(void **state)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        bool overrode;

        assert_int_equal(
                decide("node1", true, false, NODE_DOWN, 90 * USEC_PER_SEC, &overrode, &error), 0);
        assert_false(overrode);
        assert_int_equal(decide("node1", true, false, NODE_UNKNOWN, UINT64_MAX, &overrode, &error),
                         0);
        assert_false(overrode);
        /* insisting where nothing is refused overrides nothing */
        assert_int_equal(
                decide("node1", true, true, NODE_DOWN, 90 * USEC_PER_SEC, &overrode, &error), 0);
        assert_false(overrode);
}

static void test_unforcing_is_never_refused_for_freshness(void **state)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        bool overrode;

        assert_int_equal(decide("node1", false, false, NODE_UP, 0, &overrode, &error), 0);
        assert_false(overrode);
}

static void test_this_node_cannot_force_itself(void **state)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        bool overrode;

        /* down: never, as Fence refuses to fence itself */
        for (int insist = 0; insist <= 1; insist++) {
                assert_true(decide("node2", true, insist, NODE_UP, 0, &overrode, &error) < 0);
                assert_true(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
                assert_true(test_contains(error.message, "Node node2 cannot force itself down: "
                                                         "call ForceDown on a peer"));
                sd_bus_error_free(&error);
        }
        /* up: the peer that forced it down decides; here only on insistence */
        assert_true(decide("node2", false, false, NODE_UNKNOWN, UINT64_MAX, &overrode, &error) < 0);
        assert_true(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        assert_true(test_contains(error.message, "Run 'hostwardenctl force-up node2' on a peer"));
        sd_bus_error_free(&error);
        assert_int_equal(decide("node2", false, true, NODE_UNKNOWN, UINT64_MAX, &overrode, &error),
                         0);
        assert_true(overrode);
}

/* ---- hostwardenctl status --------------------------------------------------------------- */

static char *render(const NodeStatus *s)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        status_print_state(f, s);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void test_status_says_forced_down_and_what_clears_it(void **state)
{
        _cleanup_free_ char *out = NULL;

        out = render(&(NodeStatus){ .name = "node1",
                                    .state = "enabled",
                                    .disabled_reason = "",
                                    .forced_down_by = "uid 0 on node2",
                                    .forced_down_since = 1700000000 * USEC_PER_SEC,
                                    .fence_state = "unknown" });
        assert_string_equal(out, "       State: forced down by uid 0 on node2 since 2023-11-14 "
                                 "22:13:20 UTC\n"
                                 "              The hook refuses every start and incoming "
                                 "migration here;\n"
                                 "              only 'hostwardenctl force-up node1' run on a peer "
                                 "clears it.\n");
        assert_false(strstr(out, "enabled"));
}

static void test_status_says_fenced_and_disabled_too(void **state)
{
        _cleanup_free_ char *both = NULL, *fenced = NULL, *plain = NULL;

        both = render(&(NodeStatus){ .name = "node1",
                                     .state = "disabled",
                                     .disabled_reason = "kernel upgrade",
                                     .forced_down_by = "uid 0 on node2",
                                     .forced_down_since = 1700000000 * USEC_PER_SEC,
                                     .fence_state = "off",
                                     .fence_time = 1700000060 * USEC_PER_SEC });
        assert_true(test_contains(both, "State: forced down by uid 0 on node2"));
        assert_true(test_contains(both, "Also fenced: its fence agent reported it off at "
                                        "2023-11-14 22:14:20 UTC.\n"));
        assert_true(test_contains(both, "Also disabled (kernel upgrade).\n"));

        fenced = render(&(NodeStatus){ .name = "node1",
                                       .state = "enabled",
                                       .fence_state = "off",
                                       .fence_time = 1700000060 * USEC_PER_SEC });
        assert_true(test_contains(fenced, "State: fenced: its fence agent reported it off at "
                                          "2023-11-14 22:14:20 UTC\n"));
        assert_true(test_contains(fenced, "'hostwardenctl fence node1 status' run on a peer"));

        plain = render(&(NodeStatus){ .name = "node1",
                                      .state = "disabled",
                                      .disabled_reason = "kernel upgrade",
                                      .forced_down_by = "",
                                      .fence_state = "on" });
        assert_string_equal(plain, "       State: disabled (kernel upgrade)\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_options_insist_and_none),
                cmocka_unit_test(test_options_refused_say_what_was_expected),
                cmocka_unit_test(test_a_live_peer_is_refused_unless_insisted),
                cmocka_unit_test(test_a_peer_not_known_up_is_forced_down),
                cmocka_unit_test(test_unforcing_is_never_refused_for_freshness),
                cmocka_unit_test(test_this_node_cannot_force_itself),
                cmocka_unit_test(test_status_says_forced_down_and_what_clears_it),
                cmocka_unit_test(test_status_says_fenced_and_disabled_too),
        };

        /* the times above are printed in local time */
        setenv("TZ", "UTC", 1);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
