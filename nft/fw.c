/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "fw-internal.h"
#include "fw-ranges.h"
#include "fw-replay.h"

#define USERDATA_PREFIX "hostwarden:"
#define ELEMS_PER_MSG   64
/* fixed sizes (MNL_SOCKET_BUFFER_SIZE is a run-time value): a page-sized batch chunk, and
 * room for the largest netlink reply the kernel sends in one datagram */
#define BATCH_PAGE       8192
#define RECV_BUF         32768
#define NFT_TYPE_IPADDR  7 /* nft's ipv4_addr */
#define NFT_TYPE_IP6ADDR 8 /* nft's ipv6_addr */

struct FwContext {
        struct mnl_socket *nl;
        uint32_t portid;
        uint32_t seq;
};

int fw_open(FwContext **ret)
{
        FwContext *ctx;

        ctx = calloc(1, sizeof(FwContext));
        if (!ctx)
                return -ENOMEM;
        ctx->nl = mnl_socket_open(NETLINK_NETFILTER);
        if (!ctx->nl) {
                int r = negative_errno();
                free(ctx);
                return r;
        }
        if (mnl_socket_bind(ctx->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
                int r = negative_errno();
                fw_close(ctx);
                return r;
        }
        ctx->portid = mnl_socket_get_portid(ctx->nl);
        ctx->seq = (uint32_t)time(NULL);
        *ret = ctx;
        return 0;
}

FwContext *fw_close(FwContext *ctx)
{
        if (!ctx)
                return NULL;
        if (ctx->nl)
                mnl_socket_close(ctx->nl);
        free(ctx);
        return NULL;
}

/* ---- batches ---------------------------------------------------------------------------- */

typedef struct Batch {
        struct nftnl_batch *b;
        uint32_t seq;
        uint32_t last_seq; /* of the last command: it carries NLM_F_ACK */
} Batch;

static void batch_free(Batch *b)
{
        if (b->b)
                nftnl_batch_free(b->b);
        b->b = NULL;
}

/* libnftnl and libmnl leave attribute padding as they find it: zero the room the next
 * message goes into, so no stale heap bytes reach the kernel (and valgrind stays quiet).
 * nftnl_batch_update() always leaves at least the overrun size (BATCH_PAGE) free there. */
static void batch_clear_next(Batch *b)
{
        memset(nftnl_batch_buffer(b->b), 0, BATCH_PAGE);
}

static int batch_begin(Batch *b, uint32_t seq)
{
        b->b = nftnl_batch_alloc(BATCH_PAGE, BATCH_PAGE);
        if (!b->b)
                return -ENOMEM;
        b->seq = seq;
        batch_clear_next(b);
        nftnl_batch_begin(nftnl_batch_buffer(b->b), b->seq++);
        return nftnl_batch_update(b->b) < 0 ? -ENOMEM : 0;
}

static struct nlmsghdr *batch_msg(Batch *b, uint16_t type, uint16_t flags)
{
        b->last_seq = b->seq;
        batch_clear_next(b);
        return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->b), type, NFPROTO_INET,
                                     flags | NLM_F_ACK, b->seq++);
}

static int batch_next(Batch *b)
{
        return nftnl_batch_update(b->b) < 0 ? -ENOMEM : 0;
}

static int batch_end(Batch *b)
{
        batch_clear_next(b);
        nftnl_batch_end(nftnl_batch_buffer(b->b), b->seq++);
        return batch_next(b);
}

/* Reads replies until the ack of last_seq or an error; returns the first error. */
static int receive_acks(FwContext *ctx, uint32_t last_seq)
{
        char buf[RECV_BUF];
        int fd = mnl_socket_get_fd(ctx->nl), first_error = 0;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;
                int k;

                /* the kernel answers a batch while processing sendmsg(); the wait is only a
                 * safety net against a reply that never comes */
                k = poll(&p, 1, first_error ? 0 : 5000);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return first_error ? first_error : -ETIMEDOUT;
                n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0)
                        return first_error ? first_error : negative_errno();

                for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
                     mnl_nlmsg_ok(h, (int)n); h = mnl_nlmsg_next(h, (int *)&n)) {
                        const struct nlmsgerr *e;

                        if (h->nlmsg_type != NLMSG_ERROR)
                                continue;
                        e = mnl_nlmsg_get_payload(h);
                        if (e->error != 0 && first_error == 0)
                                first_error = e->error;
                        if (e->error == 0 && h->nlmsg_seq == last_seq)
                                return first_error;
                }
        }
}

