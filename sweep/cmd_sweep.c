/*
 * cmd_sweep.c - `kaf sweep`: enumerate a grid, train every run on all
 * cores, store each in SQLite, and summarize.
 */
#include <omp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data.h"
#include "grid.h"
#include "log.h"
#include "report.h"
#include "runner.h"
#include "store.h"

enum {
	F_PRESET, F_SPEC, F_SET, F_RUNS, F_SEED, F_SEEDING, F_THREADS, F_DB,
	F_TRACE, F_REPORT, F_NO_REPORT, F_QUIET, F_HELP, F_COUNT,
};

static const struct kaf_flag sweep_flags[F_COUNT] = {
	[F_PRESET] = {"preset", "NAME", "a study of the protocol: exp1 (activations "
		     "compared), exp2 (learned link), exp3 (divergence grid)"},
	[F_SPEC] = {"spec", "FILE", "a study file: `axis = v1, v2` per "
		    "line, # comments"},
	[F_SET] = {"set", "AXIS=V1,V2", "set an axis's values (repeatable; "
		   "last wins)"},
	[F_RUNS] = {"runs", "N", "runs per cell (default 1000)"},
	[F_SEED] = {"seed", "S", "sweep seed (default 0)"},
	[F_SEEDING] = {"seeding", "MODE", "paired (default: replicate r "
		       "shares its seed across cells) or independent"},
	[F_THREADS] = {"threads", "N", "OpenMP threads (default: all "
		       "cores)"},
	[F_DB] = {"db", "FILE", "SQLite database (default kaf.db)"},
	[F_TRACE] = {"trace", NULL, "also store every epoch's losses"},
	[F_REPORT] = {"report", "DIR", "write the report to DIR when done "
		      "(presets: report/)"},
	[F_NO_REPORT] = {"no-report", NULL, "do not write a report"},
	[F_QUIET] = {"quiet", NULL, "no progress line"},
	[F_HELP] = {"help", NULL, "this help"},
};

struct sweep_opts {
	struct kaf_grid grid;
	const char *db;
	const char *report;
	long threads;
	bool trace, quiet, no_report, help;
};

static void usage(FILE *out)
{
	char axes[512];

	kaf_name_list(kaf_axis_names, KAF_AXIS_COUNT, axes, sizeof(axes));
	fprintf(out, "usage: kaf sweep [flags]\n\n"
		"Train every cell of a grid --runs times on all cores and "
		"store every run in\nSQLite. Without flags: experiment 3 "
		"(24 cells x 1000 runs on boston).\nRerunning the same "
		"command continues an interrupted sweep.\n\n"
		"axes: %s\n\nflags:\n", axes);
	kaf_cli_help(out, sweep_flags, F_COUNT);
}

static int parse_flag(struct sweep_opts *o, int f, const char *v,
		      struct kaf_error *err)
{
	char what[64];

	snprintf(what, sizeof(what), "--%s", sweep_flags[f].name);
	switch (f) {
	case F_SET:
		return kaf_grid_set(&o->grid, v, what, err);
	case F_DB:
		o->db = v;
		return KAF_OK;
	case F_THREADS:
		return kaf_cli_int(v, what, 1, 1024, &o->threads, err);
	case F_TRACE:
		o->trace = true;
		return KAF_OK;
	case F_REPORT:
		o->report = v;
		return KAF_OK;
	case F_NO_REPORT:
		o->no_report = true;
		return KAF_OK;
	case F_QUIET:
		o->quiet = true;
		return KAF_OK;
	case F_HELP:
		o->help = true;
		return KAF_OK;
	}
	return KAF_OK;
}

/* Preset first, then the spec file, then --set and the other flags. */
static int parse_args(int argc, char **argv, struct sweep_opts *o,
		      struct kaf_error *err)
{
	const char *preset = NULL, *spec = NULL, *v;
	const char *keys[F_COUNT] = {0};
	int i = 1, f, rc;

