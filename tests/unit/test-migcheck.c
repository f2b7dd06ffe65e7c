/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CheckMigration's rules (lib/migcheck.c) on real domain XML and capabilities fixtures. */
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include "caps.h"
#include "diskinfo.h"
#include "domxml.h"
#include "migcheck.h"
#include "test-helpers.h"
#include "util.h"

#define GIB (1024ULL * 1024 * 1024)

/* disk order of nova-instance.xml: vda (qcow2 file), sda (config drive cdrom), vdb (rbd
 * volume), sdb (empty cdrom) */
#define N_NOVA_DISKS 4

typedef struct Fixture {
        DomXml *dom;
        HostCaps *src, *dst;
        MigDiskInfo disks[8];
        MigCheckInput in;
        MigFindings f;
} Fixture;

static DomXml *load_domain(const char *name)
{
        _cleanup_free_ char *xml = NULL;
        _cleanup_free_ char *error = NULL;
        DomXml *d = NULL;
        size_t size;

        xml = test_read_data(name, &size);
        assert_int_equal(domxml_parse(xml, size, &d, &error), 0);
        return d;
}

static HostCaps *load_caps(const char *name)
{
        _cleanup_free_ char *xml = NULL;
        HostCaps *c = NULL;
        size_t size;

        xml = test_read_data(name, &size);
        assert_int_equal(host_caps_parse(xml, size, &c), 0);
        return c;
}

/* A migration that should pass: instances on shared storage, no block, same CPU, plenty of
 * memory, destination up. */
static void setup(Fixture *x, const char *domain, const char *dst_caps)
{
        *x = (Fixture){};
        x->dom = load_domain(domain);
        x->src = load_caps("migcheck/caps-x86_64-amd.xml");
        x->dst = load_caps(dst_caps ? dst_caps : "migcheck/caps-x86_64-amd.xml");
        assert_true(x->dom->n_disks <= ELEMENTSOF(x->disks));
        for (size_t i = 0; i < x->dom->n_disks; i++) {
                const DomDisk *d = &x->dom->disks[i];

                x->disks[i] = (MigDiskInfo){ .storage = DISK_SHARED,
                                             .where = "nfs4",
                                             .libvirt_shared = true };
                if (!d->source)
                        x->disks[i].storage = DISK_EMPTY;
                else if (streq(d->type, "network") || streq(d->type, "block"))
                        x->disks[i].storage = DISK_VOLUME;
                else if (strstr(d->source, "disk.config") && streq(d->device, "cdrom"))
                        x->disks[i].iso9660 = true;
        }
        x->in = (MigCheckInput){
                .domain = x->dom,
                .disks = x->disks,
                .source = x->src,
                .dest = x->dst,
                .source_name = "node1",
                .dest_name = "node2",
                .dest_state = "up",
                .dest_fence = "unknown",
                .dest_free_bytes = 64 * GIB,
                .cpu_compare = MIG_CPU_IDENTICAL,
        };
}

static void teardown(Fixture *x)
{
        mig_findings_done(&x->f);
        domxml_free(x->dom);
        host_caps_free(x->src);
        host_caps_free(x->dst);
}

static void run(Fixture *x)
{
        mig_findings_done(&x->f);
        assert_int_equal(mig_check(&x->in, &x->f), 0);
        for (size_t i = 0; i < x->f.n; i++)
                print_message("  %s %s: %s\n", mig_severity_to_string(x->f.items[i].severity),
                              x->f.items[i].code, x->f.items[i].message);
}

/* Exactly one finding, with this severity and code, whose message contains every needle. */
static void expect_one(Fixture *x, MigSeverity severity, const char *code, const char *needle1,
                       const char *needle2)
{
        run(x);
        assert_int_equal(x->f.n, 1);
        assert_int_equal(x->f.items[0].severity, severity);
        assert_string_equal(x->f.items[0].code, code);
        if (needle1)
                assert_true(test_contains(x->f.items[0].message, needle1));
        if (needle2)
                assert_true(test_contains(x->f.items[0].message, needle2));
}

static void expect_none(Fixture *x)
{
        run(x);
        assert_int_equal(x->f.n, 0);
}

