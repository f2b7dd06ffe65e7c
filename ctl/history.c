/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostwardenctl history [DOMAIN] [--since WHEN] [--json] and archive [--dry-run] [--json]:
 * GetHistory and Archive (docs/history-and-archiving.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "table.h"
#include "util.h"
#include "watch.h"

#define HISTORY_ROW "(ssssssssssustttt)"

/*
 * --since WHEN: a duration back from now ("7d", "12h", "30min"), "@SECONDS" since the epoch,
 * or a local date "YYYY-MM-DD" with an optional " HH:MM" or " HH:MM:SS". In usec realtime.
 */
static int parse_since(const char *s, uint64_t *ret)
{
        uint64_t now = now_realtime(), secs;
        usec_t ago;
        struct tm tm = { .tm_isdst = -1 };
        const char *end;
        time_t t;

        if (parse_duration(s, &ago) >= 0) {
                *ret = ago < now ? now - ago : 0;
                return 0;
        }
        if (s[0] == '@') {
                if (parse_uint_range(s + 1, 0, UINT64_MAX / USEC_PER_SEC, &secs) < 0)
                        return -EINVAL;
                *ret = secs * USEC_PER_SEC;
                return 0;
        }
        end = strptime(s, "%Y-%m-%d", &tm);
        if (end && *end == ' ') {
                const char *full = strptime(end + 1, "%H:%M:%S", &tm);

                end = full ? full : strptime(end + 1, "%H:%M", &tm);
        }
        if (!end || *end)
                return -EINVAL;
        t = mktime(&tm);
        if (t < 0)
                return -EINVAL;
        *ret = (uint64_t)t * USEC_PER_SEC;
        return 0;
}

static void format_time(uint64_t usec, char *buf, size_t size)
{
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) ||
            strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
}

static void json_u64(const char *key, uint64_t v)
{
        printf(",\"%s\":%" PRIu64, key, v);
}

static void json_field(const char *key, const char *v)
{
        printf(",\"%s\":", key);
        json_string(v);
}

