/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Rebuild and EvacuateFrom (DESIGN.md §4, §7): the state of one instance's rebuild, the
 * entry the Node handlers call after polkit, and what rebuild.c (the steps, one instance
 * after another, and the reply), rebuild-plan.c (the checks of steps 1 and 2) and
 * rebuild-disk.c (lost disks, a start cut short) share.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>
#include <systemd/sd-bus.h>

#include "announce-cmd.h"
#include "manager.h"
#include "peers.h"
#include "store.h"

typedef struct DiskFix {
        char *path;
        char *backing;
        uint64_t size;
} DiskFix;

typedef struct Rebuild {
        char uuid[37];
        char *name;
        char *source;
        uint64_t generation; /* of the record when checked */
        char *xml;           /* the definition, console listen rewritten for this node */
        DiskFix *fixes;
        size_t n_fixes;
        PeerTargets ask; /* the peers that are not fenced: does it run there? */
        /* the source's libvirt, asked too: NULL if [peer SOURCE] is gone, or when its fence
         * agent said it is off (then it answers nobody: asking a node that is gone costs
         * seconds of ARP for nothing) */
        char *source_uri;
        bool source_off; /* its record says off: a fence agent's result, not an admin's word */
        char *base_dir;  /* <instances_path>, copied for the worker */
        char *orig_evacuated_from; /* of the record when checked (to swap back) */
        uint64_t claimed_generation;
        bool defined;        /* the domain is defined here (by us or before) */
        InstancePower power; /* as its owner last saw it: rebuilt so (Nova's evacuate keeps a
                                stopped instance stopped) */
        /* outcome */
        const char *error_name; /* NULL: fine so far */
        char *message;
        bool claimed;
        bool started;
        bool locked;    /* claimed in m->instance_ops */
        bool automatic; /* automatic recovery's (recovery.h), not an operator's call */
        bool resumed;   /* one its hostwardend died in, taken up (rebuild-note.h); power
                           is the noted one, not the claimed record's */
        bool noted;     /* its note (rebuild-note.h) is to be forgotten at its outcome */
        uint64_t began; /* usec realtime: its steps began (the history) */
        /* announce.h: sent once it started here (a copy of the configuration's) */
        AnnounceSchedule announce;
} Rebuild;

/*
 * Rebuild (uuid set) or EvacuateFrom (uuid NULL: every instance the store records as
 * source's) of the call msg, its arguments checked: refused at once (< 0, error set) when this
 * node may host nothing or, for EvacuateFrom, when source is not down and fenced; otherwise 1,
 * and the reply is sent when the last instance's steps are over.
 */
int rebuild_start(Manager *m, sd_bus_message *msg, const char *uuid, const char *source,
                  sd_bus_error *error);
/*
 * Automatic recovery's rebuild (recovery.c): the instances uuids (strv) of fenced node source,
 * one after another, with Rebuild's steps and checks; then cb with every instance's outcome
 * (error_name, message, claimed, started), in the event loop. -EPERM: this node may host
 * nothing (it is itself fenced or forced down); other errors: nothing started.
 */
typedef void (*RebuildCallback)(Manager *m, const char *source, const Rebuild *items, size_t n,
                                void *userdata);
int rebuild_for_recovery(Manager *m, const char *source, char *const *uuids, RebuildCallback cb,
                         void *userdata);

/*
 * A rebuild whose hostwardend died after it claimed the record (rebuilds_resume): its steps
 * again from step 1, to power; the outcome is logged. < 0: nothing started.
 */
int rebuild_resume(Manager *m, const char *source, const char *uuid, InstancePower power);

/* rebuild.c: sets r's error name and message, replacing what an earlier call set. */
_printf_(3, 4) void rebuild_fail(Rebuild *r, const char *error_name, const char *format, ...);

/* rebuild-plan.c: is source down or forced down, and fenced? (event loop) */
bool rebuild_source_fenced(Manager *m, const char *source, Rebuild *r);
/* Step 1, event loop: the checks against the store; copies what the worker needs. */
void rebuild_check(Manager *m, Rebuild *r);
/* Step 2, worker: nobody runs it; the plan of the lost disks (r->fixes). */
void rebuild_plan(Manager *m, Rebuild *r);

/* rebuild-disk.c, worker: qemu-img with argv, its output in err. */
int rebuild_run_qemu_img(const char *const argv[], char *err, size_t err_size);
/* The lost disk f made again from its base (format fmt). */
int rebuild_create_disk(const DiskFix *f, const char *fmt, char *err, size_t err_size);
/* After a lost libvirtd: a start left paused is resumed, or destroyed to start again. */
void rebuild_finish_cut_start(virDomainPtr dom, const char *uuid);
