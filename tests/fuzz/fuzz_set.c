/*
 * fuzz_set.c - libFuzzer harness for kaf_grid_set.
 *
 * An input is a list of `--set` arguments separated by NUL bytes, applied
 * in order to a fresh experiment-3 grid until one is refused, as a
 * command line would. A refusal must carry a message and leave the
 * grid's text as it was; after every accepted one the grid must have
 * cells and its canonical text must read back unchanged. Only the public
 * functions of grid.h are used. Built and run by .ci/fuzz.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"

static char *spec_text(const struct kaf_grid *g)
{
	char one;
	int len = kaf_grid_spec_text(g, &one, 1);
	char *buf = malloc((size_t)len + 1);

	if (!buf)
		abort();
	kaf_grid_spec_text(g, buf, len + 1);
	return buf;
}

static void check_round_trip(const char *text)
{
	struct kaf_grid again;
	struct kaf_error err = {{0}};
	char *text2;

	if (kaf_grid_init(&again, &err) ||
	    kaf_grid_parse_spec(&again, text, strlen(text), "canonical",
				&err))
		abort();
	text2 = spec_text(&again);
	if (strcmp(text, text2) != 0)
		abort();
	free(text2);
	kaf_grid_finish(&again);
}

/* Apply one assignment; the grid changes only if it is accepted. */
static int apply(struct kaf_grid *g, const char *arg)
{
	struct kaf_error err = {{0}};
	char *before = spec_text(g), *after;
	int rc = kaf_grid_set(g, arg, "--set", &err);

	after = spec_text(g);
	if (rc > 0 || (rc < 0 && err.msg[0] == '\0'))
		abort();
	if (rc < 0 && strcmp(before, after) != 0)
		abort();
	if (rc == 0) {
		if (kaf_grid_cells(g) < 1)
			abort();
		check_round_trip(after);
	}
	free(after);
	free(before);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kaf_grid g;
	struct kaf_error err = {{0}};
	char *args = malloc(size + 1);
	size_t at = 0;

	if (!args || kaf_grid_init(&g, &err))
		abort();
	memcpy(args, data, size);
	args[size] = '\0';
	while (at <= size && apply(&g, args + at) == 0)
		at += strlen(args + at) + 1;
	kaf_grid_finish(&g);
	free(args);
	return 0;
}
