/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* Runs <conf>/notify.d/ * with HOSTWARDEN_EVENT, _NODE, _STATE, _REASON in the environment;
 * does not wait for them (a failure is logged when it ends). */
void notify_run(Manager *m, const char *event, const char *state, const char *reason);
