/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What reconcile.c (passes, the plan carried out), reconcile-act.c (the worker) and
 * reconcile-done.c (its results) share. Event loop only, but for the Pass a worker fills. */

#include <stdbool.h>
#include <stdint.h>

#include "manager.h"
#include "reconcile-plan.h"
#include "virt.h"

/* RECONCILE_DESTROY_UNDEFINE's outcomes other than done (0) or failed (< 0) */
enum {
        RESULT_NOT_ON_OWNER = 1, /* the owner does not run it: it migrated back here */
        RESULT_OWNER_UNREACHABLE = 2,
};

/* RECONCILE_RESUME's outcomes other than resumed (0) or failed (< 0) */
enum {
        RESULT_ON_PEER = 1,      /* a peer has it active (a->owner names it): left paused */
        RESULT_PEER_UNREACHABLE, /* a peer cannot be asked (a->owner, a->error): left paused */
        RESULT_CHANGED,          /* no longer paused so: libvirt or someone else acted */
};

typedef struct Pass {
        /* gather */
        int error;
        char *error_message;
        ReconcileDomain *domains;
        size_t n_domains;
        /* act */
        ReconcileAction *actions;
        size_t n_actions;
} Pass;

/* The definitions saved by this daemon: uuid and hash of the text. */
typedef struct SavedDef {
        char uuid[VIR_UUID_STRING_BUFLEN];
        uint64_t hash;
} SavedDef;

typedef struct SavedDefs {
        SavedDef *items;
        size_t n;
} SavedDefs;

typedef struct Reconciler {
        sd_event_source *wakeup; /* eventfd written by libvirt's event thread */
        int fd;
        bool running, again;
        ReconcileMemory memory; /* what the last passes noticed (reconcile-plan.h) */
        SavedDefs saved;
} Reconciler;

void reconcile_pass_free(Pass *p);
/* Ends a pass; starts the next one if one was asked for meanwhile. */
void reconcile_pass_finished(Manager *m);
/* Records instance uuid as this node's (compare-and-swap against expected; 0: no record);
 * 0 when it did, logging why (forgets the saved definition: the caller saves it again). */
int reconcile_claim(Manager *m, const char *uuid, const char *name, InstancePower power,
                    uint64_t expected, const char *why);

/* The worker: asks the owners and peers, destroys, undefines, resumes, starts (reconcile-act.c). */
void reconcile_act_work(Manager *m, void *userdata);
/* The event loop, once the worker is done: its results become claims, tombstones and logs
 * (reconcile-done.c). */
void reconcile_act_done(Manager *m, sd_bus_message *msg, void *userdata);
