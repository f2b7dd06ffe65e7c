/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hostwardenctl: the admin CLI on org.hostwarden.Warden1 (machinectl-like). Listings take
 * --json; exit status 0 on success, 1 on failure (for check: when a finding is an error).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "config.h"
#include "ctl.h"
#include "paths.h"
#include "status.h"
#include "util.h"

bool arg_json = false;
bool arg_ask_password = true;
bool arg_block = false;
bool arg_wait = false;
bool arg_cold = false;
bool arg_watch = false;
bool arg_live = false;
bool arg_insist = false;
const char *arg_to = NULL;
const char *arg_from = NULL;
const char *arg_name = NULL;
const char *arg_reason = NULL;
bool arg_adopt = false;
const char *arg_since;
bool arg_dry_run;
const char *arg_priority = NULL;
uint64_t arg_bandwidth = 0;
const char *arg_policy = NULL;
const char *arg_deadline = NULL;
bool arg_abort = false;
bool arg_return = false;
char **arg_rest = NULL;
int arg_n_rest = 0;

const char *error_message(const sd_bus_error *e, int r)
{
        if (e && e->message)
                return e->message;
        return strerror(r < 0 ? -r : r);
}

/* A JSON string literal of s on stdout. */
void json_string(const char *s)
{
        putchar('"');
        for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

int ctl_call(sd_bus *bus, const char *path, const char *iface, const char *member,
             sd_bus_error *error, sd_bus_message **reply, const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, path, iface, member);
        /* a watch must not start a hostwardend the operator stopped (bus activation) */
        if (r >= 0 && arg_watch)
                r = sd_bus_message_set_auto_start(m, false);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, error, reply);
        return r;
}

int ctl_get_strings(sd_bus *bus, const char *path, const char *iface, sd_bus_error *error,
                    const char *const *names, char **values)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        size_t n = 0;
        int r;

        while (names[n])
                n++;
        r = ctl_call(bus, path, "org.freedesktop.DBus.Properties", "GetAll", error, &reply, "s",
                     iface);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name, *v, *contents = NULL;
                size_t i;

                r = sd_bus_message_read(reply, "s", &name);
                for (i = 0; r >= 0 && i < n; i++)
                        if (streq(names[i], name))
                                break;
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, NULL, &contents);
                if (r < 0)
                        break;
                if (i < n && streq_ptr(contents, "s")) {
                        r = sd_bus_message_read(reply, "v", "s", &v);
                        if (r < 0)
                                break;
                        free(values[i]);
                        values[i] = strdup(v);
                        if (!values[i])
                                r = -ENOMEM;
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (!values[i]) {
                        values[i] = strdup("");
                        if (!values[i])
                                r = -ENOMEM;
                }
        return r < 0 ? r : 0;
}

Config *ctl_load_config(bool store_secrets)
{
        ConfigDiags diags = {};
        Config *c = NULL;
        char buf[1024];
        int r;

        r = store_secrets ? config_load_with_store_secrets(hw_conf_dir(), &diags, &c)
                          : config_load_without_secrets(hw_conf_dir(), &diags, &c);
        for (size_t i = 0; i < diags.n; i++)
                fprintf(stderr, "%s\n", config_diag_format(&diags.items[i], buf, sizeof(buf)));
        config_diags_clear(&diags);
        if (r < 0 || !c) {
                fprintf(stderr, "Cannot read the configuration in %s.\n", hw_conf_dir());
                config_free(c);
                return NULL;
        }
        return c;
}

static int get_string(sd_bus *bus, const char *property, char **ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(bus, DEST, PATH, NODE_IFACE, property, &error, ret);
        if (r < 0)
                fprintf(stderr, "Could not get property %s: %s\n", property,
                        error_message(&error, r));
        return r;
}

/* A property that an older hostwardend may not have: 0 (or "") when it cannot be read. */
static uint64_t get_usec_or_zero(sd_bus *bus, const char *property)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        if (sd_bus_get_property_trivial(bus, DEST, PATH, NODE_IFACE, property, &error, 't', &v) < 0)
                return 0;
        return v;
}

