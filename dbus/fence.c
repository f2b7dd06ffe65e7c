/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fence(s node, s action) → s [org.hostwarden.fence]: runs the fence agent configured for a
 * peer ([peer NAME] fence_agent, fence_options) with fence-agents' stdin protocol, records the
 * result in the peer's node record (DESIGN.md §4: a node reported off is fenced) and answers
 * the power state, "on" or "off". The options hold the BMC's password: they are never logged,
 * the agent's output is scrubbed of them before it reaches the journal or the caller, and the
 * copies are wiped when the job ends.
 *
 * Here: the job (fencing.h), after polkit; the handler, which checks the arguments first, is
 * in node-dbus.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "errors.h"
#include "fence.h"
#include "fencing.h"
#include "history.h"
#include "job.h"
#include "log.h"
#include "manager.h"

#define FENCE_TIMEOUT (120 * USEC_PER_SEC)

typedef struct FenceJob {
        char *node;
        FenceAction action;
        /* recovery's fencing: off, then status must say off; cb instead of a reply */
        bool confirm;
        FenceCallback cb;
        void *userdata;
        char *agent;
        char *options; /* secret */
        /* results */
        int error;        /* < 0: the agent could not run or failed */
        FenceState state; /* after success */
        char *message;    /* scrubbed: what the agent said last */
        uint64_t began;   /* usec realtime, for the history */
} FenceJob;

static void fence_job_free(FenceJob *j)
{
        if (!j)
                return;
        free(j->node);
        free(j->agent);
        erase_and_free(j->options);
        free(j->message);
        free(j);
}

/* The last non-empty line of text (scrubbed output), at most 300 characters. */
static char *last_line(const char *text)
{
        const char *end = text + strlen(text), *start;

        while (end > text && (end[-1] == '\n' || end[-1] == ' '))
                end--;
        start = end;
        while (start > text && start[-1] != '\n')
                start--;
        if (end - start > 300)
                start = end - 300;
        return strndup(start, (size_t)(end - start));
}

/* One run of the agent with action; j's results. */
static void run_agent(FenceJob *j, FenceAction action)
{
        _cleanup_free_ char *path = NULL;
        char *input = NULL;
        FenceRun run = {};
        int r;

        r = fence_agent_path(j->agent, &path);
        if (r < 0) {
                j->error = r;
                set_message(&j->message, "fence agent %s not found", j->agent);
                return;
        }
        r = fence_agent_input(j->options, action, &input);
        if (r < 0) {
                j->error = r;
                return;
        }
        r = fence_run(path, input, FENCE_TIMEOUT, &run);
        erase_and_free(input);
        if (r < 0) {
                j->error = r;
                set_message(&j->message, "cannot run %s: %s", path, strerror(-r));
                return;
        }
        {
                _cleanup_free_ char *scrubbed = fence_scrub(run.output, j->options);

                explicit_bzero(run.output, strlen(run.output));
                j->message = scrubbed ? last_line(scrubbed) : NULL;
        }
        r = fence_result(action, &run, &j->state);
        if (r < 0) {
                _cleanup_free_ char *said = j->message;

                j->message = NULL;
                j->error = r;
                if (run.timed_out)
                        set_message(&j->message, "%s did not finish within %llu s and was killed",
                                    j->agent, (unsigned long long)(FENCE_TIMEOUT / USEC_PER_SEC));
                else
                        set_message(&j->message, "%s exited with status %d (%s)", j->agent,
                                    run.status, said ? said : "no output");
        }
        fence_run_done(&run);
}

static void fence_work(Manager *m, void *userdata)
{
        FenceJob *j = userdata;

        run_agent(j, j->action);
        if (!j->confirm || j->error < 0)
                return;
        /* an agent's "done" is not proof: its status must say off too (issue 22) */
        free(j->message);
        j->message = NULL;
        run_agent(j, FENCE_ACTION_STATUS);
        if (j->error >= 0 && j->state != FENCE_OFF) {
                j->error = -EIO;
                set_message(&j->message, "%s reported the power off done, but its status says on",
                            j->agent);
        }
}

static int mutate_fence(NodeRecord *rec, void *userdata)
{
        const FenceState *state = userdata;

        rec->fence = *state;
        rec->fence_time = now_realtime();
        return 0;
}

