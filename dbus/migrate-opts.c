/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus-args.h"
#include "errors.h"
#include "migrate-opts.h"
#include "migtls.h"
#include "util.h"

#define OPTION_KEYS                                                                         \
        "block (b), bandwidth (t, MiB/s), auto-converge (b), post-copy (b), tls (b), "      \
        "max-downtime-ms (t), completion-timeout (t, seconds per GiB), timeout-action (s: " \
        "abort or force_complete), policy (s)"

void migrate_options_defaults(const Config *c, MigrateOptions *ret)
{
        MigrationTlsProbe probe;

        migration_tls_probe_node(&probe);
        *ret = (MigrateOptions){
                .block = false,
                .bandwidth = c->migration.bandwidth,
                /* as Nova: auto-converge when permitted and post-copy is not */
                .auto_converge =
                        c->migration.permit_auto_converge && !c->migration.permit_post_copy,
                .post_copy = c->migration.permit_post_copy,
                .tls = migration_tls_default(c->migration.tls, &probe),
                .max_downtime_ms = c->migration.downtime / USEC_PER_MSEC,
                .completion_timeout = c->migration.completion_timeout,
                .timeout_action = c->migration.timeout_action,
        };
}

static int read_bool(sd_bus_message *msg, const char *key, const char *type, bool *ret,
                     sd_bus_error *error)
{
        int v, r;

        if (!streq(type, "b"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option '%s' must be a boolean (b), not '%s'", key, type);
        r = sd_bus_message_read(msg, "v", "b", &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

static int read_uint(sd_bus_message *msg, const char *key, const char *type, uint64_t max,
                     uint64_t *ret, sd_bus_error *error)
{
        uint64_t v;
        uint32_t u;
        int r;

        if (streq(type, "t"))
                r = sd_bus_message_read(msg, "v", "t", &v);
        else if (streq(type, "u")) {
                r = sd_bus_message_read(msg, "v", "u", &u);
                v = u;
        } else
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option '%s' must be an unsigned integer (t or u), not "
                                         "'%s'",
                                         key, type);
        if (r < 0)
                return r;
        if (v > max)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option '%s' is %llu; expected at most %llu", key,
                                         (unsigned long long)v, (unsigned long long)max);
        *ret = v;
        return 0;
}

int migrate_options_read_uint(sd_bus_message *msg, const char *key, const char *type, uint64_t max,
                              uint64_t *ret, sd_bus_error *error)
{
        return read_uint(msg, key, type, max, ret, error);
}

/* What migrate_options_read() learns from the entries besides the options themselves. */
typedef struct OptionsRead {
        MigrateOptions *opts;
        const Config *config;
        bool asked_auto_converge, asked_post_copy, asked_tls;
} OptionsRead;

/* "policy" s: a policy this node has and permits, or InvalidArgs saying which it has */
static int read_policy(sd_bus_message *msg, const char *type, const Config *c, MigrateOptions *opts,
                       sd_bus_error *error)
{
        const MigSchedule *s;
        const char *name;
        char why[256];
        int r;

        if (!streq(type, "s"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'policy' must be a string (s), not '%s'", type);
        r = sd_bus_message_read(msg, "v", "s", &name);
        if (r < 0)
                return r;
        s = mig_policy_name_is_valid(name) ? config_find_policy(c, name) : NULL;
        if (!s)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'policy' is '%s'; expected a migration policy of "
                                         "this node: nova, minimal-downtime, "
                                         "post-copy-when-stalled, suspend-if-needed, or a [policy "
                                         "NAME] section of its configuration",
                                         name);
        if (config_policy_permitted(c, s, why, sizeof(why)) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'policy': %s",
                                         why);
        snprintf(opts->policy, sizeof(opts->policy), "%s", name);
        return 0;
}

static int read_option(sd_bus_message *msg, const char *key, const char *type, void *userdata,
                       sd_bus_error *error)
{
        OptionsRead *u = userdata;
        MigrateOptions *opts = u->opts;
        uint64_t v;
        int r;

        if (streq(key, "block"))
                r = read_bool(msg, key, type, &opts->block, error);
        else if (streq(key, "cold")) /* CheckMigration's: MigrateCold's checks */
                r = read_bool(msg, key, type, &opts->cold, error);
        else if (streq(key, "auto-converge")) {
                r = read_bool(msg, key, type, &opts->auto_converge, error);
                u->asked_auto_converge = opts->auto_converge;
        } else if (streq(key, "post-copy")) {
                r = read_bool(msg, key, type, &opts->post_copy, error);
                u->asked_post_copy = opts->post_copy;
        } else if (streq(key, "tls")) {
                r = read_bool(msg, key, type, &opts->tls, error);
                u->asked_tls = true;
        } else if (streq(key, "bandwidth"))
                r = read_uint(msg, key, type, 1024 * 1024, &opts->bandwidth, error);
        else if (streq(key, "max-downtime-ms")) {
                r = read_uint(msg, key, type, 3600 * 1000, &v, error);
                if (r >= 0 && v == 0)
                        r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                              "Option 'max-downtime-ms' must be at "
                                              "least 1");
                if (r >= 0)
                        opts->max_downtime_ms = v;
        } else if (streq(key, "completion-timeout")) {
                r = read_uint(msg, key, type, 7 * 24 * 3600, &v, error);
                if (r >= 0)
                        opts->completion_timeout = v * USEC_PER_SEC;
        } else if (streq(key, "timeout-action")) {
                const char *s;

                if (!streq(type, "s"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option 'timeout-action' must be a "
                                                 "string (s), not '%s'",
                                                 type);
                r = sd_bus_message_read(msg, "v", "s", &s);
                if (r >= 0 && streq(s, "abort"))
                        opts->timeout_action = TIMEOUT_ACTION_ABORT;
                else if (r >= 0 && streq(s, "force_complete"))
                        opts->timeout_action = TIMEOUT_ACTION_FORCE_COMPLETE;
                else if (r >= 0)
                        r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                              "Option 'timeout-action' is '%s'; expected "
                                              "abort or force_complete",
                                              s);
        } else if (streq(key, "policy"))
                r = read_policy(msg, type, u->config, opts, error);
        else
                r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                      "Unknown option '%s'; expected " OPTION_KEYS, key);
        return r;
}

int migrate_options_read(sd_bus_message *msg, const Config *c, MigrateOptions *opts,
                         sd_bus_error *error)
{
        OptionsRead u = { .opts = opts, .config = c };
        int r;

        r = bus_options_foreach(msg, read_option, &u, error);
        if (r < 0)
                return r;

        if (u.asked_auto_converge && !c->migration.permit_auto_converge)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'auto-converge' is not permitted on this node: "
                                         "[migration] permit_auto_converge = no");
        opts->post_copy_asked = u.asked_post_copy;
        if (u.asked_post_copy && !c->migration.permit_post_copy)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'post-copy' is not permitted on this node: "
                                         "[migration] permit_post_copy = no");
        /* no silent downgrade: a node that says yes encrypts every migration */
        if (u.asked_tls && !opts->tls && c->migration.tls == MIGRATION_TLS_YES)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'tls' cannot be false on this node: [migration] "
                                         "tls = yes encrypts every migration stream");
        return 0;
}

