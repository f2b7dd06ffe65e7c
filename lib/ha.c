/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest's HA setting in its domain XML (ha.h). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "domxml.h"
#include "ha.h"
#include "util.h"

/* a <guest> element is a few attributes: anything this long is not one */
#define HA_METADATA_MAX (64U * 1024U)

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

/* value as an XML attribute value between double quotes */
static void put_attr_value(FILE *f, const char *value)
{
        for (const char *p = value; *p; p++)
                switch (*p) {
                case '&':
                        fputs("&amp;", f);
                        break;
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                case '"':
                        fputs("&quot;", f);
                        break;
                case '\n':
                        fputs("&#10;", f);
                        break;
                case '\t':
                        fputs("&#9;", f);
                        break;
                case '\r':
                        fputs("&#13;", f);
                        break;
                default:
                        fputc(*p, f);
                }
}

/* The attributes of root other than ha and priority, each as ' name="value"', onto f. */
static int put_other_attrs(FILE *f, xmlDoc *doc, xmlNode *root)
{
        for (xmlNode *c = root->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE)
                        return -EOPNOTSUPP;
        for (xmlAttr *a = root->properties; a; a = a->next) {
                const char *name = (const char *)a->name;
                xmlChar *v;

                /* an attribute in hostwarden's own namespace is the same setting unprefixed */
                if (a->ns && !(a->ns->href && streq((const char *)a->ns->href, HW_DOMAIN_XMLNS)))
                        return -EOPNOTSUPP;
                if (streq(name, "ha") || streq(name, "priority"))
                        continue;
                v = xmlNodeListGetString(doc, a->children, 1);
                fprintf(f, " %s=\"", name);
                put_attr_value(f, v ? (const char *)v : "");
                fputc('"', f);
                xmlFree(v);
        }
        return 0;
}

int ha_metadata_merge(const char *current, HaMode mode, int priority, char **ret)
{
        const char *m = ha_mode_to_string(mode);
        xmlDoc *doc = NULL;
        xmlNode *root = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        if (!m || !ha_priority_is_valid(priority))
                return -EINVAL;
        if (!isempty(current)) {
                size_t len = strlen(current);

                if (len > HA_METADATA_MAX)
                        return -EBADMSG;
                doc = xmlReadMemory(current, (int)len, "metadata.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
                root = doc ? xmlDocGetRootElement(doc) : NULL;
                if (!root || doc->intSubset || !streq((const char *)root->name, "guest")) {
                        xmlFreeDoc(doc);
                        return -EBADMSG;
                }
        }
        f = open_memstream(&buf, &size);
        if (!f) {
                xmlFreeDoc(doc);
                return -ENOMEM;
        }
        /* virDomainSetMetadata() puts it in the namespace it is given: no prefix here */
        fputs("<guest", f);
        if (root)
                r = put_other_attrs(f, doc, root);
        fprintf(f, " ha=\"%s\" priority=\"%d\"/>", m, priority);
        xmlFreeDoc(doc);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}
