/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CheckNode's judgement (lib/nodecheck.c): given what the daemon saw, which findings, in which
 * order, with which words. Every code has its cases; messages are compared whole. */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "console-tls.h"
#include "leases.h"
#include "nodecheck.h"
#include "test-helpers.h"
#include "util.h"

#define NOT_AFTER ((time_t)1893456000) /* 2030-01-01 00:00 UTC */
#define LOCKSPACE "/var/lib/nova/instances/.leases"
#define HOOK      "/etc/libvirt/hooks/qemu.d/50-hostwarden"

typedef struct Fixture {
        NodeCheckSettings s;
        NodeFacts n;
        NodeCheckPeer peers[3];
        NodeCheckSecretFile files[2];
        char *qemu_conf, *lockd_conf; /* set up for leases */
        MigFindings f;
} Fixture;

static const CertCheck good_cert = { .signed_by_ca = true, .not_after = NOT_AFTER };

/* A node with nothing to say against it: every finding ok (post-copy and leases off). */
static void healthy(Fixture *x)
{
        *x = (Fixture){};
        x->s = (NodeCheckSettings){
                .instances_path = "/var/lib/nova/instances",
                .lockspace_dir = LOCKSPACE,
                .firewall_enable = true,
                .n_console_clients = 1,
                .console_listen = CONSOLE_LISTEN_NODE,
                .port_min = 49152,
                .port_max = 49215,
                .migration_tls = MIGRATION_TLS_AUTO,
                .hook_link = HOOK,
        };
        x->peers[0] = (NodeCheckPeer){ .name = "node2", .address = "10.0.0.2", .has_mark = true };
        x->peers[1] = (NodeCheckPeer){ .name = "node3", .address = "10.0.0.3", .has_mark = true };
        x->n = (NodeFacts){
                .store = NODE_CHECK_STORE_ATTACHED,
                .store_detail = "attached to cluster c1 (dir store)",
                .store_synced = true,
                .listen_tls = true,
                .tls_probe = { .dir = "/etc/pki/qemu", .force = true, .verify = true },
                .hostname = "node1",
                .libvirt_server_cert_present = true,
                .libvirt_client_cert_present = true,
                .libvirt_server_cert = good_cert,
                .libvirt_client_cert = good_cert,
                .migration_cert = good_cert,
                .migration_client_cert = good_cert,
                .hook_installed = true,
                .hook_changed = 100,
                .libvirt_unit = "virtqemud.service",
                .libvirt_started = 200,
                .firewall_state = "active",
                .instances_fs_shared = "nfs4",
                .instances_exists = true,
                .peers = x->peers,
                .n_peers = 2,
                .qemu_port_min = 49152,
                .qemu_port_max = 49215,
        };
}

/* Leases set up as setup-leases does, libvirt started after. */
static void with_leases(Fixture *x)
{
        x->s.disk_leases = true;
        assert_int_equal(leases_qemu_conf("user = \"libvirt-qemu\"\n", &x->qemu_conf), 0);
        assert_int_equal(leases_lockd_conf(LOCKSPACE, &x->lockd_conf), 0);
        x->n.qemu_conf = x->qemu_conf;
        x->n.lockd_conf = x->lockd_conf;
        x->n.lockspace_is_dir = true;
        x->n.leases_conf_changed = 150;
}

static void done(Fixture *x)
{
        mig_findings_done(&x->f);
        free(x->qemu_conf);
        free(x->lockd_conf);
}

static void judge(Fixture *x)
{
        mig_findings_done(&x->f);
        assert_int_equal(node_check_judge(&x->s, &x->n, &x->f), 0);
}

static size_t count(const Fixture *x, const char *code)
{
        size_t n = 0;

        for (size_t i = 0; i < x->f.n; i++)
                n += streq(x->f.items[i].code, code);
        return n;
}

/* The i-th finding of code has that severity and message. */
static void expect_nth(Fixture *x, const char *code, size_t nth, MigSeverity severity,
                       const char *message)
{
        size_t seen = 0;

        for (size_t i = 0; i < x->f.n; i++) {
                if (!streq(x->f.items[i].code, code) || seen++ < nth)
                        continue;
                assert_string_equal(x->f.items[i].message, message);
                assert_string_equal(mig_severity_to_string(x->f.items[i].severity),
                                    mig_severity_to_string(severity));
                return;
        }
        fail_msg("no finding '%s' #%zu", code, nth);
}

/* Judges, and code has exactly this one finding. */
static void expect(Fixture *x, const char *code, MigSeverity severity, const char *message)
{
        judge(x);
        assert_int_equal(count(x, code), 1);
        expect_nth(x, code, 0, severity, message);
}

