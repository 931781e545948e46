#include "store.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datasets_embed.h"
#include "log.h"
#include "rng.h"

/* The schema text, embedded at build time from schemas/kaf.sql. */
extern const struct kaf_builtin_csv kaf_schema_texts[];

struct kaf_store {
	sqlite3 *db;
	char *path;
	int64_t sweep_id;
	long cells;
	int64_t *cell_ids;      /* (cells) database id of each grid cell */
	sqlite3_stmt *insert_run;
	sqlite3_stmt *insert_trace;
	sqlite3_stmt *insert_link[3];   /* by enum kaf_link_kind */
	sqlite3_stmt *select_done;
};

/*
 * The system error behind a failed call on the database file or its WAL,
 * 0 if none is known. sqlite3_system_errno() alone does not do: SQLite
 * reads errno after later calls have reset it.
 */
static int last_errno(sqlite3 *db)
{
	sqlite3_file *wal = NULL;
	int sys = 0;

	sqlite3_file_control(db, "main", SQLITE_FCNTL_LAST_ERRNO, &sys);
	if (!sys && sqlite3_file_control(db, "main",
					 SQLITE_FCNTL_JOURNAL_POINTER,
					 &wal) == SQLITE_OK &&
	    wal && wal->pMethods)
		wal->pMethods->xFileControl(wal, SQLITE_FCNTL_LAST_ERRNO, &sys);
	return sys ? sys : sqlite3_system_errno(db);
}

/*
 * SQLite words every failed write "disk I/O error"; the system error
 * behind it tells a file size limit or a broken disk from the rest.
 */
static int db_error(struct kaf_store *st, struct kaf_error *err,
		    const char *doing)
{
	int code = sqlite3_errcode(st->db);
	int sys = code == SQLITE_IOERR || code == SQLITE_FULL ||
		  code == SQLITE_CANTOPEN ? last_errno(st->db) : 0;

	if (sys)
		return kaf_error_set(err, KAF_EDB, "database %s: %s: %s (%s)",
				     st->path, doing, sqlite3_errmsg(st->db),
				     strerror(sys));
	return kaf_error_set(err, KAF_EDB, "database %s: %s: %s", st->path,
			     doing, sqlite3_errmsg(st->db));
}

static void utc_now(char *buf, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- opening ---- */

static int check_path(const char *path, bool *exists, struct kaf_error *err)
{
	struct stat sb;
	char *copy, *dir;
	int rc = KAF_OK;

	*exists = stat(path, &sb) == 0;
	if (*exists)
		return S_ISDIR(sb.st_mode) ?
		       kaf_error_set(err, KAF_EIO, "database %s is a "
				     "directory; give a file name", path) :
		       KAF_OK;
	copy = strdup(path);
	if (!copy)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	dir = dirname(copy);
	if (access(dir, W_OK | X_OK) != 0)
		rc = kaf_error_set(err, KAF_EIO, "cannot create database %s: "
				   "directory %s: %s", path, dir,
				   strerror(errno));
	free(copy);
	return rc;
}

static int pragma_int(struct kaf_store *st, const char *sql, int *out,
		      struct kaf_error *err)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
		*out = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_NOTADB)
			return kaf_error_set(err, KAF_EDB, "database %s: not "
					     "an SQLite database", st->path);
		return db_error(st, err, "reading the header");
	}
	return KAF_OK;
}

/* An existing file: empty, or a kaf database of our version. */
static int check_existing(struct kaf_store *st, bool *fresh,
			  struct kaf_error *err)
{
	int app = 0, version = 0, tables = 0;
	int rc = pragma_int(st, "PRAGMA application_id", &app, err);

