/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "admit.h"
#include "job.h"
#include "log.h"

struct Job {
        Manager *manager;
        pthread_t thread;
        JobWorkFunc work;
        JobDoneFunc done;
        sd_bus_message *msg;
        void *userdata;
        Admission *admission; /* the caller's place under m->work_limits, or NULL */
        Job *next;
};

static void *job_thread(void *p)
{
        Job *j = p;
        ssize_t n;

        j->work(j->manager, j->userdata);
        /* a pointer is far below PIPE_BUF: the write is atomic and the pipe never fills up
         * with fewer than 512 jobs in flight */
        do
                n = write(j->manager->job_pipe[1], &j, sizeof(j));
        while (n < 0 && errno == EINTR);
        if (n != sizeof(j))
                log_error_errno(-errno, "Cannot hand a finished job back: %m");
        return NULL;
}

static void job_finish(Manager *m, Job *j)
{
        for (Job **p = &m->jobs; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        pthread_join(j->thread, NULL);
        j->done(m, j->msg, j->userdata);
        admission_release(j->admission);
        sd_bus_message_unref(j->msg);
        free(j);
}

static int on_job_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Manager *m = userdata;
        Job *j;

        while (read(fd, &j, sizeof(j)) == sizeof(j))
                job_finish(m, j);
        return 0;
}

int jobs_setup(Manager *m)
{
        int r;

        if (pipe2(m->job_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return log_error_errno(-errno, "Cannot create the job pipe: %m");
        /* the writer blocks rather than lose a job */
        (void)fcntl(m->job_pipe[1], F_SETFL, 0);
        r = sd_event_add_io(m->event, &m->job_source, m->job_pipe[0], EPOLLIN, on_job_done, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the job pipe: %m");
        return 0;
}

static int job_start_with(Manager *m, sd_bus_message *msg, JobWorkFunc work, JobDoneFunc done,
                          void *userdata, Admission *admission)
{
        Job *j;
        int r;

        if (!m->job_source)
                return -ENOTCONN;
        j = calloc(1, sizeof(Job));
        if (!j)
                return -ENOMEM;
        *j = (Job){ .manager = m, .work = work, .done = done, .userdata = userdata };
        j->admission = admission;
        j->msg = sd_bus_message_ref(msg); /* NULL stays NULL */
        j->next = m->jobs;
        m->jobs = j;
        r = -pthread_create(&j->thread, NULL, job_thread, j);
        if (r < 0) {
                m->jobs = j->next;
                sd_bus_message_unref(j->msg);
                free(j);
                return r;
        }
        return 0;
}

int job_start(Manager *m, sd_bus_message *msg, JobWorkFunc work, JobDoneFunc done, void *userdata)
{
        return job_start_with(m, msg, work, done, userdata, NULL);
}

int job_admit(Manager *m, sd_bus_message *msg, Admission **ret, sd_bus_error *error)
{
        return admit(m->work_limits, msg, ret, error);
}

static int job_start_or_say(Manager *m, sd_bus_message *msg, JobWorkFunc work, JobDoneFunc done,
                            void *userdata, Admission **a, sd_bus_error *error)
{
        int r;

        r = job_start_with(m, msg, work, done, userdata, *a);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot start a worker thread: %m");
        *a = NULL;
        return 1;
}

int job_start_admitted(Manager *m, sd_bus_message *msg, JobWorkFunc work, JobDoneFunc done,
                       void *userdata, JobFreeFunc free_userdata, Admission **a,
                       sd_bus_error *error)
{
        int r;

        r = job_start_or_say(m, msg, work, done, userdata, a, error);
        if (r < 0)
                free_userdata(userdata);
        return r;
}

int job_start_limited(Manager *m, sd_bus_message *msg, JobWorkFunc work, JobDoneFunc done,
                      void *userdata, sd_bus_error *error)
{
        _cleanup_(admission_releasep) Admission *a = NULL;
        int r;

        r = job_admit(m, msg, &a, error);
        if (r < 0)
                return r;
        r = job_start_or_say(m, msg, work, done, userdata, &a, error);
        return r < 0 ? r : 0;
}

void jobs_drain(Manager *m)
{
        while (m->jobs) {
                Job *j = NULL;

                /* blocking read: some job will finish */
                (void)fcntl(m->job_pipe[0], F_SETFL, 0);
                if (read(m->job_pipe[0], &j, sizeof(j)) != sizeof(j))
                        break;
                job_finish(m, j);
        }
        m->job_source = sd_event_source_disable_unref(m->job_source);
        m->job_pipe[0] = safe_close(m->job_pipe[0]);
        m->job_pipe[1] = safe_close(m->job_pipe[1]);
}
