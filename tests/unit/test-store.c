/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "store-internal.h"
#include "store.h"
#include "test-helpers.h"
#include "util.h"

#define UUID_A       "3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5b"
#define UUID_A_UPPER "3F8C5B9E-2D4A-4F61-9B7E-0C1D2E3F4A5B"
#define UUID_B       "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

#define N_WORKERS       4U
#define N_INCREMENTS    25U
#define DOWN_AFTER      (60 * USEC_PER_SEC)
#define T0              (1000 * USEC_PER_SEC)
#define SKEWED_FUTURE   4102444800000000ULL /* 2100-01-01, as usec */
#define VALID_NODE_TEXT "name=node1\nheartbeat=1\nfence=unknown\ngeneration=1\n"

static char *read_text(const char *dir, const char *name)
{
        char path[4096];
        char *text = NULL;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        assert_int_equal(read_full_file(path, 1 << 20, &text, NULL), 0);
        return text;
}

static mode_t file_mode(const char *dir, const char *name)
{
        char path[4096];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        assert_int_equal(stat(path, &st), 0);
        return st.st_mode & 07777;
}

/*
 * Every behaviour test runs against both backends (DESIGN.md §4: one behaviour). With etcd,
 * a real etcd member that the group setup starts on loopback as production runs one: TLS
 * with certificates of a CA made for the run (gnutls' certtool), client certificates
 * required (--client-cert-auth), peer TLS, and etcd's authentication on (user "root" with
 * a password). Each test's temporary directory names its own key prefix, so tests never see
 * each other's records.
 */
#define ETCD_PASSWORD "unit-test-password-7f3a"

static bool etcd_mode;
static char etcd_endpoint[64];
static pid_t etcd_pid;
static char *etcd_dir;
static char etcd_ca[4096], etcd_ca_key[4096], etcd_cert[4096], etcd_key[4096],
        etcd_server_cert[4096], etcd_server_key[4096];
/* what hostwardend is given: the CA, a client certificate, the user and its password */
static EtcdOptions etcd_opts;

static int use_dir(void **state)
{
        etcd_mode = false;
        return 0;
}

static int use_etcd(void **state)
{
        etcd_mode = true;
        return 0;
}

/* A Store of the current backend for node, in the namespace dir names, of no cluster yet. */
static int open_store_bare(const char *dir, const char *node, Store **ret)
{
        if (etcd_mode) {
                char *endpoints[] = { etcd_endpoint, NULL };
                _cleanup_free_ char *copy = strdup(dir), *prefix = NULL;

                if (!copy || asprintf(&prefix, "/hwtest/%s", basename(copy)) < 0)
                        return -ENOMEM;
                return store_open_etcd(endpoints, prefix, node, 10, &etcd_opts, ret);
        }
        return store_open_dir(dir, node, ret);
}

