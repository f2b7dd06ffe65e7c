/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "domxml.h"
#include "test-helpers.h"

static DomXml *parse_data(const char *name)
{
        _cleanup_free_ char *text = NULL, *error = NULL;
        DomXml *d = NULL;
        size_t size;
        int r;

        text = test_read_data(name, &size);
        r = domxml_parse(text, size, &d, &error);
        if (r < 0)
                fail_msg("%s: %s", name, error ? error : strerror(-r));
        return d;
}

/* Canonical XML (C14N 1.0) of a document, after setting every attribute named by the XPath
 * expression reset_xpath to reset_value (NULL: no change). */
static char *canonical(const char *text, size_t size, const char *reset_xpath,
                       const char *reset_value)
{
        xmlDoc *doc = xmlReadMemory(text, (int)size, NULL, NULL, XML_PARSE_NONET);
        xmlChar *out = NULL;
        char *s;

        assert_non_null(doc);
        if (reset_xpath) {
                xmlXPathContext *xc = xmlXPathNewContext(doc);
                xmlXPathObject *o = xmlXPathEvalExpression((const xmlChar *)reset_xpath, xc);

                assert_non_null(o);
                for (int i = 0; o->nodesetval && i < o->nodesetval->nodeNr; i++) {
                        xmlAttr *a = (xmlAttr *)o->nodesetval->nodeTab[i];
                        xmlSetProp(a->parent, a->name, (const xmlChar *)reset_value);
                }
                xmlXPathFreeObject(o);
                xmlXPathFreeContext(xc);
        }
        assert_true(xmlC14NDocDumpMemory(doc, NULL, XML_C14N_1_0, NULL, 1, &out) >= 0);
        s = strdup((const char *)out);
        xmlFree(out);
        xmlFreeDoc(doc);
        return s;
}

/* The listen addresses of every graphics device, "type:attr|child,child;..." */
static char *listens(const DomXml *d)
{
        char buf[1024] = "";

        for (size_t i = 0; i < d->n_graphics; i++) {
                const DomGraphics *g = &d->graphics[i];
                char part[256];

                snprintf(part, sizeof(part), "%s%s:%s|", i ? ";" : "", g->type,
                         g->listen ? g->listen : "-");
                strcat(buf, part);
                for (size_t j = 0; j < g->n_listens; j++) {
                        snprintf(part, sizeof(part), "%s%s", j ? "," : "",
                                 g->listens[j].address ? g->listens[j].address : "-");
                        strcat(buf, part);
                }
        }
        return strdup(buf);
}

static void test_nova_domain_model(void **state)
{
        DomXml *d = parse_data("domains/nova-vnc-spice.xml");

        assert_string_equal(d->name, "instance-0000002a");
        assert_string_equal(d->uuid, "3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b");
        assert_string_equal(d->domain_type, "kvm");
        assert_int_equal(d->memory_kib, 2097152);

        assert_int_equal(d->n_graphics, 2);
        assert_string_equal(d->graphics[0].type, "vnc");
        assert_string_equal(d->graphics[0].listen, "192.0.2.11");
        assert_int_equal(d->graphics[0].n_listens, 1);
        assert_int_equal(d->graphics[0].listens[0].type, DOM_LISTEN_ADDRESS);
        assert_string_equal(d->graphics[1].type, "spice");

        assert_int_equal(d->n_disks, 2);
        assert_string_equal(d->disks[0].device, "disk");
        assert_string_equal(d->disks[0].driver_type, "qcow2");
        assert_string_equal(d->disks[0].source,
                            "/var/lib/nova/instances/3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b/disk");
        assert_string_equal(d->disks[0].target, "vda");
        assert_string_equal(d->disks[0].bus, "virtio");
        assert_false(d->disks[0].readonly);
        assert_string_equal(d->disks[1].device, "cdrom");
        assert_true(d->disks[1].readonly);
        assert_true(test_contains(d->disks[1].source, "disk.config"));

        assert_int_equal(d->n_interfaces, 1);
        assert_string_equal(d->interfaces[0].type, "bridge");
        assert_string_equal(d->interfaces[0].mac, "fa:16:3e:4b:2c:9d");
        assert_string_equal(d->interfaces[0].source, "br-int");
        assert_string_equal(d->interfaces[0].model, "virtio");
        domxml_free(d);
}

