/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SetHA and GetHA: a guest's HA setting in its libvirt metadata (ha-methods.h). */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "domxml.h"
#include "errors.h"
#include "ha-methods.h"
#include "ha.h"
#include "job.h"
#include "log.h"
#include "reconcile.h"
#include "util.h"
#include "virt.h"

typedef struct HaCall {
        char *dom;
        HaMode mode;            /* SetHA's; GetHA: the configuration's default_ha when it started */
        int priority;           /* SetHA's */
        HaSetting found;        /* GetHA's answer */
        char *name;             /* the domain's name, for the journal */
        const char *error_name; /* NULL: done */
        char error_message[768];
} HaCall;

static void ha_call_free(void *userdata)
{
        HaCall *c = userdata;

        if (!c)
                return;
        free(c->dom);
        free(c->name);
        free(c);
}

int ha_check_args(const char *dom, const char *mode, int priority, HaMode *ret_mode,
                  sd_bus_error *error)
{
        if (isempty(dom) || strlen(dom) > 256 || strpbrk(dom, "\n\r/"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a domain name or UUID of this node, got '%s'",
                                         dom);
        if (!ret_mode)
                return 0;
        *ret_mode = ha_mode_from_string(mode);
        if (*ret_mode < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected mode 'off' or 'restart', got '%s'", mode);
        if (!ha_priority_is_valid(priority))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a priority from %d to %d, got %d",
                                         HA_PRIORITY_MIN, HA_PRIORITY_MAX, priority);
        return 0;
}

_printf_(3, 4) static void fail(HaCall *c, const char *name, const char *fmt, ...)
{
        va_list ap;

        c->error_name = name;
        va_start(ap, fmt);
        vsnprintf(c->error_message, sizeof(c->error_message), fmt, ap);
        va_end(ap);
}

/* The domain c->dom names here, or NULL with c's error set. */
static virDomainPtr lookup(Manager *m, HaCall *c, virConnectPtr *ret_conn)
{
        virConnectPtr conn = NULL;
        virDomainPtr d = NULL;
        const char *name;
        char err[512];

        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                fail(c, HW_ERROR_LIBVIRT, "Cannot connect to libvirt at %s: %s", virt_uri(m->virt),
                     err);
                return NULL;
        }
        if (uuid_is_valid(c->dom))
                d = virDomainLookupByUUIDString(conn, c->dom);
        if (!d)
                d = virDomainLookupByName(conn, c->dom);
        if (!d) {
                fail(c, HW_ERROR_NO_SUCH_DOMAIN,
                     "No domain '%s' on this node (%s): ListDomains() shows this node's domains",
                     c->dom, m->config->node.name);
                virConnectClose(conn);
                return NULL;
        }
        name = virDomainGetName(d);
        c->name = strdup(name ? name : c->dom);
        *ret_conn = conn;
        return d;
}

/* Is a migration of active domain d under way, out or in? A job whose operation says so, or
 * a guest paused for one (an incoming migration's job is the source's to tell). A driver that
 * keeps no jobs (the test driver) has none. */
static bool migrating(virDomainPtr d)
{
        virTypedParameterPtr params = NULL;
        int type = VIR_DOMAIN_JOB_NONE, nparams = 0, op = 0, state, reason;
        bool r = false;

        if (virDomainGetJobStats(d, &type, &params, &nparams, 0) == 0) {
                if (virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &op) == 1)
                        r = op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT ||
                            op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN;
                else
                        r = type != VIR_DOMAIN_JOB_NONE;
                virTypedParamsFree(params, nparams);
                if (r)
                        return true;
        }
        return virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED &&
               (reason == VIR_DOMAIN_PAUSED_MIGRATION || reason == VIR_DOMAIN_PAUSED_POSTCOPY);
}

/* One definition's element (flags: VIR_DOMAIN_AFFECT_CONFIG or _LIVE) read, merged, written. */
static int set_one(HaCall *c, virDomainPtr d, unsigned flags)
{
        _cleanup_free_ char *xml = NULL;
        char *current;
        int r;

        current = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, HW_DOMAIN_XMLNS, flags);
        if (!current) {
                virErrorPtr e = virGetLastError();

                if (!e || e->code != VIR_ERR_NO_DOMAIN_METADATA) {
                        fail(c, HW_ERROR_LIBVIRT, "Cannot read the metadata of %s: %s", c->name,
                             virt_last_error("unknown error"));
                        return -EIO;
                }
        }
        r = ha_metadata_merge(current, c->mode, c->priority, &xml);
        free(current);
        if (r == -EOPNOTSUPP || r == -EBADMSG) {
                fail(c, SD_BUS_ERROR_NOT_SUPPORTED,
                     "The <hostwarden:guest> element of %s has child elements or attributes of "
                     "another namespace, which SetHA would lose: edit it with virsh metadata "
                     "--key hostwarden --uri " HW_DOMAIN_XMLNS " --edit",
                     c->name);
                return r;
        }
        if (r < 0) {
                fail(c, SD_BUS_ERROR_NO_MEMORY, "Cannot format the HA setting of %s", c->name);
                return r;
        }
        if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, xml, "hostwarden", HW_DOMAIN_XMLNS,
                                 flags) < 0) {
                fail(c, HW_ERROR_LIBVIRT, "Cannot set the metadata of %s: %s", c->name,
                     virt_last_error("unknown error"));
                return -EIO;
        }
        return 0;
}

