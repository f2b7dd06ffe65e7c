/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>

#include "config.h"
#include "domxml.h"

/*
 * One libvirt qemu hook call: NAME OP SUBOP EXTRA with the domain XML on stdin
 * (DESIGN.md §5). Each operation lives in its own file; this is what they share.
 */
typedef struct HookContext {
        const Config *config; /* NULL when the configuration is broken: no rewrite then */
        const char *runtime_dir;
        const char *domain; /* argv[1], the domain name libvirt passed */
        const char *op;
        const char *subop;
        const char *extra;
        const char *input; /* the domain XML */
        size_t input_size;
        FILE *out; /* stdout: the rewritten XML, if any */
        FILE *err; /* stderr: what libvirt shows when we refuse */

        DomIdentity identity; /* filled on first use by hook_identity() */
        bool identity_read;
} HookContext;

void hook_context_done(HookContext *ctx);

/* Exit status for libvirt: 0 to go on, 1 for a deliberate refusal. */
#define HOOK_CONTINUE 0
#define HOOK_REFUSE   1

int hook_dispatch(HookContext *ctx);

int hook_migrate_begin(HookContext *ctx);
int hook_restore_begin(HookContext *ctx);
int hook_prepare_begin(HookContext *ctx);
/* "started begin" of an incoming migration; "stopped end", "release end": its domain is gone. */
int hook_window_started(HookContext *ctx);
int hook_window_release(HookContext *ctx);

/* Opens the migration window for an incoming migration; <0 (logged) when it could not. */
int hook_window_open(HookContext *ctx);

/* Shared by the operations. */

/* The domain's name and UUID from ctx->input, read once; NULL (logged) when unreadable. */
const DomIdentity *hook_identity(HookContext *ctx);
/* HOOK_REFUSE after telling libvirt (stderr) and the journal why. */
int hook_refuse(HookContext *ctx, const char *reason, const char *format, ...) _printf_(3, 4);
/* Refuses when this node is fenced or forced down; what says what is refused. */
int hook_check_node_markers(HookContext *ctx, const char *what);
/* Applies [console] listen to ctx->input and prints the document on ctx->out if it changed. */
int hook_rewrite_listen(HookContext *ctx);
