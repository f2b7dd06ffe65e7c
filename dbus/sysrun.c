/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "sysrun.h"

typedef struct Wait {
        const char *job;
        char result[32];
        bool done;
} Wait;

static int on_job_removed(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Wait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        (void)error;
        if (sd_bus_message_read(msg, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->job && streq(path, w->job)) {
                snprintf(w->result, sizeof(w->result), "%s", result);
                w->done = true;
        }
        return 0;
}

static int append_properties(sd_bus_message *m, const char *const *argv, uid_t uid, gid_t gid,
                             const char *rw_path)
{
        char user[16], group[16];
        int r;

        snprintf(user, sizeof(user), "%u", (unsigned)uid);
        snprintf(group, sizeof(group), "%u", (unsigned)gid);
        r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(
                        m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)", "Description", "s",
                        "hostwarden: a file of an instance, made as its directory's owner", "Type",
                        "s", "oneshot", "CollectMode", "s", "inactive-or-failed", "User", "s", user,
                        "Group", "s", group, "NoNewPrivileges", "b", 1, "ProtectSystem", "s",
                        "strict", "PrivateTmp", "b", 1, "ReadWritePaths", "as", 1, rw_path);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "ExecStart");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sasb");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[0]);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char **)argv);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0);
        for (int i = 0; i < 4 && r >= 0; i++)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m); /* a(sv) */
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        return r;
}

int sysrun(const char *const *argv, uid_t uid, gid_t gid, const char *rw_path, usec_t timeout,
           char *err, size_t err_size)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *job = NULL;
        char unit[64];
        uint64_t rnd = 0;
        Wait w = {};
        usec_t deadline;
        const char *j;
        int r;

        if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                rnd = now_usec(CLOCK_MONOTONIC); /* a name only: unique enough */
        snprintf(unit, sizeof(unit), "hostwarden-file-%016llx.service", (unsigned long long)rnd);
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                snprintf(err, err_size, "cannot connect to the system bus: %s", strerror(-r));
                return r;
        }
        /* subscribed before the job exists: its end cannot be missed */
        r = sd_bus_match_signal(bus, &slot, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed,
                                &w);
        if (r >= 0)
                r = sd_bus_message_new_method_call(
                        bus, &call, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                        "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(call, "ss", unit, "fail");
        if (r >= 0)
                r = append_properties(call, argv, uid, gid, rw_path);
        if (r >= 0)
                r = sd_bus_call(bus, call, 0, &error, &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &j);
        if (r >= 0 && !(job = strdup(j)))
                r = -ENOMEM;
        if (r < 0) {
                snprintf(err, err_size, "systemd did not start %s: %s", unit,
                         error.message ?: strerror(-r));
                return r;
        }
        w.job = job;
        deadline = now_usec(CLOCK_MONOTONIC) + timeout;
        while (!w.done) {
                usec_t now = now_usec(CLOCK_MONOTONIC);

                if (now >= deadline) {
                        snprintf(err, err_size, "%s did not finish in %llu s", unit,
                                 (unsigned long long)(timeout / USEC_PER_SEC));
                        return -ETIMEDOUT;
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        snprintf(err, err_size, "lost the system bus waiting for %s: %s", unit,
                                 strerror(-r));
                        return r;
                }
                if (r == 0)
                        (void)sd_bus_wait(bus, deadline - now);
        }
        if (!streq(w.result, "done")) {
                snprintf(err, err_size, "%s %s as uid %u (its output: journalctl -u %s)", argv[0],
                         w.result, (unsigned)uid, unit);
                return -EIO;
        }
        return 0;
}