static int batch_send(FwContext *ctx, Batch *b)
{
        int n = nftnl_batch_iovec_len(b->b);
        _cleanup_free_ struct iovec *iov = calloc((size_t)n, sizeof(struct iovec));
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
        struct msghdr mh = {
                .msg_name = &sa,
                .msg_namelen = sizeof(sa),
                .msg_iov = iov,
                .msg_iovlen = (size_t)n,
        };

        if (!iov)
                return -ENOMEM;
        nftnl_batch_iovec(b->b, iov, (uint32_t)n);
        if (sendmsg(mnl_socket_get_fd(ctx->nl), &mh, 0) < 0)
                return negative_errno();
        return receive_acks(ctx, b->last_seq);
}

/* ---- sets and their elements ------------------------------------------------------------ */

static struct nftnl_set *set_new(const char *name, int family, bool with_timeout, uint32_t id)
{
        struct nftnl_set *s = nftnl_set_alloc();

        if (!s)
                return NULL;
        nftnl_set_set_str(s, NFTNL_SET_TABLE, FW_TABLE);
        nftnl_set_set_str(s, NFTNL_SET_NAME, name);
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
        if (id == 0)
                return s; /* a reference to an existing set, for element messages */
        nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
                          family == AF_INET ? NFT_TYPE_IPADDR : NFT_TYPE_IP6ADDR);
        nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, family == AF_INET ? 4 : 16);
        nftnl_set_set_u32(s, NFTNL_SET_FLAGS,
                          NFT_SET_INTERVAL | (with_timeout ? NFT_SET_TIMEOUT : 0));
        nftnl_set_set_u32(s, NFTNL_SET_ID, id);
        return s;
}

static int elem_add(struct nftnl_set *s, const uint8_t *key, size_t len, bool end,
                    uint64_t timeout_ms)
{
        struct nftnl_set_elem *e = nftnl_set_elem_alloc();

        if (!e)
                return -ENOMEM;
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)len);
        if (end)
                nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        if (timeout_ms > 0)
                nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
        nftnl_set_elem_add(s, e);
        return 0;
}

/*
 * Adds the CIDRs of one family as interval elements: for each merged range a start
 * element and an "interval end" element at end+1 (none when the range reaches the last
 * address). Messages hold at most ELEMS_PER_MSG elements.
 */
static int batch_add_elements(Batch *b, const char *set, int family, char *const *cidrs,
                              uint64_t timeout_ms)
{
        size_t len = family == AF_INET ? 4 : 16, n = 0;
        _cleanup_free_ FwRange *ranges = NULL;
        int r;

        r = fw_ranges_from_cidrs(cidrs, family, &ranges, &n);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i += ELEMS_PER_MSG / 2) {
                struct nftnl_set *s = set_new(set, family, false, 0);
                struct nlmsghdr *nlh;

                if (!s)
                        return -ENOMEM;
                for (size_t j = i; j < n && j < i + ELEMS_PER_MSG / 2; j++) {
                        uint8_t end[16];

                        /* the timeout goes on the start element; the kernel refuses
                         * one on an interval end (EINVAL) */
                        r = elem_add(s, ranges[j].start, len, false, timeout_ms);
                        if (r >= 0 && fw_range_end_exclusive(&ranges[j], len, end))
                                r = elem_add(s, end, len, true, 0);
                        if (r < 0) {
                                nftnl_set_free(s);
                                return r;
                        }
                }
                nlh = batch_msg(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
                nftnl_set_elems_nlmsg_build_payload(nlh, s);
                nftnl_set_free(s);
                r = batch_next(b);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* nft: flush set inet hostwarden SET */
static int batch_flush_set(Batch *b, const char *set)
{
        struct nftnl_set *s = set_new(set, AF_INET, false, 0);
        struct nlmsghdr *nlh;

        if (!s)
                return -ENOMEM;
        nlh = batch_msg(b, NFT_MSG_DELSETELEM, 0);
        nftnl_set_elems_nlmsg_build_payload(nlh, s);
        nftnl_set_free(s);
        return batch_next(b);
}

/* ---- the table -------------------------------------------------------------------------- */

static struct nftnl_table *table_new(uint64_t digest)
{
        struct nftnl_table *t = nftnl_table_alloc();
        char udata[64];

        if (!t)
                return NULL;
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, FW_TABLE);
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
        if (digest) {
                int n = snprintf(udata, sizeof(udata), USERDATA_PREFIX "%016" PRIx64, digest);
                nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, udata, (uint32_t)n);
        }
        return t;
}

