/*
 * test_study.c - the report's sections on experiments 1 and 2.
 *
 * Two kinds of database. Fixtures (tests/report_fixture) whose metrics,
 * traces and link snapshots follow known rules, so every mean, standard
 * deviation, curve value and shape verdict below is recomputed here
 * from the rules, never read back from the report's SQL. And small real
 * sweeps run with the kaf binary, an exp1-like grid with traces and a
 * cut-down exp2, checked for the structure of what the report makes of
 * them: rows per activation and their counts, valid images, an animated
 * GIF of one frame per snapshot. Means are compared within 1e-12
 * (relative); the real sweeps take a few seconds.
 */
#include <dirent.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "analysis.h"
#include "plot.h"
#include "report.h"
#include "report_fixture.h"
#include "report_read.h"
#include "study.h"
#include "study_plot.h"

#ifndef KAF_SOURCE_DIR
#error "build with -DKAF_SOURCE_DIR=\"<repository root>\""
#endif
#ifndef KAF_BIN
#error "KAF_BIN must name the kaf binary"
#endif

#define SCHEMA KAF_SOURCE_DIR "/schemas/kaf.sql"

/* Runs per cell of the experiment 1 fixture. */
#define RUNS 6

/* The experiment 2 fixture: frames, snapshot interval, points, calc. */
#define FRAMES 5
#define EVERY 50
#define POINTS 101
#define CALC 20

#define TOL 1e-12

/*
 * Experiment 1 fixture, cell index = position: two iris blocks (300
 * and 150 epochs) and a boston block, K-AF naive diverging in some.
 */
static const struct {
	const char *block, *dataset, *activation, *kernel;
	long epochs;
	int diverged;
	const char *variant;
} exp1_cells[] = {
	{"iris/1", "iris", "relu", "naive", 300, 0, "relu"},
	{"iris/1", "iris", "kaf", "naive", 300, 2, "kaf naive"},
	{"iris/1", "iris", "kaf", "stable", 300, 0, "kaf stable"},
	{"iris/2", "iris", "relu", "naive", 150, 1, "relu"},
	{"iris/2", "iris", "kaf", "naive", 150, RUNS, "kaf naive"},
	{"iris/2", "iris", "kaf", "stable", 150, 0, "kaf stable"},
	{"boston/1", "boston", "relu", "naive", 300, 0, "relu"},
	{"boston/1", "boston", "kaf", "stable", 300, 3, "kaf stable"},
};

#define EXP1_CELLS (int)(sizeof(exp1_cells) / sizeof(exp1_cells[0]))

struct env {
	char root[256];
	char exp1[300], exp2[300], exp3[300], untraced[300];
	char real1[300], real2[300];
	bool gnuplot;
};

static struct env env;

/* ---- helpers ---- */

static void path_in(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", env.root, name);
}

/* The field under header name in line row; fails the test if absent. */
static const char *csv_get(const char *csv, int row, const char *name)
{
	static char field[256];
	char head[128];
	int col = -1;

	for (int c = 0; col < 0 && csv_field(csv, 0, c, head, sizeof(head));
	     c++)
		if (strcmp(head, name) == 0)
			col = c;
	if (col < 0)
		fail_msg("CSV has no column %s", name);
	if (!csv_field(csv, row, col, field, sizeof(field)))
		fail_msg("CSV has no row %d", row);
	return field;
}

static void assert_close(double got, double want)
{
	if (!(fabs(got - want) <= TOL * fmax(1, fabs(want))))
		fail_msg("got %.17g, want %.17g", got, want);
}

static void report_ok(const char *db, const char *out, bool plots)
{
	struct kaf_report_opts o = {.db_path = db, .out_dir = out,
				    .no_plots = !plots};
	struct kaf_error err = {""};

	if (kaf_report_run(&o, NULL, &err))
		fail_msg("report of %s failed: %s", db, err.msg);
}

