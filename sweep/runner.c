#include "runner.h"

#include <omp.h>
#include <signal.h>
#include <stdint.h>
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
	int count;
};

static void batch_free(struct batch *b)
{
	for (int i = 0; b->slots && i < b->count; i++) {
		free(b->slots[i].epochs);
		free(b->slots[i].links);
	}
	free(b->slots);
	memset(b, 0, sizeof(*b));
}

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

/*
 * A rough count of the arithmetic of one run of cell c, only to order
 * the cells: epochs times rows times the multiply-adds per row, with
 * K-AF's kernel sums and the fixed activations' exponentials weighed in.
 */
static double run_cost(const struct kaf_cell *c, const struct kaf_dataset *ds)
{
	const struct kaf_config *cfg = &c->cfg;
	double per_row = (double)cfg->hidden * (ds->d + ds->e);

	if (cfg->activation == KAF_ACT_KAF)
		per_row += 8.0 * ds->e * cfg->calc_num;
	else if (cfg->activation != KAF_ACT_LINEAR &&
		 cfg->activation != KAF_ACT_RELU)
		per_row += 40.0 * ds->e;
	return (double)cfg->epochs * ds->n * per_row;
}

static int make_cells(const struct kaf_grid *g,
		      const struct kaf_dataset *const *datasets,
		      struct kaf_cell **out, long **order,
		      struct kaf_error *err)
{
	long n = kaf_grid_cells(g);
	double *cost = malloc(sizeof(*cost) * (size_t)n);

	*out = malloc(sizeof(**out) * (size_t)n);
	*order = malloc(sizeof(**order) * (size_t)n);
	if (!*out || !*order || !cost) {
		free(cost);
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	}
	for (long i = 0; i < n; i++) {
		kaf_grid_cell(g, i, &(*out)[i]);
		cost[i] = run_cost(&(*out)[i], datasets[i]);
	}
	/* The costliest first, ties in grid order: an insertion sort, as
	 * grids have thousands of cells at most. */
	for (long i = 0; i < n; i++) {
		long j = i;

		for (; j > 0 && cost[(*order)[j - 1]] < cost[i]; j--)
			(*order)[j] = (*order)[j - 1];
		(*order)[j] = i;
	}
	free(cost);
	return KAF_OK;
}

/* What the threads of one sweep share. */
struct shared {
	omp_lock_t lock;        /* guards the fields below */
	omp_lock_t writer;      /* held while a batch is being stored */
	long next;              /* next position to claim */
	struct batch waiting;   /* finished runs not stored yet */
	int cap;                /* room in waiting.slots */
	double oldest;          /* when the first of them finished */
	long target;            /* runs that make a commit due */
	long finished;          /* runs handed over so far */
	bool failed;            /* a store or memory failure: stop */
	int rc;
	struct kaf_error err;
};

static void fail(struct shared *sh, int rc, const struct kaf_error *err)
{
	omp_set_lock(&sh->lock);
	if (!sh->failed) {
		sh->failed = true;
		sh->rc = rc;
		sh->err = *err;
	}
	omp_unset_lock(&sh->lock);
}

/*
 * The runs to gather for the next commit: a quarter second's worth at
 * the rate so far, growing at most fourfold per commit from a small
 * start, so that a short sweep commits early and often too; within
 * [2 threads, cap].
 */
static void next_target(struct shared *sh, double t0,
			const struct kaf_runner_opts *o)
{
	long cap = o->max_batch > 0 ? o->max_batch : 16384;
	long floor = 2L * o->threads, n;
	double el = now() - t0;

	omp_set_lock(&sh->lock);
	n = el > 0 ? (long)(sh->finished / el * 0.25) : floor;
	if (n > 4 * sh->target)
		n = 4 * sh->target;
	sh->target = n < floor ? floor : n > cap ? cap : n;
	omp_unset_lock(&sh->lock);
}