/* The same, initialized as a cluster's store (by whichever Store gets there first). */
static int open_store_any(const char *dir, const char *node, Store **ret)
{
        Store *s = NULL;
        int r;

        r = open_store_bare(dir, node, &s);
        if (r < 0)
                return r;
        r = store_cluster_init(s, NULL, true, NULL);
        if (r < 0 && r != -EEXIST) {
                print_error("store_cluster_init: %s (%s)\n", strerror(-r), store_error_detail(s));
                store_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static Store *open_store(const char *dir, const char *node)
{
        Store *s = NULL;

        assert_int_equal(open_store_any(dir, node, &s), 0);
        assert_non_null(s);
        return s;
}

/* The stored text of a record, as the backend keeps it. */
static char *raw_read(Store *s, StoreSpace sp, const char *key)
{
        char *text = NULL;

        assert_int_equal(s->ops->read(s, sp, key, 1 << 20, &text, NULL), 0);
        return text;
}

/* Text written where a record lives, bypassing every check (a corrupt or foreign record). */
static void raw_write(Store *s, StoreSpace sp, const char *key, const char *text)
{
        assert_int_equal(s->ops->write(s, sp, key, text, STORE_ANY_VERSION, 0644), 0);
}

static uint16_t free_port(void)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

/* Runs argv (a tool of the test's setup) with input on its standard input and its output in
 * etcd_dir/setup.log; its exit status, or -1. env: one more "NAME=value", or NULL. */
static int run_tool(const char *input, const char *env, char *const argv[])
{
        int in[2], status;
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0)
                return -1;
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                char log[4096];
                int fd;

                snprintf(log, sizeof(log), "%s/setup.log", etcd_dir);
                fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                dup2(in[0], STDIN_FILENO);
                if (env)
                        putenv((char *)env);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(in[0]);
        if (input && write(in[1], input, strlen(input)) != (ssize_t)strlen(input)) {
                close(in[1]);
                waitpid(pid, NULL, 0);
                return -1;
        }
        close(in[1]);
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

/* name.pem and name-key.pem in etcd_dir: a certificate of template's (certtool's lines)
 * signed by the run's CA, or (self_signed) that CA. */
static int make_cert(const char *name, const char *template, bool self_signed, char *ret_cert,
                     char *ret_key)
{
        _cleanup_free_ char *file = NULL, *info = NULL;
        int r;

        snprintf(ret_key, 4096, "%s/%s-key.pem", etcd_dir, name);
        snprintf(ret_cert, 4096, "%s/%s.pem", etcd_dir, name);
        if (asprintf(&file, "%s.info", name) < 0 || asprintf(&info, "%s/%s", etcd_dir, file) < 0)
                return -1;
        test_write(etcd_dir, file, template);
        r = run_tool(NULL, NULL,
                     (char *[]){ "certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile",
                                 ret_key, NULL });
        if (r == 0 && self_signed)
                r = run_tool(NULL, NULL,
                             (char *[]){ "certtool", "--generate-self-signed", "--load-privkey",
                                         ret_key, "--template", info, "--outfile", ret_cert,
                                         NULL });
        else if (r == 0)
                r = run_tool(NULL, NULL,
                             (char *[]){ "certtool", "--generate-certificate", "--load-privkey",
                                         ret_key, "--load-ca-certificate", etcd_ca,
                                         "--load-ca-privkey", etcd_ca_key, "--template", info,
                                         "--outfile", ret_cert, NULL });
        return r == 0 ? 0 : -1;
}

/* etcdctl against the test member, as its client (and as root once authentication is on:
 * the password in the environment, never on a command line). */
static int etcdctl(const char *input, char *const args[])
{
        char *argv[16] = { "etcdctl", "--endpoints", etcd_endpoint, "--cacert", etcd_ca,
                           "--cert",  etcd_cert,     "--key",       etcd_key };
        size_t n = 9;

        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        return run_tool(input, "ETCDCTL_USER=root:" ETCD_PASSWORD, argv);
}

/* One etcd member on loopback (Debian's etcd-server), for the etcd half of the tests. */
static int etcd_start(void **state)
{
        char client[64], peer[64], cluster[96], data[4096];
        uint16_t cport = free_port(), pport = free_port();
        Store *s = NULL;
        int r = -1;

        etcd_dir = test_mkdtemp();
        snprintf(data, sizeof(data), "%s/data", etcd_dir);
        snprintf(client, sizeof(client), "https://127.0.0.1:%u", cport);
        snprintf(peer, sizeof(peer), "https://127.0.0.1:%u", pport);
        snprintf(cluster, sizeof(cluster), "test=%s", peer);
        snprintf(etcd_endpoint, sizeof(etcd_endpoint), "%s", client);
        /* the member's certificate serves its clients and peers, and is the client
         * certificate of its own JSON gateway */
        if (make_cert("ca",
                      "cn = \"hostwarden unit test CA\"\nca\ncert_signing_key\n"
                      "expiration_days = 2\n",
                      true, etcd_ca, etcd_ca_key) < 0 ||
            make_cert("server",
                      "cn = \"localhost\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\n"
                      "tls_www_server\ntls_www_client\nsigning_key\nencryption_key\n"
                      "expiration_days = 2\n",
                      false, etcd_server_cert, etcd_server_key) < 0 ||
            /* no CN: etcd refuses one on the gateway once authentication is on */
            make_cert("client",
                      "dns_name = \"hostwarden-unit-test\"\ntls_www_client\nsigning_key\n"
                      "encryption_key\nexpiration_days = 2\n",
                      false, etcd_cert, etcd_key) < 0) {
                print_error("cannot make the test certificates (is gnutls-bin installed?): see "
                            "%s/setup.log\n",
                            etcd_dir);
                return -1;
        }
        /* generous timeouts: under valgrind, a TLS handshake alone takes seconds (no test
         * waits for one to expire: a member that is not there refuses the connection) */
        etcd_opts = (EtcdOptions){ .ca_file = etcd_ca,
                                   .cert_file = etcd_cert,
                                   .key_file = etcd_key,
                                   .connect_timeout_ms = 30000,
                                   .timeout_ms = 60000 };

        etcd_pid = fork();
        if (etcd_pid < 0)
                return -1;
        if (etcd_pid == 0) {
                char log[4096];
                int fd;

                snprintf(log, sizeof(log), "%s/etcd.log", etcd_dir);
                fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                execlp("etcd", "etcd", "--name", "test", "--data-dir", data, "--listen-client-urls",
                       client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
                       "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
                       "--initial-cluster-state", "new", "--cert-file", etcd_server_cert,
                       "--key-file", etcd_server_key, "--trusted-ca-file", etcd_ca,
                       "--client-cert-auth", "--peer-cert-file", etcd_server_cert,
                       "--peer-key-file", etcd_server_key, "--peer-trusted-ca-file", etcd_ca,
                       "--peer-client-cert-auth",
                       /* passwords hashed cheaply: every Store authenticates once */
                       "--bcrypt-cost", "4", (char *)NULL);
                _exit(127);
        }
        /* ready when a listing answers */
        for (unsigned i = 0; i < 200 && r < 0; i++) {
                NodeRecord *list = NULL;
                size_t n = 0;
                char *endpoints[] = { etcd_endpoint, NULL };

                usleep(50000);
                if (store_open_etcd(endpoints, "/hwtest/ready", "probe", 10, &etcd_opts, &s) < 0)
                        break;
                r = store_node_list(s, &list, &n);
                node_record_array_free(list, n);
                s = store_free(s);
                if (waitpid(etcd_pid, NULL, WNOHANG) == etcd_pid) {
                        print_error("etcd exited: is etcd-server installed? See %s/etcd.log\n",
                                    etcd_dir);
                        etcd_pid = 0;
                        return -1;
                }
        }
        if (r < 0) {
                print_error("etcd did not answer at %s: see %s/etcd.log\n", etcd_endpoint,
                            etcd_dir);
                return -1;
        }
        /* authentication on: root first (etcd's rule), its password on etcdctl's stdin */
        if (etcdctl(ETCD_PASSWORD "\n",
                    (char *[]){ "user", "add", "root", "--interactive=false", NULL }) != 0 ||
            etcdctl(NULL, (char *[]){ "auth", "enable", NULL }) != 0) {
                print_error("cannot turn etcd's authentication on: see %s/setup.log\n", etcd_dir);
                return -1;
        }
        etcd_opts.user = "root";
        etcd_opts.password = ETCD_PASSWORD;
        return 0;
}

static int etcd_stop(void **state)
{
        if (etcd_pid > 0) {
                kill(etcd_pid, SIGTERM);
                waitpid(etcd_pid, NULL, 0);
        }
        if (etcd_dir)
                test_rm_rf(etcd_dir);
        free(etcd_dir);
        return 0;
}

/* ---- round trips ---------------------------------------------------------------------- */

static int fill_node(NodeRecord *r, void *userdata)
{
        r->address = strdup("192.0.2.7");
        r->storage_mark = strdup("0123456789abcdef0123456789abcdef");
        r->disabled = true;
        r->disabled_reason = strdup("maintenance: swap DIMM 3 (ticket #42)");
        r->disabled_since = 1700000000000001ULL;
        r->forced_down = true;
        r->forced_down_by = strdup("admin");
        r->forced_down_since = 1700000000000002ULL;
        r->fence = FENCE_OFF;
        r->fence_time = 1700000000000003ULL;
        r->maintenance = MAINTENANCE_DRAINING;
        r->maintenance_since = 1700000000000004ULL;
        r->maintenance_deadline = 1700000000000005ULL;
        r->maintenance_left = strdup(UUID_A "@node3," UUID_B "@node4");
        r->maintenance_return = true;
        r->generation = 999; /* ignored: the store sets it */
        return 0;
}

static int enable_node(NodeRecord *r, void *userdata)
{
        r->disabled = false;
        free(r->disabled_reason);
        r->disabled_reason = NULL;
        r->fence = FENCE_ON;
        r->maintenance = MAINTENANCE_OFF; /* the guests that left are kept for Exit's return */
        r->maintenance_deadline = 0;
        r->maintenance_return = false;
        return 0;
}

static void test_node_record_round_trip(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        _cleanup_(node_record_done) NodeRecord n = {}, written = {};
        NodeRecord *list = NULL;
        size_t n_list = 0;

        assert_int_equal(store_node_get(s, "node2", &n), -ENOENT);
        assert_int_equal(store_node_update(s, "node2", fill_node, NULL, &written), 0);
        assert_int_equal(written.generation, 1);

        assert_int_equal(store_node_get(s, "node2", &n), 0);
        assert_string_equal(n.name, "node2");
        assert_string_equal(n.address, "192.0.2.7");
        assert_string_equal(n.storage_mark, "0123456789abcdef0123456789abcdef");
        assert_true(n.disabled);
        assert_string_equal(n.disabled_reason, "maintenance: swap DIMM 3 (ticket #42)");
        assert_int_equal(n.disabled_since, 1700000000000001ULL);
        assert_int_equal(n.heartbeat, 0);
        assert_true(n.forced_down);
        assert_string_equal(n.forced_down_by, "admin");
        assert_int_equal(n.forced_down_since, 1700000000000002ULL);
        assert_int_equal(n.fence, FENCE_OFF);
        assert_int_equal(n.fence_time, 1700000000000003ULL);
        assert_int_equal(n.maintenance, MAINTENANCE_DRAINING);
        assert_int_equal(n.maintenance_since, 1700000000000004ULL);
        assert_int_equal(n.maintenance_deadline, 1700000000000005ULL);
        assert_string_equal(n.maintenance_left, UUID_A "@node3," UUID_B "@node4");
        assert_true(n.maintenance_return);
        assert_int_equal(n.generation, 1);
        node_record_done(&n);

        assert_int_equal(store_node_update(s, "node2", enable_node, NULL, NULL), 0);
        assert_int_equal(store_node_get(s, "node2", &n), 0);
        assert_false(n.disabled);
        assert_null(n.disabled_reason);
        assert_string_equal(n.address, "192.0.2.7"); /* untouched fields survive */
        assert_string_equal(n.storage_mark, "0123456789abcdef0123456789abcdef");
        assert_int_equal(n.fence, FENCE_ON);
        assert_int_equal(n.maintenance, MAINTENANCE_OFF);
        assert_int_equal(n.maintenance_deadline, 0);
        assert_string_equal(n.maintenance_left, UUID_A "@node3," UUID_B "@node4");
        assert_false(n.maintenance_return);
        assert_int_equal(n.generation, 2);
        node_record_done(&n);

        /* the heartbeat creates the record of this node, with what it says of the node */
        assert_int_equal(store_heartbeat(s), 0);
        store_set_max_incoming(s, 3);
        assert_int_equal(store_heartbeat(s), 0);
        assert_int_equal(store_node_get(s, "node1", &n), 0);
        assert_int_equal(n.heartbeat, 2);
        assert_int_equal(n.generation, 2);
        assert_int_equal(n.fence, FENCE_UNKNOWN);
        assert_null(n.address);
        assert_true(n.heartbeat_time > 0);
        assert_int_equal(n.max_incoming, 3);

        assert_int_equal(store_node_list(s, &list, &n_list), 0);
        assert_int_equal(n_list, 2);
        assert_string_equal(list[0].name, "node1");
        assert_string_equal(list[1].name, "node2");
        assert_int_equal(list[1].fence, FENCE_ON);
        list = node_record_array_free(list, n_list);

        assert_string_equal(fence_state_to_string(FENCE_OFF), "off");
        assert_int_equal(fence_state_from_string("on"), FENCE_ON);
        assert_int_equal(fence_state_from_string("maybe"), _FENCE_STATE_INVALID);
        test_rm_rf(dir);
}

/* The tables behind the enum names: every value has its name, and anything else has none. */
static void test_enum_names(void **state)
{
        assert_string_equal(instance_power_to_string(INSTANCE_POWER_SHUTOFF), "shutoff");
        assert_int_equal(instance_power_from_string("paused"), INSTANCE_POWER_PAUSED);
        assert_int_equal(instance_power_from_string("Paused"), _INSTANCE_POWER_INVALID);
        assert_int_equal(instance_power_from_string(NULL), _INSTANCE_POWER_INVALID);
        assert_null(instance_power_to_string(_INSTANCE_POWER_MAX));
        assert_null(instance_power_to_string(_INSTANCE_POWER_INVALID));
        assert_int_equal(fence_state_from_string(NULL), _FENCE_STATE_INVALID);
        assert_null(fence_state_to_string(_FENCE_STATE_MAX));
        assert_string_equal(node_liveness_to_string(NODE_DOWN), "down");
        assert_null(node_liveness_to_string(_NODE_LIVENESS_MAX));
        for (InstancePower p = 0; p < _INSTANCE_POWER_MAX; p++)
                assert_int_equal(instance_power_from_string(instance_power_to_string(p)), p);
}

static void test_instance_record_round_trip(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        _cleanup_(instance_record_done) InstanceRecord got = {};
        _cleanup_free_ char *text = NULL;
        InstanceRecord rec = {
                .uuid = UUID_A_UPPER, /* stored in canonical lower case */
                .name = "instance-0000002a",
                .owner = "node2",
                .evacuated_from = "node1",
                .time = 1700000000123456ULL,
                .power = INSTANCE_POWER_PAUSED,
                .deleted = true,
        };
        InstanceRecord rec_b = { .uuid = UUID_B, .owner = "node1", .time = 1 };
        InstanceRecord *list = NULL;
        size_t n_list = 0;
        uint64_t gen = 0;

        assert_int_equal(store_instance_get(s, UUID_A, &got), -ENOENT);
        assert_int_equal(store_instance_cas(s, &rec, 0, &gen), 0);
        assert_int_equal(gen, 1);
        assert_int_equal(store_instance_cas(s, &rec_b, 0, NULL), 0);

        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        assert_string_equal(got.uuid, UUID_A);
        assert_string_equal(got.name, "instance-0000002a");
        assert_string_equal(got.owner, "node2");
        assert_string_equal(got.evacuated_from, "node1");
        assert_int_equal(got.time, 1700000000123456ULL);
        assert_int_equal(got.power, INSTANCE_POWER_PAUSED);
        assert_true(got.deleted);
        assert_int_equal(got.generation, 1);
        instance_record_done(&got);

        assert_int_equal(store_instance_get(s, UUID_A_UPPER, &got), 0);
        assert_string_equal(got.uuid, UUID_A);
        instance_record_done(&got);

        /* the stored format: key=value lines, generation last */
        text = raw_read(s, STORE_INSTANCES, UUID_A);
        assert_true(test_contains(text, "owner=node2\n"));
        assert_true(test_contains(text, "\ngeneration=1\n"));
        assert_string_equal(strstr(text, "generation="), "generation=1\n");
        if (!etcd_mode) {
                free(text);
                text = read_text(dir, "instances/" UUID_A);
                assert_string_equal(strstr(text, "generation="), "generation=1\n");
                assert_int_equal(file_mode(dir, "instances/" UUID_A), 0644);
        }

        assert_int_equal(store_instance_get(s, UUID_B, &got), 0);
        assert_null(got.name);
        assert_null(got.evacuated_from);
        assert_int_equal(got.power, INSTANCE_POWER_UNKNOWN); /* as an older version wrote it */
        assert_false(got.deleted);

        assert_int_equal(store_instance_list(s, &list, &n_list), 0);
        assert_int_equal(n_list, 2);
        assert_string_equal(list[0].uuid, UUID_B); /* sorted */
        assert_string_equal(list[1].uuid, UUID_A);
        assert_string_equal(list[1].owner, "node2");
        list = instance_record_array_free(list, n_list);
        test_rm_rf(dir);
}

/* A cold migration's keys (coldmig.h) go in and come out as they were; the files' paths with
 * blanks and percent signs too; a record half-written by hand is refused. */
static void test_instance_record_cold_migration(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        _cleanup_(instance_record_done) InstanceRecord got = {};
        _cleanup_free_ char *text = NULL;
        char *disks[] = { "/var/lib/libvirt/images/a b.qcow2", "/srv/100%/c.raw", NULL };
        InstanceRecord rec = {
                .uuid = UUID_A,
                .name = "vm",
                .owner = "node2",
                .time = 5,
                .power = INSTANCE_POWER_RUNNING,
                .cold_source = "node1",
                .cold_migration = "0123456789abcdef",
                .cold_state = "verify",
                .cold_disks = disks,
                .cold_power = INSTANCE_POWER_RUNNING,
        };
        uint64_t gen = 0;

        assert_int_equal(store_instance_cas(s, &rec, 0, &gen), 0);
        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        assert_string_equal(got.cold_source, "node1");
        assert_string_equal(got.cold_migration, "0123456789abcdef");
        assert_string_equal(got.cold_state, "verify");
        assert_int_equal(got.cold_power, INSTANCE_POWER_RUNNING);
        assert_int_equal(strv_length(got.cold_disks), 2);
        assert_string_equal(got.cold_disks[0], disks[0]);
        assert_string_equal(got.cold_disks[1], disks[1]);
        instance_record_done(&got);
        text = raw_read(s, STORE_INSTANCES, UUID_A);
        assert_true(test_contains(text, "cold_disks=/var/lib/libvirt/images/a%20b.qcow2 "
                                        "/srv/100%25/c.raw\n"));

        /* a cold migration of a guest without local disks copies none */
        rec.cold_disks = NULL;
        assert_int_equal(store_instance_cas(s, &rec, gen, &gen), 0);
        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        assert_null(got.cold_disks);
        assert_string_equal(got.cold_state, "verify");
        instance_record_done(&got);

        /* the keys go with the migration's end */
        rec.cold_source = NULL;
        assert_int_equal(store_instance_cas(s, &rec, gen, &gen), 0);
        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        assert_null(got.cold_source);
        assert_null(got.cold_state);
        instance_record_done(&got);

        /* what cannot be written */
        rec.cold_source = "node1";
        rec.cold_state = "halfway";
        assert_int_equal(store_instance_cas(s, &rec, gen, NULL), -EINVAL);
        rec.cold_state = "verify";
        rec.cold_migration = NULL;
        assert_int_equal(store_instance_cas(s, &rec, gen, NULL), -EINVAL);
        rec.cold_migration = "0123456789abcdef";
        disks[1] = "relative/path";
        rec.cold_disks = disks;
        assert_int_equal(store_instance_cas(s, &rec, gen, NULL), -EINVAL);
        test_rm_rf(dir);
}

static void test_definition_round_trip_mode_0600(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *xml = NULL;
        char defs[4096];
        mode_t old_umask;

        /* a definitions directory left too open (another node's umask) is tightened */
        snprintf(defs, sizeof(defs), "%s/definitions", dir);
        assert_int_equal(mkdir(defs, 0777), 0);
        assert_int_equal(chmod(defs, 0777), 0);

        old_umask = umask(0);
        s = open_store(dir, "node1");
        assert_int_equal(store_definition_get(s, UUID_A, &xml), -ENOENT);
        assert_int_equal(store_definition_put(s, UUID_A_UPPER, "<domain><name>a</name></domain>"),
                         0);
        umask(old_umask);

        if (!etcd_mode) {
                assert_int_equal(file_mode(dir, "definitions"), 0700);
                assert_int_equal(file_mode(dir, "definitions/" UUID_A ".xml"), 0600);
        }
        assert_int_equal(store_definition_get(s, UUID_A, &xml), 0);
        assert_string_equal(xml, "<domain><name>a</name></domain>");
        free(xml);
        xml = NULL;

        assert_int_equal(store_definition_put(s, UUID_A, "<domain>v2</domain>\n"), 0);
        assert_int_equal(store_definition_get(s, UUID_A_UPPER, &xml), 0);
        assert_string_equal(xml, "<domain>v2</domain>\n");
        if (!etcd_mode)
                assert_int_equal(file_mode(dir, "definitions/" UUID_A ".xml"), 0600);

        assert_int_equal(store_definition_remove(s, UUID_A), 0);
        assert_int_equal(store_definition_get(s, UUID_A, &xml), -ENOENT);
        assert_int_equal(store_definition_remove(s, UUID_A), 0); /* idempotent */
        test_rm_rf(dir);
}

static void test_cached_node_list(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        _cleanup_(store_freep) Store *other = open_store(dir, "node2");
        NodeRecord *list = NULL;
        size_t n = 0;

        assert_int_equal(store_node_list_cached(s, T0, USEC_PER_SEC, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);

        assert_int_equal(store_heartbeat(s), 0); /* own write: seen at once */
        assert_int_equal(store_node_list_cached(s, T0 + 1, USEC_PER_SEC, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].name, "node1");
        assert_int_equal(list[0].heartbeat, 1);
        list = node_record_array_free(list, n);

        /* another writer: not seen until the listing is max_age old */
        assert_int_equal(store_heartbeat(other), 0);
        assert_int_equal(store_node_list_cached(s, T0 + USEC_PER_SEC, USEC_PER_SEC, &list, &n), 0);
        assert_int_equal(n, 1);
        list = node_record_array_free(list, n);
        assert_int_equal(store_node_list_cached(s, T0 + 1 + USEC_PER_SEC, USEC_PER_SEC, &list, &n),
                         0);
        assert_int_equal(n, 2);
        assert_string_equal(list[1].name, "node2");
        /* the copy is the caller's: changing it does not change the cache */
        free(list[0].name);
        list[0].name = strdup("changed");
        list = node_record_array_free(list, n);
        assert_int_equal(store_node_list_cached(s, T0 + 2 + USEC_PER_SEC, USEC_PER_SEC, &list, &n),
                         0);
        assert_string_equal(list[0].name, "node1");
        list = node_record_array_free(list, n);

        /* own update with its strings: seen at once */
        assert_int_equal(store_node_update(s, "node1", fill_node, NULL, NULL), 0);
        assert_int_equal(store_node_list_cached(s, T0 + 3 + USEC_PER_SEC, USEC_PER_SEC, &list, &n),
                         0);
        assert_string_equal(list[0].disabled_reason, "maintenance: swap DIMM 3 (ticket #42)");
        assert_string_equal(list[0].forced_down_by, "admin");
        list = node_record_array_free(list, n);
        test_rm_rf(dir);
}

/* ---- compare-and-swap ----------------------------------------------------------------- */

static void test_instance_cas_semantics(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        _cleanup_(instance_record_done) InstanceRecord got = {};
        InstanceRecord rec = { .uuid = UUID_A, .owner = "node1", .time = 1 };
        uint64_t gen = 0;

        assert_int_equal(store_instance_cas(s, &rec, 0, &gen), 0);
        assert_int_equal(gen, 1);

        /* create again: refused, the record is untouched */
        rec.owner = "node2";
        gen = 77;
        assert_int_equal(store_instance_cas(s, &rec, 0, &gen), -EEXIST);
        assert_int_equal(gen, 77); /* not written on failure */
        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        assert_string_equal(got.owner, "node1");
        instance_record_done(&got);

        /* wrong generations */
        assert_int_equal(store_instance_cas(s, &rec, 2, &gen), -ESTALE);
        assert_int_equal(store_instance_cas(s, &rec, 5, &gen), -ESTALE);
        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        assert_string_equal(got.owner, "node1");
        assert_int_equal(got.generation, 1);
        instance_record_done(&got);

        /* the right one, and the generation increments */
        assert_int_equal(store_instance_cas(s, &rec, 1, &gen), 0);
        assert_int_equal(gen, 2);
        rec.owner = "node3";
        assert_int_equal(store_instance_cas(s, &rec, 2, &gen), 0);
        assert_int_equal(gen, 3);
        assert_int_equal(store_instance_cas(s, &rec, 2, &gen), -ESTALE); /* used up */
        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        assert_string_equal(got.owner, "node3");
        assert_int_equal(got.generation, 3);
        instance_record_done(&got);

        /* remove with the wrong generation is refused */
        assert_int_equal(store_instance_remove(s, UUID_A, 2), -ESTALE);
        assert_int_equal(store_instance_remove(s, UUID_A, 0), -ESTALE);
        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        instance_record_done(&got);
        assert_int_equal(store_instance_remove(s, UUID_A_UPPER, 3), 0);
        assert_int_equal(store_instance_get(s, UUID_A, &got), -ENOENT);
        assert_int_equal(store_instance_remove(s, UUID_A, 3), -ENOENT);

        /* gone: only a create succeeds */
        assert_int_equal(store_instance_cas(s, &rec, 3, &gen), -ESTALE);
        assert_int_equal(store_instance_cas(s, &rec, 0, &gen), 0);
        assert_int_equal(gen, 1);
        test_rm_rf(dir);
}

/* ---- concurrency ---------------------------------------------------------------------- */

/*
 * One read-CAS-increment: the count travels in the record's name, so a lost update shows both
 * in the generation and in the count. Returns 0, or <0 on an unexpected error. Counts -ESTALE
 * retries in *retries.
 */
static int instance_increment(Store *s, unsigned *retries)
{
        for (;;) {
                _cleanup_(instance_record_done) InstanceRecord cur = {};
                char name[32];
                InstanceRecord next;
                unsigned long count;
                int r;

                r = store_instance_get(s, UUID_A, &cur);
                if (r < 0)
                        return r;
                if (sscanf(cur.name, "count-%lu", &count) != 1)
                        return -EBADMSG;
                snprintf(name, sizeof(name), "count-%lu", count + 1);
                next = cur;
                next.name = name;
                r = store_instance_cas(s, &next, cur.generation, NULL);
                if (r != -ESTALE)
                        return r;
                (*retries)++;
        }
}

static int count_heartbeat(NodeRecord *r, void *userdata)
{
        r->heartbeat++;
        return 0;
}

typedef struct Worker {
        const char *dir;
        char node[16];
        int result;
        unsigned retries;
        pthread_t thread;
} Worker;

/* Each worker has its own Store, as each process or node would. */
static void worker_run(Worker *w)
{
        Store *s = NULL;

        w->result = open_store_any(w->dir, w->node, &s);
        for (unsigned i = 0; w->result >= 0 && i < N_INCREMENTS; i++) {
                w->result = instance_increment(s, &w->retries);
                if (w->result >= 0)
                        w->result = store_node_update(s, "shared", count_heartbeat, NULL, NULL);
                if (w->result >= 0)
                        w->result = store_heartbeat(s);
        }
        store_free(s);
}

static void *worker_thread(void *userdata)
{
        worker_run(userdata);
        return NULL;
}

static void create_counter(const char *dir)
{
        _cleanup_(store_freep) Store *s = open_store(dir, "node0");
        InstanceRecord rec = { .uuid = UUID_A, .name = "count-0", .owner = "node0", .time = 1 };

        assert_int_equal(store_instance_cas(s, &rec, 0, NULL), 0);
}

static void check_counts(const char *dir, unsigned n_workers, bool same_node)
{
        _cleanup_(store_freep) Store *s = open_store(dir, "node0");
        _cleanup_(instance_record_done) InstanceRecord inst = {};
        _cleanup_(node_record_done) NodeRecord shared = {}, own = {};
        char expect[32];

        assert_int_equal(store_instance_get(s, UUID_A, &inst), 0);
        snprintf(expect, sizeof(expect), "count-%u", n_workers * N_INCREMENTS);
        assert_string_equal(inst.name, expect);
        assert_int_equal(inst.generation, 1 + n_workers * N_INCREMENTS);

        assert_int_equal(store_node_get(s, "shared", &shared), 0);
        assert_int_equal(shared.heartbeat, n_workers * N_INCREMENTS);
        assert_int_equal(shared.generation, n_workers * N_INCREMENTS);

        if (same_node) {
                /* all workers heartbeat as "worker": one record, every bump counted */
                assert_int_equal(store_node_get(s, "worker", &own), 0);
                assert_int_equal(own.heartbeat, n_workers * N_INCREMENTS);
                assert_int_equal(own.generation, n_workers * N_INCREMENTS);
        }
}

static void test_concurrent_processes_lose_no_update(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        pid_t pids[N_WORKERS];

        create_counter(dir);
        for (unsigned i = 0; i < N_WORKERS; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        Worker w = { .dir = dir, .node = "worker" };

                        worker_run(&w);
                        _exit(w.result < 0 ? 1 : 0);
                }
        }
        for (unsigned i = 0; i < N_WORKERS; i++) {
                int status;

                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }
        check_counts(dir, N_WORKERS, true);
        test_rm_rf(dir);
}

/* OFD locks, unlike classic POSIX locks, also exclude threads of one process. */
static void test_concurrent_threads_lose_no_update(void **state)
{
        _cleanup_free_ char *dir = NULL;
        Worker w[N_WORKERS] = {};
        unsigned retries = 0;

        /* Valgrind (3.19) does not know that F_OFD_SETLKW blocks: it keeps its one big lock
         * while a thread waits in it, so the thread holding our lock never runs again. */

        dir = test_mkdtemp();
        create_counter(dir);
        for (unsigned i = 0; i < N_WORKERS; i++) {
                w[i].dir = dir;
                snprintf(w[i].node, sizeof(w[i].node), "worker%u", i);
                assert_int_equal(pthread_create(&w[i].thread, NULL, worker_thread, &w[i]), 0);
        }
        for (unsigned i = 0; i < N_WORKERS; i++) {
                assert_int_equal(pthread_join(w[i].thread, NULL), 0);
                assert_int_equal(w[i].result, 0);
                retries += w[i].retries;
        }
        check_counts(dir, N_WORKERS, false);
        print_message("%u CAS retries on -ESTALE among %u threads\n", retries, N_WORKERS);
        test_rm_rf(dir);
}

/* ---- atomicity ------------------------------------------------------------------------ */

static void test_temp_files_are_not_records(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        _cleanup_(instance_record_done) InstanceRecord got = {};
        InstanceRecord rec = { .uuid = UUID_A, .owner = "node1", .time = 1 };
        InstanceRecord *list = NULL;
        NodeRecord *nodes = NULL;
        size_t n = 0;

        assert_int_equal(store_instance_cas(s, &rec, 0, NULL), 0);
        assert_int_equal(store_heartbeat(s), 0);

        /* what crashed writers leave behind: complete and half-written temp files */
        test_write(dir, "instances/." UUID_B ".tmp.0123456789abcdef",
                   "uuid=" UUID_B "\nowner=node2\ntime=1\ngeneration=1\n");
        test_write(dir, "instances/." UUID_A ".tmp.fedcba9876543210", "uuid=" UUID_A "\nown");
        test_write(dir, "nodes/.node2.tmp.0123456789abcdef", "name=node2\nheartbeat=4");
        test_write(dir, "nodes/.node1.tmp.0123456789abcdef", "");

        assert_int_equal(store_instance_list(s, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].uuid, UUID_A);
        list = instance_record_array_free(list, n);
        assert_int_equal(store_instance_get(s, UUID_B, &got), -ENOENT);
        assert_int_equal(store_instance_get(s, UUID_A, &got), 0);
        assert_int_equal(got.generation, 1);

        assert_int_equal(store_node_list(s, &nodes, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(nodes[0].name, "node1");
        nodes = node_record_array_free(nodes, n);
        assert_int_equal(store_node_get(s, "node2", &(NodeRecord){}), -ENOENT);

        /* and writing still works next to them */
        assert_int_equal(store_instance_cas(s, &rec, 1, NULL), 0);
        assert_int_equal(store_heartbeat(s), 0);
        test_rm_rf(dir);
}

static void test_half_written_record_is_bad_not_absent(void **state)
{
        static const char *const cut[] = {
                "uuid=" UUID_B "\nowner=node2\ntime=1\ngeneration=1", /* no final newline */
                "uuid=" UUID_B "\nowner=node2\ntime=1\n",             /* generation missing */
                "uuid=" UUID_B "\nowner=no",
                "",
        };
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        InstanceRecord rec = { .uuid = UUID_A, .owner = "node1", .time = 1 };
        InstanceRecord *list = NULL;
        size_t n = 0;

        assert_int_equal(store_instance_cas(s, &rec, 0, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(cut); i++) {
                InstanceRecord got = {};

                test_write(dir, "instances/" UUID_B, cut[i]);
                assert_int_equal(store_instance_get(s, UUID_B, &got), -EBADMSG);
                assert_int_equal(store_instance_list(s, &list, &n), -EBADMSG);
                assert_null(list);
                /* nor is it overwritten as if it were absent */
                rec = (InstanceRecord){ .uuid = UUID_B, .owner = "node1", .time = 1 };
                assert_int_equal(store_instance_cas(s, &rec, 0, NULL), -EBADMSG);
                assert_int_equal(store_instance_remove(s, UUID_B, 1), -EBADMSG);
        }
        /* the complete version is fine */
        test_write(dir, "instances/" UUID_B,
                   "uuid=" UUID_B "\nowner=node2\ntime=1\ngeneration=1\n");
        assert_int_equal(store_instance_list(s, &list, &n), 0);
        assert_int_equal(n, 2);
        list = instance_record_array_free(list, n);
        test_rm_rf(dir);
}

/*
 * Crash safety: a writer killed at any point leaves the old record or the new one, never
 * none, never a mix, and never a lock that keeps others out. The writer runs in a child
 * under ptrace, which is killed (SIGKILL, as the OOM killer or a power cut would) at its
 * k-th system call, for k = 1, 2, ... until a run completes without reaching k: every
 * boundary between two system calls of the write is tried.
 */
typedef enum CrashOp { CRASH_INSTANCE_CAS, CRASH_NODE_UPDATE, CRASH_DEFINITION_PUT } CrashOp;

#define OLD_XML "<domain><name>old</name></domain>"
#define NEW_XML "<domain><name>new</name><description>longer</description></domain>"

static int set_new_address(NodeRecord *r, void *userdata)
{
        free(r->address);
        r->address = strdup("192.0.2.2");
        return r->address ? 0 : -ENOMEM;
}

static int set_old_address(NodeRecord *r, void *userdata)
{
        free(r->address);
        r->address = strdup("192.0.2.1");
        return r->address ? 0 : -ENOMEM;
}

static int crash_op_run(Store *s, CrashOp op, bool new_value, uint64_t generation)
{
        InstanceRecord rec = { .uuid = UUID_A,
                               .name = new_value ? "new" : "old",
                               .owner = new_value ? "node2" : "node1",
                               .time = 1 };

        switch (op) {
        case CRASH_INSTANCE_CAS:
                return store_instance_cas(s, &rec, generation, NULL);
        case CRASH_NODE_UPDATE:
                return store_node_update(s, "node1", new_value ? set_new_address : set_old_address,
                                         NULL, NULL);
        case CRASH_DEFINITION_PUT:
                return store_definition_put(s, UUID_A, new_value ? NEW_XML : OLD_XML);
        }
        return -EINVAL;
}

/* What the store holds now: 0 old, 1 new; fails the test on anything else. */
static int crash_op_state(Store *s, CrashOp op, uint64_t *ret_generation)
{
        _cleanup_(instance_record_done) InstanceRecord inst = {};
        _cleanup_(node_record_done) NodeRecord node = {};
        _cleanup_free_ char *xml = NULL;

        switch (op) {
        case CRASH_INSTANCE_CAS:
                assert_int_equal(store_instance_get(s, UUID_A, &inst), 0);
                *ret_generation = inst.generation;
                if (streq(inst.owner, "node1") && streq(inst.name, "old"))
                        return 0;
                assert_string_equal(inst.owner, "node2");
                assert_string_equal(inst.name, "new");
                return 1;
        case CRASH_NODE_UPDATE:
                assert_int_equal(store_node_get(s, "node1", &node), 0);
                *ret_generation = node.generation;
                if (streq(node.address, "192.0.2.1"))
                        return 0;
                assert_string_equal(node.address, "192.0.2.2");
                return 1;
        case CRASH_DEFINITION_PUT:
                assert_int_equal(store_definition_get(s, UUID_A, &xml), 0);
                *ret_generation = 0;
                if (streq(xml, OLD_XML))
                        return 0;
                assert_string_equal(xml, NEW_XML);
                return 1;
        }
        return -1;
}

/* Runs op in a traced child killed at its k-th system call; returns false if the op
 * completed before reaching it. */
static bool crash_at(const char *dir, CrashOp op, uint64_t generation, unsigned k)
{
        unsigned calls = 0;
        int status;
        pid_t pid;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                Store *s = NULL;
                int r;

                if (open_store_any(dir, "node1", &s) < 0)
                        _exit(2);
                if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
                        _exit(3);
                raise(SIGSTOP);
                r = crash_op_run(s, op, true, generation);
                /* done: what follows (exit, or valgrind's exit) is not the write's */
                raise(SIGUSR1);
                _exit(r == 0 ? 0 : 4);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSTOPPED(status));
        assert_int_equal(ptrace(PTRACE_SETOPTIONS, pid, NULL,
                                (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)),
                         0);
        for (;;) {
                assert_int_equal(ptrace(PTRACE_SYSCALL, pid, NULL, NULL), 0);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                if (WIFEXITED(status)) {
                        assert_int_equal(WEXITSTATUS(status), 0);
                        return false;
                }
                assert_true(WIFSTOPPED(status));
                if (WSTOPSIG(status) == SIGUSR1) {
                        assert_int_equal(ptrace(PTRACE_CONT, pid, NULL, NULL), 0);
                        assert_int_equal(waitpid(pid, &status, 0), pid);
                        assert_true(WIFEXITED(status));
                        assert_int_equal(WEXITSTATUS(status), 0);
                        return false;
                }
                if (WSTOPSIG(status) != (SIGTRAP | 0x80))
                        continue; /* another stop: let it go on */
                /* stops come at syscall entry and exit: count entries */
                if (++calls / 2 + 1 == k && calls % 2 == 1) {
                        assert_int_equal(kill(pid, SIGKILL), 0);
                        assert_int_equal(waitpid(pid, &status, 0), pid);
                        assert_true(WIFSIGNALED(status));
                        return true;
                }
        }
}

static void check_crash_safety(CrashOp op)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "observer");
        unsigned seen[2] = { 0, 0 }, k;
        uint64_t generation = 0;

        /* the old value */
        assert_int_equal(crash_op_run(s, op, false, 0), 0);
        for (k = 1;; k++) {
                uint64_t g;
                int st;

                if (!crash_at(dir, op, op == CRASH_INSTANCE_CAS ? 1 : 0, k))
                        break;
                st = crash_op_state(s, op, &g);
                seen[st]++;
                /* nobody is locked out, and the next writer goes on from what is there */
                if (st == 1) {
                        if (op == CRASH_INSTANCE_CAS) {
                                assert_int_equal(g, 2);
                                assert_int_equal(store_instance_remove(s, UUID_A, 2), 0);
                                assert_int_equal(crash_op_run(s, op, false, 0), 0);
                        } else
                                assert_int_equal(crash_op_run(s, op, false, 0), 0);
                } else if (op == CRASH_INSTANCE_CAS)
                        assert_int_equal(g, 1);
                else if (op == CRASH_NODE_UPDATE)
                        assert_int_equal(crash_op_run(s, op, false, 0), 0);
        }
        /* and the run that was never killed wrote the new value */
        assert_int_equal(crash_op_state(s, op, &generation), 1);
        print_message("killed at each of %u system calls: %u left the old record, %u the new\n",
                      k - 1, seen[0], seen[1]);
        /* both outcomes happened: the kills came before and after the rename */
        assert_true(seen[0] > 0);
        assert_true(seen[1] > 0);
        test_rm_rf(dir);
}

static void test_killed_instance_cas_leaves_old_or_new(void **state)
{
        check_crash_safety(CRASH_INSTANCE_CAS);
}

static void test_killed_node_update_leaves_old_or_new(void **state)
{
        check_crash_safety(CRASH_NODE_UPDATE);
}

static void test_killed_definition_put_leaves_old_or_new(void **state)
{
        check_crash_safety(CRASH_DEFINITION_PUT);
}

/* ---- liveness ------------------------------------------------------------------------- */

static int skew_clock(NodeRecord *r, void *userdata)
{
        r->heartbeat++;
        r->heartbeat_time = *(uint64_t *)userdata;
        r->disabled_since = *(uint64_t *)userdata;
        return 0;
}

static int fenced_off(NodeRecord *r, void *userdata)
{
        r->fence = FENCE_OFF;
        r->fence_time = SKEWED_FUTURE;
        return 0;
}

static void check_liveness(Store *s, const char *node, usec_t now, NodeLiveness expected)
{
        NodeLiveness l = _NODE_LIVENESS_MAX;

        assert_int_equal(store_node_liveness(s, node, now, DOWN_AFTER, &l), 0);
        if (l != expected)
                fail_msg("%s at %llus: %s, expected %s", node,
                         (unsigned long long)(now / USEC_PER_SEC), node_liveness_to_string(l),
                         node_liveness_to_string(expected));
}

static void test_liveness_by_observer_monotonic_clock(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *a = open_store(dir, "node-a");
        _cleanup_(store_freep) Store *b = open_store(dir, "node-b");
        NodeLiveness l = NODE_UP;
        usec_t t = T0, seen = 0;

        assert_int_equal(store_node_liveness(b, "node-a", t, DOWN_AFTER, &l), -ENOENT);
        assert_int_equal(l, NODE_UP); /* untouched */

        assert_int_equal(store_heartbeat(a), 0);
        check_liveness(b, "node-a", t, NODE_UNKNOWN); /* first look */
        check_liveness(b, "node-a", t + DOWN_AFTER - 1, NODE_UNKNOWN);
        /* a first look is no sighting of a live heartbeat */
        assert_int_equal(store_node_heartbeat_seen(b, "node-a", &seen), -ENODATA);
        assert_int_equal(store_node_heartbeat_seen(b, "node-z", &seen), -ENODATA);
        assert_int_equal(store_node_heartbeat_seen(b, "../node-a", &seen), -EINVAL);

        /* a counter that keeps changing stays up, however long it runs */
        for (unsigned i = 0; i < 20; i++) {
                t += 10 * USEC_PER_SEC;
                assert_int_equal(store_heartbeat(a), 0);
                check_liveness(b, "node-a", t, NODE_UP);
        }

        /* when it was last seen changing, by b's clock: what "last seen N s ago" says */
        assert_int_equal(store_node_heartbeat_seen(b, "node-a", &seen), 0);
        assert_int_equal(seen, t);

        /* unchanged: up until down_after has passed since the last change seen */
        check_liveness(b, "node-a", t + DOWN_AFTER - 1, NODE_UP);
        assert_int_equal(store_node_heartbeat_seen(b, "node-a", &seen), 0);
        assert_int_equal(seen, t); /* a look without a change does not move it */
        check_liveness(b, "node-a", t + DOWN_AFTER, NODE_DOWN);
        check_liveness(b, "node-a", t + 10 * DOWN_AFTER, NODE_DOWN);

        /* peers writing its record (a fence result) is not a sign of life */
        assert_int_equal(store_node_update(b, "node-a", fenced_off, NULL, NULL), 0);
        check_liveness(b, "node-a", t + 11 * DOWN_AFTER, NODE_DOWN);

        /* it comes back */
        t += 12 * DOWN_AFTER;
        assert_int_equal(store_heartbeat(a), 0);
        check_liveness(b, "node-a", t, NODE_UP);

        /* a node never seen changing goes down down_after after the first look */
        assert_int_equal(store_heartbeat(b), 0);
        check_liveness(a, "node-b", T0, NODE_UNKNOWN);
        check_liveness(a, "node-b", T0 + DOWN_AFTER, NODE_DOWN);

        assert_int_equal(store_node_liveness(b, "../node-a", t, DOWN_AFTER, &l), -EINVAL);
        test_rm_rf(dir);
}

static void test_liveness_ignores_skewed_wall_clock(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *a = open_store(dir, "node-a");
        _cleanup_(store_freep) Store *b = open_store(dir, "node-b");
        uint64_t past = 1, future = SKEWED_FUTURE;
        usec_t t = T0;

        /* node-a's clock is years behind, then years ahead: its records say so */
        assert_int_equal(store_node_update(a, "node-a", skew_clock, &past, NULL), 0);
        check_liveness(b, "node-a", t, NODE_UNKNOWN);
        t += 10 * USEC_PER_SEC;
        assert_int_equal(store_node_update(a, "node-a", skew_clock, &past, NULL), 0);
        check_liveness(b, "node-a", t, NODE_UP);
        t += 10 * USEC_PER_SEC;
        assert_int_equal(store_node_update(a, "node-a", skew_clock, &future, NULL), 0);
        check_liveness(b, "node-a", t, NODE_UP);
        check_liveness(b, "node-a", t + DOWN_AFTER - 1, NODE_UP);

        /* a wall clock far ahead does not keep a silent node up either */
        check_liveness(b, "node-a", t + DOWN_AFTER, NODE_DOWN);
        test_rm_rf(dir);
}

/* ---- invalid input -------------------------------------------------------------------- */

static int rename_node(NodeRecord *r, void *userdata)
{
        free(r->name);
        r->name = strdup("other");
        return 0;
}

static int refuse(NodeRecord *r, void *userdata)
{
        r->heartbeat = 1000;
        return -ECANCELED;
}

static int set_reason(NodeRecord *r, void *userdata)
{
        r->disabled_reason = strdup(userdata);
        return 0;
}

static int set_address(NodeRecord *r, void *userdata)
{
        r->address = strdup(userdata);
        return 0;
}

static int set_storage_mark(NodeRecord *r, void *userdata)
{
        r->storage_mark = strdup(userdata);
        return 0;
}

static void test_invalid_names_are_refused(void **state)
{
        static const char *const bad_nodes[] = {
                "", "..", ".", "../etc", "a/b", ".node1", "node1.tmp/x", "-node", "no de",
        };
        static const char *const bad_uuids[] = {
                "",
                "not-a-uuid",
                "../../etc/passwd",
                UUID_A "x",
                "3f8c5b9e-2d4a-4f61-9b7e-0c1d2e3f4a5/",
                "3f8c5b9e/2d4a-4f61-9b7e-0c1d2e3f4a5b",
        };
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        Store *t = NULL;
        NodeRecord n = {};
        InstanceRecord i = {};
        NodeLiveness l;
        char *xml = NULL;

        for (size_t k = 0; k < ELEMENTSOF(bad_nodes); k++) {
                assert_int_equal(open_store_any(dir, bad_nodes[k], &t), -EINVAL);
                assert_null(t);
                assert_int_equal(store_node_get(s, bad_nodes[k], &n), -EINVAL);
                assert_int_equal(store_node_update(s, bad_nodes[k], enable_node, NULL, NULL),
                                 -EINVAL);
                assert_int_equal(store_node_liveness(s, bad_nodes[k], 0, 1, &l), -EINVAL);
                i = (InstanceRecord){ .uuid = UUID_A, .owner = (char *)bad_nodes[k] };
                assert_int_equal(store_instance_cas(s, &i, 0, NULL), -EINVAL);
                i.owner = "node1";
                i.evacuated_from = (char *)bad_nodes[k];
                assert_int_equal(store_instance_cas(s, &i, 0, NULL), -EINVAL);
        }
        for (size_t k = 0; k < ELEMENTSOF(bad_uuids); k++) {
                assert_int_equal(store_instance_get(s, bad_uuids[k], &i), -EINVAL);
                assert_int_equal(store_instance_remove(s, bad_uuids[k], 1), -EINVAL);
                assert_int_equal(store_definition_put(s, bad_uuids[k], "<domain/>"), -EINVAL);
                assert_int_equal(store_definition_get(s, bad_uuids[k], &xml), -EINVAL);
                assert_int_equal(store_definition_remove(s, bad_uuids[k]), -EINVAL);
        }
        i = (InstanceRecord){ .owner = "node1", .time = 1 };
        memcpy(i.uuid, "not-a-uuid", sizeof("not-a-uuid"));
        assert_int_equal(store_instance_cas(s, &i, 0, NULL), -EINVAL);

        /* values that would break the line format, bad addresses, no owner */
        i = (InstanceRecord){ .uuid = UUID_A, .owner = "node1", .name = "a\nowner=node9" };
        assert_int_equal(store_instance_cas(s, &i, 0, NULL), -EINVAL);
        i = (InstanceRecord){ .uuid = UUID_A };
        assert_int_equal(store_instance_cas(s, &i, 0, NULL), -EINVAL);
        assert_int_equal(store_instance_get(s, UUID_A, &i), -ENOENT);
        assert_int_equal(store_node_update(s, "node2", set_reason, "x\nfence=off", NULL), -EINVAL);
        assert_int_equal(store_node_update(s, "node2", set_address, "not an address", NULL),
                         -EINVAL);
        assert_int_equal(store_node_update(s, "node2", set_storage_mark, "0123456789ABCDEF", NULL),
                         -EINVAL);
        assert_int_equal(store_node_get(s, "node2", &n), -ENOENT);

        /* mutate may abort, and must not rename */
        assert_int_equal(store_heartbeat(s), 0);
        assert_int_equal(store_node_update(s, "node1", refuse, NULL, NULL), -ECANCELED);
        assert_int_equal(store_node_update(s, "node1", rename_node, NULL, NULL), -EINVAL);
        assert_int_equal(store_node_get(s, "node1", &n), 0);
        assert_int_equal(n.heartbeat, 1);
        assert_int_equal(n.generation, 1);
        node_record_done(&n);
        assert_int_equal(store_node_get(s, "other", &n), -ENOENT);

        assert_int_equal(store_open_dir("", "node1", &t), -EINVAL);
        test_rm_rf(dir);
}

static void test_unparsable_records_are_ebadmsg(void **state)
{
        static const char *const bad_nodes[] = {
                "garbage\n",
                "name=node2\nheartbeat=1\nfence=unknown\ngeneration=1\n", /* wrong name */
                "name=node1\nheartbeat=x\nfence=unknown\ngeneration=1\n",
                "name=node1\nheartbeat=1\nfence=maybe\ngeneration=1\n",
                "name=node1\nheartbeat=1\nfence=unknown\ngeneration=0\n",
                "name=node1\nheartbeat=1\nfence=unknown\n",
                "name=node1\nfence=unknown\ngeneration=1\n",
                "name=node1\nheartbeat=1\nfence=unknown\ndisabled=perhaps\ngeneration=1\n",
                "name=node1\naddress=a b\nheartbeat=1\nfence=unknown\ngeneration=1\n",
                "name=node1\nstorage_mark=../x\nheartbeat=1\nfence=unknown\ngeneration=1\n",
                "name=node1\nheartbeat=1\nfence=unknown\nmaintenance=maybe\ngeneration=1\n",
                "name=node1\nheartbeat=1\nfence=unknown\nmaintenance_deadline=x\ngeneration=1\n",
                "name=node1\nheartbeat=1\nfence=unknown\nmaintenance_return=maybe\ngeneration=1\n",
                "name=node1\nheartbeat=1\nfence=unknown\ngeneration=99999999999999999999\n",
                "Name=node1\nheartbeat=1\nfence=unknown\ngeneration=1\n",
        };
        static const char *const bad_instances[] = {
                "uuid=" UUID_B "\nowner=node1\ntime=1\ngeneration=1\n", /* wrong uuid */
                "uuid=" UUID_A "\nowner=../x\ntime=1\ngeneration=1\n",
                "uuid=" UUID_A "\ntime=1\ngeneration=1\n",
                "uuid=" UUID_A "\nowner=node1\ngeneration=1\n",
                "uuid=" UUID_A "\nowner=node1\nevacuated_from=a/b\ntime=1\ngeneration=1\n",
                "uuid=" UUID_A "\nowner=node1\ntime=-1\ngeneration=1\n",
        };
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node1");
        NodeRecord n = {};
        InstanceRecord i = {};
        NodeLiveness l;
        NodeRecord *nodes = NULL;
        size_t n_nodes = 0;

        for (size_t k = 0; k < ELEMENTSOF(bad_nodes); k++) {
                raw_write(s, STORE_NODES, "node1", bad_nodes[k]);
                assert_int_equal(store_node_get(s, "node1", &n), -EBADMSG);
                assert_int_equal(store_node_list(s, &nodes, &n_nodes), -EBADMSG);
                assert_int_equal(store_heartbeat(s), -EBADMSG); /* not overwritten */
                assert_int_equal(store_node_liveness(s, "node1", 0, 1, &l), -EBADMSG);
        }
        raw_write(s, STORE_NODES, "node1", VALID_NODE_TEXT);
        assert_int_equal(store_node_get(s, "node1", &n), 0);
        node_record_done(&n);
        assert_int_equal(store_heartbeat(s), 0);

        for (size_t k = 0; k < ELEMENTSOF(bad_instances); k++) {
                raw_write(s, STORE_INSTANCES, UUID_A, bad_instances[k]);
                assert_int_equal(store_instance_get(s, UUID_A, &i), -EBADMSG);
        }
        /* unknown keys are for newer versions: ignored */
        raw_write(s, STORE_INSTANCES, UUID_A,
                  "uuid=" UUID_A "\nowner=node1\nfuture_key=1\ntime=1\ngeneration=4\n");
        assert_int_equal(store_instance_get(s, UUID_A, &i), 0);
        assert_int_equal(i.generation, 4);
        instance_record_done(&i);

        /* a definition with a NUL byte cannot be handed out as a string (a file can hold
         * one; the etcd backend only writes C strings) */
        if (!etcd_mode) {
                char path[4096];
                int fd;
                char *xml = NULL;

                snprintf(path, sizeof(path), "%s/definitions/%s.xml", dir, UUID_A);
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                assert_int_equal(write(fd, "<a>\0</a>", 8), 8);
                close(fd);
                assert_int_equal(store_definition_get(s, UUID_A, &xml), -EBADMSG);
        }
        test_rm_rf(dir);
}

/* etcd: a member that does not answer is skipped; none answering is -EHOSTUNREACH. */
static void test_cluster_identity_is_written_once(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = NULL, *t = NULL;
        _cleanup_(cluster_identity_done) ClusterIdentity a = {}, b = {}, c = {};

        assert_int_equal(open_store_bare(dir, "node1", &s), 0);
        assert_int_equal(open_store_bare(dir, "node2", &t), 0);
        /* nothing there: a store never initialized and a store not mounted look alike */
        assert_int_equal(store_cluster_get(s, &a), -ENOENT);
        assert_int_equal(store_cluster_init(s, "no.dots", false, &a), -EINVAL);

        assert_int_equal(store_cluster_init(s, "prod-1", false, &a), 0);
        assert_true(uuid_is_valid(a.id));
        assert_string_equal(a.name, "prod-1");
        assert_string_equal(a.created_by, "node1");
        assert_true(a.created > 0);

        /* every node reads the same; a second init changes nothing and says what is there */
        assert_int_equal(store_cluster_get(t, &b), 0);
        assert_string_equal(b.id, a.id);
        assert_string_equal(b.name, "prod-1");
        assert_int_equal(store_cluster_init(t, "other", false, &c), -EEXIST);
        assert_string_equal(c.id, a.id);
        cluster_identity_done(&b);
        assert_int_equal(store_cluster_get(s, &b), 0);
        assert_string_equal(b.id, a.id);
        test_rm_rf(dir);
}

static void test_cluster_init_refuses_a_store_with_records_unless_adopting(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(cluster_identity_done) ClusterIdentity a = {};

        assert_int_equal(open_store_bare(dir, "node1", &s), 0);
        if (!etcd_mode) /* what an older version made: the directories and a record */
                assert_int_equal(s->ops->init(s), 0);
        assert_int_equal(store_heartbeat(s), 0);
        assert_int_equal(store_cluster_init(s, NULL, false, &a), -ENOTEMPTY);
        assert_int_equal(store_cluster_get(s, &a), -ENOENT);
        assert_int_equal(store_cluster_init(s, NULL, true, &a), 0);
        assert_null(a.name);
        test_rm_rf(dir);
}

static void test_concurrent_inits_make_one_identity(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(cluster_identity_done) ClusterIdentity a = {};
        unsigned won = 0;
        pid_t pids[4];

        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        Store *c = NULL;
                        char node[16];

                        snprintf(node, sizeof(node), "node%zu", i + 1);
                        if (open_store_bare(dir, node, &c) < 0)
                                _exit(2);
                        _exit(store_cluster_init(c, NULL, false, NULL) == 0 ? 0 : 1);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                int status;

                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) <= 1);
                won += WEXITSTATUS(status) == 0;
        }
        assert_int_equal(won, 1);
        assert_int_equal(open_store_bare(dir, "node9", &s), 0);
        assert_int_equal(store_cluster_get(s, &a), 0);
        test_rm_rf(dir);
}

