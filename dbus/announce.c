/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* announce-self after a migration landed and after a rebuild started a guest (announce.h). */
#include <errno.h>
#include <stdlib.h>

#include <libvirt/libvirt-qemu.h>

#include "announce.h"
#include "log.h"
#include "util.h"
#include "virt.h"

void announce_schedule_from_config(const Config *c, AnnounceSchedule *ret)
{
        /* the keys' ranges (config-items.c) are within QEMU's: this cannot fail */
        if (announce_schedule(c->migration.announce_rounds, c->migration.announce_interval, ret) <
            0)
                *ret = (AnnounceSchedule){};
}

int announce_guest(virDomainPtr dom, const AnnounceSchedule *s, const char *what, const char *id,
                   const char *node)
{
        _cleanup_free_ char *cmd = NULL, *reply = NULL, *error = NULL;
        const char *name = virDomainGetName(dom);
        int state = 0, reason = 0, r;

        if (s->rounds == 0)
                return 0;
        if (virDomainGetState(dom, &state, &reason, 0) < 0 || state != VIR_DOMAIN_RUNNING) {
                /* a paused guest sends nothing; whoever resumes it can announce it */
                log_debug("%s %s: %s is not running on %s: not announced", what, id, strna(name),
                          node);
                return 0;
        }
        cmd = announce_qmp_command(s);
        if (!cmd)
                return log_warning_errno(-ENOMEM, "%s %s: cannot announce %s on %s: %m", what, id,
                                         strna(name), node);
        if (virDomainQemuMonitorCommand(dom, cmd, &reply, 0) < 0) {
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "HOSTWARDEN_DOMAIN", name }, { "HOSTWARDEN_NODE", node }),
                           "%s %s: cannot announce %s on %s (the switches learn where it is from "
                           "its own traffic): %s",
                           what, id, strna(name), node, virt_last_error("unknown error"));
                return -EIO;
        }
        r = announce_reply_check(reply, &error);
        if (r < 0) {
                log_fields(LOG_WARNING, 0,
                           LOG_FIELDS({ "HOSTWARDEN_DOMAIN", name }, { "HOSTWARDEN_NODE", node }),
                           "%s %s: QEMU refused to announce %s on %s: %s", what, id, strna(name),
                           node, strna(error));
                return r;
        }
        log_fields(LOG_INFO, 0,
                   LOG_FIELDS({ "HOSTWARDEN_DOMAIN", name }, { "HOSTWARDEN_NODE", node }),
                   "%s %s: %s announced on %s (%u rounds)", what, id, strna(name), node, s->rounds);
        return 1;
}
