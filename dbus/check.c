/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CheckNode(): what the readiness list is judged from (lib/nodecheck.h), looked up on this
 * node. The store and the secret files in the event loop (check_new()), the rest in the
 * worker (check_gather()), which then has node_check_judge() turn the facts into findings.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "certcheck.h"
#include "check.h"
#include "console-priority.h"
#include "console-tls.h"
#include "firewall.h"
#include "leases.h"
#include "migtls.h"
#include "diskinfo.h"
#include "fw.h"
#include "manager.h"
#include "migcheck.h"
#include "nodecheck.h"
#include "paths.h"
#include "migration-network.h"
#include "runtime.h"
#include "store-attach.h"
#include "util.h"

#define HOOK_LINK HW_LIBVIRT_HOOKS_DIR "/qemu.d/50-hostwarden"

/* What the checks need, copied in the event loop, what they saw, and what it means. */
struct NodeCheck {
        /* in */
        NodeCheckSettings settings; /* its strings are this check's copies */
        char **migration_sources, **console_clients;
        FwSpec spec;                    /* its lists point to the copies above */
        char *node_name, *node_address; /* address: "" when not set */
        char **peer_marks;              /* per facts.peers, from its node record; NULL: none */
        int peer_records_error;         /* the node records could not be read: < 0 */
        char **config_warnings;         /* what the configuration's last load warned of */

        MigNetCheck *mignet; /* NULL: no migration network configured */

        /* out */
        NodeFacts facts;
        MigFindings findings;
        int error;
};

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

static void gather_libvirt_listen(NodeCheck *c)
{
        c->facts.listen_tls = tcp_listening(16514);
        c->facts.listen_tcp = !c->facts.listen_tls && tcp_listening(16509);
}

/* TLS between the nodes: libvirt's certificates, QEMU's and qemu.conf's settings. */
static void gather_tls(NodeCheck *c)
{
        NodeFacts *n = &c->facts;
        _cleanup_free_ char *uffd = NULL, *ca = NULL, *cert = NULL;
        const MigrationTlsProbe *probe = &n->tls_probe;
        time_t now = time(NULL);
        int r;

        r = read_full_file(LIBVIRT_QEMU_CONF, 4 << 20, &n->qemu_conf, NULL);
        if (r < 0) {
                n->qemu_conf = NULL;
                n->qemu_conf_error = r;
        }
        if (c->settings.permit_post_copy &&
            read_full_file("/proc/sys/vm/unprivileged_userfaultfd", 64, &uffd, NULL) >= 0)
                n->unprivileged_userfaultfd = uffd[0] == '1';
        migration_tls_probe(n->qemu_conf, &n->tls_probe);

        n->libvirt_server_cert_present = access(LIBVIRT_SERVER_CERT, F_OK) >= 0;
        if (n->libvirt_server_cert_present) {
                const char *const names[] = { c->node_address, c->node_name, NULL };

                cert_check(LIBVIRT_SERVER_CERT, LIBVIRT_CA, names, now, &n->libvirt_server_cert);
                n->libvirt_client_cert_present = access(LIBVIRT_CLIENT_CERT, F_OK) >= 0;
                if (n->libvirt_client_cert_present)
                        cert_check(LIBVIRT_CLIENT_CERT, LIBVIRT_CA, NULL, now,
                                   &n->libvirt_client_cert);
        }

        if (!migration_tls_default(c->settings.migration_tls, probe) || !isempty(probe->missing))
                return;
        /* the source's QEMU checks the destination's certificate against the migration
         * address: libvirt's migration_host, else this node's host name */
        if (n->qemu_conf &&
            libvirt_conf_get(n->qemu_conf, "migration_host", &n->migration_host) < 0)
                n->migration_host = NULL;
        if (isempty(n->migration_host))
                (void)gethostname(n->hostname, sizeof(n->hostname) - 1);
        if (asprintf(&cert, "%s/server-cert.pem", probe->dir) < 0 ||
            asprintf(&ca, "%s/ca-cert.pem", probe->dir) < 0) {
                c->error = -ENOMEM;
                return;
        }
        {
                const char *address = isempty(n->migration_host) ? n->hostname : n->migration_host;
                const char *const names[] = { address, NULL };

                cert_check(cert, ca, names, now, &n->migration_cert);
        }
        if (isempty(probe->missing_client)) {
                free(cert);
                if (asprintf(&cert, "%s/client-cert.pem", probe->dir) < 0) {
                        cert = NULL;
                        c->error = -ENOMEM;
                        return;
                }
                cert_check(cert, ca, NULL, now, &n->migration_client_cert);
        }
}

