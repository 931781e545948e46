/*
 * test_faults.c - kaf under faults and hostile input: the real binary
 * killed at random moments, starved of disk, read while it writes, and
 * fed every kind of bad input the README lists; plus the inputs that
 * fuzzing found, replayed through the parsers.
 *
 * Delays scale with the time of an uninterrupted reference sweep, so the
 * suite means the same on a fast machine and under the sanitizers. The
 * kill delays come from KAF_FAULTS_SEED (default 1); a failure names it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "data.h"
#include "grid.h"
#include "rng.h"

#ifndef KAF_BIN
#error "KAF_BIN must name the kaf binary"
#endif
#ifndef KAF_SOURCE_DIR
#error "KAF_SOURCE_DIR must name the source tree"
#endif

#define RUNS "300"              /* runs per cell of every sweep here */
#define TOTAL (24 * 300)        /* runs of the default grid at RUNS */
#define KILLS 5

/*
 * A hostile CSV must be refused within this much memory (peak resident
 * size of the kaf process). The files here are at most 64 MB (the byte
 * limit, reached on /dev/zero); kaf needs about 70 MB for that, 240 MB
 * under AddressSanitizer, whose quarantine keeps freed blocks.
 */
#define MAX_RSS_KB (512L * 1024)

static char tmpdir[] = "/tmp/kaf_faults_XXXXXX";
static double ref_seconds;      /* wall time of the reference sweep */

/* ---- paths and files ---- */

/* A path in the test directory; each name keeps its own buffer. */
static const char *tmp_path(const char *name)
{
	static char buf[64][256];
	static int used;

	for (int i = 0; i < used; i++)
		if (!strcmp(buf[i] + strlen(tmpdir) + 1, name))
			return buf[i];
	assert_true(used < 64);
	snprintf(buf[used], sizeof(buf[used]), "%s/%s", tmpdir, name);
	return buf[used++];
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/*
 * How many lines of text hold needle; the last of them is copied to out
 * ("" if none).
 */
static int find_lines(const char *text, const char *needle, char *out,
		      size_t size)
{
	int n = 0;

	out[0] = '\0';
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char one[4096];

		snprintf(one, sizeof(one), "%.*s", (int)len, line);
		if (strstr(one, needle)) {
			snprintf(out, size, "%s", one);
			n++;
		}
		line += len + (nl != NULL);
	}
	return n;
}

