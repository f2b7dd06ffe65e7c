/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A guest's HA setting (issue 22, docs/recovery.md): its mode and priority, from the domain
 * XML's <metadata><hostwarden:guest ha="off|restart" priority="N"/> in hostwarden's own
 * namespace (HW_DOMAIN_XMLNS, DESIGN.md §11), or the configuration's [recovery] default_ha.
 * The same setting travels with the guest: libvirt keeps the metadata in the definition, the
 * store keeps the definition, a rebuild defines it again.
 */

#include <stdbool.h>

#include "config.h"

#define HA_PRIORITY_MIN     (-1000)
#define HA_PRIORITY_MAX     1000
#define HA_PRIORITY_DEFAULT 0

typedef struct HaSetting {
        HaMode mode;
        int priority;  /* higher first; HA_PRIORITY_DEFAULT when not set */
        bool mode_set; /* the guest says it; false: default_ha */
} HaSetting;

/*
 * The setting in domain XML xml, default_mode when it has none. A value that is not valid
 * (ha="maybe", priority="high") counts as not set, and *ret_bad (may be NULL) says so: the
 * guest is treated by the default, never by a guess. -EINVAL/-EBADMSG: no domain XML.
 */
int ha_setting_from_xml(const char *xml, HaMode default_mode, HaSetting *ret, bool *ret_bad);

/* The same from a parsed document. */
struct DomXml;
void ha_setting_of(const struct DomXml *d, HaMode default_mode, HaSetting *ret, bool *ret_bad);

/* The <hostwarden:guest> element for virDomainSetMetadata(), in newly allocated memory. */
int ha_metadata_format(HaMode mode, int priority, char **ret);

bool ha_priority_is_valid(long long p);

/*
 * The <guest> element for virDomainSetMetadata() with mode and priority, keeping every other
 * attribute of current: the element virDomainGetMetadata() returned (prefixed or in the
 * default namespace; NULL or "": the guest has none). Later settings (maintenance strategy,
 * migration policy) live beside ha and priority and must survive SetHA. -EBADMSG: current is
 * not one well-formed element; -EOPNOTSUPP: it has child elements or attributes of another
 * namespace, which this cannot carry over (refused rather than lost).
 */
int ha_metadata_merge(const char *current, HaMode mode, int priority, char **ret);
