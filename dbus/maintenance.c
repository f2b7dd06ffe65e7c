/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.hostwarden.Warden1.Maintenance (maintenance-dbus.h): Plan(), what `maintenance enter`
 * would do to every domain of this node, the object's vtable and properties (Enter, Cancel,
 * Exit and the state behind the properties: maintenance-drain.c).
 *
 * Plan changes nothing. It asks what EvacuateLive's migrations ask, with the same code: for
 * each running guest whose strategy may migrate it, CheckMigration on every peer
 * (preflight.c) and the choice among them (lib/placement.c), with [migration]'s default
 * options; lib/maintenance-plan.c turns that and the guest's strategy into an action and a
 * reason. In two worker jobs, as the listing and the checks block on libvirt: the first lists
 * the domains and reads their strategy, the event loop then builds the preflights (they read
 * the store and the configuration), the second gathers them and chooses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "errors.h"
#include "job.h"
#include "log.h"
#include "maintenance-dbus.h"
#include "maintenance-drain.h"
#include "maintenance-plan.h"
#include "migration.h"
#include "preflight.h"
#include "store-attach.h"
#include "util.h"
#include "virt.h"

typedef struct PlanDomain {
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *name;
        bool active;
        const char *state_word; /* virt_state_to_string()'s, static */
        MaintenanceStrategy strategy;
        bool strategy_own;
        char *bad_strategy;
        char *migrating_id, *migrating_dest; /* a migration of it under way (event loop) */
        Preflight **preflights;              /* one per peer, when it needs a destination */
        size_t n_preflights;
        PlacementCandidate *candidates; /* from the preflights, in the second job */
        Placement placement;
        bool placed;
} PlanDomain;

typedef struct Plan {
        MaintenanceStrategy default_strategy;
        PlanDomain *domains;
        size_t n_domains;
        char *error; /* the listing failed */
        /* maintenance_plan_start()'s: the decisions go there, not to a caller of Plan() */
        MaintenancePlanDone done;
        void *userdata;
} Plan;

static void plan_free(Plan *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_domains; i++) {
                PlanDomain *d = &p->domains[i];

                free(d->name);
                free(d->bad_strategy);
                free(d->migrating_id);
                free(d->migrating_dest);
                for (size_t j = 0; j < d->n_preflights; j++)
                        preflight_free(d->preflights[j]);
                free(d->preflights);
                free(d->candidates);
        }
        free(p->domains);
        free(p->error);
        free(p);
}

static void plan_free_void(void *p)
{
        plan_free(p);
}

/* A domain's facts from libvirt: active, state, and its strategy from its XML. */
static int read_domain(virDomainPtr dom, MaintenanceStrategy default_strategy, PlanDomain *ret)
{
        _cleanup_(domxml_freep) DomXml *x = NULL;
        _cleanup_free_ char *xml = NULL;
        const char *name = virDomainGetName(dom);
        int state = VIR_DOMAIN_NOSTATE, reason = 0, active;
        bool bad = false;

        if (!name || virDomainGetUUIDString(dom, ret->uuid) < 0)
                return -EIO;
        ret->name = strdup(name);
        if (!ret->name)
                return -ENOMEM;
        active = virDomainIsActive(dom);
        (void)virDomainGetState(dom, &state, &reason, 0);
        ret->active = active > 0;
        ret->state_word = virt_state_to_string(state);
        /* an XML that cannot be read leaves the default strategy, as a guest without its own */
        xml = virDomainGetXMLDesc(dom, 0);
        if (xml)
                (void)domxml_parse(xml, strlen(xml), &x, NULL);
        ret->strategy = maintenance_strategy_of(x, default_strategy, &ret->strategy_own, &bad);
        if (bad && !(ret->bad_strategy = strdup(x->hw_maintenance)))
                return -ENOMEM;
        return 0;
}

/* The first job: every domain of this node, running or not. */
static void plan_list_work(Manager *m, void *userdata)
{
        Plan *p = userdata;
        virDomainPtr *doms = NULL;
        size_t n = 0;
        char err[512];

        if (virt_list_domains(m->virt, 0, &doms, &n, err, sizeof(err)) < 0) {
                p->error = strdup(err);
                return;
        }
        p->domains = calloc(n ?: 1, sizeof(PlanDomain));
        for (size_t i = 0; p->domains && i < n; i++) {
                PlanDomain *d = &p->domains[p->n_domains];
                int r = read_domain(doms[i], p->default_strategy, d);

                if (r >= 0)
                        p->n_domains++;
                else { /* undefined meanwhile: not this node's any more */
                        free(d->name);
                        free(d->bad_strategy);
                        *d = (PlanDomain){};
                }
        }
        if (!p->domains)
                p->error = strdup("out of memory");
        virt_domains_free(doms, n);
}