/* True if text has exactly one error line and it holds every needle. */
static bool one_error_naming(const char *text, const char *a, const char *b)
{
	char line[4096];

	return find_lines(text, " error: ", line, sizeof(line)) == 1 &&
	       strstr(line, a) && (!b || strstr(line, b));
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_seconds(double s)
{
	struct timespec ts = {
		.tv_sec = (time_t)s,
		.tv_nsec = (long)((s - (double)(time_t)s) * 1e9),
	};

	nanosleep(&ts, NULL);
}

/* ---- running kaf ---- */

static pid_t spawn(const char *const *args, const struct child_opts *o)
{
	return child_spawn(KAF_BIN, args, o);
}

/* Resident size of a running process in kB, 0 once it is gone. */
static long resident_kb(pid_t pid)
{
	char path[64];
	long pages = 0, resident = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return 0;
	if (fscanf(fp, "%ld %ld", &pages, &resident) != 2)
		resident = 0;
	fclose(fp);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/*
 * Wait for pid while watching its memory: past max_kb it is killed and
 * the test fails, so a parser that reads without end cannot take the
 * machine down with it. The peak from wait4 is checked as well.
 */
static int wait_bounded(pid_t pid, long max_kb)
{
	siginfo_t info;
	long peak;
	int status;

	for (;;) {
		info.si_pid = 0;
		assert_int_equal(waitid(P_PID, (id_t)pid, &info,
					WEXITED | WNOHANG | WNOWAIT), 0);
		if (info.si_pid == pid)
			break;
		if (resident_kb(pid) > max_kb) {
			kill(pid, SIGKILL);
			child_wait(pid, NULL);
			fail_msg("kaf took more than %ld kB; killed", max_kb);
		}
		sleep_seconds(0.005);
	}
	status = child_wait(pid, &peak);
	if (peak > max_kb)
		fail_msg("kaf took %ld kB, more than %ld kB", peak, max_kb);
	return status;
}

static int run_kaf(const char *const *args, const struct child_opts *o)
{
	return child_wait(spawn(args, o), NULL);
}

/* `kaf sweep` of the default grid at RUNS per cell into db. */
static int sweep(const char *db, const struct child_opts *o)
{
	const char *args[] = {"sweep", "--db", db, "--runs", RUNS,
			      "--threads", "2", "--quiet", "--no-report", NULL};

	return run_kaf(args, o);
}

/* ---- reading databases ---- */

/*
 * Wait until the run table of path holds at least min rows: true then,
 * false if kaf (pid) exits first, which it leaves to be waited for.
 */
static bool wait_for_runs(const char *path, long min, pid_t pid)
{
	double give_up = now() + 60 + 20 * ref_seconds;
	siginfo_t info;
	long n = -1;

	while (now() < give_up) {
		if (try_query(path, "SELECT count(*) FROM run", &n) ==
		    SQLITE_OK && n >= min)
			return true;
		info.si_pid = 0;
		if (waitid(P_PID, (id_t)pid, &info,
			   WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    info.si_pid == pid)
			return false;
		sleep_seconds(0.002);
	}
	fail_msg("%s never held %ld runs (last count %ld)", path, min, n);
	return false;
}

/*
 * Rows of db's run table not in ref's, or (the other way) of ref's not in
 * db's, comparing every column but wall_us, plus the cell's index. The
 * columns come from the schema, so a column added later is compared too.
 */
static long rows_not_in(const char *db_path, const char *ref_path,
			bool reverse)
{
	char cols[1024] = "", sql[4096];
	sqlite3 *db;
	sqlite3_stmt *stmt;
	long n = -1;

	assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	snprintf(sql, sizeof(sql), "ATTACH '%s' AS ref", ref_path);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat('r.' || "
					    "name, ', ') FROM pragma_table_"
					    "info('run') WHERE name <> "
					    "'wall_us'", -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	snprintf(cols, sizeof(cols), "%s", sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT c.cell_index, "
		 "%s FROM %s.run AS r JOIN %s.cell AS c USING (cell_id) EXCEPT "
		 "SELECT c.cell_index, %s FROM %s.run AS r JOIN %s.cell AS c "
		 "USING (cell_id))", cols, reverse ? "ref" : "main",
		 reverse ? "ref" : "main", cols, reverse ? "main" : "ref",
		 reverse ? "main" : "ref");
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
			 SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		n = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return n;
}

/*
 * What must hold after any kill or failure: the file is sound, there is
 * at most one sweep with all of its cells, no run twice, and every stored
 * run is exactly the reference sweep's run. Returns the runs stored.
 */
static long check_consistent(const char *db, const char *what)
{
	long runs, sweeps;

	if (query(db, "SELECT count(*) FROM pragma_integrity_check WHERE "
		  "integrity_check <> 'ok'") != 0)
		fail_msg("%s: integrity_check is not ok", what);
	sweeps = query(db, "SELECT count(*) FROM sweep");
	if (sweeps > 1 ||
	    query(db, "SELECT count(*) FROM cell") != 24 * sweeps)
		fail_msg("%s: %ld sweeps, %ld cells", what, sweeps,
			 query(db, "SELECT count(*) FROM cell"));
	runs = query(db, "SELECT count(*) FROM run");
	if (query(db, "SELECT count(*) FROM (SELECT DISTINCT cell_id, "
		  "replicate FROM run)") != runs)
		fail_msg("%s: a run is stored twice", what);
	if (rows_not_in(db, tmp_path("ref.db"), false) != 0)
		fail_msg("%s: %ld stored runs differ from the reference", what,
			 rows_not_in(db, tmp_path("ref.db"), false));
	return runs;
}

/* A finished sweep equal to the reference in every run. */
static void check_complete(const char *db, const char *what)
{
	assert_int_equal(check_consistent(db, what), TOTAL);
	assert_int_equal(rows_not_in(db, tmp_path("ref.db"), true), 0);
	assert_int_equal(query(db, "SELECT count(*) FROM sweep WHERE "
			       "finished_at IS NOT NULL"), 1);
}

/* ---- fixtures ---- */

static int setup(void **state)
{
	const struct child_opts quiet = {0};
	double t0;

	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	t0 = now();
	if (sweep(tmp_path("ref.db"), &quiet) != 0)
		return -1;
	ref_seconds = now() - t0;
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- crash safety ---- */

static uint64_t faults_seed(void)
{
	const char *s = getenv("KAF_FAULTS_SEED");

	return s ? strtoull(s, NULL, 10) : 1;
}

/*
 * SIGKILL at KILLS seeded moments, each a random delay after the database
 * has taken new runs from this process, so that kills land in training,
 * in a commit or between the two. After every kill the file must be
 * consistent; a last run completes it, equal to the reference.
 */
static void test_sweep_survives_random_kills(void **state)
{
	const char *db = tmp_path("killed.db");
	const char *args[] = {"sweep", "--db", db, "--runs", RUNS,
			      "--threads", "2", "--quiet", "--no-report", NULL};
	const struct child_opts quiet = {0};
	uint64_t seed = faults_seed();
	struct kaf_rng rng;
	long stored = 0;
	int interrupted = 0;

	(void)state;
	kaf_rng_init(&rng, seed, 0);
	for (int k = 0; k < KILLS && stored < TOTAL; k++) {
		double delay = 0.1 * ref_seconds * kaf_rng_uniform(&rng);
		pid_t pid = spawn(args, &quiet);
		char what[96];
		int status;

		snprintf(what, sizeof(what), "seed %llu, kill %d %.3f s after "
			 "%ld runs", (unsigned long long)seed, k + 1, delay,
			 stored + 1);
		if (wait_for_runs(db, stored + 1, pid)) {
			sleep_seconds(delay);
			kill(pid, SIGKILL);
		}
		status = child_wait(pid, NULL);
		if (status != 128 + SIGKILL && status != 0)
			fail_msg("%s: kaf exited with %d", what, status);
		stored = check_consistent(db, what);
		interrupted += stored < TOTAL;
	}
	/* Most kills came while the sweep was still running. */
	assert_true(interrupted >= KILLS - 1);
	assert_int_equal(run_kaf(args, &quiet), 0);
	check_complete(db, "after the kills");
}

/* ---- full disk ---- */

/*
 * A database that cannot grow past 192 KiB: the schema and a few batches
 * fit, then a commit fails. kaf must stop with one error naming the file
 * and the cause, keep what it committed, and finish once the limit goes.
 */
static void test_sweep_stops_cleanly_on_full_disk(void **state)
{
	const char *db = tmp_path("full.db"), *err = tmp_path("full.err");
	const struct child_opts limited = {.err_path = err,
					   .max_file = 192 * 1024};
	const struct child_opts quiet = {0};
	const char *text;
	long stored;
	int status;

	(void)state;
	status = sweep(db, &limited);
	text = slurp(err);
	if (status == 0 || status >= 128)
		fail_msg("kaf exited with %d under a file size limit:\n%s",
			 status, text);
	if (!one_error_naming(text, db, "File too large"))
		fail_msg("want one error naming %s and the cause, got:\n%s",
			 db, text);
	stored = check_consistent(db, "after the disk filled");
	assert_true(stored > 0 && stored < TOTAL);
	assert_int_equal(query(db, "SELECT count(*) FROM sweep WHERE "
			       "finished_at IS NULL"), 1);

	assert_int_equal(sweep(db, &quiet), 0);
	check_complete(db, "after the limit was lifted");
}

/*
 * Limits so small that opening, creating the schema or storing the cells
 * fails: still one error line, no crash, and a usable file afterwards.
 */
static void test_sweep_full_disk_at_open_recovers(void **state)
{
	static const rlim_t limits[] = {1024, 8 * 1024, 40 * 1024};
	const char *db = tmp_path("tiny.db"), *err = tmp_path("tiny.err");
	const char *args[] = {"sweep", "--db", db, "--runs", "2",
			      "--threads", "2", "--quiet", "--no-report", NULL};
	const struct child_opts quiet = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		const struct child_opts limited = {.err_path = err,
						   .max_file = limits[i]};
		int status;

		remove_db(db);
		status = run_kaf(args, &limited);
		if (status == 0 || status >= 128 ||
		    !one_error_naming(slurp(err), db, NULL))
			fail_msg("limit %ld bytes: exit %d, stderr:\n%s",
				 (long)limits[i], status, slurp(err));
		assert_int_equal(run_kaf(args, &quiet), 0);
		assert_int_equal(query(db, "SELECT count(*) FROM run"),
				 24 * 2);
	}
}

/* ---- concurrent readers ---- */

struct reader {
	const char *path;
	bool ranking;           /* read the ranking view, else counts */
	atomic_bool *stop;
	long queries;
	long partial;           /* reads that saw a sweep in progress */
	long last_count;
	char error[256];        /* first failure, "" if none */
};

static void reader_fail(struct reader *r, sqlite3 *db, const char *what)
{
	if (!r->error[0])
		snprintf(r->error, sizeof(r->error), "%s: %s (code %d)", what,
			 sqlite3_errmsg(db), sqlite3_extended_errcode(db));
}

/* One long value from sql on db, or -1 with r->error set. */
static long reader_long(struct reader *r, sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW)
		reader_fail(r, db, sql);
	else
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/*
 * In one read transaction the run table and the ranking view must agree:
 * a reader sees whole batches or none. Counts never go down.
 */
static void read_counts(struct reader *r, sqlite3 *db)
{
	long runs, ranked;

	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		reader_fail(r, db, "BEGIN");
		return;
	}
	runs = reader_long(r, db, "SELECT count(*) FROM run");
	ranked = reader_long(r, db, "SELECT coalesce(sum(runs), 0) FROM "
			     "ranking");
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		reader_fail(r, db, "COMMIT");
	if (!r->error[0] && (runs != ranked || runs < r->last_count))
		snprintf(r->error, sizeof(r->error), "saw %ld runs, %ld "
			 "ranked, %ld before", runs, ranked, r->last_count);
	r->last_count = runs;
	r->partial += runs > 0 && runs < TOTAL;
}

static void read_ranking(struct reader *r, sqlite3 *db)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT * FROM ranking", -1, &stmt,
				    NULL);

	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
		rc = SQLITE_OK;
	if (rc != SQLITE_DONE)
		reader_fail(r, db, "SELECT * FROM ranking");
	sqlite3_finalize(stmt);
}

/* A user's sqlite3 session in a loop: its own connection, busy timeout. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(r->path, &db, r->ranking ? SQLITE_OPEN_READONLY :
			    SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		reader_fail(r, db, "open");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	while (!atomic_load(r->stop) && !r->error[0]) {
		if (r->ranking)
			read_ranking(r, db);
		else
			read_counts(r, db);
		r->queries++;
		/* Leave the cores to kaf: two cores run four threads. */
		sleep_seconds(0.002);
	}
	sqlite3_close(db);
	return NULL;
}

