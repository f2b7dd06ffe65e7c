/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.hostwarden.Warden1.Node on /org/hostwarden/Warden1 (DESIGN.md §7). */
#include <errno.h>

#include "check.h"
#include "config.h"
#include "errors.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"

static int property_get_string(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error)
{
        Manager *m = userdata;
        const char *v = "";

        if (streq(property, "Name"))
                v = m->config->node.name;
        else if (streq(property, "Address"))
                v = m->config->node.address;
        else if (streq(property, "Version"))
                v = HW_VERSION;
        else if (streq(property, "Store"))
                v = store_backend_to_string(m->config->cluster.store);
        else if (streq(property, "FirewallState"))
                v = manager_firewall_state(m);
        return sd_bus_message_append(reply, "s", v ? v : "");
}

static int reload_authorized(Manager *m, sd_bus_message *msg, sd_bus_error *error)
{
        int r;

        r = manager_load_config(m, error);
        if (r < 0)
                return r;
        r = manager_apply_firewall(m, error);
        if (r < 0)
                return r;
        log_info("Configuration reloaded");
        (void)sd_bus_emit_properties_changed(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "Name",
                                             "Address", "Store", "FirewallState", NULL);
        return sd_bus_reply_method_return(msg, NULL);
}

/* Reload(): re-read the configuration, re-apply the firewall. [manage-node] */
static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return polkit_authorize(userdata, msg, reload_authorized, error);
}

/* CheckNode() -> a(sss): readiness findings; read-only, no authorization. */
static int method_check_node(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = check_node(userdata, reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

const sd_bus_vtable node_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Address", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Version", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Store", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FirewallState", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckNode", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sss)", findings),
                                method_check_node, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};
