/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maintenance-state.h"
#include "util.h"

/*
 * The cluster state store (DESIGN.md §4): node records, instance ownership records and the
 * last known inactive definition of each instance, shared by all compute nodes.
 *
 * Two backends with one behaviour: "dir", files under a state directory on the storage
 * every node mounts (store-dir.c), and "etcd", an etcd v3 cluster through its JSON gateway
 * (store-etcd.c). Every write is atomic (a reader sees the old or the new record, never a
 * mix) and durable when the call returns.
 *
 * All functions return 0 or a negative errno and write their ret parameters only on success.
 * Common errors: -EINVAL for a UUID or node name that is not valid (no path is ever built from
 * one), -ENOENT for a record that does not exist, -EBADMSG for a record that exists but
 * cannot be parsed (it is never treated as absent: an operator has to look at it).
 *
 * Calls that change state block while another node, process or Store object holds the lock
 * of the same record (normally for the time of one small write).
 *
 * A Store object must not be used by two threads at once; give each thread its own (they
 * serialize against each other through the file locks like separate processes do).
 */

typedef struct Store Store;

/*
 * Opens the store in state_dir for the node called node_name (the name heartbeats are
 * written for). Creates nothing and reads nothing: a state_dir that does not exist yet (the
 * shared storage not mounted, a cluster not initialized) shows in store_cluster_get().
 */
int store_open_dir(const char *state_dir, const char *node_name, Store **ret);
/*
 * How hostwardend talks to etcd ([cluster] etcd_* keys, hostwarden.conf(5)). Every field may
 * be NULL/false. The files are read by libcurl when a connection is made, so a missing or
 * unreadable file shows as the error of the first request, with store_error_detail().
 */
typedef struct EtcdOptions {
        const char *ca_file;   /* the CA that signed the members' certificates; NULL: the
                                * system's trust store. Peers are always verified, names too */
        const char *cert_file; /* client certificate (PEM), with key_file */
        const char *key_file;
        const char *user;     /* etcd authentication (v3 auth), with password */
        const char *password; /* a secret: never in a message; copied and wiped on free */
        bool insecure;        /* http:// endpoints allowed; without it, only https:// */
        /* 0: the defaults, 1 s to connect (the TLS handshake included) and 5 s in all for a
         * request on one member (slow test setups such as valgrind need more) */
        unsigned connect_timeout_ms, timeout_ms;
} EtcdOptions;

/* The options [cluster] etcd_* of c give (its strings, not copies). */
struct Config;
EtcdOptions store_etcd_options(const struct Config *c);

/*
 * Opens the store kept in etcd (endpoints: NULL-terminated "https://host:port" URLs of its
 * members; "http://" only with opts->insecure) under prefix (NULL: "/hostwarden"; it starts
 * with "/" and does not end with one) for node_name. lease_ttl_sec is the TTL of the lease
 * that this node's heartbeats keep alive. opts may be NULL (https, the system's CAs, no
 * client certificate, no user). Nothing is asked of etcd until the first call: an
 * unreachable cluster shows there (-EHOSTUNREACH), and so do a TLS handshake that failed
 * (-EPROTO: a certificate refused by either side) and credentials etcd refused (-EACCES).
 */
