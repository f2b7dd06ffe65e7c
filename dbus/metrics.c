/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The numbers behind the metrics (metrics.h, docs/metrics.md) and their exposition;
 * metrics-textfile.c writes them out.
 *
 * Counters live as long as this hostwardend: a restart starts them from zero again, which
 * Prometheus' rate() and increase() take for a reset. Every label set an alert may look for
 * is there from the start with 0, so that increase() sees the first event too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maintenance-drain.h"
#include "metrics-internal.h"
#include "metrics-text.h"
#include "migration.h"
#include "node-state.h"
#include "paths.h"
#include "refusals.h"
#include "store-attach.h"

/* a guest's migrations are shown this long after its last one, then its series ends */
#define DOMAIN_SERIES_KEEP (24 * USEC_PER_HOUR)
/* label sets beyond this many are not counted (a guest name per migration, at worst) */
#define COUNTERS_MAX 2048

typedef enum CounterFamily {
        COUNTER_MIGRATIONS_STARTED,
        COUNTER_MIGRATIONS,
        COUNTER_DOMAIN_MIGRATIONS,
        COUNTER_DRAINS,
        COUNTER_REBUILDS,
        COUNTER_FENCES,
        COUNTER_RESTARTS,
        COUNTER_HEARTBEAT_FAILURES,
        _COUNTER_FAMILY_MAX,
} CounterFamily;

static const struct {
        const char *name, *help;
        const char *label[2];
} counter_families[_COUNTER_FAMILY_MAX] = {
        [COUNTER_MIGRATIONS_STARTED] = { "hostwarden_migrations_started_total",
                                         "Outgoing migrations started on this node.",
                                         { "mode" } },
        [COUNTER_MIGRATIONS] = { "hostwarden_migrations_total",
                                 "Outgoing migrations ended on this node, by result.",
                                 { "mode", "result" } },
        [COUNTER_DOMAIN_MIGRATIONS] = { "hostwarden_domain_migrations_total",
                                        "Outgoing migrations of one guest ended on this node "
                                        "(guests seen in the last 24 hours).",
                                        { "domain" } },
        [COUNTER_DRAINS] = { "hostwarden_drains_total",
                             "Live evacuations (EvacuateLive) of this node, by result.",
                             { "result" } },
        [COUNTER_REBUILDS] = { "hostwarden_rebuilds_total",
                               "Instances of fenced nodes rebuilt (or not) on this node.",
                               { "result" } },
        [COUNTER_FENCES] = { "hostwarden_fences_total",
                             "Fence agent actions run by this node, by the power state found.",
                             { "action", "result" } },
        [COUNTER_RESTARTS] = { "hostwarden_restarts_total",
                               "Crashed guests restarted or moved by this node (HA).",
                               { "result" } },
        [COUNTER_HEARTBEAT_FAILURES] = { "hostwarden_store_heartbeat_failures_total",
                                         "Heartbeats this node could not write to the store.",
                                         {} },
};

typedef struct Counter {
        CounterFamily family;
        char *value[2];
        uint64_t count;
        uint64_t last; /* CLOCK_MONOTONIC of the last count */
} Counter;

enum { MODE_LIVE, MODE_BLOCK, MODE_COLD, _MODE_MAX };
static const char *const mode_names[_MODE_MAX] = { "live", "block", "cold" };

/* seconds: TCG guests migrate in under a second, big ones in tens of minutes */
static const double duration_bounds[] = { 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600 };
/* seconds: the switchover, from a few ms to the seconds that break TCP sessions */
static const double downtime_bounds[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
/* bytes: 1 MiB to 1 TiB, ×4 each */
static const double bytes_bounds[] = { 1048576.0,     4194304.0,      16777216.0,     67108864.0,
                                       268435456.0,   1073741824.0,   4294967296.0,   17179869184.0,
                                       68719476736.0, 274877906944.0, 1099511627776.0 };
/* seconds: a local file's fsync to an etcd quorum across racks */
static const double store_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,   0.25,   0.5,   1,    2.5,   5 };

/* What ListNodes showed at the last heartbeat. */
typedef struct NodeSeen {
        char *name;
        const char *state; /* static strings */
        const char *fence;
} NodeSeen;

struct Metrics {
        Counter *counters;
        size_t n_counters;
        MetricsHistogram duration[_MODE_MAX], downtime[_MODE_MAX], bytes[_MODE_MAX];
        MetricsHistogram heartbeat;
        NodeSeen *nodes;
        size_t n_nodes;
        bool nodes_known;
        MetricsTextfile textfile;
};

static const char *const node_states[] = { "up", "disabled", "down", "forced-down", "unknown" };
static const char *const refusal_reasons[] = {
        /* hostwarden-hook's reasons (hooks/), so that each series is there before its first */
        "deleted", "disabled", "evacuated", "fenced", "forced-down", "owned-elsewhere", "unsynced",
};

