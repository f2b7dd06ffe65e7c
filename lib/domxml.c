/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdarg.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "domxml.h"
#include "util.h"

#define DOMXML_MAX_SIZE (64U * 1024U * 1024U)

/* libvirt's own elements are in no namespace; <metadata> children are in theirs. */
static bool node_is(const xmlNode *n, const char *name)
{
        return n->type == XML_ELEMENT_NODE && !n->ns && streq((const char *)n->name, name);
}

static xmlNode *child_element(const xmlNode *parent, const char *name)
{
        for (xmlNode *c = parent->children; c; c = c->next)
                if (node_is(c, name))
                        return c;
        return NULL;
}

/* A copy of an attribute's value (NULL when absent), as a libc-owned string. */
static int attr_dup(const xmlNode *n, const char *name, char **ret)
{
        xmlChar *v = n ? xmlGetNoNsProp(n, (const xmlChar *)name) : NULL;

        if (!v) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup((const char *)v);
        xmlFree(v);
        return *ret ? 0 : -ENOMEM;
}

static int text_dup(const xmlNode *n, char **ret)
{
        xmlChar *v = xmlNodeGetContent(n);

        if (!v)
                return -ENOMEM;
        *ret = strdup(strstrip((char *)v));
        xmlFree(v);
        return *ret ? 0 : -ENOMEM;
}

static void listen_done(DomListen *l)
{
        free(l->address);
        free(l->network);
        free(l->socket);
}

static void graphics_done(DomGraphics *g)
{
        free(g->type);
        free(g->listen);
        free(g->socket);
        for (size_t i = 0; i < g->n_listens; i++)
                listen_done(&g->listens[i]);
        free(g->listens);
}

static void disk_done(DomDisk *d)
{
        free(d->type);
        free(d->device);
        free(d->driver_type);
        free(d->source);
        free(d->target);
        free(d->bus);
}

static void interface_done(DomInterface *i)
{
        free(i->type);
        free(i->mac);
        free(i->source);
        free(i->source_mode);
        free(i->model);
}

static void graphics_clear(DomXml *d)
{
        for (size_t i = 0; i < d->n_graphics; i++)
                graphics_done(&d->graphics[i]);
        free(d->graphics);
        d->graphics = NULL;
        d->n_graphics = 0;
}

DomXml *domxml_free(DomXml *d)
{
        if (!d)
                return NULL;
        graphics_clear(d);
        for (size_t i = 0; i < d->n_disks; i++)
                disk_done(&d->disks[i]);
        free(d->disks);
        for (size_t i = 0; i < d->n_interfaces; i++)
                interface_done(&d->interfaces[i]);
        free(d->interfaces);
        for (size_t i = 0; i < d->n_hostdevs; i++) {
                free(d->hostdevs[i].mode);
                free(d->hostdevs[i].type);
                free(d->hostdevs[i].device);
        }
        free(d->hostdevs);
        for (size_t i = 0; i < d->n_pins; i++) {
                free(d->pins[i].what);
                free(d->pins[i].cpuset);
        }
        free(d->pins);
        free(d->numa_nodeset);
        free(d->hw_ha);
        free(d->hw_priority);
        free(d->hw_policy);
        free(d->hw_maintenance);
        strv_free(d->numa_memnodes);
        free(d->arch);
        free(d->cpu_mode);
        free(d->cpu_model);
        free(d->cpu_xml);
        free(d->domain_type);
        free(d->name);
        free(d->uuid);
        xmlFreeDoc(d->doc);
        free(d);
        return NULL;
}

/* Grows *array by one zeroed element of size elem. */
static void *array_grow(void *array_ptr, size_t *n, size_t elem)
{
        void **array = array_ptr;
        char *t;

        t = realloc(*array, elem * (*n + 1));
        if (!t)
                return NULL;
        memset(t + elem * *n, 0, elem);
        *array = t;
        return t + elem * (*n)++;
}

