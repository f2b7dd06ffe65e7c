/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hook's fast path: the console listen rewrite done on the text. libxml2 tokenizes the
 * document (SAX2, no tree), the attribute values to change are located by the pointers
 * libxml2 hands out into our own buffer, and the output is the input with just those
 * values replaced. Building and freeing a tree cost the hook more than everything else it
 * does (docs/decisions.md). Whatever this path cannot do exactly (an error, a value that
 * libxml2 had to copy because of entity references or an encoding conversion) is handed to
 * the tree path in domxml.c, which stays the reference: the fuzzer checks both agree.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "domxml.h"
#include "util.h"

#define MAX_EDITS 64

typedef struct Edit {
        size_t offset, length;
        const char *value; /* static or owned by the caller's config */
} Edit;

typedef struct Candidate {
        size_t offset, length;
        char *current;
        bool in_buffer;
} Candidate;

typedef struct TextState {
        const char *xml;
        size_t size;
        ConsoleListen mode;
        const char *node_address;
        bool identity_only; /* stop as soon as name and uuid are known */

        unsigned depth;
        bool root_is_domain;
        int capture; /* 0, 1 = name, 2 = uuid: text of /domain/name or /domain/uuid */
        char *name, *uuid;
        size_t name_len, uuid_len;

        bool in_devices; /* inside the first /domain/devices, the one libvirt reads */
        bool seen_devices;
        /* the <graphics> being read */
        bool in_graphics;
        bool graphics_rewritable;
        bool seen_listen_child;
        Candidate candidates[8];
        size_t n_candidates;

        Edit edits[MAX_EDITS];
        size_t n_edits;
        bool give_up; /* let the tree path do it */
        bool failed;
} TextState;

void dom_identity_done(DomIdentity *id)
{
        free(id->name);
        free(id->uuid);
        id->name = id->uuid = NULL;
}

static bool attr_is(const xmlChar **attrs, int i, const char *name)
{
        return !attrs[i * 5 + 1] && streq((const char *)attrs[i * 5], name);
}

static char *attr_value(const xmlChar **attrs, int i)
{
        return strndup((const char *)attrs[i * 5 + 3],
                       (size_t)(attrs[i * 5 + 4] - attrs[i * 5 + 3]));
}

static void add_candidate(TextState *s, xmlParserCtxt *pctx, const xmlChar **attrs, int i)
{
        uintptr_t begin = (uintptr_t)attrs[i * 5 + 3], end = (uintptr_t)attrs[i * 5 + 4];
        const xmlParserInput *in = pctx->input;
        Candidate *c;

        if (s->n_candidates >= ELEMENTSOF(s->candidates)) {
                s->give_up = true;
                return;
        }
        c = &s->candidates[s->n_candidates];
        *c = (Candidate){ .current = attr_value(attrs, i) };
        if (!c->current) {
                s->failed = true;
                return;
        }
        s->n_candidates++;

        /* Unless libxml2 had to copy the value (entity references, normalized white space, a
         * converted encoding), it points into the parser's input buffer, whose first byte is
         * byte 'consumed' of the document. Trust the offset only if the document really
         * holds the value there. */
        if (begin < (uintptr_t)in->base || end > (uintptr_t)in->end || begin > end)
                return;
        c->offset = (size_t)in->consumed + (size_t)(begin - (uintptr_t)in->base);
        c->length = (size_t)(end - begin);
        c->in_buffer = c->offset + c->length <= s->size &&
                       memcmp(s->xml + c->offset, c->current, c->length) == 0 &&
                       strlen(c->current) == c->length;
}

static void candidates_clear(TextState *s)
{
        for (size_t i = 0; i < s->n_candidates; i++)
                free(s->candidates[i].current);
        s->n_candidates = 0;
}

static void graphics_start(TextState *s, xmlParserCtxt *pctx, int n_attrs, const xmlChar **attrs)
{
        bool vnc_or_spice = false;

        s->in_graphics = true;
        s->seen_listen_child = false;
        s->graphics_rewritable = true;
        candidates_clear(s);
        for (int i = 0; i < n_attrs; i++) {
                if (attr_is(attrs, i, "type")) {
                        size_t n = (size_t)(attrs[i * 5 + 4] - attrs[i * 5 + 3]);
                        const char *v = (const char *)attrs[i * 5 + 3];
                        vnc_or_spice = (n == 3 && memcmp(v, "vnc", 3) == 0) ||
                                       (n == 5 && memcmp(v, "spice", 5) == 0);
                } else if (attr_is(attrs, i, "socket"))
                        s->graphics_rewritable = false;
                else if (attr_is(attrs, i, "listen"))
                        add_candidate(s, pctx, attrs, i);
        }
        if (!vnc_or_spice)
                s->graphics_rewritable = false;
}

