/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <time.h>

/*
 * What CheckNode says about a TLS certificate of libvirt's or QEMU's (issue 19): that it
 * can be read, is signed by the CA the peers trust, is valid now and for a while, and names
 * what peers connect to. Read with gnutls, as libvirt and QEMU themselves do; only
 * certificates are read, never a key.
 */

#define CERT_EXPIRY_WARNING_DAYS 30

typedef struct CertCheck {
        int error;         /* < 0: the certificate or the CA cannot be read or parsed */
        char detail[256];  /* then: why */
        bool signed_by_ca; /* its issuer is the CA and the signature verifies */
        time_t not_before, not_after;
        bool not_yet_valid; /* now < not_before */
        bool expired;       /* now > not_after */
        bool expiring;      /* expires within CERT_EXPIRY_WARNING_DAYS */
        /* The first of the names asked for (host names or IP addresses) that the certificate
         * does not name (subject alternative names, or the CN without them); "" if none. */
        char missing_name[256];
} CertCheck;

/* Checks the PEM certificate at cert_path against the PEM CA at ca_path, at time now, for
 * names (NULL-terminated, may be NULL or hold empty strings, which are skipped). */
void cert_check(const char *cert_path, const char *ca_path, const char *const *names, time_t now,
                CertCheck *ret);
