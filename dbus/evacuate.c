/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rebuild(s uuid, s source, a{sv}) and EvacuateFrom(s source, a{sv}) → a(sss) [evacuate]:
 * the instances of a dead node started again here, as Nova's evacuate does, from the saved
 * definition: same name, UUID, MACs, disks. Allowed only when the source is down (by this
 * node's clock) or forced down, and fenced (DESIGN.md §4); nothing else unlocks it.
 *
 * One instance goes through three steps:
 *  1. event loop: the checks against the store (source down and fenced, record owned by the
 *     source, definition saved);
 *  2. worker: the source's libvirt, when it answers, must not run it (an operator may have
 *     forced down a node that runs), nor may any peer that is not fenced; then the disk plan: every
 * file disk that exists is used as it is (shared storage); a lost one is re-created from the base
 * image annotated in the definition (diskinfo.h), which must be in <instances_path>/_base;
 * otherwise the rebuild is refused before anything changed (no data is invented, nothing deleted);
 *  3. event loop: compare-and-swap of the record to this node with evacuated_from; then a
 *     worker creates the lost disks (qemu-img), defines and starts the domain.
 * The record moves before the domain starts here, so at no time do two nodes own it; if the
 * start fails (after trying again for a while when libvirtd or the shared storage was out of
 * reach) the instance stays this node's, defined and shut off, for an operator.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "deny-list.h"
#include "diskinfo.h"
#include "domxml.h"
#include "errors.h"
#include "evacuate.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"
#include "reconcile.h"
#include "sysrun.h"
#include "virt.h"

typedef struct DiskFix {
        char *path;
        char *backing;
        uint64_t size;
} DiskFix;

typedef struct Rebuild {
        char uuid[37];
        char *name;
        char *source;
        uint64_t generation; /* of the record when checked */
        char *xml;           /* the definition, console listen rewritten for this node */
        DiskFix *fixes;
        size_t n_fixes;
        char **ask;       /* "name uri" of the peers that are not fenced: does it run there? */
        char *source_uri; /* the source's libvirt, asked too: NULL if [peer SOURCE] is gone */
        char *base_dir;   /* <instances_path>, copied for the worker */
        char *orig_evacuated_from; /* of the record when checked (to swap back) */
        uint64_t claimed_generation;
        bool defined;        /* the domain is defined here (by us or before) */
        InstancePower power; /* as its owner last saw it: rebuilt so (Nova's evacuate keeps a
                                stopped instance stopped) */
        /* outcome */
        const char *error_name; /* NULL: fine so far */
        char *message;
        bool claimed;
        bool started;
        bool locked; /* in m->rebuilding */
} Rebuild;

typedef struct Evacuation {
        sd_bus_message *msg; /* EvacuateFrom's call, or NULL for a single Rebuild */
        char *source;
        Rebuild *items;
        size_t n, next;
} Evacuation;

_printf_(3, 4) static void fail(Rebuild *r, const char *error_name, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        set_messagev(&r->message, format, ap);
        va_end(ap);
        r->error_name = error_name;
}

static void rebuild_done_free(Rebuild *r)
{
        free(r->name);
        free(r->source);
        free(r->xml);
        for (size_t i = 0; i < r->n_fixes; i++) {
                free(r->fixes[i].path);
                free(r->fixes[i].backing);
        }
        free(r->fixes);
        strv_free(r->ask);
        free(r->source_uri);
        free(r->base_dir);
        free(r->orig_evacuated_from);
        free(r->message);
}

static void evacuation_free(Evacuation *e)
{
        if (!e)
                return;
        for (size_t i = 0; i < e->n; i++)
                rebuild_done_free(&e->items[i]);
        free(e->items);
        free(e->source);
        sd_bus_message_unref(e->msg);
        free(e);
}

