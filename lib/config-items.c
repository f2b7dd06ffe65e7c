/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The keys of hostwarden.conf: the names of its enum values, a parser per kind of value and
 * the table of every key with its parser, its place in Config and what it expects. config.c
 * reads the files and holds the Config object.
 */

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "console-tls.h"
#include "spelling.h"

static const char *const console_listen_table[_CONSOLE_LISTEN_MAX] = {
        [CONSOLE_LISTEN_ANY] = "0.0.0.0",
        [CONSOLE_LISTEN_NODE] = "node",
        [CONSOLE_LISTEN_KEEP] = "keep",
};
static const char *const store_backend_table[_STORE_BACKEND_MAX] = {
        [STORE_BACKEND_DIR] = "dir",
        [STORE_BACKEND_ETCD] = "etcd",
};
static const char *const disable_action_table[_DISABLE_ACTION_MAX] = {
        [DISABLE_ACTION_NONE] = "none",
        [DISABLE_ACTION_STOP] = "stop",
};
static const char *const timeout_action_table[_TIMEOUT_ACTION_MAX] = {
        [TIMEOUT_ACTION_ABORT] = "abort",
        [TIMEOUT_ACTION_FORCE_COMPLETE] = "force_complete",
};

static const char *const migration_tls_table[_MIGRATION_TLS_MAX] = {
        [MIGRATION_TLS_AUTO] = "auto",
        [MIGRATION_TLS_YES] = "yes",
        [MIGRATION_TLS_NO] = "no",
};

static const char *const console_tls_version_table[_CONSOLE_TLS_VERSION_MAX] = {
        [CONSOLE_TLS_VERSION_DEFAULT] = "default",
        [CONSOLE_TLS_VERSION_1_1] = "tlsv1.1",
        [CONSOLE_TLS_VERSION_1_2] = "tlsv1.2",
        [CONSOLE_TLS_VERSION_1_3] = "tlsv1.3",
};

static const char *const ha_mode_table[_HA_MODE_MAX] = {
        [HA_OFF] = "off",
        [HA_RESTART] = "restart",
};

DEFINE_STRING_TABLE_LOOKUP(ha_mode, HaMode, _HA_MODE_INVALID);

static const char *const maintenance_strategy_table[_MAINTENANCE_STRATEGY_MAX] = {
        [MAINTENANCE_MIGRATE] = "migrate",
        [MAINTENANCE_MIGRATE_OR_SHUTDOWN] = "migrate-or-shutdown",
        [MAINTENANCE_SHUTDOWN] = "shutdown",
};

DEFINE_STRING_TABLE_LOOKUP(maintenance_strategy, MaintenanceStrategy,
                           _MAINTENANCE_STRATEGY_INVALID);
DEFINE_STRING_TABLE_TO_STRING(console_tls_version, ConsoleTlsVersion);
DEFINE_STRING_TABLE_TO_STRING(migration_tls, MigrationTls);
DEFINE_STRING_TABLE_TO_STRING(console_listen, ConsoleListen);
DEFINE_STRING_TABLE_TO_STRING(store_backend, StoreBackend);
DEFINE_STRING_TABLE_TO_STRING(disable_action, DisableAction);
DEFINE_STRING_TABLE_TO_STRING(timeout_action, TimeoutAction);

/* ---- value parsers ---------------------------------------------------------------------- */

/* The value, copied; a secret's previous value (a key given twice) is wiped. */
static int parse_string(const ConfigItem *item, const char *value, void *dst)
{
        char **p = dst, *copy;

        if (isempty(value))
                return -EINVAL;
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        if (item->secret)
                erase_and_free(*p);
        else
                free(*p);
        *p = copy;
        return 0;
}

static int parse_hostname(const ConfigItem *item, const char *value, void *dst)
{
        if (!hostname_is_valid(value))
                return -EINVAL;
        return parse_string(item, value, dst);
}

static int parse_policy_name(const ConfigItem *item, const char *value, void *dst)
{
        if (!mig_policy_name_is_valid(value))
                return -EINVAL;
        return parse_string(item, value, dst);
}

static int parse_address(const ConfigItem *item, const char *value, void *dst)
{
        if (!ip_address_is_valid(value, NULL) && !hostname_is_valid(value))
                return -EINVAL;
        return parse_string(item, value, dst);
}