/* Run kaf with args (NULL-terminated), output discarded; exit status. */
static int run_kaf(const char *const *args)
{
	const char *argv[32] = {KAF_BIN};
	int n = 1, status;
	pid_t pid;

	for (; args[n - 1] && n < 31; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execv(KAF_BIN, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* A drawn still: a valid PNG and SVG. */
static void assert_still(const char *out, const char *stem)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/plots/%s.png", out, stem);
	if (!kaf_plot_is_png(path))
		fail_msg("%s is not a PNG", path);
	snprintf(path, sizeof(path), "%s/plots/%s.svg", out, stem);
	if (!kaf_plot_is_svg(path))
		fail_msg("%s is not an SVG", path);
}

/*
 * An animated GIF of frames frames: the block walk of kaf_plot_gif_frames
 * and, independently, the looping extension and one Graphic Control
 * Extension per frame (counted as byte patterns, so at least as many).
 */
static void assert_gif(const char *out, const char *stem, int frames)
{
	char path[1024];
	unsigned char *data;
	long len, gce = 0, loops = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/plots/%s.gif", out, stem);
	assert_int_equal(kaf_plot_gif_frames(path), frames);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)len);
	assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	assert_memory_equal(data, "GIF89a", 6);
	for (long i = 0; i + 11 <= len; i++)
		loops += memcmp(data + i, "NETSCAPE2.0", 11) == 0;
	assert_int_equal(loops, 1);
	for (long i = 0; i + 2 < len; i++)
		gce += data[i] == 0x21 && data[i + 1] == 0xf9 &&
		       data[i + 2] == 0x04;
	assert_true(gce >= frames);
	assert_int_equal(data[len - 1], 0x3b);
	free(data);
}

/* ---- fixtures ---- */

static int build_exp1(void)
{
	struct fixture_cell cells[EXP1_CELLS];
	long long sweep;
	sqlite3 *db;
	int rc;

	for (int c = 0; c < EXP1_CELLS; c++) {
		cells[c] = fixture_cell_exp3("kaiming_uniform", "sgd", "none",
					     exp1_cells[c].diverged);
		cells[c].block = exp1_cells[c].block;
		cells[c].dataset = exp1_cells[c].dataset;
		cells[c].activation = exp1_cells[c].activation;
		cells[c].kernel = exp1_cells[c].kernel;
		cells[c].epochs = exp1_cells[c].epochs;
	}
	db = fixture_create(env.exp1, SCHEMA);
	if (!db)
		return -1;
	sweep = fixture_add_sweep(db, &(struct fixture_sweep){
		"exp1", "paired", RUNS, EXP1_CELLS, cells});
	/* Metrics by rule: accuracy for iris, MAE for boston. */
	rc = sweep < 0 || fixture_add_traces(db, sweep) ||
	     sqlite3_exec(db, "UPDATE run SET accuracy = (SELECT 0.5 + 0.01 * "
			  "cell_index FROM cell WHERE cell.cell_id = "
			  "run.cell_id) + 0.05 * replicate WHERE cell_id IN "
			  "(SELECT cell_id FROM cell WHERE dataset = 'iris'); "
			  "UPDATE run SET val_mae = 1.0 + replicate WHERE "
			  "cell_id IN (SELECT cell_id FROM cell WHERE dataset "
			  "= 'boston')", NULL, NULL, NULL) != SQLITE_OK;
	sqlite3_close(db);
	return rc ? -1 : 0;
}

static int build_exp2(void)
{
	struct fixture_cell cell = fixture_cell_exp3("kaiming_uniform", "sgd",
						     "none", 0);
	long long sweep;
	sqlite3 *db = fixture_create(env.exp2, SCHEMA);
	int rc;

	cell.block = "iris";
	cell.dataset = "iris";
	cell.kernel = "stable";
	if (!db)
		return -1;
	sweep = fixture_add_sweep(db, &(struct fixture_sweep){
		"exp2", "paired", 1, 1, &cell});
	rc = sweep < 0 || fixture_add_links(db, sweep, 0, FRAMES, EVERY,
					    POINTS, CALC);
	sqlite3_close(db);
	return rc ? -1 : 0;
}

/* exp3-like (nothing of experiments 1 and 2), and an untraced grid of
 * two activations. */
