/*
 * report_fixture.h - small kaf databases with known contents, built from
 * schemas/kaf.sql, for the report's tests and benchmark.
 *
 * A sweep is a list of cells, each with its configuration and the number
 * of its runs that diverge. Which replicates diverge, at which step, of
 * which cause and with which final loss follows fixed rules
 * (fixture_diverged and friends below), so a test can recompute every
 * expected count without reading the database.
 *
 * Errors: the builders print the SQLite message to stderr and return a
 * negative value; tests treat that as a failure.
 */
#ifndef KAF_REPORT_FIXTURE_H
#define KAF_REPORT_FIXTURE_H

#include <stdbool.h>

#include <sqlite3.h>

struct fixture_cell {
	const char *block;      /* NULL: '', no block */
	const char *dataset, *activation, *kernel, *precision;
	const char *init, *reg, *opt;
	double lambda, lr;
	long epochs, hidden, calc_num, standardize;
	double grad_limit, bandwidth;
	int diverged;           /* runs of the cell that diverge */
};

struct fixture_sweep {
	const char *preset;     /* NULL for none */
	const char *seeding;    /* "paired" or "independent" */
	int runs;               /* per cell */
	int ncells;
	const struct fixture_cell *cells;       /* (ncells) */
};

/* Experiment 3's fixed settings: boston, kaf, naive, f32, lr 1e-5, ... */
struct fixture_cell fixture_cell_exp3(const char *init, const char *opt,
				      const char *reg, int diverged);

/*
 * A new database at path (an existing file is replaced) with the schema
 * read from schema_path and kaf's application_id and user_version.
 * NULL on failure.
 */
sqlite3 *fixture_create(const char *path, const char *schema_path);

/* Add a sweep with its cells and runs; its sweep_id, or -1. */
long long fixture_add_sweep(sqlite3 *db, const struct fixture_sweep *s);

/*
 * Trace rows for every run of a sweep (c its cell's cell_index): epochs
 * 0 .. cell.epochs - 1 of a survivor, 0 .. step of a diverged run,
 * values by fixture_trace. 0 or -1.
 */
int fixture_add_traces(sqlite3 *db, long long sweep_id);

/*
 * Link snapshots for replicate 0 of cell c (index) of a sweep: nframes
 * (at least 2) frames at epochs 0, every, 2 every, ..., the last at
 * (nframes - 1) every - 1 like a run's last step; 3 outputs of npoints
 * points and ncalc calc rows, by fixture_link. 0 or -1.
 */
int fixture_add_links(sqlite3 *db, long long sweep_id, int c, int nframes,
		      long every, int npoints, int ncalc);

/* ---- the rules ---- */

/* Replicate r of cell index c diverges (k of n runs do). */
bool fixture_diverged(int c, int r, int n, int k);

/* The step and cause of a diverged replicate r. */
long fixture_step(int r);
const char *fixture_cause(int r);

/* Final validation loss of a surviving replicate r of cell c; NaN for
 * every 17th, stored as NULL like a non-finite loss. */
double fixture_val_loss(int c, int r);

/* Training and validation loss of replicate r of cell c at epoch e. */
void fixture_trace(int c, int r, long e, double *train, double *val);

/*
 * The link of output k at frame f of nframes: on the last frame, output
 * 0 is a sigmoid over z in [-6, 6] (increasing, bounded above, no zero
 * gradient), output 1 a bump exp(-z^2 / 2) over [-3, 3] (zero gradient
 * at 0, bounded above), output 2 the ramp 3 - z over [0, 3]
 * (decreasing, not bounded above). Earlier frames are flatter copies.
 * fixture_link_range gives output k's z range.
 */
double fixture_link(int k, int f, int nframes, double z);
void fixture_link_range(int k, double *lo, double *hi);

/* ---- files ---- */

/* Remove dir and everything below it (mode bits restored first). */
void fixture_remove_tree(const char *dir);

/* The whole file as a NUL-terminated heap string, or NULL. */
char *fixture_slurp(const char *path);

#endif
