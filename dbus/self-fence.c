/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fencing without a BMC, this node's side (self-fence.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "log.h"
#include "paths.h"
#include "self-fence-plan.h"
#include "self-fence.h"
#include "virt.h"

#define PET_INTERVAL (USEC_PER_SEC)
/* sync() before the power-off, as `systemctl poweroff --force --force` does, but no longer
 * than this: a file system on a storage server this node cannot reach any more would hang
 * it, and the guests are already gone */
#define SYNC_MAX SELF_FENCE_SYNC_USEC
/* /proc/self/ns/pid of the machine's own PID namespace (the kernel's PROC_PID_INIT_INO) */
#define PID_NS_INIT_INO 0xEFFFFFFCU

typedef struct SelfFence {
        pthread_mutex_t lock;
        pthread_cond_t wake; /* on CLOCK_MONOTONIC */
        SelfFenceFacts facts;
        bool started, stop, fencing;
        pthread_t thread;
        int watchdog_fd; /* -1: none */
        const char *watchdog_path;
        Virt *virt;
        char *node_name;
} SelfFence;

static bool in_machine_pid_ns(void)
{
        struct stat st;

        return stat("/proc/self/ns/pid", &st) >= 0 && st.st_ino == PID_NS_INIT_INO;
}

/* The machine's watchdog device, when it has one and it is this node's to use: a simulated
 * node or a container shares its host's, which it must not touch (its "power-off" would
 * leave the host's watchdog running, and the host reset). */
static void watchdog_open(SelfFence *sf)
{
        static const char *const paths[] = { "/dev/watchdog0", "/dev/watchdog" };
        int secs = (int)(SELF_FENCE_WATCHDOG_USEC / USEC_PER_SEC), got = 0;

        if (!in_machine_pid_ns()) {
                log_info("Self-fencing: not in the machine's own PID namespace (a container or "
                         "a simulated node): its watchdog device, if any, is the host's; not "
                         "used");
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                int fd = open(paths[i], O_WRONLY | O_CLOEXEC);

                if (fd < 0) {
                        if (errno != ENOENT)
                                log_warning_errno(-errno,
                                                  "Self-fencing: cannot open %s (EBUSY: another "
                                                  "program holds it, systemd's "
                                                  "RuntimeWatchdogSec= perhaps): %m",
                                                  paths[i]);
                        continue;
                }
                if (ioctl(fd, WDIOC_SETTIMEOUT, &secs) < 0 || ioctl(fd, WDIOC_GETTIMEOUT, &got) < 0)
                        got = 0;
                if (got != secs)
                        log_warning("Self-fencing: %s keeps a timeout of %d s, not %d s: a hung "
                                    "node is reset that long after its deadline",
                                    paths[i], got, secs);
                (void)ioctl(fd, WDIOC_KEEPALIVE, 0);
                sf->watchdog_fd = fd;
                sf->watchdog_path = paths[i];
                log_info("Self-fencing: %s armed (%d s), petted while heartbeats get through",
                         paths[i], got);
                return;
        }
        log_info("Self-fencing: no watchdog device (/dev/watchdog0, /dev/watchdog): a node that "
                 "hangs is not reset by one");
}

/* magic: the driver stops the watchdog on close (unless the kernel says nowayout); without
 * it, it keeps running and resets the machine unless someone opens and pets it again */
static void watchdog_close(SelfFence *sf, bool magic)
{
        if (sf->watchdog_fd < 0)
                return;
        if (magic && write(sf->watchdog_fd, "V", 1) != 1)
                log_warning_errno(-errno, "Self-fencing: cannot disarm %s: %m", sf->watchdog_path);
        (void)close(sf->watchdog_fd);
        sf->watchdog_fd = -1;
}

static struct timespec monotonic_timespec(usec_t u)
{
        return (struct timespec){ .tv_sec = (time_t)(u / USEC_PER_SEC),
                                  .tv_nsec = (long)(u % USEC_PER_SEC) * 1000 };
}

typedef struct SyncWait {
        pthread_mutex_t lock;
        pthread_cond_t done_cond;
        bool done, abandoned;
} SyncWait;

static void *sync_thread(void *userdata)
{
        SyncWait *w = userdata;
        bool abandoned;

        sync();
        pthread_mutex_lock(&w->lock);
        w->done = true;
        abandoned = w->abandoned;
        pthread_cond_signal(&w->done_cond);
        pthread_mutex_unlock(&w->lock);
        if (abandoned)
                free(w);
        return NULL;
}

