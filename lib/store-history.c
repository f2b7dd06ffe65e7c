/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The store's history of operations, its archive and its leases (store.h;
 * docs/history-and-archiving.md).
 *
 * History records are "key=value" texts like every record (store.c's rules), keyed by their
 * id, written once (create-only under the record's lock: a second writer of an id gets
 * -EEXIST). Archived entries are the original text with "archived=<usec>" added before the
 * generation line, in the archive spaces; an archived instance's definition goes with it.
 *
 * A move to the archive is: copy (atomic, durable), then remove the original (atomic,
 * durable). Cut short after the copy, the entry is in both places; the next move finds the
 * copy and only removes the original. An instance's record is removed on the condition
 * that its generation is the one copied (the instance lock, or etcd's transaction), so a
 * tombstone that a restore took over meanwhile stays live and its copy goes.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "runtime.h"
#include "store-internal.h"
#include "util.h"

#define ARCHIVED_KEY "archived"

static const char *const archive_kind_table[_ARCHIVE_KIND_MAX] = {
        [ARCHIVE_HISTORY] = "history",
        [ARCHIVE_INSTANCE] = "instance",
};

DEFINE_STRING_TABLE_TO_STRING(archive_kind, ArchiveKind);

/* ---- ids ------------------------------------------------------------------------------ */

static bool is_hex(const char *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!p[i] || !strchr("0123456789abcdef", p[i]))
                        return false;
        return true;
}

bool history_id_is_valid(const char *id)
{
        size_t len = id ? strlen(id) : 0;

        return len > 34 && len <= HISTORY_ID_MAX && is_hex(id, 16) && id[16] == '-' &&
               is_hex(id + 17, 16) && id[33] == '-' && hostname_is_valid(id + 34);
}

int history_id_new(const char *node, uint64_t started, const char *tag, char **ret)
{
        char random_tag[17];
        char *id;

        if (!tag) {
                uint64_t rnd;

                if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                        return negative_errno();
                snprintf(random_tag, sizeof(random_tag), "%016llx", (unsigned long long)rnd);
                tag = random_tag;
        }
        if (strlen(tag) != 16 || !is_hex(tag, 16) || !store_node_name_is_valid(node))
                return -EINVAL;
        if (asprintf(&id, "%016llx-%s-%s", (unsigned long long)started, tag, node) < 0)
                return -ENOMEM;
        *ret = id;
        return 0;
}

/* ---- history records ------------------------------------------------------------------ */

void history_record_done(HistoryRecord *r)
{
        free(r->id);
        free(r->kind);
        free(r->mode);
        free(r->domain);
        free(r->domain_name);
        free(r->node);
        free(r->source);
        free(r->destination);
        free(r->result);
        free(r->error);
        free(r->caller);
        *r = (HistoryRecord){ .caller_uid = HISTORY_UID_UNKNOWN };
}

DEFINE_ARRAY_FREE_FUNC(history_record_array_free, HistoryRecord, history_record_done);

/* a word such as "migration" or "post-copy": lower case, digits, dashes */
static bool word_is_valid(const char *w)
{
        if (isempty(w) || strlen(w) > 64)
                return false;
        for (const char *p = w; *p; p++)
                if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
                        return false;
        return true;
}

static bool uuid_is_lower(const char *u)
{
        return u && instance_file_name_is_valid(u);
}

static bool history_fields_are_valid(const HistoryRecord *h)
{
        return history_id_is_valid(h->id) && word_is_valid(h->kind) &&
               (!h->mode || word_is_valid(h->mode)) && word_is_valid(h->result) &&
               store_node_name_is_valid(h->node) && (!h->domain || uuid_is_lower(h->domain)) &&
               (!h->source || hostname_is_valid(h->source)) &&
               (!h->destination || hostname_is_valid(h->destination));
}

static int history_record_from_text(const char *id, const char *text, void *item)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_(history_record_done) HistoryRecord h = { .caller_uid = HISTORY_UID_UNKNOWN };
        uint64_t uid = HISTORY_UID_UNKNOWN;
        int r;

        r = store_record_text_parse(text, &rec);
        if (r < 0)
                return r;
        if (!streq_ptr(runtime_record_get(&rec, "id"), id))
                return -EBADMSG;
        if ((r = store_record_get_str(&rec, "id", &h.id)) < 0 ||
            (r = store_record_get_str(&rec, "kind", &h.kind)) < 0 ||
            (r = store_record_get_str(&rec, "mode", &h.mode)) < 0 ||
            (r = store_record_get_str(&rec, "domain", &h.domain)) < 0 ||
            (r = store_record_get_str(&rec, "domain_name", &h.domain_name)) < 0 ||
            (r = store_record_get_str(&rec, "node", &h.node)) < 0 ||
            (r = store_record_get_str(&rec, "source", &h.source)) < 0 ||
            (r = store_record_get_str(&rec, "destination", &h.destination)) < 0 ||
            (r = store_record_get_str(&rec, "result", &h.result)) < 0 ||
            (r = store_record_get_str(&rec, "error", &h.error)) < 0 ||
            (r = store_record_get_str(&rec, "caller", &h.caller)) < 0 ||
            (r = store_record_get_u64(&rec, "started", true, &h.started)) < 0 ||
            (r = store_record_get_u64(&rec, "finished", true, &h.finished)) < 0 ||
            (r = store_record_get_u64(&rec, "downtime", false, &h.downtime)) < 0 ||
            (r = store_record_get_u64(&rec, "bytes", false, &h.bytes)) < 0 ||
            (r = store_record_get_u64(&rec, ARCHIVED_KEY, false, &h.archived)) < 0 ||
            (r = store_record_get_u64(&rec, "generation", true, &h.generation)) < 0)
                return r;
        if (runtime_record_get(&rec, "caller_uid") &&
            (store_record_get_u64(&rec, "caller_uid", true, &uid) < 0 || uid > UINT32_MAX))
                return -EBADMSG;
        h.caller_uid = (uint32_t)uid;
        if (h.generation == 0 || !history_fields_are_valid(&h))
                return -EBADMSG;
        *(HistoryRecord *)item = h;
        h = (HistoryRecord){ .caller_uid = HISTORY_UID_UNKNOWN };
        return 0;
}