static void test_dir_store_is_never_created_by_opening_it(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp(), *state_dir = NULL, *orphan = NULL;
        _cleanup_(store_freep) Store *s = NULL, *t = NULL;
        ClusterIdentity a = {};
        struct stat st;

        assert_true(asprintf(&state_dir, "%s/.hostwarden", dir) > 0);
        assert_int_equal(store_open_dir(state_dir, "node1", &s), 0);
        assert_int_equal(store_cluster_get(s, &a), -ENOENT);
        assert_int_equal(store_heartbeat(s), -ENOENT);
        assert_int_equal(stat(state_dir, &st), -1);

        /* init creates the state directory, not its parents (the shared mount) */
        assert_true(asprintf(&orphan, "%s/not-mounted/.hostwarden", dir) > 0);
        assert_int_equal(store_open_dir(orphan, "node1", &t), 0);
        assert_int_equal(store_cluster_init(t, NULL, false, NULL), -ENOENT);
        assert_int_equal(store_cluster_init(s, NULL, false, &a), 0);
        assert_int_equal(stat(state_dir, &st), 0);
        assert_int_equal(store_heartbeat(s), 0);
        cluster_identity_done(&a);
        test_rm_rf(dir);
}

static void test_joined_cluster_is_kept_on_the_node(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp(), *text = NULL;
        _cleanup_(cluster_identity_done) ClusterIdentity a = {}, b = {};

        assert_int_equal(cluster_identity_load(dir, &b), -ENOENT);
        memcpy(a.id, "0b0e5e5a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", 37);
        a.name = strdup("prod-1");
        a.created = 1764892800000000ULL;
        assert_int_equal(cluster_identity_save(dir, &a), 0);
        assert_int_equal(cluster_identity_load(dir, &b), 0);
        assert_string_equal(b.id, a.id);
        assert_string_equal(b.name, "prod-1");
        assert_int_equal(b.created, a.created);

        test_write(dir, "cluster-id", "id=not-a-uuid\ngeneration=1\n");
        cluster_identity_done(&b);
        assert_int_equal(cluster_identity_load(dir, &b), -EBADMSG);
        test_rm_rf(dir);
}