static int batch_table(Batch *b, uint16_t type, uint16_t flags, uint64_t digest)
{
        struct nftnl_table *t = table_new(digest);
        struct nlmsghdr *nlh;

        if (!t)
                return -ENOMEM;
        nlh = batch_msg(b, type, flags);
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        return batch_next(b);
}

static int batch_set(Batch *b, const char *name, int family, bool with_timeout, uint32_t id)
{
        struct nftnl_set *s = set_new(name, family, with_timeout, id);
        struct nlmsghdr *nlh;

        if (!s)
                return -ENOMEM;
        nlh = batch_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE);
        nftnl_set_nlmsg_build_payload(nlh, s);
        nftnl_set_free(s);
        return batch_next(b);
}

/* nft: chain input { type filter hook input priority filter; policy accept; } */
static int batch_chain(Batch *b)
{
        struct nftnl_chain *c = nftnl_chain_alloc();
        struct nlmsghdr *nlh;

        if (!c)
                return -ENOMEM;
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, FW_TABLE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, FW_CHAIN);
        nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
        nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_IN);
        nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 0);
        nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
        nlh = batch_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
        nftnl_chain_nlmsg_build_payload(nlh, c);
        nftnl_chain_free(c);
        return batch_next(b);
}

static int add_rule_cb(struct nftnl_rule *r, void *userdata)
{
        Batch *b = userdata;
        struct nlmsghdr *nlh;

        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, FW_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, FW_CHAIN);
        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
        nlh = batch_msg(b, NFT_MSG_NEWRULE, NLM_F_APPEND | NLM_F_CREATE);
        nftnl_rule_nlmsg_build_payload(nlh, r);
        return batch_next(b);
}

/* The whole table in one transaction: create-if-missing, delete, create with everything. */
static int build_table_batch(Batch *b, const FwSpec *s, uint32_t seq)
{
        static const FwSetIds ids = { 1, 2, 3, 4, 5, 6 };
        int r;

        if ((r = batch_begin(b, seq)) < 0 ||
            (r = batch_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, 0)) < 0 ||
            (r = batch_table(b, NFT_MSG_DELTABLE, 0, 0)) < 0 ||
            (r = batch_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, fw_spec_digest(s))) < 0 ||
            (r = batch_set(b, FW_SET_SOURCES4, AF_INET, false, ids.sources4)) < 0 ||
            (r = batch_set(b, FW_SET_SOURCES6, AF_INET6, false, ids.sources6)) < 0 ||
            (r = batch_set(b, FW_SET_OPEN4, AF_INET, true, ids.open4)) < 0 ||
            (r = batch_set(b, FW_SET_OPEN6, AF_INET6, true, ids.open6)) < 0 ||
            (r = batch_set(b, FW_SET_CONSOLE4, AF_INET, false, ids.console4)) < 0 ||
            (r = batch_set(b, FW_SET_CONSOLE6, AF_INET6, false, ids.console6)) < 0 ||
            (r = batch_add_elements(b, FW_SET_SOURCES4, AF_INET, s->migration_sources, 0)) < 0 ||
            (r = batch_add_elements(b, FW_SET_SOURCES6, AF_INET6, s->migration_sources, 0)) < 0 ||
            (r = batch_add_elements(b, FW_SET_CONSOLE4, AF_INET, s->console_clients, 0)) < 0 ||
            (r = batch_add_elements(b, FW_SET_CONSOLE6, AF_INET6, s->console_clients, 0)) < 0 ||
            (r = batch_chain(b)) < 0 || (r = fw_rules_build(s, &ids, add_rule_cb, b)) < 0)
                return r;
        return batch_end(b);
}

