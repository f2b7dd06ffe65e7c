/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "test-helpers.h"

/* Parses one file's text and finishes; returns the Config (also when there were errors). */
static Config *parse(const char *text, ConfigDiags *diags)
{
        Config *c = NULL;

        assert_int_equal(config_new(&c), 0);
        assert_int_equal(config_parse_text(c, "/etc/hostwarden/hostwarden.conf", text, diags), 0);
        assert_int_equal(config_finish(c, diags), 0);
        return c;
}

/* The text of the only diagnostic of the given level; fails when there is not exactly one. */
static const char *only_diag(const ConfigDiags *d, ConfigDiagLevel level)
{
        static char buf[1024];
        const ConfigDiag *found = NULL;
        size_t n = 0;

        for (size_t i = 0; i < d->n; i++)
                if (d->items[i].level == level) {
                        found = &d->items[i];
                        n++;
                }
        if (n != 1) {
                for (size_t i = 0; i < d->n; i++)
                        print_error("diag: %s\n",
                                    config_diag_format(&d->items[i], buf, sizeof(buf)));
                fail_msg("expected exactly one %s, got %zu",
                         level == CONFIG_DIAG_ERROR ? "error" : "warning", n);
        }
        return config_diag_format(found, buf, sizeof(buf));
}

/* Asserts that text yields exactly one error, containing each of the NULL-terminated needles. */
static void expect_error(const char *text, ...)
{
        ConfigDiags d = { 0 };
        Config *c = parse(text, &d);
        const char *msg = only_diag(&d, CONFIG_DIAG_ERROR);
        va_list ap;

        va_start(ap, text);
        for (const char *needle; (needle = va_arg(ap, const char *));)
                assert_true(test_contains(msg, needle));
        va_end(ap);
        config_diags_clear(&d);
        config_free(c);
}

static void test_defaults_match_design(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("", &d);

        assert_int_equal(d.n, 0);
        assert_non_null(c->node.name); /* from the host name */
        assert_null(c->node.address);
        assert_string_equal(c->node.instances_path, "/var/lib/nova/instances");
        assert_string_equal(c->node.compute_unit, "nova-compute.service");
        assert_int_equal(c->node.disable_action, DISABLE_ACTION_NONE);
        assert_int_equal(c->cluster.store, STORE_BACKEND_DIR);
        assert_string_equal(c->cluster.state_dir, "/var/lib/nova/instances/.hostwarden");
        assert_int_equal(c->cluster.heartbeat_interval, 10 * USEC_PER_SEC);
        assert_int_equal(c->cluster.down_after, 60 * USEC_PER_SEC);
        assert_int_equal(c->migration.max_concurrent, 1);
        assert_int_equal(c->migration.bandwidth, 0);
        assert_int_equal(c->migration.downtime, 500 * USEC_PER_MSEC);
        assert_int_equal(c->migration.downtime_steps, 10);
        assert_int_equal(c->migration.downtime_delay, 75 * USEC_PER_SEC);
        assert_int_equal(c->migration.stall_iterations, 3);
        assert_int_equal(c->migration.completion_timeout, 800 * USEC_PER_SEC);
        assert_int_equal(c->migration.timeout_action, TIMEOUT_ACTION_ABORT);
        assert_false(c->migration.permit_auto_converge);
        assert_false(c->migration.permit_post_copy);
        assert_int_equal(c->migration.tls, MIGRATION_TLS_AUTO);
        assert_int_equal(c->migration.port_min, 49152);
        assert_int_equal(c->migration.port_max, 49215);
        assert_true(c->firewall.enable);
        assert_int_equal(c->firewall.console_port_min, 5900);
        assert_int_equal(c->firewall.console_port_max, 6923);
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_ANY);
        assert_false(c->hook.refuse_incoming_when_disabled);
        assert_false(c->locking.disk_leases);
        assert_string_equal(c->locking.lockspace_dir, "/var/lib/nova/instances/.leases");
        config_free(c);
}