	if (rc == KAF_OK)
		rc = pragma_int(st, "PRAGMA user_version", &version, err);
	if (rc == KAF_OK)
		rc = pragma_int(st, "SELECT count(*) FROM sqlite_master",
				&tables, err);
	if (rc)
		return rc;
	*fresh = tables == 0 && app == 0;
	if (*fresh)
		return KAF_OK;
	if (app != KAF_APPLICATION_ID)
		return kaf_error_set(err, KAF_EDB, "database %s: not a kaf "
				     "database (application_id %d)", st->path,
				     app);
	if (version != KAF_SCHEMA_VERSION)
		return kaf_error_set(err, KAF_EDB, "database %s: schema "
				     "version %d, but this kaf reads version "
				     "%d", st->path, version,
				     KAF_SCHEMA_VERSION);
	return KAF_OK;
}

static int create_schema(struct kaf_store *st, struct kaf_error *err)
{
	char sql[256];
	char *msg = NULL;

	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; "
		 "PRAGMA user_version = %d;", KAF_APPLICATION_ID,
		 KAF_SCHEMA_VERSION);
	if (sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(st->db, kaf_schema_texts[0].text, NULL, NULL,
			 &msg) != SQLITE_OK ||
	    sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
		kaf_error_set(err, KAF_EDB, "database %s: creating the "
			      "schema: %s", st->path,
			      msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return KAF_EDB;
	}
	return KAF_OK;
}

static int prepare(struct kaf_store *st, struct kaf_error *err)
{
	static const char insert_run[] =
		"INSERT OR IGNORE INTO run (cell_id, replicate, seed, "
		"diverged, cause, step, steps, train_loss, val_loss, "
		"accuracy, val_mae, max_grad_norm, bandwidth, zero_rows, "
		"wall_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
	static const char insert_trace[] =
		"INSERT OR IGNORE INTO trace VALUES (?,?,?,?,?,?,?)";
	static const char *const insert_link[3] = {
		[KAF_LINK_FRAME] = "INSERT OR IGNORE INTO link_frame VALUES "
				   "(?1, ?2, ?3, ?7)",
		[KAF_LINK_POINT] = "INSERT OR IGNORE INTO link_point VALUES "
				   "(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
		[KAF_LINK_CALC] = "INSERT OR IGNORE INTO link_calc VALUES "
				  "(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	};
	static const char select_done[] =
		"SELECT c.cell_index, r.replicate FROM cell AS c JOIN run AS r "
		"ON r.cell_id = c.cell_id WHERE c.sweep_id = ?1 AND "
		"r.replicate BETWEEN ?2 AND ?3";

	if (sqlite3_prepare_v2(st->db, insert_run, -1, &st->insert_run,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->db, insert_trace, -1, &st->insert_trace,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->db, select_done, -1, &st->select_done,
			       NULL) != SQLITE_OK)
		return db_error(st, err, "preparing statements");
	for (int k = 0; k < 3; k++)
		if (sqlite3_prepare_v2(st->db, insert_link[k], -1,
				       &st->insert_link[k], NULL) != SQLITE_OK)
			return db_error(st, err, "preparing statements");
	return KAF_OK;
}

int kaf_store_open(const char *path, struct kaf_store **out,
		   struct kaf_error *err)
{
	struct kaf_store *st;
	bool exists, fresh = true;
	int flags = SQLITE_OPEN_READWRITE;
	int rc = check_path(path, &exists, err);

	*out = NULL;
	if (rc)
		return rc;
	st = calloc(1, sizeof(*st));
	if (!st || !(st->path = strdup(path))) {
		free(st);
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	}
	if (!exists)
		flags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		rc = db_error(st, err, "opening");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 10000);
	if (exists && (rc = check_existing(st, &fresh, err)))
		goto fail;
	if (sqlite3_exec(st->db, "PRAGMA journal_mode = WAL; "
			 "PRAGMA synchronous = NORMAL;", NULL, NULL,
			 NULL) != SQLITE_OK) {
		rc = db_error(st, err, "setting WAL mode");
		goto fail;
	}
	if (fresh && (rc = create_schema(st, err)))
		goto fail;
	if ((rc = prepare(st, err)))
		goto fail;
	*out = st;
	return KAF_OK;
fail:
	kaf_store_close(st);
	return rc;
}

