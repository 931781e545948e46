/*
 * grid.h - the grid of a sweep: axes, their values, and the cells.
 *
 * A grid gives every axis (dataset, activation, kernel, ...) a list of
 * values; its cells are all combinations, enumerated with the last axis
 * varying fastest. The K-AF-only axes (kernel, calc_num, bandwidth) take
 * just their first value for the other activations, so no two cells
 * train the same thing. A grid may be a union of blocks, one per
 * `[name]` section of a spec, each a grid of its own with its own runs
 * per cell (the protocol's experiments 1 and 2 are such unions). Values
 * are kept as canonical text (numbers in their shortest round-trip form),
 * so the same study always produces the same spec text, the same hash
 * and so the same sweep in the database.
 *
 * A grid starts from experiment 3's settings (kaf_grid_init) and is
 * changed by a preset, a spec file and `--set AXIS=V1,V2` options, in that
 * order; each replaces the values of the axes it names, in every block.
 *
 * Memory: a grid owns its value strings; kaf_grid_finish frees them.
 * Errors: KAF_EINVAL with a message naming the axis, the value and where
 * it came from (the flag, or file:line).
 */
#ifndef KAF_GRID_H
#define KAF_GRID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"

enum kaf_axis {
	KAF_AXIS_DATASET,
	KAF_AXIS_ACTIVATION,
	KAF_AXIS_KERNEL,
	KAF_AXIS_PRECISION,
	KAF_AXIS_INIT,
	KAF_AXIS_REG,
	KAF_AXIS_LAMBDA,
	KAF_AXIS_OPT,
	KAF_AXIS_LR,
	KAF_AXIS_EPOCHS,
	KAF_AXIS_HIDDEN,
	KAF_AXIS_CALC_NUM,
	KAF_AXIS_STANDARDIZE,
	KAF_AXIS_GRAD_LIMIT,
	KAF_AXIS_BANDWIDTH,
	KAF_AXIS_COUNT,
};

enum kaf_seeding {
	KAF_SEEDING_PAIRED,       /* replicate r shares its seed across cells */
	KAF_SEEDING_INDEPENDENT,  /* every cell has its own seed stream */
	KAF_SEEDING_COUNT,
};

extern const char *const kaf_axis_names[KAF_AXIS_COUNT];
extern const char *const kaf_seeding_names[KAF_SEEDING_COUNT];

#define KAF_GRID_MAX_VALUES 256
#define KAF_GRID_MAX_CELLS 1000000L
#define KAF_GRID_MAX_RUNS 100000000L
#define KAF_GRID_MAX_LINE 65536        /* bytes in one spec line */
#define KAF_GRID_MAX_SPEC (1 << 24)    /* bytes in a spec file */

struct kaf_axis_values {
	int count;
	char *values[KAF_GRID_MAX_VALUES];
};

#define KAF_GRID_MAX_BLOCKS 64

/* A sub-grid: its own axes and runs per cell, named by a [section]. */
struct kaf_block {
	char name[32];              /* "" outside any section */
	struct kaf_axis_values axes[KAF_AXIS_COUNT];
	long runs;                  /* replicates per cell */
};

/* Where cell i of the grid comes from. */
struct kaf_cell_ref {
	int block;
	long index;                 /* mixed-radix index inside the block */
};

struct kaf_grid {
	struct kaf_block base;      /* settings outside any section */
	struct kaf_block *blocks;   /* (n_blocks) sections, or NULL */
	int n_blocks;
	uint64_t seed;
	enum kaf_seeding seeding;
	char preset[16];            /* "" when none */
	bool trace;                 /* store every epoch of every run */
	int link_every;             /* K-AF link snapshots; 0 = none */
	struct kaf_cell_ref *cells; /* (n_cells) the enumeration */
	long n_cells;
};

/* One cell: its dataset name and its run config (seed not yet set). */
struct kaf_cell {
	const char *dataset;
	const char *block;          /* section name, "" if none */
	long runs;
	struct kaf_config cfg;
};

/* ---- building ---- */

/* Experiment 3's grid: 24 cells on boston, 1000 runs each, seed 0. */
int kaf_grid_init(struct kaf_grid *g, struct kaf_error *err);
void kaf_grid_finish(struct kaf_grid *g);

/* Apply a named preset: exp1, exp2 or exp3. */
int kaf_grid_preset(struct kaf_grid *g, const char *name,
		    struct kaf_error *err);

/*
 * Set one axis from "axis=v1,v2,..." (or the key runs, seed or seeding
 * with one value) in every block. what names the source in errors
 * ("--set", "f:3").
 */
int kaf_grid_set(struct kaf_grid *g, const char *assignment,
		 const char *what, struct kaf_error *err);

/*
 * Parse spec text: `axis = v1, v2` per line (also runs, seed, seeding),
 * `#` starts a comment, blank lines are skipped, and `[name]` starts a
 * block that begins as a copy of the settings above the first section
 * (sections replace a preset's blocks). Errors name source:line.
 */
int kaf_grid_parse_spec(struct kaf_grid *g, const char *text, size_t len,
			const char *source, struct kaf_error *err);

/* Read a spec file and parse it as above; KAF_EIO if unreadable. */
int kaf_grid_load_spec(struct kaf_grid *g, const char *path,
		       struct kaf_error *err);

/* ---- reading ---- */

/* Number of cells. */
long kaf_grid_cells(const struct kaf_grid *g);

/* The cell at index (0 .. cells - 1). */
void kaf_grid_cell(const struct kaf_grid *g, long index,
		   struct kaf_cell *out);

/* The canonical value cell `index` takes on axis a. */
const char *kaf_grid_value(const struct kaf_grid *g, long index,
			   enum kaf_axis a);

/* Whether axis a takes more than one value across the cells. */
bool kaf_grid_varies(const struct kaf_grid *g, enum kaf_axis a);

/* Total runs of the grid: the sum of every cell's runs. */
long kaf_grid_total_runs(const struct kaf_grid *g);

/* The largest runs per cell of any block. */
long kaf_grid_max_runs(const struct kaf_grid *g);

/*
 * Canonical spec text: every block with its axes, then seed and seeding
 * (not runs). Returns the length written (truncated to size - 1) or the
 * size needed, like snprintf; size must be at least 1.
 */
int kaf_grid_spec_text(const struct kaf_grid *g, char *buf, int size);

/* A key naming the cell's configuration, for independent seeding. */
uint64_t kaf_grid_cell_key(const struct kaf_grid *g, long index);

/* The seed of replicate r of cell index under the grid's seeding. */
uint64_t kaf_grid_run_seed(const struct kaf_grid *g, long index, long r);

#endif
