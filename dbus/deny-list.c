/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /run/hostwarden/deny/: the instances the hook must refuse to start here, kept in line with
 * the instance records (docs/runtime-dir.md). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "deny-list.h"
#include "log.h"
#include "paths.h"
#include "runtime.h"
#include "store-attach.h"

/* Whether this node must refuse to start instance rec: another node owns it, or it was
 * deleted after it was evacuated from here (any other node may define it again). */
static bool denied_here(Manager *m, const InstanceRecord *rec)
{
        const char *self = m->config->node.name;

        return rec->deleted ? streq_ptr(rec->evacuated_from, self) : !streq(rec->owner, self);
}

int deny_list_sync_from(Manager *m, const InstanceRecord *inst, size_t n)
{
        _cleanup_free_ char *deny_dir = NULL;
        const char *rt = hw_runtime_dir();
        struct dirent *de;
        DIR *d;
        int r;

        /* an instance another node owns must not start here */
        for (size_t i = 0; i < n; i++) {
                RuntimeRecord cur = { NULL }, rec = { NULL };
                char since[64], gen[32];
                if (!denied_here(m, &inst[i])) {
                        (void)runtime_deny_remove(rt, inst[i].uuid);
                        continue;
                }
                snprintf(gen, sizeof(gen), "%llu", (unsigned long long)inst[i].generation);
                if (runtime_deny_lookup(rt, inst[i].uuid, &cur) > 0 &&
                    streq_ptr(runtime_record_get(&cur, "generation"), gen)) {
                        runtime_record_done(&cur);
                        continue; /* up to date */
                }
                runtime_record_done(&cur);
                (void)runtime_record_set(&rec, "owner", inst[i].owner);
                (void)runtime_record_set(&rec, "since",
                                         format_realtime(inst[i].time, since, sizeof(since)));
                if (inst[i].evacuated_from)
                        (void)runtime_record_set(&rec, "evacuated_from", inst[i].evacuated_from);
                if (inst[i].deleted)
                        (void)runtime_record_set(&rec, "deleted", "yes");
                if (inst[i].name)
                        (void)runtime_record_set(&rec, "name", inst[i].name);
                (void)runtime_record_set(&rec, "generation", gen);
                r = runtime_deny_add(rt, inst[i].uuid, &rec);
                runtime_record_done(&rec);
                if (r < 0)
                        log_warning_errno(r, "Failed to deny %s here: %m", inst[i].uuid);
                else
                        log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "HOSTWARDEN_DOMAIN", inst[i].uuid }),
                                   "Instance %s (%s) %s %s: it may not start here", inst[i].uuid,
                                   inst[i].name ? inst[i].name : "?",
                                   inst[i].deleted ? "was deleted on node" : "is owned by node",
                                   inst[i].owner);
        }

        /* entries whose record is gone or came back to this node */
        if (asprintf(&deny_dir, "%s/deny", rt) < 0)
                return -ENOMEM;
        d = opendir(deny_dir);
        while (d && (de = readdir(d))) {
                bool keep = false;

                if (!uuid_is_valid(de->d_name))
                        continue;
                for (size_t i = 0; i < n && !keep; i++)
                        keep = streq(inst[i].uuid, de->d_name) && denied_here(m, &inst[i]);
                if (!keep)
                        (void)runtime_deny_remove(rt, de->d_name);
        }
        if (d)
                closedir(d);
        store_attach_deny_list_synced(m);
        return 0;
}

int deny_list_sync(Manager *m)
{
        InstanceRecord *inst = NULL;
        size_t n = 0;
        int r;

        r = store_instance_list(m->store, &inst, &n);
        if (r >= 0)
                r = deny_list_sync_from(m, inst, n);
        instance_record_array_free(inst, n); /* NULL and 0 when the listing failed */
        return r;
}
