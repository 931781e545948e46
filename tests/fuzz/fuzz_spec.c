/*
 * fuzz_spec.c - libFuzzer harness for kaf_grid_parse_spec.
 *
 * Each input is the text of a spec file, applied to a fresh experiment-3
 * grid. Beyond the sanitizers, it holds the parser to its contract: a
 * return of 0 or a negative code with a message, a grid with cells, and
 * canonical text that reads back as the same grid (the sweep identity in
 * the database rests on that). Only the public functions of grid.h are
 * used. Built and run by .ci/fuzz.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"

/* Canonical spec text of g in a new buffer; the caller frees it. */
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

/* A parsed grid's text must parse again into the very same text. */
static void check_round_trip(const struct kaf_grid *g)
{
	struct kaf_grid again;
	struct kaf_error err = {{0}};
	char *text = spec_text(g), *text2;

	if (kaf_grid_init(&again, &err) ||
	    kaf_grid_parse_spec(&again, text, strlen(text), "canonical",
				&err))
		abort();
	text2 = spec_text(&again);
	if (strcmp(text, text2) != 0)
		abort();
	free(text2);
	free(text);
	kaf_grid_finish(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kaf_grid g;
	struct kaf_error err = {{0}};
	int rc;

	if (kaf_grid_init(&g, &err))
		abort();
	rc = kaf_grid_parse_spec(&g, (const char *)data, size, "fuzz.spec",
				 &err);
	if (rc > 0 || (rc < 0 && err.msg[0] == '\0'))
		abort();
	if (rc == 0) {
		if (kaf_grid_cells(&g) < 1)
			abort();
		check_round_trip(&g);
	}
	kaf_grid_finish(&g);
	return 0;
}
