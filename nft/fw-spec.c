/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The table's specification and its digest: no libnftnl here, the hook links this. */
#include <string.h>

#include "fw.h"

void fw_spec_from_config(const Config *c, FwSpec *ret)
{
        *ret = (FwSpec){
                /* with the peers' migration addresses (mignet.h) */
                .migration_sources = c->firewall.migration_admitted,
                .console_clients = c->firewall.console_clients,
                .migration_port_min = c->migration.port_min,
                .migration_port_max = c->migration.port_max,
                .console_port_min = c->firewall.console_port_min,
                .console_port_max = c->firewall.console_port_max,
                .open_window = c->firewall.open_window,
        };
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
        const uint8_t *p = data;

        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

uint64_t fw_spec_digest(const FwSpec *s)
{
        /* includes the layout version: a new release's table is never taken for the old */
        uint64_t h = fnv1a(0xcbf29ce484222325ULL, "hostwarden-fw-2", 15);
        unsigned ports[] = { s->migration_port_min, s->migration_port_max, s->console_port_min,
                             s->console_port_max };

        h = fnv1a(h, ports, sizeof(ports));
        h = fnv1a(h, &s->open_window, sizeof(s->open_window));
        for (int list = 0; list < 2; list++) {
                char *const *l = list == 0 ? s->migration_sources : s->console_clients;
                h = fnv1a(h, "|", 1);
                for (char *const *i = l; i && *i; i++)
                        h = fnv1a(h, *i, strlen(*i) + 1);
        }
        return h;
}

bool fw_spec_active(const FwSpec *s)
{
        return s->migration_sources && s->migration_sources[0];
}
