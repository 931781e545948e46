/*
 * test_sweep.c - `kaf sweep` end to end: the real binary on real
 * databases, killed and resumed, fed bad input.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "rng.h"

#if !defined(KAF_BIN) || !defined(KAF_PORTABLE_BIN)
#error "KAF_BIN and KAF_PORTABLE_BIN must name the kaf binaries"
#endif

static char tmpdir[] = "/tmp/kaf_sweep_XXXXXX";

/* A path in the test directory; each name keeps its own buffer. */
static const char *tmp_path(const char *name)
{
	static char buf[64][256];
	static int used;

	for (int i = 0; i < used; i++)
		if (!strcmp(strrchr(buf[i], '/') + 1, name))
			return buf[i];
	assert_true(used < 64);
	snprintf(buf[used], 256, "%s/%s", tmpdir, name);
	return buf[used++];
}

/* ---- running kaf ---- */

static pid_t spawn(const char *const *args, const char *err_path)
{
	return child_spawn(KAF_BIN, args,
			   &(struct child_opts){.err_path = err_path});
}

static int wait_status(pid_t pid)
{
	return child_wait(pid, NULL);
}

/* Run kaf with args (NULL-terminated); return its exit status. */
static int kaf(const char *err_path, ...)
{
	const char *args[64];
	int n = 0;
	va_list ap;

	va_start(ap, err_path);
	while ((args[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	return wait_status(spawn(args, err_path));
}

static void expect_error(const char *needle, ...)
{
	const char *args[64], *err_path = tmp_path("stderr");
	int n = 0;
	va_list ap;

	va_start(ap, needle);
	while ((args[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	assert_int_equal(wait_status(spawn(args, err_path)), 2);
	if (!strstr(slurp(err_path), needle))
		fail_msg("stderr \"%s\" lacks \"%s\"", slurp(err_path), needle);
	/* One line: the message, not a flood. */
	assert_true(strchr(slurp(err_path), '\n') ==
		    strrchr(slurp(err_path), '\n'));
}

/* ---- reading databases ---- */

/* A number from a database a sweep may be creating: -1 until readable. */
static long poll_long(const char *db_path, const char *sql)
{
	long v = -1;

	return try_query(db_path, sql, &v) == SQLITE_OK ? v : -1;
}

/* A hash of every row sql gives, each value as text; count the rows. */
static uint64_t rows_hash(const char *db_path, const char *sql, long *count)
{
	sqlite3 *db;
	sqlite3_stmt *stmt;
	uint64_t h = 0;

	*count = 0;
	assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
			 SQLITE_OK);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		for (int c = 0; c < sqlite3_column_count(stmt); c++) {
			const char *t = (const char *)sqlite3_column_text(stmt,
									  c);

			h = kaf_rng_derive(h, kaf_rng_hash_str(t ? t : "NULL"));
		}
		(*count)++;
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return h;
}

/* A hash of every run row of the latest sweep except its wall time. */
static uint64_t runs_hash(const char *db_path, long *count)
{
	return rows_hash(db_path,
			 "SELECT c.cell_index, r.replicate, r.seed, "
			 "r.diverged, r.cause, r.step, r.steps, r.train_loss, "
			 "r.val_loss, r.accuracy, r.val_mae, r.max_grad_norm, "
			 "r.bandwidth, r.zero_rows FROM run AS r JOIN cell AS "
			 "c USING (cell_id) WHERE c.sweep_id = (SELECT "
			 "max(sweep_id) FROM sweep) ORDER BY c.cell_index, "
			 "r.replicate", count);
}

/* ---- fixtures ---- */

static int setup(void **st)
{
	(void)st;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st)
{
	char cmd[512];

	(void)st;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the tests ---- */

static void test_sweep_threads_do_not_change_results(void **st)
{
	const char *one = tmp_path("one.db"), *two = tmp_path("two.db");
	long n1, n2;

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--db", one, "--runs", "40",
			     "--threads", "1", "--quiet", NULL), 0);
	assert_int_equal(kaf(NULL, "sweep", "--db", two, "--runs", "40",
			     "--threads", "2", "--quiet", NULL), 0);
	assert_true(runs_hash(one, &n1) == runs_hash(two, &n2));
	assert_int_equal(n1, 24 * 40);
	assert_int_equal(n2, 24 * 40);
	/* Divergence happens, and not everywhere: the study is alive. */
	long div = query(one, "SELECT sum(diverged) FROM run");

	assert_true(div > 0 && div < 24 * 40);
	assert_int_equal(query(one, "SELECT count(*) FROM sweep WHERE "
				    "finished_at IS NOT NULL"), 1);
}

static void test_sweep_resumes_after_kill(void **st)
{
	const char *ref = tmp_path("ref.db"), *db = tmp_path("killed.db");
	const char *args[] = {"sweep", "--db", db, "--runs", "150",
			      "--threads", "2", "--quiet", NULL};
	long stored = 0, n_ref, n;
	uint64_t want;

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--db", ref, "--runs", "150",
			     "--quiet", NULL), 0);
	want = runs_hash(ref, &n_ref);
	assert_int_equal(n_ref, 24 * 150);

	/* Kill twice at different moments, then finish. */
	for (int round = 0; round < 2; round++) {
		pid_t pid = spawn(args, NULL);
		struct timespec pause = {0, 20 * 1000 * 1000};

		for (int tries = 0; tries < 500; tries++) {
			nanosleep(&pause, NULL);
			stored = poll_long(db, "SELECT count(*) FROM run");
			if (stored > (round + 1) * 300)
				break;
		}
		kill(pid, SIGKILL);
		assert_int_equal(wait_status(pid), 128 + SIGKILL);
	}
	assert_true(stored > 0 && stored < 24 * 150);
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "150",
			     "--threads", "1", "--quiet", NULL), 0);
	assert_true(runs_hash(db, &n) == want);
	assert_int_equal(n, n_ref);
	assert_int_equal(query(db, "SELECT count(*) FROM sweep"), 1);
	assert_int_equal(query(db, "SELECT count(*) = 1 FROM "
				    "pragma_integrity_check WHERE "
				    "integrity_check = 'ok'"), 1);
}

