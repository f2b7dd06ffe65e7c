/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.hostwarden.Warden1.Node on /org/hostwarden/Warden1 (DESIGN.md §7): its vtable, at the
 * bottom, and a thin handler for each of its 16 methods and 14 properties: read and check the
 * arguments, ask polkit (polkit_verify(): the call comes back here once it says yes) and call
 * the room that does the work (docs/architecture.md). Over 800 lines, on purpose: one
 * interface's handlers in one file, as systemd's machined-dbus.c, so that each vtable entry
 * finds its handler, with its checks and its polkit call, here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admit.h"
#include "bus-args.h"
#include "check.h"
#include "console-priority.h"
#include "config.h"
#include "drain.h"
#include "errors.h"
#include "fence.h"
#include "fencing.h"
#include "ha-methods.h"
#include "history.h"
#include "firewall.h"
#include "force-down-opts.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "migration-cold.h"
#include "migration.h"
#include "node-state.h"
#include "polkit.h"
#include "preflight.h"
#include "rebuild.h"
#include "recovery.h"
#include "store-attach.h"
#include "virt.h"

#define FIREWALL_STATE_MAX_AGE (1 * USEC_PER_SEC)

/* FirewallState dumps the table over netlink: anybody may read it, as often as they like, so
 * it is looked at no more than once per FIREWALL_STATE_MAX_AGE (Reload looks again). */
static const char *firewall_state_cached(Manager *m)
{
        uint64_t now = 0;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!m->firewall_state || now >= m->firewall_state_time + FIREWALL_STATE_MAX_AGE) {
                m->firewall_state = firewall_state(m);
                m->firewall_state_time = now;
        }
        return m->firewall_state;
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error)
{
        Manager *m = userdata;
        const char *v = "";

        if (streq(property, "Name"))
                v = m->config->node.name;
        else if (streq(property, "Address"))
                v = m->config->node.address;
        else if (streq(property, "Version"))
                v = HW_VERSION;
        else if (streq(property, "Store"))
                v = store_backend_to_string(m->config->cluster.store);
        else if (streq(property, "FirewallState"))
                v = firewall_state_cached(m);
        else if (streq(property, "StoreState"))
                v = store_state_to_string(store_attach_state(m));
        else if (streq(property, "StoreDetail"))
                v = store_attach_detail(m);
        else if (streq(property, "Recovery"))
                v = recovery_summary(m);
        return sd_bus_message_append(reply, "s", v ? v : "");
}

/* ConfigWarnings: what the last load of the configuration warned of, "FILE:LINE: ..." */
static int property_get_config_warnings(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply, void *userdata,
                                        sd_bus_error *error)
{
        Manager *m = userdata;

        return sd_bus_message_append_strv(reply, m->config_warnings);
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error)
{
        Manager *m = userdata;
        NodeRecord rec;
        int r;

        r = node_own_record(m, &rec);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot read this node's record: %m");
        if (streq(property, "State"))
                r = sd_bus_message_append(reply, "s", rec.disabled ? "disabled" : "enabled");
        else if (streq(property, "DisabledReason"))
                r = sd_bus_message_append(
                        reply, "s", rec.disabled && rec.disabled_reason ? rec.disabled_reason : "");
        else if (streq(property, "DisabledSince"))
                r = sd_bus_message_append(reply, "t",
                                          rec.disabled ? rec.disabled_since : (uint64_t)0);
        /* what a peer decided about this node, which the hook enforces: State alone would say
         * "enabled" while every start is refused */
        else if (streq(property, "ForcedDownBy"))
                r = sd_bus_message_append(reply, "s",
                                          rec.forced_down ? strempty(rec.forced_down_by) : "");
        else if (streq(property, "ForcedDownSince"))
                r = sd_bus_message_append(reply, "t",
                                          rec.forced_down ? rec.forced_down_since : (uint64_t)0);
        else if (streq(property, "FenceState"))
                r = sd_bus_message_append(reply, "s", fence_state_to_string(rec.fence));
        else
                r = sd_bus_message_append(reply, "t", rec.fence_time);
        node_record_done(&rec);
        return r;
}