static int parse_path(const ConfigItem *item, const char *value, void *dst)
{
        if (value[0] != '/' || strstr(value, "/../") || strlen(value) >= PATH_MAX)
                return -EINVAL;
        return parse_string(item, value, dst);
}

/* node_exporter reads *.prom files only; empty: no textfile */
static int parse_optional_textfile(const ConfigItem *item, const char *value, void *dst)
{
        char **p = dst;
        size_t n = strlen(value);

        if (isempty(value)) {
                free(*p);
                *p = NULL;
                return 0;
        }
        if (n < 6 || !streq(value + n - 5, ".prom"))
                return -EINVAL;
        return parse_path(item, value, dst);
}

static int parse_unit(const ConfigItem *item, const char *value, void *dst)
{
        static const char *const suffixes[] = { ".service", ".target", ".socket", ".scope" };
        size_t n = strlen(value);
        bool ok = false;

        if (n == 0 || n > 255 ||
            strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
                          "XYZ0123456789:-_.\\@") != n)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t l = strlen(suffixes[i]);
                if (n > l && streq(value + n - l, suffixes[i]))
                        ok = true;
        }
        if (!ok)
                return -EINVAL;
        return parse_string(item, value, dst);
}

static int parse_uri(const ConfigItem *item, const char *value, void *dst)
{
        const char *sep = strstr(value, "://");

        if (!sep || sep == value || strpbrk(value, " \t\"'"))
                return -EINVAL;
        return parse_string(item, value, dst);
}

