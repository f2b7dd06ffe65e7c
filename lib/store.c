/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The "dir" backend of the cluster state store (DESIGN.md §4).
 *
 * Layout, on the storage all compute nodes share:
 *
 *   <state_dir>/nodes/<name>               node record (0644)
 *   <state_dir>/instances/<uuid>           instance record (0644), UUID in lower case
 *   <state_dir>/definitions/<uuid>.xml     last known inactive domain XML (0600, dir 0700)
 *   <state_dir>/nodes.lock                 lock file of the node records (never removed)
 *   <state_dir>/instances.lock             lock file of the instance records (never removed)
 *   <dir>/.<file>.tmp.<random>             a write in progress (or left by a crashed writer)
 *
 * Records are "key=value" lines (runtime.h's format). Every key is lower case, every line
 * ends in a newline and "generation=N" (N >= 1) is always the last line written, so a file
 * cut short anywhere is recognisably incomplete. Unknown keys are ignored so that newer
 * versions can add some. A record whose required keys are missing or malformed, or whose
 * name/uuid does not match its file name, is -EBADMSG.
 *
 * Writes: a temp file with a random name in the same directory (O_EXCL, so writers on
 * different nodes that happen to share a PID do not collide), write, fchmod, fsync, close,
 * rename over the record, fsync the directory. Readers need no lock: they see the old or the
 * new file. Temp file names start with a dot, which neither a node name nor a UUID can, so
 * listings never mistake one for a record.
 *
 * Locking: read-modify-write and compare-and-swap take an open file description lock
 * (F_OFD_SETLK, polled) on one byte of nodes.lock / instances.lock, at an offset hashed from the
 * record's name. OFD locks belong to the open file, not to the process, so two Stores in one
 * process (threads), processes on one node and, through the NFS lock manager, processes on
 * different nodes all exclude each other. Two records whose names hash to the same byte
 * merely serialize. The lock file is opened anew for each operation and closed (which drops
 * the lock) at its end: a long-lived descriptor would keep locking an orphaned inode if the
 * file were ever replaced.
 *
 * Liveness is not stored: each Store remembers what it saw of each peer's heartbeat counter
 * and when, by the caller's monotonic clock.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "store.h"
#include "util.h"

#define NODES_DIR       "nodes"
#define INSTANCES_DIR   "instances"
#define DEFINITIONS_DIR "definitions"
#define NODES_LOCK      "nodes.lock"
#define INSTANCES_LOCK  "instances.lock"

#define RECORD_MAX_SIZE     (64U * 1024U)
#define DEFINITION_MAX_SIZE (16U * 1024U * 1024U)
#define LOCK_SLOTS          65521U /* a prime: lock byte offsets in [0, LOCK_SLOTS) */
#define ESTALE_RETRIES      5

typedef struct LivenessEntry {
        char *name;
        uint64_t counter;
        usec_t last_change; /* observer's monotonic time; the first look counts as one */
        bool changed;       /* a change was seen after the first look */
} LivenessEntry;

struct Store {
        char *state_dir;
        char *node_name;

        LivenessEntry *liveness;
        size_t n_liveness;

        /* store_node_list_cached(): the last listing and when it was read; dropped by every
         * node record write through this Store */
        NodeRecord *node_cache;
        size_t n_node_cache;
        usec_t node_cache_time;
        bool node_cache_valid;
};

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

/* ---- files ---------------------------------------------------------------------------- */

/* Creates path if needed; with tighten, also takes away permissions beyond mode. */
static int make_dir(const char *path, mode_t mode, bool tighten)
{
        struct stat st;

        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return negative_errno();
        if (stat(path, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        /* Another node (or its umask) may have made it wider than a secret wants. */
        if (tighten && (st.st_mode & ~mode & 07777) != 0 && chmod(path, mode) < 0)
                return negative_errno();
        return 0;
}

static int open_dir(Store *s, const char *sub)
{
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/%s", s->state_dir, sub) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

static int write_all(int fd, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t k = write(fd, p, len);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += k;
                len -= (size_t)k;
        }
        return 0;
}

static int write_temp(int dir_fd, const char *name, const char *content, mode_t mode,
                      char **ret_tmp)
{
        for (unsigned attempt = 0; attempt < 16; attempt++) {
                _cleanup_free_ char *tmp = NULL;
                _cleanup_close_ int fd = -EBADF;
                uint64_t rnd;
                int r;

                if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                        return negative_errno();
                if (asprintf(&tmp, ".%s.tmp.%016llx", name, (unsigned long long)rnd) < 0)
                        return -ENOMEM;
                fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                            0600);
                if (fd < 0) {
                        if (errno == EEXIST)
                                continue;
                        return negative_errno();
                }

                r = write_all(fd, content, strlen(content));
                if (r >= 0 && (fchmod(fd, mode) < 0 || fsync(fd) < 0))
                        r = negative_errno();
                /* On NFS, close() can be where a failed write shows. */
                if (r >= 0 && close(TAKE_FD(fd)) < 0)
                        r = negative_errno();
                if (r < 0) {
                        (void)unlinkat(dir_fd, tmp, 0);
                        return r;
                }
                *ret_tmp = TAKE_PTR(tmp);
                return 0;
        }
        return -EEXIST;
}

/* Atomically replaces <state_dir>/<sub>/<name> with content, durably. */
static int write_file(Store *s, const char *sub, const char *name, const char *content, mode_t mode)
{
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_free_ char *tmp = NULL;
        int r;

        dir_fd = open_dir(s, sub);
        if (dir_fd < 0)
                return dir_fd;
        r = write_temp(dir_fd, name, content, mode, &tmp);
        if (r < 0)
                return r;
        if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
                r = negative_errno();
                (void)unlinkat(dir_fd, tmp, 0);
                return r;
        }
        if (fsync(dir_fd) < 0)
                return negative_errno();
        return 0;
}

static int remove_file(Store *s, const char *sub, const char *name)
{
        _cleanup_close_ int dir_fd = -EBADF;

        dir_fd = open_dir(s, sub);
        if (dir_fd < 0)
                return dir_fd;
        if (unlinkat(dir_fd, name, 0) < 0)
                return negative_errno();
        if (fsync(dir_fd) < 0)
                return negative_errno();
        return 0;
}

/*
 * Reads <state_dir>/<sub>/<name>. -ENOENT if missing, -EBADMSG if larger than max or holding
 * a NUL byte. NFS may answer ESTALE when another node replaced the file between our lookup
 * and our read; the lookup is then simply repeated. It is reported as -EIO if it persists,
 * not to be confused with a failed compare-and-swap.
 */
static int read_file(Store *s, const char *sub, const char *name, size_t max, char **ret)
{
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s/%s", s->state_dir, sub, name) < 0)
                return -ENOMEM;

        for (unsigned attempt = 0; attempt < ESTALE_RETRIES; attempt++) {
                _cleanup_close_ int fd = -EBADF;
                _cleanup_free_ char *text = NULL;
                size_t size;
                int r;

                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
                if (fd < 0) {
                        if (errno == ESTALE)
                                continue;
                        return negative_errno();
                }
                r = read_full_fd(fd, max, &text, &size);
                if (r == -ESTALE)
                        continue;
                if (r == -EFBIG)
                        return -EBADMSG;
                if (r < 0)
                        return r;
                if (strlen(text) != size)
                        return -EBADMSG;
                *ret = TAKE_PTR(text);
                return 0;
        }
        return -EIO;
}

/* ---- locks ---------------------------------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
        /* FNV-1a: stable across nodes and versions, which the lock offsets must be. */
        uint64_t h = 14695981039346656037ULL;

        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 1099511628211ULL;
        }
        return h;
}

