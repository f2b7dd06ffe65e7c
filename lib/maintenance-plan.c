/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What maintenance would do to one domain, and why (maintenance-plan.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "maintenance-plan.h"
#include "util.h"

static const char *const maintenance_action_table[_MAINTENANCE_ACTION_MAX] = {
        [MAINTENANCE_ACTION_NONE] = "none",
        [MAINTENANCE_ACTION_MIGRATE] = "migrate",
        [MAINTENANCE_ACTION_SHUTDOWN] = "shutdown",
        [MAINTENANCE_ACTION_BLOCKED] = "blocked",
};

DEFINE_STRING_TABLE_TO_STRING(maintenance_action, MaintenanceAction);

MaintenanceStrategy maintenance_strategy_of(const DomXml *d, MaintenanceStrategy default_strategy,
                                            bool *ret_own, bool *ret_bad)
{
        MaintenanceStrategy s = d && d->hw_maintenance
                                        ? maintenance_strategy_from_string(d->hw_maintenance)
                                        : _MAINTENANCE_STRATEGY_INVALID;

        if (ret_own)
                *ret_own = s >= 0;
        if (ret_bad)
                *ret_bad = d && d->hw_maintenance && s < 0;
        return s >= 0 ? s : default_strategy;
}

bool maintenance_needs_destination(bool active, MaintenanceStrategy s, bool migrating)
{
        return active && !migrating && s != MAINTENANCE_SHUTDOWN;
}

/* "strategy migrate-or-shutdown (its metadata)", with a bad value of its metadata named */
static void describe_strategy(const MaintenanceFacts *f, char *buf, size_t size)
{
        if (f->bad_strategy)
                snprintf(buf, size,
                         "strategy %s ([maintenance] strategy: its metadata's maintenance=\"%s\" "
                         "is not migrate, migrate-or-shutdown or shutdown)",
                         maintenance_strategy_to_string(f->strategy), f->bad_strategy);
        else
                snprintf(buf, size, "strategy %s (%s)", maintenance_strategy_to_string(f->strategy),
                         f->strategy_own ? "its metadata" : "[maintenance] strategy");
}

/* "1.5 GiB" or "512 MiB" */
static const char *format_memory(uint64_t bytes, char *buf, size_t size)
{
        if (bytes >= (10ULL << 30))
                snprintf(buf, size, "%llu GiB", (unsigned long long)(bytes >> 30));
        else if (bytes >= (1ULL << 30))
                snprintf(buf, size, "%.1f GiB", (double)bytes / (double)(1ULL << 30));
        else
                snprintf(buf, size, "%llu MiB", (unsigned long long)(bytes >> 20));
        return buf;
}

/* Appends to buf at *used what follows, as snprintf; stops quietly when buf is full. */
static void append(char *buf, size_t size, size_t *used, const char *format, ...) _printf_(4, 5);
static void append(char *buf, size_t size, size_t *used, const char *format, ...)
{
        va_list ap;
        int k;

        if (*used + 1 >= size)
                return;
        va_start(ap, format);
        k = vsnprintf(buf + *used, size - *used, format, ap);
        va_end(ap);
        if (k > 0)
                *used = MIN(*used + (size_t)k, size - 1);
}

/* The chosen destination and why: it passed CheckMigration and had the most free memory of
 * those that did; its warnings; the peers that refused and why. */
static void describe_destination(const MaintenanceFacts *f, char *buf, size_t size)
{
        const PlacementCandidate *c = &f->candidates[f->placement->chosen];
        char free_text[32], need_text[32];
        size_t used = 0;
        bool any = false;

        append(buf, size, &used, "live migration to %s, ", c->name);
        if (f->n_candidates == 1)
                append(buf, size, &used, "the only peer, which passes CheckMigration");
        else
                append(buf, size, &used,
                       "the peer with the most free memory of those that pass CheckMigration");
        if (c->free_bytes != UINT64_MAX)
                append(buf, size, &used, " (%s free, the guest needs %s)",
                       format_memory(c->free_bytes, free_text, sizeof(free_text)),
                       format_memory(c->need_bytes, need_text, sizeof(need_text)));
        for (size_t i = 0; c->findings && i < c->findings->n; i++) {
                const MigFinding *w = &c->findings->items[i];

                if (w->severity != MIG_WARNING)
                        continue;
                append(buf, size, &used, "%s%s (%s)", any ? "; " : "; warning: ", w->message,
                       w->code);
                any = true;
        }
        for (size_t i = 0; i < f->n_candidates; i++) {
                char why[1024];

                if ((ssize_t)i == f->placement->chosen ||
                    (f->candidates[i].error >= 0 &&
                     mig_findings_worst(f->candidates[i].findings) < MIG_ERROR))
                        continue;
                placement_describe_refusal(&f->candidates[i], why, sizeof(why));
                append(buf, size, &used, "; not %s: %s", f->candidates[i].name, why);
        }
}

MaintenanceAction maintenance_decide(const MaintenanceFacts *f, char *reason, size_t size)
{
        char strategy[256];

        describe_strategy(f, strategy, sizeof(strategy));
        if (!f->active) {
                snprintf(reason, size, "not running (%s): stays defined here",
                         f->state_word ? f->state_word : "shut off");
                return MAINTENANCE_ACTION_NONE;
        }
        if (f->migrating_id) {
                /* the drain leaves it to that migration (dbus/drain.c does the same) */
                snprintf(reason, size,
                         "being migrated already%s%s by migration %s, which moves it "
                         "('hostwardenctl migration show %s')",
                         isempty(f->migrating_dest) ? "" : " to ",
                         isempty(f->migrating_dest) ? "" : f->migrating_dest, f->migrating_id,
                         f->migrating_id);
                return MAINTENANCE_ACTION_MIGRATE;
        }
        if (f->strategy == MAINTENANCE_SHUTDOWN) {
                snprintf(reason, size, "%s: shut down here, stays defined here", strategy);
                return MAINTENANCE_ACTION_SHUTDOWN;
        }
        if (!f->placement) {
                snprintf(reason, size, "no destination was looked for (%s)", strategy);
                return MAINTENANCE_ACTION_BLOCKED;
        }
        if (f->placement->error == -ENOENT) {
                snprintf(reason, size, "gone from this node while the plan was made");
                return MAINTENANCE_ACTION_NONE;
        }
        if (f->placement->error >= 0 && f->placement->chosen >= 0 &&
            (size_t)f->placement->chosen < f->n_candidates) {
                describe_destination(f, reason, size);
                return MAINTENANCE_ACTION_MIGRATE;
        }
        if (f->strategy == MAINTENANCE_MIGRATE_OR_SHUTDOWN) {
                snprintf(reason, size, "no node can take it, so shut down here by its %s: %s",
                         strategy, f->placement->why);
                return MAINTENANCE_ACTION_SHUTDOWN;
        }
        snprintf(reason, size,
                 "no node can take it: %s (%s: it stays running here; migrate-or-shutdown "
                 "would shut it down)",
                 f->placement->why, strategy);
        return MAINTENANCE_ACTION_BLOCKED;
}