static int build_others(void)
{
	struct fixture_cell three[2] = {
		fixture_cell_exp3("xavier_uniform", "sgd", "none", 3),
		fixture_cell_exp3("kaiming_uniform", "sgd", "none", 6),
	};
	struct fixture_cell acts[2] = {
		fixture_cell_exp3("xavier_uniform", "sgd", "none", 0),
		fixture_cell_exp3("xavier_uniform", "sgd", "none", 0),
	};
	sqlite3 *a = fixture_create(env.exp3, SCHEMA);
	sqlite3 *b = fixture_create(env.untraced, SCHEMA);
	int rc;

	acts[0].activation = "relu";
	rc = !a || !b ||
	     fixture_add_sweep(a, &(struct fixture_sweep){
		     "exp3", "paired", 10, 2, three}) < 0 ||
	     fixture_add_sweep(b, &(struct fixture_sweep){
		     NULL, "paired", 4, 2, acts}) < 0;
	sqlite3_close(a);
	sqlite3_close(b);
	return rc ? -1 : 0;
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	char gnuplot[1024];
	struct kaf_error err;

	(void)state;
	snprintf(env.root, sizeof(env.root), "%s/kaf-test-study-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(env.root))
		return -1;
	path_in(env.exp1, sizeof(env.exp1), "exp1.db");
	path_in(env.exp2, sizeof(env.exp2), "exp2.db");
	path_in(env.exp3, sizeof(env.exp3), "exp3.db");
	path_in(env.untraced, sizeof(env.untraced), "untraced.db");
	path_in(env.real1, sizeof(env.real1), "real1.db");
	path_in(env.real2, sizeof(env.real2), "real2.db");
	env.gnuplot = kaf_plot_find_gnuplot(gnuplot, sizeof(gnuplot),
					    &err) == KAF_OK;
	if (build_exp1() || build_exp2() || build_others()) {
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

/* ---- expectations from the fixture's rules ---- */

struct expect {
	long n;
	double mean, sd, min, max;
};

/* Over the surviving replicates of cell c; what = 0 accuracy, 1 MSE,
 * 2 MAE. */
static struct expect expected(int c, int what)
{
	double v[RUNS], sum = 0, ss = 0;
	struct expect e = {0};

	for (int r = 0; r < RUNS; r++) {
		if (fixture_diverged(c, r, RUNS, exp1_cells[c].diverged))
			continue;
		v[e.n] = what == 0 ? 0.5 + 0.01 * c + 0.05 * r :
			what == 1 ? fixture_val_loss(c, r) : 1.0 + r;
		sum += v[e.n++];
	}
	e.mean = e.n ? sum / (double)e.n : NAN;
	e.min = e.max = e.n ? v[0] : NAN;
	for (long i = 0; i < e.n; i++) {
		ss += (v[i] - e.mean) * (v[i] - e.mean);
		e.min = fmin(e.min, v[i]);
		e.max = fmax(e.max, v[i]);
	}
	e.sd = e.n > 1 ? sqrt(ss / (double)(e.n - 1)) : NAN;
	return e;
}

static void check_moments(const struct kaf_moments *m, struct expect e)
{
	assert_int_equal(m->n, e.n);
	if (e.n == 0) {
		assert_true(isnan(m->mean));
		return;
	}
	assert_close(m->mean, e.mean);
	assert_close(m->min, e.min);
	assert_close(m->max, e.max);
	if (e.n > 1)
		assert_close(m->sd, e.sd);
}

/* ---- experiment 1 from the fixture ---- */

static void test_study_groups_blocks_and_names_variants(void **state)
{
	static const char *const groups[3] = {"iris/1", "iris/2", "boston/1"};
	struct kaf_analysis *an = load(env.exp1);
	const struct kaf_study *st = an->study;

	(void)state;
	assert_true(st->compare);
	assert_true(st->traced);
	assert_true(st->by_block);
	assert_int_equal(st->ngroups, 3);
	assert_int_equal(st->nlinks, 0);
	for (int g = 0, c = 0; g < 3; g++) {
		const struct kaf_study_group *gr = &st->groups[g];

		assert_string_equal(gr->name, groups[g]);
		assert_int_equal(gr->curve_from, g == 1 ? 0 : 100);
		assert_int_equal(gr->epochs, g == 1 ? 150 : 300);
		for (int i = 0; i < gr->ncells; i++, c++) {
			assert_int_equal(gr->cells[i], c);
			assert_string_equal(gr->variants[i],
					    exp1_cells[c].variant);
		}
	}
	kaf_analysis_destroy(an);
}

static void test_study_metrics_over_surviving_runs(void **state)
{
	struct kaf_analysis *an = load(env.exp1);

	(void)state;
	for (int c = 0; c < EXP1_CELLS; c++) {
		const struct kaf_study_cell *sc = &an->study->cells[c];
		bool iris = strcmp(exp1_cells[c].dataset, "iris") == 0;

		if (iris && exp1_cells[c].diverged < RUNS)
			assert_int_equal(sc->task, KAF_STUDY_CLASSIFICATION);
		if (!iris)
			assert_int_equal(sc->task, KAF_STUDY_REGRESSION);
		if (iris) {
			check_moments(&sc->accuracy, expected(c, 0));
		} else {
			check_moments(&sc->mse, expected(c, 1));
			check_moments(&sc->mae, expected(c, 2));
			assert_int_equal(sc->accuracy.n, 0);
		}
	}
	kaf_analysis_destroy(an);
}

/* The mean over surviving runs at epoch e, from the rule. */
static double expected_train(int c, long e)
{
	double sum = 0, train, val;
	int n = 0;

	for (int r = 0; r < RUNS; r++) {
		if (fixture_diverged(c, r, RUNS, exp1_cells[c].diverged))
			continue;
		fixture_trace(c, r, e, &train, &val);
		sum += train;
		n++;
	}
	return n ? sum / n : NAN;
}

static void test_study_traces_read_back_as_mean_curves(void **state)
{
	static const long epochs[4] = {0, 1, 100, 149};
	struct kaf_analysis *an = load(env.exp1);

	(void)state;
	for (int c = 0; c < EXP1_CELLS; c++) {
		const struct kaf_curve *cv = &an->study->cells[c].curve;

		assert_true(an->study->cells[c].traced);
		if (exp1_cells[c].diverged == RUNS) {
			/* Diverged runs left traces, but none survived. */
			assert_int_equal(cv->n, 0);
			continue;
		}
		assert_int_equal(cv->n, exp1_cells[c].epochs);
		for (int i = 0; i < 4; i++) {
			assert_close(cv->train[epochs[i]],
				     expected_train(c, epochs[i]));
			assert_close(cv->val[epochs[i]],
				     2 * expected_train(c, epochs[i]) + 0.5);
		}
	}
	kaf_analysis_destroy(an);
}

static void test_study_exp1_tables_in_csv(void **state)
{
	char out[300];
	char *cls, *reg;
	int row = 0;

	(void)state;
	path_in(out, sizeof(out), "exp1_tables");
	report_ok(env.exp1, out, false);
	cls = read_out(out, "exp1_classification.csv");
	reg = read_out(out, "exp1_regression.csv");
	assert_int_equal(csv_rows(cls), 6);
	assert_int_equal(csv_rows(reg), 2);
	for (int c = 0; c < EXP1_CELLS; c++) {
		bool iris = strcmp(exp1_cells[c].dataset, "iris") == 0;
		const char *csv = iris ? cls : reg;
		int line = iris ? ++row : c - 5;
		struct expect e = expected(c, iris ? 0 : 1);

		assert_string_equal(csv_get(csv, line, "block"),
				    exp1_cells[c].block);
		assert_string_equal(csv_get(csv, line, "variant"),
				    exp1_cells[c].variant);
		assert_int_equal(atol(csv_get(csv, line, "runs")), RUNS);
		assert_int_equal(atol(csv_get(csv, line, "diverged")),
				 exp1_cells[c].diverged);
		assert_int_equal(atol(csv_get(csv, line, "averaged")), e.n);
		if (e.n == 0) {
			assert_string_equal(csv_get(csv, line,
						    "accuracy_mean"), "");
			continue;
		}
		assert_close(strtod(csv_get(csv, line, iris ? "accuracy_mean" :
					    "mse_mean"), NULL), e.mean);
		if (!iris)
			assert_close(strtod(csv_get(csv, line, "mae_sd"),
					    NULL), expected(c, 2).sd);
	}
	free(cls);
	free(reg);
}

static void test_study_exp1_section_says_what_it_averages(void **state)
{
	char out[300];
	char *md;

	(void)state;
	path_in(out, sizeof(out), "exp1_text");
	report_ok(env.exp1, out, env.gnuplot);
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "\n## Activations compared (experiment 1)"
			       "\n"));
	assert_non_null(strstr(md, "averaged over the runs that did not "
			       "diverge"));
	assert_non_null(strstr(md, "- iris/2 (mean validation accuracy, best "
			       "first): "));
	assert_non_null(strstr(md, "; not averaged: kaf naive (every run "
			       "diverged)."));
	assert_non_null(strstr(md, "- boston/1 (mean validation MSE, lowest "
			       "first): "));
	/* The curves start at 100, or at 0 in the short block. */
	assert_non_null(strstr(md, "loss per epoch in iris/1, one line per "
			       "activation, averaged over the runs that did "
			       "not diverge; from epoch 100 on, as in the "
			       "original study"));
	assert_non_null(strstr(md, "in iris/2, one line per activation, "
			       "averaged over the runs that did not "
			       "diverge; from epoch 0: its cells trained 150 "
			       "epochs, fewer than 200"));
	assert_non_null(strstr(md, "No curve: kaf naive (every run "
			       "diverged)."));
	assert_null(strstr(md, "(experiment 2)"));
	if (env.gnuplot) {
		assert_still(out, "exp1_loss_iris_1");
		assert_still(out, "exp1_loss_iris_2");
		assert_still(out, "exp1_loss_boston_1");
		assert_null(strstr(md, "Not drawn"));
	}
	assert_true(exists(out, "plots/exp1_loss_iris_1.gp"));
	free(md);
}

static void test_study_exp1_without_traces(void **state)
{
	struct kaf_analysis *an = load(env.untraced);
	char out[300];
	char *md;

	(void)state;
	assert_true(an->study->compare);
	assert_false(an->study->traced);
	assert_false(an->study->by_block);
	assert_string_equal(an->study->groups[0].name, "boston");
	kaf_analysis_destroy(an);
	path_in(out, sizeof(out), "untraced");
	report_ok(env.untraced, out, false);
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "(experiment 1)"));
	assert_non_null(strstr(md, "Run it with --trace"));
	assert_false(exists(out, "plots/exp1_loss_boston.gp"));
	free(md);
}

