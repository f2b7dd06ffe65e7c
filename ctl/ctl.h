/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "config.h"

#define DEST       "org.hostwarden.Warden1"
#define PATH       "/org/hostwarden/Warden1"
#define NODE_IFACE "org.hostwarden.Warden1.Node"
#define MIG_IFACE  "org.hostwarden.Warden1.Migration"

extern bool arg_json;
extern bool arg_ask_password;
extern bool arg_block;
extern bool arg_wait;
extern bool arg_cold;
extern bool arg_watch;
extern uint64_t arg_bandwidth; /* MiB/s, 0: the node's default */
extern const char *arg_policy; /* migrate: the migration policy, NULL: the default */
extern bool arg_live;
extern bool arg_insist; /* force-down, force-up: ForceDownWithOptions insist */
extern const char *arg_to;
extern const char *arg_from;
extern const char *arg_name;   /* init-cluster --name */
extern const char *arg_reason; /* allow-unsynced-starts --reason */
extern bool arg_adopt;         /* init-cluster --adopt */
extern const char *arg_since;  /* history --since */
extern bool arg_dry_run;       /* setup-console-tls, archive --dry-run */
extern char **arg_rest;        /* arguments after the verb */
extern int arg_n_rest;
extern const char *arg_priority; /* ha --priority */
extern const char *arg_deadline; /* maintenance enter --deadline */
extern bool arg_abort;           /* maintenance cancel --abort */
extern bool arg_return;          /* maintenance exit --return */

const char *error_message(const sd_bus_error *e, int r);

/* A call to hostwardend; while watching (--watch), without D-Bus activation: a watch must not
 * start a hostwardend the operator stopped. */
int ctl_call(sd_bus *bus, const char *path, const char *iface, const char *member,
             sd_bus_error *error, sd_bus_message **reply, const char *types, ...);
/* The string properties names (NULL-terminated) of iface at path into values ("" when not
 * there); values[i] must be NULL or allocated; the caller frees them. One GetAll call. */
int ctl_get_strings(sd_bus *bus, const char *path, const char *iface, sd_bus_error *error,
                    const char *const *names, char **values);
void json_string(const char *s);
/* The node's configuration (hostwarden.conf and its drop-ins), its diagnostics on stderr;
 * NULL (said on stderr) when it cannot be used. For the commands that run without
 * hostwardend. */
Config *ctl_load_config(bool store_secrets);

int verb_migrate(sd_bus *bus);
int verb_migrations(sd_bus *bus);
int verb_overview(sd_bus *bus);
int verb_instances(sd_bus *bus);
int verb_setup_leases(sd_bus *bus);
int verb_setup_console_tls(sd_bus *bus);
int verb_init_cluster(sd_bus *bus);
int verb_allow_unsynced_starts(sd_bus *bus);
int verb_migration(sd_bus *bus);
int verb_fence(sd_bus *bus);
int verb_evacuate(sd_bus *bus);
int verb_rebuild(sd_bus *bus);
int verb_history(sd_bus *bus);
int verb_archive(sd_bus *bus);
int verb_ha(sd_bus *bus);
int verb_maintenance(sd_bus *bus);
