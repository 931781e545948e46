/*
 * bench_store.c - storage alone: run rows per second that the store
 * commits, in batches as the runner hands them over, into a fresh
 * database in WAL mode.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "grid.h"
#include "store.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(struct kaf_run_row *rows, int count, long first,
		 long cells)
{
	for (int i = 0; i < count; i++) {
		long w = first + i;
		struct kaf_result *r = &rows[i].res;

		rows[i].cell = w % cells;
		rows[i].replicate = w / cells;
		rows[i].seed = (uint64_t)w * 0x9e3779b97f4a7c15ULL;
		rows[i].wall_us = 100 + i % 50;
		*r = (struct kaf_result){
			.diverged = w % 3 == 0,
			.cause = w % 3 == 0 ? KAF_CAUSE_KERNEL_UNDERFLOW
					    : KAF_CAUSE_NONE,
			.step = w % 3 == 0 ? 0 : -1, .steps = 5,
			.train_loss = 80.0 + w % 7, .val_loss = 90.0 + w % 5,
			.accuracy = NAN, .val_mae = 7.5, .max_grad_norm = 1e3,
			.bandwidth = 1.5,
		};
	}
}

int main(int argc, char **argv)
{
	long total = argc > 1 ? atol(argv[1]) : 480000, batch = 8192;
	char path[] = "/tmp/kaf_bench_store_XXXXXX";
	struct kaf_run_row *rows = malloc(sizeof(*rows) * (size_t)batch);
	struct kaf_store *st = NULL;
	struct kaf_error err;
	struct kaf_grid g;
	int64_t sweep_id;
	bool resumed;
	double t0;
	int fd = mkstemp(path);

	if (fd < 0 || !rows)
		return 1;
	close(fd);
	unlink(path);
	kaf_grid_init(&g, &err);
	g.base.runs = (total + 23) / 24;
	if (kaf_store_open(path, &st, &err) ||
	    kaf_store_sweep(st, &g, 1, &sweep_id, &resumed, &err)) {
		fprintf(stderr, "bench_store: %s\n", err.msg);
		return 1;
	}
	t0 = now();
	for (long w = 0; w < total; w += batch) {
		int n = (int)(total - w < batch ? total - w : batch);

		fill(rows, n, w, 24);
		struct kaf_batch_rows b = {.runs = rows, .n_runs = n};

		if (kaf_store_write(st, &b, &err)) {
			fprintf(stderr, "bench_store: %s\n", err.msg);
			return 1;
		}
	}
	double s = now() - t0;

	printf("store: %ld run rows in %.3f s: %.0f rows per second\n", total,
	       s, total / s);
	kaf_store_close(st);
	kaf_grid_finish(&g);
	free(rows);
	unlink(path);
	return 0;
}
