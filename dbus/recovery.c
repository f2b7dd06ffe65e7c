/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Automatic recovery from a node failure, without a controller (issue 22, docs/recovery.md).
 *
 * Every node, on each heartbeat:
 *   - takes the instances the coordinator assigned to it (InstanceRecord.recover_to) and
 *     rebuilds them with Rebuild's steps and checks (rebuild.h); one that it cannot host is
 *     handed back, naming this node among those that refused it;
 * and the one node that holds the recovery lease in the store (the coordinator; another node
 * takes the lease over when it expires, down_after after its holder's last renewal):
 *   - fences a peer down for down_after + confirm_after through its fence agent (off, then
 *     status must say off), again and again while the agent fails, never assuming it off; or
 *     takes it as off when it declared self-fencing and its margin has passed;
 *   - fences nobody when more than max_lost of the nodes look down at once (the fence-storm
 *     guard: it is more likely the one cut off);
 *   - assigns each HA instance of a fenced node to a survivor (recovery-plan.h).
 *
 * No guest runs twice for any of it: a rebuild refuses an instance unless its node is down and
 * fenced, moves the record by compare-and-swap before it starts anything, and asks the node
 * itself first. A second coordinator (a lease taken over while the first was only slow) can
 * fence a node twice and assign an instance twice; the record's CAS lets one rebuild win.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "domxml.h"
#include "errors.h"
#include "fencing.h"
#include "ha.h"
#include "log.h"
#include "manager.h"
#include "rebuild.h"
#include "recovery-plan.h"
#include "recovery.h"
#include "self-fence-plan.h"
#include "store-attach.h"

#define RECOVERY_LEASE    "recovery"
#define FENCE_RETRY_FIRST (5 * USEC_PER_SEC)
#define FENCE_RETRY_MAX   (60 * USEC_PER_SEC)
/* rebuilds of assigned instances running at once on one node: each starts a QEMU */
#define RECOVERY_MAX_REBUILDS 4
/* While a peer is on its way to being fenced, or an instance is assigned here, passes come
 * this often, not only with the heartbeat (10 s by default): the fence starts when its time
 * has come and a survivor takes its assignment at once, not up to a heartbeat later. The
 * cost is a node listing a second, during an incident only. */
#define RECOVERY_FAST_INTERVAL USEC_PER_SEC
/* how long after down_after + confirm_after a peer that is not fenced yet keeps the passes
 * fast (an agent that fails, a node nobody can fence: then the heartbeat's pace) */
#define RECOVERY_FAST_WINDOW (2 * USEC_PER_MINUTE)
/* A node whose record got a fence result "on" less than this ago (by this node's wall
 * clock against the fencer's: a skew of seconds does not matter here), and whose heartbeat
 * this node has not seen change since it started watching, is taken as booting: the
 * coordinator that saw the "on" may be gone (its lease moved while the node booted). A wrong
 * guess only delays a fence. */
#define RECOVERY_BOOT_GRACE (10 * USEC_PER_MINUTE)

typedef struct FenceTry {
        char *node;
        bool running;
        bool failed;       /* its last run failed */
        unsigned failures; /* in a row */
        usec_t next;       /* CLOCK_MONOTONIC: not tried again before */
        bool said_cannot;  /* RECOVERY_CANNOT_FENCE was logged */
        /* its record's fence_time when last looked at, and whether a fence result "on"
         * recorded since (an operator's `fence NODE on`) waits for its heartbeat: a node
         * that boots is not fenced again for the time its boot takes */
        uint64_t fence_time_seen;
        bool booting;
} FenceTry;

struct Recovery {
        StoreLease lease;
        bool coordinating;
        FenceTry *tries;
        size_t n_tries;
        bool storm_said;
        char **rebuilding;    /* the instances assigned to this node whose rebuild runs */
        char **said_unplaced; /* instances whose "nobody can take it" was logged */
        char summary[512];    /* what it did last, for the Recovery property */
        /* during an incident, passes every RECOVERY_FAST_INTERVAL besides the heartbeat's */
        sd_event_source *fast;
};

static int strv_push_copy(char ***l, const char *s)
{
        char *copy = strdup(s);

        return copy ? strv_push(l, copy) : -ENOMEM;
}

static Recovery *recovery_of(Manager *m)
{
        if (!m->recovery)
                m->recovery = calloc(1, sizeof(Recovery));
        return m->recovery;
}

void recovery_free(Manager *m)
{
        Recovery *rc = m->recovery;

        if (!rc)
                return;
        sd_event_source_disable_unref(rc->fast);
        /* a node that stops hands coordination on at once, not when the lease expires */
        if (rc->coordinating && m->store)
                (void)store_lease_release(m->store, RECOVERY_LEASE, &rc->lease);
        for (size_t i = 0; i < rc->n_tries; i++)
                free(rc->tries[i].node);
        free(rc->tries);
        strv_free(rc->said_unplaced);
        strv_free(rc->rebuilding);
        store_lease_done(&rc->lease);
        free(rc);
        m->recovery = NULL;
}

const char *recovery_summary(Manager *m)
{
        if (!m->config->recovery.enable)
                return "off";
        if (store_attach_state(m) != STORE_STATE_ATTACHED)
                return "watching; the cluster store does not answer here";
        return m->recovery && m->recovery->summary[0] ? m->recovery->summary : "watching";
}

static FenceTry *fence_try(Recovery *rc, const char *node)
{
        FenceTry *a;

        for (size_t i = 0; i < rc->n_tries; i++)
                if (streq(rc->tries[i].node, node))
                        return &rc->tries[i];
        a = reallocarray(rc->tries, rc->n_tries + 1, sizeof(FenceTry));
        if (!a)
                return NULL;
        rc->tries = a;
        a = &rc->tries[rc->n_tries];
        *a = (FenceTry){ .node = strdup(node) };
        if (!a->node)
                return NULL;
        rc->n_tries++;
        return a;
}

/* The memory a guest started here could use: the kernel's MemAvailable. 0: not known. */
static uint64_t mem_available(void)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
        unsigned long long kib;
        char line[256];

        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
                        return (uint64_t)kib * 1024;
        return 0;
}

