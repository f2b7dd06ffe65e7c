/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hook's refusal counts in the runtime directory (lib/refusals.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "refusals.h"

/* Each refusal adds one to its reason's count; the first makes the directory; the counts
 * come back sorted by reason. */
static void test_refusals_are_counted_by_reason(void **state)
{
        char *dir = test_mkdtemp();
        char runtime[4096];
        RefusalCount *c = NULL;
        size_t n = 99;

        snprintf(runtime, sizeof(runtime), "%s/run", dir);
        assert_int_equal(refusal_counts_read(runtime, &c, &n), 0);
        assert_null(c);
        assert_int_equal(n, 0);

        assert_int_equal(refusal_count_bump(runtime, "owned-elsewhere"), 0);
        assert_int_equal(refusal_count_bump(runtime, "fenced"), 0);
        assert_int_equal(refusal_count_bump(runtime, "owned-elsewhere"), 0);
        assert_int_equal(refusal_counts_read(runtime, &c, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(c[0].reason, "fenced");
        assert_int_equal(c[0].count, 1);
        assert_string_equal(c[1].reason, "owned-elsewhere");
        assert_int_equal(c[1].count, 2);
        free(c);
        test_rm_rf(dir);
        free(dir);
}

/* A reason is a file name: nothing else is taken, and what is not one is not read back. */
static void test_a_reason_must_be_a_plain_word(void **state)
{
        char *dir = test_mkdtemp();
        RefusalCount *c = NULL;
        size_t n = 0;

        assert_int_equal(refusal_count_bump(dir, "../escape"), -EINVAL);
        assert_int_equal(refusal_count_bump(dir, ""), -EINVAL);
        assert_int_equal(refusal_count_bump(dir, "Fenced"), -EINVAL);
        test_write(dir, "refusals/not.a.reason", "\n\n");
        assert_int_equal(refusal_counts_read(dir, &c, &n), 0);
        assert_int_equal(n, 0);
        free(c);
        test_rm_rf(dir);
        free(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_refusals_are_counted_by_reason),
                cmocka_unit_test(test_a_reason_must_be_a_plain_word),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
