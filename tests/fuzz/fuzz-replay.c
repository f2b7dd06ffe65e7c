/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replays a fuzz corpus through a target without libFuzzer, so every build (gcc, valgrind,
 * sanitizers) runs the corpora and the crashers found so far as regression tests.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util.h"

static int replay_file(const char *path, size_t *count)
{
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, 16 * 1024 * 1024, &data, &size);
        if (r < 0) {
                fprintf(stderr, "cannot read %s: %s\n", path, strerror(-r));
                return r;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)data, size);
        (*count)++;
        return 0;
}

int main(int argc, char *argv[])
{
        size_t count = 0;

        for (int i = 1; i < argc; i++) {
                struct dirent **entries = NULL;
                struct stat st;
                int n;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "cannot stat %s\n", argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (replay_file(argv[i], &count) < 0)
                                return 1;
                        continue;
                }
                n = scandir(argv[i], &entries, NULL, alphasort);
                for (int j = 0; j < n; j++) {
                        char path[4096];

                        if (entries[j]->d_name[0] != '.') {
                                snprintf(path, sizeof(path), "%s/%s", argv[i], entries[j]->d_name);
                                if (replay_file(path, &count) < 0)
                                        return 1;
                        }
                        free(entries[j]);
                }
                free(entries);
        }
        if (count == 0) {
                fprintf(stderr,
                        "no corpus input found: a replay that runs nothing proves nothing\n");
                return 1;
        }
        printf("replayed %zu inputs\n", count);
        return 0;
}
