#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture_cell fixture_cell_exp3(const char *init, const char *opt,
				      const char *reg, int diverged)
{
	return (struct fixture_cell){
		.dataset = "boston", .activation = "kaf", .kernel = "naive",
		.precision = "f32", .init = init, .reg = reg, .opt = opt,
		.lambda = 1e-4, .lr = 1e-5, .epochs = 5, .hidden = 20,
		.calc_num = 50, .standardize = 0, .grad_limit = 0,
		.bandwidth = 1.5, .diverged = diverged,
	};
}

/* Rotating by 7 per cell makes paired cells disagree on some pairs. */
bool fixture_diverged(int c, int r, int n, int k)
{
	return (r + 7 * c) % n < k;
}

long fixture_step(int r)
{
	return r % 5 == 4 ? 3 : 0;
}

const char *fixture_cause(int r)
{
	if (fixture_step(r) == 3)
		return "nonfinite_grad";
	return r % 10 == 1 ? "nonfinite_loss" : "kernel_underflow";
}

double fixture_val_loss(int c, int r)
{
	if (r % 17 == 16)
		return NAN;
	return (1.0 + c) * (10.0 + r) * (r % 3 == 0 ? 100.0 : 1.0);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	long len;
	char *s;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc((size_t)len + 1);
	if (s && fread(s, 1, (size_t)len, f) == (size_t)len)
		s[len] = '\0';
	else
		s = (free(s), NULL);
	fclose(f);
	return s;
}

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	fprintf(stderr, "fixture: %s\n", msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

sqlite3 *fixture_create(const char *path, const char *schema_path)
{
	char *schema = read_text(schema_path);
	sqlite3 *db = NULL;

	remove(path);
	if (!schema) {
		fprintf(stderr, "fixture: cannot read %s\n", schema_path);
		return NULL;
	}
	if (sqlite3_open(path, &db) != SQLITE_OK || exec(db, schema) ||
	    exec(db, "PRAGMA application_id = 1262569009; "
		 "PRAGMA user_version = 1;")) {
		sqlite3_close(db);
		db = NULL;
	}
	free(schema);
	return db;
}

static long long insert_sweep(sqlite3 *db, const struct fixture_sweep *s)
{
	sqlite3_stmt *st = NULL;
	static int made;
	long long id = -1;
	char hash[64];

	/* spec_hash is unique per database; a counter keeps it so. */
	snprintf(hash, sizeof(hash), "fixture-%d", ++made);
	if (sqlite3_prepare_v2(db, "INSERT INTO sweep (spec_hash, spec, "
			       "preset, seed, seeding, runs_per_cell, "
			       "kaf_version, host, threads, started_at, "
			       "finished_at) VALUES (?1, 'fixture', ?2, 0, "
			       "?3, ?4, 'test', 'test', 1, "
			       "'2024-01-01T00:00:00Z', "
			       "'2024-01-01T00:01:00Z')", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, s->preset, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s->seeding, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, s->runs);
	if (sqlite3_step(st) == SQLITE_DONE)
		id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	return id;
}

static long long insert_cell(sqlite3 *db, long long sweep, int index,
			     int runs, const struct fixture_cell *c)
{
	sqlite3_stmt *st = NULL;
	long long id = -1;

	if (sqlite3_prepare_v2(db, "INSERT INTO cell (sweep_id, cell_index, "
			       "dataset, activation, kernel, precision, init, "
			       "reg, lambda, opt, lr, epochs, hidden, "
			       "calc_num, standardize, grad_limit, bandwidth, "
			       "target_runs, block) VALUES (?, ?, ?, ?, ?, ?, "
			       "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1,
			       &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, sweep);
	sqlite3_bind_int(st, 2, index);
	sqlite3_bind_text(st, 3, c->dataset, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->activation, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->kernel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, c->precision, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, c->init, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, c->reg, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 9, c->lambda);
	sqlite3_bind_text(st, 10, c->opt, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 11, c->lr);
	sqlite3_bind_int64(st, 12, c->epochs);
	sqlite3_bind_int64(st, 13, c->hidden);
	sqlite3_bind_int64(st, 14, c->calc_num);
	sqlite3_bind_int64(st, 15, c->standardize);
	sqlite3_bind_double(st, 16, c->grad_limit);
	sqlite3_bind_double(st, 17, c->bandwidth);
	sqlite3_bind_int(st, 18, runs);
	sqlite3_bind_text(st, 19, c->block ? c->block : "", -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	return id;
}

static void bind_run(sqlite3_stmt *st, long long cell_id, int c, int r,
		     const struct fixture_sweep *s)
{
	const struct fixture_cell *cell = &s->cells[c];
	bool div = fixture_diverged(c, r, s->runs, cell->diverged);
	double loss = fixture_val_loss(c, r);

	sqlite3_bind_int64(st, 1, cell_id);
	sqlite3_bind_int(st, 2, r);
	sqlite3_bind_int64(st, 3, strcmp(s->seeding, "paired") == 0 ? r :
			   (long long)c * s->runs + r);
	sqlite3_bind_int(st, 4, div);
	sqlite3_bind_text(st, 5, div ? fixture_cause(r) : "none", -1,
			  SQLITE_STATIC);
	if (div)
		sqlite3_bind_int64(st, 6, fixture_step(r));
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, div ? fixture_step(r) + 1 : cell->epochs);
	if (!div && isfinite(loss))
		sqlite3_bind_double(st, 8, loss);
	else
		sqlite3_bind_null(st, 8);
}

static int insert_runs(sqlite3 *db, long long cell_id, int c,
		       const struct fixture_sweep *s)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "INSERT INTO run (cell_id, replicate, "
			       "seed, diverged, cause, step, steps, val_loss, "
			       "train_loss, zero_rows, wall_us) VALUES (?1, "
			       "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 0, 100)", -1,
			       &st, NULL) != SQLITE_OK)
		return -1;
	for (int r = 0; r < s->runs && !rc; r++) {
		bind_run(st, cell_id, c, r, s);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

long long fixture_add_sweep(sqlite3 *db, const struct fixture_sweep *s)
{
	long long sweep;
	int rc = exec(db, "BEGIN");

	sweep = rc ? -1 : insert_sweep(db, s);
	for (int c = 0; c < s->ncells && sweep > 0; c++) {
		long long cell = insert_cell(db, sweep, c, s->runs,
					     &s->cells[c]);

		if (cell < 0 || insert_runs(db, cell, c, s))
			sweep = -1;
	}
	if (sweep < 0) {
		fprintf(stderr, "fixture: %s\n", sqlite3_errmsg(db));
		exec(db, "ROLLBACK");
		return -1;
	}
	return exec(db, "COMMIT") ? -1 : sweep;
}

void fixture_trace(int c, int r, long e, double *train, double *val)
{
	*train = (1.0 + c) * (1.0 + r) / (1.0 + (double)e);
	*val = 2 * *train + 0.5;
}

static int insert_trace_rows(sqlite3_stmt *st, long long cell_id, int c,
			     int r, long last)
{
	int rc = 0;

	for (long e = 0; e <= last && !rc; e++) {
		double train, val;

		fixture_trace(c, r, e, &train, &val);
		sqlite3_bind_int64(st, 1, cell_id);
		sqlite3_bind_int(st, 2, r);
		sqlite3_bind_int64(st, 3, e);
		sqlite3_bind_double(st, 4, train);
		sqlite3_bind_double(st, 5, val);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		sqlite3_reset(st);
	}
	return rc;
}

int fixture_add_traces(sqlite3 *db, long long sweep_id)
{
	sqlite3_stmt *runs = NULL, *ins = NULL;
	int rc = exec(db, "BEGIN");

	if (!rc && (sqlite3_prepare_v2(db, "SELECT r.cell_id, c.cell_index, "
				       "r.replicate, CASE WHEN r.diverged "
				       "THEN r.step ELSE c.epochs - 1 END "
				       "FROM run AS r JOIN cell AS c USING "
				       "(cell_id) WHERE c.sweep_id = ?1", -1,
				       &runs, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db, "INSERT INTO trace (cell_id, "
				       "replicate, epoch, train_loss, "
				       "val_loss) VALUES (?1, ?2, ?3, ?4, ?5)",
				       -1, &ins, NULL) != SQLITE_OK))
		rc = -1;
	if (!rc)
		sqlite3_bind_int64(runs, 1, sweep_id);
	while (!rc && sqlite3_step(runs) == SQLITE_ROW)
		rc = insert_trace_rows(ins, sqlite3_column_int64(runs, 0),
				       sqlite3_column_int(runs, 1),
				       sqlite3_column_int(runs, 2),
				       sqlite3_column_int64(runs, 3));
	sqlite3_finalize(runs);
	sqlite3_finalize(ins);
	if (rc) {
		fprintf(stderr, "fixture: %s\n", sqlite3_errmsg(db));
		exec(db, "ROLLBACK");
		return -1;
	}
	return exec(db, "COMMIT");
}

void fixture_link_range(int k, double *lo, double *hi)
{
	static const double ranges[3][2] = {{-6, 6}, {-3, 3}, {0, 3}};

	*lo = ranges[k % 3][0];
	*hi = ranges[k % 3][1];
}

double fixture_link(int k, int f, int nframes, double z)
{
	double s = (f + 1.0) / nframes;

	switch (k % 3) {
	case 0:
		return 1 / (1 + exp(-s * z));
	case 1:
		return exp(-s * z * z / 2);
	default:
		return s * (3 - z);
	}
}

static int link_frame_rows(sqlite3 *db, long long cell_id, int f,
			   long epoch, int nframes, int npoints, int ncalc)
{
	char sql[160];
	int rc;

	snprintf(sql, sizeof(sql), "INSERT INTO link_frame VALUES (%lld, 0, "
		 "%ld, %.17g)", cell_id, epoch, 1.5 - 0.01 * f);
	rc = exec(db, sql);
	for (int k = 0; k < 3 && !rc; k++) {
		double lo, hi;

		fixture_link_range(k, &lo, &hi);
		for (int i = 0; i < npoints && !rc; i++) {
			double z = lo + (hi - lo) * i / (npoints - 1);

			snprintf(sql, sizeof(sql), "INSERT INTO link_point "
				 "VALUES (%lld, 0, %ld, %d, %d, %.17g, %.17g)",
				 cell_id, epoch, k, i, z,
				 fixture_link(k, f, nframes, z));
			rc = exec(db, sql);
		}
		for (int j = 0; j < ncalc && !rc; j++) {
			double z = lo + (hi - lo) * (j + 0.5) / ncalc;

			snprintf(sql, sizeof(sql), "INSERT INTO link_calc "
				 "VALUES (%lld, 0, %ld, %d, %d, %.17g, %d)",
				 cell_id, epoch, k, j, z,
				 fixture_link(k, f, nframes, z) > 0.5);
			rc = exec(db, sql);
		}
	}
	return rc;
}

int fixture_add_links(sqlite3 *db, long long sweep_id, int c, int nframes,
		      long every, int npoints, int ncalc)
{
	sqlite3_stmt *st = NULL;
	long long cell_id = -1;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT cell_id FROM cell WHERE sweep_id "
			       "= ?1 AND cell_index = ?2", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, sweep_id);
	sqlite3_bind_int(st, 2, c);
	if (sqlite3_step(st) == SQLITE_ROW)
		cell_id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (cell_id < 0 || exec(db, "BEGIN"))
		return -1;
	for (int f = 0; f < nframes && !rc; f++)
		rc = link_frame_rows(db, cell_id, f, f < nframes - 1 ?
				     f * every : (nframes - 1) * every - 1,
				     nframes, npoints, ncalc);
	if (rc) {
		exec(db, "ROLLBACK");
		return -1;
	}
	return exec(db, "COMMIT");
}

/* ---- files ---- */

void fixture_remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[1024];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			chmod(path, 0700);
			fixture_remove_tree(path);
		} else {
			unlink(path);
		}
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

char *fixture_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)len + 1))) {
		if (fread(s, 1, (size_t)len, f) == (size_t)len) {
			s[len] = '\0';
		} else {
			free(s);
			s = NULL;
		}
	}
	fclose(f);
	return s;
}