void kaf_store_close(struct kaf_store *st)
{
	if (!st)
		return;
	sqlite3_finalize(st->insert_run);
	sqlite3_finalize(st->insert_trace);
	for (int k = 0; k < 3; k++)
		sqlite3_finalize(st->insert_link[k]);
	sqlite3_finalize(st->select_done);
	sqlite3_close(st->db);
	free(st->cell_ids);
	free(st->path);
	free(st);
}

struct sqlite3 *kaf_store_db(struct kaf_store *st)
{
	return st->db;
}

/* ---- the sweep and its cells ---- */

static int insert_cell(struct kaf_store *st, sqlite3_stmt *stmt,
		       const struct kaf_grid *g, long index,
		       struct kaf_error *err)
{
	int col = 1;

	sqlite3_reset(stmt);
	struct kaf_cell cell;

	kaf_grid_cell(g, index, &cell);
	sqlite3_bind_int64(stmt, col++, st->sweep_id);
	sqlite3_bind_int64(stmt, col++, index);
	sqlite3_bind_text(stmt, col++, cell.block, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, col++, cell.runs);
	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		const char *v = kaf_grid_value(g, index, (enum kaf_axis)a);

		if (a == KAF_AXIS_STANDARDIZE)
			sqlite3_bind_int(stmt, col++, !strcmp(v, "true"));
		else if (a == KAF_AXIS_LAMBDA || a == KAF_AXIS_LR ||
			 a == KAF_AXIS_GRAD_LIMIT || a == KAF_AXIS_BANDWIDTH)
			sqlite3_bind_double(stmt, col++, strtod(v, NULL));
		else if (a == KAF_AXIS_EPOCHS || a == KAF_AXIS_HIDDEN ||
			 a == KAF_AXIS_CALC_NUM)
			sqlite3_bind_int64(stmt, col++, strtol(v, NULL, 10));
		else
			sqlite3_bind_text(stmt, col++, v, -1, SQLITE_STATIC);
	}
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return db_error(st, err, "storing a cell");
	st->cell_ids[index] = sqlite3_last_insert_rowid(st->db);
	return KAF_OK;
}

static int create_sweep(struct kaf_store *st, const struct kaf_grid *g,
			const char *spec, const char *hash, int threads,
			struct kaf_error *err)
{
	char now[32], host[256] = "unknown";
	sqlite3_stmt *stmt = NULL;
	int rc = KAF_OK;

	utc_now(now, sizeof(now));
	gethostname(host, sizeof(host) - 1);
	if (sqlite3_prepare_v2(st->db, "INSERT INTO sweep (spec_hash, spec, "
			       "preset, seed, seeding, runs_per_cell, "
			       "kaf_version, host, threads, started_at) "
			       "VALUES (?,?,?,?,?,?,?,?,?,?)", -1, &stmt,
			       NULL) != SQLITE_OK)
		return db_error(st, err, "preparing the sweep");
	sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, spec, -1, SQLITE_STATIC);
	if (g->preset[0])
		sqlite3_bind_text(stmt, 3, g->preset, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, (sqlite3_int64)g->seed);
	sqlite3_bind_text(stmt, 5, kaf_seeding_names[g->seeding], -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, kaf_grid_max_runs(g));
	sqlite3_bind_text(stmt, 7, KAF_VERSION, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 8, host, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 9, threads);
	sqlite3_bind_text(stmt, 10, now, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = db_error(st, err, "storing the sweep");
	sqlite3_finalize(stmt);
	if (rc)
		return rc;
	st->sweep_id = sqlite3_last_insert_rowid(st->db);
	if (sqlite3_prepare_v2(st->db, "INSERT INTO cell (sweep_id, "
			       "cell_index, block, target_runs, dataset, "
			       "activation, "
			       "kernel, precision, init, reg, lambda, opt, lr, "
			       "epochs, hidden, calc_num, standardize, "
			       "grad_limit, bandwidth) VALUES "
			       "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
			       &stmt, NULL) != SQLITE_OK)
		return db_error(st, err, "preparing cells");
	for (long i = 0; i < st->cells && rc == KAF_OK; i++)
		rc = insert_cell(st, stmt, g, i, err);
	sqlite3_finalize(stmt);
	return rc;
}

