/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CheckNode(): the seeds' readiness list for live migration, judged from what the daemon
 * found (nodecheck.h). Severity is "ok", "warning" or "error"; the order is the daemon's
 * since the first CheckNode: the store and the secret files, then libvirt, TLS, the hook,
 * leases, the firewall, consoles, the shared storage, the peers and the ports.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console-tls.h"
#include "diskinfo.h"
#include "leases.h"
#include "nodecheck.h"

typedef struct Judge {
        const NodeCheckSettings *s;
        const NodeFacts *n;
        MigFindings *out;
        int error;
} Judge;

static void add(Judge *f, const char *severity, const char *code, const char *format, ...)
        _printf_(4, 5);
static void add(Judge *f, const char *severity, const char *code, const char *format, ...)
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
        r = mig_findings_add(f->out, sev, code, "%s", msg);
        free(msg);
        if (r < 0)
                f->error = r;
}

/* The cluster store: read since this boot, and this cluster's (store-attach.h). */
static void judge_store(Judge *f)
{
        const NodeFacts *n = f->n;
        const char *detail = strempty(n->store_detail);
        bool synced = n->store_synced;

        if (n->store == NODE_CHECK_STORE_ATTACHED && synced)
                add(f, "ok", "store", "%s", detail);
        else if (n->store == NODE_CHECK_STORE_ATTACHED || n->store == NODE_CHECK_STORE_LOST)
                add(f, n->store == NODE_CHECK_STORE_LOST ? "error" : "warning", "store", "%s%s",
                    detail,
                    synced ? ""
                           : "; the deny list is not in line with it yet: nothing starts here");
        else
                add(f, "error", "store", "%s%s", detail,
                    n->store_allowed_unsynced
                            ? " (starts allowed anyway by 'hostwardenctl allow-unsynced-starts')"
                            : "");
}

/* The files holding fence_options (BMC passwords): root's only (hostwarden.conf(5)). */
static void judge_secret_files(Judge *f)
{
        size_t exposed = 0;

        for (size_t i = 0; i < f->n->n_secret_files; i++) {
                const NodeCheckSecretFile *p = &f->n->secret_files[i];
                const char *what;

                if (p->error != 0) {
                        add(f, "warning", "secret-file-mode", "Cannot check %s: %s", p->path,
                            strerror(p->error));
                        exposed++;
                        continue;
                }
                what = config_secret_file_exposure(p->mode & 07777, p->gid);
                if (!what)
                        continue;
                add(f, "warning", "secret-file-mode",
                    "%s holds fence_options (BMC passwords) and is %s (mode %04o, owner %u, "
                    "group %u): chown root:root %s && chmod 0640 %s",
                    p->path, what, p->mode & 07777, p->uid, p->gid, p->path, p->path);
                exposed++;
        }
        if (exposed == 0)
                add(f, "ok", "secret-file-mode", "%s",
                    f->n->n_secret_files > 0 ? "The files holding fence_options are root's only"
                                             : "No file holds fence_options");
}

static void judge_libvirt_listen(Judge *f)
{
        if (f->n->listen_tls)
                add(f, "ok", "libvirt-listen", "libvirt accepts peers on 16514 (TLS)");
        else if (f->n->listen_tcp)
                add(f, "warning", "libvirt-listen",
                    "libvirt accepts peers on 16509 without TLS: use libvirtd-tls.socket in "
                    "production (the seeds: secure the migration streams)");
        else
                add(f, "error", "libvirt-listen",
                    "libvirt does not listen for peers (neither 16514 nor 16509): enable "
                    "libvirtd-tls.socket (or virtproxyd-tls.socket), or live migration cannot "
                    "reach this node");
}

/* One certificate: the CA's signature, the validity, the names. Severity error for what
 * makes peers refuse it now, warning for what will soon. */