static void listen_start(TextState *s, xmlParserCtxt *pctx, int n_attrs, const xmlChar **attrs)
{
        _cleanup_free_ char *type = NULL;
        int address = -1;
        bool is_address;

        for (int i = 0; i < n_attrs; i++) {
                if (attr_is(attrs, i, "type"))
                        type = attr_value(attrs, i);
                else if (attr_is(attrs, i, "address"))
                        address = i;
        }
        is_address = !type || streq(type, "address");
        /* as domxml.c: the first <listen> decides whether the device is ours to move */
        if (!s->seen_listen_child && !is_address)
                s->graphics_rewritable = false;
        s->seen_listen_child = true;
        if (is_address && address >= 0)
                add_candidate(s, pctx, attrs, address);
}

static void graphics_end(TextState *s)
{
        s->in_graphics = false;
        if (!s->graphics_rewritable) {
                candidates_clear(s);
                return;
        }
        for (size_t i = 0; i < s->n_candidates; i++) {
                Candidate *c = &s->candidates[i];
                const char *target = console_listen_target(s->mode, s->node_address, c->current);

                if (!target)
                        continue;
                if (!c->in_buffer || s->n_edits >= MAX_EDITS ||
                    strpbrk(target, "&<>\"'") /* never escaped here: leave it to the tree */) {
                        s->give_up = true;
                        break;
                }
                s->edits[s->n_edits++] = (Edit){ c->offset, c->length, target };
        }
        candidates_clear(s);
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int n_ns, const xmlChar **ns, int n_attrs, int n_defaulted,
                     const xmlChar **attrs)
{
        xmlParserCtxt *pctx = ctx;
        TextState *s = pctx->_private;
        const char *name = (const char *)localname;

        s->depth++;
        if (uri || prefix)
                return; /* libvirt's own elements have no namespace */
        if (s->depth == 1) {
                s->root_is_domain = streq(name, "domain");
                if (!s->root_is_domain) {
                        s->give_up = true;
                        xmlStopParser(pctx);
                }
        } else if (s->depth == 2) {
                if (streq(name, "name") && !s->name)
                        s->capture = 1;
                else if (streq(name, "uuid") && !s->uuid)
                        s->capture = 2;
                else if (streq(name, "devices") && !s->seen_devices)
                        s->in_devices = s->seen_devices = true;
        } else if (s->depth == 3 && s->in_devices && streq(name, "graphics"))
                graphics_start(s, pctx, n_attrs, attrs);
        else if (s->depth == 4 && s->in_graphics && streq(name, "listen"))
                listen_start(s, pctx, n_attrs, attrs);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
        xmlParserCtxt *pctx = ctx;
        TextState *s = pctx->_private;

        if (s->depth == 2 && s->capture) {
                char **dst = s->capture == 1 ? &s->name : &s->uuid;
                if (!*dst)
                        *dst = strdup("");
                if (!*dst)
                        s->failed = true;
                s->capture = 0;
                if (s->identity_only && s->name && s->uuid)
                        xmlStopParser(pctx);
        } else if (s->depth == 2)
                s->in_devices = false;
        else if (s->depth == 3 && s->in_graphics && !uri && !prefix)
                graphics_end(s);
        s->depth--;
}

static void on_characters(void *ctx, const xmlChar *ch, int len)
{
        xmlParserCtxt *pctx = ctx;
        TextState *s = pctx->_private;
        char **dst;
        size_t *dst_len;
        char *t;

        if (!s->capture || len <= 0)
                return;
        dst = s->capture == 1 ? &s->name : &s->uuid;
        dst_len = s->capture == 1 ? &s->name_len : &s->uuid_len;
        if (*dst_len + (size_t)len > 4096) {
                s->give_up = true;
                return;
        }
        t = realloc(*dst, *dst_len + (size_t)len + 1);
        if (!t) {
                s->failed = true;
                return;
        }
        memcpy(t + *dst_len, ch, (size_t)len);
        *dst_len += (size_t)len;
        t[*dst_len] = 0;
        *dst = t;
}

static void on_internal_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                               const xmlChar *system_id)
{
        xmlParserCtxt *pctx = ctx;
        TextState *s = pctx->_private;

        /* a DOCTYPE: the tree path refuses it with a proper message */
        s->give_up = true;
        xmlStopParser(pctx);
}

static void on_error(void *user, xmlError *error)
{
        (void)user;
        (void)error; /* the tree path reports errors */
}

