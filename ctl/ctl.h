/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#define DEST       "org.hostwarden.Warden1"
#define PATH       "/org/hostwarden/Warden1"
#define NODE_IFACE "org.hostwarden.Warden1.Node"
#define MIG_IFACE  "org.hostwarden.Warden1.Migration"

extern bool arg_json;
extern bool arg_ask_password;
extern bool arg_block;
extern bool arg_wait;
extern bool arg_watch;
extern uint64_t arg_bandwidth; /* MiB/s, 0: the node's default */
extern bool arg_live;
extern const char *arg_to;
extern const char *arg_from;
extern char **arg_rest; /* arguments after the verb */
extern int arg_n_rest;

const char *error_message(const sd_bus_error *e, int r);
void json_string(const char *s);

int verb_migrate(sd_bus *bus);
int verb_migrations(sd_bus *bus);
int verb_overview(sd_bus *bus);
int verb_instances(sd_bus *bus);
int verb_migration(sd_bus *bus);
int verb_fence(sd_bus *bus);
int verb_evacuate(sd_bus *bus);
int verb_rebuild(sd_bus *bus);