static int history_record_to_text(const HistoryRecord *h, char **ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        int r;

        if (!history_fields_are_valid(h))
                return -EINVAL;
        /* runtime_record_set() refuses values with newlines (-EINVAL) */
        if ((r = store_record_set_str(&rec, "id", h->id)) < 0 ||
            (r = store_record_set_str(&rec, "kind", h->kind)) < 0 ||
            (r = store_record_set_str(&rec, "mode", h->mode)) < 0 ||
            (r = store_record_set_str(&rec, "domain", h->domain)) < 0 ||
            (r = store_record_set_str(&rec, "domain_name", h->domain_name)) < 0 ||
            (r = store_record_set_str(&rec, "node", h->node)) < 0 ||
            (r = store_record_set_str(&rec, "source", h->source)) < 0 ||
            (r = store_record_set_str(&rec, "destination", h->destination)) < 0 ||
            (r = store_record_set_str(&rec, "result", h->result)) < 0 ||
            (r = store_record_set_str(&rec, "error", h->error)) < 0 ||
            (h->caller_uid != HISTORY_UID_UNKNOWN &&
             (r = store_record_set_u64(&rec, "caller_uid", h->caller_uid)) < 0) ||
            (r = store_record_set_str(&rec, "caller", h->caller)) < 0 ||
            (r = store_record_set_u64(&rec, "started", h->started)) < 0 ||
            (r = store_record_set_u64(&rec, "finished", h->finished)) < 0 ||
            (r = store_record_set_u64(&rec, "downtime", h->downtime)) < 0 ||
            (r = store_record_set_u64(&rec, "bytes", h->bytes)) < 0)
                return r;
        return store_record_text_format(&rec, 1, ret);
}

static void history_kind_done(void *item)
{
        history_record_done(item);
}

static int history_kind_compare(const void *a, const void *b)
{
        return strcmp(((const HistoryRecord *)a)->id, ((const HistoryRecord *)b)->id);
}

/* History records, live or archived (the archived ones have "archived" set) */
#define HISTORY_KIND(sp)                                                                         \
        {                                                                                        \
                .space = sp, .key_is_valid = history_id_is_valid, .size = sizeof(HistoryRecord), \
                .from_text = history_record_from_text, .done = history_kind_done,                \
                .compare = history_kind_compare,                                                 \
        }

