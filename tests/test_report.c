/*
 * test_report.c - `kaf report` and its modules against databases whose
 * contents are known by construction.
 *
 * tests/report_fixture builds the databases from schemas/kaf.sql; which
 * runs diverge, when and why follows its rules, so every expected count
 * below is recomputed here from those rules, never read back from the
 * report's own SQL. The p-values the report marks cells by are
 * recomputed with stats.h from counts taken from the rules. Tolerances
 * are stated where numbers are compared.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "analysis.h"
#include "cli.h"
#include "plot.h"
#include "report.h"
#include "report_fixture.h"
#include "report_read.h"
#include "stats.h"

#ifndef KAF_SOURCE_DIR
#error "build with -DKAF_SOURCE_DIR=\"<repository root>\""
#endif

#define SCHEMA KAF_SOURCE_DIR "/schemas/kaf.sql"
#define QUERIES KAF_SOURCE_DIR "/schemas/queries/"

/* The paired exp3-like grid: 2 inits x 2 opts x 2 regs, 40 runs each. */
#define RUNS 40
#define NCELLS 8

static const char *const inits[2] = {"xavier_uniform", "kaiming_uniform"};
static const char *const opts[2] = {"sgd", "adam"};
static const char *const regs[2] = {"none", "l2"};

/*
 * Diverged runs by init and opt; equal across regs, so reg has no
 * effect. Chosen so that, against rank 1, some cell has a raw p below
 * 0.05 but a Holm-adjusted one above, in the paired (McNemar) and the
 * independent (Fisher) design alike: the marks must use the adjusted p.
 */
static const int diverging[2][2] = {{2, 8}, {20, 30}};

/* Every database and directory the tests use, under one temp dir. */
struct env {
	char root[256];
	char paired[300], indep[300], other[300], one_axis[300], two[300];
	char no_runs[300], no_sweeps[300], not_sqlite[300], foreign[300];
	char old_version[300], missing[300];
};

static struct env env;

/* ---- helpers ---- */

static void path_in(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", env.root, name);
}

/* Entries of dir, "." and ".." excluded. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

/* Column index of a header name in a CSV; -1 if absent. */
static int csv_column(const char *csv, const char *name)
{
	char field[128];

	for (int c = 0; csv_field(csv, 0, c, field, sizeof(field)); c++)
		if (strcmp(field, name) == 0)
			return c;
	return -1;
}

static long csv_long(const char *csv, int row, const char *name)
{
	char field[128];
	int col = csv_column(csv, name);

	assert_true(col >= 0);
	assert_true(csv_field(csv, row, col, field, sizeof(field)));
	return strtol(field, NULL, 10);
}

/* Redirect fd (1 or 2) into a file; restore returns what was written. */
struct capture {
	int fd, saved;
	char path[300];
};

static void capture_begin(struct capture *c, int fd, const char *name)
{
	int tmp;

	fflush(NULL);
	c->fd = fd;
	path_in(c->path, sizeof(c->path), name);
	tmp = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(tmp >= 0);
	c->saved = dup(fd);
	dup2(tmp, fd);
	close(tmp);
}

static char *capture_end(struct capture *c)
{
	fflush(NULL);
	dup2(c->saved, c->fd);
	close(c->saved);
	return fixture_slurp(c->path);
}

static int run_report(const char *db, long long sweep, const char *out,
		      bool plots, struct kaf_error *err)
{
	struct kaf_report_opts o = {
		.db_path = db, .sweep_id = sweep, .out_dir = out,
		.no_plots = !plots,
	};

	return kaf_report_run(&o, NULL, err);
}

static void report_ok(const char *db, const char *out, bool plots)
{
	struct kaf_error err = {""};

	if (run_report(db, 0, out, plots, &err))
		fail_msg("report of %s failed: %s", db, err.msg);
}

static int cmd(int argc, const char **argv)
{
	return kaf_cmd_report(argc, (char **)argv);
}

/* ---- fixtures ---- */

static int cell_of(int i, int o, int r)
{
	return i * 4 + o * 2 + r;
}

static void paired_cells(struct fixture_cell *cells)
{
	for (int i = 0; i < 2; i++)
		for (int o = 0; o < 2; o++)
			for (int r = 0; r < 2; r++)
				cells[cell_of(i, o, r)] = fixture_cell_exp3(
					inits[i], opts[o], regs[r],
					diverging[i][o]);
}

static int build(const char *path, const struct fixture_sweep *s, int n)
{
	sqlite3 *db = fixture_create(path, SCHEMA);
	int rc = db ? 0 : -1;

	for (int i = 0; i < n && !rc; i++)
		rc = fixture_add_sweep(db, &s[i]) > 0 ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

static int sql_file(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db) == SQLITE_OK &&
		 sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;

	sqlite3_close(db);
	return rc;
}

/* A grid whose varying axes are not init/opt/reg: kernel x lr. */
static int build_other(void)
{
	static const char *const kernels[2] = {"naive", "stable"};
	static const double lrs[3] = {1e-5, 1e-3, 1e-1};
	struct fixture_cell cells[6];

	/* naive: 10, 20, 30 of 40 diverge as lr grows; stable: none. */
	for (int k = 0; k < 2; k++) {
		for (int l = 0; l < 3; l++) {
			struct fixture_cell *c = &cells[k * 3 + l];

			*c = fixture_cell_exp3("xavier_uniform", "sgd", "none",
					       k == 0 ? 10 + 10 * l : 0);
			c->kernel = kernels[k];
			c->lr = lrs[l];
		}
	}
	return build(env.other, &(struct fixture_sweep){
		"custom", "paired", RUNS, 6, cells}, 1);
}