static void test_full_config_is_read(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("# a comment\n"
                          "; another\n"
                          "[node]\n"
                          "name = compute1\n"
                          "address = 192.0.2.11\n"
                          "instances_path = /srv/instances\n"
                          "compute_unit = openstack-nova-compute.service\n"
                          "disable_action = stop\n"
                          "[cluster]\n"
                          "store = etcd\n"
                          "etcd_endpoints = https://192.0.2.1:2379, https://192.0.2.2:2379\n"
                          "heartbeat_interval = 2s\n"
                          "down_after = 1min 30s\n"
                          "[peer compute2]\n"
                          "address = 2001:db8::12\n"
                          "fence_agent = fence_ipmilan\n"
                          "fence_options = ip=192.0.2.112\n"
                          "   username=admin\n"
                          "   password=s3cret\n"
                          "[migration]\n"
                          "max_concurrent = 4\n"
                          "bandwidth = 1000\n"
                          "downtime = 300ms\n"
                          "downtime_steps = 5\n"
                          "downtime_delay = 30s\n"
                          "stall_iterations = 2\n"
                          "completion_timeout = 2min\n"
                          "timeout_action = force_complete\n"
                          "permit_auto_converge = yes\n"
                          "permit_post_copy = true\n"
                          "tls = on\n"
                          "port_min = 50000\n"
                          "port_max = 50100\n"
                          "[firewall]\n"
                          "enable = no\n"
                          "migration_sources = 192.0.2.0/24 2001:db8::/64\n"
                          "    198.51.100.7\n"
                          "open_window = 5min\n"
                          "console_clients = 192.0.2.200 ; the noVNC proxy\n"
                          "console_port_min = 5900\n"
                          "console_port_max = 5999\n"
                          "[console]\n"
                          "listen = node\n"
                          "[hook]\n"
                          "refuse_incoming_when_disabled = yes\n"
                          "[cluster]\n"
                          "etcd_cacert = /etc/hostwarden/etcd/ca.pem\n"
                          "etcd_cert = /etc/hostwarden/etcd/client.pem\n"
                          "etcd_key = /etc/hostwarden/etcd/client-key.pem\n"
                          "etcd_user = hostwarden\n"
                          "etcd_password = s3cret etcd\n",
                          &d);

        for (size_t i = 0; i < d.n; i++)
                print_error("unexpected diag: %s\n", d.items[i].message);
        assert_int_equal(d.n, 0);
        assert_string_equal(c->node.name, "compute1");
        assert_string_equal(c->node.address, "192.0.2.11");
        assert_string_equal(c->node.instances_path, "/srv/instances");
        assert_string_equal(c->cluster.state_dir, "/srv/instances/.hostwarden");
        assert_string_equal(c->node.compute_unit, "openstack-nova-compute.service");
        assert_int_equal(c->node.disable_action, DISABLE_ACTION_STOP);
        assert_int_equal(c->cluster.store, STORE_BACKEND_ETCD);
        assert_int_equal(strv_length(c->cluster.etcd_endpoints), 2);
        assert_string_equal(c->cluster.etcd_endpoints[1], "https://192.0.2.2:2379");
        assert_string_equal(c->cluster.etcd_cacert, "/etc/hostwarden/etcd/ca.pem");
        assert_string_equal(c->cluster.etcd_cert, "/etc/hostwarden/etcd/client.pem");
        assert_string_equal(c->cluster.etcd_key, "/etc/hostwarden/etcd/client-key.pem");
        assert_string_equal(c->cluster.etcd_user, "hostwarden");
        assert_string_equal(c->cluster.etcd_password, "s3cret etcd");
        assert_false(c->cluster.etcd_insecure);
        assert_int_equal(c->cluster.heartbeat_interval, 2 * USEC_PER_SEC);
        assert_int_equal(c->cluster.down_after, 90 * USEC_PER_SEC);

        assert_int_equal(c->n_peers, 1);
        const ConfigPeer *p = config_find_peer(c, "compute2");
        assert_non_null(p);
        assert_string_equal(p->address, "2001:db8::12");
        assert_string_equal(p->libvirt_uri, "qemu+tls://[2001:db8::12]/system");
        assert_string_equal(p->fence_agent, "fence_ipmilan");
        assert_string_equal(p->fence_options, "ip=192.0.2.112\nusername=admin\npassword=s3cret");
        assert_int_equal(p->line, 14);

        assert_int_equal(c->migration.max_concurrent, 4);
        assert_int_equal(c->migration.bandwidth, 1000);
        assert_int_equal(c->migration.downtime, 300 * USEC_PER_MSEC);
        assert_int_equal(c->migration.downtime_steps, 5);
        assert_int_equal(c->migration.downtime_delay, 30 * USEC_PER_SEC);
        assert_int_equal(c->migration.stall_iterations, 2);
        assert_int_equal(c->migration.completion_timeout, 120 * USEC_PER_SEC);
        assert_int_equal(c->migration.timeout_action, TIMEOUT_ACTION_FORCE_COMPLETE);
        assert_true(c->migration.permit_auto_converge);
        assert_true(c->migration.permit_post_copy);
        assert_int_equal(c->migration.tls, MIGRATION_TLS_YES); /* "on": a boolean spelling */
        assert_int_equal(c->migration.port_min, 50000);
        assert_int_equal(c->migration.port_max, 50100);
        assert_false(c->firewall.enable);
        assert_int_equal(strv_length(c->firewall.migration_sources), 3);
        assert_string_equal(c->firewall.migration_sources[2], "198.51.100.7");
        assert_int_equal(c->firewall.open_window, 5 * USEC_PER_MINUTE);
        assert_int_equal(strv_length(c->firewall.console_clients), 1);
        assert_string_equal(c->firewall.console_clients[0], "192.0.2.200");
        assert_int_equal(c->firewall.console_port_max, 5999);
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_NODE);
        assert_true(c->hook.refuse_incoming_when_disabled);
        config_free(c);
}

static void test_indented_keys_are_layout_not_continuations(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("[node]\n"
                          "    name = compute1\n"
                          "    address = 192.0.2.11\n"
                          "\t[console]\n"
                          "\tlisten = keep\n",
                          &d);

        assert_int_equal(d.n, 0);
        assert_string_equal(c->node.name, "compute1");
        assert_string_equal(c->node.address, "192.0.2.11");
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_KEEP);
        config_free(c);
}

