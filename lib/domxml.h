/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "macro.h"

/*
 * A libvirt domain XML document and the parts of it hostwarden reasons about. The model is
 * read-only; the only edit is the console listen rewrite, which changes attributes in the
 * document and leaves everything else in it as it was.
 */

typedef enum DomListenType {
        DOM_LISTEN_ADDRESS,
        DOM_LISTEN_NETWORK,
        DOM_LISTEN_SOCKET,
        DOM_LISTEN_NONE,
        DOM_LISTEN_OTHER,
} DomListenType;

typedef struct DomListen {
        DomListenType type;
        char *address; /* type address (may be NULL: libvirt's default) */
        char *network; /* type network */
        char *socket;  /* type socket */
} DomListen;

typedef struct DomGraphics {
        char *type;   /* vnc, spice, ... */
        char *listen; /* the listen attribute, NULL when absent */
        char *socket; /* VNC on a UNIX socket (socket attribute) */
        DomListen *listens;
        size_t n_listens;
} DomGraphics;

typedef struct DomDisk {
        char *type;        /* file, block, network, volume, ... */
        char *device;      /* disk, cdrom, floppy, lun */
        char *driver_type; /* qcow2, raw, ... */
        char *source;      /* file path, block device, network name, or pool/volume */
        char *target;      /* vda, hdc, ... */
        char *bus;
        bool readonly;
        bool shareable;
} DomDisk;

typedef struct DomInterface {
        char *type; /* bridge, network, direct, hostdev, ... */
        char *mac;
        char *source;      /* bridge, network or dev */
        char *source_mode; /* direct: vepa, bridge, private, passthrough */
        char *model;
} DomInterface;

/* <hostdev>: a host device handed to the guest (PCI, USB, SCSI, mediated). */
typedef struct DomHostdev {
        char *mode;   /* subsystem, capabilities */
        char *type;   /* pci, usb, scsi, mdev, ... */
        char *device; /* PCI address 0000:03:00.0, mdev UUID, ... (may be NULL) */
} DomHostdev;

/* A pinning: <vcpupin vcpu='N' cpuset=...>, <emulatorpin>, <iothreadpin> (what "vcpu 1",
 * "emulator", "iothread 2") */
typedef struct DomPin {
        char *what;
        char *cpuset; /* libvirt syntax: "0-3,^2,8" */
} DomPin;

typedef struct DomXml {
        void *doc;         /* xmlDoc */
        char *domain_type; /* qemu, kvm */
        char *name;
        char *uuid;
        uint64_t memory_kib;
        uint64_t current_memory_kib; /* <currentMemory>, else memory_kib */
        char *arch;                  /* <os><type arch=...> (may be NULL) */
        char *cpu_mode;              /* <cpu mode=...>: custom (the default), host-model,
                                        host-passthrough, maximum; NULL without <cpu> */
        char *cpu_model;             /* <cpu><model> (may be NULL) */
        char *cpu_xml;               /* the <cpu> element as text (may be NULL) */
        DomHostdev *hostdevs;
        size_t n_hostdevs;
        DomPin *pins;
        size_t n_pins;
        char *numa_nodeset;   /* <numatune><memory nodeset=...> (may be NULL) */
        char **numa_memnodes; /* <numatune><memnode nodeset=...>, strv (may be NULL) */
        DomGraphics *graphics;
        size_t n_graphics;
        DomDisk *disks;
        size_t n_disks;
        DomInterface *interfaces;
        size_t n_interfaces;
        /* hostwarden's own per-guest settings (DESIGN.md §11): the attributes of
         * <metadata><hostwarden:guest xmlns:hostwarden=HW_DOMAIN_XMLNS>, as written; NULL
         * when absent. lib/ha.h reads them. */
        char *hw_ha;
        char *hw_priority;
        char *hw_policy;      /* its migration policy (migschedule.h) */
        char *hw_maintenance; /* maintenance strategy (lib/maintenance-plan.h) */
} DomXml;

#define HW_DOMAIN_XMLNS  "https://hostwarden.org/xmlns/domain/1"
#define HW_DOMAIN_PREFIX "hostwarden"

/*
 * Parses a <domain> document. On failure returns -EINVAL (not well-formed XML, a DOCTYPE),
 * -EBADMSG (not a libvirt domain: wrong root, missing or bad name/uuid) or -ENOMEM, and
 * when ret_error is given stores a message for the operator there.
 */
int domxml_parse(const char *xml, size_t size, DomXml **ret, char **ret_error);
DomXml *domxml_free(DomXml *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(DomXml *, domxml_free);

/*
 * The address a VNC/SPICE listen address 'current' becomes on this node, or NULL when it
 * stays: keep mode, no address, loopback (a console meant to be local stays local), or
 * already what the mode asks for. ANY gives the wildcard of current's family (0.0.0.0 or ::).
 */
const char *console_listen_target(ConsoleListen mode, const char *node_address,
                                  const char *current);

/*
 * Rewrites the listen addresses of every VNC and SPICE graphics device: the listen
 * attribute and <listen type='address'> children. A device whose first <listen> is of type
 * network, socket or none, or that listens on a UNIX socket, is left alone. ret_changed
 * counts the addresses changed. The model's graphics are updated to match.
 */
int domxml_rewrite_listen(DomXml *d, ConsoleListen mode, const char *node_address,
                          unsigned *ret_changed);

/* The document as text, without an XML declaration, everything else as parsed. */
int domxml_format(const DomXml *d, char **ret, size_t *ret_size);

/* What the hook needs to name a domain in logs and refusals. */
typedef struct DomIdentity {
        char *name;
        char *uuid;
} DomIdentity;

void dom_identity_done(DomIdentity *id);

/*
 * The domain's name and UUID, read from the start of the document only (libxml2 SAX, stops
 * at </uuid>); falls back to domxml_parse() and its errors when the start is not plain.
 */
int domxml_peek_identity(const char *xml, size_t size, DomIdentity *ret, char **ret_error);

/*
 * The console listen rewrite on text: the same result as domxml_parse() +
 * domxml_rewrite_listen() + domxml_format(), but every byte outside the changed attribute
 * values stays as it was, and no tree is built (the hook's hot path, lib/domxml-text.c).
 * *ret_xml is NULL when nothing changed. Errors as domxml_parse().
 */
int domxml_rewrite_listen_text(const char *xml, size_t size, ConsoleListen mode,
                               const char *node_address, DomIdentity *ret_identity, char **ret_xml,
                               size_t *ret_size, unsigned *ret_changed, char **ret_error);