static void test_etcd_members_that_do_not_answer(void **state)
{
        char closed[64];
        char *endpoints[] = { closed, etcd_endpoint, NULL }, *none[] = { closed, NULL };
        _cleanup_(store_freep) Store *s = NULL, *t = NULL;
        _cleanup_(node_record_done) NodeRecord n = {};
        NodeRecord *list = NULL;
        size_t n_list = 0;

        snprintf(closed, sizeof(closed), "https://127.0.0.1:%u", free_port());
        assert_int_equal(store_open_etcd(endpoints, "/hwtest/members", "node1", 10, &etcd_opts, &s),
                         0);
        assert_string_equal(store_backend_name(s), "etcd");
        assert_int_equal(store_heartbeat(s), 0);
        assert_int_equal(store_heartbeat(s), 0);
        assert_int_equal(store_node_get(s, "node1", &n), 0);
        assert_int_equal(n.heartbeat, 2);

        assert_int_equal(store_open_etcd(none, "/hwtest/members", "node1", 10, &etcd_opts, &t), 0);
        assert_int_equal(store_node_list(t, &list, &n_list), -EHOSTUNREACH);
        assert_int_equal(store_heartbeat(t), -EHOSTUNREACH);
        /* the operator learns which member and why */
        assert_true(test_contains(store_error_detail(t), closed));

        /* what cannot be an etcd member or a prefix */
        t = store_free(t);
        none[0] = "127.0.0.1:2379";
        assert_int_equal(store_open_etcd(none, NULL, "node1", 10, &etcd_opts, &t), -EINVAL);
        assert_int_equal(store_open_etcd(endpoints, "hostwarden", "node1", 10, &etcd_opts, &t),
                         -EINVAL);
        assert_int_equal(store_open_etcd(endpoints, "/hostwarden/", "node1", 10, &etcd_opts, &t),
                         -EINVAL);
        assert_int_equal(store_open_etcd(endpoints, NULL, "node1", 0, &etcd_opts, &t), -EINVAL);
        assert_null(t);
}

