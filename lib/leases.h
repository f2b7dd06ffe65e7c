/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Disk leases, the second line against a guest running twice (issue 9): libvirt's lockd
 * lock manager with indirect leases (a lock file per disk path, named by its SHA-256, in a
 * lock space on the shared storage), held by virtlockd for as long as the guest runs. A
 * start of the same disks on another node then fails in libvirt itself, whatever the hook's
 * deny list says. [locking] in hostwarden.conf says whether and where; these functions
 * write and check libvirt's side of it.
 */

#define LIBVIRT_QEMU_CONF  "/etc/libvirt/qemu.conf"
#define LIBVIRT_LOCKD_CONF "/etc/libvirt/qemu-lockd.conf"

/* qemu-lockd.conf for lockspace_dir: leases on every disk, required, indirect. */
int leases_lockd_conf(const char *lockspace_dir, char **ret);

/* qemu.conf's text with lock_manager = "lockd" (an existing setting replaced, else added). */
int leases_qemu_conf(const char *qemu_conf, char **ret);

/* The value of key in a libvirt configuration text (the last uncommented "key = value"),
 * quotes removed; -ENOENT if it is not set. */
int libvirt_conf_get(const char *text, const char *key, char **ret);

/* The line of a libvirt configuration text that sets key (the last uncommented one): its
 * start and length; NULL when none does. */
const char *libvirt_conf_find(const char *text, const char *key, size_t *ret_len);

/* text with key = value (value as written: quoted if a string), the setting that is there
 * replaced in place, else appended after a comment "# hostwarden: why". */
int libvirt_conf_set(const char *text, const char *key, const char *value, const char *why,
                     char **ret);

/* 0 if the two texts set up leases in lockspace_dir; else -EINVAL and *problem says what
 * differs (for an operator). */
int leases_verify(const char *qemu_conf, const char *lockd_conf, const char *lockspace_dir,
                  char **problem);