/* sync(), waiting for it SYNC_MAX at most (then it goes on alone). */
static void sync_bounded(void)
{
        SyncWait *w = calloc(1, sizeof(SyncWait));
        pthread_condattr_t attr;
        pthread_t t;
        bool done;

        if (!w)
                return;
        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->done_cond, &attr);
        pthread_condattr_destroy(&attr);
        if (pthread_create(&t, NULL, sync_thread, w) != 0) {
                free(w);
                return;
        }
        (void)pthread_detach(t);
        struct timespec until = monotonic_timespec(now_usec(CLOCK_MONOTONIC) + SYNC_MAX);
        pthread_mutex_lock(&w->lock);
        while (!w->done && pthread_cond_timedwait(&w->done_cond, &w->lock, &until) == 0)
                ;
        done = w->done;
        w->abandoned = !done;
        pthread_mutex_unlock(&w->lock);
        if (done)
                free(w);
        else
                log_error("Self-fencing: sync() did not return within %llu s; powering off "
                          "anyway",
                          (unsigned long long)(SYNC_MAX / USEC_PER_SEC));
}

typedef struct Destroy {
        virDomainPtr dom;
        pthread_t thread;
        bool started;
        int r;
} Destroy;

static void *destroy_thread(void *userdata)
{
        Destroy *d = userdata;
        const char *name = virDomainGetName(d->dom);

        d->r = virDomainDestroy(d->dom);
        if (d->r < 0)
                log_error("Self-fencing: cannot destroy %s (%s): it goes with the power",
                          strna(name), strna(virGetLastErrorMessage()));
        else
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_SELF_FENCE },
                                      { "HOSTWARDEN_DOMAIN", name }),
                           "Self-fencing: destroyed %s", strna(name));
        return NULL;
}

/* Every running guest of this node, destroyed at once (a thread each: one QEMU slow to die
 * holds no other up): they must not run when the peers rebuild them. One that cannot be
 * destroyed goes with the power (or the watchdog). */
static void destroy_guests(SelfFence *sf)
{
        virDomainPtr *doms = NULL;
        Destroy *d;
        size_t n = 0, failed = 0;
        char err[512];
        int r;

        r = virt_list_domains(sf->virt, VIR_CONNECT_LIST_DOMAINS_ACTIVE, &doms, &n, err,
                              sizeof(err));
        if (r < 0) {
                log_error("Self-fencing: cannot list the running guests (%s): powering off with "
                          "them",
                          err);
                return;
        }
        d = calloc(MAX(n, (size_t)1), sizeof(Destroy));
        for (size_t i = 0; i < n; i++) {
                Destroy one = { .dom = doms[i] };

                if (!d) { /* no memory for the threads: one after the other */
                        (void)destroy_thread(&one);
                        failed += one.r < 0;
                        continue;
                }
                d[i].dom = doms[i];
                d[i].started = pthread_create(&d[i].thread, NULL, destroy_thread, &d[i]) == 0;
                if (!d[i].started)
                        (void)destroy_thread(&d[i]);
        }
        for (size_t i = 0; d && i < n; i++) {
                if (d[i].started)
                        (void)pthread_join(d[i].thread, NULL);
                failed += d[i].r < 0;
        }
        log_notice("Self-fencing: %zu of %zu running guests destroyed", n - failed, n);
        free(d);
        virt_domains_free(doms, n);
}

static void fence(SelfFence *sf, usec_t declared)
{
        log_fields(LOG_CRIT, 0, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_SELF_FENCE }),
                   "No heartbeat of node %s got through to the cluster store for %llu s (the "
                   "[recovery] self_fence_after it declared): destroying its guests and "
                   "powering it off, as its peers expect before they rebuild them",
                   sf->node_name, (unsigned long long)(declared / USEC_PER_SEC));
        destroy_guests(sf);
        sync_bounded();
        log_fields(LOG_CRIT, 0, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_SELF_FENCE }),
                   "Self-fencing: powering node %s off now", sf->node_name);
        (void)reboot(RB_POWER_OFF);
        /* still here: no CAP_SYS_BOOT, or the reboot system call filtered out */
        log_fields(LOG_EMERG, errno, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_SELF_FENCE }),
                   "Self-fencing: cannot power node %s off: %m; %s", sf->node_name,
                   sf->watchdog_fd >= 0 ? "the watchdog resets it"
                                        : "no watchdog either: power it off by hand NOW, its "
                                          "peers are about to rebuild its guests");
}

