/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The source's view of the switch learning a migrated guest (network-watch.h). */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "log.h"
#include "netdowntime.h"
#include "network-watch.h"

#define MAX_NICS    16
#define POLL_MS     100
#define RECV_BUFFER 8192

typedef struct WatchedNic {
        uint8_t mac[6];
        int bridge; /* ifindex */
} WatchedNic;

struct NetWatch {
        atomic_int refs; /* the owner's, and libvirt's while the event callback is registered */
        virConnectPtr conn;
        int callback; /* libvirt's id of the event callback, -1: none */
        int fd;
        pthread_t thread;
        bool thread_started;
        atomic_bool quit;
        WatchedNic nics[MAX_NICS];
        size_t n_nics;

        pthread_mutex_t lock;
        pthread_cond_t cond;  /* CLOCK_MONOTONIC */
        usec_t stopped, seen; /* CLOCK_MONOTONIC, 0: not yet; under lock */
};

static void unref(void *p)
{
        NetWatch *w = p;

        if (atomic_fetch_sub(&w->refs, 1) != 1)
                return;
        if (w->fd >= 0)
                close(w->fd);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
}

static bool is_linux_bridge(const char *name)
{
        char path[64 + IF_NAMESIZE];

        snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", name);
        return access(path, F_OK) == 0;
}

/* The guest stopped here for the switchover (the final copy of a pre-copy migration). */
static int lifecycle_event(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                           void *opaque)
{
        NetWatch *w = opaque;

        if (event != VIR_DOMAIN_EVENT_SUSPENDED || detail != VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED)
                return 0;
        pthread_mutex_lock(&w->lock);
        if (w->stopped == 0)
                w->stopped = now_usec(CLOCK_MONOTONIC);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

static void saw(NetWatch *w, const FdbEvent *e)
{
        for (size_t i = 0; i < w->n_nics; i++) {
                if (memcmp(w->nics[i].mac, e->mac, sizeof(e->mac)) != 0 ||
                    (e->master != 0 && e->master != w->nics[i].bridge))
                        continue;
                pthread_mutex_lock(&w->lock);
                /* before the stop the guest still sends from here: only what comes after */
                if (w->stopped != 0 && w->seen == 0) {
                        w->seen = now_usec(CLOCK_MONOTONIC);
                        pthread_cond_broadcast(&w->cond);
                }
                pthread_mutex_unlock(&w->lock);
                return;
        }
}

static void *watch_thread(void *userdata)
{
        NetWatch *w = userdata;
        uint32_t buf[RECV_BUFFER / sizeof(uint32_t)]; /* aligned as a struct nlmsghdr */

        while (!atomic_load(&w->quit)) {
                struct pollfd p = { .fd = w->fd, .events = POLLIN };
                ssize_t n;

                if (poll(&p, 1, POLL_MS) <= 0)
                        continue;
                n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n <= 0)
                        continue; /* ENOBUFS (notifications lost) included: go on */
                for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
                     h = NLMSG_NEXT(h, n)) {
                        FdbEvent e;

                        if (fdb_event_parse(h, h->nlmsg_len, &e) > 0)
                                saw(w, &e);
                }
        }
        return NULL;
}

static int open_socket(void)
{
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_NEIGH };
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

/* net_watch_result() waits on CLOCK_MONOTONIC, as the times it compares. */
static void cond_init_monotonic(pthread_cond_t *c)
{
        pthread_condattr_t a;

        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(c, &a);
        pthread_condattr_destroy(&a);
}

int net_watch_start(virConnectPtr conn, virDomainPtr dom, const DomXml *d, NetWatch **ret)
{
        NetWatch *w;
        int r;

        *ret = NULL;
        w = calloc(1, sizeof(NetWatch));
        if (!w)
                return -ENOMEM;
        atomic_init(&w->refs, 1);
        w->fd = -1;
        w->callback = -1;
        pthread_mutex_init(&w->lock, NULL);
        cond_init_monotonic(&w->cond);
        for (size_t i = 0; i < d->n_interfaces && w->n_nics < MAX_NICS; i++) {
                const DomInterface *nic = &d->interfaces[i];
                WatchedNic *x = &w->nics[w->n_nics];

                /* a Linux bridge of this node: its forwarding database says where the MAC is */
                if (!streq_ptr(nic->type, "bridge") || !nic->source || !nic->mac ||
                    strlen(nic->source) >= IF_NAMESIZE || !is_linux_bridge(nic->source) ||
                    mac_parse(nic->mac, x->mac) < 0)
                        continue;
                x->bridge = (int)if_nametoindex(nic->source);
                if (x->bridge > 0)
                        w->n_nics++;
        }
        if (w->n_nics == 0) {
                unref(w);
                return 0;
        }
        w->fd = open_socket();
        if (w->fd < 0) {
                r = w->fd;
                unref(w);
                return r;
        }
        atomic_fetch_add(&w->refs, 1);
        w->callback = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                       VIR_DOMAIN_EVENT_CALLBACK(lifecycle_event),
                                                       w, unref);
        if (w->callback < 0) {
                atomic_fetch_sub(&w->refs, 1);
                unref(w);
                return -EIO;
        }
        virConnectRef(conn);
        w->conn = conn;
        r = -pthread_create(&w->thread, NULL, watch_thread, w);
        if (r < 0) {
                net_watch_free(w);
                return r;
        }
        w->thread_started = true;
        *ret = w;
        return 0;
}

static void stop(NetWatch *w)
{
        if (w->thread_started) {
                atomic_store(&w->quit, true);
                pthread_join(w->thread, NULL);
                w->thread_started = false;
        }
        if (w->callback >= 0) {
                /* libvirt drops its reference (unref) once no callback can run any more */
                (void)virConnectDomainEventDeregisterAny(w->conn, w->callback);
                w->callback = -1;
        }
        if (w->conn) {
                virConnectClose(w->conn);
                w->conn = NULL;
        }
}

uint64_t net_watch_result(NetWatch *w, uint64_t downtime_ms, usec_t wait)
{
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + wait, stopped, seen;

        if (!w)
                return 0;
        pthread_mutex_lock(&w->lock);
        while (w->seen == 0 && w->stopped != 0) {
                struct timespec ts = { .tv_sec = (time_t)(deadline / USEC_PER_SEC),
                                       .tv_nsec = (long)(deadline % USEC_PER_SEC) * 1000 };

                if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
                        break;
        }
        stopped = w->stopped;
        seen = w->seen;
        pthread_mutex_unlock(&w->lock);
        stop(w);
        return network_downtime_usec(stopped, downtime_ms, seen);
}

void net_watch_free(NetWatch *w)
{
        if (!w)
                return;
        stop(w);
        unref(w);
}