static void test_etcd_plain_http_only_when_insecure_and_without_password(void **state)
{
        char *plain[] = { "http://127.0.0.1:2379", NULL };
        EtcdOptions insecure = { .insecure = true };
        _cleanup_(store_freep) Store *t = NULL;

        assert_int_equal(store_open_etcd(plain, NULL, "node1", 10, NULL, &t), -EINVAL);
        assert_int_equal(store_open_etcd(plain, NULL, "node1", 10, &etcd_opts, &t), -EINVAL);
        insecure.user = "root";
        insecure.password = ETCD_PASSWORD;
        assert_int_equal(store_open_etcd(plain, NULL, "node1", 10, &insecure, &t), -EINVAL);
        assert_null(t);
        insecure.user = insecure.password = NULL;
        assert_int_equal(store_open_etcd(plain, NULL, "node1", 10, &insecure, &t), 0);
        t = store_free(t);
        /* a certificate without its key, a user without a password */
        insecure = etcd_opts;
        insecure.key_file = NULL;
        assert_int_equal(store_open_etcd(plain + 1, NULL, "node1", 10, &insecure, &t), -EINVAL);
        insecure = etcd_opts;
        insecure.password = NULL;
        assert_int_equal(store_open_etcd((char *[]){ etcd_endpoint, NULL }, NULL, "node1", 10,
                                         &insecure, &t),
                         -EINVAL);
        assert_null(t);
}