/* The second job: CheckMigration on every peer for each guest that needs a destination,
 * and the choice, in the order the domains were listed. The choices reserve the memory of
 * the guests before in reservations of the plan's own, so that the plan fills the peers as
 * the drain would, and they start from what the migrations under way reserve already. */
static void plan_check_work(Manager *m, void *userdata)
{
        Plan *p = userdata;
        Reservations *res = NULL;

        if (reservations_new(&res) < 0) {
                p->error = strdup("out of memory");
                return;
        }
        for (size_t i = 0; i < p->n_domains; i++) {
                PlanDomain *d = &p->domains[i];

                if (!d->preflights)
                        continue;
                d->candidates = calloc(d->n_preflights ?: 1, sizeof(PlacementCandidate));
                if (!d->candidates)
                        continue; /* the decision says no destination was looked for */
                for (size_t j = 0; j < d->n_preflights; j++) {
                        Preflight *pf = d->preflights[j];
                        uint64_t away;

                        preflight_gather(m, pf);
                        preflight_candidate(pf, &d->candidates[j]);
                        away = reservations_get(m->reservations, pf->dest_name);
                        if (d->candidates[j].free_bytes != UINT64_MAX)
                                d->candidates[j].free_bytes -=
                                        MIN(away, d->candidates[j].free_bytes);
                }
                placement_choose(res, d->candidates, d->n_preflights, false, &d->placement);
                d->placed = true;
        }
        reservations_free(res);
}

static int plan_compare(const void *a, const void *b)
{
        const PlanDomain *x = a, *y = b;

        return strcmp(x->name, y->name);
}

/* The decision on d, as Plan() answers it. */
static MaintenanceAction plan_decide(const PlanDomain *d, char *reason, size_t size)
{
        MaintenanceFacts f = {
                .name = d->name,
                .active = d->active,
                .state_word = d->state_word,
                .strategy = d->strategy,
                .strategy_own = d->strategy_own,
                .bad_strategy = d->bad_strategy,
                .migrating_id = d->migrating_id,
                .migrating_dest = d->migrating_dest,
                .candidates = d->candidates,
                .n_candidates = d->n_preflights,
                .placement = d->placed ? &d->placement : NULL,
        };

        return maintenance_decide(&f, reason, size);
}

/* maintenance_plan_start()'s end: the decisions handed to its caller, in the drain's order. */
static void plan_hand_over(Manager *m, Plan *p)
{
        MaintenanceDecision *dec = NULL;

        if (!p->error) {
                qsort(p->domains, p->n_domains, sizeof(PlanDomain), plan_compare);
                dec = calloc(p->n_domains ?: 1, sizeof(MaintenanceDecision));
                if (!dec)
                        p->error = strdup("out of memory");
        }
        for (size_t i = 0; dec && i < p->n_domains; i++) {
                const PlanDomain *d = &p->domains[i];
                MaintenanceDecision *x = &dec[i];

                memcpy(x->uuid, d->uuid, sizeof(x->uuid));
                x->name = d->name;
                x->active = d->active;
                x->migrating_id = d->migrating_id;
                x->action = plan_decide(d, x->reason, sizeof(x->reason));
                if (x->action == MAINTENANCE_ACTION_MIGRATE && d->placed &&
                    d->placement.chosen >= 0)
                        x->dest = d->candidates[d->placement.chosen].name;
        }
        p->done(m, dec, dec ? p->n_domains : 0, p->error ?: (dec ? NULL : "out of memory"),
                p->userdata);
        free(dec);
        plan_free(p);
}

static void plan_check_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Plan *p = userdata;
        int r;

        if (p->done)
                return plan_hand_over(m, p);
        if (p->error) {
                (void)sd_bus_reply_method_errorf(msg, HW_ERROR_LIBVIRT,
                                                 "Cannot check this node's domains: %s", p->error);
                plan_free(p);
                return;
        }
        /* decided in the order of the drain, answered by name */
        qsort(p->domains, p->n_domains, sizeof(PlanDomain), plan_compare);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; r >= 0 && i < p->n_domains; i++) {
                const PlanDomain *d = &p->domains[i];
                char reason[4096];
                MaintenanceAction a = plan_decide(d, reason, sizeof(reason));

                r = sd_bus_message_append(reply, "(sss)", d->name, maintenance_action_to_string(a),
                                          reason);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                (void)sd_bus_reply_method_errnof(msg, -r, "Cannot answer Plan: %m");
        plan_free(p);
}

/* In the event loop, between the jobs: the migrations under way, and a preflight per peer
 * for each guest that needs a destination (preflight_new() reads the store). */
