/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keeps the migration window open while an incoming migration runs, closes it after
 * (window-keeper.h). libvirt is asked in a worker thread; the records and the window are
 * changed in the event loop, under the lock the hook takes too. */
#include <errno.h>
#include <stdlib.h>

#include <libvirt/virterror.h>

#include "fw-window.h"
#include "job.h"
#include "log.h"
#include "paths.h"
#include "util.h"
#include "virt.h"
#include "window-keeper.h"

/* How soon to ask again after a domain event found a migration still running: libvirt
 * sends the event that ends an incoming migration while its job is still being finished. */
#define FOLLOW_UP_USEC (2 * USEC_PER_SEC)

/* "migrate begin" records a migration before libvirt has its domain: the hook returns
 * first, and libvirt may still refuse the migration then (a name taken here, a killed
 * libvirtd), when no hook runs again. A record only begun whose domain is not running here
 * this long after the hook is such a refused migration, not one about to start. */
#define BEGUN_GRACE_SEC 10

typedef enum Verdict {
        INCOMING_UNKNOWN, /* libvirt could not be asked: keep the record as it is */
        INCOMING_RUNNING,
        INCOMING_ENDED, /* completed, failed, or the domain is gone */
} Verdict;

typedef struct WindowKeeper {
        sd_event_source *timer;
        bool running; /* a pass is out in a worker */
        bool again;   /* a domain event came meanwhile */
} WindowKeeper;

typedef struct Pass {
        FwIncoming *incoming;
        size_t n;
        Verdict *verdict;
        bool kicked;  /* by a domain event, not the timer */
        bool pending; /* a record only begun is too young to judge: ask again soon */
} Pass;

static void pass_free(Pass *p)
{
        if (!p)
                return;
        free(p->incoming);
        free(p->verdict);
        free(p);
}

/* While the destination's incoming job runs, libvirt refuses its statistics ("available
 * only on the source host"): that refusal is how an incoming migration is told from a
 * guest that merely stays paused after one (virt.h). */
static Verdict ask(virConnectPtr conn, const char *uuid)
{
        virDomainJobInfo job = {};
        virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid);
        Verdict v;

        if (!dom)
                return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? INCOMING_ENDED
                                                                  : INCOMING_UNKNOWN;
        if (virDomainIsActive(dom) != 1)
                v = INCOMING_ENDED;
        else if (virDomainGetJobInfo(dom, &job) < 0)
                v = virGetLastErrorCode() == VIR_ERR_OPERATION_UNSUPPORTED ? INCOMING_RUNNING
                                                                           : INCOMING_UNKNOWN;
        else
                v = job.type == VIR_DOMAIN_JOB_NONE ? INCOMING_ENDED : INCOMING_RUNNING;
        virDomainFree(dom);
        return v;
}

static void pass_work(Manager *m, void *userdata)
{
        Pass *p = userdata;
        time_t now = time(NULL);
        virConnectPtr conn;
        char err[256];

        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                log_debug("Migration window: libvirt not reachable (%s)", err);
                return; /* every verdict stays INCOMING_UNKNOWN */
        }
        for (size_t i = 0; i < p->n; i++) {
                const FwIncoming *in = &p->incoming[i];

                p->verdict[i] = ask(conn, in->uuid);
                if (p->verdict[i] == INCOMING_ENDED && !in->started &&
                    now - in->marked < BEGUN_GRACE_SEC) {
                        p->verdict[i] = INCOMING_UNKNOWN; /* libvirt may not have it yet */
                        p->pending = true;
                }
        }
        virConnectClose(conn);
}

static usec_t period(const Manager *m)
{
        usec_t t = m->config->firewall.open_window / 3;

        return t < USEC_PER_SEC ? USEC_PER_SEC : MIN(t, USEC_PER_MINUTE);
}

static void arm(Manager *m, usec_t after)
{
        WindowKeeper *k = m->window_keeper;

        if (sd_event_source_set_time_relative(k->timer, after) < 0 ||
            sd_event_source_set_enabled(k->timer, SD_EVENT_ONESHOT) < 0)
                log_warning("Cannot arm the migration window's timer");
}

static void pass_start(Manager *m, bool kicked);