static void test_listen_target_rules(void **state)
{
        /* keep never rewrites */
        assert_null(console_listen_target(CONSOLE_LISTEN_KEEP, "192.0.2.12", "192.0.2.11"));
        /* 0.0.0.0: the wildcard of the address family */
        assert_string_equal(console_listen_target(CONSOLE_LISTEN_ANY, NULL, "192.0.2.11"),
                            "0.0.0.0");
        assert_string_equal(console_listen_target(CONSOLE_LISTEN_ANY, NULL, "2001:db8::11"), "::");
        assert_string_equal(console_listen_target(CONSOLE_LISTEN_ANY, NULL, "node1.example.com"),
                            "0.0.0.0");
        assert_null(console_listen_target(CONSOLE_LISTEN_ANY, NULL, "0.0.0.0"));
        assert_null(console_listen_target(CONSOLE_LISTEN_ANY, NULL, "::"));
        /* node: this node's address, also tightening a wildcard */
        assert_string_equal(console_listen_target(CONSOLE_LISTEN_NODE, "192.0.2.12", "192.0.2.11"),
                            "192.0.2.12");
        assert_string_equal(console_listen_target(CONSOLE_LISTEN_NODE, "192.0.2.12", "0.0.0.0"),
                            "192.0.2.12");
        assert_null(console_listen_target(CONSOLE_LISTEN_NODE, "192.0.2.12", "192.0.2.12"));
        assert_null(console_listen_target(CONSOLE_LISTEN_NODE, NULL, "192.0.2.11"));
        /* loopback stays local; no address stays libvirt's default */
        assert_null(console_listen_target(CONSOLE_LISTEN_ANY, NULL, "127.0.0.1"));
        assert_null(console_listen_target(CONSOLE_LISTEN_NODE, "192.0.2.12", "::1"));
        assert_null(console_listen_target(CONSOLE_LISTEN_NODE, "192.0.2.12", "localhost"));
        assert_null(console_listen_target(CONSOLE_LISTEN_ANY, NULL, NULL));
        assert_null(console_listen_target(CONSOLE_LISTEN_ANY, NULL, ""));
}

/* Rewrites a fixture, checks the new listens, and that nothing but listen attributes changed. */
static void check_rewrite(const char *name, ConsoleListen mode, const char *node_address,
                          unsigned expect_changed, const char *expect_listens)
{
        _cleanup_free_ char *orig = NULL, *out = NULL, *got = NULL, *c_orig = NULL, *c_out = NULL;
        DomXml *d = parse_data(name), *d2 = NULL;
        size_t orig_size, out_size;
        unsigned changed = 99;

        orig = test_read_data(name, &orig_size);
        assert_int_equal(domxml_rewrite_listen(d, mode, node_address, &changed), 0);
        assert_int_equal(changed, expect_changed);
        got = listens(d);
        assert_string_equal(got, expect_listens);

        /* the formatted document reads back to the same model */
        assert_int_equal(domxml_format(d, &out, &out_size), 0);
        assert_null(strstr(out, "<?xml"));
        assert_int_equal(domxml_parse(out, out_size, &d2, NULL), 0);
        free(got);
        got = listens(d2);
        assert_string_equal(got, expect_listens);
        assert_string_equal(d2->uuid, d->uuid);
        domxml_free(d2);

        /* everything else is preserved: with the graphics listen addresses set to one value
         * in both, the canonical forms are identical */
        c_orig = canonical(orig, orig_size, "//graphics/@listen | //graphics/listen/@address", "X");
        c_out = canonical(out, out_size, "//graphics/@listen | //graphics/listen/@address", "X");
        assert_string_equal(c_orig, c_out);
        domxml_free(d);
}