/* Disable and Enable after their checks: polkit, the change, then the reply. */
static int set_disabled(Manager *m, sd_bus_message *msg, bool disable, const char *reason,
                        sd_bus_error *error)
{
        int r = polkit_verify(m, msg, error);

        if (r != 0)
                return r;
        r = node_set_disabled(m, disable, reason, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

/* C0 controls and DEL: a reason ends up on operators' terminals. */
static bool has_control_char(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

/* Disable(s reason) [manage-node]: validate, authorize, change. */
static int method_disable(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        const char *reason;
        size_t n;
        int r;

        r = sd_bus_message_read(msg, "s", &reason);
        if (r < 0)
                return r;
        n = strlen(reason);
        if (n == 0 || n > 255 || has_control_char(reason))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a reason of 1 to 255 characters on one line, "
                                         "without control characters, e.g. \"kernel upgrade\"");
        return set_disabled(userdata, msg, true, reason, error);
}

static int method_enable(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return set_disabled(userdata, msg, false, NULL, error);
}

#define LIST_NODES_MAX_AGE (1 * USEC_PER_SEC)

/* ListNodes() -> a(ssssst): name, address, state, fence, store detail, last change. */
static int method_list_nodes(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        NodeRecord *nodes = NULL;
        uint64_t now = 0;
        size_t n = 0;
        int r;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        /* monitoring polls this: at most one read of the shared storage per LIST_NODES_MAX_AGE */
        r = store_node_list_cached(m->store, now, LIST_NODES_MAX_AGE, &nodes, &n);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot list the nodes: %m");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssssst)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const NodeRecord *rec = &nodes[i];
                const char *state = node_state_of(m, rec, now);
                char detail[512];

                /* the operator's reason first: an overview shows it */
                if (rec->disabled && !isempty(rec->disabled_reason))
                        snprintf(detail, sizeof(detail), "disabled: %s; ", rec->disabled_reason);
                else
                        detail[0] = 0;
                snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail),
                         "heartbeat %llu, generation %llu", (unsigned long long)rec->heartbeat,
                         (unsigned long long)rec->generation);
                r = sd_bus_message_append(
                        reply, "(ssssst)", rec->name, rec->address ? rec->address : "", state,
                        fence_state_to_string(rec->fence), detail,
                        rec->disabled ? rec->disabled_since : rec->heartbeat_time);
        }
        node_record_array_free(nodes, n);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ListInstances() -> a(sssst): uuid, name, owner, evacuated from, last ownership change.
 * Overviews poll it: at most one listing of the store per LIST_INSTANCES_MAX_AGE, as
 * ListNodes. */
static int method_list_instances(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        const InstanceRecord *inst;
        size_t n;
        int r;

        r = node_instances_cached(m, &inst, &n);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot read the instance records: %m");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssst)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (!inst[i].deleted) /* a tombstone is no instance */
                        r = sd_bus_message_append(reply, "(sssst)", inst[i].uuid,
                                                  strempty(inst[i].name), strempty(inst[i].owner),
                                                  strempty(inst[i].evacuated_from), inst[i].time);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

typedef struct DomainRow {
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *name;
        int state;
} DomainRow;

typedef struct ListDomainsJob {
        bool fresh; /* the owner column from the store now, not from ListInstances' listing */
        DomainRow *rows;
        size_t n;
        int error; /* < 0: errmsg says why */
        char errmsg[512];
} ListDomainsJob;

static void list_domains_work(Manager *m, void *userdata)
{
        ListDomainsJob *j = userdata;
        virDomainPtr *doms = NULL;
        size_t n = 0;

        j->error = virt_list_domains(m->virt, 0, &doms, &n, j->errmsg, sizeof(j->errmsg));
        if (j->error < 0)
                return;
        j->rows = calloc(n > 0 ? n : 1, sizeof(DomainRow));
        if (!j->rows)
                j->error = -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int state = VIR_DOMAIN_NOSTATE, reason;
                const char *name;

                if (j->rows && virDomainGetUUIDString(doms[i], j->rows[j->n].uuid) == 0) {
                        name = virDomainGetName(doms[i]);
                        /* a domain undefined meanwhile is skipped */
                        if (virDomainGetState(doms[i], &state, &reason, 0) == 0) {
                                j->rows[j->n].state = state;
                                j->rows[j->n].name = strdup(name ? name : "");
                                if (!j->rows[j->n].name)
                                        j->error = -ENOMEM;
                                else
                                        j->n++;
                        }
                }
        }
        virt_domains_free(doms, n);
}

