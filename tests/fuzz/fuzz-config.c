/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hostwarden.conf and its drop-ins are written by operators and configuration management.
 * Beyond "no crash, no leak": every diagnostic names the file and has a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *text = NULL;
        ConfigDiags diags = { 0 };

        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        if (config_new(&c) < 0)
                return 0;
        if (config_parse_text(c, "fuzz.conf", text, &diags) >= 0)
                (void)config_finish(c, &diags);

        for (size_t i = 0; i < diags.n; i++)
                if (!diags.items[i].message || !*diags.items[i].message)
                        abort();
        config_diags_clear(&diags);
        return 0;
}
