/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * Attaching this node to its cluster's store (DESIGN.md §7: "the hook and hostwardend act
 * only on a store whose cluster identity they know, synced since this boot").
 *
 * At start, and again every few seconds until it works, hostwardend reads the store's
 * identity. Only when it is the one this node joined (or this node never joined one, and
 * then it joins this one) does m->store become the store: the first heartbeat, the storage
 * mark, the runtime markers and deny list, then node/synced in the runtime directory (the
 * hook starts nothing before that), the heartbeat timer, reconciliation and the adoption of
 * migrations in flight. Until then m->store is NULL, and the D-Bus methods that need it
 * answer StoreUnavailable with the reason (store_attach_require()).
 *
 * hostwardend never creates a store: `hostwardenctl init-cluster` does, once.
 */

typedef enum StoreState {
        STORE_STATE_WAITING,     /* not read yet (first attempt under way) */
        STORE_STATE_UNREACHABLE, /* the store does not answer */
        STORE_STATE_NO_IDENTITY, /* no cluster identity there: not mounted, or never initialized */
        STORE_STATE_FOREIGN,     /* another cluster's identity */
        STORE_STATE_ATTACHED,    /* this cluster's store, read since this boot */
        STORE_STATE_LOST,        /* attached, but the last heartbeat could not be written */
        _STORE_STATE_MAX,
} StoreState;

const char *store_state_to_string(StoreState s);

/* A Store of the configured backend for this node, reading nothing yet: the daemon's own
 * (store_attach_start()), or another for a worker thread (a Store serves one thread). */
int store_attach_open(const Config *c, Store **ret);

/* The first attempt, now; later ones on a timer until one succeeds. Fails only when the
 * store cannot even be opened (a configuration it cannot work with). */
int store_attach_start(Manager *m);
void store_attach_free(Manager *m);
/* While not attached: another attempt now (Reload, after init-cluster), not on the timer. */
void store_attach_retry_now(Manager *m);
/* The heartbeat's result, for the state shown (ATTACHED or LOST). */
void store_attach_heartbeat_result(Manager *m, int r);

StoreState store_attach_state(Manager *m);
/* What the state means, for people ("" before the first attempt). */
const char *store_attach_detail(Manager *m);
/* The deny list was just brought in line with a whole listing of the store: the first time,
 * node/synced is written and the hook starts what this node may run. */
void store_attach_deny_list_synced(Manager *m);

/* 0 if m->store can be used, else -EHOSTDOWN with error set to StoreUnavailable and why. */
int store_attach_require(Manager *m, sd_bus_error *error);
