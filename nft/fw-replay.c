/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fw-replay.h"
#include "util.h"

static int read_blob(const char *runtime_dir, const char *name, uint64_t digest, char **ret,
                     FwBlobHeader *ret_header)
{
        _cleanup_free_ char *data = NULL;
        char path[4096];
        FwBlobHeader h;
        size_t size;
        int r;

        if (snprintf(path, sizeof(path), "%s/%s/%s", runtime_dir, FW_BLOB_SUBDIR, name) >=
            (int)sizeof(path))
                return -ENAMETOOLONG;
        r = read_full_file(path, FW_BLOB_MAX_SIZE, &data, &size);
        if (r == -ENOENT)
                return -ESTALE;
        if (r < 0)
                return r;
        if (size < sizeof(h))
                return -ESTALE;
        memcpy(&h, data, sizeof(h));
        if (memcmp(h.magic, FW_BLOB_MAGIC, sizeof(h.magic)) != 0 || h.digest != digest ||
            h.size != size - sizeof(h))
                return -ESTALE;
        *ret = TAKE_PTR(data);
        *ret_header = h;
        return 0;
}

/*
 * Releasing a netfilter netlink socket makes the kernel finish destroying what earlier
 * transactions removed, an RCU grace period (nft_rcv_nl_event() on NETLINK_URELEASE):
 * 6-20 ms here whenever the batch removed window elements (closing; opening only adds).
 * libvirtd waits for the hook, so a child holds the last reference and releases it after
 * the hook has exited. The child
 * first closes stdin, stdout and stderr (libvirt's pipes), so nothing waits for it.
 */
static void release_detached(int fd)
{
        pid_t pid = fork();

        if (pid == 0) {
                (void)close(STDIN_FILENO);
                (void)close(STDOUT_FILENO);
                (void)close(STDERR_FILENO);
                (void)fd; /* the last reference: released by our exit */
                _exit(0);
        }
        /* parent (or fork failed): drop our reference as usual */
}

int fw_replay(const char *runtime_dir, const char *name, uint64_t digest, bool removes)
{
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        char buf[8192];
        FwBlobHeader h;
        int r, first_error = 0;

        r = read_blob(runtime_dir, name, digest, &data, &h);
        if (r < 0)
                return r;

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
        if (fd < 0)
                return negative_errno();
        if (sendto(fd, data + sizeof(h), h.size, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
                return negative_errno();

        /* The kernel answers while it processes the batch: errors for what failed and the
         * ack of the last message when all went through. */
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                r = poll(&p, 1, first_error ? 0 : 5000);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return first_error ? first_error : -ETIMEDOUT;
                n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0)
                        return first_error ? first_error : negative_errno();
                int len = (int)n;
                for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, len);
                     m = NLMSG_NEXT(m, len)) {
                        const struct nlmsgerr *e = NLMSG_DATA(m);

                        if (m->nlmsg_type != NLMSG_ERROR)
                                continue;
                        if (e->error != 0 && first_error == 0)
                                first_error = e->error;
                        if (e->error == 0 && m->nlmsg_seq == h.last_seq) {
                                if (removes)
                                        release_detached(fd);
                                return first_error;
                        }
                }
        }
}

const char *fw_blob_name(FwWindow w)
{
        switch (w) {
        case FW_WINDOW_OPEN:
                return FW_BLOB_OPEN;
        default:
                return FW_BLOB_CLOSE;
        }
}
