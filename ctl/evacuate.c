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

/* The migration's DomainName into *name unless known already: an older hostwardend filled it
 * only once the migration left the queue, and an empty string is no name. */
static void get_name(sd_bus *bus, const char *path, char **name)
{
        if (!isempty(*name))
                return;
        free(*name);
        *name = NULL;
        if (get_string(bus, path, "DomainName", name) >= 0 && isempty(*name)) {
                free(*name);
                *name = NULL;
        }
}

/* The newest migration of domain that hostwardend lists now, or NULL: after a restart of
 * hostwardend, the migrations it adopted from libvirt have new objects. */
static char *relocate(sd_bus *bus, const char *domain)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *id, *dom, *src, *dest, *state, *mode, *path;
        int r;

        if (!domain)
                return NULL;
        r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "ListMigrations", NULL, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(sssssso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssssso)", &id, &dom, &src, &dest,
                                                  &state, &mode, &path)) > 0)
                if (streq(dom, domain))
                        return strdup(path); /* newest first */
        return NULL;
}

/* How long a migration may be out of sight (hostwardend restarting; one that was only queued
 * is not adopted: it never started) before --wait gives up on it. */
#define LOST_AFTER_USEC (30 * USEC_PER_SEC)

/* --wait: one line per domain when its migration ends; exit status 1 if any did not complete. */
static int follow_migrations(sd_bus *bus, char **paths, size_t n)
{
        bool *done = calloc(n ? n : 1, sizeof(bool));
        char **names = calloc(n + 1, sizeof(char *));
        usec_t *lost = calloc(n ? n : 1, sizeof(usec_t)); /* since when out of sight */
        size_t left = n, failed = 0;

        if (!done || !names || !lost) {
                free(done);
                free(names);
                free(lost);
                return 1;
        }
        for (size_t i = 0; i < n; i++)
                get_name(bus, paths[i], &names[i]);
        while (left > 0) {
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *state = NULL, *dest = NULL, *error = NULL;

                        if (done[i])
                                continue;
                        get_name(bus, paths[i], &names[i]);
                        if (get_string(bus, paths[i], "State", &state) < 0) {
                                usec_t now = now_realtime();
                                char *moved = relocate(bus, names[i]);

                                if (moved && !streq(moved, paths[i])) {
                                        free(paths[i]);
                                        paths[i] = moved;
                                        lost[i] = 0;
                                        continue;
                                }
                                free(moved);
                                if (lost[i] == 0)
                                        lost[i] = now;
                                else if (now - lost[i] > LOST_AFTER_USEC) {
                                        printf("%-24s -> %-12s unknown: hostwardend no longer "
                                               "lists it; see 'hostwardenctl migrations'\n",
                                               strna(names[i]), "-");
                                        fflush(stdout);
                                        done[i] = true;
                                        left--;
                                        failed++;
                                }
                                continue;
                        }
                        lost[i] = 0;
                        if (!streq(state, "completed") && !streq(state, "failed") &&
                            !streq(state, "aborted"))
                                continue;
                        (void)get_string(bus, paths[i], "Destination", &dest);
                        (void)get_string(bus, paths[i], "Error", &error);
                        printf("%-24s -> %-12s %s%s%s\n", strna(names[i]),
                               isempty(dest) ? "-" : dest, state, isempty(error) ? "" : ": ",
                               error ? error : "");
                        fflush(stdout);
                        done[i] = true;
                        left--;
                        if (!streq(state, "completed"))
                                failed++;
                }
                if (left > 0)
                        (void)usleep(300 * 1000);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        free(done);
        free(lost);
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