static void test_rewrite_nova_vnc_and_spice_to_any(void **state)
{
        check_rewrite("domains/nova-vnc-spice.xml", CONSOLE_LISTEN_ANY, "192.0.2.12", 4,
                      "vnc:0.0.0.0|0.0.0.0;spice:0.0.0.0|0.0.0.0");
}

static void test_rewrite_nova_vnc_and_spice_to_node(void **state)
{
        check_rewrite("domains/nova-vnc-spice.xml", CONSOLE_LISTEN_NODE, "192.0.2.12", 4,
                      "vnc:192.0.2.12|192.0.2.12;spice:192.0.2.12|192.0.2.12");
}

static void test_rewrite_keep_changes_nothing(void **state)
{
        check_rewrite("domains/nova-vnc-spice.xml", CONSOLE_LISTEN_KEEP, "192.0.2.12", 0,
                      "vnc:192.0.2.11|192.0.2.11;spice:192.0.2.11|192.0.2.11");
}

static void test_rewrite_ipv6(void **state)
{
        check_rewrite("domains/vnc-ipv6.xml", CONSOLE_LISTEN_ANY, NULL, 2, "vnc:::|::");
        check_rewrite("domains/vnc-ipv6.xml", CONSOLE_LISTEN_NODE, "2001:db8::12", 2,
                      "vnc:2001:db8::12|2001:db8::12");
}

static void test_rewrite_leaves_network_listen_alone(void **state)
{
        check_rewrite("domains/vnc-network.xml", CONSOLE_LISTEN_ANY, NULL, 0,
                      "vnc:192.0.2.11|192.0.2.11;spice:-|-");
}

static void test_rewrite_leaves_socket_listen_alone(void **state)
{
        check_rewrite("domains/vnc-socket.xml", CONSOLE_LISTEN_NODE, "192.0.2.12", 0,
                      "vnc:-|-;vnc:-|");
}

static void test_rewrite_without_graphics_is_a_no_op(void **state)
{
        check_rewrite("domains/no-graphics.xml", CONSOLE_LISTEN_ANY, NULL, 0, "");
}

static void test_rewrite_leaves_loopback_alone(void **state)
{
        check_rewrite("domains/vnc-loopback.xml", CONSOLE_LISTEN_ANY, NULL, 0,
                      "vnc:127.0.0.1|127.0.0.1;spice:::1|");
}

static void test_rewrite_listen_attribute_only(void **state)
{
        static const char xml[] = "<domain type='qemu'><name>a</name>"
                                  "<uuid>00000000-0000-4000-8000-000000000001</uuid>"
                                  "<devices><graphics type='vnc' listen='192.0.2.11'/>"
                                  "<graphics type='sdl' listen='192.0.2.11'/>"
                                  "</devices></domain>";
        DomXml *d = NULL;
        unsigned changed;

        assert_int_equal(domxml_parse(xml, strlen(xml), &d, NULL), 0);
        assert_int_equal(domxml_rewrite_listen(d, CONSOLE_LISTEN_ANY, NULL, &changed), 0);
        assert_int_equal(changed, 1); /* vnc only; sdl is not ours */
        assert_string_equal(d->graphics[0].listen, "0.0.0.0");
        assert_string_equal(d->graphics[1].listen, "192.0.2.11");
        domxml_free(d);
}

/* Every device of a kind is collected, in document order, whatever stands between them; only
 * the children of <devices> (and <listen> only inside its <graphics>) count. */