static int build_small(void)
{
	struct fixture_cell one[2] = {
		fixture_cell_exp3("xavier_uniform", "adam", "none", 5),
		fixture_cell_exp3("kaiming_uniform", "adam", "none", 30),
	};
	struct fixture_cell empty = fixture_cell_exp3("xavier_uniform", "sgd",
						      "none", 0);
	struct fixture_sweep two[2] = {
		{"first", "paired", 10, 2, one},
		{"second", "independent", 20, 2, one},
	};
	int rc = build(env.one_axis, &(struct fixture_sweep){
		NULL, "paired", RUNS, 2, one}, 1);

	rc |= build(env.two, two, 2);
	rc |= build(env.no_runs, &(struct fixture_sweep){
		NULL, "paired", 0, 1, &empty}, 1);
	rc |= build(env.no_sweeps, NULL, 0);
	return rc;
}

static int build_bad(void)
{
	FILE *f = fopen(env.not_sqlite, "w");
	int rc;

	if (!f)
		return -1;
	fputs("rank,init\n1,xavier_uniform\n", f);
	fclose(f);
	rc = sql_file(env.foreign, "CREATE TABLE t (x); "
		      "INSERT INTO t VALUES (1);");
	rc |= build(env.old_version, NULL, 0);
	rc |= sql_file(env.old_version, "PRAGMA user_version = 2;");
	return rc;
}

