/*
 * store.h - the SQLite database of sweeps (schema in schemas/kaf.sql).
 *
 * One writer: a store belongs to the thread that drives a sweep, and all
 * calls on it come from one thread at a time. The database is in WAL mode,
 * so `sqlite3` readers never block the writer nor see a half-written
 * batch. Every batch of runs is one transaction: a crash or kill -9 loses
 * at most the batch being written and never corrupts the file.
 *
 * Opening checks, before anything is written, that the path is not a
 * directory, that a new file can be created, and that an existing file is
 * a kaf database of this schema version; otherwise the file is untouched.
 *
 * Memory: kaf_store_open returns a heap object; kaf_store_close(NULL) is a
 * no-op. Errors: KAF_EIO for paths, KAF_EDB for SQLite and foreign files,
 * each message naming the path.
 */
#ifndef KAF_STORE_H
#define KAF_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "grid.h"
#include "model.h"

#define KAF_SCHEMA_VERSION 1
#define KAF_APPLICATION_ID 1262569009  /* 'KAF1' */

struct kaf_store;

/* One finished run, as the runner hands it to the store. */
struct kaf_run_row {
	long cell;              /* grid index of the cell */
	long replicate;
	uint64_t seed;
	struct kaf_result res;
	double wall_us;
};

/* Per-epoch values of one run, for sweeps that keep traces. */
struct kaf_trace_row {
	long cell;
	long replicate;
	struct kaf_epoch ep;
};

/* One value of a K-AF link snapshot. */
enum kaf_link_kind {
	KAF_LINK_FRAME,         /* y holds the bandwidth of the step */
	KAF_LINK_POINT,         /* (z, y) on the link curve of output */
	KAF_LINK_CALC,          /* a calc row (z_j, y_j) of output */
};

struct kaf_link_row {
	long cell;
	long replicate;
	int epoch;
	enum kaf_link_kind kind;
	int output;
	int index;              /* point or calc row */
	double z, y;
};

/* What one transaction stores. */
struct kaf_batch_rows {
	const struct kaf_run_row *runs;
	int n_runs;
	const struct kaf_trace_row *trace;
	long n_trace;
	const struct kaf_link_row *links;
	long n_links;
};

int kaf_store_open(const char *path, struct kaf_store **out,
		   struct kaf_error *err);
void kaf_store_close(struct kaf_store *st);

/*
 * Find the sweep of this grid (same spec text, seed and seeding) or create
 * it with its cells. *resumed tells which. Records the threads used.
 */
int kaf_store_sweep(struct kaf_store *st, const struct kaf_grid *g,
		    int threads, int64_t *sweep_id, bool *resumed,
		    struct kaf_error *err);

/*
 * Mark done[i] for every stored run with replicate in [r0, r1]: done is
 * indexed (replicate - r0) * cells + cell.
 */
int kaf_store_done(struct kaf_store *st, long r0, long r1, long cells,
		   bool *done, struct kaf_error *err);

/* Count the stored runs and divergences of the sweep. */
int kaf_store_counts(struct kaf_store *st, long *runs, long *diverged,
		     struct kaf_error *err);

/* Store a batch of rows in one transaction. */
int kaf_store_write(struct kaf_store *st, const struct kaf_batch_rows *b,
		    struct kaf_error *err);

/* Stamp the sweep finished (every run stored). */
int kaf_store_finish(struct kaf_store *st, struct kaf_error *err);

/* The underlying connection, for reading (reports, tests). */
struct sqlite3 *kaf_store_db(struct kaf_store *st);

#endif
