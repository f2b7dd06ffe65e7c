/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "call-limits.h"
#include "macro.h"

/*
 * A method call counted against a Limiter (call-limits.h) while the daemon works on it: taken when
 * the call arrives, given back when it is answered.
 */
typedef struct Admission Admission;

/* msg's caller's effective UID: known to l (may be NULL) while the caller has calls in
 * flight there, else asked of the bus; LIMIT_UID_UNKNOWN when it cannot say. */
uid_t admit_caller_uid(const Limiter *l, sd_bus_message *msg);

/* Counts msg's caller (its unique name and effective UID, asked of the bus) against l.
 * Over a cap: -EBUSY with error set to LimitsExceeded saying which cap and its value. */
int admit(Limiter *l, sd_bus_message *msg, Admission **ret, sd_bus_error *error);
/* Gives the place back; NULL is fine. Returns NULL. */
Admission *admission_release(Admission *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Admission *, admission_release);
