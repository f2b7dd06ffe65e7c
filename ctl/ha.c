/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl ha DOMAIN [off|restart [--priority N]]: a guest's HA setting (SetHA, GetHA). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-bus.h>

#include "ctl.h"
#include "ha.h"
#include "util.h"

/* The guest's setting as GetHA says it. */
static int show(sd_bus *bus, const char *dom)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *mode;
        int32_t priority;
        int own, r;

        r = ctl_call(bus, PATH, NODE_IFACE, "GetHA", &error, &reply, "s", dom);
        if (r >= 0)
                r = sd_bus_message_read(reply, "sib", &mode, &priority, &own);
        if (r < 0) {
                fprintf(stderr, "Could not read the HA setting of %s: %s\n", dom,
                        error_message(&error, r));
                return 1;
        }
        if (arg_json) {
                printf("{\"domain\":");
                json_string(dom);
                printf(",\"mode\":");
                json_string(mode);
                printf(",\"priority\":%d,\"own\":%s}\n", (int)priority, own ? "true" : "false");
        } else
                printf("%s: ha %s, priority %d (%s)\n", dom, mode, (int)priority,
                       own ? "its own setting" : "the default: [recovery] default_ha");
        return 0;
}

int verb_ha(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *dom = arg_rest[0];
        long long priority = HA_PRIORITY_DEFAULT;
        int r;

        if (arg_n_rest < 2) {
                if (arg_priority) {
                        fprintf(stderr,
                                "--priority goes with a mode: 'ha %s off|restart "
                                "--priority N'.\n",
                                dom);
                        return 1;
                }
                return show(bus, dom);
        }
        if (!streq(arg_rest[1], "off") && !streq(arg_rest[1], "restart")) {
                fprintf(stderr, "Expected 'off' or 'restart', got '%s'.\n", arg_rest[1]);
                return 1;
        }
        if (arg_priority) {
                char *end = NULL;

                errno = 0;
                priority = strtoll(arg_priority, &end, 10);
                if (errno || end == arg_priority || *end || !ha_priority_is_valid(priority)) {
                        fprintf(stderr, "--priority=%s: expected a number from %d to %d.\n",
                                arg_priority, HA_PRIORITY_MIN, HA_PRIORITY_MAX);
                        return 1;
                }
        }
        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, NODE_IFACE, "SetHA");
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, arg_ask_password);
        if (r >= 0)
                r = sd_bus_message_append(m, "ssi", dom, arg_rest[1], (int32_t)priority);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &error, NULL);
        if (r < 0) {
                fprintf(stderr, "Could not set the HA setting of %s: %s\n", dom,
                        error_message(&error, r));
                return 1;
        }
        return 0;
}
