/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The anchor for bench/dbus-roundtrip: an sd-bus service whose one method does nothing. */
#include <stdio.h>

#include <systemd/sd-bus.h>

static int method_noop(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Noop", "", "", method_noop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int main(void)
{
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_default_system(&bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, "/org/hostwarden/BenchNoop",
                                             "org.hostwarden.BenchNoop", vtable, NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, "org.hostwarden.BenchNoop", 0);
        for (; r >= 0;) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
        }
        fprintf(stderr, "dbus-noop: %d\n", r);
        return 1;
}
