/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CheckNode(): the seeds' readiness list for live migration, each item as (severity, code,
 * message), the message saying what to do. Severity is "ok", "warning" or "error".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "leases.h"
#include "diskinfo.h"
#include "fw.h"
#include "manager.h"
#include "migcheck.h"
#include "paths.h"
#include "runtime.h"
#include "store-attach.h"
#include "util.h"

#define QEMU_CONF "/etc/libvirt/qemu.conf"
#define HOOK_LINK HW_LIBVIRT_HOOKS_DIR "/qemu.d/50-hostwarden"

typedef struct CheckPeer {
        char *name;
        char *address;
        char *storage_mark; /* from its node record; NULL when none was read */
} CheckPeer;

/* What the checks need, copied in the event loop, and what they found. */
struct NodeCheck {
        /* in */
        char *instances_path;
        bool disk_leases;
        char *lockspace_dir;
        bool firewall_enable;
        char **migration_sources, **console_clients;
        FwSpec spec; /* its lists point to the copies above */
        ConsoleListen console_listen;
        unsigned port_min, port_max;
        CheckPeer *peers;
        size_t n_peers;

        /* out */
        MigFindings findings;
        int error;
        bool libvirt_asked; /* libvirt_unit, libvirt_started: asked once */
        const char *libvirt_unit;
        uint64_t libvirt_started;
        int bus_error; /* < 0: systemd could not be asked */
};

static void add(NodeCheck *f, const char *severity, const char *code, const char *format, ...)
        _printf_(4, 5);
static void add(NodeCheck *f, const char *severity, const char *code, const char *format, ...)
{
        MigSeverity sev = streq(severity, "ok")        ? MIG_OK
                          : streq(severity, "warning") ? MIG_WARNING
                                                       : MIG_ERROR;
        char *msg = NULL;
        va_list ap;
        int r;

        if (f->error < 0)
                return;
        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg) {
                f->error = -ENOMEM;
                return;
        }
        r = mig_findings_add(&f->findings, sev, code, "%s", msg);
        free(msg);
        if (r < 0)
                f->error = r;
}

/* A TCP socket listening on port (IPv4 or IPv6, any address) per /proc/net/tcp{,6}. */
static bool tcp_listening(unsigned port)
{
        static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_fclose_ FILE *f = fopen(files[i], "re");
                char line[512];

                while (f && fgets(line, sizeof(line), f)) {
                        char local[128];
                        unsigned state, p;
                        char *colon;

                        if (sscanf(line, " %*d: %127s %*s %x", local, &state) != 2 || state != 0x0A)
                                continue; /* 0A: LISTEN */
                        colon = strrchr(local, ':');
                        if (colon && sscanf(colon + 1, "%x", &p) == 1 && p == port)
                                return true;
                }
        }
        return false;
}

static void check_libvirt_listen(NodeCheck *f)
{
        if (tcp_listening(16514))
                add(f, "ok", "libvirt-listen", "libvirt accepts peers on 16514 (TLS)");
        else if (tcp_listening(16509))
                add(f, "warning", "libvirt-listen",
                    "libvirt accepts peers on 16509 without TLS: use libvirtd-tls.socket in "
                    "production (the seeds: secure the migration streams)");
        else
                add(f, "error", "libvirt-listen",
                    "libvirt does not listen for peers (neither 16514 nor 16509): enable "
                    "libvirtd-tls.socket (or virtproxyd-tls.socket), or live migration cannot "
                    "reach this node");
}

/* libvirt finds hooks only when it starts: the hook counts once libvirtd started after its
 * link in qemu.d was created. */
/* The running libvirt daemon (virtqemud or libvirtd) and when it started (usec realtime);
 * NULL when neither runs. Asked of systemd on a connection of the worker's own: the daemon's
 * belongs to the event loop. */
static const char *libvirt_ask(uint64_t *ret, int *ret_bus_error)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        static const char *const units[] = { "virtqemud.service", "libvirtd.service" };
        uint64_t started = 0;

        *ret_bus_error = sd_bus_open_system(&bus);
        if (*ret_bus_error < 0)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *p;

                if (sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "GetUnit", &error,
                                       &reply, "s", units[i]) < 0) {
                        sd_bus_error_free(&error);
                        continue;
                }
                if (sd_bus_message_read(reply, "o", &p) < 0)
                        continue;
                path = strdup(p);
                if (path && sd_bus_get_property_trivial(bus, "org.freedesktop.systemd1", path,
                                                        "org.freedesktop.systemd1.Service",
                                                        "ExecMainStartTimestamp", &error, 't',
                                                        &started) < 0)
                        sd_bus_error_free(&error);
                if (started > 0) {
                        *ret = started;
                        return units[i];
                }
        }
        return NULL;
}

