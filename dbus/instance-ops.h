/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/*
 * Which instances this daemon is working on, and with what: one registry the Manager owns,
 * so that a migration, a rebuild and a reconciliation pass ask one place ("is anybody here
 * working on this instance?") instead of each other's private lists. Event loop only: no
 * lock. An instance is named by its UUID, compared without regard to case (libvirt prints
 * lower case; a caller may not).
 *
 * The registry does not word refusals: the caller knows who holds the instance
 * (InstanceOp.kind, .owner) and says it in its own terms.
 */

typedef enum InstanceOpKind {
        INSTANCE_OP_MIGRATION, /* queued or running here; owner: the Migration */
        INSTANCE_OP_REBUILD,   /* a Rebuild from its checks to its start; owner: its Rebuild */
        INSTANCE_OP_RECONCILE, /* an action of the pass under way; owner: the pass */
        _INSTANCE_OP_KIND_MAX,
} InstanceOpKind;

#define INSTANCE_OP(kind) (1u << (kind))

typedef struct InstanceOp {
        char uuid[37]; /* lower case */
        InstanceOpKind kind;
        void *owner;
} InstanceOp;

typedef struct InstanceOps InstanceOps;

int instance_ops_new(InstanceOps **ret);
InstanceOps *instance_ops_free(InstanceOps *ops);

/* Claims uuid for (kind, owner), unless an operation of a kind in conflicts holds it: then
 * -EBUSY, and *ret_holder (may be NULL) points to that operation until the registry changes.
 * Claims that do not conflict coexist. -EINVAL for a uuid longer than 36 characters. */
int instance_ops_claim(InstanceOps *ops, const char *uuid, InstanceOpKind kind, void *owner,
                       unsigned conflicts, const InstanceOp **ret_holder);
/* Ends (kind, owner)'s claim on uuid; nothing when it holds none. */
void instance_ops_release(InstanceOps *ops, const char *uuid, InstanceOpKind kind, void *owner);
/* Ends every claim of (kind, owner). */
void instance_ops_release_owner(InstanceOps *ops, InstanceOpKind kind, void *owner);
/* The first operation of a kind in kinds on uuid, or NULL. */
const InstanceOp *instance_ops_busy(const InstanceOps *ops, const char *uuid, unsigned kinds);
