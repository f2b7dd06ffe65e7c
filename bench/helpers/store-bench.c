/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store-bench dir PATH | etcd URL  NODES INSTANCES OPS
 *
 * One store with NODES node records and INSTANCES instance records. A background thread
 * plays the other NODES - 1 nodes: each heartbeats every 10 s (NODES / 10 heartbeats a
 * second, round-robin, through its own Store as another process would). Meanwhile this
 * node times OPS of each, alternating:
 *   heartbeat  store_heartbeat() of this node (etcd: with its lease keepalive)
 *   cas        an ownership change of a random instance (get + store_instance_cas)
 *   listnodes  store_node_list()            (every OPS/10th round)
 *   listinst   store_instance_list()        (every OPS/10th round)
 * and prints one line per kind: "KIND p50_us p99_us mean_us n".
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

#define UUID_FMT "%08x-0000-4000-8000-%012x"

static const char *backend, *where;
static unsigned n_nodes, n_instances;
static atomic_bool stop_load;

static double now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int open_as(const char *node, Store **ret)
{
        char *endpoints[] = { (char *)where, NULL };
        Store *s = NULL;
        int r;

        r = streq(backend, "etcd") ? store_open_etcd(endpoints, "/hwbench", node, 30,
                                                     &(EtcdOptions){ .insecure = true }, &s)
                                   : store_open_dir(where, node, &s);
        if (r < 0)
                return r;
        /* the first one makes the bench's cluster, as init-cluster does */
        r = store_cluster_init(s, NULL, true, NULL);
        if (r < 0 && r != -EEXIST) {
                store_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static int bump(NodeRecord *r, void *userdata)
{
        r->heartbeat++;
        r->heartbeat_time = now_realtime();
        return 0;
}

/* The other nodes' heartbeats, NODES / 10 a second. */
static void *load(void *userdata)
{
        Store *s = NULL;
        double gap = 10e6 / (n_nodes > 1 ? n_nodes - 1 : 1), next = now_us();
        unsigned i = 1;

        if (open_as("load", &s) < 0)
                return NULL;
        while (!atomic_load(&stop_load) && n_nodes > 1) {
                char name[32];
                double t = now_us();

                if (t < next) {
                        usleep((useconds_t)(next - t));
                        continue;
                }
                next += gap;
                snprintf(name, sizeof(name), "sim%u", i);
                (void)store_node_update(s, name, bump, NULL, NULL);
                i = i + 1 < n_nodes ? i + 1 : 1;
        }
        store_free(s);
        return NULL;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static void report(const char *kind, double *t, size_t n)
{
        double sum = 0;

        if (n == 0)
                return;
        qsort(t, n, sizeof(double), cmp);
        for (size_t i = 0; i < n; i++)
                sum += t[i];
        printf("%s %.1f %.1f %.1f %zu\n", kind, t[n / 2], t[(n * 99) / 100], sum / (double)n, n);
}

static int populate(Store *s)
{
        InstanceRecord *inst = NULL;
        size_t n = 0;
        int r;

        /* a store filled by an earlier run (another NODES) is used as it is */
        r = store_instance_list(s, &inst, &n);
        instance_record_array_free(inst, n);
        if (r < 0)
                return r;

        for (unsigned i = 1; i < n_nodes; i++) {
                char name[32];

                snprintf(name, sizeof(name), "sim%u", i);
                r = store_node_update(s, name, bump, NULL, NULL);
                if (r < 0)
                        return r;
        }
        for (unsigned i = 0; n < n_instances && i < n_instances; i++) {
                InstanceRecord rec = { .owner = (char *)"bench", .time = now_realtime() };
                char name[32];

                snprintf(rec.uuid, sizeof(rec.uuid), UUID_FMT, i, i);
                snprintf(name, sizeof(name), "instance-%08x", i);
                rec.name = name;
                r = store_instance_cas(s, &rec, 0, NULL);
                if (r < 0 && r != -EEXIST)
                        return r;
        }
        return 0;
}

int main(int argc, char *argv[])
{
        _cleanup_(store_freep) Store *s = NULL;
        unsigned ops;
        double *hb, *cas, *ln, *li;
        size_t n_hb = 0, n_cas = 0, n_ln = 0, n_li = 0;
        pthread_t thread;
        int r;

        if (argc != 6) {
                fprintf(stderr, "usage: store-bench dir PATH | etcd URL  NODES INSTANCES OPS\n");
                return 2;
        }
        backend = argv[1];
        where = argv[2];
        n_nodes = (unsigned)atoi(argv[3]);
        n_instances = (unsigned)atoi(argv[4]);
        ops = (unsigned)atoi(argv[5]);
        if (n_nodes < 1 || n_instances < 1 || ops < 10)
                return 2;
        r = open_as("bench", &s);
        if (r >= 0)
                r = populate(s);
        if (r < 0) {
                fprintf(stderr, "store-bench: %s at %s: %s\n", backend, where, strerror(-r));
                return 1;
        }
        hb = calloc(ops, sizeof(double));
        cas = calloc(ops, sizeof(double));
        ln = calloc(ops, sizeof(double));
        li = calloc(ops, sizeof(double));
        if (!hb || !cas || !ln || !li)
                return 1;
        srandom(42);
        if (pthread_create(&thread, NULL, load, NULL) != 0)
                return 1;
        for (unsigned i = 0; i < ops && r >= 0; i++) {
                _cleanup_(instance_record_done) InstanceRecord cur = {};
                char uuid[37];
                unsigned k = (unsigned)random() % n_instances;
                double t = now_us();

                r = store_heartbeat(s);
                hb[n_hb++] = now_us() - t;
                if (r < 0)
                        break;

                /* an ownership change: read, then compare-and-swap */
                snprintf(uuid, sizeof(uuid), UUID_FMT, k, k);
                t = now_us();
                r = store_instance_get(s, uuid, &cur);
                if (r >= 0) {
                        InstanceRecord next = cur;

                        next.owner = (char *)(streq(cur.owner, "bench") ? "sim1" : "bench");
                        next.time = now_realtime();
                        r = store_instance_cas(s, &next, cur.generation, NULL);
                }
                cas[n_cas++] = now_us() - t;

                if (r >= 0 && i % 10 == 0) {
                        NodeRecord *nodes = NULL;
                        InstanceRecord *inst = NULL;
                        size_t n = 0;

                        t = now_us();
                        r = store_node_list(s, &nodes, &n);
                        ln[n_ln++] = now_us() - t;
                        node_record_array_free(nodes, n);
                        if (r >= 0) {
                                t = now_us();
                                r = store_instance_list(s, &inst, &n);
                                li[n_li++] = now_us() - t;
                                instance_record_array_free(inst, n);
                        }
                }
        }
        atomic_store(&stop_load, true);
        pthread_join(thread, NULL);
        if (r < 0) {
                fprintf(stderr, "store-bench: %s: %s\n", backend, strerror(-r));
                return 1;
        }
        report("heartbeat", hb, n_hb);
        report("cas", cas, n_cas);
        report("listnodes", ln, n_ln);
        report("listinst", li, n_li);
        free(hb);
        free(cas);
        free(ln);
        free(li);
        return 0;
}
