/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The "etcd" backend of the cluster state store (DESIGN.md §4): etcd v3 through its JSON
 * gateway (POST /v3/kv/range, /v3/kv/put, /v3/kv/txn, /v3/kv/deleterange, /v3/lease/grant and
 * keepalive; keys and values base64, 64-bit numbers as strings).
 *
 * Layout, under the prefix (default "/hostwarden"):
 *
 *   <prefix>/nodes/<name>             node record
 *   <prefix>/instances/<uuid>         instance record, UUID in lower case
 *   <prefix>/definitions/<uuid>       last known inactive domain XML
 *   <prefix>/alive/<name>             this node's heartbeat counter, on its lease
 *   <prefix>/history/<id>             history of operations (store-history.c)
 *   <prefix>/archive/<space>/<key>    archived history, instances, definitions
 *   <prefix>/leases/<name>            leases such as the archive run's
 *
 * The values are the same "key=value" texts as the dir backend's files (store.c). Versions
 * are etcd's mod_revision: a conditional write is a transaction that compares the key's
 * mod_revision with the one read (create_revision 0: the key must not exist), so two nodes
 * that read the same record cannot both replace it.
 *
 * Heartbeats are leases: the node's record carries its heartbeat counter as with dir (so
 * liveness is judged the same way, by each observer's monotonic clock), and every heartbeat
 * also keeps a lease alive that holds <prefix>/alive/<name>: when a node stops, etcd removes
 * that key after the lease's TTL, which any etcd client can watch.
 *
 * Endpoints: the first that answers is used until it fails; a request that cannot connect,
 * times out, fails its TLS handshake or meets a member without a leader goes to the next one.
 * Each request takes at most ETCD_TIMEOUT_MS on one member (ETCD_CONNECT_TIMEOUT_MS to
 * connect, the TLS handshake included).
 *
 * A request whose answer was lost (a timeout, a member that stopped) may have been carried
 * out all the same. That is harmless for reads and plain puts; a transaction tried again on
 * the next member (or sent again by libcurl itself, on a new connection, after the one it
 * used died) would find its own write and report "changed meanwhile" for it. So when a
 * transaction's compare fails after such a loss, the key is read back: holding the value
 * this transaction meant to write (or gone, for a removal), the write was ours and it
 * succeeded (or another writer's identical one, in that very moment: the same record).
 * Only after a loss: a conflict without one is a conflict, even with identical text (two
 * increments of the same counter from the same record must not both succeed).
 *
 * Security: https:// only unless the caller allows http:// (EtcdOptions.insecure); the
 * members' certificates and names are always verified; a client certificate where the
 * members ask for one (--client-cert-auth). With a user, etcd's v3 authentication: the
 * password buys a token (/v3/auth/authenticate) that goes in each request's Authorization
 * header, and a token etcd no longer takes (expired, or issued before the users or roles
 * changed) is replaced once per request. The password is never in a message or a log; the
 * copy here is wiped when the Store is freed.
 */

#include <curl/curl.h>
#include <errno.h>
#include <json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "etcd-http.h"
#include "util.h"

static const char *const space_name[_STORE_SPACE_MAX] = {
        [STORE_NODES] = "nodes",
        [STORE_INSTANCES] = "instances",
        [STORE_DEFINITIONS] = "definitions",
        [STORE_CLUSTER] = "cluster",
        [STORE_HISTORY] = "history",
        [STORE_ARCHIVE_HISTORY] = "archive/history",
        [STORE_ARCHIVE_INSTANCES] = "archive/instances",
        [STORE_ARCHIVE_DEFINITIONS] = "archive/definitions",
        [STORE_LEASES] = "leases",
};

static char *full_key(Store *s, StoreSpace sp, const char *key)
{
        char *k;

        if (asprintf(&k, "%s/%s/%s", s->etcd->prefix, space_name[sp], key) < 0)
                return NULL;
        return k;
}

/* ---- the backend ------------------------------------------------------------------------- */

/* POSTs {"key": k} to path. */
static int post_key(Store *s, const char *path, const char *k, json_object **ret)
{
        json_object *req = json_object_new_object();
        int r;

        if (!req)
                return -ENOMEM;
        r = etcd_add_b64(req, "key", k, strlen(k));
        if (r >= 0)
                r = etcd_post(s, path, req, ret);
        json_object_put(req);
        return r;
}

static int etcd_read(Store *s, StoreSpace sp, const char *key, size_t max, char **ret,
                     uint64_t *ret_version)
{
        _cleanup_free_ char *k = full_key(s, sp, key);
        json_object *resp = NULL, *kvs, *kv;
        size_t n;
        int r;

        if (!k)
                return -ENOMEM;
        r = post_key(s, "/v3/kv/range", k, &resp);
        if (r < 0)
                return r;
        r = etcd_json_kvs(resp, &kvs, &n);
        if (r < 0 || n == 0) {
                json_object_put(resp);
                return r < 0 ? r : -ENOENT;
        }
        kv = json_object_array_get_idx(kvs, 0);
        r = etcd_kv_value(kv, max, ret);
        if (r >= 0 && ret_version)
                *ret_version = etcd_json_u64(kv, "mod_revision");
        json_object_put(resp);
        return r;
}

static int etcd_list(Store *s, StoreSpace sp, bool (*filter)(const char *key), StoreListFunc f,
                     void *userdata)
{
        _cleanup_free_ char *from = full_key(s, sp, ""), *to = NULL;
        json_object *req, *resp = NULL, *kvs;
        size_t plen, n;
        int r;

        if (!from)
                return -ENOMEM;
        /* the range [<prefix>/<space>/, <prefix>/<space>0): '0' follows '/' */
        to = strdup(from);
        if (!to)
                return -ENOMEM;
        plen = strlen(from);
        to[plen - 1] = '0';
        req = json_object_new_object();
        if (!req)
                return -ENOMEM;
        r = etcd_add_b64(req, "key", from, plen);
        if (r >= 0)
                r = etcd_add_b64(req, "range_end", to, plen);
        if (r >= 0)
                r = etcd_post(s, "/v3/kv/range", req, &resp);
        json_object_put(req);
        if (r < 0)
                return r;
        r = etcd_json_kvs(resp, &kvs, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                json_object *kv = json_object_array_get_idx(kvs, i);
                const char *kenc = etcd_json_string_field(kv, "key");
                _cleanup_free_ char *key = NULL, *text = NULL;
                size_t klen;

                if (!kenc) {
                        r = -EBADMSG;
                        break;
                }
                r = etcd_b64_decode(kenc, &key, &klen);
                if (r < 0)
                        break;
                if (klen <= plen || strncmp(key, from, plen) != 0 || strlen(key) != klen ||
                    !filter(key + plen))
                        continue; /* not one of ours */
                r = etcd_kv_value(kv, RECORD_MAX_SIZE, &text);
                if (r >= 0)
                        r = f(key + plen, text, userdata);
        }
        json_object_put(resp);
        return r;
}

static int etcd_lock(Store *s, StoreSpace sp, const char *key, int *ret_fd)
{
        *ret_fd = -EBADF; /* the write compares the version instead */
        return 0;
}

/* One request of a transaction's success list: request_put or request_delete_range. */
static json_object *op_on(const char *kind, const char *k, const char *text)
{
        json_object *op = json_object_new_object(), *inner = json_object_new_object();

        if (!op || !inner || etcd_add_b64(inner, "key", k, strlen(k)) < 0 ||
            (text && etcd_add_b64(inner, "value", text, strlen(text)) < 0)) {
                json_object_put(op);
                json_object_put(inner);
                return NULL;
        }
        json_object_object_add(op, kind, inner);
        return op;
}

/* After a transaction whose compare failed although an earlier try of it may have been done:
 * 0 if the key holds what it was to write (intended; NULL: the key removed), -ESTALE if
 * not. */
static int txn_was_ours(Store *s, const char *k, const char *intended)
{
        _cleanup_free_ char *text = NULL;
        json_object *resp = NULL, *kvs;
        size_t n;
        int r;

        r = post_key(s, "/v3/kv/range", k, &resp);
        if (r < 0)
                return r;
        r = etcd_json_kvs(resp, &kvs, &n);
        if (r >= 0 && n > 0 && intended)
                r = etcd_kv_value(json_object_array_get_idx(kvs, 0), ETCD_VALUE_MAX, &text);
        json_object_put(resp);
        if (r < 0)
                return r;
        if (!intended)
                return n == 0 ? 0 : -ESTALE;
        return n > 0 && streq(text, intended) ? 0 : -ESTALE;
}

/* A transaction: op if key's version is still version (0: key absent). 0 if it was done,
 * -ESTALE if not. intended: the value op writes (NULL: op removes the key). */
static int etcd_txn(Store *s, const char *k, uint64_t version, json_object *op,
                    const char *intended)
{
        json_object *req = json_object_new_object(), *cmp = json_object_new_object(),
                    *cmps = json_object_new_array(), *ops = json_object_new_array(), *resp = NULL;
        int r = -ENOMEM;

        if (!req || !cmp || !cmps || !ops || !op) {
                json_object_put(req);
                json_object_put(cmp);
                json_object_put(cmps);
                json_object_put(ops);
                json_object_put(op);
                return -ENOMEM;
        }
        json_object_object_add(cmp, "target", json_object_new_string(version ? "MOD" : "CREATE"));
        json_object_object_add(cmp, "result", json_object_new_string("EQUAL"));
        if (etcd_add_b64(cmp, "key", k, strlen(k)) >= 0 &&
            etcd_add_u64(cmp, version ? "mod_revision" : "create_revision", version) >= 0) {
                json_object_array_add(cmps, cmp);
                cmp = NULL;
                json_object_array_add(ops, op);
                op = NULL;
                json_object_object_add(req, "compare", cmps);
                cmps = NULL;
                json_object_object_add(req, "success", ops);
                ops = NULL;
                s->etcd->maybe_applied = false;
                r = etcd_post(s, "/v3/kv/txn", req, &resp);
        }
        json_object_put(req);
        json_object_put(cmp);
        json_object_put(cmps);
        json_object_put(ops);
        json_object_put(op);
        if (r < 0)
                return r;
        r = etcd_json_field_true(resp, "succeeded") ? 0 : -ESTALE;
        json_object_put(resp);
        /* the compare may have failed on this very write, done by a try whose answer was lost:
         * never "changed meanwhile" for our own change */
        if (r == -ESTALE && s->etcd->maybe_applied)
                r = txn_was_ours(s, k, intended);
        return r;
}

static int etcd_write(Store *s, StoreSpace sp, const char *key, const char *text, uint64_t version,
                      mode_t mode)
{
        _cleanup_free_ char *k = full_key(s, sp, key);
        json_object *req, *resp = NULL;
        int r;

        if (!k)
                return -ENOMEM;
        if (strlen(text) > ETCD_VALUE_MAX)
                return -EFBIG;
        if (version != STORE_ANY_VERSION)
                return etcd_txn(s, k, version, op_on("request_put", k, text), text);
        req = json_object_new_object();
        if (!req)
                return -ENOMEM;
        r = etcd_add_b64(req, "key", k, strlen(k));
        if (r >= 0)
                r = etcd_add_b64(req, "value", text, strlen(text));
        if (r >= 0)
                r = etcd_post(s, "/v3/kv/put", req, &resp);
        json_object_put(req);
        json_object_put(resp);
        return r;
}

static int etcd_remove(Store *s, StoreSpace sp, const char *key, uint64_t version)
{
        _cleanup_free_ char *k = full_key(s, sp, key);
        json_object *resp = NULL;
        int r;

        if (!k)
                return -ENOMEM;
        if (version != STORE_ANY_VERSION) {
                if (version == 0)
                        return -ENOENT;
                r = etcd_txn(s, k, version, op_on("request_delete_range", k, NULL), NULL);
                return r;
        }
        r = post_key(s, "/v3/kv/deleterange", k, &resp);
        if (r < 0)
                return r;
        r = etcd_json_u64(resp, "deleted") > 0 ? 0 : -ENOENT;
        json_object_put(resp);
        return r;
}

/* A new lease holding <prefix>/alive/<name> = the heartbeat counter. */
static int lease_grant(Store *s)
{
        EtcdClient *e = s->etcd;
        _cleanup_free_ char *k = NULL;
        json_object *req, *resp = NULL;
        int64_t id;
        char lease[32];
        int r;

        req = json_object_new_object();
        if (!req)
                return -ENOMEM;
        json_object_object_add(req, "TTL", json_object_new_int64((int64_t)e->lease_ttl));
        r = etcd_post(s, "/v3/lease/grant", req, &resp);
        json_object_put(req);
        if (r < 0)
                return r;
        id = (int64_t)etcd_json_u64(resp, "ID");
        json_object_put(resp);
        if (id == 0)
                return -EIO;
        e->lease = id;

        if (asprintf(&k, "%s/alive/%s", e->prefix, s->node_name) < 0)
                return -ENOMEM;
        req = json_object_new_object();
        if (!req)
                return -ENOMEM;
        snprintf(lease, sizeof(lease), "%lld", (long long)id);
        r = etcd_add_b64(req, "key", k, strlen(k));
        if (r >= 0)
                r = etcd_add_b64(req, "value", s->node_name, strlen(s->node_name));
        if (r >= 0) {
                json_object_object_add(req, "lease", json_object_new_string(lease));
                resp = NULL;
                r = etcd_post(s, "/v3/kv/put", req, &resp);
        }
        json_object_put(req);
        json_object_put(resp);
        return r;
}

static int etcd_heartbeat(Store *s)
{
        EtcdClient *e = s->etcd;
        json_object *req, *resp = NULL, *result;
        char lease[32];
        int r;

        if (e->lease == 0)
                return lease_grant(s);
        req = json_object_new_object();
        if (!req)
                return -ENOMEM;
        snprintf(lease, sizeof(lease), "%lld", (long long)e->lease);
        json_object_object_add(req, "ID", json_object_new_string(lease));
        r = etcd_post(s, "/v3/lease/keepalive", req, &resp);
        json_object_put(req);
        if (r < 0)
                return r;
        /* an expired lease answers TTL 0 (or nothing): its key is gone, a new one */
        if (!json_object_object_get_ex(resp, "result", &result) ||
            etcd_json_u64(result, "TTL") == 0) {
                json_object_put(resp);
                e->lease = 0;
                return lease_grant(s);
        }
        json_object_put(resp);
        return 0;
}

static void etcd_free(Store *s)
{
        EtcdClient *e = s->etcd;

        if (!e)
                return;
        if (e->curl)
                curl_easy_cleanup(e->curl);
        curl_slist_free_all(e->headers);
        strv_free(e->endpoints);
        free(e->prefix);
        free(e->user);
        erase_and_free(e->password);
        erase_and_free(e->token);
        free(e->detail);
        free(e);
        s->etcd = NULL;
}

static const char *etcd_error_detail(const Store *s)
{
        return s->etcd ? s->etcd->detail : NULL;
}

const StoreOps store_etcd_ops = {
        .name = "etcd",
        .free = etcd_free,
        .read = etcd_read,
        .list = etcd_list,
        .lock = etcd_lock,
        .write = etcd_write,
        .remove = etcd_remove,
        .heartbeat = etcd_heartbeat,
        .error_detail = etcd_error_detail,
};

void store_etcd_set_transport(Store *s, EtcdTransport transport, void *userdata)
{
        s->etcd->transport = transport;
        s->etcd->transport_data = userdata;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
        (void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool endpoint_is_https(const char *endpoint)
{
        return startswith(endpoint, "https://");
}

EtcdOptions store_etcd_options(const Config *c)
{
        return (EtcdOptions){
                .ca_file = c->cluster.etcd_cacert,
                .cert_file = c->cluster.etcd_cert,
                .key_file = c->cluster.etcd_key,
                .user = c->cluster.etcd_user,
                .password = c->cluster.etcd_password,
                .insecure = c->cluster.etcd_insecure,
        };
}

int store_open_etcd(char *const *endpoints, const char *prefix, const char *node_name,
                    uint64_t lease_ttl_sec, const EtcdOptions *opts, Store **ret)
{
        static const EtcdOptions none = {};
        _cleanup_(store_freep) Store *s = NULL;
        EtcdClient *e;
        size_t n = 0;
        bool plain = false;
        int r;

        if (!opts)
                opts = &none;
        while (endpoints && endpoints[n])
                n++;
        if (n == 0 || lease_ttl_sec == 0 || !store_node_name_is_valid(node_name))
                return -EINVAL;
        if (prefix && (prefix[0] != '/' || prefix[strlen(prefix) - 1] == '/'))
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!endpoint_is_https(endpoints[i]) && !startswith(endpoints[i], "http://"))
                        return -EINVAL;
                plain = plain || !endpoint_is_https(endpoints[i]);
        }
        /* plain HTTP only when asked for, and never with a password on it */
        if (plain && (!opts->insecure || opts->user))
                return -EINVAL;
        if (!opts->cert_file != !opts->key_file || !opts->user != !opts->password ||
            (opts->user && !*opts->user))
                return -EINVAL;

        r = store_new(&store_etcd_ops, node_name, &s);
        if (r < 0)
                return r;
        e = s->etcd = calloc(1, sizeof(EtcdClient));
        if (!e)
                return -ENOMEM;
        e->lease_ttl = lease_ttl_sec;
        e->prefix = strdup(prefix ? prefix : "/hostwarden");
        e->endpoints = calloc(n + 1, sizeof(char *));
        if (!e->prefix || !e->endpoints)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(endpoints[i]);

                while (len > 0 && endpoints[i][len - 1] == '/')
                        len--;
                e->endpoints[i] = strndup(endpoints[i], len);
                if (!e->endpoints[i])
                        return -ENOMEM;
        }
        e->n_endpoints = n;
        if (opts->user) {
                e->user = strdup(opts->user);
                e->password = strdup(opts->password);
                if (!e->user || !e->password)
                        return -ENOMEM;
        }

        (void)pthread_once(&curl_once, curl_init_once);
        e->curl = curl_easy_init();
        if (!e->curl)
                return -ENOMEM;
        etcd_set_token(e, NULL);
        if (!e->headers)
                return -ENOMEM;
        curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, etcd_on_data);
        curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS,
                         opts->connect_timeout_ms ? (long)opts->connect_timeout_ms
                                                  : ETCD_CONNECT_TIMEOUT_MS);
        curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS,
                         opts->timeout_ms ? (long)opts->timeout_ms : ETCD_TIMEOUT_MS);
        curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
        curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, e->error);
        curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, opts->insecure ? "http,https" : "https");
        curl_easy_setopt(e->curl, CURLOPT_NOPROXY, "*");
        /* the members are who their certificates say, always (libcurl's defaults, stated) */
        curl_easy_setopt(e->curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e->curl, CURLOPT_SSL_VERIFYHOST, 2L);
        if ((opts->ca_file && curl_easy_setopt(e->curl, CURLOPT_CAINFO, opts->ca_file)) ||
            (opts->cert_file && (curl_easy_setopt(e->curl, CURLOPT_SSLCERT, opts->cert_file) ||
                                 curl_easy_setopt(e->curl, CURLOPT_SSLCERTTYPE, "PEM") ||
                                 curl_easy_setopt(e->curl, CURLOPT_SSLKEY, opts->key_file) ||
                                 curl_easy_setopt(e->curl, CURLOPT_SSLKEYTYPE, "PEM"))))
                return -ENOMEM;

        *ret = TAKE_PTR(s);
        return 0;
}