/* ---- parsing ------------------------------------------------------------------------- */

static void test_caps_of_a_real_node(void **state)
{
        _cleanup_(host_caps_freep) HostCaps *c = load_caps("migcheck/caps-x86_64-amd.xml");
        _cleanup_(host_caps_freep) HostCaps *n = load_caps("migcheck/caps-x86_64-intel-2numa.xml");
        _cleanup_(host_caps_freep) HostCaps *bad = NULL;
        size_t k;

        assert_string_equal(c->arch, "x86_64");
        assert_string_equal(c->cpu_model, "kvm64");
        assert_string_equal(c->cpu_vendor, "AMD");
        assert_int_equal(c->n_cpus, 2);
        assert_int_equal(c->n_cells, 1);
        for (k = 1; c->features[k]; k++)
                assert_true(strcmp(c->features[k - 1], c->features[k]) < 0); /* sorted */
        assert_true(k > 50);
        assert_true(host_caps_cpu_identical(c, c));
        assert_false(host_caps_cpu_identical(c, n));

        assert_int_equal(n->n_cpus, 8);
        assert_int_equal(n->cpus[7], 7);
        assert_int_equal(n->n_cells, 2);
        assert_int_equal(n->cells[1], 1);

        assert_int_equal(host_caps_parse("<capabilities><host/></capabilities>", 36, &bad),
                         -EBADMSG);
        assert_int_equal(host_caps_parse("<capabilities", 13, &bad), -EINVAL);
        assert_int_equal(host_caps_parse("<domain/>", 9, &bad), -EBADMSG);
}

static void test_cpuset_syntax(void **state)
{
        static const struct {
                const char *in;
                const char *ids; /* "0,1,3,8" or NULL for -EINVAL */
        } cases[] = {
                { "0-3,^2,8", "0,1,3,8" },
                { "7", "7" },
                { "1, 3", "1,3" },
                { "5-5", "5" },
                { "", NULL },
                { "3-1", NULL },
                { "a", NULL },
                { "1,", NULL },
                { "-1", NULL },
                { "1-", NULL },
                { "99999", NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ unsigned *ids = NULL;
                char buf[64] = "";
                size_t n = 0;
                int r = cpuset_parse(cases[i].in, 1023, &ids, &n);

                if (!cases[i].ids) {
                        assert_int_equal(r, -EINVAL);
                        continue;
                }
                assert_int_equal(r, 0);
                for (size_t j = 0; j < n; j++)
                        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%u", j ? "," : "",
                                 ids[j]);
                assert_string_equal(buf, cases[i].ids);
        }
}

static void test_domain_model_for_migration(void **state)
{
        _cleanup_(domxml_freep) DomXml *d = load_domain("migcheck/nova-pinned.xml");
        _cleanup_(domxml_freep) DomXml *p = load_domain("migcheck/nova-pci.xml");

        assert_string_equal(d->arch, "x86_64");
        assert_string_equal(d->cpu_mode, "host-model");
        assert_null(d->cpu_model);
        assert_int_equal(d->current_memory_kib, 2097152);
        assert_int_equal(d->n_pins, 3);
        assert_string_equal(d->pins[1].what, "vcpu 1");
        assert_string_equal(d->pins[1].cpuset, "7");
        assert_string_equal(d->pins[2].what, "emulator");
        assert_string_equal(d->numa_nodeset, "1");
        assert_string_equal(d->numa_memnodes[0], "1");
        assert_int_equal(d->n_disks, N_NOVA_DISKS);

        assert_int_equal(p->n_hostdevs, 2);
        assert_string_equal(p->hostdevs[0].type, "pci");
        assert_string_equal(p->hostdevs[0].device, "0000:03:00.1");
        assert_string_equal(p->hostdevs[1].type, "usb");
        assert_null(p->hostdevs[1].device);
}

/* ---- rules --------------------------------------------------------------------------- */

static void test_a_plain_nova_instance_on_shared_storage_passes(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", NULL);
        expect_none(&x);
        /* also to a bigger, different Intel node the CPU comparison said is a superset */
        teardown(&x);
        setup(&x, "migcheck/nova-instance.xml", "migcheck/caps-x86_64-intel-2numa.xml");
        x.in.cpu_compare = MIG_CPU_SUPERSET;
        expect_none(&x);
        teardown(&x);
}