/* Raise a cell's requested runs to what this invocation asks. */
static int raise_runs(struct kaf_store *st, int64_t cell_id, long runs,
		      struct kaf_error *err)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, "UPDATE cell SET target_runs = ?2 "
			       "WHERE cell_id = ?1", -1, &stmt, NULL) != SQLITE_OK)
		return db_error(st, err, "updating a cell");
	sqlite3_bind_int64(stmt, 1, cell_id);
	sqlite3_bind_int64(stmt, 2, runs);
	rc = sqlite3_step(stmt) == SQLITE_DONE ? KAF_OK
	     : db_error(st, err, "updating a cell");
	sqlite3_finalize(stmt);
	return rc;
}

/*
 * A sweep started by another version of kaf may have been computed by
 * another engine: the runs added now can differ from its runs in the last
 * digits. Say so once; the sweep goes on.
 */
static void warn_other_version(struct kaf_store *st)
{
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(st->db, "SELECT kaf_version FROM sweep WHERE "
			       "sweep_id = ?", -1, &stmt, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(stmt, 1, st->sweep_id);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(stmt, 0);

		if (v && strcmp(v, KAF_VERSION))
			kaf_log_warn("database %s: sweep %lld was started by "
				     "kaf %s; runs added by kaf %s may differ "
				     "from its runs in the last digits",
				     st->path, (long long)st->sweep_id, v,
				     KAF_VERSION);
	}
	sqlite3_finalize(stmt);
}

/*
 * Load the cell ids of an existing sweep and record this invocation: more
 * runs per cell than before extend the sweep, which is then unfinished.
 */
static int resume_sweep(struct kaf_store *st, const struct kaf_grid *g,
			int threads, struct kaf_error *err)
{
	sqlite3_stmt *stmt = NULL;
	long found = 0;
	bool grew = false;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT cell_index, cell_id, target_runs "
			       "FROM cell WHERE sweep_id = ?", -1, &stmt,
			       NULL) != SQLITE_OK)
		return db_error(st, err, "reading cells");
	sqlite3_bind_int64(stmt, 1, st->sweep_id);
	rc = sqlite3_step(stmt);
	for (; rc == SQLITE_ROW; rc = sqlite3_step(stmt)) {
		long i = sqlite3_column_int64(stmt, 0);
		struct kaf_cell cell;

		if (i < 0 || i >= st->cells)
			continue;
		st->cell_ids[i] = sqlite3_column_int64(stmt, 1);
		found++;
		kaf_grid_cell(g, i, &cell);
		if (cell.runs > sqlite3_column_int64(stmt, 2)) {
			grew = true;
			if (raise_runs(st, st->cell_ids[i], cell.runs, err)) {
				sqlite3_finalize(stmt);
				return KAF_EDB;
			}
		}
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "reading cells");
	warn_other_version(st);
	if (found != st->cells)
		return kaf_error_set(err, KAF_EDB, "database %s: sweep %lld "
				     "has %ld of its %ld cells; the file was "
				     "changed by hand", st->path,
				     (long long)st->sweep_id, found,
				     st->cells);
	if (sqlite3_prepare_v2(st->db, "UPDATE sweep SET threads = ?2, "
			       "runs_per_cell = max(runs_per_cell, ?3), "
			       "finished_at = CASE WHEN ?4 THEN NULL ELSE "
			       "finished_at END WHERE sweep_id = ?1", -1,
			       &stmt, NULL) != SQLITE_OK)
		return db_error(st, err, "updating the sweep");
	sqlite3_bind_int64(stmt, 1, st->sweep_id);
	sqlite3_bind_int(stmt, 2, threads);
	sqlite3_bind_int64(stmt, 3, kaf_grid_max_runs(g));
	sqlite3_bind_int(stmt, 4, grew);
	rc = sqlite3_step(stmt) == SQLITE_DONE ? KAF_OK
	     : db_error(st, err, "updating the sweep");
	sqlite3_finalize(stmt);
	return rc;
}

