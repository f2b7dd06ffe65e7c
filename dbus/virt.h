/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <libvirt/libvirt.h>

#include "macro.h"

/*
 * The daemon's connection to the local libvirt (DESIGN.md §7).
 *
 * hostwardend starts before libvirtd (the deny list must exist before guests autostart), so
 * the connection is opened on first use and opened again whenever it died (libvirtd
 * restarted). libvirt's own event loop runs in a thread of its own; it drives keepalive (a
 * hung libvirtd makes calls fail after ~20 s instead of blocking forever) and, later, domain
 * events. Calls that talk to libvirt run in worker threads (job.h), never in the sd-event
 * loop: a slow libvirtd must not stall the D-Bus service.
 *
 * Everything here is thread-safe.
 */

typedef struct Virt Virt;

/* uri: the local libvirt, normally "qemu:///system". Starts the event thread. */
int virt_new(const char *uri, Virt **ret);
/* Stops the event thread and closes the connection. */
Virt *virt_free(Virt *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(Virt *, virt_free);

const char *virt_uri(const Virt *v);

/*
 * A reference to a live connection (release it with virConnectClose()), connecting when
 * there is none or the last one died. On failure returns -EHOSTDOWN and writes libvirt's
 * reason to err.
 */
int virt_connect(Virt *v, virConnectPtr *ret, char *err, size_t err_size);

/*
 * The local libvirt's domains, as virConnectListAllDomains() with flags lists them (each holds
 * its connection: free them with virt_domains_free()). On failure returns -EHOSTDOWN (no
 * connection) or -EIO (the listing failed) and writes libvirt's reason to err.
 */
int virt_list_domains(Virt *v, unsigned flags, virDomainPtr **ret, size_t *ret_n, char *err,
                      size_t err_size);
void virt_domains_free(virDomainPtr *doms, size_t n);

/*
 * cb(userdata) runs in libvirt's event thread on every domain lifecycle event of the local
 * libvirt (defined, started, stopped, undefined ...), on every connection made from now on
 * (NULL: none). It must only hand the news on (e.g. write to an eventfd).
 */
void virt_set_lifecycle_callback(Virt *v, void (*cb)(void *userdata), void *userdata);
/* The same with the domain's UUID and libvirt's event and detail (ha-restart.c tells a crash
 * from a shutdown by them), beside the one above. */
typedef void (*VirtLifecycleDetailFunc)(const char *uuid, int event, int detail, void *userdata);
void virt_set_lifecycle_detail_callback(Virt *v, VirtLifecycleDetailFunc cb, void *userdata);

/* Is a migration of this active domain under way, incoming or outgoing? Paused for one (or
 * starting up, as an incoming one is), or a job, or no job info at all: libvirt refuses it
 * for an incoming migration ("available only on the source host"). */
bool virt_migration_in_progress(virDomainPtr dom);

/* On the libvirt at uri (a peer's): 1 if domain uuid is active there, with *ret_migrating
 * (may be NULL) telling whether a migration of it is under way; 0 if it is not active or
 * not there; -1 if that libvirt cannot be reached (virt_last_error() says why). Connects
 * for this one question: for worker threads. */
int virt_remote_domain_active(const char *uri, const char *uuid, bool *ret_migrating);
/* The same with the domain's state and reason (VIR_DOMAIN_NOSTATE when it is not active):
 * 1 active, 0 not there or inactive, -1 the peer cannot be asked. */
int virt_remote_domain_state(const char *uri, const char *uuid, int *ret_state, int *ret_reason);
/* What a peer's libvirt has of a domain: every question reconciliation asks a peer. */
typedef struct RemoteDomain {
        bool present; /* defined there, or running there (possibly transient) */
        bool active;
        bool migrating;    /* active, with a migration job under way */
        int state, reason; /* VIR_DOMAIN_NOSTATE when not present */
} RemoteDomain;
/* 0 with *ret filled, -1 if that libvirt cannot be reached or answered something other than
 * "no such domain" (virt_last_error() says why). Connects for this one question. */
int virt_remote_domain_lookup(const char *uri, const char *uuid, RemoteDomain *ret);
/* Paused for the switchover of a migration that is no longer running (no job): libvirtd
 * restarted between the pause and the end, and neither resumed nor killed it. Never true
 * for an incoming migration's copy: libvirt refuses its job statistics ("available only on
 * the source host"), which counts as a job. */
bool virt_migration_ended_paused(virDomainPtr dom);

/* libvirt's last error of this thread, or fallback. */
const char *virt_last_error(const char *fallback);

/* A domain state as a word: running, blocked, paused, shutdown, shutoff, crashed,
 * pmsuspended, nostate. */
const char *virt_state_to_string(int state);
