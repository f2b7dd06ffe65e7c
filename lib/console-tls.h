/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "config.h"

/*
 * Consoles encrypted between the proxies and QEMU (issue 21, the seeds' "Securing connections
 * to the VNC console"): VeNCrypt with x509 certificates on every guest's VNC server, the TLS
 * versions and ciphers from [console] tls_min_version and tls_ciphers. QEMU does TLS with
 * GnuTLS, so the settings become a GnuTLS priority string (docs/console-tls.md). What
 * libvirt's qemu.conf must say for it, written by hostwardenctl setup-console-tls and checked
 * by CheckNode, and the monitor command hostwardend applies the priority with (libvirt 9.0
 * has no setting for it). No GnuTLS here: the hook reads the configuration too.
 */

/* libvirt's default VNC certificate directory: ca-cert.pem, server-cert.pem, server-key.pem */
#define CONSOLE_TLS_CERT_DIR "/etc/pki/libvirt-vnc"
/* The QOM path of the TLS credentials libvirt gives a guest's VNC server */
#define CONSOLE_TLS_CREDS_PATH "/objects/vnc-tls-creds0"

/* A colon-separated list of GnuTLS cipher names (upper or lower case), each known, none
 * twice, into a list of their GnuTLS spellings; -EINVAL otherwise. */
int console_tls_ciphers_parse(const char *value, char ***ret);

/* Whether a client can connect at all: some cipher of ciphers (NULL: GnuTLS's, always) works
 * with some TLS version min allows. */
bool console_tls_ciphers_usable(ConsoleTlsVersion min, char *const *ciphers);

/* The GnuTLS priority string for min and ciphers, "" when both are the defaults (QEMU keeps
 * its own priority then). */
int console_tls_priority(ConsoleTlsVersion min, char *const *ciphers, char **ret);

/* qemu.conf's text with VeNCrypt on every VNC console: vnc_tls, the certificate directory,
 * client certificates verified, and vnc_tls_priority = priority (commented out when ""). */
int console_tls_qemu_conf(const char *qemu_conf, const char *priority, char **ret);

/* 0 if qemu.conf's text sets console TLS up as console_tls_qemu_conf() writes it; else
 * -EINVAL and *problem says what differs (for an operator). */
int console_tls_verify_qemu_conf(const char *qemu_conf, const char *priority, char **problem);

/* The QMP command that sets priority on a guest's VNC TLS credentials (new sessions use it). */
int console_tls_qmp_set_priority(const char *priority, char **ret);
