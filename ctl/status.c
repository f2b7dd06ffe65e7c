/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <time.h>

#include "status.h"
#include "util.h"

#define INDENT "              "

static const char *format_time(uint64_t usec, char *buf, size_t size)
{
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) ||
            strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, size, "an unknown time");
        return buf;
}

void status_print_state(FILE *f, const NodeStatus *s)
{
        bool forced = !isempty(s->forced_down_by), fenced = streq_ptr(s->fence_state, "off");
        bool disabled = streq_ptr(s->state, "disabled");
        char when[64];

        /* State alone says "enabled" while the hook refuses every start: a peer's decision
         * comes first, with the command that takes it back */
        if (forced) {
                fprintf(f, "       State: forced down by %s since %s\n", s->forced_down_by,
                        format_time(s->forced_down_since, when, sizeof(when)));
                fprintf(f,
                        INDENT "The hook refuses every start and incoming migration here;\n" INDENT
                               "only 'hostwardenctl force-up %s' run on a peer clears it.\n",
                        s->name);
        } else if (fenced) {
                fprintf(f, "       State: fenced: its fence agent reported it off at %s\n",
                        format_time(s->fence_time, when, sizeof(when)));
                fprintf(f,
                        INDENT
                        "The hook refuses every start and incoming migration here; once\n" INDENT
                        "it is on, 'hostwardenctl fence %s status' run on a peer clears it.\n",
                        s->name);
        } else {
                fprintf(f, "       State: %s%s%s%s\n", strempty(s->state),
                        isempty(s->disabled_reason) ? "" : " (", strempty(s->disabled_reason),
                        isempty(s->disabled_reason) ? "" : ")");
                return;
        }
        if (forced && fenced)
                fprintf(f, INDENT "Also fenced: its fence agent reported it off at %s.\n",
                        format_time(s->fence_time, when, sizeof(when)));
        if (disabled)
                fprintf(f, INDENT "Also disabled%s%s%s.\n", isempty(s->disabled_reason) ? "" : " (",
                        strempty(s->disabled_reason), isempty(s->disabled_reason) ? "" : ")");
}
