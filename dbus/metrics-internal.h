/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>

#include <systemd/sd-event.h>

#include "metrics.h"

/* What metrics.c (the numbers) shares with metrics-textfile.c (the file they go to). */

typedef struct Metrics Metrics;

Metrics *metrics_new(void);
void metrics_state_free(Metrics *x);
/* Every family, in the text format. */
void metrics_format(Manager *m, FILE *f);
/* metrics-textfile.c: the next write in a second, unless one comes sooner. */
void metrics_write_soon(Manager *m);

/* metrics-textfile.c's state, kept in the Metrics object. */
typedef struct MetricsTextfile {
        sd_event_source *timer;
        int last_error; /* of the last write: said once, until it changes */
        char *written;  /* the path last written, removed when a Reload moves or ends it */
} MetricsTextfile;

MetricsTextfile *metrics_textfile_state(Metrics *x);
