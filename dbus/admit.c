/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "errors.h"
#include "log.h"
#include "util.h"

struct Admission {
        Limiter *limiter;
        char *sender; /* may be NULL: a direct connection without names */
        uid_t uid;
};

uid_t admit_caller_uid(const Limiter *l, sd_bus_message *msg)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;

        /* a caller with calls in flight is known: a flood costs no round trip to the bus */
        if (l && limiter_sender_uid(l, sd_bus_message_get_sender(msg), &uid))
                return uid;
        /* on dbus-daemon this asks the bus (GetConnectionCredentials): one round trip to the
         * bus daemon, which answers by itself, never to the caller */
        if (sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds) < 0 ||
            sd_bus_creds_get_euid(creds, &uid) < 0)
                return LIMIT_UID_UNKNOWN;
        return uid;
}

int admit(Limiter *l, sd_bus_message *msg, Admission **ret, sd_bus_error *error)
{
        const char *sender = sd_bus_message_get_sender(msg);
        LimitVerdict v;
        uid_t uid;
        Admission *a;
        char why[256];

        uid = admit_caller_uid(l, msg);
        a = calloc(1, sizeof(Admission));
        if (!a)
                return -ENOMEM;
        if (sender) {
                a->sender = strdup(sender);
                if (!a->sender) {
                        free(a);
                        return -ENOMEM;
                }
        }
        v = limiter_acquire(l, a->sender, uid);
        if (v != LIMIT_ADMITTED) {
                free(a->sender);
                free(a);
                limiter_explain(l, v, uid, why, sizeof(why));
                log_debug("%s from %s refused: %s", strna(sd_bus_message_get_member(msg)),
                          strna(sender), why);
                sd_bus_error_setf(error, HW_ERROR_LIMITS_EXCEEDED, "%s", why);
                return -EBUSY;
        }
        a->limiter = l;
        a->uid = uid;
        *ret = a;
        return 0;
}

Admission *admission_release(Admission *a)
{
        if (!a)
                return NULL;
        limiter_release(a->limiter, a->sender, a->uid);
        free(a->sender);
        free(a);
        return NULL;
}
