/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <syslog.h>

#include "macro.h"

/*
 * Logging for the executables. Messages go to the journal with structured fields when
 * journald's socket is there, and to stderr otherwise (or when HOSTWARDEN_LOG=stderr).
 *
 * The journal is spoken to directly over its native datagram protocol instead of through
 * libsystemd: the hook runs synchronously inside libvirtd for every domain event, and not
 * loading libsystemd keeps its start-up within the latency budget (docs/decisions.md).
 */

typedef struct LogField {
        const char *key;
        const char *value; /* NULL: field left out */
} LogField;

#define LOG_FIELDS(...) ((const LogField[]){ __VA_ARGS__, { NULL, NULL } })

/* MESSAGE_IDs (journalctl MESSAGE_ID=...); the catalog documents each. */
#define HW_MESSAGE_REFUSED             "be94857a800f4d1b983ace9d9418e187"
#define HW_MESSAGE_LISTEN              "1ce2263c1a85430d8ed8a955ae89cb8f"
#define HW_MESSAGE_CONFIG_BAD          "dde32ec3eca741ffbd95836aced6a71d"
#define HW_MESSAGE_WINDOW              "738eb0afdc664a0488e78225e7dab7b3"
#define HW_MESSAGE_MIGRATION_STARTED   "c4ca0a45c3fb468699ce61c279adad22"
#define HW_MESSAGE_MIGRATION_COMPLETED "3d625884a32349409cb0b8db84a3ebe6"
#define HW_MESSAGE_MIGRATION_FAILED    "87e8fceaef3b4eb3add0230f7fa972d1"
#define HW_MESSAGE_FENCE               "9b22479fd7eb4ace97570ee7708f8074"
#define HW_MESSAGE_EVACUATION          "1332e98f29b34e32bfc81300b1d54ee9"
#define HW_MESSAGE_RECONCILED          "e59a5c230b524d669a621f14a97b1cef"
#define HW_MESSAGE_HA_SET              "5c1f0f8e3a2d4b7e9d6a41c2b8e07f13"
#define HW_MESSAGE_HA_RESTART          "0b7d3e92c64f4a1e8f25d9a6c3b1e470"
#define HW_MESSAGE_HA_GIVE_UP          "e8a4c2d61f9b4e03a7c5b2d9f6e18a34"
#define HW_MESSAGE_HA_RELOCATE         "7f3a9c1e5b2d48e6a0c4d8f2b6e91a57"
#define HW_MESSAGE_STORE               "cf43ae47f75e4353a7679159ab6854b7"
#define HW_MESSAGE_UNSYNCED_START      "a642b5fac0ca4c44acd88a5c7976492f"
#define HW_MESSAGE_RECOVERY            "5e0d3c1b9a7f4e26b8c4d2f6a1e93b70"
#define HW_MESSAGE_SELF_FENCE          "7bbc46bbec1e407f956be117d0b7fdcf"

/* ident: SYSLOG_IDENTIFIER, e.g. "hostwarden-hook". */
void log_setup(const char *ident);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Returns -abs(error) (or 0 when error is 0), so callers can 'return log_error_errno(r, ...)'. */
int log_fields(int level, int error, const LogField *fields, const char *format, ...)
        _printf_(4, 5);

#define log_full_errno(level, error, ...) log_fields(level, error, NULL, __VA_ARGS__)
#define log_debug(...)                    log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)                     log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)                   log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...)                  log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)                    log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(error, ...)     log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)       log_full_errno(LOG_ERR, error, __VA_ARGS__)
