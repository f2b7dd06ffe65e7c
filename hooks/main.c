/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hostwarden-hook: libvirt runs it as /etc/libvirt/hooks/qemu.d/50-hostwarden NAME OP SUBOP
 * EXTRA, synchronously, with the domain XML on stdin. It never calls libvirt (libvirtd is
 * waiting for it) and never touches shared storage; it exits 0 unless it deliberately
 * refuses (DESIGN.md §5).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "hook.h"
#include "log.h"
#include "paths.h"
#include "util.h"

#define HOOK_MAX_INPUT (64U * 1024U * 1024U)

static void log_config_diags(const ConfigDiags *diags)
{
        for (size_t i = 0; i < diags->n; i++) {
                char buf[1024];
                const ConfigDiag *d = &diags->items[i];

                /* Warnings are the daemon's to report once; the hook runs for every event. */
                log_fields(d->level == CONFIG_DIAG_ERROR ? LOG_ERR : LOG_DEBUG, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_CONFIG_BAD }), "%s",
                           config_diag_format(d, buf, sizeof(buf)));
        }
}

int main(int argc, char *argv[])
{
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *input = NULL;
        ConfigDiags diags = { 0 };
        size_t input_size = 0;
        const char *bad;
        int r;

        log_setup("hostwarden-hook");

        if (argc == 2 && streq(argv[1], "--version")) {
                printf("hostwarden-hook %s\n", HW_VERSION);
                return 0;
        }
        if (argc < 4) {
                fprintf(stderr,
                        "Usage: %s DOMAIN OP SUBOP [EXTRA] < domain.xml\n"
                        "A libvirt qemu hook: libvirtd runs it, see hostwarden-hook(8).\n",
                        program_invocation_short_name);
                return 2;
        }

        /* Read all of stdin even when the operation does not need it, so libvirt never
         * writes into a closed pipe. */
        r = read_full_fd(STDIN_FILENO, HOOK_MAX_INPUT, &input, &input_size);
        if (r < 0) {
                log_error_errno(r, "%s %s for '%s': cannot read the domain XML from stdin: %m",
                                argv[2], argv[3], argv[1]);
                return 0;
        }

        bad = paths_check();
        if (bad)
                log_error("%s is not an absolute path, ignoring it", bad);

        r = config_load_without_secrets(hw_conf_dir(), &diags, &config);
        log_config_diags(&diags);
        config_diags_clear(&diags);
        if (r < 0 && r != -EINVAL)
                log_error_errno(r, "Failed to load the configuration: %m");
        if (r < 0)
                log_error("Configuration in %s is invalid: console listen addresses are left "
                          "unchanged until it is fixed",
                          hw_conf_dir());

        HookContext ctx = {
                .config = config,
                .runtime_dir = hw_runtime_dir(),
                .domain = argv[1],
                .op = argv[2],
                .subop = argv[3],
                .extra = argc > 4 ? argv[4] : "-",
                .input = input,
                .input_size = input_size,
                .out = stdout,
                .err = stderr,
        };
        r = hook_dispatch(&ctx);
        hook_context_done(&ctx);
        return r;
}
