/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "fw.h"
#include "hook.h"
#include "log.h"
#include "runtime.h"
#include "test-helpers.h"
#include "util.h"

#define NOVA_UUID "3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b"

typedef struct Run {
        int status;
        char *out;
        char *err;
} Run;

static void run_free(Run *r)
{
        free(r->out);
        free(r->err);
}

/* Runs one hook operation in-process; takes c (NULL: a broken configuration). */
static Run run_with(Config *c, const char *runtime_dir, const char *domain, const char *op,
                    const char *subop, const char *fixture)
{
        _cleanup_free_ char *input = NULL;
        size_t size = 0, out_size = 0, err_size = 0;
        Run run = { 0 };

        input = fixture ? test_read_data(fixture, &size) : strdup("");
        FILE *out = open_memstream(&run.out, &out_size);
        FILE *err = open_memstream(&run.err, &err_size);
        HookContext ctx = {
                .config = c,
                .runtime_dir = runtime_dir,
                .domain = domain,
                .op = op,
                .subop = subop,
                .extra = "-",
                .input = input,
                .input_size = size,
                .out = out,
                .err = err,
        };
        run.status = hook_dispatch(&ctx);
        hook_context_done(&ctx);
        fclose(out);
        fclose(err);
        config_free(c);
        return run;
}

/* ... against a config text (NULL: broken config). */
static Run run_hook(const char *config_text, const char *runtime_dir, const char *op,
                    const char *subop, const char *fixture)
{
        ConfigDiags diags = { 0 };
        Config *c = NULL;

        if (config_text) {
                assert_int_equal(config_new(&c), 0);
                assert_int_equal(config_parse_text(c, "test.conf", config_text, &diags), 0);
                assert_int_equal(config_finish(c, &diags), 0);
                assert_int_equal(diags.n_errors, 0);
                config_diags_clear(&diags);
        }
        return run_with(c, runtime_dir, "instance-0000002a", op, subop, fixture);
}

static const char node2_conf[] = "[node]\nname = node2\naddress = 192.0.2.12\n"
                                 "[console]\nlisten = node\n";

/* A runtime directory as hostwardend leaves it once it has read the store since this boot
 * (every test but those of the unsynced state starts from it). */
static char *synced_runtime_dir(void)
{
        char *rt = test_mkdtemp();
        RuntimeRecord rec = { NULL };

        assert_int_equal(runtime_record_set(&rec, "since", "2026-12-05T00:00:00Z"), 0);
        assert_int_equal(runtime_marker_set(rt, NODE_MARKER_SYNCED, &rec), 0);
        runtime_record_done(&rec);
        return rt;
}

static bool path_exists(const char *dir, const char *name)
{
        _cleanup_free_ char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return access(p, F_OK) == 0;
}

static void test_unsynced_node_refuses_every_start_and_remembers_it(void **state)
{
        _cleanup_free_ char *rt = test_mkdtemp();

        Run r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, HOOK_REFUSE);
        assert_true(test_contains(r.err, "refusing to start domain 'instance-0000002a' on node "
                                         "'node2': hostwardend has not read the cluster store "
                                         "since this node booted"));
        assert_true(test_contains(r.err, "'hostwardenctl allow-unsynced-starts --reason TEXT'"));
        assert_true(path_exists(rt, "deferred/" NOVA_UUID));
        run_free(&r);

        /* once hostwardend has read the store, the same start goes through */
        RuntimeRecord rec = { NULL };
        assert_int_equal(runtime_record_set(&rec, "since", "2026-12-05T00:00:00Z"), 0);
        assert_int_equal(runtime_marker_set(rt, NODE_MARKER_SYNCED, &rec), 0);
        runtime_record_done(&rec);
        r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        run_free(&r);
        test_rm_rf(rt);
}