int migrate_options_choose_policy(const Config *c, MigrateOptions *opts, const char *domain_policy,
                                  char *error, size_t size)
{
        const char *name = !isempty(opts->policy)    ? opts->policy
                           : !isempty(domain_policy) ? domain_policy
                                                     : c->migration.policy;
        const MigSchedule *s = config_find_policy(c, name);

        if (!s)
                return snprintf(error, size,
                                "The domain's metadata names migration policy '%s', which this "
                                "node does not have (built-in: nova, minimal-downtime, "
                                "post-copy-when-stalled, suspend-if-needed; or a [policy NAME] "
                                "section); set it with a known policy, or pass option 'policy'",
                                name),
                       -ENOENT;
        if (config_policy_permitted(c, s, error, size) < 0)
                return -EPERM;
        opts->schedule = *s;
        if (mig_schedule_uses(s, MIG_ACTION_AUTO_CONVERGE))
                opts->auto_converge = true;
        if (mig_schedule_uses(s, MIG_ACTION_POST_COPY))
                opts->post_copy = true;
        return 0;
}

int migrate_options_check_tls(const Config *c, const MigrateOptions *opts, sd_bus_error *error)
{
        MigrationTls mode = c->migration.tls;
        MigrationTlsProbe probe;

        migration_tls_probe_node(&probe);
        if (!opts->tls && probe.force)
                return sd_bus_error_setf(
                        error, HW_ERROR_CONSTRAINT,
                        "A migration without TLS is refused here: libvirt forces TLS "
                        "(migrate_tls_force = 1 in /etc/libvirt/qemu.conf); %s%s",
                        mode == MIGRATION_TLS_NO ? "set [migration] tls = auto or yes"
                        : mode == MIGRATION_TLS_AUTO && !isempty(probe.missing)
                                ? "[migration] tls = auto finds no certificates: missing "
                                : "leave option 'tls' out",
                        mode == MIGRATION_TLS_AUTO && !isempty(probe.missing) ? probe.missing : "");
        if (opts->tls && !isempty(probe.missing))
                return sd_bus_error_setf(
                        error, HW_ERROR_CONSTRAINT,
                        "Migration TLS is on (%s) but %s is missing: QEMU "
                        "encrypts the migration stream with the certificates "
                        "in libvirt's migrate_tls_x509_cert_dir (%s); install "
                        "them%s",
                        mode == MIGRATION_TLS_YES ? "[migration] tls = yes" : "option 'tls'",
                        probe.missing, probe.dir,
                        mode == MIGRATION_TLS_YES ? "" : ", or leave option 'tls' out");
        return 0;
}
