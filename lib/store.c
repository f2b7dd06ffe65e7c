/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The cluster state store (DESIGN.md §4): node records, instance ownership records and
 * definitions, with one behaviour whatever the backend (store-dir.c, store-etcd.c) that
 * keeps their text.
 *
 * Records are "key=value" lines (runtime.h's format; their text: store-records.c). Every key
 * is lower case, every line ends in a newline and "generation=N" (N >= 1) is always the last
 * line written, so a text cut short anywhere is recognisably incomplete. Unknown keys are
 * ignored so that newer versions can add some. A record whose required keys are missing or
 * malformed, or whose name/uuid does not match its key, is -EBADMSG.
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

/* ---- names ---------------------------------------------------------------------------- */

int normalize_uuid(const char *uuid, char out[static 37])
{
        if (!uuid || !uuid_is_valid(uuid))
                return -EINVAL;
        for (size_t i = 0; i < 36; i++)
                out[i] = (char)tolower((unsigned char)uuid[i]);
        out[36] = 0;
        return 0;
}

bool instance_file_name_is_valid(const char *name)
{
        if (!uuid_is_valid(name))
                return false;
        /* Only the canonical lower-case names are ours. */
        for (const char *p = name; *p; p++)
                if (isupper((unsigned char)*p))
                        return false;
        return true;
}

/* ---- open/free ------------------------------------------------------------------------ */

int store_new(const StoreOps *ops, const char *node_name, Store **ret)
{
        Store *s;

        if (!store_node_name_is_valid(node_name))
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

/* ---- reading and listing -------------------------------------------------------------- */

/* The record of kind k under key (a valid one), and the backend's version of it. */
static int record_read_full(Store *s, const RecordKind *k, const char *key, void *ret,
                            uint64_t *ret_version, char **ret_text)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = s->ops->read(s, k->space, key, RECORD_MAX_SIZE, &text, ret_version);
        if (r < 0)
                return r;
        r = k->from_text(key, text, ret);
        if (r >= 0 && ret_text)
                *ret_text = TAKE_PTR(text);
        return r;
}

int record_read(Store *s, const RecordKind *k, const char *key, void *ret, uint64_t *ret_version)
{
        return record_read_full(s, k, key, ret, ret_version, NULL);
}

int record_read_text(Store *s, const RecordKind *k, const char *key, void *ret, char **ret_text)
{
        return record_read_full(s, k, key, ret, NULL, ret_text);
}

typedef struct ListState {
        char *array;
        size_t n, allocated;
        const RecordKind *kind;
} ListState;

static int list_add(const char *key, const char *text, void *userdata)
{
        ListState *l = userdata;
        int r;

        if (l->n == l->allocated) {
                size_t want = l->allocated ? l->allocated * 2 : 16;
                char *a = reallocarray(l->array, want, l->kind->size);

                if (!a)
                        return -ENOMEM;
                l->array = a;
                l->allocated = want;
        }
        r = l->kind->from_text(key, text, l->array + l->n * l->kind->size);
        if (r < 0)
                return r;
        l->n++;
        return 0;
}

/* Every record of kind k, parsed into a new sorted array. */
int list_records(Store *s, const RecordKind *k, void **ret, size_t *ret_n)
{
        ListState l = { .kind = k };
        size_t item_size = k->size;
        int r;

        r = s->ops->list(s, k->space, k->key_is_valid, list_add, &l);
        if (r >= 0 && l.n > 0) {
                qsort(l.array, l.n, item_size, k->compare);
                /* a key listed twice (a broken etcd answer; a directory cannot): which copy
                 * holds cannot be told, so the listing is as unreadable as a bad record */
                for (size_t i = 1; i < l.n && r >= 0; i++)
                        if (k->compare(l.array + (i - 1) * item_size, l.array + i * item_size) == 0)
                                r = -EBADMSG;
        }
        if (r < 0) {
                for (size_t i = 0; i < l.n; i++)
                        k->done(l.array + i * item_size);
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

/* name##_kind, and store_<name>_list(): every record of the kind, in a new array of type sorted
 * by its member key. */
#define DEFINE_RECORD_KIND(name, type, sp, valid, key)                                \
        static int name##_kind_from_text(const char *k, const char *text, void *item) \
        {                                                                             \
                return name##_record_from_text(k, text, item);                        \
        }                                                                             \
        static void name##_kind_done(void *item)                                      \
        {                                                                             \
                name##_record_done(item);                                             \
        }                                                                             \
        static int name##_kind_compare(const void *a, const void *b)                  \
        {                                                                             \
                return strcmp(((const type *)a)->key, ((const type *)b)->key);        \
        }                                                                             \
        static const RecordKind name##_kind = {                                       \
                .space = sp,                                                          \
                .key_is_valid = valid,                                                \
                .size = sizeof(type),                                                 \
                .from_text = name##_kind_from_text,                                   \
                .done = name##_kind_done,                                             \
                .compare = name##_kind_compare,                                       \
        };                                                                            \
        int store_##name##_list(Store *s, type **ret, size_t *ret_n)                  \
        {                                                                             \
                void *array;                                                          \
                size_t n;                                                             \
                int r;                                                                \
                                                                                      \
                r = list_records(s, &name##_kind, &array, &n);                        \
                if (r < 0)                                                            \
                        return r;                                                     \
                *ret = array;                                                         \
                *ret_n = n;                                                           \
                return 0;                                                             \
        }

DEFINE_RECORD_KIND(node, NodeRecord, STORE_NODES, hostname_is_valid, name);
DEFINE_RECORD_KIND(instance, InstanceRecord, STORE_INSTANCES, instance_file_name_is_valid, uuid);
const RecordKind *const store_instance_record_kind = &instance_kind;

/* ---- nodes ---------------------------------------------------------------------------- */

int store_node_get(Store *s, const char *name, NodeRecord *ret)
{
        if (!store_node_name_is_valid(name))
                return -EINVAL;
        return record_read(s, &node_kind, name, ret, NULL);
}

int store_node_update(Store *s, const char *name, NodeMutateFunc mutate, void *userdata,
                      NodeRecord *ret)
{
        int r = -ESTALE;

        if (!store_node_name_is_valid(name) || !mutate)
                return -EINVAL;

        for (unsigned attempt = 0; attempt < UPDATE_ATTEMPTS && r == -ESTALE; attempt++) {
                _cleanup_(node_record_done) NodeRecord n = { .fence = FENCE_UNKNOWN };
                _cleanup_close_ int lock_fd = -EBADF;
                _cleanup_free_ char *text = NULL;
                uint64_t generation, version = 0;

                r = s->ops->lock(s, STORE_NODES, name, &lock_fd);
                if (r < 0)
                        return r;

                r = record_read(s, &node_kind, name, &n, &version);
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
        const Store *s = userdata;

        r->heartbeat++;
        r->heartbeat_time = now_realtime();
        r->mem_available = s->mem_available;
        r->self_fence_after = s->self_fence_after;
        r->max_incoming = s->max_incoming;
        return 0;
}

void store_set_heartbeat_facts(Store *s, uint64_t mem_available, uint64_t self_fence_after)
{
        s->mem_available = mem_available;
        s->self_fence_after = self_fence_after;
}

void store_set_max_incoming(Store *s, unsigned max_incoming)
{
        s->max_incoming = max_incoming;
}

int store_heartbeat(Store *s)
{
        int r;

        r = store_node_update(s, s->node_name, heartbeat_mutate, s, NULL);
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

        if (!name || !store_node_name_is_valid(name))
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

        if (!store_node_name_is_valid(name))
                return -EINVAL;
        /* Only the counter counts: peers write fence results and admins write Disable into a
         * node's record too, which bumps its generation but says nothing about the node. */
        r = record_read(s, &node_kind, name, &n, NULL);
        if (r < 0)
                return r;
        return store_node_liveness_of(s, &n, now_monotonic, down_after, ret);
}

int store_node_heartbeat_seen(Store *s, const char *name, usec_t *ret_monotonic)
{
        LivenessEntry *e;

        if (!store_node_name_is_valid(name))
                return -EINVAL;
        e = liveness_find(s, name);
        if (!e || !e->changed)
                return -ENODATA;
        *ret_monotonic = e->last_change;
        return 0;
}

int store_node_unseen(Store *s, const char *name, usec_t now_monotonic, usec_t *ret)
{
        LivenessEntry *e;

        if (!store_node_name_is_valid(name))
                return -EINVAL;
        e = liveness_find(s, name);
        if (!e)
                return -ENODATA;
        *ret = now_monotonic > e->last_change ? now_monotonic - e->last_change : 0;
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

int store_instance_get(Store *s, const char *uuid, InstanceRecord *ret)
{
        char u[37];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        return record_read(s, &instance_kind, u, ret, NULL);
}

/* Takes the backend's lock of instance u (closing *ret_lock_fd releases it), then reads its
 * stored generation, 0 if there is none, and the backend's version of it. */
static int instance_lock_current(Store *s, const char *u, int *ret_lock_fd, uint64_t *ret,
                                 uint64_t *ret_version)
{
        _cleanup_(instance_record_done) InstanceRecord cur = {};
        _cleanup_close_ int lock_fd = -EBADF;
        int r;

        r = s->ops->lock(s, STORE_INSTANCES, u, &lock_fd);
        if (r < 0)
                return r;
        r = record_read(s, &instance_kind, u, &cur, ret_version);
        if (r == -ENOENT) {
                *ret = 0;
                *ret_version = 0;
        } else if (r < 0)
                return r;
        else
                *ret = cur.generation;
        *ret_lock_fd = TAKE_FD(lock_fd);
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

        r = instance_lock_current(s, u, &lock_fd, &current, &version);
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

        r = instance_lock_current(s, u, &lock_fd, &current, &version);
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
