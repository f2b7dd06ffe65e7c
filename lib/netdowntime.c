/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What NetworkDowntime is made of: the bridge's FDB notifications and the switchover
 * (netdowntime.h). */
#include <errno.h>
#include <string.h>

#include <linux/if_bridge.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "netdowntime.h"

int fdb_event_parse(const void *msg, size_t len, FdbEvent *ret)
{
        const struct nlmsghdr *h = msg;
        const struct ndmsg *nd;
        const struct rtattr *a;
        FdbEvent e = {};
        bool have_mac = false;
        int left;

        if (len < sizeof(*h) || h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len)
                return -EBADMSG;
        if (h->nlmsg_type != RTM_NEWNEIGH)
                return 0;
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*nd)))
                return -EBADMSG;
        nd = NLMSG_DATA(h);
        /* learned from traffic: not the bridge's own addresses (NUD_PERMANENT), not an
         * operator's static entry (NUD_NOARP) */
        if (nd->ndm_family != AF_BRIDGE || (nd->ndm_state & (NUD_PERMANENT | NUD_NOARP)))
                return 0;
        e.port = nd->ndm_ifindex;
        left = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*nd)));
        for (a = (const struct rtattr *)((const char *)nd + NLMSG_ALIGN(sizeof(*nd)));
             RTA_OK(a, left); a = RTA_NEXT(a, left)) {
                if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == sizeof(e.mac)) {
                        memcpy(e.mac, RTA_DATA(a), sizeof(e.mac));
                        have_mac = true;
                } else if (a->rta_type == NDA_MASTER && RTA_PAYLOAD(a) == sizeof(uint32_t))
                        memcpy(&e.master, RTA_DATA(a), sizeof(uint32_t));
        }
        if (!have_mac)
                return 0;
        *ret = e;
        return 1;
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int mac_parse(const char *s, uint8_t ret[6])
{
        uint8_t mac[6];

        if (!s || strlen(s) != 17)
                return -EINVAL;
        for (size_t i = 0; i < 6; i++) {
                int hi = hex_digit(s[i * 3]), lo = hex_digit(s[i * 3 + 1]);

                if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':'))
                        return -EINVAL;
                mac[i] = (uint8_t)(hi << 4 | lo);
        }
        memcpy(ret, mac, sizeof(mac));
        return 0;
}

uint64_t network_downtime_usec(usec_t stopped, uint64_t downtime_ms, usec_t seen)
{
        usec_t resumed = stopped + downtime_ms * USEC_PER_MSEC;

        if (stopped == 0 || seen == 0 || seen < stopped)
                return 0;
        /* a frame the switch forwarded before libvirt's resume (its measure of the downtime
         * ends when the destination resumed the guest; QEMU's own RARPs go out in the same
         * moment): the switch knew at the switchover */
        if (seen <= resumed)
                return 1;
        return seen - resumed;
}