static int table_digest_cb(const struct nlmsghdr *nlh, void *data)
{
        uint64_t *digest = data;
        struct nftnl_table *t = nftnl_table_alloc();
        const char *udata;
        uint32_t len = 0;
        char buf[64];

        if (!t)
                return MNL_CB_ERROR;
        if (nftnl_table_nlmsg_parse(nlh, t) == 0 &&
            (udata = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len)) && len < sizeof(buf)) {
                memcpy(buf, udata, len);
                buf[len] = 0;
                if (startswith(buf, USERDATA_PREFIX))
                        *digest = strtoull(buf + STRLEN(USERDATA_PREFIX), NULL, 16);
        }
        nftnl_table_free(t);
        return MNL_CB_OK;
}

uint32_t fw_next_seq(FwContext *ctx)
{
        return ++ctx->seq;
}

int fw_request(FwContext *ctx, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
        char buf[RECV_BUF];
        uint32_t seq = nlh->nlmsg_seq;

        if (mnl_socket_sendto(ctx->nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(ctx->nl, buf, sizeof(buf));
                int k;

                if (n < 0)
                        return negative_errno();
                k = mnl_cb_run(buf, (size_t)n, seq, ctx->portid, cb, data);
                if (k < 0)
                        return negative_errno();
                if (k == MNL_CB_STOP)
                        return 0;
        }
}

int fw_table_digest(FwContext *ctx, uint64_t *ret_digest)
{
        char buf[RECV_BUF] = { 0 };
        struct nftnl_table *t = table_new(0);
        struct nlmsghdr *nlh;
        uint64_t digest = 0;
        int r;

        if (!t)
                return -ENOMEM;
        nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, ++ctx->seq);
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        r = fw_request(ctx, nlh, table_digest_cb, &digest);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        *ret_digest = digest;
        return 1;
}

int fw_apply(FwContext *ctx, const FwSpec *s, bool *ret_changed)
{
        Batch b = { NULL };
        uint64_t current = 0;
        int r;

        r = fw_table_digest(ctx, &current);
        if (r < 0)
                return r;
        if (r > 0 && current == fw_spec_digest(s)) {
                if (ret_changed)
                        *ret_changed = false;
                return 0;
        }

        r = build_table_batch(&b, s, ++ctx->seq);
        if (r >= 0)
                r = batch_send(ctx, &b);
        ctx->seq = b.seq;
        batch_free(&b);
        if (r < 0)
                return r;
        if (ret_changed)
                *ret_changed = true;
        return 0;
}

int fw_remove(FwContext *ctx)
{
        Batch b = { NULL };
        int r;

        /* create-if-missing then delete: idempotent in one transaction */
        if ((r = batch_begin(&b, ++ctx->seq)) >= 0 &&
            (r = batch_table(&b, NFT_MSG_NEWTABLE, NLM_F_CREATE, 0)) >= 0 &&
            (r = batch_table(&b, NFT_MSG_DELTABLE, 0, 0)) >= 0 && (r = batch_end(&b)) >= 0)
                r = batch_send(ctx, &b);
        ctx->seq = b.seq;
        batch_free(&b);
        return r;
}

/* ---- the migration window --------------------------------------------------------------- */

