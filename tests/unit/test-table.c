/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl/table.c: tables that fit the screen (hostwardenctl overview, migrations --watch). */
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "test-helpers.h"
#include "util.h"

/* The table as printed with this width (0: no limit) and colour. */
static char *render(const Table *t, size_t width, bool color, size_t *ret_lines)
{
        char *buf = NULL;
        size_t size = 0, lines;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        lines = table_print(t, f, width, color);
        assert_int_equal(fclose(f), 0);
        if (ret_lines)
                *ret_lines = lines;
        return buf;
}

static Table *sample(void)
{
        Table *t = table_new("NODE", "STATE", "INSTANCES", "NOTE", NULL);

        assert_non_null(t);
        table_set_right(t, 2);
        assert_int_equal(table_add(t, NULL, "node1"), 0);
        assert_int_equal(table_add(t, COLOR_GREEN, "up"), 0);
        assert_int_equal(table_addf(t, NULL, "%d", 12), 0);
        assert_int_equal(table_add(t, NULL, ""), 0);
        assert_int_equal(table_add(t, NULL, "node-with-a-long-name"), 0);
        assert_int_equal(table_add(t, COLOR_BOLD_RED, "down"), 0);
        assert_int_equal(table_addf(t, NULL, "%d", 3), 0);
        assert_int_equal(table_add(t, COLOR_BOLD_RED, "not fenced: fence it, then evacuate"), 0);
        return t;
}

static void test_columns_follow_the_content(void **state)
{
        _cleanup_(table_freep) Table *t = sample();
        _cleanup_free_ char *out = NULL;
        size_t lines;

        assert_int_equal(table_rows(t), 2);
        out = render(t, 0, false, &lines);
        assert_int_equal(lines, 3);
        assert_string_equal(out, "NODE                  STATE INSTANCES NOTE\n"
                                 "node1                 up           12\n"
                                 "node-with-a-long-name down          3 not fenced: fence it, then "
                                 "evacuate\n");
}

static void test_no_line_is_wider_than_the_screen(void **state)
{
        _cleanup_(table_freep) Table *t = sample();

        for (size_t width = 1; width <= 80; width++) {
                _cleanup_free_ char *out = render(t, width, false, NULL);
                char *line, *save = NULL;

                for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        assert_true(utf8_width(line) <= width);
        }
}

static void test_a_cut_line_ends_in_text_and_says_so(void **state)
{
        _cleanup_(table_freep) Table *t = sample();

        /* every width: no line ends in a blank, and a line that leaves anything out ends
         * with "…" */
        for (size_t width = 1; width <= 80; width++) {
                _cleanup_free_ char *out = render(t, width, false, NULL);
                _cleanup_free_ char *full = render(t, 0, false, NULL);
                char *line, *save = NULL, *fline, *fsave = NULL;

                for (line = strtok_r(out, "\n", &save), fline = strtok_r(full, "\n", &fsave);
                     line && fline;
                     line = strtok_r(NULL, "\n", &save), fline = strtok_r(NULL, "\n", &fsave)) {
                        size_t len = strlen(line);

                        assert_true(len > 0 && line[len - 1] != ' ');
                        if (!streq(line, fline))
                                assert_true(len >= strlen("…") &&
                                            streq(line + len - strlen("…"), "…"));
                }
        }
}

static void test_control_characters_never_reach_the_terminal(void **state)
{
        _cleanup_(table_freep) Table *t = table_new("REASON", NULL);
        _cleanup_free_ char *out = NULL;

        assert_int_equal(table_add(t, NULL,
                                   "a\033[2Jb\tc\x7f\xc2\x9b"
                                   "d"),
                         0);
        out = render(t, 0, true, NULL);
        assert_non_null(strstr(out, "a?[2Jb?c??d"));
        assert_null(strstr(out, "\033[2J"));
}

static void test_the_shrink_column_gives_way_first(void **state)
{
        _cleanup_(table_freep) Table *t = sample();
        _cleanup_free_ char *out = NULL;

        /* NOTE (the last column) is cut, with an ellipsis; the others stay whole */
        out = render(t, 50, false, NULL);
        assert_string_equal(out, "NODE                  STATE INSTANCES NOTE\n"
                                 "node1                 up           12\n"
                                 "node-with-a-long-name down          3 not fenced:…\n");
        free(out);

        /* another shrink column: NODE gives way down to 8 characters, NOTE stays whole */
        table_set_shrink(t, 0);
        out = render(t, 66, false, NULL);
        assert_string_equal(out, "NODE           STATE INSTANCES NOTE\n"
                                 "node1          up           12\n"
                                 "node-with-a-l… down          3 not fenced: fence it, then "
                                 "evacuate\n");
}

static void test_colour_wraps_cells_and_underlines_the_header(void **state)
{
        _cleanup_(table_freep) Table *t = sample();
        _cleanup_free_ char *out = render(t, 0, true, NULL);

        assert_non_null(strstr(out, COLOR_UNDERLINE "NODE" COLOR_RESET));
        assert_non_null(strstr(out, COLOR_GREEN "up" COLOR_RESET));
        assert_non_null(strstr(out, COLOR_BOLD_RED "down" COLOR_RESET));
        /* without colour, not one escape sequence */
        free(out);
        out = render(t, 0, false, NULL);
        assert_null(strchr(out, '\033'));
}

static void test_utf8_counts_code_points(void **state)
{
        _cleanup_(table_freep) Table *t = table_new("NAME", "X", NULL);
        _cleanup_free_ char *out = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        assert_int_equal(utf8_width("grüße"), 5);
        assert_int_equal(utf8_width(""), 0);
        assert_int_equal(table_add(t, NULL, "grüße-vm"), 0);
        assert_int_equal(table_add(t, NULL, "1"), 0);
        out = render(t, 0, false, NULL);
        assert_string_equal(out, "NAME     X\ngrüße-vm 1\n");

        /* a row whose last cells are empty ends at its last word */
        assert_int_equal(table_add(t, NULL, "vm"), 0);
        assert_int_equal(table_add(t, NULL, ""), 0);
        free(out);
        out = render(t, 0, false, NULL);
        assert_string_equal(out, "NAME     X\ngrüße-vm 1\nvm\n");

        /* a cut never splits a character */
        f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(print_cut(f, "grüße-vm", 4, 0), 4);
        assert_int_equal(print_cut(f, "ab", 4, 6), 6);
        fclose(f);
        assert_string_equal(buf, "grü…ab    ");
        free(buf);
}

static void test_missing_values_show_as_a_dash(void **state)
{
        _cleanup_(table_freep) Table *t = table_new("A", "B", NULL);
        _cleanup_free_ char *out = NULL;

        assert_int_equal(table_add(t, NULL, NULL), 0);
        assert_int_equal(table_add(t, NULL, "x"), 0);
        out = render(t, 0, false, NULL);
        assert_string_equal(out, "A B\n- x\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_columns_follow_the_content),
                cmocka_unit_test(test_no_line_is_wider_than_the_screen),
                cmocka_unit_test(test_the_shrink_column_gives_way_first),
                cmocka_unit_test(test_a_cut_line_ends_in_text_and_says_so),
                cmocka_unit_test(test_control_characters_never_reach_the_terminal),
                cmocka_unit_test(test_colour_wraps_cells_and_underlines_the_header),
                cmocka_unit_test(test_utf8_counts_code_points),
                cmocka_unit_test(test_missing_values_show_as_a_dash),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
