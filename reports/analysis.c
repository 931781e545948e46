#include "analysis.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

/* A sweep may be writing: wait this long for its brief locks. */
#define BUSY_TIMEOUT_MS 10000

const struct kaf_axis_info kaf_axis_info[KAF_AXIS_COUNT] = {
	[KAF_AXIS_DATASET] = {"dataset", "dataset"},
	[KAF_AXIS_ACTIVATION] = {"activation", "activation"},
	[KAF_AXIS_KERNEL] = {"kernel", "kernel"},
	[KAF_AXIS_PRECISION] = {"precision", "precision"},
	[KAF_AXIS_INIT] = {"init", "initializer"},
	[KAF_AXIS_OPT] = {"opt", "optimizer"},
	[KAF_AXIS_REG] = {"reg", "regularizer"},
	[KAF_AXIS_LAMBDA] = {"lambda", "lambda"},
	[KAF_AXIS_LR] = {"lr", "learning rate"},
	[KAF_AXIS_EPOCHS] = {"epochs", "epochs"},
	[KAF_AXIS_HIDDEN] = {"hidden", "hidden units"},
	[KAF_AXIS_CALC_NUM] = {"calc_num", "calc rows"},
	[KAF_AXIS_STANDARDIZE] = {"standardize", "standardize"},
	[KAF_AXIS_GRAD_LIMIT] = {"grad_limit", "gradient limit"},
	[KAF_AXIS_BANDWIDTH] = {"bandwidth", "initial bandwidth"},
};

/* Causes the engine records, in the order tables list them. */
static const char *const known_causes[] = {
	"kernel_underflow", "nonfinite_loss", "nonfinite_grad", "grad_limit",
};

#define KNOWN_CAUSES (int)(sizeof(known_causes) / sizeof(known_causes[0]))

struct db {
	sqlite3 *h;
	const char *path;
};

static int db_error(const struct db *db, const char *what,
		    struct kaf_error *err)
{
	return kaf_error_set(err, KAF_EDB, "database \"%s\": %s: %s",
			     db->path, what, sqlite3_errmsg(db->h));
}

static int prepare(const struct db *db, const char *sql, sqlite3_stmt **st,
		   struct kaf_error *err)
{
	if (sqlite3_prepare_v2(db->h, sql, -1, st, NULL) != SQLITE_OK)
		return db_error(db, "query failed", err);
	return KAF_OK;
}

/* Copy a text column; a NULL column gives *out == NULL. */
static int column_dup(sqlite3_stmt *st, int col, char **out)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	*out = NULL;
	if (!s)
		return KAF_OK;
	*out = strdup((const char *)s);
	return *out ? KAF_OK : KAF_ENOMEM;
}

static int no_memory(struct kaf_error *err)
{
	return kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
}

/* ---- opening and checking the file ---- */

static int open_db(struct db *db, struct kaf_error *err)
{
	struct stat st;
	int rc;

	if (stat(db->path, &st) != 0)
		return kaf_error_set(err, KAF_EIO, "cannot open database "
				     "\"%s\": %s", db->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kaf_error_set(err, KAF_EIO, "cannot open database "
				     "\"%s\": not a regular file", db->path);
	rc = sqlite3_open_v2(db->path, &db->h, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK)
		return kaf_error_set(err, KAF_EIO, "cannot open database "
				     "\"%s\": %s", db->path, db->h ?
				     sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
	sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
	return KAF_OK;
}

static int pragma_int(const struct db *db, const char *sql, long long *out,
		      struct kaf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		return KAF_OK;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_NOTADB)
		return kaf_error_set(err, KAF_EDB, "\"%s\" is not a kaf "
				     "database: it is not an SQLite file",
				     db->path);
	return db_error(db, "cannot read its header", err);
}

/* The file must carry kaf's marks before any table is trusted. */
static int check_kaf(const struct db *db, struct kaf_error *err)
{
	long long app = 0, version = 0;
	int rc = pragma_int(db, "PRAGMA application_id", &app, err);

	if (rc == KAF_OK)
		rc = pragma_int(db, "PRAGMA user_version", &version, err);
	if (rc)
		return rc;
	if (app != KAF_DB_APPLICATION_ID)
		return kaf_error_set(err, KAF_EDB, "\"%s\" is not a kaf "
				     "database: its application_id is %lld, "
				     "kaf's is %d", db->path, app,
				     KAF_DB_APPLICATION_ID);
	if (version != KAF_DB_USER_VERSION)
		return kaf_error_set(err, KAF_EDB, "\"%s\" is a kaf database "
				     "of schema version %lld; this kaf reads "
				     "version %d", db->path, version,
				     KAF_DB_USER_VERSION);
	return KAF_OK;
}

/* ---- the sweep ---- */

static int unknown_sweep(const struct db *db, long long want,
			 struct kaf_error *err)
{
	sqlite3_stmt *st = NULL;
	const char *ids = NULL;
	int rc;

	if (want == 0)
		return kaf_error_set(err, KAF_EINVAL, "database \"%s\" has "
				     "no sweeps yet", db->path);
	rc = prepare(db, "SELECT group_concat(sweep_id, ', ') FROM "
		     "(SELECT sweep_id FROM sweep ORDER BY sweep_id)", &st,
		     err);
	if (rc)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		ids = (const char *)sqlite3_column_text(st, 0);
	kaf_error_set(err, KAF_EINVAL, "sweep %lld not found in database "
		      "\"%s\" (%s%s)", want, db->path,
		      ids ? "its sweeps: " : "it has no sweeps",
		      ids ? ids : "");
	sqlite3_finalize(st);
	return KAF_EINVAL;
}

static int read_sweep_row(sqlite3_stmt *st, struct kaf_analysis *an)
{
	char *seeding = NULL;
	int rc = KAF_OK;

	an->sweep_id = sqlite3_column_int64(st, 0);
	an->seed = sqlite3_column_int64(st, 4);
	an->runs_per_cell = (long)sqlite3_column_int64(st, 5);
	rc |= column_dup(st, 1, &an->preset);
	rc |= column_dup(st, 2, &an->spec);
	rc |= column_dup(st, 3, &seeding);
	rc |= column_dup(st, 6, &an->kaf_version);
	rc |= column_dup(st, 7, &an->host);
	rc |= column_dup(st, 8, &an->started_at);
	rc |= column_dup(st, 9, &an->finished_at);
	an->seeding = seeding;
	an->paired = seeding && strcmp(seeding, "paired") == 0;
	return rc ? KAF_ENOMEM : KAF_OK;
}

static int load_sweep(const struct db *db, long long want,
		      struct kaf_analysis *an, struct kaf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(db, "SELECT sweep_id, preset, spec, seeding, seed, "
			 "runs_per_cell, kaf_version, host, started_at, "
			 "finished_at FROM sweep WHERE ?1 = 0 OR sweep_id = "
			 "?1 ORDER BY sweep_id DESC LIMIT 1", &st, err);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, want);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = read_sweep_row(st, an) ? no_memory(err) : KAF_OK;
	else if (rc == SQLITE_DONE)
		rc = unknown_sweep(db, want, err);
	else
		rc = db_error(db, "cannot read table sweep", err);
	sqlite3_finalize(st);
	return rc;
}