static void test_a_healthy_node_in_the_daemons_order(void **state)
{
        static const char *const order[] = {
                "store",
                "secret-file-mode",
                "libvirt-listen",
                "libvirt-certificate",
                "libvirt-client-certificate",
                "migration-tls",
                "migration-tls-force",
                "migration-certificate",
                "migration-client-certificate",
                "hook-active",
                "disk-leases",
                "firewall",
                "console-exposure",
                "instances-path",
                "instances-writable",
                "peer-resolvable",
                "migration-ports",
        };
        Fixture x;

        healthy(&x);
        judge(&x);
        assert_int_equal(x.f.n, ELEMENTSOF(order));
        for (size_t i = 0; i < x.f.n; i++) {
                assert_string_equal(x.f.items[i].code, order[i]);
                assert_int_equal(x.f.items[i].severity, MIG_OK);
        }
        /* post-copy comes before the certificates, when permitted */
        x.s.permit_post_copy = true;
        x.n.unprivileged_userfaultfd = true;
        judge(&x);
        assert_string_equal(x.f.items[3].code, "post-copy");
        done(&x);
}

static void test_store(void **state)
{
        Fixture x;

        healthy(&x);
        expect(&x, "store", MIG_OK, "attached to cluster c1 (dir store)");
        x.n.store_synced = false;
        expect(&x, "store", MIG_WARNING,
               "attached to cluster c1 (dir store); the deny list is not in line with it yet: "
               "nothing starts here");
        x.n.store = NODE_CHECK_STORE_LOST;
        expect(&x, "store", MIG_ERROR,
               "attached to cluster c1 (dir store); the deny list is not in line with it yet: "
               "nothing starts here");
        x.n.store_synced = true;
        expect(&x, "store", MIG_ERROR, "attached to cluster c1 (dir store)");
        x.n.store = NODE_CHECK_STORE_DETACHED;
        x.n.store_detail = "the store does not answer";
        expect(&x, "store", MIG_ERROR, "the store does not answer");
        x.n.store_allowed_unsynced = true;
        expect(&x, "store", MIG_ERROR,
               "the store does not answer (starts allowed anyway by 'hostwardenctl "
               "allow-unsynced-starts')");
        done(&x);
}

static void test_secret_files(void **state)
{
        Fixture x;

        healthy(&x);
        expect(&x, "secret-file-mode", MIG_OK, "No file holds fence_options");
        x.files[0] =
                (NodeCheckSecretFile){ .path = "/etc/hostwarden/hostwarden.conf", .mode = 0640 };
        x.files[1] = (NodeCheckSecretFile){ .path = "/etc/hostwarden/hostwarden.conf.d/p.conf",
                                            .mode = 0600 };
        x.n.secret_files = x.files;
        x.n.n_secret_files = 2;
        expect(&x, "secret-file-mode", MIG_OK, "The files holding fence_options are root's only");

        x.files[0].mode = 0644;
        x.files[0].uid = 0;
        x.files[0].gid = 0;
        x.files[1].error = EACCES;
        judge(&x);
        assert_int_equal(count(&x, "secret-file-mode"), 2);
        expect_nth(&x, "secret-file-mode", 0, MIG_WARNING,
                   "/etc/hostwarden/hostwarden.conf holds fence_options (BMC passwords) and is "
                   "readable by others (mode 0644, owner 0, group 0): chown root:root "
                   "/etc/hostwarden/hostwarden.conf && chmod 0640 /etc/hostwarden/hostwarden.conf");
        expect_nth(&x, "secret-file-mode", 1, MIG_WARNING,
                   "Cannot check /etc/hostwarden/hostwarden.conf.d/p.conf: Permission denied");
        done(&x);
}

static void test_libvirt_listen(void **state)
{
        Fixture x;

        healthy(&x);
        expect(&x, "libvirt-listen", MIG_OK, "libvirt accepts peers on 16514 (TLS)");
        x.n.listen_tls = false;
        x.n.listen_tcp = true;
        expect(&x, "libvirt-listen", MIG_WARNING,
               "libvirt accepts peers on 16509 without TLS: use libvirtd-tls.socket in "
               "production (the seeds: secure the migration streams)");
        x.n.listen_tcp = false;
        expect(&x, "libvirt-listen", MIG_ERROR,
               "libvirt does not listen for peers (neither 16514 nor 16509): enable "
               "libvirtd-tls.socket (or virtproxyd-tls.socket), or live migration cannot "
               "reach this node");
        done(&x);
}