static const char *libvirt_started(NodeCheck *c, uint64_t *ret)
{
        if (!c->libvirt_asked) {
                c->libvirt_unit = libvirt_ask(&c->libvirt_started, &c->bus_error);
                c->libvirt_asked = true;
        }
        *ret = c->libvirt_started;
        return c->libvirt_unit;
}

static void check_hook(NodeCheck *f)
{
        struct stat st;
        uint64_t started = 0;
        const char *unit;

        if (lstat(HOOK_LINK, &st) < 0 || access(HOOK_LINK, X_OK) < 0) {
                add(f, "error", "hook-installed",
                    "%s is missing or not executable: reinstall hostwarden, then restart "
                    "libvirtd",
                    HOOK_LINK);
                return;
        }
        unit = libvirt_started(f, &started);
        if (!unit && f->bus_error < 0) {
                add(f, "warning", "hook-active",
                    "cannot ask systemd whether libvirtd runs (%s): try again",
                    strerror(-f->bus_error));
                return;
        }
        if (!unit) {
                add(f, "warning", "hook-active",
                    "neither libvirtd nor virtqemud is running: start it, it loads the hook then");
                return;
        }
        /* the link's change time: when it was created here (a package manager sets the mtime
         * to the archive's, which can be older than libvirtd's start) */
        if (timespec_usec(&st.st_ctim) > started)
                add(f, "error", "hook-active",
                    "the hook was installed after %s started, and libvirt finds hooks only when "
                    "it starts: restart %s (running guests keep running)",
                    unit, unit);
        else
                add(f, "ok", "hook-active", "the hook is active in the running %s", unit);
}

/* [locking] disk_leases: libvirt's lockd leases set up as hostwardenctl setup-leases does,
 * the lock space on the shared storage, and libvirt started since. */
static void check_leases(NodeCheck *f)
{
        const NodeCheck *c = f;
        _cleanup_free_ char *qemu = NULL, *lockd = NULL, *problem = NULL;
        struct stat sq, sl, ss, si;
        uint64_t started = 0, changed;
        const char *unit;
        int r;

        if (!c->disk_leases) {
                add(f, "ok", "disk-leases",
                    "disk leases are off ([locking] disk_leases = no): the hook's deny list "
                    "alone keeps an instance from running twice");
                return;
        }
        r = read_full_file(LIBVIRT_QEMU_CONF, 4 << 20, &qemu, NULL);
        if (r >= 0)
                r = read_full_file(LIBVIRT_LOCKD_CONF, 1 << 20, &lockd, NULL);
        if (r == -ENOENT) {
                add(f, "error", "disk-leases",
                    "%s is missing: run 'hostwardenctl setup-leases', then restart libvirtd",
                    lockd ? LIBVIRT_QEMU_CONF : LIBVIRT_LOCKD_CONF);
                return;
        }
        if (r < 0) {
                add(f, "error", "disk-leases", "cannot read libvirt's configuration: %s",
                    strerror(-r));
                return;
        }
        r = leases_verify(qemu, lockd, c->lockspace_dir, &problem);
        if (r < 0) {
                add(f, "error", "disk-leases",
                    "%s: run 'hostwardenctl setup-leases', then restart libvirtd",
                    problem ? problem : strerror(-r));
                return;
        }
        if (stat(c->lockspace_dir, &ss) < 0 || !S_ISDIR(ss.st_mode)) {
                add(f, "error", "disk-leases",
                    "the lock space %s does not exist: run 'hostwardenctl setup-leases'",
                    c->lockspace_dir);
                return;
        }
        if (stat(c->instances_path, &si) >= 0 && si.st_dev != ss.st_dev)
                add(f, "warning", "disk-leases",
                    "the lock space %s is not on the file system of instances_path %s: every "
                    "node must see the same lock files",
                    c->lockspace_dir, c->instances_path);
        unit = libvirt_started(f, &started);
        /* to the microsecond, as the start is: a file written in the second libvirtd started
         * in, but after it, was not read by it */
        changed = 0;
        if (stat(LIBVIRT_QEMU_CONF, &sq) >= 0)
                changed = timespec_usec(&sq.st_mtim);
        if (stat(LIBVIRT_LOCKD_CONF, &sl) >= 0 && timespec_usec(&sl.st_mtim) > changed)
                changed = timespec_usec(&sl.st_mtim);
        if (!unit)
                add(f, "warning", "disk-leases",
                    "set up, but neither libvirtd nor virtqemud is running");
        else if (changed > started)
                add(f, "error", "disk-leases",
                    "set up after %s started, and libvirt reads its lock manager only when it "
                    "starts: restart %s",
                    unit, unit);
        else
                add(f, "ok", "disk-leases",
                    "every disk is leased through virtlockd, in the lock space %s",
                    c->lockspace_dir);
}

