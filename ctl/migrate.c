/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl migrate [--cold], migrations, migration show|abort|force-complete|confirm|revert */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "table.h"
#include "util.h"
#include "watch.h"

typedef struct MigrationProps {
        char *id, *domain, *domain_name, *source, *destination, *mode, *state, *error, *policy;
        uint64_t created, started, finished;
        uint64_t memory_total, memory_processed, memory_remaining;
        uint64_t disk_total, disk_processed, disk_remaining;
        uint64_t dirty_rate, iteration, max_downtime, downtime;
        uint64_t network_downtime; /* µs, 0 = unknown */
        uint32_t progress;
        int post_copy;
} MigrationProps;

static void props_done(MigrationProps *p)
{
        free(p->id);
        free(p->domain);
        free(p->domain_name);
        free(p->source);
        free(p->destination);
        free(p->mode);
        free(p->state);
        free(p->error);
        free(p->policy);
        *p = (MigrationProps){};
}

static int get_props(sd_bus *bus, const char *path, MigrationProps *p, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        props_done(p);
        r = ctl_call(bus, path, "org.freedesktop.DBus.Properties", "GetAll", error, &reply, "s",
                     MIG_IFACE);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                static const struct {
                        const char *name;
                        char type;
                        size_t offset;
                } fields[] = {
#define F(n, t, f) { n, t, offsetof(MigrationProps, f) }
                        F("Id", 's', id),
                        F("Domain", 's', domain),
                        F("DomainName", 's', domain_name),
                        F("Source", 's', source),
                        F("Destination", 's', destination),
                        F("Mode", 's', mode),
                        F("State", 's', state),
                        F("Error", 's', error),
                        F("Policy", 's', policy),
                        F("Created", 't', created),
                        F("Started", 't', started),
                        F("Finished", 't', finished),
                        F("MemoryTotal", 't', memory_total),
                        F("MemoryProcessed", 't', memory_processed),
                        F("MemoryRemaining", 't', memory_remaining),
                        F("DiskTotal", 't', disk_total),
                        F("DiskProcessed", 't', disk_processed),
                        F("DiskRemaining", 't', disk_remaining),
                        F("DirtyRate", 't', dirty_rate),
                        F("Iteration", 't', iteration),
                        F("MaxDowntime", 't', max_downtime),
                        F("Downtime", 't', downtime),
                        F("NetworkDowntime", 't', network_downtime),
                        F("Progress", 'u', progress),
                        F("PostCopy", 'b', post_copy),
#undef F
                };
                const char *name;
                size_t i;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        return r;
                for (i = 0; i < ELEMENTSOF(fields); i++)
                        if (streq(fields[i].name, name))
                                break;
                if (i == ELEMENTSOF(fields))
                        r = sd_bus_message_skip(reply, "v");
                else {
                        void *at = (char *)p + fields[i].offset;
                        char sig[2] = { fields[i].type, 0 };

                        if (fields[i].type == 's') {
                                const char *s;

                                r = sd_bus_message_read(reply, "v", "s", &s);
                                if (r >= 0 && !(*(char **)at = strdup(s)))
                                        r = -ENOMEM;
                        } else
                                r = sd_bus_message_read(reply, "v", sig, at);
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        return r;
}

static bool state_final(const char *s)
{
        return s && (streq(s, "completed") || streq(s, "failed") || streq(s, "aborted"));
}

static char *path_of(const char *id_or_path)
{
        char *p;

        if (id_or_path[0] == '/')
                return strdup(id_or_path);
        if (asprintf(&p, PATH "/migration/%s", id_or_path) < 0)
                return NULL;
        return p;
}

static double mib(uint64_t bytes)
{
        return (double)bytes / (1024.0 * 1024.0);
}

/* "42s", "3m07s" */
static void fmt_eta(double s, char *buf, size_t size)
{
        if (s < 0 || s > 99 * 3600)
                snprintf(buf, size, "-");
        else if (s < 60)
                snprintf(buf, size, "%.0fs", s);
        else
                snprintf(buf, size, "%dm%02ds", (int)s / 60, (int)s % 60);
}

static double now_seconds(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void show_progress(const MigrationProps *p, double rate, bool tty)
{
        uint64_t remaining = p->memory_remaining + p->disk_remaining;
        char eta[16];
        char bar[31];
        unsigned filled = p->progress * 30 / 100;

        fmt_eta(rate > 0 ? (double)remaining / rate : -1, eta, sizeof(eta));
        for (unsigned i = 0; i < 30; i++)
                bar[i] = i < filled ? '#' : '.';
        bar[30] = 0;
        if (tty)
                printf("\r\033[K[%s] %3u%%  memory %.1f/%.1f MiB", bar, p->progress,
                       mib(p->memory_processed), mib(p->memory_total));
        else
                printf("%s %u%% memory %.1f/%.1f MiB", p->state, p->progress,
                       mib(p->memory_processed), mib(p->memory_total));
        if (p->disk_total > 0)
                printf("  disk %.1f/%.1f MiB", mib(p->disk_processed), mib(p->disk_total));
        printf("  %.1f MiB/s  ETA %s  max downtime %" PRIu64 " ms%s", mib((uint64_t)rate), eta,
               p->max_downtime, p->post_copy ? "  post-copy" : "");
        if (tty)
                printf("  %s", p->state);
        if (!tty)
                putchar('\n');
        fflush(stdout);
}

static int wait_for(sd_bus *bus, const char *path)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        MigrationProps p = {};
        bool tty = isatty(STDOUT_FILENO);
        double last_t = now_seconds(), start_t = last_t, last_plain = 0, rate = 0;
        uint64_t last_done = 0;
        _cleanup_free_ char *last_state = NULL;
        int r, ret = 1;

        /* woken by PropertiesChanged (the daemon sends them at most twice a second), and at
         * least once a second anyway */
        r = sd_bus_match_signal(bus, &match, DEST, path, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", NULL, NULL);
        if (r < 0)
                fprintf(stderr, "Cannot watch the migration, polling: %s\n", strerror(-r));
        for (;;) {
                double t;
                uint64_t done;

                r = get_props(bus, path, &p, &error);
                if (r < 0) {
                        fprintf(stderr, "%sCould not follow the migration: %s\n", tty ? "\n" : "",
                                error_message(&error, r));
                        break;
                }
                t = now_seconds();
                done = p.memory_processed + p.disk_processed;
                if (t > last_t && done >= last_done && done > 0) {
                        double now_rate = (double)(done - last_done) / (t - last_t);

                        rate = rate > 0 ? 0.5 * rate + 0.5 * now_rate : now_rate;
                }
                last_t = t;
                last_done = done;
                if (streq_ptr(p.state, "verify")) {
                        /* a cold migration waits for the operator: the wait is over */
                        if (tty)
                                putchar('\n');
                        printf("Migration %s of %s to %s is in verify: %s runs there. Confirm "
                               "with 'hostwardenctl migration confirm %s', or go back with "
                               "'hostwardenctl migration revert %s'.\n",
                               p.id, p.domain_name, p.destination, p.domain_name, p.id, p.id);
                        ret = 0;
                        break;
                }
                if (state_final(p.state)) {
                        if (tty)
                                putchar('\n');
                        if (streq(p.state, "completed")) {
                                printf("Migration %s of %s to %s completed in %.1fs (downtime "
                                       "%" PRIu64 " ms).\n",
                                       p.id, p.domain_name, p.destination, t - start_t, p.downtime);
                                if (p.network_downtime > 0)
                                        printf("The switch learned it on %s %.1f ms after the "
                                               "switchover.\n",
                                               p.destination, (double)p.network_downtime / 1e3);
                                ret = 0;
                        } else
                                fprintf(stderr, "Migration %s of %s to %s %s: %s\n", p.id,
                                        p.domain_name, isempty(p.destination) ? "-" : p.destination,
                                        p.state, p.error);
                        break;
                }
                if (tty || !streq_ptr(last_state, p.state) || t - last_plain >= 2.0) {
                        show_progress(&p, rate, tty);
                        last_plain = t;
                        free(last_state);
                        last_state = p.state ? strdup(p.state) : NULL;
                }
                /* the signals that came meanwhile are all answered by the next GetAll */
                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                if (r >= 0)
                        r = sd_bus_wait(bus, USEC_PER_SEC);
                if (r < 0) {
                        fprintf(stderr, "%sLost the bus: %s\n", tty ? "\n" : "", strerror(-r));
                        break;
                }
                while (sd_bus_process(bus, NULL) > 0)
                        ;
        }
        props_done(&p);
        return ret;
}

int verb_migrate(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *path;
        int r;

        if (arg_cold && (arg_block || arg_bandwidth > 0 || arg_policy)) {
                fprintf(stderr, "--cold copies the disks itself: --block, --bandwidth and "
                                "--policy are for live migration.\n");
                return 1;
        }
        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, NODE_IFACE,
                                           arg_cold ? "MigrateCold" : "Migrate");
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, arg_ask_password);
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", arg_rest[0], arg_n_rest > 1 ? arg_rest[1] : "");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_block)
                r = sd_bus_message_append(m, "{sv}", "block", "b", 1);
        if (r >= 0 && arg_bandwidth > 0)
                r = sd_bus_message_append(m, "{sv}", "bandwidth", "t", arg_bandwidth);
        if (r >= 0 && arg_policy)
                r = sd_bus_message_append(m, "{sv}", "policy", "s", arg_policy);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r < 0) {
                fprintf(stderr, "Could not migrate %s: %s\n", arg_rest[0],
                        error_message(&error, r));
                return 1;
        }
        if (!arg_wait) {
                if (arg_json) {
                        printf("{\"path\":");
                        json_string(path);
                        printf("}\n");
                } else
                        printf("Migration started: %s\n", strrchr(path, '/') + 1);
                return 0;
        }
        return wait_for(bus, path);
}