static void test_migration_tls_is_auto_or_a_boolean(void **state)
{
        static const struct {
                const char *value;
                MigrationTls want;
        } cases[] = {
                { "auto", MIGRATION_TLS_AUTO }, { "yes", MIGRATION_TLS_YES },
                { "no", MIGRATION_TLS_NO },     { "true", MIGRATION_TLS_YES },
                { "0", MIGRATION_TLS_NO },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ConfigDiags d = { 0 };
                _cleanup_free_ char *text = NULL;
                Config *c;

                assert_true(asprintf(&text, "[migration]\ntls = %s\n", cases[i].value) > 0);
                c = parse(text, &d);
                assert_int_equal(d.n, 0);
                assert_int_equal(c->migration.tls, cases[i].want);
                assert_string_equal(migration_tls_to_string(c->migration.tls),
                                    cases[i].want == MIGRATION_TLS_AUTO  ? "auto"
                                    : cases[i].want == MIGRATION_TLS_YES ? "yes"
                                                                         : "no");
                config_free(c);
        }
}

static void test_ipv6_wildcard_is_any(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("[console]\nlisten = ::\n", &d);

        assert_int_equal(d.n, 0);
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_ANY);
        config_free(c);
}

/* Every value parser's error names file, line, section, key, the value and what was expected. */
static void test_bad_values_name_file_line_key_and_expectation(void **state)
{
        expect_error("[migration]\n\ndowntime = 500\n",
                     "hostwarden.conf:3:", "[migration] downtime", "'500'", "expected a duration",
                     NULL);
        expect_error("[migration]\ndowntime = 5 parsecs\n", ":2:", "downtime", NULL);
        expect_error("[migration]\ndowntime = 5ms\n", ":2:", "from 10ms", NULL);
        expect_error("[migration]\ntls = maybe\n", ":2:", "[migration] tls = 'maybe'",
                     "expected auto, yes or no", NULL);
        expect_error("[migration]\nmax_concurrent = 0\n", ":2:", "an integer from 1 to 64", NULL);
        expect_error("[migration]\nmax_concurrent = -3\n", "an integer from 1 to 64", NULL);
        expect_error("[migration]\nmax_concurrent = 99999999999999999999999\n", "from 1 to 64",
                     NULL);
        expect_error("[migration]\nbandwidth = fast\n", "MiB/s", NULL);
        expect_error("[migration]\nport_min = 80\n", "a port from 1024 to 65535", NULL);
        expect_error("[migration]\ntimeout_action = explode\n", "abort or force_complete", NULL);
        expect_error("[node]\ndisable_action = reboot\n", "none or stop", NULL);
        expect_error("[cluster]\nstore = zookeeper\n", "dir or etcd", NULL);
        expect_error("[cluster]\netcd_endpoints = 192.0.2.1:2379\n", "http://", NULL);
        expect_error("[cluster]\nstate_dir = relative/path\n", "an absolute path", NULL);
        expect_error("[node]\ninstances_path = /a/../b\n", "an absolute path", NULL);
        expect_error("[node]\nname = -bad-\n", "[node] name", "a host name", NULL);
        expect_error("[node]\naddress = not an address\n", "an IP address or a host name", NULL);
        expect_error("[node]\ncompute_unit = nova compute\n", "a systemd unit name", NULL);
        expect_error("[node]\ncompute_unit = nova-compute\n", "a systemd unit name", NULL);
        expect_error("[firewall]\nmigration_sources = 192.0.2.0/24, 10.0.0.300/8\n",
                     "[firewall] migration_sources", "CIDRs", NULL);
        expect_error("[firewall]\nconsole_clients = 192.0.2.0/33\n", "console_clients", NULL);
        expect_error("[firewall]\nconsole_clients = 2001:db8::/129\n", "console_clients", NULL);
        expect_error("[firewall]\nopen_window = 1s\n", "from 10s to 24h", NULL);
        expect_error("[console]\nlisten = 192.0.2.1\n", "0.0.0.0, node or keep", NULL);
        expect_error("[hook]\nrefuse_incoming_when_disabled = 2\n", "yes or no", NULL);
        expect_error("[peer n2]\naddress = 192.0.2.12\nlibvirt_uri = n2/system\n",
                     "[peer n2] libvirt_uri", "a libvirt URI", NULL);
        expect_error("[peer n2]\naddress = 192.0.2.12\nfence_agent = ../fence\n",
                     "fence agent name", NULL);
}

static void test_fence_options_errors_never_show_the_secret(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("[peer n2]\n"
                          "address = 192.0.2.12\n"
                          "fence_options = ip=192.0.2.112\n"
                          "  password hunter2\n",
                          &d);
        const char *msg = only_diag(&d, CONFIG_DIAG_ERROR);

        assert_true(test_contains(msg, ":3:")); /* where the key is */
        assert_true(test_contains(msg, "[peer n2] fence_options"));
        assert_true(test_contains(msg, "value not shown"));
        assert_null(strstr(msg, "hunter2"));
        config_diags_clear(&d);
        config_free(c);
}