/* A running guest's VNC console (its QEMU's -vnc argument): 1 with TLS, 0 without, -1 none or
 * unknown. libvirt keeps each running guest's QEMU pid in NAME.pid. */
static int vnc_has_tls(const char *pidfile)
{
        _cleanup_free_ char *pid = NULL, *path = NULL, *cmdline = NULL;
        size_t size = 0;

        if (read_full_file(pidfile, 64, &pid, NULL) < 0 ||
            asprintf(&path, "/proc/%d/cmdline", atoi(pid)) < 0 ||
            read_full_file(path, 1 << 20, &cmdline, &size) < 0)
                return -1;
        for (const char *a = cmdline; a < cmdline + size; a += strlen(a) + 1)
                if (streq(a, "-vnc") && a + strlen(a) + 1 < cmdline + size)
                        return strstr(a + strlen(a) + 1, "tls-creds=") ? 1 : 0;
        return -1;
}

/* [console] tls = yes: the certificate in libvirt's VNC directory, qemu.conf's last change
 * (qemu.conf itself is read by gather_tls()), and the running guests' consoles. */
static void gather_console_tls(NodeCheck *c)
{
        NodeFacts *n = &c->facts;
        const char *const names[] = { c->node_address, c->node_name, NULL };
        DIR *d;
        struct dirent *de;
        struct stat st;

        if (!c->settings.console_tls)
                return;
        n->console_cert_present = access(CONSOLE_TLS_CERT_DIR "/server-cert.pem", F_OK) >= 0;
        n->console_key_present = access(CONSOLE_TLS_CERT_DIR "/server-key.pem", F_OK) >= 0;
        if (n->console_cert_present)
                cert_check(CONSOLE_TLS_CERT_DIR "/server-cert.pem",
                           CONSOLE_TLS_CERT_DIR "/ca-cert.pem", names, time(NULL),
                           &n->console_cert);
        if (stat(LIBVIRT_QEMU_CONF, &st) >= 0)
                n->qemu_conf_changed = timespec_usec(&st.st_mtim);
        d = opendir("/run/libvirt/qemu");
        while (d && (de = readdir(d))) {
                _cleanup_free_ char *pidfile = NULL;
                size_t len = strlen(de->d_name);
                int k;

                if (len <= 4 || !streq(de->d_name + len - 4, ".pid") ||
                    asprintf(&pidfile, "/run/libvirt/qemu/%s", de->d_name) < 0)
                        continue;
                k = vnc_has_tls(pidfile);
                if (k > 0)
                        n->n_tls_consoles++;
                else if (k == 0) {
                        de->d_name[len - 4] = 0;
                        if (strv_extend(&n->plain_consoles, de->d_name) < 0)
                                c->error = -ENOMEM;
                }
        }
        if (d)
                closedir(d);
}

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

/* libvirt finds hooks only when it starts: the hook counts once libvirtd started after its
 * link in qemu.d was created. */
static void gather_hook(NodeCheck *c)
{
        struct stat st;

        c->facts.hook_installed = lstat(HOOK_LINK, &st) >= 0 && access(HOOK_LINK, X_OK) >= 0;
        /* the link's change time: when it was created here (a package manager sets the mtime
         * to the archive's, which can be older than libvirtd's start) */
        if (c->facts.hook_installed)
                c->facts.hook_changed = timespec_usec(&st.st_ctim);
}

/* The hook and the leases are judged against the running libvirt daemon's start. */
static void gather_libvirt_started(NodeCheck *c)
{
        if (c->facts.hook_installed || c->settings.disk_leases || c->settings.console_tls)
                c->facts.libvirt_unit =
                        libvirt_ask(&c->facts.libvirt_started, &c->facts.libvirt_bus_error);
}