static void test_study_sections_absent_without_their_data(void **state)
{
	char out[300];
	char *md;

	(void)state;
	path_in(out, sizeof(out), "exp3");
	report_ok(env.exp3, out, false);
	md = read_out(out, "report.md");
	assert_null(strstr(md, "(experiment 1)"));
	assert_null(strstr(md, "(experiment 2)"));
	assert_false(exists(out, "exp1_classification.csv"));
	assert_false(exists(out, "exp2_shape.csv"));
	free(md);
}

/* ---- experiment 2 from the fixture ---- */

static void test_study_link_snapshots_read_back(void **state)
{
	struct kaf_analysis *an = load(env.exp2);
	const struct kaf_link_series *ls;

	(void)state;
	assert_false(an->study->compare);
	assert_int_equal(an->study->nlinks, 1);
	ls = &an->study->links[0];
	assert_string_equal(ls->name, "iris");
	assert_int_equal(ls->nframes, FRAMES);
	assert_int_equal(ls->noutputs, 3);
	assert_int_equal(ls->npoints, POINTS);
	assert_int_equal(ls->ncalc, CALC);
	assert_int_equal(ls->frames[1].epoch, EVERY);
	assert_int_equal(ls->frames[FRAMES - 1].epoch,
			 (FRAMES - 1) * EVERY - 1);
	assert_close(ls->frames[2].bandwidth, 1.5 - 0.02);
	for (int f = 0; f < FRAMES; f++) {
		for (int k = 0; k < 3; k++) {
			long p = kaf_link_points_at(ls, f, k);
			long c = kaf_link_calc_at(ls, f, k) + CALC - 1;
			double lo, hi;

			fixture_link_range(k, &lo, &hi);
			assert_close(ls->z[p], lo);
			assert_close(ls->z[p + POINTS - 1], hi);
			assert_close(ls->yhat[p + 7], fixture_link(
				k, f, FRAMES, ls->z[p + 7]));
			assert_close(ls->calc_y[c], fixture_link(
				k, f, FRAMES, ls->calc_z[c]) > 0.5);
		}
	}
	kaf_analysis_destroy(an);
}

