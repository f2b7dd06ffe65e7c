/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl maintenance plan [--json]: Maintenance.Plan(), what maintenance would do to
 * every domain of this node and why; enter [--deadline=DURATION], status [--json] (its exit
 * status says whether the node is ready), cancel [--abort], exit (docs/maintenance.md). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "table.h"
#include "util.h"
#include "watch.h"

#define MAINTENANCE_PATH  PATH "/maintenance"
#define MAINTENANCE_IFACE "org.hostwarden.Warden1.Maintenance"

static const char *action_color(const char *action)
{
        if (streq(action, "migrate"))
                return COLOR_GREEN;
        if (streq(action, "shutdown"))
                return COLOR_YELLOW;
        if (streq(action, "blocked"))
                return COLOR_BOLD_RED;
        return COLOR_GREY;
}

static int maintenance_plan(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        unsigned n = 0, n_migrate = 0, n_shutdown = 0, n_blocked = 0;
        Screen screen;
        int r;

        r = ctl_call(bus, MAINTENANCE_PATH, MAINTENANCE_IFACE, "Plan", &error, &reply, NULL);
        if (r < 0) {
                fprintf(stderr, "Could not plan the maintenance: %s\n", error_message(&error, r));
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        if (arg_json)
                printf("[");
        else {
                screen_get(&screen);
                t = table_new("DOMAIN", "ACTION", "REASON", NULL);
                if (!t)
                        r = -ENOMEM;
        }
        while (r > 0) {
                const char *domain, *action, *reason;

                r = sd_bus_message_read(reply, "(sss)", &domain, &action, &reason);
                if (r <= 0)
                        break;
                n_migrate += streq(action, "migrate");
                n_shutdown += streq(action, "shutdown");
                n_blocked += streq(action, "blocked");
                if (arg_json) {
                        printf("%s{\"domain\":", n ? "," : "");
                        json_string(domain);
                        printf(",\"action\":");
                        json_string(action);
                        printf(",\"reason\":");
                        json_string(reason);
                        printf("}");
                } else if (table_add(t, NULL, domain) < 0 ||
                           table_add(t, action_color(action), action) < 0 ||
                           table_add(t, NULL, reason) < 0)
                        r = -ENOMEM;
                n++;
        }
        if (r < 0) {
                fprintf(stderr, "Could not read the plan: %s\n", strerror(-r));
                return 1;
        }
        if (arg_json) {
                printf("]\n");
                return 0;
        }
        table_print(t, stdout, screen.width, screen.color);
        printf("\n%u domain(s): %u to migrate, %u to shut down, %u blocked, %u left as they are. "
               "Nothing was changed.\n",
               n, n_migrate, n_shutdown, n_blocked, n - n_migrate - n_shutdown - n_blocked);
        return 0;
}

static int maintenance_enter(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        usec_t deadline = 0;
        int r;

        if (arg_deadline &&
            (parse_duration(arg_deadline, &deadline) < 0 || deadline < USEC_PER_SEC)) {
                fprintf(stderr,
                        "Invalid --deadline '%s': expected a duration of at least 1s, such as 30m, "
                        "2h or 1h30m.\n",
                        arg_deadline);
                return 1;
        }
        if (deadline)
                r = ctl_call(bus, MAINTENANCE_PATH, MAINTENANCE_IFACE, "Enter", &error, NULL,
                             "a{sv}", 1, "deadline", "t", (uint64_t)(deadline / USEC_PER_SEC));
        else
                r = ctl_call(bus, MAINTENANCE_PATH, MAINTENANCE_IFACE, "Enter", &error, NULL,
                             "a{sv}", 0);
        if (r < 0) {
                fprintf(stderr, "Could not enter maintenance: %s\n", error_message(&error, r));
                return 1;
        }
        printf("This node is disabled and drains. hostwardenctl maintenance status says when it "
               "is ready (safe to reboot), or what blocks it.\n");
        return 0;
}

/* Exit status of `maintenance status` (hostwardenctl(1)): 0 only when ready. */
enum {
        STATUS_READY = 0,
        STATUS_ERROR = 1,
        STATUS_DRAINING = 2,
        STATUS_BLOCKED = 3,
        STATUS_OFF = 4,
};

static int maintenance_status(sd_bus *bus)
{
        static const char *const names[] = { "State", NULL };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *blocked = NULL;
        _cleanup_free_ char *state = NULL;
        uint64_t deadline = 0;
        char when[64];
        unsigned n = 0;
        int r;

        r = ctl_get_strings(bus, MAINTENANCE_PATH, MAINTENANCE_IFACE, &error, names, &state);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, DEST, MAINTENANCE_PATH, MAINTENANCE_IFACE,
                                                "Deadline", &error, 't', &deadline);
        if (r >= 0)
                r = sd_bus_get_property(bus, DEST, MAINTENANCE_PATH, MAINTENANCE_IFACE, "Blocked",
                                        &error, &blocked, "a(ss)");
        if (r >= 0)
                r = sd_bus_message_enter_container(blocked, 'a', "(ss)");
        if (r < 0) {
                fprintf(stderr, "Could not read the maintenance state: %s\n",
                        error_message(&error, r));
                return STATUS_ERROR;
        }
        if (arg_json) {
                printf("{\"state\":");
                json_string(state);
                printf(",\"deadline\":%llu,\"blocked\":[", (unsigned long long)deadline);
        } else {
                printf("Maintenance of this node: %s%s\n", state,
                       streq(state, "ready")      ? " (no guest left running: safe to reboot)"
                       : streq(state, "draining") ? " (guests are leaving)"
                       : streq(state, "off")      ? " (not in maintenance)"
                                                  : "");
                if (deadline)
                        printf("Deadline: %s\n", format_realtime(deadline, when, sizeof(when)));
        }
        for (;;) {
                const char *domain, *why;

                r = sd_bus_message_read(blocked, "(ss)", &domain, &why);
                if (r <= 0)
                        break;
                if (arg_json) {
                        printf("%s{\"domain\":", n ? "," : "");
                        json_string(domain);
                        printf(",\"reason\":");
                        json_string(why);
                        printf("}");
                } else
                        printf("%s  %s: %s\n", n ? "" : "Blocked:\n", domain, why);
                n++;
        }
        if (arg_json)
                printf("]}\n");
        if (r < 0) {
                fprintf(stderr, "Could not read the blocked guests: %s\n", strerror(-r));
                return STATUS_ERROR;
        }
        return streq(state, "ready")      ? STATUS_READY
               : streq(state, "draining") ? STATUS_DRAINING
               : streq(state, "blocked")  ? STATUS_BLOCKED
                                          : STATUS_OFF;
}

