/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What store.c (records, compare-and-swap, liveness: one behaviour) needs of a backend
 * (store-dir.c, store-etcd.c: where the records' text lives), and what it shares with
 * store-records.c (the records' text).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime.h"
#include "store.h"

typedef enum StoreSpace {
        STORE_NODES,       /* key: node name */
        STORE_INSTANCES,   /* key: canonical lower-case UUID */
        STORE_DEFINITIONS, /* key: canonical lower-case UUID */
        STORE_CLUSTER,     /* key: "identity" (store-cluster.c) */
        /* store-history.c: created on first use, so a store of an older version gets them */
        STORE_HISTORY,             /* key: history id */
        STORE_ARCHIVE_HISTORY,     /* key: history id */
        STORE_ARCHIVE_INSTANCES,   /* key: canonical lower-case UUID */
        STORE_ARCHIVE_DEFINITIONS, /* key: canonical lower-case UUID */
        STORE_LEASES,              /* key: lease name */
        _STORE_SPACE_MAX,
} StoreSpace;

#define RECORD_MAX_SIZE     (64U * 1024U)
#define DEFINITION_MAX_SIZE (16U * 1024U * 1024U)

/* A write or removal whatever is stored (definitions: last writer wins). */
#define STORE_ANY_VERSION UINT64_MAX

typedef int (*StoreListFunc)(const char *key, const char *text, void *userdata);

typedef struct StoreOps {
        const char *name;
        void (*free)(Store *s);
        /* The text under key (-ENOENT if none; -EBADMSG if larger than max or holding a NUL
         * byte) and its version, for a later write: what changes with every write of the
         * key (etcd's mod_revision), or 0 where a lock does that job (dir). */
        int (*read)(Store *s, StoreSpace sp, const char *key, size_t max, char **ret,
                    uint64_t *ret_version);
        /* f(key, text) for every key of the space that passes filter, in no order; a key
         * removed meanwhile is skipped. A negative return of f ends the listing with it. */
        int (*list)(Store *s, StoreSpace sp, bool (*filter)(const char *key), StoreListFunc f,
                    void *userdata);
        /* Makes a read-modify-write of key exclusive where the backend needs it (dir: the
         * record's lock; closing *ret_fd releases it); else *ret_fd = -EBADF. */
        int (*lock)(Store *s, StoreSpace sp, const char *key, int *ret_fd);
        /* Stores text under key, durably, if the key's version is still version (0: the key
         * must not exist); -ESTALE if not. STORE_ANY_VERSION: unconditionally. mode: the
         * file mode where there are files. */
        int (*write)(Store *s, StoreSpace sp, const char *key, const char *text, uint64_t version,
                     mode_t mode);
        /* Removes key under the same condition; -ENOENT if it does not exist. */
        int (*remove)(Store *s, StoreSpace sp, const char *key, uint64_t version);
        /* Makes an empty store ready for its first records (dir: creates state_dir, not its
         * parents, and the directories in it). May be NULL. Only store_cluster_init() calls
         * it: nothing else creates a store. */
        int (*init)(Store *s);
        /* After this node's heartbeat was written: what else the backend keeps alive (etcd:
         * its lease). May be NULL. */
        int (*heartbeat)(Store *s);
        /* store_error_detail(); may be NULL */
        const char *(*error_detail)(const Store *s);
} StoreOps;

/* etcd: how a request reaches a member. The default POSTs with libcurl (store_etcd_curl());
 * the fuzzer (tests/fuzz/fuzz-etcd.c) answers from its input instead, and the unit tests
 * wrap the default to lose answers. Returns 0 with the HTTP status and the answer (malloc'd
 * and NUL-terminated, or NULL); or, and then the next member is tried: -ECONNREFUSED when
 * it cannot connect, -EHOSTUNREACH when no answer came (the request may have been carried
 * out all the same), -EPROTO when the TLS handshake failed (a certificate refused by either
 * side); any other negative errno fails the request. */
typedef int (*EtcdTransport)(void *userdata, const char *url, const char *body, long *ret_status,
                             char **ret_data);
/* transport NULL: libcurl again */
void store_etcd_set_transport(Store *s, EtcdTransport transport, void *userdata);
/* The default transport; userdata is the Store. */
int store_etcd_curl(void *userdata, const char *url, const char *body, long *ret_status,
                    char **ret_data);

typedef struct LivenessEntry {
        char *name;
        uint64_t counter;
        usec_t last_change; /* observer's monotonic time; the first look counts as one */
        bool changed;       /* a change was seen after the first look */
} LivenessEntry;

struct Store {
        const StoreOps *ops;
        char *node_name;

        char *state_dir;         /* dir */
        struct EtcdClient *etcd; /* etcd */

        LivenessEntry *liveness;
        size_t n_liveness;

        /* store_set_heartbeat_facts(): written with each heartbeat */
        uint64_t mem_available, self_fence_after;
        unsigned max_incoming;

        /* store_node_list_cached(): the last listing and when it was read; dropped by every
         * node record write through this Store */
        NodeRecord *node_cache;
        size_t n_node_cache;
        usec_t node_cache_time;
        bool node_cache_valid;

        /* Tests only: called between the steps of a move to the archive (store-history.c,
         * archive.c) with the step's name, so that a test can kill the process at each
         * point that a real crash could hit but no timing can aim at. NULL in production. */
        void (*test_step)(Store *s, const char *step, void *userdata);
        void *test_step_data;
};

static inline void store_test_step(Store *s, const char *step)
{
        if (s->test_step)
                s->test_step(s, step, s->test_step_data);
}

/* Record text (runtime.h's "key=value" lines): -EBADMSG unless every line is one. Format
 * appends "generation=N" last, so that a text cut short is recognisably incomplete. */
int store_record_text_parse(const char *text, RuntimeRecord *ret);
int store_record_text_format(const RuntimeRecord *rec, uint64_t generation, char **ret);

/* One field of a record's text (store-records.c): a missing optional number is 0, a missing
 * string NULL; a value that does not parse is -EBADMSG. Setting a NULL string sets nothing. */
int store_record_get_u64(const RuntimeRecord *rec, const char *key, bool required, uint64_t *ret);
int store_record_get_str(const RuntimeRecord *rec, const char *key, char **ret);
int store_record_set_u64(RuntimeRecord *rec, const char *key, uint64_t v);
int store_record_set_str(RuntimeRecord *rec, const char *key, const char *v);

/* Records to and from their text (store-records.c). from_text: -EBADMSG unless the text is a
 * complete record of that name (uuid: lower case); to_text: -EINVAL for a record that may not
 * be stored, else the text with generation last. */
int node_record_from_text(const char *name, const char *text, NodeRecord *ret);
int node_record_to_text(const NodeRecord *n, uint64_t generation, char **ret);
int node_record_copy(const NodeRecord *src, NodeRecord *dst);
int instance_record_from_text(const char *uuid, const char *text, InstanceRecord *ret);
int instance_record_to_text(const InstanceRecord *i, const char *uuid, uint64_t generation,
                            char **ret);

/* A kind of record: its space, which keys are its, how its text is parsed and how it is
 * freed; listings sort by compare (the key). */
typedef struct RecordKind {
        StoreSpace space;
        bool (*key_is_valid)(const char *key);
        size_t size;
        int (*from_text)(const char *key, const char *text, void *item);
        void (*done)(void *item);
        int (*compare)(const void *a, const void *b);
} RecordKind;

/* A UUID in lower case, as the store names its records: -EINVAL if uuid is none (store.c). */
int normalize_uuid(const char *uuid, char out[static 37]);
/* The record of kind k under key (a valid one), and the backend's version of it (store.c). */
int record_read(Store *s, const RecordKind *k, const char *key, void *ret, uint64_t *ret_version);
/* The same, and the record's text as stored (what moves to the archive, as it is). */
int record_read_text(Store *s, const RecordKind *k, const char *key, void *ret, char **ret_text);
/* The instance records' kind (store.c): the archive reads and moves them too. */
extern const RecordKind *const store_instance_record_kind;
/* Every record of kind k, parsed into a new array sorted by k->compare (store.c). */
int list_records(Store *s, const RecordKind *k, void **ret, size_t *ret_n);

/* A canonical lower-case UUID: the key of an instance's records (store.c). */
bool instance_file_name_is_valid(const char *name);

/* name(a, n): done() on each of the n items of a, then frees a; returns NULL. */
#define DEFINE_ARRAY_FREE_FUNC(name, type, done)    \
        type *name(type *a, size_t n)               \
        {                                           \
                for (size_t i = 0; a && i < n; i++) \
                        done(&a[i]);                \
                free(a);                            \
                return NULL;                        \
        }

/* A Store of no backend yet, for node_name (-EINVAL if not a valid name). */
int store_new(const StoreOps *ops, const char *node_name, Store **ret);
bool store_node_name_is_valid(const char *name);

extern const StoreOps store_dir_ops;
extern const StoreOps store_etcd_ops;
