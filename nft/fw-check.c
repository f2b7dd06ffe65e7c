/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An accept in our table does not override a drop in another table's chain on the same
 * hook: every base chain sees the packet. So another firewall (iptables-nft, firewalld, a
 * hand-written nftables.conf) can silently break migrations. This finds input-hook chains of
 * other tables whose policy or rules may drop our ports, for CheckNode and
 * `hostwarden-firewall check`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "fw-internal.h"

typedef struct Chain {
        char *table, *name;
        uint32_t family;
} Chain;

typedef struct CheckCtx {
        const FwSpec *spec;
        Chain *chains; /* other tables' input-hook chains */
        size_t n_chains;
        char **findings;
        int error;
} CheckCtx;

static const char *family_name(uint32_t f)
{
        switch (f) {
        case NFPROTO_INET:
                return "inet";
        case NFPROTO_IPV4:
                return "ip";
        case NFPROTO_IPV6:
                return "ip6";
        default:
                return "?";
        }
}

static void finding(CheckCtx *c, const char *format, ...) _printf_(2, 3);
static void finding(CheckCtx *c, const char *format, ...)
{
        char *s = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s || strv_push(&c->findings, s) < 0)
                c->error = -ENOMEM;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
        CheckCtx *c = data;
        struct nftnl_chain *ch = nftnl_chain_alloc();
        uint32_t family, hook;
        const char *table, *name;

        if (!ch)
                return MNL_CB_ERROR;
        if (nftnl_chain_nlmsg_parse(nlh, ch) < 0 || !nftnl_chain_is_set(ch, NFTNL_CHAIN_HOOKNUM))
                goto done;
        family = nftnl_chain_get_u32(ch, NFTNL_CHAIN_FAMILY);
        hook = nftnl_chain_get_u32(ch, NFTNL_CHAIN_HOOKNUM);
        table = nftnl_chain_get_str(ch, NFTNL_CHAIN_TABLE);
        name = nftnl_chain_get_str(ch, NFTNL_CHAIN_NAME);
        if (hook != NF_INET_LOCAL_IN ||
            (family != NFPROTO_INET && family != NFPROTO_IPV4 && family != NFPROTO_IPV6) ||
            (family == NFPROTO_INET && streq(table, FW_TABLE)))
                goto done;

        if (nftnl_chain_is_set(ch, NFTNL_CHAIN_POLICY) &&
            nftnl_chain_get_u32(ch, NFTNL_CHAIN_POLICY) == NF_DROP)
                finding(c,
                        "table %s %s, chain %s (hook input) has policy drop: it drops the "
                        "migration ports unless one of its own rules accepts them",
                        family_name(family), table, name);

        Chain *t = realloc(c->chains, sizeof(Chain) * (c->n_chains + 1));
        if (!t) {
                c->error = -ENOMEM;
                goto done;
        }
        c->chains = t;
        t[c->n_chains] = (Chain){ strdup(table), strdup(name), family };
        if (!t[c->n_chains].table || !t[c->n_chains].name)
                c->error = -ENOMEM;
        c->n_chains++;
done:
        nftnl_chain_free(ch);
        return MNL_CB_OK;
}

