/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migschedule.h"
#include "util.h"

/*
 * hostwarden.conf (DESIGN.md §3): /etc/hostwarden/hostwarden.conf, then
 * hostwarden.conf.d/ *.conf in lexical order, later values win. A bad value is an error
 * naming file, line, key and what was expected; unknown sections and keys are warnings.
 */

/* Debian's prometheus-node-exporter reads its textfile collector's files from there */
#define METRICS_TEXTFILE_DEFAULT "/var/lib/prometheus/node-exporter/hostwarden.prom"

typedef enum ConsoleListen {
        CONSOLE_LISTEN_ANY,  /* "0.0.0.0" (or "::"): the wildcard of the guest's address family */
        CONSOLE_LISTEN_NODE, /* "node": [node] address */
        CONSOLE_LISTEN_KEEP, /* "keep": never rewrite */
        _CONSOLE_LISTEN_MAX,
} ConsoleListen;

typedef enum StoreBackend {
        STORE_BACKEND_DIR,
        STORE_BACKEND_ETCD,
        _STORE_BACKEND_MAX,
} StoreBackend;

typedef enum DisableAction {
        DISABLE_ACTION_NONE,
        DISABLE_ACTION_STOP,
        _DISABLE_ACTION_MAX,
} DisableAction;

typedef enum TimeoutAction {
        TIMEOUT_ACTION_ABORT,
        TIMEOUT_ACTION_FORCE_COMPLETE,
        _TIMEOUT_ACTION_MAX,
} TimeoutAction;

/* [migration] tls: auto = on when this node has QEMU's certificates (migtls.h). */
typedef enum MigrationTls {
        MIGRATION_TLS_AUTO,
        MIGRATION_TLS_YES,
        MIGRATION_TLS_NO,
        _MIGRATION_TLS_MAX,
} MigrationTls;

/* [console] tls_min_version: the oldest TLS version a VNC console accepts (console-tls.h). */
typedef enum ConsoleTlsVersion {
        CONSOLE_TLS_VERSION_DEFAULT, /* GnuTLS's defaults, as QEMU has them */
        CONSOLE_TLS_VERSION_1_1,
        CONSOLE_TLS_VERSION_1_2,
        CONSOLE_TLS_VERSION_1_3,
        _CONSOLE_TLS_VERSION_MAX,
} ConsoleTlsVersion;

const char *console_listen_to_string(ConsoleListen l);
const char *console_tls_version_to_string(ConsoleTlsVersion v);
const char *migration_tls_to_string(MigrationTls t);
const char *store_backend_to_string(StoreBackend b);
const char *disable_action_to_string(DisableAction a);
const char *timeout_action_to_string(TimeoutAction a);

/* A guest's HA mode (DESIGN.md §11; lib/ha.h): what recovery does when its node or its QEMU
 * fails. */
typedef enum HaMode {
        HA_OFF,     /* nothing: an operator decides */
        HA_RESTART, /* restarted on a QEMU crash, rebuilt elsewhere after a node failure */
        _HA_MODE_MAX,
        _HA_MODE_INVALID = -EINVAL,
} HaMode;

const char *ha_mode_to_string(HaMode m); /* "off", "restart" */
HaMode ha_mode_from_string(const char *s);

/* What maintenance does with a running guest (DESIGN.md §11, docs/maintenance.md): its
 * <hostwarden:guest maintenance=...> or [maintenance] strategy. */
typedef enum MaintenanceStrategy {
        MAINTENANCE_MIGRATE,             /* live-migrate it; blocked when it cannot */
        MAINTENANCE_MIGRATE_OR_SHUTDOWN, /* live-migrate it, or shut it down when it cannot */
        MAINTENANCE_SHUTDOWN,            /* shut it down here */
        _MAINTENANCE_STRATEGY_MAX,
        _MAINTENANCE_STRATEGY_INVALID = -EINVAL,
} MaintenanceStrategy;

