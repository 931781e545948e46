/*
 * bench_dense.c - microseconds per full-batch training step on digits
 * (d 64, hidden 100, e 10, 1347 training rows), where the dense layers
 * dominate: relu shows them alone, kaf adds the K-AF rows (calc_num 36,
 * naive, experiment 1's setting 2), each in float32 and float64.
 *
 * A step's cost is the difference between a run of `epochs` steps and a
 * run of one step, divided by epochs - 1, so the set-up and the final
 * evaluation cancel. Each figure is the best of `rounds` rounds: the one
 * least disturbed by other load. Run directly or with
 * `meson test -C build --benchmark`.
 *
 * usage: bench_dense [epochs (default 21)] [rounds (default 5)]
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

/*
 * The best wall time in seconds of one kaf_train call over the rounds,
 * in *best; non-zero, with the reason on stderr, if a run fails or stops
 * early (a diverged run would make the figure short).
 */
static int best_run(const struct kaf_dataset *ds,
		    const struct kaf_config *cfg, int rounds, double *best)
{
	struct kaf_result res;
	struct kaf_error err;

	*best = 1e30;
	for (int r = 0; r < rounds; r++) {
		double t0 = now();

		if (kaf_train(ds, cfg, NULL, &res, &err)) {
			fprintf(stderr, "bench_dense: %s\n", err.msg);
			return 1;
		}
		double s = now() - t0;

		if (res.steps != cfg->epochs) {
			fprintf(stderr, "bench_dense: the run diverged at step "
				"%d (%s)\n", res.step,
				kaf_cause_names[res.cause]);
			return 1;
		}
		if (s < *best)
			*best = s;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const enum kaf_activation acts[] = {KAF_ACT_RELU, KAF_ACT_KAF};
	struct kaf_dataset *ds = NULL;
	struct kaf_error err;
	struct kaf_config cfg = kaf_config_default();
	int epochs = argc > 1 ? atoi(argv[1]) : 21;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	int rc = 0;

	if (epochs < 2 || rounds < 1) {
		fprintf(stderr, "usage: bench_dense [epochs >= 2] "
			"[rounds >= 1]\n");
		return 2;
	}
	if (kaf_dataset_builtin("digits", &ds, &err)) {
		fprintf(stderr, "bench_dense: %s\n", err.msg);
		return 1;
	}
	cfg.init = KAF_INIT_KAIMING_UNIFORM;
	cfg.lr = 1e-3;
	cfg.calc_num = 36;
	for (size_t a = 0; a < sizeof(acts) / sizeof(acts[0]) && !rc; a++) {
		for (int p = 0; p < KAF_PREC_COUNT && !rc; p++) {
			double many, one;

			cfg.activation = acts[a];
			cfg.precision = (enum kaf_precision)p;
			cfg.epochs = epochs;
			rc = best_run(ds, &cfg, rounds, &many);
			cfg.epochs = 1;
			rc = rc ? rc : best_run(ds, &cfg, rounds, &one);
			if (!rc)
				printf("digits %s %s: %.1f us per step\n",
				       kaf_activation_names[acts[a]],
				       kaf_precision_names[p],
				       (many - one) * 1e6 / (epochs - 1));
		}
	}
	kaf_dataset_destroy(ds);
	return rc;
}
