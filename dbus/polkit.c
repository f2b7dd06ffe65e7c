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
        sd_bus_slot *slot;      /* while polkit thinks */
        sd_event_source *defer; /* once it said yes: frees the query after the re-dispatch */
        bool authorized;        /* polkit said yes; the request is being dispatched again */
        char *action;
        Admission *admission; /* the caller's place under m->auth_limits */
        AuthQuery *next;
};

/* The polkit table: a mutating method not listed here is refused. */
static const PolkitEntry actions[] = {
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
        { HW_NODE_INTERFACE, "Archive", "org.hostwarden.manage-node" },
        { HW_NODE_INTERFACE, "SetHA", "org.hostwarden.manage-node" },
        { "org.hostwarden.Warden1.Migration", "Abort", "org.hostwarden.migrate" },
        { "org.hostwarden.Warden1.Migration", "ForceComplete", "org.hostwarden.migrate" },
        { HW_NODE_INTERFACE, "MigrateCold", "org.hostwarden.migrate" },
        { "org.hostwarden.Warden1.Migration", "Confirm", "org.hostwarden.migrate" },
        { "org.hostwarden.Warden1.Migration", "Revert", "org.hostwarden.migrate" },
        { "org.hostwarden.Warden1.Maintenance", "Enter", "org.hostwarden.manage-node" },
        { "org.hostwarden.Warden1.Maintenance", "Cancel", "org.hostwarden.manage-node" },
        { "org.hostwarden.Warden1.Maintenance", "Exit", "org.hostwarden.manage-node" },
};

/* Methods that change nothing: no authorization. Every method of every vtable is in exactly
 * one of the two lists (tests/unit/test-polkit.c). */
static const PolkitEntry read_only[] = {
        { HW_NODE_INTERFACE, "ListDomains", NULL },
        { HW_NODE_INTERFACE, "CheckMigration", NULL },
        { HW_NODE_INTERFACE, "ListMigrations", NULL },
        { HW_NODE_INTERFACE, "ListNodes", NULL },
        { HW_NODE_INTERFACE, "ListInstances", NULL },
        { HW_NODE_INTERFACE, "CheckNode", NULL },
        { HW_NODE_INTERFACE, "GetHistory", NULL },
        { HW_NODE_INTERFACE, "GetHA", NULL },
        { "org.hostwarden.Warden1.Maintenance", "Plan", NULL },
};

const PolkitEntry *polkit_table(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(actions);
        return actions;
}

const PolkitEntry *polkit_read_only_methods(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(read_only);
        return read_only;
}

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
        sd_event_source_disable_unref(q->defer);
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

/* Idle priority: runs once the bus has dispatched the request again (the bus is processed at
 * normal priority while it has queued messages). A handler that refused the request this
 * time, before asking, left the answer unused: it goes here too. */
static int query_defer(sd_event_source *s, void *userdata)
{
        AuthQuery *q = userdata;

        (void)s;
        query_unlink(q->manager, q);
        query_free(q);
        return 0;
}

/* polkit said yes: dispatch the request again, from the top of its handler, so that every
 * check made before asking is made again with the state of now (an admin may have typed a
 * password for minutes meanwhile: the domain may be migrating, the peer gone, the node
 * disabled). polkit_verify() then finds this answer and lets the handler go on. */
static int redispatch(Manager *m, AuthQuery *q)
{
        int r;

        r = sd_event_add_defer(m->event, &q->defer, query_defer, q);
        if (r >= 0)
                r = sd_event_source_set_priority(q->defer, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->defer, SD_EVENT_ONESHOT);
        if (r >= 0)
                r = sd_bus_message_rewind(q->request, true);
        if (r >= 0)
                r = sd_bus_enqueue_for_read(m->bus, q->request);
        if (r < 0)
                return r;
        q->authorized = true;
        return 0;
}

static int check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        AuthQuery *q = userdata;
        Manager *m = q->manager;
        int authorized = 0, challenge = 0, r;
        const sd_bus_error *e;

        (void)ret_error;
        q->slot = sd_bus_slot_unref(q->slot);

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

        if (authorized) {
                r = redispatch(m, q);
                if (r >= 0)
                        return 0; /* the query lives on until query_defer() */
                r = sd_bus_reply_method_errnof(q->request, -r,
                                               "Cannot carry out the authorized call: %m");
        } else if (challenge)
                r = sd_bus_reply_method_errorf(
                        q->request, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                        "Interactive authentication required for %s.", q->action);
        else
                r = sd_bus_reply_method_errorf(q->request, SD_BUS_ERROR_ACCESS_DENIED,
                                               "Access denied: not authorized for %s.", q->action);
done:
        if (r < 0)
                log_warning_errno(r, "Failed to reply to an authorized call: %m");
        query_unlink(m, q);
        query_free(q);
        return 0;
}

int polkit_verify(Manager *m, sd_bus_message *msg, sd_bus_error *error)
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

        /* the same request again, after polkit said yes (redispatch()): its handler has made
         * its checks anew and goes on; the answer serves once */
        for (q = m->auth_queries; q; q = q->next)
                if (q->request == msg && q->authorized && streq(q->action, action)) {
                        q->authorized = false;
                        return 0;
                }

        /* uid 0 goes through without asking; anyone we cannot identify is polkit's to judge
         * (it knows the caller by its bus name) */
        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r >= 0 && sd_bus_creds_get_euid(creds, &uid) >= 0 && uid == 0)
                return 0;

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