static void test_sweep_readers_never_fail(void **state)
{
	const char *db = tmp_path("read.db");
	const char *args[] = {"sweep", "--db", db, "--runs", RUNS,
			      "--threads", "2", "--quiet", "--no-report", NULL};
	const struct child_opts quiet = {0};
	atomic_bool stop = false;
	struct reader readers[2] = {
		{.path = db, .ranking = false, .stop = &stop},
		{.path = db, .ranking = true, .stop = &stop},
	};
	pthread_t threads[2];
	pid_t pid = spawn(args, &quiet);

	(void)state;
	/* As a user would, start reading once the sweep has begun. */
	assert_true(wait_for_runs(db, 1, pid));
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, reader_main,
						&readers[i]), 0);
	assert_int_equal(child_wait(pid, NULL), 0);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		if (readers[i].error[0])
			fail_msg("reader %d after %ld queries: %s", i,
				 readers[i].queries, readers[i].error);
		assert_true(readers[i].queries > 0);
	}
	/* The readers really ran beside the writer. */
	assert_true(readers[0].partial > 0);
	check_complete(db, "after concurrent reads");
}

/* ---- bad input: one row of the README table each ---- */

/*
 * A bad input: kaf's arguments and the start of the one error message it
 * must print before it exits with status 2. In args and message "@"
 * stands for the test directory. prepare (if any) makes the files it
 * needs. Files named in args must be left as they were, and none created.
 */
