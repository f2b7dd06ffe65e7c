/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl setup-console-tls: VeNCrypt on this node's VNC consoles from [console] (as
 * root, here): the certificate directory QEMU reads, and libvirt's qemu.conf. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "certcheck.h"
#include "config.h"
#include "console-tls.h"
#include "ctl.h"
#include "leases.h"
#include "migtls.h"
#include "nodecheck.h"
#include "paths.h"
#include "util.h"

#define LIBVIRT_SERVER_KEY "/etc/pki/libvirt/private/serverkey.pem"

/* Where the console's certificate comes from: QEMU's own (migration) directory, made for QEMU
 * to read, else libvirt's. The same certificate: it names the node, which is what a proxy
 * connects to. */
typedef struct Source {
        char ca[PATH_MAX + 32], cert[PATH_MAX + 32], key[PATH_MAX + 32];
        bool for_qemu; /* the key is already readable by QEMU: keep its owner and mode */
} Source;

static bool all_there(const Source *s)
{
        return access(s->ca, F_OK) >= 0 && access(s->cert, F_OK) >= 0 && access(s->key, F_OK) >= 0;
}

static int find_source(Source *ret)
{
        MigrationTlsProbe probe;

        migration_tls_probe_node(&probe);
        *ret = (Source){ .for_qemu = true };
        snprintf(ret->ca, sizeof(ret->ca), "%s/ca-cert.pem", probe.dir);
        snprintf(ret->cert, sizeof(ret->cert), "%s/server-cert.pem", probe.dir);
        snprintf(ret->key, sizeof(ret->key), "%s/server-key.pem", probe.dir);
        if (all_there(ret))
                return 0;
        *ret = (Source){};
        snprintf(ret->ca, sizeof(ret->ca), "%s", LIBVIRT_CA);
        snprintf(ret->cert, sizeof(ret->cert), "%s", LIBVIRT_SERVER_CERT);
        snprintf(ret->key, sizeof(ret->key), "%s", LIBVIRT_SERVER_KEY);
        if (all_there(ret))
                return 0;
        fprintf(stderr,
                "No certificate for the consoles: neither %s/{ca-cert,server-cert,server-key}.pem "
                "(QEMU's) nor %s, %s and %s (libvirt's) are all there. Issue this node a "
                "certificate from the cluster's CA first (docs/console-tls.md).\n",
                probe.dir, LIBVIRT_CA, LIBVIRT_SERVER_CERT, LIBVIRT_SERVER_KEY);
        return -ENOENT;
}

/* The group QEMU runs as (qemu.conf's group, libvirt's default libvirt-qemu), for the key. */
static gid_t qemu_gid(const char *qemu_conf)
{
        _cleanup_free_ char *name = NULL;
        struct group *g;

        if (libvirt_conf_get(qemu_conf, "group", &name) < 0)
                name = NULL;
        g = getgrnam(name ?: "libvirt-qemu");
        return g ? g->gr_gid : 0;
}

/* Replaces path with text (owner uid:gid, mode), unless it holds text already: 1 written, 0
 * unchanged. The new file is root's 0600 until it is complete, then renamed over the old. */
static int install(const char *path, const char *text, uid_t uid, gid_t gid, mode_t mode)
{
        _cleanup_free_ char *old = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(text);
        struct stat st;
        int r;

        if (read_full_file(path, 1 << 20, &old, NULL) >= 0 && streq(old, text) &&
            stat(path, &st) >= 0 && st.st_uid == uid && st.st_gid == gid &&
            (st.st_mode & 07777) == mode) {
                explicit_bzero(old, strlen(old));
                return 0;
        }
        if (old)
                explicit_bzero(old, strlen(old));
        if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        r = write(fd, text, len) == (ssize_t)len ? 0 : -EIO;
        if (r >= 0 && (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0 || fsync(fd) < 0))
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void)unlink(tmp);
        return r < 0 ? r : 1;
}

/* The certificate must be one a proxy accepts: the CA's, valid, naming the node. */
static int check_certificate(const Config *c, const Source *s)
{
        const char *const names[] = { strempty(c->node.address), c->node.name, NULL };
        CertCheck cc;

        cert_check(s->cert, s->ca, names, time(NULL), &cc);
        if (cc.error < 0)
                fprintf(stderr, "%s\n", cc.detail);
        else if (!cc.signed_by_ca)
                fprintf(stderr, "%s is not signed by the CA in %s.\n", s->cert, s->ca);
        else if (cc.expired || cc.not_yet_valid)
                fprintf(stderr, "%s is %s: renew it first.\n", s->cert,
                        cc.expired ? "expired" : "not valid yet");
        else if (cc.missing_name[0])
                fprintf(stderr,
                        "%s does not name %s, which the console proxies connect to: issue it "
                        "with that name among its subject alternative names.\n",
                        s->cert, cc.missing_name);
        else
                return 0;
        return -EINVAL;
}