static void test_libvirt_certificates(void **state)
{
        CertCheck *cc;
        Fixture x;

        healthy(&x);
        cc = &x.n.libvirt_server_cert;
        expect(&x, "libvirt-certificate", MIG_OK,
               "libvirt's server certificate /etc/pki/libvirt/servercert.pem is signed by the CA, "
               "valid until 2030-01-01 00:00 UTC");
        expect(&x, "libvirt-client-certificate", MIG_OK,
               "libvirt's client certificate /etc/pki/libvirt/clientcert.pem is signed by the CA, "
               "valid until 2030-01-01 00:00 UTC");

        cc->expiring = true;
        expect(&x, "libvirt-certificate", MIG_WARNING,
               "libvirt's server certificate /etc/pki/libvirt/servercert.pem expires on "
               "2030-01-01 00:00 UTC, in less than 30 days: renew it (libvirtd reads it when it "
               "starts, QEMU at each migration)");
        strcpy(cc->missing_name, "10.0.0.1");
        expect(&x, "libvirt-certificate", MIG_ERROR,
               "libvirt's server certificate /etc/pki/libvirt/servercert.pem does not name "
               "10.0.0.1, which peers connect to ([node] address, name): peers refuse it; issue "
               "it with that name among its subject alternative names");
        cc->expired = true;
        expect(&x, "libvirt-certificate", MIG_ERROR,
               "libvirt's server certificate /etc/pki/libvirt/servercert.pem is expired (valid "
               "until 2030-01-01 00:00 UTC): peers refuse it; renew it");
        cc->expired = false;
        cc->not_yet_valid = true;
        expect(&x, "libvirt-certificate", MIG_ERROR,
               "libvirt's server certificate /etc/pki/libvirt/servercert.pem is not valid yet "
               "(valid until 2030-01-01 00:00 UTC): peers refuse it; renew it");
        cc->signed_by_ca = false;
        expect(&x, "libvirt-certificate", MIG_ERROR,
               "libvirt's server certificate /etc/pki/libvirt/servercert.pem is not signed by "
               "the CA in /etc/pki/CA/cacert.pem: peers refuse it; issue it from the cluster's "
               "CA");
        cc->error = -ENOENT;
        strcpy(cc->detail, "cannot read /etc/pki/CA/cacert.pem: No such file or directory");
        expect(&x, "libvirt-certificate", MIG_ERROR,
               "libvirt's server certificate: cannot read /etc/pki/CA/cacert.pem: No such file "
               "or directory");

        x.n.libvirt_client_cert_present = false;
        expect(&x, "libvirt-client-certificate", MIG_ERROR,
               "/etc/pki/libvirt/clientcert.pem is missing: this node cannot connect to its "
               "peers' libvirt over TLS (migrations from here fail)");
        x.n.libvirt_server_cert_present = false;
        expect(&x, "libvirt-certificate", MIG_WARNING,
               "/etc/pki/libvirt/servercert.pem is missing: libvirtd does not accept TLS "
               "connections, and peers reach this node through qemu+tls:// by default");
        assert_int_equal(count(&x, "libvirt-client-certificate"), 0);
        done(&x);
}

static void test_migration_tls(void **state)
{
        MigrationTlsProbe *p;
        Fixture x;

        healthy(&x);
        p = &x.n.tls_probe;
        expect(&x, "migration-tls", MIG_OK,
               "migration streams are encrypted ([migration] tls = auto) with the certificates "
               "in /etc/pki/qemu");
        expect(&x, "migration-tls-force", MIG_OK,
               "libvirt refuses migrations without TLS (migrate_tls_force = 1), whoever asks for "
               "them");

        /* verify, and the source's client certificate missing */
        strcpy(p->missing_client, "/etc/pki/qemu/client-key.pem");
        expect(&x, "migration-tls", MIG_ERROR,
               "/etc/pki/qemu/client-key.pem is missing: destinations check the source's client "
               "certificate (migrate_tls_x509_verify), so migrations from here fail");
        assert_int_equal(count(&x, "migration-client-certificate"), 0);
        p->verify = false;
        expect(&x, "migration-tls", MIG_OK,
               "migration streams are encrypted ([migration] tls = auto) with the certificates "
               "in /etc/pki/qemu");

        /* yes, with a certificate missing */
        strcpy(p->missing, "/etc/pki/qemu/server-key.pem");
        x.s.migration_tls = MIGRATION_TLS_YES;
        expect(&x, "migration-tls", MIG_ERROR,
               "[migration] tls = yes but /etc/pki/qemu/server-key.pem is missing: every "
               "migration is refused; install QEMU's certificates in /etc/pki/qemu");
        assert_int_equal(count(&x, "migration-certificate"), 0);

        /* auto without certificates, libvirt forcing TLS or not */
        x.s.migration_tls = MIGRATION_TLS_AUTO;
        expect(&x, "migration-tls", MIG_ERROR,
               "/etc/pki/qemu/server-key.pem is missing: migration streams cannot be encrypted "
               "and libvirt forces TLS (migrate_tls_force = 1): every migration is refused; "
               "install QEMU's certificates in /etc/pki/qemu (libvirt's "
               "migrate_tls_x509_cert_dir)");
        p->force = false;
        expect(&x, "migration-tls", MIG_WARNING,
               "/etc/pki/qemu/server-key.pem is missing: migration streams go in the clear "
               "([migration] tls = auto); install QEMU's certificates in /etc/pki/qemu "
               "(libvirt's migrate_tls_x509_cert_dir)");
        /* not on, not forced: nothing to say about force */
        assert_int_equal(count(&x, "migration-tls-force"), 0);

        /* no, libvirt forcing TLS or not */
        x.s.migration_tls = MIGRATION_TLS_NO;
        expect(&x, "migration-tls", MIG_WARNING,
               "[migration] tls = no: migration streams (guest memory and disks) cross the "
               "network in the clear; set tls = auto (the default) once QEMU has certificates");
        p->force = true;
        expect(&x, "migration-tls", MIG_ERROR,
               "[migration] tls = no: migration streams (guest memory and disks) cross the "
               "network in the clear, and libvirt forces TLS (migrate_tls_force = 1 in "
               "qemu.conf): every migration from here is refused");
        done(&x);
}

