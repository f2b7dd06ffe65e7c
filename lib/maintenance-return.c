/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The return of the guests that left a node in maintenance (maintenance-return.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "maintenance-return.h"
#include "util.h"

ReturnAction maintenance_return_decide(const ReturnFacts *f)
{
        if (!f->has_record || f->deleted || !f->owner)
                return RETURN_DROP;
        /* only the node that may run it can start its migration (the source starts it) */
        if (!streq(f->owner, f->self) || streq(f->owner, f->returning))
                return RETURN_LEAVE;
        return f->busy ? RETURN_WAIT : RETURN_SEND_BACK;
}

bool maintenance_left_entry_uuid(const char *entry, char *ret, size_t size)
{
        const char *at = strchr(entry, '@');
        size_t n;

        if (!at || at == entry || !at[1])
                return false;
        n = (size_t)(at - entry);
        if (n >= size)
                return false;
        memcpy(ret, entry, n);
        ret[n] = 0;
        return true;
}

int maintenance_left_without(const char *left, const char *uuid, char **ret)
{
        _cleanup_strv_free_ char **entries = NULL, **kept = NULL;
        char u[64];
        int r;

        r = strv_split_list(left ?: "", &entries);
        if (r < 0)
                return r;
        STRV_FOREACH (e, entries) {
                if (maintenance_left_entry_uuid(*e, u, sizeof(u)) && streq(u, uuid))
                        continue;
                r = strv_extend(&kept, *e);
                if (r < 0)
                        return r;
        }
        if (!kept || !kept[0]) {
                *ret = NULL;
                return 0;
        }
        *ret = strv_join(kept, ",");
        return *ret ? 0 : -ENOMEM;
}
