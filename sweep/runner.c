#include "runner.h"

#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static volatile sig_atomic_t stop_requested;

void kaf_runner_interrupt(void)
{
	stop_requested = 1;
}

bool kaf_runner_interrupted(void)
{
	return stop_requested != 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One run of a batch: written by exactly one thread. */
struct slot {
	long item;              /* replicate * cells + cell */
	bool ok;
	struct kaf_run_row row;
	struct kaf_epoch *epochs;
	int n_epochs;
};

struct batch {
	struct slot *slots;
	int count;              /* runs to train in this batch */
	long items;             /* items of the grid it covered */
};

struct epoch_log {
	struct kaf_epoch *epochs;
	int count, cap;
};

static int log_epoch(void *ctx, const struct kaf_epoch *ep)
{
	struct epoch_log *log = ctx;

	if (log->count < log->cap)
		log->epochs[log->count++] = *ep;
	return 0;
}

static void train_slot(struct slot *s, const struct kaf_grid *g,
		       const struct kaf_cell *cells, long n_cells,
		       const struct kaf_dataset *const *datasets, bool trace)
{
	long cell = s->item % n_cells, r = s->item / n_cells;
	struct kaf_config cfg = cells[cell].cfg;
	struct epoch_log log = {0};
	struct kaf_hooks hooks = {.eval_every = 1, .on_epoch = log_epoch,
				  .ctx = &log};
	struct kaf_error err;
	double t0 = now();

	cfg.seed = kaf_grid_run_seed(g, cell, r);
	if (trace) {
		log.cap = cfg.epochs;
		log.epochs = malloc(sizeof(*log.epochs) * (size_t)log.cap);
		if (!log.epochs) {
			kaf_log_warn("out of memory for the trace of cell %ld "
				     "replicate %ld; it will be retried", cell,
				     r);
			return;
		}
	}
	if (kaf_train(datasets[cell], &cfg, trace ? &hooks : NULL,
		      &s->row.res, &err) != KAF_OK) {
		kaf_log_warn("cell %ld replicate %ld: %s; it will be retried",
			     cell, r, err.msg);
		free(log.epochs);
		return;
	}
	s->row.cell = cell;
	s->row.replicate = r;
	s->row.seed = cfg.seed;
	s->row.wall_us = (now() - t0) * 1e6;
	s->epochs = log.epochs;
	s->n_epochs = log.count;
	s->ok = true;
}

/* Runs of items [w0, w0 + n) that the database does not hold yet. */
static int plan_batch(struct kaf_store *st, long n_cells, long w0, long n,
		      struct batch *b, long *skipped, struct kaf_error *err)
{
	long r0 = w0 / n_cells, r1 = (w0 + n - 1) / n_cells;
	bool *done = calloc((size_t)((r1 - r0 + 1) * n_cells), sizeof(bool));
	int rc;

	b->slots = calloc((size_t)n, sizeof(*b->slots));
	b->count = 0;
	b->items = n;
	if (!done || !b->slots) {
		free(done);
		return kaf_error_set(err, KAF_ENOMEM, "out of memory for a "
				     "batch of %ld runs", n);
	}
	rc = kaf_store_done(st, r0, r1, n_cells, done, err);
	for (long w = w0; rc == KAF_OK && w < w0 + n; w++) {
		if (done[w - r0 * n_cells])
			(*skipped)++;
		else
			b->slots[b->count++].item = w;
	}
	free(done);
	return rc;
}

static void batch_free(struct batch *b)
{
	for (int i = 0; b->slots && i < b->count; i++)
		free(b->slots[i].epochs);
	free(b->slots);
	memset(b, 0, sizeof(*b));
}

/* Store the finished runs of a batch in one transaction. */
static int store_batch(struct kaf_store *st, const struct batch *b,
		       struct kaf_runner_stats *stats, struct kaf_error *err)
{
	struct kaf_run_row *rows = malloc(sizeof(*rows) * (size_t)(b->count + 1));
	struct kaf_trace_row *trace = NULL;
	long n_trace = 0, k = 0;
	int n = 0, rc;

	for (int i = 0; i < b->count; i++)
		n_trace += b->slots[i].ok ? b->slots[i].n_epochs : 0;
	if (n_trace)
		trace = malloc(sizeof(*trace) * (size_t)n_trace);
	if (!rows || (n_trace && !trace)) {
		free(rows);
		free(trace);
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	}
	for (int i = 0; i < b->count; i++) {
		const struct slot *s = &b->slots[i];

		if (!s->ok)
			continue;
		rows[n++] = s->row;
		for (int e = 0; e < s->n_epochs; e++)
			trace[k++] = (struct kaf_trace_row){
				.cell = s->row.cell,
				.replicate = s->row.replicate,
				.ep = s->epochs[e],
			};
	}
	rc = kaf_store_write(st, rows, n, trace, n_trace, err);
	if (rc == KAF_OK) {
		stats->done += n;
		for (int i = 0; i < n; i++)
			stats->diverged += rows[i].res.diverged;
	}
	free(rows);
	free(trace);
	return rc;
}

static void show_progress(const struct kaf_runner_stats *s, double t0,
			  bool final)
{
	double el = now() - t0;
	long finished = s->skipped + s->done;
	double rate = el > 0 ? s->done / el : 0;
	double left = rate > 0 ? (s->total - finished) / rate : 0;

	fprintf(stderr, "\rkaf sweep: %ld/%ld runs (%.1f %%), %.0f runs/s, "
		"%ld diverged, about %.0f s left\033[K%s", finished, s->total,
		100.0 * finished / (s->total ? s->total : 1), rate,
		s->diverged, left, final ? "\n" : "");
	fflush(stderr);
}

static long next_batch_size(long last, long trained, double seconds,
			    const struct kaf_runner_opts *o)
{
	long cap = o->max_batch > 0 ? o->max_batch : 65536;
	long floor = 2L * o->threads;
	long n = last * 2;

	/* Aim at half a second of training per batch. */
	if (trained > 0 && seconds > 0)
		n = (long)(trained / seconds * 0.5);
	if (n > last * 4)
		n = last * 4;
	return n < floor ? floor : n > cap ? cap : n;
}

static int make_cells(const struct kaf_grid *g, struct kaf_cell **out,
		      struct kaf_error *err)
{
	long n = kaf_grid_cells(g);

	*out = malloc(sizeof(**out) * (size_t)n);
	if (!*out)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	for (long i = 0; i < n; i++)
		kaf_grid_cell(g, i, &(*out)[i]);
	return KAF_OK;
}

int kaf_runner_run(struct kaf_store *st, const struct kaf_grid *g,
		   const struct kaf_dataset *const *datasets,
		   const struct kaf_runner_opts *opts,
		   struct kaf_runner_stats *stats, struct kaf_error *err)
{
	long n_cells = kaf_grid_cells(g), total = n_cells * g->runs;
	long w = 0, size = 8L * opts->threads;
	struct batch prev = {0}, cur = {0};
	struct kaf_cell *cells;
	double t0 = now();
	int rc = make_cells(g, &cells, err), write_rc = KAF_OK;

	memset(stats, 0, sizeof(*stats));
	stats->total = total;
	omp_set_dynamic(0);
	while (rc == KAF_OK && (prev.slots || (w < total && !stop_requested))) {
		struct kaf_error werr;
		double b0 = now();

		if (w < total && !stop_requested) {
			long n = total - w < size ? total - w : size;

			rc = plan_batch(st, n_cells, w, n, &cur,
					&stats->skipped, err);
			w += n;
		}
#pragma omp parallel num_threads(opts->threads)
		{
#pragma omp single nowait
			if (prev.slots)
				write_rc = store_batch(st, &prev, stats,
						       &werr);
#pragma omp for schedule(dynamic, 1)
			for (int i = 0; i < cur.count; i++)
				if (!stop_requested)
					train_slot(&cur.slots[i], g, cells,
						   n_cells, datasets,
						   opts->trace);
		}
		if (write_rc != KAF_OK) {
			*err = werr;
			rc = write_rc;
		}
		size = next_batch_size(size, cur.count, now() - b0, opts);
		batch_free(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		if (opts->progress)
			show_progress(stats, t0, false);
	}
	batch_free(&prev);
	batch_free(&cur);
	free(cells);
	stats->seconds = now() - t0;
	if (opts->progress)
		show_progress(stats, t0, true);
	if (rc == KAF_OK && stop_requested)
		rc = kaf_error_set(err, KAF_EINTR, "interrupted");
	return rc;
}
