/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TLS priority of [console] on the running guests' VNC consoles (console-priority.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt-qemu.h>

#include "console-priority.h"
#include "console-tls.h"
#include "job.h"
#include "log.h"
#include "util.h"
#include "virt.h"

struct ConsolePriority {
        char *priority; /* what applied[] got */
        char **applied; /* "UUID/ID": the QEMU processes done (their console has it, or no TLS) */
        char **set;     /* those of them whose console has it */
        bool running, again;
};

typedef struct Pass {
        char *priority;
        char **applied, **set; /* in: done before; out: done now, of the guests that run */
} Pass;

static void pass_free(Pass *p)
{
        if (!p)
                return;
        free(p->priority);
        strv_free(p->applied);
        strv_free(p->set);
        free(p);
}

/* A console without TLS credentials (vnc_tls was off when it started, or no VNC at all)
 * has nothing to set: QEMU says the object is not there. */
static bool no_tls_console(const char *message)
{
        return message && strstr(message, CONSOLE_TLS_CREDS_PATH) && strstr(message, "not found");
}

static void apply_one(virDomainPtr dom, const char *command, const char *key, char ***done,
                      char ***set)
{
        _cleanup_free_ char *result = NULL;
        const char *name = virDomainGetName(dom), *why;

        /* libvirt hands QEMU's answer back as it is: an error of QEMU's is a reply too */
        if (virDomainQemuMonitorCommand(dom, command, &result, 0) < 0)
                why = virt_last_error("unknown error");
        else if (result && strstr(result, "\"return\"") && !strstr(result, "\"error\""))
                why = NULL;
        else
                why = strempty(result);
        if (!why) {
                log_info("Console of %s: TLS priority set", strna(name));
                (void)strv_extend(done, key);
                (void)strv_extend(set, key);
        } else if (no_tls_console(why)) {
                log_info("Console of %s has no TLS: no VNC console, or one started before libvirt "
                         "had vnc_tls = 1 (it gets TLS when the guest restarts or migrates)",
                         strna(name));
                (void)strv_extend(done, key);
        } else /* busy (a job), or going away: the next event tries again */
                log_warning("Cannot set the TLS priority of the console of %s: %s", strna(name),
                            why);
}

static void pass_work(Manager *m, void *userdata)
{
        Pass *p = userdata;
        _cleanup_free_ char *command = NULL;
        virDomainPtr *doms = NULL;
        char **done = NULL, **set = NULL, err[512];
        size_t n = 0;

        if (console_tls_qmp_set_priority(p->priority, &command) < 0 ||
            virt_list_domains(m->virt, VIR_CONNECT_LIST_DOMAINS_ACTIVE, &doms, &n, err,
                              sizeof(err)) < 0)
                return; /* no libvirtd yet: its first event brings another pass */
        for (size_t i = 0; i < n; i++) {
                char uuid[VIR_UUID_STRING_BUFLEN], key[VIR_UUID_STRING_BUFLEN + 16];

                if (virDomainGetUUIDString(doms[i], uuid) < 0)
                        continue;
                snprintf(key, sizeof(key), "%s/%u", uuid, virDomainGetID(doms[i]));
                if (strv_contains(p->applied, key)) {
                        (void)strv_extend(&done, key);
                        if (strv_contains(p->set, key))
                                (void)strv_extend(&set, key);
                } else
                        apply_one(doms[i], command, key, &done, &set);
        }
        virt_domains_free(doms, n);
        strv_free(p->applied);
        strv_free(p->set);
        p->applied = done;
        p->set = set;
}

static void pass_done(Manager *m, sd_bus_message *msg, void *userdata)
{
        struct ConsolePriority *cp = m->console_tls;
        Pass *p = userdata;

        if (!cp) { /* shutting down */
                pass_free(p);
                return;
        }
        cp->running = false;
        if (streq_ptr(cp->priority, p->priority)) {
                strv_free(cp->applied);
                strv_free(cp->set);
                cp->applied = TAKE_PTR(p->applied);
                cp->set = TAKE_PTR(p->set);
        }
        pass_free(p);
        if (cp->again)
                console_priority_kick(m);
}

void console_priority_kick(Manager *m)
{
        struct ConsolePriority *cp = m->console_tls;
        _cleanup_free_ char *priority = NULL;
        Pass *p;

        if (!m->config->console.tls ||
            console_tls_priority(m->config->console.tls_min_version, m->config->console.tls_ciphers,
                                 &priority) < 0 ||
            isempty(priority))
                return;
        if (!cp) {
                cp = m->console_tls = calloc(1, sizeof(*cp));
                if (!cp)
                        return;
        }
        if (cp->running) {
                cp->again = true;
                return;
        }
        if (!streq_ptr(cp->priority, priority)) { /* a reload changed it: every guest again */
                free(cp->priority);
                cp->priority = TAKE_PTR(priority);
                cp->applied = strv_free(cp->applied);
                cp->set = strv_free(cp->set);
        }
        p = calloc(1, sizeof(Pass));
        if (!p || !(p->priority = strdup(cp->priority))) {
                pass_free(p);
                return;
        }
        STRV_FOREACH (k, cp->applied)
                if (strv_extend(&p->applied, *k) < 0 ||
                    (strv_contains(cp->set, *k) && strv_extend(&p->set, *k) < 0)) {
                        pass_free(p);
                        return;
                }
        if (job_start(m, NULL, pass_work, pass_done, p) < 0) {
                log_warning("Cannot start a worker thread for the consoles' TLS priority");
                pass_free(p);
                return;
        }
        cp->running = true;
        cp->again = false;
}

void console_priority_free(Manager *m)
{
        struct ConsolePriority *cp = m->console_tls;

        if (!cp)
                return;
        free(cp->priority);
        strv_free(cp->applied);
        strv_free(cp->set);
        free(cp);
        m->console_tls = NULL;
}

size_t console_priority_count(Manager *m)
{
        return m->console_tls ? strv_length(m->console_tls->set) : 0;
}