void recovery_heartbeat_facts(Manager *m)
{
        const Config *c = m->config;

        if (m->store)
                store_set_heartbeat_facts(m->store, mem_available(), self_fence_declared(c));
}

/* ---- the assigned rebuilds (every node) --------------------------------------------------- */

/* Refusals that say "not now" rather than "not here": the assignment stays. */
static bool refusal_is_transient(const Rebuild *r)
{
        return streq_ptr(r->error_name, HW_ERROR_BUSY) ||
               streq_ptr(r->error_name, HW_ERROR_NOT_FENCED) ||
               streq_ptr(r->error_name, HW_ERROR_STORE_UNAVAILABLE);
}

/* Hands uuid's assignment back to the coordinator, with this node among those that refused. */
static void hand_back(Manager *m, const char *uuid)
{
        _cleanup_(instance_record_done) InstanceRecord rec = {};
        const char *me = m->config->node.name;
        int r;

        r = store_instance_get(m->store, uuid, &rec);
        if (r < 0 || !streq_ptr(rec.recover_to, me))
                return;
        free(rec.recover_to);
        rec.recover_to = NULL;
        if (!strv_contains(rec.recover_refused, me) && strv_push_copy(&rec.recover_refused, me) < 0)
                return;
        r = store_instance_cas(m->store, &rec, rec.generation, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot hand instance %s back to the coordinator: %m", uuid);
}

static void assigned_rebuilt(Manager *m, const char *source, const Rebuild *items, size_t n,
                             void *userdata)
{
        Recovery *rc = userdata;

        for (size_t i = 0; i < n; i++) {
                const Rebuild *r = &items[i];

                strv_remove(rc->rebuilding, r->uuid);
                if (r->started || r->claimed)
                        log_fields(r->started ? LOG_WARNING : LOG_ERR, 0,
                                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY },
                                              { "HOSTWARDEN_INSTANCE", r->uuid },
                                              { "HOSTWARDEN_DOMAIN", r->name },
                                              { "HOSTWARDEN_NODE", source },
                                              { "HOSTWARDEN_RECOVERY", "rebuilt" }),
                                   r->started ? "Automatic recovery: %s (%s) of %s runs here now"
                                              : "Automatic recovery: %s (%s) of %s is this "
                                                "node's now but did not start: %s",
                                   r->uuid, strna(r->name), source, strna(r->message));
                else if (refusal_is_transient(r))
                        log_info("Automatic recovery: %s of %s not rebuilt yet: %s", r->uuid,
                                 source, strna(r->message));
                else {
                        log_fields(LOG_WARNING, 0,
                                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY },
                                              { "HOSTWARDEN_INSTANCE", r->uuid },
                                              { "HOSTWARDEN_NODE", source },
                                              { "HOSTWARDEN_RECOVERY", "refused" }),
                                   "Automatic recovery: this node cannot rebuild %s of %s, "
                                   "the coordinator will choose another: %s",
                                   r->uuid, source, strna(r->message));
                        hand_back(m, r->uuid);
                }
        }
}