static void test_unsynced_node_starts_what_an_operator_allowed(void **state)
{
        _cleanup_free_ char *rt = test_mkdtemp();
        RuntimeRecord rec = { NULL };

        assert_int_equal(runtime_record_set(&rec, "by", "alice"), 0);
        assert_int_equal(runtime_record_set(&rec, "reason", "store lost for good"), 0);
        assert_int_equal(runtime_marker_set(rt, NODE_MARKER_ALLOW_UNSYNCED, &rec), 0);
        runtime_record_done(&rec);

        Run r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        assert_false(path_exists(rt, "deferred/" NOVA_UUID));
        run_free(&r);

        /* the deny list still counts */
        assert_int_equal(runtime_record_set(&rec, "owner", "node3"), 0);
        assert_int_equal(runtime_deny_add(rt, NOVA_UUID, &rec), 0);
        runtime_record_done(&rec);
        r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, HOOK_REFUSE);
        run_free(&r);
        test_rm_rf(rt);
}

static void test_unsynced_node_receives_an_incoming_migration(void **state)
{
        _cleanup_free_ char *rt = test_mkdtemp();

        Run r = run_hook(node2_conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        run_free(&r);
        r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        run_free(&r);
        test_rm_rf(rt);
}

/* Sets the modification time of rt/arriving/NOVA_UUID to age_usec ago. */
static void age_arrival(const char *rt, uint64_t age_usec)
{
        _cleanup_free_ char *p = NULL;
        uint64_t t = now_realtime() - age_usec;
        struct timespec ts[2] = { { .tv_sec = (time_t)(t / 1000000), .tv_nsec = 0 },
                                  { .tv_sec = (time_t)(t / 1000000), .tv_nsec = 0 } };

        assert_true(asprintf(&p, "%s/arriving/%s", rt, NOVA_UUID) > 0);
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void test_arrival_marker_lets_a_denied_instance_in_only_within_open_window(void **state)
{
        static const char conf[] = "[node]\nname = node2\naddress = 192.0.2.12\n"
                                   "[firewall]\nopen_window = 30s\n";
        _cleanup_free_ char *rt = synced_runtime_dir();
        RuntimeRecord rec = { NULL };

        assert_int_equal(runtime_record_set(&rec, "owner", "node3"), 0);
        assert_int_equal(runtime_deny_add(rt, NOVA_UUID, &rec), 0);
        runtime_record_done(&rec);
        assert_int_equal(runtime_arriving_add(rt, NOVA_UUID), 0);

        age_arrival(rt, 10 * 1000000ULL);
        Run r = run_hook(conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        run_free(&r);

        /* a marker left by a migration that never came: the deny list decides again */
        age_arrival(rt, 31 * 1000000ULL);
        r = run_hook(conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, HOOK_REFUSE);
        assert_true(test_contains(r.err, "records it as node 'node3''s"));
        run_free(&r);
        test_rm_rf(rt);
}

static void test_migrate_begin_prints_rewritten_xml(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        Run r = run_hook(node2_conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");

        assert_int_equal(r.status, 0);
        /* byte for byte the input, but for the four listen addresses */
        {
                _cleanup_free_ char *orig = test_read_data("domains/nova-vnc-spice.xml", NULL);
                char *expect = strdup(orig);
                for (char *p; (p = strstr(expect, "192.0.2.11"));)
                        p[9] = '2';
                assert_string_equal(r.out, expect);
                free(expect);
        }
        assert_string_equal(r.err, "");
        run_free(&r);
        test_rm_rf(rt);
}

static void test_migrate_begin_prints_nothing_when_unchanged(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        Run r;

        r = run_hook("[console]\nlisten = keep\n", rt, "migrate", "begin",
                     "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, "");
        run_free(&r);

        r = run_hook(node2_conf, rt, "migrate", "begin", "domains/no-graphics.xml");
        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, "");
        run_free(&r);

        r = run_hook(node2_conf, rt, "migrate", "begin", "domains/vnc-network.xml");
        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, "");
        run_free(&r);
        test_rm_rf(rt);
}

static void test_restore_begin_rewrites_too(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        Run r = run_hook("", rt, "restore", "begin", "domains/vnc-ipv6.xml");

        assert_int_equal(r.status, 0);
        assert_true(test_contains(r.out, "listen='::'"));
        assert_true(test_contains(r.out, "address='::'"));
        run_free(&r);
        test_rm_rf(rt);
}

static void test_broken_config_leaves_xml_alone_and_continues(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        Run r = run_hook(NULL, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");

        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, "");
        run_free(&r);
        test_rm_rf(rt);
}

static void test_unreadable_xml_is_not_a_refusal(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        Run r = run_hook(node2_conf, rt, "migrate", "begin", NULL);

        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, "");
        run_free(&r);
        r = run_hook(node2_conf, rt, "prepare", "begin", NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);
        test_rm_rf(rt);
}

static void test_prepare_begin_refuses_denied_uuid_naming_owner_and_time(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        RuntimeRecord rec = { NULL };

        assert_int_equal(runtime_record_set(&rec, "owner", "node3"), 0);
        assert_int_equal(runtime_record_set(&rec, "since", "2026-11-24T01:02:03Z"), 0);
        assert_int_equal(runtime_record_set(&rec, "evacuated_from", "node2"), 0);
        assert_int_equal(runtime_deny_add(rt, NOVA_UUID, &rec), 0);
        runtime_record_done(&rec);

        Run r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, HOOK_REFUSE);
        assert_true(
                test_contains(r.err, "hostwarden: refusing to start domain 'instance-0000002a'"));
        assert_true(test_contains(r.err, NOVA_UUID));
        assert_true(test_contains(r.err, "on node 'node2'"));
        assert_true(test_contains(r.err, "evacuated to node 'node3' at 2026-11-24T01:02:03Z"));
        assert_string_equal(r.out, "");
        run_free(&r);
        test_rm_rf(rt);
}

static void test_prepare_begin_says_what_the_record_says(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        RuntimeRecord rec = { NULL };

        /* recorded elsewhere, never evacuated: no word of an evacuation */
        assert_int_equal(runtime_record_set(&rec, "owner", "node1"), 0);
        assert_int_equal(runtime_record_set(&rec, "since", "2026-12-05T01:02:03Z"), 0);
        assert_int_equal(runtime_deny_add(rt, NOVA_UUID, &rec), 0);
        Run r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, HOOK_REFUSE);
        assert_true(
                test_contains(r.err, "records it as node 'node1''s (since 2026-12-05T01:02:03Z)"));
        assert_false(test_contains(r.err, "evacuated"));
        run_free(&r);

        /* a tombstone left after an evacuation from here */
        assert_int_equal(runtime_record_set(&rec, "evacuated_from", "node2"), 0);
        assert_int_equal(runtime_record_set(&rec, "deleted", "yes"), 0);
        assert_int_equal(runtime_deny_add(rt, NOVA_UUID, &rec), 0);
        runtime_record_done(&rec);
        r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, HOOK_REFUSE);
        assert_true(test_contains(r.err, "the instance was deleted (seen on node 'node1'"));
        run_free(&r);
        test_rm_rf(rt);
}

