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

        r = ctl_call(bus, PATH, NODE_IFACE, "ListInstances", error, &reply, NULL);
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

/* A domain running here that another node owns, and since when this overview sees it. */
typedef struct Foreign {
        char uuid[37];
        uint64_t since; /* CLOCK_MONOTONIC usec */
        bool seen;
} Foreign;

typedef struct OverviewState {
        Foreign *foreign;
        size_t n_foreign;
} OverviewState;

/* Such a domain is normal for a moment: a migration that landed before its record moved.
 * Reconciliation settles it within seconds; an overview that keeps seeing it says so. */
#define FOREIGN_SETTLE (5 * USEC_PER_SEC)

/* Whether uuid has been foreign long enough to alarm (not watching: at once). */
static bool foreign_settled(OverviewState *st, const char *uuid, uint64_t now)
{
        Foreign *f;

        if (!st)
                return true;
        for (size_t i = 0; i < st->n_foreign; i++)
                if (streq(st->foreign[i].uuid, uuid)) {
                        st->foreign[i].seen = true;
                        return now >= st->foreign[i].since + FOREIGN_SETTLE;
                }
        f = reallocarray(st->foreign, st->n_foreign + 1, sizeof(Foreign));
        if (!f)
                return true;
        st->foreign = f;
        f = &st->foreign[st->n_foreign++];
        *f = (Foreign){ .since = now, .seen = true };
        snprintf(f->uuid, sizeof(f->uuid), "%s", uuid);
        return false;
}

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

/* The operator's reason in ListNodes' detail: "disabled: REASON; heartbeat N, generation M"
 * (the reason may hold "; " itself). */
static char *disabled_reason(const char *detail)
{
        const char *reason = startswith(detail, "disabled: "), *end = NULL;

        if (!reason)
                return NULL;
        for (const char *p = strstr(reason, "; heartbeat "); p; p = strstr(p + 1, "; heartbeat "))
                end = p;
        return strndup(reason, end ? (size_t)(end - reason) : strlen(reason));
}

typedef struct NodeAdvice {
        const char *note; /* short, for the table */
        const char *color;
        char *action; /* a sentence with the command, when an operator has to act */
} NodeAdvice;

/* What the operator should know or do about a node; recovering: automatic recovery is on,
 * and it fences and rebuilds by itself (the Recovery line says what it does). */
static int node_advice(const char *name, const char *state, const char *fence, size_t owned,
                       bool counted, bool recovering, NodeAdvice *ret)
{
        bool down = streq(state, "down"), forced = streq(state, "forced-down");
        bool fenced = streq(fence, "off") || forced;
        int r = 0;

        *ret = (NodeAdvice){ .note = "" };
        if (recovering && (down || forced) && (owned > 0 || !fenced)) {
                ret->note = fenced ? "recovery rebuilds its HA instances" : "recovery fences it";
                ret->color = COLOR_YELLOW;
                return 0;
        }
        /* the command first, on a line of its own that fits 80 columns */
        if (down && !fenced) {
                ret->note = "not fenced";
                ret->color = COLOR_BOLD_RED;
                r = asprintf(&ret->action,
                             "%s is down and not fenced: hostwardenctl fence %s off\n"
                             "  (or force-down %s if you know it is off), then evacuate it.",
                             name, name, name);
        } else if ((down || forced) && (owned > 0 || !counted)) {
                const char *how = fenced && !forced ? "fenced" : "forced down";

                ret->note = "to evacuate";
                ret->color = COLOR_YELLOW;
                if (counted)
                        r = asprintf(&ret->action,
                                     "%s is %s with %zu instance(s): hostwardenctl evacuate "
                                     "--from %s\n  on the node that should take them.",
                                     name, how, owned, name);
                else
                        r = asprintf(&ret->action,
                                     "%s is %s: hostwardenctl evacuate --from %s\n  on the "
                                     "node that should take its instances.",
                                     name, how, name);
        } else if (down || forced)
                ret->note = "nothing to evacuate";
        else if (streq(state, "unknown"))
                ret->note = "no heartbeat seen yet";
        return r < 0 ? -ENOMEM : 0;
}

/* One frame: a summary (what needs an operator first, so that it shows on any screen),
 * the nodes of the store with what each owns, what to do, then this node. */
