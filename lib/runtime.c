/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
#include "util.h"

#define RECORD_MAX_SIZE 4096

static const char *const node_marker_table[_NODE_MARKER_MAX] = {
        [NODE_MARKER_FENCED] = "fenced",
        [NODE_MARKER_FORCED_DOWN] = "forced-down",
        [NODE_MARKER_DISABLED] = "disabled",
        [NODE_MARKER_SYNCED] = "synced",
        [NODE_MARKER_ALLOW_UNSYNCED] = "allow-unsynced",
};

DEFINE_STRING_TABLE_TO_STRING(node_marker, NodeMarker);

void runtime_record_done(RuntimeRecord *r)
{
        r->kv = strv_free(r->kv);
}

const char *runtime_record_get(const RuntimeRecord *r, const char *key)
{
        for (size_t i = 0; r->kv && r->kv[i] && r->kv[i + 1]; i += 2)
                if (streq(r->kv[i], key))
                        return r->kv[i + 1];
        return NULL;
}

static bool key_is_valid(const char *k, size_t n)
{
        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!islower((unsigned char)k[i]) && k[i] != '_')
                        return false;
        return true;
}

int runtime_record_set(RuntimeRecord *r, const char *key, const char *value)
{
        int k;

        if (!key_is_valid(key, strlen(key)) || strchr(value, '\n'))
                return -EINVAL;
        for (size_t i = 0; r->kv && r->kv[i] && r->kv[i + 1]; i += 2)
                if (streq(r->kv[i], key)) {
                        char *v = strdup(value);
                        if (!v)
                                return -ENOMEM;
                        free(r->kv[i + 1]);
                        r->kv[i + 1] = v;
                        return 0;
                }
        k = strv_extend(&r->kv, key);
        if (k < 0)
                return k;
        k = strv_extend(&r->kv, value);
        if (k < 0) {
                /* keep kv pairs even: drop the dangling key */
                size_t n = strv_length(r->kv);
                free(r->kv[n - 1]);
                r->kv[n - 1] = NULL;
        }
        return k;
}

int runtime_record_parse(const char *text, RuntimeRecord *ret)
{
        RuntimeRecord rec = { NULL };
        const char *p = text;
        int r;

        while (*p) {
                size_t n = strcspn(p, "\n");
                const char *eq = memchr(p, '=', n);

                if (eq && key_is_valid(p, (size_t)(eq - p))) {
                        _cleanup_free_ char *key = strndup(p, (size_t)(eq - p));
                        _cleanup_free_ char *value = strndup(eq + 1, n - (size_t)(eq - p) - 1);

                        if (!key || !value) {
                                runtime_record_done(&rec);
                                return -ENOMEM;
                        }
                        r = runtime_record_set(&rec, key, value);
                        if (r < 0) {
                                runtime_record_done(&rec);
                                return r;
                        }
                }
                p += n;
                if (*p)
                        p++;
        }
        *ret = rec;
        return 0;
}

static int lookup(const char *path, RuntimeRecord *ret)
{
        _cleanup_free_ char *text = NULL;
        RuntimeRecord rec = { NULL };
        int r;

        r = read_full_file(path, RECORD_MAX_SIZE, &text, NULL);
        if (r == -ENOENT || r == -ENOTDIR)
                return 0;
        /* Present but unreadable or oversized: it still denies, with unknown details. */
        if (r >= 0)
                (void)runtime_record_parse(text, &rec);
        if (ret)
                *ret = rec;
        else
                runtime_record_done(&rec);
        return 1;
}

