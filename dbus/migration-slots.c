/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cluster's migration slots, as leases in the store (migration-slots.h). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "migration-slots.h"
#include "util.h"

/* while a migration waits for a slot another node holds, tried this often besides the
 * heartbeat: that node's migration may end any moment */
#define SLOTS_RETRY_INTERVAL USEC_PER_SEC
/* a worker looks at the migration's Abort this often while it waits */
#define SLOTS_WAIT_TICK_MS 500

typedef struct SlotHold {
        Migration *mig; /* which migration's: the key */
        char dest[HOST_NAME_MAX + 1];
        unsigned max_incoming, cap;
        bool granted;   /* its slots are taken */
        bool cancelled; /* its worker stopped waiting (an Abort): the loop drops it */
        bool said;      /* "waits for a slot" was logged */
        char in_name[64], all_name[64]; /* the leases held ("" for none) */
        StoreLease in_lease, all_lease;
} SlotHold;

struct MigrationSlots {
        pthread_mutex_t lock; /* holds, and every hold's fields */
        pthread_cond_t changed;
        int efd; /* a worker's new hold wakes the loop */
        sd_event_source *io, *retry;
        SlotHold **holds;
        size_t n_holds;
};

static void hold_free(SlotHold *h)
{
        store_lease_done(&h->in_lease);
        store_lease_done(&h->all_lease);
        free(h);
}

/* The store's lease names are [a-z0-9-]; node names may have dots and capitals: a hash. */
static void incoming_lease_name(const char *dest, unsigned k, char name[static 64])
{
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

        for (const char *p = dest; *p; p++)
                h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
        snprintf(name, 64, "migslot-in-%016llx-%u", (unsigned long long)h, k);
}

/* The first free one of n slots, of dest (NULL: of the cluster): 0 with its lease name and
 * lease, -EBUSY when all are taken. */
static int take_one(Manager *m, unsigned n, const char *dest, char name[static 64],
                    StoreLease *lease)
{
        uint64_t now = now_realtime();
        int r = -EBUSY;

        for (unsigned k = 0; k < n; k++) {
                if (dest)
                        incoming_lease_name(dest, k, name);
                else
                        snprintf(name, 64, "migslot-all-%u", k);
                store_lease_done(lease);
                r = store_lease_acquire(m->store, name, now, m->config->cluster.down_after, lease,
                                        NULL);
                if (r != -EBUSY)
                        break;
        }
        if (r < 0)
                name[0] = 0;
        return r;
}

static void give_back(Manager *m, SlotHold *h)
{
        int r;

        if (h->all_name[0] && (r = store_lease_release(m->store, h->all_name, &h->all_lease)) < 0)
                log_full_errno(LOG_DEBUG, r, "Cannot give back slot %s: %m (it expires)",
                               h->all_name);
        if (h->in_name[0] && (r = store_lease_release(m->store, h->in_name, &h->in_lease)) < 0)
                log_full_errno(LOG_DEBUG, r, "Cannot give back slot %s: %m (it expires)",
                               h->in_name);
        h->all_name[0] = h->in_name[0] = 0;
}

/* Under the lock: both slots, or none. */
static void try_take(Manager *m, SlotHold *h)
{
        int r = 0;

        if (!m->store)
                return;
        if (h->cap > 0)
                r = take_one(m, h->cap, NULL, h->all_name, &h->all_lease);
        if (r >= 0 && h->max_incoming > 0)
                r = take_one(m, h->max_incoming, h->dest, h->in_name, &h->in_lease);
        if (r >= 0) {
                h->granted = true;
                if (h->said)
                        log_info("Migration %s to %s has its slot now", h->mig->id, h->dest);
                return;
        }
        give_back(m, h);
        if (!h->said)
                log_info("Migration %s waits for a slot: %s takes %u live migration(s) at once "
                         "([migration] max_incoming there) and the cluster %u ([cluster] "
                         "max_migrations, 0: no cap)%s%s",
                         h->mig->id, h->dest, h->max_incoming, h->cap,
                         r == -EBUSY ? "" : "; the store answered: ",
                         r == -EBUSY ? "" : strerror(-r));
        h->said = true;
}

static void slots_retry(Manager *m, bool waiting);

/* Event loop: every hold that waits is tried; cancelled ones go. */
static void process(Manager *m)
{
        MigrationSlots *sl = m->slots;
        bool waiting = false, granted = false;
        size_t k = 0;

        pthread_mutex_lock(&sl->lock);
        for (size_t i = 0; i < sl->n_holds; i++) {
                SlotHold *h = sl->holds[i];

                if (h->cancelled) {
                        give_back(m, h);
                        hold_free(h);
                        continue;
                }
                if (!h->granted) {
                        try_take(m, h);
                        granted = granted || h->granted;
                        waiting = waiting || !h->granted;
                }
                sl->holds[k++] = h;
        }
        sl->n_holds = k;
        if (granted)
                pthread_cond_broadcast(&sl->changed);
        pthread_mutex_unlock(&sl->lock);
        slots_retry(m, waiting);
}

static int retry_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        process(userdata);
        return 0;
}

static void slots_retry(Manager *m, bool waiting)
{
        MigrationSlots *sl = m->slots;

        if (!waiting) {
                if (sl->retry)
                        (void)sd_event_source_set_enabled(sl->retry, SD_EVENT_OFF);
                return;
        }
        if (!sl->retry && sd_event_add_time_relative(m->event, &sl->retry, CLOCK_MONOTONIC,
                                                     SLOTS_RETRY_INTERVAL, 0, retry_cb, m) < 0)
                return;
        (void)sd_event_source_set_time_relative(sl->retry, SLOTS_RETRY_INTERVAL);
        (void)sd_event_source_set_enabled(sl->retry, SD_EVENT_ONESHOT);
}