static void judge_cert(Judge *f, const char *code, const char *what, const char *cert,
                       const char *ca, const CertCheck *cc, const char *names_why)
{
        char until[64] = "";

        if (cc->error < 0) {
                add(f, "error", code, "%s: %s", what, cc->detail);
                return;
        }
        if (cc->not_after != (time_t)-1) {
                struct tm tm;
                strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", gmtime_r(&cc->not_after, &tm));
        }
        if (!cc->signed_by_ca)
                add(f, "error", code,
                    "%s %s is not signed by the CA in %s: peers refuse it; issue it from the "
                    "cluster's CA",
                    what, cert, ca);
        else if (cc->expired || cc->not_yet_valid)
                add(f, "error", code, "%s %s is %s (valid until %s): peers refuse it; renew it",
                    what, cert, cc->expired ? "expired" : "not valid yet", until);
        else if (cc->missing_name[0])
                add(f, "error", code,
                    "%s %s does not name %s, which %s: peers refuse it; issue it with that "
                    "name among its subject alternative names",
                    what, cert, cc->missing_name, names_why);
        else if (cc->expiring)
                add(f, "warning", code,
                    "%s %s expires on %s, in less than %d days: renew it (libvirtd reads it "
                    "when it starts, QEMU at each migration)",
                    what, cert, until, CERT_EXPIRY_WARNING_DAYS);
        else
                add(f, "ok", code, "%s %s is signed by the CA, valid until %s", what, cert, until);
}

/* Post-copy needs userfaultfd in QEMU. QEMU 7.2 (Debian 12) asks the kernel for it directly,
 * which a QEMU that is not root (libvirt-qemu, libvirt's default user) may only do with
 * vm.unprivileged_userfaultfd = 1; Debian's libvirt does not set it. Measured on the test
 * nodes: "migrate-set-capabilities: Postcopy is not supported", every migration failing. */