/* Issue 24: the misspellings operators make get the key they meant, and nothing far off. */
static void test_unknown_keys_suggest_the_closest_known_one(void **state)
{
        static const struct {
                const char *text, *hint;
        } cases[] = {
                { "[node]\nadress = 192.0.2.1\n", "did you mean 'address'?" },
                { "[migration]\nmax_concurent = 2\n", "did you mean 'max_concurrent'?" },
                { "[migration]\nmax_incomming = 2\n", "did you mean 'max_incoming'?" },
                { "[peer n2]\naddress = 192.0.2.2\nfence_agnet = fence_ipmilan\n",
                  "did you mean 'fence_agent'?" },
                { "[migratoin]\nbandwidth = 10\n", "did you mean [migration]?" },
                { "[recovery]\nenalbe = yes\n", "did you mean 'enable'?" },
        };
        char buf[512];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ConfigDiags d = { 0 };
                Config *c = parse(cases[i].text, &d);

                assert_int_equal(d.n_errors, 0);
                assert_int_equal(d.n, 1);
                config_diag_format(&d.items[0], buf, sizeof(buf));
                if (!test_contains(buf, cases[i].hint))
                        fail_msg("'%s' does not say \"%s\"", buf, cases[i].hint);
                config_diags_clear(&d);
                config_free(c);
        }
        /* nothing near: no guess */
        {
                ConfigDiags d = { 0 };
                Config *c = parse("[node]\ncolour = blue\n[zzz]\n", &d);

                assert_int_equal(d.n, 2);
                assert_false(test_contains(config_diag_format(&d.items[0], buf, sizeof(buf)),
                                           "did you mean"));
                assert_false(test_contains(config_diag_format(&d.items[1], buf, sizeof(buf)),
                                           "did you mean"));
                config_diags_clear(&d);
                config_free(c);
        }
}

static void test_unknown_keys_and_sections_warn(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("[node]\n"
                          "nmae = compute1\n"
                          "[nodes]\n"
                          "name = x\n"
                          "[console]\n"
                          "listen = keep\n",
                          &d);

        assert_int_equal(d.n_errors, 0);
        assert_int_equal(d.n, 2);
        char buf[512];
        assert_true(test_contains(config_diag_format(&d.items[0], buf, sizeof(buf)),
                                  "hostwarden.conf:2: unknown key 'nmae' in [node], ignored; "
                                  "did you mean 'name'?"));
        assert_true(test_contains(config_diag_format(&d.items[1], buf, sizeof(buf)),
                                  "hostwarden.conf:3: unknown section [nodes], its keys are "
                                  "ignored; did you mean [node]?"));
        /* keys of an unknown section are ignored, not applied elsewhere */
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_KEEP);
        config_diags_clear(&d);
        config_free(c);
}

static void test_unknown_peer_key_warns(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("[peer n2]\naddress = 192.0.2.12\nadress = x\n", &d);

        assert_int_equal(d.n_errors, 0);
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_WARNING),
                                  ":3: unknown key 'adress' in [peer n2]"));
        config_diags_clear(&d);
        config_free(c);
}

static void test_syntax_errors(void **state)
{
        expect_error("[node]\nname = a\nthis line has no equals sign\n",
                     ":3:", "expected '[section]', 'key = value' or a comment", NULL);
        expect_error("[node\nname = a\n", ":1:", NULL);
        expect_error("[peer]\naddress = x\n", ":1:", "[peer NAME]", NULL);
        expect_error("[peer bad name!]\naddress = x\n", ":1:", "[peer NAME]", NULL);
        expect_error("[peer aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
                     ":1:", "too long", NULL);
}

static void test_overlong_line_is_an_error_not_a_truncation(void **state)
{
        char text[1024];

        snprintf(text, sizeof(text),
                 "[node]\ncompute_unit = %0300d.service\n[console]\nlisten = keep\n", 7);
        ConfigDiags d = { 0 };
        Config *c = parse(text, &d);

        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_ERROR), ":2: line is too long"));
        /* the rest of the file is still read */
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_KEEP);
        assert_string_equal(c->node.compute_unit, "nova-compute.service");
        config_diags_clear(&d);
        config_free(c);
}

static void test_line_with_many_carriage_returns_is_too_long_not_an_overflow(void **state)
{
        char text[1024] = "[node]\nname = a";
        ConfigDiags d = { 0 };

        /* inih's line buffer is 200 bytes: \r count toward it (once overflowed it) */
        memset(text + strlen(text), '\r', 400);
        strcat(text, "\n[console]\nlisten = keep\n");
        Config *c = parse(text, &d);
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_ERROR), ":2: line is too long"));
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_KEEP);
        config_diags_clear(&d);
        config_free(c);
}

static void test_sections_after_odd_white_space_are_sections(void **state)
{
        ConfigDiags d = { 0 };
        /* libinih skips \r, \v and \f before a '[': so must we (a NULL peer crashed here) */
        Config *c = parse("[node]\nname = n1\n\r[peer n2]\naddress = 192.0.2.12\n"
                          "\v[peer]\naddress = 192.0.2.13\n",
                          &d);

        assert_int_equal(d.n_errors, 1); /* [peer] without a name */
        assert_int_equal(c->n_peers, 1);
        assert_string_equal(c->peers[0].address, "192.0.2.12");
        config_diags_clear(&d);
        config_free(c);
}