static void test_sweep_interrupt_keeps_finished_runs(void **st)
{
	const char *db = tmp_path("int.db"), *err = tmp_path("int.err");
	const char *args[] = {"sweep", "--db", db, "--runs", "400",
			      "--threads", "2", NULL};
	struct timespec pause = {0, 20 * 1000 * 1000};
	pid_t pid = spawn(args, err);
	long before;

	(void)st;
	for (int tries = 0; tries < 500; tries++) {
		nanosleep(&pause, NULL);
		if (poll_long(db, "SELECT count(*) FROM run") > 0)
			break;
	}
	kill(pid, SIGINT);
	assert_int_equal(wait_status(pid), 130);
	assert_non_null(strstr(slurp(err), "run the same command again"));
	before = query(db, "SELECT count(*) FROM run");
	assert_true(before > 0);
	assert_true(before < 24 * 400);
	assert_int_equal(query(db, "SELECT count(*) FROM sweep WHERE "
				    "finished_at IS NULL"), 1);
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "400",
			     "--quiet", NULL), 0);
	assert_int_equal(query(db, "SELECT count(*) FROM run"),
			 24 * 400);
}

static void test_sweep_runs_extend_and_specs_separate(void **st)
{
	const char *db = tmp_path("extend.db"), *ref = tmp_path("ext20.db");
	long n, n_ref;

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "10",
			     "--quiet", NULL), 0);
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "20",
			     "--quiet", NULL), 0);
	assert_int_equal(kaf(NULL, "sweep", "--db", ref, "--runs", "20",
			     "--quiet", NULL), 0);
	assert_true(runs_hash(db, &n) == runs_hash(ref, &n_ref));
	assert_int_equal(n, 24 * 20);
	assert_int_equal(query(db, "SELECT count(*) FROM sweep"), 1);
	/* Another spec on the same database is another sweep. */
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "5",
			     "--set", "opt=adam", "--quiet", NULL), 0);
	assert_int_equal(query(db, "SELECT count(*) FROM sweep"), 2);
	assert_int_equal(query(db, "SELECT count(*) FROM run"),
			 24 * 20 + 6 * 5);
	/* So is another seed. */
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "5",
			     "--set", "opt=adam", "--seed", "3", "--quiet",
			     NULL), 0);
	assert_int_equal(query(db, "SELECT count(*) FROM sweep"), 3);
}

