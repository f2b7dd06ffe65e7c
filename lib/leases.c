/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leases.h"
#include "util.h"

int leases_lockd_conf(const char *lockspace_dir, char **ret)
{
        if (isempty(lockspace_dir) || lockspace_dir[0] != '/' || strpbrk(lockspace_dir, "\"\n\\"))
                return -EINVAL;
        if (asprintf(
                    ret,
                    "# Written by 'hostwardenctl setup-leases' from [locking] in hostwarden.conf:\n"
                    "# a lease on every disk of every guest, held by virtlockd while it runs, in\n"
                    "# a lock space on the shared storage (see hostwarden.conf(5)).\n"
                    "auto_disk_leases = 1\n"
                    "require_lease_for_disks = 1\n"
                    "file_lockspace_dir = \"%s\"\n",
                    lockspace_dir) < 0)
                return -ENOMEM;
        return 0;
}

const char *libvirt_conf_find(const char *text, const char *key, size_t *ret_len)
{
        const char *found = NULL;
        size_t klen = strlen(key);

        for (const char *p = text; p && *p;) {
                size_t len = strcspn(p, "\n");
                const char *q = p + strspn(p, " \t");

                if (strncmp(q, key, klen) == 0 && strchr(" \t=", q[klen]) &&
                    q[klen + strspn(q + klen, " \t")] == '=') {
                        found = p;
                        *ret_len = len;
                }
                p += len;
                if (*p)
                        p++;
        }
        return found;
}

int libvirt_conf_get(const char *text, const char *key, char **ret)
{
        size_t len = 0;
        const char *line = libvirt_conf_find(text, key, &len), *v, *end;

        if (!line)
                return -ENOENT;
        v = (const char *)memchr(line, '=', len) + 1;
        end = line + len;
        /* a comment after the value ends it */
        for (const char *c = v; c < end; c++)
                if (*c == '#') {
                        end = c;
                        break;
                }
        while (v < end && strchr(" \t", *v))
                v++;
        while (end > v && strchr(" \t\r", end[-1]))
                end--;
        if (end - v >= 2 && *v == '"' && end[-1] == '"') {
                v++;
                end--;
        }
        *ret = strndup(v, (size_t)(end - v));
        return *ret ? 0 : -ENOMEM;
}

int libvirt_conf_set(const char *text, const char *key, const char *value, const char *why,
                     char **ret)
{
        size_t len = 0, n = strlen(text);
        const char *line = libvirt_conf_find(text, key, &len);

        if (line) {
                if (asprintf(ret, "%.*s%s = %s%s", (int)(line - text), text, key, value,
                             line + len) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (asprintf(ret, "%s%s# hostwarden: %s\n%s = %s\n", text,
                     n > 0 && text[n - 1] != '\n' ? "\n" : "", why, key, value) < 0)
                return -ENOMEM;
        return 0;
}

int leases_qemu_conf(const char *qemu_conf, char **ret)
{
        return libvirt_conf_set(qemu_conf, "lock_manager", "\"lockd\"",
                                "disk leases (hostwardenctl setup-leases)", ret);
}

static int want(const char *text, const char *file, const char *key, const char *value,
                char **problem)
{
        _cleanup_free_ char *v = NULL;
        int r = libvirt_conf_get(text, key, &v);

        if (r == -ENOMEM)
                return r;
        if (r >= 0 && streq(v, value))
                return 0;
        if (asprintf(problem, "%s sets %s = %s, not %s", file, key, r < 0 ? "nothing" : v, value) <
            0)
                return -ENOMEM;
        return -EINVAL;
}

int leases_verify(const char *qemu_conf, const char *lockd_conf, const char *lockspace_dir,
                  char **problem)
{
        int r;

        *problem = NULL;
        r = want(qemu_conf, LIBVIRT_QEMU_CONF, "lock_manager", "lockd", problem);
        if (r >= 0)
                r = want(lockd_conf, LIBVIRT_LOCKD_CONF, "auto_disk_leases", "1", problem);
        if (r >= 0)
                r = want(lockd_conf, LIBVIRT_LOCKD_CONF, "require_lease_for_disks", "1", problem);
        if (r >= 0)
                r = want(lockd_conf, LIBVIRT_LOCKD_CONF, "file_lockspace_dir", lockspace_dir,
                         problem);
        return r;
}
