/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "peers.h"
#include "test-helpers.h"

static void test_from_config(void **state)
{
        ConfigPeer peers[] = {
                { .name = "node2", .libvirt_uri = "qemu+tls://node2/system" },
                { .name = "node3", .libvirt_uri = NULL },
                { .name = "node4", .libvirt_uri = "qemu+tls://node4/system" },
        };
        Config c = { .peers = peers, .n_peers = 3 };
        char *skip[] = { "node4", NULL };
        PeerTargets t = {}, copy = {};

        assert_int_equal(peer_targets_from_config(&c, skip, &t), 0);
        assert_int_equal(t.n, 2);
        assert_string_equal(t.items[0].name, "node2");
        assert_string_equal(t.items[0].uri, "qemu+tls://node2/system");
        assert_string_equal(t.items[1].uri, "");
        assert_null(peer_targets_find(&t, "node4"));
        assert_ptr_equal(peer_targets_find(&t, "node3"), &t.items[1]);

        assert_int_equal(peer_targets_copy(&t, &copy), 0);
        peer_targets_done(&t);
        assert_int_equal(t.n, 0);
        assert_int_equal(copy.n, 2);
        assert_string_equal(peer_targets_find(&copy, "node2")->uri, "qemu+tls://node2/system");
        peer_targets_done(&copy);

        assert_int_equal(peer_targets_from_config(&c, NULL, &t), 0);
        assert_int_equal(t.n, 3);
        peer_targets_done(&t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_from_config),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
