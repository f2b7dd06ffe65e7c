/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hostwarden-firewall: applies the hostwarden nftables table from the configuration and
 * opens or closes the migration window. Run at boot (hostwarden-firewall.service), by the
 * hook when the table needs re-creating, and by hand.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fw.h"
#include "log.h"
#include "paths.h"
#include "util.h"

static int load_config(Config **ret)
{
        ConfigDiags diags = { 0 };
        int r;

        r = config_load_without_secrets(hw_conf_dir(), &diags, ret);
        for (size_t i = 0; i < diags.n; i++) {
                char buf[1024];
                fprintf(stderr, "%s: %s\n",
                        diags.items[i].level == CONFIG_DIAG_ERROR ? "error" : "warning",
                        config_diag_format(&diags.items[i], buf, sizeof(buf)));
        }
        config_diags_clear(&diags);
        if (r == -EINVAL)
                fprintf(stderr,
                        "hostwarden-firewall: the configuration in %s has errors, nothing "
                        "changed\n",
                        hw_conf_dir());
        else if (r < 0)
                fprintf(stderr, "hostwarden-firewall: cannot load the configuration: %s\n",
                        strerror(-r));
        return r;
}

static int print_set(FwContext *ctx, const char *set)
{
        _cleanup_strv_free_ char **l = NULL;
        int r;

        r = fw_set_list(ctx, set, &l);
        if (r < 0)
                return r;
        printf("  %-20s", set);
        STRV_FOREACH (s, l)
                printf(" %s", *s);
        printf("%s\n", strv_length(l) == 0 ? " (empty)" : "");
        return 0;
}

static int status(FwContext *ctx, const FwSpec *spec)
{
        static const char *const sets[] = { FW_SET_SOURCES4, FW_SET_SOURCES6, FW_SET_OPEN4,
                                            FW_SET_OPEN6,    FW_SET_CONSOLE4, FW_SET_CONSOLE6 };
        uint64_t digest = 0;
        int r;

        r = fw_table_digest(ctx, &digest);
        if (r < 0)
                return r;
        if (r == 0) {
                printf("table inet %s: absent (run 'hostwarden-firewall apply')\n", FW_TABLE);
                return 0;
        }
        printf("table inet %s: present, %s\n", FW_TABLE,
               digest == fw_spec_digest(spec) ? "matches the configuration"
                                              : "differs from the configuration (run apply)");
        for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
                r = print_set(ctx, sets[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int main(int argc, char *argv[])
{
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(fw_closep) FwContext *ctx = NULL;
        const char *verb = argc > 1 ? argv[1] : "";
        bool changed = false;
        FwSpec spec;
        int r;

        log_setup("hostwarden-firewall");
        if (argc != 2 || streq(verb, "--help")) {
                fprintf(argc == 2 ? stdout : stderr,
                        "Usage: %s "
                        "apply|open-window|close-window|status|check|remove\n"
                        "  apply         create or replace table inet %s from the configuration\n"
                        "  open-window   let migration_sources reach the migration ports for "
                        "[firewall] open_window\n"
                        "  close-window  close the migration ports again\n"
                        "  status        show the table and its sets\n"
                        "  check         find other tables that drop our ports (exit 3 if any)\n"
                        "  check         find other tables that drop our ports (exit 3 if any)\n"
                        "  remove        delete the table\n",
                        program_invocation_short_name, FW_TABLE);
                return argc == 2 ? 0 : 2;
        }

        r = load_config(&config);
        if (r < 0)
                return 1;
        if (!config->firewall.enable && !streq(verb, "remove") && !streq(verb, "status") &&
            !streq(verb, "check")) {
                printf("[firewall] enable = no: leaving nftables alone\n");
                return 0;
        }
        fw_spec_from_config(config, &spec);

        r = fw_open(&ctx);
        if (r < 0) {
                fprintf(stderr, "hostwarden-firewall: cannot open a netfilter netlink socket: %s\n",
                        strerror(-r));
                return 1;
        }

        bool applying = streq(verb, "apply") || streq(verb, "open-window");

        if (!fw_spec_active(&spec) && applying) {
                /* sources removed from the configuration: undo what an earlier apply did */
                r = fw_remove(ctx);
                if (r >= 0)
                        printf("[firewall] migration_sources is empty: table inet %s removed, "
                               "nftables left alone\n",
                               FW_TABLE);
        } else if (applying) {
                /* the table as configured, and the hook's batches for it (fw-replay.h) */
                r = fw_apply(ctx, &spec, &changed);
                if (r >= 0)
                        r = fw_blobs_write(hw_runtime_dir(), &spec);
                if (r >= 0 && streq(verb, "apply"))
                        printf("table inet %s %s\n", FW_TABLE, changed ? "applied" : "unchanged");
                if (r >= 0 && streq(verb, "open-window"))
                        r = fw_window_open(ctx, &spec);
        } else if (streq(verb, "close-window")) {
                r = fw_window_close(ctx);
                if (r == -ENOENT)
                        r = 0; /* no table: nothing is open */
        } else if (streq(verb, "status"))
                r = status(ctx, &spec);
        else if (streq(verb, "check")) {
                _cleanup_strv_free_ char **findings = NULL;

                r = fw_check_conflicts(ctx, &spec, &findings);
                if (r >= 0) {
                        STRV_FOREACH (f, findings)
                                printf("conflict: %s\n", *f);
                        if (strv_length(findings) > 0)
                                return 3;
                        printf("no other table drops the migration ports\n");
                }
        } else if (streq(verb, "remove"))
                r = fw_remove(ctx);
        else {
                fprintf(stderr, "hostwarden-firewall: unknown command '%s' (see --help)\n", verb);
                return 2;
        }
        if (r < 0) {
                log_error_errno(r, "%s failed: %m", verb);
                return 1;
        }
        return 0;
}