static void test_destination_state(void **state)
{
        static const struct {
                const char *dest, *state, *fence;
                MigSeverity severity;
                const char *code, *needle;
        } cases[] = {
                { "node1", "up", "unknown", MIG_ERROR, "destination-self", "is this node" },
                { "node2", "up", "off", MIG_ERROR, "destination-fenced", "fenced" },
                { "node2", "forced-down", "unknown", MIG_ERROR, "destination-down", "forced down" },
                { "node2", "down", "unknown", MIG_ERROR, "destination-down", "heartbeat stopped" },
                { "node2", "disabled", "on", MIG_ERROR, "destination-disabled",
                  "hostwardenctl enable" },
                { "node2", "unknown", "unknown", MIG_WARNING, "destination-unknown",
                  "not been seen alive" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Fixture x;

                setup(&x, "migcheck/nova-instance.xml", NULL);
                x.in.dest_name = cases[i].dest;
                x.in.dest_state = cases[i].state;
                x.in.dest_fence = cases[i].fence;
                expect_one(&x, cases[i].severity, cases[i].code, cases[i].needle, cases[i].dest);
                teardown(&x);
        }
}

static void test_only_an_active_domain_migrates_live(void **state)
{
        static const struct {
                MigDomainState state;
                const char *word, *code, *needle1, *needle2;
        } cases[] = {
                { MIG_DOMAIN_SHUTOFF, "shutoff", "domain-shutoff", "start it",
                  "hostwardenctl migrate --cold" },
                { MIG_DOMAIN_MANAGED_SAVE, "shutoff", "domain-managed-save",
                  "managed save image on node1", "managedsave-remove" },
                { MIG_DOMAIN_OTHER, "crashed", "domain-not-running", "is crashed",
                  "running or paused" },
        };
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.domain_state = MIG_DOMAIN_ACTIVE; /* running or paused */
        expect_none(&x);
        teardown(&x);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                setup(&x, "migcheck/nova-instance.xml", NULL);
                x.in.domain_state = cases[i].state;
                x.in.domain_state_word = cases[i].word;
                expect_one(&x, MIG_ERROR, cases[i].code, cases[i].needle1, cases[i].needle2);
                assert_true(test_contains(x.f.items[0].message, x.dom->name));
                teardown(&x);
        }
        /* it adds to what else stands in the way, first */
        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.domain_state = MIG_DOMAIN_SHUTOFF;
        x.in.dest_state = "disabled";
        run(&x);
        assert_int_equal(x.f.n, 2);
        assert_string_equal(x.f.items[0].code, "domain-shutoff");
        assert_string_equal(x.f.items[1].code, "destination-disabled");
        teardown(&x);
}

/* libvirt refuses post-copy for a paused domain: asked for, it is an error; by default
 * (permit_post_copy) Migrate leaves it off and there is nothing to say */
static void test_post_copy_of_a_paused_domain(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.paused = true;
        expect_none(&x);
        teardown(&x);
        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.post_copy_asked = true; /* running: fine */
        expect_none(&x);
        teardown(&x);
        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.paused = true;
        x.in.post_copy_asked = true;
        expect_one(&x, MIG_ERROR, "post-copy-paused", "is paused", "leave option post-copy out");
        teardown(&x);
}

static void test_snapshots_keep_a_domain_here(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.snapshots = 2;
        expect_one(&x, MIG_ERROR, "snapshots", "2 snapshot(s) in libvirt on node1",
                   "snapshot-delete");
        teardown(&x);
}

static void test_a_destination_with_another_domain_of_that_name(void **state)
{
        const char *other = "0b6f0e3c-2a67-4f3e-9d1b-4f1c2b6a7e55";
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.dest_same_name_uuid = other;
        expect_one(&x, MIG_ERROR, "destination-name-taken", other, "pick another node");
        assert_true(test_contains(x.f.items[0].message, x.dom->name));
        assert_true(test_contains(x.f.items[0].message, x.dom->uuid));
        x.in.dest_same_name_uuid = NULL; /* none, or not known */
        expect_none(&x);
        teardown(&x);
}