/* The event loop: drop the records of migrations that ended, keep the others alive, and
 * open the window again while any remains, or close it once none does. */
static void pass_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        _cleanup_free_ FwIncoming *left = NULL;
        _cleanup_close_ int lock = -EBADF;
        WindowKeeper *k = m->window_keeper;
        const char *rt = hw_runtime_dir();
        Pass *p = userdata;
        size_t n_left = 0, ended = 0, running = 0;
        int r;

        if (!k) { /* shutting down (window_keeper_free ran first) */
                pass_free(p);
                return;
        }
        k->running = false;
        if (!fw_window_active(m->config))
                goto out;
        lock = fw_window_lock(rt);
        if (lock < 0) {
                log_warning_errno(lock, "Cannot lock %s: %m", rt);
                goto out;
        }
        for (size_t i = 0; i < p->n; i++) {
                const char *uuid = p->incoming[i].uuid;

                if (p->verdict[i] == INCOMING_ENDED && fw_incoming_drop(rt, uuid) >= 0) {
                        log_debug("The incoming migration of %s ended", uuid);
                        ended++;
                } else if (p->verdict[i] == INCOMING_RUNNING) {
                        (void)fw_incoming_touch(rt, uuid);
                        running++;
                }
        }
        (void)fw_incoming_list(m->config, rt, &left, &n_left);
        if (n_left > 0)
                r = fw_window_apply(m->config, rt, FW_WINDOW_OPEN);
        else if (ended > 0)
                r = fw_window_apply(m->config, rt, FW_WINDOW_CLOSE);
        else
                goto out;
        if (r < 0)
                log_error_errno(r,
                                "Failed to %s the migration window: %m; it closes by itself "
                                "within [firewall] open_window",
                                n_left > 0 ? "keep open" : "close");
        else if (n_left == 0)
                log_fields(LOG_INFO, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_WINDOW },
                                      { "HOSTWARDEN_WINDOW", "closed" }),
                           "Migration window closed: no incoming migration remains");
out:
        lock = safe_close(lock);
        if (k->again) {
                k->again = false;
                pass_start(m, true);
        } else
                arm(m, (running > 0 && p->kicked) || p->pending ? FOLLOW_UP_USEC : period(m));
        pass_free(p);
}

static void pass_start(Manager *m, bool kicked)
{
        WindowKeeper *k = m->window_keeper;
        Pass *p;
        int r;

        if (k->running) {
                k->again = true;
                return;
        }
        if (!fw_window_active(m->config)) {
                arm(m, period(m));
                return;
        }
        p = calloc(1, sizeof(Pass));
        if (p)
                p->kicked = kicked;
        if (!p || fw_incoming_list(m->config, hw_runtime_dir(), &p->incoming, &p->n) < 0 ||
            !(p->verdict = calloc(p->n + 1, sizeof(Verdict)))) {
                pass_free(p);
                arm(m, period(m));
                return;
        }
        if (p->n == 0) { /* nothing arrives: nothing to ask */
                pass_free(p);
                arm(m, period(m));
                return;
        }
        r = job_start(m, NULL, pass_work, pass_done, p);
        if (r < 0) {
                log_warning_errno(r, "Cannot check the incoming migrations: %m");
                pass_free(p);
                arm(m, period(m));
                return;
        }
        k->running = true;
}

static int timer_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        pass_start(userdata, false);
        return 0;
}

int window_keeper_setup(Manager *m)
{
        WindowKeeper *k = calloc(1, sizeof(WindowKeeper));
        int r;

        if (!k)
                return -ENOMEM;
        r = sd_event_add_time_relative(m->event, &k->timer, CLOCK_MONOTONIC, 0, 0, timer_cb, m);
        if (r < 0) {
                free(k);
                return r;
        }
        m->window_keeper = k;
        return 0;
}

void window_keeper_kick(Manager *m)
{
        if (m->window_keeper)
                pass_start(m, true);
}

void window_keeper_free(Manager *m)
{
        WindowKeeper *k = m->window_keeper;

        if (!k)
                return;
        sd_event_source_disable_unref(k->timer);
        free(k);
        m->window_keeper = NULL;
}