static int find_sweep(struct kaf_store *st, const char *hash, bool *found,
		      struct kaf_error *err)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT sweep_id FROM sweep WHERE "
			       "spec_hash = ?", -1, &stmt, NULL) != SQLITE_OK)
		return db_error(st, err, "looking up the sweep");
	sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	*found = rc == SQLITE_ROW;
	if (*found)
		st->sweep_id = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? KAF_OK
	       : db_error(st, err, "looking up the sweep");
}

int kaf_store_sweep(struct kaf_store *st, const struct kaf_grid *g,
		    int threads, int64_t *sweep_id, bool *resumed,
		    struct kaf_error *err)
{
	char one, hash[32], *spec;
	int len = kaf_grid_spec_text(g, &one, 1);
	int rc;

	spec = malloc((size_t)len + 1);
	free(st->cell_ids);
	st->cells = kaf_grid_cells(g);
	st->cell_ids = calloc((size_t)st->cells, sizeof(*st->cell_ids));
	if (!spec || !st->cell_ids) {
		free(spec);
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	}
	kaf_grid_spec_text(g, spec, len + 1);
	snprintf(hash, sizeof(hash), "%016llx",
		 (unsigned long long)kaf_rng_hash_str(spec));
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		free(spec);
		return db_error(st, err, "starting a transaction");
	}
	rc = find_sweep(st, hash, resumed, err);
	if (rc == KAF_OK && *resumed)
		rc = resume_sweep(st, g, threads, err);
	else if (rc == KAF_OK)
		rc = create_sweep(st, g, spec, hash, threads, err);
	free(spec);
	if (rc == KAF_OK &&
	    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_error(st, err, "committing the sweep");
	if (rc)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	*sweep_id = st->sweep_id;
	return rc;
}

/* ---- runs ---- */

int kaf_store_done(struct kaf_store *st, long r0, long r1, long cells,
		   bool *done, struct kaf_error *err)
{
	sqlite3_stmt *stmt = st->select_done;
	int rc;

	sqlite3_reset(stmt);
	sqlite3_bind_int64(stmt, 1, st->sweep_id);
	sqlite3_bind_int64(stmt, 2, r0);
	sqlite3_bind_int64(stmt, 3, r1);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		long cell = sqlite3_column_int64(stmt, 0);
		long r = sqlite3_column_int64(stmt, 1);

		if (cell >= 0 && cell < cells)
			done[(r - r0) * cells + cell] = true;
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? KAF_OK
	       : db_error(st, err, "reading finished runs");
}

int kaf_store_counts(struct kaf_store *st, long *runs, long *diverged,
		     struct kaf_error *err)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT count(*), "
			       "coalesce(sum(r.diverged), 0) FROM run AS r "
			       "JOIN cell AS c ON c.cell_id = r.cell_id "
			       "WHERE c.sweep_id = ?", -1, &stmt,
			       NULL) != SQLITE_OK)
		return db_error(st, err, "counting runs");
	sqlite3_bind_int64(stmt, 1, st->sweep_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*runs = sqlite3_column_int64(stmt, 0);
		*diverged = sqlite3_column_int64(stmt, 1);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? KAF_OK : db_error(st, err, "counting runs");
}