	while ((f = kaf_cli_next(argc, argv, &i, sweep_flags, F_COUNT,
				 "sweep", &v, err)) >= 0) {
		if (f == F_PRESET)
			preset = v;
		else if (f == F_SPEC)
			spec = v;
		else if (f == F_RUNS || f == F_SEED || f == F_SEEDING)
			keys[f] = v;
	}
	if (f == KAF_CLI_ERROR)
		return KAF_EINVAL;
	if (preset && (rc = kaf_grid_preset(&o->grid, preset, err)))
		return rc;
	if (spec && (rc = kaf_grid_load_spec(&o->grid, spec, err)))
		return rc == KAF_EIO ? KAF_EINVAL : rc;
	i = 1;
	while ((f = kaf_cli_next(argc, argv, &i, sweep_flags, F_COUNT,
				 "sweep", &v, err)) >= 0)
		if ((rc = parse_flag(o, f, v, err)))
			return rc;
	for (f = F_RUNS; f <= F_SEEDING; f++) {
		char set[128], what[32];

		if (!keys[f])
			continue;
		snprintf(set, sizeof(set), "%s=%s", sweep_flags[f].name,
			 keys[f]);
		snprintf(what, sizeof(what), "--%s", sweep_flags[f].name);
		if ((rc = kaf_grid_set(&o->grid, set, what, err)))
			return rc;
	}
	if (kaf_grid_cells(&o->grid) * kaf_grid_max_runs(&o->grid) >
	    4000000000L)
		return kaf_error_set(err, KAF_EINVAL, "%ld cells x %ld runs "
				     "is more than 4e9 runs",
				     kaf_grid_cells(&o->grid),
				     kaf_grid_max_runs(&o->grid));
	if (o->trace)
		o->grid.trace = true;
	return KAF_OK;
}

/* ---- checking every cell before any work ---- */

struct loaded {
	struct kaf_dataset *sets[16];
	int count;
};

static const struct kaf_dataset *dataset_of(struct loaded *ld,
					    const char *name,
					    struct kaf_error *err)
{
	for (int i = 0; i < ld->count; i++)
		if (!strcmp(ld->sets[i]->name, name))
			return ld->sets[i];
	if (ld->count == 16 ||
	    kaf_dataset_builtin(name, &ld->sets[ld->count], err))
		return NULL;
	return ld->sets[ld->count++];
}

static int check_cells(const struct kaf_grid *g, struct loaded *ld,
		       const struct kaf_dataset ***out,
		       struct kaf_error *err)
{
	long n = kaf_grid_cells(g);
	const struct kaf_dataset **ds = malloc(sizeof(*ds) * (size_t)n);

	if (!ds)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	for (long i = 0; i < n; i++) {
		struct kaf_cell cell;
		struct kaf_error cerr;

		kaf_grid_cell(g, i, &cell);
		ds[i] = dataset_of(ld, cell.dataset, err);
		if (!ds[i]) {
			free(ds);
			return KAF_EINVAL;
		}
		if (kaf_config_check(&cell.cfg, ds[i], &cerr)) {
			free(ds);
			return kaf_error_set(err, KAF_EINVAL, "cell %ld "
					     "(dataset %s): %s", i,
					     cell.dataset, cerr.msg);
		}
	}
	*out = ds;
	return KAF_OK;
}

/* ---- summary ---- */