static void test_prepare_begin_allows_other_uuids(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        RuntimeRecord rec = { NULL };

        assert_int_equal(runtime_record_set(&rec, "owner", "node3"), 0);
        assert_int_equal(runtime_deny_add(rt, "6a0f7c1e-8b2d-4e3f-a4b5-c6d7e8f90a1b", &rec), 0);
        runtime_record_done(&rec);

        Run r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        assert_string_equal(r.err, "");
        run_free(&r);
        test_rm_rf(rt);
}

static void test_denied_entry_that_cannot_be_read_still_refuses(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();

        /* a directory where the record file should be: unreadable, but present */
        test_write(rt, "deny/" NOVA_UUID "/x", "");
        Run r = run_hook(node2_conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, HOOK_REFUSE);
        assert_true(test_contains(r.err, "records it as node 'unknown''s"));
        run_free(&r);
        test_rm_rf(rt);
}

static void test_fenced_or_forced_down_node_refuses_start_and_incoming(void **state)
{
        static const NodeMarker markers[] = { NODE_MARKER_FENCED, NODE_MARKER_FORCED_DOWN };
        static const char *const words[] = { "this node is fenced", "this node is forced down" };
        /* a peer's record of this node decides, not a reconciliation here */
        static const char *const clears[] = {
                "once it is on, 'hostwardenctl fence node2 status' run on a peer clears this.",
                "'hostwardenctl force-up node2' run on a peer clears this.",
        };

        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *rt = synced_runtime_dir();
                RuntimeRecord rec = { NULL };
                Run r;

                assert_int_equal(runtime_record_set(&rec, "since", "2026-11-24T02:00:00Z"), 0);
                assert_int_equal(runtime_record_set(&rec, "by", "admin"), 0);
                assert_int_equal(runtime_marker_set(rt, markers[i], &rec), 0);
                runtime_record_done(&rec);

                r = run_hook(node2_conf, rt, "prepare", "begin", "domains/no-graphics.xml");
                assert_int_equal(r.status, HOOK_REFUSE);
                assert_true(test_contains(r.err, "refusing to start"));
                assert_true(test_contains(r.err, words[i]));
                assert_true(test_contains(r.err, "since 2026-11-24T02:00:00Z, by admin"));
                assert_true(test_contains(r.err, clears[i]));
                run_free(&r);

                r = run_hook(node2_conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");
                assert_int_equal(r.status, HOOK_REFUSE);
                assert_true(test_contains(r.err, "refusing to receive"));
                assert_string_equal(r.out, "");
                run_free(&r);

                /* cleared: allowed again */
                assert_int_equal(runtime_marker_clear(rt, markers[i]), 0);
                r = run_hook(node2_conf, rt, "prepare", "begin", "domains/no-graphics.xml");
                assert_int_equal(r.status, 0);
                run_free(&r);
                test_rm_rf(rt);
        }
}