/* A listing through a Store opened with opts: its error, and the detail never holds the
 * password. */
static int list_with(const EtcdOptions *opts, char **ret_detail)
{
        char *endpoints[] = { etcd_endpoint, NULL };
        _cleanup_(store_freep) Store *t = NULL;
        NodeRecord *list = NULL;
        size_t n = 0;
        int r;

        assert_int_equal(store_open_etcd(endpoints, "/hwtest/refused", "node1", 10, opts, &t), 0);
        r = store_node_list(t, &list, &n);
        node_record_array_free(list, n);
        assert_null(strstr(store_error_detail(t), ETCD_PASSWORD));
        *ret_detail = strdup(store_error_detail(t));
        return r;
}

static void test_etcd_refuses_clients_without_certificate_or_credentials(void **state)
{
        EtcdOptions o = etcd_opts;
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;

        /* no client certificate: etcd (--client-cert-auth) ends the handshake */
        o.cert_file = o.key_file = NULL;
        assert_int_equal(list_with(&o, &a), -EPROTO);
        assert_true(test_contains(a, etcd_endpoint));
        assert_true(test_contains(a, "certificate"));

        /* a member whose certificate this node cannot verify (the system's CAs) */
        o = etcd_opts;
        o.ca_file = NULL;
        assert_int_equal(list_with(&o, &b), -EPROTO);
        assert_true(test_contains(b, etcd_endpoint));

        /* a wrong password, and no credentials at all where etcd asks for them */
        o = etcd_opts;
        o.password = "not-" ETCD_PASSWORD;
        assert_int_equal(list_with(&o, &c), -EACCES);
        assert_true(test_contains(c, "etcd_password"));
        assert_null(strstr(c, o.password));
        o = etcd_opts;
        o.user = o.password = NULL;
        assert_int_equal(list_with(&o, &d), -EACCES);
        assert_true(test_contains(d, "etcd_user"));

        /* and with everything, it answers */
        assert_int_equal(list_with(&etcd_opts, &e), 0);
}

/*
 * The unit tests' transport: libcurl (store_etcd_curl()), except that it counts the
 * authentications and can lose the answer of the next transactions (done, answer lost, as
 * when a member times out after committing) or their requests (never sent, while another
 * writer changes the record).
 */
typedef struct Lossy {
        Store *s;
        unsigned n_auth;
        unsigned lose_answers; /* of the next transactions */
        unsigned lose_requests;
        void (*meanwhile)(struct Lossy *l); /* when a request is lost */
        Store *other;
        const char *uuid;
} Lossy;

static bool endswith(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && streq(s + n - k, suffix);
}

static int lossy_post(void *userdata, const char *url, const char *body, long *ret_status,
                      char **ret_data)
{
        Lossy *l = userdata;
        bool txn = endswith(url, "/v3/kv/txn");

        if (endswith(url, "/v3/auth/authenticate"))
                l->n_auth++;
        if (txn && l->lose_answers > 0) {
                long status = 0;
                char *data = NULL;
                int r;

                l->lose_answers--;
                r = store_etcd_curl(l->s, url, body, &status, &data);
                assert_int_equal(r, 0);
                assert_int_equal(status, 200);
                assert_true(test_contains(data, "\"succeeded\":true"));
                free(data);
                return -EHOSTUNREACH; /* as curl says when the answer does not come in time */
        }
        if (txn && l->lose_requests > 0) {
                l->lose_requests--;
                if (l->meanwhile)
                        l->meanwhile(l);
                return -EHOSTUNREACH;
        }
        return store_etcd_curl(l->s, url, body, ret_status, ret_data);
}

/* A Store for dir's prefix whose requests go through l; two endpoints (the same member) so
 * that a request whose answer is lost is tried again "on the next member". */
static Store *open_lossy(const char *dir, const char *node, const EtcdOptions *opts, Lossy *l)
{
        char *endpoints[] = { etcd_endpoint, etcd_endpoint, NULL };
        _cleanup_free_ char *copy = strdup(dir), *prefix = NULL;
        Store *s = NULL;

        assert_true(copy && asprintf(&prefix, "/hwtest/%s", basename(copy)) > 0);
        assert_int_equal(store_open_etcd(endpoints, prefix, node, 10, opts, &s), 0);
        l->s = s;
        store_etcd_set_transport(s, lossy_post, l);
        return s;
}

static void test_etcd_reauthenticates_when_the_token_is_refused(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        EtcdOptions o = etcd_opts;
        Lossy l = {};
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(node_record_done) NodeRecord n = {};
        NodeRecord *list = NULL;
        size_t n_list = 0;

        /* a user of its own: changing its password ends its tokens */
        assert_int_equal(etcdctl("reauth-pw\n", (char *[]){ "user", "add", "hwtest-reauth",
                                                            "--interactive=false", NULL }),
                         0);
        o.user = "hwtest-reauth";
        o.password = "reauth-pw";
        s = open_lossy(dir, "node1", &o, &l);

        /* no permission on the keys yet */
        assert_int_equal(store_node_list(s, &list, &n_list), -EACCES);
        assert_true(test_contains(store_error_detail(s), "permission denied"));
        assert_int_equal(etcdctl(NULL, (char *[]){ "role", "add", "hwtest-rw", NULL }), 0);
        assert_int_equal(
                etcdctl(NULL, (char *[]){ "role", "grant-permission", "hwtest-rw", "--prefix=true",
                                          "readwrite", "/hwtest/", NULL }),
                0);
        assert_int_equal(etcdctl(NULL, (char *[]){ "user", "grant-role", "hwtest-reauth",
                                                   "hwtest-rw", NULL }),
                         0);

        assert_int_equal(store_cluster_init(s, NULL, false, NULL), 0);
        assert_int_equal(store_heartbeat(s), 0);
        assert_int_equal(l.n_auth, 1); /* one token, kept */
        assert_int_equal(etcdctl("reauth-pw\n", (char *[]){ "user", "passwd", "hwtest-reauth",
                                                            "--interactive=false", NULL }),
                         0);
        assert_int_equal(store_heartbeat(s), 0);
        assert_int_equal(l.n_auth, 2);
        assert_int_equal(store_node_get(s, "node1", &n), 0);
        assert_int_equal(n.heartbeat, 2);
        assert_int_equal(etcdctl(NULL, (char *[]){ "user", "delete", "hwtest-reauth", NULL }), 0);
        assert_int_equal(etcdctl(NULL, (char *[]){ "role", "delete", "hwtest-rw", NULL }), 0);
        test_rm_rf(dir);
}

static InstanceRecord instance_of(const char *owner)
{
        InstanceRecord r = { .owner = (char *)owner, .name = "guest", .time = T0 };

        memcpy(r.uuid, UUID_A, sizeof(r.uuid));
        return r;
}

/*
 * A rebuild claims an instance (dbus/rebuild.c): compare-and-swap of its record. The member
 * commits it and the answer is lost; the retry on the next member finds the record changed
 * (by itself) and must not report a conflict: the claim happened, and the caller that took
 * it for "changed meanwhile" would leave the record claimed by a rebuild that gave up.
 */