static int verb_status(sd_bus *bus)
{
        static const char *const props[] = { "Name",           "Address",       "Version",
                                             "Store",          "FirewallState", "State",
                                             "DisabledReason", "ForcedDownBy",  "FenceState",
                                             "StoreState",     "StoreDetail" };
        static const char *const times[] = { "ForcedDownSince", "FenceTime" };
        char *values[ELEMENTSOF(props)] = { NULL };
        uint64_t usecs[ELEMENTSOF(times)] = { 0 };
        int r = 0;

        /* the first ones every hostwardend has; the forced-down and fence state may be
         * missing from an older one */
        for (size_t i = 0; i < 7 && r >= 0; i++)
                r = get_string(bus, props[i], &values[i]);
        for (size_t i = 7; i < ELEMENTSOF(props) && r >= 0; i++)
                if (sd_bus_get_property_string(bus, DEST, PATH, NODE_IFACE, props[i], NULL,
                                               &values[i]) < 0)
                        values[i] = strdup("");
        for (size_t i = 0; i < ELEMENTSOF(times) && r >= 0; i++)
                usecs[i] = get_usec_or_zero(bus, times[i]);
        if (r >= 0) {
                if (arg_json) {
                        printf("{");
                        for (size_t i = 0; i < ELEMENTSOF(props); i++) {
                                printf("%s\"%s\":", i ? "," : "", props[i]);
                                json_string(values[i]);
                        }
                        for (size_t i = 0; i < ELEMENTSOF(times); i++)
                                printf(",\"%s\":%llu", times[i], (unsigned long long)usecs[i]);
                        printf("}\n");
                } else {
                        printf("        Node: %s\n", values[0]);
                        printf("     Address: %s\n", isempty(values[1]) ? "(not set)" : values[1]);
                        printf("     Version: %s\n", values[2]);
                        printf("       Store: %s, %s\n", values[3], values[9]);
                        if (!streq(values[9], "attached") && !isempty(values[10]))
                                printf("              %s\n", values[10]);
                        printf("    Firewall: %s\n", values[4]);
                        status_print_state(stdout, &(NodeStatus){
                                                           .name = values[0],
                                                           .state = values[5],
                                                           .disabled_reason = values[6],
                                                           .forced_down_by = values[7],
                                                           .forced_down_since = usecs[0],
                                                           .fence_state = values[8],
                                                           .fence_time = usecs[1],
                                                   });
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(props); i++)
                free(values[i]);
        return r < 0 ? 1 : 0;
}

static int verb_check(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *severity, *code, *message;
        unsigned errors = 0, n = 0;
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "CheckNode", &error, &reply, NULL);
        if (r < 0) {
                fprintf(stderr, "Could not check the node: %s\n", error_message(&error, r));
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        if (r < 0)
                goto bad;
        if (arg_json)
                printf("[");
        else
                printf("%-8s %-18s %s\n", "SEVERITY", "CHECK", "MESSAGE");
        while ((r = sd_bus_message_read(reply, "(sss)", &severity, &code, &message)) > 0) {
                if (streq(severity, "error"))
                        errors++;
                if (arg_json) {
                        printf("%s{\"severity\":", n ? "," : "");
                        json_string(severity);
                        printf(",\"check\":");
                        json_string(code);
                        printf(",\"message\":");
                        json_string(message);
                        printf("}");
                } else
                        printf("%-8s %-18s %s\n", severity, code, message);
                n++;
        }
        if (r < 0)
                goto bad;
        if (arg_json)
                printf("]\n");
        else
                printf("\n%u check(s), %u error(s).\n", n, errors);
        return errors > 0 ? 1 : 0;
bad:
        fprintf(stderr, "Could not read the findings: %s\n", strerror(-r));
        return 1;
}

static int verb_reload(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_strv_free_ char **warnings = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, DEST, PATH, NODE_IFACE, "Reload");
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(call, arg_ask_password);
        if (r >= 0)
                r = sd_bus_call(bus, call, 0, &error, NULL);
        if (r < 0) {
                fprintf(stderr, "Could not reload: %s\n", error_message(&error, r));
                return 1;
        }
        /* taken; what it warned of (a misspelt key is ignored) is the operator's to see */
        sd_bus_error_free(&error);
        r = sd_bus_get_property_strv(bus, DEST, PATH, NODE_IFACE, "ConfigWarnings", &error,
                                     &warnings);
        if (r < 0) {
                fprintf(stderr, "Reloaded, but could not read its warnings: %s\n",
                        error_message(&error, r));
                return 1;
        }
        STRV_FOREACH (w, warnings)
                fprintf(stderr, "warning: %s\n", *w);
        return 0;
}