/* "migrate", "migrate-or-shutdown", "shutdown" */
const char *maintenance_strategy_to_string(MaintenanceStrategy s);
MaintenanceStrategy maintenance_strategy_from_string(const char *s);

typedef struct ConfigPeer {
        char *name;
        char *address;
        char *libvirt_uri; /* default qemu+tls://ADDRESS/system */
        /* its address on the migration network; NULL: none, libvirt chooses */
        char *migration_address;
        char *fence_agent;
        char *fence_options; /* key=value lines; a secret: never log it */
        char *file;          /* where the [peer NAME] section was (last) opened */
        unsigned line;
} ConfigPeer;

/* A [policy NAME] section: a migration policy (migschedule.h) of this node. */
typedef struct ConfigPolicy {
        MigSchedule schedule;
        char *file; /* where the section was (last) opened */
        unsigned line;
} ConfigPolicy;

typedef struct Config {
        struct {
                char *name; /* default: the host name */
                char *address;
                char *migration_address; /* on the migration network; NULL: none */
                char *instances_path;
                char *compute_unit;
                DisableAction disable_action;
        } node;
        struct {
                StoreBackend store;
                char *state_dir; /* default <instances_path>/.hostwarden */
                char **etcd_endpoints;
                char *etcd_cacert; /* NULL: the system's trust store */
                char *etcd_cert, *etcd_key;
                char *etcd_user;
                char *etcd_password; /* a secret: never log it */
                bool etcd_insecure;  /* http:// endpoints allowed */
                usec_t heartbeat_interval;
                usec_t down_after;
                unsigned max_migrations; /* live migrations in the cluster at once, 0: no cap */
        } cluster;
        ConfigPeer *peers;
        size_t n_peers;
        struct {
                unsigned max_concurrent; /* outgoing at once ("max_outgoing") */
                unsigned max_incoming;   /* incoming at once, 0: no limit */
                uint64_t bandwidth;      /* MiB/s, 0 = unlimited */
                usec_t downtime;
                unsigned downtime_steps;
                usec_t downtime_delay; /* per GiB */
                unsigned stall_iterations;
                usec_t completion_timeout; /* per GiB */
                TimeoutAction timeout_action;
                bool permit_auto_converge;
                bool permit_post_copy;
                MigrationTls tls;
                unsigned port_min, port_max;
                unsigned announce_rounds; /* announce-self after a migration, a rebuild; 0 = off */
                usec_t announce_interval;
                usec_t shutdown_timeout; /* cold migration: ACPI shutdown, then destroy */
                usec_t confirm_window;   /* cold migration: confirmed after, 0 = never */
                char *policy;            /* the default migration policy's name */
        } migration;
        ConfigPolicy *policies; /* [policy NAME] sections */
        size_t n_policies;
        struct {
                bool enable;
                char **migration_sources; /* CIDRs */
                /* derived: migration_sources and the peers' migration addresses (mignet.h) */
                char **migration_admitted;
                usec_t open_window;
                char **console_clients; /* CIDRs */
                unsigned console_port_min, console_port_max;
        } firewall;
        struct {
                ConsoleListen listen;
                bool tls; /* VeNCrypt between the proxies and QEMU (console-tls.h) */
                ConsoleTlsVersion tls_min_version;
                char **tls_ciphers; /* GnuTLS cipher names, NULL: GnuTLS's defaults */
        } console;
        struct {
                bool refuse_incoming_when_disabled;
        } hook;
        struct {
                bool disk_leases;    /* libvirt's lockd leases, the second line */
                char *lockspace_dir; /* default <instances_path>/.leases */
        } locking;
        struct {
                /* automatic recovery (docs/recovery.md): off unless enable = yes */
                bool enable;
                usec_t confirm_after;  /* down for down_after plus this: fenced and rebuilt */
                unsigned max_lost;     /* per mille of the nodes: more look down, nobody fenced */
                char **reserved_nodes; /* rebuilt there first */
                bool self_fence;       /* no heartbeat for self_fence_after: guests stop, off */
                usec_t self_fence_after;
                unsigned max_restart;  /* a guest's crashes restarted here in HA_RESTART_WINDOW */
                unsigned max_relocate; /* then moved, at most this many times */
                HaMode default_ha;     /* of a guest without its own setting (ha.h) */
        } recovery;
        struct {
                usec_t archive_after; /* history and deleted instances move to the archive */
                usec_t purge_after;   /* archived entries are deleted, after their move */
        } history;
        struct {
                /* of a guest without its own maintenance="..." (docs/maintenance.md) */
                MaintenanceStrategy strategy;
        } maintenance;
        struct {
                /* node_exporter's textfile hostwardend writes (docs/metrics.md); NULL: none */
                char *textfile;
                usec_t interval; /* written this often, and soon after each outcome */
        } metrics;

        char **files;        /* the files read, in order */
        char **secret_files; /* those of them that set a secret ([peer] fence_options) */
} Config;