static int build_window_batch(Batch *b, const FwSpec *s, FwWindow w, uint32_t seq)
{
        int r;

        r = batch_begin(b, seq);
        if (r < 0)
                return r;
        if (w != FW_WINDOW_CLOSE) {
                uint64_t timeout_ms = s->open_window / USEC_PER_MSEC;

                /* Adding what is there already sets its timeout anew (kernels that update
                 * element timeouts) and is never an error. This removes nothing: a removal
                 * makes the next release of a netfilter socket wait for an RCU grace period
                 * (fw-replay.c). */
                r = batch_add_elements(b, FW_SET_OPEN4, AF_INET, s->migration_sources, timeout_ms);
                if (r >= 0)
                        r = batch_add_elements(b, FW_SET_OPEN6, AF_INET6, s->migration_sources,
                                               timeout_ms);
        } else {
                r = batch_flush_set(b, FW_SET_OPEN4);
                if (r >= 0)
                        r = batch_flush_set(b, FW_SET_OPEN6);
        }
        if (r < 0)
                return r;
        return batch_end(b);
}

static int window(FwContext *ctx, const FwSpec *s, FwWindow w)
{
        for (int attempt = 0;; attempt++) {
                Batch b = { NULL };
                int r;

                r = build_window_batch(&b, s, w, ++ctx->seq);
                if (r >= 0)
                        r = batch_send(ctx, &b);
                ctx->seq = b.seq;
                batch_free(&b);
                /* ENOENT: the table is gone (nft flush ruleset): re-create it once */
                if (r != -ENOENT || attempt > 0 || !s)
                        return r;
                r = fw_apply(ctx, s, NULL);
                if (r < 0)
                        return r;
        }
}

int fw_window_open(FwContext *ctx, const FwSpec *s)
{
        return window(ctx, s, FW_WINDOW_OPEN);
}

int fw_window_close(FwContext *ctx)
{
        return window(ctx, NULL, FW_WINDOW_CLOSE);
}

int fw_window_batch(const FwSpec *s, FwWindow w, void **ret, size_t *ret_size,
                    uint32_t *ret_last_seq)
{
        Batch b = { NULL };
        size_t size = 0;
        char *buf;
        int r, n;

        r = build_window_batch(&b, s, w, 1);
        if (r < 0) {
                batch_free(&b);
                return r;
        }
        n = nftnl_batch_iovec_len(b.b);
        _cleanup_free_ struct iovec *iov = calloc((size_t)n, sizeof(struct iovec));
        if (!iov) {
                batch_free(&b);
                return -ENOMEM;
        }
        nftnl_batch_iovec(b.b, iov, (uint32_t)n);
        for (int i = 0; i < n; i++)
                size += iov[i].iov_len;
        buf = malloc(size ? size : 1);
        if (!buf) {
                batch_free(&b);
                return -ENOMEM;
        }
        size = 0;
        for (int i = 0; i < n; i++) {
                memcpy(buf + size, iov[i].iov_base, iov[i].iov_len);
                size += iov[i].iov_len;
        }
        if (ret_last_seq)
                *ret_last_seq = b.last_seq;
        batch_free(&b);
        *ret = buf;
        *ret_size = size;
        return 0;
}

