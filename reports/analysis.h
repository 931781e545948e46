/*
 * analysis.h - one sweep's results, read from a kaf database and tested.
 *
 * kaf_analysis_load opens a database read-only, checks that it is a kaf
 * database of schema version 1, and gathers what the report shows: the
 * cells with their divergence counts and Wilson intervals; the ranking,
 * each cell tested against the top-ranked one; the pooled rate per value
 * of every axis with a chi-square test of whether the axis matters; the
 * divergences by cell, step and cause; the final validation losses of the
 * runs that survived; what experiments 1 and 2 show (study.h). Counting
 * is done by aggregate SQL in one read transaction, so a sweep writing at
 * the same time is seen as one consistent snapshot; only the survivors'
 * losses, the per-cell metrics, traces and link snapshots come row by
 * row.
 *
 * Memory: an analysis is one heap object owned by the caller, freed with
 * kaf_analysis_destroy (NULL is a no-op). Analyses share nothing, so
 * distinct ones may be used from distinct threads.
 *
 * Errors: 0 or a negative KAF_E* code with err naming the file, sweep or
 * value at fault: KAF_EIO when the file cannot be opened, KAF_EDB when it
 * is not a kaf database or a query fails, KAF_EINVAL for an unknown sweep
 * or one without runs, KAF_ENOMEM.
 */
#ifndef KAF_ANALYSIS_H
#define KAF_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "stats.h"

struct kaf_study;

/* Significance level of every test in the report. */
#define KAF_ANALYSIS_ALPHA 0.05

/* PRAGMA application_id ('KAF1') and user_version of a kaf database. */
#define KAF_DB_APPLICATION_ID 1262569009
#define KAF_DB_USER_VERSION 1

/* ---- axes: the configuration columns of table cell ---- */

/*
 * In the order tables show them: the original study's init, opt, reg.
 * The block (the spec section a cell came from) counts as an axis too.
 */
enum kaf_cell_column {
	KAF_COL_BLOCK,
	KAF_COL_DATASET,
	KAF_COL_ACTIVATION,
	KAF_COL_KERNEL,
	KAF_COL_PRECISION,
	KAF_COL_INIT,
	KAF_COL_OPT,
	KAF_COL_REG,
	KAF_COL_LAMBDA,
	KAF_COL_LR,
	KAF_COL_EPOCHS,
	KAF_COL_HIDDEN,
	KAF_COL_CALC_NUM,
	KAF_COL_STANDARDIZE,
	KAF_COL_GRAD_LIMIT,
	KAF_COL_BANDWIDTH,
	KAF_COL_COUNT,
};

struct kaf_column_info {
	const char *column;     /* column of table cell */
	const char *label;      /* words for headers and prose */
};

extern const struct kaf_column_info kaf_column_info[KAF_COL_COUNT];

/* ---- results ---- */

/* One value of an axis, pooled over every cell that has it. */
struct kaf_level {
	char *name;             /* as shown: "adam", "1e-05", "yes" */
	double num;             /* the number; NaN on a text axis */
	long runs, diverged;
	struct kaf_interval ci; /* Wilson 95 % of diverged / runs */
};

/* An axis, its values in the sweep and whether it matters. */
struct kaf_factor {
	enum kaf_cell_column axis;
	bool numeric;           /* levels sorted by num, else by first use */
	int nlevels;
	struct kaf_level *levels;       /* (nlevels) */
	struct kaf_chi2 chi2;   /* levels x {diverged, survived} */
	double p_holm;          /* chi2.p, Holm-adjusted over varying axes */
};

struct kaf_cell {
	long long cell_id;
	long cell_index;
	int level[KAF_COL_COUNT];      /* index into factors[axis].levels */
	long target_runs;       /* replicates the sweep asked for */
	long runs, diverged;    /* runs stored so far, and diverged */
	double rate;            /* diverged / runs; NaN without runs */
	struct kaf_interval ci;
	int rank;               /* 1 = highest rate, ties share; 0: no runs */
	/*
	 * The test against the top-ranked cell; p and p_holm are NaN for
	 * that cell itself and for cells without runs. pairs, b and c are
	 * set in paired sweeps: replicates present in both cells, pairs
	 * where only the top cell diverged (b) and only this one (c).
	 */
	long pairs, b, c;
	double p, p_holm;
	bool same_as_top;       /* p_holm >= alpha, or the top cell */
};

