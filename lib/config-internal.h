/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What config.c (the files and the Config object) shares with config-items.c (the keys
 * and their value parsers).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct ConfigItem ConfigItem;
typedef int (*ValueParser)(const ConfigItem *item, const char *value, void *dst);

/* What a key's value is in Config: in place (a number, a bool, an enum), or allocated. */
typedef enum ConfigValue {
        CONFIG_VALUE_INLINE,
        CONFIG_VALUE_STRING, /* char *; a secret's is wiped when freed */
        CONFIG_VALUE_LIST,   /* char ** (strv) */
} ConfigValue;

struct ConfigItem {
        const char *section; /* "peer" for [peer NAME] */
        const char *key;
        ValueParser parse;
        size_t offset; /* into Config, or into ConfigPeer for "peer" */
        const char *expected;
        uint64_t min, max;
        const char *const *names; /* enum tables */
        size_t n_names;
        ConfigValue value; /* how it is held, and freed */
        bool multiline;    /* may continue on indented lines */
        bool secret;       /* value never echoed in messages */
};

/* The number of keys: config-items.c checks it against its table when it is compiled. */
#define CONFIG_N_ITEMS 70

extern const ConfigItem config_items[CONFIG_N_ITEMS];

/* The key of section ("peer" for [peer NAME]), or NULL. */
const ConfigItem *config_item_find(const char *section, const char *key);
/* The known key of section, or the known section, closest to a misspelt one; NULL: none
 * close (spelling.h). */
const char *config_key_suggestion(const char *section, const char *key);
const char *config_section_suggestion(const char *section);
/* Whether any key belongs to section. */
bool config_section_known(const char *section);
/* Frees the values of the [peer NAME] keys (peer) or of all the others in base, a ConfigPeer or
 * a Config: the table says what each holds, so a key added to it is freed too. */
void config_items_free(void *base, bool peer);

/* config-policy.c: [policy NAME] sections. open: the section's index (a section opened again
 * starts over) or a negative errno with ret_error saying why; add_key: its key 'step', or a
 * negative errno with ret_error. */
int config_policy_open(Config *c, const char *name, const char *file, unsigned line,
                       const char **ret_error);
int config_policy_add_key(Config *c, size_t index, const char *key, const char *value,
                          const char **ret_error);
void config_policies_free(Config *c);
