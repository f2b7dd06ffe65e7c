/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* cmocka wants these before its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>

/* Contents of tests/data/NAME ($HW_TEST_DATA), NUL-terminated; fails the test if missing. */
char *test_read_data(const char *name, size_t *ret_size);
/* A fresh directory under $TMPDIR (or /var/tmp); test_rm_rf() removes it. */
char *test_mkdtemp(void);
void test_rm_rf(const char *path);
/* Writes dir/name (creating parent directories). */
void test_write(const char *dir, const char *name, const char *content);
/* Contents of dir/name, NUL-terminated; fails the test if it cannot be read. */
char *test_read_file(const char *dir, const char *name);
/* Does haystack contain needle? Prints both on failure to help reading test logs. */
bool test_contains(const char *haystack, const char *needle);
