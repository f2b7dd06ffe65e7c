/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/placement.c: the choice of a migration's destination, with the reservations. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"
#include "test-helpers.h"

#define GIB (UINT64_C(1) << 30)

static MigFindings none, refused, warned;

static int setup(void **state)
{
        assert_int_equal(mig_findings_add(&refused, MIG_ERROR, "memory", "Not enough memory"), 0);
        assert_int_equal(mig_findings_add(&refused, MIG_WARNING, "cpu-model", "A warning"), 0);
        assert_int_equal(mig_findings_add(&refused, MIG_ERROR, "numa", "NUMA pinning"), 0);
        assert_int_equal(mig_findings_add(&warned, MIG_WARNING, "cpu-model", "A warning"), 0);
        return 0;
}

static int teardown(void **state)
{
        mig_findings_done(&refused);
        mig_findings_done(&warned);
        return 0;
}

static PlacementCandidate ok(const char *name, uint64_t free_bytes, uint64_t need_bytes)
{
        return (PlacementCandidate){
                .name = name, .findings = &none, .free_bytes = free_bytes, .need_bytes = need_bytes
        };
}

static PlacementCandidate failed(const char *name, bool no_such_domain, const char *message)
{
        return (PlacementCandidate){ .name = name,
                                     .error = no_such_domain ? -ENOENT : -EHOSTDOWN,
                                     .no_such_domain = no_such_domain,
                                     .error_message = message,
                                     .free_bytes = UINT64_MAX };
}

static void test_named_is_taken_without_weighing_reservations(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate a = ok("node2", 3 * GIB, 2 * GIB);
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, &a, 1, true, &p);
        assert_int_equal(p.error, 0);
        assert_int_equal(p.chosen, 0);
        assert_int_equal(p.reserved, 2 * GIB);
        /* 1 GiB left after the first: a named destination is taken all the same */
        placement_choose(r, &a, 1, true, &p);
        assert_int_equal(p.error, 0);
        assert_int_equal(p.chosen, 0);
        assert_int_equal(reservations_get(r, "node2"), 4 * GIB);
        placement_release(r, "node2", 2 * GIB);
        placement_release(r, "node2", 2 * GIB);
        assert_int_equal(reservations_get(r, "node2"), 0);
        reservations_free(r);
}

static void test_named_refusals(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate c;
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        c = failed("node2", true, "No domain 'web' on node1");
        placement_choose(r, &c, 1, true, &p);
        assert_int_equal(p.error, -ENOENT);
        assert_int_equal(p.culprit, 0);
        assert_int_equal(p.chosen, -1);

        c = ok("node2", 8 * GIB, GIB);
        c.findings = &refused;
        placement_choose(r, &c, 1, true, &p);
        assert_int_equal(p.error, -EPERM);
        assert_int_equal(p.chosen, -1);
        assert_string_equal(p.why, "Not enough memory (memory); NUMA pinning (numa)");

        c = failed("node2", false, "Cannot connect to libvirt on node2: refused");
        placement_choose(r, &c, 1, true, &p);
        assert_int_equal(p.error, -EPERM);
        assert_string_equal(p.why, "Cannot connect to libvirt on node2: refused");

        /* a warning does not refuse */
        c = ok("node2", 8 * GIB, GIB);
        c.findings = &warned;
        placement_choose(r, &c, 1, true, &p);
        assert_int_equal(p.error, 0);
        assert_int_equal(reservations_get(r, "node2"), GIB);
        assert_int_equal(reservations_get(r, "node3"), 0);
        reservations_free(r);
}

static void test_chosen_most_free_after_reservations(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate c[3] = { ok("a", 4 * GIB, GIB), ok("b", 6 * GIB, GIB),
                                    ok("c", 5 * GIB, GIB) };
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, c, 3, false, &p);
        assert_int_equal(p.error, 0);
        assert_int_equal(p.chosen, 1);
        assert_int_equal(p.reserved, GIB);
        /* b has 5 GiB left, as c: the first of equals */
        placement_choose(r, c, 3, false, &p);
        assert_int_equal(p.chosen, 1);
        /* b 4 GiB, c 5 GiB */
        placement_choose(r, c, 3, false, &p);
        assert_int_equal(p.chosen, 2);
        placement_release(r, "b", GIB);
        placement_release(r, "b", GIB);
        placement_release(r, "c", GIB);
        placement_choose(r, c, 3, false, &p);
        assert_int_equal(p.chosen, 1);
        reservations_free(r);
}

static void test_chosen_known_free_beats_unknown(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate unknown_first[2] = { ok("a", UINT64_MAX, GIB), ok("b", 2 * GIB, GIB) };
        PlacementCandidate known_first[2] = { ok("a", 2 * GIB, GIB), ok("b", UINT64_MAX, GIB) };
        PlacementCandidate only_unknown[2] = { ok("a", UINT64_MAX, GIB), ok("b", UINT64_MAX, GIB) };
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, unknown_first, 2, false, &p);
        assert_int_equal(p.chosen, 1);
        placement_release(r, "b", p.reserved);
        placement_choose(r, known_first, 2, false, &p);
        assert_int_equal(p.chosen, 0);
        placement_release(r, "a", p.reserved);
        placement_choose(r, only_unknown, 2, false, &p);
        assert_int_equal(p.error, 0);
        assert_int_equal(p.chosen, 0);
        assert_int_equal(reservations_get(r, "a"), GIB);
        reservations_free(r);
}