/* Extending a sweep that another kaf version started says so, once. */
static void test_sweep_other_version_is_named_on_resume(void **st)
{
	const char *db = tmp_path("version.db"), *err = tmp_path("version.err");
	sqlite3 *h;

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "2",
			     "--no-report", "--quiet", NULL), 0);
	assert_int_equal(kaf(err, "sweep", "--db", db, "--runs", "3",
			     "--no-report", "--quiet", NULL), 0);
	assert_null(strstr(slurp(err), "started by"));
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "UPDATE sweep SET kaf_version = "
				      "'0.0.1'", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(kaf(err, "sweep", "--db", db, "--runs", "4",
			     "--no-report", "--quiet", NULL), 0);
	if (!strstr(slurp(err), "sweep 1 was started by kaf 0.0.1; runs "
		    "added by kaf "))
		fail_msg("want a warning naming the versions, got:\n%s",
			 slurp(err));
	assert_int_equal(query(db, "SELECT count(*) FROM run"), 24 * 4);
}

static void test_sweep_bad_input_changes_nothing(void **st)
{
	const char *db = tmp_path("keep.db"), *txt = tmp_path("notes.txt");
	const char *spec = tmp_path("bad.spec");
	FILE *fp;
	uint64_t before;

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "3",
			     "--quiet", NULL), 0);
	before = file_hash(db);
	expect_error("unknown axis \"optimizer\"", "sweep", "--db", db,
		     "--set", "optimizer=adam", NULL);
	expect_error("\"adamw\"", "sweep", "--db", db, "--set", "opt=adamw",
		     NULL);
	expect_error("axis reg has no values", "sweep", "--db", db, "--set",
		     "reg=", NULL);
	expect_error("--runs", "sweep", "--db", db, "--runs", "0", NULL);
	expect_error("--runs", "sweep", "--db", db, "--runs", "-3", NULL);
	expect_error("--threads", "sweep", "--db", db, "--threads", "0",
		     NULL);
	expect_error("unknown flag \"--frobnicate\"", "sweep", "--db", db,
		     "--frobnicate", NULL);
	expect_error("calc_num must be in 2..", "sweep", "--db", db, "--set",
		     "calc_num=5000", NULL);
	fp = fopen(spec, "w");
	fputs("opt = adam\n\ninit = he\n", fp);
	fclose(fp);
	expect_error(":3:", "sweep", "--db", db, "--spec", spec, NULL);
	expect_error("no-such.spec", "sweep", "--db", db, "--spec",
		     tmp_path("no-such.spec"), NULL);
	assert_true(file_hash(db) == before);

	/* Paths: a directory, a missing directory, a foreign file. */
	expect_error("is a directory", "sweep", "--db", tmpdir, NULL);
	expect_error("/no/such/dir", "sweep", "--db", "/no/such/dir/x.db",
		     NULL);
	fp = fopen(txt, "w");
	fputs("these are my notes, not a database\n", fp);
	fclose(fp);
	before = file_hash(txt);
	expect_error("not an SQLite database", "sweep", "--db", txt, NULL);
	assert_true(file_hash(txt) == before);
}