/* [locking] disk_leases: libvirt's files (qemu.conf read by gather_tls()), the lock space. */
static void gather_leases(NodeCheck *c)
{
        NodeFacts *n = &c->facts;
        const char *lockspace = c->settings.lockspace_dir;
        struct stat sq, sl, ss, si;
        int r;

        if (!c->settings.disk_leases)
                return;
        if (n->qemu_conf_error >= 0) {
                r = read_full_file(LIBVIRT_LOCKD_CONF, 1 << 20, &n->lockd_conf, NULL);
                if (r < 0) {
                        n->lockd_conf = NULL;
                        n->lockd_conf_error = r;
                }
        }
        n->lockspace_is_dir = lockspace && stat(lockspace, &ss) >= 0 && S_ISDIR(ss.st_mode);
        n->lockspace_other_fs = n->lockspace_is_dir && stat(c->settings.instances_path, &si) >= 0 &&
                                si.st_dev != ss.st_dev;
        /* to the microsecond, as the start is: a file written in the second libvirtd started
         * in, but after it, was not read by it */
        n->leases_conf_changed = 0;
        if (stat(LIBVIRT_QEMU_CONF, &sq) >= 0)
                n->leases_conf_changed = timespec_usec(&sq.st_mtim);
        if (stat(LIBVIRT_LOCKD_CONF, &sl) >= 0 &&
            timespec_usec(&sl.st_mtim) > n->leases_conf_changed)
                n->leases_conf_changed = timespec_usec(&sl.st_mtim);
}

static void gather_firewall(NodeCheck *c)
{
        _cleanup_(fw_closep) FwContext *fw = NULL;
        const char *state = firewall_state_of(c->settings.firewall_enable, &c->spec);

        c->facts.firewall_state = state;
        if (streq(state, "disabled") || streq(state, "unconfigured"))
                return;
        if (fw_open(&fw) < 0 || fw_check_conflicts(fw, &c->spec, &c->facts.firewall_conflicts) < 0)
                c->facts.firewall_conflicts_unknown = true;
}

static bool mark_file_exists(const char *instances_path, const char *node)
{
        _cleanup_free_ char *p = NULL;

        return asprintf(&p, "%s/" STORAGE_MARK_DIR "/%s", instances_path, node) >= 0 &&
               access(p, F_OK) >= 0;
}

/* instances_path, and whether each peer mounts it: its storage mark is in it. */
static void gather_storage(NodeCheck *c)
{
        NodeFacts *n = &c->facts;
        const char *path = c->settings.instances_path;
        struct statfs sfs;

        if (statfs(path, &sfs) < 0) {
                n->instances_statfs_error = errno;
                return;
        }
        n->instances_fs_type = (unsigned long)sfs.f_type;
        n->instances_fs_shared = fs_shared_name(path);
        for (size_t i = 0; i < n->n_peers; i++) {
                NodeCheckPeer *p = &n->peers[i];
                int k = storage_mark_check(path, p->name, c->peer_marks[i]);

                p->has_mark = k > 0;
                p->no_mark_why = k > 0                              ? NULL
                                 : c->peer_records_error            ? "node records unreadable"
                                 : !c->peer_marks[i]                ? "no mark recorded"
                                 : k < 0                            ? "mark file unreadable"
                                 : !mark_file_exists(path, p->name) ? "no mark file"
                                                                    : "a different mark";
        }
}

/* hostwardend's storage marks in instances_path: may it write them (store-attach.c)? */
static void gather_instances_writable(NodeCheck *c)
{
        const char *path = c->settings.instances_path;
        _cleanup_free_ char *marks = NULL;
        struct stat st;
        int k;

        c->facts.instances_exists = stat(path, &st) >= 0;
        if (!c->facts.instances_exists)
                return;
        if (asprintf(&marks, "%s/" STORAGE_MARK_DIR, path) < 0) {
                c->error = -ENOMEM;
                return;
        }
        k = access(marks, W_OK | X_OK) >= 0 ? 0 : errno;
        if (k == ENOENT) /* made when hostwardend attaches: what matters is where */
                k = access(path, W_OK | X_OK) >= 0 || errno != EROFS ? ENOENT : EROFS;
        c->facts.marks_writable_error = k;
        if (k != 0 && k != EROFS && k != ENOENT) {
                /* getpwuid_r: this runs in a worker thread, beside others */
                struct passwd pwbuf, *pw = NULL;
                char buf[1024];

                if (stat(marks, &st) >= 0)
                        (void)getpwuid_r(st.st_uid, &pwbuf, buf, sizeof(buf), &pw);
                if (pw) {
                        c->facts.marks_owner = strdup(pw->pw_name);
                        if (!c->facts.marks_owner)
                                c->error = -ENOMEM;
                }
        }
}

