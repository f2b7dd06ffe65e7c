/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NetworkDowntime's parts (lib/netdowntime.c): the bridge's FDB notifications as the kernel
 * sends them, MACs, and the arithmetic from the switchover. */
#include <string.h>

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "test-helpers.h"

#include "netdowntime.h"

typedef struct Msg {
        uint32_t buf[256];
        size_t len;
} Msg;

static void *put_attr(Msg *m, unsigned short type, const void *data, size_t size)
{
        struct rtattr *a = (struct rtattr *)((char *)m->buf + NLMSG_ALIGN(m->len));

        a->rta_type = type;
        a->rta_len = (unsigned short)RTA_LENGTH(size);
        memcpy(RTA_DATA(a), data, size);
        m->len = NLMSG_ALIGN(m->len) + RTA_ALIGN(a->rta_len);
        ((struct nlmsghdr *)m->buf)->nlmsg_len = (uint32_t)m->len;
        return a;
}

/* An RTM_NEWNEIGH as the bridge sends it for an entry learned on port of bridge master. */
static void fdb_msg(Msg *m, unsigned short type, unsigned char family, unsigned short state,
                    int port, const uint8_t mac[6], int master)
{
        struct nlmsghdr *h = (struct nlmsghdr *)m->buf;
        struct ndmsg *nd;

        memset(m, 0, sizeof(*m));
        h->nlmsg_type = type;
        nd = NLMSG_DATA(h);
        nd->ndm_family = family;
        nd->ndm_state = state;
        nd->ndm_ifindex = port;
        m->len = NLMSG_LENGTH(sizeof(*nd));
        h->nlmsg_len = (uint32_t)m->len;
        if (mac)
                put_attr(m, NDA_LLADDR, mac, 6);
        if (master) {
                uint32_t x = (uint32_t)master;

                put_attr(m, NDA_MASTER, &x, sizeof(x));
        }
}

static const uint8_t GUEST[6] = { 0x52, 0x54, 0x00, 0xa1, 0x00, 0x02 };

static void test_a_learned_entry_is_read(void **state)
{
        FdbEvent e;
        Msg m;

        fdb_msg(&m, RTM_NEWNEIGH, AF_BRIDGE, NUD_REACHABLE, 7, GUEST, 5);
        assert_int_equal(fdb_event_parse(m.buf, m.len, &e), 1);
        assert_memory_equal(e.mac, GUEST, 6);
        assert_int_equal(e.port, 7);
        assert_int_equal(e.master, 5);
        /* an entry that goes stale is announced as such, and is still where the MAC is */
        fdb_msg(&m, RTM_NEWNEIGH, AF_BRIDGE, NUD_STALE, 7, GUEST, 0);
        assert_int_equal(fdb_event_parse(m.buf, m.len, &e), 1);
        assert_int_equal(e.master, 0);
}

static void test_what_the_bridge_did_not_learn_from_traffic_is_not_an_event(void **state)
{
        FdbEvent e = { .port = 42 };
        Msg m;

        /* deleted, an ARP neighbour, the bridge's own address, an operator's static entry */
        fdb_msg(&m, RTM_DELNEIGH, AF_BRIDGE, NUD_REACHABLE, 7, GUEST, 5);
        assert_int_equal(fdb_event_parse(m.buf, m.len, &e), 0);
        fdb_msg(&m, RTM_NEWNEIGH, AF_INET, NUD_REACHABLE, 7, GUEST, 0);
        assert_int_equal(fdb_event_parse(m.buf, m.len, &e), 0);
        fdb_msg(&m, RTM_NEWNEIGH, AF_BRIDGE, NUD_PERMANENT, 7, GUEST, 5);
        assert_int_equal(fdb_event_parse(m.buf, m.len, &e), 0);
        fdb_msg(&m, RTM_NEWNEIGH, AF_BRIDGE, NUD_NOARP, 7, GUEST, 5);
        assert_int_equal(fdb_event_parse(m.buf, m.len, &e), 0);
        /* no MAC in it */
        fdb_msg(&m, RTM_NEWNEIGH, AF_BRIDGE, NUD_REACHABLE, 7, NULL, 5);
        assert_int_equal(fdb_event_parse(m.buf, m.len, &e), 0);
        assert_int_equal(e.port, 42); /* untouched */
}

static void test_a_truncated_message_is_refused(void **state)
{
        FdbEvent e;
        Msg m;

        fdb_msg(&m, RTM_NEWNEIGH, AF_BRIDGE, NUD_REACHABLE, 7, GUEST, 5);
        assert_int_equal(fdb_event_parse(m.buf, 8, &e), -EBADMSG);
        assert_int_equal(fdb_event_parse(m.buf, m.len - 4, &e), -EBADMSG);
        ((struct nlmsghdr *)m.buf)->nlmsg_len = NLMSG_LENGTH(2);
        assert_int_equal(fdb_event_parse(m.buf, m.len, &e), -EBADMSG);
}

static void test_macs(void **state)
{
        uint8_t mac[6];

        assert_int_equal(mac_parse("52:54:00:A1:00:02", mac), 0);
        assert_memory_equal(mac, GUEST, 6);
        assert_int_equal(mac_parse("52:54:00:a1:00:02", mac), 0);
        assert_int_equal(mac_parse("52:54:00:a1:00", mac), -EINVAL);
        assert_int_equal(mac_parse("52:54:00:a1:00:02:03", mac), -EINVAL);
        assert_int_equal(mac_parse("52-54-00-a1-00-02", mac), -EINVAL);
        assert_int_equal(mac_parse("52:54:00:a1:00:0x", mac), -EINVAL);
        assert_int_equal(mac_parse(" 2:54:00:a1:00:02", mac), -EINVAL);
        assert_int_equal(mac_parse(NULL, mac), -EINVAL);
}

static void test_network_downtime_counts_from_the_resume(void **state)
{
        const usec_t stop = 10 * USEC_PER_SEC;

        /* stopped at 10 s, resumed 30 ms later, seen 400 ms after the stop */
        assert_int_equal(network_downtime_usec(stop, 30, stop + 400 * USEC_PER_MSEC),
                         370 * USEC_PER_MSEC);
        /* seen within libvirt's downtime: the switch knew at the switchover */
        assert_int_equal(network_downtime_usec(stop, 30, stop + 20 * USEC_PER_MSEC), 1);
        /* unknown: no stop seen (post-copy, adopted), nothing seen, or seen before the stop */
        assert_int_equal(network_downtime_usec(0, 30, stop), 0);
        assert_int_equal(network_downtime_usec(stop, 30, 0), 0);
        assert_int_equal(network_downtime_usec(stop, 30, stop - 1), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_learned_entry_is_read),
                cmocka_unit_test(test_what_the_bridge_did_not_learn_from_traffic_is_not_an_event),
                cmocka_unit_test(test_a_truncated_message_is_refused),
                cmocka_unit_test(test_macs),
                cmocka_unit_test(test_network_downtime_counts_from_the_resume),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
