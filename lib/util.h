/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "macro.h"

typedef uint64_t usec_t;
#define USEC_PER_MSEC   1000ULL
#define USEC_PER_SEC    1000000ULL
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR   (60ULL * USEC_PER_MINUTE)
#define USEC_PER_DAY    (24ULL * USEC_PER_HOUR)

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

static inline const char *strna(const char *s)
{
        return s ? s : "n/a";
}

static inline const char *strempty(const char *s)
{
        return s ? s : "";
}

static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline bool isempty(const char *s)
{
        return !s || !*s;
}

/* Returns the rest of s after prefix, or NULL when s does not start with it. */
const char *startswith(const char *s, const char *prefix);

/* NULL-terminated string arrays. */
char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char *const *l);
/* The strings of l one after the other, separator between them ("" for none). NULL: ENOMEM. */
char *strv_join(char *const *l, const char *separator);
int strv_push(char ***l, char *value); /* takes ownership of value, also on failure */
int strv_extend(char ***l, const char *value);
bool strv_contains(char *const *l, const char *s);
/* Removes (and frees) the first item equal to s, if any. */
void strv_remove(char **l, const char *s);
#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)

/* Splits on commas and white space, dropping empty items. */
int strv_split_list(const char *s, char ***ret);

/* Replaces *dst (freed) with the formatted text; NULL when out of memory (callers keep an
 * error code that says enough). */
_printf_(2, 3) void set_message(char **dst, const char *format, ...);
_printf_(2, 0) void set_messagev(char **dst, const char *format, va_list ap);

/* Replaces *p (freed) with a copy of s (NULL allowed). 1 when the value changed, 0 when it
 * was equal already, -ENOMEM (and *p unchanged) when out of memory. */
int free_and_strdup(char **p, const char *s);

/* Overwrites a secret before freeing it, so it is not left in freed heap memory. */
void erase_and_free(char *s);

/* Removes leading and trailing white space in place. */
char *strstrip(char *s);

/* Reads all of fd (up to max bytes, else -EFBIG) into a NUL-terminated buffer. */
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size);
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);

/* Writes a file atomically: temp file in the same directory, fsync, rename. */
int write_file_atomic(const char *path, const char *content, unsigned mode);

int parse_boolean(const char *s); /* 1, 0, or -EINVAL */

/* "500ms", "10s", "2min", "1h", "1min 30s"; a unit is required. */
int parse_duration(const char *s, usec_t *ret);
/* Formats usec as the shortest exact "1min 30s"-like string into buf. */
char *format_duration(char *buf, size_t size, usec_t usec);

/* Base-10 unsigned integer that fits in [min, max]. */
int parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* A canonical textual UUID (8-4-4-4-12 hex). */
bool uuid_is_valid(const char *s);

/* IPv4/IPv6 literal address; ret_family is AF_INET or AF_INET6. */
bool ip_address_is_valid(const char *s, int *ret_family);
/* 0.0.0.0 or :: (and their spellings). */
bool ip_address_is_any(const char *s);
bool ip_address_is_loopback(const char *s);
/* "a.b.c.d/len", "x::/len" or a bare address (a host prefix). */
bool cidr_is_valid(const char *s);
/* A DNS host name (RFC 1123 labels). */
bool hostname_is_valid(const char *s);

/* A timespec (a clock reading, a file time) in usec. */
usec_t timespec_usec(const struct timespec *ts);
/* The clock's time in usec. */
usec_t now_usec(clockid_t clock);
/* CLOCK_REALTIME in usec since the epoch (for records people read; no decision compares it
 * across nodes). */
usec_t now_realtime(void);

/* Current wall time in RFC 3339 UTC, e.g. 2026-11-24T01:42:17Z. */
char *format_timestamp_now(char *buf, size_t size);
/* The same for usec since the epoch. */
char *format_realtime(usec_t usec, char *buf, size_t size);

/* For a process that holds secrets (hostwardend: the BMC passwords): no core dump
 * (RLIMIT_CORE 0, PR_SET_DUMPABLE 0; the latter also keeps its /proc/PID/mem, environ and fd
 * from other processes of its uid without CAP_SYS_PTRACE). Negative errno on failure. */
int process_forbid_core_dumps(void);