static void gather_peers(NodeCheck *c)
{
        for (size_t i = 0; i < c->facts.n_peers; i++) {
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;

                c->facts.peers[i].resolve =
                        getaddrinfo(c->facts.peers[i].address, NULL, &hints, &ai);
                if (ai)
                        freeaddrinfo(ai);
        }
}

/* migration_port_min/max in qemu.conf (libvirt's defaults when not set). */
static void gather_ports(NodeCheck *c)
{
        _cleanup_fclose_ FILE *qf = fopen(LIBVIRT_QEMU_CONF, "re");
        unsigned min = 49152, max = 49215;
        char line[512];

        while (qf && fgets(line, sizeof(line), qf)) {
                unsigned v;
                if (sscanf(line, " migration_port_min = %u", &v) == 1)
                        min = v;
                else if (sscanf(line, " migration_port_max = %u", &v) == 1)
                        max = v;
        }
        c->facts.qemu_port_min = min;
        c->facts.qemu_port_max = max;
}

/* The cluster store: read since this boot, and this cluster's (store-attach.h). */
static int gather_store(Manager *m, NodeCheck *c)
{
        StoreState s = store_attach_state(m);

        c->facts.store = s == STORE_STATE_ATTACHED ? NODE_CHECK_STORE_ATTACHED
                         : s == STORE_STATE_LOST   ? NODE_CHECK_STORE_LOST
                                                   : NODE_CHECK_STORE_DETACHED;
        c->facts.store_synced =
                runtime_marker_lookup(hw_runtime_dir(), NODE_MARKER_SYNCED, NULL) > 0;
        c->facts.store_allowed_unsynced =
                runtime_marker_lookup(hw_runtime_dir(), NODE_MARKER_ALLOW_UNSYNCED, NULL) > 0;
        c->facts.store_detail = strdup(strempty(store_attach_detail(m)));
        return c->facts.store_detail ? 0 : -ENOMEM;
}

/* The files holding fence_options (BMC passwords): root's only (hostwarden.conf(5)). A stat of
 * a few files in /etc: done in the event loop, with the configuration at hand. */
static int gather_secret_files(Manager *m, NodeCheck *c)
{
        size_t n = strv_length(m->config->secret_files);

        if (n == 0)
                return 0;
        c->facts.secret_files = calloc(n, sizeof(NodeCheckSecretFile));
        if (!c->facts.secret_files)
                return -ENOMEM;
        STRV_FOREACH (p, m->config->secret_files) {
                NodeCheckSecretFile *f = &c->facts.secret_files[c->facts.n_secret_files++];
                struct stat st;

                f->path = strdup(*p);
                if (!f->path)
                        return -ENOMEM;
                if (stat(*p, &st) < 0) {
                        f->error = errno;
                        continue;
                }
                f->mode = (unsigned)(st.st_mode & 07777);
                f->uid = (unsigned)st.st_uid;
                f->gid = (unsigned)st.st_gid;
        }
        return 0;
}

NodeCheck *check_free(NodeCheck *c)
{
        if (!c)
                return NULL;
        free(c->settings.instances_path);
        free(c->settings.lockspace_dir);
        free(c->settings.console_tls_priority);
        free(c->node_name);
        free(c->node_address);
        strv_free(c->migration_sources);
        strv_free(c->console_clients);
        strv_free(c->config_warnings);
        for (size_t i = 0; c->peer_marks && i < c->facts.n_peers; i++)
                free(c->peer_marks[i]);
        free(c->peer_marks);
        node_facts_done(&c->facts);
        migration_network_check_free(c->mignet);
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
        size_t size = conf->n_peers ? conf->n_peers : 1;
        NodeRecord *nodes = NULL;
        uint64_t now = 0;
        size_t n = 0;
        int r = 0;

        c->facts.peers = calloc(size, sizeof(NodeCheckPeer));
        c->peer_marks = calloc(size, sizeof(char *));
        if (!c->facts.peers || !c->peer_marks)
                return -ENOMEM;
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!m->store)
                c->peer_records_error = -ENOTCONN;
        else
                c->peer_records_error =
                        store_node_list_cached(m->store, now, PEER_RECORDS_MAX_AGE, &nodes, &n);
        if (c->peer_records_error < 0) {
                nodes = NULL; /* no records: no peer shows a storage mark */
                n = 0;
        } else
                c->peer_records_error = 0;
        for (size_t i = 0; i < conf->n_peers && r >= 0; i++) {
                NodeCheckPeer *p = &c->facts.peers[c->facts.n_peers++];

                p->name = strdup(conf->peers[i].name);
                p->address = strdup(strempty(conf->peers[i].address));
                if (!p->name || !p->address)
                        r = -ENOMEM;
                for (size_t k = 0; r >= 0 && k < n; k++)
                        if (streq(nodes[k].name, conf->peers[i].name) && nodes[k].storage_mark) {
                                r = free_and_strdup(&c->peer_marks[i], nodes[k].storage_mark);
                                if (r >= 0)
                                        r = 0;
                        }
        }
        node_record_array_free(nodes, n);
        return r;
}