static bool node_known_off(const NodeRecord *nodes, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (streq(nodes[i].name, name))
                        return nodes[i].fence == FENCE_OFF || nodes[i].forced_down;
        return false;
}

/* Each instance assigned here is rebuilt on its own, beside the others (up to
 * RECOVERY_MAX_REBUILDS at once): one after the other, the last of a node's guests would wait
 * for every start before it. */
static void take_assignments(Manager *m, Recovery *rc, const NodeRecord *nodes, size_t n_nodes,
                             const InstanceRecord *inst, size_t n_inst)
{
        const char *me = m->config->node.name;
        int r;

        for (size_t i = 0; i < n_inst; i++) {
                const InstanceRecord *x = &inst[i];
                char *one[] = { (char *)x->uuid, NULL };

                if (strv_length(rc->rebuilding) >= RECOVERY_MAX_REBUILDS)
                        return;
                if (x->deleted || !streq_ptr(x->recover_to, me) || streq(x->owner, me) ||
                    strv_contains(rc->rebuilding, x->uuid) ||
                    !node_known_off(nodes, n_nodes, x->owner))
                        continue;
                if (strv_push_copy(&rc->rebuilding, x->uuid) < 0)
                        return;
                r = rebuild_for_recovery(m, x->owner, one, assigned_rebuilt, rc);
                if (r < 0) {
                        strv_remove(rc->rebuilding, x->uuid);
                        log_warning_errno(r, "Automatic recovery: cannot rebuild %s of %s here: %m",
                                          x->uuid, x->owner);
                        return;
                }
        }
}

/* ---- the coordinator ------------------------------------------------------------------------ */

/* A pass out of the heartbeat's turn: what a fence result changed is acted on at once. */
static void pass_now(Manager *m)
{
        NodeRecord *nodes = NULL;
        size_t n = 0;

        if (!m->store || store_node_list(m->store, &nodes, &n) < 0)
                return;
        recovery_tick(m, nodes, n);
        node_record_array_free(nodes, n);
}

/* Is something under way that passes between heartbeats act on sooner: a peer down and not
 * fenced yet (within RECOVERY_FAST_WINDOW of its fence time), or an instance assigned here and
 * not rebuilt yet? Returns when the next pass is due (0: no incident): at the latest
 * RECOVERY_FAST_INTERVAL from now, and at the moment a peer's fence time comes if sooner, so
 * that the fence does not wait for the next pass of the second. */