/* A method call with the caller's password policy (polkit may ask). */
static int call(sd_bus *bus, const char *member, const char *what, const char *types, ...)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, NODE_IFACE, member);
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, arg_ask_password);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &error, NULL);
        if (r < 0) {
                fprintf(stderr, "Could not %s: %s\n", what, error_message(&error, r));
                return 1;
        }
        return 0;
}

static int verb_disable(sd_bus *bus)
{
        return call(bus, "Disable", "disable the node", "s", arg_rest[0]);
}

static int verb_enable(sd_bus *bus)
{
        return call(bus, "Enable", "enable the node", NULL);
}

/* --insist: ForceDownWithOptions, which hostwardend refuses without it for a node whose
 * heartbeat is fresh (and for this node's own force-up) */
static int force(sd_bus *bus, bool down, const char *what)
{
        if (arg_insist)
                return call(bus, "ForceDownWithOptions", what, "sba{sv}", arg_rest[0], down, 1,
                            "insist", "b", 1);
        return call(bus, "ForceDown", what, "sb", arg_rest[0], down);
}

static int verb_force_down(sd_bus *bus)
{
        return force(bus, true, "declare the node down");
}

static int verb_force_up(sd_bus *bus)
{
        return force(bus, false, "clear the node's forced-down state");
}

static int verb_nodes(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name, *address, *state, *fence, *detail;
        uint64_t since;
        unsigned n = 0;
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "ListNodes", &error, &reply, NULL);
        if (r < 0) {
                fprintf(stderr, "Could not list the nodes: %s\n", error_message(&error, r));
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ssssst)");
        if (r < 0)
                return 1;
        if (arg_json)
                printf("[");
        else
                printf("%-20s %-24s %-12s %-8s %s\n", "NODE", "ADDRESS", "STATE", "FENCE", "STORE");
        while ((r = sd_bus_message_read(reply, "(ssssst)", &name, &address, &state, &fence, &detail,
                                        &since)) > 0) {
                if (arg_json) {
                        printf("%s{\"name\":", n ? "," : "");
                        json_string(name);
                        printf(",\"address\":");
                        json_string(address);
                        printf(",\"state\":");
                        json_string(state);
                        printf(",\"fence\":");
                        json_string(fence);
                        printf(",\"store\":");
                        json_string(detail);
                        printf(",\"since\":%llu}", (unsigned long long)since);
                } else
                        printf("%-20s %-24s %-12s %-8s %s\n", name,
                               isempty(address) ? "-" : address, state, fence, detail);
                n++;
        }
        if (arg_json)
                printf("]\n");
        else
                printf("\n%u node(s) listed.\n", n);
        return r < 0 ? 1 : 0;
}

static int verb_domains(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *uuid, *name, *state, *owner;
        unsigned n = 0;
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "ListDomains", &error, &reply, NULL);
        if (r < 0) {
                fprintf(stderr, "Could not list the domains: %s\n", error_message(&error, r));
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ssss)");
        if (r < 0)
                return 1;
        if (arg_json)
                printf("[");
        else
                printf("%-36s %-24s %-12s %s\n", "UUID", "NAME", "STATE", "OWNER");
        while ((r = sd_bus_message_read(reply, "(ssss)", &uuid, &name, &state, &owner)) > 0) {
                if (arg_json) {
                        printf("%s{\"uuid\":", n ? "," : "");
                        json_string(uuid);
                        printf(",\"name\":");
                        json_string(name);
                        printf(",\"state\":");
                        json_string(state);
                        printf(",\"owner\":");
                        json_string(owner);
                        printf("}");
                } else
                        printf("%-36s %-24s %-12s %s\n", uuid, name, state,
                               isempty(owner) ? "-" : owner);
                n++;
        }
        if (arg_json)
                printf("]\n");
        else
                printf("\n%u domain(s) listed.\n", n);
        return r < 0 ? 1 : 0;
}