int fw_blobs_write(const char *runtime_dir, const FwSpec *s)
{
        char dir[4096];
        int r;

        if (snprintf(dir, sizeof(dir), "%s/%s", runtime_dir, FW_BLOB_SUBDIR) >= (int)sizeof(dir))
                return -ENAMETOOLONG;
        if (mkdir(runtime_dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();

        for (FwWindow w = 0; w < _FW_WINDOW_MAX; w++) {
                _cleanup_free_ void *batch = NULL;
                _cleanup_free_ char *path = NULL;
                _cleanup_close_ int fd = -EBADF;
                FwBlobHeader h = { .digest = fw_spec_digest(s) };
                size_t size;

                r = fw_window_batch(s, w, &batch, &size, &h.last_seq);
                if (r < 0)
                        return r;
                memcpy(h.magic, FW_BLOB_MAGIC, sizeof(h.magic));
                h.size = (uint32_t)size;
                if (asprintf(&path, "%s/%s.tmp", dir, fw_blob_name(w)) < 0)
                        return -ENOMEM;
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return negative_errno();
                if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) ||
                    write(fd, batch, size) != (ssize_t)size || fsync(fd) < 0) {
                        r = errno > 0 ? -errno : -EIO;
                        (void)unlink(path);
                        return r;
                }
                /* rename over the old one: the hook never reads half a file */
                char *final = strndup(path, strlen(path) - 4);
                if (!final)
                        return -ENOMEM;
                r = rename(path, final) < 0 ? negative_errno() : 0;
                free(final);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- listing ------------------------------------------------------------------------------ */

typedef struct Bound {
        uint8_t key[16];
        bool end;
} Bound;

static size_t bound_cmp_len;

static int bound_cmp(const void *x, const void *y)
{
        const Bound *a = x, *b = y;
        int c = memcmp(a->key, b->key, bound_cmp_len);

        /* at an equal key an end (of the range before) sorts before a start */
        return c != 0 ? c : (int)b->end - (int)a->end;
}

typedef struct ListCtx {
        struct nftnl_set *set;
} ListCtx;

static int set_elems_cb(const struct nlmsghdr *nlh, void *data)
{
        ListCtx *l = data;

        return nftnl_set_elems_nlmsg_parse(nlh, l->set) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int fw_set_list(FwContext *ctx, const char *set, char ***ret)
{
        char buf[RECV_BUF] = { 0 };
        bool v6 = strchr(set, '6') != NULL;
        size_t len = v6 ? 16 : 4;
        _cleanup_strv_free_ char **out = NULL;
        struct nftnl_set_elems_iter *it;
        struct nftnl_set_elem *e;
        ListCtx l = { .set = set_new(set, AF_INET, false, 0) };
        struct nlmsghdr *nlh;
        _cleanup_free_ Bound *bounds = NULL;
        size_t n_bounds = 0;
        int r;

        if (!l.set)
                return -ENOMEM;
        nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK,
                                    ++ctx->seq);
        nftnl_set_elems_nlmsg_build_payload(nlh, l.set);
        r = fw_request(ctx, nlh, set_elems_cb, &l);
        if (r < 0) {
                nftnl_set_free(l.set);
                return r;
        }

        /* start and interval-end elements, in whatever order the set backend dumps them:
         * sort by key, then pair each start with the end that follows it */
        it = nftnl_set_elems_iter_create(l.set);
        while (r >= 0 && it && (e = nftnl_set_elems_iter_next(it))) {
                uint32_t klen = 0, flags = 0;
                const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
                Bound *t;

                if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS))
                        flags = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS);
                if (!key || klen != len)
                        continue;
                t = realloc(bounds, sizeof(Bound) * (n_bounds + 1));
                if (!t) {
                        r = -ENOMEM;
                        break;
                }
                bounds = t;
                memcpy(bounds[n_bounds].key, key, len);
                bounds[n_bounds].end = flags & NFT_SET_ELEM_INTERVAL_END;
                n_bounds++;
        }
        bound_cmp_len = len;
        if (n_bounds > 1)
                qsort(bounds, n_bounds, sizeof(Bound), bound_cmp);
        for (size_t i = 0; r >= 0 && i < n_bounds; i++) {
                FwRange cur;
                char *text = NULL;

                if (bounds[i].end)
                        continue; /* a leading end marker */
                memcpy(cur.start, bounds[i].key, len);
                if (i + 1 < n_bounds && bounds[i + 1].end) {
                        memcpy(cur.end, bounds[i + 1].key, len);
                        for (size_t k = len; k > 0; k--) /* end is exclusive: step back one */
                                if (cur.end[k - 1]-- != 0)
                                        break;
                        i++;
                } else
                        memset(cur.end, 0xff, len); /* no end: up to the last address */
                if (fw_range_format(&cur, v6 ? AF_INET6 : AF_INET, &text) < 0 ||
                    strv_push(&out, text) < 0)
                        r = -ENOMEM;
        }
        nftnl_set_elems_iter_destroy(it);
        nftnl_set_free(l.set);
        if (r < 0)
                return r;
        if (!out && !(out = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}
