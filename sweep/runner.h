/*
 * runner.h - run every missing run of a sweep on OpenMP threads.
 *
 * Runs are taken replicate-major (all cells of replicate 0, then all of
 * replicate 1, ...), so a sweep stopped half-way has every cell at about
 * the same count; within a replicate, the costliest cells come first, so
 * that the last runs to finish are short and no thread idles long at the
 * end. Each thread takes the next run as soon as it finishes one, and
 * finished runs are stored in single transactions, about every quarter
 * second, by whichever thread finds them due while the others keep
 * training. Each run's seed comes from the grid (sweep seed, replicate,
 * and the cell under independent seeding), so results do not depend on
 * threads, order or interruptions.
 *
 * Stopping: kaf_runner_interrupt() (async-signal-safe) makes threads skip
 * the runs they have not started; everything finished is stored and the
 * call returns KAF_EINTR.
 *
 * Memory: one bit per run of the grid (which runs are stored) and the
 * finished runs not stored yet with, with traces, their epochs; those are
 * at most twice max_batch runs (16384 by default), whatever the size of
 * the sweep.
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
	long max_batch;         /* runs stored per transaction at most, once
				 * due; 0 = default */
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
