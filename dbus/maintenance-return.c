/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Exit(true)'s return, on the side of the nodes that run the guests (maintenance-drain.h,
 * docs/maintenance.md "Maintenance: exit"): on each heartbeat, the records of the nodes that
 * ask for their guests back; each guest whose instance record says it is this node's is
 * migrated back (a live migration queued as Migrate queues one, with [migration]'s
 * defaults: its CheckMigration on the way says whether it still fits) and its entry taken
 * out of that node's record. A guest that does not fit any more stays here: its migration
 * fails, its error is in the migration and the journal, and it is not tried again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "maintenance-drain.h"
#include "maintenance-return.h"
#include "migrate-opts.h"
#include "migration-internal.h"
#include "node-state.h"
#include "util.h"

static int mutate_drop_entry(NodeRecord *rec, void *userdata)
{
        const char *uuid = userdata;
        char *left = NULL;
        int r;

        if (rec->generation == 0)
                return -ENOENT;
        r = maintenance_left_without(rec->maintenance_left, uuid, &left);
        if (r < 0)
                return r;
        free(rec->maintenance_left);
        rec->maintenance_left = left;
        if (!left)
                rec->maintenance_return = false; /* all back: nothing more to ask for */
        return 0;
}

static const InstanceRecord *instance_of(const InstanceRecord *inst, size_t n, const char *uuid)
{
        for (size_t i = 0; i < n; i++)
                if (streq(inst[i].uuid, uuid))
                        return &inst[i];
        return NULL;
}

/* Queues the migration of uuid back to node. */
static void send_back(Manager *m, const InstanceRecord *i, const char *node)
{
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        MigrateOptions opts;
        Migration *mig;
        int r;

        migrate_options_defaults(m->config, &opts);
        r = migrate_options_check_tls(m->config, &opts, &e);
        if (r >= 0)
                r = migration_create(m, i->uuid, i->uuid, i->name ?: i->uuid, node, &opts, &mig,
                                     &e);
        if (r < 0) {
                log_warning("Maintenance of %s ended: %s cannot be sent back: %s", node,
                            i->name ?: i->uuid, e.message ?: strerror(-r));
                return;
        }
        log_info("Maintenance of %s ended: migration %s sends %s back", node, mig->id,
                 i->name ?: i->uuid);
}

/* The entries of one returning node's record. */
static bool return_from(Manager *m, const NodeRecord *rec, const InstanceRecord *inst,
                        size_t n_inst)
{
        _cleanup_strv_free_ char **entries = NULL;
        bool queued = false;
        char uuid[64];

        if (strv_split_list(rec->maintenance_left, &entries) < 0)
                return false;
        STRV_FOREACH (e, entries) {
                const InstanceRecord *i;
                ReturnFacts f = { .self = m->config->node.name, .returning = rec->name };
                ReturnAction a;
                int r;

                if (!maintenance_left_entry_uuid(*e, uuid, sizeof(uuid)))
                        continue; /* not ours to judge: left as it is */
                i = instance_of(inst, n_inst, uuid);
                f.has_record = i;
                f.deleted = i && i->deleted;
                f.owner = i ? i->owner : NULL;
                f.busy = migration_busy(m, uuid);
                a = maintenance_return_decide(&f);
                if (a == RETURN_LEAVE || a == RETURN_WAIT)
                        continue;
                /* the entry goes first: were the record not written, the guest would be
                 * sent on every heartbeat */
                r = store_node_update(m->store, rec->name, mutate_drop_entry, uuid, NULL);
                if (r < 0) {
                        log_warning_errno(r, "Cannot take %s out of %s's guests to return: %m",
                                          uuid, rec->name);
                        continue;
                }
                if (a == RETURN_SEND_BACK) {
                        send_back(m, i, rec->name);
                        queued = true;
                }
        }
        return queued;
}

void maintenance_return_tick(Manager *m)
{
        NodeRecord *nodes = NULL;
        const InstanceRecord *inst = NULL;
        size_t n = 0, n_inst = 0;
        bool queued = false, asked = false;
        uint64_t now = 0;

        if (!m->store)
                return;
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (store_node_list_cached(m->store, now, USEC_PER_SEC, &nodes, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                asked |= nodes[i].maintenance_return && nodes[i].maintenance == MAINTENANCE_OFF &&
                         nodes[i].maintenance_left;
        if (asked && node_instances_cached(m, &inst, &n_inst) >= 0)
                for (size_t i = 0; i < n; i++)
                        if (nodes[i].maintenance_return &&
                            nodes[i].maintenance == MAINTENANCE_OFF && nodes[i].maintenance_left)
                                queued |= return_from(m, &nodes[i], inst, n_inst);
        node_record_array_free(nodes, n);
        if (queued)
                migrations_schedule(m);
}