static int plan_prepare_checks(Manager *m, Plan *p, sd_bus_error *error)
{
        const Config *c = m->config;
        MigrateOptions opts;
        int r;

        /* what a drain's migrations get: [migration]'s defaults (EvacuateLive without
         * options, Migrate to "") */
        migrate_options_defaults(c, &opts);
        for (size_t i = 0; i < p->n_domains; i++) {
                PlanDomain *d = &p->domains[i];
                Migration *x = d->active ? migration_busy(m, d->uuid) : NULL;

                if (x) {
                        d->migrating_id = strdup(x->id);
                        d->migrating_dest = strdup(strempty(x->pub.destination));
                        if (!d->migrating_id || !d->migrating_dest)
                                return -ENOMEM;
                }
                if (!maintenance_needs_destination(d->active, d->strategy, x))
                        continue;
                d->preflights = calloc(c->n_peers ?: 1, sizeof(Preflight *));
                if (!d->preflights)
                        return -ENOMEM;
                for (size_t j = 0; j < c->n_peers; j++) {
                        r = preflight_new(m, d->uuid, c->peers[j].name, &opts,
                                          &d->preflights[d->n_preflights], error);
                        if (r < 0)
                                return r;
                        d->n_preflights++;
                }
        }
        return 0;
}

static void plan_list_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Plan *p = userdata;
        int r;

        if (p->done && p->error)
                return plan_hand_over(m, p);
        if (p->error) {
                (void)sd_bus_reply_method_errorf(msg, HW_ERROR_LIBVIRT,
                                                 "Cannot list this node's domains: %s", p->error);
                plan_free(p);
                return;
        }
        r = store_attach_require(m, &error); /* preflight_new() reads it; it may have gone */
        if (r >= 0)
                r = plan_prepare_checks(m, p, &error);
        /* counted against the caller as the first was (the Admission went with it) */
        if (r >= 0 && !msg)
                r = job_start(m, NULL, plan_check_work, plan_check_done, p);
        else if (r >= 0)
                r = job_start_limited(m, msg, plan_check_work, plan_check_done, p, &error);
        if (r < 0 && p->done) {
                free_and_strdup(&p->error, error.message ?: strerror(-r));
                return plan_hand_over(m, p);
        }
        if (r < 0) {
                if (sd_bus_error_is_set(&error))
                        (void)sd_bus_reply_method_error(msg, &error);
                else
                        (void)sd_bus_reply_method_errnof(msg, -r, "Cannot plan: %m");
                plan_free(p);
        }
}

/* Plan() -> a(sss): domain, action (none, migrate, shutdown, blocked), reason. Read-only. */
static int method_plan(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(admission_releasep) Admission *a = NULL;
        Manager *m = userdata;
        Plan *p;
        int r;

        r = store_attach_require(m, error);
        if (r < 0)
                return r;
        r = job_admit(m, msg, &a, error);
        if (r < 0)
                return r;
        p = calloc(1, sizeof(Plan));
        if (!p)
                return -ENOMEM;
        p->default_strategy = m->config->maintenance.strategy;
        return job_start_admitted(m, msg, plan_list_work, plan_list_done, p, plan_free_void, &a,
                                  error);
}

int maintenance_plan_start(Manager *m, MaintenancePlanDone done, void *userdata)
{
        Plan *p;
        int r;

        if (!m->store)
                return -ENOTCONN;
        p = calloc(1, sizeof(Plan));
        if (!p)
                return -ENOMEM;
        p->default_strategy = m->config->maintenance.strategy;
        p->done = done;
        p->userdata = userdata;
        r = job_start(m, NULL, plan_list_work, plan_list_done, p);
        if (r < 0)
                plan_free(p);
        return r;
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", maintenance_state_word(userdata));
}

static int property_get_blocked(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error)
{
        /* (domain, why) of the guests the drain cannot move */
        return maintenance_append_blocked(userdata, reply);
}

static int property_get_deadline(sd_bus *bus, const char *path, const char *interface,
                                 const char *property, sd_bus_message *reply, void *userdata,
                                 sd_bus_error *error)
{
        /* µs since the epoch after which nothing more leaves (Enter's deadline); 0: none */
        return sd_bus_message_append(reply, "t", maintenance_deadline(userdata));
}

const sd_bus_vtable maintenance_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Blocked", "a(ss)", property_get_blocked, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Deadline", "t", property_get_deadline, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Plan", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sss)", plan), method_plan,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Enter", SD_BUS_ARGS("a{sv}", opts), SD_BUS_NO_RESULT,
                                maintenance_method_enter, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_ARGS("b", abort), SD_BUS_NO_RESULT,
                                maintenance_method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Exit", SD_BUS_ARGS("b", return_guests), SD_BUS_NO_RESULT,
                                maintenance_method_exit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int maintenance_setup(Manager *m)
{
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, HW_MAINTENANCE_PATH, HW_MAINTENANCE_INTERFACE,
                                     maintenance_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to export %s: %m", HW_MAINTENANCE_INTERFACE);
        return 0;
}