static void test_chosen_skips_what_does_not_fit(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate c[2] = { ok("a", GIB, 2 * GIB), ok("b", 3 * GIB, 2 * GIB) };
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, c, 2, false, &p);
        assert_int_equal(p.chosen, 1);
        /* b has 1 GiB left after the first: neither fits */
        placement_choose(r, c, 2, false, &p);
        assert_int_equal(p.error, -EPERM);
        assert_int_equal(p.chosen, -1);
        assert_int_equal(p.reserved, 0);
        /* they passed their checks: what they lack is room, once the reservations count */
        assert_string_equal(p.why, "a: 1024 MiB free once the migrations on their way there are "
                                   "counted, the domain needs 2048 MiB; b: 1024 MiB free once "
                                   "the migrations on their way there are counted, the domain "
                                   "needs 2048 MiB");
        assert_int_equal(reservations_get(r, "b"), 2 * GIB);
        reservations_free(r);
}

static void test_chosen_two_choices_spread(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate c[2] = { ok("a", 4 * GIB, 2 * GIB), ok("b", 3 * GIB, 2 * GIB) };
        Placement p1, p2;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, c, 2, false, &p1);
        placement_choose(r, c, 2, false, &p2);
        assert_int_equal(p1.chosen, 0);
        assert_int_equal(p2.chosen, 1);
        assert_int_equal(reservations_get(r, "a"), 2 * GIB);
        assert_int_equal(reservations_get(r, "b"), 2 * GIB);
        reservations_free(r);
}

static void test_chosen_no_such_domain_ends_the_choice(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate c[3] = { ok("a", 4 * GIB, GIB), failed("b", true, "No domain 'web'"),
                                    ok("c", 8 * GIB, GIB) };
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, c, 3, false, &p);
        assert_int_equal(p.error, -ENOENT);
        assert_int_equal(p.culprit, 1);
        assert_int_equal(p.chosen, -1);
        assert_int_equal(reservations_get(r, "a"), 0);
        assert_int_equal(reservations_get(r, "c"), 0);
        reservations_free(r);
}

static void test_refusal_texts(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate c[2] = { ok("a", 4 * GIB, GIB), failed("b", false, "unreachable") };
        PlacementCandidate many[40];
        char long_message[200];
        MigFindings f = {};
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, NULL, 0, false, &p);
        assert_int_equal(p.error, -EPERM);
        assert_string_equal(p.why, "no [peer] is configured");

        c[0].findings = &refused;
        placement_choose(r, c, 2, false, &p);
        assert_int_equal(p.error, -EPERM);
        assert_string_equal(p.why,
                            "a: Not enough memory (memory); NUMA pinning (numa); b: unreachable");

        /* capped: 40 peers × ~200 characters */
        memset(long_message, 'x', sizeof(long_message) - 1);
        long_message[sizeof(long_message) - 1] = 0;
        assert_int_equal(mig_findings_add(&f, MIG_ERROR, "memory", "%s", long_message), 0);
        for (size_t i = 0; i < 40; i++) {
                many[i] = ok("peer", 8 * GIB, GIB);
                many[i].findings = &f;
        }
        placement_choose(r, many, 40, false, &p);
        assert_int_equal(p.error, -EPERM);
        assert_int_equal(strlen(p.why), sizeof(p.why) - 1);
        assert_true(strncmp(p.why, "peer: xxx", 9) == 0);
        mig_findings_done(&f);
        reservations_free(r);
}

static void test_release(void **state)
{
        Reservations *r = NULL;
        PlacementCandidate a = ok("a", 4 * GIB, GIB);
        Placement p;

        assert_int_equal(reservations_new(&r), 0);
        placement_choose(r, &a, 1, false, &p);
        placement_choose(r, &a, 1, false, &p);
        assert_int_equal(reservations_get(r, "a"), 2 * GIB);
        placement_release(r, "a", GIB);
        assert_int_equal(reservations_get(r, "a"), GIB);
        /* an unknown name, or nothing reserved: nothing changes */
        placement_release(r, "nobody", GIB);
        placement_release(r, "a", 0);
        assert_int_equal(reservations_get(r, "nobody"), 0);
        assert_int_equal(reservations_get(r, "a"), GIB);
        reservations_free(r);
        assert_null(reservations_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_named_is_taken_without_weighing_reservations),
                cmocka_unit_test(test_named_refusals),
                cmocka_unit_test(test_chosen_most_free_after_reservations),
                cmocka_unit_test(test_chosen_known_free_beats_unknown),
                cmocka_unit_test(test_chosen_skips_what_does_not_fit),
                cmocka_unit_test(test_chosen_two_choices_spread),
                cmocka_unit_test(test_chosen_no_such_domain_ends_the_choice),
                cmocka_unit_test(test_refusal_texts),
                cmocka_unit_test(test_release),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
