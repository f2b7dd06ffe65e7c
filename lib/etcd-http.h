/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the etcd backend (store-etcd.c: keys, transactions, leases) shares with etcd-http.c
 * (requests to the members: base64, JSON, libcurl, the user's token).
 */
#include <curl/curl.h>
#include <json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store-internal.h"

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

/* Base64 of etcd's keys and values (NUL-terminated): -EBADMSG for text that is not base64. */
int etcd_b64_decode(const char *s, char **ret, size_t *ret_len);

/* libcurl's CURLOPT_WRITEFUNCTION: collects the answer, at most ETCD_RESPONSE_MAX bytes. */
size_t etcd_on_data(char *ptr, size_t size, size_t nmemb, void *userdata);

/* The headers of every request: JSON, and "Authorization: token" (NULL: none). */
void etcd_set_token(EtcdClient *e, const char *token);

/* POSTs req to path (e.g. "/v3/kv/range") on the members, with the user's token, and parses
 * the answer: see etcd-http.c for the errors. */
int etcd_post(Store *s, const char *path, json_object *req, json_object **ret);

/* Reading etcd's answers, and writing its requests (keys and values base64, 64-bit numbers
 * as strings). */
uint64_t etcd_json_u64(json_object *o, const char *field);
const char *etcd_json_string_field(json_object *o, const char *field);
int etcd_json_kvs(json_object *o, json_object **ret, size_t *ret_n);
bool etcd_json_field_true(json_object *o, const char *field);
int etcd_add_b64(json_object *o, const char *field, const char *data, size_t len);
int etcd_add_u64(json_object *o, const char *field, uint64_t v);
int etcd_kv_value(json_object *kv, size_t max, char **ret);