/* ---- cells and the values of their axes ---- */

/*
 * The fewest significant digits that read back as x, so that values a
 * grid keeps apart (1e-05, 1.5e-05) never share a name.
 */
static void shortest_double(double x, char *buf, size_t size)
{
	for (int digits = 6; digits < 17; digits++) {
		snprintf(buf, size, "%.*g", digits, x);
		if (strtod(buf, NULL) == x)
			return;
	}
	snprintf(buf, size, "%.17g", x);
}

/* The name a value is shown by, and its number on numeric axes. */
static void value_name(sqlite3_stmt *st, int col, enum kaf_axis axis,
		       char *buf, size_t size, double *num)
{
	*num = NAN;
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		*num = (double)sqlite3_column_int64(st, col);
		if (axis == KAF_AXIS_STANDARDIZE)
			snprintf(buf, size, "%s", *num != 0 ? "yes" : "no");
		else
			snprintf(buf, size, "%lld",
				 sqlite3_column_int64(st, col));
		return;
	case SQLITE_FLOAT:
		*num = sqlite3_column_double(st, col);
		if (axis == KAF_AXIS_GRAD_LIMIT && *num == 0)
			snprintf(buf, size, "off");
		else
			shortest_double(*num, buf, size);
		return;
	case SQLITE_NULL:
		snprintf(buf, size, "(null)");
		return;
	default:
		snprintf(buf, size, "%s", sqlite3_column_text(st, col));
		return;
	}
}

/* Index of the level called name, appended if new; -1 on ENOMEM. */
static int intern_level(struct kaf_factor *f, const char *name, double num)
{
	struct kaf_level *grown;

	for (int i = 0; i < f->nlevels; i++)
		if (strcmp(f->levels[i].name, name) == 0)
			return i;
	grown = realloc(f->levels, (size_t)(f->nlevels + 1) * sizeof(*grown));
	if (!grown)
		return -1;
	f->levels = grown;
	grown[f->nlevels] = (struct kaf_level){.name = strdup(name),
					       .num = num};
	if (!grown[f->nlevels].name)
		return -1;
	if (isnan(num))
		f->numeric = false;
	return f->nlevels++;
}

static int read_cell(sqlite3_stmt *st, struct kaf_analysis *an,
		     struct kaf_cell *cell)
{
	char name[256];
	double num;

	cell->cell_id = sqlite3_column_int64(st, 0);
	cell->cell_index = (long)sqlite3_column_int64(st, 1);
	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		value_name(st, 2 + a, (enum kaf_axis)a, name, sizeof(name),
			   &num);
		cell->level[a] = intern_level(&an->factors[a], name, num);
		if (cell->level[a] < 0)
			return KAF_ENOMEM;
	}
	cell->runs = (long)sqlite3_column_int64(st, 2 + KAF_AXIS_COUNT);
	cell->diverged = (long)sqlite3_column_int64(st, 3 + KAF_AXIS_COUNT);
	cell->rate = cell->runs ? (double)cell->diverged / cell->runs : NAN;
	cell->p = cell->p_holm = NAN;
	return kaf_stats_wilson(cell->diverged, cell->runs, &cell->ci, NULL);
}

