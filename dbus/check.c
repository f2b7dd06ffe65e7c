/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CheckNode(): the seeds' readiness list for live migration, each item as (severity, code,
 * message), the message saying what to do. Severity is "ok", "warning" or "error".
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <linux/magic.h>
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
#include "firewall.h"
#include "leases.h"
#include "migtls.h"
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
        char *node_name, *node_address; /* address: "" when not set */
        MigrationTls migration_tls;
        bool permit_post_copy;
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

#define LIBVIRT_CA          "/etc/pki/CA/cacert.pem"
#define LIBVIRT_SERVER_CERT "/etc/pki/libvirt/servercert.pem"
#define LIBVIRT_CLIENT_CERT "/etc/pki/libvirt/clientcert.pem"

/* One certificate: the CA's signature, the validity, the names. Severity error for what
 * makes peers refuse it now, warning for what will soon. */
static void check_cert(NodeCheck *f, const char *code, const char *what, const char *cert,
                       const char *ca, const char *const *names, const char *names_why)
{
        char until[64] = "";
        CertCheck cc;

        cert_check(cert, ca, names, time(NULL), &cc);
        if (cc.error < 0) {
                add(f, "error", code, "%s: %s", what, cc.detail);
                return;
        }
        if (cc.not_after != (time_t)-1) {
                struct tm tm;
                strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", gmtime_r(&cc.not_after, &tm));
        }
        if (!cc.signed_by_ca)
                add(f, "error", code,
                    "%s %s is not signed by the CA in %s: peers refuse it; issue it from the "
                    "cluster's CA",
                    what, cert, ca);
        else if (cc.expired || cc.not_yet_valid)
                add(f, "error", code, "%s %s is %s (valid until %s): peers refuse it; renew it",
                    what, cert, cc.expired ? "expired" : "not valid yet", until);
        else if (cc.missing_name[0])
                add(f, "error", code,
                    "%s %s does not name %s, which %s: peers refuse it; issue it with that "
                    "name among its subject alternative names",
                    what, cert, cc.missing_name, names_why);
        else if (cc.expiring)
                add(f, "warning", code,
                    "%s %s expires on %s, in less than %d days: renew it (libvirtd reads it "
                    "when it starts, QEMU at each migration)",
                    what, cert, until, CERT_EXPIRY_WARNING_DAYS);
        else
                add(f, "ok", code, "%s %s is signed by the CA, valid until %s", what, cert, until);
}

static void check_post_copy(NodeCheck *f, const char *qemu_conf);

