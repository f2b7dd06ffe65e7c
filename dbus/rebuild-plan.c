/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rebuild's checks (rebuild.h): step 1 against the store, in the event loop (the source down
 * and fenced, the record the source's, the definition saved), and step 2 in a worker (nobody
 * runs the instance, not the source nor a peer that is not fenced, nor is it arriving here;
 * then the plan of the lost disks). Nothing is changed here: a refusal leaves all as it was.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "announce.h"
#include "config.h"
#include "diskinfo.h"
#include "domxml.h"
#include "errors.h"
#include "log.h"
#include "rebuild.h"
#include "virt.h"

/* Source down-or-forced-down and fenced? Sets error on the Rebuild and returns false if not. */
bool rebuild_source_fenced(Manager *m, const char *source, Rebuild *r)
{
        NodeRecord rec = {};
        NodeLiveness l = NODE_UNKNOWN;
        uint64_t now = 0;
        bool ok = false;
        int k;

        k = store_node_get(m->store, source, &rec);
        if (k < 0) {
                rebuild_fail(r, HW_ERROR_NO_SUCH_NODE, "No node '%s' in the store", source);
                return false;
        }
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        (void)store_node_liveness_of(m->store, &rec, now, m->config->cluster.down_after, &l);
        /* A rebuild taken up after a restart passed this check before it claimed the record;
         * a daemon just started cannot tell "down" for down_after, and the fence result is
         * what counts (a source powered on since refuses the instance: it is not its own) */
        if (r->resumed && l == NODE_UNKNOWN)
                l = NODE_DOWN;
        if (!rec.forced_down && l != NODE_DOWN)
                rebuild_fail(
                        r, HW_ERROR_NOT_FENCED,
                        "Node %s is %s: an evacuation needs it down (no heartbeat for %llu s) or "
                        "forced down, and fenced",
                        source, l == NODE_UP ? "up" : "not known to be down yet",
                        (unsigned long long)(m->config->cluster.down_after / USEC_PER_SEC));
        else if (!rec.forced_down && rec.fence != FENCE_OFF)
                rebuild_fail(
                        r, HW_ERROR_NOT_FENCED,
                        "Node %s is down but not fenced (fence state %s): power it off with "
                        "'hostwardenctl fence %s off', or, if you know it is off, declare it with "
                        "'hostwardenctl force-down %s'",
                        source, fence_state_to_string(rec.fence), source, source);
        else
                ok = true;
        r->source_off = rec.fence == FENCE_OFF;
        node_record_done(&rec);
        return ok;
}

/* The peers that may run the instance: every one but the source that is not fenced or
 * forced down (a peer that is only down by its heartbeat may still run guests: its daemon
 * or the store may be what failed). Asked in step 2, since a migration may have finished on
 * one of them while the source's daemon, which would have moved the record, was dying. */