/*
 * Store what is waiting, as one transaction; the caller holds the writer
 * lock. Slots that were trained but could not be stored are freed: their
 * runs stay missing and a rerun trains them again.
 */
static void store_waiting(struct shared *sh, struct kaf_store *st,
			  struct kaf_runner_stats *stats, double t0,
			  const struct kaf_runner_opts *o)
{
	struct batch mine;
	struct kaf_error err;
	int rc = KAF_OK;

	omp_set_lock(&sh->lock);
	mine = sh->waiting;
	memset(&sh->waiting, 0, sizeof(sh->waiting));
	sh->cap = 0;
	omp_unset_lock(&sh->lock);
	if (mine.count > 0)
		rc = store_batch(st, &mine, stats, &err);
	next_target(sh, t0, o);
	if (rc != KAF_OK)
		fail(sh, rc, &err);
	batch_free(&mine);
	if (o->progress && rc == KAF_OK)
		show_progress(stats, t0, false);
}

/*
 * Hand a finished run over for storing. Whoever finds the waiting runs
 * due (a quarter second old, or as many as the target) and the writer
 * free stores them, while the other threads keep training; past twice
 * the cap, it waits for the writer, so that memory stays bounded.
 */
static void deliver(struct shared *sh, struct slot *s, struct kaf_store *st,
		    struct kaf_runner_stats *stats, double t0,
		    const struct kaf_runner_opts *o)
{
	long cap = o->max_batch > 0 ? o->max_batch : 16384;
	bool due, full;

	omp_set_lock(&sh->lock);
	if (sh->waiting.count == sh->cap) {
		int more = sh->cap ? 2 * sh->cap : 64;
		struct slot *grown = realloc(sh->waiting.slots,
					     sizeof(*grown) * (size_t)more);

		if (!grown) {
			struct kaf_error err;

			omp_unset_lock(&sh->lock);
			free(s->epochs);
			free(s->links);
			fail(sh, kaf_error_set(&err, KAF_ENOMEM, "out of memory "
					       "for finished runs"), &err);
			return;
		}
		sh->waiting.slots = grown;
		sh->cap = more;
	}
	if (sh->waiting.count == 0)
		sh->oldest = now();
	sh->waiting.slots[sh->waiting.count++] = *s;
	sh->finished++;
	due = sh->waiting.count >= sh->target ||
	      now() - sh->oldest >= 0.25;
	full = sh->waiting.count >= 2 * cap;
	omp_unset_lock(&sh->lock);
	if (full) {
		omp_set_lock(&sh->writer);
	} else if (!due || !omp_test_lock(&sh->writer)) {
		return;
	}
	store_waiting(sh, st, stats, t0, o);
	omp_unset_lock(&sh->writer);
}

/* The grid's runs: cells, their order of work, and which are stored. */
struct plan {
	struct kaf_cell *cells;
	long *order;            /* cells, costliest first */
	uint8_t *done;          /* one bit per item: stored already */
	long n_cells, items;    /* items: cells x the largest runs */
};

static bool plan_done(const struct plan *p, long item)
{
	return p->done[item / 8] >> (item % 8) & 1;
}

static void plan_free(struct plan *p)
{
	free(p->cells);
	free(p->order);
	free(p->done);
}

/*
 * Which runs st holds, as bits, read a few thousand replicates at a time
 * so that the buffer of the store's answer stays small.
 */
static int plan_read_done(struct plan *p, struct kaf_store *st,
			  long max_runs, struct kaf_error *err)
{
	long step = 4096, n = step * p->n_cells;
	bool *part = malloc(sizeof(*part) * (size_t)(n < p->items ? n
							       : p->items));
	int rc = KAF_OK;

	p->done = calloc((size_t)(p->items / 8 + 1), 1);
	if (!part || !p->done) {
		free(part);
		return kaf_error_set(err, KAF_ENOMEM, "out of memory for the "
				     "%ld runs of the sweep", p->items);
	}
	for (long r0 = 0; rc == KAF_OK && r0 < max_runs; r0 += step) {
		long r1 = r0 + step < max_runs ? r0 + step : max_runs;
		long w0 = r0 * p->n_cells, count = (r1 - r0) * p->n_cells;

		memset(part, 0, sizeof(*part) * (size_t)count);
		rc = kaf_store_done(st, r0, r1 - 1, p->n_cells, part, err);
		for (long i = 0; rc == KAF_OK && i < count; i++)
			if (part[i])
				p->done[(w0 + i) / 8] |=
					(uint8_t)(1u << ((w0 + i) % 8));
	}
	free(part);
	return rc;
}