static usec_t incident(Manager *m, const NodeRecord *nodes, size_t n_nodes,
                       const InstanceRecord *inst, size_t n_inst)
{
        const Config *c = m->config;
        usec_t now = 0, due = c->cluster.down_after + c->recovery.confirm_after, next = 0;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        for (size_t i = 0; i < n_nodes; i++) {
                NodeLiveness l = NODE_UNKNOWN;
                usec_t unseen = 0;

                if (streq(nodes[i].name, c->node.name) || nodes[i].fence == FENCE_OFF ||
                    nodes[i].forced_down)
                        continue;
                (void)store_node_liveness_of(m->store, &nodes[i], now, c->cluster.down_after, &l);
                (void)store_node_unseen(m->store, nodes[i].name, now, &unseen);
                if (l != NODE_DOWN || unseen >= due + RECOVERY_FAST_WINDOW)
                        continue;
                /* a millisecond late, so that the pass finds it due */
                next = MIN(next ?: RECOVERY_FAST_INTERVAL,
                           unseen < due ? due - unseen + USEC_PER_MSEC : RECOVERY_FAST_INTERVAL);
        }
        for (size_t i = 0; i < n_inst && !next; i++)
                if (streq_ptr(inst[i].recover_to, c->node.name) && !inst[i].deleted &&
                    !streq(inst[i].owner, c->node.name))
                        next = RECOVERY_FAST_INTERVAL;
        return next;
}

static int fast_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;

        /* a store that does not answer blocks each call for its timeout: no extra passes
         * then, the heartbeat's are enough to find out */
        if (store_attach_state(m) == STORE_STATE_ATTACHED)
                pass_now(m);
        return 0;
}

/* the next extra pass NEXT from now, or none (0) */
static void fast_passes(Manager *m, Recovery *rc, usec_t next)
{
        /* accuracy 1 ms: sd-event's default (250 ms) would let the fence pass come late */
        if (next && !rc->fast &&
            sd_event_add_time_relative(m->event, &rc->fast, CLOCK_MONOTONIC, next, USEC_PER_MSEC,
                                       fast_cb, m) < 0)
                return;
        if (!rc->fast)
                return;
        if (next) {
                (void)sd_event_source_set_time_relative(rc->fast, next);
                (void)sd_event_source_set_enabled(rc->fast, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_source_set_enabled(rc->fast, SD_EVENT_OFF);
}

static void fenced_cb(Manager *m, const char *node, int error, FenceState state,
                      const char *message, void *userdata)
{
        Recovery *rc = m->recovery;
        FenceTry *t = rc ? fence_try(rc, node) : NULL;
        usec_t now = 0;

        if (!t)
                return;
        t->running = false;
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (error >= 0) {
                t->failed = false;
                t->failures = 0;
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY },
                                      { "HOSTWARDEN_NODE", node },
                                      { "HOSTWARDEN_RECOVERY", "fenced" }),
                           "Automatic recovery: node %s is fenced (its agent says off); its HA "
                           "instances go to the survivors",
                           node);
                pass_now(m);
                return;
        }
        t->failed = true;
        t->failures++;
        t->next = now + MIN(FENCE_RETRY_FIRST << MIN(t->failures - 1, 8U), FENCE_RETRY_MAX);
        log_fields(LOG_ERR, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY }, { "HOSTWARDEN_NODE", node },
                              { "HOSTWARDEN_RECOVERY", "fence-failed" }),
                   "Automatic recovery: fencing node %s failed (%u in a row): %s. Nothing of it "
                   "is rebuilt until a fence succeeds; trying again in %llu s",
                   node, t->failures, strna(message),
                   (unsigned long long)((t->next - now) / USEC_PER_SEC));
}