typedef int (*ChildFill)(xmlNode *child, void *item);

/* For every child element of parent named name, a new zeroed element of *array (of *n, each
 * elem bytes) filled by fill(child, element). */
static int collect_children(xmlNode *parent, const char *name, void *array, size_t *n, size_t elem,
                            ChildFill fill)
{
        for (xmlNode *c = parent->children; c; c = c->next) {
                void *item;
                int r;

                if (!node_is(c, name))
                        continue;
                item = array_grow(array, n, elem);
                if (!item)
                        return -ENOMEM;
                r = fill(c, item);
                if (r < 0)
                        return r;
        }
        return 0;
}

static DomListenType listen_type_from_string(const char *s)
{
        if (!s || streq(s, "address"))
                return DOM_LISTEN_ADDRESS;
        if (streq(s, "network"))
                return DOM_LISTEN_NETWORK;
        if (streq(s, "socket"))
                return DOM_LISTEN_SOCKET;
        if (streq(s, "none"))
                return DOM_LISTEN_NONE;
        return DOM_LISTEN_OTHER;
}

static int fill_listen(xmlNode *l, void *item)
{
        _cleanup_free_ char *type = NULL;
        DomListen *dl = item;
        int r;

        if ((r = attr_dup(l, "type", &type)) < 0)
                return r;
        dl->type = listen_type_from_string(type);
        if ((r = attr_dup(l, "address", &dl->address)) < 0 ||
            (r = attr_dup(l, "network", &dl->network)) < 0 ||
            (r = attr_dup(l, "socket", &dl->socket)) < 0)
                return r;
        return 0;
}

static int fill_graphics(xmlNode *g, void *item)
{
        DomGraphics *dg = item;
        int r;

        if ((r = attr_dup(g, "type", &dg->type)) < 0 ||
            (r = attr_dup(g, "listen", &dg->listen)) < 0 ||
            (r = attr_dup(g, "socket", &dg->socket)) < 0)
                return r;
        return collect_children(g, "listen", &dg->listens, &dg->n_listens, sizeof(DomListen),
                                fill_listen);
}

static int collect_graphics(DomXml *d, xmlNode *devices)
{
        return collect_children(devices, "graphics", &d->graphics, &d->n_graphics,
                                sizeof(DomGraphics), fill_graphics);
}

static int fill_disk(xmlNode *n, void *item)
{
        xmlNode *source, *target, *driver;
        DomDisk *dd = item;
        int r;

        source = child_element(n, "source");
        target = child_element(n, "target");
        driver = child_element(n, "driver");
        if ((r = attr_dup(n, "type", &dd->type)) < 0 ||
            (r = attr_dup(n, "device", &dd->device)) < 0 ||
            (r = attr_dup(driver, "type", &dd->driver_type)) < 0 ||
            (r = attr_dup(target, "dev", &dd->target)) < 0 ||
            (r = attr_dup(target, "bus", &dd->bus)) < 0)
                return r;
        if (!dd->device && !(dd->device = strdup("disk")))
                return -ENOMEM;

        if (source) {
                static const char *const attrs[] = { "file", "dev", "name", "volume" };
                for (size_t i = 0; i < ELEMENTSOF(attrs) && !dd->source; i++)
                        if ((r = attr_dup(source, attrs[i], &dd->source)) < 0)
                                return r;
        }
        dd->readonly = child_element(n, "readonly") != NULL;
        dd->shareable = child_element(n, "shareable") != NULL;
        return 0;
}

static int fill_interface(xmlNode *n, void *item)
{
        xmlNode *source;
        DomInterface *di = item;
        int r;

        source = child_element(n, "source");
        if ((r = attr_dup(n, "type", &di->type)) < 0 ||
            (r = attr_dup(child_element(n, "mac"), "address", &di->mac)) < 0 ||
            (r = attr_dup(child_element(n, "model"), "type", &di->model)) < 0 ||
            (r = attr_dup(source, "mode", &di->source_mode)) < 0)
                return r;
        if (source) {
                static const char *const attrs[] = { "bridge", "network", "dev" };
                for (size_t i = 0; i < ELEMENTSOF(attrs) && !di->source; i++)
                        if ((r = attr_dup(source, attrs[i], &di->source)) < 0)
                                return r;
        }
        return 0;
}

