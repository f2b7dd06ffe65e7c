/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain XML reaches the hook from libvirt, which got it from whoever defined the domain.
 * Invariants checked beyond "no crash, no leak": a document we accept and rewrite formats
 * to text that parses again to the same name and UUID, a second rewrite changes nothing, and
 * the hook's text path (domxml-text.c) agrees with the tree path: same result or same error,
 * same number of changes, and canonically the same document.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/c14n.h>
#include <libxml/parser.h>

#include "domxml.h"
#include "fuzz.h"

static char *canonical(const char *text, size_t size)
{
        xmlDoc *doc = xmlReadMemory(text, (int)size, NULL, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlChar *out = NULL;
        char *s = NULL;

        if (!doc)
                abort(); /* we produced text that is not XML */
        if (xmlC14NDocDumpMemory(doc, NULL, XML_C14N_1_0, NULL, 1, &out) >= 0 && out)
                s = strdup((const char *)out);
        xmlFree(out);
        xmlFreeDoc(doc);
        return s;
}

static void check_text_path(const uint8_t *data, size_t size, ConsoleListen mode, int tree_r,
                            unsigned tree_changed, const char *tree_out, size_t tree_size)
{
        _cleanup_free_ char *fast = NULL, *c_fast = NULL, *c_tree = NULL;
        DomIdentity id = { NULL };
        unsigned changed = 0;
        size_t fast_size = 0;
        int r;

        r = domxml_rewrite_listen_text((const char *)data, size, mode, "2001:db8::12", &id, &fast,
                                       &fast_size, &changed, NULL);
        /* Not XML (or a DOCTYPE): both refuse. Well-formed but not a valid model (a bad
         * <memory>, say): the text path needs only root, name and UUID, so it may go on. */
        if (tree_r == -EINVAL && r >= 0)
                abort();
        if (tree_r == 0 && r < 0)
                abort();
        if (r < 0 || tree_r < 0) {
                if (r >= 0)
                        dom_identity_done(&id);
                return;
        }
        dom_identity_done(&id);
        if (changed != tree_changed || (changed > 0) != (fast != NULL))
                abort();
        if (!fast || !tree_out)
                return;
        c_fast = canonical(fast, fast_size);
        c_tree = canonical(tree_out, tree_size);
        if (c_fast && c_tree && strcmp(c_fast, c_tree) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(domxml_freep) DomXml *d = NULL, *again = NULL;
        _cleanup_free_ char *error = NULL, *out = NULL;
        ConsoleListen mode;
        unsigned changed = 0;
        size_t out_size;
        int r;

        if (size < 1)
                return 0;
        /* The first byte picks the mode, the rest is the document. */
        mode = (ConsoleListen)(data[0] % _CONSOLE_LISTEN_MAX);
        r = domxml_parse((const char *)data + 1, size - 1, &d, &error);
        if (r < 0) {
                check_text_path(data + 1, size - 1, mode, r, 0, NULL, 0);
                return 0;
        }

        if (domxml_rewrite_listen(d, mode, "2001:db8::12", &changed) < 0)
                return 0;
        if (domxml_format(d, &out, &out_size) < 0)
                return 0;
        check_text_path(data + 1, size - 1, mode, 0, changed, out, out_size);
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