/* Runs the SAX pass; returns 0 when the fast path got a complete, trustworthy answer. */
static int text_pass(TextState *s)
{
        xmlSAXHandler sax = {
                .initialized = XML_SAX2_MAGIC,
                .startElementNs = on_start,
                .endElementNs = on_end,
                .characters = on_characters,
                .internalSubset = on_internal_subset,
                .serror = on_error,
        };
        xmlParserCtxt *ctxt;
        int r = 0;

        if (s->size > INT32_MAX)
                return -E2BIG;
        ctxt = xmlCreateMemoryParserCtxt(s->xml, (int)s->size);
        if (!ctxt)
                return -ENOMEM;
        *ctxt->sax = sax;
        ctxt->_private = s;
        xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

        (void)xmlParseDocument(ctxt);
        if (s->failed)
                r = -ENOMEM;
        else if (s->give_up || !s->root_is_domain)
                r = -EAGAIN;
        else if (!s->identity_only && !ctxt->wellFormed)
                r = -EAGAIN;
        else if (!s->name || !s->uuid || isempty(strstrip(s->name)) ||
                 !uuid_is_valid(strstrip(s->uuid)))
                r = -EAGAIN;
        xmlFreeParserCtxt(ctxt);
        return r;
}

static void text_state_done(TextState *s)
{
        candidates_clear(s);
        free(s->name);
        free(s->uuid);
}

static int identity_from(char *name, char *uuid, DomIdentity *ret)
{
        char *n = strdup(strstrip(name)), *u = strdup(strstrip(uuid));

        if (!n || !u) {
                free(n);
                free(u);
                return -ENOMEM;
        }
        *ret = (DomIdentity){ .name = n, .uuid = u };
        return 0;
}

static int identity_from_tree(const DomXml *d, DomIdentity *ret)
{
        return identity_from(d->name, d->uuid, ret);
}

int domxml_peek_identity(const char *xml, size_t size, DomIdentity *ret, char **ret_error)
{
        _cleanup_(domxml_freep) DomXml *d = NULL;
        TextState s = {
                .xml = xml,
                .size = size,
                .identity_only = true,
        };
        int r;

        r = text_pass(&s);
        if (r == 0)
                r = identity_from(s.name, s.uuid, ret);
        text_state_done(&s);
        if (r != -EAGAIN)
                return r;

        r = domxml_parse(xml, size, &d, ret_error);
        if (r < 0)
                return r;
        return identity_from_tree(d, ret);
}

static int splice(const char *xml, size_t size, const Edit *edits, size_t n, char **ret,
                  size_t *ret_size)
{
        size_t out_size = size, pos = 0, o = 0;
        char *out;

        for (size_t i = 0; i < n; i++)
                out_size = out_size - edits[i].length + strlen(edits[i].value);
        out = malloc(out_size + 1);
        if (!out)
                return -ENOMEM;
        /* edits arrive in document order and never overlap */
        for (size_t i = 0; i < n; i++) {
                size_t v = strlen(edits[i].value);

                memcpy(out + o, xml + pos, edits[i].offset - pos);
                o += edits[i].offset - pos;
                memcpy(out + o, edits[i].value, v);
                o += v;
                pos = edits[i].offset + edits[i].length;
        }
        memcpy(out + o, xml + pos, size - pos);
        o += size - pos;
        out[o] = 0;
        *ret = out;
        *ret_size = o;
        return 0;
}

int domxml_rewrite_listen_text(const char *xml, size_t size, ConsoleListen mode,
                               const char *node_address, DomIdentity *ret_identity, char **ret_xml,
                               size_t *ret_size, unsigned *ret_changed, char **ret_error)
{
        _cleanup_(domxml_freep) DomXml *d = NULL;
        _cleanup_free_ char *out = NULL;
        DomIdentity id = { NULL };
        TextState s = {
                .xml = xml,
                .size = size,
                .mode = mode,
                .node_address = node_address,
        };
        unsigned changed = 0;
        size_t out_size = 0;
        int r;

        r = text_pass(&s);
        if (r == 0) {
                changed = (unsigned)s.n_edits;
                if (changed > 0)
                        r = splice(xml, size, s.edits, s.n_edits, &out, &out_size);
                if (r == 0)
                        r = identity_from(s.name, s.uuid, &id);
        }
        text_state_done(&s);

        if (r == -EAGAIN) {
                /* the reference path */
                r = domxml_parse(xml, size, &d, ret_error);
                if (r < 0)
                        return r;
                r = domxml_rewrite_listen(d, mode, node_address, &changed);
                if (r >= 0 && changed > 0)
                        r = domxml_format(d, &out, &out_size);
                if (r >= 0)
                        r = identity_from_tree(d, &id);
        }
        if (r < 0)
                return r;

        if (ret_identity)
                *ret_identity = id;
        else
                dom_identity_done(&id);
        *ret_xml = TAKE_PTR(out);
        if (ret_size)
                *ret_size = out_size;
        if (ret_changed)
                *ret_changed = changed;
        return 0;
}