/* Diverged runs of one cell at one step with one cause. */
struct kaf_divergence {
	int cell;               /* index into cells */
	long step;              /* 0-based; -1 when not recorded */
	int cause;              /* index into causes */
	long count;
};

/* A run that did not diverge and its final validation loss. */
struct kaf_survivor {
	int cell;               /* index into cells */
	double val_loss;        /* NaN when stored as NULL (not finite) */
};

struct kaf_analysis {
	char *db_path;
	long long sweep_id;
	char *preset;           /* NULL when the sweep had none */
	char *spec, *seeding, *kaf_version, *host, *started_at;
	char *finished_at;      /* NULL until the sweep finished */
	long long seed;
	long runs_per_cell;     /* the largest of the cells' targets */
	bool paired;

	int ncells;
	struct kaf_cell *cells;         /* (ncells) by cell_index */
	int nranked;                    /* cells with runs */
	int *ranking;                   /* (nranked) cell indices, rank order */
	long runs, diverged;            /* over the whole sweep */
	struct kaf_interval ci;

	struct kaf_factor factors[KAF_COL_COUNT];      /* by axis */
	int nvarying;
	enum kaf_cell_column varying[KAF_COL_COUNT];  /* largest Cramer's V first */

	int ncauses;
	char **causes;                  /* (ncauses) known ones first */
	int ndiv;
	struct kaf_divergence *div;     /* (ndiv) */
	long nsteps;                    /* longest run: largest epochs */

	long nsurvivors;
	struct kaf_survivor *survivors; /* (nsurvivors) */

	struct kaf_study *study;        /* experiments 1 and 2: study.h */
};

/* ---- lifecycle ---- */

/*
 * Read sweep sweep_id (0: the latest, largest id) of the database at
 * db_path into a new analysis *out. The file is opened with
 * SQLITE_OPEN_READONLY and never written. Fails, naming the value, for a
 * missing file, a file that is not SQLite, an SQLite file without kaf's
 * application_id or with another user_version, a database without
 * sweeps, an unknown sweep id, or a sweep without runs. Cells that have
 * no runs yet (a sweep in progress) are kept but not ranked.
 */
int kaf_analysis_load(const char *db_path, long long sweep_id,
		      struct kaf_analysis **out, struct kaf_error *err);

void kaf_analysis_destroy(struct kaf_analysis *an);

/* ---- queries on a loaded analysis ---- */

/* The top-ranked cell (rank 1, lowest cell_index among ties). */
const struct kaf_cell *kaf_analysis_top(const struct kaf_analysis *an);

/*
 * A cell's name for tables and plots: its values on the varying axes in
 * table order, joined by " / " ("xavier_uniform / adam / none"); "all
 * runs" when nothing varies. Truncated to size.
 */
void kaf_analysis_label(const struct kaf_analysis *an,
			const struct kaf_cell *cell, char *buf, size_t size);

/*
 * Runs of the cells with value level on axis that were still alive
 * (had not diverged) after t steps, for t = 0 .. nsteps, into alive
 * (nsteps + 1). A divergence at 0-based step s ends a run after s
 * completed steps; one with no recorded step counts as step 0.
 */
void kaf_analysis_alive(const struct kaf_analysis *an, enum kaf_cell_column axis,
			int level, long *alive);

/*
 * The finite final validation losses of the survivors in the cells with
 * value level on axis, sorted ascending, in a new array *out (n); free
 * it with free(). *out is NULL when n is 0. KAF_ENOMEM.
 */
int kaf_analysis_losses(const struct kaf_analysis *an, enum kaf_cell_column axis,
			int level, double **out, long *n);

/* The name of cell's value on axis. */
const char *kaf_analysis_value(const struct kaf_analysis *an,
			       const struct kaf_cell *cell,
			       enum kaf_cell_column axis);

#endif
