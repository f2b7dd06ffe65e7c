/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl fence, evacuate, rebuild. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "util.h"

/* Fence agents may take a while (fence_ipmilan waits for the power state to change). */
#define FENCE_CALL_TIMEOUT (150 * USEC_PER_SEC)

/* fence NODE status|off|on */
int verb_fence(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *node = arg_rest[0], *action = arg_rest[1], *power;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, NODE_IFACE, "Fence");
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, arg_ask_password);
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", node, action);
        if (r >= 0)
                r = sd_bus_call(bus, m, FENCE_CALL_TIMEOUT, &error, &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &power);
        if (r < 0) {
                fprintf(stderr, "Could not fence %s (%s): %s\n", node, action,
                        error_message(&error, r));
                return 1;
        }
        if (arg_json) {
                printf("{\"node\":");
                json_string(node);
                printf(",\"power\":");
                json_string(power);
                printf("}\n");
        } else
                printf("%s: power %s%s\n", node, power,
                       streq(power, "off") ? " (fenced)" : "");
        return 0;
}