static int owner_cmp(const void *key, const void *elem)
{
        return strcmp(key, ((const InstanceRecord *)elem)->uuid);
}

static int row_cmp(const void *a, const void *b)
{
        const DomainRow *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c != 0 ? c : strcmp(x->uuid, y->uuid);
}

static void list_domains_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ListDomainsJob *j = userdata;
        InstanceRecord *inst = NULL;
        const InstanceRecord *listed = NULL;
        size_t n_inst = 0;
        int r;

        if (j->error < 0) {
                if (j->error == -ENOMEM)
                        (void)sd_bus_reply_method_errno(msg, ENOMEM, NULL);
                else
                        (void)sd_bus_reply_method_errorf(
                                msg, HW_ERROR_LIBVIRT,
                                "Cannot list the domains of libvirt at %s: %s (is libvirtd "
                                "running? 'systemctl status libvirtd')",
                                virt_uri(m->virt), j->errmsg);
                goto out;
        }
        /* the owner column: instance records, sorted by UUID. Read in the event loop: root's
         * calls see the store as it is now; anybody else's share ListInstances' listing, so
         * that their rate is not the rate of listings of the shared storage. */
        if (j->fresh) {
                r = store_instance_list(m->store, &inst, &n_inst);
                listed = inst;
        } else
                r = node_instances_cached(m, &listed, &n_inst);
        if (r < 0) {
                (void)sd_bus_reply_method_errnof(msg, -r, "Cannot read the instance records: %m");
                goto out;
        }
        qsort(j->rows, j->n, sizeof(DomainRow), row_cmp);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssss)");
        for (size_t i = 0; r >= 0 && i < j->n; i++) {
                const InstanceRecord *rec =
                        bsearch(j->rows[i].uuid, listed, n_inst, sizeof(InstanceRecord), owner_cmp);

                r = sd_bus_message_append(reply, "(ssss)", j->rows[i].uuid, j->rows[i].name,
                                          virt_state_to_string(j->rows[i].state),
                                          rec && !rec->deleted ? rec->owner : "");
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                log_error_errno(r, "Cannot send the domain list: %m");
out:
        if (inst)
                instance_record_array_free(inst, n_inst);
        for (size_t i = 0; i < j->n; i++)
                free(j->rows[i].name);
        free(j->rows);
        free(j);
}

/* ListDomains() -> a(ssss): uuid, name, state, owner of every domain libvirt has here. The
 * libvirt calls run in a worker thread; the reply is sent when they are done. */
static int method_list_domains(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        ListDomainsJob *j;
        int r;

        j = calloc(1, sizeof(ListDomainsJob));
        if (!j)
                return -ENOMEM;
        j->fresh = admit_caller_uid(m->work_limits, msg) == 0;
        r = job_start_limited(m, msg, list_domains_work, list_domains_done, j, error);
        if (r < 0) {
                free(j);
                return r;
        }
        return 1;
}

/* A node argument that names this node, where a peer is expected: InvalidArgs saying that,
 * with hint, what to do instead. */
static int refuse_this_node(Manager *m, const char *node, const char *role, const char *hint,
                            sd_bus_error *error)
{
        if (!streq(node, m->config->node.name))
                return 0;
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The %s %s is this node: %s",
                                 role, node, hint);
}

/* A destination argument: "" (hostwarden chooses) or a configured peer, never this node. */
static int check_destination(Manager *m, const char *dest, sd_bus_error *error)
{
        int r;

        r = refuse_this_node(m, dest, "destination",
                             "name a peer, or \"\" to let hostwarden choose one", error);
        if (r < 0)
                return r;
        if (!isempty(dest) && !config_find_peer(m->config, dest))
                return sd_bus_error_setf(error, HW_ERROR_NO_SUCH_NODE,
                                         "No peer '%s' in the configuration: nodes are [peer "
                                         "NAME] sections",
                                         dest);
        return 0;
}