static void test_cpu_architecture_must_match(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", "migcheck/caps-aarch64.xml");
        x.in.cpu_compare = MIG_CPU_NOT_COMPARED;
        expect_one(&x, MIG_ERROR, "cpu-arch", "x86_64", "aarch64");
        teardown(&x);
}

static void test_host_passthrough_needs_an_identical_cpu(void **state)
{
        Fixture x;
        size_t n;

        setup(&x, "migcheck/nova-passthrough.xml", NULL);
        expect_none(&x); /* same CPU */
        /* one feature fewer on the destination is enough to refuse */
        for (n = 0; x.dst->features[n]; n++)
                ;
        free(x.dst->features[n - 1]);
        x.dst->features[n - 1] = NULL;
        expect_one(&x, MIG_ERROR, "cpu-passthrough", "host-passthrough", "must be identical");
        teardown(&x);

        setup(&x, "migcheck/nova-passthrough.xml", "migcheck/caps-x86_64-intel-2numa.xml");
        expect_one(&x, MIG_ERROR, "cpu-passthrough", "Intel Skylake-Server-IBRS", "AMD kvm64");
        teardown(&x);
}

static void test_destination_cpu_must_be_compatible(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", "migcheck/caps-x86_64-intel-2numa.xml");
        x.in.cpu_compare = MIG_CPU_INCOMPATIBLE;
        expect_one(&x, MIG_ERROR, "cpu-model", "cannot provide", "host-model");
        x.in.cpu_compare = MIG_CPU_COMPARE_FAILED;
        x.in.cpu_compare_error = "unsupported configuration: unknown CPU vendor";
        expect_one(&x, MIG_WARNING, "cpu-model", "unknown CPU vendor", NULL);
        teardown(&x);
}

static void test_destination_needs_free_memory(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.dest_free_bytes = 2 * GIB; /* exactly enough */
        expect_none(&x);
        x.in.dest_free_bytes = 2 * GIB - 1;
        expect_one(&x, MIG_ERROR, "memory", "needs 2048 MiB", "has 2047 MiB free");
        x.in.dest_free_bytes = UINT64_MAX; /* not known: not a finding here */
        expect_none(&x);
        teardown(&x);
}

static void test_pci_passthrough_means_cold_migration(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-pci.xml", NULL);
        run(&x);
        assert_int_equal(x.f.n, 2);
        assert_string_equal(x.f.items[0].code, "pci-passthrough");
        assert_int_equal(x.f.items[0].severity, MIG_ERROR);
        assert_true(test_contains(x.f.items[0].message, "0000:03:00.1"));
        assert_true(test_contains(x.f.items[0].message, "cold migration"));
        assert_string_equal(x.f.items[1].code, "hostdev");
        assert_true(test_contains(x.f.items[1].message, "usb"));
        teardown(&x);
}

static void test_sriov_direct_port_warns_of_network_downtime(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-sriov.xml", NULL);
        expect_one(&x, MIG_WARNING, "sriov-direct", "fa:16:3e:77:88:99", "network");
        teardown(&x);
}

static void test_block_migration_and_read_only_drives(void **state)
{
        Fixture x;

        /* local instance directory, block migration: the iso9660 config drive stops it */
        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.disks[0].storage = x.disks[1].storage = DISK_LOCAL;
        x.disks[0].where = x.disks[1].where = "ext4";
        x.in.block = true;
        expect_one(&x, MIG_ERROR, "config-drive-iso9660", "sda", "config_drive_format=vfat");

        /* a read-only drive that is not a config drive */
        x.disks[1].iso9660 = false;
        expect_one(&x, MIG_ERROR, "readonly-drive", "sda", "--eject");

        /* without block migration those local disks are the problem instead */
        x.in.block = false;
        run(&x);
        assert_int_equal(x.f.n, 2);
        assert_string_equal(x.f.items[0].code, "local-disk");
        assert_true(test_contains(x.f.items[0].message, "vda"));
        assert_true(test_contains(x.f.items[0].message, "--block"));
        assert_string_equal(x.f.items[1].code, "local-disk");
        teardown(&x);

        /* a vfat config drive is an ordinary read-write disk: block migration copies it */
        setup(&x, "migcheck/nova-vfat-config.xml", NULL);
        x.disks[0].storage = x.disks[1].storage = DISK_LOCAL;
        x.in.block = true;
        expect_none(&x);
        /* the empty CD-ROM tray and the rbd volume never matter, and are not copied */
        assert_int_equal(x.disks[2].storage, DISK_VOLUME);
        assert_false(mig_disk_is_copied(&x.dom->disks[2], &x.disks[2]));
        assert_int_equal(x.disks[3].storage, DISK_EMPTY);
        assert_false(mig_disk_is_copied(&x.dom->disks[3], &x.disks[3]));
        assert_true(mig_disk_is_copied(&x.dom->disks[0], &x.disks[0]));
        teardown(&x);
}

