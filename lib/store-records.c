/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The text of the store's records (store.c's comment has the rules): "key=value" lines with
 * "generation=N" last, the names of their enum values, and node and instance records to and
 * from that text. What the text may hold is checked here, on the way in and on the way out.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coldmig.h"
#include "runtime.h"
#include "store-internal.h"
#include "util.h"

static const char *const fence_state_table[_FENCE_STATE_MAX] = {
        [FENCE_UNKNOWN] = "unknown",
        [FENCE_ON] = "on",
        [FENCE_OFF] = "off",
};

DEFINE_STRING_TABLE_LOOKUP(fence_state, FenceState, _FENCE_STATE_INVALID);

static const char *const node_liveness_table[_NODE_LIVENESS_MAX] = {
        [NODE_UP] = "up",
        [NODE_DOWN] = "down",
        [NODE_UNKNOWN] = "unknown",
};

DEFINE_STRING_TABLE_TO_STRING(node_liveness, NodeLiveness);

/* ---- record text ---------------------------------------------------------------------- */

/* Every line "key=value\n" with a lower-case key: anything else is not a record we wrote. */
static bool record_text_is_well_formed(const char *text)
{
        const char *p = text;

        if (!*p)
                return false;
        while (*p) {
                const char *nl = strchr(p, '\n');
                const char *k = p;

                if (!nl)
                        return false; /* cut short */
                while (k < nl && (islower((unsigned char)*k) || *k == '_'))
                        k++;
                if (k == p || k >= nl || *k != '=')
                        return false;
                p = nl + 1;
        }
        return true;
}

static int get_u64(const RuntimeRecord *rec, const char *key, bool required, uint64_t *ret)
{
        const char *v = runtime_record_get(rec, key);

        if (!v) {
                if (required)
                        return -EBADMSG;
                *ret = 0;
                return 0;
        }
        return parse_uint_range(v, 0, UINT64_MAX, ret) < 0 ? -EBADMSG : 0;
}

static int get_bool(const RuntimeRecord *rec, const char *key, bool *ret)
{
        const char *v = runtime_record_get(rec, key);
        int b;

        if (!v) {
                *ret = false;
                return 0;
        }
        b = parse_boolean(v);
        if (b < 0)
                return -EBADMSG;
        *ret = b;
        return 0;
}