typedef enum ConfigDiagLevel {
        CONFIG_DIAG_WARNING,
        CONFIG_DIAG_ERROR,
} ConfigDiagLevel;

typedef struct ConfigDiag {
        ConfigDiagLevel level;
        char *file;    /* NULL when not about a file */
        unsigned line; /* 0 when not about a line */
        char *message;
} ConfigDiag;

typedef struct ConfigDiags {
        ConfigDiag *items;
        size_t n;
        size_t n_errors;
} ConfigDiags;

void config_diags_clear(ConfigDiags *d);
/* "FILE:LINE: message" into buf. */
const char *config_diag_format(const ConfigDiag *d, char *buf, size_t size);

/* The migration policy NAME: a built-in or a [policy NAME] section; NULL when neither. */
const MigSchedule *config_find_policy(const Config *c, const char *name);
/* Whether this node's [migration] permit_* let policy s run: -EPERM, with why in error. */
int config_policy_permitted(const Config *c, const MigSchedule *s, char *error, size_t size);
/* A copy of what the policies of c are, for a worker thread. */
int config_copy_policies(const Config *c, MigPolicySet *ret);

/* A Config with every default applied (node.name from the host name). */
int config_new(Config **ret);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/*
 * Reads conf_dir/hostwarden.conf (a missing file means defaults) and its drop-ins, then
 * checks values that depend on each other. Warnings and errors are appended to diags;
 * returns -EINVAL when there was at least one error, and then writes no *ret.
 */
int config_load(const char *conf_dir, ConfigDiags *diags, Config **ret);
/* The same, but no secret ([peer] fence_options, [cluster] etcd_password) is parsed or
 * kept: they are NULL, and a bad value there is no error. For the programs that have no use
 * for them (the hook, hostwarden-firewall, hostwardenctl): only hostwardend, which runs the
 * fence agents, holds the BMC passwords in memory. */
int config_load_without_secrets(const char *conf_dir, ConfigDiags *diags, Config **ret);
/* The same with the store's credentials ([cluster] etcd_password) kept: for hostwardenctl's
 * commands that open the store themselves (init-cluster). */
int config_load_with_store_secrets(const char *conf_dir, ConfigDiags *diags, Config **ret);

/* Parses one file's text into c (used by config_load and the fuzzer). */
int config_parse_text(Config *c, const char *filename, const char *text, ConfigDiags *diags);
/* Cross-key checks and derived defaults, after all files are parsed. */
int config_finish(Config *c, ConfigDiags *diags);

const ConfigPeer *config_find_peer(const Config *c, const char *name);

/* What is wrong with the mode and group of a file that holds a secret, or NULL: readable or
 * writable by others, or readable or writable by a group other than root's (hostwardend, the
 * one reader of the secrets, runs as root). */
const char *config_secret_file_exposure(unsigned mode, unsigned gid);