static const RecordKind history_kind = HISTORY_KIND(STORE_HISTORY);
static const RecordKind archived_history_kind = HISTORY_KIND(STORE_ARCHIVE_HISTORY);

int store_history_add(Store *s, const HistoryRecord *rec)
{
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_free_ char *text = NULL, *cur = NULL;
        uint64_t version = 0;
        int r;

        if (!rec)
                return -EINVAL;
        r = history_record_to_text(rec, &text);
        if (r < 0)
                return r;
        r = s->ops->lock(s, STORE_HISTORY, rec->id, &lock_fd);
        if (r < 0)
                return r;
        r = s->ops->read(s, STORE_HISTORY, rec->id, RECORD_MAX_SIZE, &cur, &version);
        if (r >= 0)
                return -EEXIST;
        if (r != -ENOENT)
                return r;
        r = s->ops->write(s, STORE_HISTORY, rec->id, text, 0, 0644);
        return r == -ESTALE ? -EEXIST : r;
}

int store_history_get(Store *s, const char *id, HistoryRecord *ret)
{
        if (!history_id_is_valid(id))
                return -EINVAL;
        return record_read(s, &history_kind, id, ret, NULL);
}

int store_history_list(Store *s, HistoryRecord **ret, size_t *ret_n)
{
        void *array;
        size_t n;
        int r;

        r = list_records(s, &history_kind, &array, &n);
        if (r < 0)
                return r;
        *ret = array;
        *ret_n = n;
        return 0;
}

int store_archive_history_get(Store *s, const char *id, HistoryRecord *ret)
{
        if (!history_id_is_valid(id))
                return -EINVAL;
        return record_read(s, &archived_history_kind, id, ret, NULL);
}

/* ---- the archive ---------------------------------------------------------------------- */

int store_archive_instance_get(Store *s, const char *uuid, InstanceRecord *ret)
{
        RecordKind archived = *store_instance_record_kind;
        char u[37];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        archived.space = STORE_ARCHIVE_INSTANCES;
        return record_read(s, &archived, u, ret, NULL);
}

/* text (a complete record: generation last) with "archived=now" before its generation line */
static int archived_text(const char *text, uint64_t now, char **ret)
{
        size_t len = strlen(text);
        const char *last;

        if (len < 2 || text[len - 1] != '\n')
                return -EBADMSG;
        last = memrchr(text, '\n', len - 1);
        last = last ? last + 1 : text;
        if (!startswith(last, "generation="))
                return -EBADMSG;
        if (asprintf(ret, "%.*s" ARCHIVED_KEY "=%llu\n%s", (int)(last - text), text,
                     (unsigned long long)now, last) < 0)
                return -ENOMEM;
        return 0;
}

/* Copies text (of key) to space to, archived at now, unless to has this very text already
 * (a move cut short before: the time of that copy stays). */
static int copy_to_archive(Store *s, StoreSpace to, const char *key, const char *text, uint64_t now)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_free_ char *have = NULL, *copy = NULL, *same = NULL;
        uint64_t then;
        int r;

        r = s->ops->read(s, to, key, RECORD_MAX_SIZE, &have, NULL);
        if (r >= 0 && store_record_text_parse(have, &rec) >= 0 &&
            store_record_get_u64(&rec, ARCHIVED_KEY, true, &then) >= 0 &&
            archived_text(text, then, &same) >= 0 && streq(same, have))
                return 0;
        if (r < 0 && r != -ENOENT)
                return r;
        r = archived_text(text, now, &copy);
        if (r < 0)
                return r;
        return s->ops->write(s, to, key, copy, STORE_ANY_VERSION, 0644);
}

int store_history_archive(Store *s, const char *id, uint64_t now)
{
        _cleanup_(history_record_done) HistoryRecord h = { .caller_uid = HISTORY_UID_UNKNOWN };
        _cleanup_free_ char *text = NULL;
        int r;

        if (!history_id_is_valid(id))
                return -EINVAL;
        /* only a record that parses moves: a bad one stays for an operator to look at */
        r = record_read_text(s, &history_kind, id, &h, &text);
        if (r < 0)
                return r;
        r = copy_to_archive(s, STORE_ARCHIVE_HISTORY, id, text, now);
        if (r < 0)
                return r;
        store_test_step(s, "history-copied");
        r = s->ops->remove(s, STORE_HISTORY, id, STORE_ANY_VERSION);
        return r == -ENOENT ? 0 : r; /* another node's run finished it meanwhile */
}

