/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/recovery-plan.c: automatic recovery's decisions (what about each node, the fence-storm
 * guard, which survivor rebuilds what), and lib/ha.c: a guest's HA setting. */
#include <stdlib.h>
#include <string.h>

#include "domxml.h"
#include "ha.h"
#include "recovery-plan.h"
#include "test-helpers.h"

#define SEC USEC_PER_SEC
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static const RecoveryTimes times = { .down_after = 5 * SEC,
                                     .confirm_after = 30 * SEC,
                                     .self_fence_margin = 5 * SEC };

static RecoveryNode down_for(usec_t unseen)
{
        return (RecoveryNode){
                .name = "node3", .liveness = NODE_DOWN, .unseen = unseen, .has_fence_agent = true
        };
}

static void test_a_node_is_fenced_only_after_down_after_and_confirm_after(void **state)
{
        RecoveryNode n = down_for(34 * SEC);

        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_WAIT);
        n.unseen = 35 * SEC;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_FENCE);
        n.liveness = NODE_UP;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_NOTHING);
        n.liveness = NODE_UNKNOWN; /* not watched long enough: never acted on */
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_NOTHING);
        n = down_for(3600 * SEC);
        n.self = true;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_NOTHING);
}

static void test_a_failed_fence_is_tried_again_never_assumed(void **state)
{
        RecoveryNode n = down_for(600 * SEC);

        n.fence_failed = true;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_FENCE);
        /* no agent and no self-fencing: nobody can say it is off */
        n.has_fence_agent = false;
        n.fence_failed = false;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_CANNOT_FENCE);
}

static void test_self_fencing_counts_after_its_time_and_the_margin(void **state)
{
        RecoveryNode n = down_for(64 * SEC);

        n.has_fence_agent = false;
        n.self_fence_after = 60 * SEC;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_WAIT);
        n.unseen = 65 * SEC;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_SELF_FENCED);
        /* an agent that works is asked first; one that fails gives way to self-fencing */
        n.has_fence_agent = true;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_FENCE);
        n.fence_failed = true;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_SELF_FENCED);
        n.unseen = 40 * SEC;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_FENCE);
}

static void test_a_fenced_node_is_rebuilt_from_unless_it_is_back(void **state)
{
        RecoveryNode n = down_for(1 * SEC);

        n.fenced = true;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_REBUILD);
        n.liveness = NODE_UP;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_NOTHING);
        /* powered on again by an operator: not fenced again while it boots */
        n = down_for(3600 * SEC);
        n.booting = true;
        assert_int_equal(recovery_node_action(&n, &times), RECOVERY_WAIT);
}

static void test_the_storm_guard(void **state)
{
        RecoveryNode nodes[4] = {
                { .name = "node1", .self = true, .liveness = NODE_UP },
                { .name = "node2", .liveness = NODE_DOWN },
                { .name = "node3", .liveness = NODE_DOWN },
                { .name = "node4", .liveness = NODE_UP },
        };
        size_t lost, watched;

        /* two of four: not more than half */
        assert_false(recovery_storm(nodes, 4, 500, &lost, &watched));
        assert_int_equal(lost, 2);
        assert_int_equal(watched, 4);
        nodes[3].liveness = NODE_DOWN; /* three of four */
        assert_true(recovery_storm(nodes, 4, 500, &lost, &watched));
        /* a node known to be off counts neither way: two of three left */
        nodes[3].fenced = true;
        assert_true(recovery_storm(nodes, 4, 500, &lost, &watched));
        assert_int_equal(lost, 2);
        assert_int_equal(watched, 3);
        assert_false(recovery_storm(nodes, 4, 700, NULL, NULL));
        /* one of two: a two-node cluster recovers (the store decides who acts) */
        assert_false(recovery_storm(nodes, 2, 500, NULL, NULL));
        assert_true(recovery_storm(nodes, 2, 0, NULL, NULL));
        assert_false(recovery_storm(nodes, 2, 1000, NULL, NULL));
}

static RecoveryNode survivor(const char *name, uint64_t mem)
{
        return (RecoveryNode){ .name = name, .liveness = NODE_UP, .mem_available = mem };
}

static void test_placement_by_priority_and_memory(void **state)
{
        RecoveryNode nodes[] = { survivor("node1", 3 * GIB),
                                 survivor("node2", 2 * GIB),
                                 { .name = "node3", .liveness = NODE_DOWN, .fenced = true } };
        RecoveryGuest g[] = {
                { .uuid = "a", .priority = 0, .memory = 2 * GIB },
                { .uuid = "b", .priority = 10, .memory = 2 * GIB },
                { .uuid = "c", .priority = 5, .memory = 2 * GIB },
        };
        const char *to[3];
        char why[3][256];

        recovery_place(g, 3, nodes, 3, NULL, to, why);
        /* b first, on the emptiest (node1); c on node2; a finds no room left */
        assert_string_equal(to[1], "node1");
        assert_string_equal(to[2], "node2");
        assert_null(to[0]);
        assert_non_null(strstr(why[0], "2 lack the memory"));
}