static int list_migrations(sd_bus *bus);

/* ---- migrations --watch ------------------------------------------------------------- */

/* What the live table knows of one migration between frames. */
typedef struct Sample {
        MigrationProps p;
        bool final; /* its properties no longer change: not read again */
        bool seen;  /* in the last listing */
        uint64_t last_done;
        double last_t, rate; /* bytes/s, smoothed */
} Sample;

typedef struct MigrationsView {
        Sample *samples;
        size_t n;
} MigrationsView;

static void view_done(MigrationsView *v)
{
        for (size_t i = 0; i < v->n; i++)
                props_done(&v->samples[i].p);
        free(v->samples);
        *v = (MigrationsView){};
}

static Sample *sample_for(MigrationsView *v, const char *id)
{
        Sample *s;

        for (size_t i = 0; i < v->n; i++)
                if (streq_ptr(v->samples[i].p.id, id))
                        return &v->samples[i];
        s = reallocarray(v->samples, v->n + 1, sizeof(Sample));
        if (!s)
                return NULL;
        v->samples = s;
        s = &v->samples[v->n++];
        *s = (Sample){};
        return s;
}

static void sample_update(Sample *s, double t)
{
        uint64_t done = s->p.memory_processed + s->p.disk_processed;

        if (s->last_t > 0 && t > s->last_t && done >= s->last_done && done > 0) {
                double now_rate = (double)(done - s->last_done) / (t - s->last_t);

                s->rate = s->rate > 0 ? 0.5 * s->rate + 0.5 * now_rate : now_rate;
        }
        s->last_t = t;
        s->last_done = done;
        s->final = state_final(s->p.state);
}

