/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peers.h"
#include "store.h"
#include "util.h"

/*
 * What one reconciliation pass does (the rules are dbus/reconcile.h's), as a pure function of
 * what the daemon gathered: the local domains, the instance records, the powered-off peers,
 * the runtime markers, the time, and what the last passes noticed. The daemon writes the
 * store steps in order and gives the actions to a worker; nothing here reads libvirt, the
 * store, a file or a clock.
 */

/* What libvirt says of a local domain. */
typedef struct ReconcileDomain {
        char uuid[37];
        char *name;
        bool active;
        bool autostart;
        bool has_state;        /* libvirt gave a state other than "no state" */
        bool paused;           /* state "paused" */
        bool running_migrated; /* state "running", reason "migrated" (it arrived so) */
        bool shutoff_migrated; /* shut-off reason "migrated" (it left so) */
        bool migrating;        /* a job, or paused for a migration */
        bool ended_paused;     /* paused for a migration that no longer runs */
        uint64_t arrived;      /* usec realtime of its arriving/ marker (runtime.h), 0: none */
        char *xml;             /* inactive definition (secure), may be NULL: the daemon saves it,
                                  the plan does not read it */
} ReconcileDomain;

void reconcile_domain_done(ReconcileDomain *d);

typedef enum ReconcileActionKind {
        /* inactive copy of an instance owned elsewhere */
        RECONCILE_UNDEFINE,
        /* running copy of an instance evacuated from here, if its owner runs it (asked first) */
        RECONCILE_DESTROY_UNDEFINE,
        /* running here, owned elsewhere: does it run there? */
        RECONCILE_ASK_OWNER,
        /* owned here, paused here for a migration that ended: resumed if no peer has it (every
         * one asked) */
        RECONCILE_RESUME,
        /* owned here, set to autostart, whose start the hook deferred until the store was read
         * (runtime.h deferred/) */
        RECONCILE_START,
        /* inactive copy of an instance owned elsewhere: undefined if the owner has it, claimed
         * if it does not (it moved here: an offline migration, or a live one and a stop) */
        RECONCILE_UNDEFINE_UNLESS_MOVED,
        /* owned here, gone here (or stopped by a migration): which peer has it? The record
         * follows it; if none, a tombstone */
        RECONCILE_FIND_ELSEWHERE,
} ReconcileActionKind;

/* What libvirt has to do, for the daemon's worker; the plan fills the first part, the worker
 * and the daemon the results. */
typedef struct ReconcileAction {
        ReconcileActionKind kind;
        char uuid[37];
        char *name;
        char *owner;
        char *owner_uri;      /* the owner's libvirt: asked first (NULL: not configured) */
        PeerTargets peers;    /* RESUME, FIND_ELSEWHERE: every peer to ask */
        char *evacuated_from; /* the record's */
        bool gone;            /* FIND_ELSEWHERE: not defined here any more (else: stopped by a
                                 migration, and only a peer that runs it counts) */
        bool holds_state;     /* ASK_OWNER: the copy here arrived by migration */
        uint64_t generation;
        /* result */
        int result; /* < 0 failed; ASK_OWNER: 1 runs on the owner, 0 does not; DESTROY_UNDEFINE:
                       0 done, else the daemon's RESULT_* */
        char *error;
        bool split;        /* ASK_OWNER found it on the owner too: destroyed here as a stale copy */
        bool owner_paused; /* ASK_OWNER: the owner's copy is paused for the switchover of a
                              migration whose destination (here) runs it */
        bool postcopy;     /* ASK_OWNER: the owner's copy is in post-copy: left alone */
        bool owner_starting;       /* ASK_OWNER: the owner's copy is still starting (its CPUs not
                                      started yet): decided on a later pass */
        bool deleted;              /* UNDEFINE: the record is a tombstone */
        bool keep_here;            /* ASK_OWNER: both run it; the copy here holds the guest's state
                                      (it arrived by migration), the owner's was booted afresh */
        InstancePower power;       /* of the copy here, when planned (what a claim records) */
        bool found_active;         /* FIND_ELSEWHERE: a->found runs it */
        InstancePower found_power; /* FIND_ELSEWHERE: of a->found's copy */
        char *found;               /* FIND_ELSEWHERE: the peer that has it */
} ReconcileAction;

void reconcile_action_done(ReconcileAction *a);

/* What the last passes noticed, each uuid with when (CLOCK_MONOTONIC usec) they first did,
 * for as long as it lasts: passes come in bursts (lifecycle events), so waiting is by time. */
typedef struct SeenEntry {
        char uuid[37];
        uint64_t since;
} SeenEntry;

typedef struct SeenSet {
        SeenEntry *items;
        size_t n;
} SeenSet;

