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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "store-internal.h"
#include "util.h"

#define ETCD_CONNECT_TIMEOUT_MS 1000L
#define ETCD_TIMEOUT_MS         5000L
#define ETCD_RESPONSE_MAX       (256U * 1024U * 1024U)
/* etcd refuses requests over 1.5 MiB by default (--max-request-bytes) */
#define ETCD_VALUE_MAX (1024U * 1024U)

/* etcd's answers that matter here (gRPC status codes, and its error texts, which are stable:
 * its own clients match them) */
#define GRPC_DEADLINE_EXCEEDED 4
#define GRPC_PERMISSION_DENIED 7
#define GRPC_UNAVAILABLE       14
#define GRPC_UNAUTHENTICATED   16

typedef struct EtcdClient {
        char **endpoints; /* "https://host:port", no trailing slash */
        size_t n_endpoints, current;
        char *prefix;
        CURL *curl;
        struct curl_slist *headers;
        int64_t lease; /* 0: none granted yet */
        uint64_t lease_ttl;
        char error[CURL_ERROR_SIZE];
        EtcdTransport transport; /* NULL: libcurl */
        void *transport_data;

        char *user, *password; /* NULL: no authentication */
        char *token;           /* the last token etcd handed out for them; NULL: none */
        bool auth_disabled;    /* etcd said it has authentication off: no token to ask */
        bool maybe_applied;    /* a request of this call lost its answer: done all the same? */
        unsigned transfers;    /* answered by libcurl so far */
        char *detail;          /* store_error_detail() */
} EtcdClient;

static const char *const space_name[_STORE_SPACE_MAX] = {
        [STORE_NODES] = "nodes",
        [STORE_INSTANCES] = "instances",
        [STORE_DEFINITIONS] = "definitions",
        [STORE_CLUSTER] = "cluster",
};

/* ---- base64 ----------------------------------------------------------------------------- */

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const char *data, size_t len)
{
        const unsigned char *p = (const unsigned char *)data;
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;

                if (i + 1 < len)
                        v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < len)
                        v |= p[i + 2];
                *o++ = b64_alphabet[(v >> 18) & 63];
                *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
                *o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
        }
        *o = 0;
        return out;
}

static int b64_value(char c)
{
        const char *p = c ? strchr(b64_alphabet, c) : NULL;

        return p ? (int)(p - b64_alphabet) : -1;
}

/* Decodes s; -EBADMSG if it is not base64. The result is NUL-terminated, its length in
 * *ret_len. */
static int b64_decode(const char *s, char **ret, size_t *ret_len)
{
        size_t len = strlen(s), n = 0;
        char *out;

        if (len % 4 != 0)
                return -EBADMSG;
        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 4) {
                int a = b64_value(s[i]), b = b64_value(s[i + 1]);
                int c = s[i + 2] == '=' ? 0 : b64_value(s[i + 2]);
                int d = s[i + 3] == '=' ? 0 : b64_value(s[i + 3]);
                bool pad2 = s[i + 2] == '=', pad3 = s[i + 3] == '=';
                uint32_t v;

                if (a < 0 || b < 0 || c < 0 || d < 0 || (pad2 && !pad3) ||
                    ((pad2 || pad3) && i + 4 != len)) {
                        free(out);
                        return -EBADMSG;
                }
                v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
                out[n++] = (char)(v >> 16);
                if (!pad2)
                        out[n++] = (char)(v >> 8);
                if (!pad3)
                        out[n++] = (char)v;
        }
        out[n] = 0;
        *ret = out;
        *ret_len = n;
        return 0;
}

/* ---- requests --------------------------------------------------------------------------- */

typedef struct Buffer {
        char *data;
        size_t size;
        bool too_big;
} Buffer;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        Buffer *b = userdata;
        size_t n = size * nmemb;
        char *d;

        if (b->size + n > ETCD_RESPONSE_MAX) {
                b->too_big = true;
                return 0;
        }
        d = realloc(b->data, b->size + n + 1);
        if (!d)
                return 0;
        memcpy(d + b->size, ptr, n);
        b->data = d;
        b->size += n;
        b->data[b->size] = 0;
        return n;
}