/* in flight first, oldest first; then the finished ones, the latest first */
static int sample_cmp(const void *a, const void *b)
{
        const Sample *x = *(const Sample *const *)a, *y = *(const Sample *const *)b;

        if (x->final != y->final)
                return x->final ? 1 : -1;
        if (!x->final)
                return x->p.created < y->p.created ? -1 : x->p.created > y->p.created;
        return x->p.finished > y->p.finished ? -1 : x->p.finished < y->p.finished;
}

static const char *state_color(const char *state)
{
        if (streq_ptr(state, "completed"))
                return COLOR_GREEN;
        if (streq_ptr(state, "failed") || streq_ptr(state, "aborted"))
                return COLOR_RED;
        if (streq_ptr(state, "running") || streq_ptr(state, "post-migrating"))
                return COLOR_CYAN;
        return NULL;
}

static int add_sample_row(Table *t, const Sample *s, bool disks)
{
        const MigrationProps *p = &s->p;
        char bar[11], eta[16];
        unsigned filled = (p->progress > 100 ? 100 : p->progress) / 10;
        int r;

        for (unsigned i = 0; i < 10; i++)
                bar[i] = i < filled ? '#' : '.';
        bar[10] = 0;
        r = table_add(t, NULL, p->id);
        if (r >= 0)
                r = table_add(t, NULL, p->domain_name);
        if (r >= 0)
                r = table_add(t, NULL, isempty(p->destination) ? NULL : p->destination);
        if (r >= 0)
                r = table_add(t, state_color(p->state), p->state);
        if (r >= 0)
                r = table_addf(t, state_color(p->state), "[%s] %3u%%", bar, p->progress);
        if (r >= 0)
                r = p->memory_total > 0 ? table_addf(t, NULL, "%.1f/%.1f", mib(p->memory_processed),
                                                     mib(p->memory_total))
                                        : table_add(t, NULL, NULL);
        if (r >= 0 && disks)
                r = p->disk_total > 0 ? table_addf(t, NULL, "%.1f/%.1f", mib(p->disk_processed),
                                                   mib(p->disk_total))
                                      : table_add(t, NULL, NULL);
        if (s->final) {
                if (r >= 0)
                        r = table_add(t, NULL, NULL);
                if (r >= 0)
                        r = table_add(t, NULL, NULL);
                if (r >= 0)
                        r = streq_ptr(p->state, "completed")
                                    ? table_addf(t, NULL, "%" PRIu64 " ms", p->downtime)
                                    : table_add(t, NULL, NULL);
                if (r >= 0) {
                        if (!isempty(p->error))
                                r = table_add(t, COLOR_RED, p->error);
                        else if (p->finished > p->started && p->started > 0)
                                r = table_addf(t, NULL, "took %.1fs",
                                               (double)(p->finished - p->started) / 1e6);
                        else
                                r = table_add(t, NULL, "");
                }
                return r;
        }
        fmt_eta(s->rate > 0 ? (double)(p->memory_remaining + p->disk_remaining) / s->rate : -1, eta,
                sizeof(eta));
        if (r >= 0)
                r = s->rate > 0 ? table_addf(t, NULL, "%.1f MiB/s", mib((uint64_t)s->rate))
                                : table_add(t, NULL, NULL);
        if (r >= 0)
                r = table_add(t, NULL, eta);
        if (r >= 0)
                r = p->max_downtime > 0 ? table_addf(t, NULL, "max %" PRIu64 " ms", p->max_downtime)
                                        : table_add(t, NULL, NULL);
        if (r >= 0) {
                if (p->iteration > 0 && p->dirty_rate > 0)
                        r = table_addf(t, p->post_copy ? COLOR_YELLOW : NULL,
                                       "pass %" PRIu64 ", dirtying %.1f MiB/s%s", p->iteration,
                                       mib(p->dirty_rate), p->post_copy ? ", post-copy" : "");
                else if (p->iteration > 0)
                        r = table_addf(t, p->post_copy ? COLOR_YELLOW : NULL, "pass %" PRIu64 "%s",
                                       p->iteration, p->post_copy ? ", post-copy" : "");
                else
                        r = table_add(t, p->post_copy ? COLOR_YELLOW : NULL,
                                      p->post_copy ? "post-copy" : "");
        }
        return r;
}

