/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <conf>/notify.d/: the operator's scripts, run when this node is disabled or enabled. */
#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "paths.h"

static int notify_done(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        if (si->si_code != CLD_EXITED || si->si_status != 0)
                log_warning("notify.d script %s failed", (char *)userdata);
        free(userdata);
        sd_event_source_unref(s);
        return 0;
}

void notify_run(Manager *m, const char *event, const char *state, const char *reason)
{
        _cleanup_free_ char *dir = NULL;
        struct dirent **entries = NULL;
        int n;

        if (asprintf(&dir, "%s/notify.d", hw_conf_dir()) < 0)
                return;
        n = scandir(dir, &entries, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
                sd_event_source *child = NULL;
                pid_t pid;

                if (entries[i]->d_name[0] == '.' ||
                    asprintf(&path, "%s/%s", dir, entries[i]->d_name) < 0 ||
                    access(path, X_OK) < 0) {
                        free(entries[i]);
                        continue;
                }
                free(entries[i]);
                if (asprintf(&e1, "HOSTWARDEN_EVENT=%s", event) < 0 ||
                    asprintf(&e2, "HOSTWARDEN_NODE=%s", m->config->node.name) < 0 ||
                    asprintf(&e3, "HOSTWARDEN_STATE=%s", state) < 0 ||
                    asprintf(&e4, "HOSTWARDEN_REASON=%s", reason ? reason : "") < 0)
                        continue;
                char *argv[] = { path, NULL };
                char *envp[] = {
                        e1, e2, e3, e4, (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL
                };
                if (posix_spawn(&pid, path, NULL, NULL, argv, envp) != 0) {
                        log_warning("Cannot run %s", path);
                        continue;
                }
                if (sd_event_add_child(m->event, &child, pid, WEXITED, notify_done, strdup(path)) <
                    0)
                        log_warning("Cannot watch %s", path);
        }
        free(entries);
}
