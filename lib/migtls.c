/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "leases.h"
#include "migtls.h"
#include "util.h"

/* A boolean setting of libvirt's (0 or 1, as qemu.conf writes them); def when not set or
 * not a number. */
static bool conf_bool(const char *text, const char *key, bool def)
{
        _cleanup_free_ char *v = NULL;

        if (!text || libvirt_conf_get(text, key, &v) < 0)
                return def;
        if (streq(v, "0"))
                return false;
        if (streq(v, "1"))
                return true;
        return def;
}

/* The first of names (NULL-terminated) that is not a regular file in dir, into ret ("" when
 * all are). */
static void first_missing(const char *dir, const char *const *names, char *ret, size_t size)
{
        ret[0] = '\0';
        for (; *names; names++) {
                struct stat st;

                snprintf(ret, size, "%s/%s", dir, *names);
                if (stat(ret, &st) < 0 || !S_ISREG(st.st_mode))
                        return;
        }
        ret[0] = '\0';
}

void migration_tls_probe(const char *qemu_conf, MigrationTlsProbe *ret)
{
        static const char *const server[] = { "ca-cert.pem", "server-cert.pem", "server-key.pem",
                                              NULL };
        static const char *const client[] = { "client-cert.pem", "client-key.pem", NULL };
        _cleanup_free_ char *dir = NULL;

        *ret = (MigrationTlsProbe){};
        /* libvirt's own order: the migration's directory, else the default one */
        if (qemu_conf && libvirt_conf_get(qemu_conf, "migrate_tls_x509_cert_dir", &dir) < 0)
                (void)libvirt_conf_get(qemu_conf, "default_tls_x509_cert_dir", &dir);
        snprintf(ret->dir, sizeof(ret->dir), "%s", isempty(dir) ? MIGRATION_TLS_DEFAULT_DIR : dir);
        ret->force = conf_bool(qemu_conf, "migrate_tls_force", false);
        ret->verify = conf_bool(qemu_conf, "migrate_tls_x509_verify",
                                conf_bool(qemu_conf, "default_tls_x509_verify", true));
        first_missing(ret->dir, server, ret->missing, sizeof(ret->missing));
        first_missing(ret->dir, client, ret->missing_client, sizeof(ret->missing_client));
}

void migration_tls_probe_node(MigrationTlsProbe *ret)
{
        _cleanup_free_ char *text = NULL;

        if (read_full_file(LIBVIRT_QEMU_CONF, 4 << 20, &text, NULL) < 0)
                text = NULL;
        migration_tls_probe(text, ret);
}

bool migration_tls_default(MigrationTls mode, const MigrationTlsProbe *probe)
{
        switch (mode) {
        case MIGRATION_TLS_YES:
                return true;
        case MIGRATION_TLS_NO:
                return false;
        default:
                return isempty(probe->missing);
        }
}
