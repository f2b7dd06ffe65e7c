/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "certcheck.h"
#include "config.h"
#include "migcheck.h"
#include "migtls.h"
#include "util.h"

/*
 * CheckNode() (DESIGN.md §7): this node's readiness for live migration, each finding as
 * (severity, code, message), the message saying what to do. The daemon looks (files, /proc,
 * netlink, systemd, name lookups, the store) and writes what it saw into NodeFacts
 * (dbus/check.c); node_check_judge() turns those facts into the findings, with no I/O, so
 * that a unit test can ask "given this node, what does CheckNode say?".
 */

#define LIBVIRT_CA          "/etc/pki/CA/cacert.pem"
#define LIBVIRT_SERVER_CERT "/etc/pki/libvirt/servercert.pem"
#define LIBVIRT_CLIENT_CERT "/etc/pki/libvirt/clientcert.pem"

/* What the daemon is configured with (copied from its Config; the judge only reads it). */
typedef struct NodeCheckSettings {
        char *instances_path;
        bool disk_leases;
        char *lockspace_dir;
        bool firewall_enable;
        size_t n_console_clients;
        ConsoleListen console_listen;
        unsigned port_min, port_max;
        MigrationTls migration_tls;
        bool permit_post_copy;
        const char *hook_link; /* the hook's link in libvirt's qemu.d */
        bool console_tls;
        char *console_tls_priority; /* console_tls_priority() of [console], "" for QEMU's */
} NodeCheckSettings;

/* The cluster store as the daemon sees it (dbus/store-attach.h, in fewer words). */
typedef enum NodeCheckStore {
        NODE_CHECK_STORE_ATTACHED,
        NODE_CHECK_STORE_LOST,     /* attached, the last heartbeat not written */
        NODE_CHECK_STORE_DETACHED, /* not attached (yet): waiting, unreachable, foreign ... */
} NodeCheckStore;

typedef struct NodeCheckPeer {
        char *name;
        char *address;
        bool has_mark; /* its storage mark is in instances_path */
        /* without it, why (static text; NULL: not said): "no mark file", "a different
         * mark", "no mark recorded", "node records unreadable" */
        const char *no_mark_why;
        int resolve; /* getaddrinfo()'s result for address: 0 or an EAI_* code */
} NodeCheckPeer;

/* A file holding fence_options (BMC passwords). */
typedef struct NodeCheckSecretFile {
        char *path;
        int error; /* stat()'s errno, 0 when it worked */
        unsigned mode, uid, gid;
} NodeCheckSecretFile;

typedef struct NodeFacts {
        /* the store and the synced / allow-unsynced markers */
        NodeCheckStore store;
        char *store_detail;
        bool store_synced, store_allowed_unsynced;

        NodeCheckSecretFile *secret_files;
        size_t n_secret_files;

        /* a TCP socket listens on libvirt's TLS (16514) and plain (16509) ports */
        bool listen_tls, listen_tcp;

        /* libvirt's qemu.conf: its text (NULL when unreadable, qemu_conf_error says why) */
        char *qemu_conf;
        int qemu_conf_error;
        bool unprivileged_userfaultfd; /* vm.unprivileged_userfaultfd = 1 */
        MigrationTlsProbe tls_probe;
        /* the migration address QEMU's server certificate must name: migration_host in
         * qemu.conf (NULL or "" when not set), else the host name */
        char *migration_host;
        char hostname[256];
        /* libvirt's and QEMU's certificates: each CertCheck read only when the file is there */
        bool libvirt_server_cert_present, libvirt_client_cert_present;
        CertCheck libvirt_server_cert, libvirt_client_cert;
        CertCheck migration_cert, migration_client_cert;

        /* the hook's link exists and is executable; when it was created */
        bool hook_installed;
        usec_t hook_changed;

        /* the running libvirt daemon and when it started (realtime); NULL when neither runs,
         * or when systemd could not be asked (libvirt_bus_error < 0) */
        const char *libvirt_unit;
        usec_t libvirt_started;
        int libvirt_bus_error;

        /* [locking] disk_leases: qemu-lockd.conf's text (read only once qemu.conf was),
         * the lock space, and the last change of libvirt's two files */
        char *lockd_conf;
        int lockd_conf_error;
        bool lockspace_is_dir;
        bool lockspace_other_fs; /* not on instances_path's file system */
        usec_t leases_conf_changed;

        /* "active", "absent", "stale", "unknown", "disabled", "unconfigured"
         * (firewall_state_of()); the other nftables tables' conflicts with ours */
        const char *firewall_state;
        bool firewall_conflicts_unknown;
        char **firewall_conflicts;

        /* instances_path: statfs()'s errno (0: it worked), its type, the shared file system
         * it is on (NULL: none known); whether hostwardend may write its storage marks there
         * (0 or an errno) and, when not, who owns their directory ("?" unknown) */
        int instances_statfs_error;
        unsigned long instances_fs_type;
        const char *instances_fs_shared;
        bool instances_exists;
        int marks_writable_error;
        char *marks_owner;

        NodeCheckPeer *peers;
        size_t n_peers;

        /* migration_port_min/max in qemu.conf (libvirt's defaults when not set) */
        unsigned qemu_port_min, qemu_port_max;

        /* [console] tls = yes: the certificate in libvirt's VNC directory (read when it is
         * there), its key, qemu.conf's last change, and the running guests' VNC consoles
         * (from QEMU's command lines): how many have TLS, the names of those without */
        bool console_cert_present, console_key_present;
        CertCheck console_cert;
        usec_t qemu_conf_changed;
        size_t n_tls_consoles;
        char **plain_consoles;
        /* of the running consoles, those hostwardend set [console]'s priority on */
        size_t n_priority_consoles;
} NodeFacts;

void node_facts_done(NodeFacts *f);

/* Appends CheckNode's findings for facts to out; < 0 only when out of memory. */
int node_check_judge(const NodeCheckSettings *s, const NodeFacts *facts, MigFindings *out);
