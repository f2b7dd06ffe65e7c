/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration network's parameters for one migration (mignet.h). */
#include <errno.h>
#include <stdarg.h>
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

bool mignet_reached(const MigNetReach *r)
{
        return r->route_error == 0 && (r->connect_error == 0 || r->connect_error == -ECONNREFUSED);
}

bool mignet_unreachable(const char *dest_name, const char *migration_address, const MigNetReach *r,
                        char *buf, size_t size)
{
        if (isempty(migration_address) || mignet_reached(r))
                return false;
        if (r->route_error < 0)
                snprintf(buf, size,
                         "%s's migration address %s cannot be reached from this node (%s): "
                         "its memory and disk streams would go there; check this node's "
                         "network and [peer %s] migration_address",
                         dest_name, migration_address, strerror(-r->route_error), dest_name);
        else
                snprintf(buf, size,
                         "%s's migration address %s does not answer from %s (%s): the link is "
                         "down, or %s's firewall drops this node's migration address (its "
                         "[peer] migration_address for this node must be %s)",
                         dest_name, migration_address, isempty(r->source) ? "here" : r->source,
                         strerror(-r->connect_error), dest_name,
                         isempty(r->source) ? "this node's" : r->source);
        return true;
}

static int add(MigFindings *out, MigSeverity sev, const char *code, const char *format, ...)
        _printf_(4, 5);
static int add(MigFindings *out, MigSeverity sev, const char *code, const char *format, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        return mig_findings_add(out, sev, code, "%s", msg);
}

static int judge_node(const MigNetFacts *f, MigFindings *out)
{
        const char *a = f->migration_address;

        if (!a)
                return add(out, MIG_WARNING, "migration-address",
                           "[node] migration_address is not set while peers have one: migrations "
                           "to this node use libvirt's migration_host, and the peers' firewalls "
                           "admit this node's address on their migration network only if it is "
                           "their [peer %s] migration_address",
                           f->node_name);
        if (f->local_error == -EADDRNOTAVAIL)
                return add(out, MIG_ERROR, "migration-address",
                           "[node] migration_address %s is not an address of this node: QEMU "
                           "cannot listen on it, so every migration to this node over the "
                           "migration network fails; configure it on an interface or fix the key",
                           a);
        if (f->local_error < 0)
                return add(out, MIG_ERROR, "migration-address",
                           "[node] migration_address %s cannot be used here (%s): QEMU could not "
                           "listen on it",
                           a, strerror(-f->local_error));
        return add(out, MIG_OK, "migration-address",
                   "migration streams to this node arrive on %s ([node] migration_address)", a);
}

static int judge_peer(const MigNetFacts *f, const MigNetPeerFacts *p, MigFindings *out)
{
        char why[512];

        if (mignet_unreachable(p->name, p->migration_address, &p->reach, why, sizeof(why)))
                return add(out, MIG_ERROR, "peer-migration-address", "%s", why);
        if (f->migration_address && !isempty(p->reach.source) &&
            !streq(p->reach.source, f->migration_address))
                return add(out, MIG_WARNING, "peer-migration-address",
                           "%s's migration address %s is reached from %s, not from [node] "
                           "migration_address %s: %s's firewall admits the address its [peer %s] "
                           "migration_address names; route the migration network through %s",
                           p->name, p->migration_address, p->reach.source, f->migration_address,
                           p->name, f->node_name, f->migration_address);
        return add(out, MIG_OK, "peer-migration-address", "%s: migration streams go to %s%s%s",
                   p->name, p->migration_address, isempty(p->reach.source) ? "" : ", from ",
                   p->reach.source);
}

static int judge_cert(const MigNetFacts *f, MigFindings *out)
{
        const CertCheck *c = &f->cert;

        /* unreadable, unsigned or expired: the migration-certificate finding says so */
        if (!f->tls || !f->migration_address || c->error < 0)
                return 0;
        if (c->missing_name[0])
                return add(out, MIG_ERROR, "migration-network-certificate",
                           "QEMU's server certificate %s does not name %s: peers with a migration "
                           "address for this node check it against the node's name "
                           "(tls.destination), so their encrypted migrations here fail; issue it "
                           "with %s among its subject alternative names",
                           f->cert_path, f->node_name, f->node_name);
        return add(out, MIG_OK, "migration-network-certificate",
                   "QEMU's server certificate names %s, which peers check on the migration "
                   "network",
                   f->node_name);
}

int mignet_judge(const MigNetFacts *f, MigFindings *out)
{
        bool any = f->migration_address;
        int r;

        for (size_t i = 0; i < f->n_peers; i++)
                any = any || f->peers[i].migration_address;
        if (!any)
                return 0;
        r = judge_node(f, out);
        for (size_t i = 0; r >= 0 && i < f->n_peers; i++)
                if (f->peers[i].migration_address)
                        r = judge_peer(f, &f->peers[i], out);
        if (r >= 0)
                r = judge_cert(f, out);
        return r;
}