/* The temporary root of every file, under $TMPDIR when it is set. */
static int make_root(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(env.root, sizeof(env.root), "%s/kaf-test-report-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(env.root) ? 0 : -1;
}

static int setup(void **state)
{
	struct fixture_cell cells[NCELLS];

	(void)state;
	if (make_root())
		return -1;
	path_in(env.paired, sizeof(env.paired), "paired.db");
	path_in(env.indep, sizeof(env.indep), "independent.db");
	path_in(env.other, sizeof(env.other), "other.db");
	path_in(env.one_axis, sizeof(env.one_axis), "one_axis.db");
	path_in(env.two, sizeof(env.two), "two.db");
	path_in(env.no_runs, sizeof(env.no_runs), "no_runs.db");
	path_in(env.no_sweeps, sizeof(env.no_sweeps), "no_sweeps.db");
	path_in(env.not_sqlite, sizeof(env.not_sqlite), "not_sqlite.db");
	path_in(env.foreign, sizeof(env.foreign), "foreign.db");
	path_in(env.old_version, sizeof(env.old_version), "v2.db");
	path_in(env.missing, sizeof(env.missing), "missing.db");
	paired_cells(cells);
	if (build(env.paired, &(struct fixture_sweep){
		"exp3", "paired", RUNS, NCELLS, cells}, 1) ||
	    build(env.indep, &(struct fixture_sweep){
		"exp3", "independent", RUNS, NCELLS, cells}, 1) ||
	    build_other() || build_small() || build_bad()) {
		fixture_remove_tree(env.root);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fixture_remove_tree(env.root);
	return 0;
}

/* ---- what every report holds ---- */

static const char *const csv_names[] = {
	"sweep.csv", "ranking.csv", "factors.csv", "factor_levels.csv",
	"causes.csv", "divergence_steps.csv", "causes_by_value.csv",
	"survival.csv", "val_loss.csv",
};

static const char *const sections[] = {
	"Summary", "Sweep", "Ranking", "Factor effects",
	"Causes of divergence", "Survival",
	"Validation loss of the runs that survived", "Methods",
};

static void test_report_writes_every_section(void **state)
{
	struct kaf_report_opts o = {.db_path = env.paired, .no_plots = true};
	struct kaf_report_result res;
	struct kaf_error err = {""};
	char out[300], want[400];
	char *md, *html;

	(void)state;
	path_in(out, sizeof(out), "sections");
	o.out_dir = out;
	assert_int_equal(kaf_report_run(&o, &res, &err), KAF_OK);
	assert_int_equal(res.sweep_id, 1);
	assert_true(res.nfiles >= 11);
	snprintf(want, sizeof(want), "%s/report.md", out);
	assert_string_equal(res.files[0], want);
	kaf_report_result_finish(&res);
	md = read_out(out, "report.md");
	html = read_out(out, "report.html");
	assert_true(strncmp(md, "# kaf report: sweep 1 (exp3)\n", 29) == 0);
	for (size_t i = 0; i < sizeof(sections) / sizeof(*sections); i++) {
		snprintf(want, sizeof(want), "\n## %s\n", sections[i]);
		assert_non_null(strstr(md, want));
		snprintf(want, sizeof(want), "<h2>%s</h2>", sections[i]);
		assert_non_null(strstr(html, want));
	}
	/* Self-contained: nothing fetched from elsewhere. */
	assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	assert_null(strstr(html, "src=\"http"));
	assert_null(strstr(html, "<link"));
	for (size_t i = 0; i < sizeof(csv_names) / sizeof(*csv_names); i++)
		assert_true(exists(out, csv_names[i]));
	assert_false(exists(out, "plots/rate_per_cell.png"));
	assert_true(exists(out, "plots/rate_per_cell.gp"));
	free(md);
	free(html);
}

/* Wilson's interval in closed form, apart from stats.c's root finding. */
static void wilson_closed(long k, long n, double *lo, double *hi)
{
	const double z = 1.959963984540054, z2 = z * z;
	double centre = (k + z2 / 2) / (n + z2);
	double half = z * sqrt((double)k * (n - k) / n + z2 / 4) / (n + z2);

	*lo = fmax(0, centre - half);
	*hi = fmin(1, centre + half);
}

/* Rank order: 30, 30, 20, 20, 8, 8, 2, 2 diverged; ties by index. */
static const int rank_order[NCELLS] = {6, 7, 4, 5, 2, 3, 0, 1};
static const int ranks[NCELLS] = {1, 1, 3, 3, 5, 5, 7, 7};

static void test_ranking_rows_order_counts_and_intervals(void **state)
{
	struct kaf_analysis *an = load(env.paired);
	char out[300], field[64];
	char *csv;

	(void)state;
	assert_int_equal(an->nranked, NCELLS);
	for (int i = 0; i < NCELLS; i++) {
		const struct kaf_cell *c = &an->cells[an->ranking[i]];
		int idx = rank_order[i];
		long k = diverging[idx / 4][idx / 2 % 2];
		double lo, hi;

		assert_int_equal(c->cell_index, idx);
		assert_int_equal(c->rank, ranks[i]);
		assert_int_equal(c->runs, RUNS);
		assert_int_equal(c->diverged, k);
		wilson_closed(k, RUNS, &lo, &hi);
		/* Two algebraically equal forms: 1e-12 relative. */
		assert_true(fabs(c->ci.lo - lo) <= 1e-12 * lo);
		assert_true(fabs(c->ci.hi - hi) <= 1e-12 * hi);
	}
	path_in(out, sizeof(out), "ranking");
	report_ok(env.paired, out, false);
	csv = read_out(out, "ranking.csv");
	assert_int_equal(csv_rows(csv), NCELLS);
	assert_true(strncmp(csv, "rank,init,opt,reg,runs,diverged,", 32) == 0);
	for (int i = 0; i < NCELLS; i++) {
		int idx = rank_order[i];

		assert_int_equal(csv_long(csv, i + 1, "rank"), ranks[i]);
		assert_int_equal(csv_long(csv, i + 1, "cell_index"), idx);
		assert_int_equal(csv_long(csv, i + 1, "diverged"),
				 diverging[idx / 4][idx / 2 % 2]);
		assert_true(csv_field(csv, i + 1, csv_column(csv, "init"),
				      field, sizeof(field)));
		assert_string_equal(field, inits[idx / 4]);
		assert_true(csv_field(csv, i + 1, csv_column(csv, "reg"),
				      field, sizeof(field)));
		assert_string_equal(field, regs[idx % 2]);
	}
	free(csv);
	kaf_analysis_destroy(an);
}

/* Expected p of every ranked cell against the top one, then Holm. */
static void expected_p(bool paired, double *p, double *adj)
{
	int top = rank_order[0];
	long kt = diverging[top / 4][top / 2 % 2];

	for (int i = 1; i < NCELLS; i++) {
		int c = rank_order[i];
		long kc = diverging[c / 4][c / 2 % 2], b = 0, cc = 0;
		long counts[4] = {kt, RUNS - kt, kc, RUNS - kc};

		for (int r = 0; r < RUNS; r++) {
			bool dt = fixture_diverged(top, r, RUNS, (int)kt);
			bool dc = fixture_diverged(c, r, RUNS, (int)kc);

			b += dt && !dc;
			cc += dc && !dt;
		}
		if (paired)
			assert_int_equal(kaf_stats_mcnemar(b, cc, &p[i - 1],
							   NULL), KAF_OK);
		else
			assert_int_equal(kaf_stats_fisher(counts, &p[i - 1],
							  NULL), KAF_OK);
	}
	assert_int_equal(kaf_stats_holm(p, adj, NCELLS - 1, NULL), KAF_OK);
}

static void check_marks(const char *db, bool paired, const char *out_name)
{
	struct kaf_analysis *an = load(db);
	double p[NCELLS - 1], adj[NCELLS - 1];
	int marked = 0, unmarked = 0, borderline = 0;
	char out[300];
	char *csv;

	expected_p(paired, p, adj);
	path_in(out, sizeof(out), out_name);
	report_ok(db, out, false);
	csv = read_out(out, "ranking.csv");
	assert_int_equal(csv_long(csv, 1, "not_different_from_top"), 1);
	for (int i = 1; i < NCELLS; i++) {
		const struct kaf_cell *c = &an->cells[an->ranking[i]];
		bool same = adj[i - 1] >= 0.05;

		/* Same inputs, same functions: equal to rounding, 1e-12. */
		assert_true(fabs(c->p - p[i - 1]) <= 1e-12 * p[i - 1]);
		assert_true(fabs(c->p_holm - adj[i - 1]) <= 1e-12 * adj[i - 1]);
		assert_int_equal(c->same_as_top, same);
		assert_int_equal(csv_long(csv, i + 1, "not_different_from_top"),
				 same);
		marked += same;
		unmarked += !same;
		borderline += p[i - 1] < 0.05 && same;
	}
	/* The fixture is built so that every case occurs. */
	assert_true(marked > 0 && unmarked > 0 && borderline > 0);
	assert_int_equal(csv_column(csv, "pairs") >= 0, paired);
	free(csv);
	kaf_analysis_destroy(an);
}

static void test_ranking_marks_agree_with_mcnemar(void **state)
{
	(void)state;
	check_marks(env.paired, true, "marks_paired");
}

static void test_ranking_marks_agree_with_fisher(void **state)
{
	(void)state;
	check_marks(env.indep, false, "marks_independent");
}

/* ---- factor effects ---- */

static void test_factors_find_the_axis_that_matters(void **state)
{
	struct kaf_analysis *an = load(env.paired);
	const struct kaf_factor *init = &an->factors[KAF_COL_INIT];
	const struct kaf_factor *reg = &an->factors[KAF_COL_REG];
	char out[300];
	char *md;

	(void)state;
	/* init 12.5 % vs 62.5 %, opt 27.5 % vs 47.5 %, reg 37.5 % both. */
	assert_int_equal(an->nvarying, 3);
	assert_int_equal(an->varying[0], KAF_COL_INIT);
	assert_int_equal(an->varying[1], KAF_COL_OPT);
	assert_int_equal(an->varying[2], KAF_COL_REG);
	assert_int_equal(init->levels[0].diverged, 2 + 8 + 2 + 8);
	assert_int_equal(init->levels[1].diverged, 20 + 30 + 20 + 30);
	assert_true(init->p_holm < 1e-9);
	assert_true(reg->chi2.p == 1.0 && reg->chi2.cramer_v == 0.0);
	path_in(out, sizeof(out), "factors");
	report_ok(env.paired, out, false);
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "- initializer: xavier_uniform 12.5 % vs "
			       "kaiming_uniform 62.5 % (rate ratio 0.20), "
			       "p < 1e-9"));
	assert_non_null(strstr(md, "- regularizer: no detectable effect "
			       "(none 37.5 %, l2 37.5 %; p = 1.000)"));
	assert_null(strstr(md, "initializer: no detectable effect"));
	assert_non_null(strstr(md, "the top 4 cells all have initializer "
			       "kaiming_uniform; the top 2 cells all have "
			       "optimizer adam."));
	free(md);
	kaf_analysis_destroy(an);
}

