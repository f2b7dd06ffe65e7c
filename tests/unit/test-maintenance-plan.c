/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/maintenance-plan.c: what maintenance would do to a domain and why; the strategy from
 * the domain's metadata and [maintenance] strategy. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "maintenance-plan.h"
#include "test-helpers.h"

#define GIB (UINT64_C(1) << 30)
#define MIB (UINT64_C(1) << 20)

static MigFindings none, passthrough, warned;

static int setup(void **state)
{
        assert_int_equal(mig_findings_add(&passthrough, MIG_ERROR, "pci-passthrough",
                                          "Host device 0000:03:00.0 is passed through"),
                         0);
        assert_int_equal(mig_findings_add(&warned, MIG_WARNING, "destination-unknown",
                                          "node3 has not been seen alive yet"),
                         0);
        return 0;
}

static int teardown(void **state)
{
        mig_findings_done(&passthrough);
        mig_findings_done(&warned);
        return 0;
}

static PlacementCandidate peer(const char *name, const MigFindings *f, uint64_t free_bytes)
{
        return (PlacementCandidate){
                .name = name, .findings = f, .free_bytes = free_bytes, .need_bytes = 512 * MIB
        };
}

/* The decision for an active guest with strategy s on these candidates, as the daemon makes
 * it: placement_choose() over them, with reservations of its own. */
static MaintenanceAction decide(MaintenanceStrategy s, bool own, const PlacementCandidate *c,
                                size_t n, char *reason, size_t size)
{
        Reservations *r = NULL;
        Placement p;
        MaintenanceFacts f = {
                .name = "web1",
                .active = true,
                .state_word = "running",
                .strategy = s,
                .strategy_own = own,
                .candidates = c,
                .n_candidates = n,
                .placement = &p,
        };
        MaintenanceAction a;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, c, n, false, &p);
        a = maintenance_decide(&f, reason, size);
        reservations_free(r);
        return a;
}

static void test_not_running_stays(void **state)
{
        MaintenanceFacts f = { .name = "db1", .active = false, .state_word = "shut off" };
        char reason[512];

        assert_int_equal(maintenance_decide(&f, reason, sizeof(reason)), MAINTENANCE_ACTION_NONE);
        assert_string_equal(reason, "not running (shut off): stays defined here");
        assert_false(maintenance_needs_destination(false, MAINTENANCE_MIGRATE, false));
}

static void test_migrate_names_the_destination_and_why(void **state)
{
        PlacementCandidate c[3] = { peer("node2", &none, 2 * GIB), peer("node3", &warned, 6 * GIB),
                                    peer("node4", &passthrough, 8 * GIB) };
        char reason[2048];

        assert_true(maintenance_needs_destination(true, MAINTENANCE_MIGRATE, false));
        assert_int_equal(decide(MAINTENANCE_MIGRATE, false, c, 3, reason, sizeof(reason)),
                         MAINTENANCE_ACTION_MIGRATE);
        assert_string_equal(reason,
                            "live migration to node3, the peer with the most free memory of those "
                            "that pass CheckMigration (6.0 GiB free, the guest needs 512 MiB); "
                            "warning: node3 has not been seen alive yet (destination-unknown); "
                            "not node4: Host device 0000:03:00.0 is passed through "
                            "(pci-passthrough)");
        /* one peer */
        assert_int_equal(
                decide(MAINTENANCE_MIGRATE_OR_SHUTDOWN, true, c, 1, reason, sizeof(reason)),
                MAINTENANCE_ACTION_MIGRATE);
        assert_string_equal(reason, "live migration to node2, the only peer, which passes "
                                    "CheckMigration (2.0 GiB free, the guest needs 512 MiB)");
}

static void test_no_destination_blocks_or_shuts_down_by_strategy(void **state)
{
        PlacementCandidate c[1] = { peer("node2", &passthrough, 8 * GIB) };
        char reason[2048];

        assert_int_equal(decide(MAINTENANCE_MIGRATE, false, c, 1, reason, sizeof(reason)),
                         MAINTENANCE_ACTION_BLOCKED);
        assert_string_equal(reason,
                            "no node can take it: node2: Host device 0000:03:00.0 is passed "
                            "through (pci-passthrough) (strategy migrate ([maintenance] strategy): "
                            "it stays running here; migrate-or-shutdown would shut it down)");
        assert_int_equal(
                decide(MAINTENANCE_MIGRATE_OR_SHUTDOWN, true, c, 1, reason, sizeof(reason)),
                MAINTENANCE_ACTION_SHUTDOWN);
        assert_string_equal(reason, "no node can take it, so shut down here by its strategy "
                                    "migrate-or-shutdown (its metadata): node2: Host device "
                                    "0000:03:00.0 is passed through (pci-passthrough)");
        /* no peer at all */
        assert_int_equal(decide(MAINTENANCE_MIGRATE, false, c, 0, reason, sizeof(reason)),
                         MAINTENANCE_ACTION_BLOCKED);
        assert_true(test_contains(reason, "no node can take it: no [peer] is configured"));
}

