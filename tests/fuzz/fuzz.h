/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuzz.h: what every fuzz target shares: the libFuzzer entry point and
 * CHECK(), which aborts with the failed condition and its place, so that
 * libFuzzer (or the replay program in `make check`) reports the input.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