/* ---- causes ---- */

static void expected_causes(long *by_cause, long by_step[4][3])
{
	static const char *const causes[3] = {
		"kernel_underflow", "nonfinite_loss", "nonfinite_grad",
	};

	for (int c = 0; c < NCELLS; c++) {
		int k = diverging[c / 4][c / 2 % 2];

		for (int r = 0; r < RUNS; r++) {
			int which = 0;

			if (!fixture_diverged(c, r, RUNS, k))
				continue;
			while (strcmp(causes[which], fixture_cause(r)))
				which++;
			by_cause[which]++;
			by_step[fixture_step(r)][which]++;
		}
	}
}

static void test_causes_counts_by_cause_and_step(void **state)
{
	long by_cause[3] = {0}, by_step[4][3] = {{0}};
	char out[300];
	char *causes, *steps;

	(void)state;
	expected_causes(by_cause, by_step);
	path_in(out, sizeof(out), "causes");
	report_ok(env.paired, out, false);
	causes = read_out(out, "causes.csv");
	steps = read_out(out, "divergence_steps.csv");
	assert_int_equal(csv_rows(causes), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(csv_long(causes, i + 1, "runs"), by_cause[i]);
	assert_true(strncmp(steps, "step,kernel_underflow,nonfinite_loss,"
			    "nonfinite_grad,total\n", 51) == 0);
	/* Steps 0 and 3 only: one row each. */
	assert_int_equal(csv_rows(steps), 2);
	assert_int_equal(csv_long(steps, 1, "step"), 0);
	assert_int_equal(csv_long(steps, 2, "step"), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(csv_long(steps, 1, i == 0 ? "kernel_underflow"
					  : i == 1 ? "nonfinite_loss" :
					  "nonfinite_grad"), by_step[0][i]);
		assert_int_equal(csv_long(steps, 2, i == 0 ? "kernel_underflow"
					  : i == 1 ? "nonfinite_loss" :
					  "nonfinite_grad"), by_step[3][i]);
	}
	assert_int_equal(csv_long(steps, 1, "total") + csv_long(steps, 2,
								"total"),
			 by_cause[0] + by_cause[1] + by_cause[2]);
	free(causes);
	free(steps);
}

/* ---- plots ---- */

static bool png_signature(const char *path)
{
	static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r',
					     '\n', 0x1a, '\n'};
	unsigned char buf[8] = {0};
	FILE *f = fopen(path, "rb");
	bool ok = f && fread(buf, 1, 8, f) == 8 && !memcmp(buf, sig, 8);

	if (f)
		fclose(f);
	return ok;
}

static void test_plots_are_valid_png_and_svg(void **state)
{
	static const char *const stems[4] = {
		"rate_per_cell", "heatmap", "survival", "val_loss",
	};
	char gnuplot[1024], out[300], path[512];
	struct kaf_error err;
	char *html;

	(void)state;
	if (kaf_plot_find_gnuplot(gnuplot, sizeof(gnuplot), &err)) {
		print_message("gnuplot not available: %s\n", err.msg);
		skip();
	}
	path_in(out, sizeof(out), "plots");
	report_ok(env.paired, out, true);
	for (int i = 0; i < 4; i++) {
		char *svg;

		snprintf(path, sizeof(path), "%s/plots/%s.png", out, stems[i]);
		assert_true(png_signature(path));
		assert_true(kaf_plot_is_png(path));
		snprintf(path, sizeof(path), "%s/plots/%s.svg", out, stems[i]);
		svg = fixture_slurp(path);
		assert_non_null(svg);
		assert_non_null(strstr(svg, "<svg"));
		assert_non_null(strstr(svg, "</svg>"));
		assert_true(kaf_plot_is_svg(path));
		free(svg);
	}
	html = read_out(out, "report.html");
	/* base64 of the PNG signature */
	assert_non_null(strstr(html, "src=\"data:image/png;base64,"
			       "iVBORw0KGgo"));
	assert_null(strstr(html, "Not drawn"));
	free(html);
}

static void test_plots_checks_reject_other_files(void **state)
{
	(void)state;
	assert_false(kaf_plot_is_png(env.not_sqlite));
	assert_false(kaf_plot_is_svg(env.not_sqlite));
	assert_false(kaf_plot_is_png(env.missing));
}