static int get_str(const RuntimeRecord *rec, const char *key, char **ret)
{
        const char *v = runtime_record_get(rec, key);

        if (!v) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int set_u64(RuntimeRecord *rec, const char *key, uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
        return runtime_record_set(rec, key, buf);
}

static int record_set_str(RuntimeRecord *rec, const char *key, const char *v)
{
        return v ? runtime_record_set(rec, key, v) : 0;
}

int store_record_text_parse(const char *text, RuntimeRecord *ret)
{
        if (!record_text_is_well_formed(text))
                return -EBADMSG;
        return runtime_record_parse(text, ret);
}

int store_record_text_format(const RuntimeRecord *rec, uint64_t generation, char **ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord copy = { NULL };
        int r;

        /* generation goes last: a record without it is incomplete. */
        for (size_t i = 0; rec->kv && rec->kv[i] && rec->kv[i + 1]; i += 2) {
                r = runtime_record_set(&copy, rec->kv[i], rec->kv[i + 1]);
                if (r < 0)
                        return r;
        }
        r = set_u64(&copy, "generation", generation);
        if (r < 0)
                return r;
        return runtime_record_format(&copy, ret);
}

static bool node_name_is_valid(const char *name)
{
        return name && hostname_is_valid(name);
}

static bool address_is_valid(const char *a)
{
        return hostname_is_valid(a) || ip_address_is_valid(a, NULL);
}

static bool storage_mark_is_valid(const char *m)
{
        return strlen(m) == STORAGE_MARK_LEN && strspn(m, "0123456789abcdef") == STORAGE_MARK_LEN;
}

bool store_node_name_is_valid(const char *name)
{
        return node_name_is_valid(name);
}

void node_record_done(NodeRecord *r)
{
        free(r->name);
        free(r->address);
        free(r->storage_mark);
        free(r->disabled_reason);
        free(r->forced_down_by);
        free(r->maintenance_left);
        *r = (NodeRecord){ .fence = FENCE_UNKNOWN };
}

DEFINE_ARRAY_FREE_FUNC(node_record_array_free, NodeRecord, node_record_done);

int node_record_from_text(const char *name, const char *text, NodeRecord *ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_(node_record_done) NodeRecord n = { .fence = FENCE_UNKNOWN };
        uint64_t max_incoming = 0;
        const char *v;
        int r;

        r = store_record_text_parse(text, &rec);
        if (r < 0)
                return r;

        v = runtime_record_get(&rec, "name");
        if (!v || !streq(v, name))
                return -EBADMSG;
        v = runtime_record_get(&rec, "fence");
        n.fence = fence_state_from_string(v);
        if (n.fence < 0)
                return -EBADMSG;
        v = runtime_record_get(&rec, "address");
        if (v && !address_is_valid(v))
                return -EBADMSG;
        v = runtime_record_get(&rec, "storage_mark");
        if (v && !storage_mark_is_valid(v))
                return -EBADMSG;
        v = runtime_record_get(&rec, "maintenance"); /* none: off, as before maintenance */
        n.maintenance = v ? maintenance_state_from_string(v) : MAINTENANCE_OFF;
        if (n.maintenance < 0)
                return -EBADMSG;

        if ((r = get_str(&rec, "name", &n.name)) < 0 ||
            (r = get_str(&rec, "address", &n.address)) < 0 ||
            (r = get_str(&rec, "storage_mark", &n.storage_mark)) < 0 ||
            (r = get_bool(&rec, "disabled", &n.disabled)) < 0 ||
            (r = get_str(&rec, "disabled_reason", &n.disabled_reason)) < 0 ||
            (r = get_u64(&rec, "disabled_since", false, &n.disabled_since)) < 0 ||
            (r = get_u64(&rec, "heartbeat", true, &n.heartbeat)) < 0 ||
            (r = get_u64(&rec, "heartbeat_time", false, &n.heartbeat_time)) < 0 ||
            (r = get_bool(&rec, "forced_down", &n.forced_down)) < 0 ||
            (r = get_str(&rec, "forced_down_by", &n.forced_down_by)) < 0 ||
            (r = get_u64(&rec, "forced_down_since", false, &n.forced_down_since)) < 0 ||
            (r = get_u64(&rec, "fence_time", false, &n.fence_time)) < 0 ||
            (r = get_u64(&rec, "mem_available", false, &n.mem_available)) < 0 ||
            (r = get_u64(&rec, "self_fence_after", false, &n.self_fence_after)) < 0 ||
            (r = get_u64(&rec, "max_incoming", false, &max_incoming)) < 0 ||
            (r = get_u64(&rec, "maintenance_since", false, &n.maintenance_since)) < 0 ||
            (r = get_u64(&rec, "maintenance_deadline", false, &n.maintenance_deadline)) < 0 ||
            (r = get_str(&rec, "maintenance_left", &n.maintenance_left)) < 0 ||
            (r = get_bool(&rec, "maintenance_return", &n.maintenance_return)) < 0 ||
            (r = get_u64(&rec, "generation", true, &n.generation)) < 0)
                return r;
        if (n.generation == 0 || max_incoming > UINT_MAX)
                return -EBADMSG;
        n.max_incoming = (unsigned)max_incoming;

        *ret = n;
        n = (NodeRecord){ .fence = FENCE_UNKNOWN };
        return 0;
}

int node_record_to_text(const NodeRecord *n, uint64_t generation, char **ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        int r;

        if (!node_name_is_valid(n->name) || (n->address && !address_is_valid(n->address)) ||
            (n->storage_mark && !storage_mark_is_valid(n->storage_mark)) ||
            !fence_state_to_string(n->fence) || !maintenance_state_to_string(n->maintenance))
                return -EINVAL;

        /* runtime_record_set() refuses values with newlines (-EINVAL). */
        if ((r = record_set_str(&rec, "name", n->name)) < 0 ||
            (r = record_set_str(&rec, "address", n->address)) < 0 ||
            (r = record_set_str(&rec, "storage_mark", n->storage_mark)) < 0 ||
            (r = record_set_str(&rec, "disabled", n->disabled ? "yes" : "no")) < 0 ||
            (r = record_set_str(&rec, "disabled_reason", n->disabled_reason)) < 0 ||
            (r = set_u64(&rec, "disabled_since", n->disabled_since)) < 0 ||
            (r = set_u64(&rec, "heartbeat", n->heartbeat)) < 0 ||
            (r = set_u64(&rec, "heartbeat_time", n->heartbeat_time)) < 0 ||
            (r = record_set_str(&rec, "forced_down", n->forced_down ? "yes" : "no")) < 0 ||
            (r = record_set_str(&rec, "forced_down_by", n->forced_down_by)) < 0 ||
            (r = set_u64(&rec, "forced_down_since", n->forced_down_since)) < 0 ||
            (r = record_set_str(&rec, "fence", fence_state_to_string(n->fence))) < 0 ||
            (r = set_u64(&rec, "fence_time", n->fence_time)) < 0 ||
            (n->mem_available && (r = set_u64(&rec, "mem_available", n->mem_available)) < 0) ||
            (n->self_fence_after &&
             (r = set_u64(&rec, "self_fence_after", n->self_fence_after)) < 0) ||
            (n->max_incoming && (r = set_u64(&rec, "max_incoming", n->max_incoming)) < 0))
                return r;
        /* only when in maintenance, or with guests to return: older readers see none */
        if ((n->maintenance != MAINTENANCE_OFF &&
             ((r = record_set_str(&rec, "maintenance",
                                  maintenance_state_to_string(n->maintenance))) < 0 ||
              (r = set_u64(&rec, "maintenance_since", n->maintenance_since)) < 0)) ||
            (n->maintenance_deadline &&
             (r = set_u64(&rec, "maintenance_deadline", n->maintenance_deadline)) < 0) ||
            (r = record_set_str(&rec, "maintenance_left", n->maintenance_left)) < 0 ||
            (n->maintenance_return && (r = record_set_str(&rec, "maintenance_return", "yes")) < 0))
                return r;
        return store_record_text_format(&rec, generation, ret);
}

static int dup_str(const char *src, char **dst)
{
        if (!src) {
                *dst = NULL;
                return 0;
        }
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

int node_record_copy(const NodeRecord *src, NodeRecord *dst)
{
        _cleanup_(node_record_done) NodeRecord n = *src;

        n.name = n.address = n.storage_mark = n.disabled_reason = n.forced_down_by = NULL;
        n.maintenance_left = NULL;
        if (dup_str(src->name, &n.name) < 0 || dup_str(src->address, &n.address) < 0 ||
            dup_str(src->storage_mark, &n.storage_mark) < 0 ||
            dup_str(src->disabled_reason, &n.disabled_reason) < 0 ||
            dup_str(src->forced_down_by, &n.forced_down_by) < 0 ||
            dup_str(src->maintenance_left, &n.maintenance_left) < 0)
                return -ENOMEM;
        *dst = n;
        n = (NodeRecord){};
        return 0;
}

static const char *const instance_power_table[_INSTANCE_POWER_MAX] = {
        [INSTANCE_POWER_UNKNOWN] = "unknown",
        [INSTANCE_POWER_RUNNING] = "running",
        [INSTANCE_POWER_PAUSED] = "paused",
        [INSTANCE_POWER_SHUTOFF] = "shutoff",
};

DEFINE_STRING_TABLE_LOOKUP(instance_power, InstancePower, _INSTANCE_POWER_INVALID);

void instance_record_done(InstanceRecord *r)
{
        free(r->name);
        free(r->owner);
        free(r->evacuated_from);
        free(r->cold_source);
        free(r->cold_migration);
        free(r->cold_state);
        strv_free(r->cold_disks);
        free(r->recover_to);
        strv_free(r->recover_refused);
        *r = (InstanceRecord){};
}

DEFINE_ARRAY_FREE_FUNC(instance_record_array_free, InstanceRecord, instance_record_done);

/* A cold migration's keys: all of them or none. */
static int cold_from_text(const RuntimeRecord *rec, InstanceRecord *i)
{
        const char *source = runtime_record_get(rec, "cold_source");
        const char *id = runtime_record_get(rec, "cold_migration");
        const char *state = runtime_record_get(rec, "cold_state");
        const char *disks = runtime_record_get(rec, "cold_disks");
        const char *power = runtime_record_get(rec, "cold_power");
        int r;

        if (!source && !id && !state && !disks && !power)
                return 0;
        if (!source || !hostname_is_valid(source) || isempty(id) || strlen(id) > 64 ||
            cold_state_from_string(state) < 0 || !power)
                return -EBADMSG;
        i->cold_power = instance_power_from_string(power);
        if (i->cold_power < 0)
                return -EBADMSG;
        /* a guest with no local disk copies none */
        if (disks && cold_paths_parse(disks, &i->cold_disks) < 0)
                return -EBADMSG;
        i->cold_source = strdup(source);
        i->cold_migration = strdup(id);
        i->cold_state = strdup(state);
        r = i->cold_source && i->cold_migration && i->cold_state ? 0 : -ENOMEM;
        return r;
}

static int cold_to_text(const InstanceRecord *i, RuntimeRecord *rec)
{
        _cleanup_free_ char *disks = NULL;
        int r;

        if (!i->cold_source)
                return 0;
        if (!hostname_is_valid(i->cold_source) || isempty(i->cold_migration) ||
            strlen(i->cold_migration) > 64 || strpbrk(i->cold_migration, "\n=") ||
            cold_state_from_string(i->cold_state) < 0 || i->cold_power < 0 ||
            i->cold_power >= _INSTANCE_POWER_MAX)
                return -EINVAL;
        if (i->cold_disks) {
                r = cold_paths_format(i->cold_disks, &disks);
                if (r < 0)
                        return r;
        }
        if ((r = record_set_str(rec, "cold_source", i->cold_source)) < 0 ||
            (r = record_set_str(rec, "cold_migration", i->cold_migration)) < 0 ||
            (r = record_set_str(rec, "cold_state", i->cold_state)) < 0 ||
            (r = record_set_str(rec, "cold_disks", disks)) < 0 ||
            (r = record_set_str(rec, "cold_power", instance_power_to_string(i->cold_power))) < 0)
                return r;
        return 0;
}

/* Automatic recovery's keys (recover_to, recover_time, recover_refused): node names. */
static int recover_from_text(const RuntimeRecord *rec, InstanceRecord *i)
{
        const char *to = runtime_record_get(rec, "recover_to");
        const char *refused = runtime_record_get(rec, "recover_refused");
        int r;

        if (to && !hostname_is_valid(to))
                return -EBADMSG;
        if (refused) {
                r = strv_split_list(refused, &i->recover_refused);
                if (r < 0)
                        return r == -ENOMEM ? r : -EBADMSG;
                STRV_FOREACH (n, i->recover_refused)
                        if (!hostname_is_valid(*n))
                                return -EBADMSG;
        }
        r = get_u64(rec, "recover_time", false, &i->recover_time);
        if (r < 0)
                return r;
        return get_str(rec, "recover_to", &i->recover_to);
}

static int recover_to_text(const InstanceRecord *i, RuntimeRecord *rec)
{
        _cleanup_free_ char *refused = NULL;
        int r;

        if (i->recover_to && !hostname_is_valid(i->recover_to))
                return -EINVAL;
        STRV_FOREACH (n, i->recover_refused)
                if (!hostname_is_valid(*n))
                        return -EINVAL;
        if (i->recover_refused && i->recover_refused[0]) {
                refused = strv_join(i->recover_refused, " ");
                if (!refused)
                        return -ENOMEM;
        }
        if ((r = record_set_str(rec, "recover_to", i->recover_to)) < 0 ||
            (r = record_set_str(rec, "recover_refused", refused)) < 0 ||
            (i->recover_time && (r = set_u64(rec, "recover_time", i->recover_time)) < 0))
                return r;
        return 0;
}

int instance_record_from_text(const char *uuid, const char *text, InstanceRecord *ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        _cleanup_(instance_record_done) InstanceRecord i = {};
        const char *v;
        int r;

        r = store_record_text_parse(text, &rec);
        if (r < 0)
                return r;

        v = runtime_record_get(&rec, "uuid");
        if (!v || !streq(v, uuid))
                return -EBADMSG;
        v = runtime_record_get(&rec, "owner");
        if (!v || !hostname_is_valid(v))
                return -EBADMSG;
        v = runtime_record_get(&rec, "evacuated_from");
        if (v && !hostname_is_valid(v))
                return -EBADMSG;

        memcpy(i.uuid, uuid, sizeof(i.uuid));
        if ((r = get_str(&rec, "name", &i.name)) < 0 ||
            (r = get_str(&rec, "owner", &i.owner)) < 0 ||
            (r = get_str(&rec, "evacuated_from", &i.evacuated_from)) < 0 ||
            (r = get_u64(&rec, "time", true, &i.time)) < 0 ||
            (r = get_bool(&rec, "deleted", &i.deleted)) < 0 ||
            (r = get_u64(&rec, "generation", true, &i.generation)) < 0)
                return r;
        if (i.generation == 0)
                return -EBADMSG;
        v = runtime_record_get(&rec, "power");
        i.power = v ? instance_power_from_string(v) : INSTANCE_POWER_UNKNOWN;
        if (i.power < 0)
                return -EBADMSG;
        r = cold_from_text(&rec, &i);
        if (r < 0)
                return r;
        r = recover_from_text(&rec, &i);
        if (r < 0)
                return r;

        *ret = i;
        i = (InstanceRecord){};
        return 0;
}

int instance_record_to_text(const InstanceRecord *i, const char *uuid, uint64_t generation,
                            char **ret)
{
        _cleanup_(runtime_record_done) RuntimeRecord rec = { NULL };
        int r;

        if (!node_name_is_valid(i->owner) ||
            (i->evacuated_from && !hostname_is_valid(i->evacuated_from)))
                return -EINVAL;

        if ((r = record_set_str(&rec, "uuid", uuid)) < 0 ||
            (r = record_set_str(&rec, "name", i->name)) < 0 ||
            (r = record_set_str(&rec, "owner", i->owner)) < 0 ||
            (r = record_set_str(&rec, "evacuated_from", i->evacuated_from)) < 0 ||
            (r = set_u64(&rec, "time", i->time)) < 0 ||
            (r = record_set_str(&rec, "power",
                                i->power > INSTANCE_POWER_UNKNOWN
                                        ? instance_power_to_string(i->power)
                                        : NULL)) < 0 ||
            (r = record_set_str(&rec, "deleted", i->deleted ? "yes" : NULL)) < 0 ||
            (r = cold_to_text(i, &rec)) < 0 || (r = recover_to_text(i, &rec)) < 0)
                return r;
        return store_record_text_format(&rec, generation, ret);
}

/* The field readers and writers above, for the other kinds of records (store-history.c). */
int store_record_get_u64(const RuntimeRecord *rec, const char *key, bool required, uint64_t *ret)
{
        return get_u64(rec, key, required, ret);
}

int store_record_get_str(const RuntimeRecord *rec, const char *key, char **ret)
{
        return get_str(rec, key, ret);
}

int store_record_set_u64(RuntimeRecord *rec, const char *key, uint64_t v)
{
        return set_u64(rec, key, v);
}

int store_record_set_str(RuntimeRecord *rec, const char *key, const char *v)
{
        return record_set_str(rec, key, v);
}
