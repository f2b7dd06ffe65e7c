/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dbus/announce.c against a real libvirt (its test driver, test:///default, which has a
 * running domain "test" and no QEMU monitor): an announcement that libvirt cannot deliver is
 * a logged failure (-EIO) for the caller to ignore, never a crash; nothing is sent when the
 * configuration turns it off or the guest does not run.
 */
#include <errno.h>

#include <libvirt/libvirt.h>

#include "test-helpers.h"

#include "announce.h"

typedef struct Fixture {
        virConnectPtr conn;
        virDomainPtr dom;
} Fixture;

static int setup(void **state)
{
        static Fixture f;

        f.conn = virConnectOpen("test:///default");
        assert_non_null(f.conn);
        f.dom = virDomainLookupByName(f.conn, "test");
        assert_non_null(f.dom);
        *state = &f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        virDomainFree(f->dom);
        virConnectClose(f->conn);
        return 0;
}

static void test_an_announcement_libvirt_cannot_deliver_is_a_failure_for_the_caller(void **state)
{
        Fixture *f = *state;
        AnnounceSchedule s;

        assert_int_equal(announce_schedule(5, 100 * USEC_PER_MSEC, &s), 0);
        assert_int_equal(virDomainIsActive(f->dom), 1);
        /* the test driver has no QEMU monitor: virDomainQemuMonitorCommand fails */
        assert_int_equal(announce_guest(f->dom, &s, "Migration", "0123456789abcdef", "node2"),
                         -EIO);
}

static void test_off_or_not_running_sends_nothing(void **state)
{
        Fixture *f = *state;
        AnnounceSchedule off, on;
        Config *c = NULL;

        assert_int_equal(config_new(&c), 0);
        c->migration.announce_rounds = 0;
        announce_schedule_from_config(c, &off);
        assert_int_equal(off.rounds, 0);
        assert_int_equal(announce_guest(f->dom, &off, "Rebuild", "test", "this node"), 0);
        config_free(c);

        assert_int_equal(announce_schedule(5, 100 * USEC_PER_MSEC, &on), 0);
        assert_int_equal(virDomainSuspend(f->dom), 0);
        assert_int_equal(announce_guest(f->dom, &on, "Rebuild", "test", "this node"), 0);
        assert_int_equal(virDomainResume(f->dom), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_an_announcement_libvirt_cannot_deliver_is_a_failure_for_the_caller),
                cmocka_unit_test(test_off_or_not_running_sends_nothing),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
