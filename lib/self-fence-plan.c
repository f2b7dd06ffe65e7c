/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fencing without a BMC: the node's decision (self-fence-plan.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime.h"
#include "self-fence-plan.h"

static const char *const self_fence_action_table[_SELF_FENCE_ACTION_MAX] = {
        [SELF_FENCE_NOTHING] = "nothing",
        [SELF_FENCE_ARM] = "arm",
        [SELF_FENCE_NOW] = "fence-now",
};

DEFINE_STRING_TABLE_TO_STRING(self_fence_action, SelfFenceAction);

usec_t self_fence_declared(const Config *c)
{
        return c->recovery.enable && c->recovery.self_fence ? c->recovery.self_fence_after : 0;
}

usec_t self_fence_peer_margin(usec_t down_after)
{
        return MAX(down_after, SELF_FENCE_WATCHDOG_USEC + SELF_FENCE_SYNC_USEC + 5 * USEC_PER_SEC);
}

SelfFenceAction self_fence_plan(const SelfFenceFacts *f, usec_t now, usec_t *ret_deadline)
{
        usec_t deadline;

        if (ret_deadline)
                *ret_deadline = 0;
        /* the declaration the peers may act on is the one the last write that got through
         * made: a later one that failed may or may not be there */
        if (!f->ever || f->declared == 0)
                return SELF_FENCE_NOTHING;
        deadline = f->last_success > UINT64_MAX - f->declared ? UINT64_MAX
                                                              : f->last_success + f->declared;
        if (now >= deadline)
                return SELF_FENCE_NOW;
        if (ret_deadline)
                *ret_deadline = deadline;
        return SELF_FENCE_ARM;
}

int self_fence_facts_format(const SelfFenceFacts *f, char **ret)
{
        char *text = NULL;

        if (asprintf(&text, "declared=%llu\nlast_success=%llu\n", (unsigned long long)f->declared,
                     (unsigned long long)f->last_success) < 0)
                return -ENOMEM;
        *ret = text;
        return 0;
}

int self_fence_facts_parse(const char *text, SelfFenceFacts *ret)
{
        RuntimeRecord rec = { NULL };
        const char *declared, *last;
        uint64_t d = 0, l = 0;
        int r;

        r = runtime_record_parse(text, &rec);
        if (r < 0)
                return r;
        declared = runtime_record_get(&rec, "declared");
        last = runtime_record_get(&rec, "last_success");
        if (!declared || !last || parse_uint_range(declared, 0, UINT64_MAX, &d) < 0 ||
            parse_uint_range(last, 0, UINT64_MAX, &l) < 0)
                r = -EBADMSG;
        runtime_record_done(&rec);
        if (r < 0)
                return r;
        *ret = (SelfFenceFacts){ .ever = true, .declared = d, .last_success = l };
        return 0;
}