static void print_summary(struct kaf_store *st, int64_t sweep_id,
			  const struct kaf_grid *g)
{
	sqlite3_stmt *stmt;
	sqlite3 *db = kaf_store_db(st);

	if (sqlite3_prepare_v2(db, "SELECT * FROM ranking WHERE sweep_id = ?",
			       -1, &stmt, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(stmt, 1, sweep_id);
	printf("%4s", "rank");
	for (int a = 0; a < KAF_AXIS_COUNT; a++)
		if (kaf_grid_varies(g, (enum kaf_axis)a))
			printf("  %-16s", kaf_axis_names[a]);
	printf("  %6s %8s %9s  %s\n", "runs", "diverged", "rate",
	       "95% interval");
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		int cols = sqlite3_column_count(stmt);

		printf("%4d", sqlite3_column_int(stmt, 0));
		for (int a = 0; a < KAF_AXIS_COUNT; a++) {
			if (!kaf_grid_varies(g, (enum kaf_axis)a))
				continue;
			for (int c = 0; c < cols; c++)
				if (!strcmp(sqlite3_column_name(stmt, c),
					    kaf_axis_names[a]))
					printf("  %-16s",
					       sqlite3_column_text(stmt, c));
		}
		for (int c = 0; c < cols; c++) {
			const char *name = sqlite3_column_name(stmt, c);

			if (!strcmp(name, "runs"))
				printf("  %6d", sqlite3_column_int(stmt, c));
			else if (!strcmp(name, "diverged"))
				printf(" %8d", sqlite3_column_int(stmt, c));
			else if (!strcmp(name, "rate"))
				printf(" %9.4f", sqlite3_column_double(stmt, c));
			else if (!strcmp(name, "ci_low"))
				printf("  [%.4f,", sqlite3_column_double(stmt, c));
			else if (!strcmp(name, "ci_high"))
				printf(" %.4f]", sqlite3_column_double(stmt, c));
		}
		printf("\n");
	}
	sqlite3_finalize(stmt);
}

/* ---- the command ---- */

static void on_signal(int sig)
{
	(void)sig;
	kaf_runner_interrupt();
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int run_sweep(struct sweep_opts *o, const struct kaf_dataset **ds,
		     struct kaf_error *err)
{
	struct kaf_store *st = NULL;
	struct kaf_runner_stats stats;
	struct kaf_runner_opts ro = {
		.threads = (int)o->threads,
		.progress = !o->quiet && isatty(STDERR_FILENO),
		.trace = o->grid.trace,
		.link_every = o->grid.link_every,
	};
	int64_t sweep_id;
	bool resumed;
	int rc = kaf_store_open(o->db, &st, err);

	if (rc == KAF_OK)
		rc = kaf_store_sweep(st, &o->grid, ro.threads, &sweep_id,
				     &resumed, err);
	if (rc) {
		kaf_store_close(st);
		return rc == KAF_ENOMEM ? 1 : KAF_EXIT_USAGE;
	}
	kaf_log_info("sweep %lld in %s: %ld cells, %ld runs, %d threads%s",
		     (long long)sweep_id, o->db, kaf_grid_cells(&o->grid),
		     kaf_grid_total_runs(&o->grid), ro.threads,
		     resumed ? ", continuing" : "");
	catch_signals();
	rc = kaf_runner_run(st, &o->grid, ds, &ro, &stats, err);
	kaf_log_info("%ld runs trained and stored in %.2f s (%ld already "
		     "stored), %ld diverged", stats.done, stats.seconds,
		     stats.skipped, stats.diverged);
	if (rc == KAF_EINTR) {
		kaf_log_warn("interrupted: every finished run is stored; run "
			     "the same command again to continue");
		kaf_store_close(st);
		return 130;
	}
	if (rc == KAF_OK)
		rc = kaf_store_finish(st, err);
	if (rc) {
		kaf_store_close(st);
		return 1;
	}
	print_summary(st, sweep_id, &o->grid);
	kaf_store_close(st);
	if (o->report && !o->no_report &&
	    (rc = kaf_report_write(o->db, sweep_id, o->report, err)))
		return rc == KAF_ENOMEM ? 1 : KAF_EXIT_USAGE;
	return 0;
}

int kaf_cmd_sweep(int argc, char **argv)
{
	struct sweep_opts o = {.db = "kaf.db", .threads = omp_get_num_procs()};
	struct loaded ld = {0};
	const struct kaf_dataset **ds = NULL;
	struct kaf_error err;
	int status;

	if (kaf_grid_init(&o.grid, &err)) {
		kaf_log_error("%s", err.msg);
		return 1;
	}
	if (parse_args(argc, argv, &o, &err) ||
	    (!o.help && check_cells(&o.grid, &ld, &ds, &err))) {
		kaf_log_error("%s", err.msg);
		kaf_grid_finish(&o.grid);
		for (int i = 0; i < ld.count; i++)
			kaf_dataset_destroy(ld.sets[i]);
		return KAF_EXIT_USAGE;
	}
	if (o.help) {
		usage(stdout);
		kaf_grid_finish(&o.grid);
		return 0;
	}
	if (!o.report && o.grid.preset[0])
		o.report = "report";
	status = run_sweep(&o, ds, &err);
	if (status && status != 130)
		kaf_log_error("%s", err.msg);
	free(ds);
	for (int i = 0; i < ld.count; i++)
		kaf_dataset_destroy(ld.sets[i]);
	kaf_grid_finish(&o.grid);
	return status;
}
