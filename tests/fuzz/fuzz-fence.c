/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fence agent's output goes to the journal only through fence_scrub(), with the agent's
 * options (fence_options: passwords) masked. The input is the options, a NUL byte, then the
 * agent's output. Beyond "no crash, no leak": no option value of 3 characters or more that
 * holds no "*" (the mask itself) is left in the scrubbed text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fence.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *buf = malloc(size + 2), *out = NULL;
        const char *options, *output;
        size_t n;

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = buf[size + 1] = 0;
        options = buf;
        n = strlen(options);
        output = n < size ? buf + n + 1 : "";

        out = fence_scrub(output, options);
        if (!out)
                return 0; /* out of memory */
        for (const char *p = options; *p;) {
                size_t len = strcspn(p, "\n");
                const char *eq = memchr(p, '=', len);

                if (eq) {
                        size_t vn = len - (size_t)(eq + 1 - p);

                        if (vn >= 3 && !memchr(eq + 1, '*', vn) &&
                            memmem(out, strlen(out), eq + 1, vn))
                                abort(); /* a secret reached the journal */
                }
                p += len;
                if (*p)
                        p++;
        }
        return 0;
}