/* Source down-or-forced-down and fenced? Sets error on the Rebuild and returns false if not. */
static bool source_fenced(Manager *m, const char *source, Rebuild *r)
{
        NodeRecord rec = {};
        NodeLiveness l = NODE_UNKNOWN;
        uint64_t now = 0;
        bool ok = false;
        int k;

        k = store_node_get(m->store, source, &rec);
        if (k < 0) {
                fail(r, HW_ERROR_NO_SUCH_NODE, "No node '%s' in the store", source);
                return false;
        }
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        (void)store_node_liveness_of(m->store, &rec, now, m->config->cluster.down_after, &l);
        if (!rec.forced_down && l != NODE_DOWN)
                fail(r, HW_ERROR_NOT_FENCED,
                     "Node %s is %s: an evacuation needs it down (no heartbeat for %llu s) or "
                     "forced down, and fenced",
                     source, l == NODE_UP ? "up" : "not known to be down yet",
                     (unsigned long long)(m->config->cluster.down_after / USEC_PER_SEC));
        else if (!rec.forced_down && rec.fence != FENCE_OFF)
                fail(r, HW_ERROR_NOT_FENCED,
                     "Node %s is down but not fenced (fence state %s): power it off with "
                     "'hostwardenctl fence %s off', or, if you know it is off, declare it with "
                     "'hostwardenctl force-down %s'",
                     source, fence_state_to_string(rec.fence), source, source);
        else
                ok = true;
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
                char *line;
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
                if (asprintf(&line, "%s %s", peer->name, peer->libvirt_uri) < 0 ||
                    strv_push(&r->ask, line) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Step 1 (event loop): checks against the store. */
static void rebuild_check(Manager *m, Rebuild *r)
{
        InstanceRecord rec = {};
        _cleanup_free_ char *xml = NULL;
        _cleanup_(domxml_freep) DomXml *d = NULL;
        size_t size;
        int k;

        if (!source_fenced(m, r->source, r))
                return;
        k = store_instance_get(m->store, r->uuid, &rec);
        if (k < 0) {
                fail(r, HW_ERROR_NO_SUCH_DOMAIN, "No instance record for %s: %s", r->uuid,
                     k == -ENOENT ? "hostwarden never saw it" : strerror(-k));
                return;
        }
        r->generation = rec.generation;
        r->power = rec.power;
        if (rec.deleted) {
                fail(r, HW_ERROR_NO_SUCH_DOMAIN,
                     "Instance %s (%s) was deleted (seen on %s): nothing to rebuild", r->uuid,
                     strna(rec.name), rec.owner);
                instance_record_done(&rec);
                return;
        }
        if (rec.evacuated_from)
                r->orig_evacuated_from = strdup(rec.evacuated_from);
        if (!r->name && rec.name)
                r->name = strdup(rec.name);
        if (!streq(rec.owner, r->source) &&
            !(streq(rec.owner, m->config->node.name) && streq_ptr(rec.evacuated_from, r->source)))
                fail(r, HW_ERROR_ALREADY_EVACUATED,
                     "Instance %s (%s) belongs to %s%s%s, not to %s: nothing to rebuild", r->uuid,
                     strna(rec.name), rec.owner, rec.evacuated_from ? ", evacuated from " : "",
                     rec.evacuated_from ? rec.evacuated_from : "", r->source);
        instance_record_done(&rec);
        if (r->error_name)
                return;
        if (peers_to_ask(m, r) < 0) {
                fail(r, HW_ERROR_BUSY, "Cannot read the node records");
                return;
        }
        {
                const ConfigPeer *peer = config_find_peer(m->config, r->source);

                if (peer && peer->libvirt_uri) {
                        r->source_uri = strdup(peer->libvirt_uri);
                        if (!r->source_uri) {
                                fail(r, HW_ERROR_BUSY, "Out of memory");
                                return;
                        }
                }
        }
        r->base_dir = strdup(m->config->node.instances_path);
        if (!r->base_dir) {
                fail(r, HW_ERROR_BUSY, "Out of memory");
                return;
        }
        k = store_definition_get(m->store, r->uuid, &xml);
        if (k < 0) {
                fail(r, HW_ERROR_NO_SUCH_DOMAIN,
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
        fail(r, HW_ERROR_NOT_FENCED,
             "Instance %s (%s) runs on %s, its source: libvirt there answers and has it %s, "
             "although %s is recorded as forced down or fenced. Not rebuilt here, where it would "
             "run a second time on the same disks: power %s off ('hostwardenctl fence %s off') "
             "or stop the instance there, then try again",
             r->uuid, strna(r->name), r->source, virt_state_to_string(state), r->source, r->source,
             r->source);
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
        for (size_t i = 0; r->ask && r->ask[i]; i++) {
                const char *uri = strchr(r->ask[i], ' ') + 1;
                int name_len = (int)(uri - 1 - r->ask[i]);
                bool arriving = false;
                int active = virt_remote_domain_active(uri, r->uuid, &arriving);

                if (active < 0) {
                        fail(r, HW_ERROR_CONSTRAINT,
                             "Cannot ask node %.*s, which is not fenced, whether it runs %s "
                             "(%s): not rebuilt (fence it, or declare it forced down, if it is "
                             "off)",
                             name_len, r->ask[i], r->uuid, virt_last_error("cannot connect"));
                        return false;
                }
                if (arriving) {
                        fail(r, HW_ERROR_BUSY,
                             "A migration of %s into node %.*s is still in progress: try again "
                             "when libvirt there has finished or cleaned it up",
                             r->uuid, name_len, r->ask[i]);
                        return false;
                }
                if (active) {
                        fail(r, HW_ERROR_CONSTRAINT,
                             "Instance %s runs on node %.*s (a migration finished there while "
                             "%s failed): not rebuilt; that node records it as its own",
                             r->uuid, name_len, r->ask[i], r->source);
                        return false;
                }
        }
        if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                fail(r, HW_ERROR_LIBVIRT, "Cannot connect to libvirt: %s", err);
                return false;
        }
        dom = virDomainLookupByUUIDString(conn, r->uuid);
        if (dom) {
                if (virDomainIsActive(dom) == 1 && virt_migration_in_progress(dom))
                        fail(r, HW_ERROR_BUSY,
                             "A migration of %s into this node is still in progress: try again "
                             "when libvirt has finished or cleaned it up",
                             r->uuid);
                virDomainFree(dom);
        }
        virConnectClose(conn);
        return !r->error_name;
}

/* Step 2 (worker): the disk plan. */
static void rebuild_plan(Manager *m, Rebuild *r)
{
        _cleanup_(domxml_freep) DomXml *d = NULL;
        const char *base_dir = r->base_dir;
        int k;

        if (!runs_nowhere(m, r))
                return;
        k = domxml_parse(r->xml, strlen(r->xml), &d, NULL);
        if (k < 0) {
                fail(r, HW_ERROR_CONSTRAINT, "The saved definition of %s cannot be parsed",
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
                        fail(r, HW_ERROR_CONSTRAINT,
                             "Disk %s (%s) of %s is gone and is removable media: it cannot be "
                             "re-created",
                             strna(disk->target), disk->source, r->uuid);
                        return;
                }
                k = disk_bases_lookup(r->xml, disk->source, &backing, &size);
                if (k < 0) {
                        fail(r, HW_ERROR_CONSTRAINT,
                             "Disk %s (%s) of %s is gone and no base image is known for it: "
                             "refusing to invent its data",
                             strna(disk->target), disk->source, r->uuid);
                        return;
                }
                if (!under_base_dir(base_dir, backing) || stat(backing, &st) < 0) {
                        fail(r, HW_ERROR_CONSTRAINT,
                             "Disk %s (%s) of %s is gone and its base image %s is %s: refusing "
                             "to invent its data",
                             strna(disk->target), disk->source, r->uuid, backing,
                             under_base_dir(base_dir, backing) ? "missing"
                                                               : "not in <instances_path>/_base");
                        free(backing);
                        return;
                }
                n = realloc(r->fixes, (r->n_fixes + 1) * sizeof(DiskFix));
                if (!n) {
                        free(backing);
                        fail(r, HW_ERROR_CONSTRAINT, "Out of memory");
                        return;
                }
                r->fixes = n;
                r->fixes[r->n_fixes++] =
                        (DiskFix){ .path = strdup(disk->source), .backing = backing, .size = size };
        }
}

static int run_qemu_img(const char *const argv[], char *err, size_t err_size)
{
        int out[2], status;
        posix_spawn_file_actions_t fa;
        pid_t pid;
        ssize_t n;
        int r;

        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
        r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        if (r != 0) {
                close(out[0]);
                snprintf(err, err_size, "cannot run %s: %s", argv[0], strerror(r));
                return -r;
        }
        for (size_t used = 0;;) {
                n = read(out[0], err + used, err_size - 1 - used);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n > 0)
                        used += (size_t)n;
                err[used] = '\0';
                if (n <= 0 || used == err_size - 1)
                        break;
        }
        close(out[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* The owner of the nearest directory of path that exists, and that directory. */
static int nearest_dir(const char *path, char **ret_dir, struct stat *ret_st)
{
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        while ((slash = strrchr(dir, '/'))) {
                if (slash == dir)
                        slash[1] = '\0';
                else
                        *slash = '\0';
                if (stat(dir, ret_st) >= 0 && S_ISDIR(ret_st->st_mode)) {
                        *ret_dir = TAKE_PTR(dir);
                        return 0;
                }
                if (slash == dir)
                        break;
        }
        return -ENOENT;
}

/*
 * A lost disk made again from its base, in its directory, made too if need be: by the owner
 * of the nearest directory that exists. Nova's instance directories belong to the nova user
 * (0755): systemd runs qemu-img as that user (sysrun.h), so the disk and its directory are
 * Nova's as if Nova had made them, and hostwardend needs no right to write there itself.
 * Elsewhere (root's directories) hostwardend runs it, within its own sandbox.
 */
static int create_disk(const DiskFix *f, const char *fmt, char *err, size_t err_size)
{
        _cleanup_free_ char *dir = strdup(f->path), *top = NULL;
        char size[32];
        char *slash = dir ? strrchr(dir, '/') : NULL;
        struct stat st;
        int r;

        if (!slash || slash == dir) {
                snprintf(err, err_size, "not an absolute path in a directory");
                return -EINVAL;
        }
        *slash = '\0';
        snprintf(size, sizeof(size), "%llu", (unsigned long long)f->size);
        r = nearest_dir(f->path, &top, &st);
        if (r >= 0 && st.st_uid != 0) {
                const char *argv[] = { "/bin/sh",
                                       "-c",
                                       "mkdir -p -- \"$1\" && exec qemu-img create -q -f qcow2 "
                                       "-F \"$2\" -b \"$3\" \"$4\" \"$5\"",
                                       "sh",
                                       dir,
                                       fmt,
                                       f->backing,
                                       f->path,
                                       size,
                                       NULL };
                return sysrun(argv, st.st_uid, st.st_gid, top, 5 * 60 * USEC_PER_SEC, err,
                              err_size);
        }
        /* mkdir -p: the instance's directory on this node */
        for (char *p = strchr(dir + 1, '/');; p = strchr(p + 1, '/')) {
                if (p)
                        *p = '\0';
                (void)mkdir(dir, 0755);
                if (!p)
                        break;
                *p = '/';
        }
        const char *argv[] = { "qemu-img", "create", "-q",       "-f",    "qcow2", "-F",
                               fmt,        "-b",     f->backing, f->path, size,    NULL };
        return run_qemu_img(argv, err, err_size);
}

#define REBUILD_LIBVIRT_WAIT_SEC 30U

/* Did the start fail because the shared storage was out of reach for a moment (a network
 * cut: the GlusterFS client answers ENOTCONN until it has reconnected, ~3 s after the
 * network is back)? Then it is tried again, as after a lost libvirtd: the instance is this
 * node's already, and an operator would only start it again. Any other failure stays. */
static bool storage_out_of_reach(const Rebuild *r, const char *error)
{
        static const int transient[] = { ENOTCONN, ESTALE, EHOSTDOWN, EHOSTUNREACH, ETIMEDOUT };

        for (size_t i = 0; i < ELEMENTSOF(transient); i++)
                if (strstr(error, strerrordesc_np(transient[i])))
                        return true;
        return access(r->base_dir, F_OK) < 0 && errno != ENOENT;
}

/*
 * After libvirtd died under the rebuild's start: the domain may be left active but paused (QEMU
 * launched with its CPUs stopped, the start never finished; seen in the fault rounds, with the
 * dead libvirtd's start job still recorded). The guest never ran: resume it, or, when libvirt
 * refuses, destroy it so that the caller starts it again. Only this rebuild starts it here (the
 * record is this node's, the instance is locked against reconciliation).
 */
static void finish_cut_start(virDomainPtr dom, const char *uuid)
{
        int state = 0, reason = 0;

        if (virDomainIsActive(dom) != 1 || virDomainGetState(dom, &state, &reason, 0) < 0 ||
            state != VIR_DOMAIN_PAUSED)
                return;
        if (virDomainResume(dom) >= 0) {
                log_warning("Rebuilt %s was left paused by the start libvirtd did not finish: "
                            "resumed",
                            uuid);
                return;
        }
        log_warning("Rebuilt %s was left paused by the start libvirtd did not finish, and does "
                    "not resume (%s): destroyed, to be started again",
                    uuid, virt_last_error("unknown error"));
        (void)virDomainDestroy(dom);
}

/* Step 3b (worker): create the lost disks, define, start. */
static void rebuild_apply(Manager *m, Rebuild *r)
{
        virConnectPtr conn = NULL;
        virDomainPtr dom = NULL;
        char err[1024];

        for (size_t i = 0; i < r->n_fixes; i++) {
                DiskFix *f = &r->fixes[i];
                char fmt[16] = "raw", info[1024];
                const char *info_argv[] = { "qemu-img", "info", "--output=json", f->backing, NULL };

                /* the base's own format ("raw" as Nova's _base, or qcow2) */
                if (run_qemu_img(info_argv, info, sizeof(info)) == 0 &&
                    strstr(info, "\"format\": \"qcow2\""))
                        snprintf(fmt, sizeof(fmt), "qcow2");
                if (create_disk(f, fmt, err, sizeof(err)) < 0) {
                        fail(r, HW_ERROR_CONSTRAINT, "Cannot re-create disk %s from %s: %s",
                             f->path, f->backing, err);
                        return;
                }
                log_fields(LOG_NOTICE, 0, LOG_FIELDS({ "HOSTWARDEN_INSTANCE", r->uuid }),
                           "Disk %s of %s re-created from its base image %s", f->path, r->uuid,
                           f->backing);
        }
        /* libvirtd may go away under the define or the start (killed, restarted): the
         * record is this node's already, so once libvirtd is back, look again and start
         * what is not running, for up to REBUILD_LIBVIRT_WAIT_SEC */
        for (unsigned waited = 0, losses = 0;; waited += 2) {
                bool lost;

                if (virt_connect(m->virt, &conn, err, sizeof(err)) < 0) {
                        if (waited < REBUILD_LIBVIRT_WAIT_SEC) {
                                sleep(2);
                                continue;
                        }
                        fail(r, HW_ERROR_LIBVIRT, "Cannot connect to libvirt: %s", err);
                        return;
                }
                dom = virDomainLookupByUUIDString(conn, r->uuid);
                if (!dom)
                        dom = virDomainDefineXML(conn, r->xml);
                r->defined = dom != NULL;
                if (dom && losses > 0)
                        finish_cut_start(dom, r->uuid);
                if (dom && (virDomainIsActive(dom) == 1 || r->power == INSTANCE_POWER_SHUTOFF ||
                            virDomainCreateWithFlags(dom, r->power == INSTANCE_POWER_PAUSED
                                                                  ? VIR_DOMAIN_START_PAUSED
                                                                  : 0) >= 0)) {
                        r->started = true;
                        virDomainFree(dom);
                        virConnectClose(conn);
                        return;
                }
                snprintf(err, sizeof(err), "%s", virt_last_error("unknown error"));
                lost = virConnectIsAlive(conn) != 1;
                if (dom)
                        virDomainFree(dom);
                dom = NULL;
                virConnectClose(conn);
                conn = NULL;
                if (lost && waited < REBUILD_LIBVIRT_WAIT_SEC) {
                        losses++;
                        log_warning("Lost libvirt while rebuilding %s (%s): trying again once it "
                                    "is back",
                                    r->uuid, err);
                        sleep(2);
                        continue;
                }
                if (r->defined && storage_out_of_reach(r, err) &&
                    waited < REBUILD_LIBVIRT_WAIT_SEC) {
                        log_warning("Rebuilt %s does not start while its storage is out of reach "
                                    "(%s): trying again",
                                    r->uuid, err);
                        sleep(2);
                        continue;
                }
                if (!r->defined)
                        fail(r, HW_ERROR_LIBVIRT, "Cannot define %s here: %s", r->uuid, err);
                else
                        fail(r, HW_ERROR_LIBVIRT, "%s is defined here but does not start: %s",
                             r->uuid, err);
                return;
        }
}

static void evacuation_step(Manager *m, Evacuation *e);

/* The instance's steps are over: reconciliation may look at it again. */
static void item_done(Manager *m, Evacuation *e)
{
        Rebuild *r = &e->items[e->next];

        if (r->locked)
                strv_remove(m->rebuilding, r->uuid);
        r->locked = false;
        e->next++;
}

static void apply_work(Manager *m, void *userdata)
{
        Evacuation *e = userdata;

        rebuild_apply(m, &e->items[e->next]);
}

/* Nothing was defined here (a disk could not be created, or the definition was refused): the
 * record goes back to the source as it was, so that the instance is not left owned by a
 * node that has no domain of it (reconciliation would take that for a deleted instance). */
static void give_back(Manager *m, Rebuild *r)
{
        InstanceRecord rec = { .name = r->name,
                               .owner = r->source,
                               .evacuated_from = r->orig_evacuated_from,
                               .time = now_realtime() };
        int k;

        memcpy(rec.uuid, r->uuid, sizeof(rec.uuid));
        k = store_instance_cas(m->store, &rec, r->claimed_generation, NULL);
        if (k < 0) {
                log_error_errno(k,
                                "Instance %s is recorded as this node's but not defined here, "
                                "and its record cannot go back to %s: %m",
                                r->uuid, r->source);
                return;
        }
        r->claimed = false; /* reported as refused: nothing changed */
        log_notice("Instance %s was not defined here: its record goes back to %s", r->uuid,
                   r->source);
}

static void apply_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        Evacuation *e = userdata;
        Rebuild *r = &e->items[e->next];

        if (r->claimed && !r->defined)
                give_back(m, r);
        log_fields(r->started ? LOG_WARNING : LOG_ERR, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_EVACUATION },
                              { "HOSTWARDEN_INSTANCE", r->uuid }, { "HOSTWARDEN_DOMAIN", r->name },
                              { "HOSTWARDEN_NODE", r->source }),
                   r->started   ? "Instance %s (%s) of fenced node %s rebuilt here%s"
                   : r->claimed ? "Instance %s (%s) of fenced node %s is this node's now but did "
                                  "not start: %s"
                                : "Instance %s (%s) of fenced node %s was not rebuilt: %s",
                   r->uuid, strna(r->name), r->source,
                   !r->started                          ? strna(r->message)
                   : r->power == INSTANCE_POWER_SHUTOFF ? ", shut off as it was"
                   : r->power == INSTANCE_POWER_PAUSED  ? ", paused as it was"
                                                        : "");
        (void)deny_list_sync(m);
        item_done(m, e);
        evacuation_step(m, e);
}

static void plan_work(Manager *m, void *userdata)
{
        Evacuation *e = userdata;

        rebuild_plan(m, &e->items[e->next]);
}

static void plan_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        Evacuation *e = userdata;
        Rebuild *r = &e->items[e->next];
        InstanceRecord rec = {};
        int k;

        if (r->error_name)
                goto next;
        /* Step 3a: the record moves here (compare-and-swap on what was checked). */
        rec = (InstanceRecord){ .name = r->name,
                                .owner = m->config->node.name,
                                .evacuated_from = r->source,
                                .time = now_realtime() };
        memcpy(rec.uuid, r->uuid, sizeof(rec.uuid));
        if (!source_fenced(m, r->source, r))
                goto next; /* it came back while we planned */
        k = store_instance_cas(m->store, &rec, r->generation, &r->claimed_generation);
        if (k == -ESTALE || k == -EEXIST) {
                fail(r, HW_ERROR_BUSY,
                     "The record of %s changed while it was being rebuilt: look again", r->uuid);
                goto next;
        }
        if (k < 0) {
                fail(r, HW_ERROR_BUSY, "Cannot record %s as this node's: %s", r->uuid,
                     strerror(-k));
                goto next;
        }
        r->claimed = true;
        /* the hook must not refuse it for the deny list: it is this node's now */
        (void)deny_list_sync(m);
        k = job_start(m, NULL, apply_work, apply_done, e);
        if (k >= 0)
                return;
        fail(r, HW_ERROR_BUSY, "Cannot start a worker thread");
next:
        item_done(m, e);
        evacuation_step(m, e);
}

static void evacuation_reply(Manager *m, Evacuation *e)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int k;

        if (streq(sd_bus_message_get_member(e->msg), "Rebuild")) {
                Rebuild *r = &e->items[0];

                if (r->error_name && !r->claimed)
                        (void)sd_bus_reply_method_errorf(e->msg, r->error_name, "%s",
                                                         strna(r->message));
                else if (!r->started)
                        (void)sd_bus_reply_method_errorf(
                                e->msg, r->error_name ? r->error_name : HW_ERROR_LIBVIRT,
                                "%s (the instance is recorded as this node's now)",
                                strna(r->message));
                else
                        (void)sd_bus_reply_method_return(e->msg, NULL);
                return;
        }
        k = sd_bus_message_new_method_return(e->msg, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; k >= 0 && i < e->n; i++) {
                Rebuild *r = &e->items[i];

                k = sd_bus_message_append(reply, "(sss)", r->uuid,
                                          r->started   ? "rebuilt"
                                          : r->claimed ? "failed"
                                                       : "refused",
                                          r->started ? (r->name ? r->name : "")
                                                     : strna(r->message));
        }
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k >= 0)
                k = sd_bus_send(NULL, reply, NULL);
        if (k < 0)
                (void)sd_bus_reply_method_errnof(e->msg, -k, "Cannot send the results: %m");
}

