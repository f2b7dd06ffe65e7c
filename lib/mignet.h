/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/*
 * The migration network (docs/migration.md, "Migration network"): a peer with [peer]
 * migration_address gets the memory stream and the disks' NBD streams on that address, while
 * the libvirt control connection (its libvirt_uri) stays on its address. What the migration
 * engine passes to virDomainMigrateToURI3 for it is decided here; dbus/migration-network.c
 * turns it into libvirt's typed parameters.
 */

typedef struct MigNetParams {
        /* VIR_MIGRATE_PARAM_URI: "tcp://ADDRESS" (an IPv6 address in brackets), without a
         * port, so that the destination's libvirt still picks one of its migration ports */
        char *uri;
        /* VIR_MIGRATE_PARAM_LISTEN_ADDRESS: the destination's QEMU and its NBD server listen
         * on the migration address only */
        char *listen_address;
        /* VIR_MIGRATE_PARAM_TLS_DESTINATION: the peer's name, which its certificate names,
         * when the streams are encrypted; NULL without TLS */
        char *tls_destination;
} MigNetParams;

/* The parameters for a migration to peer_name, whose migration address is migration_address
 * (NULL or "": the peer has none, and *ret is left empty: libvirt's defaults, the
 * destination's migration_host). -EINVAL for an address that is neither an IP address nor
 * a host name. */
int mignet_params(const char *peer_name, const char *migration_address, bool tls,
                  MigNetParams *ret);
void mignet_params_done(MigNetParams *p);

/*
 * What the firewall admits to the migration ports and libvirt's ports (docs/firewall.md):
 * [firewall] migration_sources, and the peers' migration addresses, from which they send
 * their streams (the kernel picks a source's address on the migration network to reach the
 * destination's). Only IP addresses: a migration_address given as a host name must be
 * covered by migration_sources (CheckNode says so when it is not). NULL when
 * migration_sources is empty: then there is no table, whatever the peers have.
 */
int mignet_admitted_sources(char *const *migration_sources, const ConfigPeer *peers, size_t n_peers,
                            char ***ret);
