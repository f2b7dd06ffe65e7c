/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The metrics' textfile (metrics.h, docs/metrics.md): written whole to a temporary file and
 * renamed over the old one, mode 0644, so that node_exporter never reads half of it. The
 * temporary file's name does not end in .prom: node_exporter does not read it either.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics-internal.h"

/* what "soon after an outcome" is: outcomes that come together are written together */
#define WRITE_SOON (1 * USEC_PER_SEC)

static void say_result(Manager *m, int r)
{
        MetricsTextfile *t = metrics_textfile_state(m->metrics);
        const char *path = m->config->metrics.textfile;

        if (r == t->last_error)
                return;
        t->last_error = r;
        if (r == 0)
                log_info("Metrics are written to %s", path);
        else if (r == -ENOENT)
                log_notice("Cannot write the metrics to %s: its directory does not exist "
                           "(install prometheus-node-exporter, or set [metrics] textfile; "
                           "hostwardend keeps trying)",
                           path);
        else if (r == -EROFS || r == -EACCES)
                log_warning_errno(r,
                                  "Cannot write the metrics to %s: %m. hostwardend's sandbox "
                                  "lets it write to a textfile directory that existed when it "
                                  "started: restart hostwardend after making it",
                                  path);
        else
                log_warning_errno(r, "Cannot write the metrics to %s: %m", path);
}

static int write_textfile(Manager *m)
{
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        metrics_format(m, f);
        if (fclose(f) != 0)
                return -ENOMEM;
        return write_file_atomic(m->config->metrics.textfile, text, 0644);
}

/* A textfile the configuration no longer names would be served, frozen, for ever. */
static void forget_old_textfile(Manager *m, MetricsTextfile *t)
{
        if (!t->written || streq_ptr(t->written, m->config->metrics.textfile))
                return;
        if (unlink(t->written) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "Cannot remove %s, the metrics' former textfile: %m",
                                  t->written);
        free(t->written);
        t->written = NULL;
        t->last_error = 0;
}

static int timer_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        MetricsTextfile *t = metrics_textfile_state(m->metrics);
        int r;

        /* the keys are read here: a Reload that sets or empties textfile takes effect now */
        forget_old_textfile(m, t);
        if (m->config->metrics.textfile) {
                r = write_textfile(m);
                say_result(m, r);
                if (r >= 0 && !t->written)
                        t->written = strdup(m->config->metrics.textfile);
        }
        (void)sd_event_source_set_time_relative(s, m->config->metrics.interval);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

void metrics_write_soon(Manager *m)
{
        sd_event_source *s = m->metrics ? metrics_textfile_state(m->metrics)->timer : NULL;
        uint64_t next = 0, now = 0;

        if (!s || sd_event_source_get_time(s, &next) < 0 ||
            sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (next > now + WRITE_SOON)
                (void)sd_event_source_set_time(s, now + WRITE_SOON);
}

int metrics_setup(Manager *m)
{
        MetricsTextfile *t;
        int r;

        m->metrics = metrics_new();
        if (!m->metrics)
                return -ENOMEM;
        t = metrics_textfile_state(m->metrics);
        /* the first file as soon as the daemon runs: the gauges say what it sees */
        r = sd_event_add_time_relative(m->event, &t->timer, CLOCK_MONOTONIC, WRITE_SOON, 0,
                                       timer_cb, m);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
}

void metrics_free(Manager *m)
{
        if (!m->metrics)
                return;
        sd_event_source_disable_unref(metrics_textfile_state(m->metrics)->timer);
        free(metrics_textfile_state(m->metrics)->written);
        metrics_state_free(m->metrics);
        m->metrics = NULL;
}
