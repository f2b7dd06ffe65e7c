/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Expression builders for the input chain. Each says the nft syntax it produces; registers
 * are NFT_REG_1 throughout (each rule is a straight sequence of matches and one verdict).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "fw-internal.h"

static int add(struct nftnl_rule *r, struct nftnl_expr *e)
{
        if (!e)
                return -ENOMEM;
        nftnl_rule_add_expr(r, e);
        return 0;
}

/* [ meta load KEY => reg 1 ] */
static int expr_meta_load(struct nftnl_rule *r, uint32_t key)
{
        struct nftnl_expr *e = nftnl_expr_alloc("meta");

        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
        return add(r, e);
}

/* [ cmp OP reg 1 DATA ] */
static int expr_cmp(struct nftnl_rule *r, uint32_t op, const void *data, size_t len)
{
        struct nftnl_expr *e = nftnl_expr_alloc("cmp");

        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
        nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, (uint32_t)len);
        return add(r, e);
}

/* [ payload load LEN b @ BASE header + OFFSET => reg 1 ] */
static int expr_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len)
{
        struct nftnl_expr *e = nftnl_expr_alloc("payload");

        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
        return add(r, e);
}

/* nft: meta l4proto tcp */
static int match_tcp(struct nftnl_rule *r)
{
        uint8_t tcp = IPPROTO_TCP;
        int k;

        if ((k = expr_meta_load(r, NFT_META_L4PROTO)) < 0)
                return k;
        return expr_cmp(r, NFT_CMP_EQ, &tcp, sizeof(tcp));
}

/* nft: tcp dport MIN-MAX (or tcp dport MIN when MIN == MAX); needs match_tcp() first */
static int match_dport(struct nftnl_rule *r, unsigned min, unsigned max)
{
        uint16_t lo = htons((uint16_t)min), hi = htons((uint16_t)max);
        int k;

        /* [ payload load 2b @ transport header + 2 => reg 1 ] */
        if ((k = expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2)) < 0)
                return k;
        if (min == max)
                return expr_cmp(r, NFT_CMP_EQ, &lo, sizeof(lo));
        /* network byte order compares like memcmp, so gte/lte work on the raw port */
        if ((k = expr_cmp(r, NFT_CMP_GTE, &lo, sizeof(lo))) < 0)
                return k;
        return expr_cmp(r, NFT_CMP_LTE, &hi, sizeof(hi));
}

/* nft: ip saddr @SET   (family AF_INET)  /  ip6 saddr @SET   (AF_INET6) */
static int match_saddr_in_set(struct nftnl_rule *r, int family, const char *set, uint32_t set_id)
{
        uint8_t nfproto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
        struct nftnl_expr *e;
        int k;

        /* [ meta load nfproto => reg 1 ] [ cmp eq reg 1 NFPROTO ] */
        if ((k = expr_meta_load(r, NFT_META_NFPROTO)) < 0 ||
            (k = expr_cmp(r, NFT_CMP_EQ, &nfproto, sizeof(nfproto))) < 0)
                return k;
        /* [ payload load 4b @ network header + 12 => reg 1 ]   (IPv4 source)
         * [ payload load 16b @ network header + 8 => reg 1 ]   (IPv6 source) */
        if ((k = expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, family == AF_INET ? 12 : 8,
                              family == AF_INET ? 4 : 16)) < 0)
                return k;
        /* [ lookup reg 1 set SET ] */
        e = nftnl_expr_alloc("lookup");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
        nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
        return add(r, e);
}

/* nft: accept / drop   ([ immediate reg 0 VERDICT ]) */
static int verdict(struct nftnl_rule *r, int v)
{
        struct nftnl_expr *e = nftnl_expr_alloc("immediate");

        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)v);
        return add(r, e);
}

/* nft: iif "lo" accept   (lo is ifindex 1 in every network namespace) */
static int rule_loopback(struct nftnl_rule *r)
{
        uint32_t lo = 1;
        int k;

        if ((k = expr_meta_load(r, NFT_META_IIF)) < 0 || (k = expr_cmp(r, NFT_CMP_EQ, &lo, 4)) < 0)
                return k;
        return verdict(r, NF_ACCEPT);
}

/* nft: ct state established,related accept */
static int rule_established(struct nftnl_rule *r)
{
        uint32_t mask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED);
        uint32_t zero = 0;
        struct nftnl_expr *e;
        int k;

        /* [ ct load state => reg 1 ] */
        e = nftnl_expr_alloc("ct");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
        if ((k = add(r, e)) < 0)
                return k;
        /* [ bitwise reg 1 = ( reg 1 & MASK ) ^ 0 ] */
        e = nftnl_expr_alloc("bitwise");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
        nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
        nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
        if ((k = add(r, e)) < 0)
                return k;
        /* [ cmp neq reg 1 0 ] */
        if ((k = expr_cmp(r, NFT_CMP_NEQ, &zero, 4)) < 0)
                return k;
        return verdict(r, NF_ACCEPT);
}

