/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The choice of a migration's destination, with the reservations of the peers' memory. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"
#include "util.h"

struct Reservations {
        pthread_mutex_t lock;
        char **names;    /* guarded by lock */
        uint64_t *bytes; /* same length */
};

int reservations_new(Reservations **ret)
{
        Reservations *r = calloc(1, sizeof(Reservations));

        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        *ret = r;
        return 0;
}

Reservations *reservations_free(Reservations *r)
{
        if (!r)
                return NULL;
        strv_free(r->names);
        free(r->bytes);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

static uint64_t reserved_locked(Reservations *r, const char *name)
{
        for (size_t i = 0; r->names && r->names[i]; i++)
                if (streq(r->names[i], name))
                        return r->bytes[i];
        return 0;
}

uint64_t reservations_get(Reservations *r, const char *name)
{
        uint64_t b;

        pthread_mutex_lock(&r->lock);
        b = reserved_locked(r, name);
        pthread_mutex_unlock(&r->lock);
        return b;
}

/* delta: bytes to add (> 0) or take back (< 0); under the lock. False if it could not
 * be counted (no memory). */
static bool reserve_locked(Reservations *r, const char *name, int64_t delta)
{
        size_t n = strv_length(r->names);
        uint64_t *b;

        for (size_t i = 0; i < n; i++)
                if (streq(r->names[i], name)) {
                        r->bytes[i] += (uint64_t)delta;
                        return true;
                }
        if (delta <= 0 || !(b = realloc(r->bytes, (n + 1) * sizeof(uint64_t))))
                return false;
        r->bytes = b;
        if (strv_extend(&r->names, name) < 0)
                return false;
        r->bytes[n] = (uint64_t)delta;
        return true;
}

void placement_release(Reservations *r, const char *name, uint64_t bytes)
{
        if (!bytes)
                return;
        pthread_mutex_lock(&r->lock);
        reserve_locked(r, name, -(int64_t)bytes);
        pthread_mutex_unlock(&r->lock);
}

static bool candidate_ok(const PlacementCandidate *c)
{
        return c->error >= 0 && mig_findings_worst(c->findings) < MIG_ERROR;
}

void placement_describe_refusal(const PlacementCandidate *c, char *buf, size_t size)
{
        size_t used = 0;

        if (c->error < 0) {
                snprintf(buf, size, "%s", c->error_message);
                return;
        }
        buf[0] = 0;
        for (size_t i = 0; i < c->findings->n && used + 1 < size; i++) {
                const MigFinding *f = &c->findings->items[i];
                int k;

                if (f->severity < MIG_ERROR)
                        continue;
                k = snprintf(buf + used, size - used, "%s%s (%s)", used ? "; " : "", f->message,
                             f->code);
                if (k < 0)
                        break;
                used += (size_t)k;
        }
}

/* Free memory of the candidate less what is on its way there from here (under the lock). */
static uint64_t free_after_reserved(Reservations *r, const PlacementCandidate *c)
{
        uint64_t b;

        if (c->free_bytes == UINT64_MAX)
                return UINT64_MAX;
        b = reserved_locked(r, c->name);
        return c->free_bytes > b ? c->free_bytes - b : 0;
}

/* Counts candidate i against its peer; under the lock. */
static void reserve_chosen_locked(Reservations *r, const PlacementCandidate *c, size_t i,
                                  Placement *ret)
{
        ret->chosen = (ssize_t)i;
        ret->reserved =
                reserve_locked(r, c[i].name, (int64_t)c[i].need_bytes) ? c[i].need_bytes : 0;
}

static void choose_named(Reservations *r, const PlacementCandidate *c, Placement *ret)
{
        char why[1024];

        if (c->error < 0 && c->no_such_domain) {
                ret->error = -ENOENT;
                return;
        }
        if (!candidate_ok(c)) {
                placement_describe_refusal(c, why, sizeof(why));
                snprintf(ret->why, sizeof(ret->why), "%s", why);
                ret->error = -EPERM;
                return;
        }
        pthread_mutex_lock(&r->lock);
        reserve_chosen_locked(r, c, 0, ret);
        pthread_mutex_unlock(&r->lock);
}

void placement_choose(Reservations *r, const PlacementCandidate *c, size_t n, bool named,
                      Placement *ret)
{
        ssize_t chosen = -1;
        size_t used = 0;

        *ret = (Placement){ .chosen = -1 };
        if (named && n == 1) {
                choose_named(r, c, ret);
                return;
        }

        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < n; i++) {
                uint64_t free_i, free_chosen;

                if (c[i].error < 0 && c[i].no_such_domain) {
                        pthread_mutex_unlock(&r->lock);
                        ret->error = -ENOENT;
                        ret->culprit = i;
                        return;
                }
                if (!candidate_ok(&c[i]))
                        continue;
                free_i = free_after_reserved(r, &c[i]);
                if (free_i != UINT64_MAX && free_i < c[i].need_bytes)
                        continue; /* it fits only if the migrations on their way there did not */
                free_chosen = chosen >= 0 ? free_after_reserved(r, &c[chosen]) : 0;
                if (chosen < 0 ||
                    (free_i != UINT64_MAX && (free_chosen == UINT64_MAX || free_i > free_chosen)))
                        chosen = (ssize_t)i;
        }
        if (chosen >= 0) /* under the same lock: the next choice counts this one */
                reserve_chosen_locked(r, c, (size_t)chosen, ret);
        pthread_mutex_unlock(&r->lock);
        if (chosen >= 0)
                return;

        ret->error = -EPERM;
        if (n == 0) {
                snprintf(ret->why, sizeof(ret->why), "no [peer] is configured");
                return;
        }
        for (size_t i = 0; i < n && used + 1 < sizeof(ret->why); i++) {
                char why[1024];
                int k;

                if (candidate_ok(&c[i])) {
                        /* it passed, but the migrations counted against it took the room */
                        pthread_mutex_lock(&r->lock);
                        snprintf(why, sizeof(why),
                                 "%llu MiB free once the migrations on their way there are "
                                 "counted, the domain needs %llu MiB",
                                 (unsigned long long)(free_after_reserved(r, &c[i]) >> 20),
                                 (unsigned long long)(c[i].need_bytes >> 20));
                        pthread_mutex_unlock(&r->lock);
                } else
                        placement_describe_refusal(&c[i], why, sizeof(why));
                k = snprintf(ret->why + used, sizeof(ret->why) - used, "%s%s: %s", i ? "; " : "",
                             c[i].name, why);
                if (k < 0)
                        break;
                used += (size_t)k;
        }
}
