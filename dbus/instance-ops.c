/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry of what this daemon works on, by instance (instance-ops.h). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "instance-ops.h"

struct InstanceOps {
        InstanceOp *items;
        size_t n, allocated;
};

int instance_ops_new(InstanceOps **ret)
{
        InstanceOps *ops = calloc(1, sizeof(*ops));

        if (!ops)
                return -ENOMEM;
        *ret = ops;
        return 0;
}

InstanceOps *instance_ops_free(InstanceOps *ops)
{
        if (ops) {
                free(ops->items);
                free(ops);
        }
        return NULL;
}

static int lower(const char *uuid, char out[static 37])
{
        size_t n = strlen(uuid);

        if (n >= 37)
                return -EINVAL;
        for (size_t i = 0; i <= n; i++)
                out[i] = (char)tolower((unsigned char)uuid[i]);
        return 0;
}

const InstanceOp *instance_ops_busy(const InstanceOps *ops, const char *uuid, unsigned kinds)
{
        char u[37];

        if (lower(uuid, u) < 0)
                return NULL;
        for (size_t i = 0; i < ops->n; i++)
                if ((kinds & INSTANCE_OP(ops->items[i].kind)) && strcmp(ops->items[i].uuid, u) == 0)
                        return &ops->items[i];
        return NULL;
}

int instance_ops_claim(InstanceOps *ops, const char *uuid, InstanceOpKind kind, void *owner,
                       unsigned conflicts, const InstanceOp **ret_holder)
{
        const InstanceOp *holder;
        InstanceOp *op;

        if (strlen(uuid) >= sizeof(op->uuid))
                return -EINVAL;
        holder = instance_ops_busy(ops, uuid, conflicts);
        if (holder) {
                if (ret_holder)
                        *ret_holder = holder;
                return -EBUSY;
        }
        if (ops->n == ops->allocated) {
                size_t a = ops->allocated ? ops->allocated * 2 : 16;
                InstanceOp *items = reallocarray(ops->items, a, sizeof(*items));

                if (!items)
                        return -ENOMEM;
                ops->items = items;
                ops->allocated = a;
        }
        op = &ops->items[ops->n++];
        (void)lower(uuid, op->uuid);
        op->kind = kind;
        op->owner = owner;
        return 0;
}

static void remove_at(InstanceOps *ops, size_t i)
{
        ops->items[i] = ops->items[--ops->n];
}

void instance_ops_release(InstanceOps *ops, const char *uuid, InstanceOpKind kind, void *owner)
{
        char u[37];

        if (lower(uuid, u) < 0)
                return;
        for (size_t i = 0; i < ops->n; i++)
                if (ops->items[i].kind == kind && ops->items[i].owner == owner &&
                    strcmp(ops->items[i].uuid, u) == 0) {
                        remove_at(ops, i);
                        return;
                }
}

void instance_ops_release_owner(InstanceOps *ops, InstanceOpKind kind, void *owner)
{
        for (size_t i = ops->n; i > 0; i--)
                if (ops->items[i - 1].kind == kind && ops->items[i - 1].owner == owner)
                        remove_at(ops, i - 1);
}
