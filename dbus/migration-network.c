/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration network's parameters of one migration (migration-network.h). */
#include <errno.h>

#include "log.h"
#include "mignet.h"
#include "migration-network.h"
#include "util.h"

int migration_network_params(const Preflight *p, bool tls, virTypedParameterPtr *params, int *n,
                             int *max)
{
        _cleanup_(mignet_params_done) MigNetParams net = {};
        int r;

        r = mignet_params(p->dest_name, p->dest_migration_address, tls, &net);
        if (r < 0 || !net.uri)
                return r;
        log_debug("Migration to %s: streams to %s (listen %s), TLS name %s", p->dest_name, net.uri,
                  net.listen_address, strna(net.tls_destination));
        if (virTypedParamsAddString(params, n, max, VIR_MIGRATE_PARAM_URI, net.uri) < 0 ||
            virTypedParamsAddString(params, n, max, VIR_MIGRATE_PARAM_LISTEN_ADDRESS,
                                    net.listen_address) < 0 ||
            (net.tls_destination &&
             virTypedParamsAddString(params, n, max, VIR_MIGRATE_PARAM_TLS_DESTINATION,
                                     net.tls_destination) < 0))
                return -ENOMEM;
        return 0;
}