static void test_devices_are_collected_in_order(void **state)
{
        static const char xml[] =
                "<domain type='qemu'><name>a</name>"
                "<uuid>00000000-0000-4000-8000-000000000001</uuid>"
                "<devices>"
                "<interface type='network'><source network='default'/></interface>"
                "<graphics type='vnc'><listen type='address' address='192.0.2.1'/>"
                "<listen type='network' network='n1'/></graphics>"
                "<disk type='file' device='disk'><source file='/d/a'/><target dev='vda'/></disk>"
                "<hostdev mode='subsystem' type='mdev'>"
                "<source><address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source></hostdev>"
                "<controller type='usb'/>"
                "<interface type='bridge'><source bridge='br0'/><listen address='198.51.100.1'/>"
                "</interface>"
                "<disk type='block'><source dev='/dev/sdb'/><target dev='vdb'/><shareable/></disk>"
                "<graphics type='spice' listen='192.0.2.2'/>"
                "<hostdev mode='subsystem' type='pci'><source>"
                "<address domain='0x0000' bus='0x03' slot='0x00' function='0x1'/>"
                "</source></hostdev>"
                "</devices><disk type='file'><source file='/not/a/device'/></disk></domain>";
        _cleanup_free_ char *l = NULL;
        DomXml *d = NULL;

        assert_int_equal(domxml_parse(xml, strlen(xml), &d, NULL), 0);
        l = listens(d);
        assert_string_equal(l, "vnc:-|192.0.2.1,-;spice:192.0.2.2|");
        assert_int_equal(d->graphics[0].listens[1].type, DOM_LISTEN_NETWORK);
        assert_string_equal(d->graphics[0].listens[1].network, "n1");
        assert_int_equal(d->n_disks, 2);
        assert_string_equal(d->disks[0].source, "/d/a");
        assert_string_equal(d->disks[1].source, "/dev/sdb");
        assert_string_equal(d->disks[1].device, "disk"); /* libvirt's default */
        assert_true(d->disks[1].shareable);
        assert_int_equal(d->n_interfaces, 2);
        assert_string_equal(d->interfaces[0].source, "default");
        assert_string_equal(d->interfaces[1].source, "br0");
        assert_int_equal(d->n_hostdevs, 2);
        assert_string_equal(d->hostdevs[0].device, "c2177883-f1bb-47f0-914d-32a22e3a8804");
        assert_string_equal(d->hostdevs[1].device, "0000:03:00.1");
        domxml_free(d);
}

static void expect_parse_error(const char *xml, int expect_r, const char *expect_msg)
{
        _cleanup_free_ char *error = NULL;
        DomXml *d = NULL;

        assert_int_equal(domxml_parse(xml, strlen(xml), &d, &error), expect_r);
        assert_null(d);
        assert_non_null(error);
        assert_true(test_contains(error, expect_msg));
}

static void test_parse_errors_say_what_is_wrong(void **state)
{
        expect_parse_error("<domain><name>a</name>", -EINVAL, "not well-formed: line 1");
        expect_parse_error("", -EINVAL, "not well-formed");
        expect_parse_error("<network><name>a</name></network>", -EBADMSG,
                           "root element is <network>, expected <domain>");
        expect_parse_error("<domain><uuid>00000000-0000-4000-8000-000000000001</uuid></domain>",
                           -EBADMSG, "has no <name>");
        expect_parse_error("<domain><name>a</name></domain>", -EBADMSG, "domain 'a' has no <uuid>");
        expect_parse_error("<domain><name>a</name><uuid>nope</uuid></domain>", -EBADMSG,
                           "invalid <uuid> 'nope'");
        expect_parse_error("<domain><name>a</name><uuid>00000000-0000-4000-8000-000000000001</uuid>"
                           "<memory unit='parsecs'>1</memory></domain>",
                           -EBADMSG, "invalid <memory>");
        expect_parse_error("<!DOCTYPE domain [<!ENTITY x 'y'>]><domain><name>&x;</name></domain>",
                           -EINVAL, "must not have a DOCTYPE");
}

static void test_memory_units(void **state)
{
        static const char xml[] = "<domain><name>a</name>"
                                  "<uuid>00000000-0000-4000-8000-000000000001</uuid>"
                                  "<memory unit='GiB'>4</memory></domain>";
        DomXml *d = NULL;

        assert_int_equal(domxml_parse(xml, strlen(xml), &d, NULL), 0);
        assert_int_equal(d->memory_kib, 4 * 1024 * 1024);
        domxml_free(d);
}