static void test_etcd_lost_answer_of_own_write_is_success(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        Lossy l = {};
        _cleanup_(store_freep) Store *s = open_lossy(dir, "node2", &etcd_opts, &l), *o = NULL;
        _cleanup_(instance_record_done) InstanceRecord got = {};
        InstanceRecord src = instance_of("node1"), mine = instance_of("node2");
        uint64_t gen = 0;

        assert_int_equal(store_cluster_init(s, NULL, false, NULL), 0);
        assert_int_equal(open_store_bare(dir, "node1", &o), 0);

        /* created: the retry's create-only compare fails on our own record */
        l.lose_answers = 1;
        assert_int_equal(store_instance_cas(s, &src, 0, &gen), 0);
        assert_int_equal(l.lose_answers, 0);
        assert_int_equal(gen, 1);

        /* claimed, as a rebuild does */
        l.lose_answers = 1;
        mine.evacuated_from = "node1";
        assert_int_equal(store_instance_cas(s, &mine, 1, &gen), 0);
        assert_int_equal(l.lose_answers, 0);
        assert_int_equal(gen, 2);
        assert_int_equal(store_instance_get(o, UUID_A, &got), 0);
        assert_string_equal(got.owner, "node2");
        assert_string_equal(got.evacuated_from, "node1");
        assert_int_equal(got.generation, 2);

        /* and given back (a rebuild that could not define the guest) */
        l.lose_answers = 1;
        assert_int_equal(store_instance_cas(s, &src, 2, &gen), 0);
        assert_int_equal(gen, 3);
        instance_record_done(&got);
        assert_int_equal(store_instance_get(o, UUID_A, &got), 0);
        assert_string_equal(got.owner, "node1");
        assert_int_equal(got.generation, 3);

        /* removed */
        l.lose_answers = 1;
        assert_int_equal(store_instance_remove(s, UUID_A, 3), 0);
        assert_int_equal(l.lose_answers, 0);
        instance_record_done(&got);
        assert_int_equal(store_instance_get(o, UUID_A, &got), -ENOENT);

        /* a node record's update is done once, not once per try */
        _cleanup_(node_record_done) NodeRecord n = {};
        assert_int_equal(store_heartbeat(s), 0);
        l.lose_answers = 1;
        assert_int_equal(store_heartbeat(s), 0);
        assert_int_equal(l.lose_answers, 0);
        assert_int_equal(store_node_get(o, "node2", &n), 0);
        assert_int_equal(n.heartbeat, 2);
        test_rm_rf(dir);
}

static void change_owner_meanwhile(Lossy *l)
{
        InstanceRecord other = instance_of("node3");

        assert_int_equal(store_instance_cas(l->other, &other, 1, NULL), 0);
}

/* The same loss where the first try was not done and another node's write came between:
 * that one is a conflict, and is reported as one. */
static void test_etcd_lost_request_then_other_write_is_conflict(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        Lossy l = {};
        _cleanup_(store_freep) Store *s = open_lossy(dir, "node2", &etcd_opts, &l), *o = NULL;
        _cleanup_(instance_record_done) InstanceRecord got = {};
        InstanceRecord src = instance_of("node1"), mine = instance_of("node2");

        assert_int_equal(store_cluster_init(s, NULL, false, NULL), 0);
        assert_int_equal(open_store_bare(dir, "node3", &o), 0);
        assert_int_equal(store_instance_cas(o, &src, 0, NULL), 0);

        l.other = o;
        l.meanwhile = change_owner_meanwhile;
        l.lose_requests = 1;
        assert_int_equal(store_instance_cas(s, &mine, 1, NULL), -ESTALE);
        assert_int_equal(l.lose_requests, 0);
        assert_int_equal(store_instance_get(o, UUID_A, &got), 0);
        assert_string_equal(got.owner, "node3");
        assert_int_equal(got.generation, 2);
        test_rm_rf(dir);
}

/* The behaviour tests, once per backend. */
/* ---- history, archive, leases (issue 21) ------------------------------------------------ */

#define DAY      USEC_PER_DAY
#define HIST_NOW (400 * DAY) /* the test's clock: records are written with older times */
#define ARCHIVE_OPTS(t) \
        ((ArchiveOptions){ .now = (t), .archive_after = 90 * DAY, .purge_after = 14 * DAY })

/* A history record of node, started and finished at the times given; its id in ret_id. */
static void add_history(Store *s, const char *node, uint64_t finished, const char *domain,
                        char **ret_id)
{
        HistoryRecord h = {
                .kind = (char *)"migration",
                .mode = (char *)"live",
                .domain = (char *)domain,
                .domain_name = (char *)"web1",
                .node = (char *)node,
                .source = (char *)node,
                .destination = (char *)"node-b",
                .result = (char *)"completed",
                .caller_uid = 0,
                .caller = (char *)":1.42",
                .started = finished - 2 * USEC_PER_SEC,
                .finished = finished,
                .downtime = 31000,
                .bytes = 748544,
        };

        assert_int_equal(history_id_new(node, h.started, NULL, &h.id), 0);
        assert_int_equal(store_history_add(s, &h), 0);
        *ret_id = h.id;
}

/* A deleted instance (a tombstone) of time, with a definition. */
static void add_tombstone(Store *s, const char *uuid, uint64_t time)
{
        InstanceRecord rec = {
                .name = (char *)"gone", .owner = (char *)"node-a", .time = time, .deleted = true
        };

        memcpy(rec.uuid, uuid, sizeof(rec.uuid));
        assert_int_equal(store_instance_cas(s, &rec, 0, NULL), 0);
        assert_int_equal(store_definition_put(s, uuid, "<domain><name>gone</name></domain>"), 0);
}

static bool raw_exists(Store *s, StoreSpace sp, const char *key)
{
        _cleanup_free_ char *text = NULL;
        int r = s->ops->read(s, sp, key, DEFINITION_MAX_SIZE, &text, NULL);

        if (r != 0 && r != -ENOENT)
                fail_msg("reading %s: %s", key, strerror(-r));
        return r == 0;
}

static void test_history_record_round_trip_and_unique_ids(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp(), *id = NULL, *id2 = NULL, *bad = NULL;
        _cleanup_(store_freep) Store *s = open_store(dir, "node-a");
        _cleanup_(history_record_done) HistoryRecord got = {};
        HistoryRecord *list = NULL, h = {};
        size_t n = 0;

        add_history(s, "node-a", HIST_NOW, UUID_A, &id);
        add_history(s, "node-a", HIST_NOW - DAY, UUID_B, &id2);
        assert_true(history_id_is_valid(id));
        assert_true(endswith(id, "-node-a"));

        assert_int_equal(store_history_get(s, id, &got), 0);
        assert_string_equal(got.kind, "migration");
        assert_string_equal(got.mode, "live");
        assert_string_equal(got.domain, UUID_A);
        assert_string_equal(got.caller, ":1.42");
        assert_int_equal(got.caller_uid, 0);
        assert_int_equal(got.finished, HIST_NOW);
        assert_int_equal(got.downtime, 31000);
        assert_int_equal(got.bytes, 748544);
        assert_int_equal(got.archived, 0);
        assert_int_equal(got.generation, 1);

        /* written once: the same id again is refused, whoever writes it */
        h = got;
        assert_int_equal(store_history_add(s, &h), -EEXIST);
        /* what cannot be stored is refused before anything is written */
        h.error = (char *)"two\nlines";
        assert_int_equal(store_history_add(s, &h), -EINVAL);
        h.error = NULL;
        h.domain = (char *)"not-a-uuid";
        assert_int_equal(store_history_add(s, &h), -EINVAL);
        h.domain = (char *)UUID_A;
        h.kind = (char *)"Migration";
        assert_int_equal(store_history_add(s, &h), -EINVAL);
        assert_int_equal(history_id_new("node a", 1, NULL, &bad), -EINVAL);
        assert_int_equal(store_history_get(s, "../../nodes/node-a", &got), -EINVAL);

        /* listed in the order of their start */
        assert_int_equal(store_history_list(s, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0].id, id2);
        assert_string_equal(list[1].id, id);
        history_record_array_free(list, n);

        /* a record that does not parse fails the listing: never taken for absent */
        raw_write(s, STORE_HISTORY, "0000000000000001-0000000000000002-node-a", "garbage\n");
        assert_int_equal(store_history_list(s, &list, &n), -EBADMSG);
        if (!etcd_mode)
                test_rm_rf(dir);
}

static void test_lease_excludes_and_expires(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp(), *holder = NULL;
        _cleanup_(store_freep) Store *a = open_store(dir, "node-a");
        _cleanup_(store_freep) Store *b = open_store(dir, "node-b");
        _cleanup_(store_lease_done) StoreLease la = {}, lb = {};
        const uint64_t ttl = 600 * USEC_PER_SEC;

        assert_int_equal(store_lease_acquire(a, "archive", T0, ttl, &la, NULL), 0);
        assert_string_equal(la.holder, "node-a");
        assert_int_equal(la.expires, T0 + ttl);
        /* held: another node waits, and learns who holds it */
        assert_int_equal(store_lease_acquire(b, "archive", T0 + ttl - 1, ttl, &lb, &holder),
                         -EBUSY);
        assert_string_equal(holder, "node-a");
        /* the holder renews it */
        assert_int_equal(store_lease_acquire(a, "archive", T0 + ttl / 2, ttl, &la, NULL), 0);
        assert_int_equal(la.expires, T0 + ttl / 2 + ttl);
        /* a holder that died: its lease expires, and another takes it */
        assert_int_equal(store_lease_acquire(b, "archive", T0 + 2 * ttl, ttl, &lb, NULL), 0);
        assert_string_equal(lb.holder, "node-b");
        /* the first holder's release no longer releases anything */
        assert_int_equal(store_lease_release(a, "archive", &la), -ESTALE);
        assert_int_equal(store_lease_release(b, "archive", &lb), 0);
        store_lease_done(&la);
        assert_int_equal(store_lease_acquire(a, "archive", T0, ttl, &la, NULL), 0);
        assert_int_equal(store_lease_acquire(a, "bad name", T0, ttl, &la, NULL), -EINVAL);
        if (!etcd_mode)
                test_rm_rf(dir);
}

static ArchiveAction *find_action(ArchiveAction *a, size_t n, ArchiveStep step, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (a[i].step == step && streq(a[i].key, key))
                        return &a[i];
        return NULL;
}

/* The error of the action step of key, which must be among a. */
static int action_error(ArchiveAction *a, size_t n, ArchiveStep step, const char *key)
{
        ArchiveAction *x = find_action(a, n, step, key);

        if (!x)
                fail_msg("no %s of %s", archive_step_to_string(step), key);
        return x ? x->error : -ENOENT;
}

