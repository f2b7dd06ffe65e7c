/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "log.h"
#include "util.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define MAX_FIELDS     24

static const char *log_ident = "hostwarden";
static int log_max_level = LOG_INFO;
static int log_to_stderr_only = -1; /* -1: not decided yet */

void log_setup(const char *ident)
{
        const char *e = getenv("HOSTWARDEN_LOG");

        log_ident = ident;
        log_to_stderr_only = e && streq(e, "stderr");
        e = getenv("HOSTWARDEN_LOG_LEVEL");
        if (e && streq(e, "debug"))
                log_max_level = LOG_DEBUG;
}

void log_set_max_level(int level)
{
        log_max_level = level;
}

int log_get_max_level(void)
{
        return log_max_level;
}

typedef struct JournalMsg {
        struct iovec iov[MAX_FIELDS * 4];
        uint64_t lens[MAX_FIELDS];
        size_t n_iov, n_lens;
} JournalMsg;

/* Native protocol: "KEY=value\n", or for values with a newline "KEY\n" + le64 size + value + "\n".
 */
static void journal_add(JournalMsg *m, const char *key, const char *value)
{
        if (!value || m->n_lens >= MAX_FIELDS)
                return;

        m->iov[m->n_iov++] = (struct iovec){ (void *)key, strlen(key) };
        if (!strchr(value, '\n')) {
                m->iov[m->n_iov++] = (struct iovec){ (void *)"=", 1 };
                m->iov[m->n_iov++] = (struct iovec){ (void *)value, strlen(value) };
        } else {
                m->lens[m->n_lens] = htole64((uint64_t)strlen(value));
                m->iov[m->n_iov++] = (struct iovec){ (void *)"\n", 1 };
                m->iov[m->n_iov++] = (struct iovec){ &m->lens[m->n_lens], sizeof(uint64_t) };
                m->iov[m->n_iov++] = (struct iovec){ (void *)value, strlen(value) };
        }
        m->iov[m->n_iov++] = (struct iovec){ (void *)"\n", 1 };
        m->n_lens++;
}

static int journal_send(int level, int error, const LogField *fields, const char *message)
{
        static const struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
        char prio[4], errno_str[16];
        _cleanup_close_ int fd = -EBADF;
        JournalMsg m = { .n_iov = 0 };
        struct msghdr mh = {
                .msg_name = (void *)&sa,
                .msg_namelen = sizeof(sa),
        };

        snprintf(prio, sizeof(prio), "%d", level);
        journal_add(&m, "PRIORITY", prio);
        journal_add(&m, "SYSLOG_IDENTIFIER", log_ident);
        journal_add(&m, "MESSAGE", message);
        if (error != 0) {
                snprintf(errno_str, sizeof(errno_str), "%d", error);
                journal_add(&m, "ERRNO", errno_str);
        }
        for (const LogField *f = fields; f && f->key; f++)
                journal_add(&m, f->key, f->value);

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        mh.msg_iov = m.iov;
        mh.msg_iovlen = m.n_iov;
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
                return negative_errno();
        return 0;
}

int log_fields(int level, int error, const LogField *fields, const char *format, ...)
{
        char message[2048];
        int saved_errno = errno;
        va_list ap;

        error = error < 0 ? -error : error;
        if (level > log_max_level)
                goto finish;

        /* %m prints strerror(error), as in systemd. */
        errno = error;
        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        if (log_to_stderr_only < 0)
                log_to_stderr_only = 0;
        if (log_to_stderr_only || journal_send(level, error, fields, message) < 0)
                fprintf(stderr, "%s: %s\n", log_ident, message);

finish:
        errno = saved_errno;
        return -error;
}