static void check_firewall(NodeCheck *f)
{
        const char *state = firewall_state_of(f->firewall_enable, &f->spec);
        _cleanup_(fw_closep) FwContext *fw = NULL;
        _cleanup_strv_free_ char **conflicts = NULL;

        if (streq(state, "disabled")) {
                add(f, "warning", "firewall",
                    "[firewall] enable = no: the migration ports are as open as the rest of the "
                    "host's firewall leaves them (the seeds: open 49152 and up between all nodes)");
                return;
        }
        if (streq(state, "unconfigured")) {
                add(f, "warning", "firewall",
                    "[firewall] migration_sources is empty: hostwarden leaves nftables alone; list "
                    "the peers to open the migration ports only while a migration arrives");
                return;
        }
        if (streq(state, "active"))
                add(f, "ok", "firewall", "table inet hostwarden matches the configuration");
        else
                add(f, "error", "firewall",
                    "table inet hostwarden is %s: run 'hostwarden-firewall apply' or Reload()",
                    state);

        if (fw_open(&fw) < 0 || fw_check_conflicts(fw, &f->spec, &conflicts) < 0) {
                add(f, "warning", "firewall-conflict", "cannot read the other nftables tables");
                return;
        }
        STRV_FOREACH (c, conflicts)
                add(f, "error", "firewall-conflict", "%s", *c);
}

static void check_console(NodeCheck *f)
{
        bool restricted = f->firewall_enable && strv_length(f->console_clients) > 0;

        if (f->console_listen == CONSOLE_LISTEN_ANY && !restricted)
                add(f, "warning", "console-exposure",
                    "consoles listen on every address ([console] listen = 0.0.0.0) and nothing "
                    "restricts who connects: set [firewall] console_clients to the VNC/SPICE "
                    "proxies, or [console] listen = node");
        else
                add(f, "ok", "console-exposure", "console listen %s, %s",
                    console_listen_to_string(f->console_listen),
                    restricted ? "reachable only from console_clients" : "address bound");
}

/* Whether each peer mounts this node's instances_path: its storage mark is in it. */
static int peers_sharing(const NodeCheck *c, char ***ret_yes, char ***ret_no)
{
        char **yes = NULL, **no = NULL;
        int r = 0;

        for (size_t i = 0; i < c->n_peers && r >= 0; i++) {
                const char *name = c->peers[i].name;
                int k = storage_mark_check(c->instances_path, name, c->peers[i].storage_mark);

                r = strv_extend(k > 0 ? &yes : &no, name);
        }
        if (r < 0) {
                strv_free(yes);
                strv_free(no);
                return r;
        }
        *ret_yes = yes;
        *ret_no = no;
        return 0;
}

static void check_storage(NodeCheck *f)
{
        const char *path = f->instances_path;
        _cleanup_strv_free_ char **yes = NULL, **no = NULL;
        _cleanup_free_ char *missing = NULL;
        const char *fs;
        struct statfs sfs;
        int r;

        if (statfs(path, &sfs) < 0) {
                add(f, "error", "instances-path",
                    "instances_path %s is not accessible (%s): mount the shared storage there",
                    path, strerror(errno));
                return;
        }
        fs = fs_shared_name(path);
        r = peers_sharing(f, &yes, &no);
        if (r < 0) {
                f->error = r;
                return;
        }
        if (no) {
                missing = strv_join(no, ", ");
                if (!missing) {
                        f->error = -ENOMEM;
                        return;
                }
                add(f, "warning", "instances-path",
                    "instances_path %s (%s) does not hold the storage mark of %s: %s not mount "
                    "the same directory there, or %s hostwardend has not started since; live "
                    "migration without block migration needs it on storage shared by all "
                    "nodes, mounted at the same path",
                    path, fs ?: "a local file system", missing,
                    strv_length(no) > 1 ? "they do" : "it does",
                    strv_length(no) > 1 ? "their" : "its");
        } else if (fs)
                add(f, "ok", "instances-path", "instances_path %s is on shared storage (%s)%s",
                    path, fs, yes ? ", with every peer's storage mark in it" : "");
        else if (yes)
                add(f, "ok", "instances-path",
                    "instances_path %s is shared with every peer: their storage marks are in it",
                    path);
        else
                add(f, "warning", "instances-path",
                    "instances_path %s is on a local file system (type 0x%lx): live migration "
                    "without block migration needs it on storage shared by all nodes, mounted at "
                    "the same path",
                    path, (unsigned long)sfs.f_type);
}

