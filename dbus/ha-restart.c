/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Crashed guests restarted here (ha-restart.h). */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ha-relocate.h"
#include "ha-restart-plan.h"
#include "ha-restart.h"
#include "ha.h"
#include "history.h"
#include "instance-ops.h"
#include "job.h"
#include "log.h"
#include "util.h"
#include "virt.h"

/* What libvirt's event thread hands the loop: small enough for one atomic pipe write. */
typedef struct CrashNote {
        char uuid[VIR_UUID_STRING_BUFLEN];
        int event, detail;
} CrashNote;

/* One instance that crashed here: its restart times, and its restart while one is due. */
typedef struct Crashed {
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *name;
        HaCrashTimes times;
        bool busy;      /* looked at, waiting for its back-off or starting */
        uint64_t began; /* realtime of the crash being handled */
        int detail;     /* its libvirt event's: VIR_DOMAIN_EVENT_STOPPED_FAILED or _CRASHED */
        sd_event_source *timer;
        HaRelocation *relocation; /* its move to another node, under way */
        const char *moved_to;     /* the history's destination, while it is written */
        struct HaRestart *owner;
        struct Crashed *next;
} Crashed;

typedef struct HaRestart {
        Manager *manager;
        int pipe[2];
        sd_event_source *source;
        Crashed *crashed;
} HaRestart;

/* A worker's question or restart of one instance. */
typedef struct RestartJob {
        char uuid[VIR_UUID_STRING_BUFLEN];
        HaMode default_mode;
        bool start; /* false: only look (state, setting); true: start it if still crashed */
        /* the worker's answers */
        bool crashed; /* shut off, reason crashed, persistent */
        HaSetting setting;
        char *name;
        bool started;
        char error[512]; /* "": none */
} RestartJob;

static void restart_job_free(void *userdata)
{
        RestartJob *j = userdata;

        if (!j)
                return;
        free(j->name);
        free(j);
}

static Crashed *crashed_find(HaRestart *h, const char *uuid)
{
        for (Crashed *c = h->crashed; c; c = c->next)
                if (strcasecmp(c->uuid, uuid) == 0)
                        return c;
        return NULL;
}

static Crashed *crashed_get(HaRestart *h, const char *uuid)
{
        Crashed *c = crashed_find(h, uuid);

        if (c)
                return c;
        c = calloc(1, sizeof(Crashed));
        if (!c)
                return NULL;
        snprintf(c->uuid, sizeof(c->uuid), "%s", uuid);
        c->owner = h;
        c->next = h->crashed;
        h->crashed = c;
        return c;
}

static void crashed_free_all(HaRestart *h)
{
        while (h->crashed) {
                Crashed *c = h->crashed;

                h->crashed = c->next;
                sd_event_source_disable_unref(c->timer);
                ha_relocation_free(c->relocation);
                free(c->name);
                free(c);
        }
}

/* In the worker: the domain's state and HA setting; with j->start, started if still crashed
 * and still of mode restart. */
static void restart_work(Manager *m, void *userdata)
{
        RestartJob *j = userdata;
        virConnectPtr conn = NULL;
        virDomainPtr d = NULL;
        int state = VIR_DOMAIN_NOSTATE, reason = 0;
        char err[256], *xml = NULL;
        const char *name;

        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                snprintf(j->error, sizeof(j->error), "cannot connect to libvirt: %s", err);
                return;
        }
        d = virDomainLookupByUUIDString(conn, j->uuid);
        if (!d) {
                snprintf(j->error, sizeof(j->error), "no such domain here any more");
                goto out;
        }
        name = virDomainGetName(d);
        j->name = strdup(name ? name : j->uuid);
        if (virDomainGetState(d, &state, &reason, 0) < 0 || virDomainIsPersistent(d) != 1) {
                snprintf(j->error, sizeof(j->error), "not a persistent domain: %s",
                         virt_last_error("its state cannot be read"));
                goto out;
        }
        /* anything else (running again, shut down or destroyed meanwhile) is not ours */
        j->crashed = state == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_CRASHED;
        xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
        if (!xml || ha_setting_from_xml(xml, j->default_mode, &j->setting, NULL) < 0) {
                snprintf(j->error, sizeof(j->error), "cannot read its definition: %s",
                         virt_last_error("not valid"));
                goto out;
        }
        if (!j->start || !j->crashed || j->setting.mode != HA_RESTART)
                goto out;
        /* hostwarden-hook decides on this start as on any other: a guest evacuated from here
         * meanwhile is refused, so it never runs twice */
        if (virDomainCreate(d) < 0)
                snprintf(j->error, sizeof(j->error), "%s", virt_last_error("cannot start it"));
        else
                j->started = true;
