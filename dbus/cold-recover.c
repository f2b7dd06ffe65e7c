/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cold migration copies whose daemon died before the record moved (cold-recover.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "cold-copy.h"
#include "cold-note.h"
#include "cold-recover.h"
#include "job.h"
#include "log.h"
#include "migration.h"
#include "paths.h"
#include "util.h"
#include "virt.h"

/* A copy whose daemon died before the record moved (cold-note.h): undone. */
typedef struct Recover {
        char uuid[37];
        char *dest_uri;
        char *prefix;
        ColdNote note;
        bool done;
        char error[768];
} Recover;

static void recover_free(Recover *x)
{
        free(x->dest_uri);
        free(x->prefix);
        cold_note_done(&x->note);
        free(x);
}

static void work_recover(Manager *m, void *userdata)
{
        Recover *x = userdata;
        _cleanup_strv_free_ char **pools = NULL;
        virConnectPtr conn = NULL, dconn = NULL;
        virDomainPtr dom;
        char err[512] = "";
        int r = 0, state = 0, reason = 0;

        if (x->note.disks) {
                dconn = x->dest_uri ? virConnectOpen(x->dest_uri) : NULL;
                if (!dconn) {
                        snprintf(x->error, sizeof(x->error), "cannot reach libvirt on %s: %s",
                                 x->note.destination, virt_last_error("not a configured peer"));
                        return;
                }
                /* defined there after all: its disks, not a partial copy */
                dom = virDomainLookupByUUIDString(dconn, x->uuid);
                if (dom)
                        virDomainFree(dom);
                STRV_FOREACH (p, dom ? NULL : x->note.disks) {
                        r = cold_delete_file(dconn, *p, x->prefix, &pools, err, sizeof(err));
                        if (r < 0)
                                snprintf(x->error, sizeof(x->error), "%s", err);
                }
                cold_pools_destroy(dconn, &pools);
                cold_pools_destroy_prefix(dconn, x->prefix);
                virConnectClose(dconn);
                if (r < 0)
                        return;
        }
        if (virt_connect(m->virt, &conn, err, sizeof(err)) >= 0)
                cold_pools_destroy_prefix(conn, x->prefix);
        if (x->note.power == INSTANCE_POWER_RUNNING && conn) {
                dom = virDomainLookupByUUIDString(conn, x->uuid);
                if (dom && virDomainGetState(dom, &state, &reason, 0) == 0 &&
                    state == VIR_DOMAIN_SHUTOFF && virDomainCreate(dom) < 0)
                        snprintf(x->error, sizeof(x->error), "cannot start it here again: %s",
                                 virt_last_error("unknown error"));
                if (dom)
                        virDomainFree(dom);
        }
        if (conn)
                virConnectClose(conn);
        x->done = !x->error[0];
}

static void done_recover(Manager *m, sd_bus_message *msg, void *userdata)
{
        Recover *x = userdata;

        if (x->done) {
                log_warning("The cold migration of %s to %s was cut short when hostwardend "
                            "stopped during its copy: its copy there is removed%s",
                            x->uuid, x->note.destination,
                            x->note.power == INSTANCE_POWER_RUNNING ? ", and it runs here again"
                                                                    : "");
                (void)cold_note_forget(hw_runtime_dir(), x->uuid);
        } else
                log_error("The cold migration of %s to %s was cut short when hostwardend stopped "
                          "during its copy, and cannot be undone: %s (tried again at the next "
                          "start; %s/cold/%s lists its files)",
                          x->uuid, x->note.destination, x->error, hw_runtime_dir(), x->uuid);
        recover_free(x);
}

void cold_copies_recover(Manager *m)
{
        _cleanup_strv_free_ char **uuids = NULL;

        if (cold_note_list(hw_runtime_dir(), &uuids) < 0)
                return;
        STRV_FOREACH (u, uuids) {
                _cleanup_(instance_record_done) InstanceRecord rec = {};
                const ConfigPeer *peer;
                ColdNote n = {};
                Recover *x;

                if (cold_note_load(hw_runtime_dir(), *u, &n) <= 0)
                        continue;
                if (n.pid == getpid() || migration_busy(m, *u)) {
                        cold_note_done(&n);
                        continue;
                }
                /* moved (landing and later: the record's cold keys go on from there) */
                if (store_instance_get(m->store, *u, &rec) >= 0 &&
                    (rec.cold_source || !streq(rec.owner, m->config->node.name))) {
                        cold_note_done(&n);
                        (void)cold_note_forget(hw_runtime_dir(), *u);
                        continue;
                }
                peer = config_find_peer(m->config, n.destination);
                x = calloc(1, sizeof(Recover));
                if (!x || (peer && !(x->dest_uri = strdup(peer->libvirt_uri))) ||
                    asprintf(&x->prefix, "hostwarden-%s", n.id) < 0) {
                        cold_note_done(&n);
                        if (x)
                                recover_free(x);
                        return;
                }
                snprintf(x->uuid, sizeof(x->uuid), "%s", *u);
                x->note = n;
                if (job_start(m, NULL, work_recover, done_recover, x) < 0)
                        recover_free(x);
        }
}
