/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/*
 * Reading the arguments of Node methods, shared by their handlers. No Manager here: unit
 * tests and fuzz targets compile this file with the option readers (tests/meson.build,
 * tests/fuzz/meson.build).
 */

/*
 * Called for one entry of an a{sv}, with msg positioned at the entry's variant and type its
 * contents' signature ("b", "t", …). It reads the variant ("v") or returns < 0, an error set
 * when the caller is at fault (InvalidArgs saying what was expected).
 */
typedef int (*BusOptionFunc)(sd_bus_message *msg, const char *key, const char *type, void *userdata,
                             sd_bus_error *error);

/* Reads an a{sv} from msg, calling f on each entry in order; stops at the first error.
 * 0 once the whole dictionary is read. */
int bus_options_foreach(sd_bus_message *msg, BusOptionFunc f, void *userdata, sd_bus_error *error);
