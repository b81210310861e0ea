/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * replay.c: the main() of a fuzz target in an ordinary build (no clang, no
 * libFuzzer).  It feeds inputs to the target's LLVMFuzzerTestOneInput() and
 * prints TAP, one test per input, so `make check` replays every corpus.
 *
 * Without arguments, the program fuzz-<name> replays
 * tests/fuzz/corpus/<name>/: the seeds and every input that once made the
 * target fail (the regression inputs, docs/fuzzing.md).  With arguments it
 * replays those files (and the files of those directories), e.g. a crash
 * that a fuzzing build found, under gdb or valgrind:
 *
 *     tests/fuzz/fuzz-ipc-proto crash-0123abcd
 *
 * Every input is passed as an exact-size heap copy, so ASan and valgrind
 * see a read past its end.  A target that fails aborts (the TAP driver
 * reports the crash); an input that cannot be read is "not ok".
 */
#include "config.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* optional in a target, as with libFuzzer */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* the corpus of the program fuzz-<name> (libtool may prefix "lt-") */
static char *default_corpus(const char *argv0)
{
	g_autofree char *base = g_path_get_basename(argv0);
	const char *name = base;
	if (g_str_has_prefix(name, "lt-"))
		name += 3;
	if (!g_str_has_prefix(name, "fuzz-"))
		return NULL;
	return g_build_filename(FUZZ_CORPUS_DIR, name + 5, NULL);
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @path, or the regular files of the directory @path in name order */
static int add_inputs(GPtrArray *inputs, const char *path)
{
	if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_ptr_array_add(inputs, g_strdup(path));
		return 0;
	}
	g_autoptr(GError) err = NULL;
	GDir *d = g_dir_open(path, 0, &err);
	if (!d) {
		printf("Bail out! %s\n", err->message);
		return -1;
	}
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *n;
	while ((n = g_dir_read_name(d))) {
		char *p = g_build_filename(path, n, NULL);
		if (n[0] != '.' && g_file_test(p, G_FILE_TEST_IS_REGULAR))
			g_ptr_array_add(names, p);
		else
			g_free(p);
	}
	g_dir_close(d);
	g_ptr_array_sort(names, cmp_str);
	for (guint i = 0; i < names->len; i++)
		g_ptr_array_add(inputs, g_strdup(names->pdata[i]));
	return 0;
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	g_autoptr(GPtrArray) inputs = g_ptr_array_new_with_free_func(g_free);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (add_inputs(inputs, argv[i]) < 0)
				return 1;
	} else {
		g_autofree char *dir = default_corpus(argv[0]);
		if (!dir) {
			printf("Bail out! %s is not named fuzz-<name>: name the inputs\n", argv[0]);
			return 1;
		}
		if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
			printf("Bail out! no corpus directory %s (docs/fuzzing.md)\n", dir);
			return 1;
		}
		if (add_inputs(inputs, dir) < 0)
			return 1;
	}
	if (inputs->len == 0) {
		printf("Bail out! no inputs\n");
		return 1;
	}

	printf("1..%u\n", inputs->len);
	fflush(stdout);
	int failed = 0;
	for (guint i = 0; i < inputs->len; i++) {
		const char *path = inputs->pdata[i];
		g_autofree char *base = g_path_get_basename(path);
		g_autofree char *text = NULL;
		gsize len = 0;
		g_autoptr(GError) err = NULL;
		if (!g_file_get_contents(path, &text, &len, &err)) {
			printf("not ok %u %s # %s\n", i + 1, base, err->message);
			failed++;
			continue;
		}
		/* exactly @len bytes: nothing after the input to read by mistake */
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy) {
			printf("Bail out! out of memory\n");
			return 1;
		}
		memcpy(copy, text, len);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
		printf("ok %u %s\n", i + 1, base);
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