/* "0000:03:00.0" from <address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>. */
static int pci_address_dup(xmlNode *address, char **ret)
{
        static const char *const attrs[] = { "domain", "bus", "slot", "function" };
        unsigned long v[4] = { 0 };

        *ret = NULL;
        if (!address)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(attrs); i++) {
                _cleanup_free_ char *a = NULL;
                char *end;
                int r;

                if ((r = attr_dup(address, attrs[i], &a)) < 0)
                        return r;
                if (!a)
                        continue; /* libvirt's defaults are 0 */
                errno = 0;
                v[i] = strtoul(a, &end, 0);
                if (errno != 0 || *end || end == a)
                        return 0; /* not an address we can show: leave it out */
        }
        return asprintf(ret, "%04lx:%02lx:%02lx.%lx", v[0] & 0xffff, v[1] & 0xff, v[2] & 0x1f,
                        v[3] & 0x7) < 0
                       ? -ENOMEM
                       : 0;
}

static int fill_hostdev(xmlNode *n, void *item)
{
        xmlNode *source;
        DomHostdev *h = item;
        int r;

        source = child_element(n, "source");
        if ((r = attr_dup(n, "mode", &h->mode)) < 0 || (r = attr_dup(n, "type", &h->type)) < 0)
                return r;
        if (h->type && streq(h->type, "pci"))
                r = pci_address_dup(source ? child_element(source, "address") : NULL, &h->device);
        else if (h->type && streq(h->type, "mdev"))
                r = attr_dup(source ? child_element(source, "address") : NULL, "uuid", &h->device);
        if (r < 0)
                return r;
        return 0;
}

