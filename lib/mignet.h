/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "certcheck.h"
#include "config.h"
#include "migcheck.h"

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

/*
 * Whether a peer's migration address can be used from here, as a migration would: the route
 * (a UDP connect(), which sends nothing) and a TCP connection to libvirt's TLS port on that
 * address (the peer's firewall admits this node's migration address there as on the
 * migration ports; QEMU's ports are not touched: a connection there could be taken for an
 * incoming migration's stream).
 */
typedef struct MigNetReach {
        int route_error;   /* 0, or -errno: no route (-ENETUNREACH), no such name (-ENOENT) */
        char source[64];   /* this node's address the kernel sends from; "" when unknown */
        int connect_error; /* 0 or -ECONNREFUSED (a reset is an answer): reached; else not */
} MigNetReach;

bool mignet_reached(const MigNetReach *r);
/* Why a migration to dest_name over migration_address would fail, in buf; false when it
 * would not (CheckMigration's migration-network finding). */
bool mignet_unreachable(const char *dest_name, const char *migration_address, const MigNetReach *r,
                        char *buf, size_t size);

typedef struct MigNetPeerFacts {
        const char *name;
        const char *migration_address; /* NULL: none, nothing to judge */
        MigNetReach reach;
} MigNetPeerFacts;

/* What CheckNode saw of the migration network (dbus/migration-network.c looks). */
typedef struct MigNetFacts {
        const char *node_name;
        const char *migration_address; /* [node] migration_address; NULL: none */
        /* binding a socket to it: 0 (an address of this node), -EADDRNOTAVAIL (not), or
         * another -errno (a name that does not resolve: -ENOENT) */
        int local_error;
        /* migrations to here are encrypted: QEMU's server certificate, checked for the node's
         * name (sources with a migration network check it against the name) */
        bool tls;
        const char *cert_path;
        CertCheck cert;
        MigNetPeerFacts *peers;
        size_t n_peers;
} MigNetFacts;

/* CheckNode's findings about the migration network, appended to out; none at all when
 * neither this node nor any peer has a migration address. < 0 only when out of memory. */
int mignet_judge(const MigNetFacts *f, MigFindings *out);