out:
        free(xml);
        if (d)
                virDomainFree(d);
        virConnectClose(conn);
}

static void restart_done(Manager *m, sd_bus_message *msg, void *userdata);

static int restart_job_start(Manager *m, const char *uuid, bool start)
{
        RestartJob *j = calloc(1, sizeof(RestartJob));
        int r;

        if (!j)
                return -ENOMEM;
        snprintf(j->uuid, sizeof(j->uuid), "%s", uuid);
        j->default_mode = m->config->recovery.default_ha;
        j->start = start;
        r = job_start(m, NULL, restart_work, restart_done, j);
        if (r < 0)
                restart_job_free(j);
        return r;
}

/* The journal (with id) and, with result, the history. */
_printf_(6, 7) static void say(Crashed *c, int level, const char *id, const char *result,
                               const char *why, const char *fmt, ...)
{
        _cleanup_free_ char *text = NULL;
        va_list ap;

        va_start(ap, fmt);
        set_messagev(&text, fmt, ap);
        va_end(ap);
        if (!text)
                return;
        log_fields(level, 0,
                   LOG_FIELDS({ "MESSAGE_ID", id }, { "HOSTWARDEN_DOMAIN", c->name },
                              { "HOSTWARDEN_UUID", c->uuid }),
                   "%s", text);
        if (result)
                history_restart_ended(c->owner->manager, c->uuid, c->name, c->moved_to, result, why,
                                      c->began);
}

static int timer_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        Crashed *c = userdata;
        Manager *m = c->owner->manager;
        int r;

        c->timer = sd_event_source_disable_unref(c->timer);
        if (!m->config->recovery.enable) {
                c->busy = false;
                say(c, LOG_NOTICE, HW_MESSAGE_HA_GIVE_UP, NULL, NULL,
                    "%s not restarted: [recovery] enable was turned off meanwhile", c->name);
                return 0;
        }
        if (instance_ops_busy(m->instance_ops, c->uuid,
                              INSTANCE_OP(INSTANCE_OP_MIGRATION) |
                                      INSTANCE_OP(INSTANCE_OP_REBUILD))) {
                c->busy = false;
                say(c, LOG_NOTICE, HW_MESSAGE_HA_GIVE_UP, NULL, NULL,
                    "%s not restarted: a migration or rebuild of it is under way", c->name);
                return 0;
        }
        r = restart_job_start(m, c->uuid, true);
        if (r < 0) {
                c->busy = false;
                say(c, LOG_ERR, HW_MESSAGE_HA_RESTART, "failed", "cannot start a worker",
                    "Cannot restart %s: %s", c->name, strerror(-r));
        }
        return 0;
}

/* How libvirt saw the crash: a QEMU that went away unasked (SIGKILL, a segfault, the OOM
 * killer) is "failed"; a guest that panicked and was destroyed for it (on_crash) "crashed". */
static const char *crash_kind(const Crashed *c)
{
        return c->detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? "the guest crashed"
                                                             : "its QEMU ended unexpectedly";
}

/* Its move to another node ended (ha-relocate.h). */
static void relocated(Manager *m, const char *uuid, const char *dest, const char *error,
                      void *userdata)
{
        Crashed *c = userdata;

        c->moved_to = dest;
        if (!error)
                say(c, LOG_NOTICE, HW_MESSAGE_HA_RELOCATE, "relocated", NULL,
                    "%s moved to %s after its crashes here, and started there", c->name, dest);
        else
                say(c, LOG_ERR, HW_MESSAGE_HA_GIVE_UP, "failed", error,
                    "Cannot move %s to another node after its crashes here: %s", c->name, error);
        c->moved_to = NULL;
        c->relocation = ha_relocation_free(c->relocation);
        c->busy = false;
}