/* Migrate's and EvacuateLive's destination, checked, and their options, read over
 * [migration]'s defaults, with the TLS they ask for possible here. */
static int read_destination_options(Manager *m, sd_bus_message *msg, const char *dest,
                                    MigrateOptions *ret_opts, sd_bus_error *error)
{
        int r;

        r = check_destination(m, dest, error);
        if (r < 0)
                return r;
        migrate_options_defaults(m->config, ret_opts);
        r = migrate_options_read(msg, m->config, ret_opts, error);
        if (r < 0)
                return r;
        if (ret_opts->cold)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'cold' is CheckMigration's; a cold migration is "
                                         "MigrateCold(domain, destination, options)");
        return migrate_options_check_tls(m->config, ret_opts, error);
}

/* EvacuateLive(s dest, a{sv} opts) -> ao [evacuate]: disable, then Migrate every running domain. */
static int method_evacuate_live(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        MigrateOptions opts;
        const char *dest;
        int r;

        r = sd_bus_message_read(msg, "s", &dest);
        if (r < 0)
                return r;
        r = read_destination_options(m, msg, dest, &opts, error);
        if (r < 0)
                return r;
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        return drain_start(m, msg, dest, &opts, error);
}

/* Migrate's and MigrateCold's arguments, checked; then, before asking polkit, what is plain
 * without libvirt (the name or UUID of a migration's instance; the instance the name
 * resolves to is checked once authorized, resolve_done); then authorize and queue. */
static int queue_migration(Manager *m, sd_bus_message *msg, bool cold, sd_bus_error *error)
{
        MigrateOptions opts;
        const char *dom, *dest;
        Migration *busy;
        int r;

        r = sd_bus_message_read(msg, "ss", &dom, &dest);
        if (r < 0)
                return r;
        if (isempty(dom))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a domain name or UUID");
        if (cold) {
                r = check_destination(m, dest, error);
                if (r >= 0)
                        r = migration_cold_options_read(msg, m->config, &opts, error);
        } else
                r = read_destination_options(m, msg, dest, &opts, error);
        if (r < 0)
                return r;
        busy = migration_find_unfinished(m, dom);
        if (busy)
                return migration_busy_error(error, busy, dom);
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        return migration_request(m, msg, dom, dest, &opts);
}

/* Migrate(s dom, s dest, a{sv} opts) -> o [migrate]: validate, authorize, queue. */
static int method_migrate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return queue_migration(userdata, msg, false, error);
}

/* MigrateCold(s dom, s dest, a{sv} opts) -> o [migrate]: the same, a cold migration
 * (migration-cold.c). */
static int method_migrate_cold(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return queue_migration(userdata, msg, true, error);
}

/* ListMigrations() -> a(sssssso): id, domain, source, destination, state, mode, path */
static int method_list_migrations(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssssso)");
        for (Migration *x = m->migrations; r >= 0 && x; x = x->next) {
                pthread_mutex_lock(&x->lock);
                r = sd_bus_message_append(reply, "(sssssso)", x->id,
                                          x->live.domain_name ? x->live.domain_name : x->domain_arg,
                                          x->source, x->live.destination ? x->live.destination : "",
                                          migration_state_to_string(x->live.state),
                                          x->opts.cold    ? "cold"
                                          : x->opts.block ? "block"
                                                          : "live",
                                          x->path);
                pthread_mutex_unlock(&x->lock);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* CheckMigration's and CheckNode's answer: a(sss) severity, code, message; or, when gathering
 * them failed (r < 0), the error. A reply that cannot be sent is logged: the job has ended. */
static void answer_findings(sd_bus_message *msg, int r, const MigFindings *f)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        if (r < 0) {
                r = sd_bus_reply_method_errnof(msg, -r, "Cannot gather the findings: %m");
                goto done;
        }
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; r >= 0 && i < f->n; i++)
                r = sd_bus_message_append(reply, "(sss)",
                                          mig_severity_to_string(f->items[i].severity),
                                          f->items[i].code, f->items[i].message);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