static int peers_to_ask(Manager *m, Rebuild *r)
{
        for (size_t i = 0; i < m->config->n_peers; i++) {
                const ConfigPeer *peer = &m->config->peers[i];
                NodeRecord rec = {};
                bool off;
                int k;

                if (streq(peer->name, r->source))
                        continue;
                k = store_node_get(m->store, peer->name, &rec);
                if (k == -ENOENT)
                        continue; /* never joined: it runs nothing of ours */
                if (k < 0)
                        return k;
                off = rec.forced_down || rec.fence == FENCE_OFF;
                node_record_done(&rec);
                if (off)
                        continue;
                if (peer_targets_add(&r->ask, peer->name, peer->libvirt_uri) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Step 1 (event loop): checks against the store. */
void rebuild_check(Manager *m, Rebuild *r)
{
        InstanceRecord rec = {};
        _cleanup_free_ char *xml = NULL;
        _cleanup_(domxml_freep) DomXml *d = NULL;
        size_t size;
        int k;

        if (!rebuild_source_fenced(m, r->source, r))
                return;
        k = store_instance_get(m->store, r->uuid, &rec);
        if (k < 0) {
                rebuild_fail(r, HW_ERROR_NO_SUCH_DOMAIN, "No instance record for %s: %s", r->uuid,
                             k == -ENOENT ? "hostwarden never saw it" : strerror(-k));
                return;
        }
        r->generation = rec.generation;
        if (!r->resumed) /* the claimed record has no power yet */
                r->power = rec.power;
        if (rec.deleted) {
                rebuild_fail(r, HW_ERROR_NO_SUCH_DOMAIN,
                             "Instance %s (%s) was deleted (seen on %s): nothing to rebuild",
                             r->uuid, strna(rec.name), rec.owner);
                instance_record_done(&rec);
                return;
        }
        if (rec.evacuated_from)
                r->orig_evacuated_from = strdup(rec.evacuated_from);
        if (!r->name && rec.name)
                r->name = strdup(rec.name);
        if (!streq(rec.owner, r->source) &&
            !(streq(rec.owner, m->config->node.name) && streq_ptr(rec.evacuated_from, r->source)))
                rebuild_fail(r, HW_ERROR_ALREADY_EVACUATED,
                             "Instance %s (%s) belongs to %s%s%s, not to %s: nothing to rebuild",
                             r->uuid, strna(rec.name), rec.owner,
                             rec.evacuated_from ? ", evacuated from " : "",
                             rec.evacuated_from ? rec.evacuated_from : "", r->source);
        instance_record_done(&rec);
        if (r->error_name)
                return;
        k = peers_to_ask(m, r);
        if (k == -ENOMEM) {
                rebuild_fail(r, SD_BUS_ERROR_NO_MEMORY, "Out of memory");
                return;
        }
        if (k < 0) {
                rebuild_fail(r, HW_ERROR_STORE_UNAVAILABLE, "Cannot read the node records");
                return;
        }
        {
                const ConfigPeer *peer = config_find_peer(m->config, r->source);

                if (peer && peer->libvirt_uri && !r->source_off) {
                        r->source_uri = strdup(peer->libvirt_uri);
                        if (!r->source_uri) {
                                rebuild_fail(r, SD_BUS_ERROR_NO_MEMORY, "Out of memory");
                                return;
                        }
                }
        }
        announce_schedule_from_config(m->config, &r->announce);
        r->base_dir = strdup(m->config->node.instances_path);
        if (!r->base_dir) {
                rebuild_fail(r, SD_BUS_ERROR_NO_MEMORY, "Out of memory");
                return;
        }
        k = store_definition_get(m->store, r->uuid, &xml);
        if (k < 0) {
                rebuild_fail(r, HW_ERROR_NO_SUCH_DOMAIN,
                             "No saved definition of instance %s: it cannot be rebuilt", r->uuid);
                return;
        }
        /* The console listens where this node says (as for an incoming migration). */
        size = strlen(xml);
        unsigned changed = 0;
        if (domxml_parse(xml, size, &d, NULL) >= 0 &&
            domxml_rewrite_listen(d, m->config->console.listen, m->config->node.address,
                                  &changed) >= 0) {
                _cleanup_free_ char *doc = NULL;

                if (domxml_format(d, &doc, &size) >= 0) {
                        /* keep the disk-base annotations (comments after the root) */
                        const char *notes = strstr(xml, "\n<!-- hostwarden-disk-base ");
                        if (asprintf(&r->xml, "%s%s", doc, notes ? notes : "") < 0)
                                r->xml = NULL;
                }
        }
        if (!r->xml)
                r->xml = TAKE_PTR(xml);
}

static bool under_base_dir(const char *instances_path, const char *path)
{
        size_t n = strlen(instances_path);

        return strncmp(path, instances_path, n) == 0 && strncmp(path + n, "/_base/", 7) == 0 &&
               !strstr(path, "/../");
}

/* A disk that is gone and that hostwarden will not re-create: the whole rebuild is refused. */
static void refuse_disk(Rebuild *r, const DomDisk *disk, const char *why)
{
        rebuild_fail(r, HW_ERROR_CONSTRAINT, "Disk %s (%s) of %s is gone and %s",
                     strna(disk->target), disk->source, r->uuid, why);
}

/*
 * Step 2a (worker), first: the source itself, whatever its record says. A forced-down flag is
 * an operator's word and a fence result may be stale (powered on again by hand); a libvirt
 * that answers is the fact. An unreachable one is what a powered-off node is: then the
 * record decides, as the checks of step 1 did.
 */
static bool source_runs_it(Rebuild *r)
{
        int state = VIR_DOMAIN_NOSTATE, reason = 0, active;

        if (!r->source_uri)
                return false;
        active = virt_remote_domain_state(r->source_uri, r->uuid, &state, &reason);
        if (active < 0) {
                log_info("Cannot ask %s's libvirt whether it runs %s (%s): it counts as off, as "
                         "recorded",
                         r->source, r->uuid, virt_last_error("cannot connect"));
                return false;
        }
        if (active == 0)
                return false;
        rebuild_fail(
                r, HW_ERROR_NOT_FENCED,
                "Instance %s (%s) runs on %s, its source: libvirt there answers and has it %s, "
                "although %s is recorded as forced down or fenced. Not rebuilt here, where it "
                "would run a second time on the same disks: power %s off ('hostwardenctl fence "
                "%s off') or stop the instance there, then try again",
                r->uuid, strna(r->name), r->source, virt_state_to_string(state), r->source,
                r->source, r->source);
        return true;
}

/* Step 2a (worker): it must not run anywhere else, nor be arriving here. */
static bool runs_nowhere(Manager *m, Rebuild *r)
{
        virConnectPtr conn = NULL;
        virDomainPtr dom;
        char err[512];

        if (source_runs_it(r))
                return false;
        for (size_t i = 0; i < r->ask.n; i++) {
                const PeerTarget *peer = &r->ask.items[i];
                bool arriving = false;
                int active = virt_remote_domain_active(peer->uri, r->uuid, &arriving);

                if (active < 0) {
                        rebuild_fail(
                                r, HW_ERROR_CONSTRAINT,
                                "Cannot ask node %s, which is not fenced, whether it runs %s "
                                "(%s): not rebuilt (fence it, or declare it forced down, if it is "
                                "off)",
                                peer->name, r->uuid, virt_last_error("cannot connect"));
                        return false;
                }
                if (arriving) {
                        rebuild_fail(
                                r, HW_ERROR_BUSY,
                                "A migration of %s into node %s is still in progress: try again "
                                "when libvirt there has finished or cleaned it up",
                                r->uuid, peer->name);
                        return false;
                }
                if (active) {
                        rebuild_fail(
                                r, HW_ERROR_CONSTRAINT,
                                "Instance %s runs on node %s (a migration finished there while "
                                "%s failed): not rebuilt; that node records it as its own",
                                r->uuid, peer->name, r->source);
                        return false;
                }
        }
        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                rebuild_fail(r, HW_ERROR_LIBVIRT, "Cannot connect to libvirt: %s", err);
                return false;
        }
        dom = virDomainLookupByUUIDString(conn, r->uuid);
        if (dom) {
                if (virDomainIsActive(dom) == 1 && virt_migration_in_progress(dom))
                        rebuild_fail(
                                r, HW_ERROR_BUSY,
                                "A migration of %s into this node is still in progress: try again "
                                "when libvirt has finished or cleaned it up",
                                r->uuid);
                virDomainFree(dom);
        }
        virConnectClose(conn);
        return !r->error_name;
}

/* Step 2 (worker): the disk plan. */
void rebuild_plan(Manager *m, Rebuild *r)
{
        _cleanup_(domxml_freep) DomXml *d = NULL;
        const char *base_dir = r->base_dir;
        int k;

        if (!runs_nowhere(m, r))
                return;
        k = domxml_parse(r->xml, strlen(r->xml), &d, NULL);
        if (k < 0) {
                rebuild_fail(r, HW_ERROR_CONSTRAINT, "The saved definition of %s cannot be parsed",
                             r->uuid);
                return;
        }
        for (size_t i = 0; i < d->n_disks; i++) {
                const DomDisk *disk = &d->disks[i];
                char *backing = NULL;
                uint64_t size = 0;
                struct stat st;
                DiskFix *n;

                if (!streq_ptr(disk->type, "file") || !disk->source)
                        continue; /* volumes and network disks are reached from anywhere */
                if (stat(disk->source, &st) == 0)
                        continue; /* on shared storage (or still here): used as it is */
                if (streq_ptr(disk->device, "cdrom") || streq_ptr(disk->device, "floppy")) {
                        refuse_disk(r, disk, "is removable media: it cannot be re-created");
                        return;
                }
                k = disk_bases_lookup(r->xml, disk->source, &backing, &size);
                if (k < 0) {
                        refuse_disk(r, disk,
                                    "no base image is known for it: refusing to invent its data");
                        return;
                }
                if (!under_base_dir(base_dir, backing) || stat(backing, &st) < 0) {
                        _cleanup_free_ char *why = NULL;

                        if (asprintf(&why, "its base image %s is %s: refusing to invent its data",
                                     backing,
                                     under_base_dir(base_dir, backing)
                                             ? "missing"
                                             : "not in <instances_path>/_base") < 0)
                                why = NULL;
                        refuse_disk(r, disk, why ?: "its base image is unusable");
                        free(backing);
                        return;
                }
                n = realloc(r->fixes, (r->n_fixes + 1) * sizeof(DiskFix));
                if (!n) {
                        free(backing);
                        rebuild_fail(r, SD_BUS_ERROR_NO_MEMORY, "Out of memory");
                        return;
                }
                r->fixes = n;
                r->fixes[r->n_fixes++] =
                        (DiskFix){ .path = strdup(disk->source), .backing = backing, .size = size };
        }
}