/* A look at a crashed guest came back: decide (lib/ha-restart-plan.c). */
static void decide(HaRestart *h, Crashed *c, RestartJob *j)
{
        Manager *m = h->manager;
        const Config *cf = m->config;
        uint64_t now = now_usec(CLOCK_MONOTONIC), wait;
        HaCrashAction a;
        int r;

        if (!j->crashed) { /* started, shut down or undefined meanwhile */
                c->busy = false;
                return;
        }
        a = ha_crash_plan(cf->recovery.enable, j->setting.mode, &c->times, now,
                          cf->recovery.max_restart, cf->recovery.max_relocate);
        switch (a) {
        case HA_CRASH_IGNORE:
                c->busy = false;
                log_fields(LOG_NOTICE, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_HA_RESTART },
                                      { "HOSTWARDEN_DOMAIN", c->name }),
                           "%s crashed (%s); its HA mode is off%s: left shut off", c->name,
                           crash_kind(c), j->setting.mode_set ? "" : " ([recovery] default_ha)");
                return;
        case HA_CRASH_RESTART:
                wait = ha_restart_backoff(&c->times, now);
                ha_times_note(c->times.restarts, &c->times.n_restarts, now, HA_RESTART_WINDOW);
                r = sd_event_add_time_relative(m->event, &c->timer, CLOCK_MONOTONIC, wait, 0,
                                               timer_cb, c);
                if (r < 0) {
                        c->busy = false;
                        say(c, LOG_ERR, HW_MESSAGE_HA_RESTART, "failed", "cannot set a timer",
                            "Cannot restart %s: %s", c->name, strerror(-r));
                        return;
                }
                say(c, LOG_WARNING, HW_MESSAGE_HA_RESTART, NULL, NULL,
                    "%s crashed (%s); restarting it here in %llu s (restart %zu of %u in %llu min)",
                    c->name, crash_kind(c), (unsigned long long)(wait / USEC_PER_SEC),
                    ha_times_in_window(c->times.restarts, c->times.n_restarts, now,
                                       HA_RESTART_WINDOW),
                    cf->recovery.max_restart,
                    (unsigned long long)(HA_RESTART_WINDOW / USEC_PER_SEC / 60));
                return;
        case HA_CRASH_RELOCATE: {
                _cleanup_free_ char *why = NULL;

                ha_times_note(c->times.relocations, &c->times.n_relocations, now,
                              HA_RESTART_WINDOW);
                r = ha_relocate_start(m, c->uuid, c->name, relocated, c, &c->relocation, &why);
                if (r < 0) {
                        c->busy = false;
                        say(c, LOG_ERR, HW_MESSAGE_HA_GIVE_UP, "given-up", why ? why : "",
                            "%s crashed (%s) again after %u restarts in %llu min, and cannot "
                            "be moved to another node (%s): left shut off here",
                            c->name, crash_kind(c), cf->recovery.max_restart,
                            (unsigned long long)(HA_RESTART_WINDOW / USEC_PER_SEC / 60),
                            why ? why : strerror(-r));
                        return;
                }
                say(c, LOG_WARNING, HW_MESSAGE_HA_RELOCATE, NULL, NULL,
                    "%s crashed (%s) again after %u restarts in %llu min: moving it to another "
                    "node (a cold migration, relocation %zu of %u)",
                    c->name, crash_kind(c), cf->recovery.max_restart,
                    (unsigned long long)(HA_RESTART_WINDOW / USEC_PER_SEC / 60),
                    ha_times_in_window(c->times.relocations, c->times.n_relocations, now,
                                       HA_RESTART_WINDOW),
                    cf->recovery.max_relocate);
                return;
        }
        default:
                c->busy = false;
                say(c, LOG_ERR, HW_MESSAGE_HA_GIVE_UP, "given-up",
                    "max_restart and max_relocate reached",
                    "%s crashed (%s) again after %u restarts and %u relocations in %llu min: "
                    "left shut off",
                    c->name, crash_kind(c), cf->recovery.max_restart, cf->recovery.max_relocate,
                    (unsigned long long)(HA_RESTART_WINDOW / USEC_PER_SEC / 60));
                return;
        }
}

