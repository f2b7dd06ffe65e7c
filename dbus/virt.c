/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "log.h"
#include "util.h"
#include "virt.h"

/* Keepalive: a libvirtd that answers nothing for interval × (count + 1) is given up on. */
#define VIRT_KEEPALIVE_INTERVAL 5
#define VIRT_KEEPALIVE_COUNT    3

struct Virt {
        char *uri;
        pthread_mutex_t lock; /* guards conn */
        virConnectPtr conn;
        pthread_t event_thread;
        bool event_thread_started;
        atomic_bool quit;
        pthread_mutex_t cb_lock; /* guards the two below (never held with lock) */
        void (*lifecycle_cb)(void *userdata);
        void *lifecycle_userdata;
        VirtLifecycleDetailFunc detail_cb;
        void *detail_userdata;
};

/* libvirt prints every error on stderr unless told otherwise; callers report them. */
static void silent_error(void *userdata, virErrorPtr err)
{
}

static void *event_thread(void *userdata)
{
        Virt *v = userdata;

        while (!atomic_load(&v->quit))
                if (virEventRunDefaultImpl() < 0) {
                        log_error("libvirt event loop failed: %s",
                                  virt_last_error("unknown error"));
                        break;
                }
        return NULL;
}

static void wake_timeout(int timer, void *opaque)
{
        virEventRemoveTimeout(timer);
}

static int init_result;

static void init_once(void)
{
        init_result = virInitialize() < 0 || virEventRegisterDefaultImpl() < 0 ? -EIO : 0;
        virSetErrorFunc(NULL, silent_error);
}

int virt_new(const char *uri, Virt **ret)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        Virt *v;
        int r;

        pthread_once(&once, init_once);
        if (init_result < 0)
                return log_error_errno(init_result, "Cannot initialize libvirt: %s",
                                       virt_last_error("unknown error"));

        v = calloc(1, sizeof(Virt));
        if (!v)
                return -ENOMEM;
        v->uri = strdup(uri);
        if (!v->uri) {
                free(v);
                return -ENOMEM;
        }
        pthread_mutex_init(&v->lock, NULL);
        pthread_mutex_init(&v->cb_lock, NULL);
        r = -pthread_create(&v->event_thread, NULL, event_thread, v);
        if (r < 0) {
                log_error_errno(r, "Cannot start the libvirt event thread: %m");
                virt_free(v);
                return r;
        }
        v->event_thread_started = true;
        *ret = v;
        return 0;
}

Virt *virt_free(Virt *v)
{
        if (!v)
                return NULL;
        if (v->event_thread_started) {
                atomic_store(&v->quit, true);
                /* a timeout that fires at once makes virEventRunDefaultImpl() return */
                if (virEventAddTimeout(0, wake_timeout, NULL, NULL) >= 0)
                        pthread_join(v->event_thread, NULL);
                else
                        pthread_detach(v->event_thread);
        }
        if (v->conn)
                virConnectClose(v->conn);
        pthread_mutex_destroy(&v->lock);
        pthread_mutex_destroy(&v->cb_lock);
        free(v->uri);
        free(v);
        return NULL;
}

const char *virt_uri(const Virt *v)
{
        return v->uri;
}

const char *virt_last_error(const char *fallback)
{
        virErrorPtr e = virGetLastError();

        return e && e->message ? e->message : fallback;
}

static int lifecycle_event(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                           void *opaque)
{
        Virt *v = opaque;
        void (*cb)(void *);
        VirtLifecycleDetailFunc detail_cb;
        void *userdata, *detail_userdata;
        char uuid[VIR_UUID_STRING_BUFLEN];

        pthread_mutex_lock(&v->cb_lock);
        cb = v->lifecycle_cb;
        userdata = v->lifecycle_userdata;
        detail_cb = v->detail_cb;
        detail_userdata = v->detail_userdata;
        pthread_mutex_unlock(&v->cb_lock);
        if (cb)
                cb(userdata);
        if (detail_cb && virDomainGetUUIDString(dom, uuid) == 0)
                detail_cb(uuid, event, detail, detail_userdata);
        return 0;
}

void virt_set_lifecycle_detail_callback(Virt *v, VirtLifecycleDetailFunc cb, void *userdata)
{
        pthread_mutex_lock(&v->cb_lock);
        v->detail_cb = cb;
        v->detail_userdata = userdata;
        pthread_mutex_unlock(&v->cb_lock);
}

void virt_set_lifecycle_callback(Virt *v, void (*cb)(void *userdata), void *userdata)
{
        pthread_mutex_lock(&v->cb_lock);
        v->lifecycle_cb = cb;
        v->lifecycle_userdata = userdata;
        pthread_mutex_unlock(&v->cb_lock);
}

int virt_connect(Virt *v, virConnectPtr *ret, char *err, size_t err_size)
{
        int r = 0;

        pthread_mutex_lock(&v->lock);
        if (v->conn && virConnectIsAlive(v->conn) != 1) {
                log_info("The connection to libvirt (%s) was lost; connecting again", v->uri);
                virConnectClose(v->conn);
                v->conn = NULL;
        }
        if (!v->conn) {
                v->conn = virConnectOpen(v->uri);
                if (!v->conn) {
                        snprintf(err, err_size, "%s", virt_last_error("unknown error"));
                        r = -EHOSTDOWN;
                } else {
                        if (virConnectSetKeepAlive(v->conn, VIRT_KEEPALIVE_INTERVAL,
                                                   VIRT_KEEPALIVE_COUNT) < 0)
                                log_warning("No keepalive on the libvirt connection: %s",
                                            virt_last_error("unknown error"));
                        if (virConnectDomainEventRegisterAny(
                                    v->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                    VIR_DOMAIN_EVENT_CALLBACK(lifecycle_event), v, NULL) < 0)
                                log_warning("No domain events from libvirt: %s",
                                            virt_last_error("unknown error"));
                }
        }
        if (r == 0) {
                virConnectRef(v->conn);
                *ret = v->conn;
        }
        pthread_mutex_unlock(&v->lock);
        return r;
}