int store_open_etcd(char *const *endpoints, const char *prefix, const char *node_name,
                    uint64_t lease_ttl_sec, const EtcdOptions *opts, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

const char *store_node_name(const Store *s);
const char *store_backend_name(const Store *s); /* "dir", "etcd" */
/* What the last failed call met, for the operator (etcd: each member tried and what it
 * answered, or why it did not); "" if nothing more is known than the error code. Holds no
 * secret. Valid until the next call on s. */
const char *store_error_detail(const Store *s);

/*
 * The cluster's identity (DESIGN.md §7, §11): written once, by store_cluster_init()
 * (`hostwardenctl init-cluster`), into an empty store. A node acts on a store only once it
 * has read the identity there and found the one it last joined (cluster_identity_load()),
 * so a bare directory where the shared storage is not mounted yet, an empty etcd prefix or
 * another cluster's store is never taken for this cluster's.
 */
typedef struct ClusterIdentity {
        char id[37];      /* a random UUID, lower case */
        char *name;       /* the operator's name for the cluster (node-name syntax), may be NULL */
        uint64_t created; /* usec realtime */
        char *created_by; /* the node that wrote it, may be NULL */
} ClusterIdentity;

void cluster_identity_done(ClusterIdentity *c);
bool cluster_name_is_valid(const char *name);

/* -ENOENT: the store holds no identity (never initialized, or not this cluster's store at
 * all: the shared storage not mounted, an empty etcd prefix); -EBADMSG: one that cannot be
 * parsed. Any other error: the store cannot be reached. */
int store_cluster_get(Store *s, ClusterIdentity *ret);
/*
 * Writes a new identity named name (may be NULL) into the store, created by this Store's
 * node: -EEXIST if the store has one already (ret then gets it), -ENOTEMPTY if it holds node
 * or instance records and adopt is false (a store of a version without identities: adopt
 * makes it this cluster's), -EINVAL for a bad name.
 */
int store_cluster_init(Store *s, const char *name, bool adopt, ClusterIdentity *ret);

/* The identity this node last joined, kept outside the store (<dir>/cluster-id, dir
 * normally /var/lib/hostwarden): -ENOENT if it never joined one. Save writes it atomically. */
int cluster_identity_load(const char *dir, ClusterIdentity *ret);
int cluster_identity_save(const char *dir, const ClusterIdentity *c);

/* The last result of a node's fence agent (or of an admin's ForceDown). */
typedef enum FenceState {
        FENCE_UNKNOWN,
        FENCE_ON,
        FENCE_OFF,
        _FENCE_STATE_MAX,
        _FENCE_STATE_INVALID = -EINVAL,
} FenceState;

const char *fence_state_to_string(FenceState f); /* "unknown", "on", "off" */
FenceState fence_state_from_string(const char *s);

/* The length of a NodeRecord.storage_mark (diskinfo.h storage marks), in hex digits. */
#define STORAGE_MARK_LEN 32

/* Times are usec since the epoch (CLOCK_REALTIME of the node that wrote them), 0 = never.
 * They are for people reading them: no decision in hostwarden compares them across nodes. */
typedef struct NodeRecord {
        char *name;
        char *address;      /* may be NULL */
        char *storage_mark; /* diskinfo.h storage marks; may be NULL (none written) */

        bool disabled;
        char *disabled_reason; /* may be NULL */
        uint64_t disabled_since;

        uint64_t heartbeat;      /* counter, bumped only by the node itself (store_heartbeat) */
        uint64_t heartbeat_time; /* when, by that node's clock; informational only */

        bool forced_down;
        char *forced_down_by; /* may be NULL */
        uint64_t forced_down_since;

        FenceState fence;
        uint64_t fence_time;
        /* Written with each heartbeat (store_set_heartbeat_facts()), for automatic recovery
         * (docs/recovery.md): the memory a guest started here could use (bytes, 0: not
         * known), and [recovery] self_fence_after when this node powers itself off after
         * that long without a heartbeat (usec, 0: it does not). */
        uint64_t mem_available;
        uint64_t self_fence_after;
        /* [migration] max_incoming: live migrations it takes at once, 0: no limit (written
         * with each heartbeat: store_set_max_incoming()) */
        unsigned max_incoming;

        /* Maintenance (maintenance-state.h, docs/maintenance.md), written by the node itself:
         * its state, since when, the deadline Enter set (0: none), and the guests that left
         * during it, "UUID@NODE" each, comma-separated (NULL: none), for Exit's return;
         * any node may take the entries of the guests it sent back out of it. */
        MaintenanceState maintenance;
        uint64_t maintenance_since;
        uint64_t maintenance_deadline;
        char *maintenance_left;
        bool maintenance_return; /* Exit(true): the nodes running those guests send them back */

        uint64_t generation; /* bumped by every write, set by the store */
} NodeRecord;

void node_record_done(NodeRecord *r);
/* Frees an array from store_node_list(); returns NULL. */
NodeRecord *node_record_array_free(NodeRecord *a, size_t n);

/* Reads the record of node name. -ENOENT if there is none. */
int store_node_get(Store *s, const char *name, NodeRecord *ret);

/*
 * Read-modify-write of node name's record under its lock. mutate() gets the current record,
 * or, when there is none, a fresh one (generation 0, name set, fence FENCE_UNKNOWN, all else
 * zero) that it may fill in or refuse by returning -ENOENT. When mutate() returns < 0,
 * nothing is written and that value is returned. mutate() must not change name (-EINVAL)
 * and must not write to the store through any Store object: the record's lock is held, and
 * a nested write (which may hash to the same lock byte) would wait for it forever. The
 * generation is bumped on every write; if ret is not NULL it gets the record as written.
 *
 * String fields must not contain newlines (-EINVAL); address must be a host name or an IP
 * address, storage_mark STORAGE_MARK_LEN lowercase hex digits.
 */
typedef int (*NodeMutateFunc)(NodeRecord *r, void *userdata);
int store_node_update(Store *s, const char *name, NodeMutateFunc mutate, void *userdata,
                      NodeRecord *ret);

/*
 * All node records, sorted by name (*ret_n may be 0, *ret then NULL). Files that are not
 * records (temporary files of writers, anything not named like a node) are skipped; a
 * record that cannot be parsed fails the whole listing with -EBADMSG.
 */
int store_node_list(Store *s, NodeRecord **ret, size_t *ret_n);

/*
 * The same from a listing at most max_age old (by the caller's monotonic clock
 * now_monotonic): for read-only answers polled by monitoring, which must not turn into file
 * reads on the shared storage at their rate. A write of a node record through this Store
 * drops the cached listing, so this Store's own changes are always seen.
 */
int store_node_list_cached(Store *s, usec_t now_monotonic, usec_t max_age, NodeRecord **ret,
                           size_t *ret_n);

/* Bumps this node's heartbeat counter (creating its record if needed), and writes the
 * facts last set with store_set_heartbeat_facts(). */
int store_heartbeat(Store *s);
void store_set_heartbeat_facts(Store *s, uint64_t mem_available, uint64_t self_fence_after);
/* What the next heartbeats write as this node's max_incoming. */
void store_set_max_incoming(Store *s, unsigned max_incoming);

/*
 * Liveness of node name as judged by this observer. The store remembers, per node, the last
 * heartbeat counter this Store saw and the observer's monotonic time (now_monotonic, e.g.
 * CLOCK_MONOTONIC) when it saw it change. Wall clock times written by other nodes play no
 * part, so clock skew cannot make a live node look dead.
 *
 *   NODE_UP       the counter changed since this Store first looked, and less than
 *                 down_after ago
 *   NODE_DOWN     the counter did not change for down_after (since the last change seen or,
 *                 when none was ever seen, since this Store first looked)
 *   NODE_UNKNOWN  not watched long enough to tell (first look less than down_after ago and no
 *                 change seen yet)
 *
 * Call it at least every down_after / 2 or so for each peer: a change is only noticed when
 * this is called, and it is dated at the call (a late look makes DOWN come later, never
 * earlier). -ENOENT when the node has no record.
 */
typedef enum NodeLiveness {
        NODE_UP,
        NODE_DOWN,
        NODE_UNKNOWN,
        _NODE_LIVENESS_MAX, /* no liveness yet: a variable not set */
} NodeLiveness;

const char *node_liveness_to_string(NodeLiveness l); /* "up", "down", "unknown" */

/* The same for a record just read (a listing), without reading it again. */
int store_node_liveness_of(Store *s, const NodeRecord *rec, usec_t now_monotonic, usec_t down_after,
                           NodeLiveness *ret);
int store_node_liveness(Store *s, const char *name, usec_t now_monotonic, usec_t down_after,
                        NodeLiveness *ret);
/*
 * The observer's monotonic time at which this Store last saw node name's heartbeat counter
 * change (as passed to store_node_liveness*()), for messages such as "last seen 3 s ago".
 * -ENODATA when it never saw it change (not watched, or NODE_UNKNOWN so far).
 */
int store_node_heartbeat_seen(Store *s, const char *name, usec_t *ret_monotonic);
/* How long node name's heartbeat counter has stood still by this observer's clock: since its
 * last change seen, or since the first look when none was seen. -ENODATA: never looked at. */
int store_node_unseen(Store *s, const char *name, usec_t now_monotonic, usec_t *ret);

/* An instance's power state as its owner last saw it, so that an evacuation rebuilds it as
 * it was (Nova's evacuate keeps a stopped instance stopped). */
typedef enum InstancePower {
        INSTANCE_POWER_UNKNOWN, /* not recorded (a record of an older version) */
        INSTANCE_POWER_RUNNING,
        INSTANCE_POWER_PAUSED,
        INSTANCE_POWER_SHUTOFF,
        _INSTANCE_POWER_MAX,
        _INSTANCE_POWER_INVALID = -EINVAL,
} InstancePower;

const char *instance_power_to_string(InstancePower p); /* "unknown", "running", ... */
InstancePower instance_power_from_string(const char *s);

typedef struct InstanceRecord {
        char uuid[37];        /* canonical lower case */
        char *name;           /* libvirt domain name, may be NULL */
        char *owner;          /* the node that may run it (a tombstone: that saw it deleted) */
        char *evacuated_from; /* may be NULL */
        uint64_t time;        /* usec realtime of the last ownership change */
        InstancePower power;  /* as the owner last saw it */
        /* A tombstone: the instance was deleted (no node had it any more when its owner
         * asked them all). Kept, so that a stale copy on the node it was evacuated from
         * cannot claim it again; a new definition elsewhere (a restore) takes it over. */
        bool deleted;
        /* A cold migration between its source and the owner (dbus/migration-cold.c): the
         * guest is the owner's; cold_source keeps its shut-off copy and the local disk files
         * for a Revert until Confirm, and reconciliation removes neither copy meanwhile
         * (reconcile-plan.h). All NULL/empty when none. */
        char *cold_source;
        char *cold_migration;     /* the Migration's id on cold_source */
        char *cold_state;         /* coldmig.h ColdState, as a word */
        char **cold_disks;        /* the local files it copied: the same paths on both nodes */
        InstancePower cold_power; /* the guest's on cold_source before: what Revert restores */
        /* Automatic recovery (docs/recovery.md): the coordinator's choice of the node that
         * rebuilds it, after its owner was fenced (NULL: none), when, and the nodes that
         * refused it (they cannot host it: the coordinator chooses among the others). A
         * rebuild writes a fresh record, which drops them. */
        char *recover_to;
        uint64_t recover_time;
        char **recover_refused;
        uint64_t generation; /* set by the store */
} InstanceRecord;

void instance_record_done(InstanceRecord *r);
/* Frees an array from store_instance_list(); returns NULL. */
InstanceRecord *instance_record_array_free(InstanceRecord *a, size_t n);

/* Reads the record of instance uuid (any case). -ENOENT if there is none. */
int store_instance_get(Store *s, const char *uuid, InstanceRecord *ret);

/*
 * Compare-and-swap of an instance record. Writes rec (rec->generation is ignored) if the
 * stored generation equals expected_generation, where 0 means the record must not exist yet
 * (-EEXIST if it does). Any other mismatch, including a record that disappeared, is
 * -ESTALE: re-read and decide again. The stored generation becomes expected_generation + 1,
 * which ret_generation (may be NULL) gets.
 *
 * rec->owner must be a valid node name, rec->evacuated_from NULL or one, rec->name free of
 * newlines (-EINVAL otherwise).
 *
 * Note that a removed and re-created record starts again at generation 1; a caller holding
 * generation 1 of the old record would win a CAS against the new one. Remove records only
 * when the instance itself is gone.
 */
int store_instance_cas(Store *s, const InstanceRecord *rec, uint64_t expected_generation,
                       uint64_t *ret_generation);

/* Removes the record if its generation is expected_generation: -ENOENT if there is none,
 * -ESTALE if the generation differs. */
int store_instance_remove(Store *s, const char *uuid, uint64_t expected_generation);

/* All instance records, sorted by UUID; skipping and -EBADMSG as store_node_list(). */
int store_instance_list(Store *s, InstanceRecord **ret, size_t *ret_n);

/*
 * The last known inactive domain XML of an instance (it may hold secrets such as console
 * passwords, so it is mode 0600 in a 0700 directory). Put replaces atomically, last writer
 * wins; there is no generation. Get is -ENOENT when there is none; remove of a missing
 * definition succeeds.
 */
int store_definition_put(Store *s, const char *uuid, const char *xml);
int store_definition_get(Store *s, const char *uuid, char **ret);
int store_definition_remove(Store *s, const char *uuid);

/*
 * History (issue 21; docs/history-and-archiving.md): one record per operation this
 * cluster's nodes ran — a migration (live, block, cold), a rebuild, a live evacuation
 * (drain), a fence — written by the node that ran it when the operation ended, never
 * changed afterwards (but moved to the archive, below). Times are usec realtime of the
 * node that wrote them.
 */
typedef struct HistoryRecord {
        char *id;          /* history_id_new(): unique in the cluster */
        char *kind;        /* "migration", "rebuild", "drain", "fence" */
        char *mode;        /* migration: "live", "block", "cold"; fence: its action; may be NULL */
        char *domain;      /* the instance's UUID (lower case); NULL for drain and fence */
        char *domain_name; /* may be NULL */
        char *node;        /* the node that ran it (and wrote the record) */
        char *source;      /* may be NULL */
        char *destination; /* may be NULL */
        char *result;      /* "completed", "failed", "aborted", "rebuilt", "refused", "off"... */
        char *error;       /* NULL when it succeeded */
        uint32_t caller_uid;        /* HISTORY_UID_UNKNOWN: nobody asked (adopted) or not known */
        char *caller;               /* the caller's bus name (its polkit subject); may be NULL */
        uint64_t started, finished; /* usec realtime */
        uint64_t downtime;          /* usec, measured (migrations); 0: none or unknown */
        uint64_t bytes;             /* memory and disk bytes sent (migrations) */
        uint64_t archived;          /* usec realtime of its move to the archive; 0: not moved */
        uint64_t generation;        /* set by the store */
} HistoryRecord;

#define HISTORY_UID_UNKNOWN UINT32_MAX
#define HISTORY_ID_MAX      (34U + 253U)

void history_record_done(HistoryRecord *r);
HistoryRecord *history_record_array_free(HistoryRecord *a, size_t n);
/* "<started, 16 hex digits>-<tag, 16 hex digits>-<node>": sorts by start time; unique since
 * only node writes ids with its name, and tag is random (a migration's id) */
bool history_id_is_valid(const char *id);
/* tag: 16 hex digits (a migration's id) or NULL for a random one. */
int history_id_new(const char *node, uint64_t started, const char *tag, char **ret);

/* Adds rec (rec->id set, rec->generation ignored): -EEXIST if a record has that id, -EINVAL
 * if a field cannot be stored (no newlines; kind, node, id, UUID and names valid). */
int store_history_add(Store *s, const HistoryRecord *rec);
int store_history_get(Store *s, const char *id, HistoryRecord *ret);
/* All history records not archived, sorted by id (by start time). */
int store_history_list(Store *s, HistoryRecord **ret, size_t *ret_n);

/*
 * The archive (issue 21: the seeds' shadow tables, docs/history-and-archiving.md): history
 * records and the records of deleted instances (tombstones, with their last definition)
 * older than [history] archive_after are moved there, and removed from there [history]
 * purge_after after their move. A move copies first and removes the original second, each
 * step atomic and durable, so a move cut short leaves the entry where it was, or in both
 * places (then a reader takes the original, and the next move finishes): never nowhere.
 */
typedef enum ArchiveKind {
        ARCHIVE_HISTORY,
        ARCHIVE_INSTANCE,
        _ARCHIVE_KIND_MAX,
        _ARCHIVE_KIND_INVALID = -EINVAL,
} ArchiveKind;

const char *archive_kind_to_string(ArchiveKind k); /* "history", "instance" */

/* What the archive holds of one entry (its record's text is kept as it was, plus
 * "archived="). */
typedef struct ArchivedEntry {
        ArchiveKind kind;
        char *key;         /* history id, or instance UUID */
        char *name;        /* the domain's name, may be NULL */
        uint64_t time;     /* history: finished; instance: time of the deletion */
        uint64_t archived; /* usec realtime of the move */
} ArchivedEntry;

void archived_entry_done(ArchivedEntry *e);
ArchivedEntry *archived_entry_array_free(ArchivedEntry *a, size_t n);

/* Moves history record id to the archive, archived at now: 0, -ENOENT if it is in the live
 * history no more (moved already). */
int store_history_archive(Store *s, const char *id, uint64_t now);
/* Moves the record of deleted instance uuid, and its definition, to the archive if its
 * generation is still expected_generation and it is still a tombstone: -ESTALE if it changed
 * (a restore took it over: any copy made is removed again), -ENOENT if it is gone. */
int store_instance_archive(Store *s, const char *uuid, uint64_t expected_generation, uint64_t now);
/* A move of instance uuid cut short after its record left the live store: its definition
 * follows (unless the instance is live again). 0 when there was nothing to do. */
int store_instance_archive_finish(Store *s, const char *uuid);
/* Every archived entry, sorted by kind then key. */
int store_archive_list(Store *s, ArchivedEntry **ret, size_t *ret_n);
/* Removes an archived entry (purge): -ENOENT if there is none. */
int store_archive_remove(Store *s, ArchiveKind kind, const char *key);
/* The archived history record id; -ENOENT if none. */
int store_archive_history_get(Store *s, const char *id, HistoryRecord *ret);
/* The archived record of deleted instance uuid (a tombstone, as it was when archived);
 * -ENOENT if none. Reconciliation asks it for a domain that has no live record: the copy a
 * node kept of an instance evacuated from it stays stale after its tombstone was archived. */
int store_archive_instance_get(Store *s, const char *uuid, InstanceRecord *ret);

/*
 * Leases: at most one holder of name in the cluster at a time, until expires (usec realtime
 * of the taker; the holder's clock and the taker's must not differ by more than the margin
 * the caller leaves, which for runs twice a day is large). Acquire takes a lease that nobody
 * holds, or that expired, or that holder already holds with token (a renewal): -EBUSY with
 * *ret_holder (may be NULL) set when another holds it. Release gives it up if held with
 * token (-ESTALE if not: it expired and was taken).
 */
typedef struct StoreLease {
        char *holder;   /* node */
        char token[33]; /* random, per acquisition */
        uint64_t expires;
} StoreLease;

void store_lease_done(StoreLease *l);
int store_lease_acquire(Store *s, const char *name, uint64_t now, uint64_t ttl, StoreLease *lease,
                        char **ret_holder);
int store_lease_release(Store *s, const char *name, const StoreLease *lease);
