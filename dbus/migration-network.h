/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "preflight.h"

/*
 * The migration network (lib/mignet.h): when p's destination has a [peer] migration_address,
 * adds to the parameters of virDomainMigrateToURI3 the URI, listen address and TLS name that
 * send the memory and disk streams there. Nothing when it has none. -ENOMEM, or -EINVAL for
 * an address the configuration should not have let through.
 */
int migration_network_params(const Preflight *p, bool tls, virTypedParameterPtr *params, int *n,
                             int *max);
