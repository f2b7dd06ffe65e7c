/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fw-replay-once open|close: what the hook does to the migration window, alone in a
 * process of its own (configuration from HOSTWARDEN_CONF_DIR, batches prepared by
 * hostwarden-firewall in HOSTWARDEN_RUNTIME_DIR). For bench/fw-window.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fw-replay.h"
#include "fw.h"
#include "paths.h"

int main(int argc, char *argv[])
{
        _cleanup_(config_freep) Config *config = NULL;
        ConfigDiags diags = { 0 };
        FwWindow w;
        FwSpec spec;
        int r;

        if (argc != 2 || (!streq(argv[1], "open") && !streq(argv[1], "close"))) {
                fprintf(stderr, "usage: %s open|close\n", argv[0]);
                return 2;
        }
        w = streq(argv[1], "open") ? FW_WINDOW_OPEN : FW_WINDOW_CLOSE;
        r = config_load(hw_conf_dir(), &diags, &config);
        config_diags_clear(&diags);
        if (r < 0)
                return 1;
        fw_spec_from_config(config, &spec);
        r = fw_replay(hw_runtime_dir(), fw_blob_name(w), fw_spec_digest(&spec),
                      w == FW_WINDOW_CLOSE);
        if (r < 0) {
                fprintf(stderr, "fw-replay-once: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
