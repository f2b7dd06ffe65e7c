/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* This node's firewall table (nft/): applied from [firewall], and its state as FirewallState
 * and CheckNode show it. */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "firewall.h"
#include "fw.h"
#include "log.h"
#include "paths.h"

const char *firewall_state_of(bool enable, const FwSpec *spec)
{
        _cleanup_(fw_closep) FwContext *fw = NULL;
        uint64_t digest = 0;
        int r;

        if (!enable)
                return "disabled";
        if (!fw_spec_active(spec))
                return "unconfigured";
        if (fw_open(&fw) < 0)
                return "unknown";
        r = fw_table_digest(fw, &digest);
        if (r < 0)
                return "unknown";
        if (r == 0)
                return "absent";
        return digest == fw_spec_digest(spec) ? "active" : "stale";
}

const char *firewall_state(Manager *m)
{
        FwSpec spec;

        fw_spec_from_config(m->config, &spec);
        return firewall_state_of(m->config->firewall.enable, &spec);
}

int firewall_apply(Manager *m, sd_bus_error *error)
{
        _cleanup_(fw_closep) FwContext *fw = NULL;
        bool changed = false;
        FwSpec spec;
        int r;

        if (!m->config->firewall.enable)
                return 0;
        fw_spec_from_config(m->config, &spec);
        r = fw_open(&fw);
        if (r >= 0)
                r = fw_spec_active(&spec) ? fw_apply(fw, &spec, &changed) : fw_remove(fw);
        if (r >= 0 && fw_spec_active(&spec))
                r = fw_blobs_write(hw_runtime_dir(), &spec);
        if (r < 0)
                return sd_bus_error_setf(error, HW_ERROR_FIREWALL,
                                         "Cannot apply the firewall table: %s", strerror(-r));
        if (changed)
                log_info("Firewall table inet %s applied", FW_TABLE);
        return 0;
}