/* One frame of the live table: the migrations this node started, as ListMigrations keeps
 * them (an hour after they ended). */
static int view_migrations(sd_bus *bus, FILE *f, const Screen *screen, void *userdata)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        static const char *const names[] = { "Name", NULL };
        _cleanup_free_ char *node = NULL, *title = NULL;
        _cleanup_free_ Sample **order = NULL;
        MigrationsView *v = userdata;
        const char *id, *domain, *source, *dest, *state, *mode, *path;
        unsigned active = 0, queued = 0, finished = 0;
        bool disks = false;
        double now = now_seconds();
        size_t n = 0;
        int r;

        r = ctl_get_strings(bus, PATH, NODE_IFACE, &error, names, &node);
        if (r >= 0)
                r = ctl_call(bus, PATH, NODE_IFACE, "ListMigrations", &error, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(sssssso)");
        for (size_t i = 0; r >= 0 && i < v->n; i++)
                v->samples[i].seen = false;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssssso)", &id, &domain, &source, &dest,
                                                  &state, &mode, &path)) > 0) {
                MigrationProps p = {};
                Sample *s = sample_for(v, id);

                if (!s)
                        return -ENOMEM;
                s->seen = true;
                if (s->final)
                        continue;
                if (get_props(bus, path, &p, NULL) >= 0) {
                        props_done(&s->p);
                        s->p = p;
                } else if (!s->p.id) {
                        /* gone meanwhile, and never read: what the listing said */
                        props_done(&p);
                        s->p.id = strdup(id);
                        s->p.domain_name = strdup(domain);
                        s->p.destination = strdup(dest);
                        s->p.state = strdup(state);
                        if (!s->p.id || !s->p.domain_name || !s->p.destination || !s->p.state)
                                return -ENOMEM;
                } else {
                        /* keep the last reading: progress never goes back */
                        props_done(&p);
                        continue;
                }
                sample_update(s, now);
        }
        if (r < 0) {
                if (r == -ENOMEM)
                        return r;
                view_title(f, screen, "Migrations: hostwardend does not answer");
                fprintf(f, "%s\n", error_message(&error, r));
                if (screen->watching)
                        fprintf(f, "Trying again every %s.\n", screen->tty ? "second" : "5 s");
                return 1;
        }
        /* forget what hostwardend no longer lists */
        for (size_t i = 0; i < v->n;)
                if (!v->samples[i].seen) {
                        props_done(&v->samples[i].p);
                        v->samples[i] = v->samples[--v->n];
                } else
                        i++;

        order = calloc(v->n ? v->n : 1, sizeof(Sample *));
        if (!order)
                return -ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
                Sample *s = &v->samples[i];

                order[n++] = s;
                if (s->final)
                        finished++;
                else if (streq_ptr(s->p.state, "queued"))
                        queued++;
                else
                        active++;
                if (s->p.disk_total > 0)
                        disks = true;
        }
        qsort(order, n, sizeof(Sample *), sample_cmp);

        if (asprintf(&title, "Migrations from %s: %u in flight, %u queued, %u finished%s", node,
                     active, queued, finished, screen->tty ? " (Ctrl-C quits)" : "") < 0)
                return -ENOMEM;
        view_title(f, screen, title);
        fputc('\n', f);
        if (n == 0) {
                fprintf(f, "No migration started on %s in the last hour.\n", node);
                return 0;
        }
        t = disks ? table_new("ID", "DOMAIN", "TO", "STATE", "PROGRESS", "MEMORY MiB", "DISK MiB",
                              "SPEED", "ETA", "DOWNTIME", "NOTE", NULL)
                  : table_new("ID", "DOMAIN", "TO", "STATE", "PROGRESS", "MEMORY MiB", "SPEED",
                              "ETA", "DOWNTIME", "NOTE", NULL);
        if (!t)
                return -ENOMEM;
        table_set_right(t, 5);
        if (disks)
                table_set_right(t, 6);
        for (size_t i = 0; i < n; i++)
                if (add_sample_row(t, order[i], disks) < 0)
                        return -ENOMEM;
        table_print(t, f, screen->width, screen->color);
        return 0;
}