static void test_a_thousand_continued_sources_parse_once(void **state)
{
        size_t size = 64 + 1000 * 32;
        char *text = malloc(size);
        ConfigDiags d = { 0 };
        size_t off;

        off = (size_t)snprintf(text, size, "[firewall]\nmigration_sources = 198.18.0.0\n");
        for (int i = 1; i < 1000; i++)
                off += (size_t)snprintf(text + off, size - off, "    198.18.%d.%d\n", i / 250,
                                        i % 250);
        Config *c = parse(text, &d);
        assert_int_equal(d.n, 0);
        assert_int_equal(strv_length(c->firewall.migration_sources), 1000);
        assert_string_equal(c->firewall.migration_sources[999], "198.18.3.249");
        config_free(c);
        free(text);
}

static void test_cross_key_checks(void **state)
{
        expect_error("[migration]\nport_min = 50000\nport_max = 49999\n",
                     ":3:", "port_max = 49999 is below port_min = 50000", NULL);
        expect_error("[firewall]\nconsole_port_min = 6000\nconsole_port_max = 5999\n",
                     ":3:", "console_port_max", NULL);
        expect_error("[cluster]\ndown_after = 5s\nheartbeat_interval = 10s\n",
                     ":2:", "down_after must be longer than heartbeat_interval", NULL);
        expect_error("[cluster]\nstore = etcd\n", ":2:", "etcd_endpoints", NULL);
        expect_error("[cluster]\nstore = etcd\netcd_endpoints = https://192.0.2.1:2379\n"
                     "  http://192.0.2.2:2379\n",
                     ":3:", "'http://192.0.2.2:2379' is plain HTTP", "etcd_insecure = yes", NULL);
        expect_error("[cluster]\netcd_cert = /etc/c.pem\n", ":2:", "etcd_cert needs etcd_key",
                     NULL);
        expect_error("[cluster]\netcd_key = /etc/k.pem\n", ":2:", "etcd_key needs etcd_cert", NULL);
        expect_error("[cluster]\n\netcd_user = hw\n", ":3:", "etcd_user needs etcd_password", NULL);
        expect_error("[cluster]\netcd_password = pw\n", ":2:", "etcd_password needs etcd_user",
                     NULL);
        expect_error("[cluster]\netcd_insecure = yes\netcd_endpoints = http://192.0.2.1:2379\n"
                     "etcd_user = hw\netcd_password = pw\n",
                     ":5:", "etcd_password would travel in the clear", NULL);
        expect_error("[console]\nlisten = node\n", ":2:", "needs [node] address", NULL);
        expect_error("[peer n2]\nlibvirt_uri = qemu+tcp://x/system\n",
                     ":1:", "[peer n2] has no address", NULL);
        expect_error("[node]\nname = n1\n[peer n1]\naddress = 192.0.2.1\n",
                     ":3:", "names this node itself", NULL);
}

static void test_etcd_insecure_allows_plain_http(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("[cluster]\nstore = etcd\netcd_endpoints = http://192.0.2.1:2379\n"
                          "etcd_insecure = yes\n",
                          &d);

        assert_int_equal(d.n, 0);
        assert_true(c->cluster.etcd_insecure);
        config_free(c);
        expect_error("[cluster]\netcd_user = two words\n", ":2:", "an etcd user name", NULL);
}

/* The etcd password: never shown in a message, and refused from a file anyone can read (the
 * package installs hostwarden.conf 0640; a drop-in copied in with 0644 would leak it). */
static void test_etcd_password_only_in_files_others_cannot_read(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp(), *path = NULL;
        ConfigDiags d = { 0 };
        Config *c = NULL;
        const char *msg;

        test_write(dir, "hostwarden.conf",
                   "[cluster]\nstore = etcd\netcd_endpoints = https://192.0.2.1:2379\n");
        test_write(dir, "hostwarden.conf.d/50-etcd.conf",
                   "[cluster]\netcd_user = hostwarden\netcd_password = hunter2-etcd\n");
        assert_true(asprintf(&path, "%s/hostwarden.conf.d/50-etcd.conf", dir) > 0);
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(config_load(dir, &d, &c), -EINVAL);
        msg = only_diag(&d, CONFIG_DIAG_ERROR);
        assert_true(test_contains(msg, "50-etcd.conf:3: [cluster] etcd_password"));
        assert_true(test_contains(msg, "readable by every user"));
        assert_null(strstr(msg, "hunter2"));
        config_diags_clear(&d);

        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(config_load(dir, &d, &c), 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c->cluster.etcd_password, "hunter2-etcd");
        config_free(c);

        /* a bad value does not show it either */
        test_write(dir, "hostwarden.conf.d/50-etcd.conf", "[cluster]\netcd_password =\n");
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(config_load(dir, &d, &c), -EINVAL);
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_ERROR), "value not shown"));
        config_diags_clear(&d);
        test_rm_rf(dir);
}

