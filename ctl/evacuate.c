/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl fence, evacuate, rebuild. */
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "util.h"

/* Fence agents may take a while (fence_ipmilan waits for the power state to change). */
#define FENCE_CALL_TIMEOUT (150 * USEC_PER_SEC)

/* fence NODE status|off|on */
int verb_fence(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *node = arg_rest[0], *action = arg_rest[1], *power;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, NODE_IFACE, "Fence");
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, arg_ask_password);
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", node, action);
        if (r >= 0)
                r = sd_bus_call(bus, m, FENCE_CALL_TIMEOUT, &error, &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &power);
        if (r < 0) {
                fprintf(stderr, "Could not fence %s (%s): %s\n", node, action,
                        error_message(&error, r));
                return 1;
        }
        if (arg_json) {
                printf("{\"node\":");
                json_string(node);
                printf(",\"power\":");
                json_string(power);
                printf("}\n");
        } else
                printf("%s: power %s%s\n", node, power, streq(power, "off") ? " (fenced)" : "");
        return 0;
}

/* Rebuilds take a while: disks may be re-created, guests started. */
#define EVACUATE_CALL_TIMEOUT (30 * USEC_PER_MINUTE)

static int call_with_options(sd_bus *bus, const char *member, sd_bus_message **ret_reply,
                             sd_bus_error *error, const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, NODE_IFACE, member);
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, arg_ask_password);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, EVACUATE_CALL_TIMEOUT, error, ret_reply);
        return r;
}

static int get_string(sd_bus *bus, const char *path, const char *prop, char **ret)
{
        return sd_bus_get_property_string(bus, DEST, path, MIG_IFACE, prop, NULL, ret);
}

/* --wait: one line per domain when its migration ends; exit status 1 if any did not complete. */
static int follow_migrations(sd_bus *bus, char **paths, size_t n)
{
        bool *done = calloc(n ? n : 1, sizeof(bool));
        size_t left = n, failed = 0;

        if (!done)
                return 1;
        while (left > 0) {
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *state = NULL, *name = NULL, *dest = NULL,
                                            *error = NULL;

                        if (done[i] || get_string(bus, paths[i], "State", &state) < 0)
                                continue;
                        if (!streq(state, "completed") && !streq(state, "failed") &&
                            !streq(state, "aborted"))
                                continue;
                        (void)get_string(bus, paths[i], "DomainName", &name);
                        (void)get_string(bus, paths[i], "Destination", &dest);
                        (void)get_string(bus, paths[i], "Error", &error);
                        printf("%-24s -> %-12s %s%s%s\n", strna(name), isempty(dest) ? "-" : dest,
                               state, isempty(error) ? "" : ": ", error ? error : "");
                        fflush(stdout);
                        done[i] = true;
                        left--;
                        if (!streq(state, "completed"))
                                failed++;
                }
                if (left > 0)
                        (void)usleep(300 * 1000);
        }
        free(done);
        printf("%zu domain(s) moved, %zu not.\n", n - failed, failed);
        return failed > 0 ? 1 : 0;
}

static int evacuate_live(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **paths = NULL;
        const char *path;
        size_t n = 0;
        int r;

        r = call_with_options(bus, "EvacuateLive", &reply, &error, "s", arg_to ? arg_to : "");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "o");
        while (r >= 0 && (r = sd_bus_message_read(reply, "o", &path)) > 0) {
                if (strv_extend(&paths, path) < 0)
                        r = -ENOMEM;
                n++;
        }
        if (r < 0) {
                fprintf(stderr, "Could not evacuate this node: %s\n", error_message(&error, r));
                return 1;
        }
        if (arg_json) {
                printf("[");
                for (size_t i = 0; i < n; i++) {
                        printf(i ? "," : "");
                        json_string(paths[i]);
                }
                printf("]\n");
        } else {
                printf("This node is disabled; %zu migration(s) queued:\n", n);
                for (size_t i = 0; i < n; i++)
                        printf("  %s\n", paths[i]);
        }
        if (!arg_wait)
                return 0;
        return follow_migrations(bus, paths, n);
}

static int print_results(sd_bus_message *reply)
{
        const char *uuid, *result, *detail;
        unsigned ok = 0, bad = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        if (arg_json)
                printf("[");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sss)", &uuid, &result, &detail)) > 0) {
                if (arg_json) {
                        printf("%s{\"uuid\":", ok + bad ? "," : "");
                        json_string(uuid);
                        printf(",\"result\":");
                        json_string(result);
                        printf(",\"detail\":");
                        json_string(detail);
                        printf("}");
                } else
                        printf("%-36s %-8s %s\n", uuid, result, detail);
                if (streq(result, "rebuilt"))
                        ok++;
                else
                        bad++;
        }
        if (arg_json)
                printf("]\n");
        else
                printf("\n%u instance(s) rebuilt here, %u not.\n", ok, bad);
        return r < 0 ? 1 : bad > 0 ? 1 : 0;
}

int verb_evacuate(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *source = arg_from ? arg_from : arg_n_rest > 0 ? arg_rest[0] : NULL;
        int r;

        if (arg_live) {
                if (source) {
                        fprintf(stderr, "evacuate --live drains this node; it takes no source.\n");
                        return 1;
                }
                return evacuate_live(bus);
        }
        if (!source) {
                fprintf(stderr, "evacuate: give --live (drain this node) or the fenced node "
                                "to rebuild here (--from NODE).\n");
                return 1;
        }
        r = call_with_options(bus, "EvacuateFrom", &reply, &error, "s", source);
        if (r < 0) {
                fprintf(stderr, "Could not evacuate %s: %s\n", source, error_message(&error, r));
                return 1;
        }
        return print_results(reply);
}

int verb_rebuild(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!arg_from) {
                fprintf(stderr,
                        "rebuild: give the fenced node the instance ran on (--from NODE).\n");
                return 1;
        }
        r = call_with_options(bus, "Rebuild", NULL, &error, "ss", arg_rest[0], arg_from);
        if (r < 0) {
                fprintf(stderr, "Could not rebuild %s: %s\n", arg_rest[0],
                        error_message(&error, r));
                return 1;
        }
        printf("%s rebuilt here (it ran on %s).\n", arg_rest[0], arg_from);
        return 0;
}