/* The plan of grid g against st; counts the stored runs as skipped. */
static int plan_load(struct plan *p, struct kaf_store *st,
		     const struct kaf_grid *g,
		     const struct kaf_dataset *const *datasets,
		     struct kaf_runner_stats *stats, struct kaf_error *err)
{
	long max_runs = kaf_grid_max_runs(g);
	int rc;

	memset(p, 0, sizeof(*p));
	p->n_cells = kaf_grid_cells(g);
	p->items = p->n_cells * max_runs;
	rc = make_cells(g, datasets, &p->cells, &p->order, err);
	if (rc == KAF_OK && p->items > 0)
		rc = plan_read_done(p, st, max_runs, err);
	for (long w = 0; rc == KAF_OK && w < p->items; w++)
		stats->skipped += plan_done(p, w) &&
				  w / p->n_cells < p->cells[w % p->n_cells].runs;
	if (rc != KAF_OK)
		plan_free(p);
	return rc;
}

/* One thread's share: runs taken in turn until none is left or a stop. */
static void work(struct shared *sh, const struct plan *p,
		 struct kaf_store *st, const struct kaf_grid *g,
		 const struct kaf_dataset *const *datasets,
		 const struct kaf_runner_opts *opts,
		 struct kaf_runner_stats *stats, double t0)
{
	for (;;) {
		struct slot s = {0};
		long pos, cell, r;
		bool stop;

#pragma omp atomic capture
		pos = sh->next++;
		omp_set_lock(&sh->lock);
		stop = sh->failed;
		omp_unset_lock(&sh->lock);
		if (pos >= p->items || stop || stop_requested)
			return;
		r = pos / p->n_cells;
		cell = p->order[pos % p->n_cells];
		s.item = r * p->n_cells + cell;
		if (r >= p->cells[cell].runs || plan_done(p, s.item))
			continue;
		train_slot(&s, g, p->cells, p->n_cells, datasets, opts);
		deliver(sh, &s, st, stats, t0, opts);
	}
}

int kaf_runner_run(struct kaf_store *st, const struct kaf_grid *g,
		   const struct kaf_dataset *const *datasets,
		   const struct kaf_runner_opts *opts,
		   struct kaf_runner_stats *stats, struct kaf_error *err)
{
	struct shared sh = {.target = 8L * opts->threads};
	struct plan p;
	double t0 = now();
	int rc;

	memset(stats, 0, sizeof(*stats));
	stats->total = kaf_grid_total_runs(g);
	rc = plan_load(&p, st, g, datasets, stats, err);
	if (rc != KAF_OK)
		return rc;
	omp_init_lock(&sh.lock);
	omp_init_lock(&sh.writer);
	omp_set_dynamic(0);
#pragma omp parallel num_threads(opts->threads)
	work(&sh, &p, st, g, datasets, opts, stats, t0);
	if (!sh.failed)
		store_waiting(&sh, st, stats, t0, opts);
	batch_free(&sh.waiting);
	omp_destroy_lock(&sh.lock);
	omp_destroy_lock(&sh.writer);
	plan_free(&p);
	stats->seconds = now() - t0;
	if (sh.failed) {
		*err = sh.err;
		return sh.rc;
	}
	if (opts->progress)
		show_progress(stats, t0, true);
	if (stop_requested)
		return kaf_error_set(err, KAF_EINTR, "interrupted");
	return KAF_OK;
}