#define LOCK_TIMEOUT_USEC (60U * 1000U * 1000U)

/* Takes the lock of record key; closing *ret_fd releases it. */
static int lock_record(Store *s, const char *lock_file, const char *key, int *ret_fd)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct flock fl = {
                .l_type = F_WRLCK,
                .l_whence = SEEK_SET,
                .l_start = (off_t)(hash_name(key) % LOCK_SLOTS),
                .l_len = 1,
        };

        if (asprintf(&path, "%s/%s", s->state_dir, lock_file) < 0)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
        if (fd < 0)
                return negative_errno();
        /* Poll with a non-blocking F_OFD_SETLK rather than wait in F_OFD_SETLKW: a holder on
         * another node that died with its lock (an NFS lock not yet reclaimed) becomes a
         * clear -ETIMEDOUT instead of a hang, and valgrind, which does not know that
         * F_OFD_SETLKW blocks, keeps running the other threads. */
        for (useconds_t wait = 50, waited = 0;; waited += wait, wait = MIN(wait * 2, 20000)) {
                if (fcntl(fd, F_OFD_SETLK, &fl) >= 0)
                        break;
                if (errno != EAGAIN && errno != EACCES && errno != EINTR)
                        return negative_errno();
                if (waited >= LOCK_TIMEOUT_USEC)
                        return -ETIMEDOUT;
                (void)usleep(wait);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
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

static int parse_record_text(const char *text, RuntimeRecord *ret)
{
        if (!record_text_is_well_formed(text))
                return -EBADMSG;
        return runtime_record_parse(text, ret);
}

static int format_record_text(const RuntimeRecord *rec, uint64_t generation, char **ret)
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

/* ---- open/free ------------------------------------------------------------------------ */

int store_open_dir(const char *state_dir, const char *node_name, Store **ret)
{
        static const struct {
                const char *name;
                mode_t mode;
                bool tighten;
        } dirs[] = {
                { NODES_DIR, 0755, false },
                { INSTANCES_DIR, 0755, false },
                { DEFINITIONS_DIR, 0700, true },
        };
        _cleanup_(store_freep) Store *s = NULL;
        int r;

        if (isempty(state_dir) || !node_name_is_valid(node_name))
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->state_dir = strdup(state_dir);
        s->node_name = strdup(node_name);
        if (!s->state_dir || !s->node_name)
                return -ENOMEM;

        r = make_dir(state_dir, 0755, false);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", state_dir, dirs[i].name) < 0)
                        return -ENOMEM;
                r = make_dir(path, dirs[i].mode, dirs[i].tighten);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_liveness; i++)
                free(s->liveness[i].name);
        free(s->liveness);
        node_record_array_free(s->node_cache, s->n_node_cache);
        free(s->state_dir);
        free(s->node_name);
        free(s);
        return NULL;
}

