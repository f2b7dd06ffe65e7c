/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network follows a migrated guest (issue 21 item 4, docs/migration.md): what the engine
 * does for it before the migration, and once it landed. */
#include "announce.h"
#include "log.h"
#include "migration-internal.h"
#include "network-watch.h"

/* How long after the landing a first frame from the guest is waited for: the announcement's
 * rounds, and a margin for the last one to come through the switch. */
#define NETWORK_WAIT_MARGIN (500 * USEC_PER_MSEC)

static void set_network_downtime_cb(MigrationInfo *i, void *u)
{
        i->network_downtime = *(const uint64_t *)u;
}

void migration_announce_before(Migration *mig, MigrationWork *w)
{
        const Preflight *p = w->chosen;
        int r;

        /* the connection the announcement goes over, opened now: not a TLS handshake
         * between the switchover and the announcement */
        if (w->announce.rounds > 0 && !w->dconn)
                w->dconn = virConnectOpen(p->dest_uri);
        r = net_watch_start(w->conn, w->dom, p->domain, &w->net_watch);
        if (r < 0)
                log_warning_errno(r,
                                  "Migration %s: cannot watch the guest's bridges here, "
                                  "NetworkDowntime will be 0 (unknown): %m",
                                  mig->id);
}

void migration_announce_landed(Migration *mig, MigrationWork *w, uint64_t downtime_ms)
{
        uint64_t usec;

        if (!w->net_watch)
                return;
        usec = net_watch_result(w->net_watch, downtime_ms,
                                announce_schedule_length(&w->announce) + NETWORK_WAIT_MARGIN);
        log_debug("Migration %s: network downtime %llu us", mig->id, (unsigned long long)usec);
        migration_live_update(mig, set_network_downtime_cb, &usec);
}