static void test_sweep_refuses_other_schema_versions(void **st)
{
	const char *db = tmp_path("v7.db"), *other = tmp_path("other.db");
	sqlite3 *h;
	uint64_t before;

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "2",
			     "--quiet", NULL), 0);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 7", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(h);
	before = file_hash(db);
	expect_error("schema version 7", "sweep", "--db", db, "--runs", "2",
		     NULL);
	assert_true(file_hash(db) == before);

	/* An SQLite file of another application. */
	assert_int_equal(sqlite3_open(other, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "CREATE TABLE t (x)", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(h);
	expect_error("not a kaf database", "sweep", "--db", other, NULL);
	remove_db(other);
}

/* The cell_summary view's Wilson bounds against hand-computed values. */
static void test_sweep_wilson_view_matches_hand_values(void **st)
{
	const char *db = tmp_path("wilson.db");
	sqlite3 *h;
	sqlite3_stmt *stmt;

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "1",
			     "--set", "init=xavier_uniform", "--set",
			     "reg=none", "--set", "opt=sgd", "--quiet", NULL),
			 0);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	/* Replace the one run by 10 runs of which 3 diverged. */
	assert_int_equal(sqlite3_exec(h,
		"DELETE FROM run;"
		"WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r"
		" WHERE i < 9) INSERT INTO run (cell_id, replicate, seed, "
		"diverged, cause, steps, zero_rows, wall_us) SELECT 1, i, i, "
		"i < 3, CASE WHEN i < 3 THEN 'kernel_underflow' ELSE 'none' "
		"END, 5, 0, 1 FROM r", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT runs, diverged, rate, "
					    "ci_low, ci_high FROM "
					    "cell_summary", -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 10);
	assert_int_equal(sqlite3_column_int(stmt, 1), 3);
	/* 3 of 10: (0.3 + z^2/20 -+ z sqrt(0.021 + z^2/400)) / (1 + z^2/10)
	 * with z = 1.959964: 0.1077913 and 0.6032219. */
	assert_float_equal(sqlite3_column_double(stmt, 2), 0.3, 1e-12);
	assert_float_equal(sqlite3_column_double(stmt, 3), 0.1077913, 1e-6);
	assert_float_equal(sqlite3_column_double(stmt, 4), 0.6032219, 1e-6);
	sqlite3_finalize(stmt);
	sqlite3_close(h);
}

static void test_sweep_traces_are_stored_and_agree(void **st)
{
	const char *db = tmp_path("trace.db");

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--db", db, "--runs", "3",
			     "--set", "epochs=4", "--set", "kernel=stable",
			     "--trace", "--quiet", NULL), 0);
	/* Stable K-AF on boston does not diverge: 4 epochs per run. */
	assert_int_equal(query(db, "SELECT count(*) FROM run WHERE "
				    "diverged"), 0);
	assert_int_equal(query(db, "SELECT count(*) FROM trace"),
			 24 * 3 * 4);
	/* The last epoch's train loss is the run's, read back exactly. */
	assert_int_equal(query(db, "SELECT count(*) FROM run AS r JOIN "
				    "trace AS t ON t.cell_id = r.cell_id AND "
				    "t.replicate = r.replicate AND t.epoch = 3 "
				    "WHERE t.train_loss = r.train_loss AND "
				    "t.bandwidth = r.bandwidth"), 24 * 3);
	assert_int_equal(query(db, "SELECT count(*) FROM run AS r JOIN "
				    "trace AS t ON t.cell_id = r.cell_id AND "
				    "t.replicate = r.replicate AND t.epoch = 3 "
				    "WHERE t.val_loss = r.val_loss"), 24 * 3);
}