done:
        if (r < 0)
                log_error_errno(r, "Cannot answer %s: %m", sd_bus_message_get_member(msg));
}

static void check_migration_work(Manager *m, void *userdata)
{
        preflight_gather(m, userdata);
}

static void check_migration_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        _cleanup_(preflight_freep) Preflight *p = userdata;
        Migration *x;
        int r;

        if (p->error < 0) {
                r = sd_bus_reply_method_errorf(msg, p->error_name, "%s", p->error_message);
                if (r < 0)
                        log_error_errno(r, "Cannot answer CheckMigration: %m");
                return;
        }
        /* Migrate refuses it with Error.Busy (method_migrate, resolve_done): looked up here,
         * in the event loop, where the migrations are */
        x = migration_busy(m, p->domain->uuid);
        r = x ? mig_findings_add(&p->findings, MIG_ERROR, "migration-busy",
                                 "Domain %s is being migrated already: migration %s (state %s); "
                                 "follow it with 'hostwardenctl migration show %s' or stop it "
                                 "with 'hostwardenctl migration abort %s'",
                                 p->domain->name, x->id, migration_state_to_string(x->live.state),
                                 x->id, x->id)
              : 0;
        answer_findings(msg, r, &p->findings);
}

/* CheckMigration(s dom, s dest, a{sv} opts) -> a(sss): the constraints that stand in the way
 * of live-migrating dom to dest (DESIGN.md §7), from libvirt here and there, in a worker. */
static int method_check_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(admission_releasep) Admission *a = NULL;
        Manager *m = userdata;
        Preflight *p = NULL;
        MigrateOptions opts;
        const char *dom, *dest;
        int r;

        r = sd_bus_message_read(msg, "ss", &dom, &dest);
        if (r < 0)
                return r;
        migrate_options_defaults(m->config, &opts);
        r = migrate_options_read(msg, m->config, &opts, error);
        if (r < 0)
                return r;
        /* before preflight_new() reads the store */
        r = job_admit(m, msg, &a, error);
        if (r < 0)
                return r;
        r = preflight_new(m, dom, dest, &opts, &p, error);
        if (r < 0)
                return r;
        return job_start_admitted(m, msg, check_migration_work, check_migration_done, p,
                                  preflight_free_void, &a, error);
}

/* The arguments of ForceDown (options: none) and ForceDownWithOptions. */
static int read_force_down(sd_bus_message *msg, const char **ret_node, bool *ret_down,
                           ForceDownOptions *ret_opts, sd_bus_error *error)
{
        ForceDownOptions opts = {};
        const char *node;
        int down, r;

        r = sd_bus_message_read(msg, "sb", &node, &down);
        if (r < 0)
                return r;
        if (streq_ptr(sd_bus_message_get_member(msg), "ForceDownWithOptions")) {
                r = force_down_options_read(msg, &opts, error);
                if (r < 0)
                        return r;
        }
        *ret_node = node;
        *ret_down = down;
        *ret_opts = opts;
        return 0;
}

/* The request as this node sees it now: node's liveness by this node's clock. */
static void force_down_request(Manager *m, const char *node, bool down, bool insist,
                               ForceDownRequest *ret)
{
        NodeLiveness l = NODE_UNKNOWN;
        uint64_t now = 0, seen = 0;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!streq(node, m->config->node.name))
                (void)store_node_liveness(m->store, node, now, m->config->cluster.down_after, &l);
        *ret = (ForceDownRequest){
                .self = m->config->node.name,
                .node = node,
                .down = down,
                .insist = insist,
                .liveness = l,
                .seen_ago = store_node_heartbeat_seen(m->store, node, &seen) >= 0 && now >= seen
                                    ? now - seen
                                    : UINT64_MAX,
                .down_after = m->config->cluster.down_after,
        };
}

/*
 * ForceDown(s node, b down) and ForceDownWithOptions(s node, b down, a{sv} options) [fence]:
 * the admin asserts node is powered off (Nova's force-down). Refused for this node itself and
 * for a node whose heartbeat is fresh, unless the caller insists: a node forced down while it
 * runs its guests lets an evacuation start them a second time.
 */
