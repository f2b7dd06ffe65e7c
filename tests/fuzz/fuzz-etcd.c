/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * With [cluster] store = etcd, everything etcd's JSON gateway answers is parsed by
 * lib/store-etcd.c and lib/store.c: a member that is broken, hostile or speaks another
 * version must not crash hostwardend or make up a record. The input is the answers, one
 * after another, separated by NUL bytes; the first byte of each picks the HTTP status ('4':
 * 400, '5': 503, 'x': no answer, anything else: 200) and the rest is the body. The requests
 * are those of a daemon's round: read and list instances, list nodes, heartbeat, compare-and-
 * swap and remove an instance, read a definition. When the answers run out, no member
 * answers.
 *
 * Beyond "no crash, no leak": every record that comes back is one a node could have
 * written (a canonical UUID, an owner that is a valid node name, a sorted listing).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store-internal.h"
#include "store.h"
#include "util.h"

#define UUID "6f1c4a1e-5d0b-4b8e-9f0a-2c3d4e5f6a7b"

typedef struct Answers {
        const char *p, *end;
} Answers;

static int answer(void *userdata, const char *url, const char *body, long *ret_status,
                  char **ret_data)
{
        Answers *a = userdata;
        const char *nul;
        size_t n;

        if (a->p >= a->end)
                return -EHOSTUNREACH;
        nul = memchr(a->p, 0, (size_t)(a->end - a->p));
        n = (size_t)((nul ? nul : a->end) - a->p);
        switch (a->p[0]) {
        case 'x':
                a->p += n + 1;
                return -EHOSTUNREACH;
        case '4':
                *ret_status = 400;
                break;
        case '5':
                *ret_status = 503;
                break;
        default:
                *ret_status = 200;
        }
        *ret_data = n > 1 ? strndup(a->p + 1, n - 1) : NULL;
        a->p += n + 1;
        return 0;
}

static void check_instance(const InstanceRecord *r)
{
        if (!uuid_is_valid(r->uuid) || !r->owner || !store_node_name_is_valid(r->owner) ||
            (r->evacuated_from && !store_node_name_is_valid(r->evacuated_from)))
                abort(); /* a record no node could have written */
        for (const char *c = r->uuid; *c; c++)
                if (*c >= 'A' && *c <= 'F')
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *const endpoints[] = { (char *)"http://etcd-a:2379", (char *)"http://etcd-b:2379",
                                    NULL };
        Answers a = { (const char *)data, (const char *)data + size };
        _cleanup_(store_freep) Store *s = NULL;
        InstanceRecord rec = {}, *list = NULL;
        NodeRecord *nodes = NULL;
        _cleanup_free_ char *def = NULL;
        size_t n = 0;
        uint64_t gen = 0;

        if (store_open_etcd(endpoints, "/hostwarden", "node1", 3,
                            &(EtcdOptions){ .insecure = true }, &s) < 0)
                return 0;
        store_etcd_set_transport(s, answer, &a);

        /* the identity every node reads before it trusts the store */
        ClusterIdentity id = {};
        if (store_cluster_get(s, &id) >= 0) {
                if (!uuid_is_valid(id.id) || (id.name && !cluster_name_is_valid(id.name)) ||
                    (id.created_by && !store_node_name_is_valid(id.created_by)))
                        abort(); /* an identity no node could have written */
                cluster_identity_done(&id);
        }

        if (store_instance_get(s, UUID, &rec) >= 0) {
                check_instance(&rec);
                if (!streq(rec.uuid, UUID))
                        abort(); /* the record of another instance */
                gen = rec.generation;
                instance_record_done(&rec);
        }
        if (store_instance_list(s, &list, &n) >= 0) {
                for (size_t i = 0; i < n; i++) {
                        check_instance(&list[i]);
                        if (i > 0 && strcmp(list[i - 1].uuid, list[i].uuid) >= 0)
                                abort(); /* not sorted, or the same instance twice */
                }
                list = instance_record_array_free(list, n);
        }
        if (store_node_list(s, &nodes, &n) >= 0) {
                for (size_t i = 0; i < n; i++)
                        if (!store_node_name_is_valid(nodes[i].name))
                                abort();
                nodes = node_record_array_free(nodes, n);
        }
        (void)store_heartbeat(s);
        rec = (InstanceRecord){ .uuid = UUID, .owner = (char *)"node2", .name = (char *)"vm" };
        (void)store_instance_cas(s, &rec, gen, NULL);
        (void)store_instance_remove(s, UUID, gen + 1);
        (void)store_definition_get(s, UUID, &def);
        (void)store_cluster_init(s, "fuzz", false, &id);
        cluster_identity_done(&id);
        return 0;
}
