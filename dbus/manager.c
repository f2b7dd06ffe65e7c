/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fw.h"
#include "log.h"
#include "manager.h"
#include "paths.h"
#include "polkit.h"

int manager_new(Manager **ret)
{
        Manager *m;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        r = sd_event_default(&m->event);
        if (r < 0) {
                free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        auth_queries_free(m);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        config_free(m->config);
        free(m);
        return NULL;
}

int manager_load_config(Manager *m, sd_bus_error *error)
{
        ConfigDiags diags = { 0 };
        Config *c = NULL;
        char *all = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        r = config_load(hw_conf_dir(), &diags, &c);
        f = open_memstream(&all, &size);
        for (size_t i = 0; i < diags.n; i++) {
                char buf[1024];
                const ConfigDiag *d = &diags.items[i];

                config_diag_format(d, buf, sizeof(buf));
                log_fields(d->level == CONFIG_DIAG_ERROR ? LOG_ERR : LOG_WARNING, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_CONFIG_BAD }), "%s", buf);
                if (f && d->level == CONFIG_DIAG_ERROR)
                        fprintf(f, "%s%s", ftell(f) > 0 ? "; " : "", buf);
        }
        if (f)
                fclose(f);
        config_diags_clear(&diags);
        if (r < 0) {
                if (r == -EINVAL)
                        sd_bus_error_setf(error, HW_ERROR_CONFIG_INVALID,
                                          "The configuration in %s has errors, nothing changed: %s",
                                          hw_conf_dir(), all ? all : "");
                free(all);
                return r;
        }
        free(all);
        config_free(m->config);
        m->config = c;
        return 0;
}

const char *manager_firewall_state(Manager *m)
{
        _cleanup_(fw_closep) FwContext *fw = NULL;
        uint64_t digest = 0;
        FwSpec spec;
        int r;

        if (!m->config->firewall.enable)
                return "disabled";
        fw_spec_from_config(m->config, &spec);
        if (!fw_spec_active(&spec))
                return "unconfigured";
        if (fw_open(&fw) < 0)
                return "unknown";
        r = fw_table_digest(fw, &digest);
        if (r < 0)
                return "unknown";
        if (r == 0)
                return "absent";
        return digest == fw_spec_digest(&spec) ? "active" : "stale";
}

int manager_apply_firewall(Manager *m, sd_bus_error *error)
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

int manager_startup(Manager *m)
{
        int r;

        r = sd_bus_default_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_add_object_vtable(m->bus, NULL, HW_BUS_PATH, HW_NODE_INTERFACE, node_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to export %s: %m", HW_NODE_INTERFACE);
        r = sd_bus_request_name(m->bus, HW_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to take the bus name %s: %m", HW_BUS_NAME);
        return 0;
}
