/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration network: its keys and the parameters a migration gets (lib/mignet.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fw.h"
#include "mignet.h"
#include "test-helpers.h"

static Config *parse(const char *text, ConfigDiags *diags)
{
        Config *c = NULL;

        assert_int_equal(config_new(&c), 0);
        assert_int_equal(config_parse_text(c, "/etc/hostwarden/hostwarden.conf", text, diags), 0);
        assert_int_equal(config_finish(c, diags), 0);
        return c;
}

static void test_keys_are_read_for_the_node_and_each_peer(void **state)
{
        ConfigDiags d = {};
        Config *c = parse("[node]\nname = n1\naddress = 192.0.2.11\n"
                          "migration_address = 198.51.100.11\n"
                          "[peer n2]\naddress = 192.0.2.12\nmigration_address = 2001:db8:77::12\n"
                          "[peer n3]\naddress = 192.0.2.13\n",
                          &d);

        assert_int_equal(d.n, 0);
        assert_string_equal(c->node.migration_address, "198.51.100.11");
        assert_string_equal(config_find_peer(c, "n2")->migration_address, "2001:db8:77::12");
        assert_null(config_find_peer(c, "n3")->migration_address);
        /* the control connection stays on the address */
        assert_string_equal(config_find_peer(c, "n2")->libvirt_uri, "qemu+tls://192.0.2.12/system");
        config_free(c);
}

static void test_bad_migration_address_names_file_line_and_key(void **state)
{
        static const char *const texts[] = {
                "[node]\nname = n1\n\nmigration_address = not an address\n",
                "[peer n2]\naddress = 192.0.2.12\n\nmigration_address = 10.0.0.1/24\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                ConfigDiags d = {};
                Config *c = parse(texts[i], &d);
                char buf[512];

                assert_int_equal(d.n_errors, 1);
                config_diag_format(&d.items[0], buf, sizeof(buf));
                assert_true(test_contains(buf, "hostwarden.conf:4:"));
                assert_true(test_contains(buf, "migration_address"));
                assert_true(test_contains(buf, "an IP address or a host name"));
                config_diags_clear(&d);
                config_free(c);
        }
}

static void test_no_migration_address_adds_nothing(void **state)
{
        MigNetParams p = { .uri = (char *)"left alone?" };

        assert_int_equal(mignet_params("n2", NULL, true, &p), 0);
        assert_null(p.uri);
        assert_null(p.listen_address);
        assert_null(p.tls_destination);
        assert_int_equal(mignet_params("n2", "", true, &p), 0);
        assert_null(p.uri);
}

static void test_ipv4_stream_uri_without_port_and_tls_checks_the_name(void **state)
{
        MigNetParams p = {};

        assert_int_equal(mignet_params("node2", "10.77.1.12", true, &p), 0);
        /* no port: the destination picks one in its migration port range */
        assert_string_equal(p.uri, "tcp://10.77.1.12");
        assert_string_equal(p.listen_address, "10.77.1.12");
        assert_string_equal(p.tls_destination, "node2");
        mignet_params_done(&p);
        assert_null(p.uri);
}

static void test_ipv6_in_brackets_and_no_tls_name_without_tls(void **state)
{
        MigNetParams p = {};

        assert_int_equal(mignet_params("node2", "fd77:1::12", false, &p), 0);
        assert_string_equal(p.uri, "tcp://[fd77:1::12]");
        assert_string_equal(p.listen_address, "fd77:1::12");
        assert_null(p.tls_destination);
        mignet_params_done(&p);

        assert_int_equal(mignet_params("node2", "mig-node2.example.com", true, &p), 0);
        assert_string_equal(p.uri, "tcp://mig-node2.example.com");
        assert_string_equal(p.tls_destination, "node2");
        mignet_params_done(&p);
}

static void test_bad_address_is_refused(void **state)
{
        MigNetParams p = {};

        assert_int_equal(mignet_params("node2", "10.77.1.12:49152", true, &p), -EINVAL);
        assert_int_equal(mignet_params("node2", "tcp://x", true, &p), -EINVAL);
        assert_null(p.uri);
}

static void test_admitted_sources_add_the_peers_migration_ip_addresses(void **state)
{
        char *sources[] = { (char *)"10.77.0.0/24", (char *)"10.77.1.11", NULL };
        ConfigPeer peers[] = {
                { .name = (char *)"n1", .migration_address = (char *)"10.77.1.11" }, /* listed */
                { .name = (char *)"n2", .migration_address = (char *)"10.77.1.12" },
                { .name = (char *)"n3" }, /* none */
                { .name = (char *)"n4", .migration_address = (char *)"fd77:1::14" },
                { .name = (char *)"n5", .migration_address = (char *)"mig-n5.example.com" },
        };
        char **l = NULL;

        assert_int_equal(mignet_admitted_sources(sources, peers, ELEMENTSOF(peers), &l), 0);
        assert_int_equal(strv_length(l), 4);
        assert_string_equal(l[0], "10.77.0.0/24");
        assert_string_equal(l[1], "10.77.1.11");
        assert_string_equal(l[2], "10.77.1.12");
        assert_string_equal(l[3], "fd77:1::14"); /* a host name cannot be a set element */
        strv_free(l);
}

static void test_no_migration_sources_no_table_whatever_the_peers(void **state)
{
        ConfigPeer peer = { .name = (char *)"n2", .migration_address = (char *)"10.77.1.12" };
        char **l = (char **)"left alone?";

        assert_int_equal(mignet_admitted_sources(NULL, &peer, 1, &l), 0);
        assert_null(l);
}

static void test_firewall_spec_admits_peers_migration_addresses(void **state)
{
#define BASE                                             \
        "[node]\nname = n1\n"                            \
        "[firewall]\nmigration_sources = 10.77.0.0/24\n" \
        "[peer n2]\naddress = 10.77.0.12\n"
        ConfigDiags d = {};
        Config *plain = parse(BASE, &d);
        Config *mig = parse(BASE "migration_address = 10.77.1.12\n", &d);
        char *sources_only[] = { (char *)"10.77.0.0/24", NULL };
        FwSpec a, b, before = { .migration_sources = sources_only };
#undef BASE

        assert_int_equal(d.n, 0);
        fw_spec_from_config(plain, &a);
        fw_spec_from_config(mig, &b);
        /* without a migration address the table is the one it was: no replacement */
        before.migration_port_min = a.migration_port_min;
        before.migration_port_max = a.migration_port_max;
        before.console_port_min = a.console_port_min;
        before.console_port_max = a.console_port_max;
        before.open_window = a.open_window;
        assert_true(fw_spec_digest(&a) == fw_spec_digest(&before));
        assert_int_equal(strv_length(a.migration_sources), 1);
        /* with one, the sources and the window admit it, and the table is replaced */
        assert_int_equal(strv_length(b.migration_sources), 2);
        assert_string_equal(b.migration_sources[1], "10.77.1.12");
        assert_true(fw_spec_digest(&a) != fw_spec_digest(&b));
        assert_true(fw_spec_active(&b));
        config_free(plain);
        config_free(mig);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys_are_read_for_the_node_and_each_peer),
                cmocka_unit_test(test_bad_migration_address_names_file_line_and_key),
                cmocka_unit_test(test_no_migration_address_adds_nothing),
                cmocka_unit_test(test_ipv4_stream_uri_without_port_and_tls_checks_the_name),
                cmocka_unit_test(test_ipv6_in_brackets_and_no_tls_name_without_tls),
                cmocka_unit_test(test_bad_address_is_refused),
                cmocka_unit_test(test_admitted_sources_add_the_peers_migration_ip_addresses),
                cmocka_unit_test(test_no_migration_sources_no_table_whatever_the_peers),
                cmocka_unit_test(test_firewall_spec_admits_peers_migration_addresses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
