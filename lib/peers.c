/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"

int peer_targets_add(PeerTargets *t, const char *name, const char *uri)
{
        PeerTarget *items, add = {};

        add.name = strdup(name);
        add.uri = strdup(strempty(uri));
        items = reallocarray(t->items, t->n + 1, sizeof(*items));
        if (!add.name || !add.uri || !items) {
                free(add.name);
                free(add.uri);
                if (items)
                        t->items = items;
                return -ENOMEM;
        }
        items[t->n++] = add;
        t->items = items;
        return 0;
}

int peer_targets_from_config(const Config *c, char *const *skip, PeerTargets *ret)
{
        PeerTargets t = {};

        for (size_t i = 0; i < c->n_peers; i++) {
                if (strv_contains(skip, c->peers[i].name))
                        continue;
                if (peer_targets_add(&t, c->peers[i].name, c->peers[i].libvirt_uri) < 0) {
                        peer_targets_done(&t);
                        return -ENOMEM;
                }
        }
        *ret = t;
        return 0;
}

int peer_targets_copy(const PeerTargets *src, PeerTargets *ret)
{
        PeerTargets t = {};

        for (size_t i = 0; i < src->n; i++)
                if (peer_targets_add(&t, src->items[i].name, src->items[i].uri) < 0) {
                        peer_targets_done(&t);
                        return -ENOMEM;
                }
        *ret = t;
        return 0;
}

const PeerTarget *peer_targets_find(const PeerTargets *t, const char *name)
{
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->items[i].name, name))
                        return &t->items[i];
        return NULL;
}

void peer_targets_done(PeerTargets *t)
{
        for (size_t i = 0; i < t->n; i++) {
                free(t->items[i].name);
                free(t->items[i].uri);
        }
        free(t->items);
        *t = (PeerTargets){};
}