static void test_archive_moves_what_is_old_and_purges_after(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp(), *old = NULL, *young = NULL;
        _cleanup_(store_freep) Store *s = open_store(dir, "node-a");
        ArchiveOptions o = ARCHIVE_OPTS(HIST_NOW);
        ArchiveAction *a = NULL;
        InstanceRecord live = { .name = (char *)"kept",
                                .owner = (char *)"node-a",
                                .time = HIST_NOW - 300 * DAY };
        InstanceRecord got = {};
        HistoryRecord *h = NULL;
        ArchivedEntry *e = NULL;
        size_t n = 0, nh = 0, ne = 0;

        add_history(s, "node-a", HIST_NOW - 91 * DAY, UUID_A, &old);
        add_history(s, "node-a", HIST_NOW - 89 * DAY, UUID_A, &young);
        add_tombstone(s, UUID_A, HIST_NOW - 100 * DAY);
        add_tombstone(s, UUID_B, HIST_NOW - 5 * DAY);
        /* a live instance, however old its record, is never archived */
        memcpy(live.uuid, "11111111-2222-4333-8444-555555555555", 37);
        assert_int_equal(store_instance_cas(s, &live, 0, NULL), 0);

        /* a dry run says what it would do, and does nothing */
        o.dry_run = true;
        assert_int_equal(archive_run(s, &o, &a, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_non_null(find_action(a, n, ARCHIVE_STEP_ARCHIVE, old));
        assert_non_null(find_action(a, n, ARCHIVE_STEP_ARCHIVE, UUID_A));
        a = archive_action_array_free(a, n);
        assert_true(raw_exists(s, STORE_HISTORY, old));

        o.dry_run = false;
        assert_int_equal(archive_run(s, &o, &a, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_int_equal(action_error(a, n, ARCHIVE_STEP_ARCHIVE, old), 0);
        assert_int_equal(action_error(a, n, ARCHIVE_STEP_ARCHIVE, UUID_A), 0);
        a = archive_action_array_free(a, n);

        /* moved: gone from the live store, whole in the archive with the time of the move */
        assert_int_equal(store_history_list(s, &h, &nh), 0);
        assert_int_equal(nh, 1);
        assert_string_equal(h[0].id, young);
        h = history_record_array_free(h, nh);
        assert_int_equal(store_instance_get(s, UUID_A, &got), -ENOENT);
        assert_int_equal(store_definition_get(s, UUID_A, &(char *){ NULL }), -ENOENT);
        assert_true(raw_exists(s, STORE_ARCHIVE_DEFINITIONS, UUID_A));
        assert_int_equal(store_instance_get(s, UUID_B, &got), 0);
        instance_record_done(&got);
        assert_int_equal(store_instance_get(s, live.uuid, &got), 0);
        instance_record_done(&got);
        assert_int_equal(store_archive_list(s, &e, &ne), 0);
        assert_int_equal(ne, 2);
        assert_int_equal(e[0].kind, ARCHIVE_HISTORY);
        assert_string_equal(e[0].key, old);
        assert_int_equal(e[0].archived, HIST_NOW);
        assert_int_equal(e[0].time, HIST_NOW - 91 * DAY);
        assert_int_equal(e[1].kind, ARCHIVE_INSTANCE);
        assert_string_equal(e[1].key, UUID_A);
        assert_string_equal(e[1].name, "gone");
        e = archived_entry_array_free(e, ne);
        {
                _cleanup_(history_record_done) HistoryRecord ah = {};

                assert_int_equal(store_archive_history_get(s, old, &ah), 0);
                assert_int_equal(ah.bytes, 748544);
                assert_int_equal(ah.archived, HIST_NOW);
        }

        /* 13 days later nothing is purged yet; 14 days after the move both are */
        o.now = HIST_NOW + 13 * DAY;
        assert_int_equal(archive_run(s, &o, &a, &n, NULL), 0);
        assert_null(find_action(a, n, ARCHIVE_STEP_PURGE, old));
        /* the young record is 102 days old now: archived */
        assert_int_equal(action_error(a, n, ARCHIVE_STEP_ARCHIVE, young), 0);
        a = archive_action_array_free(a, n);
        o.now = HIST_NOW + 14 * DAY;
        assert_int_equal(archive_run(s, &o, &a, &n, NULL), 0);
        assert_int_equal(action_error(a, n, ARCHIVE_STEP_PURGE, old), 0);
        assert_int_equal(action_error(a, n, ARCHIVE_STEP_PURGE, UUID_A), 0);
        /* archived a day ago: not purged */
        assert_null(find_action(a, n, ARCHIVE_STEP_PURGE, young));
        a = archive_action_array_free(a, n);
        assert_false(raw_exists(s, STORE_ARCHIVE_HISTORY, old));
        assert_false(raw_exists(s, STORE_ARCHIVE_INSTANCES, UUID_A));
        assert_false(raw_exists(s, STORE_ARCHIVE_DEFINITIONS, UUID_A));
        assert_true(raw_exists(s, STORE_ARCHIVE_HISTORY, young));
        if (!etcd_mode)
                test_rm_rf(dir);
}

static void test_archive_leaves_a_restored_tombstone_live(void **state)
{
        _cleanup_free_ char *dir = test_mkdtemp();
        _cleanup_(store_freep) Store *s = open_store(dir, "node-a");
        InstanceRecord cur = {}, back = {};
        uint64_t gen;

        add_tombstone(s, UUID_A, HIST_NOW - 100 * DAY);
        assert_int_equal(store_instance_get(s, UUID_A, &cur), 0);
        gen = cur.generation;
        /* a restore took the instance over after the pass read the tombstone */
        back = cur;
        back.deleted = false;
        back.owner = (char *)"node-b";
        assert_int_equal(store_instance_cas(s, &back, gen, NULL), 0);
        instance_record_done(&cur);
        assert_int_equal(store_instance_archive(s, UUID_A, gen, HIST_NOW), -ESTALE);
        assert_int_equal(store_instance_get(s, UUID_A, &cur), 0);
        assert_false(cur.deleted);
        instance_record_done(&cur);
        assert_false(raw_exists(s, STORE_ARCHIVE_INSTANCES, UUID_A));
        assert_true(raw_exists(s, STORE_DEFINITIONS, UUID_A));
        if (!etcd_mode)
                test_rm_rf(dir);
}

/* Kills the process at the step'th step of the pass (store_test_step()). */
static void kill_at_step(Store *s, const char *step, void *userdata)
{
        unsigned *left = userdata;

        if (--*left == 0)
                raise(SIGKILL);
}

#define UUID_C "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"

typedef struct KillScene {
        char *moved[5]; /* archived by the pass: 3 history records, 2 instances */
        char *young;    /* stays live */
        char *purged;   /* archived 30 days before: purged by the pass */
} KillScene;

static void kill_scene_setup(Store *s, KillScene *k)
{
        ArchiveOptions o = ARCHIVE_OPTS(HIST_NOW - 30 * DAY);
        ArchiveAction *a = NULL;
        size_t n = 0;

        add_history(s, "node-a", HIST_NOW - 200 * DAY, UUID_C, &k->purged);
        assert_int_equal(archive_run(s, &o, &a, &n, NULL), 0);
        assert_int_equal(n, 1);
        archive_action_array_free(a, n);
        for (unsigned i = 0; i < 3; i++)
                add_history(s, i == 1 ? "node-b" : "node-a", HIST_NOW - (91 + i) * DAY, UUID_A,
                            &k->moved[i]);
        add_tombstone(s, UUID_A, HIST_NOW - 95 * DAY);
        add_tombstone(s, UUID_B, HIST_NOW - 120 * DAY);
        k->moved[3] = strdup(UUID_A);
        k->moved[4] = strdup(UUID_B);
        add_history(s, "node-a", HIST_NOW - DAY, UUID_A, &k->young);
}

static void kill_scene_done(KillScene *k)
{
        for (unsigned i = 0; i < 5; i++)
                free(k->moved[i]);
        free(k->young);
        free(k->purged);
}

/* Where an entry is: 1 live, 2 archived, 3 both (a move cut between its two steps). */
static unsigned places(Store *s, unsigned i, const char *key)
{
        StoreSpace live = i < 3 ? STORE_HISTORY : STORE_INSTANCES;
        StoreSpace arch = i < 3 ? STORE_ARCHIVE_HISTORY : STORE_ARCHIVE_INSTANCES;

        return (raw_exists(s, live, key) ? 1 : 0) | (raw_exists(s, arch, key) ? 2 : 0);
}

/*
 * A pass killed at each of its steps in turn (SIGKILL from store_test_step(): a crash can hit
 * any point between two writes, and no timing can aim at one, so the test names the point):
 * no entry is ever nowhere, and a definition never leaves without its record; the next pass
 * (on another node once the dead one's lease expired) leaves every entry in exactly one
 * place.
 */
static void test_archive_killed_at_every_step_loses_nothing(void **state)
{
        bool finished = false;
        unsigned kills = 0;

        for (unsigned step = 1; !finished; step++) {
                _cleanup_free_ char *dir = test_mkdtemp();
                _cleanup_(store_freep) Store *s = open_store(dir, "node-a");
                ArchiveOptions o = ARCHIVE_OPTS(HIST_NOW);
                KillScene k = {};
                ArchiveAction *a = NULL;
                size_t n = 0;
                int status;
                pid_t pid;

                assert_true(step < 200);
                kill_scene_setup(s, &k);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        Store *c = NULL;
                        unsigned left = step;

                        if (open_store_any(dir, "node-a", &c) < 0)
                                _exit(2);
                        c->test_step = kill_at_step;
                        c->test_step_data = &left;
                        /* the pass's outcome as a signal: what follows (exit, or valgrind's
                         * leak check of the child) is not the pass's */
                        raise(archive_run(c, &o, &a, &n, NULL) < 0 ? SIGUSR2 : SIGUSR1);
                        _exit(3);
                }
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFSIGNALED(status));
                if (WTERMSIG(status) == SIGUSR1)
                        finished = true; /* the pass had fewer steps than this */
                else {
                        assert_int_equal(WTERMSIG(status), SIGKILL);
                        kills++;
                }

                for (unsigned i = 0; i < 5; i++) {
                        assert_int_not_equal(places(s, i, k.moved[i]), 0);
                        /* a definition is live or archived; it is archived before its
                         * record moves, and live until its record left */
                        if (i >= 3) {
                                bool live_def = raw_exists(s, STORE_DEFINITIONS, k.moved[i]);
                                bool arch_def =
                                        raw_exists(s, STORE_ARCHIVE_DEFINITIONS, k.moved[i]);

                                assert_true(live_def || arch_def);
                                if (places(s, i, k.moved[i]) & 2)
                                        assert_true(arch_def);
                        }
                }
                assert_int_equal(places(s, 0, k.young), 1);

                /* the dead node's lease holds until it expires; then the next pass, here
                 * another node's, finishes the work */
                {
                        _cleanup_(store_freep) Store *b = open_store(dir, "node-b");
                        _cleanup_free_ char *holder = NULL;

                        if (!finished && step > 1) {
                                o.now = HIST_NOW + 60 * USEC_PER_SEC;
                                assert_int_equal(archive_run(b, &o, &a, &n, &holder), -EBUSY);
                                assert_string_equal(holder, "node-a");
                        }
                        o.now = HIST_NOW + ARCHIVE_LEASE_TTL;
                        assert_int_equal(archive_run(b, &o, &a, &n, NULL), 0);
                        for (size_t i = 0; i < n; i++)
                                assert_int_equal(a[i].error, 0);
                        a = archive_action_array_free(a, n);
                        for (unsigned i = 0; i < 5; i++) {
                                assert_int_equal(places(b, i, k.moved[i]), 2);
                                if (i >= 3) {
                                        assert_false(raw_exists(b, STORE_DEFINITIONS, k.moved[i]));
                                        assert_true(raw_exists(b, STORE_ARCHIVE_DEFINITIONS,
                                                               k.moved[i]));
                                }
                        }
                        assert_int_equal(places(b, 0, k.young), 1);
                        assert_int_equal(places(b, 0, k.purged), 0);
                }
                kill_scene_done(&k);
                if (!etcd_mode)
                        test_rm_rf(dir);
        }
        /* the scene's pass: a lease, 5 moves, a purge, each with its steps */
        assert_true(kills >= 12);
        print_message("archive pass killed at each of its %u steps: nothing lost\n", kills);
}

#define BOTH(f)                                     \
        { "dir/" #f, f, use_dir, NULL, NULL },      \
        {                                           \
                "etcd/" #f, f, use_etcd, NULL, NULL \
        }
/* What only files have: temp files, half-written files, modes, a writer killed mid-write. */
#define DIR_ONLY(f)                               \
        {                                         \
                "dir/" #f, f, use_dir, NULL, NULL \
        }

#define ETCD_ONLY(f)                                \
        {                                           \
                "etcd/" #f, f, use_etcd, NULL, NULL \
        }

int main(void)
{
        const struct CMUnitTest tests[] = {
                BOTH(test_node_record_round_trip),
                cmocka_unit_test(test_enum_names),
                BOTH(test_instance_record_round_trip),
                BOTH(test_instance_record_cold_migration),
                BOTH(test_definition_round_trip_mode_0600),
                BOTH(test_cached_node_list),
                BOTH(test_instance_cas_semantics),
                BOTH(test_concurrent_processes_lose_no_update),
                BOTH(test_concurrent_threads_lose_no_update),
                DIR_ONLY(test_temp_files_are_not_records),
                DIR_ONLY(test_half_written_record_is_bad_not_absent),
                DIR_ONLY(test_killed_instance_cas_leaves_old_or_new),
                DIR_ONLY(test_killed_node_update_leaves_old_or_new),
                DIR_ONLY(test_killed_definition_put_leaves_old_or_new),
                BOTH(test_liveness_by_observer_monotonic_clock),
                BOTH(test_liveness_ignores_skewed_wall_clock),
                BOTH(test_invalid_names_are_refused),
                BOTH(test_unparsable_records_are_ebadmsg),
                BOTH(test_cluster_identity_is_written_once),
                BOTH(test_cluster_init_refuses_a_store_with_records_unless_adopting),
                BOTH(test_concurrent_inits_make_one_identity),
                DIR_ONLY(test_dir_store_is_never_created_by_opening_it),
                DIR_ONLY(test_joined_cluster_is_kept_on_the_node),
                ETCD_ONLY(test_etcd_members_that_do_not_answer),
                ETCD_ONLY(test_etcd_plain_http_only_when_insecure_and_without_password),
                ETCD_ONLY(test_etcd_refuses_clients_without_certificate_or_credentials),
                ETCD_ONLY(test_etcd_reauthenticates_when_the_token_is_refused),
                ETCD_ONLY(test_etcd_lost_answer_of_own_write_is_success),
                ETCD_ONLY(test_etcd_lost_request_then_other_write_is_conflict),
                BOTH(test_history_record_round_trip_and_unique_ids),
                BOTH(test_lease_excludes_and_expires),
                BOTH(test_archive_moves_what_is_old_and_purges_after),
                BOTH(test_archive_leaves_a_restored_tombstone_live),
                BOTH(test_archive_killed_at_every_step_loses_nothing),
        };

        return cmocka_run_group_tests(tests, etcd_start, etcd_stop);
}