static bool domain_expired(const Counter *c, uint64_t now)
{
        return c->family == COUNTER_DOMAIN_MIGRATIONS && now > c->last + DOMAIN_SERIES_KEEP;
}

static Counter *expired_domain(Metrics *x)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        for (size_t i = 0; i < x->n_counters; i++)
                if (domain_expired(&x->counters[i], now))
                        return &x->counters[i];
        return NULL;
}

static Counter *counter_find(Metrics *x, CounterFamily family, const char *v0, const char *v1)
{
        Counter *c;

        for (size_t i = 0; i < x->n_counters; i++) {
                c = &x->counters[i];
                if (c->family == family && streq_ptr(c->value[0], v0) && streq_ptr(c->value[1], v1))
                        return c;
        }
        if (x->n_counters >= COUNTERS_MAX) {
                /* full: a guest's label set takes the place of one no longer shown (only
                 * guests' label sets grow in number) */
                char *v;

                c = family == COUNTER_DOMAIN_MIGRATIONS ? expired_domain(x) : NULL;
                if (!c || !(v = strdup(v0)))
                        return NULL;
                free(c->value[0]);
                *c = (Counter){ .family = family, .value = { v } };
                return c;
        }
        c = reallocarray(x->counters, x->n_counters + 1, sizeof(Counter));
        if (!c)
                return NULL;
        x->counters = c;
        c = &x->counters[x->n_counters];
        *c = (Counter){ .family = family };
        if ((v0 && !(c->value[0] = strdup(v0))) || (v1 && !(c->value[1] = strdup(v1)))) {
                free(c->value[0]);
                return NULL;
        }
        x->n_counters++;
        return c;
}

static void count(Metrics *x, CounterFamily family, const char *v0, const char *v1)
{
        Counter *c = counter_find(x, family, v0, v1);

        if (c) {
                c->count++;
                c->last = now_usec(CLOCK_MONOTONIC);
        }
}

/* The label sets that exist from the start, at 0. */
static void seed(Metrics *x)
{
        static const char *const results[] = { "completed", "failed", "aborted" };
        static const char *const fence_actions[] = { "status", "off", "on" };
        static const char *const fence_results[] = { "on", "off", "failed" };

        for (size_t i = 0; i < _MODE_MAX; i++) {
                (void)counter_find(x, COUNTER_MIGRATIONS_STARTED, mode_names[i], NULL);
                for (size_t k = 0; k < ELEMENTSOF(results); k++)
                        (void)counter_find(x, COUNTER_MIGRATIONS, mode_names[i], results[k]);
        }
        (void)counter_find(x, COUNTER_DRAINS, "queued", NULL);
        (void)counter_find(x, COUNTER_DRAINS, "failed", NULL);
        (void)counter_find(x, COUNTER_REBUILDS, "rebuilt", NULL);
        (void)counter_find(x, COUNTER_REBUILDS, "failed", NULL);
        (void)counter_find(x, COUNTER_REBUILDS, "refused", NULL);
        for (size_t i = 0; i < ELEMENTSOF(fence_actions); i++)
                for (size_t k = 0; k < ELEMENTSOF(fence_results); k++)
                        (void)counter_find(x, COUNTER_FENCES, fence_actions[i], fence_results[k]);
        (void)counter_find(x, COUNTER_HEARTBEAT_FAILURES, NULL, NULL);
}

Metrics *metrics_new(void)
{
        Metrics *x = calloc(1, sizeof(Metrics));

        if (!x)
                return NULL;
        for (size_t i = 0; i < _MODE_MAX; i++) {
                metrics_histogram_init(&x->duration[i], duration_bounds,
                                       ELEMENTSOF(duration_bounds));
                metrics_histogram_init(&x->downtime[i], downtime_bounds,
                                       ELEMENTSOF(downtime_bounds));
                metrics_histogram_init(&x->bytes[i], bytes_bounds, ELEMENTSOF(bytes_bounds));
        }
        metrics_histogram_init(&x->heartbeat, store_bounds, ELEMENTSOF(store_bounds));
        seed(x);
        return x;
}

MetricsTextfile *metrics_textfile_state(Metrics *x)
{
        return &x->textfile;
}

static void nodes_clear(Metrics *x)
{
        for (size_t i = 0; i < x->n_nodes; i++)
                free(x->nodes[i].name);
        free(x->nodes);
        x->nodes = NULL;
        x->n_nodes = 0;
}

void metrics_state_free(Metrics *x)
{
        if (!x)
                return;
        for (size_t i = 0; i < x->n_counters; i++) {
                free(x->counters[i].value[0]);
                free(x->counters[i].value[1]);
        }
        free(x->counters);
        nodes_clear(x);
        free(x);
}