static void test_migration_tls_force_when_on(void **state)
{
        Fixture x;

        healthy(&x);
        x.n.tls_probe.force = false;
        expect(&x, "migration-tls-force", MIG_WARNING,
               "libvirt still accepts migrations without TLS from other tools (virsh, Nova "
               "without live_migration_with_native_tls): set migrate_tls_force = 1 in "
               "/etc/libvirt/qemu.conf");
        done(&x);
}

static void test_migration_certificates(void **state)
{
        Fixture x;

        healthy(&x);
        strcpy(x.n.migration_cert.missing_name, "node1");
        expect(&x, "migration-certificate", MIG_ERROR,
               "QEMU's server certificate /etc/pki/qemu/server-cert.pem does not name node1, "
               "which is the migration address (this node's host name; no migration_host in "
               "qemu.conf): peers refuse it; issue it with that name among its subject "
               "alternative names");
        x.n.migration_host = "10.0.0.1";
        strcpy(x.n.migration_cert.missing_name, "10.0.0.1");
        expect(&x, "migration-certificate", MIG_ERROR,
               "QEMU's server certificate /etc/pki/qemu/server-cert.pem does not name 10.0.0.1, "
               "which is the migration address (migration_host in qemu.conf): peers refuse it; "
               "issue it with that name among its subject alternative names");
        x.n.migration_client_cert.signed_by_ca = false;
        expect(&x, "migration-client-certificate", MIG_ERROR,
               "QEMU's client certificate /etc/pki/qemu/client-cert.pem is not signed by the CA "
               "in /etc/pki/qemu/ca-cert.pem: peers refuse it; issue it from the cluster's CA");
        done(&x);
}

static void test_post_copy(void **state)
{
        Fixture x;

        healthy(&x);
        judge(&x);
        assert_int_equal(count(&x, "post-copy"), 0); /* not permitted: not judged */
        x.s.permit_post_copy = true;
        expect(&x, "post-copy", MIG_ERROR,
               "[migration] permit_post_copy = yes, but QEMU runs as libvirt-qemu and the kernel "
               "lets it use userfaultfd only with vm.unprivileged_userfaultfd = 1: every "
               "migration with post-copy fails (\"Postcopy is not supported\"); set it in "
               "/etc/sysctl.d/ or permit_post_copy = no");
        x.n.qemu_conf = "user = \"nova\"\n";
        expect(&x, "post-copy", MIG_ERROR,
               "[migration] permit_post_copy = yes, but QEMU runs as nova and the kernel lets it "
               "use userfaultfd only with vm.unprivileged_userfaultfd = 1: every migration with "
               "post-copy fails (\"Postcopy is not supported\"); set it in /etc/sysctl.d/ or "
               "permit_post_copy = no");
        x.n.unprivileged_userfaultfd = true;
        expect(&x, "post-copy", MIG_OK,
               "post-copy permitted; QEMU may use userfaultfd (vm.unprivileged_userfaultfd = 1)");
        x.n.unprivileged_userfaultfd = false;
        x.n.qemu_conf = "user = \"root\"\n";
        expect(&x, "post-copy", MIG_OK, "post-copy permitted; QEMU runs as root");
        x.n.qemu_conf = "user = \"+0\"\n";
        expect(&x, "post-copy", MIG_OK, "post-copy permitted; QEMU runs as root");
        done(&x);
}

