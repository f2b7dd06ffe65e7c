/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading the arguments of Node methods: the a{sv} options loop (bus-args.h). */
#include "bus-args.h"

int bus_options_foreach(sd_bus_message *msg, BusOptionFunc f, void *userdata, sd_bus_error *error)
{
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key, *type;

                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(msg, NULL, &type);
                if (r < 0)
                        return r;
                r = f(msg, key, type, userdata, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        return r < 0 ? r : 0;
}
