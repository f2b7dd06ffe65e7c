/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libvirt/virterror.h>

#include "caps.h"
#include "diskinfo.h"
#include "errors.h"
#include "log.h"
#include "migration-network.h"
#include "node-state.h"
#include "paths.h"
#include "preflight.h"
#include "util.h"
#include "virt.h"

Preflight *preflight_free(Preflight *p)
{
        if (!p)
                return NULL;
        free(p->domain_arg);
        free(p->source_name);
        free(p->dest_name);
        free(p->dest_uri);
        free(p->dest_migration_address);
        free(p->dest_state);
        free(p->dest_fence);
        free(p->instances_path);
        mig_policy_set_done(&p->policies);
        free(p->dest_mark);
        free(p->tls_problem);
        domxml_free(p->domain);
        free(p->disk_copied);
        free(p->domain_xml);
        mig_findings_done(&p->findings);
        free(p);
        return NULL;
}

int preflight_new(Manager *m, const char *domain, const char *dest, const MigrateOptions *opts,
                  Preflight **ret, sd_bus_error *error)
{
        const Config *c = m->config;
        const ConfigPeer *peer = NULL;
        _cleanup_(node_record_done) NodeRecord rec = {};
        Preflight *p;
        struct stat st;
        uint64_t now = 0;
        int r;

        if (isempty(domain))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected a domain name or UUID");
        if (isempty(dest))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Expected the name of the destination node");
        if (!streq(dest, c->node.name)) {
                peer = config_find_peer(c, dest);
                if (!peer)
                        return sd_bus_error_setf(error, HW_ERROR_NO_SUCH_NODE,
                                                 "No peer '%s' in the configuration: nodes are "
                                                 "[peer NAME] sections of %s/hostwarden.conf",
                                                 dest, hw_conf_dir());
        }

        p = calloc(1, sizeof(Preflight));
        if (!p)
                return -ENOMEM;
        p->opts = *opts;
        p->domain_arg = strdup(domain);
        p->source_name = strdup(c->node.name);
        p->dest_name = strdup(dest);
        p->dest_uri = peer ? strdup(peer->libvirt_uri) : NULL;
        if (peer && peer->migration_address)
                p->dest_migration_address = strdup(peer->migration_address);
        if (!p->domain_arg || !p->source_name || !p->dest_name || (peer && !p->dest_uri) ||
            (peer && peer->migration_address && !p->dest_migration_address)) {
                preflight_free(p);
                return -ENOMEM;
        }

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        r = store_node_get(m->store, dest, &rec);
        if (r >= 0) {
                p->dest_state = strdup(node_state_of(m, &rec, now));
                p->dest_fence = strdup(fence_state_to_string(rec.fence));
                p->dest_mark = rec.storage_mark;
                p->dest_max_incoming = rec.max_incoming;
                rec.storage_mark = NULL;
        } else {
                /* no record: its hostwardend never ran against this store */
                p->dest_state = strdup("unknown");
                p->dest_fence = strdup("unknown");
        }
        if (!p->dest_state || !p->dest_fence) {
                preflight_free(p);
                return -ENOMEM;
        }
        p->instances_path = strdup(c->node.instances_path);
        if (!p->instances_path || config_copy_policies(c, &p->policies) < 0) {
                preflight_free(p);
                return -ENOMEM;
        }
        {
                _cleanup_(sd_bus_error_free) sd_bus_error tls = SD_BUS_ERROR_NULL;

                /* what Migrate would refuse for TLS, a finding here */
                /* (a cold migration copies over libvirt's own connection: no TLS option) */
                if (!opts->cold && migrate_options_check_tls(c, opts, &tls) < 0 &&
                    !(p->tls_problem = strdup(tls.message ?: tls.name))) {
                        preflight_free(p);
                        return -ENOMEM;
                }
        }
        /* peers that write heartbeats to the dir store mount its file system */
        if (c->cluster.store == STORE_BACKEND_DIR &&
            stat(hw_state_dir(c->cluster.state_dir), &st) >= 0)
                p->store_dev = st.st_dev;
        *ret = p;
        return 0;
}

