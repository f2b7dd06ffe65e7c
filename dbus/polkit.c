/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "errors.h"
#include "log.h"
#include "polkit.h"
#include "util.h"

#define POLKIT_TIMEOUT_USEC (5 * USEC_PER_MINUTE) /* an admin typing a password */

struct AuthQuery {
        Manager *manager;
        sd_bus_message *request;
        sd_bus_slot *slot;
        AuthContinuation then;
        char *action;
        Admission *admission; /* the caller's place under m->auth_limits */
        AuthQuery *next;
};

/* The polkit table: a mutating method not listed here is refused. */
static const struct {
        const char *interface;
        const char *member;
        const char *action;
} actions[] = {
        { HW_NODE_INTERFACE, "Reload", "org.hostwarden.manage-node" },
        { HW_NODE_INTERFACE, "Disable", "org.hostwarden.manage-node" },
        { HW_NODE_INTERFACE, "Enable", "org.hostwarden.manage-node" },
        { HW_NODE_INTERFACE, "ForceDown", "org.hostwarden.fence" },
        { HW_NODE_INTERFACE, "ForceDownWithOptions", "org.hostwarden.fence" },
        { HW_NODE_INTERFACE, "Fence", "org.hostwarden.fence" },
        { HW_NODE_INTERFACE, "Migrate", "org.hostwarden.migrate" },
        { HW_NODE_INTERFACE, "EvacuateLive", "org.hostwarden.evacuate" },
        { HW_NODE_INTERFACE, "Rebuild", "org.hostwarden.evacuate" },
        { HW_NODE_INTERFACE, "EvacuateFrom", "org.hostwarden.evacuate" },
        { "org.hostwarden.Warden1.Migration", "Abort", "org.hostwarden.migrate" },
        { "org.hostwarden.Warden1.Migration", "ForceComplete", "org.hostwarden.migrate" },
};

const char *polkit_action_for(const char *interface, const char *member)
{
        for (size_t i = 0; i < ELEMENTSOF(actions); i++)
                if (streq_ptr(actions[i].interface, interface) &&
                    streq_ptr(actions[i].member, member))
                        return actions[i].action;
        return NULL;
}

static AuthQuery *query_free(AuthQuery *q)
{
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
        free(q->action);
        admission_release(q->admission);
        free(q);
        return NULL;
}

static void query_unlink(Manager *m, AuthQuery *q)
{
        for (AuthQuery **p = &m->auth_queries; *p; p = &(*p)->next)
                if (*p == q) {
                        *p = q->next;
                        return;
                }
}

void auth_queries_free(Manager *m)
{
        while (m->auth_queries) {
                AuthQuery *q = m->auth_queries;
                m->auth_queries = q->next;
                query_free(q);
        }
}

/* Runs the continuation and turns its failure into the method's error reply. */
static int run_then(Manager *m, sd_bus_message *msg, AuthContinuation then)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = then(m, msg, &error);
        if (r < 0) {
                if (sd_bus_error_is_set(&error))
                        return sd_bus_reply_method_error(msg, &error);
                return sd_bus_reply_method_errno(msg, r, NULL);
        }
        return r;
}

static int check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        AuthQuery *q = userdata;
        Manager *m = q->manager;
        int authorized = 0, challenge = 0, r;
        const sd_bus_error *e;

        (void)ret_error;
        query_unlink(m, q);

        e = sd_bus_message_get_error(reply);
        if (e) {
                /* no polkit (not installed, not running): deny */
                log_warning("polkit did not answer for %s (%s): denied", q->action, e->message);
                r = sd_bus_reply_method_errorf(q->request, SD_BUS_ERROR_ACCESS_DENIED,
                                               "Authorization for %s is unavailable (polkit: %s); "
                                               "denied. Run this as root, or start polkit.",
                                               q->action, e->message);
                goto done;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                r = sd_bus_reply_method_errorf(q->request, SD_BUS_ERROR_ACCESS_DENIED,
                                               "polkit's answer for %s could not be read; denied",
                                               q->action);
                goto done;
        }

        if (authorized)
                r = run_then(m, q->request, q->then);
        else if (challenge)
                r = sd_bus_reply_method_errorf(
                        q->request, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                        "Interactive authentication required for %s.", q->action);
        else
                r = sd_bus_reply_method_errorf(q->request, SD_BUS_ERROR_ACCESS_DENIED,
                                               "Access denied: not authorized for %s.", q->action);
done:
        if (r < 0)
                log_warning_errno(r, "Failed to reply to an authorized call: %m");
        query_free(q);
        return 0;
}

int polkit_authorize(Manager *m, sd_bus_message *msg, AuthContinuation then, sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(admission_releasep) Admission *admission = NULL;
        const char *action, *sender;
        uid_t uid = 1;
        AuthQuery *q;
        int r;

        action = polkit_action_for(sd_bus_message_get_interface(msg),
                                   sd_bus_message_get_member(msg));
        if (!action)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s is not in the authorization table: denied",
                                         sd_bus_message_get_member(msg));

        /* uid 0 goes through without asking; anyone we cannot identify is polkit's to judge
         * (it knows the caller by its bus name) */
        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r >= 0 && sd_bus_creds_get_euid(creds, &uid) >= 0 && uid == 0)
                return run_then(m, msg, then);

        sender = sd_bus_message_get_sender(msg);
        if (!sender)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "No sender: denied");
        /* a question to polkit may stay open for minutes (an agent asking for a password):
         * without a cap, one user could hold every reply dbus-daemon lets this daemon wait for */
        r = admit(m->auth_limits, msg, &admission, error);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_call(m->bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority",
                                           "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s",
                                          sender, action);
        if (r >= 0)
                r = sd_bus_message_append(
                        call, "a{ss}us", 0,
                        (uint32_t)sd_bus_message_get_allow_interactive_authorization(msg), "");
        if (r < 0)
                return r;

        q = calloc(1, sizeof(AuthQuery));
        if (!q)
                return -ENOMEM;
        q->manager = m;
        q->then = then;
        q->request = sd_bus_message_ref(msg);
        q->admission = TAKE_PTR(admission);
        q->action = strdup(action);
        if (!q->action) {
                query_free(q);
                return -ENOMEM;
        }
        r = sd_bus_call_async(m->bus, &q->slot, call, check_reply, q, POLKIT_TIMEOUT_USEC);
        if (r < 0) {
                query_free(q);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Cannot ask polkit (%s): denied", strerror(-r));
        }
        q->next = m->auth_queries;
        m->auth_queries = q;
        return 1; /* the reply comes when polkit answers */
}