const char *store_node_name(const Store *s)
{
        return s->node_name;
}

/* ---- nodes ---------------------------------------------------------------------------- */

void node_record_done(NodeRecord *r)
{
        free(r->name);
        free(r->address);
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

        r = parse_record_text(text, &rec);
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

        if ((r = get_str(&rec, "name", &n.name)) < 0 ||
            (r = get_str(&rec, "address", &n.address)) < 0 ||
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
            !fence_state_to_string(n->fence))
                return -EINVAL;

        /* runtime_record_set() refuses values with newlines (-EINVAL). */
        if ((r = set_str(&rec, "name", n->name)) < 0 ||
            (r = set_str(&rec, "address", n->address)) < 0 ||
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
        return format_record_text(&rec, generation, ret);
}

static int node_read(Store *s, const char *name, NodeRecord *ret)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_file(s, NODES_DIR, name, RECORD_MAX_SIZE, &text);
        if (r < 0)
                return r;
        return node_record_from_text(name, text, ret);
}

int store_node_get(Store *s, const char *name, NodeRecord *ret)
{
        if (!node_name_is_valid(name))
                return -EINVAL;
        return node_read(s, name, ret);
}

int store_node_update(Store *s, const char *name, NodeMutateFunc mutate, void *userdata,
                      NodeRecord *ret)
{
        _cleanup_(node_record_done) NodeRecord n = { .fence = FENCE_UNKNOWN };
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        uint64_t generation;
        int r;

        if (!node_name_is_valid(name) || !mutate)
                return -EINVAL;

        r = lock_record(s, NODES_LOCK, name, &lock_fd);
        if (r < 0)
                return r;

        r = node_read(s, name, &n);
        if (r == -ENOENT) {
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
        r = write_file(s, NODES_DIR, name, text, 0644);
        if (r < 0)
                return r;

        if (ret) {
                n.generation = generation + 1;
                *ret = n;
                n = (NodeRecord){ .fence = FENCE_UNKNOWN };
        }
        return 0;
}

static int heartbeat_mutate(NodeRecord *r, void *userdata)
{
        r->heartbeat++;
        r->heartbeat_time = now_realtime();
        return 0;
}

int store_heartbeat(Store *s)
{
        return store_node_update(s, s->node_name, heartbeat_mutate, NULL, NULL);
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
        r = node_read(s, name, &n);
        if (r < 0)
                return r;
        return store_node_liveness_of(s, &n, now_monotonic, down_after, ret);
}

/* ---- listing -------------------------------------------------------------------------- */

typedef bool (*NameFilter)(const char *name);
typedef int (*ListItemFunc)(Store *s, const char *name, void *array, size_t i);

/* Reads every record in <state_dir>/<sub> whose file name passes filter into a new array. */
static int list_records(Store *s, const char *sub, NameFilter filter, size_t item_size,
                        ListItemFunc read_item, void (*done_item)(void *item),
                        int (*compare)(const void *, const void *), void **ret, size_t *ret_n)
{
        _cleanup_close_ int dir_fd = -EBADF;
        DIR *d;
        char *array = NULL;
        size_t n = 0, allocated = 0;
        int r = 0;

        dir_fd = open_dir(s, sub);
        if (dir_fd < 0)
                return dir_fd;
        d = fdopendir(dir_fd);
        if (!d)
                return negative_errno();
        dir_fd = -EBADF; /* owned by d now */

        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = negative_errno();
                        break;
                }
                /* Temp files start with a dot and so never pass the filter. */
                if (!filter(de->d_name))
                        continue;

                if (n == allocated) {
                        size_t want = allocated ? allocated * 2 : 16;
                        char *a = reallocarray(array, want, item_size);

                        if (!a) {
                                r = -ENOMEM;
                                break;
                        }
                        array = a;
                        allocated = want;
                }
                r = read_item(s, de->d_name, array, n);
                if (r == -ENOENT) { /* removed since readdir() */
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                n++;
        }
        (void)closedir(d);

        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        done_item(array + i * item_size);
                free(array);
                return r;
        }
        if (n == 0) {
                free(array);
                array = NULL;
        } else
                qsort(array, n, item_size, compare);
        *ret = array;
        *ret_n = n;
        return 0;
}