static void test_hook(void **state)
{
        Fixture x;

        healthy(&x);
        expect(&x, "hook-active", MIG_OK, "the hook is active in the running virtqemud.service");
        x.n.hook_changed = 300;
        expect(&x, "hook-active", MIG_ERROR,
               "the hook was installed after virtqemud.service started, and libvirt finds hooks "
               "only when it starts: restart virtqemud.service (running guests keep running)");
        x.n.libvirt_unit = NULL;
        expect(&x, "hook-active", MIG_WARNING,
               "neither libvirtd nor virtqemud is running: start it, it loads the hook then");
        x.n.libvirt_bus_error = -ENOENT;
        expect(&x, "hook-active", MIG_WARNING,
               "cannot ask systemd whether libvirtd runs (No such file or directory): try again");
        x.n.hook_installed = false;
        expect(&x, "hook-installed", MIG_ERROR,
               "/etc/libvirt/hooks/qemu.d/50-hostwarden is missing or not executable: reinstall "
               "hostwarden, then restart libvirtd");
        assert_int_equal(count(&x, "hook-active"), 0);
        done(&x);
}

static void test_disk_leases(void **state)
{
        Fixture x;

        healthy(&x);
        expect(&x, "disk-leases", MIG_OK,
               "disk leases are off ([locking] disk_leases = no): the hook's deny list alone "
               "keeps an instance from running twice");
        with_leases(&x);
        expect(&x, "disk-leases", MIG_OK,
               "every disk is leased through virtlockd, in the lock space " LOCKSPACE);
        x.n.leases_conf_changed = 250;
        expect(&x, "disk-leases", MIG_ERROR,
               "set up after virtqemud.service started, and libvirt reads its lock manager only "
               "when it starts: restart virtqemud.service");
        x.n.libvirt_unit = NULL;
        expect(&x, "disk-leases", MIG_WARNING,
               "set up, but neither libvirtd nor virtqemud is running");

        x.n.lockspace_other_fs = true;
        judge(&x);
        assert_int_equal(count(&x, "disk-leases"), 2);
        expect_nth(&x, "disk-leases", 0, MIG_WARNING,
                   "the lock space " LOCKSPACE " is not on the file system of instances_path "
                   "/var/lib/nova/instances: every node must see the same lock files");
        expect_nth(&x, "disk-leases", 1, MIG_WARNING,
                   "set up, but neither libvirtd nor virtqemud is running");

        x.n.lockspace_is_dir = false;
        expect(&x, "disk-leases", MIG_ERROR,
               "the lock space " LOCKSPACE " does not exist: run 'hostwardenctl setup-leases'");

        x.n.lockd_conf = "auto_disk_leases = 1\nrequire_lease_for_disks = 1\n"
                         "file_lockspace_dir = \"/elsewhere\"\n";
        expect(&x, "disk-leases", MIG_ERROR,
               "/etc/libvirt/qemu-lockd.conf sets file_lockspace_dir = /elsewhere, not " LOCKSPACE
               ": run 'hostwardenctl setup-leases', then restart libvirtd");
        x.n.qemu_conf = "user = \"libvirt-qemu\"\n";
        expect(&x, "disk-leases", MIG_ERROR,
               "/etc/libvirt/qemu.conf sets lock_manager = nothing, not lockd: run "
               "'hostwardenctl setup-leases', then restart libvirtd");

        x.n.lockd_conf = NULL;
        x.n.lockd_conf_error = -EACCES;
        expect(&x, "disk-leases", MIG_ERROR,
               "cannot read libvirt's configuration: Permission denied");
        x.n.lockd_conf_error = -ENOENT;
        expect(&x, "disk-leases", MIG_ERROR,
               "/etc/libvirt/qemu-lockd.conf is missing: run 'hostwardenctl setup-leases', then "
               "restart libvirtd");
        /* today's words for a missing qemu.conf name qemu-lockd.conf too (qemu-lockd.conf
         * is then not read): kept as CheckNode always said it */
        x.n.qemu_conf = NULL;
        x.n.qemu_conf_error = -ENOENT;
        x.n.lockd_conf_error = 0;
        expect(&x, "disk-leases", MIG_ERROR,
               "/etc/libvirt/qemu-lockd.conf is missing: run 'hostwardenctl setup-leases', then "
               "restart libvirtd");
        done(&x);
}

