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
} HookContext;

/* Exit status for libvirt: 0 to go on, 1 for a deliberate refusal. */
#define HOOK_CONTINUE 0
#define HOOK_REFUSE   1

int hook_dispatch(HookContext *ctx);

int hook_migrate_begin(HookContext *ctx);
int hook_restore_begin(HookContext *ctx);
int hook_prepare_begin(HookContext *ctx);

/* Shared by the operations. */

/* Parses ctx->input; logs and returns NULL when it cannot. */
DomXml *hook_parse_domain(HookContext *ctx);
/* HOOK_REFUSE after telling libvirt (stderr) and the journal why; else HOOK_CONTINUE. */
int hook_refuse(HookContext *ctx, const DomXml *d, const char *reason, const char *format, ...)
        _printf_(4, 5);
/* Refuses when this node is fenced or forced down; what says what is refused. */
int hook_check_node_markers(HookContext *ctx, const DomXml *d, const char *what);
/* Applies [console] listen to d and prints the document on ctx->out if anything changed. */
int hook_rewrite_listen(HookContext *ctx, DomXml *d);
