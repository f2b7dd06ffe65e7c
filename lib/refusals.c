/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hook's refusal counts in the runtime directory (refusals.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "refusals.h"
#include "util.h"

#define REFUSALS_DIR "refusals"

bool refusal_reason_is_valid(const char *reason)
{
        size_t n = reason ? strlen(reason) : 0;

        return n > 0 && n <= REFUSAL_REASON_MAX &&
               strspn(reason, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int open_count(const char *runtime_dir, const char *reason)
{
        char path[PATH_MAX];

        if (snprintf(path, sizeof(path), "%s/" REFUSALS_DIR "/%s", runtime_dir, reason) >=
            (int)sizeof(path))
                return -ENAMETOOLONG;
        return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
}

int refusal_count_bump(const char *runtime_dir, const char *reason)
{
        _cleanup_close_ int fd = -EBADF;

        if (!refusal_reason_is_valid(reason))
                return -EINVAL;
        fd = open_count(runtime_dir, reason);
        if (fd < 0 && errno == ENOENT) {
                /* the first refusal since boot: the directory is made here, not by
                 * hostwardend, which may not be running */
                char dir[PATH_MAX];

                if (snprintf(dir, sizeof(dir), "%s/" REFUSALS_DIR, runtime_dir) >= (int)sizeof(dir))
                        return -ENAMETOOLONG;
                if (mkdir(runtime_dir, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                fd = open_count(runtime_dir, reason);
        }
        if (fd < 0)
                return negative_errno();
        /* one line per refusal: 'wc -l' reads the count too */
        if (write(fd, "\n", 1) != 1)
                return errno ? negative_errno() : -EIO;
        return 0;
}

static int by_reason(const void *a, const void *b)
{
        return strcmp(((const RefusalCount *)a)->reason, ((const RefusalCount *)b)->reason);
}

int refusal_counts_read(const char *runtime_dir, RefusalCount **ret, size_t *ret_n)
{
        char path[PATH_MAX];
        RefusalCount *c = NULL;
        struct dirent *de;
        size_t n = 0;
        DIR *d;

        if (snprintf(path, sizeof(path), "%s/" REFUSALS_DIR, runtime_dir) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        d = opendir(path);
        if (!d) {
                if (errno != ENOENT)
                        return negative_errno();
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        while ((de = readdir(d))) {
                struct stat st;
                RefusalCount *grown;

                if (!refusal_reason_is_valid(de->d_name) ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                grown = reallocarray(c, n + 1, sizeof(RefusalCount));
                if (!grown) {
                        free(c);
                        closedir(d);
                        return -ENOMEM;
                }
                c = grown;
                snprintf(c[n].reason, sizeof(c[n].reason), "%s", de->d_name);
                c[n].count = (uint64_t)st.st_size;
                n++;
        }
        closedir(d);
        if (n > 0)
                qsort(c, n, sizeof(RefusalCount), by_reason);
        *ret = c;
        *ret_n = n;
        return 0;
}
