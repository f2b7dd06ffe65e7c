/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fencing without a BMC, the node's decision (lib/self-fence-plan.h): what it declares, and
 * when it fences itself. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "self-fence-plan.h"
#include "test-helpers.h"

#define SEC   1000000ULL
#define AFTER (8 * SEC)

static void test_declared_only_when_enabled_and_self_fencing(void **state)
{
        Config *c = NULL;

        assert_int_equal(config_new(&c), 0);
        c->recovery.self_fence_after = AFTER;
        assert_int_equal(self_fence_declared(c), 0); /* the defaults: no recovery */
        c->recovery.self_fence = true;
        assert_int_equal(self_fence_declared(c), 0); /* self_fence without enable: nothing */
        c->recovery.enable = true;
        assert_int_equal(self_fence_declared(c), AFTER);
        c->recovery.self_fence = false;
        assert_int_equal(self_fence_declared(c), 0);
        config_free(c);
}

/* A node that never wrote a heartbeat declared nothing, whatever the time. */
static void test_never_attached_never_fences(void **state)
{
        SelfFenceFacts f = { .ever = false, .declared = AFTER, .last_success = 0 };
        usec_t deadline = 42;

        assert_int_equal(self_fence_plan(&f, 0, &deadline), SELF_FENCE_NOTHING);
        assert_int_equal(deadline, 0);
        assert_int_equal(self_fence_plan(&f, 1000 * SEC, &deadline), SELF_FENCE_NOTHING);
}

/* The last write that got through declared nothing (self_fence = no, or enable = no): no
 * promise to keep, however long the store stays away. */
static void test_nothing_declared_never_fences(void **state)
{
        SelfFenceFacts f = { .ever = true, .declared = 0, .last_success = 10 * SEC };

        assert_int_equal(self_fence_plan(&f, 10 * SEC, NULL), SELF_FENCE_NOTHING);
        assert_int_equal(self_fence_plan(&f, 100000 * SEC, NULL), SELF_FENCE_NOTHING);
}

/* Armed until self_fence_after has passed since the last success, fence from then on: not
 * one microsecond before. */
static void test_fences_at_declared_time_not_before(void **state)
{
        SelfFenceFacts f = { .ever = true, .declared = AFTER, .last_success = 100 * SEC };
        usec_t deadline = 0;

        assert_int_equal(self_fence_plan(&f, 100 * SEC, &deadline), SELF_FENCE_ARM);
        assert_int_equal(deadline, 108 * SEC);
        assert_int_equal(self_fence_plan(&f, 108 * SEC - 1, &deadline), SELF_FENCE_ARM);
        assert_int_equal(deadline, 108 * SEC);
        assert_int_equal(self_fence_plan(&f, 108 * SEC, &deadline), SELF_FENCE_NOW);
        assert_int_equal(deadline, 0);
        assert_int_equal(self_fence_plan(&f, 500 * SEC, NULL), SELF_FENCE_NOW);
}

/* A success moves the deadline; the clock going "back" (a stale now) is still armed. */
static void test_success_moves_deadline(void **state)
{
        SelfFenceFacts f = { .ever = true, .declared = AFTER, .last_success = 100 * SEC };
        usec_t deadline = 0;

        assert_int_equal(self_fence_plan(&f, 107 * SEC, NULL), SELF_FENCE_ARM);
        f.last_success = 107 * SEC;
        assert_int_equal(self_fence_plan(&f, 110 * SEC, &deadline), SELF_FENCE_ARM);
        assert_int_equal(deadline, 115 * SEC);
        assert_int_equal(self_fence_plan(&f, 50 * SEC, &deadline), SELF_FENCE_ARM);
}

/* No overflow: a deadline past the end of time is armed forever. */
static void test_deadline_saturates(void **state)
{
        SelfFenceFacts f = { .ever = true, .declared = AFTER, .last_success = UINT64_MAX - SEC };
        usec_t deadline = 0;

        assert_int_equal(self_fence_plan(&f, UINT64_MAX - 1, &deadline), SELF_FENCE_ARM);
        assert_true(deadline == UINT64_MAX);
}

/* What a restarted hostwardend reads back is what the last one wrote; anything else is
 * refused, not taken as "nothing declared" by mistake of a zero. */
static void test_facts_round_trip(void **state)
{
        SelfFenceFacts f = { .ever = true, .declared = AFTER, .last_success = 123456789 }, g;
        char *text = NULL;

        assert_int_equal(self_fence_facts_format(&f, &text), 0);
        assert_string_equal(text, "declared=8000000\nlast_success=123456789\n");
        assert_int_equal(self_fence_facts_parse(text, &g), 0);
        assert_true(g.ever);
        assert_int_equal(g.declared, AFTER);
        assert_int_equal(g.last_success, 123456789);
        free(text);
}

static void test_facts_parse_refuses_bad(void **state)
{
        SelfFenceFacts g = { .ever = false, .declared = 1, .last_success = 2 };

        assert_int_equal(self_fence_facts_parse("", &g), -EBADMSG);
        assert_int_equal(self_fence_facts_parse("declared=8000000\n", &g), -EBADMSG);
        assert_int_equal(self_fence_facts_parse("last_success=5\n", &g), -EBADMSG);
        assert_int_equal(self_fence_facts_parse("declared=8s\nlast_success=5\n", &g), -EBADMSG);
        assert_int_equal(self_fence_facts_parse("declared=8\nlast_success=-5\n", &g), -EBADMSG);
        /* untouched on failure */
        assert_false(g.ever);
        assert_int_equal(g.declared, 1);
        assert_int_equal(g.last_success, 2);
}

/* The peers' margin covers the node's watchdog and sync, whatever down_after says. */
static void test_peer_margin(void **state)
{
        assert_int_equal(self_fence_peer_margin(3 * SEC), 20 * SEC);
        assert_true(self_fence_peer_margin(0) > SELF_FENCE_WATCHDOG_USEC + SELF_FENCE_SYNC_USEC);
        assert_int_equal(self_fence_peer_margin(60 * SEC), 60 * SEC);
}

static void test_action_names(void **state)
{
        assert_string_equal(self_fence_action_to_string(SELF_FENCE_NOTHING), "nothing");
        assert_string_equal(self_fence_action_to_string(SELF_FENCE_ARM), "arm");
        assert_string_equal(self_fence_action_to_string(SELF_FENCE_NOW), "fence-now");
        assert_null(self_fence_action_to_string(_SELF_FENCE_ACTION_MAX));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_declared_only_when_enabled_and_self_fencing),
                cmocka_unit_test(test_never_attached_never_fences),
                cmocka_unit_test(test_nothing_declared_never_fences),
                cmocka_unit_test(test_fences_at_declared_time_not_before),
                cmocka_unit_test(test_success_moves_deadline),
                cmocka_unit_test(test_deadline_saturates),
                cmocka_unit_test(test_facts_round_trip),
                cmocka_unit_test(test_facts_parse_refuses_bad),
                cmocka_unit_test(test_peer_margin),
                cmocka_unit_test(test_action_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