static void help(void)
{
        printf("%s [OPTIONS...] COMMAND\n\n"
               "Control hostwarden on this compute node.\n\n"
               "Commands:\n"
               "  status        Show this node\n"
               "  check         Check the node's readiness for live migration\n"
               "  reload        Re-read the configuration, re-apply the firewall\n"
               "  overview      The nodes at a glance: state, fencing, instances, what to do\n"
               "  nodes         List the compute nodes in the store\n"
               "  instances     List the instance records of the store and their owners\n"
               "  domains       List the domains of this node's libvirt and their owners\n"
               "  migrate DOMAIN [NODE]  Live-migrate DOMAIN (to NODE, or where hostwarden\n"
               "                chooses); --block copies local disks, --wait follows it\n"
               "  migrations    List the migrations started on this node (--watch: live)\n"
               "  migration show|abort|force-complete ID\n"
               "                Show, abort or force to complete one migration\n"
               "  migrate --cold DOMAIN [NODE]  Shut DOMAIN down, copy its local disks, start it\n"
               "                there; it waits in verify for:\n"
               "  migration confirm|revert ID\n"
               "                Keep a cold migration (the source's copy goes) or undo it\n"
               "  disable REASON  Disable this node\n"
               "  enable        Enable this node\n"
               "  force-down NODE  Declare NODE powered off (an admin's assertion); refused\n"
               "                while NODE's heartbeat is fresh, unless --insist\n"
               "  force-up NODE    Take that back (run it on a peer of NODE)\n"
               "  fence NODE status|off|on\n"
               "                Run NODE's fence agent (off fences it)\n"
               "  evacuate --live [--to NODE] [--wait]\n"
               "                Disable this node and live-migrate every running domain away\n"
               "  evacuate --from NODE | evacuate NODE\n"
               "                Rebuild here every instance of NODE (down and fenced)\n"
               "  rebuild UUID --from NODE\n"
               "                Rebuild here one instance of NODE (down and fenced)\n"
               "  setup-leases  Set up libvirt's disk leases from [locking] (as root, here)\n"
               "  setup-console-tls [--dry-run]\n"
               "                Encrypt this node's VNC consoles per [console] (as root, here)\n"
               "  init-cluster [--name N] [--adopt]\n"
               "                Write a new cluster's identity into the configured store, once\n"
               "  allow-unsynced-starts --reason TEXT\n"
               "                Let domains start here before hostwardend read the store\n"
               "  history [DOMAIN] [--since WHEN]\n"
               "                Past migrations, rebuilds, drains and fences of the cluster\n"
               "  archive [--dry-run]\n"
               "                Move old history and deleted instances to the archive, purge it\n"
               "  ha DOMAIN [off|restart [--priority N]]\n"
               "                Show or set a guest's HA mode and priority (recovery)\n"
               "  maintenance plan\n"
               "                What maintenance would do to each domain here, and why\n"
               "  maintenance enter [--deadline=DURATION]\n"
               "                Disable this node and drain it, each domain by its strategy\n"
               "  maintenance status\n"
               "                Draining, ready (safe to reboot: exit 0) or blocked, and why\n"
               "  maintenance cancel [--abort]\n"
               "                Stop the drain (--abort: the running migrations too), enable\n"
               "  maintenance exit [--return]\n"
               "                End the maintenance: enable this node (--return: and bring\n"
               "                back the guests that left)\n\n"
               "Options:\n"
               "  -h --help             Show this help\n"
               "     --version          Show the version\n"
               "     --json             Output listings as JSON\n"
               "     --block            migrate: copy the local disks too (block migration)\n"
               "     --wait             migrate: wait until it ends, showing progress\n"
               "     --cold             migrate: cold migration (shut down, copy, verify)\n"
               "     --watch            overview, migrations: redraw live until Ctrl-C\n"
               "     --bandwidth=MIB    migrate: at most MIB MiB/s\n"
               "     --policy=NAME      migrate: the migration policy (hostwarden.conf(5))\n"
               "     --live             evacuate: drain this node by live migration\n"
               "     --to=NODE          evacuate --live: the destination of every domain\n"
               "     --from=NODE        evacuate, rebuild: the fenced node\n"
               "     --insist           force-down: even though NODE's heartbeat is fresh\n"
               "     --name=NAME        init-cluster: the cluster's name\n"
               "     --adopt            init-cluster: adopt a store an older version wrote\n"
               "     --reason=TEXT      allow-unsynced-starts: why (logged)\n"
               "     --since=WHEN       history: since 7d, 12h, @SECONDS or YYYY-MM-DD [HH:MM]\n"
               "     --dry-run          setup-console-tls, archive: say what they would do\n"
               "     --priority=N       ha: higher first when guests are recovered\n"
               "     --deadline=DURATION  maintenance enter: nothing leaves after it\n"
               "     --abort            maintenance cancel: abort the running migrations\n"
               "     --return           maintenance exit: bring back the guests that left\n"
               "     --no-ask-password  Do not ask for a password (polkit)\n",
               program_invocation_short_name);
}

