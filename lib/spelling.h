/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/*
 * The candidate a misspelt word most likely meant ("adress" → "address", "max_concurent" →
 * "max_concurrent"), for "did you mean" hints: the closest by Damerau–Levenshtein distance
 * (an adjacent swap is one edit), when that distance is at most 2 and at most a third of
 * the word's length; NULL when none is that close. Ties: the first candidate.
 */
const char *spelling_closest(const char *word, const char *const *candidates, size_t n);