static int method_force_down(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        Manager *m = userdata;
        ForceDownOptions opts;
        ForceDownRequest req;
        bool overrode = false, down;
        const char *node;
        char by[64];
        uid_t uid;
        int r;

        r = read_force_down(msg, &node, &down, &opts, error);
        if (r < 0)
                return r;
        if (!hostname_is_valid(node))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a node name, got '%s'", node);
        /* refused before polkit, so that nobody types a password for nothing; decided again
         * once polkit said yes (the call comes back here): the node may have come back
         * meanwhile */
        force_down_request(m, node, down, opts.insist, &req);
        r = force_down_decide(&req, &overrode, error);
        if (r < 0)
                return r;
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        if (sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds) >= 0 &&
            sd_bus_creds_get_euid(creds, &uid) >= 0)
                snprintf(by, sizeof(by), "uid %u on %s", (unsigned)uid, m->config->node.name);
        else
                snprintf(by, sizeof(by), "an admin on %s", m->config->node.name);

        r = node_set_forced_down(m, node, down, by, overrode, req.seen_ago, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

/* Fence(s node, s action) → s [fence]: runs the peer's fence agent (dbus/fence.c). */
static int method_fence(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const ConfigPeer *peer;
        const char *node, *action;
        int r;

        r = sd_bus_message_read(msg, "ss", &node, &action);
        if (r < 0)
                return r;
        if (!hostname_is_valid(node))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a node name, got '%s'", node);
        if (fence_action_from_string(action) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected action 'status', 'off' or 'on', got '%s'",
                                         action);
        if (streq(node, m->config->node.name))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Node %s cannot fence itself: call Fence on a peer", node);
        peer = config_find_peer(m->config, node);
        if (!peer)
                return sd_bus_error_setf(error, HW_ERROR_NO_SUCH_NODE,
                                         "No [peer %s] in the configuration of %s", node,
                                         m->config->node.name);
        if (!peer->fence_agent)
                return sd_bus_error_setf(error, HW_ERROR_NO_SUCH_NODE,
                                         "[peer %s] (%s:%u) has no fence_agent: set fence_agent "
                                         "and fence_options there",
                                         node, strna(peer->file), peer->line);
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        return fence_start(m, msg, node, action, error);
}

static int no_option(sd_bus_message *msg, const char *key, const char *type, void *userdata,
                     sd_bus_error *error)
{
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                 "Unknown option '%s': no options are supported", key);
}

/* The source argument: a node name, not this node. */
static int check_source(Manager *m, const char *source, sd_bus_error *error)
{
        if (!hostname_is_valid(source))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a node name, got '%s'", source);
        return refuse_this_node(m, source, "source",
                                "evacuation moves a fenced peer's instances here", error);
}

/* The rest of Rebuild and EvacuateFrom (source, options), polkit, then the rebuild: of one
 * instance (uuid) or of all the source's (uuid NULL). */
static int check_rest_and_rebuild(Manager *m, sd_bus_message *msg, const char *uuid,
                                  const char *source, sd_bus_error *error)
{
        int k;

        k = check_source(m, source, error);
        if (k < 0)
                return k;
        k = bus_options_foreach(msg, no_option, NULL, error);
        if (k < 0)
                return k;
        k = polkit_verify(m, msg, error);
        if (k != 0)
                return k;
        return rebuild_start(m, msg, uuid, source, error);
}

/* Rebuild(s uuid, s source, a{sv} opts) [evacuate] */
static int method_rebuild(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        const char *uuid, *source;
        int k;

        k = sd_bus_message_read(msg, "ss", &uuid, &source);
        if (k < 0)
                return k;
        if (strlen(uuid) != 36 || strspn(uuid, "0123456789abcdefABCDEF-") != 36)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected an instance UUID, got '%s'", uuid);
        return check_rest_and_rebuild(userdata, msg, uuid, source, error);
}

