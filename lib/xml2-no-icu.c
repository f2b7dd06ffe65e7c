/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Linked only into hostwarden-hook when it is linked statically (meson option hook_static).
 * Debian builds libxml2 with ICU, and linking ICU (and libstdc++ behind it) would make the
 * hook many megabytes of converters it never uses: domain XML is UTF-8 (docs/decisions.md). Domain
 * XML is UTF-8, which libxml2 decodes by itself; other encodings still go through glibc's iconv.
 * These definitions answer libxml2's ICU converter look-up with "no such converter", which libxml2
 * handles as an unsupported encoding. They are never reached for UTF-8 input.
 *
 * HW_ICU_SUFFIX is ICU's symbol version suffix (e.g. _72), set by meson from icu-uc.
 */
#include <stddef.h>

#ifndef HW_ICU_SUFFIX
#error "HW_ICU_SUFFIX must be set"
#endif

#define CAT_(a, b) a##b
#define CAT(a, b)  CAT_(a, b)
#define ICU(name)  CAT(name, HW_ICU_SUFFIX)

typedef int UErrorCode;
#define U_FILE_ACCESS_ERROR 4 /* what ICU says when it has no data for a converter */

void *ICU(ucnv_open)(const char *name, UErrorCode *err);
void ICU(ucnv_close)(void *converter);
__attribute__((noreturn)) void ICU(ucnv_convertEx)(void);
void ICU(ucnv_setToUCallBack)(void *converter, const void *action, const void *context,
                              void *old_action, const void **old_context, UErrorCode *err);
void ICU(ucnv_setFromUCallBack)(void *converter, const void *action, const void *context,
                                void *old_action, const void **old_context, UErrorCode *err);
void ICU(UCNV_TO_U_CALLBACK_STOP)(void);
void ICU(UCNV_FROM_U_CALLBACK_STOP)(void);

void *ICU(ucnv_open)(const char *name, UErrorCode *err)
{
        (void)name;
        if (err)
                *err = U_FILE_ACCESS_ERROR;
        return NULL;
}

void ICU(ucnv_close)(void *converter)
{
        (void)converter;
}

/* Only ever called on a converter ucnv_open() returned, and it returns none. */
void ICU(ucnv_convertEx)(void)
{
        __builtin_trap();
}

void ICU(ucnv_setToUCallBack)(void *converter, const void *action, const void *context,
                              void *old_action, const void **old_context, UErrorCode *err)
{
        (void)converter, (void)action, (void)context, (void)old_action, (void)old_context;
        if (err)
                *err = U_FILE_ACCESS_ERROR;
}

void ICU(ucnv_setFromUCallBack)(void *converter, const void *action, const void *context,
                                void *old_action, const void **old_context, UErrorCode *err)
{
        (void)converter, (void)action, (void)context, (void)old_action, (void)old_context;
        if (err)
                *err = U_FILE_ACCESS_ERROR;
}

void ICU(UCNV_TO_U_CALLBACK_STOP)(void)
{
}

void ICU(UCNV_FROM_U_CALLBACK_STOP)(void)
{
}
