/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Rebuilds noted in the runtime directory while they run, and taken up after a restart
 * (rebuild-note.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "rebuild-note.h"
#include "rebuild.h"
#include "runtime.h"
#include "util.h"

void rebuild_note_done(RebuildNote *n)
{
        free(n->source);
        *n = (RebuildNote){};
}

int rebuild_note_save(const char *runtime_dir, const char *uuid, const RebuildNote *n)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        char pid[32];
        int r;

        snprintf(pid, sizeof(pid), "%d", (int)n->pid);
        if ((r = runtime_record_set(&rec, "pid", pid)) < 0 ||
            (r = runtime_record_set(&rec, "source", n->source)) < 0 ||
            (r = runtime_record_set(&rec, "power", instance_power_to_string(n->power))) < 0)
                return r;
        return runtime_note_write(runtime_dir, RUNTIME_NOTE_REBUILD, uuid, &rec);
}

int rebuild_note_load(const char *runtime_dir, const char *uuid, RebuildNote *ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        RebuildNote n = {};
        const char *source, *power;
        int r;

        r = runtime_note_load(runtime_dir, RUNTIME_NOTE_REBUILD, uuid, "source", &rec, &n.pid,
                              &source);
        if (r <= 0)
                return r;
        power = runtime_record_get(&rec, "power");
        n.power = power ? instance_power_from_string(power) : _INSTANCE_POWER_INVALID;
        if (n.power < 0)
                return -EBADMSG;
        n.source = strdup(source);
        if (!n.source)
                return -ENOMEM;
        *ret = n;
        return 1;
}

int rebuild_note_forget(const char *runtime_dir, const char *uuid)
{
        return runtime_note_remove(runtime_dir, RUNTIME_NOTE_REBUILD, uuid);
}

/* Is the rebuild of the note still to finish here: the record this node's, from source? */
static bool still_ours(Manager *m, const char *uuid, const RebuildNote *n)
{
        _cleanup_(instance_record_done) InstanceRecord rec = {};

        return store_instance_get(m->store, uuid, &rec) >= 0 && !rec.deleted &&
               streq(rec.owner, m->config->node.name) && streq_ptr(rec.evacuated_from, n->source);
}

void rebuilds_resume(Manager *m)
{
        _cleanup_strv_free_ char **uuids = NULL;
        int r;

        r = runtime_note_list(hw_runtime_dir(), RUNTIME_NOTE_REBUILD, &uuids);
        if (r < 0) {
                log_warning_errno(r, "Cannot list the rebuilds in %s/rebuild: %m",
                                  hw_runtime_dir());
                return;
        }
        STRV_FOREACH (u, uuids) {
                _cleanup_(rebuild_note_done) RebuildNote n = {};

                r = rebuild_note_load(hw_runtime_dir(), *u, &n);
                if (r == 0 || (r > 0 && n.pid == getpid()))
                        continue;
                if (r < 0 || !still_ours(m, *u, &n)) {
                        if (r < 0)
                                log_warning_errno(
                                        r, "Forgetting the unreadable note %s/rebuild/%s: %m",
                                        hw_runtime_dir(), *u);
                        (void)rebuild_note_forget(hw_runtime_dir(), *u);
                        continue;
                }
                log_warning("The rebuild of %s (evacuated from %s) was cut short when hostwardend "
                            "stopped: it is finished now",
                            *u, n.source);
                r = rebuild_resume(m, n.source, *u, n.power);
                if (r < 0)
                        log_error_errno(r,
                                        "Cannot take up the rebuild of %s: %m (tried again at "
                                        "the next start)",
                                        *u);
        }
}