/* The text path must give what the tree path gives (canonical XML equal) and keep every other
 * byte of the input. */
static void check_text_equals_tree(const char *name, const char *xml, size_t size,
                                   ConsoleListen mode, const char *node_address)
{
        _cleanup_free_ char *fast = NULL, *tree = NULL, *c_fast = NULL, *c_tree = NULL;
        DomXml *d = NULL;
        DomIdentity id = { NULL };
        unsigned fast_changed = 99, tree_changed = 99;
        size_t fast_size = 0, tree_size = 0;

        assert_int_equal(domxml_rewrite_listen_text(xml, size, mode, node_address, &id, &fast,
                                                    &fast_size, &fast_changed, NULL),
                         0);
        assert_int_equal(domxml_parse(xml, size, &d, NULL), 0);
        assert_int_equal(domxml_rewrite_listen(d, mode, node_address, &tree_changed), 0);
        assert_int_equal(fast_changed, tree_changed);
        assert_string_equal(id.uuid, d->uuid);
        assert_string_equal(id.name, d->name);
        dom_identity_done(&id);
        if (tree_changed == 0) {
                if (fast)
                        fail_msg("%s: text path printed XML although nothing changed", name);
                domxml_free(d);
                return;
        }
        assert_non_null(fast);
        assert_int_equal(domxml_format(d, &tree, &tree_size), 0);
        c_fast = canonical(fast, fast_size, NULL, NULL);
        c_tree = canonical(tree, tree_size, NULL, NULL);
        assert_string_equal(c_fast, c_tree);
        domxml_free(d);
}

static void test_text_rewrite_equals_tree_on_every_fixture(void **state)
{
        static const char *const fixtures[] = {
                "domains/nova-vnc-spice.xml", "domains/vnc-ipv6.xml",    "domains/vnc-network.xml",
                "domains/vnc-socket.xml",     "domains/no-graphics.xml", "domains/vnc-loopback.xml",
        };

        for (size_t i = 0; i < ELEMENTSOF(fixtures); i++)
                for (ConsoleListen m = 0; m < _CONSOLE_LISTEN_MAX; m++) {
                        _cleanup_free_ char *xml = NULL;
                        size_t size;

                        xml = test_read_data(fixtures[i], &size);
                        check_text_equals_tree(fixtures[i], xml, size, m, "2001:db8::12");
                }
}

static void test_text_rewrite_keeps_every_other_byte(void **state)
{
        _cleanup_free_ char *xml = NULL, *out = NULL;
        size_t size, out_size;
        unsigned changed;

        xml = test_read_data("domains/nova-vnc-spice.xml", &size);
        assert_int_equal(domxml_rewrite_listen_text(xml, size, CONSOLE_LISTEN_NODE, "192.0.2.200",
                                                    NULL, &out, &out_size, &changed, NULL),
                         0);
        assert_int_equal(changed, 4);
        assert_int_equal(out_size, size + 4 * 1);
        /* replace back and compare byte for byte */
        for (char *p; (p = strstr(out, "192.0.2.200"));)
                memmove(p + 9, p + 10, strlen(p + 10) + 1), p[8] = '1', p[9] = '1';
        assert_string_equal(out, xml);
}