static void set_error(Preflight *p, int error, const char *name, const char *format, ...)
        _printf_(4, 5);
static void set_error(Preflight *p, int error, const char *name, const char *format, ...)
{
        va_list ap;

        p->error = error;
        p->error_name = name;
        va_start(ap, format);
        vsnprintf(p->error_message, sizeof(p->error_message), format, ap);
        va_end(ap);
}

static virDomainPtr lookup(virConnectPtr conn, const char *arg)
{
        virDomainPtr d = NULL;

        if (uuid_is_valid(arg))
                d = virDomainLookupByUUIDString(conn, arg);
        if (!d)
                d = virDomainLookupByName(conn, arg);
        return d;
}

/* Live migration takes a running or paused domain; anything else is a finding. */
static MigDomainState domain_state_of(virDomainPtr dom, const char **ret_word, bool *ret_paused)
{
        int state = VIR_DOMAIN_NOSTATE, reason = 0;

        if (virDomainGetState(dom, &state, &reason, 0) < 0)
                return *ret_word = "unknown", MIG_DOMAIN_ACTIVE; /* Migrate tells, later */
        *ret_word = virt_state_to_string(state);
        *ret_paused = state == VIR_DOMAIN_PAUSED;
        switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_PAUSED:
                return MIG_DOMAIN_ACTIVE;
        case VIR_DOMAIN_SHUTOFF:
                return virDomainHasManagedSaveImage(dom, 0) > 0 ? MIG_DOMAIN_MANAGED_SAVE
                                                                : MIG_DOMAIN_SHUTOFF;
        default:
                return MIG_DOMAIN_OTHER;
        }
}

/* The UUID of the domain the destination has under name when it is another instance than
 * uuid (NULL otherwise, also when it cannot be asked: a failed lookup is "no such domain"). */
static char *same_name_elsewhere(virConnectPtr dconn, const char *name, const char *uuid)
{
        char other[VIR_UUID_STRING_BUFLEN] = "";
        virDomainPtr d;
        int r;

        d = virDomainLookupByName(dconn, name);
        if (!d)
                return NULL;
        r = virDomainGetUUIDString(d, other);
        virDomainFree(d);
        if (r < 0 || strcasecmp(other, uuid) == 0)
                return NULL;
        return strdup(other);
}

static int caps_of(virConnectPtr conn, HostCaps **ret)
{
        _cleanup_free_ char *xml = virConnectGetCapabilities(conn);

        if (!xml)
                return -EIO;
        return host_caps_parse(xml, strlen(xml), ret);
}

/* The file systems the destination is known to mount too: the dir store's, and this node's
 * instances_path when the destination's storage mark is in it. */
static size_t shared_file_systems(const Preflight *p, SharedFs shared[static 2], char *what,
                                  size_t what_size)
{
        struct stat st;
        size_t n = 0;
        int r;

        if (p->store_dev != 0)
                shared[n++] =
                        (SharedFs){ p->store_dev, "the file system of the shared state directory" };
        if (!p->dest_uri)
                return n; /* this node: nothing to compare */
        r = storage_mark_check(p->instances_path, p->dest_name, p->dest_mark);
        if (r < 0)
                log_warning_errno(r, "Cannot read %s's storage mark in %s/" STORAGE_MARK_DIR ": %m",
                                  p->dest_name, p->instances_path);
        if (r > 0 && stat(p->instances_path, &st) >= 0) {
                snprintf(what, what_size, "instances_path, which %s mounts too", p->dest_name);
                shared[n++] = (SharedFs){ st.st_dev, what };
        }
        return n;
}

/* The migration policy the engine will choose (the caller's, the domain's, [migration]'s):
 * one this node has and permits? */
