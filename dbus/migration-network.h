/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "config.h"
#include "migcheck.h"
#include "preflight.h"

/*
 * The migration network (lib/mignet.h): when p's destination has a [peer] migration_address,
 * adds to the parameters of virDomainMigrateToURI3 the URI, listen address and TLS name that
 * send the memory and disk streams there. Nothing when it has none. -ENOMEM, or -EINVAL for
 * an address the configuration should not have let through.
 */
int migration_network_params(const Preflight *p, bool tls, virTypedParameterPtr *params, int *n,
                             int *max);

/* CheckMigration, in its worker: false when p's destination has no migration address or it
 * can be reached from here; else true and why in buf (the migration-network finding). */
bool migration_network_unreachable(const Preflight *p, char *buf, size_t size);

/* CheckNode's part (lib/mignet.h, mignet_judge): the configuration copied in the event loop
 * (*ret NULL when no migration address is configured: nothing to say), then looked at and
 * judged in the check's worker. */
typedef struct MigNetCheck MigNetCheck;
int migration_network_check_new(const Config *c, MigNetCheck **ret);
int migration_network_check_run(MigNetCheck *k, MigFindings *out);
MigNetCheck *migration_network_check_free(MigNetCheck *k);