static void test_study_shape_table_judges_the_last_frame(void **state)
{
	/* increasing, decreasing, zero gradient, bounded above */
	static const char *const want[3][4] = {
		{"yes", "no", "no", "yes"},     /* sigmoid */
		{"no", "no", "yes", "yes"},     /* bump */
		{"no", "yes", "no", "no"},      /* falling ramp */
	};
	static const char *const cols[4] = {
		"increasing", "decreasing", "zero_gradient", "bounded_above",
	};
	char out[300], epoch[32];
	char *csv, *md;

	(void)state;
	path_in(out, sizeof(out), "exp2_fixture");
	report_ok(env.exp2, out, env.gnuplot);
	csv = read_out(out, "exp2_shape.csv");
	assert_int_equal(csv_rows(csv), 3);
	snprintf(epoch, sizeof(epoch), "%d", (FRAMES - 1) * EVERY - 1);
	for (int k = 0; k < 3; k++) {
		assert_string_equal(csv_get(csv, k + 1, "cell"), "iris");
		assert_int_equal(atoi(csv_get(csv, k + 1, "output")), k);
		assert_string_equal(csv_get(csv, k + 1, "epoch"), epoch);
		for (int q = 0; q < 4; q++)
			assert_string_equal(csv_get(csv, k + 1, cols[q]),
					    want[k][q]);
	}
	/* The bump's top is the grid point z = 0. */
	assert_true(fabs(strtod(csv_get(csv, 2, "zero_gradient_z"), NULL)) <
		    1e-12);
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "\n## The learned link (experiment 2)\n"));
	assert_non_null(strstr(md, "judged from 101 points"));
	assert_non_null(strstr(md, "tol = 0.001 R"));
	assert_non_null(strstr(md, "rising by less than 2 % of R over the "
			       "last 10 % of the z range"));
	assert_null(strstr(md, "(experiment 1)"));
	if (env.gnuplot) {
		char *html = read_out(out, "report.html");

		assert_still(out, "exp2_link_iris");
		assert_gif(out, "exp2_movie_iris", FRAMES);
		/* base64 of "GIF89a": the animation is embedded. */
		assert_non_null(strstr(html, "src=\"data:image/gif;base64,"
				       "R0lGODlh"));
		assert_non_null(strstr(md, "![exp2_movie_iris]"
				       "(plots/exp2_movie_iris.gif)"));
		free(html);
	}
	free(md);
	free(csv);
}

