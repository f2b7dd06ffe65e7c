/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Where hostwarden finds its files. Each can be overridden through the environment (the
 * variables are part of the contract, DESIGN.md §3) so tests run from the build tree and
 * inside simulated nodes. An override must be an absolute path, else it is ignored and
 * paths_check() says so.
 */
#define HW_DEFAULT_CONF_DIR    "/etc/hostwarden"
#define HW_DEFAULT_RUNTIME_DIR "/run/hostwarden"
#define HW_DEFAULT_LIB_DIR     "/var/lib/hostwarden"

const char *hw_conf_dir(void);
const char *hw_runtime_dir(void);
/* This node's own lasting state (the cluster it joined): HOSTWARDEN_LIB_DIR. */
const char *hw_lib_dir(void);
/* HOSTWARDEN_STATE_DIR, or config_state_dir when that is not set. */
const char *hw_state_dir(const char *config_state_dir);

/* Returns the name of the first override that is set but not absolute, or NULL. */
const char *paths_check(void);