static int node_list_item(Store *s, const char *name, void *array, size_t i)
{
        return node_read(s, name, (NodeRecord *)array + i);
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

        r = list_records(s, NODES_DIR, hostname_is_valid, sizeof(NodeRecord), node_list_item,
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

        n.name = n.address = n.disabled_reason = n.forced_down_by = NULL;
        if (dup_str(src->name, &n.name) < 0 || dup_str(src->address, &n.address) < 0 ||
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

        r = parse_record_text(text, &rec);
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
            (r = get_u64(&rec, "generation", true, &i.generation)) < 0)
                return r;
        if (i.generation == 0)
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
            (r = set_u64(&rec, "time", i->time)) < 0)
                return r;
        return format_record_text(&rec, generation, ret);
}

static int instance_read(Store *s, const char *uuid, InstanceRecord *ret)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_file(s, INSTANCES_DIR, uuid, RECORD_MAX_SIZE, &text);
        if (r < 0)
                return r;
        return instance_record_from_text(uuid, text, ret);
}

int store_instance_get(Store *s, const char *uuid, InstanceRecord *ret)
{
        char u[37];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        return instance_read(s, u, ret);
}

/* The stored generation of instance u, 0 if there is none. Call with the lock held. */
static int instance_current_generation(Store *s, const char *u, uint64_t *ret)
{
        _cleanup_(instance_record_done) InstanceRecord cur = {};
        int r;

        r = instance_read(s, u, &cur);
        if (r == -ENOENT) {
                *ret = 0;
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
        uint64_t current;
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

        r = lock_record(s, INSTANCES_LOCK, u, &lock_fd);
        if (r < 0)
                return r;
        r = instance_current_generation(s, u, &current);
        if (r < 0)
                return r;
        if (current != expected_generation)
                return expected_generation == 0 ? -EEXIST : -ESTALE;

        r = write_file(s, INSTANCES_DIR, u, text, 0644);
        if (r < 0)
                return r;
        if (ret_generation)
                *ret_generation = expected_generation + 1;
        return 0;
}

int store_instance_remove(Store *s, const char *uuid, uint64_t expected_generation)
{
        _cleanup_close_ int lock_fd = -EBADF;
        uint64_t current;
        char u[37];
        int r;

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;

        r = lock_record(s, INSTANCES_LOCK, u, &lock_fd);
        if (r < 0)
                return r;
        r = instance_current_generation(s, u, &current);
        if (r < 0)
                return r;
        if (current == 0)
                return -ENOENT;
        if (current != expected_generation)
                return -ESTALE;
        return remove_file(s, INSTANCES_DIR, u);
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

static int instance_list_item(Store *s, const char *name, void *array, size_t i)
{
        return instance_read(s, name, (InstanceRecord *)array + i);
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

        r = list_records(s, INSTANCES_DIR, instance_file_name_is_valid, sizeof(InstanceRecord),
                         instance_list_item, instance_done_item, instance_compare, &array, &n);
        if (r < 0)
                return r;
        *ret = array;
        *ret_n = n;
        return 0;
}

/* ---- definitions ---------------------------------------------------------------------- */

static int definition_file_name(const char *uuid, char out[static 41])
{
        char u[37];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        snprintf(out, 41, "%s.xml", u);
        return 0;
}

int store_definition_put(Store *s, const char *uuid, const char *xml)
{
        char name[41];

        if (definition_file_name(uuid, name) < 0 || !xml)
                return -EINVAL;
        if (strlen(xml) > DEFINITION_MAX_SIZE)
                return -EFBIG;
        return write_file(s, DEFINITIONS_DIR, name, xml, 0600);
}

int store_definition_get(Store *s, const char *uuid, char **ret)
{
        char name[41];

        if (definition_file_name(uuid, name) < 0)
                return -EINVAL;
        return read_file(s, DEFINITIONS_DIR, name, DEFINITION_MAX_SIZE, ret);
}

int store_definition_remove(Store *s, const char *uuid)
{
        char name[41];
        int r;

        if (definition_file_name(uuid, name) < 0)
                return -EINVAL;
        r = remove_file(s, DEFINITIONS_DIR, name);
        return r == -ENOENT ? 0 : r;
}