static void test_shared_disk_on_a_local_base(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-vfat-config.xml", NULL);
        snprintf(x.disks[0].local_backing, sizeof(x.disks[0].local_backing), "%s",
                 "/var/lib/glance/_base/abc");
        expect_one(&x, MIG_ERROR, "local-backing-file", "/var/lib/glance/_base/abc", "vda");
        /* block migration of a shared disk is refused for that reason first */
        x.in.block = true;
        run(&x);
        for (size_t i = 0; i < x.f.n; i++)
                assert_string_not_equal(x.f.items[i].code, "local-backing-file");
        teardown(&x);
}

static void test_shared_storage_libvirt_does_not_know(void **state)
{
        Fixture x;

        /* a shared directory on ext4 (a bind mount, a cluster file system libvirt does not
         * list) that hostwarden knows by its storage mark: libvirt refuses the writable
         * disks, whatever their cache mode */
        setup(&x, "migcheck/nova-vfat-config.xml", NULL);
        x.disks[0].libvirt_shared = false;
        x.disks[0].where = "the store's file system";
        expect_one(&x, MIG_ERROR, "unsafe-storage", "vda", "NFS, GlusterFS");
        /* read-only, it does not matter to libvirt */
        x.dom->disks[0].readonly = true;
        expect_none(&x);
        teardown(&x);
}

static void test_shared_disks_with_block_migration(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-vfat-config.xml", NULL);
        x.in.block = true;
        run(&x);
        assert_int_equal(x.f.n, 2); /* vda and the vfat config drive, both on nfs4 */
        assert_string_equal(x.f.items[0].code, "shared-disk-block");
        assert_true(test_contains(x.f.items[0].message, "shared storage (nfs4)"));
        assert_true(test_contains(x.f.items[0].message, "without block"));
        teardown(&x);
}

static void test_pinning_and_numa_the_destination_cannot_satisfy(void **state)
{
        Fixture x;

        /* CPUs 6-7 and NUMA node 1 do not exist on a 2-CPU, 1-node host */
        setup(&x, "migcheck/nova-pinned.xml", NULL);
        run(&x);
        assert_int_equal(x.f.n, 4); /* vcpu 0, vcpu 1, emulator; memory nodeset (memnode
                                       has the same nodeset: one finding each) */
        assert_string_equal(x.f.items[0].code, "cpu-pinning");
        assert_true(test_contains(x.f.items[0].message, "vcpu 0 to host CPU(s) 6"));
        assert_true(test_contains(x.f.items[0].message, "it has CPUs 0-1"));
        assert_true(test_contains(x.f.items[2].message, "emulator to host CPU(s) 6-7"));
        assert_string_equal(x.f.items[3].code, "numa");
        assert_true(test_contains(x.f.items[3].message, "NUMA node(s) 1"));
        teardown(&x);

        /* a two-node host with CPUs 0-7 has them */
        setup(&x, "migcheck/nova-pinned.xml", "migcheck/caps-x86_64-intel-2numa.xml");
        expect_none(&x);
        teardown(&x);
}

static void test_unknown_destination_caps_skip_only_what_needs_them(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-pinned.xml", NULL);
        x.in.dest = NULL; /* the destination's libvirt could not be asked */
        x.in.dest_free_bytes = 1 * GIB;
        expect_one(&x, MIG_ERROR, "memory", "needs 2048 MiB", NULL);
        teardown(&x);
}