static void test_study_movie_spreads_many_frames(void **state)
{
	struct kaf_link_series ls = {.nframes = 1000};
	int n = kaf_study_movie_frames(&ls), prev = -1;

	(void)state;
	assert_int_equal(n, KAF_STUDY_MAX_FRAMES);
	assert_int_equal(kaf_study_movie_frame(&ls, 0), 0);
	assert_int_equal(kaf_study_movie_frame(&ls, n - 1), 999);
	for (int i = 0; i < n; i++) {
		assert_true(kaf_study_movie_frame(&ls, i) > prev);
		prev = kaf_study_movie_frame(&ls, i);
	}
	ls.nframes = 21;
	assert_int_equal(kaf_study_movie_frames(&ls), 21);
	assert_int_equal(kaf_study_movie_frame(&ls, 20), 20);
}

static void test_study_stale_figures_are_removed(void **state)
{
	char out[300];

	(void)state;
	path_in(out, sizeof(out), "stale");
	report_ok(env.exp2, out, false);
	assert_true(exists(out, "exp2_shape.csv"));
	assert_true(exists(out, "plots/exp2_movie_iris.gp"));
	report_ok(env.exp3, out, false);
	assert_false(exists(out, "exp2_shape.csv"));
	assert_false(exists(out, "plots/exp2_movie_iris.gp"));
	assert_false(exists(out, "plots/exp2_link_iris.dat"));
	assert_true(exists(out, "plots/survival.gp"));
}

/* ---- real sweeps ---- */

static const char exp1_spec[] =
	"# two blocks, as experiment 1 lays them out\n"
	"activation = relu, kaf\n"
	"kernel = naive, stable\n"
	"init = kaiming_uniform\nreg = none\nopt = sgd\n"
	"epochs = 150\n"
	"runs = 2\n"
	"[iris/a]\ndataset = iris\nlr = 0.1\ncalc_num = 30\n"
	"[wine/b]\ndataset = wine\nlr = 0.001\ncalc_num = 27\n";