int verb_migrations(sd_bus *bus)
{
        if (arg_watch) {
                MigrationsView v = {};
                int r = watch_run(bus, view_migrations, &v);

                view_done(&v);
                return r;
        }
        return list_migrations(bus);
}

static int list_migrations(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *id, *domain, *source, *dest, *state, *mode, *path;
        unsigned n = 0;
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "ListMigrations", &error, &reply, NULL);
        if (r < 0) {
                fprintf(stderr, "Could not list the migrations: %s\n", error_message(&error, r));
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sssssso)");
        if (r < 0)
                return 1;
        if (arg_json)
                printf("[");
        else
                printf("%-16s %-24s %-12s %-12s %-15s %s\n", "ID", "DOMAIN", "SOURCE",
                       "DESTINATION", "STATE", "MODE");
        while ((r = sd_bus_message_read(reply, "(sssssso)", &id, &domain, &source, &dest, &state,
                                        &mode, &path)) > 0) {
                if (arg_json) {
                        printf("%s{\"id\":", n ? "," : "");
                        json_string(id);
                        printf(",\"domain\":");
                        json_string(domain);
                        printf(",\"source\":");
                        json_string(source);
                        printf(",\"destination\":");
                        json_string(dest);
                        printf(",\"state\":");
                        json_string(state);
                        printf(",\"mode\":");
                        json_string(mode);
                        printf(",\"path\":");
                        json_string(path);
                        printf("}");
                } else
                        printf("%-16s %-24s %-12s %-12s %-15s %s\n", id, domain, source,
                               isempty(dest) ? "-" : dest, state, mode);
                n++;
        }
        if (arg_json)
                printf("]\n");
        else
                printf("\n%u migration(s) listed.\n", n);
        return r < 0 ? 1 : 0;
}

