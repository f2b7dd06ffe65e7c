/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console-tls.h"
#include "leases.h"
#include "util.h"

/* The GnuTLS ciphers a console may be limited to (their GnuTLS names; the unit test holds them
 * against GnuTLS). Broken ones (3DES, RC4, NULL) are not offered: listing them would enable
 * them. tls13: usable in TLS 1.3, whose cipher suites are AEAD only. */
static const struct {
        const char *name;
        bool tls13;
} ciphers[] = {
        { "AES-256-GCM", true },       { "AES-128-GCM", true },       { "CHACHA20-POLY1305", true },
        { "AES-128-CCM", true },       { "AES-256-CCM", false },      { "AES-256-CBC", false },
        { "AES-128-CBC", false },      { "CAMELLIA-256-GCM", false }, { "CAMELLIA-128-GCM", false },
        { "CAMELLIA-256-CBC", false }, { "CAMELLIA-128-CBC", false },
};

static int cipher_index(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(ciphers); i++)
                if (strcasecmp(ciphers[i].name, name) == 0)
                        return (int)i;
        return -1;
}

int console_tls_ciphers_parse(const char *value, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        const char *p = value;
        int r;

        if (isempty(value))
                return -EINVAL;
        for (;;) {
                size_t n = strcspn(p, ":");
                char name[32];
                int i;

                if (n == 0 || n >= sizeof(name))
                        return -EINVAL;
                memcpy(name, p, n);
                name[n] = 0;
                i = cipher_index(strstrip(name));
                if (i < 0 || strv_contains(l, ciphers[i].name))
                        return -EINVAL;
                r = strv_extend(&l, ciphers[i].name);
                if (r < 0)
                        return r;
                p += n;
                if (!*p)
                        break;
                p++;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

bool console_tls_ciphers_usable(ConsoleTlsVersion min, char *const *l)
{
        if (!l || min != CONSOLE_TLS_VERSION_1_3)
                return true;
        STRV_FOREACH (c, l) {
                int i = cipher_index(*c);
                if (i >= 0 && ciphers[i].tls13)
                        return true;
        }
        return false;
}

int console_tls_priority(ConsoleTlsVersion min, char *const *l, char **ret)
{
        /* GnuTLS's NORMAL, then the versions from min up (NORMAL also has TLS 1.0 and 1.1,
         * which "default" keeps, as the seeds' "the underlying system defaults" does) */
        static const char *const versions[_CONSOLE_TLS_VERSION_MAX] = {
                [CONSOLE_TLS_VERSION_DEFAULT] = "",
                [CONSOLE_TLS_VERSION_1_1] = ":-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+VERS-TLS1.1",
                [CONSOLE_TLS_VERSION_1_2] = ":-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
                [CONSOLE_TLS_VERSION_1_3] = ":-VERS-ALL:+VERS-TLS1.3",
        };
        _cleanup_free_ char *cipher_part = NULL;
        size_t size = 1;

        if (min < 0 || min >= _CONSOLE_TLS_VERSION_MAX)
                return -EINVAL;
        if (min == CONSOLE_TLS_VERSION_DEFAULT && strv_length(l) == 0) {
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        STRV_FOREACH (c, l)
                size += strlen(*c) + 2;
        cipher_part = calloc(1, size + strlen(":-CIPHER-ALL"));
        if (!cipher_part)
                return -ENOMEM;
        if (l && *l) {
                strcat(cipher_part, ":-CIPHER-ALL");
                STRV_FOREACH (c, l) {
                        strcat(cipher_part, ":+");
                        strcat(cipher_part, *c);
                }
        }
        if (asprintf(ret, "NORMAL%s%s", versions[min], cipher_part) < 0)
                return -ENOMEM;
        return 0;
}

/* text with the setting of key commented out (nothing when it has none). */
static int conf_unset(const char *text, const char *key, char **ret)
{
        size_t len = 0;
        const char *line = libvirt_conf_find(text, key, &len);

        if (!line) {
                *ret = strdup(text);
                return *ret ? 0 : -ENOMEM;
        }
        if (asprintf(ret, "%.*s#%.*s%s", (int)(line - text), text, (int)len, line, line + len) < 0)
                return -ENOMEM;
        return 0;
}

int console_tls_qemu_conf(const char *qemu_conf, const char *priority, char **ret)
{
        static const char why[] = "consoles encrypted (hostwardenctl setup-console-tls)";
        static const struct {
                const char *key, *value;
        } settings[] = {
                { "vnc_tls", "1" },
                { "vnc_tls_x509_cert_dir", "\"" CONSOLE_TLS_CERT_DIR "\"" },
                /* only the proxies, with a certificate of the cluster's CA, open a console */
                { "vnc_tls_x509_verify", "1" },
        };
        _cleanup_free_ char *text = strdup(qemu_conf), *quoted = NULL;
        int r;

        if (!text)
                return -ENOMEM;
        if (strpbrk(priority, "\"\\\n"))
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
                char *next = NULL;

                r = libvirt_conf_set(text, settings[i].key, settings[i].value, why, &next);
                if (r < 0)
                        return r;
                free(text);
                text = next;
        }
        if (isempty(priority))
                return conf_unset(text, "vnc_tls_priority", ret);
        if (asprintf(&quoted, "\"%s\"", priority) < 0)
                return -ENOMEM;
        return libvirt_conf_set(text, "vnc_tls_priority", quoted,
                                "the TLS versions and ciphers of [console] (libvirt 9.0 ignores "
                                "it: hostwardend applies them)",
                                ret);
}

/* 0 if text sets key to value (NULL: does not set it); else -EINVAL and *problem. */
static int want(const char *text, const char *key, const char *value, char **problem)
{
        _cleanup_free_ char *v = NULL;
        int r = libvirt_conf_get(text, key, &v);

        if (r == -ENOMEM)
                return r;
        if (value ? r >= 0 && streq(v, value) : r == -ENOENT)
                return 0;
        if (value && r < 0)
                r = asprintf(problem, "%s does not set %s (= %s)", LIBVIRT_QEMU_CONF, key, value);
        else if (value)
                r = asprintf(problem, "%s sets %s = %s, not %s", LIBVIRT_QEMU_CONF, key, v, value);
        else
                r = asprintf(problem, "%s sets %s = %s, which [console] does not ask for",
                             LIBVIRT_QEMU_CONF, key, v);
        return r < 0 ? -ENOMEM : -EINVAL;
}

int console_tls_verify_qemu_conf(const char *qemu_conf, const char *priority, char **problem)
{
        int r;

        *problem = NULL;
        r = want(qemu_conf, "vnc_tls", "1", problem);
        if (r >= 0)
                r = want(qemu_conf, "vnc_tls_x509_cert_dir", CONSOLE_TLS_CERT_DIR, problem);
        if (r >= 0)
                r = want(qemu_conf, "vnc_tls_x509_verify", "1", problem);
        if (r >= 0)
                r = want(qemu_conf, "vnc_tls_priority", isempty(priority) ? NULL : priority,
                         problem);
        return r;
}

int console_tls_qmp_set_priority(const char *priority, char **ret)
{
        /* the priority is made of names, ':', '+', '-' and '.': nothing to escape in JSON */
        if (isempty(priority) || strpbrk(priority, "\"\\\n"))
                return -EINVAL;
        if (asprintf(ret,
                     "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"" CONSOLE_TLS_CREDS_PATH
                     "\",\"property\":\"priority\",\"value\":\"%s\"}}",
                     priority) < 0)
                return -ENOMEM;
        return 0;
}
