/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "caps.h"
#include "util.h"

#define CAPS_MAX_SIZE (16U * 1024U * 1024U)
#define CAPS_MAX_ID   65535U

static bool is_element(const xmlNode *n, const char *name)
{
        return n->type == XML_ELEMENT_NODE && !n->ns && streq((const char *)n->name, name);
}

static xmlNode *child(const xmlNode *parent, const char *name)
{
        for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
                if (is_element(c, name))
                        return c;
        return NULL;
}

static int text_of(const xmlNode *n, char **ret)
{
        xmlChar *v;

        *ret = NULL;
        if (!n)
                return 0;
        v = xmlNodeGetContent(n);
        if (!v)
                return -ENOMEM;
        *ret = strdup(strstrip((char *)v));
        xmlFree(v);
        return *ret ? 0 : -ENOMEM;
}

static int push_id(unsigned **a, size_t *n, unsigned id)
{
        unsigned *t = realloc(*a, (*n + 1) * sizeof(unsigned));

        if (!t)
                return -ENOMEM;
        t[(*n)++] = id;
        *a = t;
        return 0;
}

static int cmp_unsigned(const void *a, const void *b)
{
        unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

        return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An id attribute (decimal, at most CAPS_MAX_ID). */
static int id_attr(const xmlNode *n, unsigned *ret)
{
        xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)"id");
        uint64_t id;
        int r;

        if (!v)
                return -EBADMSG;
        r = parse_uint_range((const char *)v, 0, CAPS_MAX_ID, &id);
        xmlFree(v);
        if (r < 0)
                return -EBADMSG;
        *ret = (unsigned)id;
        return 0;
}

static int collect(HostCaps *c, xmlNode *root)
{
        xmlNode *host, *cpu, *cells;
        size_t n_features = 0;
        int r;

        if (!is_element(root, "capabilities"))
                return -EBADMSG;
        host = child(root, "host");
        cpu = child(host, "cpu");
        if ((r = text_of(child(cpu, "arch"), &c->arch)) < 0 ||
            (r = text_of(child(cpu, "model"), &c->cpu_model)) < 0 ||
            (r = text_of(child(cpu, "vendor"), &c->cpu_vendor)) < 0)
                return r;
        if (isempty(c->arch))
                return -EBADMSG;
        for (xmlNode *f = cpu->children; f; f = f->next) {
                xmlChar *name;

                if (!is_element(f, "feature"))
                        continue;
                name = xmlGetNoNsProp(f, (const xmlChar *)"name");
                if (!name)
                        continue;
                r = strv_extend(&c->features, (const char *)name);
                xmlFree(name);
                if (r < 0)
                        return r;
                n_features++;
        }
        if (n_features > 0)
                qsort(c->features, n_features, sizeof(char *), cmp_str);

        cells = child(child(host, "topology"), "cells");
        for (xmlNode *cell = cells ? cells->children : NULL; cell; cell = cell->next) {
                unsigned id;

                if (!is_element(cell, "cell"))
                        continue;
                if ((r = id_attr(cell, &id)) < 0 || (r = push_id(&c->cells, &c->n_cells, id)) < 0)
                        return r;
                for (xmlNode *p = child(cell, "cpus") ? child(cell, "cpus")->children : NULL; p;
                     p = p->next) {
                        if (!is_element(p, "cpu"))
                                continue;
                        if ((r = id_attr(p, &id)) < 0 ||
                            (r = push_id(&c->cpus, &c->n_cpus, id)) < 0)
                                return r;
                }
        }
        if (c->n_cpus > 0)
                qsort(c->cpus, c->n_cpus, sizeof(unsigned), cmp_unsigned);
        if (c->n_cells > 0)
                qsort(c->cells, c->n_cells, sizeof(unsigned), cmp_unsigned);
        return 0;
}

int host_caps_parse(const char *xml, size_t size, HostCaps **ret)
{
        _cleanup_(host_caps_freep) HostCaps *c = NULL;
        xmlDoc *doc;
        int r;

        if (size > CAPS_MAX_SIZE)
                return -EINVAL;
        doc = xmlReadMemory(xml, (int)size, "capabilities.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc)
                return -EINVAL;
        c = calloc(1, sizeof(HostCaps));
        if (!c) {
                xmlFreeDoc(doc);
                return -ENOMEM;
        }
        r = xmlDocGetRootElement(doc) ? collect(c, xmlDocGetRootElement(doc)) : -EBADMSG;
        xmlFreeDoc(doc);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

HostCaps *host_caps_free(HostCaps *c)
{
        if (!c)
                return NULL;
        free(c->arch);
        free(c->cpu_model);
        free(c->cpu_vendor);
        strv_free(c->features);
        free(c->cpus);
        free(c->cells);
        free(c);
        return NULL;
}

bool host_caps_cpu_identical(const HostCaps *a, const HostCaps *b)
{
        size_t i = 0;

        if (!streq_ptr(a->cpu_vendor, b->cpu_vendor) || !streq_ptr(a->cpu_model, b->cpu_model))
                return false;
        for (; a->features && a->features[i]; i++)
                if (!b->features || !b->features[i] || !streq(a->features[i], b->features[i]))
                        return false;
        return !(b->features && b->features[i]);
}

int cpuset_parse(const char *s, unsigned max, unsigned **ret, size_t *ret_n)
{
        _cleanup_free_ bool *in = NULL;
        unsigned *ids = NULL;
        size_t n = 0;
        const char *p = s;

        if (!s || max >= CAPS_MAX_ID * 16)
                return -EINVAL;
        in = calloc((size_t)max + 1, sizeof(bool));
        if (!in)
                return -ENOMEM;
        for (;;) {
                unsigned long a, b;
                bool negate = false;
                char *end;

                while (*p == ' ')
                        p++;
                if (*p == '^') {
                        negate = true;
                        p++;
                }
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                errno = 0;
                a = b = strtoul(p, &end, 10);
                if (errno != 0 || a > max)
                        return -EINVAL;
                p = end;
                if (*p == '-' && !negate) {
                        p++;
                        if (*p < '0' || *p > '9')
                                return -EINVAL;
                        b = strtoul(p, &end, 10);
                        if (errno != 0 || b > max || b < a)
                                return -EINVAL;
                        p = end;
                }
                for (unsigned long i = a; i <= b; i++)
                        in[i] = !negate;
                while (*p == ' ')
                        p++;
                if (*p == 0)
                        break;
                if (*p != ',')
                        return -EINVAL;
                p++;
        }
        for (unsigned i = 0; i <= max; i++)
                if (in[i] && push_id(&ids, &n, i) < 0) {
                        free(ids);
                        return -ENOMEM;
                }
        *ret = ids;
        *ret_n = n;
        return 0;
}