/* TLS between the nodes: libvirt's own connections (16514) and QEMU's migration streams. */
static void check_tls(NodeCheck *f)
{
        _cleanup_free_ char *qemu = NULL, *mhost = NULL, *ca = NULL, *cert = NULL;
        char host[256] = "";
        MigrationTlsProbe probe;
        MigrationTls mode = f->migration_tls;
        bool on;

        if (read_full_file(LIBVIRT_QEMU_CONF, 4 << 20, &qemu, NULL) < 0)
                qemu = NULL;
        check_post_copy(f, qemu);
        migration_tls_probe(qemu, &probe);
        on = migration_tls_default(mode, &probe);

        /* libvirt: peers connect to qemu+tls://ADDRESS/system and check that the
         * certificate names ADDRESS; the node's name is what an operator's virsh uses */
        if (access(LIBVIRT_SERVER_CERT, F_OK) >= 0) {
                const char *const names[] = { f->node_address, f->node_name, NULL };
                check_cert(f, "libvirt-certificate", "libvirt's server certificate",
                           LIBVIRT_SERVER_CERT, LIBVIRT_CA, names,
                           "peers connect to ([node] address, name)");
                if (access(LIBVIRT_CLIENT_CERT, F_OK) >= 0)
                        check_cert(f, "libvirt-client-certificate", "libvirt's client certificate",
                                   LIBVIRT_CLIENT_CERT, LIBVIRT_CA, NULL, "");
                else
                        add(f, "error", "libvirt-client-certificate",
                            "%s is missing: this node cannot connect to its peers' libvirt "
                            "over TLS (migrations from here fail)",
                            LIBVIRT_CLIENT_CERT);
        } else
                add(f, "warning", "libvirt-certificate",
                    "%s is missing: libvirtd does not accept TLS connections, and peers reach "
                    "this node through qemu+tls:// by default",
                    LIBVIRT_SERVER_CERT);

        /* QEMU: the migration stream */
        if (mode == MIGRATION_TLS_NO)
                add(f, probe.force ? "error" : "warning", "migration-tls",
                    "[migration] tls = no: migration streams (guest memory and disks) cross the "
                    "network in the clear%s",
                    probe.force ? ", and libvirt forces TLS (migrate_tls_force = 1 in "
                                  "qemu.conf): every migration from here is refused"
                                : "; set tls = auto (the default) once QEMU has certificates");
        else if (!on) /* auto, without certificates */
                add(f, probe.force ? "error" : "warning", "migration-tls",
                    "%s is missing: migration streams %s; install QEMU's certificates in %s "
                    "(libvirt's migrate_tls_x509_cert_dir)",
                    probe.missing,
                    probe.force ? "cannot be encrypted and libvirt forces TLS "
                                  "(migrate_tls_force = 1): every migration is refused"
                                : "go in the clear ([migration] tls = auto)",
                    probe.dir);
        else if (!isempty(probe.missing))
                add(f, "error", "migration-tls",
                    "[migration] tls = yes but %s is missing: every migration is refused; "
                    "install QEMU's certificates in %s",
                    probe.missing, probe.dir);
        else if (probe.verify && !isempty(probe.missing_client))
                add(f, "error", "migration-tls",
                    "%s is missing: destinations check the source's client certificate "
                    "(migrate_tls_x509_verify), so migrations from here fail",
                    probe.missing_client);
        else
                add(f, "ok", "migration-tls",
                    "migration streams are encrypted ([migration] tls = %s) with the "
                    "certificates in %s",
                    migration_tls_to_string(mode), probe.dir);

        if (probe.force)
                add(f, "ok", "migration-tls-force",
                    "libvirt refuses migrations without TLS (migrate_tls_force = 1), whoever "
                    "asks for them");
        else if (on)
                add(f, "warning", "migration-tls-force",
                    "libvirt still accepts migrations without TLS from other tools (virsh, "
                    "Nova without live_migration_with_native_tls): set migrate_tls_force = 1 "
                    "in %s",
                    LIBVIRT_QEMU_CONF);

        if (!on || !isempty(probe.missing))
                return;
        /* the source's QEMU checks the destination's certificate against the migration
         * address: libvirt's migration_host, else this node's host name */
        if (qemu && libvirt_conf_get(qemu, "migration_host", &mhost) < 0)
                mhost = NULL;
        if (isempty(mhost))
                (void)gethostname(host, sizeof(host) - 1);
        if (asprintf(&cert, "%s/server-cert.pem", probe.dir) < 0 ||
            asprintf(&ca, "%s/ca-cert.pem", probe.dir) < 0) {
                f->error = -ENOMEM;
                return;
        }
        {
                const char *const names[] = { isempty(mhost) ? host : mhost, NULL };
                check_cert(f, "migration-certificate", "QEMU's server certificate", cert, ca, names,
                           isempty(mhost) ? "is the migration address (this node's host name; "
                                            "no migration_host in qemu.conf)"
                                          : "is the migration address (migration_host in "
                                            "qemu.conf)");
        }
        if (isempty(probe.missing_client)) {
                free(cert);
                if (asprintf(&cert, "%s/client-cert.pem", probe.dir) < 0) {
                        cert = NULL;
                        f->error = -ENOMEM;
                        return;
                }
                check_cert(f, "migration-client-certificate", "QEMU's client certificate", cert, ca,
                           NULL, "");
        }
}

/* Post-copy needs userfaultfd in QEMU. QEMU 7.2 (Debian 12) asks the kernel for it directly,
 * which a QEMU that is not root (libvirt-qemu, libvirt's default user) may only do with
 * vm.unprivileged_userfaultfd = 1; Debian's libvirt does not set it. Measured on the test
 * nodes: "migrate-set-capabilities: Postcopy is not supported", every migration failing. */