static void test_study_real_exp1_sweep(void **state)
{
	static const char *const variants[3] = {"relu", "kaf naive",
						"kaf stable"};
	char spec[300], out[300];
	FILE *f;
	char *csv, *md;

	(void)state;
	path_in(spec, sizeof(spec), "exp1.spec");
	f = fopen(spec, "w");
	assert_non_null(f);
	fputs(exp1_spec, f);
	fclose(f);
	assert_int_equal(run_kaf((const char *[]){
		"sweep", "--spec", spec, "--trace", "--db", env.real1,
		"--no-report", "--quiet", NULL}), 0);
	path_in(out, sizeof(out), "real1");
	report_ok(env.real1, out, env.gnuplot);
	csv = read_out(out, "exp1_classification.csv");
	assert_int_equal(csv_rows(csv), 6);
	for (int row = 1; row <= 6; row++) {
		long runs = atol(csv_get(csv, row, "runs"));
		long diverged = atol(csv_get(csv, row, "diverged"));

		assert_string_equal(csv_get(csv, row, "block"),
				    row <= 3 ? "iris/a" : "wine/b");
		assert_string_equal(csv_get(csv, row, "variant"),
				    variants[(row - 1) % 3]);
		assert_int_equal(runs, 2);
		assert_int_equal(atol(csv_get(csv, row, "averaged")),
				 runs - diverged);
	}
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "from epoch 0: its cells trained 150 "
			       "epochs, fewer than 200"));
	if (env.gnuplot) {
		assert_still(out, "exp1_loss_iris_a");
		assert_still(out, "exp1_loss_wine_b");
	}
	free(md);
	free(csv);
}

static void test_study_real_exp2_sweep(void **state)
{
	char out[300];
	char *csv, *md;
	struct kaf_analysis *an;

	(void)state;
	assert_int_equal(run_kaf((const char *[]){
		"sweep", "--preset", "exp2", "--set", "epochs=120", "--set",
		"dataset=iris", "--set", "calc_num=30", "--db", env.real2,
		"--no-report", "--quiet", NULL}), 0);
	an = load(env.real2);
	assert_int_equal(an->study->nlinks, 5);
	/* Snapshots every 50 steps and at the last: 0, 50, 100, 119. */
	for (int l = 0; l < 5; l++) {
		assert_int_equal(an->study->links[l].nframes, 4);
		assert_int_equal(an->study->links[l].frames[3].epoch, 119);
		assert_int_equal(an->study->links[l].noutputs, 3);
		assert_int_equal(an->study->links[l].npoints, 101);
	}
	kaf_analysis_destroy(an);
	path_in(out, sizeof(out), "real2");
	report_ok(env.real2, out, env.gnuplot);
	csv = read_out(out, "exp2_shape.csv");
	/* Five cells (all iris under --set), three outputs each. */
	assert_int_equal(csv_rows(csv), 15);
	for (int row = 1; row <= 15; row++) {
		const char *inc = csv_get(csv, row, "increasing");

		assert_true(!strcmp(inc, "yes") || !strcmp(inc, "no"));
	}
	md = read_out(out, "report.md");
	assert_non_null(strstr(md, "one frame per snapshot from epoch 0 to "
			       "epoch 119"));
	if (env.gnuplot) {
		assert_still(out, "exp2_link_iris");
		assert_still(out, "exp2_link_digits");
		assert_gif(out, "exp2_movie_iris", 4);
		assert_gif(out, "exp2_movie_breast_cancer", 4);
		assert_null(strstr(md, "Not drawn"));
	}
	free(md);
	free(csv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_study_groups_blocks_and_names_variants),
		cmocka_unit_test(test_study_metrics_over_surviving_runs),
		cmocka_unit_test(test_study_traces_read_back_as_mean_curves),
		cmocka_unit_test(test_study_exp1_tables_in_csv),
		cmocka_unit_test(
			test_study_exp1_section_says_what_it_averages),
		cmocka_unit_test(test_study_exp1_without_traces),
		cmocka_unit_test(
			test_study_sections_absent_without_their_data),
		cmocka_unit_test(test_study_link_snapshots_read_back),
		cmocka_unit_test(
			test_study_shape_table_judges_the_last_frame),
		cmocka_unit_test(test_study_movie_spreads_many_frames),
		cmocka_unit_test(test_study_stale_figures_are_removed),
		cmocka_unit_test(test_study_real_exp1_sweep),
		cmocka_unit_test(test_study_real_exp2_sweep),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
