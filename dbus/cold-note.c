/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A cold migration's copy, noted in the runtime directory while it runs (cold-note.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cold-note.h"
#include "coldmig.h"
#include "runtime.h"
#include "util.h"

#define NOTE_MAX_SIZE (64 * 1024)

void cold_note_done(ColdNote *n)
{
        free(n->id);
        free(n->destination);
        strv_free(n->disks);
        *n = (ColdNote){};
}

static int note_path(const char *runtime_dir, const char *uuid, char *buf, size_t size)
{
        char u[37];

        if (!uuid_is_valid(uuid))
                return -EINVAL;
        for (size_t i = 0; i < 36; i++)
                u[i] = (char)tolower((unsigned char)uuid[i]);
        u[36] = 0;
        if (snprintf(buf, size, "%s/cold/%s", runtime_dir, u) >= (int)size)
                return -ENAMETOOLONG;
        return 0;
}

int cold_note_forget(const char *runtime_dir, const char *uuid)
{
        char path[PATH_MAX];
        int r;

        r = note_path(runtime_dir, uuid, path, sizeof(path));
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int cold_note_save(const char *runtime_dir, const char *uuid, const ColdNote *n)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_free_ char *text = NULL, *disks = NULL;
        char path[PATH_MAX], dir[PATH_MAX], pid[32];
        int r;

        r = note_path(runtime_dir, uuid, path, sizeof(path));
        if (r < 0)
                return r;
        if (n->disks && (r = cold_paths_format(n->disks, &disks)) < 0)
                return r;
        snprintf(pid, sizeof(pid), "%d", (int)n->pid);
        if ((r = runtime_record_set(&rec, "pid", pid)) < 0 ||
            (r = runtime_record_set(&rec, "id", n->id)) < 0 ||
            (r = runtime_record_set(&rec, "destination", n->destination)) < 0 ||
            (r = runtime_record_set(&rec, "power", instance_power_to_string(n->power))) < 0 ||
            (disks && (r = runtime_record_set(&rec, "disks", disks)) < 0) ||
            (r = runtime_record_format(&rec, &text)) < 0)
                return r;
        snprintf(dir, sizeof(dir), "%s/cold", runtime_dir);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        return write_file_atomic(path, text, 0644);
}

int cold_note_load(const char *runtime_dir, const char *uuid, ColdNote *ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_free_ char *text = NULL;
        ColdNote n = {};
        char path[PATH_MAX];
        const char *v;
        uint64_t pid;
        int r;

        r = note_path(runtime_dir, uuid, path, sizeof(path));
        if (r < 0)
                return r;
        r = read_full_file(path, NOTE_MAX_SIZE, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = runtime_record_parse(text, &rec);
        if (r < 0)
                return r;
        v = runtime_record_get(&rec, "pid");
        if (!v || parse_uint_range(v, 1, INT_MAX, &pid) < 0)
                return -EBADMSG;
        n.pid = (pid_t)pid;
        v = runtime_record_get(&rec, "power");
        n.power = v ? instance_power_from_string(v) : _INSTANCE_POWER_INVALID;
        v = runtime_record_get(&rec, "destination");
        if (n.power < 0 || !v || !hostname_is_valid(v))
                return -EBADMSG;
        n.destination = strdup(v);
        v = runtime_record_get(&rec, "id");
        n.id = v && !strpbrk(v, "/ ") ? strdup(v) : NULL;
        if (!n.destination || !n.id) {
                cold_note_done(&n);
                return v ? -ENOMEM : -EBADMSG;
        }
        v = runtime_record_get(&rec, "disks");
        if (v && cold_paths_parse(v, &n.disks) < 0) {
                cold_note_done(&n);
                return -EBADMSG;
        }
        *ret = n;
        return 1;
}

int cold_note_list(const char *runtime_dir, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        char dir[PATH_MAX];
        struct dirent *de;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/cold", runtime_dir);
        d = opendir(dir);
        if (!d) {
                *ret = NULL;
                return errno == ENOENT ? 0 : -errno;
        }
        while ((de = readdir(d)))
                if (uuid_is_valid(de->d_name) && strv_extend(&l, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        closedir(d);
        *ret = TAKE_PTR(l);
        return 0;
}