static int request_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        uint64_t n;

        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                log_full_errno(LOG_DEBUG, errno, "eventfd read: %m");
        process(userdata);
        return 0;
}

int migration_slots_ensure(Manager *m)
{
        MigrationSlots *sl;
        int r;

        if (m->slots)
                return 0;
        sl = calloc(1, sizeof(MigrationSlots));
        if (!sl)
                return -ENOMEM;
        pthread_mutex_init(&sl->lock, NULL);
        pthread_cond_init(&sl->changed, NULL);
        sl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r = sl->efd < 0 ? -errno
                        : sd_event_add_io(m->event, &sl->io, sl->efd, EPOLLIN, request_cb, m);
        m->slots = sl;
        if (r < 0)
                migration_slots_free(m);
        return r;
}

void migration_slots_free(Manager *m)
{
        MigrationSlots *sl = m->slots;

        if (!sl)
                return;
        /* the workers are gone (joined before this): what is held expires in the store */
        for (size_t i = 0; i < sl->n_holds; i++)
                hold_free(sl->holds[i]);
        free(sl->holds);
        sd_event_source_disable_unref(sl->io);
        sd_event_source_disable_unref(sl->retry);
        if (sl->efd >= 0)
                close(sl->efd);
        pthread_cond_destroy(&sl->changed);
        pthread_mutex_destroy(&sl->lock);
        free(sl);
        m->slots = NULL;
}

int migration_slots_wait(Manager *m, Migration *mig, const char *dest, unsigned max_incoming,
                         unsigned cap)
{
        MigrationSlots *sl = m->slots;
        uint64_t one = 1;
        SlotHold *h, **t;
        bool granted;

        if (max_incoming == 0 && cap == 0)
                return 0;
        h = calloc(1, sizeof(SlotHold));
        if (!h)
                return -ENOMEM;
        *h = (SlotHold){ .mig = mig, .max_incoming = max_incoming, .cap = cap };
        snprintf(h->dest, sizeof(h->dest), "%s", dest);

        pthread_mutex_lock(&sl->lock);
        t = realloc(sl->holds, sizeof(SlotHold *) * (sl->n_holds + 1));
        if (!t) {
                pthread_mutex_unlock(&sl->lock);
                free(h);
                return -ENOMEM;
        }
        sl->holds = t;
        sl->holds[sl->n_holds++] = h;
        pthread_mutex_unlock(&sl->lock);
        if (write(sl->efd, &one, sizeof(one)) < 0)
                log_full_errno(LOG_DEBUG, errno, "eventfd write: %m");

        pthread_mutex_lock(&sl->lock);
        while (!h->granted) {
                struct timespec deadline;

                if (atomic_load(&mig->request) == MIGRATION_REQUEST_ABORT) {
                        h->cancelled = true; /* the loop drops it */
                        break;
                }
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_nsec += SLOTS_WAIT_TICK_MS * 1000000L;
                deadline.tv_sec += deadline.tv_nsec / 1000000000L;
                deadline.tv_nsec %= 1000000000L;
                (void)pthread_cond_timedwait(&sl->changed, &sl->lock, &deadline);
        }
        granted = h->granted;
        pthread_mutex_unlock(&sl->lock);
        return granted ? 0 : -ECANCELED;
}

void migration_slots_release(Manager *m, Migration *mig)
{
        MigrationSlots *sl = m->slots;
        bool found = false;

        if (!sl)
                return;
        pthread_mutex_lock(&sl->lock);
        for (size_t i = 0; i < sl->n_holds; i++)
                if (sl->holds[i]->mig == mig) {
                        SlotHold *h = sl->holds[i];

                        give_back(m, h);
                        hold_free(h);
                        sl->holds[i] = sl->holds[--sl->n_holds];
                        found = true;
                        break;
                }
        pthread_mutex_unlock(&sl->lock);
        if (found)
                process(m); /* what it gave back, another may take */
}

void migration_slots_heartbeat(Manager *m)
{
        MigrationSlots *sl = m->slots;
        uint64_t now = now_realtime();
        int r;

        if (!sl || !m->store)
                return;
        pthread_mutex_lock(&sl->lock);
        for (size_t i = 0; i < sl->n_holds; i++) {
                SlotHold *h = sl->holds[i];

                if (!h->granted)
                        continue;
                /* the same token: a renewal; a slot lost meanwhile (expired and taken) is
                 * said, the migration goes on (stopping it would harm the guest) */
                if (h->all_name[0] && (r = store_lease_acquire(m->store, h->all_name, now,
                                                               m->config->cluster.down_after,
                                                               &h->all_lease, NULL)) < 0)
                        log_warning_errno(r, "Migration %s: cannot renew slot %s: %m", h->mig->id,
                                          h->all_name);
                if (h->in_name[0] && (r = store_lease_acquire(m->store, h->in_name, now,
                                                              m->config->cluster.down_after,
                                                              &h->in_lease, NULL)) < 0)
                        log_warning_errno(r, "Migration %s: cannot renew slot %s: %m", h->mig->id,
                                          h->in_name);
        }
        pthread_mutex_unlock(&sl->lock);
        process(m);
}