static bool policy_usable(const Preflight *p, char *why, size_t size)
{
        MigrateOptions o = p->opts;

        return migrate_options_choose_policy(&p->policies, &o, p->domain->hw_policy, why, size) >=
               0;
}

void preflight_gather(Manager *m, Preflight *p)
{
        _cleanup_(host_caps_freep) HostCaps *src_caps = NULL, *dst_caps = NULL;
        virConnectPtr conn = NULL, dconn = NULL;
        virDomainPtr dom = NULL;
        MigDiskInfo *disks = NULL;
        char(*where)[128] = NULL;
        char err[512] = "";
        char dest_error[512] = "";
        char why[512];
        _cleanup_free_ char *parse_error = NULL, *same_name_uuid = NULL;
        SharedFs shared[2];
        size_t n_shared;
        char mark_what[128];
        MigDomainState domain_state;
        const char *state_word = NULL;
        bool paused = false;
        int n_snapshots;
        MigCheckInput in;
        int r;

        r = virt_connect(m->virt, &conn, err, sizeof(err));
        if (r < 0) {
                set_error(p, r, HW_ERROR_LIBVIRT,
                          "Cannot connect to libvirt at %s: %s (is libvirtd running?)",
                          virt_uri(m->virt), err);
                return;
        }
        dom = lookup(conn, p->domain_arg);
        if (!dom) {
                set_error(p, -ENOENT, HW_ERROR_NO_SUCH_DOMAIN,
                          "No domain '%s' on %s: ListDomains() shows this node's domains",
                          p->domain_arg, p->source_name);
                goto out;
        }
        p->domain_xml = virDomainGetXMLDesc(dom, 0);
        if (!p->domain_xml) {
                set_error(p, -EIO, HW_ERROR_LIBVIRT, "Cannot read the XML of domain '%s': %s",
                          p->domain_arg, virt_last_error("unknown error"));
                goto out;
        }
        r = domxml_parse(p->domain_xml, strlen(p->domain_xml), &p->domain, &parse_error);
        if (r >= 0)
                r = caps_of(conn, &src_caps);
        if (r < 0) {
                set_error(p, r, HW_ERROR_LIBVIRT,
                          "Cannot read domain '%s' or this node's capabilities: %s", p->domain_arg,
                          parse_error ? parse_error : strerror(-r));
                goto out;
        }

        disks = calloc(p->domain->n_disks + 1, sizeof(MigDiskInfo));
        where = calloc(p->domain->n_disks + 1, sizeof(*where));
        if (!disks || !where) {
                set_error(p, -ENOMEM, SD_BUS_ERROR_NO_MEMORY, "Out of memory");
                goto out;
        }
        p->disk_copied = calloc(p->domain->n_disks + 1, sizeof(bool));
        if (!p->disk_copied) {
                set_error(p, -ENOMEM, SD_BUS_ERROR_NO_MEMORY, "Out of memory");
                goto out;
        }
        domain_state = domain_state_of(dom, &state_word, &paused);
        n_snapshots = virDomainSnapshotNum(dom, 0);
        n_shared = shared_file_systems(p, shared, mark_what, sizeof(mark_what));
        for (size_t i = 0; i < p->domain->n_disks; i++) {
                disk_classify(&p->domain->disks[i], shared, n_shared, &disks[i], where[i],
                              sizeof(where[i]));
                p->disk_copied[i] = mig_disk_is_copied(&p->domain->disks[i], &disks[i]);
        }

        in = (MigCheckInput){
                .domain = p->domain,
                .domain_state = domain_state,
                .domain_state_word = state_word,
                .paused = paused,
                .post_copy_asked = p->opts.post_copy && p->opts.post_copy_asked,
                .snapshots = n_snapshots > 0 ? (unsigned)n_snapshots : 0,
                .disks = disks,
                .source = src_caps,
                .source_name = p->source_name,
                .dest_name = p->dest_name,
                .dest_state = p->dest_state,
                .dest_fence = p->dest_fence,
                .dest_free_bytes = UINT64_MAX,
                .cpu_compare = MIG_CPU_NOT_COMPARED,
                .block = p->opts.block,
                .cold = p->opts.cold,
        };
        if (p->dest_uri) {
                dconn = virConnectOpen(p->dest_uri);
                if (!dconn)
                        snprintf(dest_error, sizeof(dest_error), "%s",
                                 virt_last_error("unknown error"));
                else if (caps_of(dconn, &dst_caps) < 0) {
                        snprintf(dest_error, sizeof(dest_error), "%s",
                                 virt_last_error("cannot read its capabilities"));
                        dst_caps = host_caps_free(dst_caps);
                }
        }
        p->dest_free_bytes = UINT64_MAX;
        if (dst_caps) {
                unsigned long long free_bytes = virNodeGetFreeMemory(dconn);

                in.dest = dst_caps;
                in.dest_same_name_uuid = same_name_uuid =
                        same_name_elsewhere(dconn, p->domain->name, p->domain->uuid);
                if (free_bytes > 0)
                        in.dest_free_bytes = p->dest_free_bytes = free_bytes;
                /* a CPU to compare: a named model (custom, host-model as libvirt expanded it) */
                if (p->domain->cpu_xml && p->domain->cpu_model &&
                    !streq_ptr(p->domain->cpu_mode, "host-passthrough") &&
                    !streq_ptr(p->domain->cpu_mode, "maximum")) {
                        int c = virConnectCompareHypervisorCPU(dconn, NULL, p->domain->arch, NULL,
                                                               p->domain->domain_type,
                                                               p->domain->cpu_xml, 0);
                        if (c < 0) {
                                in.cpu_compare = MIG_CPU_COMPARE_FAILED;
                                in.cpu_compare_error = virt_last_error("unknown error");
                        } else
                                in.cpu_compare =
                                        c == VIR_CPU_COMPARE_INCOMPATIBLE ? MIG_CPU_INCOMPATIBLE
                                        : c == VIR_CPU_COMPARE_IDENTICAL  ? MIG_CPU_IDENTICAL
                                                                          : MIG_CPU_SUPERSET;
                }
        }

        r = mig_check(&in, &p->findings);
        if (r >= 0 && p->tls_problem)
                r = mig_findings_add(&p->findings, MIG_ERROR, "migration-tls", "%s",
                                     p->tls_problem);
        if (r >= 0 && !p->opts.cold && !policy_usable(p, why, sizeof(why)))
                r = mig_findings_add(&p->findings, MIG_ERROR, "migration-policy", "%s", why);
        if (r >= 0 && migration_network_unreachable(p, why, sizeof(why)))
                r = mig_findings_add(&p->findings, MIG_ERROR, "migration-network", "%s", why);
        if (r >= 0 && p->dest_uri && !dst_caps)
                /* the destination's libvirt is part of the answer: say it could not be asked */
                r = mig_findings_add(&p->findings, MIG_ERROR, "destination-unreachable",
                                     "Cannot reach libvirt on %s at %s: %s; check that libvirtd "
                                     "listens there and the firewall lets this node in",
                                     p->dest_name, p->dest_uri, dest_error);
        if (r < 0)
                set_error(p, r, SD_BUS_ERROR_NO_MEMORY, "Out of memory");
out:
        free(disks);
        free(where);
        if (dom)
                virDomainFree(dom);
        if (dconn)
                virConnectClose(dconn);
        virConnectClose(conn);
}

void preflight_candidate(const Preflight *p, PlacementCandidate *ret)
{
        *ret = (PlacementCandidate){
                .name = p->dest_name,
                .error = p->error,
                .no_such_domain = p->error < 0 && p->error_name &&
                                  streq(p->error_name, HW_ERROR_NO_SUCH_DOMAIN),
                .error_message = p->error_message,
                .findings = &p->findings,
                .free_bytes = p->dest_free_bytes,
                .need_bytes = p->domain ? p->domain->current_memory_kib * 1024 : 0,
        };
}
