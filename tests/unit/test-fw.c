/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The nftables library: ranges, the batches it builds, and what the kernel makes of them.
 * Kernel tests run in a network namespace of this process's own (unshare), so they touch
 * nothing of the host's and vanish with the process.
 */
#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <endian.h>
#include <libmnl/libmnl.h>

#include "fw-ranges.h"
#include "fw.h"
#include "test-helpers.h"

static char **ranges_text(char *const *cidrs, int family)
{
        FwRange *r = NULL;
        size_t n = 0;
        char **out = NULL;

        assert_int_equal(fw_ranges_from_cidrs(cidrs, family, &r, &n), 0);
        for (size_t i = 0; i < n; i++) {
                char *s = NULL;
                assert_int_equal(fw_range_format(&r[i], family, &s), 0);
                assert_int_equal(strv_push(&out, s), 0);
        }
        free(r);
        if (!out)
                out = calloc(1, sizeof(char *));
        return out;
}

static void test_ranges_sorted_merged_per_family(void **state)
{
        char *cidrs[] = { "192.0.2.128/25", "2001:db8::/64", "192.0.2.0/25", "198.51.100.7",
                          "192.0.2.5",      "10.0.0.0/8",    "2001:db8::1",  NULL };
        char **v4 = ranges_text(cidrs, AF_INET), **v6 = ranges_text(cidrs, AF_INET6);

        /* the two /25 halves and an address inside them become one /24 */
        assert_int_equal(strv_length(v4), 3);
        assert_string_equal(v4[0], "10.0.0.0/8");
        assert_string_equal(v4[1], "192.0.2.0/24");
        assert_string_equal(v4[2], "198.51.100.7");
        assert_int_equal(strv_length(v6), 1);
        assert_string_equal(v6[0], "2001:db8::/64");
        strv_free(v4);
        strv_free(v6);
}

static void test_ranges_edges(void **state)
{
        char *all[] = { "0.0.0.0/0", NULL }, *top[] = { "255.255.255.255", NULL };
        char *bad[] = { "192.0.2.0/33", NULL }, *adjacent[] = { "192.0.2.0", "192.0.2.1", NULL };
        char **l;
        FwRange *r = NULL;
        size_t n;
        uint8_t end[16];

        l = ranges_text(all, AF_INET);
        assert_string_equal(l[0], "0.0.0.0/0");
        strv_free(l);

        assert_int_equal(fw_ranges_from_cidrs(top, AF_INET, &r, &n), 0);
        assert_int_equal(n, 1);
        assert_false(fw_range_end_exclusive(&r[0], 4, end)); /* no end element: last address */
        free(r);

        l = ranges_text(adjacent, AF_INET);
        assert_int_equal(strv_length(l), 1);
        assert_string_equal(l[0], "192.0.2.0/31");
        strv_free(l);

        assert_int_equal(fw_ranges_from_cidrs(bad, AF_INET, &r, &n), -EINVAL);
}

static FwSpec spec_with(char **sources, char **consoles, usec_t window)
{
        return (FwSpec){
                .migration_sources = sources,
                .console_clients = consoles,
                .migration_port_min = 49152,
                .migration_port_max = 49215,
                .console_port_min = 5900,
                .console_port_max = 6923,
                .open_window = window,
        };
}

