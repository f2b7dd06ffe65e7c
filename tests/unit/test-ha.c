/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest's HA setting in its domain XML (lib/ha.c): parsing, formatting, and the merge that
 * SetHA writes back without losing the element's other attributes. */
#include <stdlib.h>
#include <string.h>

#include "ha.h"
#include "test-helpers.h"

#define DOM_HEAD \
        "<domain type='kvm'><name>web1</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
#define DOM_TAIL "</domain>"
#define NS       "https://hostwarden.org/xmlns/domain/1"

static void parse(const char *xml, HaMode def, HaSetting *h, bool *bad)
{
        assert_int_equal(ha_setting_from_xml(xml, def, h, bad), 0);
}

static void test_prefixed_element(void **state)
{
        HaSetting h;
        bool bad = true;

        parse(DOM_HEAD "<metadata><hostwarden:guest xmlns:hostwarden='" NS
                       "' ha='off' priority='-7'/></metadata>" DOM_TAIL,
              HA_RESTART, &h, &bad);
        assert_int_equal(h.mode, HA_OFF);
        assert_true(h.mode_set);
        assert_int_equal(h.priority, -7);
        assert_false(bad);
}

static void test_default_namespace_element(void **state)
{
        HaSetting h;
        bool bad = true;

        /* what virsh metadata --config writes when given no prefix */
        parse(DOM_HEAD "<metadata><guest xmlns='" NS
                       "' ha='restart' priority='1000'/></metadata>" DOM_TAIL,
              HA_OFF, &h, &bad);
        assert_int_equal(h.mode, HA_RESTART);
        assert_true(h.mode_set);
        assert_int_equal(h.priority, 1000);
        assert_false(bad);
}

static void test_absent_is_the_default(void **state)
{
        HaSetting h;
        bool bad = true;

        parse(DOM_HEAD DOM_TAIL, HA_OFF, &h, &bad);
        assert_int_equal(h.mode, HA_OFF);
        assert_false(h.mode_set);
        assert_int_equal(h.priority, HA_PRIORITY_DEFAULT);
        assert_false(bad);

        /* another namespace's <guest> is not ours */
        parse(DOM_HEAD
              "<metadata><x:guest xmlns:x='https://example.org/1' ha='off'/></metadata>" DOM_TAIL,
              HA_RESTART, &h, &bad);
        assert_int_equal(h.mode, HA_RESTART);
        assert_false(h.mode_set);
        assert_false(bad);
}

static void test_invalid_values_count_as_not_set(void **state)
{
        HaSetting h;
        bool bad = false;

        parse(DOM_HEAD "<metadata><guest xmlns='" NS
                       "' ha='maybe' priority='5'/></metadata>" DOM_TAIL,
              HA_OFF, &h, &bad);
        assert_int_equal(h.mode, HA_OFF);
        assert_false(h.mode_set);
        assert_int_equal(h.priority, 5);
        assert_true(bad);

        bad = false;
        parse(DOM_HEAD "<metadata><guest xmlns='" NS
                       "' ha='restart' priority='high'/></metadata>" DOM_TAIL,
              HA_OFF, &h, &bad);
        assert_int_equal(h.mode, HA_RESTART);
        assert_int_equal(h.priority, HA_PRIORITY_DEFAULT);
        assert_true(bad);

        bad = false;
        parse(DOM_HEAD "<metadata><guest xmlns='" NS "' priority='1001'/></metadata>" DOM_TAIL,
              HA_OFF, &h, &bad);
        assert_int_equal(h.priority, HA_PRIORITY_DEFAULT);
        assert_true(bad);

        assert_true(ha_setting_from_xml("<domain", HA_OFF, &h, NULL) < 0);
}

static void test_format(void **state)
{
        char *s = NULL;

        assert_int_equal(ha_metadata_format(HA_RESTART, -1000, &s), 0);
        assert_string_equal(s, "<guest ha=\"restart\" priority=\"-1000\"/>");
        free(s);
        assert_int_equal(ha_metadata_format(HA_OFF, 1001, &s), -EINVAL);
        assert_int_equal(ha_metadata_format(_HA_MODE_INVALID, 0, &s), -EINVAL);
}

static void test_merge_without_element(void **state)
{
        char *s = NULL;

        assert_int_equal(ha_metadata_merge(NULL, HA_OFF, 3, &s), 0);
        assert_string_equal(s, "<guest ha=\"off\" priority=\"3\"/>");
        free(s);
        assert_int_equal(ha_metadata_merge("", HA_RESTART, 0, &s), 0);
        assert_string_equal(s, "<guest ha=\"restart\" priority=\"0\"/>");
        free(s);
}

static void test_merge_keeps_other_attributes(void **state)
{
        char *s = NULL, *xml = NULL;
        HaSetting h;
        bool bad;

        /* as virDomainGetMetadata() returns it: prefixed, with its declaration */
        assert_int_equal(ha_metadata_merge("<hostwarden:guest xmlns:hostwarden=\"" NS
                                           "\" ha=\"off\" maintenance=\"migrate\" "
                                           "policy=\"a&amp;b &quot;c&lt;\" priority=\"9\"/>",
                                           HA_RESTART, -2, &s),
                         0);
        assert_string_equal(s, "<guest maintenance=\"migrate\" policy=\"a&amp;b &quot;c&lt;\" "
                               "ha=\"restart\" priority=\"-2\"/>");
        /* and it reads back as what was set */
        assert_true(asprintf(&xml, DOM_HEAD "<metadata>%.6s xmlns=\"" NS "\"%s</metadata>" DOM_TAIL,
                             s, s + 6) > 0);
        parse(xml, HA_OFF, &h, &bad);
        assert_int_equal(h.mode, HA_RESTART);
        assert_int_equal(h.priority, -2);
        assert_false(bad);
        free(xml);
        free(s);

        /* the default namespace, attributes in hostwarden's namespace taken unprefixed */
        assert_int_equal(ha_metadata_merge("<guest xmlns=\"" NS "\" xmlns:h=\"" NS
                                           "\" h:future=\"kept\"/>",
                                           HA_OFF, 0, &s),
                         0);
        assert_string_equal(s, "<guest future=\"kept\" ha=\"off\" priority=\"0\"/>");
        free(s);
}

static void test_merge_refuses_what_it_would_lose(void **state)
{
        char *s = NULL;

        assert_int_equal(
                ha_metadata_merge("<guest xmlns=\"" NS "\"><rule/></guest>", HA_OFF, 0, &s),
                -EOPNOTSUPP);
        assert_int_equal(ha_metadata_merge("<guest xmlns=\"" NS "\" xmlns:x=\"urn:x\" x:a=\"1\"/>",
                                           HA_OFF, 0, &s),
                         -EOPNOTSUPP);
        assert_int_equal(ha_metadata_merge("<guest", HA_OFF, 0, &s), -EBADMSG);
        assert_int_equal(ha_metadata_merge("<other xmlns=\"" NS "\"/>", HA_OFF, 0, &s), -EBADMSG);
        assert_int_equal(ha_metadata_merge(NULL, HA_OFF, -1001, &s), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_prefixed_element),
                cmocka_unit_test(test_default_namespace_element),
                cmocka_unit_test(test_absent_is_the_default),
                cmocka_unit_test(test_invalid_values_count_as_not_set),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_merge_without_element),
                cmocka_unit_test(test_merge_keeps_other_attributes),
                cmocka_unit_test(test_merge_refuses_what_it_would_lose),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