static void test_disk_classification(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        char path[4096], iso[4096], where[128];
        char image[0x8010] = { 0 };
        MigDiskInfo info;
        struct stat st;
        SharedFs shared;
        DomDisk d = { .type = "file", .device = "disk", .source = path };

        snprintf(path, sizeof(path), "%s/disk", dir);
        snprintf(iso, sizeof(iso), "%s/disk.config", dir);
        test_write(dir, "disk", "QFI\xfb");
        memcpy(image + 0x8001, "CD001", 5);
        {
                FILE *f = fopen(iso, "we");
                assert_non_null(f);
                assert_int_equal(fwrite(image, 1, sizeof(image), f), sizeof(image));
                assert_int_equal(fclose(f), 0);
        }
        assert_int_equal(stat(dir, &st), 0);
        shared = (SharedFs){ st.st_dev, "the file system of the shared state directory" };

        /* a file on a local file system: local, named by its type */
        disk_classify(&d, NULL, 0, &info, where, sizeof(where));
        assert_int_equal(info.storage, DISK_LOCAL);
        assert_false(info.iso9660);
        assert_string_not_equal(where, "");
        /* on the file system of the shared state directory: shared */
        disk_classify(&d, &shared, 1, &info, where, sizeof(where));
        assert_int_equal(info.storage, DISK_SHARED);
        assert_true(test_contains(info.where, "shared state directory"));
        /* an ISO 9660 image is recognised by its volume descriptor */
        d.source = iso;
        d.device = "cdrom";
        disk_classify(&d, NULL, 0, &info, where, sizeof(where));
        assert_true(info.iso9660);
        /* a file that is not there: local (the peer cannot see it either), saying so */
        d.source = "/nonexistent/disk";
        disk_classify(&d, &shared, 1, &info, where, sizeof(where));
        assert_int_equal(info.storage, DISK_LOCAL);
        assert_true(test_contains(info.where, "cannot be read"));
        /* no medium */
        d.source = NULL;
        disk_classify(&d, NULL, 0, &info, where, sizeof(where));
        assert_int_equal(info.storage, DISK_EMPTY);
        /* volumes */
        d = (DomDisk){ .type = "network", .device = "disk", .source = "volumes/volume-1" };
        disk_classify(&d, NULL, 0, &info, where, sizeof(where));
        assert_int_equal(info.storage, DISK_VOLUME);
        d = (DomDisk){ .type = "block",
                       .device = "disk",
                       .source = "/dev/disk/by-path/ip-192.0.2.9:3260-iscsi-iqn.2010-10.org."
                                 "openstack:volume-1-lun-1" };
        disk_classify(&d, NULL, 0, &info, where, sizeof(where));
        assert_int_equal(info.storage, DISK_VOLUME);
        /* an LVM volume of this node (Nova images_type=lvm) is local */
        d.source = "/dev/nova-vg/6c1a4d5e_disk";
        disk_classify(&d, NULL, 0, &info, where, sizeof(where));
        assert_int_equal(info.storage, DISK_LOCAL);
        test_rm_rf(dir);
}

/* A storage mark proves a shared instances_path only while it is the one the node recorded. */
static void test_storage_marks(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_free_ char *mark = NULL, *again = NULL;
        char path[4096];

        assert_int_equal(storage_mark_write(dir, "node2", &mark), 0);
        assert_int_equal(strlen(mark), STORAGE_MARK_LEN);
        assert_int_equal(strspn(mark, "0123456789abcdef"), STORAGE_MARK_LEN);
        assert_int_equal(storage_mark_check(dir, "node2", mark), 1);
        /* another node's file, no file, no mark recorded */
        assert_int_equal(storage_mark_check(dir, "node3", mark), 0);
        assert_int_equal(storage_mark_check(dir, "node2", NULL), 0);
        /* a restart writes a new mark: the old one (a copied directory holds it) no longer counts
         */
        assert_int_equal(storage_mark_write(dir, "node2", &again), 0);
        assert_string_not_equal(mark, again);
        assert_int_equal(storage_mark_check(dir, "node2", mark), 0);
        assert_int_equal(storage_mark_check(dir, "node2", again), 1);
        /* a file changed by hand */
        snprintf(path, sizeof(path), "%s/" STORAGE_MARK_DIR, dir);
        test_write(path, "node2", "0123456789abcdef0123456789abcdef\n");
        assert_int_equal(storage_mark_check(dir, "node2", again), 0);
        /* names that are not one file in the directory */
        assert_int_equal(storage_mark_check(dir, "../node2", again), -EINVAL);
        assert_int_equal(storage_mark_write(dir, ".", &mark), -EINVAL);
        assert_int_equal(storage_mark_check("", "node2", again), -EINVAL);
        test_rm_rf(dir);
}