static int add_pin(DomXml *d, xmlNode *n, const char *what, const char *id_attr)
{
        _cleanup_free_ char *id = NULL;
        DomPin *p;
        int r;

        p = array_grow(&d->pins, &d->n_pins, sizeof(DomPin));
        if (!p)
                return -ENOMEM;
        if ((r = attr_dup(n, "cpuset", &p->cpuset)) < 0)
                return r;
        if (id_attr && (r = attr_dup(n, id_attr, &id)) < 0)
                return r;
        if (asprintf(&p->what, "%s%s%s", what, id ? " " : "", id ? id : "") < 0) {
                p->what = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int collect_tuning(DomXml *d, xmlNode *root)
{
        xmlNode *n;
        int r;

        n = child_element(root, "os");
        if (n && (r = attr_dup(child_element(n, "type"), "arch", &d->arch)) < 0)
                return r;
        n = child_element(root, "cpu");
        if (n) {
                xmlNode *model = child_element(n, "model");

                if ((r = attr_dup(n, "mode", &d->cpu_mode)) < 0)
                        return r;
                if (!d->cpu_mode && !(d->cpu_mode = strdup("custom")))
                        return -ENOMEM;
                if (model && (r = text_dup(model, &d->cpu_model)) < 0)
                        return r;
                {
                        xmlBuffer *buf = xmlBufferCreate();

                        if (!buf)
                                return -ENOMEM;
                        if (xmlNodeDump(buf, n->doc, n, 0, 0) > 0)
                                d->cpu_xml = strdup((const char *)xmlBufferContent(buf));
                        xmlBufferFree(buf);
                        if (!d->cpu_xml)
                                return -ENOMEM;
                }
                if (d->cpu_model && isempty(d->cpu_model)) {
                        free(d->cpu_model);
                        d->cpu_model = NULL;
                }
        }
        n = child_element(root, "cputune");
        for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
                if ((node_is(c, "vcpupin") && (r = add_pin(d, c, "vcpu", "vcpu")) < 0) ||
                    (node_is(c, "emulatorpin") && (r = add_pin(d, c, "emulator", NULL)) < 0) ||
                    (node_is(c, "iothreadpin") && (r = add_pin(d, c, "iothread", "iothread")) < 0))
                        return r;
        n = child_element(root, "numatune");
        if (n && (r = attr_dup(child_element(n, "memory"), "nodeset", &d->numa_nodeset)) < 0)
                return r;
        for (xmlNode *c = n ? n->children : NULL; c; c = c->next) {
                _cleanup_free_ char *set = NULL;

                if (!node_is(c, "memnode"))
                        continue;
                if ((r = attr_dup(c, "nodeset", &set)) < 0)
                        return r;
                if (set && (r = strv_push(&d->numa_memnodes, TAKE_PTR(set))) < 0)
                        return r;
        }
        n = child_element(root, "metadata");
        for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && c->ns && c->ns->href &&
                    streq((const char *)c->ns->href, HW_DOMAIN_XMLNS) &&
                    streq((const char *)c->name, "guest")) {
                        if ((r = attr_dup(c, "ha", &d->hw_ha)) < 0 ||
                            (r = attr_dup(c, "priority", &d->hw_priority)) < 0 ||
                            (r = attr_dup(c, "policy", &d->hw_policy)) < 0 ||
                            (r = attr_dup(c, "maintenance", &d->hw_maintenance)) < 0)
                                return r;
                        break;
                }
        return 0;
}

/* <memory unit='KiB'>65536</memory>: libvirt's units, KiB when none is given. */
static int parse_memory(xmlNode *mem, uint64_t *ret)
{
        static const struct {
                const char *unit;
                uint64_t bytes;
        } units[] = {
                { "b", 1ULL },       { "bytes", 1ULL },     { "KB", 1000ULL },
                { "k", 1024ULL },    { "KiB", 1024ULL },    { "MB", 1000000ULL },
                { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 }, { "GB", 1000000000ULL },
                { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 }, { "TB", 1000000000000ULL },
                { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
        };
        _cleanup_free_ char *text = NULL, *unit = NULL;
        uint64_t v, bytes = 1024;
        int r;

        if ((r = text_dup(mem, &text)) < 0 || (r = attr_dup(mem, "unit", &unit)) < 0)
                return r;
        if (parse_uint_range(text, 0, UINT64_MAX, &v) < 0)
                return -EBADMSG;
        if (unit) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(units); i++)
                        if (streq(unit, units[i].unit))
                                break;
                if (i >= ELEMENTSOF(units))
                        return -EBADMSG;
                bytes = units[i].bytes;
        }
        if (v > UINT64_MAX / bytes)
                return -EBADMSG;
        *ret = v * bytes / 1024;
        return 0;
}

static int set_error(char **ret_error, const char *format, ...) _printf_(2, 3);
static int set_error(char **ret_error, const char *format, ...)
{
        va_list ap;

        if (!ret_error)
                return 0;
        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return 0;
}