/* A migration the daemon does not have: said so, with where to look. */
static int no_such_migration(const char *path)
{
        fprintf(stderr,
                "No migration '%s' on this node: 'hostwardenctl migrations' lists them (a "
                "migration is listed on its source node, for an hour after it ended).\n",
                strrchr(path, '/') + 1);
        return 1;
}

static int show(sd_bus *bus, const char *path)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        MigrationProps p = {};
        int r;

        r = get_props(bus, path, &p, &error);
        if (r < 0 && sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                            SD_BUS_ERROR_UNKNOWN_INTERFACE)) {
                props_done(&p);
                return no_such_migration(path);
        }
        if (r < 0) {
                fprintf(stderr, "Could not read migration %s: %s\n", strrchr(path, '/') + 1,
                        error_message(&error, r));
                props_done(&p);
                return 1;
        }
        if (arg_json) {
                const struct {
                        const char *k, *v;
                } strs[] = {
                        { "id", p.id },
                        { "domain", p.domain },
                        { "domain_name", p.domain_name },
                        { "source", p.source },
                        { "destination", p.destination },
                        { "mode", p.mode },
                        { "state", p.state },
                        { "error", p.error },
                        { "policy", p.policy },
                };
                const struct {
                        const char *k;
                        uint64_t v;
                } nums[] = {
                        { "created", p.created },
                        { "started", p.started },
                        { "finished", p.finished },
                        { "memory_total_bytes", p.memory_total },
                        { "memory_processed_bytes", p.memory_processed },
                        { "memory_remaining_bytes", p.memory_remaining },
                        { "disk_total_bytes", p.disk_total },
                        { "disk_processed_bytes", p.disk_processed },
                        { "disk_remaining_bytes", p.disk_remaining },
                        { "dirty_rate", p.dirty_rate },
                        { "iteration", p.iteration },
                        { "max_downtime_ms", p.max_downtime },
                        { "downtime_ms", p.downtime },
                        { "network_downtime_us", p.network_downtime },
                        { "progress", p.progress },
                };

                printf("{");
                for (size_t i = 0; i < ELEMENTSOF(strs); i++) {
                        printf("%s\"%s\":", i ? "," : "", strs[i].k);
                        json_string(strs[i].v);
                }
                for (size_t i = 0; i < ELEMENTSOF(nums); i++)
                        printf(",\"%s\":%" PRIu64, nums[i].k, nums[i].v);
                printf(",\"post_copy\":%s}\n", p.post_copy ? "true" : "false");
        } else {
                printf("%24s: %s\n", "Id", p.id);
                printf("%24s: %s (%s)\n", "Domain", p.domain_name, p.domain);
                printf("%24s: %s -> %s\n", "Nodes", p.source,
                       isempty(p.destination) ? "(not chosen yet)" : p.destination);
                printf("%24s: %s, %s%s\n", "State", p.state, p.mode,
                       p.post_copy ? ", post-copy" : "");
                if (!isempty(p.error))
                        printf("%24s: %s\n", "Error", p.error);
                if (!isempty(p.policy))
                        printf("%24s: %s\n", "Policy", p.policy);
                printf("%24s: %u%%\n", "Progress", p.progress);
                printf("%24s: %" PRIu64 " / %" PRIu64 " / %" PRIu64 "\n", "Memory total/done/left",
                       p.memory_total, p.memory_processed, p.memory_remaining);
                printf("%24s: %" PRIu64 " / %" PRIu64 " / %" PRIu64 "\n", "Disk total/done/left",
                       p.disk_total, p.disk_processed, p.disk_remaining);
                printf("%24s: %" PRIu64 " bytes/s, iteration %" PRIu64 "\n", "Dirty rate",
                       p.dirty_rate, p.iteration);
                printf("%24s: %" PRIu64 " ms max, %" PRIu64 " ms measured\n", "Downtime",
                       p.max_downtime, p.downtime);
                if (p.network_downtime > 0)
                        printf("%24s: %.1f ms after the switchover\n", "Switch learned it",
                               (double)p.network_downtime / 1e3);
                else
                        printf("%24s: %s\n", "Switch learned it", "unknown");
        }
        props_done(&p);
        return 0;
}

