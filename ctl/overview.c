/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl overview [--watch], instances. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "table.h"
#include "util.h"
#include "watch.h"

typedef struct Instance {
        char *uuid, *name, *owner, *evacuated_from;
        uint64_t time;
} Instance;

static void instances_free(Instance *a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(a[i].uuid);
                free(a[i].name);
                free(a[i].owner);
                free(a[i].evacuated_from);
        }
        free(a);
}

/* ListInstances(): the instance records of the store. */
static int get_instances(sd_bus *bus, Instance **ret, size_t *ret_n, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *uuid, *name, *owner, *from;
        Instance *a = NULL;
        size_t n = 0;
        uint64_t t;
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "ListInstances", error, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(sssst)");
        while (r >= 0 &&
               (r = sd_bus_message_read(reply, "(sssst)", &uuid, &name, &owner, &from, &t)) > 0) {
                Instance *b = reallocarray(a, n + 1, sizeof(Instance));

                if (!b) {
                        r = -ENOMEM;
                        break;
                }
                a = b;
                a[n] = (Instance){ .uuid = strdup(uuid),
                                   .name = strdup(name),
                                   .owner = strdup(owner),
                                   .evacuated_from = strdup(from),
                                   .time = t };
                n++;
                if (!a[n - 1].uuid || !a[n - 1].name || !a[n - 1].owner || !a[n - 1].evacuated_from)
                        r = -ENOMEM;
        }
        if (r < 0) {
                instances_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int verb_instances(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(table_freep) Table *t = NULL;
        Instance *a = NULL;
        size_t n = 0;
        Screen screen;
        int r;

        r = get_instances(bus, &a, &n, &error);
        if (r < 0) {
                fprintf(stderr, "Could not list the instances: %s\n", error_message(&error, r));
                return 1;
        }
        if (arg_json) {
                printf("[");
                for (size_t i = 0; i < n; i++) {
                        printf("%s{\"uuid\":", i ? "," : "");
                        json_string(a[i].uuid);
                        printf(",\"name\":");
                        json_string(a[i].name);
                        printf(",\"owner\":");
                        json_string(a[i].owner);
                        printf(",\"evacuated_from\":");
                        json_string(a[i].evacuated_from);
                        printf(",\"time\":%llu}", (unsigned long long)a[i].time);
                }
                printf("]\n");
                instances_free(a, n);
                return 0;
        }
        screen_get(&screen);
        t = table_new("UUID", "NAME", "OWNER", "CHANGED", "EVACUATED FROM", NULL);
        for (size_t i = 0; t && i < n; i++) {
                char ago[32];

                format_ago(a[i].time, ago, sizeof(ago));
                if (table_add(t, NULL, a[i].uuid) < 0 ||
                    table_add(t, NULL, isempty(a[i].name) ? NULL : a[i].name) < 0 ||
                    table_add(t, NULL, a[i].owner) < 0 || table_add(t, NULL, ago) < 0 ||
                    table_add(t, NULL, isempty(a[i].evacuated_from) ? NULL : a[i].evacuated_from) <
                            0)
                        t = table_free(t);
        }
        instances_free(a, n);
        if (!t) {
                fprintf(stderr, "Out of memory.\n");
                return 1;
        }
        table_set_shrink(t, 1);
        table_print(t, stdout, screen.width, screen.color);
        printf("\n%zu instance(s) listed.\n", table_rows(t));
        return 0;
}

/* ---- overview ------------------------------------------------------------------------ */

static const char *node_state_color(const char *state)
{
        if (streq(state, "up"))
                return COLOR_GREEN;
        if (streq(state, "disabled"))
                return COLOR_YELLOW;
        if (streq(state, "down") || streq(state, "forced-down"))
                return COLOR_BOLD_RED;
        return NULL;
}

/* What the operator should know or do about a node, and how loud. */
static void node_note(const char *name, const char *state, const char *fence, const char *detail,
                      size_t owned, bool self, char *buf, size_t size, const char **color)
{
        const char *reason = startswith(detail, "disabled: ");
        bool fenced = streq(fence, "off") || streq(state, "forced-down");

        *color = NULL;
        if (streq(state, "down") && !fenced) {
                *color = COLOR_BOLD_RED;
                snprintf(buf, size, "not fenced: 'fence %s off' (or force-down), then evacuate",
                         name);
        } else if ((streq(state, "down") || streq(state, "forced-down")) && owned > 0) {
                *color = COLOR_YELLOW;
                snprintf(buf, size, "%s, %zu instance(s) to evacuate: 'evacuate --from %s'",
                         streq(fence, "off") ? "fenced" : "forced down", owned, name);
        } else if (streq(state, "down") || streq(state, "forced-down"))
                snprintf(buf, size, "%s, nothing to evacuate",
                         streq(fence, "off") ? "fenced" : "forced down");
        else if (streq(state, "unknown"))
                snprintf(buf, size, "no heartbeat seen yet");
        else if (streq(state, "disabled") && reason) {
                size_t len = strcspn(reason, ";");

                snprintf(buf, size, "%.*s", (int)len, reason);
        } else
                snprintf(buf, size, "%s", "");
        if (self) {
                size_t len = strlen(buf);

                snprintf(buf + len, size - len, "%sthis node", len ? "; " : "");
        }
}

/* One frame: the nodes of the store with what each owns and what needs doing, then this
 * node's domains and migrations. */
static int view_overview(sd_bus *bus, FILE *f, const Screen *screen, void *userdata)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *nodes = NULL, *domains = NULL,
                                                        *migrations = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_free_ char *self = NULL, *self_state = NULL, *firewall = NULL, *store = NULL,
                            *title = NULL;
        const char *name, *address, *state, *fence, *detail, *uuid, *owner, *s[5];
        unsigned n_up = 0, n_disabled = 0, n_down = 0, n_nodes = 0, act = 0;
        unsigned running = 0, foreign = 0, unowned = 0, mig_flight = 0, mig_failed = 0;
        Instance *inst = NULL;
        size_t n_inst = 0;
        uint64_t since;
        char clock[16] = "";
        time_t now = time(NULL);
        struct tm tm;
        int r;

        r = sd_bus_get_property_string(bus, DEST, PATH, NODE_IFACE, "Name", &error, &self);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, DEST, PATH, NODE_IFACE, "State", &error,
                                               &self_state);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, DEST, PATH, NODE_IFACE, "FirewallState", &error,
                                               &firewall);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, DEST, PATH, NODE_IFACE, "Store", &error,
                                               &store);
        if (r >= 0)
                r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "ListNodes", &error, &nodes,
                                       NULL);
        if (r >= 0)
                r = get_instances(bus, &inst, &n_inst, &error);
        if (r < 0) {
                fprintf(f, "hostwardend does not answer: %s\n", error_message(&error, r));
                if (screen->tty)
                        fprintf(f, "Trying again every second (Ctrl-C quits).\n");
                return r == -ENOMEM ? r : 1;
        }

        if (screen->tty && localtime_r(&now, &tm))
                strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
        r = asprintf(&title, "hostwarden on %s: %s, firewall %s, store %s", self, self_state,
                     firewall, store);
        if (r < 0)
                goto oom;
        if (screen->color)
                fputs(COLOR_BOLD, f);
        r = (int)print_cut(f, title, screen->width > 0 ? screen->width : SIZE_MAX, 0);
        if (screen->color)
                fputs(COLOR_RESET, f);
        if (clock[0] && screen->width >= (size_t)r + 2 + strlen(clock))
                fprintf(f, "%*s", (int)(screen->width - (size_t)r), clock);
        fputs("\n\n", f);

        t = table_new("NODE", "ADDRESS", "STATE", "FENCE", "INSTANCES", "CHANGED", "NOTE", NULL);
        if (!t)
                goto oom;
        table_set_right(t, 4);
        r = sd_bus_message_enter_container(nodes, 'a', "(ssssst)");
        while (r >= 0 && (r = sd_bus_message_read(nodes, "(ssssst)", &name, &address, &state,
                                                  &fence, &detail, &since)) > 0) {
                size_t owned = 0;
                char ago[32], note[256];
                const char *note_color;
                bool is_self = streq(name, self);

                for (size_t i = 0; i < n_inst; i++)
                        if (streq(inst[i].owner, name))
                                owned++;
                format_ago(since, ago, sizeof(ago));
                node_note(name, state, fence, detail, owned, is_self, note, sizeof(note),
                          &note_color);
                if (note_color && !is_self)
                        act++;
                n_nodes++;
                if (streq(state, "up"))
                        n_up++;
                else if (streq(state, "disabled"))
                        n_disabled++;
                else if (streq(state, "down") || streq(state, "forced-down"))
                        n_down++;
                s[0] = isempty(address) ? NULL : address;
                if (table_add(t, is_self ? COLOR_BOLD : NULL, name) < 0 ||
                    table_add(t, NULL, s[0]) < 0 ||
                    table_add(t, node_state_color(state), state) < 0 ||
                    table_add(t, streq(fence, "off") ? COLOR_YELLOW : NULL, fence) < 0 ||
                    table_addf(t, NULL, "%zu", owned) < 0 || table_add(t, NULL, ago) < 0 ||
                    table_add(t, note_color, note) < 0)
                        goto oom;
        }
        if (r < 0) {
                fprintf(f, "Cannot read the nodes: %s\n", strerror(-r));
                instances_free(inst, n_inst);
                return 0;
        }
        table_print(t, f, screen->width, screen->color);
        fprintf(f, "\n%u node(s): %u up, %u disabled, %u down; %zu instance(s)", n_nodes, n_up,
                n_disabled, n_down, n_inst);
        if (act > 0) {
                if (screen->color)
                        fputs(COLOR_BOLD_RED, f);
                fprintf(f, "; %u need(s) an operator", act);
                if (screen->color)
                        fputs(COLOR_RESET, f);
        }
        fputs(".\n", f);

        /* this node: its libvirt's domains, and whether any runs without being ours */
        sd_bus_error_free(&error);
        r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "ListDomains", &error, &domains, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(domains, 'a', "(ssss)");
        while (r >= 0 &&
               (r = sd_bus_message_read(domains, "(ssss)", &uuid, &name, &state, &owner)) > 0) {
                if (!streq(state, "running") && !streq(state, "paused"))
                        continue;
                running++;
                if (isempty(owner))
                        unowned++;
                else if (!streq(owner, self))
                        foreign++;
        }
        if (r < 0)
                fprintf(f, "%s: cannot list its domains: %s\n", self, error_message(&error, r));
        else {
                fprintf(f, "%s runs %u domain(s)", self, running);
                if (unowned > 0)
                        fprintf(f, ", %u without an instance record", unowned);
                if (foreign > 0) {
                        if (screen->color)
                                fputs(COLOR_BOLD_RED, f);
                        fprintf(f, ", %u owned by another node", foreign);
                        if (screen->color)
                                fputs(COLOR_RESET, f);
                }
        }
        sd_bus_error_free(&error);
        r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "ListMigrations", &error, &migrations,
                               NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(migrations, 'a', "(sssssso)");
        while (r >= 0 && (r = sd_bus_message_read(migrations, "(sssssso)", &s[0], &s[1], &s[2],
                                                  &s[3], &state, &s[4], &name)) > 0) {
                if (streq(state, "failed") || streq(state, "aborted"))
                        mig_failed++;
                else if (!streq(state, "completed"))
                        mig_flight++;
        }
        if (r >= 0)
                fprintf(f, "; %u migration(s) in flight, %u failed or aborted in the last hour.\n",
                        mig_flight, mig_failed);
        else
                fputs(".\n", f);
        instances_free(inst, n_inst);
        return 0;
oom:
        instances_free(inst, n_inst);
        return -ENOMEM;
}

int verb_overview(sd_bus *bus)
{
        _cleanup_free_ char *frame = NULL;
        size_t size = 0;
        Screen screen;
        FILE *f;
        int r;

        if (arg_watch)
                return watch_run(bus, view_overview, NULL);
        screen_get(&screen);
        f = open_memstream(&frame, &size);
        if (!f) {
                fprintf(stderr, "Out of memory.\n");
                return 1;
        }
        r = view_overview(bus, f, &screen, NULL);
        fclose(f);
        if (r < 0) {
                fprintf(stderr, "Out of memory.\n");
                return 1;
        }
        /* not answering is an error, on stderr */
        fputs(frame, r > 0 ? stderr : stdout);
        return r > 0 ? 1 : 0;
}