int main(int argc, char *argv[])
{
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_NO_ASK_PASSWORD,
                ARG_BLOCK,
                ARG_LIVE,
                ARG_TO,
                ARG_FROM,
                ARG_WAIT,
                ARG_BANDWIDTH,
                ARG_WATCH,
                ARG_INSIST,
                ARG_NAME,
                ARG_ADOPT,
                ARG_REASON,
                ARG_SINCE,
                ARG_DRY_RUN,
                ARG_COLD,
                ARG_PRIORITY,
                ARG_POLICY,
                ARG_DEADLINE,
                ARG_ABORT,
                ARG_RETURN,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "block", no_argument, NULL, ARG_BLOCK },
                { "wait", no_argument, NULL, ARG_WAIT },
                { "watch", no_argument, NULL, ARG_WATCH },
                { "bandwidth", required_argument, NULL, ARG_BANDWIDTH },
                { "live", no_argument, NULL, ARG_LIVE },
                { "to", required_argument, NULL, ARG_TO },
                { "from", required_argument, NULL, ARG_FROM },
                { "insist", no_argument, NULL, ARG_INSIST },
                { "name", required_argument, NULL, ARG_NAME },
                { "adopt", no_argument, NULL, ARG_ADOPT },
                { "reason", required_argument, NULL, ARG_REASON },
                { "since", required_argument, NULL, ARG_SINCE },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "cold", no_argument, NULL, ARG_COLD },
                { "priority", required_argument, NULL, ARG_PRIORITY },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "deadline", required_argument, NULL, ARG_DEADLINE },
                { "abort", no_argument, NULL, ARG_ABORT },
                { "return", no_argument, NULL, ARG_RETURN },
                {},
        };
        static const struct {
                const char *verb;
                int min_args, max_args;
                int (*run)(sd_bus *bus);
        } verbs[] = {
                { "status", 0, 0, verb_status },
                { "check", 0, 0, verb_check },
                { "reload", 0, 0, verb_reload },
                { "nodes", 0, 0, verb_nodes },
                { "disable", 1, 1, verb_disable },
                { "enable", 0, 0, verb_enable },
                { "force-down", 1, 1, verb_force_down },
                { "force-up", 1, 1, verb_force_up },
                { "domains", 0, 0, verb_domains },
                { "migrate", 1, 2, verb_migrate },
                { "migrations", 0, 0, verb_migrations },
                { "migration", 2, 2, verb_migration },
                { "fence", 2, 2, verb_fence },
                { "evacuate", 0, 1, verb_evacuate },
                { "rebuild", 1, 1, verb_rebuild },
                { "overview", 0, 0, verb_overview },
                { "instances", 0, 0, verb_instances },
                { "setup-leases", 0, 0, verb_setup_leases },
                { "setup-console-tls", 0, 0, verb_setup_console_tls },
                { "init-cluster", 0, 0, verb_init_cluster },
                { "allow-unsynced-starts", 0, 0, verb_allow_unsynced_starts },
                { "history", 0, 1, verb_history },
                { "archive", 0, 0, verb_archive },
                { "ha", 1, 2, verb_ha },
                { "maintenance", 1, 1, verb_maintenance },
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *verb;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("hostwardenctl %s\n", HW_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case ARG_BLOCK:
                        arg_block = true;
                        break;
                case ARG_WAIT:
                        arg_wait = true;
                        break;
                case ARG_WATCH:
                        arg_watch = true;
                        break;
                case ARG_LIVE:
                        arg_live = true;
                        break;
                case ARG_TO:
                        arg_to = optarg;
                        break;
                case ARG_FROM:
                        arg_from = optarg;
                        break;
                case ARG_INSIST:
                        arg_insist = true;
                        break;
                case ARG_NAME:
                        arg_name = optarg;
                        break;
                case ARG_ADOPT:
                        arg_adopt = true;
                        break;
                case ARG_REASON:
                        arg_reason = optarg;
                        break;
                case ARG_SINCE:
                        arg_since = optarg;
                        break;
                case ARG_DRY_RUN:
                        arg_dry_run = true;
                        break;
                case ARG_COLD:
                        arg_cold = true;
                        break;
                case ARG_PRIORITY:
                        arg_priority = optarg;
                        break;
                case ARG_POLICY:
                        arg_policy = optarg;
                        break;
                case ARG_DEADLINE:
                        arg_deadline = optarg;
                        break;
                case ARG_ABORT:
                        arg_abort = true;
                        break;
                case ARG_RETURN:
                        arg_return = true;
                        break;
                case ARG_BANDWIDTH:
                        if (parse_uint_range(optarg, 1, 1024 * 1024, &arg_bandwidth) < 0) {
                                fprintf(stderr, "--bandwidth=%s: expected MiB/s, 1 to 1048576.\n",
                                        optarg);
                                return 1;
                        }
                        break;
                default:
                        return 1;
                }

        verb = optind < argc ? argv[optind] : "status";
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (!streq(verb, verbs[i].verb))
                        continue;
                arg_n_rest = optind < argc ? argc - optind - 1 : 0;
                if (arg_n_rest < verbs[i].min_args || arg_n_rest > verbs[i].max_args) {
                        if (verbs[i].min_args == verbs[i].max_args)
                                fprintf(stderr, "'%s' takes %d argument(s); see '%s --help'.\n",
                                        verb, verbs[i].min_args, program_invocation_short_name);
                        else
                                fprintf(stderr, "'%s' takes %d to %d arguments; see '%s --help'.\n",
                                        verb, verbs[i].min_args, verbs[i].max_args,
                                        program_invocation_short_name);
                        return 1;
                }
                if (arg_insist && !streq(verb, "force-down") && !streq(verb, "force-up")) {
                        fprintf(stderr, "--insist is for 'force-down' and 'force-up'.\n");
                        return 1;
                }
                if ((arg_since && !streq(verb, "history")) ||
                    (arg_dry_run && !streq(verb, "archive") && !streq(verb, "setup-console-tls"))) {
                        fprintf(stderr, "%s is for '%s'.\n", arg_since ? "--since" : "--dry-run",
                                arg_since ? "history" : "archive' and 'setup-console-tls");
                        return 1;
                }
                if (arg_priority && !streq(verb, "ha")) {
                        fprintf(stderr, "--priority is for 'ha'.\n");
                        return 1;
                }
                if (arg_watch && !streq(verb, "migrations") && !streq(verb, "overview")) {
                        fprintf(stderr, "--watch is for 'overview' and 'migrations'.\n");
                        return 1;
                }
                if (arg_json && (arg_watch || streq(verb, "overview"))) {
                        fprintf(stderr,
                                "%s draws a screen and has no JSON form; 'nodes --json', "
                                "'instances --json' and 'migrations --json' have its "
                                "data.\n",
                                arg_watch ? "--watch" : "'overview'");
                        return 1;
                }
                arg_rest = argv + optind + 1;
                r = sd_bus_default_system(&bus);
                if (r < 0) {
                        fprintf(stderr, "Failed to connect to the system bus: %s\n", strerror(-r));
                        return 1;
                }
                return verbs[i].run(bus);
        }
        fprintf(stderr, "Unknown command '%s'; see '%s --help'.\n", verb,
                program_invocation_short_name);
        return 1;
}