static void test_firewall(void **state)
{
        char *conflicts[] = { "table ip legacy, chain INPUT (hook input) has policy drop",
                              "table ip6 other, chain in drops tcp dport 49152", NULL };
        Fixture x;

        healthy(&x);
        expect(&x, "firewall", MIG_OK, "table inet hostwarden matches the configuration");
        assert_int_equal(count(&x, "firewall-conflict"), 0);
        x.n.firewall_state = "stale";
        expect(&x, "firewall", MIG_ERROR,
               "table inet hostwarden is stale: run 'hostwarden-firewall apply' or Reload()");
        x.n.firewall_state = "absent";
        expect(&x, "firewall", MIG_ERROR,
               "table inet hostwarden is absent: run 'hostwarden-firewall apply' or Reload()");

        x.n.firewall_conflicts = conflicts;
        judge(&x);
        assert_int_equal(count(&x, "firewall-conflict"), 2);
        expect_nth(&x, "firewall-conflict", 0, MIG_ERROR, conflicts[0]);
        expect_nth(&x, "firewall-conflict", 1, MIG_ERROR, conflicts[1]);
        x.n.firewall_conflicts = NULL;
        x.n.firewall_conflicts_unknown = true;
        expect(&x, "firewall-conflict", MIG_WARNING, "cannot read the other nftables tables");

        x.n.firewall_state = "unconfigured";
        expect(&x, "firewall", MIG_WARNING,
               "[firewall] migration_sources is empty: hostwarden leaves nftables alone; list the "
               "peers to open the migration ports only while a migration arrives");
        assert_int_equal(count(&x, "firewall-conflict"), 0);
        x.n.firewall_state = "disabled";
        expect(&x, "firewall", MIG_WARNING,
               "[firewall] enable = no: the migration ports are as open as the rest of the host's "
               "firewall leaves them (the seeds: open 49152 and up between all nodes)");
        assert_int_equal(count(&x, "firewall-conflict"), 0);
        done(&x);
}

static void test_console(void **state)
{
        Fixture x;

        healthy(&x);
        expect(&x, "console-exposure", MIG_OK,
               "console listen node, reachable only from console_clients");
        x.s.n_console_clients = 0;
        expect(&x, "console-exposure", MIG_OK, "console listen node, address bound");
        x.s.n_console_clients = 1;
        x.s.console_listen = CONSOLE_LISTEN_ANY;
        expect(&x, "console-exposure", MIG_OK,
               "console listen 0.0.0.0, reachable only from console_clients");
        x.s.firewall_enable = false; /* console_clients then restrict nothing */
        expect(&x, "console-exposure", MIG_WARNING,
               "consoles listen on every address ([console] listen = 0.0.0.0) and nothing "
               "restricts who connects: set [firewall] console_clients to the VNC/SPICE proxies, "
               "or [console] listen = node");
        x.s.firewall_enable = true;
        x.s.n_console_clients = 0;
        judge(&x);
        expect_nth(&x, "console-exposure", 0, MIG_WARNING,
                   "consoles listen on every address ([console] listen = 0.0.0.0) and nothing "
                   "restricts who connects: set [firewall] console_clients to the VNC/SPICE "
                   "proxies, or [console] listen = node");
        done(&x);
}

/* [console] tls = yes: set up as setup-console-tls does, libvirt started after, every running
 * console with TLS; then each thing that breaks it. */
