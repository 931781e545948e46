/*
 * bench_train.c - microseconds per full 5-epoch boston K-AF training
 * (hidden 20, calc_num 50, stable kernel) on one core, in both precisions.
 * Run with `meson test -C build --benchmark` or directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "data.h"
#include "model.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double per_run_us(const struct kaf_dataset *ds,
			 struct kaf_config cfg, int runs)
{
	struct kaf_result res;
	struct kaf_error err;
	double best = 1e30;

	/* Best of three rounds: the least disturbed by other load. */
	for (int round = 0; round < 3; round++) {
		double t0 = now();

		for (int r = 0; r < runs; r++) {
			cfg.seed = (uint64_t)r;
			if (kaf_train(ds, &cfg, NULL, &res, &err)) {
				fprintf(stderr, "bench: %s\n", err.msg);
				exit(1);
			}
		}
		double us = (now() - t0) * 1e6 / runs;

		if (us < best)
			best = us;
	}
	return best;
}

int main(int argc, char **argv)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err;
	struct kaf_config cfg = kaf_config_default();
	int runs = argc > 1 ? atoi(argv[1]) : 2000;

	if (kaf_dataset_builtin("boston", &ds, &err)) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return 1;
	}
	cfg.kernel = KAF_KERNEL_STABLE;
	cfg.hidden = 20;
	cfg.calc_num = 50;
	cfg.epochs = 5;
	cfg.standardize = getenv("STD") != NULL;
	for (int p = 0; p < KAF_PREC_COUNT; p++) {
		cfg.precision = (enum kaf_precision)p;
		printf("boston kaf stable 5 epochs %s: %.1f us per run\n",
		       kaf_precision_names[p], per_run_us(ds, cfg, runs));
	}
	kaf_dataset_destroy(ds);
	return 0;
}