static void test_disabled_node_refuses_incoming_only_when_configured(void **state)
{
        _cleanup_free_ char *rt = synced_runtime_dir();
        RuntimeRecord rec = { NULL };
        char conf[256];
        Run r;

        assert_int_equal(runtime_record_set(&rec, "reason", "kernel upgrade"), 0);
        assert_int_equal(runtime_marker_set(rt, NODE_MARKER_DISABLED, &rec), 0);
        runtime_record_done(&rec);

        r = run_hook(node2_conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        assert_true(test_contains(r.out, "192.0.2.12"));
        run_free(&r);

        snprintf(conf, sizeof(conf), "%s[hook]\nrefuse_incoming_when_disabled = yes\n", node2_conf);
        r = run_hook(conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, HOOK_REFUSE);
        assert_true(test_contains(r.err, "node 'node2' is disabled (kernel upgrade)"));
        run_free(&r);

        /* a disabled node still starts its own guests */
        r = run_hook(conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        run_free(&r);
        test_rm_rf(rt);
}

static void test_unknown_and_notification_ops_exit_zero(void **state)
{
        static const char *const ops[][2] = {
                { "start", "begin" }, { "started", "begin" },   { "stopped", "end" },
                { "release", "end" }, { "reconnect", "begin" }, { "attach", "begin" },
                { "migrate", "end" }, { "frobnicate", "now" },
        };
        _cleanup_free_ char *rt = synced_runtime_dir();
        RuntimeRecord rec = { NULL };

        /* even with a deny entry: only prepare refuses */
        assert_int_equal(runtime_record_set(&rec, "owner", "node3"), 0);
        assert_int_equal(runtime_deny_add(rt, NOVA_UUID, &rec), 0);
        runtime_record_done(&rec);

        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                Run r = run_hook(node2_conf, rt, ops[i][0], ops[i][1],
                                 "domains/nova-vnc-spice.xml");
                assert_int_equal(r.status, 0);
                assert_string_equal(r.out, "");
                assert_string_equal(r.err, "");
                run_free(&r);
        }
        test_rm_rf(rt);
}

/* The installed binary end to end: argv, stdin, stdout, exit status, environment paths. */
static int spawn_hook(const char *conf_dir, const char *rt, const char *op, const char *subop,
                      const char *fixture, char **ret_out)
{
        const char *hook = getenv("HW_HOOK_PATH");
        const char *data = getenv("HW_TEST_DATA");
        char in_path[4096], out_path[4096], env_conf[4200], env_rt[4200];
        char *argv[] = { (char *)hook, (char *)"instance-0000002a",
                         (char *)op,   (char *)subop,
                         (char *)"-",  NULL };
        char *envp[] = { env_conf, env_rt, (char *)"HOSTWARDEN_LOG=stderr", NULL };
        posix_spawn_file_actions_t fa;
        int status;
        pid_t pid;

        assert_non_null(hook);
        snprintf(in_path, sizeof(in_path), "%s/%s", data, fixture);
        snprintf(out_path, sizeof(out_path), "%s/stdout", rt);
        snprintf(env_conf, sizeof(env_conf), "HOSTWARDEN_CONF_DIR=%s", conf_dir);
        snprintf(env_rt, sizeof(env_rt), "HOSTWARDEN_RUNTIME_DIR=%s", rt);

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        assert_int_equal(posix_spawn(&pid, hook, &fa, NULL, argv, envp), 0);
        posix_spawn_file_actions_destroy(&fa);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(read_full_file(out_path, 1 << 24, ret_out, NULL), 0);
        return WEXITSTATUS(status);
}

static void test_hook_binary_end_to_end(void **state)
{
        _cleanup_free_ char *conf = test_mkdtemp(), *rt = synced_runtime_dir();
        char *out = NULL;
        RuntimeRecord rec = { NULL };

        test_write(conf, "hostwarden.conf", node2_conf);
        assert_int_equal(
                spawn_hook(conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml", &out), 0);
        assert_true(test_contains(out, "listen='192.0.2.12'"));
        free(out);

        assert_int_equal(
                spawn_hook(conf, rt, "started", "begin", "domains/nova-vnc-spice.xml", &out), 0);
        assert_string_equal(out, "");
        free(out);

        assert_int_equal(runtime_record_set(&rec, "owner", "node3"), 0);
        assert_int_equal(runtime_deny_add(rt, NOVA_UUID, &rec), 0);
        runtime_record_done(&rec);
        /* owned by node3, but arriving by a migration node3 started: not refused */
        assert_int_equal(runtime_arriving_lookup(rt, NOVA_UUID, NULL), 1);
        assert_int_equal(
                spawn_hook(conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml", &out), 0);
        free(out);
        /* once the domain stopped here, a start of it is refused */
        assert_int_equal(spawn_hook(conf, rt, "stopped", "end", "domains/nova-vnc-spice.xml", &out),
                         0);
        free(out);
        assert_int_equal(runtime_arriving_lookup(rt, NOVA_UUID, NULL), 0);
        assert_int_equal(
                spawn_hook(conf, rt, "prepare", "begin", "domains/nova-vnc-spice.xml", &out), 1);
        free(out);

        /* the hook keeps no fence options: a value only hostwardend would refuse (it parses
         * them) leaves the hook's configuration valid, and the rewrite happens */
        test_write(conf, "hostwarden.conf.d/90-fence.conf",
                   "[peer node1]\naddress = 192.0.2.11\nfence_agent = fence_ipmilan\n"
                   "fence_options = password hunter2\n");
        assert_int_equal(
                spawn_hook(conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml", &out), 0);
        assert_true(test_contains(out, "listen='192.0.2.12'"));
        free(out);
        {
                char *f;

                assert_true(asprintf(&f, "%s/hostwarden.conf.d/90-fence.conf", conf) > 0);
                assert_int_equal(unlink(f), 0);
                free(f);
        }

        /* a config typo: the hook carries on without rewriting */
        test_write(conf, "hostwarden.conf", "[console]\nlisten = nodee\n");
        assert_int_equal(
                spawn_hook(conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml", &out), 0);
        assert_string_equal(out, "");
        free(out);
        test_rm_rf(conf);
        test_rm_rf(rt);
}

/* ... with the configuration of a directory, as the hook binary would (the firewall helper
 * reads the same directory and runtime directory). */
static Run run_hook_dir(const char *conf_dir, const char *rt, const char *op, const char *subop,
                        const char *fixture)
{
        ConfigDiags diags = { 0 };
        Config *c = NULL;

        assert_int_equal(config_load(conf_dir, &diags, &c), 0);
        config_diags_clear(&diags);
        setenv("HOSTWARDEN_CONF_DIR", conf_dir, 1);
        setenv("HOSTWARDEN_RUNTIME_DIR", rt, 1);
        return run_with(c, rt, "guest", op, subop, fixture);
}

static char *open_set(void)
{
        _cleanup_(fw_closep) FwContext *fw = NULL;
        char **l = NULL, *joined;
        uint64_t digest;

        assert_int_equal(fw_open(&fw), 0);
        if (fw_table_digest(fw, &digest) == 0)
                return strdup("(no table)");
        assert_int_equal(fw_set_list(fw, FW_SET_OPEN4, &l), 0);
        joined = strdup(l[0] ? l[0] : "");
        strv_free(l);
        return joined;
}

static void expect_open_set(const char *expect)
{
        char *got = open_set();
        assert_string_equal(got, expect);
        free(got);
}

static void remove_table(void)
{
        _cleanup_(fw_closep) FwContext *fw = NULL;

        assert_int_equal(fw_open(&fw), 0);
        assert_int_equal(fw_remove(fw), 0);
}

/* The timeout nft shows on the window's elements, e.g. "1m" or "30s". */
static char *window_timeout(void)
{
        char line[1024], *found = NULL;
        FILE *p = popen("nft list set inet hostwarden migration_open4", "r");

        assert_non_null(p);
        while (fgets(line, sizeof(line), p)) {
                char *t = strstr(line, " timeout ");
                if (t && !found) {
                        t += strlen(" timeout ");
                        found = strndup(t, strcspn(t, " ,}"));
                }
        }
        pclose(p);
        return found ? found : strdup("(none)");
}

static void expect_window_timeout(const char *expect)
{
        char *got = window_timeout();
        assert_string_equal(got, expect);
        free(got);
}

static void test_window_opens_on_incoming_and_closes_after_the_last(void **state)
{
        _cleanup_free_ char *conf = test_mkdtemp(), *rt = synced_runtime_dir();
        char path[4096];
        Run r;

        test_write(conf, "hostwarden.conf",
                   "[firewall]\nmigration_sources = 192.0.2.0/24\nopen_window = 1min\n");
        remove_table();

        /* first incoming migration: no prepared batch yet, the helper builds table and batches */
        r = run_hook_dir(conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");
        assert_int_equal(r.status, 0);
        run_free(&r);
        expect_open_set("192.0.2.0/24");
        expect_window_timeout("1m");
        snprintf(path, sizeof(path), "%s/firewall/window-open", rt);
        assert_int_equal(access(path, F_OK), 0);

        /* a second one at the same time (replayed batch) */
        r = run_hook_dir(conf, rt, "migrate", "begin", "domains/vnc-ipv6.xml");
        assert_int_equal(r.status, 0);
        run_free(&r);

        /* a start of an unrelated domain changes nothing */
        r = run_hook_dir(conf, rt, "started", "begin", "domains/no-graphics.xml");
        run_free(&r);
        expect_window_timeout("1m");

        /* the first one's QEMU runs here ("started" comes before the source connects): the
         * window stays as it is */
        r = run_hook_dir(conf, rt, "started", "begin", "domains/nova-vnc-spice.xml");
        run_free(&r);
        expect_open_set("192.0.2.0/24");
        expect_window_timeout("1m");

        /* the second fails (released here): the started one remains, and its source may
         * connect much later (block migration: after the disks): the window stays whole,
         * for hostwardend to keep or close (window-keeper.h) */
        r = run_hook_dir(conf, rt, "release", "end", "domains/vnc-ipv6.xml");
        run_free(&r);
        expect_open_set("192.0.2.0/24");
        expect_window_timeout("1m");

        /* the first one's domain goes away: none remains, the window closes now */
        r = run_hook_dir(conf, rt, "stopped", "end", "domains/nova-vnc-spice.xml");
        run_free(&r);
        expect_open_set("");

        /* someone flushed the ruleset: the next incoming migration re-creates the table */
        assert_int_equal(system("nft flush ruleset"), 0);
        expect_open_set("(no table)");
        r = run_hook_dir(conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");
        run_free(&r);
        expect_open_set("192.0.2.0/24");
        /* a failed incoming migration: released before it started, closed at once */
        r = run_hook_dir(conf, rt, "release", "end", "domains/nova-vnc-spice.xml");
        run_free(&r);
        expect_open_set("");

        remove_table();
        test_rm_rf(conf);
        test_rm_rf(rt);
}

static void test_firewall_left_alone_when_disabled_or_without_sources(void **state)
{
        static const char *const confs[] = {
                "[firewall]\nenable = no\nmigration_sources = 192.0.2.0/24\n",
                "[firewall]\nenable = yes\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(confs); i++) {
                _cleanup_free_ char *conf = test_mkdtemp(), *rt = synced_runtime_dir();
                Run r;

                remove_table();
                test_write(conf, "hostwarden.conf", confs[i]);
                r = run_hook_dir(conf, rt, "migrate", "begin", "domains/nova-vnc-spice.xml");
                assert_int_equal(r.status, 0);
                run_free(&r);
                expect_open_set("(no table)");
                test_rm_rf(conf);
                test_rm_rf(rt);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_migrate_begin_prints_rewritten_xml),
                cmocka_unit_test(test_migrate_begin_prints_nothing_when_unchanged),
                cmocka_unit_test(test_restore_begin_rewrites_too),
                cmocka_unit_test(test_broken_config_leaves_xml_alone_and_continues),
                cmocka_unit_test(test_unreadable_xml_is_not_a_refusal),
                cmocka_unit_test(test_prepare_begin_refuses_denied_uuid_naming_owner_and_time),
                cmocka_unit_test(test_prepare_begin_allows_other_uuids),
                cmocka_unit_test(test_prepare_begin_says_what_the_record_says),
                cmocka_unit_test(test_unsynced_node_refuses_every_start_and_remembers_it),
                cmocka_unit_test(test_unsynced_node_starts_what_an_operator_allowed),
                cmocka_unit_test(test_unsynced_node_receives_an_incoming_migration),
                cmocka_unit_test(
                        test_arrival_marker_lets_a_denied_instance_in_only_within_open_window),
                cmocka_unit_test(test_denied_entry_that_cannot_be_read_still_refuses),
                cmocka_unit_test(test_fenced_or_forced_down_node_refuses_start_and_incoming),
                cmocka_unit_test(test_disabled_node_refuses_incoming_only_when_configured),
                cmocka_unit_test(test_unknown_and_notification_ops_exit_zero),
                cmocka_unit_test(test_hook_binary_end_to_end),
                cmocka_unit_test(test_window_opens_on_incoming_and_closes_after_the_last),
                cmocka_unit_test(test_firewall_left_alone_when_disabled_or_without_sources),
        };
        int r;

        /* In-process runs log to stderr, not to the host's journal, and every firewall change
         * happens in a network namespace of our own, never in the host's nftables. */
        setenv("HOSTWARDEN_LOG", "stderr", 1);
        if (unshare(CLONE_NEWNET) < 0) {
                perror("test-hook: unshare(CLONE_NEWNET) (needs root)");
                return 1;
        }
        if (!getenv("HOSTWARDEN_FIREWALL_HELPER")) {
                fprintf(stderr, "test-hook: HOSTWARDEN_FIREWALL_HELPER is not set (run it through "
                                "meson test)\n");
                return 1;
        }
        log_setup("test-hook");
        r = cmocka_run_group_tests(tests, NULL, NULL);
        xmlCleanupParser();
        return r;
}