/* ---- cold migration (MigrateCold) ------------------------------------------------------ */

/* Every finding is a warning, with these codes in this order. */
static void expect_warnings(Fixture *x, const char *const *codes, size_t n)
{
        run(x);
        assert_int_equal(x->f.n, n);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(x->f.items[i].severity, MIG_WARNING);
                assert_string_equal(x->f.items[i].code, codes[i]);
                assert_true(test_contains(x->f.items[i].message, "node2"));
        }
        assert_int_equal(mig_findings_worst(&x->f), n ? MIG_WARNING : MIG_OK);
}

static void test_cold_migration_takes_a_shut_off_or_running_domain(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.cold = true;
        x.in.domain_state = MIG_DOMAIN_SHUTOFF;
        x.in.domain_state_word = "shutoff";
        expect_none(&x);
        x.in.domain_state = MIG_DOMAIN_ACTIVE;
        expect_none(&x);
        /* a paused guest cannot answer ACPI */
        x.in.paused = true;
        expect_one(&x, MIG_ERROR, "domain-paused", "is paused", "virsh resume");
        x.in.paused = false;
        /* the saved memory would stay behind */
        x.in.domain_state = MIG_DOMAIN_MANAGED_SAVE;
        expect_one(&x, MIG_ERROR, "domain-managed-save", "cold migration would leave",
                   "managedsave-remove");
        x.in.domain_state = MIG_DOMAIN_OTHER;
        x.in.domain_state_word = "crashed";
        expect_one(&x, MIG_ERROR, "domain-not-running", "is crashed", "running or shut-off");
        teardown(&x);
}

static void test_cold_migration_copies_local_disks_whatever_they_are(void **state)
{
        Fixture x;

        /* local disks and an iso9660 config drive: errors live (block or not), fine cold */
        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.disks[0].storage = x.disks[1].storage = DISK_LOCAL;
        x.in.cold = true;
        expect_none(&x);
        x.in.block = true; /* not an option of MigrateCold; the mode decides */
        expect_none(&x);
        teardown(&x);

        /* shared disks stay where they are, even where libvirt would call them unsafe live;
         * a backing file only this node has is still an error: nothing copies it */
        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.disks[0].libvirt_shared = false;
        x.in.cold = true;
        expect_none(&x);
        snprintf(x.disks[0].local_backing, sizeof(x.disks[0].local_backing), "%s",
                 "/var/lib/nova/instances/_base/abc");
        expect_one(&x, MIG_ERROR, "local-backing-file", "_base/abc", "node2");
        teardown(&x);
}