static int collect(DomXml *d, xmlNode *root, char **ret_error)
{
        xmlNode *n, *devices;
        int r;

        if (!node_is(root, "domain"))
                return set_error(ret_error, "root element is <%s>, expected <domain>",
                                 (const char *)root->name),
                       -EBADMSG;
        if ((r = attr_dup(root, "type", &d->domain_type)) < 0)
                return r;

        n = child_element(root, "name");
        if (!n)
                return set_error(ret_error, "<domain> has no <name>"), -EBADMSG;
        if ((r = text_dup(n, &d->name)) < 0)
                return r;
        if (isempty(d->name))
                return set_error(ret_error, "<domain> has an empty <name>"), -EBADMSG;

        n = child_element(root, "uuid");
        if (!n)
                return set_error(ret_error, "domain '%s' has no <uuid>", d->name), -EBADMSG;
        if ((r = text_dup(n, &d->uuid)) < 0)
                return r;
        if (!uuid_is_valid(d->uuid))
                return set_error(ret_error, "domain '%s' has an invalid <uuid> '%s'", d->name,
                                 d->uuid),
                       -EBADMSG;

        n = child_element(root, "memory");
        if (n && parse_memory(n, &d->memory_kib) < 0)
                return set_error(ret_error, "domain '%s' has an invalid <memory>", d->name),
                       -EBADMSG;
        n = child_element(root, "currentMemory");
        if (n && parse_memory(n, &d->current_memory_kib) < 0)
                return set_error(ret_error, "domain '%s' has an invalid <currentMemory>", d->name),
                       -EBADMSG;
        if (!n)
                d->current_memory_kib = d->memory_kib;
        if ((r = collect_tuning(d, root)) < 0)
                return r;

        devices = child_element(root, "devices");
        if (!devices)
                return 0;
        if ((r = collect_graphics(d, devices)) < 0 ||
            (r = collect_children(devices, "disk", &d->disks, &d->n_disks, sizeof(DomDisk),
                                  fill_disk)) < 0 ||
            (r = collect_children(devices, "interface", &d->interfaces, &d->n_interfaces,
                                  sizeof(DomInterface), fill_interface)) < 0 ||
            (r = collect_children(devices, "hostdev", &d->hostdevs, &d->n_hostdevs,
                                  sizeof(DomHostdev), fill_hostdev)) < 0)
                return r;
        return 0;
}