static int parse_fence_agent(const ConfigItem *item, const char *value, void *dst)
{
        size_t n = strlen(value);

        if (value[0] == '/')
                return parse_path(item, value, dst);
        if (n == 0 || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
                return -EINVAL;
        return parse_string(item, value, dst);
}

static int parse_key_value_lines(const ConfigItem *item, const char *value, void *dst)
{
        const char *p = value;

        for (;;) {
                size_t n = strcspn(p, "\n");
                const char *eq = memchr(p, '=', n);

                /* Each line must be key=value with a non-empty key made of agent option chars. */
                if (!eq || eq == p ||
                    strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_-") != (size_t)(eq - p))
                        return -EINVAL;
                p += n;
                if (!*p)
                        break;
                p++;
        }
        return parse_string(item, value, dst);
}

static int parse_bool(const ConfigItem *item, const char *value, void *dst)
{
        int r = parse_boolean(value);

        (void)item;
        if (r < 0)
                return r;
        *(bool *)dst = r;
        return 0;
}

/* auto, or a boolean (the key was one before auto existed): yes or no */
static int parse_migration_tls(const ConfigItem *item, const char *value, void *dst)
{
        int r;

        (void)item;
        if (streq(value, "auto")) {
                *(MigrationTls *)dst = MIGRATION_TLS_AUTO;
                return 0;
        }
        r = parse_boolean(value);
        if (r < 0)
                return r;
        *(MigrationTls *)dst = r ? MIGRATION_TLS_YES : MIGRATION_TLS_NO;
        return 0;
}

static int parse_duration_item(const ConfigItem *item, const char *value, void *dst)
{
        usec_t u;
        int r;

        r = parse_duration(value, &u);
        if (r < 0)
                return r;
        if (u < item->min || u > item->max)
                return -ERANGE;
        *(usec_t *)dst = u;
        return 0;
}

static int parse_unsigned(const ConfigItem *item, const char *value, void *dst)
{
        uint64_t v;
        int r;

        r = parse_uint_range(value, item->min, item->max, &v);
        if (r < 0)
                return r;
        *(unsigned *)dst = (unsigned)v;
        return 0;
}

static int parse_uint64(const ConfigItem *item, const char *value, void *dst)
{
        return parse_uint_range(value, item->min, item->max, (uint64_t *)dst);
}

static int parse_enum(const ConfigItem *item, const char *value, void *dst)
{
        for (size_t i = 0; i < item->n_names; i++)
                if (item->names[i] && streq(item->names[i], value)) {
                        *(int *)dst = (int)i;
                        return 0;
                }
        return -EINVAL;
}

static int parse_console_listen(const ConfigItem *item, const char *value, void *dst)
{
        /* "::" is the IPv6 spelling of the same wildcard. */
        if (streq(value, "::")) {
                *(int *)dst = CONSOLE_LISTEN_ANY;
                return 0;
        }
        return parse_enum(item, value, dst);
}

/* tlsv1.2, or the seeds' (Nova's) spelling tlsv1_2 */
static int parse_console_tls_version(const ConfigItem *item, const char *value, void *dst)
{
        char name[16];
        size_t n = strlen(value);

        if (n >= sizeof(name))
                return -EINVAL;
        memcpy(name, value, n + 1);
        if (startswith(name, "tlsv1_"))
                name[5] = '.';
        return parse_enum(item, name, dst);
}

static int parse_console_tls_ciphers(const ConfigItem *item, const char *value, void *dst)
{
        char **l = NULL;
        int r;

        (void)item;
        r = console_tls_ciphers_parse(value, &l);
        if (r < 0)
                return r;
        strv_free(*(char ***)dst);
        *(char ***)dst = l;
        return 0;
}

static bool url_is_valid(const char *s)
{
        return startswith(s, "http://") || startswith(s, "https://");
}

/* A comma or white space separated list whose every item passes valid(). */
static int parse_list(const char *value, void *dst, bool (*valid)(const char *s))
{
        char **l = NULL;
        int r;

        r = strv_split_list(value, &l);
        if (r < 0)
                return r;
        STRV_FOREACH (s, l)
                if (!valid(*s)) {
                        strv_free(l);
                        return -EINVAL;
                }
        strv_free(*(char ***)dst);
        *(char ***)dst = l;
        return 0;
}

static int parse_cidr_list(const ConfigItem *item, const char *value, void *dst)
{
        return parse_list(value, dst, cidr_is_valid);
}

static bool node_name_in_list_is_valid(const char *s)
{
        return hostname_is_valid(s);
}

static int parse_node_list(const ConfigItem *item, const char *value, void *dst)
{
        return parse_list(value, dst, node_name_in_list_is_valid);
}

/* "0.5" or "50%", kept per mille. */
static int parse_fraction(const ConfigItem *item, const char *value, void *dst)
{
        uint64_t whole, part = 0, scale = 1000;
        const char *p = value;
        size_t digits = 0;

        size_t len = strlen(value);

        if (len > 0 && value[len - 1] == '%') {
                _cleanup_free_ char *n = strndup(value, len - 1);
                int r;

                if (!n)
                        return -ENOMEM;
                r = parse_uint_range(n, 0, 100, &whole);
                if (r < 0)
                        return r;
                *(unsigned *)dst = (unsigned)(whole * 10);
                return 0;
        }
        if (*p != '0' && *p != '1')
                return -EINVAL;
        whole = (uint64_t)(*p++ - '0');
        if (*p == '.') {
                for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                        if (digits < 3) {
                                scale /= 10;
                                part += (uint64_t)(*p - '0') * scale;
                        }
                if (digits == 0)
                        return -EINVAL;
        }
        if (*p || whole * 1000 + part > 1000)
                return -EINVAL;
        *(unsigned *)dst = (unsigned)(whole * 1000 + part);
        return 0;
}

static int parse_url_list(const ConfigItem *item, const char *value, void *dst)
{
        return parse_list(value, dst, url_is_valid);
}

/* A name etcd can have that survives a configuration line: printable, no blanks. */
static int parse_etcd_user(const ConfigItem *item, const char *value, void *dst)
{
        if (isempty(value) || strlen(value) > 255)
                return -EINVAL;
        for (const char *p = value; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f)
                        return -EINVAL;
        return parse_string(item, value, dst);
}

#define C(field)     offsetof(Config, field)
#define P(field)     offsetof(ConfigPeer, field)
#define ENUM(table)  .names = table, .n_names = ELEMENTSOF(table)
#define STRING       .value = CONFIG_VALUE_STRING
#define LIST         .value = CONFIG_VALUE_LIST
#define DURATION_MAX (365ULL * 24 * USEC_PER_HOUR)

const ConfigItem config_items[] = {
        { "node", "name", parse_hostname, C(node.name), "a host name", STRING },
        { "node", "address", parse_address, C(node.address), "an IP address or a host name",
          STRING },
        { "node", "migration_address", parse_address, C(node.migration_address),
          "an IP address or a host name", STRING },
        { "node", "instances_path", parse_path, C(node.instances_path), "an absolute path",
          STRING },
        { "node", "compute_unit", parse_unit, C(node.compute_unit),
          "a systemd unit name such as nova-compute.service", STRING },
        { "node", "disable_action", parse_enum, C(node.disable_action), "none or stop",
          ENUM(disable_action_table) },

        { "cluster", "store", parse_enum, C(cluster.store), "dir or etcd",
          ENUM(store_backend_table) },
        { "cluster", "state_dir", parse_path, C(cluster.state_dir), "an absolute path", STRING },
        { "cluster", "etcd_endpoints", parse_url_list, C(cluster.etcd_endpoints),
          "a list of https:// URLs (http:// with etcd_insecure = yes)", .multiline = true, LIST },
        { "cluster", "etcd_cacert", parse_path, C(cluster.etcd_cacert), "an absolute path",
          STRING },
        { "cluster", "etcd_cert", parse_path, C(cluster.etcd_cert), "an absolute path", STRING },
        { "cluster", "etcd_key", parse_path, C(cluster.etcd_key), "an absolute path", STRING },
        { "cluster", "etcd_user", parse_etcd_user, C(cluster.etcd_user),
          "an etcd user name (no blanks)", STRING },
        { "cluster", "etcd_password", parse_string, C(cluster.etcd_password), "a password",
          .secret = true, STRING },
        { "cluster", "etcd_insecure", parse_bool, C(cluster.etcd_insecure), "yes or no" },
        { "cluster", "heartbeat_interval", parse_duration_item, C(cluster.heartbeat_interval),
          "a duration from 100ms to 1h, such as 10s", 100 * USEC_PER_MSEC, USEC_PER_HOUR },
        { "cluster", "down_after", parse_duration_item, C(cluster.down_after),
          "a duration from 1s to 1h, such as 60s", USEC_PER_SEC, USEC_PER_HOUR },
        { "cluster", "max_migrations", parse_unsigned, C(cluster.max_migrations),
          "an integer from 0 (no cap) to 1024", 0, 1024 },

        { "migration", "max_concurrent", parse_unsigned, C(migration.max_concurrent),
          "an integer from 1 to 64", 1, 64 },
        /* the name DESIGN.md gives it beside max_incoming; max_concurrent is Nova's */
        { "migration", "max_outgoing", parse_unsigned, C(migration.max_concurrent),
          "an integer from 1 to 64", 1, 64 },
        { "migration", "max_incoming", parse_unsigned, C(migration.max_incoming),
          "an integer from 0 (no limit) to 64", 0, 64 },
        { "migration", "bandwidth", parse_uint64, C(migration.bandwidth),
          "a bandwidth in MiB/s from 0 (unlimited) to 1048576", 0, 1048576 },
        { "migration", "downtime", parse_duration_item, C(migration.downtime),
          "a duration from 10ms to 1h, such as 500ms", 10 * USEC_PER_MSEC, USEC_PER_HOUR },
        { "migration", "downtime_steps", parse_unsigned, C(migration.downtime_steps),
          "an integer from 1 to 1000", 1, 1000 },
        { "migration", "downtime_delay", parse_duration_item, C(migration.downtime_delay),
          "a duration per GiB from 0s to 1h, such as 75s", 0, USEC_PER_HOUR },
        { "migration", "stall_iterations", parse_unsigned, C(migration.stall_iterations),
          "an integer from 1 to 1000", 1, 1000 },
        { "migration", "completion_timeout", parse_duration_item, C(migration.completion_timeout),
          "a duration per GiB from 0s (no timeout) to 1h, such as 800s", 0, USEC_PER_HOUR },
        { "migration", "timeout_action", parse_enum, C(migration.timeout_action),
          "abort or force_complete", ENUM(timeout_action_table) },
        { "migration", "permit_auto_converge", parse_bool, C(migration.permit_auto_converge),
          "yes or no" },
        { "migration", "permit_post_copy", parse_bool, C(migration.permit_post_copy), "yes or no" },
        { "migration", "tls", parse_migration_tls, C(migration.tls), "auto, yes or no" },
        { "migration", "port_min", parse_unsigned, C(migration.port_min),
          "a port from 1024 to 65535", 1024, 65535 },
        { "migration", "port_max", parse_unsigned, C(migration.port_max),
          "a port from 1024 to 65535", 1024, 65535 },
        { "migration", "announce_rounds", parse_unsigned, C(migration.announce_rounds),
          "an integer from 0 (no announcement) to 1000", 0, 1000 },
        { "migration", "announce_interval", parse_duration_item, C(migration.announce_interval),
          "a duration from 10ms to 10s, such as 100ms", 10 * USEC_PER_MSEC, 10 * USEC_PER_SEC },
        { "migration", "shutdown_timeout", parse_duration_item, C(migration.shutdown_timeout),
          "a duration from 0s (destroy at once) to 1h, such as 60s", 0, USEC_PER_HOUR },
        { "migration", "confirm_window", parse_duration_item, C(migration.confirm_window),
          "a duration from 0s (never) to 8760h, such as 1h", 0, 365 * 24 * USEC_PER_HOUR },
        { "migration", "policy", parse_policy_name, C(migration.policy),
          "a policy name: a built-in (nova, minimal-downtime, post-copy-when-stalled, "
          "suspend-if-needed) or a [policy NAME] section",
          STRING },

        { "firewall", "enable", parse_bool, C(firewall.enable), "yes or no" },
        { "firewall", "migration_sources", parse_cidr_list, C(firewall.migration_sources),
          "a list of IPv4/IPv6 addresses or CIDRs such as 192.0.2.0/24, 2001:db8::/64",
          .multiline = true, LIST },
        { "firewall", "open_window", parse_duration_item, C(firewall.open_window),
          "a duration from 10s to 24h, such as 10min", 10 * USEC_PER_SEC, 24 * USEC_PER_HOUR },
        { "firewall", "console_clients", parse_cidr_list, C(firewall.console_clients),
          "a list of IPv4/IPv6 addresses or CIDRs such as 192.0.2.10, 2001:db8::/64",
          .multiline = true, LIST },
        { "firewall", "console_port_min", parse_unsigned, C(firewall.console_port_min),
          "a port from 1 to 65535", 1, 65535 },
        { "firewall", "console_port_max", parse_unsigned, C(firewall.console_port_max),
          "a port from 1 to 65535", 1, 65535 },

        { "console", "listen", parse_console_listen, C(console.listen), "0.0.0.0, node or keep",
          ENUM(console_listen_table) },
        { "console", "tls", parse_bool, C(console.tls), "yes or no" },
        { "console", "tls_min_version", parse_console_tls_version, C(console.tls_min_version),
          "default, tlsv1.1, tlsv1.2 or tlsv1.3", ENUM(console_tls_version_table) },
        { "console", "tls_ciphers", parse_console_tls_ciphers, C(console.tls_ciphers),
          "GnuTLS cipher names separated by colons, such as AES-256-GCM:CHACHA20-POLY1305 "
          "(QEMU uses GnuTLS: not OpenSSL suite names; 'gnutls-cli --list' shows them)",
          LIST },

        { "hook", "refuse_incoming_when_disabled", parse_bool,
          C(hook.refuse_incoming_when_disabled), "yes or no" },
        { "locking", "disk_leases", parse_bool, C(locking.disk_leases), "yes or no" },
        { "locking", "lockspace_dir", parse_path, C(locking.lockspace_dir), "an absolute path",
          STRING },
        { "history", "archive_after", parse_duration_item, C(history.archive_after),
          "a duration from 0s to 3650d, such as 90d", 0, 3650 * USEC_PER_DAY },
        { "history", "purge_after", parse_duration_item, C(history.purge_after),
          "a duration from 0s to 3650d, such as 14d", 0, 3650 * USEC_PER_DAY },

        { "recovery", "enable", parse_bool, C(recovery.enable), "yes or no" },
        { "recovery", "confirm_after", parse_duration_item, C(recovery.confirm_after),
          "a duration from 0s to 1h, such as 30s", 0, USEC_PER_HOUR },
        { "recovery", "max_lost", parse_fraction, C(recovery.max_lost),
          "a fraction of the nodes from 0 to 1, such as 0.5 or 50%" },
        { "recovery", "reserved_nodes", parse_node_list, C(recovery.reserved_nodes),
          "a list of node names", .multiline = true, LIST },
        { "recovery", "self_fence", parse_bool, C(recovery.self_fence), "yes or no" },
        { "recovery", "self_fence_after", parse_duration_item, C(recovery.self_fence_after),
          "a duration from 1s to 1h, such as 60s", USEC_PER_SEC, USEC_PER_HOUR },
        { "recovery", "max_restart", parse_unsigned, C(recovery.max_restart),
          "an integer from 0 to 100", 0, 100 },
        { "recovery", "max_relocate", parse_unsigned, C(recovery.max_relocate),
          "an integer from 0 to 100", 0, 100 },
        { "recovery", "default_ha", parse_enum, C(recovery.default_ha), "off or restart",
          ENUM(ha_mode_table) },

        { "maintenance", "strategy", parse_enum, C(maintenance.strategy),
          "migrate, migrate-or-shutdown or shutdown", ENUM(maintenance_strategy_table) },

        { "metrics", "textfile", parse_optional_textfile, C(metrics.textfile),
          "an absolute path ending in .prom, or nothing (no metrics)", STRING },
        { "metrics", "interval", parse_duration_item, C(metrics.interval),
          "a duration from 1s to 1h, such as 15s", USEC_PER_SEC, USEC_PER_HOUR },

        { "peer", "address", parse_address, P(address), "an IP address or a host name", STRING },
        { "peer", "migration_address", parse_address, P(migration_address),
          "an IP address or a host name", STRING },
        { "peer", "libvirt_uri", parse_uri, P(libvirt_uri),
          "a libvirt URI such as qemu+tls://node2.example.com/system", STRING },
        { "peer", "fence_agent", parse_fence_agent, P(fence_agent),
          "a fence agent name such as fence_ipmilan, or an absolute path", STRING },
        { "peer", "fence_options", parse_key_value_lines, P(fence_options),
          "key=value lines (indent the lines after the first)", .multiline = true, .secret = true,
          STRING },
};

_Static_assert(ELEMENTSOF(config_items) == CONFIG_N_ITEMS, "CONFIG_N_ITEMS is the number of keys");

const ConfigItem *config_item_find(const char *section, const char *key)
{
        for (size_t i = 0; i < CONFIG_N_ITEMS; i++)
                if (streq(config_items[i].section, section) && streq(config_items[i].key, key))
                        return &config_items[i];
        return NULL;
}

/* The known names: the keys of section, or (section NULL) the sections. */
static size_t known_names(const char *section, const char *names[static CONFIG_N_ITEMS])
{
        size_t n = 0;

        for (size_t i = 0; i < CONFIG_N_ITEMS; i++) {
                const char *v = section ? config_items[i].key : config_items[i].section;
                bool seen = false;

                if (section && !streq(config_items[i].section, section))
                        continue;
                for (size_t k = 0; k < n && !seen; k++)
                        seen = streq(names[k], v);
                if (!seen)
                        names[n++] = v;
        }
        return n;
}

const char *config_key_suggestion(const char *section, const char *key)
{
        const char *names[CONFIG_N_ITEMS];

        return spelling_closest(key, names, known_names(section, names));
}

const char *config_section_suggestion(const char *section)
{
        const char *names[CONFIG_N_ITEMS];

        return spelling_closest(section, names, known_names(NULL, names));
}

bool config_section_known(const char *section)
{
        for (size_t i = 0; i < CONFIG_N_ITEMS; i++)
                if (streq(config_items[i].section, section))
                        return true;
        return false;
}

void config_items_free(void *base, bool peer)
{
        for (size_t i = 0; i < CONFIG_N_ITEMS; i++) {
                const ConfigItem *item = &config_items[i];
                void *dst = (char *)base + item->offset;

                if (streq(item->section, "peer") != peer)
                        continue;
                if (item->value == CONFIG_VALUE_LIST)
                        strv_free(*(char ***)dst);
                else if (item->value == CONFIG_VALUE_STRING && item->secret)
                        erase_and_free(*(char **)dst);
                else if (item->value == CONFIG_VALUE_STRING)
                        free(*(char **)dst);
        }
}
