/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A cold migration's copy, noted in the runtime directory while it runs (cold-note.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cold-note.h"
#include "coldmig.h"
#include "runtime.h"
#include "util.h"

void cold_note_done(ColdNote *n)
{
        free(n->id);
        free(n->destination);
        strv_free(n->disks);
        *n = (ColdNote){};
}

int cold_note_forget(const char *runtime_dir, const char *uuid)
{
        return runtime_note_remove(runtime_dir, RUNTIME_NOTE_COLD, uuid);
}

int cold_note_list(const char *runtime_dir, char ***ret)
{
        return runtime_note_list(runtime_dir, RUNTIME_NOTE_COLD, ret);
}

int cold_note_save(const char *runtime_dir, const char *uuid, const ColdNote *n)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_free_ char *disks = NULL;
        char pid[32];
        int r;

        if (n->disks && (r = cold_paths_format(n->disks, &disks)) < 0)
                return r;
        snprintf(pid, sizeof(pid), "%d", (int)n->pid);
        if ((r = runtime_record_set(&rec, "pid", pid)) < 0 ||
            (r = runtime_record_set(&rec, "id", n->id)) < 0 ||
            (r = runtime_record_set(&rec, "destination", n->destination)) < 0 ||
            (r = runtime_record_set(&rec, "power", instance_power_to_string(n->power))) < 0 ||
            (disks && (r = runtime_record_set(&rec, "disks", disks)) < 0))
                return r;
        return runtime_note_write(runtime_dir, RUNTIME_NOTE_COLD, uuid, &rec);
}

int cold_note_load(const char *runtime_dir, const char *uuid, ColdNote *ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        ColdNote n = {};
        const char *v, *destination;
        int r;

        r = runtime_note_load(runtime_dir, RUNTIME_NOTE_COLD, uuid, "destination", &rec, &n.pid,
                              &destination);
        if (r <= 0)
                return r;
        v = runtime_record_get(&rec, "power");
        n.power = v ? instance_power_from_string(v) : _INSTANCE_POWER_INVALID;
        if (n.power < 0)
                return -EBADMSG;
        n.destination = strdup(destination);
        v = runtime_record_get(&rec, "id");
        if (!v || strpbrk(v, "/ ")) {
                cold_note_done(&n);
                return -EBADMSG;
        }
        n.id = strdup(v);
        if (!n.destination || !n.id) {
                cold_note_done(&n);
                return -ENOMEM;
        }
        v = runtime_record_get(&rec, "disks");
        if (v && cold_paths_parse(v, &n.disks) < 0) {
                cold_note_done(&n);
                return -EBADMSG;
        }
        *ret = n;
        return 1;
}
