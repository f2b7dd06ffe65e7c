/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/*
 * Peers to ask about an instance, by name and libvirt URI: what adoption, rebuild and
 * reconciliation carry from the event loop (where the configuration lives) into their
 * workers, which must not read a configuration that Reload may replace under them.
 */
typedef struct PeerTarget {
        char *name;
        char *uri; /* the peer's libvirt_uri; "" when it has none */
} PeerTarget;

typedef struct PeerTargets {
        PeerTarget *items;
        size_t n;
} PeerTargets;

/* Appends a copy of (name, uri); uri NULL is stored as "". -ENOMEM. */
int peer_targets_add(PeerTargets *t, const char *name, const char *uri);
/* The configured peers in configuration order, minus those named in skip (may be NULL). */
int peer_targets_from_config(const Config *c, char *const *skip, PeerTargets *ret);
int peer_targets_copy(const PeerTargets *src, PeerTargets *ret);
/* The entry named name, or NULL. */
const PeerTarget *peer_targets_find(const PeerTargets *t, const char *name);
void peer_targets_done(PeerTargets *t);
