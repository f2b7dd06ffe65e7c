/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "fw.h"

#include <libmnl/libmnl.h>

struct nftnl_rule;

/* A sequence number for the next request on ctx. */
uint32_t fw_next_seq(FwContext *ctx);
/* Sends one request and runs cb on every reply until the ack or the end of a dump. */
int fw_request(FwContext *ctx, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);

/* Transaction-local IDs of the sets, so rules in the same batch can refer to them. */
typedef struct FwSetIds {
        uint32_t sources4, sources6, open4, open6, console4, console6;
} FwSetIds;

typedef int (*FwRuleFn)(struct nftnl_rule *r, void *userdata);

/* Builds the input chain's rules in order, handing each to add_rule (which does not keep it). */
int fw_rules_build(const FwSpec *s, const FwSetIds *ids, FwRuleFn add_rule, void *userdata);