static void test_room_taken_by_the_guests_planned_before(void **state)
{
        /* 1 GiB free on the only peer: the first 512 MiB guest fits, the third does not */
        PlacementCandidate c = peer("node2", &none, GIB);
        MaintenanceFacts f = { .name = "g", .active = true, .candidates = &c, .n_candidates = 1 };
        Reservations *r = NULL;
        char reason[2048];
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        for (int i = 0; i < 2; i++) {
                placement_choose(r, &c, 1, false, &p);
                f.placement = &p;
                assert_int_equal(maintenance_decide(&f, reason, sizeof(reason)),
                                 MAINTENANCE_ACTION_MIGRATE);
        }
        placement_choose(r, &c, 1, false, &p);
        assert_int_equal(maintenance_decide(&f, reason, sizeof(reason)),
                         MAINTENANCE_ACTION_BLOCKED);
        assert_true(test_contains(reason, "no node can take it: node2: 0 MiB free once the "
                                          "migrations on their way there are counted, the "
                                          "domain needs 512 MiB"));
        reservations_free(r);
}

static void test_shutdown_strategy_needs_no_destination(void **state)
{
        MaintenanceFacts f = { .name = "batch1",
                               .active = true,
                               .strategy = MAINTENANCE_SHUTDOWN,
                               .strategy_own = true };
        char reason[512];

        assert_false(maintenance_needs_destination(true, MAINTENANCE_SHUTDOWN, false));
        assert_int_equal(maintenance_decide(&f, reason, sizeof(reason)),
                         MAINTENANCE_ACTION_SHUTDOWN);
        assert_string_equal(reason,
                            "strategy shutdown (its metadata): shut down here, stays defined here");
        f.strategy_own = false;
        assert_int_equal(maintenance_decide(&f, reason, sizeof(reason)),
                         MAINTENANCE_ACTION_SHUTDOWN);
        assert_true(test_contains(reason, "strategy shutdown ([maintenance] strategy)"));
}

static void test_being_migrated_is_left_to_its_migration(void **state)
{
        MaintenanceFacts f = {
                .name = "web1", .active = true, .migrating_id = "m-42", .migrating_dest = "node2"
        };
        char reason[512];

        assert_false(maintenance_needs_destination(true, MAINTENANCE_MIGRATE, true));
        assert_int_equal(maintenance_decide(&f, reason, sizeof(reason)),
                         MAINTENANCE_ACTION_MIGRATE);
        assert_true(test_contains(reason, "being migrated already to node2 by migration m-42"));
}

static void test_gone_while_planning(void **state)
{
        Placement p = { .chosen = -1, .error = -ENOENT };
        MaintenanceFacts f = { .name = "web1", .active = true, .placement = &p };
        char reason[512];

        assert_int_equal(maintenance_decide(&f, reason, sizeof(reason)), MAINTENANCE_ACTION_NONE);
        assert_true(test_contains(reason, "gone from this node"));
}

#define DOM(meta)                                                                            \
        "<domain type='kvm'><name>g</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>" \
        "<memory>1024</memory><metadata>" meta "</metadata></domain>"

static MaintenanceStrategy strategy_of(const char *xml, MaintenanceStrategy def, bool *own,
                                       bool *bad)
{
        DomXml *d = NULL;
        MaintenanceStrategy s;

        assert_int_equal(domxml_parse(xml, strlen(xml), &d, NULL), 0);
        s = maintenance_strategy_of(d, def, own, bad);
        domxml_free(d);
        return s;
}

#define GUEST(attrs) "<hostwarden:guest xmlns:hostwarden='" HW_DOMAIN_XMLNS "' " attrs "/>"