static void set_work(Manager *m, void *userdata)
{
        HaCall *c = userdata;
        virConnectPtr conn = NULL;
        virDomainPtr d;
        int active, persistent;

        d = lookup(m, c, &conn);
        if (!d)
                return;
        active = virDomainIsActive(d);
        persistent = virDomainIsPersistent(d);
        if (active < 0 || persistent < 0)
                fail(c, HW_ERROR_LIBVIRT, "Cannot read the state of %s: %s", c->name,
                     virt_last_error("unknown error"));
        else if (active && migrating(d))
                /* the destination gets the definition the migration started with */
                fail(c, HW_ERROR_BUSY,
                     "%s is migrating: set its HA setting once the migration ended, on the node "
                     "that runs it then",
                     c->name);
        else if ((!persistent || set_one(c, d, VIR_DOMAIN_AFFECT_CONFIG) >= 0) && active)
                (void)set_one(c, d, VIR_DOMAIN_AFFECT_LIVE);
        virDomainFree(d);
        virConnectClose(conn);
}

static void set_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        HaCall *c = userdata;

        if (c->error_name)
                (void)sd_bus_reply_method_errorf(msg, c->error_name, "%s", c->error_message);
        else {
                log_fields(LOG_INFO, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_HA_SET },
                                      { "HOSTWARDEN_DOMAIN", c->name }),
                           "HA setting of %s: %s, priority %d", c->name, ha_mode_to_string(c->mode),
                           c->priority);
                (void)sd_bus_reply_method_return(msg, NULL);
                reconcile_schedule(m); /* the store's copy of the definition follows */
        }
        ha_call_free(c);
}

int ha_set_start(Manager *m, sd_bus_message *msg, const char *dom, HaMode mode, int priority,
                 sd_bus_error *error)
{
        HaCall *c;
        int r;

        c = calloc(1, sizeof(HaCall));
        if (!c)
                return -ENOMEM;
        c->mode = mode;
        c->priority = priority;
        c->dom = strdup(dom);
        r = c->dom ? job_start(m, msg, set_work, set_done, c) : -ENOMEM;
        if (r < 0) {
                ha_call_free(c);
                return r;
        }
        return 1;
}

static void get_work(Manager *m, void *userdata)
{
        HaCall *c = userdata;
        virConnectPtr conn = NULL;
        bool bad = false;
        virDomainPtr d;
        char *xml;
        int persistent;

        d = lookup(m, c, &conn);
        if (!d)
                return;
        /* the persistent definition: what a restart, a migration and a rebuild take */
        persistent = virDomainIsPersistent(d);
        xml = virDomainGetXMLDesc(d, persistent > 0 ? VIR_DOMAIN_XML_INACTIVE : 0);
        if (!xml)
                fail(c, HW_ERROR_LIBVIRT, "Cannot read the definition of %s: %s", c->name,
                     virt_last_error("unknown error"));
        else if (ha_setting_from_xml(xml, c->mode, &c->found, &bad) < 0)
                fail(c, HW_ERROR_LIBVIRT, "Cannot parse the definition of %s", c->name);
        else if (bad)
                log_warning("The HA setting in the metadata of %s is not valid (ha: off or "
                            "restart; priority: %d to %d): it counts as not set",
                            c->name, HA_PRIORITY_MIN, HA_PRIORITY_MAX);
        free(xml);
        virDomainFree(d);
        virConnectClose(conn);
}

static void get_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        HaCall *c = userdata;

        if (c->error_name)
                (void)sd_bus_reply_method_errorf(msg, c->error_name, "%s", c->error_message);
        else
                (void)sd_bus_reply_method_return(msg, "sib", ha_mode_to_string(c->found.mode),
                                                 (int32_t)c->found.priority, c->found.mode_set);
        ha_call_free(c);
}

int ha_get_start(Manager *m, sd_bus_message *msg, const char *dom, sd_bus_error *error)
{
        HaCall *c;
        int r;

        c = calloc(1, sizeof(HaCall));
        if (!c)
                return -ENOMEM;
        c->mode = m->config->recovery.default_ha;
        c->dom = strdup(dom);
        if (!c->dom) {
                ha_call_free(c);
                return -ENOMEM;
        }
        r = job_start_limited(m, msg, get_work, get_done, c, error);
        if (r < 0) {
                ha_call_free(c);
                return r;
        }
        return 1;
}
