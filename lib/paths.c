/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "paths.h"
#include "util.h"

static const char *const overrides[] = {
        "HOSTWARDEN_CONF_DIR",
        "HOSTWARDEN_RUNTIME_DIR",
        "HOSTWARDEN_STATE_DIR",
        "HOSTWARDEN_LIB_DIR",
};

static const char *env_path(const char *name, const char *fallback)
{
        const char *e = getenv(name);

        return e && e[0] == '/' ? e : fallback;
}

const char *hw_conf_dir(void)
{
        return env_path("HOSTWARDEN_CONF_DIR", HW_DEFAULT_CONF_DIR);
}

const char *hw_runtime_dir(void)
{
        return env_path("HOSTWARDEN_RUNTIME_DIR", HW_DEFAULT_RUNTIME_DIR);
}

const char *hw_lib_dir(void)
{
        return env_path("HOSTWARDEN_LIB_DIR", HW_DEFAULT_LIB_DIR);
}

const char *hw_state_dir(const char *config_state_dir)
{
        return env_path("HOSTWARDEN_STATE_DIR", config_state_dir);
}

const char *paths_check(void)
{
        for (size_t i = 0; i < ELEMENTSOF(overrides); i++) {
                const char *e = getenv(overrides[i]);
                if (e && e[0] != '/')
                        return overrides[i];
        }
        return NULL;
}
