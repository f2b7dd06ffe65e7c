/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/*
 * At start, once the store is read: the copies of cold migrations whose hostwardend died
 * before the instance record moved (their notes, cold-note.h) are undone in a worker: the
 * files noted on the destination are deleted (unless the destination has the domain
 * defined: then they are its), the dead daemon's transient pools go on both nodes, and the
 * guest starts here again if it ran. A note whose record took over (the migration landed)
 * is only forgotten: the record's own recovery goes on (migrations_cold_adopt()).
 */
void cold_copies_recover(Manager *m);
