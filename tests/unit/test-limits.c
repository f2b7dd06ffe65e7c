/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The caps on calls in flight (dbus/call-limits.c): per sender, per UID, in total for
 * unprivileged callers, and root's reserve apart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call-limits.h"
#include "test-helpers.h"

static const LimitCaps CAPS = { .per_sender = 2, .per_uid = 3, .total = 5, .root = 4 };

static Limiter *new_limiter(void)
{
        Limiter *l = NULL;

        assert_int_equal(limiter_new("worker threads", &CAPS, &l), 0);
        return l;
}

static void test_one_connection_is_capped_at_per_sender(void **state)
{
        Limiter *l = new_limiter();

        assert_int_equal(limiter_acquire(l, ":1.10", 1000), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, ":1.10", 1000), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, ":1.10", 1000), LIMIT_SENDER);
        uid_t uid = 0;
        assert_true(limiter_sender_uid(l, ":1.10", &uid));
        assert_int_equal(uid, 1000);
        assert_false(limiter_sender_uid(l, ":1.11", &uid));
        /* refused calls count nothing */
        assert_int_equal(limiter_sender_count(l, ":1.10"), 2);
        assert_int_equal(limiter_uid_count(l, 1000), 2);
        assert_int_equal(limiter_total(l), 2);
        /* an answer frees a place on that connection */
        limiter_release(l, ":1.10", 1000);
        assert_int_equal(limiter_acquire(l, ":1.10", 1000), LIMIT_ADMITTED);
        limiter_free(l);
}

static void test_many_connections_of_one_user_are_capped_at_per_uid(void **state)
{
        Limiter *l = new_limiter();

        assert_int_equal(limiter_acquire(l, ":1.10", 1000), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, ":1.11", 1000), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, ":1.12", 1000), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, ":1.13", 1000), LIMIT_UID);
        assert_int_equal(limiter_sender_count(l, ":1.13"), 0);
        /* another user is not held back by the first one's cap */
        assert_int_equal(limiter_acquire(l, ":1.20", 1001), LIMIT_ADMITTED);
        limiter_free(l);
}

static void test_unprivileged_users_together_are_capped_at_total(void **state)
{
        Limiter *l = new_limiter();
        char name[16];

        for (unsigned i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), ":1.%u", 100 + i);
                assert_int_equal(limiter_acquire(l, name, 2000 + i), LIMIT_ADMITTED);
        }
        assert_int_equal(limiter_acquire(l, ":1.200", 3000), LIMIT_TOTAL);
        assert_int_equal(limiter_total(l), 5);
        limiter_release(l, ":1.102", 2002);
        assert_int_equal(limiter_acquire(l, ":1.200", 3000), LIMIT_ADMITTED);
        limiter_free(l);
}

static void test_root_is_served_from_its_own_reserve(void **state)
{
        Limiter *l = new_limiter();
        char name[16];

        /* unprivileged callers took everything they may */
        for (unsigned i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), ":1.%u", 100 + i);
                assert_int_equal(limiter_acquire(l, name, 2000 + i), LIMIT_ADMITTED);
        }
        /* root, on one connection even, gets its reserve, and no more */
        for (unsigned i = 0; i < 4; i++)
                assert_int_equal(limiter_acquire(l, ":1.1", 0), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, ":1.1", 0), LIMIT_ROOT);
        assert_int_equal(limiter_root(l), 4);
        assert_int_equal(limiter_total(l), 5);
        limiter_release(l, ":1.1", 0);
        assert_int_equal(limiter_root(l), 3);
        assert_int_equal(limiter_total(l), 5);
        limiter_free(l);
}

static void test_callers_of_unknown_uid_share_one_count(void **state)
{
        Limiter *l = new_limiter();

        assert_int_equal(limiter_acquire(l, ":1.5", LIMIT_UID_UNKNOWN), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, ":1.6", LIMIT_UID_UNKNOWN), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, NULL, LIMIT_UID_UNKNOWN), LIMIT_ADMITTED);
        assert_int_equal(limiter_acquire(l, ":1.7", LIMIT_UID_UNKNOWN), LIMIT_UID);
        limiter_free(l);
}

static void test_released_callers_leave_nothing_behind(void **state)
{
        Limiter *l = new_limiter();
        char name[16];

        /* thousands of short-lived connections, each with one call answered */
        for (unsigned i = 0; i < 5000; i++) {
                snprintf(name, sizeof(name), ":1.%u", i);
                assert_int_equal(limiter_acquire(l, name, 1000 + i % 7), LIMIT_ADMITTED);
                limiter_release(l, name, 1000 + i % 7);
        }
        assert_int_equal(limiter_total(l), 0);
        assert_int_equal(limiter_uid_count(l, 1003), 0);
        assert_int_equal(limiter_sender_count(l, ":1.4999"), 0);
        uid_t uid;
        assert_false(limiter_sender_uid(l, ":1.4999", &uid));
        /* a release nobody acquired (a bug elsewhere) does not underflow */
        limiter_release(l, ":1.1", 1000);
        assert_int_equal(limiter_total(l), 0);
        assert_int_equal(limiter_acquire(l, ":1.1", 1000), LIMIT_ADMITTED);
        assert_int_equal(limiter_total(l), 1);
        limiter_free(l); /* with a counter still held: valgrind sees no leak */
}

static void test_refusals_say_which_cap_and_its_value(void **state)
{
        Limiter *l = new_limiter();
        char buf[256];

        /* whole texts: callers see them as LimitsExceeded's message */
        limiter_explain(l, LIMIT_SENDER, 1000, buf, sizeof(buf));
        assert_string_equal(buf, "Too many calls in progress on this connection: at most 2 worker "
                                 "threads per connection; wait for an answer before asking again");
        limiter_explain(l, LIMIT_UID, 1000, buf, sizeof(buf));
        assert_string_equal(buf,
                            "Too many calls in progress for UID 1000: at most 3 worker threads "
                            "per user over all its connections; wait for an answer before "
                            "asking again");
        limiter_explain(l, LIMIT_UID, LIMIT_UID_UNKNOWN, buf, sizeof(buf));
        assert_true(test_contains(buf, "in progress for callers of unknown UID: at most 3"));
        limiter_explain(l, LIMIT_TOTAL, 1000, buf, sizeof(buf));
        assert_string_equal(buf, "Too many calls in progress from unprivileged users: at most 5 "
                                 "worker threads in all; try again shortly (root is served apart)");
        limiter_explain(l, LIMIT_ROOT, 0, buf, sizeof(buf));
        assert_string_equal(buf, "Too many calls in progress for root: at most 4 worker threads; "
                                 "wait for an answer before asking again");
        limiter_explain(l, LIMIT_ADMITTED, 0, buf, sizeof(buf));
        assert_string_equal(buf, "");
        limiter_free(l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_one_connection_is_capped_at_per_sender),
                cmocka_unit_test(test_many_connections_of_one_user_are_capped_at_per_uid),
                cmocka_unit_test(test_unprivileged_users_together_are_capped_at_total),
                cmocka_unit_test(test_root_is_served_from_its_own_reserve),
                cmocka_unit_test(test_callers_of_unknown_uid_share_one_count),
                cmocka_unit_test(test_released_callers_leave_nothing_behind),
                cmocka_unit_test(test_refusals_say_which_cap_and_its_value),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