static void check_peers(NodeCheck *f)
{
        const NodeCheck *c = f;
        unsigned bad = 0;

        for (size_t i = 0; i < c->n_peers; i++) {
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
                int r = getaddrinfo(c->peers[i].address, NULL, &hints, &ai);

                if (r != 0) {
                        add(f, "error", "peer-resolvable",
                            "peer %s: address '%s' does not resolve (%s): name resolution must be "
                            "identical on all compute nodes",
                            c->peers[i].name, c->peers[i].address, gai_strerror(r));
                        bad++;
                }
                if (ai)
                        freeaddrinfo(ai);
        }
        if (bad == 0)
                add(f, "ok", "peer-resolvable", "%zu peer(s) resolve", c->n_peers);
}

/* migration_port_min/max in qemu.conf (libvirt's defaults when not set). */
static void check_ports(NodeCheck *f)
{
        _cleanup_fclose_ FILE *qf = fopen(QEMU_CONF, "re");
        unsigned min = 49152, max = 49215;
        char line[512];

        while (qf && fgets(line, sizeof(line), qf)) {
                unsigned v;
                if (sscanf(line, " migration_port_min = %u", &v) == 1)
                        min = v;
                else if (sscanf(line, " migration_port_max = %u", &v) == 1)
                        max = v;
        }
        if (min == f->port_min && max == f->port_max)
                add(f, "ok", "migration-ports", "migration ports %u-%u as in %s", min, max,
                    QEMU_CONF);
        else
                add(f, "error", "migration-ports",
                    "libvirt uses migration ports %u-%u (%s) but [migration] port_min/port_max "
                    "say %u-%u: make them agree, or the firewall opens the wrong ports",
                    min, max, QEMU_CONF, f->port_min, f->port_max);
}

/* The cluster store: read since this boot, and this cluster's (store-attach.h). */
static void check_store(Manager *m, NodeCheck *f)
{
        StoreState s = store_attach_state(m);
        bool synced = runtime_marker_lookup(hw_runtime_dir(), NODE_MARKER_SYNCED, NULL) > 0;
        bool allowed =
                runtime_marker_lookup(hw_runtime_dir(), NODE_MARKER_ALLOW_UNSYNCED, NULL) > 0;

        if (s == STORE_STATE_ATTACHED && synced)
                add(f, "ok", "store", "%s", store_attach_detail(m));
        else if (s == STORE_STATE_ATTACHED || s == STORE_STATE_LOST)
                add(f, s == STORE_STATE_LOST ? "error" : "warning", "store", "%s%s",
                    store_attach_detail(m),
                    synced ? ""
                           : "; the deny list is not in line with it yet: nothing starts here");
        else
                add(f, "error", "store", "%s%s", store_attach_detail(m),
                    allowed ? " (starts allowed anyway by 'hostwardenctl allow-unsynced-starts')"
                            : "");
}

/* The files holding fence_options (BMC passwords): root's only (hostwarden.conf(5)). A stat of
 * a few files in /etc: done in the event loop, with the configuration at hand. */
static void check_secret_files(Manager *m, NodeCheck *f)
{
        size_t exposed = 0;

        STRV_FOREACH (p, m->config->secret_files) {
                struct stat st;
                const char *what;

                if (stat(*p, &st) < 0) {
                        add(f, "warning", "secret-file-mode", "Cannot check %s: %s", *p,
                            strerror(errno));
                        exposed++;
                        continue;
                }
                what = config_secret_file_exposure(st.st_mode & 07777, st.st_gid);
                if (!what)
                        continue;
                add(f, "warning", "secret-file-mode",
                    "%s holds fence_options (BMC passwords) and is %s (mode %04o, owner %u, "
                    "group %u): chown root:root %s && chmod 0640 %s",
                    *p, what, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                    (unsigned)st.st_gid, *p, *p);
                exposed++;
        }
        if (exposed == 0)
                add(f, "ok", "secret-file-mode", "%s",
                    m->config->secret_files ? "The files holding fence_options are root's only"
                                            : "No file holds fence_options");
}

