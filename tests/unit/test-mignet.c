/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration network: its keys and the parameters a migration gets (lib/mignet.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fw.h"
#include "mignet.h"
#include "test-helpers.h"

/* A configuration directory holding text as hostwarden.conf, loaded as the daemon loads it:
 * the Config, or NULL when loading returned an error (in d). */
static Config *load(const char *text, ConfigDiags *d)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        Config *c = NULL;
        int r;

        test_write(dir, "hostwarden.conf", text);
        r = config_load(dir, d, &c);
        test_rm_rf(dir);
        assert_int_equal(r, d->n_errors > 0 ? -EINVAL : 0);
        return r < 0 ? NULL : c;
}

static void test_keys_are_read_for_the_node_and_each_peer(void **state)
{
        ConfigDiags d = {};
        Config *c = load("[node]\nname = n1\naddress = 192.0.2.11\n"
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
                char buf[512];

                assert_null(load(texts[i], &d));
                assert_int_equal(d.n_errors, 1);
                config_diag_format(&d.items[0], buf, sizeof(buf));
                /* file and line, key, what was expected */
                assert_true(test_contains(buf, "/hostwarden.conf:4: "));
                assert_true(test_contains(buf, "migration_address"));
                assert_true(test_contains(buf, "an IP address or a host name"));
                config_diags_clear(&d);
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
        Config *plain = load(BASE, &d);
        Config *mig = load(BASE "migration_address = 10.77.1.12\n", &d);
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

/* The finding with code (the only one: fails otherwise). */
static const MigFinding *finding(const MigFindings *f, const char *code)
{
        const MigFinding *found = NULL;

        for (size_t i = 0; i < f->n; i++)
                if (streq(f->items[i].code, code)) {
                        assert_null(found);
                        found = &f->items[i];
                }
        if (!found)
                fail_msg("no finding %s", code);
        return found;
}

static void test_no_migration_network_no_finding(void **state)
{
        MigNetPeerFacts peer = { .name = "n2" };
        MigNetFacts f = { .node_name = "n1", .peers = &peer, .n_peers = 1, .tls = true };
        MigFindings out = {};

        assert_int_equal(mignet_judge(&f, &out), 0);
        assert_int_equal(out.n, 0);
}

static void test_a_working_migration_network_is_ok(void **state)
{
        MigNetPeerFacts peers[] = {
                { .name = "n2",
                  .migration_address = "10.77.1.12",
                  .reach = { .source = "10.77.1.11" } },
                { .name = "n3",
                  .migration_address = "10.77.1.13",
                  /* nothing listens on 16514 there: a reset is an answer */
                  .reach = { .source = "10.77.1.11", .connect_error = -ECONNREFUSED } },
                { .name = "n4" }, /* none: nothing to say */
        };
        MigNetFacts f = { .node_name = "n1",
                          .migration_address = "10.77.1.11",
                          .tls = true,
                          .cert_path = "/etc/pki/qemu/server-cert.pem",
                          .peers = peers,
                          .n_peers = ELEMENTSOF(peers) };
        MigFindings out = {};

        assert_int_equal(mignet_judge(&f, &out), 0);
        assert_int_equal(out.n, 4);
        assert_int_equal(mig_findings_worst(&out), MIG_OK);
        assert_true(test_contains(finding(&out, "migration-address")->message, "10.77.1.11"));
        assert_true(test_contains(out.items[1].message, "n2: migration streams go to 10.77.1.12"));
        assert_true(test_contains(out.items[2].message, "n3"));
        assert_true(test_contains(finding(&out, "migration-network-certificate")->message, "n1"));
        mig_findings_done(&out);
}

static void test_a_migration_address_not_on_this_node_is_an_error(void **state)
{
        MigNetFacts f = { .node_name = "n1",
                          .migration_address = "10.77.1.77",
                          .local_error = -EADDRNOTAVAIL };
        MigFindings out = {};
        const MigFinding *m;

        assert_int_equal(mignet_judge(&f, &out), 0);
        m = finding(&out, "migration-address");
        assert_int_equal(m->severity, MIG_ERROR);
        assert_true(test_contains(m->message, "10.77.1.77 is not an address of this node"));
        mig_findings_done(&out);
}

static void test_an_unreachable_peer_and_a_wrong_source_are_named(void **state)
{
        MigNetPeerFacts peers[] = {
                { .name = "n2",
                  .migration_address = "10.77.1.99",
                  .reach = { .source = "10.77.1.11", .connect_error = -ETIMEDOUT } },
                { .name = "n3",
                  .migration_address = "192.0.2.13",
                  .reach = { .route_error = -ENETUNREACH } },
                { .name = "n4",
                  .migration_address = "10.77.2.14",
                  .reach = { .source = "10.77.2.11" } },
        };
        MigNetFacts f = { .node_name = "n1",
                          .migration_address = "10.77.1.11",
                          .peers = peers,
                          .n_peers = ELEMENTSOF(peers) };
        MigFindings out = {};

        assert_int_equal(mignet_judge(&f, &out), 0);
        assert_int_equal(out.n, 4); /* no certificate finding without TLS */
        assert_int_equal(out.items[1].severity, MIG_ERROR);
        assert_true(
                test_contains(out.items[1].message, "10.77.1.99 does not answer from 10.77.1.11"));
        assert_int_equal(out.items[2].severity, MIG_ERROR);
        assert_true(test_contains(out.items[2].message, "cannot be reached"));
        /* reached, but from an address n4's firewall does not expect */
        assert_int_equal(out.items[3].severity, MIG_WARNING);
        assert_true(test_contains(out.items[3].message,
                                  "from 10.77.2.11, not from [node] migration_address 10.77.1.11"));
        mig_findings_done(&out);
}

static void test_peers_with_an_address_and_this_node_without_warns(void **state)
{
        MigNetPeerFacts peer = { .name = "n2",
                                 .migration_address = "10.77.1.12",
                                 .reach = { .source = "10.77.1.11" } };
        MigNetFacts f = { .node_name = "n1", .peers = &peer, .n_peers = 1 };
        MigFindings out = {};

        assert_int_equal(mignet_judge(&f, &out), 0);
        assert_int_equal(finding(&out, "migration-address")->severity, MIG_WARNING);
        assert_int_equal(finding(&out, "peer-migration-address")->severity, MIG_OK);
        mig_findings_done(&out);
}

static void test_a_certificate_without_the_node_name_is_an_error(void **state)
{
        MigNetFacts f = { .node_name = "n1",
                          .migration_address = "10.77.1.11",
                          .tls = true,
                          .cert_path = "/etc/pki/qemu/server-cert.pem",
                          .cert = { .signed_by_ca = true, .missing_name = "n1" } };
        MigFindings out = {};
        const MigFinding *c;

        assert_int_equal(mignet_judge(&f, &out), 0);
        c = finding(&out, "migration-network-certificate");
        assert_int_equal(c->severity, MIG_ERROR);
        assert_true(test_contains(c->message, "does not name n1"));
        mig_findings_done(&out);
}

static void test_check_migration_reason_only_when_unreached(void **state)
{
        MigNetReach ok = { .connect_error = -ECONNREFUSED },
                    dropped = { .connect_error = -ETIMEDOUT };
        char why[512];

        assert_false(mignet_unreachable("n2", "10.77.1.12", &ok, why, sizeof(why)));
        assert_false(mignet_unreachable("n2", NULL, &dropped, why, sizeof(why)));
        assert_true(mignet_unreachable("n2", "10.77.1.12", &dropped, why, sizeof(why)));
        assert_true(test_contains(why, "n2's migration address 10.77.1.12 does not answer"));
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
                cmocka_unit_test(test_no_migration_network_no_finding),
                cmocka_unit_test(test_a_working_migration_network_is_ok),
                cmocka_unit_test(test_a_migration_address_not_on_this_node_is_an_error),
                cmocka_unit_test(test_an_unreachable_peer_and_a_wrong_source_are_named),
                cmocka_unit_test(test_peers_with_an_address_and_this_node_without_warns),
                cmocka_unit_test(test_a_certificate_without_the_node_name_is_an_error),
                cmocka_unit_test(test_check_migration_reason_only_when_unreached),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
