/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

const char *startswith(const char *s, const char *prefix)
{
        size_t l = strlen(prefix);

        if (strncmp(s, prefix, l) != 0)
                return NULL;
        return s + l;
}

char **strv_free(char **l)
{
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l)
{
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

char *strv_join(char *const *l, const char *separator)
{
        size_t len = 1, sep = strlen(separator);
        char *out, *p;

        for (size_t i = 0; l && l[i]; i++)
                len += strlen(l[i]) + (i > 0 ? sep : 0);
        out = p = malloc(len);
        if (!out)
                return NULL;
        *p = 0;
        for (size_t i = 0; l && l[i]; i++)
                p = stpcpy(i > 0 ? stpcpy(p, separator) : p, l[i]);
        return out;
}

int strv_push(char ***l, char *value)
{
        size_t n = strv_length(*l);
        char **t;

        t = realloc(*l, sizeof(char *) * (n + 2));
        if (!t) {
                free(value);
                return -ENOMEM;
        }
        t[n] = value;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int strv_extend(char ***l, const char *value)
{
        char *v = strdup(value);

        if (!v)
                return -ENOMEM;
        return strv_push(l, v);
}

void set_messagev(char **dst, const char *format, va_list ap)
{
        char *s;

        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        free(*dst);
        *dst = s;
}

void set_message(char **dst, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        set_messagev(dst, format, ap);
        va_end(ap);
}

bool strv_contains(char *const *l, const char *s)
{
        STRV_FOREACH (i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

void strv_remove(char **l, const char *s)
{
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s)) {
                        free(l[i]);
                        memmove(l + i, l + i + 1, (strv_length(l + i + 1) + 1) * sizeof(char *));
                        return;
                }
}

int strv_split_list(const char *s, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        const char *p = s;
        int r;

        for (;;) {
                size_t n;

                p += strspn(p, ", \t\r\n");
                if (!*p)
                        break;
                n = strcspn(p, ", \t\r\n");
                char *item = strndup(p, n);
                if (!item)
                        return -ENOMEM;
                r = strv_push(&l, item);
                if (r < 0)
                        return r;
                p += n;
        }

        if (!l) {
                /* An empty list is an empty array, not NULL, so callers can tell "set to nothing".
                 */
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int free_and_strdup(char **p, const char *s)
{
        char *t = NULL;

        if (streq_ptr(*p, s))
                return 0;
        if (s && !(t = strdup(s)))
                return -ENOMEM;
        free(*p);
        *p = t;
        return 1;
}

void erase_and_free(char *s)
{
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

char *strstrip(char *s)
{
        char *e;

        while (isspace((unsigned char)*s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = 0;
        return s;
}

int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;

        for (;;) {
                ssize_t k;

                if (alloc - size < 4096) {
                        size_t n = alloc ? alloc * 2 : 32768;
                        char *t;

                        if (n > max + 1)
                                n = max + 1;
                        if (n <= size)
                                return -EFBIG;
                        t = realloc(buf, n + 1);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        alloc = n;
                }

                k = read(fd, buf + size, alloc - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                size += (size_t)k;
                if (size > max)
                        return -EFBIG;
        }

        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = -EBADF;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        return read_full_fd(fd, max, ret, ret_size);
}

int write_file_atomic(const char *path, const char *content, unsigned mode)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(content), done = 0;
        int r;

        if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
                return -ENOMEM;

        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return negative_errno();

        while (done < len) {
                ssize_t k = write(fd, content + done, len - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto fail;
                }
                done += (size_t)k;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                goto fail;
        }
        return 0;

fail:
        (void)unlink(tmp);
        return r;
}

int parse_boolean(const char *s)
{
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

/* The decimal number at the start of s: digits only (strtoull() would also take blanks and a
 * sign), -ERANGE if it does not fit. *ret_end: the first character after it. */
static int parse_u64_strict(const char *s, uint64_t *ret, const char **ret_end)
{
        unsigned long long v;
        char *end;

        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;
        *ret = v;
        *ret_end = end;
        return 0;
}

static const struct {
        const char *suffix;
        usec_t usec;
} duration_units[] = {
        /* Longest suffixes first so "min" is not read as "m" + garbage; "d" for [history]. */
        { "min", USEC_PER_MINUTE }, { "ms", USEC_PER_MSEC }, { "us", 1 },
        { "h", USEC_PER_HOUR },     { "s", USEC_PER_SEC },   { "d", USEC_PER_DAY },
};

int parse_duration(const char *s, usec_t *ret)
{
        const char *p = s;
        usec_t total = 0;
        bool any = false;

        for (;;) {
                uint64_t v;
                size_t i;
                int r;

                while (isspace((unsigned char)*p))
                        p++;
                if (!*p)
                        break;
                r = parse_u64_strict(p, &v, &p);
                if (r < 0)
                        return r;
                while (isspace((unsigned char)*p))
                        p++;

                for (i = 0; i < ELEMENTSOF(duration_units); i++) {
                        const char *rest = startswith(p, duration_units[i].suffix);
                        if (rest && !isalpha((unsigned char)*rest)) {
                                p = rest;
                                break;
                        }
                }
                if (i >= ELEMENTSOF(duration_units))
                        return -EINVAL; /* a bare number is ambiguous: 500 ms or 500 s? */

                if (v > UINT64_MAX / duration_units[i].usec ||
                    total > UINT64_MAX - v * duration_units[i].usec)
                        return -ERANGE;
                total += v * duration_units[i].usec;
                any = true;
        }

        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

char *format_duration(char *buf, size_t size, usec_t usec)
{
        static const struct {
                const char *suffix;
                usec_t usec;
        } units[] = {
                { "h", USEC_PER_HOUR },
                { "min", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC },
                { "ms", USEC_PER_MSEC },
                { "us", 1 },
        };
        size_t off = 0;

        if (size == 0)
                return buf;
        buf[0] = 0;
        if (usec == 0) {
                snprintf(buf, size, "0s");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(units) && usec > 0; i++) {
                usec_t n = usec / units[i].usec;
                int k;

                if (n == 0)
                        continue;
                k = snprintf(buf + off, size - off, "%s%" PRIu64 "%s", off ? " " : "", n,
                             units[i].suffix);
                if (k < 0 || (size_t)k >= size - off)
                        break;
                off += (size_t)k;
                usec -= n * units[i].usec;
        }
        return buf;
}

int parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        const char *end;
        uint64_t v;
        int r;

        r = parse_u64_strict(s, &v, &end);
        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

bool uuid_is_valid(const char *s)
{
        static const unsigned dashes[] = { 8, 13, 18, 23 };
        size_t i, d = 0;

        if (strlen(s) != 36)
                return false;
        for (i = 0; i < 36; i++) {
                if (d < ELEMENTSOF(dashes) && i == dashes[d]) {
                        if (s[i] != '-')
                                return false;
                        d++;
                } else if (!isxdigit((unsigned char)s[i]))
                        return false;
        }
        return true;
}

bool ip_address_is_valid(const char *s, int *ret_family)
{
        unsigned char buf[sizeof(struct in6_addr)];

        if (inet_pton(AF_INET, s, buf) == 1) {
                if (ret_family)
                        *ret_family = AF_INET;
                return true;
        }
        if (inet_pton(AF_INET6, s, buf) == 1) {
                if (ret_family)
                        *ret_family = AF_INET6;
                return true;
        }
        return false;
}

bool ip_address_is_any(const char *s)
{
        struct in_addr a4;
        struct in6_addr a6;

        if (inet_pton(AF_INET, s, &a4) == 1)
                return a4.s_addr == htonl(INADDR_ANY);
        if (inet_pton(AF_INET6, s, &a6) == 1)
                return IN6_IS_ADDR_UNSPECIFIED(&a6);
        return false;
}

bool ip_address_is_loopback(const char *s)
{
        struct in_addr a4;
        struct in6_addr a6;

        if (inet_pton(AF_INET, s, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, s, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

bool cidr_is_valid(const char *s)
{
        char addr[INET6_ADDRSTRLEN + 1];
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        uint64_t len;
        int family;

        if (n == 0 || n >= sizeof(addr))
                return false;
        memcpy(addr, s, n);
        addr[n] = 0;
        if (!ip_address_is_valid(addr, &family))
                return false;
        if (!slash)
                return true;
        return parse_uint_range(slash + 1, 0, family == AF_INET ? 32 : 128, &len) == 0;
}

bool hostname_is_valid(const char *s)
{
        size_t label = 0, n = strlen(s);

        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (c == '.') {
                        if (label == 0 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!isalnum((unsigned char)c) && c != '-' && c != '_')
                        return false;
                if (c == '-' && label == 0)
                        return false;
                if (++label > 63)
                        return false;
        }
        return s[n - 1] != '-';
}

char *format_realtime(usec_t usec, char *buf, size_t size)
{
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;

        gmtime_r(&t, &tm);
        if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && size > 0)
                buf[0] = 0;
        return buf;
}

char *format_timestamp_now(char *buf, size_t size)
{
        return format_realtime(now_realtime(), buf, size);
}

usec_t timespec_usec(const struct timespec *ts)
{
        return (usec_t)ts->tv_sec * USEC_PER_SEC + (usec_t)ts->tv_nsec / 1000;
}

usec_t now_usec(clockid_t clock)
{
        struct timespec ts;

        (void)clock_gettime(clock, &ts);
        return timespec_usec(&ts);
}

usec_t now_realtime(void)
{
        return now_usec(CLOCK_REALTIME);
}

int process_forbid_core_dumps(void)
{
        const struct rlimit none = { 0, 0 };

        if (setrlimit(RLIMIT_CORE, &none) < 0)
                return -errno;
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        return 0;
}