static void test_plots_skipped_when_gnuplot_is_missing(void **state)
{
	struct capture cap;
	struct kaf_error err = {""};
	char out[300], missing[320];
	char *log, *md;
	int rc, lines = 0;

	(void)state;
	path_in(out, sizeof(out), "no_gnuplot");
	snprintf(missing, sizeof(missing), "%s/bin/gnuplot", env.root);
	setenv("KAF_GNUPLOT", missing, 1);
	capture_begin(&cap, STDERR_FILENO, "stderr.txt");
	rc = run_report(env.paired, 0, out, true, &err);
	log = capture_end(&cap);
	unsetenv("KAF_GNUPLOT");
	assert_int_equal(rc, KAF_OK);
	for (const char *p = log; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 1);
	assert_non_null(strstr(log, "plots skipped (rate_per_cell, heatmap, "
			       "survival, val_loss)"));
	assert_non_null(strstr(log, missing));
	assert_non_null(strstr(log, "apt-get install gnuplot-nox"));
	assert_true(exists(out, "ranking.csv"));
	assert_true(exists(out, "plots/survival.gp"));
	assert_false(exists(out, "plots/survival.png"));
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "Not drawn: gnuplot was not found"));
	free(md);
	free(log);
}

/* ---- bad input: one clear error, exit status 2, nothing touched ---- */

/* An output directory holding an earlier report.md. */
static void old_report(const char *out)
{
	char path[512];
	FILE *f;

	mkdir(out, 0755);
	snprintf(path, sizeof(path), "%s/report.md", out);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("old report\n", f);
	fclose(f);
}

static void assert_old_report(const char *out)
{
	char *md = read_out(out, "report.md");

	assert_string_equal(md, "old report\n");
	assert_int_equal(count_entries(out), 1);
	free(md);
}

/* The command's exit status, its stderr checked for one error line. */
static int cmd_status(const char *db, const char *sweep, const char *out,
		      const char *want)
{
	const char *argv[7] = {"report", "--db", db, "--out", out};
	int argc = 5, rc;
	struct capture cap;
	char *log;

	if (sweep) {
		argv[argc++] = "--sweep";
		argv[argc++] = sweep;
	}
	capture_begin(&cap, STDERR_FILENO, "cmd_stderr.txt");
	rc = cmd(argc, argv);
	log = capture_end(&cap);
	assert_non_null(strstr(log, want));
	assert_non_null(strchr(log, '\n'));
	assert_string_equal(strchr(log, '\n'), "\n");
	free(log);
	return rc;
}

static void check_bad(const char *db, long long sweep, int code,
		      const char *want)
{
	struct kaf_error err = {""};
	char out[300], id[32];

	path_in(out, sizeof(out), "bad_out");
	fixture_remove_tree(out);
	old_report(out);
	assert_int_equal(run_report(db, sweep, out, true, &err), code);
	if (!strstr(err.msg, want))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
	assert_old_report(out);
	snprintf(id, sizeof(id), "%lld", sweep);
	assert_int_equal(cmd_status(db, sweep ? id : NULL, out, want),
			 KAF_EXIT_USAGE);
	assert_old_report(out);
}

static void test_bad_input_sweep_without_runs(void **state)
{
	(void)state;
	check_bad(env.no_runs, 0, KAF_EINVAL, "sweep 1 in database");
	check_bad(env.no_runs, 0, KAF_EINVAL, "has no runs yet");
}

static void test_bad_input_database_without_sweeps(void **state)
{
	(void)state;
	check_bad(env.no_sweeps, 0, KAF_EINVAL, "has no sweeps yet");
}

static void test_bad_input_unknown_sweep(void **state)
{
	(void)state;
	check_bad(env.paired, 99, KAF_EINVAL, "sweep 99 not found");
	check_bad(env.two, 3, KAF_EINVAL, "its sweeps: 1, 2");
}

static void test_bad_input_not_sqlite(void **state)
{
	char want[400];

	(void)state;
	snprintf(want, sizeof(want), "\"%s\" is not a kaf database: it is "
		 "not an SQLite file", env.not_sqlite);
	check_bad(env.not_sqlite, 0, KAF_EDB, want);
}

static void test_bad_input_sqlite_without_kaf_id(void **state)
{
	(void)state;
	check_bad(env.foreign, 0, KAF_EDB, "its application_id is 0");
}

static void test_bad_input_other_schema_version(void **state)
{
	(void)state;
	check_bad(env.old_version, 0, KAF_EDB, "schema version 2");
}

static void test_bad_input_missing_database(void **state)
{
	(void)state;
	check_bad(env.missing, 0, KAF_EIO, "No such file or directory");
	assert_int_equal(access(env.missing, F_OK), -1);
}

static void test_bad_input_unwritable_output(void **state)
{
	struct kaf_error err = {""};
	char under_file[400], locked[300];

	(void)state;
	/* A file where the directory should be, or above it. */
	assert_int_equal(run_report(env.paired, 0, env.not_sqlite, false,
				    &err), KAF_EIO);
	assert_non_null(strstr(err.msg, env.not_sqlite));
	snprintf(under_file, sizeof(under_file), "%s/report", env.not_sqlite);
	assert_int_equal(run_report(env.paired, 0, under_file, false, &err),
			 KAF_EIO);
	assert_non_null(strstr(err.msg, "cannot create output directory"));
	assert_int_equal(cmd_status(env.paired, NULL, under_file,
				    "cannot create output directory"),
			 KAF_EXIT_USAGE);
	/* Permissions bind only when not running as root. */
	if (geteuid() != 0) {
		path_in(locked, sizeof(locked), "locked");
		old_report(locked);
		chmod(locked, 0555);
		assert_int_equal(run_report(env.paired, 0, locked, false,
					    &err), KAF_EIO);
		assert_non_null(strstr(err.msg, locked));
		chmod(locked, 0755);
		assert_old_report(locked);
	}
}