static int maintenance_cancel(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = ctl_call(bus, MAINTENANCE_PATH, MAINTENANCE_IFACE, "Cancel", &error, NULL, "b",
                     (int)arg_abort);
        if (r < 0) {
                fprintf(stderr, "Could not cancel the maintenance: %s\n", error_message(&error, r));
                return 1;
        }
        printf("Maintenance cancelled: the node is enabled again; queued migrations of the drain "
               "were aborted, running ones %s.\n",
               arg_abort ? "are being aborted" : "finish");
        return 0;
}

static int maintenance_exit(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = ctl_call(bus, MAINTENANCE_PATH, MAINTENANCE_IFACE, "Exit", &error, NULL, "b",
                     (int)arg_return);
        if (r < 0) {
                fprintf(stderr, "Could not end the maintenance: %s\n", error_message(&error, r));
                return 1;
        }
        printf("Maintenance ended: the node is enabled again.%s\n",
               arg_return ? " The nodes running the guests that left migrate them back on their "
                            "next heartbeat, where they still fit (hostwardenctl migrations "
                            "there)."
                          : "");
        return 0;
}

int verb_maintenance(sd_bus *bus)
{
        const char *what = arg_rest[0];

        if (streq(what, "plan"))
                return maintenance_plan(bus);
        if (streq(what, "enter"))
                return maintenance_enter(bus);
        if (streq(what, "status"))
                return maintenance_status(bus);
        if (streq(what, "cancel"))
                return maintenance_cancel(bus);
        if (streq(what, "exit"))
                return maintenance_exit(bus);
        fprintf(stderr,
                "Unknown maintenance command '%s': expected plan, enter, status, cancel or exit.\n",
                what);
        return 1;
}