int verb_history(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        const char *dom = arg_n_rest > 0 ? arg_rest[0] : "";
        uint64_t since = 0;
        unsigned n = 0;
        Screen screen;
        int r;

        if (arg_since && parse_since(arg_since, &since) < 0) {
                fprintf(stderr,
                        "--since=%s: expected a duration back from now (7d, 12h, 30min), "
                        "@SECONDS since the epoch, or YYYY-MM-DD [HH:MM[:SS]].\n",
                        arg_since);
                return 1;
        }
        r = ctl_call(bus, PATH, NODE_IFACE, "GetHistory", &error, &reply, "st", dom, since);
        if (r < 0) {
                fprintf(stderr, "Could not read the history: %s\n", error_message(&error, r));
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', HISTORY_ROW);
        if (arg_json)
                printf("[");
        else {
                screen_get(&screen);
                t = table_new("FINISHED", "KIND", "MODE", "DOMAIN", "FROM", "TO", "RESULT",
                              "DURATION", "DOWNTIME", "BYTES", "BY", "ERROR", NULL);
                if (!t)
                        r = -ENOMEM;
        }
        while (r > 0) {
                const char *id, *kind, *mode, *domain, *name, *node, *source, *dest, *result, *err,
                        *caller;
                uint64_t started, finished, downtime, bytes, took_usec;
                uint32_t uid;
                char when[64], took[64], down[64], by[64];

                r = sd_bus_message_read(reply, HISTORY_ROW, &id, &kind, &mode, &domain, &name,
                                        &node, &source, &dest, &result, &err, &uid, &caller,
                                        &started, &finished, &downtime, &bytes);
                if (r <= 0)
                        break;
                /* another node's clock may have been set back during the operation */
                took_usec = finished > started ? finished - started : 0;
                if (arg_json) {
                        printf("%s{\"id\":", n ? "," : "");
                        json_string(id);
                        json_field("kind", kind);
                        json_field("mode", mode);
                        json_field("domain", domain);
                        json_field("domain_name", name);
                        json_field("node", node);
                        json_field("source", source);
                        json_field("destination", dest);
                        json_field("result", result);
                        json_field("error", err);
                        if (uid == UINT32_MAX)
                                printf(",\"caller_uid\":null");
                        else
                                json_u64("caller_uid", uid);
                        json_field("caller", caller);
                        json_u64("started", started);
                        json_u64("finished", finished);
                        json_u64("duration_usec", took_usec);
                        json_u64("downtime_usec", downtime);
                        json_u64("bytes", bytes);
                        printf("}");
                } else {
                        format_time(finished, when, sizeof(when));
                        format_duration(took, sizeof(took),
                                        (finished - started) / USEC_PER_MSEC * USEC_PER_MSEC);
                        format_duration(down, sizeof(down), downtime);
                        if (uid == UINT32_MAX)
                                snprintf(by, sizeof(by), "-");
                        else
                                snprintf(by, sizeof(by), "uid %" PRIu32, uid);
                        if (table_add(t, NULL, when) < 0 || table_add(t, NULL, kind) < 0 ||
                            table_add(t, NULL, isempty(mode) ? NULL : mode) < 0 ||
                            table_add(t, NULL,
                                      !isempty(name)     ? name
                                      : !isempty(domain) ? domain
                                                         : NULL) < 0 ||
                            table_add(t, NULL, isempty(source) ? NULL : source) < 0 ||
                            table_add(t, NULL, isempty(dest) ? NULL : dest) < 0 ||
                            table_add(t, isempty(err) ? NULL : COLOR_RED, result) < 0 ||
                            table_add(t, NULL, took) < 0 ||
                            table_add(t, NULL, downtime ? down : NULL) < 0 ||
                            table_addf(t, NULL, "%" PRIu64, bytes) < 0 ||
                            table_add(t, NULL, by) < 0 ||
                            table_add(t, NULL, isempty(err) ? NULL : err) < 0)
                                r = -ENOMEM;
                }
                n++;
        }
        if (r < 0) {
                fprintf(stderr, "Could not read the history: %s\n", strerror(-r));
                return 1;
        }
        if (arg_json) {
                printf("]\n");
                return 0;
        }
        table_set_right(t, 9);
        table_print(t, stdout, screen.width, screen.color);
        printf("\n%u record(s) listed.\n", n);
        return 0;
}

int verb_archive(sd_bus *bus)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        unsigned n = 0, failed = 0;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, NODE_IFACE, "Archive");
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, arg_ask_password);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", arg_dry_run);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                fprintf(stderr, "Could not archive: %s\n", error_message(&error, r));
                /* another node runs the pass (its lease): EX_TEMPFAIL, which the timer's
                 * service takes for success */
                return sd_bus_error_has_name(&error, "org.hostwarden.Warden1.Error.Busy") ? 75 : 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ssssts)");
        if (arg_json)
                printf("[");
        while (r > 0) {
                const char *step, *kind, *key, *name, *result;
                uint64_t time;
                char when[64];

                r = sd_bus_message_read(reply, "(ssssts)", &step, &kind, &key, &name, &time,
                                        &result);
                if (r <= 0)
                        break;
                if (!streq(result, "done") && !streq(result, "dry-run"))
                        failed++;
                if (arg_json) {
                        printf("%s{\"action\":", n ? "," : "");
                        json_string(step);
                        json_field("kind", kind);
                        json_field("key", key);
                        json_field("name", name);
                        json_u64("time", time);
                        json_field("result", result);
                        printf("}");
                } else {
                        format_time(time, when, sizeof(when));
                        printf("%s%-7s %-8s %s%s%s%s (%s): %s\n", arg_dry_run ? "would " : "", step,
                               kind, key, isempty(name) ? "" : " (", name, isempty(name) ? "" : ")",
                               when, result);
                }
                n++;
        }
        if (r < 0) {
                fprintf(stderr, "Could not read the answer: %s\n", strerror(-r));
                return 1;
        }
        if (arg_json)
                printf("]\n");
        else
                printf("%u entr%s %s%s.\n", n, n == 1 ? "y" : "ies",
                       arg_dry_run ? "would be archived or purged" : "archived or purged",
                       failed ? " (some not: see above)" : "");
        return failed ? 1 : 0;
}