static void fence_node(Manager *m, Recovery *rc, const RecoveryNode *n, usec_t now)
{
        FenceTry *t = fence_try(rc, n->name);
        int r;

        if (!t || t->running || now < t->next)
                return;
        log_fields(LOG_WARNING, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY }, { "HOSTWARDEN_NODE", n->name },
                              { "HOSTWARDEN_RECOVERY", "fencing" }),
                   "Automatic recovery: node %s has not been seen for %llu s: fencing it", n->name,
                   (unsigned long long)(n->unseen / USEC_PER_SEC));
        r = fence_power_off_confirmed(m, n->name, fenced_cb, NULL);
        if (r < 0) {
                t->failed = true;
                t->next = now + FENCE_RETRY_FIRST;
                log_error_errno(r, "Automatic recovery: cannot fence %s: %m", n->name);
                return;
        }
        t->running = true;
}

typedef struct SelfFenced {
        const char *by;
        uint64_t after, unseen;
} SelfFenced;

static int mutate_self_fenced(NodeRecord *rec, void *userdata)
{
        const SelfFenced *s = userdata;
        char *by = NULL;

        if (rec->generation == 0 || rec->forced_down)
                return -ENOENT; /* nothing to do */
        if (asprintf(&by,
                     "%s (automatic recovery: it declared self-fencing after %llu s, and its "
                     "heartbeat stood still for %llu s)",
                     s->by, (unsigned long long)(s->after / USEC_PER_SEC),
                     (unsigned long long)(s->unseen / USEC_PER_SEC)) < 0)
                return -ENOMEM;
        free(rec->forced_down_by);
        rec->forced_down_by = by;
        rec->forced_down = true;
        rec->forced_down_since = now_realtime();
        return 0;
}

static void take_self_fenced(Manager *m, const RecoveryNode *n)
{
        SelfFenced s = { m->config->node.name, n->self_fence_after, n->unseen };
        int r;

        r = store_node_update(m->store, n->name, mutate_self_fenced, &s, NULL);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                log_warning_errno(r, "Automatic recovery: cannot record %s as self-fenced: %m",
                                  n->name);
                return;
        }
        log_fields(LOG_WARNING, 0,
                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY }, { "HOSTWARDEN_NODE", n->name },
                              { "HOSTWARDEN_RECOVERY", "self-fenced" }),
                   "Automatic recovery: node %s declared self-fencing after %llu s and has not "
                   "been seen for %llu s: it is taken as off (recorded as forced down)",
                   n->name, (unsigned long long)(n->self_fence_after / USEC_PER_SEC),
                   (unsigned long long)(n->unseen / USEC_PER_SEC));
}

/* Did node rec get a fence result "on" (RECOVERY_BOOT_GRACE ago at most) after this node
 * last saw its heartbeat change? The time of that change is put on this node's wall clock
 * to be compared with the fencer's: a skew of seconds only matters for a node that died
 * again within seconds of its power-on. */
static bool powered_on_since_seen(Manager *m, const NodeRecord *rec, usec_t now)
{
        uint64_t rt = now_realtime(), seen_rt = 0;
        usec_t seen;

        if (rec->fence != FENCE_ON || rec->fence_time == 0 ||
            rt >= rec->fence_time + RECOVERY_BOOT_GRACE)
                return false;
        if (store_node_heartbeat_seen(m->store, rec->name, &seen) >= 0 && now >= seen)
                seen_rt = rt - (now - seen);
        return seen_rt < rec->fence_time;
}

