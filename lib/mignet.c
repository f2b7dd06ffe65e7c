/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration network's parameters for one migration (mignet.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mignet.h"
#include "util.h"

void mignet_params_done(MigNetParams *p)
{
        free(p->uri);
        free(p->listen_address);
        free(p->tls_destination);
        *p = (MigNetParams){};
}

int mignet_admitted_sources(char *const *migration_sources, const ConfigPeer *peers, size_t n_peers,
                            char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        int r;

        if (strv_length(migration_sources) == 0) {
                *ret = NULL;
                return 0;
        }
        STRV_FOREACH (s, migration_sources) {
                r = strv_extend(&l, *s);
                if (r < 0)
                        return r;
        }
        /* in the order of the peers; an address also in a CIDR above is merged by the
         * firewall (fw_ranges_from_cidrs) */
        for (size_t i = 0; i < n_peers; i++) {
                const char *a = peers[i].migration_address;

                if (!a || !ip_address_is_valid(a, NULL) || strv_contains(l, a))
                        continue;
                r = strv_extend(&l, a);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int mignet_params(const char *peer_name, const char *migration_address, bool tls, MigNetParams *ret)
{
        MigNetParams p = {};
        int family = 0;

        if (isempty(migration_address)) {
                *ret = p;
                return 0;
        }
        if (!ip_address_is_valid(migration_address, &family) &&
            !hostname_is_valid(migration_address))
                return -EINVAL;
        /* no port: libvirt on the destination takes one from its migration_port_min/max
         * range, the range the firewall's window opens */
        if (asprintf(&p.uri, "tcp://%s%s%s", family == AF_INET6 ? "[" : "", migration_address,
                     family == AF_INET6 ? "]" : "") < 0) {
                p.uri = NULL;
                return -ENOMEM;
        }
        p.listen_address = strdup(migration_address);
        /* QEMU checks the destination's certificate against the host of the URI unless
         * told otherwise; the certificate names the node, not its migration address */
        if (tls && !isempty(peer_name))
                p.tls_destination = strdup(peer_name);
        if (!p.listen_address || (tls && !isempty(peer_name) && !p.tls_destination)) {
                mignet_params_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}