static void test_cold_migration_only_warns_of_live_constraints(void **state)
{
        static const char *const pci[] = { "pci-passthrough", "hostdev" };
        static const char *const pinned[] = { "cpu-pinning", "cpu-pinning", "cpu-pinning", "numa" };
        static const char *const sriov[] = { "sriov-direct" };
        static const char *const cpu[] = { "cpu-model" };
        static const char *const passthrough[] = { "cpu-passthrough" };
        Fixture x;

        setup(&x, "migcheck/nova-pci.xml", NULL);
        x.in.cold = true;
        expect_warnings(&x, pci, ELEMENTSOF(pci));
        assert_true(test_contains(x.f.items[0].message, "0000:03:00.1"));
        assert_true(test_contains(x.f.items[0].message, "a warning for a cold migration"));
        teardown(&x);

        setup(&x, "migcheck/nova-pinned.xml", NULL);
        x.in.cold = true;
        expect_warnings(&x, pinned, ELEMENTSOF(pinned));
        assert_true(test_contains(x.f.items[0].message, "check it before Confirm"));
        teardown(&x);

        setup(&x, "migcheck/nova-sriov.xml", NULL);
        x.in.cold = true;
        expect_warnings(&x, sriov, ELEMENTSOF(sriov));
        assert_true(test_contains(x.f.items[0].message, "when it starts there"));
        teardown(&x);

        setup(&x, "migcheck/nova-instance.xml", "migcheck/caps-x86_64-intel-2numa.xml");
        x.in.cold = true;
        x.in.cpu_compare = MIG_CPU_INCOMPATIBLE;
        expect_warnings(&x, cpu, ELEMENTSOF(cpu));
        teardown(&x);

        setup(&x, "migcheck/nova-passthrough.xml", "migcheck/caps-x86_64-intel-2numa.xml");
        x.in.cold = true;
        expect_warnings(&x, passthrough, ELEMENTSOF(passthrough));
        teardown(&x);

        /* the architecture is no live-only constraint */
        setup(&x, "migcheck/nova-instance.xml", "migcheck/caps-aarch64.xml");
        x.in.cold = true;
        run(&x);
        assert_true(x.f.n >= 1);
        assert_string_equal(x.f.items[0].code, "cpu-arch");
        assert_int_equal(x.f.items[0].severity, MIG_ERROR);
        teardown(&x);
}

static void test_cold_migration_of_a_shut_off_guest_only_warns_of_memory(void **state)
{
        Fixture x;

        setup(&x, "migcheck/nova-instance.xml", NULL);
        x.in.cold = true;
        x.in.dest_free_bytes = 1 * GIB;
        expect_one(&x, MIG_ERROR, "memory", "needs 2048 MiB", NULL); /* it is started there */
        x.in.domain_state = MIG_DOMAIN_SHUTOFF;
        expect_one(&x, MIG_WARNING, "memory", "needs 2048 MiB", NULL); /* it stays off */
        teardown(&x);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_caps_of_a_real_node),
                cmocka_unit_test(test_storage_marks),
                cmocka_unit_test(test_cpuset_syntax),
                cmocka_unit_test(test_domain_model_for_migration),
                cmocka_unit_test(test_a_plain_nova_instance_on_shared_storage_passes),
                cmocka_unit_test(test_destination_state),
                cmocka_unit_test(test_only_an_active_domain_migrates_live),
                cmocka_unit_test(test_post_copy_of_a_paused_domain),
                cmocka_unit_test(test_snapshots_keep_a_domain_here),
                cmocka_unit_test(test_a_destination_with_another_domain_of_that_name),
                cmocka_unit_test(test_cpu_architecture_must_match),
                cmocka_unit_test(test_host_passthrough_needs_an_identical_cpu),
                cmocka_unit_test(test_destination_cpu_must_be_compatible),
                cmocka_unit_test(test_destination_needs_free_memory),
                cmocka_unit_test(test_pci_passthrough_means_cold_migration),
                cmocka_unit_test(test_sriov_direct_port_warns_of_network_downtime),
                cmocka_unit_test(test_block_migration_and_read_only_drives),
                cmocka_unit_test(test_shared_disks_with_block_migration),
                cmocka_unit_test(test_shared_disk_on_a_local_base),
                cmocka_unit_test(test_shared_storage_libvirt_does_not_know),
                cmocka_unit_test(test_pinning_and_numa_the_destination_cannot_satisfy),
                cmocka_unit_test(test_unknown_destination_caps_skip_only_what_needs_them),
                cmocka_unit_test(test_disk_classification),
                cmocka_unit_test(test_cold_migration_takes_a_shut_off_or_running_domain),
                cmocka_unit_test(test_cold_migration_copies_local_disks_whatever_they_are),
                cmocka_unit_test(test_cold_migration_only_warns_of_live_constraints),
                cmocka_unit_test(test_cold_migration_of_a_shut_off_guest_only_warns_of_memory),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