/* Runs the next instance's steps, or replies when all are done. */
static void evacuation_step(Manager *m, Evacuation *e)
{
        while (e->next < e->n) {
                Rebuild *r = &e->items[e->next];
                int k;

                /* From the checks to the start, reconciliation leaves it alone, and it
                 * waits for what reconciliation is doing to it. */
                if (strv_contains(m->rebuilding, r->uuid))
                        fail(r, HW_ERROR_BUSY, "Instance %s is being rebuilt here already",
                             r->uuid);
                else if (reconcile_acting_on(m, r->uuid))
                        fail(r, HW_ERROR_BUSY,
                             "Instance %s is being reconciled with libvirt right now: try again "
                             "in a moment",
                             r->uuid);
                else if (strv_extend(&m->rebuilding, r->uuid) < 0)
                        fail(r, HW_ERROR_BUSY, "Out of memory");
                else {
                        r->locked = true;
                        rebuild_check(m, r);
                }
                if (!r->error_name) {
                        k = job_start(m, NULL, plan_work, plan_done, e);
                        if (k >= 0)
                                return;
                        fail(r, HW_ERROR_BUSY, "Cannot start a worker thread");
                }
                item_done(m, e);
        }
        evacuation_reply(m, e);
        evacuation_free(e);
}

static int add_item(Evacuation *e, const char *uuid, const char *name)
{
        Rebuild *n = realloc(e->items, (e->n + 1) * sizeof(Rebuild));

        if (!n)
                return -ENOMEM;
        e->items = n;
        n = &e->items[e->n];
        *n = (Rebuild){};
        snprintf(n->uuid, sizeof(n->uuid), "%s", uuid);
        n->name = name ? strdup(name) : NULL;
        n->source = strdup(e->source);
        if (!n->source)
                return -ENOMEM;
        e->n++;
        return 0;
}

