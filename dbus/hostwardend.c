/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardend: the org.hostwarden.Warden1 system service (DESIGN.md §7). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "firewall.h"
#include "log.h"
#include "manager.h"
#include "migration.h"
#include "reconcile.h"
#include "self-fence.h"
#include "store-attach.h"

int main(int argc, char *argv[])
{
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sigset_t mask;
        int r;

        log_setup("hostwardend");
        if (argc > 1) {
                if (streq(argv[1], "--version")) {
                        printf("hostwardend %s\n", HW_VERSION);
                        return 0;
                }
                fprintf(stderr,
                        "Usage: %s [--version]\nThe hostwarden system service; see "
                        "hostwardend(8).\n",
                        program_invocation_short_name);
                return 2;
        }

        /* It holds the BMC passwords (fence_options): no core dump of it (LimitCORE=0 in the
         * unit too), and its memory is not for others (docs/daemon.md, "Secrets"). Callers
         * are asked about through polkit by their bus name, and systemd, journald and
         * dbus-daemon read what they need of its /proc as root. */
        r = process_forbid_core_dumps();
        if (r < 0)
                log_warning_errno(r, "Cannot turn core dumps off: %m");

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD); /* notify.d children are reaped by the event loop */
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = manager_new(&m);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the manager: %m"), 1;
        r = manager_load_config(m, &error);
        if (r < 0) {
                log_error("Cannot start: %s", error.message ? error.message : strerror(-r));
                return 1;
        }
        r = firewall_apply(m, &error);
        if (r < 0)
                log_error("%s", error.message ? error.message : strerror(-r)); /* serve anyway */
        sd_bus_error_free(&error);

        (void)sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL);
        (void)sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL);

        r = manager_startup(m);
        if (r < 0)
                return 1;
        self_fence_resume(m); /* a previous run's promise, before the store is read */
        /* A first attempt before READY, so that libvirtd (ordered after us) finds the deny
         * list in place and its autostarts go through at once; while the store cannot be
         * read, the hook refuses every start and the attempts go on in the event loop. */
        r = store_attach_start(m);
        if (r < 0)
                return 1;

        (void)sd_notify(false, "READY=1");
        log_info("hostwardend %s serving on node '%s'", HW_VERSION, m->config->node.name);
        r = sd_event_loop(m->event);
        (void)sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), 1;
        return 0;
}
