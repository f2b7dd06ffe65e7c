/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migcheck.h"
#include "util.h"

#define CPUSET_MAX 65535U

const char *mig_severity_to_string(MigSeverity s)
{
        return s == MIG_ERROR ? "error" : s == MIG_WARNING ? "warning" : "ok";
}

void mig_findings_done(MigFindings *f)
{
        for (size_t i = 0; i < f->n; i++) {
                free(f->items[i].code);
                free(f->items[i].message);
        }
        free(f->items);
        *f = (MigFindings){};
}

MigSeverity mig_findings_worst(const MigFindings *f)
{
        MigSeverity w = MIG_OK;

        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].severity > w)
                        w = f->items[i].severity;
        return w;
}

int mig_findings_add(MigFindings *f, MigSeverity severity, const char *code, const char *format,
                     ...)
{
        MigFinding *t;
        va_list ap;
        char *msg;
        int k;

        va_start(ap, format);
        k = vasprintf(&msg, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        t = realloc(f->items, (f->n + 1) * sizeof(MigFinding));
        if (!t) {
                free(msg);
                return -ENOMEM;
        }
        f->items = t;
        t[f->n] = (MigFinding){ .severity = severity, .code = strdup(code), .message = msg };
        if (!t[f->n].code) {
                free(msg);
                return -ENOMEM;
        }
        f->n++;
        return 0;
}

/* "0-3,6" */
static char *format_ids(const unsigned *ids, size_t n)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < n;) {
                size_t j = i;

                while (j + 1 < n && ids[j + 1] == ids[j] + 1)
                        j++;
                if (j == i)
                        fprintf(f, "%s%u", i ? "," : "", ids[i]);
                else
                        fprintf(f, "%s%u-%u", i ? "," : "", ids[i], ids[j]);
                i = j + 1;
        }
        if (n == 0)
                fputs("none", f);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static bool id_in(const unsigned *ids, size_t n, unsigned id)
{
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

/* The ids of set that the destination lacks, as "7" or "6-7"; NULL when none (or on ENOMEM,
 * which *r reports). */
static char *missing_ids(const char *set, const unsigned *have, size_t n_have, int *r)
{
        _cleanup_free_ unsigned *ids = NULL, *missing = NULL;
        size_t n = 0, n_missing = 0;
        char *s;

        *r = cpuset_parse(set, CPUSET_MAX, &ids, &n);
        if (*r < 0)
                return NULL;
        missing = calloc(n ? n : 1, sizeof(unsigned));
        if (!missing) {
                *r = -ENOMEM;
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                if (!id_in(have, n_have, ids[i]))
                        missing[n_missing++] = ids[i];
        if (n_missing == 0)
                return NULL;
        s = format_ids(missing, n_missing);
        if (!s)
                *r = -ENOMEM;
        return s;
}

static bool strv_contains_before(char **l, size_t end, const char *s)
{
        for (size_t i = 0; i < end; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

static int check_destination(const MigCheckInput *in, MigFindings *f)
{
        const char *d = in->dest_name;

        if (streq_ptr(in->source_name, d))
                return mig_findings_add(
                        f, MIG_ERROR, "destination-self",
                        "The destination %s is this node: pick another node, or pass \"\" to "
                        "let hostwarden choose one",
                        d);
        if (streq_ptr(in->dest_fence, "off"))
                return mig_findings_add(
                        f, MIG_ERROR, "destination-fenced",
                        "%s is fenced (its fence agent reported it powered off): it cannot "
                        "receive a migration",
                        d);
        if (streq_ptr(in->dest_state, "forced-down"))
                return mig_findings_add(
                        f, MIG_ERROR, "destination-down",
                        "%s is forced down (an admin declared it powered off): pick another "
                        "node",
                        d);
        if (streq_ptr(in->dest_state, "down"))
                return mig_findings_add(
                        f, MIG_ERROR, "destination-down",
                        "%s is down (its heartbeat stopped): pick another node, or check "
                        "hostwardend on %s",
                        d, d);
        if (streq_ptr(in->dest_state, "disabled"))
                return mig_findings_add(
                        f, MIG_ERROR, "destination-disabled",
                        "%s is disabled: enable it ('hostwardenctl enable' on %s) or pick "
                        "another node",
                        d, d);
        if (streq_ptr(in->dest_state, "unknown"))
                return mig_findings_add(
                        f, MIG_WARNING, "destination-unknown",
                        "%s has not been seen alive yet (no heartbeat change observed since "
                        "this daemon started)",
                        d);
        return 0;
}

/* Migrate refuses the same (dbus/migration-engine.c run_migration()): keep the words alike. */
/* Cold migration shuts the guest down (ACPI) and boots it on the destination: shut off or
 * running is fine; a paused guest cannot answer ACPI, and a managed save image would be left
 * behind. Words alike with dbus/migration-cold.c. */
static int check_cold_domain_state(const MigCheckInput *in, MigFindings *f)
{
        const char *name = in->domain->name;

        switch (in->domain_state) {
        case MIG_DOMAIN_MANAGED_SAVE:
                return mig_findings_add(
                        f, MIG_ERROR, "domain-managed-save",
                        "Domain %s is shut off with a managed save image on %s: cold migration "
                        "would leave the saved memory behind; start it ('virsh start %s') or "
                        "drop the image ('virsh managedsave-remove %s') first",
                        name, strna(in->source_name), name, name);
        case MIG_DOMAIN_OTHER:
                return mig_findings_add(
                        f, MIG_ERROR, "domain-not-running",
                        "Domain %s is %s: cold migration needs a running or shut-off domain; "
                        "'virsh domstate --reason %s' tells why",
                        name, strna(in->domain_state_word), name);
        case MIG_DOMAIN_ACTIVE:
                if (in->paused)
                        return mig_findings_add(
                                f, MIG_ERROR, "domain-paused",
                                "Domain %s is paused: a paused guest cannot shut down; resume "
                                "it ('virsh resume %s') or shut it down first",
                                name, name);
                return 0;
        default:
                return 0;
        }
}

static int check_domain_state(const MigCheckInput *in, MigFindings *f)
{
        const char *name = in->domain->name;

        if (in->cold)
                return check_cold_domain_state(in, f);
        switch (in->domain_state) {
        case MIG_DOMAIN_SHUTOFF:
                return mig_findings_add(
                        f, MIG_ERROR, "domain-shutoff",
                        "Domain %s is shut off: live migration needs a running domain; start it "
                        "('virsh start %s') or use cold migration ('hostwardenctl migrate --cold')",
                        name, name);
        case MIG_DOMAIN_MANAGED_SAVE:
                /* the image is on this node's disk: a cold move would leave the memory behind */
                return mig_findings_add(
                        f, MIG_ERROR, "domain-managed-save",
                        "Domain %s is shut off with a managed save image on %s: live migration "
                        "needs a running domain; start it ('virsh start %s' restores the saved "
                        "state), or drop the image ('virsh managedsave-remove %s') and use cold "
                        "migration ('hostwardenctl migrate --cold')",
                        name, strna(in->source_name), name, name);
        case MIG_DOMAIN_OTHER:
                return mig_findings_add(
                        f, MIG_ERROR, "domain-not-running",
                        "Domain %s is %s: live migration needs a running or paused domain; "
                        "bring it back to running ('virsh domstate --reason %s' tells why) "
                        "first",
                        name, strna(in->domain_state_word), name);
        default:
                /* libvirt refuses it ("post-copy migration is not supported with non-live or
                 * paused migration"); Migrate drops a post-copy that only [migration]
                 * permit_post_copy turned on (run_migration()) */
                if (in->paused && in->post_copy_asked)
                        return mig_findings_add(
                                f, MIG_ERROR, "post-copy-paused",
                                "Domain %s is paused: libvirt refuses post-copy for a paused "
                                "domain; leave option post-copy out (a paused domain changes "
                                "no memory, so its copy completes without) or resume it "
                                "('virsh resume %s')",
                                name, name);
                return 0;
        }
}

/* libvirt refuses to migrate a domain it has snapshots of ("cannot migrate domain with N
 * snapshots"): their metadata stays on this node. */
static int check_snapshots(const MigCheckInput *in, MigFindings *f)
{
        const char *name = in->domain->name;

        if (in->snapshots == 0)
                return 0;
        return mig_findings_add(
                f, MIG_ERROR, "snapshots",
                "Domain %s has %u snapshot(s) in libvirt on %s: libvirt refuses to migrate a "
                "domain with snapshots; delete them ('virsh snapshot-list %s', 'virsh "
                "snapshot-delete %s NAME'; with --metadata the data stays in the disk images)",
                name, in->snapshots, strna(in->source_name), name, name);
}

/* libvirt keys domains by name as well as UUID: a second instance of that name cannot land. */
static int check_dest_name(const MigCheckInput *in, MigFindings *f)
{
        if (!in->dest_same_name_uuid)
                return 0;
        return mig_findings_add(
                f, MIG_ERROR, "destination-name-taken",
                "%s already has a domain named %s with UUID %s (another instance; this one is "
                "%s): libvirt cannot hold two domains of one name; pick another node, or "
                "rename or remove the one on %s",
                in->dest_name, in->domain->name, in->dest_same_name_uuid, strna(in->domain->uuid),
                in->dest_name);
}

static int check_cpu(const MigCheckInput *in, MigFindings *f)
{
        const DomXml *dom = in->domain;
        const char *arch = dom->arch ? dom->arch : in->source->arch;
        int r;

        if (!streq(arch, in->dest->arch))
                return mig_findings_add(
                        f, MIG_ERROR, "cpu-arch",
                        "The domain is %s and %s is %s: live migration cannot change the CPU "
                        "architecture; pick a %s node",
                        arch, in->dest_name, in->dest->arch, arch);
        if (!streq(in->source->arch, in->dest->arch))
                return mig_findings_add(
                        f, MIG_ERROR, "cpu-arch", "This node is %s and %s is %s: pick a %s node",
                        in->source->arch, in->dest_name, in->dest->arch, in->source->arch);

        if (dom->cpu_mode &&
            (streq(dom->cpu_mode, "host-passthrough") || streq(dom->cpu_mode, "maximum"))) {
                if (!host_caps_cpu_identical(in->source, in->dest))
                        return mig_findings_add(
                                f, MIG_ERROR, "cpu-passthrough",
                                "The domain's CPU is %s: %s's CPU (%s %s) must be identical "
                                "to this node's (%s %s), model and features; pick an "
                                "identical node, or give the domain a named CPU model both "
                                "support (Nova: cpu_mode=custom, cpu_models)",
                                dom->cpu_mode, in->dest_name, strna(in->dest->cpu_vendor),
                                strna(in->dest->cpu_model), strna(in->source->cpu_vendor),
                                strna(in->source->cpu_model));
                return 0;
        }
        switch (in->cpu_compare) {
        case MIG_CPU_INCOMPATIBLE:
                r = mig_findings_add(
                        f, MIG_ERROR, "cpu-model",
                        "%s's CPU (%s %s) cannot provide the domain's CPU (%s%s%s): the "
                        "destination must have every feature the domain uses; pick a node "
                        "with a newer CPU or give the domain an older CPU model",
                        in->dest_name, strna(in->dest->cpu_vendor), strna(in->dest->cpu_model),
                        dom->cpu_mode ? dom->cpu_mode : "default", dom->cpu_model ? " " : "",
                        dom->cpu_model ? dom->cpu_model : "");
                break;
        case MIG_CPU_COMPARE_FAILED:
                r = mig_findings_add(
                        f, MIG_WARNING, "cpu-model",
                        "Could not compare the domain's CPU with %s's: %s", in->dest_name,
                        in->cpu_compare_error ? in->cpu_compare_error : "unknown error");
                break;
        default:
                r = 0;
        }
        return r;
}

static int check_memory(const MigCheckInput *in, MigFindings *f)
{
        uint64_t need = in->domain->current_memory_kib * 1024;

        if (in->dest_free_bytes == UINT64_MAX || need <= in->dest_free_bytes)
                return 0;
        return mig_findings_add(
                f, MIG_ERROR, "memory",
                "The domain needs %llu MiB and %s has %llu MiB free: free memory there or "
                "pick another node (oversubscribed memory makes the migration fail)",
                (unsigned long long)(need >> 20), in->dest_name,
                (unsigned long long)(in->dest_free_bytes >> 20));
}

static int check_devices(const MigCheckInput *in, MigFindings *f)
{
        const DomXml *dom = in->domain;
        int r;

        for (size_t i = 0; i < dom->n_hostdevs; i++) {
                const DomHostdev *h = &dom->hostdevs[i];

                if (streq_ptr(h->type, "pci"))
                        r = mig_findings_add(
                                f, MIG_ERROR, "pci-passthrough",
                                "PCI device %s is passed through to the domain: QEMU cannot "
                                "live-migrate a physical device; use cold migration "
                                "('hostwardenctl migrate --cold')",
                                h->device ? h->device : "(no address)");
                else
                        r = mig_findings_add(
                                f, MIG_ERROR, "hostdev",
                                "A %s host device%s%s is passed through to the domain: QEMU "
                                "cannot live-migrate it; detach it first or use cold migration",
                                strna(h->type), h->device ? " " : "", h->device ? h->device : "");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < dom->n_interfaces; i++) {
                const DomInterface *nic = &dom->interfaces[i];

                if (!streq_ptr(nic->type, "hostdev"))
                        continue;
                if (in->cold)
                        r = mig_findings_add(f, MIG_WARNING, "sriov-direct",
                                             "Interface %s is a direct-mode SR-IOV port (a VF of "
                                             "the host): the guest gets a VF of %s's when it "
                                             "starts there",
                                             nic->mac ? nic->mac : "(no MAC)", in->dest_name);
                else
                        r = mig_findings_add(
                                f, MIG_WARNING, "sriov-direct",
                                "Interface %s is a direct-mode SR-IOV port (a VF of the host): it "
                                "is detached before the migration and attached again on %s, so "
                                "the guest loses this network for that time",
                                nic->mac ? nic->mac : "(no MAC)", in->dest_name);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool mig_disk_is_copied(const DomDisk *disk, const MigDiskInfo *info)
{
        return info->storage == DISK_LOCAL;
}

static int check_disks(const MigCheckInput *in, MigFindings *f)
{
        const DomXml *dom = in->domain;
        int r = 0;

        for (size_t i = 0; i < dom->n_disks && r >= 0; i++) {
                const DomDisk *d = &dom->disks[i];
                const MigDiskInfo *info = &in->disks[i];
                const char *target = d->target ? d->target : "?";
                const char *where = info->where ? info->where : "";
                bool readonly = d->readonly || streq_ptr(d->device, "cdrom");

                if (info->storage == DISK_EMPTY || info->storage == DISK_VOLUME)
                        continue;
                /* cold: local disks are copied as files, shared ones used where they are; the
                 * destination must still open a shared disk's backing chain */
                if (in->cold)
                        r = 0;
                else if (in->block && info->iso9660)
                        r = mig_findings_add(
                                f, MIG_ERROR, "config-drive-iso9660",
                                "Disk %s (%s) is an ISO 9660 config drive: block migration "
                                "cannot copy it; use a vfat config drive (Nova: "
                                "config_drive_format=vfat) or keep instances on shared storage "
                                "and migrate without block",
                                target, strna(d->source));
                else if (in->block && readonly)
                        r = mig_findings_add(
                                f, MIG_ERROR, "readonly-drive",
                                "Disk %s (%s%s, %s) is read-only: block migration can copy only "
                                "drives that are read-write; eject it first ('virsh "
                                "change-media %s %s --eject') or migrate without block from "
                                "shared storage",
                                target, strna(d->device), d->readonly ? ", readonly" : "",
                                strna(d->source), dom->name, target);
                else if (in->block && info->storage == DISK_SHARED)
                        r = mig_findings_add(
                                f, MIG_ERROR, "shared-disk-block",
                                "Disk %s (%s) is on shared storage%s%s%s: block migration would "
                                "copy it onto itself; migrate without block",
                                target, strna(d->source), *where ? " (" : "", where,
                                *where ? ")" : "");
                else if (!in->block && info->storage == DISK_SHARED && !info->libvirt_shared &&
                         !readonly)
                        r = mig_findings_add(
                                f, MIG_ERROR, "unsafe-storage",
                                "Disk %s (%s) is on storage the nodes share%s%s%s, but libvirt "
                                "does not take its file system for shared storage: libvirt "
                                "refuses the migration ('Migration without shared storage is "
                                "unsafe'); keep instances on a file system libvirt knows as "
                                "shared (NFS, GlusterFS, CephFS, GFS2, OCFS2)",
                                target, strna(d->source), *where ? " (" : "", where,
                                *where ? ")" : "");
                else if (!in->block && info->storage == DISK_LOCAL)
                        r = mig_findings_add(
                                f, MIG_ERROR, "local-disk",
                                "Disk %s (%s) is local to %s%s%s%s: %s cannot see it; use "
                                "block migration (hostwardenctl migrate --block, option "
                                "block=true)",
                                target, strna(d->source), strna(in->source_name),
                                *where ? " (" : "", where, *where ? ")" : "", in->dest_name);
                /* on its own: libvirt's check may refuse the same disk as well */
                if (r >= 0 && (!in->block || in->cold) && info->storage == DISK_SHARED &&
                    info->local_backing[0])
                        r = mig_findings_add(
                                f, MIG_ERROR, "local-backing-file",
                                "Disk %s (%s) is on shared storage, but its backing file %s is "
                                "on %s's own storage: %s cannot open it; keep base images on the "
                                "shared storage too (Nova: the _base directory of instances_path)",
                                target, strna(d->source), info->local_backing,
                                strna(in->source_name), in->dest_name);
        }
        return r;
}

static int check_numa(const MigCheckInput *in, MigFindings *f)
{
        const DomXml *dom = in->domain;
        _cleanup_free_ char *have_cpus = format_ids(in->dest->cpus, in->dest->n_cpus);
        _cleanup_free_ char *have_cells = format_ids(in->dest->cells, in->dest->n_cells);
        int r = 0;

        if (!have_cpus || !have_cells)
                return -ENOMEM;
        for (size_t i = 0; i < dom->n_pins && r >= 0; i++) {
                const DomPin *p = &dom->pins[i];
                _cleanup_free_ char *missing = NULL;

                if (!p->cpuset)
                        continue;
                missing = missing_ids(p->cpuset, in->dest->cpus, in->dest->n_cpus, &r);
                if (r == -EINVAL)
                        r = mig_findings_add(
                                f, MIG_WARNING, "cpu-pinning",
                                "Cannot read the pinning of %s ('%s'): check it by hand", p->what,
                                p->cpuset);
                else if (missing)
                        r = mig_findings_add(
                                f, MIG_ERROR, "cpu-pinning",
                                "The domain pins %s to host CPU(s) %s, which %s does not have "
                                "(it has CPUs %s): pick a node with the same CPU layout "
                                "(Nova: same cpu_dedicated_set/cpu_shared_set on every node)",
                                p->what, missing, in->dest_name, have_cpus);
        }
        for (size_t i = 0; r >= 0 && (i == 0 || (dom->numa_memnodes && dom->numa_memnodes[i - 1]));
             i++) {
                const char *set = i == 0 ? dom->numa_nodeset : dom->numa_memnodes[i - 1];
                _cleanup_free_ char *missing = NULL;

                if (!set)
                        continue;
                /* the same nodeset twice (memory and a memnode, as Nova writes): one finding */
                if (i > 0 && (streq_ptr(set, dom->numa_nodeset) ||
                              strv_contains_before(dom->numa_memnodes, i - 1, set)))
                        continue;
                missing = missing_ids(set, in->dest->cells, in->dest->n_cells, &r);
                if (r == -EINVAL)
                        r = mig_findings_add(
                                f, MIG_WARNING, "numa",
                                "Cannot read the domain's NUMA nodeset '%s': check it by hand",
                                set);
                else if (missing)
                        r = mig_findings_add(
                                f, MIG_ERROR, "numa",
                                "The domain's memory is bound to NUMA node(s) %s, which %s does "
                                "not have (it has node(s) %s): pick a node with the same NUMA "
                                "topology",
                                missing, in->dest_name, have_cells);
        }
        return r;
}

/* What stands only in the way of a live migration (QEMU moves the running guest's CPU state,
 * memory and devices): a cold migration boots the guest afresh on the destination, so these
 * are warnings for it, to check before Confirm; memory only while the guest stays off. */
static const char *const live_only[] = {
        "cpu-passthrough", "cpu-model", "pci-passthrough", "hostdev", "cpu-pinning", "numa", NULL,
};

static int cold_downgrade(const MigCheckInput *in, MigFindings *f)
{
        for (size_t i = 0; i < f->n; i++) {
                MigFinding *x = &f->items[i];
                char *msg;

                if (x->severity != MIG_ERROR ||
                    !(strv_contains((char *const *)live_only, x->code) ||
                      (streq(x->code, "memory") && in->domain_state != MIG_DOMAIN_ACTIVE)))
                        continue;
                if (asprintf(&msg,
                             "%s (a warning for a cold migration: the guest boots afresh on %s "
                             "and needs this there; check it before Confirm)",
                             x->message, in->dest_name) < 0)
                        return -ENOMEM;
                free(x->message);
                x->message = msg;
                x->severity = MIG_WARNING;
        }
        return 0;
}

int mig_check(const MigCheckInput *in, MigFindings *ret)
{
        MigFindings f = {};
        int r;

        r = check_domain_state(in, &f);
        if (r >= 0)
                r = check_snapshots(in, &f);
        if (r >= 0)
                r = check_destination(in, &f);
        if (r >= 0)
                r = check_dest_name(in, &f);
        if (r >= 0 && in->dest && in->source)
                r = check_cpu(in, &f);
        if (r >= 0)
                r = check_memory(in, &f);
        if (r >= 0)
                r = check_devices(in, &f);
        if (r >= 0)
                r = check_disks(in, &f);
        if (r >= 0 && in->dest)
                r = check_numa(in, &f);
        if (r >= 0 && in->cold)
                r = cold_downgrade(in, &f);
        if (r < 0) {
                mig_findings_done(&f);
                return r;
        }
        *ret = f;
        return 0;
}