int domxml_parse(const char *xml, size_t size, DomXml **ret, char **ret_error)
{
        _cleanup_(domxml_freep) DomXml *d = NULL;
        xmlParserCtxt *ctxt;
        xmlDoc *doc;
        xmlNode *root;
        int r;

        if (size > DOMXML_MAX_SIZE || size > INT_MAX)
                return set_error(ret_error, "domain XML is larger than %u bytes", DOMXML_MAX_SIZE),
                       -EINVAL;

        ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return -ENOMEM;
        /* No network, no DTD loading, no entity substitution; errors are collected, not
         * printed, and reported through ret_error. */
        doc = xmlCtxtReadMemory(ctxt, xml, (int)size, "domain.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc) {
                const xmlError *e = xmlCtxtGetLastError(ctxt);
                if (e && e->message) {
                        _cleanup_free_ char *m = strdup(e->message);
                        set_error(ret_error, "domain XML is not well-formed: line %d: %s", e->line,
                                  m ? strstrip(m) : "?");
                } else
                        set_error(ret_error, "domain XML is not well-formed");
                xmlFreeParserCtxt(ctxt);
                return -EINVAL;
        }
        xmlFreeParserCtxt(ctxt);

        d = calloc(1, sizeof(DomXml));
        if (!d) {
                xmlFreeDoc(doc);
                return -ENOMEM;
        }
        d->doc = doc;

        if (doc->intSubset || doc->extSubset)
                return set_error(ret_error, "domain XML must not have a DOCTYPE"), -EINVAL;
        root = xmlDocGetRootElement(doc);
        if (!root)
                return set_error(ret_error, "domain XML has no root element"), -EBADMSG;

        r = collect(d, root, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

const char *console_listen_target(ConsoleListen mode, const char *node_address, const char *current)
{
        int family = 0;
        bool literal;

        if (mode == CONSOLE_LISTEN_KEEP || isempty(current))
                return NULL;
        /* A console bound to loopback is meant to be reached only from the node itself (an
         * SSH tunnel); it binds on every node, so it never blocks a migration. */
        if (ip_address_is_loopback(current) || streq(current, "localhost"))
                return NULL;

        literal = ip_address_is_valid(current, &family);
        switch (mode) {
        case CONSOLE_LISTEN_ANY: {
                const char *any = literal && family == AF_INET6 ? "::" : "0.0.0.0";
                if (literal && ip_address_is_any(current))
                        return NULL;
                return any;
        }
        case CONSOLE_LISTEN_NODE:
                if (isempty(node_address) || streq(current, node_address))
                        return NULL;
                return node_address;
        default:
                return NULL;
        }
}

static int rewrite_attr(xmlNode *n, const char *attr, ConsoleListen mode, const char *node_address,
                        unsigned *changed)
{
        _cleanup_free_ char *current = NULL;
        const char *target;
        int r;

        r = attr_dup(n, attr, &current);
        if (r < 0)
                return r;
        target = console_listen_target(mode, node_address, current);
        if (!target)
                return 0;
        if (!xmlSetProp(n, (const xmlChar *)attr, (const xmlChar *)target))
                return -ENOMEM;
        (*changed)++;
        return 0;
}

static bool graphics_rewritable(xmlNode *g)
{
        _cleanup_free_ char *type = NULL, *socket = NULL;

        if (attr_dup(g, "type", &type) < 0 || attr_dup(g, "socket", &socket) < 0)
                return false;
        if (!type || (!streq(type, "vnc") && !streq(type, "spice")))
                return false;
        if (socket)
                return false;

        /* libvirt derives the listen attribute from the first <listen>: when that is a
         * network or a socket, the attribute is not an address of ours to move. */
        for (xmlNode *l = g->children; l; l = l->next) {
                _cleanup_free_ char *ltype = NULL;

                if (!node_is(l, "listen"))
                        continue;
                if (attr_dup(l, "type", &ltype) < 0)
                        return false;
                return listen_type_from_string(ltype) == DOM_LISTEN_ADDRESS;
        }
        return true;
}

int domxml_rewrite_listen(DomXml *d, ConsoleListen mode, const char *node_address,
                          unsigned *ret_changed)
{
        xmlNode *root = xmlDocGetRootElement(d->doc), *devices;
        unsigned changed = 0;
        int r;

        devices = root ? child_element(root, "devices") : NULL;
        for (xmlNode *g = devices ? devices->children : NULL; g; g = g->next) {
                if (!node_is(g, "graphics") || !graphics_rewritable(g))
                        continue;

                if (xmlHasProp(g, (const xmlChar *)"listen")) {
                        r = rewrite_attr(g, "listen", mode, node_address, &changed);
                        if (r < 0)
                                return r;
                }
                for (xmlNode *l = g->children; l; l = l->next) {
                        _cleanup_free_ char *ltype = NULL;

                        if (!node_is(l, "listen"))
                                continue;
                        r = attr_dup(l, "type", &ltype);
                        if (r < 0)
                                return r;
                        if (listen_type_from_string(ltype) != DOM_LISTEN_ADDRESS)
                                continue;
                        r = rewrite_attr(l, "address", mode, node_address, &changed);
                        if (r < 0)
                                return r;
                }
        }

        if (changed > 0) {
                graphics_clear(d);
                if (devices && (r = collect_graphics(d, devices)) < 0)
                        return r;
        }
        if (ret_changed)
                *ret_changed = changed;
        return 0;
}

int domxml_format(const DomXml *d, char **ret, size_t *ret_size)
{
        xmlBuffer *buf;
        xmlSaveCtxt *save;
        char *s;
        size_t n;

        buf = xmlBufferCreate();
        if (!buf)
                return -ENOMEM;
        save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_NO_DECL);
        if (!save) {
                xmlBufferFree(buf);
                return -ENOMEM;
        }
        if (xmlSaveDoc(save, d->doc) < 0) {
                xmlSaveClose(save);
                xmlBufferFree(buf);
                return -ENOMEM;
        }
        xmlSaveClose(save);

        n = (size_t)xmlBufferLength(buf);
        s = malloc(n + 1);
        if (!s) {
                xmlBufferFree(buf);
                return -ENOMEM;
        }
        memcpy(s, xmlBufferContent(buf), n);
        s[n] = 0;
        xmlBufferFree(buf);

        *ret = s;
        if (ret_size)
                *ret_size = n;
        return 0;
}