/* The facts of every node with a record. */
static int gather_nodes(Manager *m, Recovery *rc, const NodeRecord *recs, size_t n, usec_t now,
                        RecoveryNode **ret)
{
        RecoveryNode *nodes = calloc(n ?: 1, sizeof(RecoveryNode));

        if (!nodes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const ConfigPeer *peer = config_find_peer(m->config, recs[i].name);
                RecoveryNode *x = &nodes[i];
                bool first = true;
                FenceTry *t;

                for (size_t k = 0; k < rc->n_tries; k++)
                        if (streq(rc->tries[k].node, recs[i].name))
                                first = false;
                t = fence_try(rc, recs[i].name);
                if (!t) {
                        free(nodes);
                        return -ENOMEM;
                }
                /* a result "on" recorded since we last looked: powered on, it boots */
                if (!first && recs[i].fence_time != t->fence_time_seen && recs[i].fence == FENCE_ON)
                        t->booting = true;
                /* ... or recorded before we looked, by a coordinator that may be gone */
                if (powered_on_since_seen(m, &recs[i], now))
                        t->booting = true;
                t->fence_time_seen = recs[i].fence_time;
                *x = (RecoveryNode){
                        .name = recs[i].name,
                        .self = streq(recs[i].name, m->config->node.name),
                        .fenced = recs[i].fence == FENCE_OFF || recs[i].forced_down,
                        .disabled = recs[i].disabled,
                        .has_fence_agent = peer && peer->fence_agent,
                        .fence_failed = t->failed,
                        .self_fence_after = recs[i].self_fence_after,
                        .mem_available = recs[i].mem_available,
                        .liveness = NODE_UNKNOWN,
                };
                (void)store_node_liveness_of(m->store, &recs[i], now, m->config->cluster.down_after,
                                             &x->liveness);
                (void)store_node_unseen(m->store, recs[i].name, now, &x->unseen);
                if (x->self)
                        x->liveness = NODE_UP;
                if (x->liveness == NODE_UP)
                        t->booting = false;
                x->booting = t->booting;
        }
        *ret = nodes;
        return 0;
}

typedef struct Candidate {
        InstanceRecord *rec;
        RecoveryGuest guest;
} Candidate;

/* The HA instances of the nodes to rebuild from, with what placing them needs. */
static size_t gather_guests(Manager *m, const RecoveryNode *nodes, const RecoveryAction *actions,
                            size_t n_nodes, InstanceRecord *inst, size_t n_inst, Candidate *out)
{
        size_t k = 0;

        for (size_t i = 0; i < n_inst; i++) {
                _cleanup_(domxml_freep) DomXml *d = NULL;
                _cleanup_free_ char *xml = NULL;
                bool from_fenced = false;
                HaSetting ha;

                for (size_t j = 0; j < n_nodes; j++)
                        if (streq(nodes[j].name, inst[i].owner) && actions[j] == RECOVERY_REBUILD)
                                from_fenced = true;
                if (!from_fenced || inst[i].deleted)
                        continue;
                /* no definition, no rebuild (Rebuild refuses it too) */
                if (store_definition_get(m->store, inst[i].uuid, &xml) < 0 ||
                    domxml_parse(xml, strlen(xml), &d, NULL) < 0)
                        continue;
                ha_setting_of(d, m->config->recovery.default_ha, &ha, NULL);
                if (ha.mode != HA_RESTART)
                        continue;
                out[k++] = (Candidate){
                        .rec = &inst[i],
                        .guest = { .uuid = inst[i].uuid,
                                   .priority = ha.priority,
                                   .memory = d->current_memory_kib * 1024,
                                   .refused = inst[i].recover_refused,
                                   .assigned = inst[i].recover_to },
                };
        }
        return k;
}

