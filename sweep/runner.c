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
	struct kaf_link_row *links;
	long n_links;
};

struct batch {
	struct slot *slots;
	int count;              /* runs to train in this batch */
	long items;             /* items of the grid it covered */
};

/* What the hooks of one run collect. */
struct run_log {
	long cell, replicate;
	struct kaf_epoch *epochs;
	int count, cap;
	struct kaf_link_row *links;
	long n_links, cap_links;
	bool failed;            /* out of memory: the run is retried */
};

static int log_epoch(void *ctx, const struct kaf_epoch *ep)
{
	struct run_log *log = ctx;

	if (log->count < log->cap)
		log->epochs[log->count++] = *ep;
	return 0;
}

static int push_link(struct run_log *log, struct kaf_link_row row)
{
	if (log->n_links == log->cap_links) {
		long cap = log->cap_links ? 2 * log->cap_links : 1024;
		struct kaf_link_row *more =
			realloc(log->links, sizeof(*more) * (size_t)cap);

		if (!more) {
			log->failed = true;
			return 1;
		}
		log->links = more;
		log->cap_links = cap;
	}
	row.cell = log->cell;
	row.replicate = log->replicate;
	log->links[log->n_links++] = row;
	return 0;
}

static int log_link(void *ctx, const struct kaf_link *lk)
{
	struct run_log *log = ctx;
	int stop = push_link(log, (struct kaf_link_row){
		.epoch = lk->epoch, .kind = KAF_LINK_FRAME, .y = lk->h});

	for (int k = 0; k < lk->e && !stop; k++) {
		for (int q = 0; q < lk->points && !stop; q++) {
			size_t at = (size_t)k * lk->points + q;

			stop = push_link(log, (struct kaf_link_row){
				.epoch = lk->epoch, .kind = KAF_LINK_POINT,
				.output = k, .index = q, .z = lk->z[at],
				.y = lk->yhat[at]});
		}
		for (int j = 0; j < lk->c && !stop; j++) {
			size_t at = (size_t)k * lk->c + j;

			stop = push_link(log, (struct kaf_link_row){
				.epoch = lk->epoch, .kind = KAF_LINK_CALC,
				.output = k, .index = j, .z = lk->calc_z[at],
				.y = lk->calc_y[at]});
		}
	}
	return stop;
}

static void train_slot(struct slot *s, const struct kaf_grid *g,
		       const struct kaf_cell *cells, long n_cells,
		       const struct kaf_dataset *const *datasets,
		       const struct kaf_runner_opts *o)
{
	long cell = s->item % n_cells, r = s->item / n_cells;
	struct kaf_config cfg = cells[cell].cfg;
	struct run_log log = {.cell = cell, .replicate = r};
	struct kaf_hooks hooks = {
		.eval_every = o->trace ? 1 : 0, .on_epoch = log_epoch,
		.link_every = o->link_every, .on_link = log_link,
		.ctx = &log,
	};
	bool hooked = o->trace || o->link_every > 0;
	struct kaf_error err;
	double t0 = now();

	cfg.seed = kaf_grid_run_seed(g, cell, r);
	if (o->trace) {
		log.cap = cfg.epochs;
		log.epochs = malloc(sizeof(*log.epochs) * (size_t)log.cap);
		log.failed = !log.epochs;
	}
	if (log.failed || kaf_train(datasets[cell], &cfg,
				    hooked ? &hooks : NULL, &s->row.res,
				    &err) != KAF_OK || log.failed) {
		kaf_log_warn("cell %ld replicate %ld: %s; it will be retried",
			     cell, r, log.failed ? "out of memory" : err.msg);
		free(log.epochs);
		free(log.links);
		return;
	}
	s->row.cell = cell;
	s->row.replicate = r;
	s->row.seed = cfg.seed;
	s->row.wall_us = (now() - t0) * 1e6;
	s->epochs = log.epochs;
	s->n_epochs = log.count;
	s->links = log.links;
	s->n_links = log.n_links;
	s->ok = true;
}

/*
 * Runs of items [w0, w0 + n) that the database does not hold yet; an item
 * whose replicate is beyond its cell's runs is no run at all.
 */
