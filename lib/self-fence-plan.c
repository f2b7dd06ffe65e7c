/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fencing without a BMC: the node's decision (self-fence-plan.h). */
#include <stdint.h>

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
