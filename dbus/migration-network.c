/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration network's parameters of one migration (migration-network.h). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mignet.h"
#include "migration-network.h"
#include "migtls.h"
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

/* How long a peer's migration address has to answer: a SYN that gets nothing back in this
 * time is taken for a dropped one. */
#define REACH_TIMEOUT_MS 2000

typedef struct Probe {
        const char *address;
        MigNetReach *ret;
        int fd; /* the TCP connection under way; -1 when decided */
} Probe;

/* The route to address (a UDP connect() sends nothing) and the source address it takes;
 * then a non-blocking TCP connect to libvirt's TLS port, left to probe_wait(). */
static void probe_start(Probe *p)
{
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
        struct sockaddr_storage local;
        socklen_t len = sizeof(local);
        int fd, k;

        p->fd = -1;
        *p->ret = (MigNetReach){};
        k = getaddrinfo(p->address, "16514", &hints, &ai);
        if (k != 0) {
                p->ret->route_error = k == EAI_SYSTEM ? -errno : -ENOENT;
                return;
        }
        fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                p->ret->route_error = -errno;
                if (fd >= 0)
                        close(fd);
                freeaddrinfo(ai);
                return;
        }
        if (getsockname(fd, (struct sockaddr *)&local, &len) == 0)
                (void)getnameinfo((struct sockaddr *)&local, len, p->ret->source,
                                  sizeof(p->ret->source), NULL, 0, NI_NUMERICHOST);
        close(fd);

        p->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (p->fd < 0)
                p->ret->connect_error = -errno;
        else {
                k = connect(p->fd, ai->ai_addr, ai->ai_addrlen);
                if (k == 0 || errno != EINPROGRESS) {
                        p->ret->connect_error = k == 0 ? 0 : -errno;
                        p->fd = safe_close(p->fd);
                }
        }
        freeaddrinfo(ai);
}

/* Waits for the connections under way, all at once: at most REACH_TIMEOUT_MS in all. */
static void probe_wait(Probe *probes, size_t n)
{
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + REACH_TIMEOUT_MS * USEC_PER_MSEC;

        for (;;) {
                _cleanup_free_ struct pollfd *fds = calloc(n ?: 1, sizeof(struct pollfd));
                size_t m = 0;
                usec_t now = now_usec(CLOCK_MONOTONIC);
                int k;

                if (!fds)
                        break;
                for (size_t i = 0; i < n; i++)
                        if (probes[i].fd >= 0)
                                fds[m++] = (struct pollfd){ .fd = probes[i].fd, .events = POLLOUT };
                if (m == 0 || now >= deadline)
                        break;
                k = poll(fds, m, (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
                if (k < 0 && errno != EINTR)
                        break;
                for (size_t i = 0; i < n; i++) {
                        Probe *p = &probes[i];
                        socklen_t len = sizeof(int);
                        int error = 0;

                        if (p->fd < 0)
                                continue;
                        for (size_t j = 0; j < m; j++)
                                if (fds[j].fd == p->fd && fds[j].revents) {
                                        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &error, &len) <
                                            0)
                                                error = errno;
                                        p->ret->connect_error = -error;
                                        p->fd = safe_close(p->fd);
                                        break;
                                }
                }
        }
        for (size_t i = 0; i < n; i++)
                if (probes[i].fd >= 0) {
                        probes[i].ret->connect_error = -ETIMEDOUT;
                        probes[i].fd = safe_close(probes[i].fd);
                }
}

bool migration_network_unreachable(const Preflight *p, char *buf, size_t size)
{
        MigNetReach reach;
        Probe probe = { .address = p->dest_migration_address, .ret = &reach };

        if (isempty(p->dest_migration_address))
                return false;
        probe_start(&probe);
        probe_wait(&probe, 1);
        return mignet_unreachable(p->dest_name, p->dest_migration_address, &reach, buf, size);
}

/* Can QEMU listen on address here: is it (or what it resolves to) an address of this node?
 * Binding tells, as QEMU's own bind would. */
