/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _unused_       __attribute__((unused))
#define _noreturn_     __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _sentinel_     __attribute__((sentinel))
#define _warn_unused_  __attribute__((warn_unused_result))
#define _likely_(x)    (__builtin_expect(!!(x), 1))
#define _unlikely_(x)  (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define STRLEN(s)     (sizeof(s) - 1)
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

/* Takes ownership of a pointer out of a _cleanup_ variable. */
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;              \
                _p_;                     \
        })

#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -EBADF;   \
                _fd_;            \
        })

/* Defines a void foop(T **p) that calls T *foo(T *) for use with _cleanup_(). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p)     \
        {                                       \
                if (*p)                         \
                        *p = func(*p);          \
        }

/* Defines a void foo_void(void *p) that calls T *foo(T *), for callbacks that free what they
 * were handed as void * (JobFreeFunc). */
#define DEFINE_VOID_FREE_FUNC(type, func)       \
        static inline void func##_void(void *p) \
        {                                       \
                (void)func((type *)p);          \
        }

/* name_to_string() and name_from_string() of an enum, from its names in
 * `static const char *const name_table[_..._MAX]`. to_string: NULL out of range;
 * from_string: invalid for NULL or a name not in the table. */
#define DEFINE_STRING_TABLE_TO_STRING(name, type)                                               \
        const char *name##_to_string(type i)                                                    \
        {                                                                                       \
                return i >= 0 && (size_t)i < ELEMENTSOF(name##_table) ? name##_table[i] : NULL; \
        }
#define DEFINE_STRING_TABLE_FROM_STRING(name, type, invalid)                    \
        type name##_from_string(const char *s)                                  \
        {                                                                       \
                for (size_t i = 0; s && i < ELEMENTSOF(name##_table); i++)      \
                        if (name##_table[i] && strcmp(s, name##_table[i]) == 0) \
                                return (type)i;                                 \
                return invalid;                                                 \
        }
#define DEFINE_STRING_TABLE_LOOKUP(name, type, invalid) \
        DEFINE_STRING_TABLE_TO_STRING(name, type)       \
        DEFINE_STRING_TABLE_FROM_STRING(name, type, invalid)

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                (void)close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd)
{
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
        if (*f)
                (void)fclose(*f);
        *f = NULL;
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* errno of a failed libc call as a negative value, never 0. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}