/* When uuid was first noticed (0: it was not). */
uint64_t seen_set_since(const SeenSet *s, const char *uuid);
/* Noticed for settle already: now - since >= settle. */
bool seen_set_settled(const SeenSet *s, const char *uuid, uint64_t now, usec_t settle);
/* Adds uuid to next, noticed since when last did, or now. -ENOMEM. */
int seen_set_carry(SeenSet *next, const SeenSet *last, const char *uuid, uint64_t now);
void seen_set_done(SeenSet *s);

/* From one pass to the next. */
typedef struct ReconcileMemory {
        SeenSet missing; /* own records without a domain here */
        SeenSet suspect; /* running here, owned elsewhere, no migration of it seen */
        SeenSet paused;  /* own, paused here for a migration that ended */
        SeenSet moved;   /* own, stopped here by a migration (its peers asked once) */
        char **told;     /* uuids of those left paused already logged as such (the daemon adds) */
        char **unknown;  /* own, a peer or the owner could not be asked (logged once; the daemon
                            adds) */
} ReconcileMemory;

void reconcile_memory_done(ReconcileMemory *m);

typedef struct ReconcileArrival {
        char uuid[37];
        uint64_t since; /* usec realtime */
} ReconcileArrival;

typedef struct ReconcileInput {
        const char *self; /* this node's name */
        const ReconcileDomain *domains;
        size_t n_domains;
        const InstanceRecord *records;
        size_t n_records;
        const PeerTargets *peers; /* the configured peers, in configuration order */
        char *const *fenced;      /* peers known to be powered off (fenced or forced down) */
        /* an operation of the daemon's own on it (a migration, a rebuild) */
        bool (*busy)(const char *uuid, void *userdata);
        void *userdata;
        /* deferred/ (runtime.h), read only once the store was: synced */
        bool synced;
        char *const *deferred;
        const ReconcileArrival *arrivals; /* arriving/ */
        size_t n_arrivals;
        uint64_t now;          /* CLOCK_MONOTONIC usec */
        uint64_t now_realtime; /* usec */
        usec_t settle;         /* how long a state lasts before it is acted on */
        usec_t open_window;    /* how long the hook honours an arriving/ marker */
} ReconcileInput;

typedef enum ReconcileStepKind {
        RECONCILE_STEP_CLAIM,           /* domain, power, expected, why; save_after */
        RECONCILE_STEP_REFRESH,         /* own record: its name or power follows the domain's */
        RECONCILE_STEP_SAVE_DEFINITION, /* domain: its definition, unless saved already */
        RECONCILE_STEP_ACT,             /* action, for the worker */
        RECONCILE_STEP_DROP_DEFERRED,   /* uuid: its deferred/ marker goes */
        RECONCILE_STEP_DROP_ARRIVAL,    /* uuid: its arriving/ marker goes */
} ReconcileStepKind;

typedef struct ReconcileStep {
        ReconcileStepKind kind;
        size_t domain;       /* CLAIM, REFRESH, SAVE_DEFINITION: index in the input's domains */
        size_t record;       /* REFRESH: index in the input's records */
        InstancePower power; /* CLAIM, REFRESH: what the record says after */
        uint64_t expected;   /* CLAIM: the record's generation (0: none) */
        const char *why;     /* CLAIM: for the log (static) */
        bool save_after;     /* CLAIM: then SAVE_DEFINITION of the domain, if the claim worked */
        size_t action;       /* ACT: index in the plan's actions */
        /* ACT: the action's generation is what the REFRESH just before returned */
        bool generation_from_refresh;
        char uuid[37]; /* DROP_DEFERRED, DROP_ARRIVAL */
} ReconcileStep;

typedef struct ReconcilePlan {
        ReconcileStep *steps; /* in the order they are taken */
        size_t n_steps;
        ReconcileAction *actions;
        size_t n_actions;
        ReconcileMemory memory; /* for the next pass */
} ReconcilePlan;

/* Is a cold migration between this node (self) and another under way on this record (in
 * verify, landing or reverting)? Then both copies stay, whatever else holds: the source's
 * shut-off copy for a Revert, the owner's whether defined yet or not (it is being defined,
 * or removed by a Revert). The owner's defined copy keeps its record current as any. */
bool reconcile_cold_keeps(const InstanceRecord *rec, const char *self);

/* The power state a record gives the domain. */
InstancePower reconcile_power_of(const ReconcileDomain *d);

/* The plan of a pass, after last's. -ENOMEM. */
int reconcile_plan(const ReconcileInput *in, const ReconcileMemory *last, ReconcilePlan *ret);
void reconcile_plan_done(ReconcilePlan *p);
