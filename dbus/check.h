/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

/* Appends CheckNode()'s a(sss) findings to reply. */
int check_node(Manager *m, sd_bus_message *reply);
