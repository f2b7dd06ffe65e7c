/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl maintenance plan [--json]: Maintenance.Plan(), what maintenance would do to
 * every domain of this node and why (docs/maintenance.md). */
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

int verb_maintenance(sd_bus *bus)
{
        const char *what = arg_rest[0];

        if (streq(what, "plan"))
                return maintenance_plan(bus);
        fprintf(stderr, "Unknown maintenance command '%s': expected plan.\n", what);
        return 1;
}
