/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Requests of the etcd backend (store-etcd.c, whose comment describes the endpoints, the
 * answers lost and the security): base64, the JSON of etcd's gateway, libcurl, trying the
 * members in turn, and the user's token.
 */

#include <curl/curl.h>
#include <errno.h>
#include <json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-http.h"
#include "util.h"

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
int etcd_b64_decode(const char *s, char **ret, size_t *ret_len)
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

size_t etcd_on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
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
uint64_t etcd_json_u64(json_object *o, const char *field)
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
const char *etcd_json_string_field(json_object *o, const char *field)
{
        json_object *v;

        if (!json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* The number of entries of the array o["kvs"], in *ret; 0 if absent. -EBADMSG if it is not
 * an array (json-c's array calls abort on anything else). */
int etcd_json_kvs(json_object *o, json_object **ret, size_t *ret_n)
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

bool etcd_json_field_true(json_object *o, const char *field)
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
                        uint64_t code = resp ? etcd_json_u64(resp, "code") : 0;

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

void etcd_set_token(EtcdClient *e, const char *token)
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

        etcd_set_token(e, NULL); /* a rejected token must not come along */
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
        token = etcd_json_string_field(resp, "token");
        if (!token || !*token) {
                json_object_put(resp);
                return -EBADMSG;
        }
        e->auth_disabled = false;
        etcd_set_token(e, token);
        json_object_put(resp);
        return e->token ? 0 : -ENOMEM;
}

/* etcd_post_members() with the user's token: asks for one first if there is none, and for
 * another once if etcd does not take it. */
int etcd_post(Store *s, const char *path, json_object *req, json_object **ret)
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

int etcd_add_b64(json_object *o, const char *field, const char *data, size_t len)
{
        char *enc = b64_encode(data, len);

        if (!enc)
                return -ENOMEM;
        json_object_object_add(o, field, json_object_new_string(enc));
        free(enc);
        return 0;
}

int etcd_add_u64(json_object *o, const char *field, uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
        json_object_object_add(o, field, json_object_new_string(buf));
        return 0;
}

/* The decoded value of a kv; -EBADMSG if it is larger than max or holds a NUL byte. */
int etcd_kv_value(json_object *kv, size_t max, char **ret)
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
        enc = etcd_json_string_field(kv, "value");
        if (!enc)
                return -EBADMSG;
        r = etcd_b64_decode(enc, &text, &len);
        if (r < 0)
                return r;
        if (len > max || strlen(text) != len) {
                free(text);
                return -EBADMSG;
        }
        *ret = text;
        return 0;
}