static bool self_may_host(Manager *m, sd_bus_error *error)
{
        NodeRecord rec = {};
        bool ok = true;

        if (store_node_get(m->store, m->config->node.name, &rec) == 0 &&
            (rec.forced_down || rec.fence == FENCE_OFF)) {
                sd_bus_error_setf(error, HW_ERROR_NOT_FENCED,
                                  "This node (%s) is itself recorded as %s: it hosts nothing "
                                  "until that is cleared",
                                  m->config->node.name, rec.forced_down ? "forced down" : "fenced");
                ok = false;
        }
        node_record_done(&rec);
        return ok;
}

static int evacuate_authorized(Manager *m, sd_bus_message *msg, sd_bus_error *error)
{
        const char *member = sd_bus_message_get_member(msg);
        bool single = streq(member, "Rebuild");
        const char *uuid = NULL, *source;
        Evacuation *e;
        int k;

        if (single)
                k = sd_bus_message_read(msg, "ss", &uuid, &source);
        else
                k = sd_bus_message_read(msg, "s", &source);
        if (k < 0)
                return k;
        if (!self_may_host(m, error))
                return -EPERM;
        e = calloc(1, sizeof(Evacuation));
        if (!e)
                return -ENOMEM;
        e->msg = sd_bus_message_ref(msg);
        e->source = strdup(source);
        if (!e->source) {
                evacuation_free(e);
                return -ENOMEM;
        }
        if (single)
                k = add_item(e, uuid, NULL);
        else {
                InstanceRecord *inst = NULL;
                size_t n = 0;
                Rebuild probe = {};

                /* refuse the whole call at once when the source may not be evacuated */
                if (!source_fenced(m, source, &probe)) {
                        k = sd_bus_error_setf(error, probe.error_name, "%s", strna(probe.message));
                        rebuild_done_free(&probe);
                        evacuation_free(e);
                        return k;
                }
                k = store_instance_list(m->store, &inst, &n);
                for (size_t i = 0; k >= 0 && i < n; i++)
                        if (streq(inst[i].owner, source) && !inst[i].deleted)
                                k = add_item(e, inst[i].uuid, inst[i].name);
                instance_record_array_free(inst, n);
        }
        if (k < 0) {
                evacuation_free(e);
                return sd_bus_error_set_errnof(error, -k, "Cannot read the instance records: %m");
        }
        log_fields(
                LOG_WARNING, 0,
                LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_EVACUATION }, { "HOSTWARDEN_NODE", source }),
                "Evacuation of %zu instance(s) from %s to this node begins", e->n, source);
        evacuation_step(m, e);
        return 1;
}