/* Appends "what" to the detail of the current call (store_error_detail()). */
_printf_(2, 3) static void note(EtcdClient *e, const char *format, ...)
{
        _cleanup_free_ char *what = NULL;
        char *d;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&what, format, ap);
        va_end(ap);
        if (k < 0)
                return;
        if (asprintf(&d, "%s%s%s", e->detail ? e->detail : "", e->detail ? "; " : "", what) < 0)
                return;
        free(e->detail);
        e->detail = d;
}

static bool curl_code_is_tls(CURLcode c)
{
        switch (c) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CLIENTCERT:
                return true;
        default:
                return false;
        }
}

int store_etcd_curl(void *userdata, const char *url, const char *body, long *ret_status,
                    char **ret_data)
{
        EtcdClient *e = ((Store *)userdata)->etcd;
        Buffer b = {};
        CURLcode c;
        long status = 0;

        e->error[0] = 0;
        curl_easy_setopt(e->curl, CURLOPT_URL, url);
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &b);
        c = curl_easy_perform(e->curl);
        if (c == CURLE_OK)
                curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
        if (c == CURLE_OK && status != 0) {
                long connects = 0;

                /* A connection made anew where one was open: either the open one had been
                 * closed meanwhile, or libcurl sent the request on it, met it dead before
                 * an answer, and sent it again on its own; then the first may have been
                 * done (transactions check, see etcd_txn()). */
                if (e->transfers > 0 &&
                    curl_easy_getinfo(e->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
                    connects > 0)
                        e->maybe_applied = true;
                e->transfers++;
                *ret_status = status;
                *ret_data = b.data;
                return 0;
        }
        free(b.data);
        if (b.too_big)
                return -EBADMSG;
        /* for store_error_detail(): curl's own text for TLS failures (what was refused and
         * by whom), else the code's, which does not change with timings (a state's detail
         * that changes on every heartbeat would be logged on every heartbeat) */
        if (curl_code_is_tls(c) || (c == CURLE_RECV_ERROR && strstr(e->error, "alert"))) {
                if (!e->error[0])
                        snprintf(e->error, sizeof(e->error), "%s", curl_easy_strerror(c));
                return -EPROTO;
        }
        /* TLS 1.3: a member that refuses the client certificate (or wants one) does so after
         * the handshake, and the request meets a reset connection: on a connection made
         * for this very request, that is what it means */
        long connects = 0;
        if ((c == CURLE_SEND_ERROR || c == CURLE_RECV_ERROR || c == CURLE_GOT_NOTHING) &&
            startswith(url, "https://") &&
            curl_easy_getinfo(e->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
            connects > 0) {
                snprintf(e->error, sizeof(e->error),
                         "the member closed the connection right after the TLS handshake: it "
                         "refused this node's client certificate, or wants one (%s)",
                         curl_easy_strerror(c));
                return -EPROTO;
        }
        snprintf(e->error, sizeof(e->error), "%s", curl_easy_strerror(c));
        if (c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST)
                return -ECONNREFUSED;
        return -EHOSTUNREACH;
}

/* A JSON 64-bit number as etcd's gateway writes it (a string) or as a number; 0 if absent. */
static uint64_t json_u64(json_object *o, const char *field)
{
        json_object *v;
        const char *s;
        uint64_t u;

        if (!json_object_object_get_ex(o, field, &v))
                return 0;
        if (json_object_is_type(v, json_type_int))
                return (uint64_t)json_object_get_int64(v);
        s = json_object_get_string(v);
        return s && parse_uint_range(s, 0, UINT64_MAX, &u) >= 0 ? u : 0;
}

/* o[field] if it is a string, else NULL (json-c hands out JSON null as NULL). */
static const char *json_string_field(json_object *o, const char *field)
{
        json_object *v;

        if (!json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* The number of entries of the array o["kvs"], in *ret; 0 if absent. -EBADMSG if it is not
 * an array (json-c's array calls abort on anything else). */
static int json_kvs(json_object *o, json_object **ret, size_t *ret_n)
{
        json_object *v;

        *ret = NULL;
        *ret_n = 0;
        if (!json_object_object_get_ex(o, "kvs", &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return -EBADMSG;
        *ret = v;
        *ret_n = json_object_array_length(v);
        return 0;
}

static bool json_field_true(json_object *o, const char *field)
{
        json_object *v;

        return json_object_object_get_ex(o, field, &v) && json_object_get_boolean(v);
}

/* What etcd's error answer means here. */
static int etcd_error(EtcdClient *e, uint64_t code, const char *msg)
{
        if (strstr(msg, "too large"))
                return -EFBIG;
        /* a token etcd does not take (any more): another one, once */
        if (code == GRPC_UNAUTHENTICATED || strstr(msg, "invalid auth token") ||
            strstr(msg, "revision of auth store is old"))
                return -EKEYEXPIRED;
        /* no token (authentication was turned on since, or no user is configured) */
        if (strstr(msg, "user name is empty"))
                return e->user ? -EKEYEXPIRED : -EACCES;
        if (strstr(msg, "authentication is not enabled"))
                return -ENOTSUP;
        /* etcd 3.4+ with authentication on: a client certificate's CN would not name the user
         * through the gateway, and etcd says so rather than ignore it */
        if (strstr(msg, "CommonName of client")) {
                note(e, "with etcd's authentication on, hostwarden's client certificate must "
                        "have no Common Name (subjectAltName only)");
                return -EACCES;
        }
        if (code == GRPC_PERMISSION_DENIED || strstr(msg, "authentication failed") ||
            strstr(msg, "permission denied"))
                return -EACCES;
        return -EIO;
}

/*
 * POSTs body to path (e.g. "/v3/kv/range") and parses the answer. Tries the endpoints from
 * the current one on: -EHOSTUNREACH when none answers, -EPROTO when none answered and a
 * TLS handshake failed, -EFBIG when etcd refuses the request as too large, -EACCES when it
 * refuses the credentials, -EKEYEXPIRED when it does not take the token, -EIO for any other
 * error etcd reports, -EBADMSG for an answer that is not JSON.
 */
static int etcd_post_members(Store *s, const char *path, const char *body, json_object **ret)
{
        EtcdClient *e = s->etcd;
        bool tls_failed = false;
        int r;

        for (size_t k = 0; k < e->n_endpoints; k++) {
                size_t i = (e->current + k) % e->n_endpoints;
                _cleanup_free_ char *url = NULL;
                char *data = NULL;
                json_object *resp;
                long status = 0;

                if (asprintf(&url, "%s%s", e->endpoints[i], path) < 0)
                        return -ENOMEM;
                e->error[0] = 0;
                r = e->transport ? e->transport(e->transport_data, url, body, &status, &data)
                                 : store_etcd_curl(s, url, body, &status, &data);
                if (r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -EPROTO) {
                        /* the next member; an answer lost after the request went out may
                         * hide a write that was done */
                        note(e, "%s: %s", e->endpoints[i], e->error[0] ? e->error : strerror(-r));
                        /* even "cannot connect" (libcurl may have sent it on a connection
                         * that died, and found the member gone when it tried again) */
                        e->maybe_applied = true;
                        if (r == -EPROTO)
                                tls_failed = true;
                        continue;
                }
                if (r < 0)
                        return r;
                resp = data ? json_tokener_parse(data) : NULL;
                if (status != 200) {
                        const char *msg = NULL, *shown;
                        json_object *m;
                        uint64_t code = resp ? json_u64(resp, "code") : 0;

                        if (resp && json_object_object_get_ex(resp, "error", &m))
                                msg = json_object_get_string(m);
                        /* not etcd's JSON (a proxy's page?): its first line */
                        shown = msg ? msg : data ? data : "(nothing)";
                        note(e, "%s: etcd answered %ld: %.*s", e->endpoints[i], status,
                             (int)MIN(strcspn(shown, "\r\n"), 200U), shown);
                        /* UNAVAILABLE, DEADLINE_EXCEEDED: no leader, partitioned, stopping, or
                         * the request timed out (and may yet be done): another member may do */
                        if (code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED ||
                            status == 503 || status == 504) {
                                json_object_put(resp);
                                free(data);
                                e->maybe_applied = true;
                                r = -EHOSTUNREACH;
                                continue;
                        }
                        free(data);
                        r = etcd_error(e, code, msg ? msg : "");
                        json_object_put(resp);
                        return r;
                }
                free(data);
                if (!resp || !json_object_is_type(resp, json_type_object)) {
                        json_object_put(resp);
                        note(e, "%s: an answer that is not a JSON object", e->endpoints[i]);
                        return -EBADMSG;
                }
                e->current = i;
                *ret = resp;
                return 0;
        }
        return tls_failed ? -EPROTO : -EHOSTUNREACH;
}

static void set_token(EtcdClient *e, const char *token)
{
        _cleanup_free_ char *header = NULL;
        struct curl_slist *h;

        free(e->token);
        e->token = NULL;
        h = curl_slist_append(NULL, "Content-Type: application/json");
        if (h && token && asprintf(&header, "Authorization: %s", token) >= 0) {
                e->token = strdup(token);
                if (!e->token || !curl_slist_append(h, header)) {
                        free(e->token);
                        e->token = NULL;
                }
        }
        if (!h)
                return; /* out of memory: the old headers stay, the next request says so */
        if (e->curl)
                curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, h);
        curl_slist_free_all(e->headers);
        e->headers = h;
}

/* A token for the user (/v3/auth/authenticate), or none needed (authentication off). */
static int etcd_authenticate(Store *s)
{
        EtcdClient *e = s->etcd;
        json_object *req = json_object_new_object(), *pw = NULL, *resp = NULL;
        const char *body, *token;
        int r = -ENOMEM;

        set_token(e, NULL); /* a rejected token must not come along */
        if (!req)
                return -ENOMEM;
        json_object_object_add(req, "name", json_object_new_string(e->user));
        pw = json_object_new_string(e->password);
        if (pw) {
                json_object_object_add(req, "password", pw);
                body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
                r = body ? etcd_post_members(s, "/v3/auth/authenticate", body, &resp) : -ENOMEM;
                /* no copy of the password left in freed memory */
                if (body)
                        explicit_bzero((char *)body, strlen(body));
                explicit_bzero((char *)json_object_get_string(pw), strlen(e->password));
        }
        json_object_put(req);
        if (r == -ENOTSUP) {
                e->auth_disabled = true;
                return 0;
        }
        if (r == -EKEYEXPIRED) /* an authentication that is refused: the credentials */
                r = -EACCES;
        if (r == -EACCES)
                note(e,
                     "etcd refused user '%s' (wrong etcd_user or etcd_password, or a user "
                     "without the permission)",
                     e->user);
        if (r < 0)
                return r;
        token = json_string_field(resp, "token");
        if (!token || !*token) {
                json_object_put(resp);
                return -EBADMSG;
        }
        e->auth_disabled = false;
        set_token(e, token);
        json_object_put(resp);
        return e->token ? 0 : -ENOMEM;
}

/* etcd_post_members() with the user's token: asks for one first if there is none, and for
 * another once if etcd does not take it. */
static int etcd_post(Store *s, const char *path, json_object *req, json_object **ret)
{
        EtcdClient *e = s->etcd;
        const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        int r;

        if (!body)
                return -ENOMEM;
        free(e->detail);
        e->detail = NULL;
        if (e->user && !e->token && !e->auth_disabled) {
                r = etcd_authenticate(s);
                if (r < 0)
                        return r;
        }
        r = etcd_post_members(s, path, body, ret);
        if (r == -EKEYEXPIRED && e->user) {
                r = etcd_authenticate(s);
                if (r >= 0)
                        r = etcd_post_members(s, path, body, ret);
        }
        if (r == -EKEYEXPIRED || r == -ENOTSUP)
                r = -EACCES;
        if (r == -EACCES && !e->user)
                note(e, "etcd asks for credentials: set etcd_user and etcd_password");
        return r;
}

static char *full_key(Store *s, StoreSpace sp, const char *key)
{
        char *k;

        if (asprintf(&k, "%s/%s/%s", s->etcd->prefix, space_name[sp], key) < 0)
                return NULL;
        return k;
}

static int add_b64(json_object *o, const char *field, const char *data, size_t len)
{
        char *enc = b64_encode(data, len);

        if (!enc)
                return -ENOMEM;
        json_object_object_add(o, field, json_object_new_string(enc));
        free(enc);
        return 0;
}

static int add_u64(json_object *o, const char *field, uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
        json_object_object_add(o, field, json_object_new_string(buf));
        return 0;
}

/* The decoded value of a kv; -EBADMSG if it is larger than max or holds a NUL byte. */
static int kv_value(json_object *kv, size_t max, char **ret)
{
        json_object *v;
        const char *enc;
        char *text;
        size_t len;
        int r;

        if (!json_object_object_get_ex(kv, "value", &v)) {
                /* the gateway leaves empty values out */
                text = strdup("");
                if (!text)
                        return -ENOMEM;
                *ret = text;
                return 0;
        }
        enc = json_string_field(kv, "value");
        if (!enc)
                return -EBADMSG;
        r = b64_decode(enc, &text, &len);
        if (r < 0)
                return r;
        if (len > max || strlen(text) != len) {
                free(text);
                return -EBADMSG;
        }
        *ret = text;
        return 0;
}

/* ---- the backend ------------------------------------------------------------------------- */

/* POSTs {"key": k} to path. */
static int post_key(Store *s, const char *path, const char *k, json_object **ret)
{
        json_object *req = json_object_new_object();
        int r;

        if (!req)
                return -ENOMEM;
        r = add_b64(req, "key", k, strlen(k));
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
        r = json_kvs(resp, &kvs, &n);
        if (r < 0 || n == 0) {
                json_object_put(resp);
                return r < 0 ? r : -ENOENT;
        }
        kv = json_object_array_get_idx(kvs, 0);
        r = kv_value(kv, max, ret);
        if (r >= 0 && ret_version)
                *ret_version = json_u64(kv, "mod_revision");
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
        r = add_b64(req, "key", from, plen);
        if (r >= 0)
                r = add_b64(req, "range_end", to, plen);
        if (r >= 0)
                r = etcd_post(s, "/v3/kv/range", req, &resp);
        json_object_put(req);
        if (r < 0)
                return r;
        r = json_kvs(resp, &kvs, &n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                json_object *kv = json_object_array_get_idx(kvs, i);
                const char *kenc = json_string_field(kv, "key");
                _cleanup_free_ char *key = NULL, *text = NULL;
                size_t klen;

                if (!kenc) {
                        r = -EBADMSG;
                        break;
                }
                r = b64_decode(kenc, &key, &klen);
                if (r < 0)
                        break;
                if (klen <= plen || strncmp(key, from, plen) != 0 || strlen(key) != klen ||
                    !filter(key + plen))
                        continue; /* not one of ours */
                r = kv_value(kv, RECORD_MAX_SIZE, &text);
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

        if (!op || !inner || add_b64(inner, "key", k, strlen(k)) < 0 ||
            (text && add_b64(inner, "value", text, strlen(text)) < 0)) {
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
        r = json_kvs(resp, &kvs, &n);
        if (r >= 0 && n > 0 && intended)
                r = kv_value(json_object_array_get_idx(kvs, 0), ETCD_VALUE_MAX, &text);
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
        if (add_b64(cmp, "key", k, strlen(k)) >= 0 &&
            add_u64(cmp, version ? "mod_revision" : "create_revision", version) >= 0) {
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
        r = json_field_true(resp, "succeeded") ? 0 : -ESTALE;
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
        r = add_b64(req, "key", k, strlen(k));
        if (r >= 0)
                r = add_b64(req, "value", text, strlen(text));
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
        r = json_u64(resp, "deleted") > 0 ? 0 : -ENOENT;
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
        id = (int64_t)json_u64(resp, "ID");
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
        r = add_b64(req, "key", k, strlen(k));
        if (r >= 0)
                r = add_b64(req, "value", s->node_name, strlen(s->node_name));
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
        if (!json_object_object_get_ex(resp, "result", &result) || json_u64(result, "TTL") == 0) {
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
        if (e->password) {
                explicit_bzero(e->password, strlen(e->password));
                free(e->password);
        }
        if (e->token) {
                explicit_bzero(e->token, strlen(e->token));
                free(e->token);
        }
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
        set_token(e, NULL);
        if (!e->headers)
                return -ENOMEM;
        curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_data);
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