static void test_strategy_from_metadata_or_default(void **state)
{
        static const struct {
                const char *xml;
                MaintenanceStrategy def, expected;
                bool own, bad;
        } cases[] = {
                { DOM(GUEST("ha='off' maintenance='shutdown'")), MAINTENANCE_MIGRATE,
                  MAINTENANCE_SHUTDOWN, true, false },
                /* the element in the default namespace, as virDomainSetMetadata() may leave it */
                { DOM("<guest xmlns='" HW_DOMAIN_XMLNS "' maintenance='migrate-or-shutdown'/>"),
                  MAINTENANCE_MIGRATE, MAINTENANCE_MIGRATE_OR_SHUTDOWN, true, false },
                /* none: the default */
                { DOM(GUEST("ha='restart'")), MAINTENANCE_MIGRATE_OR_SHUTDOWN,
                  MAINTENANCE_MIGRATE_OR_SHUTDOWN, false, false },
                /* not a strategy: the default, and said so */
                { DOM(GUEST("maintenance='evacuate'")), MAINTENANCE_MIGRATE, MAINTENANCE_MIGRATE,
                  false, true },
                /* another namespace's attribute of that name is not ours */
                { DOM("<x:guest xmlns:x='https://example.com/ns' maintenance='shutdown'/>"),
                  MAINTENANCE_MIGRATE, MAINTENANCE_MIGRATE, false, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool own, bad;

                assert_int_equal(strategy_of(cases[i].xml, cases[i].def, &own, &bad),
                                 cases[i].expected);
                assert_int_equal(own, cases[i].own);
                assert_int_equal(bad, cases[i].bad);
        }
}

static void test_bad_strategy_is_named(void **state)
{
        MaintenanceFacts f = { .name = "web1",
                               .active = true,
                               .strategy = MAINTENANCE_SHUTDOWN,
                               .bad_strategy = "evacuate" };
        char reason[512];

        assert_int_equal(maintenance_decide(&f, reason, sizeof(reason)),
                         MAINTENANCE_ACTION_SHUTDOWN);
        assert_true(test_contains(reason, "its metadata's maintenance=\"evacuate\" is not"));
}

static void test_config_key(void **state)
{
        ConfigDiags d = { 0 };
        Config *c = NULL;
        char buf[1024];

        assert_int_equal(config_new(&c), 0);
        assert_int_equal(c->maintenance.strategy, MAINTENANCE_MIGRATE);
        assert_int_equal(config_parse_text(c, "/etc/hostwarden/hostwarden.conf",
                                           "[maintenance]\nstrategy = migrate-or-shutdown\n", &d),
                         0);
        assert_int_equal(d.n, 0);
        assert_int_equal(c->maintenance.strategy, MAINTENANCE_MIGRATE_OR_SHUTDOWN);
        assert_int_equal(config_parse_text(c, "/etc/hostwarden/hostwarden.conf.d/50-m.conf",
                                           "\n[maintenance]\nstrategy = evacuate\n", &d),
                         0);
        assert_int_equal(d.n_errors, 1);
        config_diag_format(&d.items[0], buf, sizeof(buf));
        assert_true(test_contains(buf, "hostwarden.conf.d/50-m.conf:3"));
        assert_true(test_contains(buf, "[maintenance] strategy"));
        assert_true(test_contains(buf, "migrate, migrate-or-shutdown or shutdown"));
        /* the value before stays */
        assert_int_equal(c->maintenance.strategy, MAINTENANCE_MIGRATE_OR_SHUTDOWN);
        assert_string_equal(maintenance_strategy_to_string(MAINTENANCE_SHUTDOWN), "shutdown");
        assert_int_equal(maintenance_strategy_from_string("migrate"), MAINTENANCE_MIGRATE);
        assert_string_equal(maintenance_action_to_string(MAINTENANCE_ACTION_BLOCKED), "blocked");
        config_diags_clear(&d);
        config_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_not_running_stays),
                cmocka_unit_test(test_migrate_names_the_destination_and_why),
                cmocka_unit_test(test_no_destination_blocks_or_shuts_down_by_strategy),
                cmocka_unit_test(test_room_taken_by_the_guests_planned_before),
                cmocka_unit_test(test_shutdown_strategy_needs_no_destination),
                cmocka_unit_test(test_being_migrated_is_left_to_its_migration),
                cmocka_unit_test(test_gone_while_planning),
                cmocka_unit_test(test_strategy_from_metadata_or_default),
                cmocka_unit_test(test_bad_strategy_is_named),
                cmocka_unit_test(test_config_key),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