/* A failure after everything was generated still changes nothing. */
static void test_report_keeps_old_files_when_it_fails(void **state)
{
	struct kaf_error err = {""};
	char out[300], path[400];
	FILE *f;
	char *md;

	(void)state;
	path_in(out, sizeof(out), "in_the_way");
	report_ok(env.paired, out, false);
	snprintf(path, sizeof(path), "%s/report.md", out);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("old report\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/causes.csv", out);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(run_report(env.paired, 0, out, false, &err), KAF_EIO);
	assert_non_null(strstr(err.msg, "causes.csv"));
	md = read_out(out, "report.md");
	assert_string_equal(md, "old report\n");
	free(md);
	/* No staging directory left behind. */
	{
		DIR *d = opendir(out);
		struct dirent *e;

		while ((e = readdir(d)))
			assert_null(strstr(e->d_name, ".kaf-report"));
		closedir(d);
	}
}

/* ---- any grid ---- */

static void test_report_follows_the_axes_that_vary(void **state)
{
	struct kaf_analysis *an = load(env.other);
	char out[300];
	char *csv, *md;

	(void)state;
	assert_int_equal(an->nvarying, 2);
	assert_int_equal(an->factors[KAF_COL_LR].nlevels, 3);
	/* Numeric values sort as numbers and keep distinct names. */
	assert_string_equal(an->factors[KAF_COL_LR].levels[0].name, "1e-05");
	assert_string_equal(an->factors[KAF_COL_LR].levels[2].name, "0.1");
	path_in(out, sizeof(out), "other_axes");
	report_ok(env.other, out, false);
	csv = read_out(out, "ranking.csv");
	assert_true(strncmp(csv, "rank,kernel,lr,runs,diverged,", 29) == 0);
	free(csv);
	csv = read_out(out, "factor_levels.csv");
	assert_non_null(strstr(csv, "\nkernel,naive,120,60,"));
	assert_non_null(strstr(csv, "\nlr,0.1,80,30,"));
	assert_null(strstr(csv, "init"));
	free(csv);
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "| rank | kernel | learning rate | runs |"));
	assert_null(strstr(md, "| initializer |"));
	assert_non_null(strstr(md, "- kernel: naive 50.0 % vs stable 0.0 %"));
	free(md);
	kaf_analysis_destroy(an);
}

static void test_report_defaults_to_the_latest_sweep(void **state)
{
	struct kaf_analysis *an = load(env.two);
	struct kaf_error err;

	(void)state;
	assert_int_equal(an->sweep_id, 2);
	assert_false(an->paired);
	assert_int_equal(an->runs, 2 * 20);
	kaf_analysis_destroy(an);
	assert_int_equal(kaf_analysis_load(env.two, 1, &an, &err), KAF_OK);
	assert_int_equal(an->sweep_id, 1);
	assert_true(an->paired);
	assert_int_equal(an->runs, 2 * 10);
	kaf_analysis_destroy(an);
}

static void test_report_removes_files_of_an_earlier_report(void **state)
{
	char out[300];
	char *md;

	(void)state;
	path_in(out, sizeof(out), "stale");
	report_ok(env.paired, out, false);
	assert_true(exists(out, "plots/heatmap.gp"));
	assert_true(exists(out, "causes_by_value.csv"));
	/* Only init varies now: no heat map. */
	report_ok(env.one_axis, out, false);
	assert_false(exists(out, "plots/heatmap.gp"));
	assert_false(exists(out, "plots/heatmap.dat"));
	assert_true(exists(out, "plots/survival.gp"));
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "a heat map needs two axes that vary; "
			       "this sweep has 1"));
	assert_non_null(strstr(md, "| rank | initializer | runs |"));
	free(md);
}

/* ---- degenerate sweeps ---- */

/* Report db with plots when gnuplot exists; no figure may fail. */
static char *report_md(const char *db, const char *name)
{
	struct capture cap;
	char out[300];
	char *log;

	path_in(out, sizeof(out), name);
	capture_begin(&cap, STDERR_FILENO, "degenerate_stderr.txt");
	report_ok(db, out, true);
	log = capture_end(&cap);
	if (strstr(log, "not drawn"))
		fail_msg("%s", log);
	free(log);
	return read_out(out, "report.md");
}

static void test_report_handles_degenerate_sweeps(void **state)
{
	struct fixture_cell one = fixture_cell_exp3("xavier_uniform", "adam",
						    "none", 3);
	struct fixture_cell none[2] = {
		fixture_cell_exp3("xavier_uniform", "sgd", "none", 0),
		fixture_cell_exp3("kaiming_uniform", "sgd", "none", 0),
	};
	struct fixture_cell all[2] = {
		fixture_cell_exp3("xavier_uniform", "sgd", "none", RUNS),
		fixture_cell_exp3("xavier_uniform", "adam", "none", RUNS),
	};
	char path[300];
	char *md;

	(void)state;
	path_in(path, sizeof(path), "single.db");
	assert_int_equal(build(path, &(struct fixture_sweep){
		NULL, "paired", RUNS, 1, &one}, 1), 0);
	md = report_md(path, "single");
	assert_non_null(strstr(md, "Only one configuration was run"));
	assert_non_null(strstr(md, "Only one cell has runs"));
	free(md);
	path_in(path, sizeof(path), "nothing_diverged.db");
	assert_int_equal(build(path, &(struct fixture_sweep){
		NULL, "independent", RUNS, 2, none}, 1), 0);
	md = report_md(path, "nothing_diverged");
	assert_non_null(strstr(md, "- initializer: no detectable effect "
			       "(xavier_uniform 0.0 %, kaiming_uniform 0.0 %; "
			       "p = 1.000)"));
	assert_non_null(strstr(md, "No run diverged."));
	free(md);
	path_in(path, sizeof(path), "all_diverged.db");
	assert_int_equal(build(path, &(struct fixture_sweep){
		NULL, "paired", RUNS, 2, all}, 1), 0);
	md = report_md(path, "all_diverged");
	assert_non_null(strstr(md, "no run survived with a finite "
			       "validation loss"));
	free(md);
}