static void test_sweep_links_are_snapshotted(void **st)
{
	const char *db = tmp_path("link.db");

	(void)st;
	assert_int_equal(kaf(NULL, "sweep", "--preset", "exp2", "--db", db,
			     "--set", "epochs=3", "--set", "dataset=iris",
			     "--set", "calc_num=30",
			     "--no-report", "--quiet", NULL), 0);
	/* Snapshots at steps 0 and 2 (the last) of each of the 5 cells. */
	assert_int_equal(query(db, "SELECT count(*) FROM link_frame"),
			 5 * 2);
	/* iris: 3 outputs x 101 points, and the 30 calc rows. */
	assert_int_equal(query(db, "SELECT count(*) FROM link_point"),
			 5 * 2 * 3 * 101);
	assert_int_equal(query(db, "SELECT count(*) FROM link_calc"),
			 5 * 2 * 3 * 30);
	/* Points ascend in z, and a one-hot link stays within [0, 1]. */
	assert_int_equal(query(db, "SELECT count(*) FROM link_point AS a "
				    "JOIN link_point AS b USING (cell_id, "
				    "replicate, epoch, output) WHERE b.point = "
				    "a.point + 1 AND b.z < a.z"), 0);
	assert_int_equal(query(db, "SELECT count(*) FROM link_point "
				    "WHERE yhat < 0 OR yhat > 1 OR yhat IS "
				    "NULL"), 0);
}

/*
 * The engine's hot loops exist once per instruction set; a build without
 * those versions runs the baseline code alone. Every activation, both
 * kernels and precisions, with and without standardization, on every
 * dataset: the same rows and traces, bit for bit.
 */
static void test_sweep_instruction_sets_give_the_same_rows(void **st)
{
	const char *spec = tmp_path("isa.spec");
	const char *dbs[2] = {tmp_path("isa_hot.db"), tmp_path("isa_base.db")};
	const char *bins[2] = {KAF_BIN, KAF_PORTABLE_BIN};
	const char *trace_sql = "SELECT * FROM trace ORDER BY 1, 2, 3";
	uint64_t runs[2], traces[2];
	long n_runs[2], n_traces[2];
	FILE *fp = fopen(spec, "w");

	(void)st;
	assert_non_null(fp);
	fputs("dataset = iris, digits, wine, boston, breast_cancer\n"
	      "activation = linear, relu, sigmoid, tanh, swish, mish, kaf\n"
	      "kernel = naive, stable\nprecision = f32, f64\n"
	      "init = kaiming_uniform\nreg = l2\nopt = sgd, adam\n"
	      "lr = 0.01\nepochs = 6\ncalc_num = 20\n"
	      "standardize = 0, 1\n", fp);
	fclose(fp);
	for (int v = 0; v < 2; v++) {
		const char *args[] = {"sweep", "--spec", spec, "--db", dbs[v],
				      "--trace", "--no-report", "--runs", "2",
				      "--quiet", NULL};

		assert_int_equal(child_wait(child_spawn(bins[v], args, NULL), NULL),
				 0);
		runs[v] = runs_hash(dbs[v], &n_runs[v]);
		traces[v] = rows_hash(dbs[v], trace_sql, &n_traces[v]);
	}
	/* 5 datasets x (6 activations x 2 precisions + K-AF x 2 kernels x
	 * 2 precisions) x 2 optimizers x 2 standardizations, 2 runs each. */
	assert_int_equal(n_runs[0], 5 * 16 * 2 * 2 * 2);
	assert_int_equal(n_runs[1], n_runs[0]);
	assert_true(runs[0] == runs[1]);
	assert_true(n_traces[0] > n_runs[0]);
	assert_int_equal(n_traces[1], n_traces[0]);
	assert_true(traces[0] == traces[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep_threads_do_not_change_results),
		cmocka_unit_test(test_sweep_resumes_after_kill),
		cmocka_unit_test(test_sweep_interrupt_keeps_finished_runs),
		cmocka_unit_test(test_sweep_runs_extend_and_specs_separate),
		cmocka_unit_test(test_sweep_other_version_is_named_on_resume),
		cmocka_unit_test(test_sweep_bad_input_changes_nothing),
		cmocka_unit_test(test_sweep_refuses_other_schema_versions),
		cmocka_unit_test(test_sweep_wilson_view_matches_hand_values),
		cmocka_unit_test(test_sweep_traces_are_stored_and_agree),
		cmocka_unit_test(test_sweep_links_are_snapshotted),
		cmocka_unit_test(test_sweep_instruction_sets_give_the_same_rows),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