NodeCheck *check_free(NodeCheck *c)
{
        if (!c)
                return NULL;
        free(c->instances_path);
        free(c->lockspace_dir);
        strv_free(c->migration_sources);
        strv_free(c->console_clients);
        for (size_t i = 0; i < c->n_peers; i++) {
                free(c->peers[i].name);
                free(c->peers[i].address);
                free(c->peers[i].storage_mark);
        }
        free(c->peers);
        mig_findings_done(&c->findings);
        free(c);
        return NULL;
}

static int strv_copy(char *const *l, char ***ret)
{
        char **copy = NULL;
        int r;

        STRV_FOREACH (s, l) {
                r = strv_extend(&copy, *s);
                if (r < 0) {
                        strv_free(copy);
                        return r;
                }
        }
        *ret = copy;
        return 0;
}

#define PEER_RECORDS_MAX_AGE (1 * USEC_PER_SEC)

/* The peers and their storage marks. The node records come from the listing ListNodes
 * keeps (at most PEER_RECORDS_MAX_AGE old): a caller repeating CheckNode makes no more reads
 * of the shared storage in the event loop than ListNodes does. */
static int copy_peers(Manager *m, NodeCheck *c)
{
        const Config *conf = m->config;
        NodeRecord *nodes = NULL;
        uint64_t now = 0;
        size_t n = 0;
        int r = 0;

        c->peers = calloc(conf->n_peers ? conf->n_peers : 1, sizeof(CheckPeer));
        if (!c->peers)
                return -ENOMEM;
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!m->store ||
            store_node_list_cached(m->store, now, PEER_RECORDS_MAX_AGE, &nodes, &n) < 0) {
                nodes = NULL; /* no records: no peer shows a storage mark */
                n = 0;
        }
        for (size_t i = 0; i < conf->n_peers && r >= 0; i++) {
                CheckPeer *p = &c->peers[c->n_peers++];

                p->name = strdup(conf->peers[i].name);
                p->address = strdup(strempty(conf->peers[i].address));
                if (!p->name || !p->address)
                        r = -ENOMEM;
                for (size_t k = 0; r >= 0 && k < n; k++)
                        if (streq(nodes[k].name, conf->peers[i].name) && nodes[k].storage_mark) {
                                p->storage_mark = strdup(nodes[k].storage_mark);
                                if (!p->storage_mark)
                                        r = -ENOMEM;
                        }
        }
        node_record_array_free(nodes, n);
        return r;
}

int check_new(Manager *m, NodeCheck **ret)
{
        const Config *conf = m->config;
        NodeCheck *c;
        int r;

        c = calloc(1, sizeof(NodeCheck));
        if (!c)
                return -ENOMEM;
        c->instances_path = strdup(conf->node.instances_path);
        c->lockspace_dir = conf->locking.lockspace_dir ? strdup(conf->locking.lockspace_dir) : NULL;
        r = c->instances_path && (c->lockspace_dir || !conf->locking.lockspace_dir) ? 0 : -ENOMEM;
        if (r >= 0)
                r = strv_copy(conf->firewall.migration_sources, &c->migration_sources);
        if (r >= 0)
                r = strv_copy(conf->firewall.console_clients, &c->console_clients);
        if (r >= 0)
                r = copy_peers(m, c);
        if (r < 0) {
                check_free(c);
                return r;
        }
        c->disk_leases = conf->locking.disk_leases;
        c->firewall_enable = conf->firewall.enable;
        fw_spec_from_config(conf, &c->spec);
        c->spec.migration_sources = c->migration_sources;
        c->spec.console_clients = c->console_clients;
        c->console_listen = conf->console.listen;
        c->port_min = conf->migration.port_min;
        c->port_max = conf->migration.port_max;
        /* the store's state is the event loop's, and nothing in it blocks: found here, first */
        check_store(m, c);
        check_secret_files(m, c);
        *ret = c;
        return 0;
}

void check_gather(NodeCheck *c)
{
        check_libvirt_listen(c);
        check_hook(c);
        check_leases(c);
        check_firewall(c);
        check_console(c);
        check_storage(c);
        check_peers(c);
        check_ports(c);
}

int check_append(NodeCheck *c, sd_bus_message *reply)
{
        int r;

        if (c->error < 0)
                return c->error;
        r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; r >= 0 && i < c->findings.n; i++)
                r = sd_bus_message_append(reply, "(sss)",
                                          mig_severity_to_string(c->findings.items[i].severity),
                                          c->findings.items[i].code, c->findings.items[i].message);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}