static void *watch_thread(void *userdata)
{
        SelfFence *sf = userdata;
        usec_t declared = 0;

        pthread_mutex_lock(&sf->lock);
        while (!sf->stop) {
                usec_t now = now_usec(CLOCK_MONOTONIC), deadline, wake;
                SelfFenceAction a = self_fence_plan(&sf->facts, now, &deadline);

                if (a == SELF_FENCE_NOW) {
                        sf->fencing = true; /* for good: the peers may act on it now */
                        declared = sf->facts.declared;
                        break;
                }
                if (sf->watchdog_fd >= 0)
                        (void)ioctl(sf->watchdog_fd, WDIOC_KEEPALIVE, 0);
                wake = now + PET_INTERVAL;
                if (a == SELF_FENCE_ARM && deadline < wake)
                        wake = deadline;
                struct timespec until = monotonic_timespec(wake);
                (void)pthread_cond_timedwait(&sf->wake, &sf->lock, &until);
        }
        pthread_mutex_unlock(&sf->lock);
        if (declared > 0)
                fence(sf, declared); /* the watchdog is not petted any more */
        return NULL;
}

static int arm(SelfFence *sf)
{
        int r;

        watchdog_open(sf);
        sf->stop = false;
        r = -pthread_create(&sf->thread, NULL, watch_thread, sf);
        if (r < 0) {
                watchdog_close(sf, true);
                return log_error_errno(r, "Self-fencing: cannot start its thread: %m");
        }
        sf->started = true;
        log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_SELF_FENCE }),
                   "Self-fencing armed: node %s declared in the cluster store that it powers "
                   "itself off after %llu s without a heartbeat getting through",
                   sf->node_name, (unsigned long long)(sf->facts.declared / USEC_PER_SEC));
        return 0;
}

/* Stops the thread; false if it is fencing (then it is left to it). */
static bool stop_thread(SelfFence *sf)
{
        bool fencing;

        if (!sf->started)
                return true;
        pthread_mutex_lock(&sf->lock);
        sf->stop = true;
        fencing = sf->fencing;
        pthread_cond_signal(&sf->wake);
        pthread_mutex_unlock(&sf->lock);
        if (fencing)
                return false;
        (void)pthread_join(sf->thread, NULL);
        sf->started = false;
        return !sf->fencing;
}

static SelfFence *self_fence_new(Manager *m)
{
        SelfFence *sf = calloc(1, sizeof(SelfFence));
        pthread_condattr_t attr;

        if (!sf)
                return NULL;
        sf->node_name = strdup(m->config->node.name);
        if (!sf->node_name) {
                free(sf);
                return NULL;
        }
        pthread_mutex_init(&sf->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&sf->wake, &attr);
        pthread_condattr_destroy(&attr);
        sf->watchdog_fd = -1;
        sf->virt = m->virt;
        return sf;
}

/* <runtime dir>/self-fence: the facts while armed, for a hostwardend restarted after a crash
 * (self_fence_resume()); gone once nothing is declared any more. */
static char *marker_path(void)
{
        char *path = NULL;

        return asprintf(&path, "%s/" SELF_FENCE_MARKER, hw_runtime_dir()) < 0 ? NULL : path;
}

static void marker_write(const SelfFenceFacts *f)
{
        _cleanup_free_ char *path = marker_path(), *text = NULL;
        int r;

        r = self_fence_facts_format(f, &text);
        if (r >= 0)
                r = path ? write_file_atomic(path, text, 0644) : -ENOMEM;
        if (r < 0)
                log_warning_errno(r,
                                  "Self-fencing: cannot record its last heartbeat in %s: %m (a "
                                  "hostwardend restarted after a crash would not keep the "
                                  "promise this one made)",
                                  strna(path));
}

static void marker_remove(void)
{
        _cleanup_free_ char *path = marker_path();

        if (path && unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "Self-fencing: cannot remove %s: %m", path);
}