static int view_overview(sd_bus *bus, FILE *f, const Screen *screen, void *userdata)
{
        static const char *const names[] = { "Name", "State", "FirewallState", "Store", NULL };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *nodes = NULL, *domains = NULL,
                                                        *migrations = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_free_ char *title = NULL, *actions = NULL, *need = NULL;
        char *props[ELEMENTSOF(names)] = {};
        const char *name, *address, *state, *fence, *detail, *uuid, *owner, *x[5];
        unsigned n_up = 0, n_disabled = 0, n_down = 0, n_nodes = 0, n_act = 0;
        unsigned active = 0, foreign = 0, unowned = 0, mig_flight = 0, mig_failed = 0;
        OverviewState *st = userdata;
        Instance *inst = NULL;
        size_t n_inst = 0, actions_size = 0, need_size = 0;
        bool counted = true;
        FILE *act = NULL, *need_f = NULL;
        uint64_t since, now = now_usec(CLOCK_MONOTONIC);
        static const char *const recovery_name[] = { "Recovery", NULL };
        static const char *const maintenance_name[] = { "State", NULL };
        _cleanup_free_ char *recovery = NULL, *maintenance = NULL;
        bool recovering;
        int r;

        /* a daemon older than this client has no such property: no recovery line */
        if (ctl_get_strings(bus, PATH, NODE_IFACE, NULL, recovery_name, &recovery) < 0)
                recovery = NULL;
        recovering = recovery && !streq(recovery, "off");
        /* nor a maintenance line */
        if (ctl_get_strings(bus, PATH "/maintenance", "org.hostwarden.Warden1.Maintenance", NULL,
                            maintenance_name, &maintenance) < 0)
                maintenance = NULL;
        r = ctl_get_strings(bus, PATH, NODE_IFACE, &error, names, props);
        if (r >= 0)
                r = ctl_call(bus, PATH, NODE_IFACE, "ListNodes", &error, &nodes, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(nodes, 'a', "(ssssst)");
        if (r >= 0) {
                sd_bus_error_free(&error);
                r = get_instances(bus, &inst, &n_inst, &error);
                /* a daemon older than this client: no counts */
                if (r < 0 && r != -ENOMEM &&
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD)) {
                        counted = false;
                        r = 0;
                }
        }
        if (r < 0) {
                for (size_t i = 0; i < ELEMENTSOF(props); i++)
                        free(props[i]);
                if (r == -ENOMEM)
                        return r;
                /* waiting for its store is a state of its own, with what to do in the message */
                view_title(f, screen,
                           sd_bus_error_has_name(&error,
                                                 "org.hostwarden.Warden1.Error.StoreUnavailable")
                                   ? "hostwarden: this node has not read its cluster store"
                                   : "hostwarden: hostwardend does not answer");
                fprintf(f, "%s\n", error_message(&error, r));
                if (screen->watching)
                        fprintf(f, "Trying again every %s.\n", screen->tty ? "second" : "5 s");
                return 1;
        }

        t = table_new("NODE", "ADDRESS", "STATE", "FENCE", "INSTANCES", "SINCE", "NOTE", NULL);
        act = open_memstream(&actions, &actions_size);
        need_f = open_memstream(&need, &need_size);
        if (!t || !act || !need_f)
                goto oom;
        table_set_right(t, 4);
        while ((r = sd_bus_message_read(nodes, "(ssssst)", &name, &address, &state, &fence, &detail,
                                        &since)) > 0) {
                _cleanup_free_ char *reason = disabled_reason(detail);
                bool is_self = streq(name, props[0]);
                NodeAdvice advice;
                char ago[32] = "", note[512];
                size_t owned = 0;

                for (size_t i = 0; i < n_inst; i++)
                        if (streq(inst[i].owner, name))
                                owned++;
                if (node_advice(name, state, fence, owned, counted, recovering, &advice) < 0)
                        goto oom;
                if (advice.action) {
                        fprintf(act, "%s\n", advice.action);
                        fprintf(need_f, "%s%s", n_act ? ", " : "", name);
                        n_act++;
                        free(advice.action);
                }
                /* since when: disabled, or the last heartbeat of a node that is down; an up
                 * node's heartbeat is always "now" */
                if (!streq(state, "up"))
                        format_ago(since, ago, sizeof(ago));
                /* what to do first; else why it is out */
                snprintf(note, sizeof(note), "%s",
                         !isempty(advice.note) ? advice.note
                         : reason              ? reason
                                               : "");
                if (is_self)
                        snprintf(note + strlen(note), sizeof(note) - strlen(note), "%sthis node",
                                 note[0] ? "; " : "");
                n_nodes++;
                if (streq(state, "up"))
                        n_up++;
                else if (streq(state, "disabled"))
                        n_disabled++;
                else if (streq(state, "down") || streq(state, "forced-down"))
                        n_down++;
                if (table_add(t, is_self ? COLOR_BOLD : NULL, name) < 0 ||
                    table_add(t, NULL, isempty(address) ? NULL : address) < 0 ||
                    table_add(t, node_state_color(state), state) < 0 ||
                    table_add(t, streq(fence, "off") ? COLOR_YELLOW : NULL, fence) < 0 ||
                    (counted ? table_addf(t, NULL, "%zu", owned) : table_add(t, NULL, NULL)) < 0 ||
                    table_add(t, NULL, ago) < 0 || table_add(t, advice.color, note) < 0)
                        goto oom;
        }
        if (r < 0)
                goto oom;
        if (fclose(act) < 0 || fclose(need_f) < 0) {
                act = need_f = NULL;
                goto oom;
        }
        act = need_f = NULL;

        r = asprintf(&title, "hostwarden on %s: %s, firewall %s, store %s%s", props[0], props[1],
                     props[2], props[3], screen->watching && screen->tty ? " (Ctrl-C quits)" : "");
        if (r < 0)
                goto oom;
        view_title(f, screen, title);
        fprintf(f, "%u node(s): %u up, %u disabled, %u down", n_nodes, n_up, n_disabled, n_down);
        if (counted)
                fprintf(f, "; %zu instance(s)", n_inst);
        if (n_act > 0)
                fprintf(f, ". %sNeeds an operator: %s%s", screen->color ? COLOR_BOLD_RED : "", need,
                        screen->color ? COLOR_RESET : "");
        fputs(".\n", f);
        if (recovery)
                fprintf(f, "Automatic recovery: %s.\n", recovery);
        if (maintenance && !isempty(maintenance) && !streq(maintenance, "off"))
                fprintf(f, "Maintenance of this node: %s%s.\n", maintenance,
                        streq(maintenance, "ready") ? " (no guest left running: safe to reboot)"
                                                    : "");
        fputc('\n', f);
        table_print(t, f, screen->width, screen->color);
        if (n_act > 0)
                fprintf(f, "\n%s", actions);

        /* this node: its libvirt's domains, and whether one runs without being its own */
        sd_bus_error_free(&error);
        r = ctl_call(bus, PATH, NODE_IFACE, "ListDomains", &error, &domains, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(domains, 'a', "(ssss)");
        for (size_t i = 0; st && i < st->n_foreign; i++)
                st->foreign[i].seen = false;
        while (r >= 0 &&
               (r = sd_bus_message_read(domains, "(ssss)", &uuid, &name, &state, &owner)) > 0) {
                if (streq(state, "shutoff") || streq(state, "shutdown") ||
                    streq(state, "crashed") || streq(state, "nostate"))
                        continue;
                active++;
                if (isempty(owner))
                        unowned++;
                /* paused: an incoming migration, or one being forced to complete */
                else if (!streq(owner, props[0]) && streq(state, "running") &&
                         foreign_settled(st, uuid, now))
                        foreign++;
        }
        for (size_t i = 0; st && i < st->n_foreign;)
                if (!st->foreign[i].seen)
                        st->foreign[i] = st->foreign[--st->n_foreign];
                else
                        i++;
        fputc('\n', f);
        if (r < 0)
                fprintf(f, "%s: cannot list its domains: %s\n", props[0], error_message(&error, r));
        else {
                fprintf(f, "%s runs %u domain(s)", props[0], active);
                if (unowned > 0)
                        fprintf(f, ", %u without an instance record yet", unowned);
                if (foreign > 0)
                        fprintf(f, ", %s%u that another node owns%s",
                                screen->color ? COLOR_BOLD_RED : "", foreign,
                                screen->color ? COLOR_RESET : "");
                fputs(".\n", f);
        }
        sd_bus_error_free(&error);
        r = ctl_call(bus, PATH, NODE_IFACE, "ListMigrations", &error, &migrations, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(migrations, 'a', "(sssssso)");
        while (r >= 0 && (r = sd_bus_message_read(migrations, "(sssssso)", &x[0], &x[1], &x[2],
                                                  &x[3], &state, &x[4], &name)) > 0) {
                if (streq(state, "failed") || streq(state, "aborted"))
                        mig_failed++;
                else if (!streq(state, "completed"))
                        mig_flight++;
        }
        if (r < 0)
                fprintf(f, "%s: cannot list its migrations: %s\n", props[0],
                        error_message(&error, r));
        else
                fprintf(f,
                        "Migrations from %s: %u in flight, %u failed or aborted in the last "
                        "hour.\n",
                        props[0], mig_flight, mig_failed);
        for (size_t i = 0; i < ELEMENTSOF(props); i++)
                free(props[i]);
        instances_free(inst, n_inst);
        return 0;
oom:
        if (act)
                fclose(act);
        if (need_f)
                fclose(need_f);
        for (size_t i = 0; i < ELEMENTSOF(props); i++)
                free(props[i]);
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

        if (arg_watch) {
                OverviewState st = {};

                r = watch_run(bus, view_overview, &st);
                free(st.foreign);
                return r;
        }
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
        frame_print(r > 0 ? stderr : stdout, frame, &screen);
        return r > 0 ? 1 : 0;
}
