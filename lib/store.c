/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The cluster state store (DESIGN.md §4): node records, instance ownership records and
 * definitions, with one behaviour whatever the backend (store-dir.c, store-etcd.c) that
 * keeps their text.
 *
 * Records are "key=value" lines (runtime.h's format). Every key is lower case, every line
 * ends in a newline and "generation=N" (N >= 1) is always the last line written, so a text
 * cut short anywhere is recognisably incomplete. Unknown keys are ignored so that newer
 * versions can add some. A record whose required keys are missing or malformed, or whose
 * name/uuid does not match its key, is -EBADMSG.
 *
 * Read-modify-write (node updates) and compare-and-swap (instances): the backend's lock of
 * the record, a read, the change, and a write on the condition that the record is still
 * the one read (the backend's version). dir's lock makes that condition hold; etcd has no
 * lock and checks it in a transaction, and a node update whose record changed meanwhile is
 * done again on the new one.
 *
 * Liveness is not stored: each Store remembers what it saw of each peer's heartbeat counter
 * and when, by the caller's monotonic clock.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "store-internal.h"
#include "util.h"

/* a node update whose record changed between read and write (etcd) is done again */
#define UPDATE_ATTEMPTS 16

static const char *const fence_state_table[_FENCE_STATE_MAX] = {
        [FENCE_UNKNOWN] = "unknown",
        [FENCE_ON] = "on",
        [FENCE_OFF] = "off",
};

const char *fence_state_to_string(FenceState f)
{
        return f >= 0 && f < _FENCE_STATE_MAX ? fence_state_table[f] : NULL;
}

FenceState fence_state_from_string(const char *s)
{
        for (FenceState f = 0; f < _FENCE_STATE_MAX; f++)
                if (s && streq(s, fence_state_table[f]))
                        return f;
        return _FENCE_STATE_INVALID;
}

static const char *const node_liveness_table[_NODE_LIVENESS_MAX] = {
        [NODE_UP] = "up",
        [NODE_DOWN] = "down",
        [NODE_UNKNOWN] = "unknown",
};

const char *node_liveness_to_string(NodeLiveness l)
{
        return l >= 0 && l < _NODE_LIVENESS_MAX ? node_liveness_table[l] : NULL;
}

/* ---- record text ---------------------------------------------------------------------- */

/* Every line "key=value\n" with a lower-case key: anything else is not a record we wrote. */
static bool record_text_is_well_formed(const char *text)
{
        const char *p = text;

        if (!*p)
                return false;
        while (*p) {
                const char *nl = strchr(p, '\n');
                const char *k = p;

                if (!nl)
                        return false; /* cut short */
                while (k < nl && (islower((unsigned char)*k) || *k == '_'))
                        k++;
                if (k == p || k >= nl || *k != '=')
                        return false;
                p = nl + 1;
        }
        return true;
}

static int get_u64(const RuntimeRecord *rec, const char *key, bool required, uint64_t *ret)
{
        const char *v = runtime_record_get(rec, key);

        if (!v) {
                if (required)
                        return -EBADMSG;
                *ret = 0;
                return 0;
        }
        return parse_uint_range(v, 0, UINT64_MAX, ret) < 0 ? -EBADMSG : 0;
}

static int get_bool(const RuntimeRecord *rec, const char *key, bool *ret)
{
        const char *v = runtime_record_get(rec, key);
        int b;

        if (!v) {
                *ret = false;
                return 0;
        }
        b = parse_boolean(v);
        if (b < 0)
                return -EBADMSG;
        *ret = b;
        return 0;
}

static int get_str(const RuntimeRecord *rec, const char *key, char **ret)
{
        const char *v = runtime_record_get(rec, key);

        if (!v) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int set_u64(RuntimeRecord *rec, const char *key, uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
        return runtime_record_set(rec, key, buf);
}

static int set_str(RuntimeRecord *rec, const char *key, const char *v)
{
        return v ? runtime_record_set(rec, key, v) : 0;
}

int store_record_text_parse(const char *text, RuntimeRecord *ret)
{
        if (!record_text_is_well_formed(text))
                return -EBADMSG;
        return runtime_record_parse(text, ret);
}

int store_record_text_format(const RuntimeRecord *rec, uint64_t generation, char **ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord copy = { NULL };
        int r;

        /* generation goes last: a record without it is incomplete. */
        for (size_t i = 0; rec->kv && rec->kv[i] && rec->kv[i + 1]; i += 2) {
                r = runtime_record_set(&copy, rec->kv[i], rec->kv[i + 1]);
                if (r < 0)
                        return r;
        }
        r = set_u64(&copy, "generation", generation);
        if (r < 0)
                return r;
        return runtime_record_format(&copy, ret);
}

/* ---- names ---------------------------------------------------------------------------- */

static int normalize_uuid(const char *uuid, char out[static 37])
{
        if (!uuid || !uuid_is_valid(uuid))
                return -EINVAL;
        for (size_t i = 0; i < 36; i++)
                out[i] = (char)tolower((unsigned char)uuid[i]);
        out[36] = 0;
        return 0;
}

static bool node_name_is_valid(const char *name)
{
        return name && hostname_is_valid(name);
}

static bool address_is_valid(const char *a)
{
        return hostname_is_valid(a) || ip_address_is_valid(a, NULL);
}

static bool storage_mark_is_valid(const char *m)
{
        return strlen(m) == STORAGE_MARK_LEN && strspn(m, "0123456789abcdef") == STORAGE_MARK_LEN;
}

/* ---- open/free ------------------------------------------------------------------------ */

bool store_node_name_is_valid(const char *name)
{
        return node_name_is_valid(name);
}

int store_new(const StoreOps *ops, const char *node_name, Store **ret)
{
        Store *s;

        if (!node_name_is_valid(node_name))
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->ops = ops;
        s->node_name = strdup(node_name);
        if (!s->node_name) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

Store *store_free(Store *s)
{
        if (!s)
                return NULL;
        if (s->ops && s->ops->free)
                s->ops->free(s);
        for (size_t i = 0; i < s->n_liveness; i++)
                free(s->liveness[i].name);
        free(s->liveness);
        node_record_array_free(s->node_cache, s->n_node_cache);
        free(s->node_name);
        free(s);
        return NULL;
}

const char *store_node_name(const Store *s)
{
        return s->node_name;
}

const char *store_backend_name(const Store *s)
{
        return s->ops->name;
}

const char *store_error_detail(const Store *s)
{
        const char *d = s->ops->error_detail ? s->ops->error_detail(s) : NULL;

        return d ? d : "";
}

/* ---- nodes ---------------------------------------------------------------------------- */

void node_record_done(NodeRecord *r)
{
        free(r->name);
        free(r->address);
        free(r->storage_mark);
        free(r->disabled_reason);
        free(r->forced_down_by);
        *r = (NodeRecord){ .fence = FENCE_UNKNOWN };
}

NodeRecord *node_record_array_free(NodeRecord *a, size_t n)
{
        for (size_t i = 0; a && i < n; i++)
                node_record_done(&a[i]);
        free(a);
        return NULL;
}

static int node_record_from_text(const char *name, const char *text, NodeRecord *ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_(node_record_done) NodeRecord n = { .fence = FENCE_UNKNOWN };
        const char *v;
        int r;

        r = store_record_text_parse(text, &rec);
        if (r < 0)
                return r;

        v = runtime_record_get(&rec, "name");
        if (!v || !streq(v, name))
                return -EBADMSG;
        v = runtime_record_get(&rec, "fence");
        n.fence = fence_state_from_string(v);
        if (n.fence < 0)
                return -EBADMSG;
        v = runtime_record_get(&rec, "address");
        if (v && !address_is_valid(v))
                return -EBADMSG;
        v = runtime_record_get(&rec, "storage_mark");
        if (v && !storage_mark_is_valid(v))
                return -EBADMSG;

        if ((r = get_str(&rec, "name", &n.name)) < 0 ||
            (r = get_str(&rec, "address", &n.address)) < 0 ||
            (r = get_str(&rec, "storage_mark", &n.storage_mark)) < 0 ||
            (r = get_bool(&rec, "disabled", &n.disabled)) < 0 ||
            (r = get_str(&rec, "disabled_reason", &n.disabled_reason)) < 0 ||
            (r = get_u64(&rec, "disabled_since", false, &n.disabled_since)) < 0 ||
            (r = get_u64(&rec, "heartbeat", true, &n.heartbeat)) < 0 ||
            (r = get_u64(&rec, "heartbeat_time", false, &n.heartbeat_time)) < 0 ||
            (r = get_bool(&rec, "forced_down", &n.forced_down)) < 0 ||
            (r = get_str(&rec, "forced_down_by", &n.forced_down_by)) < 0 ||
            (r = get_u64(&rec, "forced_down_since", false, &n.forced_down_since)) < 0 ||
            (r = get_u64(&rec, "fence_time", false, &n.fence_time)) < 0 ||
            (r = get_u64(&rec, "generation", true, &n.generation)) < 0)
                return r;
        if (n.generation == 0)
                return -EBADMSG;

        *ret = n;
        n = (NodeRecord){ .fence = FENCE_UNKNOWN };
        return 0;
}

static int node_record_to_text(const NodeRecord *n, uint64_t generation, char **ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        int r;

        if (!node_name_is_valid(n->name) || (n->address && !address_is_valid(n->address)) ||
            (n->storage_mark && !storage_mark_is_valid(n->storage_mark)) ||
            !fence_state_to_string(n->fence))
                return -EINVAL;

        /* runtime_record_set() refuses values with newlines (-EINVAL). */
        if ((r = set_str(&rec, "name", n->name)) < 0 ||
            (r = set_str(&rec, "address", n->address)) < 0 ||
            (r = set_str(&rec, "storage_mark", n->storage_mark)) < 0 ||
            (r = set_str(&rec, "disabled", n->disabled ? "yes" : "no")) < 0 ||
            (r = set_str(&rec, "disabled_reason", n->disabled_reason)) < 0 ||
            (r = set_u64(&rec, "disabled_since", n->disabled_since)) < 0 ||
            (r = set_u64(&rec, "heartbeat", n->heartbeat)) < 0 ||
            (r = set_u64(&rec, "heartbeat_time", n->heartbeat_time)) < 0 ||
            (r = set_str(&rec, "forced_down", n->forced_down ? "yes" : "no")) < 0 ||
            (r = set_str(&rec, "forced_down_by", n->forced_down_by)) < 0 ||
            (r = set_u64(&rec, "forced_down_since", n->forced_down_since)) < 0 ||
            (r = set_str(&rec, "fence", fence_state_to_string(n->fence))) < 0 ||
            (r = set_u64(&rec, "fence_time", n->fence_time)) < 0)
                return r;
        return store_record_text_format(&rec, generation, ret);
}

static int node_read(Store *s, const char *name, NodeRecord *ret, uint64_t *ret_version)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = s->ops->read(s, STORE_NODES, name, RECORD_MAX_SIZE, &text, ret_version);
        if (r < 0)
                return r;
        return node_record_from_text(name, text, ret);
}

int store_node_get(Store *s, const char *name, NodeRecord *ret)
{
        if (!node_name_is_valid(name))
                return -EINVAL;
        return node_read(s, name, ret, NULL);
}

int store_node_update(Store *s, const char *name, NodeMutateFunc mutate, void *userdata,
                      NodeRecord *ret)
{
        int r = -ESTALE;

        if (!node_name_is_valid(name) || !mutate)
                return -EINVAL;

        for (unsigned attempt = 0; attempt < UPDATE_ATTEMPTS && r == -ESTALE; attempt++) {
                _cleanup_(node_record_done) NodeRecord n = { .fence = FENCE_UNKNOWN };
                _cleanup_close_ int lock_fd = -EBADF;
                _cleanup_free_ char *text = NULL;
                uint64_t generation, version = 0;

                r = s->ops->lock(s, STORE_NODES, name, &lock_fd);
                if (r < 0)
                        return r;

                r = node_read(s, name, &n, &version);
                if (r == -ENOENT) {
                        version = 0;
                        n.name = strdup(name);
                        if (!n.name)
                                return -ENOMEM;
                } else if (r < 0)
                        return r;
                generation = n.generation;
                if (generation == UINT64_MAX)
                        return -EOVERFLOW;

                r = mutate(&n, userdata);
                if (r < 0)
                        return r;
                if (!streq_ptr(n.name, name))
                        return -EINVAL;

                r = node_record_to_text(&n, generation + 1, &text);
                if (r < 0)
                        return r;
                /* whether or not the write succeeds, the cached listing may be stale now */
                s->node_cache_valid = false;
                r = s->ops->write(s, STORE_NODES, name, text, version, 0644);
                if (r < 0)
                        continue; /* -ESTALE: changed since it was read, again */

                if (ret) {
                        n.generation = generation + 1;
                        *ret = n;
                        n = (NodeRecord){ .fence = FENCE_UNKNOWN };
                }
        }
        return r == -ESTALE ? -EBUSY : r;
}

static int heartbeat_mutate(NodeRecord *r, void *userdata)
{
        r->heartbeat++;
        r->heartbeat_time = now_realtime();
        return 0;
}

int store_heartbeat(Store *s)
{
        int r;

        r = store_node_update(s, s->node_name, heartbeat_mutate, NULL, NULL);
        if (r >= 0 && s->ops->heartbeat)
                r = s->ops->heartbeat(s);
        return r;
}

static LivenessEntry *liveness_find(Store *s, const char *name)
{
        for (size_t i = 0; i < s->n_liveness; i++)
                if (streq(s->liveness[i].name, name))
                        return &s->liveness[i];
        return NULL;
}

int store_node_liveness_of(Store *s, const NodeRecord *rec, usec_t now_monotonic, usec_t down_after,
                           NodeLiveness *ret)
{
        const NodeRecord n = *rec; /* read only: the fields below are used, nothing freed */
        const char *name = rec->name;
        LivenessEntry *e;

        if (!name || !node_name_is_valid(name))
                return -EINVAL;

        e = liveness_find(s, name);
        if (!e) {
                LivenessEntry *a;
                char *copy = strdup(name);

                if (!copy)
                        return -ENOMEM;
                a = reallocarray(s->liveness, s->n_liveness + 1, sizeof(*a));
                if (!a) {
                        free(copy);
                        return -ENOMEM;
                }
                s->liveness = a;
                e = &s->liveness[s->n_liveness++];
                *e = (LivenessEntry){
                        .name = copy,
                        .counter = n.heartbeat,
                        .last_change = now_monotonic,
                };
        } else if (e->counter != n.heartbeat) {
                e->counter = n.heartbeat;
                e->last_change = now_monotonic;
                e->changed = true;
        }

        if (now_monotonic >= e->last_change && now_monotonic - e->last_change >= down_after)
                *ret = NODE_DOWN;
        else
                *ret = e->changed ? NODE_UP : NODE_UNKNOWN;
        return 0;
}

int store_node_liveness(Store *s, const char *name, usec_t now_monotonic, usec_t down_after,
                        NodeLiveness *ret)
{
        _cleanup_(node_record_done) NodeRecord n = { .fence = FENCE_UNKNOWN };
        int r;

        if (!node_name_is_valid(name))
                return -EINVAL;
        /* Only the counter counts: peers write fence results and admins write Disable into a
         * node's record too, which bumps its generation but says nothing about the node. */
        r = node_read(s, name, &n, NULL);
        if (r < 0)
                return r;
        return store_node_liveness_of(s, &n, now_monotonic, down_after, ret);
}

int store_node_heartbeat_seen(Store *s, const char *name, usec_t *ret_monotonic)
{
        LivenessEntry *e;

        if (!node_name_is_valid(name))
                return -EINVAL;
        e = liveness_find(s, name);
        if (!e || !e->changed)
                return -ENODATA;
        *ret_monotonic = e->last_change;
        return 0;
}

/* ---- listing -------------------------------------------------------------------------- */

typedef int (*ParseItemFunc)(const char *key, const char *text, void *item);

typedef struct ListState {
        char *array;
        size_t n, allocated, item_size;
        ParseItemFunc parse;
} ListState;

static int list_add(const char *key, const char *text, void *userdata)
{
        ListState *l = userdata;
        int r;

        if (l->n == l->allocated) {
                size_t want = l->allocated ? l->allocated * 2 : 16;
                char *a = reallocarray(l->array, want, l->item_size);

                if (!a)
                        return -ENOMEM;
                l->array = a;
                l->allocated = want;
        }
        r = l->parse(key, text, l->array + l->n * l->item_size);
        if (r < 0)
                return r;
        l->n++;
        return 0;
}

/* Every record of the space whose key passes filter, parsed into a new sorted array. */
static int list_records(Store *s, StoreSpace sp, bool (*filter)(const char *), size_t item_size,
                        ParseItemFunc parse, void (*done_item)(void *item),
                        int (*compare)(const void *, const void *), void **ret, size_t *ret_n)
{
        ListState l = { .item_size = item_size, .parse = parse };
        int r;

        r = s->ops->list(s, sp, filter, list_add, &l);
        if (r >= 0 && l.n > 0) {
                qsort(l.array, l.n, item_size, compare);
                /* a key listed twice (a broken etcd answer; a directory cannot): which copy
                 * holds cannot be told, so the listing is as unreadable as a bad record */
                for (size_t i = 1; i < l.n && r >= 0; i++)
                        if (compare(l.array + (i - 1) * item_size, l.array + i * item_size) == 0)
                                r = -EBADMSG;
        }
        if (r < 0) {
                for (size_t i = 0; i < l.n; i++)
                        done_item(l.array + i * item_size);
                free(l.array);
                return r;
        }
        if (l.n == 0) {
                free(l.array);
                l.array = NULL;
        }
        *ret = l.array;
        *ret_n = l.n;
        return 0;
}

static int node_parse_item(const char *name, const char *text, void *item)
{
        return node_record_from_text(name, text, item);
}

static void node_done_item(void *item)
{
        node_record_done(item);
}

static int node_compare(const void *a, const void *b)
{
        return strcmp(((const NodeRecord *)a)->name, ((const NodeRecord *)b)->name);
}

int store_node_list(Store *s, NodeRecord **ret, size_t *ret_n)
{
        void *array;
        size_t n;
        int r;

        r = list_records(s, STORE_NODES, hostname_is_valid, sizeof(NodeRecord), node_parse_item,
                         node_done_item, node_compare, &array, &n);
        if (r < 0)
                return r;
        *ret = array;
        *ret_n = n;
        return 0;
}

static int dup_str(const char *src, char **dst)
{
        if (!src) {
                *dst = NULL;
                return 0;
        }
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

static int node_record_copy(const NodeRecord *src, NodeRecord *dst)
{
        _cleanup_(node_record_done) NodeRecord n = *src;

        n.name = n.address = n.storage_mark = n.disabled_reason = n.forced_down_by = NULL;
        if (dup_str(src->name, &n.name) < 0 || dup_str(src->address, &n.address) < 0 ||
            dup_str(src->storage_mark, &n.storage_mark) < 0 ||
            dup_str(src->disabled_reason, &n.disabled_reason) < 0 ||
            dup_str(src->forced_down_by, &n.forced_down_by) < 0)
                return -ENOMEM;
        *dst = n;
        n = (NodeRecord){};
        return 0;
}

int store_node_list_cached(Store *s, usec_t now_monotonic, usec_t max_age, NodeRecord **ret,
                           size_t *ret_n)
{
        NodeRecord *copy;
        int r;

        if (!s->node_cache_valid || now_monotonic < s->node_cache_time ||
            now_monotonic - s->node_cache_time >= max_age) {
                NodeRecord *list = NULL;
                size_t n = 0;

                r = store_node_list(s, &list, &n);
                if (r < 0)
                        return r;
                node_record_array_free(s->node_cache, s->n_node_cache);
                s->node_cache = list;
                s->n_node_cache = n;
                s->node_cache_time = now_monotonic;
                s->node_cache_valid = true;
        }
        if (s->n_node_cache == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        copy = calloc(s->n_node_cache, sizeof(NodeRecord));
        if (!copy)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_node_cache; i++) {
                r = node_record_copy(&s->node_cache[i], &copy[i]);
                if (r < 0) {
                        node_record_array_free(copy, i);
                        return r;
                }
        }
        *ret = copy;
        *ret_n = s->n_node_cache;
        return 0;
}

/* ---- instances ------------------------------------------------------------------------ */

static const char *const instance_power_table[_INSTANCE_POWER_MAX] = {
        [INSTANCE_POWER_UNKNOWN] = "unknown",
        [INSTANCE_POWER_RUNNING] = "running",
        [INSTANCE_POWER_PAUSED] = "paused",
        [INSTANCE_POWER_SHUTOFF] = "shutoff",
};

const char *instance_power_to_string(InstancePower p)
{
        return p >= 0 && p < _INSTANCE_POWER_MAX ? instance_power_table[p] : NULL;
}

InstancePower instance_power_from_string(const char *s)
{
        for (int i = 0; i < _INSTANCE_POWER_MAX; i++)
                if (streq(s, instance_power_table[i]))
                        return (InstancePower)i;
        return _INSTANCE_POWER_INVALID;
}

void instance_record_done(InstanceRecord *r)
{
        free(r->name);
        free(r->owner);
        free(r->evacuated_from);
        *r = (InstanceRecord){};
}

InstanceRecord *instance_record_array_free(InstanceRecord *a, size_t n)
{
        for (size_t i = 0; a && i < n; i++)
                instance_record_done(&a[i]);
        free(a);
        return NULL;
}

static int instance_record_from_text(const char *uuid, const char *text, InstanceRecord *ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_(instance_record_done) InstanceRecord i = {};
        const char *v;
        int r;

        r = store_record_text_parse(text, &rec);
        if (r < 0)
                return r;

        v = runtime_record_get(&rec, "uuid");
        if (!v || !streq(v, uuid))
                return -EBADMSG;
        v = runtime_record_get(&rec, "owner");
        if (!v || !hostname_is_valid(v))
                return -EBADMSG;
        v = runtime_record_get(&rec, "evacuated_from");
        if (v && !hostname_is_valid(v))
                return -EBADMSG;

        memcpy(i.uuid, uuid, sizeof(i.uuid));
        if ((r = get_str(&rec, "name", &i.name)) < 0 ||
            (r = get_str(&rec, "owner", &i.owner)) < 0 ||
            (r = get_str(&rec, "evacuated_from", &i.evacuated_from)) < 0 ||
            (r = get_u64(&rec, "time", true, &i.time)) < 0 ||
            (r = get_bool(&rec, "deleted", &i.deleted)) < 0 ||
            (r = get_u64(&rec, "generation", true, &i.generation)) < 0)
                return r;
        if (i.generation == 0)
                return -EBADMSG;
        v = runtime_record_get(&rec, "power");
        i.power = v ? instance_power_from_string(v) : INSTANCE_POWER_UNKNOWN;
        if (i.power < 0)
                return -EBADMSG;

        *ret = i;
        i = (InstanceRecord){};
        return 0;
}

static int instance_record_to_text(const InstanceRecord *i, const char *uuid, uint64_t generation,
                                   char **ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        int r;

        if (!node_name_is_valid(i->owner) ||
            (i->evacuated_from && !hostname_is_valid(i->evacuated_from)))
                return -EINVAL;

        if ((r = set_str(&rec, "uuid", uuid)) < 0 || (r = set_str(&rec, "name", i->name)) < 0 ||
            (r = set_str(&rec, "owner", i->owner)) < 0 ||
            (r = set_str(&rec, "evacuated_from", i->evacuated_from)) < 0 ||
            (r = set_u64(&rec, "time", i->time)) < 0 ||
            (r = set_str(&rec, "power",
                         i->power > INSTANCE_POWER_UNKNOWN ? instance_power_to_string(i->power)
                                                           : NULL)) < 0 ||
            (r = set_str(&rec, "deleted", i->deleted ? "yes" : NULL)) < 0)
                return r;
        return store_record_text_format(&rec, generation, ret);
}

static int instance_read(Store *s, const char *uuid, InstanceRecord *ret, uint64_t *ret_version)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = s->ops->read(s, STORE_INSTANCES, uuid, RECORD_MAX_SIZE, &text, ret_version);
        if (r < 0)
                return r;
        return instance_record_from_text(uuid, text, ret);
}

int store_instance_get(Store *s, const char *uuid, InstanceRecord *ret)
{
        char u[37];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        return instance_read(s, u, ret, NULL);
}

/* The stored generation of instance u, 0 if there is none, and the backend's version of
 * it. Call with the lock held. */
static int instance_current_generation(Store *s, const char *u, uint64_t *ret,
                                       uint64_t *ret_version)
{
        _cleanup_(instance_record_done) InstanceRecord cur = {};
        int r;

        r = instance_read(s, u, &cur, ret_version);
        if (r == -ENOENT) {
                *ret = 0;
                *ret_version = 0;
                return 0;
        }
        if (r < 0)
                return r;
        *ret = cur.generation;
        return 0;
}

int store_instance_cas(Store *s, const InstanceRecord *rec, uint64_t expected_generation,
                       uint64_t *ret_generation)
{
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        uint64_t current, version;
        char u[37];
        int r;

        if (!rec || normalize_uuid(rec->uuid, u) < 0)
                return -EINVAL;
        if (expected_generation == UINT64_MAX)
                return -EOVERFLOW;
        /* Format first: invalid input fails before anything is locked. */
        r = instance_record_to_text(rec, u, expected_generation + 1, &text);
        if (r < 0)
                return r;

        r = s->ops->lock(s, STORE_INSTANCES, u, &lock_fd);
        if (r < 0)
                return r;
        r = instance_current_generation(s, u, &current, &version);
        if (r < 0)
                return r;
        if (current != expected_generation)
                return expected_generation == 0 ? -EEXIST : -ESTALE;

        /* changed since it was read (etcd): the same answer as a generation that differs */
        r = s->ops->write(s, STORE_INSTANCES, u, text, version, 0644);
        if (r == -ESTALE && expected_generation == 0)
                return -EEXIST;
        if (r < 0)
                return r;
        if (ret_generation)
                *ret_generation = expected_generation + 1;
        return 0;
}

int store_instance_remove(Store *s, const char *uuid, uint64_t expected_generation)
{
        _cleanup_close_ int lock_fd = -EBADF;
        uint64_t current, version;
        char u[37];
        int r;

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;

        r = s->ops->lock(s, STORE_INSTANCES, u, &lock_fd);
        if (r < 0)
                return r;
        r = instance_current_generation(s, u, &current, &version);
        if (r < 0)
                return r;
        if (current == 0)
                return -ENOENT;
        if (current != expected_generation)
                return -ESTALE;
        r = s->ops->remove(s, STORE_INSTANCES, u, version);
        /* removed meanwhile: it no longer has that generation */
        return r == -ENOENT ? -ESTALE : r;
}

static bool instance_file_name_is_valid(const char *name)
{
        if (!uuid_is_valid(name))
                return false;
        /* Only the canonical lower-case names are ours. */
        for (const char *p = name; *p; p++)
                if (isupper((unsigned char)*p))
                        return false;
        return true;
}

static int instance_parse_item(const char *uuid, const char *text, void *item)
{
        return instance_record_from_text(uuid, text, item);
}

static void instance_done_item(void *item)
{
        instance_record_done(item);
}

static int instance_compare(const void *a, const void *b)
{
        return strcmp(((const InstanceRecord *)a)->uuid, ((const InstanceRecord *)b)->uuid);
}

int store_instance_list(Store *s, InstanceRecord **ret, size_t *ret_n)
{
        void *array;
        size_t n;
        int r;

        r = list_records(s, STORE_INSTANCES, instance_file_name_is_valid, sizeof(InstanceRecord),
                         instance_parse_item, instance_done_item, instance_compare, &array, &n);
        if (r < 0)
                return r;
        *ret = array;
        *ret_n = n;
        return 0;
}

/* ---- definitions ---------------------------------------------------------------------- */

int store_definition_put(Store *s, const char *uuid, const char *xml)
{
        char u[37];

        if (normalize_uuid(uuid, u) < 0 || !xml)
                return -EINVAL;
        if (strlen(xml) > DEFINITION_MAX_SIZE)
                return -EFBIG;
        return s->ops->write(s, STORE_DEFINITIONS, u, xml, STORE_ANY_VERSION, 0600);
}

int store_definition_get(Store *s, const char *uuid, char **ret)
{
        char u[37];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        return s->ops->read(s, STORE_DEFINITIONS, u, DEFINITION_MAX_SIZE, ret, NULL);
}

int store_definition_remove(Store *s, const char *uuid)
{
        char u[37];
        int r;

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        r = s->ops->remove(s, STORE_DEFINITIONS, u, STORE_ANY_VERSION);
        return r == -ENOENT ? 0 : r;
}