static void judge_post_copy(Judge *f)
{
        _cleanup_free_ char *user = NULL;
        const char *qemu_conf = f->n->qemu_conf;

        if (!f->s->permit_post_copy)
                return;
        if (qemu_conf && libvirt_conf_get(qemu_conf, "user", &user) >= 0 &&
            (streq(user, "root") || streq(user, "+0"))) {
                add(f, "ok", "post-copy", "post-copy permitted; QEMU runs as root");
                return;
        }
        if (f->n->unprivileged_userfaultfd)
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

/* TLS between the nodes: libvirt's own connections (16514) and QEMU's migration streams. */
static void judge_tls(Judge *f)
{
        const NodeFacts *n = f->n;
        const MigrationTlsProbe *probe = &n->tls_probe;
        _cleanup_free_ char *ca = NULL, *cert = NULL;
        MigrationTls mode = f->s->migration_tls;
        bool on;

        judge_post_copy(f);
        on = migration_tls_default(mode, probe);

        /* libvirt: peers connect to qemu+tls://ADDRESS/system and check that the
         * certificate names ADDRESS; the node's name is what an operator's virsh uses */
        if (n->libvirt_server_cert_present) {
                judge_cert(f, "libvirt-certificate", "libvirt's server certificate",
                           LIBVIRT_SERVER_CERT, LIBVIRT_CA, &n->libvirt_server_cert,
                           "peers connect to ([node] address, name)");
                if (n->libvirt_client_cert_present)
                        judge_cert(f, "libvirt-client-certificate", "libvirt's client certificate",
                                   LIBVIRT_CLIENT_CERT, LIBVIRT_CA, &n->libvirt_client_cert, "");
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
                add(f, probe->force ? "error" : "warning", "migration-tls",
                    "[migration] tls = no: migration streams (guest memory and disks) cross the "
                    "network in the clear%s",
                    probe->force ? ", and libvirt forces TLS (migrate_tls_force = 1 in "
                                   "qemu.conf): every migration from here is refused"
                                 : "; set tls = auto (the default) once QEMU has certificates");
        else if (!on) /* auto, without certificates */
                add(f, probe->force ? "error" : "warning", "migration-tls",
                    "%s is missing: migration streams %s; install QEMU's certificates in %s "
                    "(libvirt's migrate_tls_x509_cert_dir)",
                    probe->missing,
                    probe->force ? "cannot be encrypted and libvirt forces TLS "
                                   "(migrate_tls_force = 1): every migration is refused"
                                 : "go in the clear ([migration] tls = auto)",
                    probe->dir);
        else if (!isempty(probe->missing))
                add(f, "error", "migration-tls",
                    "[migration] tls = yes but %s is missing: every migration is refused; "
                    "install QEMU's certificates in %s",
                    probe->missing, probe->dir);
        else if (probe->verify && !isempty(probe->missing_client))
                add(f, "error", "migration-tls",
                    "%s is missing: destinations check the source's client certificate "
                    "(migrate_tls_x509_verify), so migrations from here fail",
                    probe->missing_client);
        else
                add(f, "ok", "migration-tls",
                    "migration streams are encrypted ([migration] tls = %s) with the "
                    "certificates in %s",
                    migration_tls_to_string(mode), probe->dir);

        if (probe->force)
                add(f, "ok", "migration-tls-force",
                    "libvirt refuses migrations without TLS (migrate_tls_force = 1), whoever "
                    "asks for them");
        else if (on)
                add(f, "warning", "migration-tls-force",
                    "libvirt still accepts migrations without TLS from other tools (virsh, "
                    "Nova without live_migration_with_native_tls): set migrate_tls_force = 1 "
                    "in %s",
                    LIBVIRT_QEMU_CONF);

        if (!on || !isempty(probe->missing))
                return;
        /* the source's QEMU checks the destination's certificate against the migration
         * address: libvirt's migration_host, else this node's host name */
        if (asprintf(&cert, "%s/server-cert.pem", probe->dir) < 0 ||
            asprintf(&ca, "%s/ca-cert.pem", probe->dir) < 0) {
                f->error = -ENOMEM;
                return;
        }
        judge_cert(f, "migration-certificate", "QEMU's server certificate", cert, ca,
                   &n->migration_cert,
                   isempty(n->migration_host) ? "is the migration address (this node's host name; "
                                                "no migration_host in qemu.conf)"
                                              : "is the migration address (migration_host in "
                                                "qemu.conf)");
        if (isempty(probe->missing_client)) {
                free(cert);
                if (asprintf(&cert, "%s/client-cert.pem", probe->dir) < 0) {
                        cert = NULL;
                        f->error = -ENOMEM;
                        return;
                }
                judge_cert(f, "migration-client-certificate", "QEMU's client certificate", cert, ca,
                           &n->migration_client_cert, "");
        }
}

/* libvirt finds hooks only when it starts: the hook counts once libvirtd started after its
 * link in qemu.d was created. */
static void judge_hook(Judge *f)
{
        const NodeFacts *n = f->n;
        const char *unit = n->libvirt_unit;

        if (!n->hook_installed) {
                add(f, "error", "hook-installed",
                    "%s is missing or not executable: reinstall hostwarden, then restart "
                    "libvirtd",
                    f->s->hook_link);
                return;
        }
        if (!unit && n->libvirt_bus_error < 0) {
                add(f, "warning", "hook-active",
                    "cannot ask systemd whether libvirtd runs (%s): try again",
                    strerror(-n->libvirt_bus_error));
                return;
        }
        if (!unit) {
                add(f, "warning", "hook-active",
                    "neither libvirtd nor virtqemud is running: start it, it loads the hook then");
                return;
        }
        /* the link's change time: when it was created here (a package manager sets the mtime
         * to the archive's, which can be older than libvirtd's start) */
        if (n->hook_changed > n->libvirt_started)
                add(f, "error", "hook-active",
                    "the hook was installed after %s started, and libvirt finds hooks only when "
                    "it starts: restart %s (running guests keep running)",
                    unit, unit);
        else
                add(f, "ok", "hook-active", "the hook is active in the running %s", unit);
}

/* [locking] disk_leases: libvirt's lockd leases set up as hostwardenctl setup-leases does,
 * the lock space on the shared storage, and libvirt started since. */
static void judge_leases(Judge *f)
{
        const NodeCheckSettings *c = f->s;
        const NodeFacts *n = f->n;
        _cleanup_free_ char *problem = NULL;
        const char *unit = n->libvirt_unit;
        int r;

        if (!c->disk_leases) {
                add(f, "ok", "disk-leases",
                    "disk leases are off ([locking] disk_leases = no): the hook's deny list "
                    "alone keeps an instance from running twice");
                return;
        }
        r = n->qemu_conf_error;
        if (r >= 0)
                r = n->lockd_conf_error;
        /* names qemu-lockd.conf for a missing qemu.conf too (lockd_conf is then not read),
         * as CheckNode always did */
        if (r == -ENOENT) {
                add(f, "error", "disk-leases",
                    "%s is missing: run 'hostwardenctl setup-leases', then restart libvirtd",
                    n->lockd_conf ? LIBVIRT_QEMU_CONF : LIBVIRT_LOCKD_CONF);
                return;
        }
        if (r < 0) {
                add(f, "error", "disk-leases", "cannot read libvirt's configuration: %s",
                    strerror(-r));
                return;
        }
        r = leases_verify(n->qemu_conf, n->lockd_conf, c->lockspace_dir, &problem);
        if (r < 0) {
                add(f, "error", "disk-leases",
                    "%s: run 'hostwardenctl setup-leases', then restart libvirtd",
                    problem ? problem : strerror(-r));
                return;
        }
        if (!n->lockspace_is_dir) {
                add(f, "error", "disk-leases",
                    "the lock space %s does not exist: run 'hostwardenctl setup-leases'",
                    c->lockspace_dir);
                return;
        }
        if (n->lockspace_other_fs)
                add(f, "warning", "disk-leases",
                    "the lock space %s is not on the file system of instances_path %s: every "
                    "node must see the same lock files",
                    c->lockspace_dir, c->instances_path);
        /* to the microsecond, as the start is: a file written in the second libvirtd started
         * in, but after it, was not read by it */
        if (!unit)
                add(f, "warning", "disk-leases",
                    "set up, but neither libvirtd nor virtqemud is running");
        else if (n->leases_conf_changed > n->libvirt_started)
                add(f, "error", "disk-leases",
                    "set up after %s started, and libvirt reads its lock manager only when it "
                    "starts: restart %s",
                    unit, unit);
        else
                add(f, "ok", "disk-leases",
                    "every disk is leased through virtlockd, in the lock space %s",
                    c->lockspace_dir);
}

static void judge_firewall(Judge *f)
{
        const char *state = f->n->firewall_state;

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

        if (f->n->firewall_conflicts_unknown) {
                add(f, "warning", "firewall-conflict", "cannot read the other nftables tables");
                return;
        }
        STRV_FOREACH (c, f->n->firewall_conflicts)
                add(f, "error", "firewall-conflict", "%s", *c);
}

static void judge_console(Judge *f)
{
        const NodeCheckSettings *s = f->s;
        bool restricted = s->firewall_enable && s->n_console_clients > 0;

        if (s->console_listen == CONSOLE_LISTEN_ANY && !restricted)
                add(f, "warning", "console-exposure",
                    "consoles listen on every address ([console] listen = 0.0.0.0) and nothing "
                    "restricts who connects: set [firewall] console_clients to the VNC/SPICE "
                    "proxies, or [console] listen = node");
        else
                add(f, "ok", "console-exposure", "console listen %s, %s",
                    console_listen_to_string(s->console_listen),
                    restricted ? "reachable only from console_clients" : "address bound");
}

/* [console] tls = yes: qemu.conf as setup-console-tls writes it, read by the running libvirt,
 * the certificate the proxies check, and no running guest left with a plain console. */
static void judge_console_tls(Judge *f)
{
        const NodeFacts *n = f->n;
        const char *prio = f->s->console_tls_priority, *unit = n->libvirt_unit;
        _cleanup_free_ char *problem = NULL, *plain = NULL;
        int r;

        if (!f->s->console_tls)
                return;
        if (!n->qemu_conf) {
                add(f, "error", "console-tls", "cannot read %s: %s", LIBVIRT_QEMU_CONF,
                    strerror(-n->qemu_conf_error));
                return;
        }
        r = console_tls_verify_qemu_conf(n->qemu_conf, prio, &problem);
        if (r == -ENOMEM) {
                f->error = r;
                return;
        }
        if (r < 0) {
                add(f, "error", "console-tls",
                    "[console] tls = yes, but %s: consoles are not encrypted as configured; run "
                    "'hostwardenctl setup-console-tls', then restart libvirtd",
                    problem);
                return;
        }
        if (!n->console_cert_present || !n->console_key_present) {
                add(f, "error", "console-tls",
                    "%s/%s is missing: QEMU cannot start a guest with a VNC console; run "
                    "'hostwardenctl setup-console-tls'",
                    CONSOLE_TLS_CERT_DIR,
                    n->console_cert_present ? "server-key.pem" : "server-cert.pem");
                return;
        }
        judge_cert(f, "console-certificate", "The consoles' certificate",
                   CONSOLE_TLS_CERT_DIR "/server-cert.pem", CONSOLE_TLS_CERT_DIR "/ca-cert.pem",
                   &n->console_cert, "the console proxies connect to ([node] address, name)");
        if (!unit) {
                add(f, "warning", "console-tls",
                    "set up, but neither libvirtd nor virtqemud is running");
                return;
        }
        if (n->qemu_conf_changed > n->libvirt_started) {
                add(f, "error", "console-tls",
                    "set up after %s started, and libvirt reads qemu.conf only when it starts: "
                    "restart %s (running guests keep running)",
                    unit, unit);
                return;
        }
        if (n->plain_consoles) {
                plain = strv_join(n->plain_consoles, ", ");
                if (!plain) {
                        f->error = -ENOMEM;
                        return;
                }
                add(f, "warning", "console-tls",
                    "%zu running guest(s) have a VNC console without TLS, started before libvirt "
                    "had vnc_tls = 1: %s; restart them, or migrate them to a node set up alike",
                    strv_length(n->plain_consoles), plain);
                return;
        }
        if (!isempty(prio) && n->n_priority_consoles < n->n_tls_consoles) {
                add(f, "warning", "console-tls",
                    "%zu of %zu running console(s) do not have the TLS priority of [console] yet: "
                    "hostwardend sets it when a guest starts or arrives (see its journal)",
                    n->n_tls_consoles - n->n_priority_consoles, n->n_tls_consoles);
                return;
        }
        add(f, "ok", "console-tls",
            "consoles speak VeNCrypt only (x509, client certificates of the CA), TLS priority "
            "%s; %zu running console(s), all with TLS",
            isempty(prio) ? "QEMU's default" : prio, n->n_tls_consoles);
}

static void judge_storage(Judge *f)
{
        const NodeFacts *n = f->n;
        const char *path = f->s->instances_path;
        _cleanup_strv_free_ char **no = NULL;
        _cleanup_free_ char *missing = NULL;
        const char *fs = n->instances_fs_shared;
        size_t yes = 0;

        if (n->instances_statfs_error != 0) {
                add(f, "error", "instances-path",
                    "instances_path %s is not accessible (%s): mount the shared storage there",
                    path, strerror(n->instances_statfs_error));
                return;
        }
        for (size_t i = 0; i < n->n_peers; i++) {
                const NodeCheckPeer *p = &n->peers[i];
                _cleanup_free_ char *item = NULL;

                if (p->has_mark) {
                        yes++;
                        continue;
                }
                if (p->no_mark_why ? asprintf(&item, "%s (%s)", p->name, p->no_mark_why) < 0
                                   : !(item = strdup(p->name))) {
                        f->error = -ENOMEM;
                        return;
                }
                if (strv_extend(&no, item) < 0) {
                        f->error = -ENOMEM;
                        return;
                }
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
                    path, n->instances_fs_type);
}

/* hostwardend's own files in instances_path, which Nova's packages make the nova user's
 * (0755): its storage mark, in a directory of root's that hostwardend has systemd make once
 * (store-attach.c); rebuilt disks are made as their directory's owner (rebuild-disk.c). The
 * unit's ProtectSystem=strict leaves only /var/lib/nova/instances writable. */
static void judge_instances_writable(Judge *f)
{
        const char *path = f->s->instances_path;
        _cleanup_free_ char *marks = NULL;
        int k = f->n->marks_writable_error;

        if (!f->n->instances_exists)
                return; /* judge_storage says so */
        if (asprintf(&marks, "%s/" STORAGE_MARK_DIR, path) < 0) {
                f->error = -ENOMEM;
                return;
        }
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
        else
                add(f, "error", "instances-writable",
                    "hostwardend cannot write its storage mark in %s (owner %s): %s; it must "
                    "be root's: chown root:root %s",
                    marks, f->n->marks_owner ?: "?", strerror(k), marks);
}

static void judge_peers(Judge *f)
{
        const NodeFacts *c = f->n;
        unsigned bad = 0;

        for (size_t i = 0; i < c->n_peers; i++)
                if (c->peers[i].resolve != 0) {
                        add(f, "error", "peer-resolvable",
                            "peer %s: address '%s' does not resolve (%s): name resolution must be "
                            "identical on all compute nodes",
                            c->peers[i].name, c->peers[i].address,
                            gai_strerror(c->peers[i].resolve));
                        bad++;
                }
        if (bad == 0)
                add(f, "ok", "peer-resolvable", "%zu peer(s) resolve", c->n_peers);
}

static void judge_ports(Judge *f)
{
        unsigned min = f->n->qemu_port_min, max = f->n->qemu_port_max;

        if (min == f->s->port_min && max == f->s->port_max)
                add(f, "ok", "migration-ports", "migration ports %u-%u as in %s", min, max,
                    LIBVIRT_QEMU_CONF);
        else
                add(f, "error", "migration-ports",
                    "libvirt uses migration ports %u-%u (%s) but [migration] port_min/port_max "
                    "say %u-%u: make them agree, or the firewall opens the wrong ports",
                    min, max, LIBVIRT_QEMU_CONF, f->s->port_min, f->s->port_max);
}

int node_check_judge(const NodeCheckSettings *s, const NodeFacts *facts, MigFindings *out)
{
        Judge f = { .s = s, .n = facts, .out = out };

        judge_store(&f);
        judge_secret_files(&f);
        judge_libvirt_listen(&f);
        judge_tls(&f);
        judge_hook(&f);
        judge_leases(&f);
        judge_firewall(&f);
        judge_console(&f);
        judge_console_tls(&f);
        judge_storage(&f);
        judge_instances_writable(&f);
        judge_peers(&f);
        judge_ports(&f);
        return f.error;
}

void node_facts_done(NodeFacts *f)
{
        if (!f)
                return;
        free(f->store_detail);
        for (size_t i = 0; i < f->n_secret_files; i++)
                free(f->secret_files[i].path);
        free(f->secret_files);
        free(f->qemu_conf);
        free(f->migration_host);
        free(f->lockd_conf);
        strv_free(f->firewall_conflicts);
        free(f->marks_owner);
        strv_free(f->plain_consoles);
        for (size_t i = 0; i < f->n_peers; i++) {
                free(f->peers[i].name);
                free(f->peers[i].address);
        }
        free(f->peers);
        *f = (NodeFacts){};
}