/* Removes the archive's copy of instance u (a restore took the instance over). */
static int instance_archive_undo(Store *s, const char *u)
{
        int r = s->ops->remove(s, STORE_ARCHIVE_INSTANCES, u, STORE_ANY_VERSION);

        if (r < 0 && r != -ENOENT)
                return r;
        r = s->ops->remove(s, STORE_ARCHIVE_DEFINITIONS, u, STORE_ANY_VERSION);
        return r == -ENOENT ? 0 : r;
}

/* The live definition of u goes, once its copy is in the archive, unless a record of u is
 * live again (a restore). */
static int instance_definition_move(Store *s, const char *u)
{
        _cleanup_(instance_record_done) InstanceRecord live = {};
        _cleanup_free_ char *xml = NULL, *have = NULL;
        int r;

        r = s->ops->read(s, STORE_DEFINITIONS, u, DEFINITION_MAX_SIZE, &xml, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = s->ops->read(s, STORE_ARCHIVE_DEFINITIONS, u, DEFINITION_MAX_SIZE, &have, NULL);
        if (r == -ENOENT)
                r = s->ops->write(s, STORE_ARCHIVE_DEFINITIONS, u, xml, STORE_ANY_VERSION, 0600);
        if (r < 0)
                return r;
        store_test_step(s, "definition-copied");
        r = store_instance_get(s, u, &live);
        if (r >= 0)
                return 0; /* live again: its definition is its own */
        if (r != -ENOENT)
                return r;
        r = s->ops->remove(s, STORE_DEFINITIONS, u, STORE_ANY_VERSION);
        return r == -ENOENT ? 0 : r;
}

int store_instance_archive(Store *s, const char *uuid, uint64_t expected_generation, uint64_t now)
{
        _cleanup_(instance_record_done) InstanceRecord cur = {};
        _cleanup_free_ char *text = NULL, *xml = NULL;
        char u[37];
        int r;

        if (!uuid_is_lower(uuid))
                return -EINVAL;
        memcpy(u, uuid, sizeof(u));
        r = record_read_text(s, store_instance_record_kind, u, &cur, &text);
        if (r < 0)
                return r;
        if (cur.generation != expected_generation || !cur.deleted)
                return -ESTALE;

        /* the definition first, then the record: a copy of the record in the archive
         * always has its definition there too */
        r = s->ops->read(s, STORE_DEFINITIONS, u, DEFINITION_MAX_SIZE, &xml, NULL);
        if (r >= 0)
                r = s->ops->write(s, STORE_ARCHIVE_DEFINITIONS, u, xml, STORE_ANY_VERSION, 0600);
        if (r < 0 && r != -ENOENT)
                return r;
        r = copy_to_archive(s, STORE_ARCHIVE_INSTANCES, u, text, now);
        if (r < 0)
                return r;
        store_test_step(s, "instance-copied");
        r = store_instance_remove(s, u, expected_generation);
        if (r == -ESTALE) {
                /* taken over (a restore) since it was read: the live record holds */
                int k = instance_archive_undo(s, u);

                return k < 0 ? k : -ESTALE;
        }
        if (r < 0 && r != -ENOENT)
                return r;
        store_test_step(s, "instance-removed");
        return instance_definition_move(s, u);
}

int store_instance_archive_finish(Store *s, const char *uuid)
{
        if (!uuid_is_lower(uuid))
                return -EINVAL;
        return instance_definition_move(s, uuid);
}

void archived_entry_done(ArchivedEntry *e)
{
        free(e->key);
        free(e->name);
        *e = (ArchivedEntry){};
}

DEFINE_ARRAY_FREE_FUNC(archived_entry_array_free, ArchivedEntry, archived_entry_done);

static int archived_history_from_text(const char *key, const char *text, void *item)
{
        _cleanup_(history_record_done) HistoryRecord h = { .caller_uid = HISTORY_UID_UNKNOWN };
        ArchivedEntry *e = item;
        int r;

        r = history_record_from_text(key, text, &h);
        if (r < 0)
                return r;
        *e = (ArchivedEntry){ .kind = ARCHIVE_HISTORY,
                              .key = TAKE_PTR(h.id),
                              .name = TAKE_PTR(h.domain_name),
                              .time = h.finished,
                              .archived = h.archived };
        return 0;
}

static int archived_instance_from_text(const char *key, const char *text, void *item)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_(instance_record_done) InstanceRecord i = {};
        ArchivedEntry *e = item;
        uint64_t archived;
        int r;

        r = instance_record_from_text(key, text, &i);
        if (r < 0)
                return r;
        r = store_record_text_parse(text, &rec);
        if (r < 0)
                return r;
        r = store_record_get_u64(&rec, ARCHIVED_KEY, true, &archived);
        if (r < 0)
                return r;
        *e = (ArchivedEntry){ .kind = ARCHIVE_INSTANCE, .time = i.time, .archived = archived };
        e->key = strdup(key);
        e->name = TAKE_PTR(i.name);
        return e->key ? 0 : -ENOMEM;
}