static int call_migration(sd_bus *bus, const char *path, const char *member, const char *what)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, path, MIG_IFACE, member);
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, arg_ask_password);
        /* Abort answers once the migration has ended: a disk copy being cancelled may take a
         * while; polkit's own prompt is bounded by this too */
        if (r >= 0)
                r = sd_bus_call(bus, m, 10 * USEC_PER_MINUTE, &error, NULL);
        if (r < 0) {
                if (sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                           SD_BUS_ERROR_UNKNOWN_METHOD))
                        return no_such_migration(path);
                fprintf(stderr, "Could not %s migration %s: %s\n", what, strrchr(path, '/') + 1,
                        error_message(&error, r));
                return 1;
        }
        /* Confirm and Revert answer when done: what the migration is now */
        if (arg_json && (streq(member, "Confirm") || streq(member, "Revert")))
                return show(bus, path);
        if (streq(member, "Confirm"))
                printf("Migration %s confirmed.\n", strrchr(path, '/') + 1);
        else if (streq(member, "Revert"))
                printf("Migration %s reverted.\n", strrchr(path, '/') + 1);
        return 0;
}

/* A migration's ID as ListMigrations shows it (16 hex digits), or its object path. */
static bool id_is_valid(const char *s)
{
        if (s[0] == '/')
                return startswith(s, PATH "/migration/") != NULL;
        if (strlen(s) != 16)
                return false;
        for (const char *p = s; *p; p++)
                if (!strchr("0123456789abcdef", *p))
                        return false;
        return true;
}

int verb_migration(sd_bus *bus)
{
        _cleanup_free_ char *path = path_of(arg_rest[1]);
        const char *sub = arg_rest[0];

        if (!path)
                return 1;
        if (!id_is_valid(arg_rest[1])) {
                fprintf(stderr,
                        "'%s' is no migration ID: expected 16 hexadecimal digits, as "
                        "'hostwardenctl migrations' shows them.\n",
                        arg_rest[1]);
                return 1;
        }
        if (streq(sub, "show"))
                return show(bus, path);
        if (streq(sub, "abort"))
                return call_migration(bus, path, "Abort", "abort");
        if (streq(sub, "force-complete"))
                return call_migration(bus, path, "ForceComplete", "force-complete");
        if (streq(sub, "confirm"))
                return call_migration(bus, path, "Confirm", "confirm");
        if (streq(sub, "revert"))
                return call_migration(bus, path, "Revert", "revert");
        fprintf(stderr,
                "Unknown 'migration %s'; expected show, abort, force-complete, confirm or "
                "revert.\n",
                sub);
        return 1;
}