/* nft: tcp dport MIN-MAX ip saddr @SET accept   (or ip6) */
static int rule_ports_from_set(struct nftnl_rule *r, unsigned min, unsigned max, int family,
                               const char *set, uint32_t set_id)
{
        int k;

        if ((k = match_tcp(r)) < 0 || (k = match_dport(r, min, max)) < 0 ||
            (k = match_saddr_in_set(r, family, set, set_id)) < 0)
                return k;
        return verdict(r, NF_ACCEPT);
}

/*
 * nft: tcp dport MIN-MAX ip saddr @SET reject with tcp reset   (or ip6)
 * A migration source that connects outside the window is told so at once: dropped, its
 * connect would hang for minutes (the SYN retries), and the migration with it, where a
 * reset fails it in a second. Others are still dropped: no answer to who is not a peer.
 */
static int rule_ports_reset_from_set(struct nftnl_rule *r, unsigned min, unsigned max, int family,
                                     const char *set, uint32_t set_id)
{
        struct nftnl_expr *e;
        int k;

        if ((k = match_tcp(r)) < 0 || (k = match_dport(r, min, max)) < 0 ||
            (k = match_saddr_in_set(r, family, set, set_id)) < 0)
                return k;
        e = nftnl_expr_alloc("reject");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
        nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, 0);
        return add(r, e);
}

/* nft: tcp dport MIN-MAX drop */
static int rule_ports_drop(struct nftnl_rule *r, unsigned min, unsigned max)
{
        int k;

        if ((k = match_tcp(r)) < 0 || (k = match_dport(r, min, max)) < 0)
                return k;
        return verdict(r, NF_DROP);
}

int fw_rules_build(const FwSpec *s, const FwSetIds *ids, FwRuleFn add_rule, void *userdata)
{
        static const unsigned libvirt_ports[] = { FW_LIBVIRT_PORT, FW_LIBVIRT_TLS_PORT };
        const struct {
                unsigned min, max;
                const char *set4, *set6;
                uint32_t id4, id6;
        } groups[] = {
                { s->migration_port_min, s->migration_port_max, FW_SET_OPEN4, FW_SET_OPEN6,
                  ids->open4, ids->open6 },
                { s->console_port_min, s->console_port_max, FW_SET_CONSOLE4, FW_SET_CONSOLE6,
                  ids->console4, ids->console6 },
                { libvirt_ports[0], libvirt_ports[0], FW_SET_SOURCES4, FW_SET_SOURCES6,
                  ids->sources4, ids->sources6 },
                { libvirt_ports[1], libvirt_ports[1], FW_SET_SOURCES4, FW_SET_SOURCES6,
                  ids->sources4, ids->sources6 },
        };
        struct nftnl_rule *r;
        int k;

#define EMIT(build)                                \
        do {                                       \
                r = nftnl_rule_alloc();            \
                if (!r)                            \
                        return -ENOMEM;            \
                k = (build);                       \
                if (k >= 0)                        \
                        k = add_rule(r, userdata); \
                nftnl_rule_free(r);                \
                if (k < 0)                         \
                        return k;                  \
        } while (0)

        EMIT(rule_loopback(r));
        EMIT(rule_established(r));
        for (size_t i = 0; i < ELEMENTSOF(groups); i++) {
                /* no console clients configured: the console ports are not ours to close */
                if (i == 1 && !(s->console_clients && s->console_clients[0]))
                        continue;
                EMIT(rule_ports_from_set(r, groups[i].min, groups[i].max, AF_INET, groups[i].set4,
                                         groups[i].id4));
                EMIT(rule_ports_from_set(r, groups[i].min, groups[i].max, AF_INET6, groups[i].set6,
                                         groups[i].id6));
                if (i == 0) {
                        EMIT(rule_ports_reset_from_set(r, groups[i].min, groups[i].max, AF_INET,
                                                       FW_SET_SOURCES4, ids->sources4));
                        EMIT(rule_ports_reset_from_set(r, groups[i].min, groups[i].max, AF_INET6,
                                                       FW_SET_SOURCES6, ids->sources6));
                }
                EMIT(rule_ports_drop(r, groups[i].min, groups[i].max));
        }
#undef EMIT
        return 0;
}