static void test_dropins_apply_in_lexical_order_later_wins(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        ConfigDiags d = { 0 };
        Config *c = NULL;

        test_write(dir, "hostwarden.conf",
                   "[node]\nname = base\naddress = 192.0.2.1\n"
                   "[console]\nlisten = keep\n");
        test_write(dir, "hostwarden.conf.d/20-second.conf", "[console]\nlisten = node\n");
        test_write(dir, "hostwarden.conf.d/10-first.conf",
                   "[console]\nlisten = 0.0.0.0\n[node]\nname = first\n");
        test_write(dir, "hostwarden.conf.d/30-ignored.conf.dpkg-old", "[node]\nname = nope\n");
        test_write(dir, "hostwarden.conf.d/.hidden.conf", "[node]\nname = hidden\n");

        assert_int_equal(config_load(dir, &d, &c), 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c->node.name, "first");
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_NODE);
        assert_int_equal(strv_length(c->files), 3);
        assert_true(test_contains(c->files[1], "10-first.conf"));
        assert_true(test_contains(c->files[2], "20-second.conf"));
        config_free(c);
        test_rm_rf(dir);
}

static void test_load_errors_name_the_dropin_and_write_no_config(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        ConfigDiags d = { 0 };
        Config *c = NULL;

        test_write(dir, "hostwarden.conf.d/50-typo.conf", "[migration]\n\nmax_concurrent = many\n");
        assert_int_equal(config_load(dir, &d, &c), -EINVAL);
        assert_null(c);
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_ERROR),
                                  "hostwarden.conf.d/50-typo.conf:3: [migration] max_concurrent = "
                                  "'many': expected an integer from 1 to 64"));
        config_diags_clear(&d);
        test_rm_rf(dir);
}

/* The hook, the firewall helper and hostwardenctl load the configuration without the fence
 * options: not kept, not even parsed (a bad value there is hostwardend's error only). */
static void test_load_without_secrets_keeps_no_fence_options(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        ConfigDiags d = { 0 };
        Config *c = NULL;
        const ConfigPeer *p;

        test_write(dir, "hostwarden.conf", "[node]\nname = n1\n[console]\nlisten = keep\n");
        test_write(dir, "hostwarden.conf.d/90-fence.conf",
                   "[peer n2]\naddress = 192.0.2.12\nfence_agent = fence_ipmilan\n"
                   "fence_options = ip=192.0.2.112\n  password=hunter2\n"
                   "libvirt_uri = qemu+tls://n2/system\n");
        assert_int_equal(config_load(dir, &d, &c), 0);
        assert_string_equal(config_find_peer(c, "n2")->fence_options,
                            "ip=192.0.2.112\npassword=hunter2");
        config_free(c);
        c = NULL;

        assert_int_equal(config_load_without_secrets(dir, &d, &c), 0);
        assert_int_equal(d.n, 0);
        p = config_find_peer(c, "n2");
        assert_non_null(p);
        assert_null(p->fence_options);
        assert_string_equal(p->fence_agent, "fence_ipmilan");
        /* the keys after it are read as usual */
        assert_string_equal(p->libvirt_uri, "qemu+tls://n2/system");
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_KEEP);
        config_free(c);
        c = NULL;

        test_write(dir, "hostwarden.conf.d/90-fence.conf",
                   "[peer n2]\naddress = 192.0.2.12\nfence_options = password hunter2\n");
        assert_int_equal(config_load(dir, &d, &c), -EINVAL);
        config_diags_clear(&d);
        assert_int_equal(config_load_without_secrets(dir, &d, &c), 0);
        assert_int_equal(d.n, 0);
        assert_null(config_find_peer(c, "n2")->fence_options);
        config_free(c);
        test_rm_rf(dir);
}

/* The etcd password is a secret too: the hook and the firewall helper leave it out (and do
 * not miss it next to etcd_user); hostwardenctl's init-cluster, which opens the store, keeps
 * it, and still not the fence options. */
static void test_store_secrets_only_where_the_store_is_opened(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        ConfigDiags d = { 0 };
        char path[4096];
        Config *c = NULL;

        test_write(dir, "hostwarden.conf",
                   "[cluster]\nstore = etcd\netcd_endpoints = https://192.0.2.5:2379\n"
                   "etcd_user = hw\netcd_password = s3cret\n"
                   "[peer n2]\naddress = 192.0.2.12\nfence_options = password=hunter2\n");
        snprintf(path, sizeof(path), "%s/hostwarden.conf", dir);
        assert_int_equal(chmod(path, 0600), 0);

        assert_int_equal(config_load_without_secrets(dir, &d, &c), 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c->cluster.etcd_user, "hw");
        assert_null(c->cluster.etcd_password);
        assert_null(config_find_peer(c, "n2")->fence_options);
        config_free(c);
        c = NULL;

        assert_int_equal(config_load_with_store_secrets(dir, &d, &c), 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c->cluster.etcd_password, "s3cret");
        assert_null(config_find_peer(c, "n2")->fence_options);
        config_free(c);
        test_rm_rf(dir);
}

