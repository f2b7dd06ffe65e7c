/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP announce-self from [migration] announce_rounds and announce_interval, and QEMU's
 * answer (announce-cmd.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "announce-cmd.h"

int announce_schedule(unsigned rounds, usec_t interval, AnnounceSchedule *ret)
{
        uint64_t step = interval / USEC_PER_MSEC, max;

        if (rounds > ANNOUNCE_ROUNDS_MAX || (rounds > 0 && (step < 2 || step > ANNOUNCE_STEP_MAX)))
                return -ERANGE;
        if (rounds == 0) {
                *ret = (AnnounceSchedule){};
                return 0;
        }
        /* max never shortens a gap of this schedule (the longest is initial + (rounds - 2) ×
         * step): it is only QEMU's bound, given as QEMU's defaults give it */
        max = step / 2 + (uint64_t)rounds * step;
        *ret = (AnnounceSchedule){
                .rounds = rounds,
                .initial_ms = (unsigned)(step / 2),
                .max_ms = (unsigned)(max < ANNOUNCE_DELAY_MAX ? max : ANNOUNCE_DELAY_MAX),
                .step_ms = (unsigned)step,
        };
        return 0;
}

usec_t announce_schedule_length(const AnnounceSchedule *s)
{
        uint64_t ms = 0;

        for (unsigned k = 0; k + 1 < s->rounds; k++) {
                uint64_t gap = s->initial_ms + (uint64_t)k * s->step_ms;

                ms += gap < s->max_ms ? gap : s->max_ms;
        }
        return ms * USEC_PER_MSEC;
}

char *announce_qmp_command(const AnnounceSchedule *s)
{
        char *cmd = NULL;

        if (asprintf(&cmd,
                     "{\"execute\":\"announce-self\",\"arguments\":{\"initial\":%u,\"max\":%u,"
                     "\"rounds\":%u,\"step\":%u}}",
                     s->initial_ms, s->max_ms, s->rounds, s->step_ms) < 0)
                return NULL;
        return cmd;
}

static void set_error(char **ret_error, const char *what, const char *text)
{
        if (asprintf(ret_error, "%s%s", what, text ? text : "") < 0)
                *ret_error = NULL;
}

int announce_reply_check(const char *reply, char **ret_error)
{
        struct json_object *root = reply ? json_tokener_parse(reply) : NULL, *v, *desc;
        int r;

        *ret_error = NULL;
        if (!root || !json_object_is_type(root, json_type_object)) {
                r = -EBADMSG;
                set_error(ret_error, "unexpected reply from QEMU: ", reply ? reply : "(none)");
        } else if (json_object_object_get_ex(root, "return", &v))
                r = 0;
        else if (json_object_object_get_ex(root, "error", &v) &&
                 json_object_object_get_ex(v, "desc", &desc)) {
                r = -EIO;
                set_error(ret_error, "", json_object_get_string(desc));
        } else {
                r = -EBADMSG;
                set_error(ret_error, "unexpected reply from QEMU: ", reply);
        }
        json_object_put(root);
        return r;
}