static void restart_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        RestartJob *j = userdata;
        HaRestart *h = m->ha_restart;
        Crashed *c = h ? crashed_find(h, j->uuid) : NULL;

        if (!c) { /* shutting down */
                restart_job_free(j);
                return;
        }
        if (j->name)
                (void)free_and_strdup(&c->name, j->name);
        if (!j->start) {
                if (j->error[0]) {
                        c->busy = false;
                        log_warning("Cannot look at crashed domain %s: %s", c->name, j->error);
                } else
                        decide(h, c, j);
        } else {
                c->busy = false;
                if (j->started)
                        say(c, LOG_NOTICE, HW_MESSAGE_HA_RESTART, "restarted", NULL,
                            "%s restarted here after its crash", c->name);
                else if (j->error[0])
                        say(c, LOG_ERR, HW_MESSAGE_HA_RESTART, "failed", j->error,
                            "Cannot restart %s after its crash: %s", c->name, j->error);
                else
                        log_info("%s not restarted: no longer crashed, or its HA mode is off now",
                                 c->name);
        }
        restart_job_free(j);
}

/* A crash, in the loop. */
static void on_crash(HaRestart *h, const CrashNote *n)
{
        Manager *m = h->manager;
        Crashed *c;
        int r;

        if (!m->config->recovery.enable) {
                /* the operator sees the crash all the same */
                log_fields(LOG_NOTICE, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_HA_RESTART },
                                      { "HOSTWARDEN_UUID", n->uuid }),
                           "Domain %s crashed; [recovery] enable is off: left shut off", n->uuid);
                return;
        }
        c = crashed_get(h, n->uuid);
        if (!c || (!c->name && !(c->name = strdup(n->uuid)))) {
                log_error_errno(-ENOMEM, "Cannot note the crash of domain %s: %m", n->uuid);
                return;
        }
        if (c->busy)
                return;
        c->busy = true;
        c->began = now_realtime();
        c->detail = n->detail;
        r = restart_job_start(m, n->uuid, false);
        if (r < 0) {
                c->busy = false;
                log_error_errno(r, "Cannot look at crashed domain %s: %m", c->name);
        }
}

static int pipe_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        HaRestart *h = userdata;
        CrashNote n;

        while (read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n)) {
                n.uuid[sizeof(n.uuid) - 1] = 0;
                on_crash(h, &n);
        }
        return 0;
}

/* libvirt's event thread: only a QEMU that died (killed, segfault) or a guest that crashed
 * and was stopped for it; a shutdown, destroy, migration or save has other details. */
static void lifecycle_detail(const char *uuid, int event, int detail, void *userdata)
{
        HaRestart *h = userdata;
        CrashNote n = { .event = event, .detail = detail };

        if (event != VIR_DOMAIN_EVENT_STOPPED || (detail != VIR_DOMAIN_EVENT_STOPPED_FAILED &&
                                                  detail != VIR_DOMAIN_EVENT_STOPPED_CRASHED))
                return;
        snprintf(n.uuid, sizeof(n.uuid), "%s", uuid);
        if (write(h->pipe[1], &n, sizeof(n)) < 0)
                log_warning("Crash of domain %s not handed on: %m", uuid);
}

int ha_restart_setup(Manager *m)
{
        HaRestart *h = calloc(1, sizeof(HaRestart));
        int r;

        if (!h)
                return -ENOMEM;
        h->manager = m;
        if (pipe2(h->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
                r = -errno;
                free(h);
                return r;
        }
        r = sd_event_add_io(m->event, &h->source, h->pipe[0], EPOLLIN, pipe_cb, h);
        if (r < 0) {
                close(h->pipe[0]);
                close(h->pipe[1]);
                free(h);
                return r;
        }
        m->ha_restart = h;
        virt_set_lifecycle_detail_callback(m->virt, lifecycle_detail, h);
        return 0;
}

void ha_restart_free(Manager *m)
{
        HaRestart *h = m->ha_restart;

        if (!h)
                return;
        if (m->virt)
                virt_set_lifecycle_detail_callback(m->virt, NULL, NULL);
        sd_event_source_disable_unref(h->source);
        crashed_free_all(h);
        close(h->pipe[0]);
        close(h->pipe[1]);
        free(h);
        m->ha_restart = NULL;
}