static void check_post_copy(NodeCheck *f, const char *qemu_conf)
{
        _cleanup_free_ char *user = NULL, *uffd = NULL;

        if (!f->permit_post_copy)
                return;
        if (qemu_conf && libvirt_conf_get(qemu_conf, "user", &user) >= 0 &&
            (streq(user, "root") || streq(user, "+0"))) {
                add(f, "ok", "post-copy", "post-copy permitted; QEMU runs as root");
                return;
        }
        if (read_full_file("/proc/sys/vm/unprivileged_userfaultfd", 64, &uffd, NULL) >= 0 &&
            uffd[0] == '1')
                add(f, "ok", "post-copy",
                    "post-copy permitted; QEMU may use userfaultfd (vm.unprivileged_userfaultfd "
                    "= 1)");
        else
                add(f, "error", "post-copy",
                    "[migration] permit_post_copy = yes, but QEMU runs as %s and the kernel "
                    "lets it use userfaultfd only with vm.unprivileged_userfaultfd = 1: every "
                    "migration with post-copy fails (\"Postcopy is not supported\"); set it in "
                    "/etc/sysctl.d/ or permit_post_copy = no",
                    user ?: "libvirt-qemu");
}

/* hostwardend's own files in instances_path, which Nova's packages make the nova user's
 * (0755): its storage mark, in a directory of root's that hostwardend has systemd make once
 * (store-attach.c); rebuilt disks are made as their directory's owner (evacuate.c). The
 * unit's ProtectSystem=strict leaves only /var/lib/nova/instances writable. */
static void check_instances_writable(NodeCheck *f)
{
        const char *path = f->instances_path;
        _cleanup_free_ char *marks = NULL;
        struct stat st;
        int k;

        if (stat(path, &st) < 0)
                return; /* check_storage says so */
        if (asprintf(&marks, "%s/" STORAGE_MARK_DIR, path) < 0) {
                f->error = -ENOMEM;
                return;
        }
        k = access(marks, W_OK | X_OK) >= 0 ? 0 : errno;
        if (k == ENOENT) /* made when hostwardend attaches: what matters is where */
                k = access(path, W_OK | X_OK) >= 0 || errno != EROFS ? ENOENT : EROFS;
        if (k == 0)
                add(f, "ok", "instances-writable", "hostwardend writes its storage mark in %s",
                    marks);
        else if (k == EROFS)
                add(f, "error", "instances-writable",
                    "instances_path %s is read-only for hostwardend: its unit leaves only "
                    "/var/lib/nova/instances writable (ProtectSystem=strict); add "
                    "ReadWritePaths=%s in a drop-in (systemctl edit hostwardend)",
                    path, path);
        else if (k == ENOENT)
                add(f, "warning", "instances-writable",
                    "%s does not exist yet: hostwardend has systemd make it (root's) when it "
                    "attaches to the cluster store",
                    marks);
        else {
                struct passwd *pw = stat(marks, &st) >= 0 ? getpwuid(st.st_uid) : NULL;

                add(f, "error", "instances-writable",
                    "hostwardend cannot write its storage mark in %s (owner %s): %s; it must "
                    "be root's: chown root:root %s",
                    marks, pw ? pw->pw_name : "?", strerror(k), marks);
        }
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
        free(c->node_name);
        free(c->node_address);
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
        c->node_name = strdup(conf->node.name);
        c->node_address = strdup(strempty(conf->node.address));
        if (!c->node_name || !c->node_address) {
                check_free(c);
                return -ENOMEM;
        }
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
        c->migration_tls = conf->migration.tls;
        c->permit_post_copy = conf->migration.permit_post_copy;
        /* the store's state is the event loop's, and nothing in it blocks: found here, first */
        check_store(m, c);
        check_secret_files(m, c);
        *ret = c;
        return 0;
}

void check_gather(NodeCheck *c)
{
        check_libvirt_listen(c);
        check_tls(c);
        check_hook(c);
        check_leases(c);
        check_firewall(c);
        check_console(c);
        check_storage(c);
        check_instances_writable(c);
        check_peers(c);
        check_ports(c);
}

int findings_append(sd_bus_message *reply, const MigFindings *f)
{
        int r = sd_bus_message_open_container(reply, 'a', "(sss)");

        for (size_t i = 0; r >= 0 && i < f->n; i++)
                r = sd_bus_message_append(reply, "(sss)",
                                          mig_severity_to_string(f->items[i].severity),
                                          f->items[i].code, f->items[i].message);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int check_append(NodeCheck *c, sd_bus_message *reply)
{
        return c->error < 0 ? c->error : findings_append(reply, &c->findings);
}