static void test_window_batch_messages(void **state)
{
        char *sources[] = { "192.0.2.0/24", "2001:db8::/64", NULL };
        FwSpec s = spec_with(sources, NULL, 90 * USEC_PER_SEC);
        uint16_t types[16];
        size_t n_types = 0, n_elems = 0, n_timeouts = 0;
        void *buf = NULL;
        size_t size = 0;

        assert_int_equal(fw_window_batch(&s, FW_WINDOW_OPEN, &buf, &size, NULL), 0);
        int len = (int)size;
        for (const struct nlmsghdr *h = buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
                uint16_t type = h->nlmsg_type;

                assert_true(n_types < ELEMENTSOF(types));
                types[n_types++] = type;
                if (type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM))
                        continue;
                /* walk the attributes: elements, and the timeout of each */
                const struct nlattr *a, *list, *elem;
                mnl_attr_for_each(a, h, sizeof(struct nfgenmsg))
                {
                        if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_TABLE)
                                assert_string_equal(mnl_attr_get_str(a), FW_TABLE);
                        if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
                                continue;
                        mnl_attr_for_each_nested(list, a)
                        {
                                n_elems++;
                                mnl_attr_for_each_nested(elem, list)
                                {
                                        if (mnl_attr_get_type(elem) != NFTA_SET_ELEM_TIMEOUT)
                                                continue;
                                        assert_int_equal(be64toh(mnl_attr_get_u64(elem)), 90000);
                                        n_timeouts++;
                                }
                        }
                }
        }
        free(buf);

        /* begin, add open4, add open6, end: opening never removes anything */
        assert_int_equal(n_types, 4);
        assert_int_equal(types[0], NFNL_MSG_BATCH_BEGIN);
        assert_int_equal(types[1], (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM);
        assert_int_equal(types[2], (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM);
        assert_int_equal(types[3], NFNL_MSG_BATCH_END);
        /* per range a start (with the timeout) and an interval end (without) */
        assert_int_equal(n_elems, 4);
        assert_int_equal(n_timeouts, 2);

        /* closing is the two flushes alone */
        assert_int_equal(fw_window_batch(&s, FW_WINDOW_CLOSE, &buf, &size, NULL), 0);
        len = (int)size;
        n_types = 0;
        for (const struct nlmsghdr *h = buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len))
                types[n_types++] = h->nlmsg_type;
        assert_int_equal(n_types, 4);
        assert_int_equal(types[1], (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM);
        assert_int_equal(types[2], (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM);
        free(buf);
}

static void test_digest_changes_with_every_field(void **state)
{
        char *a[] = { "192.0.2.0/24", NULL }, *b[] = { "192.0.2.0/25", NULL };
        FwSpec s1 = spec_with(a, NULL, 60 * USEC_PER_SEC), s2 = s1;

        assert_true(fw_spec_digest(&s1) == fw_spec_digest(&s2));
        s2.migration_sources = b;
        assert_true(fw_spec_digest(&s1) != fw_spec_digest(&s2));
        s2 = s1;
        s2.console_clients = a;
        assert_true(fw_spec_digest(&s1) != fw_spec_digest(&s2));
        s2 = s1;
        s2.migration_port_max = 49216;
        assert_true(fw_spec_digest(&s1) != fw_spec_digest(&s2));
        s2 = s1;
        s2.open_window = 61 * USEC_PER_SEC;
        assert_true(fw_spec_digest(&s1) != fw_spec_digest(&s2));
}

static char **list(FwContext *ctx, const char *set)
{
        char **l = NULL;

        assert_int_equal(fw_set_list(ctx, set, &l), 0);
        return l;
}

static void assert_list(FwContext *ctx, const char *set, const char *expect)
{
        char **l = list(ctx, set), buf[512] = "";

        STRV_FOREACH (s, l) {
                if (*buf)
                        strcat(buf, " ");
                strcat(buf, *s);
        }
        strv_free(l);
        assert_string_equal(buf, expect);
}

static void test_kernel_apply_window_flush_remove(void **state)
{
        char *sources[] = { "192.0.2.0/24", "198.51.100.7", "2001:db8::/64", NULL };
        char *consoles[] = { "192.0.2.200", NULL }, *other[] = { "203.0.113.0/24", NULL };
        FwSpec s = spec_with(sources, consoles, 60 * USEC_PER_SEC);
        FwContext *ctx = NULL;
        uint64_t digest = 0;
        bool changed;

        assert_int_equal(fw_open(&ctx), 0);
        assert_int_equal(fw_table_digest(ctx, &digest), 0); /* a fresh namespace: no table */

        assert_int_equal(fw_apply(ctx, &s, &changed), 0);
        assert_true(changed);
        assert_int_equal(fw_table_digest(ctx, &digest), 1);
        assert_true(digest == fw_spec_digest(&s));
        assert_list(ctx, FW_SET_SOURCES4, "192.0.2.0/24 198.51.100.7");
        assert_list(ctx, FW_SET_SOURCES6, "2001:db8::/64");
        assert_list(ctx, FW_SET_CONSOLE4, "192.0.2.200");
        assert_list(ctx, FW_SET_OPEN4, "");

        /* the same spec again: a no-op */
        assert_int_equal(fw_apply(ctx, &s, &changed), 0);
        assert_false(changed);

        assert_int_equal(fw_window_open(ctx, &s), 0);
        assert_list(ctx, FW_SET_OPEN4, "192.0.2.0/24 198.51.100.7");
        assert_list(ctx, FW_SET_OPEN6, "2001:db8::/64");
        assert_int_equal(fw_window_open(ctx, &s), 0); /* again: refreshed, not EEXIST */
        assert_int_equal(fw_window_close(ctx), 0);
        assert_list(ctx, FW_SET_OPEN4, "");
        assert_list(ctx, FW_SET_OPEN6, "");

        /* someone runs 'nft flush ruleset': the next window change re-creates the table */
        assert_int_equal(system("nft flush ruleset"), 0);
        assert_int_equal(fw_table_digest(ctx, &digest), 0);
        assert_int_equal(fw_window_open(ctx, &s), 0);
        assert_int_equal(fw_table_digest(ctx, &digest), 1);
        assert_list(ctx, FW_SET_OPEN4, "192.0.2.0/24 198.51.100.7");

        /* a new configuration replaces the table in one go */
        s.migration_sources = other;
        assert_int_equal(fw_apply(ctx, &s, &changed), 0);
        assert_true(changed);
        assert_list(ctx, FW_SET_SOURCES4, "203.0.113.0/24");
        assert_list(ctx, FW_SET_SOURCES6, "");

        assert_int_equal(fw_remove(ctx), 0);
        assert_int_equal(fw_remove(ctx), 0); /* idempotent */
        assert_int_equal(fw_table_digest(ctx, &digest), 0);
        fw_close(ctx);
}

static void test_kernel_window_expires_by_itself(void **state)
{
        char *sources[] = { "192.0.2.0/24", NULL };
        FwSpec s = spec_with(sources, NULL, 1 * USEC_PER_SEC);
        FwContext *ctx = NULL;

        assert_int_equal(fw_open(&ctx), 0);
        assert_int_equal(fw_apply(ctx, &s, NULL), 0);
        assert_int_equal(fw_window_open(ctx, &s), 0);
        assert_list(ctx, FW_SET_OPEN4, "192.0.2.0/24");
        /* nobody closes it: the kernel does, after open_window */
        usleep(1500 * 1000);
        assert_list(ctx, FW_SET_OPEN4, "");
        assert_int_equal(fw_remove(ctx), 0);
        fw_close(ctx);
}

static void test_kernel_conflicts_in_other_tables_are_found(void **state)
{
        char *sources[] = { "192.0.2.0/24", NULL };
        FwSpec s = spec_with(sources, NULL, 60 * USEC_PER_SEC);
        FwContext *ctx = NULL;
        char **findings = NULL;

        assert_int_equal(fw_open(&ctx), 0);
        assert_int_equal(fw_apply(ctx, &s, NULL), 0);
        /* our own table's drops are not conflicts */
        assert_int_equal(fw_check_conflicts(ctx, &s, &findings), 0);
        assert_int_equal(strv_length(findings), 0);
        strv_free(findings);

        /* a port-22 drop elsewhere is none of our business; a drop of our ports is */
        assert_int_equal(
                system("nft add table ip other && "
                       "nft add chain ip other in '{ type filter hook input priority 0; }' && "
                       "nft add rule ip other in tcp dport 22 drop"),
                0);
        assert_int_equal(fw_check_conflicts(ctx, &s, &findings), 0);
        assert_int_equal(strv_length(findings), 0);
        strv_free(findings);

        assert_int_equal(system("nft add rule ip other in tcp dport 49100-49160 drop"), 0);
        assert_int_equal(fw_check_conflicts(ctx, &s, &findings), 0);
        assert_int_equal(strv_length(findings), 1);
        assert_true(test_contains(findings[0], "table ip other, chain in"));
        assert_true(test_contains(findings[0], "drops tcp ports 49100-49160"));
        strv_free(findings);

        assert_int_equal(system("nft delete table ip other"), 0);
        assert_int_equal(fw_remove(ctx), 0);
        fw_close(ctx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ranges_sorted_merged_per_family),
                cmocka_unit_test(test_ranges_edges),
                cmocka_unit_test(test_window_batch_messages),
                cmocka_unit_test(test_digest_changes_with_every_field),
                cmocka_unit_test(test_kernel_apply_window_flush_remove),
                cmocka_unit_test(test_kernel_window_expires_by_itself),
                cmocka_unit_test(test_kernel_conflicts_in_other_tables_are_found),
        };

        /* a network namespace of our own: nothing here reaches the host's nftables */
        if (unshare(CLONE_NEWNET) < 0) {
                perror("test-fw: unshare(CLONE_NEWNET) (needs root)");
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
