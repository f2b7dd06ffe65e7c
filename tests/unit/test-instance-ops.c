/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "instance-ops.h"
#include "test-helpers.h"

#define A "6695eb01-f6a4-8304-79aa-97f2502e193f"
#define B "0b6a1c4e-2f1d-4c2e-9a55-1d9f3c0f7a10"

static const unsigned ALL = INSTANCE_OP(INSTANCE_OP_MIGRATION) | INSTANCE_OP(INSTANCE_OP_REBUILD) |
                            INSTANCE_OP(INSTANCE_OP_RECONCILE);

static void test_claim_and_busy(void **state)
{
        InstanceOps *ops;
        const InstanceOp *h = NULL;
        int mig, other;

        assert_int_equal(instance_ops_new(&ops), 0);
        assert_null(instance_ops_busy(ops, A, ALL));
        assert_int_equal(instance_ops_claim(ops, A, INSTANCE_OP_MIGRATION, &mig,
                                            INSTANCE_OP(INSTANCE_OP_MIGRATION), NULL),
                         0);
        h = instance_ops_busy(ops, A, INSTANCE_OP(INSTANCE_OP_MIGRATION));
        assert_non_null(h);
        assert_int_equal(h->kind, INSTANCE_OP_MIGRATION);
        assert_ptr_equal(h->owner, &mig);
        /* asked for other kinds only: not busy */
        assert_null(instance_ops_busy(ops, A, INSTANCE_OP(INSTANCE_OP_REBUILD)));
        assert_null(instance_ops_busy(ops, B, ALL));

        /* a second migration conflicts, and is told who holds it */
        h = NULL;
        assert_int_equal(instance_ops_claim(ops, A, INSTANCE_OP_MIGRATION, &other,
                                            INSTANCE_OP(INSTANCE_OP_MIGRATION), &h),
                         -EBUSY);
        assert_non_null(h);
        assert_ptr_equal(h->owner, &mig);
        instance_ops_free(ops);
}

static void test_coexisting_and_release(void **state)
{
        InstanceOps *ops;
        int pass, rebuild;

        assert_int_equal(instance_ops_new(&ops), 0);
        /* a reconciliation pass claims what it acts on without asking */
        assert_int_equal(instance_ops_claim(ops, A, INSTANCE_OP_RECONCILE, &pass, 0, NULL), 0);
        assert_int_equal(instance_ops_claim(ops, B, INSTANCE_OP_RECONCILE, &pass, 0, NULL), 0);
        assert_int_equal(instance_ops_claim(ops, A, INSTANCE_OP_REBUILD, &rebuild, 0, NULL), 0);
        assert_int_equal(instance_ops_busy(ops, A, INSTANCE_OP(INSTANCE_OP_REBUILD))->kind,
                         INSTANCE_OP_REBUILD);

        /* releasing what another owner holds changes nothing */
        instance_ops_release(ops, A, INSTANCE_OP_REBUILD, &pass);
        assert_non_null(instance_ops_busy(ops, A, INSTANCE_OP(INSTANCE_OP_REBUILD)));
        instance_ops_release(ops, A, INSTANCE_OP_REBUILD, &rebuild);
        assert_null(instance_ops_busy(ops, A, INSTANCE_OP(INSTANCE_OP_REBUILD)));
        assert_non_null(instance_ops_busy(ops, A, INSTANCE_OP(INSTANCE_OP_RECONCILE)));

        instance_ops_release_owner(ops, INSTANCE_OP_RECONCILE, &pass);
        assert_null(instance_ops_busy(ops, A, ALL));
        assert_null(instance_ops_busy(ops, B, ALL));
        instance_ops_free(ops);
}

static void test_case_and_limits(void **state)
{
        InstanceOps *ops;
        int owner;

        assert_int_equal(instance_ops_new(&ops), 0);
        assert_int_equal(instance_ops_claim(ops, "6695EB01-F6A4-8304-79AA-97F2502E193F",
                                            INSTANCE_OP_MIGRATION, &owner, 0, NULL),
                         0);
        assert_string_equal(instance_ops_busy(ops, A, ALL)->uuid, A);
        instance_ops_release(ops, "6695eb01-F6A4-8304-79aa-97F2502E193F", INSTANCE_OP_MIGRATION,
                             &owner);
        assert_null(instance_ops_busy(ops, A, ALL));
        assert_int_equal(instance_ops_claim(ops, A "0", INSTANCE_OP_MIGRATION, &owner, 0, NULL),
                         -EINVAL);
        /* many claims, then freed with claims left (valgrind checks the rest) */
        for (int i = 0; i < 100; i++)
                assert_int_equal(instance_ops_claim(ops, i % 2 ? A : B, INSTANCE_OP_RECONCILE,
                                                    &owner, 0, NULL),
                                 0);
        instance_ops_release_owner(ops, INSTANCE_OP_RECONCILE, &owner);
        assert_null(instance_ops_busy(ops, B, ALL));
        assert_int_equal(instance_ops_claim(ops, B, INSTANCE_OP_REBUILD, &owner, 0, NULL), 0);
        instance_ops_free(ops);
        instance_ops_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_claim_and_busy),
                cmocka_unit_test(test_coexisting_and_release),
                cmocka_unit_test(test_case_and_limits),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