static bool overlaps(unsigned lo, unsigned hi, unsigned a, unsigned b)
{
        return lo <= b && a <= hi;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
        CheckCtx *c = data;
        struct nftnl_rule *r = nftnl_rule_alloc();
        struct nftnl_expr_iter *it = NULL;
        struct nftnl_expr *e;
        bool drops = false, dport = false, dport_set = false, unknown_match = false;
        bool after_dport_load = false;
        unsigned lo = 0, hi = 65535;
        const char *table, *chain;
        uint32_t family;
        size_t i;

        if (!r)
                return MNL_CB_ERROR;
        if (nftnl_rule_nlmsg_parse(nlh, r) < 0)
                goto done;
        family = nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY);
        table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
        chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
        for (i = 0; i < c->n_chains; i++)
                if (c->chains[i].family == family && streq(c->chains[i].table, table) &&
                    streq(c->chains[i].name, chain))
                        break;
        if (i >= c->n_chains)
                goto done;

        it = nftnl_expr_iter_create(r);
        while (it && (e = nftnl_expr_iter_next(it))) {
                const char *kind = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

                if (streq(kind, "payload")) {
                        after_dport_load = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE) ==
                                                   NFT_PAYLOAD_TRANSPORT_HEADER &&
                                           nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET) == 2 &&
                                           nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN) == 2;
                        continue;
                }
                if (after_dport_load && streq(kind, "cmp")) {
                        uint32_t len = 0;
                        const uint16_t *v = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
                        uint32_t op = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP);

                        if (v && len == 2) {
                                unsigned port = ntohs(*v);
                                dport = true;
                                if (op == NFT_CMP_EQ)
                                        lo = hi = port;
                                else if (op == NFT_CMP_GTE)
                                        lo = port;
                                else if (op == NFT_CMP_LTE)
                                        hi = port;
                        }
                        continue;
                }
                if (after_dport_load && streq(kind, "range")) {
                        uint32_t l1 = 0, l2 = 0;
                        const uint16_t *from = nftnl_expr_get(e, NFTNL_EXPR_RANGE_FROM_DATA, &l1);
                        const uint16_t *to = nftnl_expr_get(e, NFTNL_EXPR_RANGE_TO_DATA, &l2);

                        if (from && to && l1 == 2 && l2 == 2) {
                                dport = true;
                                lo = ntohs(*from);
                                hi = ntohs(*to);
                        }
                        after_dport_load = false;
                        continue;
                }
                if (after_dport_load && streq(kind, "lookup"))
                        dport = dport_set = true;
                if (streq(kind, "match"))
                        unknown_match = true; /* an iptables (xt) match we cannot read */
                if (streq(kind, "reject"))
                        drops = true;
                if (streq(kind, "immediate") && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT) &&
                    nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT) == (uint32_t)NF_DROP)
                        drops = true;
                after_dport_load = false;
        }
        if (!drops)
                goto done;

        const FwSpec *s = c->spec;
        uint64_t handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
        if (!dport || dport_set || unknown_match)
                finding(c,
                        "table %s %s, chain %s (hook input): rule handle %llu drops or rejects "
                        "%s; check that it spares the migration ports %u-%u",
                        family_name(family), table, chain, (unsigned long long)handle,
                        dport_set       ? "ports from a set"
                        : unknown_match ? "with an iptables match"
                                        : "traffic without a port match",
                        s->migration_port_min, s->migration_port_max);
        else if (overlaps(lo, hi, s->migration_port_min, s->migration_port_max))
                finding(c,
                        "table %s %s, chain %s (hook input): rule handle %llu drops tcp ports "
                        "%u-%u, which overlap the migration ports %u-%u: incoming migrations "
                        "fail whatever hostwarden accepts",
                        family_name(family), table, chain, (unsigned long long)handle, lo, hi,
                        s->migration_port_min, s->migration_port_max);
        else if (overlaps(lo, hi, FW_LIBVIRT_PORT, FW_LIBVIRT_TLS_PORT))
                finding(c,
                        "table %s %s, chain %s (hook input): rule handle %llu drops tcp ports "
                        "%u-%u, which include libvirt's %u/%u",
                        family_name(family), table, chain, (unsigned long long)handle, lo, hi,
                        (unsigned)FW_LIBVIRT_PORT, (unsigned)FW_LIBVIRT_TLS_PORT);
done:
        if (it)
                nftnl_expr_iter_destroy(it);
        nftnl_rule_free(r);
        return MNL_CB_OK;
}

int fw_check_conflicts(FwContext *ctx, const FwSpec *s, char ***ret)
{
        char buf[8192] = { 0 };
        CheckCtx c = { .spec = s };
        struct nlmsghdr *nlh;
        int r;

        nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, NLM_F_DUMP | NLM_F_ACK,
                                    fw_next_seq(ctx));
        r = fw_request(ctx, nlh, chain_cb, &c);
        if (r >= 0 && c.n_chains > 0) {
                memset(buf, 0, sizeof(buf));
                nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_UNSPEC,
                                            NLM_F_DUMP | NLM_F_ACK, fw_next_seq(ctx));
                r = fw_request(ctx, nlh, rule_cb, &c);
        }
        for (size_t i = 0; i < c.n_chains; i++) {
                free(c.chains[i].table);
                free(c.chains[i].name);
        }
        free(c.chains);
        if (r >= 0 && c.error < 0)
                r = c.error;
        if (r < 0) {
                strv_free(c.findings);
                return r;
        }
        if (!c.findings && !(c.findings = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = c.findings;
        return 0;
}