/* CheckNode's secret-file-mode finding: which files hold fence_options, and which modes
 * expose them. */
static void test_files_holding_secrets_and_their_modes(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        ConfigDiags d = { 0 };
        Config *c = NULL;

        test_write(dir, "hostwarden.conf", "[node]\nname = n1\n");
        test_write(dir, "hostwarden.conf.d/50-peers.conf", "[peer n2]\naddress = 192.0.2.12\n");
        test_write(dir, "hostwarden.conf.d/90-fence.conf",
                   "[peer n2]\nfence_agent = fence_ipmilan\nfence_options = password=x\n");
        for (int without = 0; without < 2; without++) {
                assert_int_equal((without ? config_load_without_secrets : config_load)(dir, &d, &c),
                                 0);
                assert_int_equal(strv_length(c->secret_files), 1);
                assert_true(test_contains(c->secret_files[0], "90-fence.conf"));
                config_free(c);
                c = NULL;
        }

        assert_null(config_secret_file_exposure(0600, 0));
        assert_null(config_secret_file_exposure(0640, 0));
        assert_null(config_secret_file_exposure(0660, 0));
        assert_null(config_secret_file_exposure(0600, 1000)); /* no group bits */
        assert_string_equal(config_secret_file_exposure(0644, 0), "readable by others");
        assert_string_equal(config_secret_file_exposure(0602, 0), "writable by others");
        assert_string_equal(config_secret_file_exposure(0640, 1000), "readable by its group");
        assert_string_equal(config_secret_file_exposure(0620, 1000), "writable by its group");
        test_rm_rf(dir);
}

static void test_missing_config_means_defaults(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        ConfigDiags d = { 0 };
        Config *c = NULL;

        assert_int_equal(config_load(dir, &d, &c), 0);
        assert_int_equal(d.n, 0);
        assert_int_equal(c->console.listen, CONSOLE_LISTEN_ANY);
        config_free(c);
        test_rm_rf(dir);
}

static void test_unreadable_and_binary_files_are_errors(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        char path[4096];
        ConfigDiags d = { 0 };
        Config *c = NULL;
        FILE *f;

        /* a directory where the main file should be */
        snprintf(path, sizeof(path), "%s/hostwarden.conf", dir);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(config_load(dir, &d, &c), -EINVAL);
        assert_true(
                test_contains(only_diag(&d, CONFIG_DIAG_ERROR), "hostwarden.conf: cannot read"));
        config_diags_clear(&d);
        rmdir(path);

        f = fopen(path, "we");
        fwrite("[node]\nname = a\0b\n", 1, 18, f);
        fclose(f);
        assert_int_equal(config_load(dir, &d, &c), -EINVAL);
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_ERROR), "NUL byte"));
        config_diags_clear(&d);
        test_rm_rf(dir);
}

/* [history] (issue 21): the seeds' database cleaning defaults, days as a unit, and a bad
 * value named with its file, line and what was expected. */
static void test_history_keys(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("", &d);

        assert_int_equal(c->history.archive_after, 90 * USEC_PER_DAY);
        assert_int_equal(c->history.purge_after, 14 * USEC_PER_DAY);
        config_free(c);

        c = parse("[history]\narchive_after = 30d\npurge_after = 0s\n", &d);
        assert_int_equal(d.n, 0);
        assert_int_equal(c->history.archive_after, 30 * USEC_PER_DAY);
        assert_int_equal(c->history.purge_after, 0);
        config_free(c);

        c = parse("[history]\narchive_after = 90 days\n", &d);
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_ERROR),
                                  "hostwarden.conf:2: [history] archive_after"));
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_ERROR), "such as 90d"));
        assert_int_equal(c->history.archive_after, 90 * USEC_PER_DAY);
        config_diags_clear(&d);
        config_free(c);
}

/* [metrics] (issue 24): Debian's node_exporter textfile directory by default, empty turns the
 * textfile off, a path node_exporter would not read is an error naming file and line, and a
 * misspelt key is a warning that says which one was meant. */
static void test_metrics_keys(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = parse("", &d);

        assert_string_equal(c->metrics.textfile,
                            "/var/lib/prometheus/node-exporter/hostwarden.prom");
        assert_int_equal(c->metrics.interval, 15 * USEC_PER_SEC);
        config_free(c);

        c = parse("[metrics]\ntextfile =\ninterval = 1min\n", &d);
        assert_int_equal(d.n, 0);
        assert_null(c->metrics.textfile);
        assert_int_equal(c->metrics.interval, 60 * USEC_PER_SEC);
        config_free(c);

        expect_error("[metrics]\n\ntextfile = /var/lib/hostwarden/metrics.txt\n",
                     "hostwarden.conf:3: [metrics] textfile", "ending in .prom", NULL);
        expect_error("[metrics]\ntextfile = metrics.prom\n", ":2:", "an absolute path", NULL);
        expect_error("[metrics]\ninterval = 100ms\n", ":2:", "from 1s to 1h", NULL);

        c = parse("[metrics]\ntextfil = /x.prom\n", &d);
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_WARNING), "did you mean"));
        assert_true(test_contains(only_diag(&d, CONFIG_DIAG_WARNING), "textfile"));
        config_diags_clear(&d);
        config_free(c);
}

