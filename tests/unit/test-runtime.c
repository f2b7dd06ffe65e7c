/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime.h"
#include "test-helpers.h"
#include "util.h"

#define UUID_A "3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b"

static void test_record_parse_and_set(void **state)
{
        RuntimeRecord rec = { NULL };

        assert_int_equal(runtime_record_parse("owner=node3\nsince=2026-11-24T01:02:03Z\n"
                                              "garbage line\nBAD=upper\n=novalue\nowner=node4\n",
                                              &rec),
                         0);
        assert_string_equal(runtime_record_get(&rec, "owner"), "node4"); /* later wins */
        assert_string_equal(runtime_record_get(&rec, "since"), "2026-11-24T01:02:03Z");
        assert_null(runtime_record_get(&rec, "BAD"));
        assert_null(runtime_record_get(&rec, "missing"));
        assert_int_equal(runtime_record_set(&rec, "reason", "multi\nline"), -EINVAL);
        assert_int_equal(runtime_record_set(&rec, "Bad Key", "x"), -EINVAL);
        runtime_record_done(&rec);
        assert_null(rec.kv);
}

static void test_deny_add_lookup_remove(void **state)
{
        _cleanup_free_ char *rt = test_mkdtemp();
        RuntimeRecord rec = { NULL }, got = { NULL };
        struct stat st;
        char path[4096];

        assert_int_equal(runtime_deny_lookup(rt, UUID_A, &got), 0);
        assert_int_equal(runtime_record_set(&rec, "owner", "node3"), 0);
        assert_int_equal(runtime_deny_add(rt, UUID_A, &rec), 0);
        runtime_record_done(&rec);

        snprintf(path, sizeof(path), "%s/deny/%s", rt, UUID_A);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);

        /* libvirt's lower case is canonical; an upper-case query finds the same entry */
        assert_int_equal(runtime_deny_lookup(rt, "3F8C5B9E-2D4A-4F61-9B7E-0C1D2E3F4A5B", &got), 1);
        assert_string_equal(runtime_record_get(&got, "owner"), "node3");
        runtime_record_done(&got);

        assert_int_equal(runtime_deny_remove(rt, UUID_A), 0);
        assert_int_equal(runtime_deny_lookup(rt, UUID_A, NULL), 0);
        assert_int_equal(runtime_deny_remove(rt, UUID_A), 0); /* idempotent */
        test_rm_rf(rt);
}

/* cold/<uuid>: a cold migration's copy under way, written, listed, read and removed;
 * rebuild/<uuid> beside it. */