static void test_console_tls(void **state)
{
        static const char prio[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
        char *plain[] = { "guest-a", "guest-b", NULL };
        Fixture x;

        healthy(&x);
        judge(&x);
        assert_int_equal(count(&x, "console-tls"), 0); /* tls = no: nothing to say */
        x.s.console_tls = true;
        x.s.console_tls_priority = (char *)prio;
        assert_int_equal(console_tls_qemu_conf("user = \"libvirt-qemu\"\n", prio, &x.qemu_conf), 0);
        x.n.qemu_conf = x.qemu_conf;
        x.n.console_cert_present = x.n.console_key_present = true;
        x.n.console_cert = good_cert;
        x.n.qemu_conf_changed = 150;
        x.n.n_tls_consoles = 3;
        x.n.n_priority_consoles = 2;
        expect(&x, "console-tls", MIG_WARNING,
               "1 of 3 running console(s) do not have the TLS priority of [console] yet: "
               "hostwardend sets it when a guest starts or arrives (see its journal)");
        x.n.n_priority_consoles = 3;
        expect(&x, "console-tls", MIG_OK,
               "consoles speak VeNCrypt only (x509, client certificates of the CA), TLS priority "
               "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2; 3 running console(s), all with TLS");
        expect(&x, "console-certificate", MIG_OK,
               "The consoles' certificate /etc/pki/libvirt-vnc/server-cert.pem is signed by the "
               "CA, valid until 2030-01-01 00:00 UTC");

        x.n.plain_consoles = plain;
        expect(&x, "console-tls", MIG_WARNING,
               "2 running guest(s) have a VNC console without TLS, started before libvirt had "
               "vnc_tls = 1: guest-a, guest-b; restart them, or migrate them to a node set up "
               "alike");
        x.n.plain_consoles = NULL;

        x.n.qemu_conf_changed = 250;
        expect(&x, "console-tls", MIG_ERROR,
               "set up after virtqemud.service started, and libvirt reads qemu.conf only when it "
               "starts: restart virtqemud.service (running guests keep running)");
        x.n.qemu_conf_changed = 150;

        x.n.console_cert.expired = true;
        expect(&x, "console-certificate", MIG_ERROR,
               "The consoles' certificate /etc/pki/libvirt-vnc/server-cert.pem is expired (valid "
               "until 2030-01-01 00:00 UTC): peers refuse it; renew it");
        x.n.console_cert = good_cert;
        snprintf(x.n.console_cert.missing_name, sizeof(x.n.console_cert.missing_name), "10.0.0.1");
        expect(&x, "console-certificate", MIG_ERROR,
               "The consoles' certificate /etc/pki/libvirt-vnc/server-cert.pem does not name "
               "10.0.0.1, which the console proxies connect to ([node] address, name): peers "
               "refuse it; issue it with that name among its subject alternative names");
        x.n.console_cert = good_cert;

        x.n.console_key_present = false;
        expect(&x, "console-tls", MIG_ERROR,
               "/etc/pki/libvirt-vnc/server-key.pem is missing: QEMU cannot start a guest with a "
               "VNC console; run 'hostwardenctl setup-console-tls'");
        assert_int_equal(count(&x, "console-certificate"), 0);
        x.n.console_key_present = true;

        /* tls_min_version changed since: the priority differs */
        x.s.console_tls_priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
        expect(&x, "console-tls", MIG_ERROR,
               "[console] tls = yes, but /etc/libvirt/qemu.conf sets vnc_tls_priority = "
               "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2, not NORMAL:-VERS-ALL:+VERS-TLS1.3: "
               "consoles are not encrypted as configured; run 'hostwardenctl setup-console-tls', "
               "then restart libvirtd");
        x.s.console_tls_priority = (char *)prio;

        /* never set up */
        x.n.qemu_conf = "user = \"libvirt-qemu\"\n";
        expect(&x, "console-tls", MIG_ERROR,
               "[console] tls = yes, but /etc/libvirt/qemu.conf does not set vnc_tls (= 1): "
               "consoles are not encrypted as configured; run 'hostwardenctl setup-console-tls', "
               "then restart libvirtd");
        x.n.qemu_conf = NULL;
        x.n.qemu_conf_error = -EACCES;
        expect(&x, "console-tls", MIG_ERROR,
               "cannot read /etc/libvirt/qemu.conf: Permission denied");
        done(&x);
}

static void test_instances_path(void **state)
{
        Fixture x;

        healthy(&x);
        expect(&x, "instances-path", MIG_OK,
               "instances_path /var/lib/nova/instances is on shared storage (nfs4), with every "
               "peer's storage mark in it");
        x.n.instances_fs_shared = NULL;
        expect(&x, "instances-path", MIG_OK,
               "instances_path /var/lib/nova/instances is shared with every peer: their storage "
               "marks are in it");
        x.peers[1].has_mark = false;
        expect(&x, "instances-path", MIG_WARNING,
               "instances_path /var/lib/nova/instances (a local file system) does not hold the "
               "storage mark of node3: it does not mount the same directory there, or its "
               "hostwardend has not started since; live migration without block migration needs "
               "it on storage shared by all nodes, mounted at the same path");
        x.peers[0].has_mark = false;
        x.peers[0].no_mark_why = "a different mark"; /* why, when the daemon knows */
        x.n.instances_fs_shared = "glusterfs";
        expect(&x, "instances-path", MIG_WARNING,
               "instances_path /var/lib/nova/instances (glusterfs) does not hold the storage "
               "mark of node2 (a different mark), node3: they do not mount the same directory "
               "there, or their "
               "hostwardend has not started since; live migration without block migration needs "
               "it on storage shared by all nodes, mounted at the same path");
        x.n.n_peers = 0;
        expect(&x, "instances-path", MIG_OK,
               "instances_path /var/lib/nova/instances is on shared storage (glusterfs)");
        x.n.instances_fs_shared = NULL;
        x.n.instances_fs_type = 0xEF53;
        expect(&x, "instances-path", MIG_WARNING,
               "instances_path /var/lib/nova/instances is on a local file system (type 0xef53): "
               "live migration without block migration needs it on storage shared by all nodes, "
               "mounted at the same path");
        x.n.instances_statfs_error = ENOENT;
        expect(&x, "instances-path", MIG_ERROR,
               "instances_path /var/lib/nova/instances is not accessible (No such file or "
               "directory): mount the shared storage there");
        done(&x);
}

static void test_instances_writable(void **state)
{
        Fixture x;

        healthy(&x);
        expect(&x, "instances-writable", MIG_OK,
               "hostwardend writes its storage mark in "
               "/var/lib/nova/instances/.hostwarden-storage");
        x.n.marks_writable_error = EROFS;
        expect(&x, "instances-writable", MIG_ERROR,
               "instances_path /var/lib/nova/instances is read-only for hostwardend: its unit "
               "leaves only /var/lib/nova/instances writable (ProtectSystem=strict); add "
               "ReadWritePaths=/var/lib/nova/instances in a drop-in (systemctl edit hostwardend)");
        x.n.marks_writable_error = ENOENT;
        expect(&x, "instances-writable", MIG_WARNING,
               "/var/lib/nova/instances/.hostwarden-storage does not exist yet: hostwardend has "
               "systemd make it (root's) when it attaches to the cluster store");
        x.n.marks_writable_error = EACCES;
        expect(&x, "instances-writable", MIG_ERROR,
               "hostwardend cannot write its storage mark in "
               "/var/lib/nova/instances/.hostwarden-storage (owner ?): Permission denied; it must "
               "be root's: chown root:root /var/lib/nova/instances/.hostwarden-storage");
        x.n.marks_owner = "nova";
        expect(&x, "instances-writable", MIG_ERROR,
               "hostwardend cannot write its storage mark in "
               "/var/lib/nova/instances/.hostwarden-storage (owner nova): Permission denied; it "
               "must be root's: chown root:root /var/lib/nova/instances/.hostwarden-storage");
        x.n.instances_exists = false; /* instances-path says so */
        judge(&x);
        assert_int_equal(count(&x, "instances-writable"), 0);
        done(&x);
}

static void test_peers_and_ports(void **state)
{
        _cleanup_free_ char *bad = NULL;
        Fixture x;

        healthy(&x);
        expect(&x, "peer-resolvable", MIG_OK, "2 peer(s) resolve");
        x.n.n_peers = 0;
        expect(&x, "peer-resolvable", MIG_OK, "0 peer(s) resolve");
        x.n.n_peers = 2;
        x.peers[0].resolve = EAI_NONAME;
        x.peers[1].resolve = EAI_AGAIN;
        judge(&x);
        assert_int_equal(count(&x, "peer-resolvable"), 2);
        assert_true(asprintf(&bad,
                             "peer node2: address '10.0.0.2' does not resolve (%s): name "
                             "resolution must be identical on all compute nodes",
                             gai_strerror(EAI_NONAME)) > 0);
        expect_nth(&x, "peer-resolvable", 0, MIG_ERROR, bad);
        free(bad);
        assert_true(asprintf(&bad,
                             "peer node3: address '10.0.0.3' does not resolve (%s): name "
                             "resolution must be identical on all compute nodes",
                             gai_strerror(EAI_AGAIN)) > 0);
        expect_nth(&x, "peer-resolvable", 1, MIG_ERROR, bad);

        expect(&x, "migration-ports", MIG_OK,
               "migration ports 49152-49215 as in /etc/libvirt/qemu.conf");
        x.s.port_min = 50000;
        x.s.port_max = 50063;
        expect(&x, "migration-ports", MIG_ERROR,
               "libvirt uses migration ports 49152-49215 (/etc/libvirt/qemu.conf) but "
               "[migration] port_min/port_max say 50000-50063: make them agree, or the firewall "
               "opens the wrong ports");
        done(&x);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_healthy_node_in_the_daemons_order),
                cmocka_unit_test(test_store),
                cmocka_unit_test(test_secret_files),
                cmocka_unit_test(test_libvirt_listen),
                cmocka_unit_test(test_libvirt_certificates),
                cmocka_unit_test(test_migration_tls),
                cmocka_unit_test(test_migration_tls_force_when_on),
                cmocka_unit_test(test_migration_certificates),
                cmocka_unit_test(test_post_copy),
                cmocka_unit_test(test_hook),
                cmocka_unit_test(test_disk_leases),
                cmocka_unit_test(test_firewall),
                cmocka_unit_test(test_console),
                cmocka_unit_test(test_console_tls),
                cmocka_unit_test(test_instances_path),
                cmocka_unit_test(test_instances_writable),
                cmocka_unit_test(test_peers_and_ports),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