static void test_example_config_shipped_is_valid(void **state)
{
        _cleanup_free_ char *text = test_read_data("../../etc/hostwarden.conf", NULL);
        ConfigDiags d = { 0 };
        Config *c = parse(text, &d);

        assert_int_equal(d.n, 0);
        config_free(c);
}

/* [policy NAME] sections and [migration] policy (migration policies, lib/migschedule.h) */
static void test_config_policies(void **state)
{
        ConfigDiags d = {};
        const MigSchedule *s;
        Config *c;

        c = parse("[migration]\npermit_post_copy = yes\npolicy = db\n\n"
                  "[policy db]\nstep = start: downtime 200\n  step = stalled 4: post-copy\n",
                  &d);
        assert_int_equal(d.n_errors, 0);
        assert_string_equal(c->migration.policy, "db");
        s = config_find_policy(c, "db");
        assert_non_null(s);
        assert_int_equal(s->n_steps, 2);
        assert_int_equal(s->steps[1].action, MIG_ACTION_POST_COPY);
        assert_ptr_equal(config_find_policy(c, "nova"), mig_schedule_builtin("nova"));
        assert_null(config_find_policy(c, "other"));
        config_diags_clear(&d);
        config_free(c);

        /* the default: nova */
        c = parse("", &d);
        assert_string_equal(c->migration.policy, "nova");
        config_diags_clear(&d);
        config_free(c);

        /* a section opened again (a drop-in) starts over */
        c = parse("[policy a]\nstep = stalled 1: abort\n[policy a]\nstep = after 10s: pause\n", &d);
        assert_int_equal(d.n_errors, 0);
        assert_int_equal(config_find_policy(c, "a")->n_steps, 1);
        assert_int_equal(config_find_policy(c, "a")->steps[0].action, MIG_ACTION_PAUSE);
        config_diags_clear(&d);
        config_free(c);

        expect_error("[policy db]\nstep = stalled 1: abort\nstep = stalled 4: jump\n",
                     "hostwarden.conf:3:", "an action", NULL);
        expect_error("[policy db]\nstep = stalled 1: abort\nsteps = x\n", ":3:", "the only key",
                     NULL);
        expect_error("[policy db]\n", ":1:", "[policy db] has no step", NULL);
        expect_error("[policy Nope]\n", ":1:", "[policy NAME]", NULL);
        expect_error("[policy nova]\nstep = stalled 1: abort\n", ":1:", "built-in", NULL);
        expect_error("[migration]\npolicy = fastest\n", ":2:", "no such policy", NULL);
        expect_error("[migration]\npolicy = post-copy-when-stalled\n",
                     ":2:", "permit_post_copy = no", NULL);
        expect_error("[migration]\npolicy = minimal-downtime\n", ":2:", "permit_auto_converge = no",
                     NULL);
        expect_error("[migration]\npolicy = Bad\n", ":2:", "a policy name", NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_policies),
                cmocka_unit_test(test_unknown_keys_suggest_the_closest_known_one),
                cmocka_unit_test(test_defaults_match_design),
                cmocka_unit_test(test_full_config_is_read),
                cmocka_unit_test(test_indented_keys_are_layout_not_continuations),
                cmocka_unit_test(test_migration_tls_is_auto_or_a_boolean),
                cmocka_unit_test(test_ipv6_wildcard_is_any),
                cmocka_unit_test(test_bad_values_name_file_line_key_and_expectation),
                cmocka_unit_test(test_fence_options_errors_never_show_the_secret),
                cmocka_unit_test(test_unknown_keys_and_sections_warn),
                cmocka_unit_test(test_unknown_peer_key_warns),
                cmocka_unit_test(test_syntax_errors),
                cmocka_unit_test(test_overlong_line_is_an_error_not_a_truncation),
                cmocka_unit_test(test_line_with_many_carriage_returns_is_too_long_not_an_overflow),
                cmocka_unit_test(test_sections_after_odd_white_space_are_sections),
                cmocka_unit_test(test_a_thousand_continued_sources_parse_once),
                cmocka_unit_test(test_cross_key_checks),
                cmocka_unit_test(test_etcd_insecure_allows_plain_http),
                cmocka_unit_test(test_etcd_password_only_in_files_others_cannot_read),
                cmocka_unit_test(test_dropins_apply_in_lexical_order_later_wins),
                cmocka_unit_test(test_load_errors_name_the_dropin_and_write_no_config),
                cmocka_unit_test(test_load_without_secrets_keeps_no_fence_options),
                cmocka_unit_test(test_store_secrets_only_where_the_store_is_opened),
                cmocka_unit_test(test_files_holding_secrets_and_their_modes),
                cmocka_unit_test(test_missing_config_means_defaults),
                cmocka_unit_test(test_unreadable_and_binary_files_are_errors),
                cmocka_unit_test(test_example_config_shipped_is_valid),
                cmocka_unit_test(test_history_keys),
                cmocka_unit_test(test_metrics_keys),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
