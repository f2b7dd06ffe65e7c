/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl setup-leases: libvirt's lockd leases from [locking] (this node, as root). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "ctl.h"
#include "leases.h"
#include "paths.h"
#include "util.h"

/* Replaces path with text, keeping its mode (or mode, for a new file). */
static int replace(const char *path, const char *text, unsigned mode)
{
        struct stat st;

        if (stat(path, &st) >= 0)
                mode = st.st_mode & 07777;
        return write_file_atomic(path, text, mode);
}

int verb_setup_leases(sd_bus *bus)
{
        _cleanup_(config_freep) Config *c = ctl_load_config(false);
        _cleanup_free_ char *lockd = NULL, *qemu = NULL, *qemu_new = NULL;
        int r;

        if (!c)
                return 1;
        if (!c->locking.disk_leases) {
                fprintf(stderr,
                        "[locking] disk_leases = no in %s/hostwarden.conf: nothing to set "
                        "up. Set it to yes first.\n",
                        hw_conf_dir());
                return 1;
        }
        if (mkdir(c->locking.lockspace_dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr,
                        "Cannot create the lock space %s: %m (it belongs on the shared "
                        "storage, where instances_path is).\n",
                        c->locking.lockspace_dir);
                return 1;
        }
        r = leases_lockd_conf(c->locking.lockspace_dir, &lockd);
        if (r >= 0)
                r = replace(LIBVIRT_LOCKD_CONF, lockd, 0644);
        if (r < 0) {
                fprintf(stderr, "Cannot write %s: %s\n", LIBVIRT_LOCKD_CONF, strerror(-r));
                return 1;
        }
        r = read_full_file(LIBVIRT_QEMU_CONF, 4 << 20, &qemu, NULL);
        if (r == -ENOENT) {
                qemu = strdup("");
                r = qemu ? 0 : -ENOMEM;
        }
        if (r >= 0)
                r = leases_qemu_conf(qemu, &qemu_new);
        if (r >= 0 && !streq(qemu, qemu_new))
                r = replace(LIBVIRT_QEMU_CONF, qemu_new, 0600);
        if (r < 0) {
                fprintf(stderr, "Cannot set lock_manager in %s: %s\n", LIBVIRT_QEMU_CONF,
                        strerror(-r));
                return 1;
        }
        printf("Disk leases set up: %s (lock_manager = \"lockd\") and %s (lock space %s).\n"
               "Restart libvirtd for them to take effect; guests that run now get their leases "
               "at their next start. 'hostwardenctl check' verifies it.\n",
               LIBVIRT_QEMU_CONF, LIBVIRT_LOCKD_CONF, c->locking.lockspace_dir);
        return 0;
}