static int read_no_options(sd_bus_message *msg, sd_bus_error *error)
{
        int k;

        k = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (k < 0)
                return k;
        if (sd_bus_message_at_end(msg, false) == 0) {
                const char *key = "?";

                (void)sd_bus_message_enter_container(msg, 'e', "sv");
                (void)sd_bus_message_read(msg, "s", &key);
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown option '%s': no options are supported", key);
        }
        return sd_bus_message_exit_container(msg);
}

/* The source argument: a node name, not this node. */
static int check_source(Manager *m, const char *source, sd_bus_error *error)
{
        if (!hostname_is_valid(source))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a node name, got '%s'", source);
        if (streq(source, m->config->node.name))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The source %s is this node: evacuation moves a fenced "
                                         "peer's instances here",
                                         source);
        return 0;
}

/* The rest of both calls (source, options), then polkit: evacuate_authorized() reads the
 * arguments again. */
static int check_rest_and_authorize(Manager *m, sd_bus_message *msg, const char *source,
                                    sd_bus_error *error)
{
        int k;

        k = check_source(m, source, error);
        if (k < 0)
                return k;
        k = read_no_options(msg, error);
        if (k < 0)
                return k;
        k = sd_bus_message_rewind(msg, true);
        if (k < 0)
                return k;
        return polkit_authorize(m, msg, evacuate_authorized, error);
}

int method_rebuild(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        const char *uuid, *source;
        int k;

        k = sd_bus_message_read(msg, "ss", &uuid, &source);
        if (k < 0)
                return k;
        if (strlen(uuid) != 36 || strspn(uuid, "0123456789abcdefABCDEF-") != 36)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected an instance UUID, got '%s'", uuid);
        return check_rest_and_authorize(userdata, msg, source, error);
}

int method_evacuate_from(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        const char *source;
        int k;

        k = sd_bus_message_read(msg, "s", &source);
        if (k < 0)
                return k;
        return check_rest_and_authorize(userdata, msg, source, error);
}