int virt_list_domains(Virt *v, unsigned flags, virDomainPtr **ret, size_t *ret_n, char *err,
                      size_t err_size)
{
        virConnectPtr conn = NULL;
        virDomainPtr *doms = NULL;
        int r, n;

        r = virt_connect(v, &conn, err, err_size);
        if (r < 0)
                return r;
        n = virConnectListAllDomains(conn, &doms, flags);
        if (n < 0) /* before the close, which resets libvirt's last error */
                snprintf(err, err_size, "%s", virt_last_error("cannot list the domains"));
        virConnectClose(conn); /* each domain holds a reference of its own */
        if (n < 0)
                return -EIO;
        *ret = doms;
        *ret_n = (size_t)n;
        return 0;
}

void virt_domains_free(virDomainPtr *doms, size_t n)
{
        for (size_t i = 0; i < n; i++)
                virDomainFree(doms[i]);
        free(doms);
}

const char *virt_state_to_string(int state)
{
        static const char *const names[] = {
                [VIR_DOMAIN_NOSTATE] = "nostate",   [VIR_DOMAIN_RUNNING] = "running",
                [VIR_DOMAIN_BLOCKED] = "blocked",   [VIR_DOMAIN_PAUSED] = "paused",
                [VIR_DOMAIN_SHUTDOWN] = "shutdown", [VIR_DOMAIN_SHUTOFF] = "shutoff",
                [VIR_DOMAIN_CRASHED] = "crashed",   [VIR_DOMAIN_PMSUSPENDED] = "pmsuspended",
        };

        if (state < 0 || (size_t)state >= ELEMENTSOF(names) || !names[state])
                return "nostate";
        return names[state];
}

bool virt_migration_in_progress(virDomainPtr dom)
{
        virDomainJobInfo job = {};
        int state = 0, reason = 0;

        if (virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED &&
            (reason == VIR_DOMAIN_PAUSED_MIGRATION || reason == VIR_DOMAIN_PAUSED_STARTING_UP ||
             reason == VIR_DOMAIN_PAUSED_POSTCOPY || reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED))
                return true;
        return virDomainGetJobInfo(dom, &job) < 0 || job.type != VIR_DOMAIN_JOB_NONE;
}

int virt_remote_domain_state(const char *uri, const char *uuid, int *ret_state, int *ret_reason)
{
        virConnectPtr peer = virConnectOpen(uri);
        virDomainPtr dom;
        int state = VIR_DOMAIN_NOSTATE, reason = 0, active;

        if (!peer)
                return -1;
        dom = virDomainLookupByUUIDString(peer, uuid);
        active = dom && virDomainIsActive(dom) == 1;
        if (active && virDomainGetState(dom, &state, &reason, 0) < 0)
                state = VIR_DOMAIN_NOSTATE;
        if (dom)
                virDomainFree(dom);
        virConnectClose(peer);
        *ret_state = state;
        *ret_reason = reason;
        return active;
}

bool virt_migration_ended_paused(virDomainPtr dom)
{
        virDomainJobInfo job = {};
        int state = 0, reason = 0;

        return virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED &&
               reason == VIR_DOMAIN_PAUSED_MIGRATION && virDomainGetJobInfo(dom, &job) == 0 &&
               job.type == VIR_DOMAIN_JOB_NONE;
}

int virt_remote_domain_lookup(const char *uri, const char *uuid, RemoteDomain *ret)
{
        virConnectPtr peer = virConnectOpen(uri);
        RemoteDomain d = { .state = VIR_DOMAIN_NOSTATE };
        virDomainPtr dom;
        int r = 0;

        if (!peer)
                return -1;
        dom = virDomainLookupByUUIDString(peer, uuid);
        if (!dom) {
                virErrorPtr e = virGetLastError();

                if (!e || e->code != VIR_ERR_NO_DOMAIN)
                        r = -1; /* not "not there": the question was not answered */
        } else {
                d.present = true;
                d.active = virDomainIsActive(dom) == 1;
                d.migrating = d.active && virt_migration_in_progress(dom);
                if (virDomainGetState(dom, &d.state, &d.reason, 0) < 0)
                        r = -1;
                virDomainFree(dom);
        }
        virConnectClose(peer);
        if (r >= 0)
                *ret = d;
        return r;
}

int virt_remote_domain_active(const char *uri, const char *uuid, bool *ret_migrating)
{
        virConnectPtr peer = virConnectOpen(uri);
        virDomainPtr dom;
        bool active, migrating;

        if (!peer)
                return -1;
        dom = virDomainLookupByUUIDString(peer, uuid);
        active = dom && virDomainIsActive(dom) == 1;
        migrating = active && virt_migration_in_progress(dom);
        if (dom)
                virDomainFree(dom);
        virConnectClose(peer);
        if (ret_migrating)
                *ret_migrating = migrating;
        return active;
}