static int plan_batch(struct kaf_store *st, const struct kaf_cell *cells,
		      long n_cells, long w0, long n, struct batch *b,
		      long *skipped, struct kaf_error *err)
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
		if (w / n_cells >= cells[w % n_cells].runs)
			continue;
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
	for (int i = 0; b->slots && i < b->count; i++) {
		free(b->slots[i].epochs);
		free(b->slots[i].links);
	}
	free(b->slots);
	memset(b, 0, sizeof(*b));
}

/* Store the finished runs of a batch in one transaction. */
static int store_batch(struct kaf_store *st, const struct batch *b,
		       struct kaf_runner_stats *stats, struct kaf_error *err)
{
	struct kaf_run_row *rows = malloc(sizeof(*rows) * (size_t)(b->count + 1));
	struct kaf_trace_row *trace = NULL;
	struct kaf_link_row *links = NULL;
	long n_trace = 0, n_links = 0, kt = 0, kl = 0;
	int n = 0, rc;

	for (int i = 0; i < b->count; i++) {
		n_trace += b->slots[i].ok ? b->slots[i].n_epochs : 0;
		n_links += b->slots[i].ok ? b->slots[i].n_links : 0;
	}
	if (n_trace)
		trace = malloc(sizeof(*trace) * (size_t)n_trace);
	if (n_links)
		links = malloc(sizeof(*links) * (size_t)n_links);
	if (!rows || (n_trace && !trace) || (n_links && !links)) {
		free(rows);
		free(trace);
		free(links);
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	}
	for (int i = 0; i < b->count; i++) {
		const struct slot *s = &b->slots[i];

		if (!s->ok)
			continue;
		rows[n++] = s->row;
		for (int e = 0; e < s->n_epochs; e++)
			trace[kt++] = (struct kaf_trace_row){
				.cell = s->row.cell,
				.replicate = s->row.replicate,
				.ep = s->epochs[e],
			};
		for (long l = 0; l < s->n_links; l++)
			links[kl++] = s->links[l];
	}
	struct kaf_batch_rows rows_of = {
		.runs = rows, .n_runs = n, .trace = trace, .n_trace = n_trace,
		.links = links, .n_links = n_links,
	};

	rc = kaf_store_write(st, &rows_of, err);
	if (rc == KAF_OK) {
		stats->done += n;
		for (int i = 0; i < n; i++)
			stats->diverged += rows[i].res.diverged;
	}
	free(rows);
	free(trace);
	free(links);
	return rc;
}

static void show_progress(const struct kaf_runner_stats *s, double t0,
			  bool final)
{
	double el = now() - t0;
	long finished = s->skipped + s->done;
	double rate = el > 0 ? s->done / el : 0;
	double left = rate > 0 ? (s->total - finished) / rate : 0;

	char eta[32] = "estimating time left";

	if (rate > 0)
		snprintf(eta, sizeof(eta), "about %.0f s left", left);
	fprintf(stderr, "\rkaf sweep: %ld/%ld runs (%.1f %%), %.0f runs/s, "
		"%ld diverged, %s\033[K%s", finished, s->total,
		100.0 * finished / (s->total ? s->total : 1), rate,
		s->diverged, final ? "done" : eta, final ? "\n" : "");
	fflush(stderr);
}

static long next_batch_size(long last, long trained, double seconds,
			    const struct kaf_runner_opts *o)
{
	long cap = o->max_batch > 0 ? o->max_batch : 16384;
	long floor = 2L * o->threads;
	long n = last * 2;

	/* Aim at a quarter second of training per batch. */
	if (trained > 0 && seconds > 0)
		n = (long)(trained / seconds * 0.25);
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
	long n_cells = kaf_grid_cells(g);
	long items = n_cells * kaf_grid_max_runs(g);
	long w = 0, size = 8L * opts->threads;
	struct batch prev = {0}, cur = {0};
	struct kaf_cell *cells;
	double t0 = now();
	int rc = make_cells(g, &cells, err), write_rc = KAF_OK;

	memset(stats, 0, sizeof(*stats));
	stats->total = kaf_grid_total_runs(g);
	omp_set_dynamic(0);
	while (rc == KAF_OK && (prev.slots || (w < items && !stop_requested))) {
		struct kaf_error werr;
		double b0 = now();

		if (w < items && !stop_requested) {
			long n = items - w < size ? items - w : size;

			rc = plan_batch(st, cells, n_cells, w, n, &cur,
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
						   n_cells, datasets, opts);
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
