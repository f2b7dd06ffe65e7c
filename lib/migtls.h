/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>
#include <stdbool.h>

#include "config.h"

/*
 * TLS for the migration streams (issue 19): QEMU encrypts them itself when libvirt is asked
 * to (VIR_MIGRATE_TLS), with the certificates in libvirt's migrate_tls_x509_cert_dir. What
 * libvirt's qemu.conf says about it, and whether this node has the certificates, decide what
 * [migration] tls = auto means and whether yes can work.
 */

#define MIGRATION_TLS_DEFAULT_DIR "/etc/pki/qemu"

typedef struct MigrationTlsProbe {
        /* migrate_tls_x509_cert_dir, else default_tls_x509_cert_dir, else /etc/pki/qemu */
        char dir[PATH_MAX];
        bool force;  /* migrate_tls_force: libvirt refuses migrations without TLS */
        bool verify; /* migrate_tls_x509_verify (default_tls_x509_verify, default 1):
                      * the destination wants the source's client certificate */
        /* The first of ca-cert.pem, server-cert.pem, server-key.pem that is missing in dir
         * (a full path), "" when all three are there: QEMU needs them as the destination. */
        char missing[PATH_MAX];
        /* The same for client-cert.pem and client-key.pem: QEMU needs them as the source
         * when the destination verifies clients. */
        char missing_client[PATH_MAX];
} MigrationTlsProbe;

/* Reads libvirt's settings from qemu_conf (qemu.conf's text; NULL: libvirt's defaults) and
 * looks for the certificate files. Only stat()s the files: never reads a key. */
void migration_tls_probe(const char *qemu_conf, MigrationTlsProbe *ret);

/* The same with /etc/libvirt/qemu.conf as it is now. */
void migration_tls_probe_node(MigrationTlsProbe *ret);

/* Whether migrations from here are encrypted by default: yes, no, or auto = when this node
 * has QEMU's certificates. */
bool migration_tls_default(MigrationTls mode, const MigrationTlsProbe *probe);