static int mkdir_parents(const char *runtime_dir, const char *sub)
{
        char path[PATH_MAX];

        if (mkdir(runtime_dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (snprintf(path, sizeof(path), "%s/%s", runtime_dir, sub) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int runtime_record_format(const RuntimeRecord *rec, char **ret)
{
        char *s = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&s, &size);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; rec && rec->kv && rec->kv[i] && rec->kv[i + 1]; i += 2)
                fprintf(f, "%s=%s\n", rec->kv[i], rec->kv[i + 1]);
        if (fclose(f) != 0) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static int write_record(const char *runtime_dir, const char *sub, const char *name,
                        const RuntimeRecord *rec)
{
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        int r;

        r = mkdir_parents(runtime_dir, sub);
        if (r < 0)
                return r;
        r = runtime_record_format(rec, &text);
        if (r < 0)
                return r;
        if (snprintf(path, sizeof(path), "%s/%s/%s", runtime_dir, sub, name) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        return write_file_atomic(path, text, 0644);
}

static int remove_record(const char *runtime_dir, const char *sub, const char *name)
{
        char path[PATH_MAX];

        if (snprintf(path, sizeof(path), "%s/%s/%s", runtime_dir, sub, name) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

/* UUIDs are compared in libvirt's canonical lower case. */
static int normalize_uuid(const char *uuid, char out[static 37])
{
        if (!uuid_is_valid(uuid))
                return -EINVAL;
        for (size_t i = 0; i < 36; i++)
                out[i] = (char)tolower((unsigned char)uuid[i]);
        out[36] = 0;
        return 0;
}

int runtime_deny_lookup(const char *runtime_dir, const char *uuid, RuntimeRecord *ret)
{
        char u[37], path[PATH_MAX];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        if (snprintf(path, sizeof(path), "%s/deny/%s", runtime_dir, u) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        return lookup(path, ret);
}

int runtime_deny_add(const char *runtime_dir, const char *uuid, const RuntimeRecord *rec)
{
        char u[37];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        return write_record(runtime_dir, "deny", u, rec);
}

/* runtime_dir/sub/<uuid> holding "since=<now>" */
static int write_since(const char *runtime_dir, const char *sub, const char *uuid)
{
        RuntimeRecord rec = { NULL };
        char u[37], since[64];
        int r;

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        r = runtime_record_set(&rec, "since", format_timestamp_now(since, sizeof(since)));
        if (r >= 0)
                r = write_record(runtime_dir, sub, u, &rec);
        runtime_record_done(&rec);
        return r;
}

/* removes runtime_dir/sub/<uuid> */
static int remove_uuid(const char *runtime_dir, const char *sub, const char *uuid)
{
        char u[37];

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        return remove_record(runtime_dir, sub, u);
}

int runtime_deny_remove(const char *runtime_dir, const char *uuid)
{
        return remove_uuid(runtime_dir, "deny", uuid);
}

int runtime_arriving_add(const char *runtime_dir, const char *uuid)
{
        return write_since(runtime_dir, "arriving", uuid);
}

int runtime_arriving_lookup(const char *runtime_dir, const char *uuid, uint64_t *ret_since)
{
        char u[37], path[PATH_MAX];
        struct stat st;

        if (normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        if (snprintf(path, sizeof(path), "%s/arriving/%s", runtime_dir, u) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        if (stat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (ret_since)
                *ret_since = (uint64_t)st.st_mtim.tv_sec * 1000000ULL +
                             (uint64_t)st.st_mtim.tv_nsec / 1000ULL;
        return 1;
}

int runtime_arriving_remove(const char *runtime_dir, const char *uuid)
{
        return remove_uuid(runtime_dir, "arriving", uuid);
}

int runtime_deferred_add(const char *runtime_dir, const char *uuid)
{
        return write_since(runtime_dir, "deferred", uuid);
}

int runtime_deferred_remove(const char *runtime_dir, const char *uuid)
{
        return remove_uuid(runtime_dir, "deferred", uuid);
}

/* The canonical UUIDs named by the files of runtime_dir/sub, with their times (ret_since may
 * be NULL). A directory that does not exist is empty. */
static int list_uuids(const char *runtime_dir, const char *sub, char ***ret, uint64_t **ret_since)
{
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ uint64_t *since = NULL;
        char path[PATH_MAX];
        struct dirent *de;
        size_t n = 0;
        DIR *d;
        int r = 0;

        if (snprintf(path, sizeof(path), "%s/%s", runtime_dir, sub) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        d = opendir(path);
        if (!d) {
                if (errno != ENOENT)
                        return negative_errno();
        } else {
                while (r >= 0 && (de = readdir(d))) {
                        struct stat st;
                        uint64_t *ns;

                        if (!uuid_is_valid(de->d_name) ||
                            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        r = strv_extend(&l, de->d_name);
                        ns = r >= 0 ? realloc(since, (n + 1) * sizeof(uint64_t)) : NULL;
                        if (!ns) {
                                r = -ENOMEM;
                                break;
                        }
                        since = ns;
                        since[n++] = timespec_usec(&st.st_mtim);
                }
                closedir(d);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        if (ret_since)
                *ret_since = TAKE_PTR(since);
        return 0;
}

int runtime_deferred_list(const char *runtime_dir, char ***ret)
{
        return list_uuids(runtime_dir, "deferred", ret, NULL);
}

int runtime_arriving_list(const char *runtime_dir, char ***ret_uuids, uint64_t **ret_since)
{
        return list_uuids(runtime_dir, "arriving", ret_uuids, ret_since);
}

static const char *note_dir(RuntimeNote kind)
{
        static const char *const dirs[_RUNTIME_NOTE_MAX] = {
                [RUNTIME_NOTE_COLD] = "cold",
                [RUNTIME_NOTE_REBUILD] = "rebuild",
        };

        return kind >= 0 && kind < _RUNTIME_NOTE_MAX ? dirs[kind] : NULL;
}

int runtime_note_lookup(const char *runtime_dir, RuntimeNote kind, const char *uuid,
                        RuntimeRecord *ret)
{
        char u[37], path[PATH_MAX];

        if (!note_dir(kind) || normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        if (snprintf(path, sizeof(path), "%s/%s/%s", runtime_dir, note_dir(kind), u) >=
            (int)sizeof(path))
                return -ENAMETOOLONG;
        return lookup(path, ret);
}

int runtime_note_write(const char *runtime_dir, RuntimeNote kind, const char *uuid,
                       const RuntimeRecord *rec)
{
        char u[37];

        if (!note_dir(kind) || normalize_uuid(uuid, u) < 0)
                return -EINVAL;
        return write_record(runtime_dir, note_dir(kind), u, rec);
}

int runtime_note_remove(const char *runtime_dir, RuntimeNote kind, const char *uuid)
{
        if (!note_dir(kind))
                return -EINVAL;
        return remove_uuid(runtime_dir, note_dir(kind), uuid);
}

int runtime_note_list(const char *runtime_dir, RuntimeNote kind, char ***ret)
{
        if (!note_dir(kind))
                return -EINVAL;
        return list_uuids(runtime_dir, note_dir(kind), ret, NULL);
}

int runtime_note_load(const char *runtime_dir, RuntimeNote kind, const char *uuid,
                      const char *node_key, RuntimeRecord *ret, pid_t *ret_pid,
                      const char **ret_node)
{
        RuntimeRecord rec = { NULL };
        const char *pid, *node;
        uint64_t n;
        int r;

        r = runtime_note_lookup(runtime_dir, kind, uuid, &rec);
        if (r <= 0)
                return r;
        pid = runtime_record_get(&rec, "pid");
        node = runtime_record_get(&rec, node_key);
        if (!pid || parse_uint_range(pid, 1, INT_MAX, &n) < 0 || !node ||
            !hostname_is_valid(node)) {
                runtime_record_done(&rec);
                return -EBADMSG;
        }
        *ret = rec;
        *ret_pid = (pid_t)n;
        *ret_node = node;
        return 1;
}

int runtime_marker_lookup(const char *runtime_dir, NodeMarker m, RuntimeRecord *ret)
{
        char path[PATH_MAX];

        if (!node_marker_to_string(m))
                return -EINVAL;
        if (snprintf(path, sizeof(path), "%s/node/%s", runtime_dir, node_marker_to_string(m)) >=
            (int)sizeof(path))
                return -ENAMETOOLONG;
        return lookup(path, ret);
}

int runtime_marker_set(const char *runtime_dir, NodeMarker m, const RuntimeRecord *rec)
{
        if (!node_marker_to_string(m))
                return -EINVAL;
        return write_record(runtime_dir, "node", node_marker_to_string(m), rec);
}

int runtime_marker_clear(const char *runtime_dir, NodeMarker m)
{
        if (!node_marker_to_string(m))
                return -EINVAL;
        return remove_record(runtime_dir, "node", node_marker_to_string(m));
}
