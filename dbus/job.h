/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * Work that may block (libvirt calls) runs in a thread of its own, and its result is handed
 * back to the event loop: work(m, userdata) runs in the thread and must touch nothing of the
 * Manager but what is thread-safe (m->virt); done(m, userdata) then runs in the event loop,
 * where it may reply on the bus, read the store and free userdata.
 *
 * A D-Bus method passes its call as msg (the job holds a reference until done() returned),
 * returns 1 without replying, and done(m, msg, userdata) sends the reply. Jobs that answer no
 * call pass NULL. On failure nothing is taken: the caller still owns userdata.
 */
typedef void (*JobWorkFunc)(Manager *m, void *userdata);
typedef void (*JobDoneFunc)(Manager *m, sd_bus_message *msg, void *userdata);

int job_start(Manager *m, sd_bus_message *msg, JobWorkFunc work, JobDoneFunc done, void *userdata);
/*
 * job_start() for a method anybody may call: msg's caller is counted against
 * m->work_limits (call-limits.h) until done() returned. Over a cap nothing starts: -EBUSY with
 * error set to LimitsExceeded; other failures set error too. The caller still owns userdata.
 */
int job_start_limited(Manager *m, sd_bus_message *msg, JobWorkFunc work, JobDoneFunc done,
                      void *userdata, sd_bus_error *error);
/* The same in two steps, for a method that has work to do in the event loop before its job
 * starts: admitted first, so that a caller over a cap costs nothing more. job_start_admitted()
 * takes *a on success (it is set to NULL) and leaves it to the caller on failure. It takes
 * userdata either way: on failure it is freed with free_userdata, and error is set. Returns 1
 * on success, what the method handler returns (done() replies). */
typedef struct Admission Admission;
typedef void (*JobFreeFunc)(void *userdata);
int job_admit(Manager *m, sd_bus_message *msg, Admission **ret, sd_bus_error *error);
int job_start_admitted(Manager *m, sd_bus_message *msg, JobWorkFunc work, JobDoneFunc done,
                       void *userdata, JobFreeFunc free_userdata, Admission **a,
                       sd_bus_error *error);
/* Sets up the hand-back channel; called by manager_startup(). */
int jobs_setup(Manager *m);
/* Waits for every running job and runs its done(): at shutdown. */
void jobs_drain(Manager *m);
