/*
 * runner.h - run every missing run of a sweep on OpenMP threads.
 *
 * Runs are numbered replicate-major (all cells of replicate 0, then all of
 * replicate 1, ...), so a sweep stopped half-way has every cell at about
 * the same count. They are processed in batches: the threads train a
 * batch (dynamic scheduling, each thread owning whole runs and writing
 * only its own result slot) while the calling thread stores the previous
 * one in a single transaction. Each run's seed comes from the grid (sweep
 * seed, replicate, and the cell under independent seeding), so results
 * do not depend on threads, batches or interruptions.
 *
 * Stopping: kaf_runner_interrupt() (async-signal-safe) makes threads skip
 * the runs they have not started; everything finished is stored and the
 * call returns KAF_EINTR.
 *
 * Memory: a batch of results and, with traces, their epochs; bounded by
 * the batch size, which adapts to about a quarter second of work and
 * never exceeds 16384 runs, whatever the size of the sweep.
 */
#ifndef KAF_RUNNER_H
#define KAF_RUNNER_H

#include <stdbool.h>

#include "data.h"
#include "error.h"
#include "grid.h"
#include "store.h"

struct kaf_runner_opts {
	int threads;            /* OpenMP threads, >= 1 */
	bool progress;          /* a live line on standard error */
	bool trace;             /* store every epoch's losses */
	int link_every;         /* K-AF link snapshots every N steps; 0 none */
	long max_batch;         /* cap on runs per batch; 0 = default */
};

struct kaf_runner_stats {
	long total;             /* runs in the grid */
	long skipped;           /* already stored before this call */
	long done;              /* trained and stored by this call */
	long diverged;          /* of those */
	double seconds;
};

/*
 * Train and store every run of grid g not yet in st (whose sweep is
 * open). datasets[i] is the dataset of cell i. Returns 0 when the sweep is
 * complete, KAF_EINTR when interrupted, or a store error (what was
 * committed stays).
 */
int kaf_runner_run(struct kaf_store *st, const struct kaf_grid *g,
		   const struct kaf_dataset *const *datasets,
		   const struct kaf_runner_opts *opts,
		   struct kaf_runner_stats *stats, struct kaf_error *err);

void kaf_runner_interrupt(void);
bool kaf_runner_interrupted(void);

#endif