static void assign(Manager *m, Recovery *rc, Candidate *c, const char *to, const char *why)
{
        InstanceRecord *rec = c->rec;
        int r;

        if (streq_ptr(rec->recover_to, to))
                return;
        if (!to && !strv_contains(rc->said_unplaced, rec->uuid)) {
                log_fields(LOG_ERR, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY },
                                      { "HOSTWARDEN_INSTANCE", rec->uuid },
                                      { "HOSTWARDEN_NODE", rec->owner },
                                      { "HOSTWARDEN_RECOVERY", "unplaced" }),
                           "Automatic recovery: instance %s (%s) of %s cannot be rebuilt: %s",
                           rec->uuid, strna(rec->name), rec->owner, why);
                (void)strv_push_copy(&rc->said_unplaced, rec->uuid);
        }
        if (free_and_strdup(&rec->recover_to, to) < 0)
                return;
        rec->recover_time = now_realtime();
        r = store_instance_cas(m->store, rec, rec->generation, NULL);
        if (r == -ESTALE)
                return; /* it changed: the next heartbeat decides again */
        if (r < 0) {
                log_warning_errno(r, "Automatic recovery: cannot assign %s: %m", rec->uuid);
                return;
        }
        if (to)
                log_fields(LOG_NOTICE, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY },
                                      { "HOSTWARDEN_INSTANCE", rec->uuid },
                                      { "HOSTWARDEN_NODE", rec->owner },
                                      { "HOSTWARDEN_RECOVERY", "assigned" }),
                           "Automatic recovery: instance %s (%s) of %s goes to %s (priority %d)",
                           rec->uuid, strna(rec->name), rec->owner, to, c->guest.priority);
}

static void place(Manager *m, Recovery *rc, const RecoveryNode *nodes,
                  const RecoveryAction *actions, size_t n_nodes, InstanceRecord *inst,
                  size_t n_inst)
{
        _cleanup_free_ Candidate *cand = calloc(n_inst ?: 1, sizeof(Candidate));
        _cleanup_free_ RecoveryGuest *guests = NULL;
        _cleanup_free_ const char **to = NULL;
        _cleanup_free_ char(*why)[256] = NULL;
        size_t n;

        if (!cand)
                return;
        n = gather_guests(m, nodes, actions, n_nodes, inst, n_inst, cand);
        if (n == 0)
                return;
        guests = calloc(n, sizeof(RecoveryGuest));
        to = calloc(n, sizeof(char *));
        why = calloc(n, sizeof(*why));
        if (!guests || !to || !why)
                return;
        for (size_t i = 0; i < n; i++)
                guests[i] = cand[i].guest;
        recovery_place(guests, n, nodes, n_nodes, m->config->recovery.reserved_nodes, to, why);
        for (size_t i = 0; i < n; i++)
                assign(m, rc, &cand[i], to[i], why[i]);
        snprintf(rc->summary, sizeof(rc->summary),
                 "coordinator: %zu HA instance(s) of fenced nodes to rebuild", n);
}