/* SELECT of every cell of the sweep with its axes and counts. */
static void cells_sql(char *sql, size_t size)
{
	int used = snprintf(sql, size, "SELECT c.cell_id, c.cell_index");

	for (int a = 0; a < KAF_AXIS_COUNT; a++)
		used += snprintf(sql + used, size - (size_t)used, ", c.%s",
				 kaf_axis_info[a].column);
	snprintf(sql + used, size - (size_t)used, ", count(r.replicate), "
		 "coalesce(sum(r.diverged), 0) FROM cell AS c LEFT JOIN run "
		 "AS r ON r.cell_id = c.cell_id WHERE c.sweep_id = ?1 "
		 "GROUP BY c.cell_id ORDER BY c.cell_index");
}

static int grow_cells(struct kaf_analysis *an, int *cap)
{
	struct kaf_cell *grown;

	if (an->ncells < *cap)
		return KAF_OK;
	*cap = *cap ? 2 * *cap : 32;
	grown = realloc(an->cells, (size_t)*cap * sizeof(*grown));
	if (!grown)
		return KAF_ENOMEM;
	an->cells = grown;
	return KAF_OK;
}

static int load_cells(const struct db *db, struct kaf_analysis *an,
		      struct kaf_error *err)
{
	char sql[1024];
	sqlite3_stmt *st = NULL;
	int cap = 0, rc;

	cells_sql(sql, sizeof(sql));
	for (int a = 0; a < KAF_AXIS_COUNT; a++)
		an->factors[a] = (struct kaf_factor){.axis = (enum kaf_axis)a,
						     .numeric = true};
	rc = prepare(db, sql, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, an->sweep_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (grow_cells(an, &cap) ||
		    read_cell(st, an, &an->cells[an->ncells])) {
			sqlite3_finalize(st);
			return no_memory(err);
		}
		an->runs += an->cells[an->ncells].runs;
		an->diverged += an->cells[an->ncells].diverged;
		an->ncells++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, "cannot read tables cell and run", err);
	if (an->runs == 0)
		return kaf_error_set(err, KAF_EINVAL, "sweep %lld in database "
				     "\"%s\" has no runs yet", an->sweep_id,
				     db->path);
	return kaf_stats_wilson(an->diverged, an->runs, &an->ci, err);
}

/* ---- factors: pooled rates per value and the chi-square test ---- */

struct order {
	double num;
	int old;
};

static int compare_num(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	return (x->num > y->num) - (x->num < y->num);
}

/* Numeric axes read best in numeric order; remap the cells to it. */
static int sort_levels(struct kaf_analysis *an, struct kaf_factor *f)
{
	size_t n = (size_t)f->nlevels;
	struct order *ord = malloc(n * sizeof(*ord));
	struct kaf_level *sorted = malloc(n * sizeof(*sorted));
	int *to = malloc(n * sizeof(*to));

	if (!ord || !sorted || !to) {
		free(ord);
		free(sorted);
		free(to);
		return KAF_ENOMEM;
	}
	for (int i = 0; i < f->nlevels; i++)
		ord[i] = (struct order){.num = f->levels[i].num, .old = i};
	/* Levels are unique by name and so by number: the order is total. */
	qsort(ord, n, sizeof(*ord), compare_num);
	for (int i = 0; i < f->nlevels; i++) {
		sorted[i] = f->levels[ord[i].old];
		to[ord[i].old] = i;
	}
	for (int c = 0; c < an->ncells; c++)
		an->cells[c].level[f->axis] = to[an->cells[c].level[f->axis]];
	free(f->levels);
	f->levels = sorted;
	free(ord);
	free(to);
	return KAF_OK;
}

static int pool_factor(struct kaf_analysis *an, struct kaf_factor *f,
		       struct kaf_error *err)
{
	long *counts = calloc((size_t)f->nlevels * 2, sizeof(*counts));
	int rc = KAF_OK;

	if (!counts)
		return no_memory(err);
	for (int c = 0; c < an->ncells; c++) {
		const struct kaf_cell *cell = &an->cells[c];
		struct kaf_level *lv = &f->levels[cell->level[f->axis]];

		lv->runs += cell->runs;
		lv->diverged += cell->diverged;
	}
	for (int i = 0; i < f->nlevels && !rc; i++) {
		struct kaf_level *lv = &f->levels[i];

		counts[2 * i] = lv->diverged;
		counts[2 * i + 1] = lv->runs - lv->diverged;
		rc = kaf_stats_wilson(lv->diverged, lv->runs, &lv->ci, err);
	}
	if (!rc)
		rc = kaf_stats_chi2(counts, f->nlevels, 2, &f->chi2, err);
	free(counts);
	return rc;
}
