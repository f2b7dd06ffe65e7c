/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hw-seed-store: writes records into a dir store for the daemon suite (tests/daemon), through
 * libhostwarden's store API, so that the files are what the daemon itself would read:
 *
 *   hw-seed-store STATE_DIR node NAME [address=A] [disabled=REASON] [forced-down=BY]
 *                                     [fence=unknown|on|off]
 *   hw-seed-store STATE_DIR instance UUID NAME OWNER [evacuated-from=NODE] [deleted]
 *                                     [time=USEC]
 *   hw-seed-store STATE_DIR history NODE UUID NAME FINISHED_USEC
 *                                     (a completed live migration of NAME run by NODE, that
 *                                      finished at FINISHED_USEC: an old one, for the archive)
 *   hw-seed-store STATE_DIR definition UUID      (the domain XML on stdin)
 *   hw-seed-store STATE_DIR heartbeat NAME MS    (NAME alive: a heartbeat every MS
 *                                                 milliseconds until killed)
 *
 * A node record written here never gets another heartbeat (unless "heartbeat" runs for it):
 * the daemon sees that node down after [cluster] down_after. Test code only: not installed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

typedef struct NodeArgs {
        int argc;
        char **argv;
} NodeArgs;

static const char *arg_value(const char *arg, const char *key)
{
        size_t n = strlen(key);

        return strncmp(arg, key, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}

static int fill_node(NodeRecord *rec, void *userdata)
{
        const NodeArgs *a = userdata;
        const char *v;

        if (rec->heartbeat == 0)
                rec->heartbeat = 1;
        for (int i = 0; i < a->argc; i++) {
                if ((v = arg_value(a->argv[i], "address"))) {
                        if (free_and_strdup(&rec->address, v) < 0)
                                return -ENOMEM;
                } else if ((v = arg_value(a->argv[i], "disabled"))) {
                        rec->disabled = true;
                        rec->disabled_since = now_realtime();
                        if (free_and_strdup(&rec->disabled_reason, v) < 0)
                                return -ENOMEM;
                } else if ((v = arg_value(a->argv[i], "forced-down"))) {
                        rec->forced_down = true;
                        rec->forced_down_since = now_realtime();
                        if (free_and_strdup(&rec->forced_down_by, v) < 0)
                                return -ENOMEM;
                } else if ((v = arg_value(a->argv[i], "fence"))) {
                        rec->fence = fence_state_from_string(v);
                        rec->fence_time = now_realtime();
                } else {
                        fprintf(stderr, "hw-seed-store: unknown node argument '%s'\n", a->argv[i]);
                        return -EINVAL;
                }
        }
        return 0;
}

static int seed_instance(Store *s, int argc, char **argv)
{
        InstanceRecord rec = { .power = INSTANCE_POWER_RUNNING };
        InstanceRecord old = {};
        uint64_t gen = 0;
        const char *v;

        if (argc < 3) {
                fprintf(stderr, "hw-seed-store: instance UUID NAME OWNER [options]\n");
                return -EINVAL;
        }
        snprintf(rec.uuid, sizeof(rec.uuid), "%s", argv[0]);
        rec.name = argv[1];
        rec.owner = argv[2];
        rec.time = now_realtime();
        for (int i = 3; i < argc; i++) {
                if ((v = arg_value(argv[i], "evacuated-from")))
                        rec.evacuated_from = (char *)v;
                else if (streq(argv[i], "deleted"))
                        rec.deleted = true;
                else if ((v = arg_value(argv[i], "time"))) {
                        if (parse_uint_range(v, 1, UINT64_MAX, &rec.time) < 0)
                                return -EINVAL;
                } else {
                        fprintf(stderr, "hw-seed-store: unknown instance argument '%s'\n", argv[i]);
                        return -EINVAL;
                }
        }
        if (store_instance_get(s, rec.uuid, &old) >= 0) {
                gen = old.generation;
                instance_record_done(&old);
        }
        return store_instance_cas(s, &rec, gen, NULL);
}

static int seed_definition(Store *s, int argc, char **argv)
{
        char buf[65536];
        size_t n;

        if (argc < 1) {
                fprintf(stderr, "hw-seed-store: definition UUID < XML\n");
                return -EINVAL;
        }
        n = fread(buf, 1, sizeof(buf) - 1, stdin);
        if (ferror(stdin) || n == sizeof(buf) - 1)
                return -EIO;
        buf[n] = 0;
        return store_definition_put(s, argv[0], buf);
}

static int seed_history(Store *s, int argc, char **argv)
{
        _cleanup_free_ char *id = NULL;
        HistoryRecord h = { .kind = (char *)"migration",
                            .mode = (char *)"live",
                            .result = (char *)"completed",
                            .caller_uid = 0 };
        int r;

        if (argc != 4 || parse_uint_range(argv[3], 2 * USEC_PER_SEC, UINT64_MAX, &h.finished) < 0) {
                fprintf(stderr, "hw-seed-store: history NODE UUID NAME FINISHED_USEC\n");
                return -EINVAL;
        }
        h.node = h.source = argv[0];
        h.domain = argv[1];
        h.domain_name = argv[2];
        h.started = h.finished - 2 * USEC_PER_SEC;
        r = history_id_new(h.node, h.started, NULL, &id);
        if (r < 0)
                return r;
        h.id = id;
        r = store_history_add(s, &h);
        if (r >= 0)
                printf("%s\n", id);
        return r;
}

/* A live peer for as long as the test wants one: the test ends this process by its PID. */
static int heartbeat_forever(const char *state_dir, const char *name, const char *ms)
{
        _cleanup_(store_freep) Store *s = NULL;
        char *end;
        unsigned long n = strtoul(ms, &end, 10);
        int r;

        if (*end || n == 0 || n > 60000)
                return -EINVAL;
        r = store_open_dir(state_dir, name, &s);
        if (r < 0)
                return r;
        for (;;) {
                r = store_heartbeat(s);
                if (r < 0)
                        return r;
                /* the beat's period, as a node's heartbeat_interval */
                usleep(n * 1000);
        }
}

int main(int argc, char **argv)
{
        _cleanup_(store_freep) Store *s = NULL;
        int r;

        if (argc < 4) {
                fprintf(stderr,
                        "usage: hw-seed-store STATE_DIR node|instance|definition|heartbeat ...\n");
                return 2;
        }
        if (streq(argv[2], "heartbeat")) {
                r = argc == 5 ? heartbeat_forever(argv[1], argv[3], argv[4]) : -EINVAL;
                fprintf(stderr, "hw-seed-store: heartbeat: %s\n", strerror(-r));
                return 1;
        }
        /* the name heartbeats would be written for: this helper writes none */
        r = store_open_dir(argv[1], "seed-store", &s);
        if (r < 0) {
                fprintf(stderr, "hw-seed-store: cannot open %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        if (streq(argv[2], "node")) {
                NodeArgs a = { .argc = argc - 4, .argv = argv + 4 };
                r = store_node_update(s, argv[3], fill_node, &a, NULL);
        } else if (streq(argv[2], "instance"))
                r = seed_instance(s, argc - 3, argv + 3);
        else if (streq(argv[2], "definition"))
                r = seed_definition(s, argc - 3, argv + 3);
        else if (streq(argv[2], "history"))
                r = seed_history(s, argc - 3, argv + 3);
        else
                r = -EINVAL;
        if (r < 0) {
                fprintf(stderr, "hw-seed-store: %s %s: %s\n", argv[2], argv[3], strerror(-r));
                return 1;
        }
        return 0;
}
