/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain XML reaches the hook from libvirt, which got it from whoever defined the domain.
 * Invariants checked beyond "no crash, no leak": a document we accept and rewrite formats
 * to text that parses again to the same name and UUID, and a second rewrite changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domxml.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(domxml_freep) DomXml *d = NULL, *again = NULL;
        _cleanup_free_ char *error = NULL, *out = NULL;
        ConsoleListen mode;
        unsigned changed = 0;
        size_t out_size;

        if (size < 1)
                return 0;
        /* The first byte picks the mode, the rest is the document. */
        mode = (ConsoleListen)(data[0] % _CONSOLE_LISTEN_MAX);
        if (domxml_parse((const char *)data + 1, size - 1, &d, &error) < 0)
                return 0;

        if (domxml_rewrite_listen(d, mode, "2001:db8::12", &changed) < 0)
                return 0;
        if (domxml_format(d, &out, &out_size) < 0)
                return 0;
        if (domxml_parse(out, out_size, &again, NULL) < 0)
                abort(); /* we produced a document we cannot read back */
        if (strcmp(again->uuid, d->uuid) != 0 || strcmp(again->name, d->name) != 0)
                abort();
        if (domxml_rewrite_listen(again, mode, "2001:db8::12", &changed) < 0)
                return 0;
        if (changed != 0)
                abort(); /* the rewrite is not idempotent */
        return 0;
}