static int mode_index(const char *mode)
{
        for (int i = 0; i < _MODE_MAX; i++)
                if (streq_ptr(mode, mode_names[i]))
                        return i;
        return -1;
}

static void migration_ended(Metrics *x, const HistoryRecord *h)
{
        int mode = mode_index(h->mode);

        count(x, COUNTER_MIGRATIONS, h->mode, h->result);
        if (h->domain_name)
                count(x, COUNTER_DOMAIN_MIGRATIONS, h->domain_name, NULL);
        if (mode < 0)
                return;
        /* every migration's bytes crossed the network; only a completed one's duration and
         * downtime say how long migrations take and what the guests felt */
        metrics_histogram_observe(&x->bytes[mode], (double)h->bytes);
        if (!streq(h->result, "completed"))
                return;
        metrics_histogram_observe(&x->duration[mode],
                                  (double)(h->finished - h->started) / USEC_PER_SEC);
        if (mode != MODE_COLD) /* a cold migration's guest is off the whole time */
                metrics_histogram_observe(&x->downtime[mode], (double)h->downtime / USEC_PER_SEC);
}

void metrics_operation_ended(Manager *m, const HistoryRecord *h)
{
        Metrics *x = m->metrics;

        if (!x || !h->kind || !h->result)
                return;
        if (streq(h->kind, "migration"))
                migration_ended(x, h);
        else if (streq(h->kind, "drain"))
                count(x, COUNTER_DRAINS, h->result, NULL);
        else if (streq(h->kind, "rebuild"))
                count(x, COUNTER_REBUILDS, h->result, NULL);
        else if (streq(h->kind, "fence"))
                count(x, COUNTER_FENCES, h->mode, h->result);
        else if (streq(h->kind, "restart"))
                count(x, COUNTER_RESTARTS, h->result, NULL);
        metrics_write_soon(m);
}

void metrics_migration_started(Manager *m, const char *mode)
{
        if (m->metrics)
                count(m->metrics, COUNTER_MIGRATIONS_STARTED, mode, NULL);
}

void metrics_heartbeat_written(Manager *m, int r, uint64_t usec)
{
        if (!m->metrics)
                return;
        metrics_histogram_observe(&m->metrics->heartbeat, (double)usec / USEC_PER_SEC);
        if (r < 0)
                count(m->metrics, COUNTER_HEARTBEAT_FAILURES, NULL, NULL);
}

void metrics_nodes_listed(Manager *m, const NodeRecord *nodes, size_t n, uint64_t now)
{
        Metrics *x = m->metrics;

        if (!x)
                return;
        nodes_clear(x);
        x->nodes = calloc(n ?: 1, sizeof(NodeSeen));
        x->nodes_known = x->nodes != NULL;
        for (size_t i = 0; x->nodes && i < n; i++) {
                NodeSeen *s = &x->nodes[x->n_nodes];

                s->name = strdup(nodes[i].name);
                if (!s->name)
                        break;
                s->state = node_state_of(m, &nodes[i], now);
                s->fence = fence_state_to_string(nodes[i].fence);
                x->n_nodes++;
        }
}

/* ---- exposition ------------------------------------------------------------------------- */

static void put_counters(FILE *f, Metrics *x, uint64_t now)
{
        for (CounterFamily fam = 0; fam < _COUNTER_FAMILY_MAX; fam++) {
                metrics_text_family(f, counter_families[fam].name, "counter",
                                    counter_families[fam].help);
                for (size_t i = 0; i < x->n_counters; i++) {
                        const Counter *c = &x->counters[i];
                        const char *labels[] = { counter_families[fam].label[0], c->value[0],
                                                 counter_families[fam].label[1], c->value[1],
                                                 NULL };

                        if (c->family != fam)
                                continue;
                        if (domain_expired(c, now))
                                continue;
                        metrics_text_sample(f, counter_families[fam].name,
                                            labels[0] && labels[1] ? labels : NULL,
                                            (double)c->count);
                }
        }
}

static void put_histograms(FILE *f, Metrics *x)
{
        static const struct {
                const char *name, *help;
                size_t offset;
                bool cold;
        } families[] = {
                { "hostwarden_migration_duration_seconds",
                  "Wall time of completed outgoing migrations, from the call to the end.",
                  offsetof(Metrics, duration), true },
                { "hostwarden_migration_downtime_seconds",
                  "Measured downtime (switchover) of completed live and block migrations.",
                  offsetof(Metrics, downtime), false },
                { "hostwarden_migration_data_processed_bytes",
                  "Memory and disk bytes sent by ended outgoing migrations.",
                  offsetof(Metrics, bytes), true },
        };

        for (size_t i = 0; i < ELEMENTSOF(families); i++) {
                const MetricsHistogram *h = (const void *)((const char *)x + families[i].offset);

                metrics_text_family(f, families[i].name, "histogram", families[i].help);
                for (size_t mode = 0; mode < _MODE_MAX; mode++) {
                        const char *labels[] = { "mode", mode_names[mode], NULL };

                        if (mode == MODE_COLD && !families[i].cold)
                                continue;
                        metrics_text_histogram(f, families[i].name, labels, &h[mode]);
                }
        }
        metrics_text_family(f, "hostwarden_store_heartbeat_duration_seconds", "histogram",
                            "Time the heartbeat's write to the cluster store took.");
        metrics_text_histogram(f, "hostwarden_store_heartbeat_duration_seconds", NULL,
                               &x->heartbeat);
}

