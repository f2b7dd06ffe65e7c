/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The commands that work on this node's files rather than through hostwardend, because
 * they are for when it cannot act yet (as root):
 *   init-cluster            writes a new cluster's identity into the configured store, once
 *   allow-unsynced-starts   lets the hook start domains before hostwardend read the store
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "log.h"
#include "paths.h"
#include "runtime.h"
#include "store.h"
#include "util.h"

/* Who runs this, for the record: the user sudo was run by, else the uid's name. */
static const char *invoking_user(char *buf, size_t size)
{
        const char *sudo = getenv("SUDO_USER");
        struct passwd *pw;

        if (!isempty(sudo))
                return sudo;
        pw = getpwuid(getuid());
        if (pw)
                return pw->pw_name;
        snprintf(buf, size, "uid %u", (unsigned)getuid());
        return buf;
}

static void print_identity(const char *what, const ClusterIdentity *c, const char *where)
{
        char when[64];

        if (arg_json) {
                printf("{\"id\":");
                json_string(c->id);
                printf(",\"name\":");
                json_string(c->name ?: "");
                printf(",\"created\":%llu,\"created_by\":", (unsigned long long)c->created);
                json_string(c->created_by ?: "");
                printf(",\"store\":");
                json_string(where);
                printf("}\n");
                return;
        }
        printf("%s cluster %s%s%s%s in %s, made by %s at %s.\n", what, c->id, c->name ? " (" : "",
               c->name ?: "", c->name ? ")" : "", where, c->created_by ?: "?",
               format_realtime(c->created, when, sizeof(when)));
}

int verb_init_cluster(sd_bus *bus)
{
        _cleanup_(config_freep) Config *c = ctl_load_config(true); /* it opens the store */
        _cleanup_(cluster_identity_done) ClusterIdentity id = {};
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *where = NULL;
        int r;

        if (!c)
                return 1;
        if (arg_name && !cluster_name_is_valid(arg_name)) {
                fprintf(stderr,
                        "--name=%s: expected a name of letters, digits and '-', up to 63 "
                        "characters.\n",
                        arg_name);
                return 1;
        }
        if (c->cluster.store == STORE_BACKEND_ETCD) {
                EtcdOptions opts = store_etcd_options(c);

                where = strv_join(c->cluster.etcd_endpoints, ", ");
                r = where ? store_open_etcd(c->cluster.etcd_endpoints, NULL, c->node.name, 60,
                                            &opts, &s)
                          : -ENOMEM;
        } else {
                where = strdup(hw_state_dir(c->cluster.state_dir));
                r = where ? store_open_dir(where, c->node.name, &s) : -ENOMEM;
        }
        if (r < 0) {
                fprintf(stderr, "Cannot open the cluster store at %s: %s\n", strna(where),
                        strerror(-r));
                return 1;
        }
        r = store_cluster_init(s, arg_name, arg_adopt, &id);
        if (r == -EEXIST) {
                print_identity("Nothing written: the store already holds", &id, where);
                return 1;
        }
        if (r == -ENOTEMPTY) {
                fprintf(stderr,
                        "The store at %s holds node or instance records but no cluster identity: "
                        "it was written by an older hostwarden. If it is this cluster's store, "
                        "'hostwardenctl init-cluster --adopt' makes it so (once, on one node).\n",
                        where);
                return 1;
        }
        if (r == -ENOENT && c->cluster.store == STORE_BACKEND_DIR) {
                fprintf(stderr,
                        "Cannot create %s: its parent does not exist. The state directory "
                        "belongs on the storage all nodes share: mount it first.\n",
                        where);
                return 1;
        }
        if (r < 0) {
                const char *d = store_error_detail(s);

                fprintf(stderr, "Cannot write the cluster identity into %s: %s%s%s%s\n", where,
                        strerror(-r), *d ? " (" : "", d, *d ? ")" : "");
                return 1;
        }
        /* this node joins it now; the others when their hostwardend first reads it */
        r = cluster_identity_save(hw_lib_dir(), &id);
        if (r < 0)
                fprintf(stderr,
                        "Warning: cannot record it in %s/cluster-id (%s): hostwardend does when "
                        "it reads the store.\n",
                        hw_lib_dir(), strerror(-r));
        log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_STORE }),
                   "Cluster %s (%s) initialized in %s%s", id.id, strna(id.name), where,
                   arg_adopt ? ", adopting the records already there" : "");
        print_identity(arg_adopt ? "Adopted the records there as" : "Initialized", &id, where);
        /* this node's hostwardend reads it now rather than at its next attempt */
        (void)sd_bus_call_method(bus, DEST, PATH, NODE_IFACE, "Reload", NULL, NULL, NULL);
        return 0;
}

int verb_allow_unsynced_starts(sd_bus *bus)
{
        const char *rt = hw_runtime_dir();
        RuntimeRecord rec = { NULL };
        char since[64], user[32];
        const char *by;
        int r;

        if (isempty(arg_reason)) {
                fprintf(stderr, "allow-unsynced-starts needs --reason TEXT: it is logged with "
                                "every start it lets through.\n");
                return 1;
        }
        if (strchr(arg_reason, '\n')) {
                fprintf(stderr, "--reason: one line, please.\n");
                return 1;
        }
        if (runtime_marker_lookup(rt, NODE_MARKER_SYNCED, NULL) > 0) {
                printf("hostwardend has read the cluster store since this node booted: starts "
                       "are not held back, nothing to allow.\n");
                return 0;
        }
        by = invoking_user(user, sizeof(user));
        r = runtime_record_set(&rec, "since", format_timestamp_now(since, sizeof(since)));
        if (r >= 0)
                r = runtime_record_set(&rec, "by", by);
        if (r >= 0)
                r = runtime_record_set(&rec, "reason", arg_reason);
        if (r >= 0)
                r = runtime_marker_set(rt, NODE_MARKER_ALLOW_UNSYNCED, &rec);
        runtime_record_done(&rec);
        if (r < 0) {
                fprintf(stderr, "Cannot write %s/node/%s: %s\n", rt,
                        node_marker_to_string(NODE_MARKER_ALLOW_UNSYNCED), strerror(-r));
                return 1;
        }
        log_fields(LOG_WARNING, 0, LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_UNSYNCED_START }),
                   "%s allowed domains to start on this node before hostwardend read the "
                   "cluster store: %s",
                   by, arg_reason);
        printf("Domains may start on this node now, although hostwardend has not read the "
               "cluster store since the boot: nothing checks that no other node runs them. "
               "This lasts until hostwardend reads the store or the node reboots.\n");
        return 0;
}
