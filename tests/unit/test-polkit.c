/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Deny by default, with a list (bolt's bouncer): every method of every vtable the daemon
 * registers is either in the polkit table (dbus/polkit.c) or in the explicit list of
 * read-only methods, never both and never neither; every action of the table is declared in
 * polkit/org.hostwarden.policy and granted by the shipped rules. The vtables are the
 * daemon's own arrays, walked at run time (this test links the daemon's library), so a
 * method added later is seen here without anybody remembering this test; a vtable added
 * later is seen by the scan of dbus/ *.c for sd_bus_vtable arrays that bus_vtables[] lacks.
 */
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "polkit.h"
#include "test-helpers.h"

static const char *source_dir(void)
{
        const char *d = getenv("HW_SOURCE_DIR");

        assert_non_null(d);
        return d;
}

static char *read_source(const char *rel)
{
        char *path, *text = NULL;

        assert_true(asprintf(&path, "%s/%s", source_dir(), rel) > 0);
        assert_int_equal(read_full_file(path, 1 << 22, &text, NULL), 0);
        free(path);
        return text;
}

static bool in_list(const PolkitEntry *l, size_t n, const char *interface, const char *member)
{
        for (size_t i = 0; i < n; i++)
                if (streq(l[i].interface, interface) && streq(l[i].member, member))
                        return true;
        return false;
}

static bool in_vtables(const char *interface, const char *member)
{
        for (const BusVtable *b = bus_vtables; b->interface; b++)
                if (streq(b->interface, interface))
                        for (const sd_bus_vtable *v = b->vtable; v->type != _SD_BUS_VTABLE_END; v++)
                                if (v->type == _SD_BUS_VTABLE_METHOD &&
                                    streq(v->x.method.member, member))
                                        return true;
        return false;
}

static void test_every_method_is_authorized_or_listed_read_only(void **state)
{
        size_t n_table, n_ro, n_methods = 0;
        const PolkitEntry *table = polkit_table(&n_table), *ro = polkit_read_only_methods(&n_ro);

        for (const BusVtable *b = bus_vtables; b->interface; b++)
                for (const sd_bus_vtable *v = b->vtable; v->type != _SD_BUS_VTABLE_END; v++) {
                        const char *member;
                        bool mutating, read_only;

                        /* a property a client can set changes state without any handler of
                         * ours asking polkit */
                        if (v->type == _SD_BUS_VTABLE_WRITABLE_PROPERTY)
                                fail_msg("%s.%s is a writable property: nothing authorizes it",
                                         b->interface, v->x.property.member);
                        if (v->type != _SD_BUS_VTABLE_METHOD)
                                continue;
                        member = v->x.method.member;
                        mutating = polkit_action_for(b->interface, member) != NULL;
                        read_only = in_list(ro, n_ro, b->interface, member);
                        n_methods++;
                        if (!mutating && !read_only)
                                fail_msg("%s.%s (%s) is neither in the polkit table nor in the "
                                         "read-only list of dbus/polkit.c",
                                         b->interface, member, b->name);
                        if (mutating && read_only)
                                fail_msg("%s.%s is in the polkit table and in the read-only list",
                                         b->interface, member);
                }
        assert_int_equal(n_methods, n_table + n_ro);

        /* and no entry names a method that does not exist (a typo there would leave the real
         * method unlisted, which the loop above finds, or a stale grant) */
        for (size_t i = 0; i < n_table; i++)
                if (!in_vtables(table[i].interface, table[i].member))
                        fail_msg("the polkit table names %s.%s, which no vtable has",
                                 table[i].interface, table[i].member);
        for (size_t i = 0; i < n_ro; i++)
                if (!in_vtables(ro[i].interface, ro[i].member))
                        fail_msg("the read-only list names %s.%s, which no vtable has",
                                 ro[i].interface, ro[i].member);
}

static void test_every_vtable_array_is_in_the_registry(void **state)
{
        regex_t re;
        struct dirent **entries = NULL;
        char *dir;
        int n, found = 0;

        assert_int_equal(regcomp(&re, "sd_bus_vtable[[:space:]]+([A-Za-z0-9_]+)[[:space:]]*\\[\\]",
                                 REG_EXTENDED),
                         0);
        assert_true(asprintf(&dir, "%s/dbus", source_dir()) > 0);
        n = scandir(dir, &entries, NULL, alphasort);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
                const char *name = entries[i]->d_name;
                size_t len = strlen(name);

                if (len > 2 && streq(name + len - 2, ".c")) {
                        char *rel, *text;
                        regmatch_t mt[2];

                        assert_true(asprintf(&rel, "dbus/%s", name) > 0);
                        text = read_source(rel);
                        for (const char *p = text; regexec(&re, p, 2, mt, 0) == 0;
                             p += mt[0].rm_eo) {
                                char array[128] = "";
                                bool known = false;

                                snprintf(array, sizeof(array), "%.*s",
                                         (int)(mt[1].rm_eo - mt[1].rm_so), p + mt[1].rm_so);
                                for (const BusVtable *b = bus_vtables; b->interface; b++)
                                        known = known || streq(b->name, array);
                                if (!known)
                                        fail_msg("%s defines vtable %s, which bus_vtables[] "
                                                 "(dbus/bus-vtables.c) lacks",
                                                 rel, array);
                                found++;
                        }
                        free(text);
                        free(rel);
                }
                free(entries[i]);
        }
        free(entries);
        free(dir);
        regfree(&re);
        assert_true(found >= 2); /* the scan sees node_vtable and migration_vtable */
}

static void test_every_action_is_in_the_policy_file_and_the_rules(void **state)
{
        size_t n;
        const PolkitEntry *table = polkit_table(&n);
        char *policy = read_source("polkit/org.hostwarden.policy");
        char *rules = read_source("polkit/50-hostwarden.rules");
        int declared = 0;

        for (size_t i = 0; i < n; i++) {
                char *decl;

                assert_true(asprintf(&decl, "<action id=\"%s\">", table[i].action) > 0);
                if (!strstr(policy, decl))
                        fail_msg("action %s (for %s) is not declared in "
                                 "polkit/org.hostwarden.policy",
                                 table[i].action, table[i].member);
                free(decl);
                /* the rules grant group hostwarden every action under this prefix */
                assert_true(startswith(table[i].action, "org.hostwarden."));
        }
        assert_true(test_contains(rules, "action.id.indexOf(\"org.hostwarden.\") == 0"));
        assert_true(test_contains(rules, "subject.isInGroup(\"hostwarden\")"));

        /* no declared action that the table never asks for (a forgotten grant) */
        for (const char *p = policy; (p = strstr(p, "<action id=\"")); p++) {
                char id[128] = "";
                bool used = false;

                assert_int_equal(sscanf(p, "<action id=\"%127[^\"]\"", id), 1);
                for (size_t i = 0; i < n; i++)
                        used = used || streq(table[i].action, id);
                if (!used)
                        fail_msg("polkit/org.hostwarden.policy declares %s, which no method uses",
                                 id);
                declared++;
        }
        assert_true(declared > 0);
        free(policy);
        free(rules);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_method_is_authorized_or_listed_read_only),
                cmocka_unit_test(test_every_vtable_array_is_in_the_registry),
                cmocka_unit_test(test_every_action_is_in_the_policy_file_and_the_rules),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
