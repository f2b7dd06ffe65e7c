/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bus-args.h"
#include "errors.h"
#include "force-down-opts.h"

static int read_option(sd_bus_message *msg, const char *key, const char *type, void *userdata,
                       sd_bus_error *error)
{
        ForceDownOptions *opts = userdata;
        int v, r;

        if (!streq(key, "insist"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown option '%s'; expected insist (b)", key);
        if (!streq(type, "b"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'insist' must be a boolean (b), not '%s'", type);
        r = sd_bus_message_read(msg, "v", "b", &v);
        if (r < 0)
                return r;
        opts->insist = v;
        return 0;
}

int force_down_options_read(sd_bus_message *msg, ForceDownOptions *ret, sd_bus_error *error)
{
        ForceDownOptions opts = {};
        int r;

        r = bus_options_foreach(msg, read_option, &opts, error);
        if (r < 0)
                return r;
        *ret = opts;
        return 0;
}

int force_down_decide(const ForceDownRequest *req, bool *ret_overrode, sd_bus_error *error)
{
        bool overrode = false;

        if (streq(req->node, req->self)) {
                /* The flag is a peer's word that this node is off; a node answering the call
                 * is not. Taking it back here is allowed only on insistence: a lone survivor
                 * whose peers are all gone must not stay refused forever. */
                if (req->down)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Node %s cannot force itself down: call "
                                                 "ForceDown on a peer",
                                                 req->node);
                if (!req->insist)
                        return sd_bus_error_setf(
                                error, SD_BUS_ERROR_INVALID_ARGS,
                                "Node %s cannot take back its own forced-down state: the peer "
                                "that evacuates it decides. Run 'hostwardenctl force-up %s' on a "
                                "peer (only if no peer can: 'hostwardenctl force-up %s --insist' "
                                "here)",
                                req->node, req->node, req->node);
                overrode = true;
        } else if (req->down && req->liveness == NODE_UP) {
                /* Its instances may run there right now: forcing it down unlocks an
                 * evacuation that would start them a second time on the same disks. */
                if (!req->insist) {
                        if (req->seen_ago == UINT64_MAX)
                                return sd_bus_error_setf(
                                        error, HW_ERROR_NODE_UP,
                                        "Node %s is up: its heartbeat is fresh (it is down after "
                                        "%llu s without one). Fence it first ('hostwardenctl "
                                        "fence %s off'), or, if you know it is powered off, "
                                        "insist ('hostwardenctl force-down %s --insist')",
                                        req->node,
                                        (unsigned long long)(req->down_after / USEC_PER_SEC),
                                        req->node, req->node);
                        return sd_bus_error_setf(
                                error, HW_ERROR_NODE_UP,
                                "Node %s is up: its heartbeat is fresh (last seen %llu s ago by "
                                "%s; it is down after %llu s without one). Fence it first "
                                "('hostwardenctl fence %s off'), or, if you know it is powered "
                                "off, insist ('hostwardenctl force-down %s --insist')",
                                req->node, (unsigned long long)(req->seen_ago / USEC_PER_SEC),
                                req->self, (unsigned long long)(req->down_after / USEC_PER_SEC),
                                req->node, req->node);
                }
                overrode = true;
        }
        if (ret_overrode)
                *ret_overrode = overrode;
        return 0;
}