struct bad_input {
	const char *name;
	const char *args[12];
	const char *message;
	void (*prepare)(void);
	bool check_rss;         /* the file is big: bound the memory */
};

static void make_notes(void)
{
	write_text(tmp_path("notes.txt"),
		   "these are my notes, not a database\n");
}

static void make_dir(void)
{
	mkdir(tmp_path("dbdir"), 0755);
}

/* A finished one-run-per-cell kaf database, changed by edit (SQL). */
static void make_tampered_db(const char *name, const char *edit)
{
	const char *db = tmp_path(name);
	const char *args[] = {"sweep", "--db", db, "--runs", "1", "--quiet",
			      "--no-report", NULL};
	const struct child_opts quiet = {0};
	sqlite3 *h;

	remove_db(db);
	assert_int_equal(run_kaf(args, &quiet), 0);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, edit, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(h), SQLITE_OK);
}

static void make_v7_db(void)
{
	make_tampered_db("v7.db", "PRAGMA user_version = 7");
}

static void make_foreign_db(void)
{
	sqlite3 *h;

	remove_db(tmp_path("other.db"));
	assert_int_equal(sqlite3_open(tmp_path("other.db"), &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "CREATE TABLE t (x)", NULL, NULL,
				      NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(h), SQLITE_OK);
}

static void make_dropped_db(void)
{
	make_tampered_db("dropped.db", "DROP VIEW ranking; DROP VIEW "
			 "cell_summary; DROP TABLE run");
}

/* The first 8 KiB of a kaf database: an SQLite header, pages missing. */
static void make_truncated_db(void)
{
	make_tampered_db("whole.db", "SELECT 1");
	assert_int_equal(truncate(tmp_path("whole.db"), 8192), 0);
	assert_int_equal(rename(tmp_path("whole.db"),
				tmp_path("truncated.db")), 0);
}

static void make_bad_spec(void)
{
	write_text(tmp_path("bad.spec"), "opt = adam\ninit xavier_uniform\n");
}

static void make_csvs(void)
{
	write_text(tmp_path("ragged.csv"), "a,b,y\n1,2,3\n4,5\n");
	write_text(tmp_path("text.csv"), "a,y\n1,2\nfoo,3\n");
	write_text(tmp_path("empty.csv"), "");
	write_text(tmp_path("notarget.csv"), "a,b\n1,2\n3,4\n");
	write_text(tmp_path("label.csv"), "a,y\n1,0\n2,1.5\n3,1\n");
}

/* A header of 2,000,001 names (about 16 MB), then two rows. */
static void make_wide_csv(void)
{
	FILE *fp = fopen(tmp_path("wide.csv"), "w");

	assert_non_null(fp);
	for (long c = 0; c < 2000000; c++)
		fprintf(fp, "c%ld,", c);
	fputs("y\n", fp);
	for (int r = 0; r < 2; r++) {
		for (long c = 0; c < 2000000; c++)
			fputs("1,", fp);
		fputs("2\n", fp);
	}
	assert_int_equal(fclose(fp), 0);
}

/* A 10 MB data line of 5,000,001 cells, and one of a single 10 MB cell. */
static void make_long_csvs(void)
{
	FILE *fp = fopen(tmp_path("long.csv"), "w");

	assert_non_null(fp);
	fputs("a,y\n", fp);
	for (long c = 0; c < 5000000; c++)
		fputs("0,", fp);
	fputs("0\n", fp);
	assert_int_equal(fclose(fp), 0);
	fp = fopen(tmp_path("longcell.csv"), "w");
	assert_non_null(fp);
	fputs("a,y\n", fp);
	for (long c = 0; c < 10000000; c++)
		putc('1', fp);
	fputs(",2\n", fp);
	assert_int_equal(fclose(fp), 0);
}

#define TRAIN(file, target, task) \
	"train", "--data", "@/" file, "--target", target, "--task", task

static const struct bad_input bad_inputs[] = {
	{.name = "test_sweep_rejects_unknown_flag",
	 .args = {"sweep", "--db", "@/new.db", "--frobnicate"},
	 .message = "kaf sweep: unknown flag \"--frobnicate\" (valid: "
		    "--preset"},
	{.name = "test_sweep_rejects_unknown_axis",
	 .args = {"sweep", "--db", "@/new.db", "--set", "optimizer=adam"},
	 .message = "--set: unknown axis \"optimizer\" (valid: dataset, "
		    "activation"},
	{.name = "test_sweep_rejects_unknown_value",
	 .args = {"sweep", "--db", "@/new.db", "--set", "opt=adamw"},
	 .message = "--set: axis opt: unknown value \"adamw\" (valid: sgd, "
		    "momentum, rmsprop, adagrad, adam)"},
	{.name = "test_sweep_rejects_empty_axis",
	 .args = {"sweep", "--db", "@/new.db", "--set", "reg="},
	 .message = "--set: axis reg has no values"},
	{.name = "test_sweep_rejects_zero_runs",
	 .args = {"sweep", "--db", "@/new.db", "--runs", "0"},
	 .message = "--runs: runs: 0 is out of range 1..100000000"},
	{.name = "test_sweep_rejects_negative_runs",
	 .args = {"sweep", "--db", "@/new.db", "--runs", "-3"},
	 .message = "--runs: runs: -3 is out of range 1..100000000"},
	{.name = "test_sweep_rejects_zero_threads",
	 .args = {"sweep", "--db", "@/new.db", "--threads", "0"},
	 .message = "--threads: 0 is out of range 1..1024"},
	{.name = "test_sweep_rejects_missing_db_directory",
	 .args = {"sweep", "--db", "@/no/such/dir/kaf.db"},
	 .message = "cannot create database @/no/such/dir/kaf.db: directory "
		    "@/no/such/dir: No such file or directory"},
	{.name = "test_sweep_rejects_unwritable_db_path",
	 .args = {"sweep", "--db", "/proc/kaf.db"},
	 .message = "database /proc/kaf.db: opening: unable to open "
		    "database file"},
	{.name = "test_sweep_rejects_directory_as_db",
	 .args = {"sweep", "--db", "@/dbdir"},
	 .message = "database @/dbdir is a directory; give a file name",
	 .prepare = make_dir},
	{.name = "test_sweep_rejects_non_sqlite_file",
	 .args = {"sweep", "--db", "@/notes.txt"},
	 .message = "database @/notes.txt: not an SQLite database",
	 .prepare = make_notes},
	{.name = "test_sweep_rejects_other_schema_version",
	 .args = {"sweep", "--db", "@/v7.db", "--runs", "1"},
	 .message = "database @/v7.db: schema version 7, but this kaf reads "
		    "version 1",
	 .prepare = make_v7_db},
	{.name = "test_sweep_rejects_other_application_db",
	 .args = {"sweep", "--db", "@/other.db"},
	 .message = "database @/other.db: not a kaf database "
		    "(application_id 0)",
	 .prepare = make_foreign_db},
	{.name = "test_sweep_rejects_tampered_schema",
	 .args = {"sweep", "--db", "@/dropped.db", "--runs", "1"},
	 .message = "database @/dropped.db: preparing statements: no such "
		    "table: run",
	 .prepare = make_dropped_db},
	{.name = "test_sweep_rejects_truncated_db",
	 .args = {"sweep", "--db", "@/truncated.db", "--runs", "1"},
	 .message = "database @/truncated.db: reading the header: database "
		    "disk image is malformed",
	 .prepare = make_truncated_db},
	{.name = "test_sweep_rejects_malformed_spec_line",
	 .args = {"sweep", "--db", "@/new.db", "--spec", "@/bad.spec"},
	 .message = "@/bad.spec:2: \"init xavier_uniform\" is not of the "
		    "form axis = v1, v2",
	 .prepare = make_bad_spec},
	{.name = "test_sweep_rejects_missing_spec_file",
	 .args = {"sweep", "--db", "@/new.db", "--spec", "@/missing.spec"},
	 .message = "spec file @/missing.spec: No such file or directory"},
	{.name = "test_train_rejects_ragged_row",
	 .args = {TRAIN("ragged.csv", "y", "regression")},
	 .message = "@/ragged.csv:3: row has 2 cells, header has 3",
	 .prepare = make_csvs},
	{.name = "test_train_rejects_non_numeric_cell",
	 .args = {TRAIN("text.csv", "y", "regression")},
	 .message = "@/text.csv:3: column \"a\": cell \"foo\" is not a "
		    "number",
	 .prepare = make_csvs},
	{.name = "test_train_rejects_empty_file",
	 .args = {TRAIN("empty.csv", "y", "regression")},
	 .message = "@/empty.csv: file is empty",
	 .prepare = make_csvs},
	{.name = "test_train_rejects_missing_target_column",
	 .args = {TRAIN("notarget.csv", "y", "regression")},
	 .message = "@/notarget.csv: no column named \"y\" (columns: a, b)",
	 .prepare = make_csvs},
	{.name = "test_train_rejects_non_integer_label",
	 .args = {TRAIN("label.csv", "y", "classification")},
	 .message = "@/label.csv:3: column \"y\": class label \"1.5\" is "
		    "not an integer",
	 .prepare = make_csvs},
	{.name = "test_train_rejects_missing_csv",
	 .args = {TRAIN("missing.csv", "y", "regression")},
	 .message = "@/missing.csv: cannot open: No such file or directory"},
	{.name = "test_train_rejects_huge_header",
	 .args = {TRAIN("wide.csv", "y", "regression")},
	 .message = "@/wide.csv:1: header has more than 100000 columns",
	 .prepare = make_wide_csv, .check_rss = true},
	{.name = "test_train_rejects_long_line",
	 .args = {TRAIN("long.csv", "y", "regression")},
	 .message = "@/long.csv:2: row has 5000001 cells, header has 2",
	 .prepare = make_long_csvs, .check_rss = true},
	{.name = "test_train_rejects_long_cell",
	 .args = {TRAIN("longcell.csv", "y", "regression")},
	 .message = "@/longcell.csv:2: column \"a\": cell \"1111111111",
	 .prepare = make_long_csvs, .check_rss = true},
	{.name = "test_train_rejects_endless_file",
	 .args = {"train", "--data", "/dev/zero", "--target", "y", "--task",
		  "regression"},
	 .message = "/dev/zero: larger than 64 MiB, the limit for a CSV file",
	 .check_rss = true},
};

#define N_BAD ((int)(sizeof(bad_inputs) / sizeof(bad_inputs[0])))

static bool in_tmpdir(const char *path)
{
	return !strncmp(path, tmpdir, strlen(tmpdir));
}

/* text with "@" replaced by the test directory. */
static void expand(const char *text, char *out, size_t size)
{
	size_t used = 0;

	for (; *text && used + 1 < size; text++) {
		if (*text == '@')
			used += (size_t)snprintf(out + used, size - used, "%s",
						 tmpdir);
		else
			out[used++] = *text;
	}
	out[used < size ? used : size - 1] = '\0';
}

static void test_bad_input(void **state)
{
	const struct bad_input *b = *state;
	const char *err = tmp_path("bad.err"), *args[13], *line, *msg;
	char expanded[12][512], want[1024];
	uint64_t before[12];
	const struct child_opts o = {.err_path = err};
	int n = 0, status;

	if (b->prepare)
		b->prepare();
	for (; b->args[n]; n++) {
		expand(b->args[n], expanded[n], sizeof(expanded[n]));
		args[n] = expanded[n];
		before[n] = in_tmpdir(args[n]) ? file_hash(args[n]) : 0;
	}
	args[n] = NULL;
	if (b->check_rss)
		status = wait_bounded(spawn(args, &o), MAX_RSS_KB);
	else
		status = child_wait(spawn(args, &o), NULL);
	line = slurp(err);
	expand(b->message, want, sizeof(want));
	msg = strstr(line, "kaf error: ");
	if (status != 2 || !msg ||
	    strncmp(msg + strlen("kaf error: "), want, strlen(want)) != 0)
		fail_msg("exit %d (want 2), stderr:\n%s\nwant: %s", status,
			 line, want);
	/* One line: the message, not a flood. */
	assert_true(strchr(line, '\n') == line + strlen(line) - 1);
	for (int i = 0; i < n; i++)
		if (in_tmpdir(args[i]) && file_hash(args[i]) != before[i])
			fail_msg("%s was changed or created", args[i]);
}

/* ---- inputs found by fuzzing ---- */

/*
 * Every committed fuzzing input (seeds and regressions) through the
 * parser its harness drives, decoded the same way. In the sanitizer build
 * this replays the crashes; here it checks the contract of a refusal.
 */
static void replay_csv(const unsigned char *data, size_t size)
{
	char target[65] = "target";
	enum kaf_task task;
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = {{0}};
	size_t at = 1;
	int rc;

	if (size < 1)
		return;
	task = data[0] & 1 ? KAF_TASK_REGRESSION : KAF_TASK_CLASSIFICATION;
	if (data[0] & 2) {
		const unsigned char *nl = memchr(data + 1, '\n', size - 1);
		size_t len = nl ? (size_t)(nl - data - 1) : size - 1;

		if (len >= sizeof(target))
			return;
		memcpy(target, data + 1, len);
		target[len] = '\0';
		at = nl ? len + 2 : size;
	}
	rc = kaf_dataset_parse_csv((const char *)data + at, size - at,
				   "fuzz.csv", target, task, &ds, &err);
	assert_true(rc <= 0);
	assert_true(rc == 0 ? ds != NULL : ds == NULL && err.msg[0]);
	kaf_dataset_destroy(ds);
}

static void replay_grid(const char *kind, const char *data, size_t size)
{
	struct kaf_grid g;
	struct kaf_error err = {{0}};
	int rc = 0;

	assert_int_equal(kaf_grid_init(&g, &err), 0);
	if (!strcmp(kind, "spec")) {
		rc = kaf_grid_parse_spec(&g, data, size, "fuzz.spec", &err);
	} else {
		char *args = malloc(size + 1);
		size_t at = 0;

		assert_non_null(args);
		memcpy(args, data, size);
		args[size] = '\0';
		while (at <= size &&
		       (rc = kaf_grid_set(&g, args + at, "--set", &err)) == 0)
			at += strlen(args + at) + 1;
		free(args);
	}
	assert_true(rc <= 0);
	assert_true(rc == 0 || err.msg[0]);
	assert_true(kaf_grid_cells(&g) >= 1);
	kaf_grid_finish(&g);
}

static int replay_dir(const char *top, const char *kind)
{
	char dir[512], path[1024];
	struct dirent *de;
	DIR *d;
	int files = 0;

	snprintf(dir, sizeof(dir), "%s/%s/%s", KAF_SOURCE_DIR "/tests/fuzz",
		 top, kind);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		static char data[1 << 16];
		FILE *fp;
		size_t size;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fp = fopen(path, "rb");
		assert_non_null(fp);
		size = fread(data, 1, sizeof(data), fp);
		fclose(fp);
		if (!strcmp(kind, "csv"))
			replay_csv((const unsigned char *)data, size);
		else
			replay_grid(kind, data, size);
		files++;
	}
	closedir(d);
	return files;
}

static void test_fuzz_inputs_replay(void **state)
{
	static const char *const kinds[] = {"csv", "spec", "set"};
	int seeds = 0;

	(void)state;
	for (int k = 0; k < 3; k++) {
		seeds += replay_dir("corpus", kinds[k]);
		replay_dir("regressions", kinds[k]);
	}
	assert_true(seeds >= 3);
}

int main(void)
{
	struct CMUnitTest tests[5 + N_BAD] = {
		cmocka_unit_test(test_sweep_survives_random_kills),
		cmocka_unit_test(test_sweep_stops_cleanly_on_full_disk),
		cmocka_unit_test(test_sweep_full_disk_at_open_recovers),
		cmocka_unit_test(test_sweep_readers_never_fail),
		cmocka_unit_test(test_fuzz_inputs_replay),
	};

	for (int i = 0; i < N_BAD; i++)
		tests[5 + i] = (struct CMUnitTest){
			.name = bad_inputs[i].name,
			.test_func = test_bad_input,
			.initial_state = (void *)&bad_inputs[i],
		};
	return cmocka_run_group_tests(tests, setup, teardown);
}