static void test_report_marks_an_unfinished_sweep(void **state)
{
	struct fixture_cell cells[NCELLS];
	struct kaf_analysis *an;
	char path[300], out[300];
	char *md;

	(void)state;
	paired_cells(cells);
	path_in(path, sizeof(path), "unfinished.db");
	assert_int_equal(build(path, &(struct fixture_sweep){
		"exp3", "paired", RUNS, NCELLS, cells}, 1), 0);
	assert_int_equal(sql_file(path, "DELETE FROM run WHERE cell_id = 2; "
				  "DELETE FROM run WHERE cell_id = 3 AND "
				  "replicate >= 30; UPDATE sweep SET "
				  "finished_at = NULL;"), 0);
	an = load(path);
	assert_int_equal(an->nranked, NCELLS - 1);
	assert_int_equal(an->cells[1].rank, 0);
	assert_int_equal(an->cells[2].runs, 30);
	kaf_analysis_destroy(an);
	path_in(out, sizeof(out), "unfinished");
	report_ok(path, out, false);
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "The sweep has not finished: 2 of its 8 "
			       "cells have fewer runs than asked for."));
	assert_non_null(strstr(md, "1 cell has no runs yet and is not "
			       "ranked."));
	free(md);
}

/* ---- the database is only read ---- */

static void test_report_never_writes_the_database(void **state)
{
	char *before = fixture_slurp(env.paired), *after;
	struct stat st0, st1;
	char out[300];

	(void)state;
	assert_int_equal(stat(env.paired, &st0), 0);
	path_in(out, sizeof(out), "read_only");
	report_ok(env.paired, out, false);
	after = fixture_slurp(env.paired);
	assert_int_equal(stat(env.paired, &st1), 0);
	assert_int_equal(st0.st_size, st1.st_size);
	assert_memory_equal(before, after, (size_t)st0.st_size);
	assert_true(st0.st_mtim.tv_sec == st1.st_mtim.tv_sec &&
		    st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec);
	free(before);
	free(after);
}