NodeCheck *check_new(Manager *m)
{
        const Config *conf = m->config;
        NodeCheckSettings *s;
        NodeCheck *c;
        int r;

        c = calloc(1, sizeof(NodeCheck));
        if (!c)
                return NULL;
        s = &c->settings;
        s->instances_path = strdup(conf->node.instances_path);
        c->node_name = strdup(conf->node.name);
        c->node_address = strdup(strempty(conf->node.address));
        if (!c->node_name || !c->node_address)
                return check_free(c);
        s->lockspace_dir = conf->locking.lockspace_dir ? strdup(conf->locking.lockspace_dir) : NULL;
        r = s->instances_path && (s->lockspace_dir || !conf->locking.lockspace_dir) ? 0 : -ENOMEM;
        if (r >= 0)
                r = strv_copy(conf->firewall.migration_admitted, &c->migration_sources);
        if (r >= 0)
                r = strv_copy(conf->firewall.console_clients, &c->console_clients);
        if (r >= 0)
                r = copy_peers(m, c);
        if (r >= 0)
                r = strv_copy(m->config_warnings, &c->config_warnings);
        /* the store's state is the event loop's, and nothing in it blocks: looked at here */
        if (r >= 0)
                r = gather_store(m, c);
        if (r >= 0)
                r = gather_secret_files(m, c);
        if (r >= 0)
                r = migration_network_check_new(conf, &c->mignet);
        if (r < 0)
                return check_free(c); /* every failure above is out of memory */
        s->disk_leases = conf->locking.disk_leases;
        s->firewall_enable = conf->firewall.enable;
        fw_spec_from_config(conf, &c->spec);
        c->spec.migration_sources = c->migration_sources;
        c->spec.console_clients = c->console_clients;
        s->n_console_clients = strv_length(c->console_clients);
        s->console_listen = conf->console.listen;
        s->port_min = conf->migration.port_min;
        s->port_max = conf->migration.port_max;
        s->migration_tls = conf->migration.tls;
        s->permit_post_copy = conf->migration.permit_post_copy;
        s->hook_link = HOOK_LINK;
        s->console_tls = conf->console.tls;
        c->facts.n_priority_consoles = console_priority_count(m);
        if (console_tls_priority(conf->console.tls_min_version, conf->console.tls_ciphers,
                                 &s->console_tls_priority) < 0)
                return check_free(c);
        return c;
}

/* What the operator typed and hostwarden ignored (a misspelt key, an unknown section): said
 * where they look, with the closest known name (issue 24). */
static int judge_config_warnings(NodeCheck *c)
{
        int r = 0;

        STRV_FOREACH (w, c->config_warnings)
                if ((r = mig_findings_add(&c->findings, MIG_WARNING, "config-warnings", "%s", *w)) <
                    0)
                        return r;
        if (!c->config_warnings)
                r = mig_findings_add(&c->findings, MIG_OK, "config-warnings",
                                     "The configuration was read without warnings");
        return r;
}

void check_gather(NodeCheck *c)
{
        gather_libvirt_listen(c);
        gather_tls(c);
        gather_hook(c);
        gather_libvirt_started(c);
        gather_leases(c);
        gather_console_tls(c);
        gather_firewall(c);
        gather_storage(c);
        gather_instances_writable(c);
        gather_peers(c);
        gather_ports(c);
        if (c->error >= 0)
                c->error = node_check_judge(&c->settings, &c->facts, &c->findings);
        if (c->error >= 0)
                c->error = migration_network_check_run(c->mignet, &c->findings);
        if (c->error >= 0)
                c->error = judge_config_warnings(c);
}

int check_result(const NodeCheck *c, const MigFindings **ret)
{
        if (c->error < 0)
                return c->error;
        *ret = &c->findings;
        return 0;
}