static int local_error(const char *address)
{
        struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
        int r = -EADDRNOTAVAIL, k;

        k = getaddrinfo(address, NULL, &hints, &ai);
        if (k != 0)
                return k == EAI_SYSTEM ? -errno : -ENOENT;
        for (struct addrinfo *i = ai; i && r < 0; i = i->ai_next) {
                _cleanup_close_ int fd = socket(i->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

                if (fd < 0)
                        r = -errno;
                else if (bind(fd, i->ai_addr, i->ai_addrlen) == 0)
                        r = 0;
                else if (errno != EADDRNOTAVAIL)
                        r = -errno;
        }
        freeaddrinfo(ai);
        return r;
}

struct MigNetCheck {
        char *node_name, *migration_address;
        MigrationTls tls_mode;
        char **peer_names, **peer_addresses; /* the peers with a migration address */
};

MigNetCheck *migration_network_check_free(MigNetCheck *k)
{
        if (!k)
                return NULL;
        free(k->node_name);
        free(k->migration_address);
        strv_free(k->peer_names);
        strv_free(k->peer_addresses);
        free(k);
        return NULL;
}

int migration_network_check_new(const Config *c, MigNetCheck **ret)
{
        MigNetCheck *k;
        int r = 0;

        *ret = NULL;
        k = calloc(1, sizeof(MigNetCheck));
        if (!k)
                return -ENOMEM;
        k->tls_mode = c->migration.tls;
        if (!(k->node_name = strdup(c->node.name)) ||
            (c->node.migration_address &&
             !(k->migration_address = strdup(c->node.migration_address))))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < c->n_peers; i++)
                if (c->peers[i].migration_address &&
                    ((r = strv_extend(&k->peer_names, c->peers[i].name)) < 0 ||
                     (r = strv_extend(&k->peer_addresses, c->peers[i].migration_address)) < 0))
                        break;
        if (r < 0) {
                migration_network_check_free(k);
                return r;
        }
        if (!k->migration_address && !k->peer_names) {
                migration_network_check_free(k); /* no migration network: nothing to say */
                return 0;
        }
        *ret = k;
        return 0;
}

int migration_network_check_run(MigNetCheck *k, MigFindings *out)
{
        size_t n = strv_length(k ? k->peer_names : NULL);
        _cleanup_free_ MigNetPeerFacts *peers = NULL;
        _cleanup_free_ Probe *probes = NULL;
        _cleanup_free_ char *cert = NULL, *ca = NULL;
        MigrationTlsProbe tls;
        MigNetFacts f;

        if (!k)
                return 0;
        peers = calloc(n ?: 1, sizeof(MigNetPeerFacts));
        probes = calloc(n ?: 1, sizeof(Probe));
        if (!peers || !probes)
                return -ENOMEM;
        f = (MigNetFacts){
                .node_name = k->node_name,
                .migration_address = k->migration_address,
                .peers = peers,
                .n_peers = n,
        };
        if (k->migration_address)
                f.local_error = local_error(k->migration_address);
        for (size_t i = 0; i < n; i++) {
                peers[i].name = k->peer_names[i];
                peers[i].migration_address = k->peer_addresses[i];
                probes[i] = (Probe){ .address = k->peer_addresses[i], .ret = &peers[i].reach };
                probe_start(&probes[i]);
        }
        probe_wait(probes, n);

        migration_tls_probe_node(&tls);
        f.tls = migration_tls_default(k->tls_mode, &tls) && isempty(tls.missing);
        if (f.tls && k->migration_address) {
                const char *const names[] = { k->node_name, NULL };

                if (asprintf(&cert, "%s/server-cert.pem", tls.dir) < 0 ||
                    asprintf(&ca, "%s/ca-cert.pem", tls.dir) < 0)
                        return -ENOMEM;
                f.cert_path = cert;
                cert_check(cert, ca, names, time(NULL), &f.cert);
        }
        return mignet_judge(&f, out);
}