static int setup_certificates(const Source *s, const char *qemu_conf)
{
        _cleanup_free_ char *ca = NULL, *cert = NULL, *key = NULL;
        static const char *const names[] = { "ca-cert.pem", "server-cert.pem", "server-key.pem" };
        uid_t key_uid = 0;
        gid_t key_gid = qemu_gid(qemu_conf);
        mode_t key_mode = key_gid ? 0640 : 0600;
        struct stat st;
        int r;

        if (s->for_qemu && stat(s->key, &st) >= 0) {
                key_uid = st.st_uid;
                key_gid = st.st_gid;
                key_mode = st.st_mode & 0750; /* never for others */
        }
        r = read_full_file(s->ca, 1 << 20, &ca, NULL);
        if (r >= 0)
                r = read_full_file(s->cert, 1 << 20, &cert, NULL);
        if (r >= 0)
                r = read_full_file(s->key, 1 << 20, &key, NULL);
        if (r < 0) {
                fprintf(stderr, "Cannot read the certificates: %s\n", strerror(-r));
                goto finish;
        }
        if (arg_dry_run) {
                printf("Would copy %s, %s and %s to %s/{%s,%s,%s} (the key %04o, group %u).\n",
                       s->ca, s->cert, s->key, CONSOLE_TLS_CERT_DIR, names[0], names[1], names[2],
                       (unsigned)key_mode, (unsigned)key_gid);
                goto finish;
        }
        if (mkdir(CONSOLE_TLS_CERT_DIR, 0755) < 0 && errno != EEXIST) {
                r = -errno;
                fprintf(stderr, "Cannot create %s: %s\n", CONSOLE_TLS_CERT_DIR, strerror(-r));
                goto finish;
        }
        {
                const char *texts[] = { ca, cert, key };
                const char *from[] = { s->ca, s->cert, s->key };

                for (size_t i = 0; i < ELEMENTSOF(names) && r >= 0; i++) {
                        _cleanup_free_ char *path = NULL;

                        if (asprintf(&path, "%s/%s", CONSOLE_TLS_CERT_DIR, names[i]) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        r = i == 2 ? install(path, texts[i], key_uid, key_gid, key_mode)
                                   : install(path, texts[i], 0, 0, 0644);
                        if (r < 0)
                                fprintf(stderr, "Cannot write %s: %s\n", path, strerror(-r));
                        else
                                printf("%s %s (from %s)\n", r > 0 ? "Wrote" : "Unchanged", path,
                                       from[i]);
                }
        }
finish:
        if (key)
                explicit_bzero(key, strlen(key));
        return r < 0 ? r : 0;
}

/* Whether text has line as one of its lines. */
static bool has_line(const char *text, const char *line, size_t n)
{
        for (const char *p = text; (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
                        return true;
        return false;
}

/* The lines of after that before does not have (our own comments aside): what changed. */
static void print_changes(const char *before, const char *after)
{
        for (const char *p = after; *p;) {
                size_t n = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, n);

                if (line && line[0] && !startswith(line, "# hostwarden:") &&
                    !has_line(before, line, n))
                        printf("  %s\n", line);
                p += n;
                if (*p)
                        p++;
        }
}

static int setup_qemu_conf(const char *qemu, const char *priority)
{
        _cleanup_free_ char *qemu_new = NULL;
        struct stat st;
        int r;

        r = console_tls_qemu_conf(qemu, priority, &qemu_new);
        if (r < 0) {
                fprintf(stderr, "Cannot set up %s: %s\n", LIBVIRT_QEMU_CONF, strerror(-r));
                return r;
        }
        if (streq(qemu, qemu_new)) {
                printf("Unchanged %s\n", LIBVIRT_QEMU_CONF);
                return 0;
        }
        printf("%s %s:\n", arg_dry_run ? "Would set in" : "Set in", LIBVIRT_QEMU_CONF);
        print_changes(qemu, qemu_new);
        if (arg_dry_run)
                return 0;
        r = write_file_atomic(LIBVIRT_QEMU_CONF, qemu_new,
                              stat(LIBVIRT_QEMU_CONF, &st) >= 0 ? st.st_mode & 07777 : 0600);
        if (r < 0)
                fprintf(stderr, "Cannot write %s: %s\n", LIBVIRT_QEMU_CONF, strerror(-r));
        return r < 0 ? r : 1;
}

int verb_setup_console_tls(sd_bus *bus)
{
        _cleanup_(config_freep) Config *c = ctl_load_config(false);
        _cleanup_free_ char *qemu = NULL, *priority = NULL;
        gnutls_priority_t cache;
        const char *where = NULL;
        Source src;
        int r;

        if (!c)
                return 1;
        if (!c->console.tls) {
                fprintf(stderr,
                        "[console] tls = no in %s/hostwarden.conf: nothing to set up. Set it to "
                        "yes first.\n",
                        hw_conf_dir());
                return 1;
        }
        r = console_tls_priority(c->console.tls_min_version, c->console.tls_ciphers, &priority);
        if (r < 0)
                return 1;
        /* what QEMU would refuse when a console opens: refused here, before anything changes */
        if (!isempty(priority)) {
                if (gnutls_priority_init(&cache, priority, &where) < 0) {
                        fprintf(stderr, "GnuTLS refuses the priority '%s' (at '%s').\n", priority,
                                strna(where));
                        return 1;
                }
                gnutls_priority_deinit(cache);
        }
        r = read_full_file(LIBVIRT_QEMU_CONF, 4 << 20, &qemu, NULL);
        if (r == -ENOENT) {
                qemu = strdup("");
                r = qemu ? 0 : -ENOMEM;
        }
        if (r < 0) {
                fprintf(stderr, "Cannot read %s: %s\n", LIBVIRT_QEMU_CONF, strerror(-r));
                return 1;
        }
        if (find_source(&src) < 0 || check_certificate(c, &src) < 0 ||
            setup_certificates(&src, qemu) < 0)
                return 1;
        r = setup_qemu_conf(qemu, priority);
        if (r < 0)
                return 1;
        if (arg_dry_run)
                return 0;
        printf("Consoles: VeNCrypt (x509, client certificates verified), TLS priority %s.\n"
               "%s"
               "Guests started from now on get it; running guests keep their console as it is "
               "until they restart or migrate to a node set up alike. 'hostwardenctl check' "
               "verifies it.\n",
               isempty(priority) ? "QEMU's default" : priority,
               r > 0 ? "Restart libvirtd (or virtqemud) for it to take effect: "
                       "systemctl restart libvirtd (running guests keep running).\n"
                     : "");
        return 0;
}
