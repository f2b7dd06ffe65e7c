/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Caps on what a local user can make the daemon do at once (docs/daemon.md, "Limits"): a
 * read-only method anybody may call and that runs a worker thread (CheckMigration,
 * ListDomains, CheckNode), or a polkit query pending for a caller, is counted against its
 * sender (unique bus name), its UID (one user can open many connections) and a total for all
 * unprivileged callers. Over a cap the call is refused at once with LimitsExceeded; nothing is
 * queued, so a flood costs the event loop one counter lookup per call.
 *
 * UID 0 is counted apart, against a reserve of its own: root's calls (the operator, the hook,
 * hostwardenctl run by root) are answered however many unprivileged calls are in flight, and
 * even root cannot make the daemon start threads without bound.
 *
 * The core here knows nothing of the bus, so that unit tests can ask "after these calls,
 * what happens to the next?".
 */

typedef struct LimitCaps {
        unsigned per_sender; /* in flight per unique bus name (not root) */
        unsigned per_uid;    /* per UID, over all its connections (not root) */
        unsigned total;      /* all callers but root together */
        unsigned root;       /* UID 0, apart from the others */
} LimitCaps;

typedef enum LimitVerdict {
        LIMIT_ADMITTED,
        LIMIT_SENDER, /* the sender has per_sender calls in flight */
        LIMIT_UID,    /* the UID has per_uid */
        LIMIT_TOTAL,  /* unprivileged callers have total */
        LIMIT_ROOT,   /* root has root */
} LimitVerdict;

/* The UID of a caller whose credentials could not be read: such callers share one count. */
#define LIMIT_UID_UNKNOWN ((uid_t)-1)

typedef struct Limiter Limiter;

/* what: the name of the counted thing, for messages ("worker threads", "authorizations") */
int limiter_new(const char *what, const LimitCaps *caps, Limiter **ret);
Limiter *limiter_free(Limiter *l);

/* Counts one call of sender (may be NULL: counted by UID alone) by uid when it is within the
 * caps; LIMIT_ADMITTED then, and limiter_release() must follow with the same arguments.
 * Otherwise counts nothing and says which cap was reached. -ENOMEM as a verdict never
 * happens: a failed allocation refuses with LIMIT_TOTAL. */
LimitVerdict limiter_acquire(Limiter *l, const char *sender, uid_t uid);
void limiter_release(Limiter *l, const char *sender, uid_t uid);

/* The UID sender was counted with, while it has calls in flight: a unique bus name is never
 * given to another connection, so the bus need not be asked again. */
bool limiter_sender_uid(const Limiter *l, const char *sender, uid_t *ret);

/* In flight now. */
unsigned limiter_sender_count(const Limiter *l, const char *sender);
unsigned limiter_uid_count(const Limiter *l, uid_t uid);
unsigned limiter_total(const Limiter *l); /* not root's */
unsigned limiter_root(const Limiter *l);
const LimitCaps *limiter_caps(const Limiter *l);

/* The refusal's message for an operator: which cap, its value and what to do; "" for
 * LIMIT_ADMITTED. Truncated to size. */
void limiter_explain(const Limiter *l, LimitVerdict v, uid_t uid, char *buf, size_t size);
