/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The "dir" backend of the cluster state store (DESIGN.md §4): the files.
 *
 * Layout, on the storage all compute nodes share:
 *
 *   <state_dir>/identity                   the cluster's identity (store-cluster.c)
 *   <state_dir>/nodes/<name>               node record (0644)
 *   <state_dir>/instances/<uuid>           instance record (0644), UUID in lower case
 *   <state_dir>/definitions/<uuid>.xml     last known inactive domain XML (0600, dir 0700)
 *   <state_dir>/nodes.lock                 lock file of the node records (never removed)
 *   <state_dir>/instances.lock             lock file of the instance records (never removed)
 *   <state_dir>/history/<id>               history of operations (store-history.c)
 *   <state_dir>/archive/history/<id>       archived history
 *   <state_dir>/archive/instances/<uuid>   archived records of deleted instances
 *   <state_dir>/archive/definitions/<uuid>.xml   their definitions (0600, dir 0700)
 *   <state_dir>/leases/<name>              leases such as the archive run's
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
 * and when, by the caller's monotonic clock (store.c).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store-internal.h"
#include "util.h"

#define NODES_DIR       "nodes"
#define INSTANCES_DIR   "instances"
#define DEFINITIONS_DIR "definitions"
#define NODES_LOCK      "nodes.lock"
#define INSTANCES_LOCK  "instances.lock"

#define LOCK_SLOTS     65521U /* a prime: lock byte offsets in [0, LOCK_SLOTS) */
#define ESTALE_RETRIES 5

static const char *const space_dir[_STORE_SPACE_MAX] = {
        [STORE_NODES] = NODES_DIR,
        [STORE_INSTANCES] = INSTANCES_DIR,
        [STORE_DEFINITIONS] = DEFINITIONS_DIR,
        [STORE_CLUSTER] = ".",
        [STORE_HISTORY] = "history",
        [STORE_ARCHIVE_HISTORY] = "archive/history",
        [STORE_ARCHIVE_INSTANCES] = "archive/instances",
        [STORE_ARCHIVE_DEFINITIONS] = "archive/definitions",
        [STORE_LEASES] = "leases",
};

/* The spaces newer than the store's layout: made on first write (under an existing
 * state_dir only), and a listing of one never written is empty. */
static bool space_made_on_demand(StoreSpace sp)
{
        return sp >= STORE_HISTORY;
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

/* ---- the backend --------------------------------------------------------------------- */

/* The file of key: definitions are "<uuid>.xml". */
static int file_name(StoreSpace sp, const char *key, char *buf, size_t size)
{
        bool xml = sp == STORE_DEFINITIONS || sp == STORE_ARCHIVE_DEFINITIONS;
        int k = snprintf(buf, size, "%s%s", key, xml ? ".xml" : "");

        return k < 0 || (size_t)k >= size ? -EINVAL : 0;
}

static int dir_read(Store *s, StoreSpace sp, const char *key, size_t max, char **ret,
                    uint64_t *ret_version)
{
        char name[256];

        if (ret_version)
                *ret_version = 0; /* files have no versions: their writers hold a lock */
        if (file_name(sp, key, name, sizeof(name)) < 0)
                return -EINVAL;
        return read_file(s, space_dir[sp], name, max, ret);
}

static int dir_list(Store *s, StoreSpace sp, bool (*filter)(const char *key), StoreListFunc f,
                    void *userdata)
{
        _cleanup_close_ int dir_fd = -EBADF;
        DIR *d;
        int r = 0;

        dir_fd = open_dir(s, space_dir[sp]);
        if (dir_fd == -ENOENT && space_made_on_demand(sp) && access(s->state_dir, F_OK) >= 0)
                return 0;
        if (dir_fd < 0)
                return dir_fd;
        d = fdopendir(dir_fd);
        if (!d)
                return negative_errno();
        dir_fd = -EBADF; /* owned by d now */

        for (;;) {
                _cleanup_free_ char *text = NULL;
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
                r = read_file(s, space_dir[sp], de->d_name, RECORD_MAX_SIZE, &text);
                if (r == -ENOENT) { /* removed since readdir() */
                        r = 0;
                        continue;
                }
                if (r >= 0)
                        r = f(de->d_name, text, userdata);
                if (r < 0)
                        break;
        }
        (void)closedir(d);
        return r;
}

static int dir_lock(Store *s, StoreSpace sp, const char *key, int *ret_fd)
{
        if (sp == STORE_DEFINITIONS) {
                *ret_fd = -EBADF;
                return 0;
        }
        return lock_record(s, sp == STORE_INSTANCES ? INSTANCES_LOCK : NODES_LOCK, key, ret_fd);
}

/* The directory of a space made on demand, and "archive" above it: never state_dir itself. */
static int make_space_dir(Store *s, StoreSpace sp)
{
        bool secret = sp == STORE_ARCHIVE_DEFINITIONS;
        _cleanup_free_ char *path = NULL, *parent = NULL;
        int r;

        if (asprintf(&path, "%s/%s", s->state_dir, space_dir[sp]) < 0 ||
            asprintf(&parent, "%s/archive", s->state_dir) < 0)
                return -ENOMEM;
        if (sp >= STORE_ARCHIVE_HISTORY && sp <= STORE_ARCHIVE_DEFINITIONS) {
                r = make_dir(parent, 0755, false);
                if (r < 0)
                        return r;
        }
        return make_dir(path, secret ? 0700 : 0755, secret);
}

/* The version needs no check here: writers hold the record's lock (dir_lock). */
static int dir_write(Store *s, StoreSpace sp, const char *key, const char *text, uint64_t version,
                     mode_t mode)
{
        char name[256];
        int r;

        r = file_name(sp, key, name, sizeof(name));
        if (r < 0)
                return r;
        r = write_file(s, space_dir[sp], name, text, mode);
        if (r == -ENOENT && space_made_on_demand(sp) && access(s->state_dir, F_OK) >= 0) {
                r = make_space_dir(s, sp);
                if (r >= 0)
                        r = write_file(s, space_dir[sp], name, text, mode);
        }
        return r;
}

static int dir_remove(Store *s, StoreSpace sp, const char *key, uint64_t version)
{
        char name[256];
        int r;

        r = file_name(sp, key, name, sizeof(name));
        if (r < 0)
                return r;
        return remove_file(s, space_dir[sp], name);
}

static void dir_free(Store *s)
{
        free(s->state_dir);
}

/* state_dir and its directories; state_dir's parent must exist (it is the shared mount). */
static int dir_init(Store *s)
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
        int r;

        r = make_dir(s->state_dir, 0755, false);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", s->state_dir, dirs[i].name) < 0)
                        return -ENOMEM;
                r = make_dir(path, dirs[i].mode, dirs[i].tighten);
                if (r < 0)
                        return r;
        }
        return 0;
}

const StoreOps store_dir_ops = {
        .name = "dir",
        .free = dir_free,
        .read = dir_read,
        .list = dir_list,
        .lock = dir_lock,
        .write = dir_write,
        .remove = dir_remove,
        .init = dir_init,
};

int store_open_dir(const char *state_dir, const char *node_name, Store **ret)
{
        _cleanup_(store_freep) Store *s = NULL;
        int r;

        if (isempty(state_dir) || !store_node_name_is_valid(node_name))
                return -EINVAL;

        r = store_new(&store_dir_ops, node_name, &s);
        if (r < 0)
                return r;
        s->state_dir = strdup(state_dir);
        if (!s->state_dir)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}