static void put_refusals(FILE *f)
{
        RefusalCount *c = NULL;
        size_t n = 0;

        metrics_text_family(f, "hostwarden_hook_refusals_total", "counter",
                            "Domain starts and incoming migrations refused by hostwarden-hook "
                            "since this node booted, by reason.");
        if (refusal_counts_read(hw_runtime_dir(), &c, &n) < 0)
                n = 0;
        for (size_t i = 0; i < ELEMENTSOF(refusal_reasons); i++) {
                bool counted = false;

                for (size_t k = 0; k < n && !counted; k++)
                        counted = streq(c[k].reason, refusal_reasons[i]);
                if (!counted)
                        metrics_text_sample(
                                f, "hostwarden_hook_refusals_total",
                                (const char *const[]){ "reason", refusal_reasons[i], NULL }, 0);
        }
        for (size_t k = 0; k < n; k++)
                metrics_text_sample(f, "hostwarden_hook_refusals_total",
                                    (const char *const[]){ "reason", c[k].reason, NULL },
                                    (double)c[k].count);
        free(c);
}

static void put_state_set(FILE *f, const char *name, const char *label, const char *const *states,
                          size_t n, const char *current)
{
        for (size_t i = 0; i < n; i++)
                metrics_text_sample(f, name, (const char *const[]){ label, states[i], NULL },
                                    streq_ptr(states[i], current));
}

static void put_gauges(FILE *f, Manager *m)
{
        static const char *const maintenance_states[] = { "off", "draining", "ready", "blocked" };
        static const char *const flight_states[] = { "queued", "preparing", "running",
                                                     "post-migrating", "verify" };
        Metrics *x = m->metrics;

        metrics_text_family(f, "hostwarden_migrations_in_flight", "gauge",
                            "Outgoing migrations of this node not ended yet, by state.");
        for (size_t i = 0; i < ELEMENTSOF(flight_states); i++) {
                size_t k = 0;

                for (Migration *mig = m->migrations; mig; mig = mig->next)
                        k += streq(migration_state_to_string(mig->pub.state), flight_states[i]);
                metrics_text_sample(f, "hostwarden_migrations_in_flight",
                                    (const char *const[]){ "state", flight_states[i], NULL },
                                    (double)k);
        }
        if (x->nodes_known) {
                metrics_text_family(f, "hostwarden_nodes", "gauge",
                                    "Nodes of the cluster by state, as this node sees them.");
                for (size_t i = 0; i < ELEMENTSOF(node_states); i++) {
                        size_t k = 0;

                        for (size_t j = 0; j < x->n_nodes; j++)
                                k += streq(x->nodes[j].state, node_states[i]);
                        metrics_text_sample(f, "hostwarden_nodes",
                                            (const char *const[]){ "state", node_states[i], NULL },
                                            (double)k);
                }
                metrics_text_family(f, "hostwarden_node_state", "gauge",
                                    "1 for each node's state and fence state as this node sees "
                                    "them (ListNodes).");
                for (size_t j = 0; j < x->n_nodes; j++)
                        metrics_text_sample(f, "hostwarden_node_state",
                                            (const char *const[]){ "node", x->nodes[j].name,
                                                                   "state", x->nodes[j].state,
                                                                   "fence", x->nodes[j].fence,
                                                                   NULL },
                                            1);
        }
        if (m->store) {
                metrics_text_family(f, "hostwarden_maintenance_state", "gauge",
                                    "1 for this node's maintenance state.");
                put_state_set(f, "hostwarden_maintenance_state", "state", maintenance_states,
                              ELEMENTSOF(maintenance_states), maintenance_state_word(m));
        }
        metrics_text_family(f, "hostwarden_store_attached", "gauge",
                            "1 when this node is attached to its cluster store and its last "
                            "heartbeat was written.");
        metrics_text_sample(f, "hostwarden_store_attached", NULL,
                            store_attach_state(m) == STORE_STATE_ATTACHED);
}

void metrics_format(Manager *m, FILE *f)
{
        put_counters(f, m->metrics, now_usec(CLOCK_MONOTONIC));
        put_histograms(f, m->metrics);
        put_refusals(f);
        put_gauges(f, m);
}
