/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest's HA setting in its domain XML (ha.h). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml.h"
#include "ha.h"
#include "util.h"

bool ha_priority_is_valid(long long p)
{
        return p >= HA_PRIORITY_MIN && p <= HA_PRIORITY_MAX;
}

static bool parse_priority(const char *s, int *ret)
{
        char *end = NULL;
        long long v;

        if (isempty(s))
                return false;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end || !ha_priority_is_valid(v))
                return false;
        *ret = (int)v;
        return true;
}

void ha_setting_of(const DomXml *d, HaMode default_mode, HaSetting *ret, bool *ret_bad)
{
        HaSetting h = { .mode = default_mode, .priority = HA_PRIORITY_DEFAULT };
        bool bad = false;

        if (d->hw_ha) {
                HaMode m = ha_mode_from_string(d->hw_ha);

                if (m < 0)
                        bad = true;
                else {
                        h.mode = m;
                        h.mode_set = true;
                }
        }
        if (d->hw_priority && !parse_priority(d->hw_priority, &h.priority))
                bad = true;
        *ret = h;
        if (ret_bad)
                *ret_bad = bad;
}

int ha_setting_from_xml(const char *xml, HaMode default_mode, HaSetting *ret, bool *ret_bad)
{
        _cleanup_(domxml_freep) DomXml *d = NULL;
        int r;

        r = domxml_parse(xml, strlen(xml), &d, NULL);
        if (r < 0)
                return r;
        ha_setting_of(d, default_mode, ret, ret_bad);
        return 0;
}

int ha_metadata_format(HaMode mode, int priority, char **ret)
{
        const char *m = ha_mode_to_string(mode);

        if (!m || !ha_priority_is_valid(priority))
                return -EINVAL;
        /* virDomainSetMetadata() puts it in the namespace it is given: no prefix here */
        if (asprintf(ret, "<guest ha=\"%s\" priority=\"%d\"/>", m, priority) < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}