void self_fence_heartbeat_result(Manager *m, int r)
{
        SelfFence *sf = m->self_fence;
        usec_t declared = self_fence_declared(m->config), started = 0;

        if (r < 0)
                return; /* the thread counts from the last success */
        if (!sf && declared == 0)
                return; /* nothing declared, nothing to keep */
        if (!sf) {
                sf = m->self_fence = self_fence_new(m);
                if (!sf) {
                        log_error("Self-fencing: out of memory: not armed");
                        return;
                }
        }
        /* when the loop woke up to write it: no later than the write started, which is
         * the earliest the peers may have seen it */
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &started) < 0)
                started = now_usec(CLOCK_MONOTONIC);
        pthread_mutex_lock(&sf->lock);
        sf->facts.ever = true;
        sf->facts.declared = declared;
        sf->facts.last_success = started;
        pthread_cond_signal(&sf->wake);
        pthread_mutex_unlock(&sf->lock);
        if (declared > 0)
                marker_write(&sf->facts);
        if (declared > 0 && !sf->started)
                (void)arm(sf);
        else if (declared == 0 && sf->started && stop_thread(sf)) {
                watchdog_close(sf, true);
                marker_remove();
                log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_SELF_FENCE }),
                           "Self-fencing disarmed: node %s no longer declares it in the "
                           "cluster store",
                           sf->node_name);
        }
}

static int withdraw_mutate(NodeRecord *rec, void *userdata)
{
        rec->self_fence_after = 0;
        return 0;
}

void self_fence_free(Manager *m)
{
        SelfFence *sf = m->self_fence;
        int r = -EHOSTDOWN;

        if (!sf)
                return;
        if (sf->started) {
                /* the peers count on this node powering itself off: until the store says
                 * it does not, it still does (the thread fences at its time meanwhile) */
                for (;;) {
                        bool fencing;

                        pthread_mutex_lock(&sf->lock);
                        fencing = sf->fencing;
                        pthread_mutex_unlock(&sf->lock);
                        if (fencing || !m->store)
                                break;
                        r = store_node_update(m->store, sf->node_name, withdraw_mutate, NULL, NULL);
                        if (r >= 0) {
                                log_notice("Self-fencing: declaration withdrawn from the cluster "
                                           "store");
                                marker_remove();
                                break;
                        }
                        log_warning_errno(r, "Self-fencing: cannot withdraw the declaration from "
                                             "the cluster store (%m): still armed, retrying");
                        (void)usleep(USEC_PER_SEC);
                }
        }
        if (!stop_thread(sf)) {
                /* fencing: the power goes off, or the watchdog resets the machine */
                (void)pthread_join(sf->thread, NULL);
                return;
        }
        /* the declaration is gone from the store (or never was): the watchdog may stop */
        watchdog_close(sf, r >= 0);
        pthread_cond_destroy(&sf->wake);
        pthread_mutex_destroy(&sf->lock);
        free(sf->node_name);
        free(sf);
        m->self_fence = NULL;
}

void self_fence_resume(Manager *m)
{
        _cleanup_free_ char *path = marker_path(), *text = NULL;
        SelfFenceFacts facts;
        SelfFence *sf;
        usec_t now = now_usec(CLOCK_MONOTONIC);
        int r;

        if (!path)
                return;
        r = read_full_file(path, 4096, &text, NULL);
        if (r == -ENOENT)
                return;
        if (r >= 0)
                r = self_fence_facts_parse(text, &facts);
        if (r < 0) {
                /* not ours (it is written atomically): the last heartbeat's time unknown, the
                 * declaration may stand; the first heartbeat that gets through settles it */
                log_error_errno(r,
                                "Self-fencing: cannot read %s: %m; a previous hostwardend may "
                                "have declared self-fencing, which this one cannot keep",
                                path);
                return;
        }
        if (facts.declared == 0 || m->self_fence)
                return;
        sf = m->self_fence = self_fence_new(m);
        if (!sf) {
                log_error("Self-fencing: out of memory: the previous hostwardend's "
                          "declaration not kept");
                return;
        }
        sf->facts = facts;
        log_fields(LOG_WARNING, 0, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_SELF_FENCE }),
                   "Self-fencing resumed: a previous hostwardend declared it, and its last "
                   "heartbeat that got through was %llu s ago",
                   (unsigned long long)((now > facts.last_success ? now - facts.last_success : 0) /
                                        USEC_PER_SEC));
        (void)arm(sf);
}
