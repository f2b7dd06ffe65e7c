/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The cluster's identity (store.h): in the store, where `hostwardenctl init-cluster` writes
 * it once, and on each node, where the identity it last joined is kept. Without it, a node
 * that boots before its shared storage is mounted finds a bare directory where the store
 * should be and cannot tell it from a new cluster: it would claim every guest it has, and
 * let autostart run guests that were evacuated elsewhere.
 *
 * The record is "key=value" lines like every other: id, name, created, created_by,
 * generation (always 1: it is never rewritten).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "store-internal.h"
#include "util.h"

#define IDENTITY_KEY      "identity"
#define CLUSTER_ID_FILE   "cluster-id"
#define IDENTITY_MAX_SIZE 4096U

void cluster_identity_done(ClusterIdentity *c)
{
        free(c->name);
        free(c->created_by);
        *c = (ClusterIdentity){};
}

bool cluster_name_is_valid(const char *name)
{
        return hostname_is_valid(name) && !strchr(name, '.');
}

/* *ret takes c's contents (when ret is not NULL). */
static void identity_give(ClusterIdentity *c, ClusterIdentity *ret)
{
        if (!ret)
                return;
        *ret = *c;
        *c = (ClusterIdentity){};
}

static int identity_from_text(const char *text, ClusterIdentity *ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        ClusterIdentity c = {};
        const char *id, *name, *by, *created;
        int r;

        r = store_record_text_parse(text, &rec);
        if (r < 0)
                return r;
        id = runtime_record_get(&rec, "id");
        name = runtime_record_get(&rec, "name");
        by = runtime_record_get(&rec, "created_by");
        created = runtime_record_get(&rec, "created");
        if (!id || !uuid_is_valid(id) || (name && !cluster_name_is_valid(name)) ||
            (by && !store_node_name_is_valid(by)) ||
            (created && parse_uint_range(created, 0, UINT64_MAX, &c.created) < 0))
                return -EBADMSG;
        for (size_t i = 0; i < 36; i++)
                c.id[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] - 'A' + 'a' : id[i]);
        c.name = name ? strdup(name) : NULL;
        c.created_by = by ? strdup(by) : NULL;
        if ((name && !c.name) || (by && !c.created_by)) {
                cluster_identity_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static int identity_to_text(const ClusterIdentity *c, char **ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        char created[32];
        int r;

        snprintf(created, sizeof(created), "%llu", (unsigned long long)c->created);
        r = runtime_record_set(&rec, "id", c->id);
        if (r >= 0 && c->name)
                r = runtime_record_set(&rec, "name", c->name);
        if (r >= 0)
                r = runtime_record_set(&rec, "created", created);
        if (r >= 0 && c->created_by)
                r = runtime_record_set(&rec, "created_by", c->created_by);
        if (r < 0)
                return r;
        return store_record_text_format(&rec, 1, ret);
}

int store_cluster_get(Store *s, ClusterIdentity *ret)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = s->ops->read(s, STORE_CLUSTER, IDENTITY_KEY, IDENTITY_MAX_SIZE, &text, NULL);
        if (r < 0)
                return r;
        return identity_from_text(text, ret);
}

static int count_record(const char *key, const char *text, void *userdata)
{
        (*(size_t *)userdata)++;
        return 0;
}

static bool any_key(const char *key)
{
        return key[0] != '.';
}

/* Whether the store holds node or instance records (a space that does not exist is empty). */
static int store_has_records(Store *s, bool *ret)
{
        static const StoreSpace spaces[] = { STORE_NODES, STORE_INSTANCES };
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(spaces); i++) {
                int r = s->ops->list(s, spaces[i], any_key, count_record, &n);

                if (r < 0 && r != -ENOENT)
                        return r;
        }
        *ret = n > 0;
        return 0;
}

static int random_uuid(char out[static 37])
{
        uint8_t b[16];

        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
                return -EIO;
        b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                 b[13], b[14], b[15]);
        return 0;
}

int store_cluster_init(Store *s, const char *name, bool adopt, ClusterIdentity *ret)
{
        _cleanup_(cluster_identity_done) ClusterIdentity c = {};
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        bool has_records;
        int r;

        if (name && !cluster_name_is_valid(name))
                return -EINVAL;
        if (s->ops->init) {
                r = s->ops->init(s);
                if (r < 0)
                        return r;
        }
        /* dir: two nodes initializing at once serialize here and the second finds the
         * first's identity; etcd: the write below is a create-only transaction */
        r = s->ops->lock(s, STORE_CLUSTER, IDENTITY_KEY, &lock_fd);
        if (r < 0)
                return r;
        r = store_cluster_get(s, &c);
        if (r >= 0) {
                identity_give(&c, ret);
                return -EEXIST;
        }
        if (r != -ENOENT)
                return r;
        r = store_has_records(s, &has_records);
        if (r < 0)
                return r;
        if (has_records && !adopt)
                return -ENOTEMPTY;

        r = random_uuid(c.id);
        if (r < 0)
                return r;
        c.created = now_realtime();
        c.name = name ? strdup(name) : NULL;
        c.created_by = strdup(store_node_name(s));
        if ((name && !c.name) || !c.created_by)
                return -ENOMEM;
        r = identity_to_text(&c, &text);
        if (r < 0)
                return r;
        r = s->ops->write(s, STORE_CLUSTER, IDENTITY_KEY, text, 0, 0644);
        if (r == -ESTALE) { /* etcd: another node's init won; that one is the identity */
                cluster_identity_done(&c);
                if (store_cluster_get(s, &c) >= 0)
                        identity_give(&c, ret);
                return -EEXIST;
        }
        if (r < 0)
                return r;
        identity_give(&c, ret);
        return 0;
}

int cluster_identity_load(const char *dir, ClusterIdentity *ret)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "%s/" CLUSTER_ID_FILE, dir) < 0)
                return -ENOMEM;
        r = read_full_file(path, IDENTITY_MAX_SIZE, &text, NULL);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        return identity_from_text(text, ret);
}

int cluster_identity_save(const char *dir, const ClusterIdentity *c)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "%s/" CLUSTER_ID_FILE, dir) < 0)
                return -ENOMEM;
        r = identity_to_text(c, &text);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, 0644);
}
