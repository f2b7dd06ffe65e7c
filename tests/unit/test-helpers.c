/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-helpers.h"
#include "util.h"

char *test_read_data(const char *name, size_t *ret_size)
{
        const char *dir = getenv("HW_TEST_DATA");
        char path[PATH_MAX];
        char *text = NULL;
        int r;

        if (!dir)
                fail_msg("HW_TEST_DATA is not set (run the tests through meson test)");
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        r = read_full_file(path, 64 * 1024 * 1024, &text, ret_size);
        if (r < 0)
                fail_msg("cannot read test data %s: %s", path, strerror(-r));
        return text;
}

char *test_mkdtemp(void)
{
        const char *base = getenv("TMPDIR");
        char *path = NULL;

        if (asprintf(&path, "%s/hwtest-XXXXXX", base ? base : "/var/tmp") < 0)
                fail_msg("out of memory");
        if (!mkdtemp(path))
                fail_msg("mkdtemp %s: %s", path, strerror(errno));
        return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path) < 0 ? -1 : 0;
}

void test_rm_rf(const char *path)
{
        if (path)
                (void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void test_write(const char *dir, const char *name, const char *content)
{
        char path[PATH_MAX];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        for (char *p = strchr(path + strlen(dir) + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = 0;
                (void)mkdir(path, 0755);
                *p = '/';
        }
        f = fopen(path, "we");
        if (!f)
                fail_msg("cannot write %s: %s", path, strerror(errno));
        fputs(content, f);
        fclose(f);
}

char *test_read_file(const char *dir, const char *name)
{
        char path[PATH_MAX];
        char *text = NULL;
        int r;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        r = read_full_file(path, 64 * 1024 * 1024, &text, NULL);
        if (r < 0)
                fail_msg("cannot read %s: %s", path, strerror(-r));
        return text;
}

bool test_contains(const char *haystack, const char *needle)
{
        if (haystack && strstr(haystack, needle))
                return true;
        print_error("expected to find:\n  %s\nin:\n  %s\n", needle, haystack ? haystack : "(null)");
        return false;
}