static void archived_kind_done(void *item)
{
        archived_entry_done(item);
}

static int archived_kind_compare(const void *a, const void *b)
{
        const ArchivedEntry *x = a, *y = b;

        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        return strcmp(x->key, y->key);
}

static bool archived_uuid_is_valid(const char *key)
{
        return uuid_is_lower(key);
}

#define ARCHIVED_KIND(sp, valid, parse)                                                           \
        {                                                                                         \
                .space = sp, .key_is_valid = valid, .size = sizeof(ArchivedEntry),                \
                .from_text = parse, .done = archived_kind_done, .compare = archived_kind_compare, \
        }

static const RecordKind archived_kinds[_ARCHIVE_KIND_MAX] = {
        [ARCHIVE_HISTORY] = ARCHIVED_KIND(STORE_ARCHIVE_HISTORY, history_id_is_valid,
                                          archived_history_from_text),
        [ARCHIVE_INSTANCE] = ARCHIVED_KIND(STORE_ARCHIVE_INSTANCES, archived_uuid_is_valid,
                                           archived_instance_from_text),
};

int store_archive_list(Store *s, ArchivedEntry **ret, size_t *ret_n)
{
        ArchivedEntry *all = NULL;
        size_t n_all = 0;

        for (ArchiveKind k = 0; k < _ARCHIVE_KIND_MAX; k++) {
                void *array = NULL;
                ArchivedEntry *grown;
                size_t n = 0;
                int r;

                r = list_records(s, &archived_kinds[k], &array, &n);
                if (r < 0) {
                        archived_entry_array_free(all, n_all);
                        return r;
                }
                if (n == 0)
                        continue;
                grown = reallocarray(all, n_all + n, sizeof(ArchivedEntry));
                if (!grown) {
                        archived_entry_array_free(array, n);
                        archived_entry_array_free(all, n_all);
                        return -ENOMEM;
                }
                all = grown;
                memcpy(all + n_all, array, n * sizeof(ArchivedEntry));
                n_all += n;
                free(array);
        }
        *ret = all;
        *ret_n = n_all;
        return 0;
}

int store_archive_remove(Store *s, ArchiveKind kind, const char *key)
{
        int r;

        if (kind == ARCHIVE_HISTORY) {
                if (!history_id_is_valid(key))
                        return -EINVAL;
                return s->ops->remove(s, STORE_ARCHIVE_HISTORY, key, STORE_ANY_VERSION);
        }
        if (kind != ARCHIVE_INSTANCE || !uuid_is_lower(key))
                return -EINVAL;
        /* the definition first: a record left behind by a purge cut short is purged again,
         * and takes nothing with it that is not its own */
        r = s->ops->remove(s, STORE_ARCHIVE_DEFINITIONS, key, STORE_ANY_VERSION);
        if (r < 0 && r != -ENOENT)
                return r;
        store_test_step(s, "definition-purged");
        return s->ops->remove(s, STORE_ARCHIVE_INSTANCES, key, STORE_ANY_VERSION);
}

/* ---- leases --------------------------------------------------------------------------- */

void store_lease_done(StoreLease *l)
{
        free(l->holder);
        *l = (StoreLease){};
}