static void coordinate(Manager *m, Recovery *rc, const NodeRecord *recs, size_t n_recs,
                       InstanceRecord *inst, size_t n_inst)
{
        const Config *c = m->config;
        _cleanup_free_ RecoveryNode *nodes = NULL;
        _cleanup_free_ RecoveryAction *actions = NULL;
        _cleanup_free_ char *holder = NULL;
        RecoveryTimes times = { c->cluster.down_after, c->recovery.confirm_after,
                                self_fence_peer_margin(c->cluster.down_after) };
        size_t lost, watched;
        usec_t now = 0;
        int r;

        r = store_lease_acquire(m->store, RECOVERY_LEASE, now_realtime(), c->cluster.down_after,
                                &rc->lease, &holder);
        if (r < 0) {
                if (rc->coordinating)
                        log_notice("Automatic recovery: this node no longer coordinates (%s)",
                                   r == -EBUSY ? strna(holder) : strerror(-r));
                rc->coordinating = false;
                store_lease_done(&rc->lease);
                rc->lease = (StoreLease){};
                snprintf(rc->summary, sizeof(rc->summary), "watching; coordinator: %s",
                         r == -EBUSY ? strna(holder) : "unknown (the store does not answer)");
                return;
        }
        if (!rc->coordinating)
                log_fields(LOG_NOTICE, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY },
                                      { "HOSTWARDEN_RECOVERY", "coordinating" }),
                           "Automatic recovery: this node coordinates it now");
        rc->coordinating = true;
        snprintf(rc->summary, sizeof(rc->summary), "coordinator");

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (gather_nodes(m, rc, recs, n_recs, now, &nodes) < 0)
                return;
        actions = calloc(n_recs ?: 1, sizeof(RecoveryAction));
        if (!actions)
                return;
        if (recovery_storm(nodes, n_recs, c->recovery.max_lost, &lost, &watched)) {
                if (!rc->storm_said)
                        log_fields(LOG_ERR, 0,
                                   LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY },
                                              { "HOSTWARDEN_RECOVERY", "storm" }),
                                   "Automatic recovery: %zu of %zu nodes look down at once, more "
                                   "than [recovery] max_lost allows: this node takes itself for "
                                   "the one cut off and fences nobody",
                                   lost, watched);
                rc->storm_said = true;
                snprintf(rc->summary, sizeof(rc->summary),
                         "coordinator: %zu of %zu nodes look down, fencing nobody (max_lost)", lost,
                         watched);
                return;
        }
        rc->storm_said = false;
        for (size_t i = 0; i < n_recs; i++) {
                FenceTry *t;

                actions[i] = recovery_node_action(&nodes[i], &times);
                switch (actions[i]) {
                case RECOVERY_FENCE:
                        fence_node(m, rc, &nodes[i], now);
                        break;
                case RECOVERY_SELF_FENCED:
                        take_self_fenced(m, &nodes[i]);
                        break;
                case RECOVERY_CANNOT_FENCE:
                        t = fence_try(rc, nodes[i].name);
                        if (t && !t->said_cannot)
                                log_fields(LOG_ERR, 0,
                                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_RECOVERY },
                                                      { "HOSTWARDEN_NODE", nodes[i].name },
                                                      { "HOSTWARDEN_RECOVERY", "cannot-fence" }),
                                           "Automatic recovery: node %s is down, but it has no "
                                           "fence agent here and did not declare self-fencing: "
                                           "nothing of it is rebuilt until an operator fences "
                                           "it or forces it down",
                                           nodes[i].name);
                        if (t)
                                t->said_cannot = true;
                        break;
                case RECOVERY_NOTHING:
                        /* back (or never gone): its failures are history */
                        t = nodes[i].liveness == NODE_UP ? fence_try(rc, nodes[i].name) : NULL;
                        if (t && !t->running)
                                *t = (FenceTry){ .node = t->node,
                                                 .fence_time_seen = t->fence_time_seen };
                        break;
                default:
                        break;
                }
        }
        place(m, rc, nodes, actions, n_recs, inst, n_inst);
}

void recovery_tick(Manager *m, const NodeRecord *nodes, size_t n_nodes)
{
        InstanceRecord *inst = NULL;
        size_t n_inst = 0;
        Recovery *rc;

        if (!m->store)
                return;
        rc = recovery_of(m);
        if (!rc)
                return;
        if (!m->config->recovery.enable) {
                if (rc->coordinating)
                        (void)store_lease_release(m->store, RECOVERY_LEASE, &rc->lease);
                rc->coordinating = false;
                return;
        }
        /* The instances matter only while some node is known to be off (nothing is
         * rebuilt or assigned otherwise): no listing of them on every heartbeat. */
        for (size_t i = 0; i < n_nodes; i++)
                if ((nodes[i].fence == FENCE_OFF || nodes[i].forced_down) &&
                    !streq(nodes[i].name, m->config->node.name)) {
                        if (store_instance_list(m->store, &inst, &n_inst) < 0)
                                return;
                        break;
                }
        /* the coordinator's own assignments of this pass are taken in this pass */
        coordinate(m, rc, nodes, n_nodes, inst, n_inst);
        take_assignments(m, rc, nodes, n_nodes, inst, n_inst);
        fast_passes(m, rc, incident(m, nodes, n_nodes, inst, n_inst));
        instance_record_array_free(inst, n_inst);
}