/* A sweep writing in WAL mode: the report sees the last commit. */
static void test_report_reads_while_a_sweep_writes(void **state)
{
	struct fixture_cell cells[NCELLS];
	struct kaf_analysis *an = NULL;
	struct kaf_error err = {""};
	char path[300];
	sqlite3 *db;

	(void)state;
	paired_cells(cells);
	path_in(path, sizeof(path), "wal.db");
	assert_int_equal(build(path, &(struct fixture_sweep){
		"exp3", "paired", RUNS, NCELLS, cells}, 1), 0);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL; "
				      "BEGIN IMMEDIATE; INSERT INTO run "
				      "(cell_id, replicate, seed, diverged, "
				      "cause, steps, zero_rows, wall_us) "
				      "VALUES (1, 999, 0, 1, 'grad_limit', 1, "
				      "0, 1)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(kaf_analysis_load(path, 0, &an, &err), KAF_OK);
	assert_int_equal(an->runs, NCELLS * RUNS);
	assert_int_equal(an->ncauses, 3);
	kaf_analysis_destroy(an);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

/* ---- the ready queries in schemas/queries ---- */

static sqlite3_stmt *query(sqlite3 **db, const char *file)
{
	char path[512];
	sqlite3_stmt *st = NULL;
	char *sql;

	snprintf(path, sizeof(path), QUERIES "%s", file);
	sql = fixture_slurp(path);
	assert_non_null(sql);
	assert_int_equal(sqlite3_open_v2(env.paired, db, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(*db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", file, sqlite3_errmsg(*db));
	free(sql);
	return st;
}

static const char *text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static void test_queries_ranking_lists_the_latest_sweep(void **state)
{
	sqlite3 *db;
	sqlite3_stmt *st = query(&db, "ranking.sql");
	int row = 0;

	(void)state;
	assert_string_equal(sqlite3_column_name(st, 1), "initializer");
	assert_string_equal(sqlite3_column_name(st, 4), "divergence_count");
	while (sqlite3_step(st) == SQLITE_ROW) {
		int idx = rank_order[row];

		assert_int_equal(sqlite3_column_int(st, 0), ranks[row]);
		assert_string_equal(text(st, 1), inits[idx / 4]);
		assert_string_equal(text(st, 2), opts[idx / 2 % 2]);
		assert_string_equal(text(st, 3), regs[idx % 2]);
		assert_int_equal(sqlite3_column_int(st, 4),
				 diverging[idx / 4][idx / 2 % 2]);
		assert_true(fabs(sqlite3_column_double(st, 5) -
				 diverging[idx / 4][idx / 2 % 2] /
				 (double)RUNS) < 1e-12);
		row++;
	}
	assert_int_equal(row, NCELLS);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void factor_rows(const char *axis, const char *const *names,
			const long *diverged)
{
	sqlite3 *db;
	sqlite3_stmt *st = query(&db, "factor_effect.sql");
	int row = 0;

	if (axis)
		sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":axis"),
				  axis, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		double lo, hi;

		assert_string_equal(text(st, 0), axis ? axis : "init");
		assert_string_equal(text(st, 1), names[row]);
		assert_int_equal(sqlite3_column_int(st, 2), 4 * RUNS);
		assert_int_equal(sqlite3_column_int(st, 3), diverged[row]);
		wilson_closed(diverged[row], 4 * RUNS, &lo, &hi);
		/* Rounded to 4 decimals by the query. */
		assert_true(fabs(sqlite3_column_double(st, 5) - lo) <= 5e-5);
		assert_true(fabs(sqlite3_column_double(st, 6) - hi) <= 5e-5);
		row++;
	}
	assert_int_equal(row, 2);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_queries_factor_effect_pools_one_axis(void **state)
{
	(void)state;
	factor_rows(NULL, inits, (const long[]){20, 100});
	factor_rows("opt", opts, (const long[]){44, 76});
	factor_rows("reg", regs, (const long[]){60, 60});
}

static void test_queries_diverged_at_step0_lists_runs_and_causes(void **state)
{
	long by_cause[3] = {0}, by_step[4][3] = {{0}};
	sqlite3 *db;
	sqlite3_stmt *st = query(&db, "diverged_at_step0.sql");
	int prev_cell = -1, prev_rep = -1;
	long rows = 0;

	(void)state;
	expected_causes(by_cause, by_step);
	assert_string_equal(sqlite3_column_name(st, 6), "cause");
	while (sqlite3_step(st) == SQLITE_ROW) {
		int cell = sqlite3_column_int(st, 0);
		int rep = sqlite3_column_int(st, 4);

		assert_true(cell > prev_cell || (cell == prev_cell &&
						 rep > prev_rep));
		assert_int_equal(fixture_step(rep), 0);
		assert_string_equal(text(st, 6), fixture_cause(rep));
		prev_cell = cell;
		prev_rep = rep;
		rows++;
	}
	assert_int_equal(rows, by_step[0][0] + by_step[0][1] + by_step[0][2]);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* ---- the command ---- */

static void test_cli_rejects_bad_flags(void **state)
{
	struct capture cap;
	char *log;

	(void)state;
	capture_begin(&cap, STDERR_FILENO, "cli_stderr.txt");
	assert_int_equal(cmd(2, (const char *[]){"report", "--bogus"}),
			 KAF_EXIT_USAGE);
	assert_int_equal(cmd(3, (const char *[]){"report", "--sweep", "abc"}),
			 KAF_EXIT_USAGE);
	assert_int_equal(cmd(3, (const char *[]){"report", "--sweep", "0"}),
			 KAF_EXIT_USAGE);
	assert_int_equal(cmd(2, (const char *[]){"report", "--db"}),
			 KAF_EXIT_USAGE);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "--bogus"));
	assert_non_null(strstr(log, "\"abc\""));
	free(log);
	capture_begin(&cap, STDOUT_FILENO, "cli_stdout.txt");
	assert_int_equal(cmd(2, (const char *[]){"report", "--help"}), 0);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "KAF_GNUPLOT"));
	free(log);
}

static void test_cli_lists_the_files_it_wrote(void **state)
{
	struct capture cap;
	char out[300];
	char *listing, *line;
	int n = 0;

	(void)state;
	path_in(out, sizeof(out), "cli_out");
	capture_begin(&cap, STDOUT_FILENO, "cli_list.txt");
	assert_int_equal(cmd(6, (const char *[]){"report", "--db", env.paired,
						 "--out", out, "--no-plots"}),
			 0);
	listing = capture_end(&cap);
	for (line = strtok(listing, "\n"); line; line = strtok(NULL, "\n")) {
		assert_true(strncmp(line, out, strlen(out)) == 0);
		assert_int_equal(access(line, F_OK), 0);
		n++;
	}
	/* report.md, report.html, 9 tables, 4 figures x (gp, dat). */
	assert_int_equal(n, 2 + 9 + 8);
	free(listing);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_writes_every_section),
		cmocka_unit_test(test_ranking_rows_order_counts_and_intervals),
		cmocka_unit_test(test_ranking_marks_agree_with_mcnemar),
		cmocka_unit_test(test_ranking_marks_agree_with_fisher),
		cmocka_unit_test(test_factors_find_the_axis_that_matters),
		cmocka_unit_test(test_causes_counts_by_cause_and_step),
		cmocka_unit_test(test_plots_are_valid_png_and_svg),
		cmocka_unit_test(test_plots_checks_reject_other_files),
		cmocka_unit_test(test_plots_skipped_when_gnuplot_is_missing),
		cmocka_unit_test(test_bad_input_sweep_without_runs),
		cmocka_unit_test(test_bad_input_database_without_sweeps),
		cmocka_unit_test(test_bad_input_unknown_sweep),
		cmocka_unit_test(test_bad_input_not_sqlite),
		cmocka_unit_test(test_bad_input_sqlite_without_kaf_id),
		cmocka_unit_test(test_bad_input_other_schema_version),
		cmocka_unit_test(test_bad_input_missing_database),
		cmocka_unit_test(test_bad_input_unwritable_output),
		cmocka_unit_test(test_report_keeps_old_files_when_it_fails),
		cmocka_unit_test(test_report_follows_the_axes_that_vary),
		cmocka_unit_test(test_report_defaults_to_the_latest_sweep),
		cmocka_unit_test(
			test_report_removes_files_of_an_earlier_report),
		cmocka_unit_test(test_report_handles_degenerate_sweeps),
		cmocka_unit_test(test_report_marks_an_unfinished_sweep),
		cmocka_unit_test(test_report_never_writes_the_database),
		cmocka_unit_test(test_report_reads_while_a_sweep_writes),
		cmocka_unit_test(test_queries_ranking_lists_the_latest_sweep),
		cmocka_unit_test(test_queries_factor_effect_pools_one_axis),
		cmocka_unit_test(
			test_queries_diverged_at_step0_lists_runs_and_causes),
		cmocka_unit_test(test_cli_rejects_bad_flags),
		cmocka_unit_test(test_cli_lists_the_files_it_wrote),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
