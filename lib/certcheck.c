/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certcheck.h"
#include "util.h"

/* The first PEM certificate of path; returns 0 or a negative errno (detail says why). */
static int load_cert(const char *path, gnutls_x509_crt_t *ret, char *detail, size_t size)
{
        _cleanup_free_ char *text = NULL;
        gnutls_datum_t data;
        size_t len = 0;
        int r;

        r = read_full_file(path, 1 << 20, &text, &len);
        if (r < 0) {
                snprintf(detail, size, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        data = (gnutls_datum_t){ .data = (unsigned char *)text, .size = (unsigned)len };
        r = gnutls_x509_crt_init(ret);
        if (r >= 0) {
                r = gnutls_x509_crt_import(*ret, &data, GNUTLS_X509_FMT_PEM);
                if (r < 0) {
                        gnutls_x509_crt_deinit(*ret);
                        *ret = NULL;
                }
        }
        if (r < 0) {
                snprintf(detail, size, "%s is not a PEM certificate: %s", path, gnutls_strerror(r));
                return -EINVAL;
        }
        return 0;
}

/* Whether cert names name: an IP address against its IP address names, anything else as a
 * host name (wildcards as TLS clients match them). */
static bool names_it(gnutls_x509_crt_t cert, const char *name)
{
        unsigned char addr[16];

        if (inet_pton(AF_INET, name, addr) == 1)
                return gnutls_x509_crt_check_ip(cert, addr, 4, 0) != 0;
        if (inet_pton(AF_INET6, name, addr) == 1)
                return gnutls_x509_crt_check_ip(cert, addr, 16, 0) != 0;
        return gnutls_x509_crt_check_hostname(cert, name) != 0;
}

void cert_check(const char *cert_path, const char *ca_path, const char *const *names, time_t now,
                CertCheck *ret)
{
        gnutls_x509_crt_t cert = NULL, ca = NULL;
        unsigned status = 0;

        *ret = (CertCheck){};
        ret->error = load_cert(cert_path, &cert, ret->detail, sizeof(ret->detail));
        if (ret->error < 0)
                return;
        ret->error = load_cert(ca_path, &ca, ret->detail, sizeof(ret->detail));
        if (ret->error < 0) {
                gnutls_x509_crt_deinit(cert);
                return;
        }
        /* the signature only: the times are judged below, against now */
        ret->signed_by_ca =
                gnutls_x509_crt_verify(cert, &ca, 1,
                                       GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
                                               GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
                                       &status) >= 0 &&
                status == 0;
        ret->not_before = gnutls_x509_crt_get_activation_time(cert);
        ret->not_after = gnutls_x509_crt_get_expiration_time(cert);
        ret->not_yet_valid = ret->not_before != (time_t)-1 && now < ret->not_before;
        ret->expired = ret->not_after != (time_t)-1 && now > ret->not_after;
        ret->expiring = !ret->expired && ret->not_after != (time_t)-1 &&
                        ret->not_after - now < (time_t)CERT_EXPIRY_WARNING_DAYS * 24 * 3600;
        for (; names && *names; names++)
                if (!isempty(*names) && !names_it(cert, *names)) {
                        snprintf(ret->missing_name, sizeof(ret->missing_name), "%s", *names);
                        break;
                }
        gnutls_x509_crt_deinit(ca);
        gnutls_x509_crt_deinit(cert);
}