static bool lease_name_is_valid(const char *name)
{
        return word_is_valid(name);
}

/* The lease under name as stored: holder, token, expires. */
static int lease_read(Store *s, const char *name, StoreLease *ret, uint64_t *ret_version)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_free_ char *text = NULL;
        const char *holder, *token;
        StoreLease l = {};
        int r;

        r = s->ops->read(s, STORE_LEASES, name, RECORD_MAX_SIZE, &text, ret_version);
        if (r < 0)
                return r;
        r = store_record_text_parse(text, &rec);
        if (r < 0)
                return r;
        holder = runtime_record_get(&rec, "holder");
        token = runtime_record_get(&rec, "token");
        if (!holder || !store_node_name_is_valid(holder) || !token || strlen(token) != 32 ||
            !is_hex(token, 32) || store_record_get_u64(&rec, "expires", true, &l.expires) < 0)
                return -EBADMSG;
        memcpy(l.token, token, sizeof(l.token));
        l.holder = strdup(holder);
        if (!l.holder)
                return -ENOMEM;
        *ret = l;
        return 0;
}

/* Takes the lock of lease name (closing *ret_lock_fd releases it) and reads the lease:
 * -ENOENT, with *ret_version 0, when nobody ever took it. */
static int lease_lock_read(Store *s, const char *name, int *ret_lock_fd, StoreLease *ret,
                           uint64_t *ret_version)
{
        int r;

        r = s->ops->lock(s, STORE_LEASES, name, ret_lock_fd);
        if (r < 0)
                return r;
        r = lease_read(s, name, ret, ret_version);
        if (r == -ENOENT)
                *ret_version = 0;
        return r;
}

int store_lease_acquire(Store *s, const char *name, uint64_t now, uint64_t ttl, StoreLease *lease,
                        char **ret_holder)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_(store_lease_done) StoreLease cur = {};
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        char token[33];
        uint64_t version = 0;
        int r;

        if (!lease_name_is_valid(name) || ttl == 0 || now > UINT64_MAX - ttl)
                return -EINVAL;
        r = lease_lock_read(s, name, &lock_fd, &cur, &version);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0 && cur.expires > now &&
            !(streq(cur.holder, s->node_name) && streq(cur.token, lease->token))) {
                if (ret_holder)
                        *ret_holder = TAKE_PTR(cur.holder);
                return -EBUSY;
        }

        if (lease->token[0])
                memcpy(token, lease->token, sizeof(token));
        else {
                uint64_t rnd[2];

                if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                        return negative_errno();
                snprintf(token, sizeof(token), "%016llx%016llx", (unsigned long long)rnd[0],
                         (unsigned long long)rnd[1]);
        }
        if ((r = store_record_set_str(&rec, "holder", s->node_name)) < 0 ||
            (r = store_record_set_str(&rec, "token", token)) < 0 ||
            (r = store_record_set_u64(&rec, "expires", now + ttl)) < 0 ||
            (r = store_record_text_format(&rec, 1, &text)) < 0)
                return r;
        /* etcd: taken by another since it was read */
        r = s->ops->write(s, STORE_LEASES, name, text, version, 0644);
        if (r == -ESTALE)
                return -EBUSY;
        if (r < 0)
                return r;
        if (free_and_strdup(&lease->holder, s->node_name) < 0)
                return -ENOMEM;
        memcpy(lease->token, token, sizeof(token));
        lease->expires = now + ttl;
        return 0;
}

int store_lease_release(Store *s, const char *name, const StoreLease *lease)
{
        _cleanup_(store_lease_done) StoreLease cur = {};
        _cleanup_close_ int lock_fd = -EBADF;
        uint64_t version = 0;
        int r;

        if (!lease_name_is_valid(name))
                return -EINVAL;
        r = lease_lock_read(s, name, &lock_fd, &cur, &version);
        if (r == -ENOENT)
                return -ESTALE;
        if (r < 0)
                return r;
        if (!streq(cur.holder, s->node_name) || !streq(cur.token, lease->token))
                return -ESTALE;
        r = s->ops->remove(s, STORE_LEASES, name, version ? version : STORE_ANY_VERSION);
        return r == -ENOENT ? -ESTALE : r;
}
