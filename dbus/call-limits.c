/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call-limits.h"
#include "util.h"

/* One counter: of a sender (name set) or of a UID (name NULL). Only callers with something in
 * flight have one, so there are never more than caps.total + caps.root of each kind: a list
 * scanned linearly is as fast as anything here. */
typedef struct Counter {
        char *name;
        uid_t uid;
        unsigned n;
        struct Counter *next;
} Counter;

struct Limiter {
        char *what;
        LimitCaps caps;
        Counter *senders;
        Counter *uids;
        unsigned total, root;
};

int limiter_new(const char *what, const LimitCaps *caps, Limiter **ret)
{
        Limiter *l = calloc(1, sizeof(Limiter));

        if (!l)
                return -ENOMEM;
        l->what = strdup(what);
        if (!l->what) {
                free(l);
                return -ENOMEM;
        }
        l->caps = *caps;
        *ret = l;
        return 0;
}

static void counters_free(Counter *c)
{
        while (c) {
                Counter *next = c->next;

                free(c->name);
                free(c);
                c = next;
        }
}

Limiter *limiter_free(Limiter *l)
{
        if (!l)
                return NULL;
        counters_free(l->senders);
        counters_free(l->uids);
        free(l->what);
        free(l);
        return NULL;
}

static Counter **find_sender(Limiter *l, const char *sender)
{
        Counter **p;

        for (p = &l->senders; *p; p = &(*p)->next)
                if (streq((*p)->name, sender))
                        break;
        return p;
}

static Counter **find_uid(Limiter *l, uid_t uid)
{
        Counter **p;

        for (p = &l->uids; *p; p = &(*p)->next)
                if ((*p)->uid == uid)
                        break;
        return p;
}

/* The counter at *p, or a new zero one appended there; NULL when out of memory. */
static Counter *counter_get(Counter **p, const char *name, uid_t uid)
{
        Counter *c = *p;

        if (c)
                return c;
        c = calloc(1, sizeof(Counter));
        if (!c)
                return NULL;
        c->uid = uid;
        if (name) {
                c->name = strdup(name);
                if (!c->name) {
                        free(c);
                        return NULL;
                }
        }
        *p = c;
        return c;
}

/* One less at *p; a counter at zero goes, so that departed callers leave nothing behind. */
static void counter_put(Counter **p)
{
        Counter *c = *p;

        if (!c || c->n == 0)
                return;
        if (--c->n == 0) {
                *p = c->next;
                free(c->name);
                free(c);
        }
}

LimitVerdict limiter_acquire(Limiter *l, const char *sender, uid_t uid)
{
        Counter **ps, **pu, *s = NULL, *u;

        if (uid == 0) {
                if (l->root >= l->caps.root)
                        return LIMIT_ROOT;
                l->root++;
                return LIMIT_ADMITTED;
        }
        /* the narrowest cap first: a client that overdoes it on one connection is told so,
         * rather than about a total its other connections share */
        ps = sender ? find_sender(l, sender) : NULL;
        if (ps && *ps && (*ps)->n >= l->caps.per_sender)
                return LIMIT_SENDER;
        pu = find_uid(l, uid);
        if (*pu && (*pu)->n >= l->caps.per_uid)
                return LIMIT_UID;
        if (l->total >= l->caps.total)
                return LIMIT_TOTAL;
        if (l->caps.per_sender == 0 && sender)
                return LIMIT_SENDER;
        if (l->caps.per_uid == 0)
                return LIMIT_UID;

        if (ps) {
                s = counter_get(ps, sender, uid);
                if (!s)
                        return LIMIT_TOTAL;
        }
        u = counter_get(pu, NULL, uid);
        if (!u) {
                if (s && s->n == 0) {
                        s->n = 1;
                        counter_put(ps);
                }
                return LIMIT_TOTAL;
        }
        if (s)
                s->n++;
        u->n++;
        l->total++;
        return LIMIT_ADMITTED;
}

void limiter_release(Limiter *l, const char *sender, uid_t uid)
{
        if (uid == 0) {
                if (l->root > 0)
                        l->root--;
                return;
        }
        if (sender)
                counter_put(find_sender(l, sender));
        counter_put(find_uid(l, uid));
        if (l->total > 0)
                l->total--;
}

bool limiter_sender_uid(const Limiter *l, const char *sender, uid_t *ret)
{
        if (!sender)
                return false;
        for (const Counter *c = l->senders; c; c = c->next)
                if (streq(c->name, sender)) {
                        *ret = c->uid;
                        return true;
                }
        return false;
}

unsigned limiter_sender_count(const Limiter *l, const char *sender)
{
        for (const Counter *c = l->senders; c; c = c->next)
                if (streq(c->name, sender))
                        return c->n;
        return 0;
}

unsigned limiter_uid_count(const Limiter *l, uid_t uid)
{
        if (uid == 0)
                return l->root;
        for (const Counter *c = l->uids; c; c = c->next)
                if (c->uid == uid)
                        return c->n;
        return 0;
}

unsigned limiter_total(const Limiter *l)
{
        return l->total;
}

unsigned limiter_root(const Limiter *l)
{
        return l->root;
}

const LimitCaps *limiter_caps(const Limiter *l)
{
        return &l->caps;
}

void limiter_explain(const Limiter *l, LimitVerdict v, uid_t uid, char *buf, size_t size)
{
        const char *per = "", *advice = "wait for an answer before asking again";
        char scope[64];
        unsigned cap;

        switch (v) {
        case LIMIT_SENDER:
                snprintf(scope, sizeof(scope), "on this connection");
                cap = l->caps.per_sender;
                per = " per connection";
                break;
        case LIMIT_UID:
                if (uid == LIMIT_UID_UNKNOWN)
                        snprintf(scope, sizeof(scope), "for callers of unknown UID");
                else
                        snprintf(scope, sizeof(scope), "for UID %u", (unsigned)uid);
                cap = l->caps.per_uid;
                per = " per user over all its connections";
                break;
        case LIMIT_TOTAL:
                snprintf(scope, sizeof(scope), "from unprivileged users");
                cap = l->caps.total;
                per = " in all";
                advice = "try again shortly (root is served apart)";
                break;
        case LIMIT_ROOT:
                snprintf(scope, sizeof(scope), "for root");
                cap = l->caps.root;
                break;
        default:
                if (size > 0)
                        buf[0] = 0;
                return;
        }
        snprintf(buf, size, "Too many calls in progress %s: at most %u %s%s; %s", scope, cap,
                 l->what, per, advice);
}