static void bind_real(sqlite3_stmt *stmt, int col, double v)
{
	if (isfinite(v))
		sqlite3_bind_double(stmt, col, v);
	else
		sqlite3_bind_null(stmt, col);
}

static int insert_run(struct kaf_store *st, const struct kaf_run_row *row)
{
	sqlite3_stmt *s = st->insert_run;
	const struct kaf_result *r = &row->res;

	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, st->cell_ids[row->cell]);
	sqlite3_bind_int64(s, 2, row->replicate);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)row->seed);
	sqlite3_bind_int(s, 4, r->diverged);
	sqlite3_bind_text(s, 5, kaf_cause_names[r->cause], -1, SQLITE_STATIC);
	if (r->diverged)
		sqlite3_bind_int(s, 6, r->step);
	else
		sqlite3_bind_null(s, 6);
	sqlite3_bind_int(s, 7, r->steps);
	bind_real(s, 8, r->train_loss);
	bind_real(s, 9, r->val_loss);
	bind_real(s, 10, r->accuracy);
	bind_real(s, 11, r->val_mae);
	bind_real(s, 12, r->max_grad_norm);
	bind_real(s, 13, r->bandwidth);
	sqlite3_bind_int(s, 14, r->zero_denominators);
	sqlite3_bind_double(s, 15, row->wall_us);
	return sqlite3_step(s);
}

static int insert_trace(struct kaf_store *st, const struct kaf_trace_row *t)
{
	sqlite3_stmt *s = st->insert_trace;

	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, st->cell_ids[t->cell]);
	sqlite3_bind_int64(s, 2, t->replicate);
	sqlite3_bind_int(s, 3, t->ep.epoch);
	bind_real(s, 4, t->ep.train_loss);
	bind_real(s, 5, t->ep.val_loss);
	bind_real(s, 6, t->ep.grad_norm);
	bind_real(s, 7, t->ep.bandwidth);
	return sqlite3_step(s);
}

static int insert_link(struct kaf_store *st, const struct kaf_link_row *l)
{
	sqlite3_stmt *s = st->insert_link[l->kind];

	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, st->cell_ids[l->cell]);
	sqlite3_bind_int64(s, 2, l->replicate);
	sqlite3_bind_int(s, 3, l->epoch);
	if (l->kind != KAF_LINK_FRAME) {
		sqlite3_bind_int(s, 4, l->output);
		sqlite3_bind_int(s, 5, l->index);
		bind_real(s, 6, l->z);
	}
	bind_real(s, 7, l->y);
	return sqlite3_step(s);
}

int kaf_store_write(struct kaf_store *st, const struct kaf_batch_rows *b,
		    struct kaf_error *err)
{
	int rc = SQLITE_DONE;

	if (b->n_runs == 0 && b->n_trace == 0 && b->n_links == 0)
		return KAF_OK;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return db_error(st, err, "starting a batch");
	for (int i = 0; i < b->n_runs && rc == SQLITE_DONE; i++)
		rc = insert_run(st, &b->runs[i]);
	for (long i = 0; i < b->n_trace && rc == SQLITE_DONE; i++)
		rc = insert_trace(st, &b->trace[i]);
	for (long i = 0; i < b->n_links && rc == SQLITE_DONE; i++)
		rc = insert_link(st, &b->links[i]);
	if (rc != SQLITE_DONE) {
		kaf_error_set(err, KAF_EDB, "database %s: storing runs: %s",
			      st->path, sqlite3_errmsg(st->db));
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return KAF_EDB;
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(st, err, "committing runs");
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return KAF_OK;
}

int kaf_store_finish(struct kaf_store *st, struct kaf_error *err)
{
	char now[32], sql[160];

	utc_now(now, sizeof(now));
	snprintf(sql, sizeof(sql), "UPDATE sweep SET finished_at = '%s' "
		 "WHERE sweep_id = %lld", now, (long long)st->sweep_id);
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(st, err, "finishing the sweep");
	return KAF_OK;
}