static void test_placement_reserved_nodes_first_and_refusals(void **state)
{
        RecoveryNode nodes[] = { survivor("node1", 8 * GIB), survivor("spare", 1 * GIB),
                                 survivor("node2", 8 * GIB) };
        char *reserved[] = { (char *)"spare", NULL };
        char *refused[] = { (char *)"spare", NULL };
        RecoveryGuest g[] = {
                { .uuid = "a", .priority = 1, .memory = 512 * MIB },
                { .uuid = "b", .priority = 0, .memory = 512 * MIB },
                { .uuid = "c", .priority = 0, .memory = 512 * MIB, .refused = refused },
        };
        const char *to[3];

        recovery_place(g, 3, nodes, 3, reserved, to, NULL);
        assert_string_equal(to[0], "spare");
        assert_string_equal(to[1], "spare"); /* 1 GiB: two of them */
        assert_string_equal(to[2], "node1"); /* it refused the spare */
}

static void test_placement_skips_what_cannot_host_and_keeps_assignments(void **state)
{
        RecoveryNode nodes[] = {
                { .name = "self", .self = true, .liveness = NODE_UP, .mem_available = 1 * GIB },
                { .name = "disabled",
                  .liveness = NODE_UP,
                  .disabled = true,
                  .mem_available = 64 * GIB },
                { .name = "down", .liveness = NODE_DOWN, .mem_available = 64 * GIB },
                { .name = "unknown", .liveness = NODE_UP },
                survivor("node5", 2 * GIB),
        };
        RecoveryGuest g[] = {
                { .uuid = "a", .memory = 512 * MIB, .assigned = "self" },
                { .uuid = "b", .memory = 512 * MIB, .assigned = "down" },
                { .uuid = "c", .memory = 4 * GIB },
        };
        const char *to[3];

        recovery_place(g, 3, nodes, 5, NULL, to, NULL);
        assert_string_equal(to[0], "self");    /* kept */
        assert_string_equal(to[1], "node5");   /* its node went down: moved; known memory first */
        assert_string_equal(to[2], "unknown"); /* only a node of unknown memory may fit it */
}

static void test_ha_setting_from_metadata(void **state)
{
        const char *with = "<domain type='qemu'><name>g</name>"
                           "<uuid>8f1e3a7c-3a57-4f1b-9c9e-1d2a8f4b5c6d</uuid>"
                           "<memory>65536</memory><metadata>"
                           "<other:x xmlns:other='https://example.org/x' ha='off'/>"
                           "<hostwarden:guest xmlns:hostwarden='" HW_DOMAIN_XMLNS "' "
                           "ha='off' priority='-5'/></metadata></domain>";
        const char *bad = "<domain type='qemu'><name>g</name>"
                          "<uuid>8f1e3a7c-3a57-4f1b-9c9e-1d2a8f4b5c6d</uuid>"
                          "<memory>65536</memory><metadata>"
                          "<guest xmlns='" HW_DOMAIN_XMLNS "' ha='maybe' priority='9999'/>"
                          "</metadata></domain>";
        const char *none = "<domain type='qemu'><name>g</name>"
                           "<uuid>8f1e3a7c-3a57-4f1b-9c9e-1d2a8f4b5c6d</uuid>"
                           "<memory>65536</memory></domain>";
        _cleanup_free_ char *text = NULL;
        HaSetting h;
        bool wrong;

        assert_int_equal(ha_setting_from_xml(with, HA_RESTART, &h, &wrong), 0);
        assert_int_equal(h.mode, HA_OFF);
        assert_true(h.mode_set);
        assert_int_equal(h.priority, -5);
        assert_false(wrong);
        /* not valid: the default, never a guess, and said */
        assert_int_equal(ha_setting_from_xml(bad, HA_RESTART, &h, &wrong), 0);
        assert_int_equal(h.mode, HA_RESTART);
        assert_false(h.mode_set);
        assert_int_equal(h.priority, HA_PRIORITY_DEFAULT);
        assert_true(wrong);
        assert_int_equal(ha_setting_from_xml(none, HA_OFF, &h, &wrong), 0);
        assert_int_equal(h.mode, HA_OFF);
        assert_false(h.mode_set || wrong);
        assert_int_equal(ha_setting_from_xml("<nodomain/>", HA_OFF, &h, NULL), -EBADMSG);

        assert_int_equal(ha_metadata_format(HA_RESTART, 7, &text), 0);
        assert_string_equal(text, "<guest ha=\"restart\" priority=\"7\"/>");
        assert_int_equal(ha_metadata_format(HA_RESTART, HA_PRIORITY_MAX + 1, &text), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_node_is_fenced_only_after_down_after_and_confirm_after),
                cmocka_unit_test(test_a_failed_fence_is_tried_again_never_assumed),
                cmocka_unit_test(test_self_fencing_counts_after_its_time_and_the_margin),
                cmocka_unit_test(test_a_fenced_node_is_rebuilt_from_unless_it_is_back),
                cmocka_unit_test(test_the_storm_guard),
                cmocka_unit_test(test_placement_by_priority_and_memory),
                cmocka_unit_test(test_placement_reserved_nodes_first_and_refusals),
                cmocka_unit_test(test_placement_skips_what_cannot_host_and_keeps_assignments),
                cmocka_unit_test(test_ha_setting_from_metadata),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
