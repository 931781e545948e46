/*
 * bench_report.c - time `kaf report` on an Experiment 3-sized sweep: 24
 * cells (2 inits x 3 regs x 4 opts) x 1000 runs, built with the sqlite3
 * API from schemas/kaf.sql. gnuplot is not run, so the figure is the
 * report's own cost: reading, testing, writing every table and script.
 * The budget is 2 s; the program fails above it.
 *
 * Usage: bench_report [RUNS_PER_CELL [KEEP_DIR]]. With KEEP_DIR the
 * database and the report are left there for inspection.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "report_fixture.h"

#ifndef KAF_SOURCE_DIR
#error "build with -DKAF_SOURCE_DIR=\"<repository root>\""
#endif

#define BUDGET_S 2.0
#define ROUNDS 5

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rates in the range the study reports: kaiming worse, adam worst. */
static void exp3_cells(struct fixture_cell *cells, int runs)
{
	static const char *const inits[2] = {"xavier_uniform",
					     "kaiming_uniform"};
	static const char *const regs[3] = {"none", "l1", "l2"};
	static const char *const opts[4] = {"sgd", "rmsprop", "adagrad",
					    "adam"};
	static const double base[2] = {0.40, 0.70};
	static const double opt_add[4] = {0.0, 0.05, 0.08, 0.15};
	static const double reg_add[3] = {0.0, 0.005, -0.005};
	int n = 0;

	for (int i = 0; i < 2; i++)
		for (int r = 0; r < 3; r++)
			for (int o = 0; o < 4; o++)
				cells[n++] = fixture_cell_exp3(
					inits[i], opts[o], regs[r],
					(int)(runs * (base[i] + opt_add[o] +
						      reg_add[r])));
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[1024];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(path);
		else
			unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static double best_time(const char *db, const char *out)
{
	struct kaf_report_opts opts = {
		.db_path = db, .out_dir = out, .no_plots = true,
	};
	struct kaf_error err;
	double best = 1e30;

	for (int round = 0; round < ROUNDS; round++) {
		double t0 = now(), t;

		if (kaf_report_run(&opts, NULL, &err)) {
			fprintf(stderr, "bench_report: %s\n", err.msg);
			exit(1);
		}
		t = now() - t0;
		best = t < best ? t : best;
	}
	return best;
}

/* KEEP_DIR if given (created if missing), else a new temp directory. */
static bool make_dir(const char *keep, char *dir, size_t size)
{
	const char *tmp = getenv("TMPDIR");

	if (keep) {
		snprintf(dir, size, "%s", keep);
		return (mkdir(dir, 0755) == 0 || errno == EEXIST) &&
		       access(dir, W_OK) == 0;
	}
	snprintf(dir, size, "%s/kaf-bench-report-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) != NULL;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 1000;
	const char *keep = argc > 2 ? argv[2] : NULL;
	struct fixture_cell cells[24];
	char dir[512], db_path[600], out[600];
	sqlite3 *db;
	double t;

	if (runs < 1 || !make_dir(keep, dir, sizeof(dir))) {
		fprintf(stderr, "usage: bench_report [RUNS_PER_CELL [KEEP_DIR]]"
			"\n");
		return 1;
	}
	snprintf(db_path, sizeof(db_path), "%s/bench.db", dir);
	snprintf(out, sizeof(out), "%s/report", dir);
	exp3_cells(cells, runs);
	db = fixture_create(db_path, KAF_SOURCE_DIR "/schemas/kaf.sql");
	if (!db || fixture_add_sweep(db, &(struct fixture_sweep){
		"exp3", "paired", runs, 24, cells}) < 0)
		return 1;
	sqlite3_close(db);
	t = best_time(db_path, out);
	printf("kaf report, 24 cells x %d runs (%d runs), gnuplot not run: "
	       "%.0f ms (best of %d; budget %.0f ms)\n", runs, 24 * runs,
	       1e3 * t, ROUNDS, 1e3 * BUDGET_S);
	if (!keep)
		remove_tree(dir);
	return t <= BUDGET_S ? 0 : 1;
}
