/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "macro.h"
#include "util.h"

/*
 * The hostwarden nftables table (DESIGN.md §6), on libnftnl + libmnl:
 *
 *   table inet hostwarden {
 *     set migration_sources4/6 { type ipv4_addr/ipv6_addr; flags interval; }
 *     set migration_open4/6    { type ...; flags interval, timeout; }
 *     set console_clients4/6   { type ...; flags interval; }
 *     chain input { type filter hook input priority filter; policy accept; ... }
 *   }
 *
 * The table, its sets, their static elements and the rules are created and replaced in one
 * batch; what changes at run time are the elements of migration_open4/6 (the migration
 * window), each with a timeout, so a lost "close" can never leave the ports open.
 */

#define FW_TABLE            "hostwarden"
#define FW_CHAIN            "input"
#define FW_SET_SOURCES4     "migration_sources4"
#define FW_SET_SOURCES6     "migration_sources6"
#define FW_SET_OPEN4        "migration_open4"
#define FW_SET_OPEN6        "migration_open6"
#define FW_SET_CONSOLE4     "console_clients4"
#define FW_SET_CONSOLE6     "console_clients6"
#define FW_LIBVIRT_PORT     16509
#define FW_LIBVIRT_TLS_PORT 16514

/*
 * The window: OPEN adds the sources for open_window (again: a refresh of their timeout);
 * CLOSE removes them. Who opens and closes it when: fw-window.h.
 */
typedef enum FwWindow {
        FW_WINDOW_OPEN,
        FW_WINDOW_CLOSE,
        _FW_WINDOW_MAX,
} FwWindow;

/* What the table must hold; pointers into a Config. */
typedef struct FwSpec {
        char *const *migration_sources; /* CIDRs */
        char *const *console_clients;   /* CIDRs */
        unsigned migration_port_min, migration_port_max;
        unsigned console_port_min, console_port_max;
        usec_t open_window;
} FwSpec;

void fw_spec_from_config(const Config *c, FwSpec *ret);
/* Without migration sources there is nobody to let in: hostwarden then leaves nftables alone
 * (a table that drops the migration ports for everyone would break every migration). */
bool fw_spec_active(const FwSpec *s);
/* A digest of everything in the spec; stored in the table so that re-applying the same
 * spec is a no-op. */
uint64_t fw_spec_digest(const FwSpec *s);

/* One netlink socket for one use (an apply, a window change); freed by fw_close(). */
typedef struct FwContext FwContext;
int fw_open(FwContext **ret);
FwContext *fw_close(FwContext *ctx);
DEFINE_TRIVIAL_CLEANUP_FUNC(FwContext *, fw_close);

/* Creates or replaces the table; *ret_changed false when it already matched (no-op). */
int fw_apply(FwContext *ctx, const FwSpec *s, bool *ret_changed);
/* Deletes the table (idempotent). */
int fw_remove(FwContext *ctx);
/* 1 and the stored digest when our table exists, 0 when it does not. */
int fw_table_digest(FwContext *ctx, uint64_t *ret_digest);

/* Opens the migration window: the migration sources are added to migration_open4/6, each
 * for s->open_window (an open window gets a fresh timeout). Re-creates a flushed table once
 * and retries. */
int fw_window_open(FwContext *ctx, const FwSpec *s);
/* Closes it: migration_open4/6 become empty. */
int fw_window_close(FwContext *ctx);
/* The elements of a set as "addr/len" or "start-end" strings (for status and tests). */
int fw_set_list(FwContext *ctx, const char *set, char ***ret);

/*
 * The window batches as bytes, for replay by fw_replay() in the hook (which cannot link
 * libmnl: fw-replay.h). Built by libnftnl, like everything else here. ret_last_seq: the
 * sequence number of the last message (its ack ends the batch).
 */
int fw_window_batch(const FwSpec *s, FwWindow w, void **ret, size_t *ret_size,
                    uint32_t *ret_last_seq);
/* Input-hook chains of other tables whose policy or rules may drop our ports, one
 * sentence per finding (an empty array when there is none). nftables cannot override a
 * drop in another table, so these break migrations whatever hostwarden accepts. */
int fw_check_conflicts(FwContext *ctx, const FwSpec *s, char ***ret);
/* Writes the window batches for s into <runtime_dir>/firewall/ (fw-replay.h). */
int fw_blobs_write(const char *runtime_dir, const FwSpec *s);