/* EvacuateFrom(s source, a{sv} opts) → a(sss) [evacuate]: uuid, result, name or message */
static int method_evacuate_from(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        const char *source;
        int k;

        k = sd_bus_message_read(msg, "s", &source);
        if (k < 0)
                return k;
        return check_rest_and_rebuild(userdata, msg, NULL, source, error);
}

/* Reload(): re-read the configuration, re-apply the firewall. [manage-node] */
static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int r;

        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        r = manager_load_config(m, error);
        if (r < 0)
                return r;
        r = firewall_apply(m, error);
        if (r < 0)
                return r;
        m->firewall_state = NULL; /* looked at again when next read */
        log_info("Configuration reloaded");
        store_attach_retry_now(m); /* e.g. after init-cluster, or once storage is mounted */
        console_priority_kick(m);  /* [console] may have changed */
        (void)sd_bus_emit_properties_changed(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE, "Name",
                                             "Address", "Store", "FirewallState", "ConfigWarnings",
                                             NULL);
        return sd_bus_reply_method_return(msg, NULL);
}

/* GetHistory(s dom, t since_usec) -> a(ssssssssssustttt): the history records of dom ("" = all)
 * that finished at or after since_usec; read-only (history.c). */
static int method_get_history(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        const char *dom;
        uint64_t since;
        int r;

        r = sd_bus_message_read(msg, "st", &dom, &since);
        if (r < 0)
                return r;
        return history_method_get(userdata, msg, dom, since, error);
}

/* Archive(b dry_run) -> a(ssssts) [manage-node]: one archive pass (history.c). */
static int method_archive(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int dry_run, r;

        r = sd_bus_message_read(msg, "b", &dry_run);
        if (r < 0)
                return r;
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        return history_method_archive(m, msg, dry_run, error);
}

/* SetHA(s dom, s mode, i priority) [manage-node]: a guest's HA setting in its metadata (ha.c).
 * The domain is looked up in the worker (libvirt), after polkit, as Migrate's. */
static int method_set_ha(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *dom, *mode;
        int32_t priority;
        HaMode hm;
        int r;

        r = sd_bus_message_read(msg, "ssi", &dom, &mode, &priority);
        if (r < 0)
                return r;
        r = ha_check_args(dom, mode, priority, &hm, error);
        if (r < 0)
                return r;
        r = polkit_verify(m, msg, error);
        if (r != 0)
                return r;
        return ha_set_start(m, msg, dom, hm, priority, error);
}

/* GetHA(s dom) -> (s mode, i priority, b own): read-only (ha.c). */
static int method_get_ha(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        const char *dom;
        int r;

        r = sd_bus_message_read(msg, "s", &dom);
        if (r < 0)
                return r;
        r = ha_check_args(dom, NULL, 0, NULL, error);
        if (r < 0)
                return r;
        return ha_get_start(userdata, msg, dom, error);
}

static void check_node_work(Manager *m, void *userdata)
{
        check_gather(userdata);
}

static void check_node_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        _cleanup_(check_freep) NodeCheck *c = userdata;
        const MigFindings *f = NULL;
        int r;

        r = check_result(c, &f);
        answer_findings(msg, r, f);
}

/* CheckNode() -> a(sss): readiness findings; read-only, no authorization. Name lookups,
 * netlink and the shared storage may block: they are looked at in a worker. */
static int method_check_node(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(admission_releasep) Admission *a = NULL;
        Manager *m = userdata;
        NodeCheck *c;
        int r;

        r = job_admit(m, msg, &a, error);
        if (r < 0)
                return r;
        c = check_new(m);
        if (!c)
                return -ENOMEM;
        return job_start_admitted(m, msg, check_node_work, check_node_done, c, check_free_void, &a,
                                  error);
}