static void test_cold_notes(void **state)
{
        _cleanup_free_ char *rt = test_mkdtemp();
        RuntimeRecord rec = { NULL }, got = { NULL };
        char **l = NULL;

        assert_int_equal(runtime_note_list(rt, RUNTIME_NOTE_COLD, &l), 0);
        assert_null(l);
        assert_int_equal(runtime_note_lookup(rt, RUNTIME_NOTE_COLD, UUID_A, &got), 0);
        assert_int_equal(runtime_record_set(&rec, "destination", "node2"), 0);
        assert_int_equal(runtime_record_set(&rec, "disks", "/a%20b /c"), 0);
        assert_int_equal(runtime_note_write(rt, RUNTIME_NOTE_COLD,
                                            "3F8C5B9E-2D4A-4F61-9B7E-0C1D2E3F4A5B", &rec),
                         0);
        runtime_record_done(&rec);
        assert_int_equal(runtime_note_list(rt, RUNTIME_NOTE_COLD, &l), 0);
        assert_int_equal(strv_length(l), 1);
        assert_string_equal(l[0], UUID_A); /* canonical lower case */
        l = strv_free(l);
        assert_int_equal(runtime_note_lookup(rt, RUNTIME_NOTE_COLD, UUID_A, &got), 1);
        assert_string_equal(runtime_record_get(&got, "disks"), "/a%20b /c");
        runtime_record_done(&got);
        assert_int_equal(runtime_note_remove(rt, RUNTIME_NOTE_COLD, UUID_A), 0);
        assert_int_equal(runtime_note_lookup(rt, RUNTIME_NOTE_COLD, UUID_A, NULL), 0);
        assert_int_equal(runtime_note_remove(rt, RUNTIME_NOTE_COLD, UUID_A), 0); /* idempotent */
        assert_int_equal(runtime_note_write(rt, RUNTIME_NOTE_COLD, "../x", NULL), -EINVAL);
        /* each kind in its own directory: a rebuild's note is no cold migration's */
        assert_int_equal(runtime_note_write(rt, RUNTIME_NOTE_REBUILD, UUID_A, NULL), 0);
        assert_int_equal(runtime_note_lookup(rt, RUNTIME_NOTE_COLD, UUID_A, NULL), 0);
        assert_int_equal(runtime_note_lookup(rt, RUNTIME_NOTE_REBUILD, UUID_A, NULL), 1);
        assert_int_equal(runtime_note_list(rt, _RUNTIME_NOTE_MAX, &l), -EINVAL);
        /* what every kind holds: the writer's pid and a node; a note without them is refused */
        {
                const char *node = NULL;
                pid_t pid = 0;

                assert_int_equal(runtime_note_load(rt, RUNTIME_NOTE_REBUILD, UUID_A, "source", &got,
                                                   &pid, &node),
                                 -EBADMSG);
                assert_int_equal(runtime_record_set(&rec, "pid", "4242"), 0);
                assert_int_equal(runtime_record_set(&rec, "source", "node2"), 0);
                assert_int_equal(runtime_note_write(rt, RUNTIME_NOTE_REBUILD, UUID_A, &rec), 0);
                runtime_record_done(&rec);
                assert_int_equal(runtime_note_load(rt, RUNTIME_NOTE_REBUILD, UUID_A, "source", &got,
                                                   &pid, &node),
                                 1);
                assert_int_equal(pid, 4242);
                assert_string_equal(node, "node2");
                runtime_record_done(&got);
                assert_int_equal(runtime_note_load(rt, RUNTIME_NOTE_COLD, UUID_A, "destination",
                                                   &got, &pid, &node),
                                 0);
        }
        test_rm_rf(rt);
}

static void test_bad_uuid_is_rejected_not_a_path(void **state)
{
        assert_int_equal(runtime_deny_lookup("/run/x", "../../etc/passwd", NULL), -EINVAL);
        assert_int_equal(runtime_deny_add("/run/x", "not-a-uuid", NULL), -EINVAL);
}

static void test_missing_runtime_dir_denies_nothing(void **state)
{
        assert_int_equal(runtime_deny_lookup("/nonexistent/hostwarden", UUID_A, NULL), 0);
        assert_int_equal(runtime_marker_lookup("/nonexistent/hostwarden", NODE_MARKER_FENCED, NULL),
                         0);
}

static void test_markers(void **state)
{
        _cleanup_free_ char *rt = test_mkdtemp();
        RuntimeRecord rec = { NULL };

        for (NodeMarker m = 0; m < _NODE_MARKER_MAX; m++)
                assert_int_equal(runtime_marker_lookup(rt, m, NULL), 0);
        assert_int_equal(runtime_record_set(&rec, "by", "admin"), 0);
        assert_int_equal(runtime_marker_set(rt, NODE_MARKER_FORCED_DOWN, &rec), 0);
        runtime_record_done(&rec);
        assert_int_equal(runtime_marker_lookup(rt, NODE_MARKER_FORCED_DOWN, &rec), 1);
        assert_string_equal(runtime_record_get(&rec, "by"), "admin");
        runtime_record_done(&rec);
        assert_int_equal(runtime_marker_lookup(rt, NODE_MARKER_FENCED, NULL), 0);
        assert_int_equal(runtime_marker_clear(rt, NODE_MARKER_FORCED_DOWN), 0);
        assert_int_equal(runtime_marker_lookup(rt, NODE_MARKER_FORCED_DOWN, NULL), 0);
        assert_string_equal(node_marker_to_string(NODE_MARKER_FORCED_DOWN), "forced-down");
        assert_int_equal(runtime_marker_set(rt, _NODE_MARKER_MAX, NULL), -EINVAL);
        test_rm_rf(rt);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record_parse_and_set),
                cmocka_unit_test(test_deny_add_lookup_remove),
                cmocka_unit_test(test_bad_uuid_is_rejected_not_a_path),
                cmocka_unit_test(test_missing_runtime_dir_denies_nothing),
                cmocka_unit_test(test_markers),
                cmocka_unit_test(test_cold_notes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