static void fence_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        FenceJob *j = userdata;
        const char *action = fence_action_to_string(j->action);
        const char *state = fence_state_to_string(j->state);
        int unrecorded = 0;

        if (j->error >= 0) {
                unrecorded = store_node_update(m->store, j->node, mutate_fence, &j->state, NULL);
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_FENCE },
                                      { "HOSTWARDEN_NODE", j->node },
                                      { "HOSTWARDEN_FENCE_ACTION", action },
                                      { "HOSTWARDEN_FENCE", state }),
                           "Fence agent %s reports node %s %s (action %s)", j->agent, j->node,
                           state, action);
                if (unrecorded >= 0)
                        (void)sd_bus_emit_signal(m->bus, HW_BUS_PATH, HW_NODE_INTERFACE,
                                                 "NodeChanged", "ss", j->node,
                                                 j->state == FENCE_OFF ? "fenced" : "powered-on");
        } else
                log_fields(LOG_ERR, 0,
                           LOG_FIELDS({ "MESSAGE_ID", HW_MESSAGE_FENCE },
                                      { "HOSTWARDEN_NODE", j->node },
                                      { "HOSTWARDEN_FENCE_ACTION", action }),
                           "Fencing %s (%s) failed: %s", j->node, action,
                           j->message ? j->message : strerror(-j->error));
        history_fence_ended(m, msg, j->node, action, state,
                            j->error < 0 ? (j->message ?: strerror(-j->error)) : NULL, j->began);

        if (j->cb) {
                /* a result that cannot be recorded is no result: nothing rebuilds on it */
                if (unrecorded < 0) {
                        j->error = unrecorded;
                        set_message(&j->message, "node %s is %s, but that cannot be recorded: %s",
                                    j->node, state, strerror(-unrecorded));
                }
                j->cb(m, j->node, j->error, j->state, j->message, j->userdata);
        } else if (j->error < 0)
                (void)sd_bus_reply_method_errorf(
                        msg, HW_ERROR_FENCE_FAILED,
                        "Fencing %s (%s) failed: %s. The recorded fence state is unchanged.",
                        j->node, action, j->message ? j->message : strerror(-j->error));
        else if (unrecorded < 0)
                (void)sd_bus_reply_method_errnof(
                        msg, -unrecorded, "Node %s is %s, but the result cannot be recorded: %m",
                        j->node, state);
        else
                (void)sd_bus_reply_method_return(msg, "s", state);
        fence_job_free(j);
}

/* A job for node's agent with action: -ENOENT when none is configured. */
static int fence_job_new(Manager *m, const char *node, FenceAction action, FenceJob **ret)
{
        const ConfigPeer *peer;
        FenceJob *j;

        /* The configuration may have been reloaded while polkit answered: look again. */
        peer = config_find_peer(m->config, node);
        if (!peer || !peer->fence_agent)
                return -ENOENT;
        j = calloc(1, sizeof(FenceJob));
        if (!j)
                return -ENOMEM;
        j->action = action;
        j->began = now_realtime();
        j->node = strdup(node);
        j->agent = strdup(peer->fence_agent);
        j->options = peer->fence_options ? strdup(peer->fence_options) : NULL;
        if (!j->node || !j->agent || (peer->fence_options && !j->options)) {
                fence_job_free(j);
                return -ENOMEM;
        }
        log_fields(LOG_NOTICE, 0,
                   LOG_FIELDS({ "HOSTWARDEN_NODE", node },
                              { "HOSTWARDEN_FENCE_ACTION", fence_action_to_string(action) }),
                   "Running fence agent %s for node %s, action %s", j->agent, node,
                   fence_action_to_string(action));
        *ret = j;
        return 0;
}

int fence_power_off_confirmed(Manager *m, const char *node, FenceCallback cb, void *userdata)
{
        FenceJob *j = NULL;
        int r;

        r = fence_job_new(m, node, FENCE_ACTION_OFF, &j);
        if (r < 0)
                return r;
        j->confirm = true;
        j->cb = cb;
        j->userdata = userdata;
        r = job_start(m, NULL, fence_work, fence_done, j);
        if (r < 0)
                fence_job_free(j);
        return r;
}

int fence_start(Manager *m, sd_bus_message *msg, const char *node, const char *action,
                sd_bus_error *error)
{
        FenceJob *j = NULL;
        int r;

        r = fence_job_new(m, node, fence_action_from_string(action), &j);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, HW_ERROR_NO_SUCH_NODE,
                                         "No fence agent configured for node '%s'", node);
        if (r < 0)
                return r;
        r = job_start(m, msg, fence_work, fence_done, j);
        if (r < 0) {
                fence_job_free(j);
                return sd_bus_error_set_errnof(error, r, "Cannot start a worker thread: %m");
        }
        return 1;
}