/* a property whose changes are announced with PropertiesChanged */
#define PROPERTY_CHANGING(name, signature, getter) \
        SD_BUS_PROPERTY(name, signature, getter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

const sd_bus_vtable node_vtable[] = {
        SD_BUS_VTABLE_START(0),
        /* properties: this node as the configuration and the store say */
        PROPERTY_CHANGING("Name", "s", property_get_string),
        PROPERTY_CHANGING("Address", "s", property_get_string),
        SD_BUS_PROPERTY("Version", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        PROPERTY_CHANGING("Store", "s", property_get_string),
        PROPERTY_CHANGING("StoreState", "s", property_get_string),
        PROPERTY_CHANGING("StoreDetail", "s", property_get_string),
        SD_BUS_PROPERTY("FirewallState", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        PROPERTY_CHANGING("State", "s", property_get_state),
        PROPERTY_CHANGING("DisabledReason", "s", property_get_state),
        PROPERTY_CHANGING("DisabledSince", "t", property_get_state),
        PROPERTY_CHANGING("ForcedDownBy", "s", property_get_state),
        PROPERTY_CHANGING("ForcedDownSince", "t", property_get_state),
        /* written by peers' fence agents: read when asked, changes are not announced */
        SD_BUS_PROPERTY("FenceState", "s", property_get_state, 0, 0),
        SD_BUS_PROPERTY("FenceTime", "t", property_get_state, 0, 0),
        /* what automatic recovery does here (recovery.h): read when asked */
        SD_BUS_PROPERTY("Recovery", "s", property_get_string, 0, 0),
        PROPERTY_CHANGING("ConfigWarnings", "as", property_get_config_warnings),
        SD_BUS_METHOD_WITH_ARGS("Disable", SD_BUS_ARGS("s", reason), SD_BUS_NO_RESULT,
                                method_disable, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Enable", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_enable,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ForceDown", SD_BUS_ARGS("s", node, "b", down), SD_BUS_NO_RESULT,
                                method_force_down, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ForceDownWithOptions",
                                SD_BUS_ARGS("s", node, "b", down, "a{sv}", options),
                                SD_BUS_NO_RESULT, method_force_down, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Fence", SD_BUS_ARGS("s", node, "s", action),
                                SD_BUS_RESULT("s", power), method_fence,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("EvacuateLive", SD_BUS_ARGS("s", destination, "a{sv}", options),
                                SD_BUS_RESULT("ao", migrations), method_evacuate_live,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rebuild", SD_BUS_ARGS("s", uuid, "s", source, "a{sv}", options),
                                SD_BUS_NO_RESULT, method_rebuild, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("EvacuateFrom", SD_BUS_ARGS("s", source, "a{sv}", options),
                                SD_BUS_RESULT("a(sss)", results), method_evacuate_from,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListDomains", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssss)", domains),
                                method_list_domains, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckMigration",
                                SD_BUS_ARGS("s", domain, "s", destination, "a{sv}", options),
                                SD_BUS_RESULT("a(sss)", findings), method_check_migration,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "Migrate", SD_BUS_ARGS("s", domain, "s", destination, "a{sv}", options),
                SD_BUS_RESULT("o", migration), method_migrate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "MigrateCold", SD_BUS_ARGS("s", domain, "s", destination, "a{sv}", options),
                SD_BUS_RESULT("o", migration), method_migrate_cold, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListMigrations", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssssso)", migrations), method_list_migrations,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("MigrationNew", SD_BUS_ARGS("s", id, "o", path), 0),
        SD_BUS_SIGNAL_WITH_ARGS("MigrationRemoved", SD_BUS_ARGS("s", id, "o", path), 0),
        SD_BUS_METHOD_WITH_ARGS("ListNodes", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssssst)", nodes),
                                method_list_nodes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListInstances", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssst)", instances), method_list_instances,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("NodeChanged", SD_BUS_ARGS("s", name, "s", state), 0),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckNode", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sss)", findings),
                                method_check_node, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetHistory", SD_BUS_ARGS("s", domain, "t", since_usec),
                                SD_BUS_RESULT("a(ssssssssssustttt)", records), method_get_history,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Archive", SD_BUS_ARGS("b", dry_run),
                                SD_BUS_RESULT("a(ssssts)", actions), method_archive,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetHA", SD_BUS_ARGS("s", domain, "s", mode, "i", priority),
                                SD_BUS_NO_RESULT, method_set_ha, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetHA", SD_BUS_ARGS("s", domain),
                                SD_BUS_RESULT("s", mode, "i", priority, "b", own), method_get_ha,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};
