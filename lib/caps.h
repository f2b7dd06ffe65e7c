/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* What CheckMigration needs of a host's libvirt capabilities (virConnectGetCapabilities). */
typedef struct HostCaps {
        char *arch;       /* host/cpu/arch: x86_64, aarch64, ... */
        char *cpu_model;  /* host/cpu/model (may be NULL) */
        char *cpu_vendor; /* host/cpu/vendor (may be NULL) */
        char **features;  /* host/cpu/feature names, sorted (may be NULL: none) */
        unsigned *cpus;   /* host CPU ids of the NUMA topology, sorted */
        size_t n_cpus;
        unsigned *cells; /* NUMA cell ids, sorted */
        size_t n_cells;
} HostCaps;

/* -EINVAL for XML that is not well-formed, -EBADMSG for a document without <host><cpu><arch>. */
int host_caps_parse(const char *xml, size_t size, HostCaps **ret);
HostCaps *host_caps_free(HostCaps *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(HostCaps *, host_caps_free);

/* Same vendor, model and feature set. */
bool host_caps_cpu_identical(const HostCaps *a, const HostCaps *b);

/*
 * A cpuset/nodeset in libvirt's syntax ("0-3,^2,8"): the ids, sorted and unique, each at
 * most max. -EINVAL on anything else.
 */
int cpuset_parse(const char *s, unsigned max, unsigned **ret, size_t *ret_n);