static void test_text_rewrite_falls_back_where_it_cannot_splice(void **state)
{
        /* a character reference in the value, white space libxml2 normalizes, an encoding
         * libxml2 converts: the tree path does these */
        static const char *const docs[] = {
                "<domain><name>a</name><uuid>00000000-0000-4000-8000-000000000001</uuid><devices>"
                "<graphics type='vnc' listen='192.0.2&#46;11'><listen type='address' "
                "address='192.0.2.11'/></graphics></devices></domain>",
                "<?xml version='1.0' encoding='ISO-8859-1'?>\n<domain><name>caf\xe9</name>"
                "<uuid>00000000-0000-4000-8000-000000000001</uuid><devices>"
                "<graphics type='spice' listen='192.0.2.11'/></devices></domain>",
                "<domain><name>a</name><uuid>00000000-0000-4000-8000-000000000001</uuid><devices>"
                "<graphics type='vnc' listen='192.0.2.11'/><graphics type='vnc' "
                "listen='192.0.2.11'/>"
                "<graphics type='vnc' listen='192.0.2.11'/><graphics type='vnc' "
                "listen='192.0.2.11'/>"
                "</devices></domain>",
        };

        for (size_t i = 0; i < ELEMENTSOF(docs); i++)
                check_text_equals_tree("inline", docs[i], strlen(docs[i]), CONSOLE_LISTEN_ANY,
                                       NULL);
}

static void test_text_rewrite_reports_errors_like_the_tree(void **state)
{
        static const char *const bad[] = {
                "<domain><name>a</name>",
                "<network><name>a</name><uuid>00000000-0000-4000-8000-000000000001</uuid></"
                "network>",
                "<!DOCTYPE domain [<!ENTITY x 'y'>]><domain><name>&x;</name></domain>",
                "<domain><name>a</name><uuid>bad</uuid></domain>",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *e1 = NULL, *e2 = NULL, *out = NULL;
                DomXml *d = NULL;
                int r1, r2;

                r1 = domxml_rewrite_listen_text(bad[i], strlen(bad[i]), CONSOLE_LISTEN_ANY, NULL,
                                                NULL, &out, NULL, NULL, &e1);
                r2 = domxml_parse(bad[i], strlen(bad[i]), &d, &e2);
                assert_true(r1 < 0);
                assert_int_equal(r1, r2);
                assert_string_equal(e1, e2);
                assert_null(out);
        }
}

static void test_peek_identity(void **state)
{
        _cleanup_free_ char *xml = NULL;
        DomIdentity id = { NULL };
        size_t size;

        xml = test_read_data("domains/nova-vnc-spice.xml", &size);
        assert_int_equal(domxml_peek_identity(xml, size, &id, NULL), 0);
        assert_string_equal(id.name, "instance-0000002a");
        assert_string_equal(id.uuid, "3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b");
        dom_identity_done(&id);

        static const char no_uuid[] = "<domain><name>a</name></domain>";
        _cleanup_free_ char *error = NULL;
        assert_int_equal(domxml_peek_identity(no_uuid, strlen(no_uuid), &id, &error), -EBADMSG);
        assert_true(test_contains(error, "has no <uuid>"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nova_domain_model),
                cmocka_unit_test(test_devices_are_collected_in_order),
                cmocka_unit_test(test_listen_target_rules),
                cmocka_unit_test(test_rewrite_nova_vnc_and_spice_to_any),
                cmocka_unit_test(test_rewrite_nova_vnc_and_spice_to_node),
                cmocka_unit_test(test_rewrite_keep_changes_nothing),
                cmocka_unit_test(test_rewrite_ipv6),
                cmocka_unit_test(test_rewrite_leaves_network_listen_alone),
                cmocka_unit_test(test_rewrite_leaves_socket_listen_alone),
                cmocka_unit_test(test_rewrite_without_graphics_is_a_no_op),
                cmocka_unit_test(test_rewrite_leaves_loopback_alone),
                cmocka_unit_test(test_rewrite_listen_attribute_only),
                cmocka_unit_test(test_parse_errors_say_what_is_wrong),
                cmocka_unit_test(test_memory_units),
                cmocka_unit_test(test_text_rewrite_equals_tree_on_every_fixture),
                cmocka_unit_test(test_text_rewrite_keeps_every_other_byte),
                cmocka_unit_test(test_text_rewrite_falls_back_where_it_cannot_splice),
                cmocka_unit_test(test_text_rewrite_reports_errors_like_the_tree),
                cmocka_unit_test(test_peek_identity),
        };
        int r;

        r = cmocka_run_group_tests(tests, NULL, NULL);
        xmlCleanupParser();
        return r;
}
