#include "analysis.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "study.h"

/* A sweep may be writing: wait this long for its brief locks. */
#define BUSY_TIMEOUT_MS 10000

const struct kaf_column_info kaf_column_info[KAF_COL_COUNT] = {
	[KAF_COL_BLOCK] = {"block", "block"},
	[KAF_COL_DATASET] = {"dataset", "dataset"},
	[KAF_COL_ACTIVATION] = {"activation", "activation"},
	[KAF_COL_KERNEL] = {"kernel", "kernel"},
	[KAF_COL_PRECISION] = {"precision", "precision"},
	[KAF_COL_INIT] = {"init", "initializer"},
	[KAF_COL_OPT] = {"opt", "optimizer"},
	[KAF_COL_REG] = {"reg", "regularizer"},
	[KAF_COL_LAMBDA] = {"lambda", "lambda"},
	[KAF_COL_LR] = {"lr", "learning rate"},
	[KAF_COL_EPOCHS] = {"epochs", "epochs"},
	[KAF_COL_HIDDEN] = {"hidden", "hidden units"},
	[KAF_COL_CALC_NUM] = {"calc_num", "calc rows"},
	[KAF_COL_STANDARDIZE] = {"standardize", "standardize"},
	[KAF_COL_GRAD_LIMIT] = {"grad_limit", "gradient limit"},
	[KAF_COL_BANDWIDTH] = {"bandwidth", "initial bandwidth"},
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
				     "\"%s\": %s", db->path,
				     db->h ? sqlite3_errmsg(db->h) :
				     sqlite3_errstr(rc));
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
static void value_name(sqlite3_stmt *st, int col, enum kaf_cell_column axis,
		       char *buf, size_t size, double *num)
{
	*num = NAN;
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		*num = (double)sqlite3_column_int64(st, col);
		if (axis == KAF_COL_STANDARDIZE)
			snprintf(buf, size, "%s", *num != 0 ? "yes" : "no");
		else
			snprintf(buf, size, "%lld",
				 sqlite3_column_int64(st, col));
		return;
	case SQLITE_FLOAT:
		*num = sqlite3_column_double(st, col);
		if (axis == KAF_COL_GRAD_LIMIT && *num == 0)
			snprintf(buf, size, "off");
		else
			shortest_double(*num, buf, size);
		return;
	case SQLITE_NULL:
		snprintf(buf, size, "(null)");
		return;
	default:
		snprintf(buf, size, "%s", sqlite3_column_bytes(st, col) ?
			 (const char *)sqlite3_column_text(st, col) :
			 "(none)");
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
		     struct kaf_cell *cell, struct kaf_error *err)
{
	char name[256];
	double num;

	*cell = (struct kaf_cell){0};
	cell->cell_id = sqlite3_column_int64(st, 0);
	cell->cell_index = (long)sqlite3_column_int64(st, 1);
	for (int a = 0; a < KAF_COL_COUNT; a++) {
		value_name(st, 2 + a, (enum kaf_cell_column)a, name, sizeof(name),
			   &num);
		cell->level[a] = intern_level(&an->factors[a], name, num);
		if (cell->level[a] < 0)
			return no_memory(err);
	}
	cell->target_runs = (long)sqlite3_column_int64(st, 2 + KAF_COL_COUNT);
	cell->runs = (long)sqlite3_column_int64(st, 3 + KAF_COL_COUNT);
	cell->diverged = (long)sqlite3_column_int64(st, 4 + KAF_COL_COUNT);
	cell->rate = cell->runs ? (double)cell->diverged / cell->runs : NAN;
	cell->p = cell->p_holm = NAN;
	if (cell->diverged < 0 || cell->diverged > cell->runs)
		return kaf_error_set(err, KAF_EDB, "cell %lld: %ld of %ld "
				     "runs diverged; column run.diverged "
				     "must be 0 or 1", cell->cell_id,
				     cell->diverged, cell->runs);
	return kaf_stats_wilson(cell->diverged, cell->runs, &cell->ci, err);
}

/* SELECT of every cell of the sweep with its axes and counts. */
static void cells_sql(char *sql, size_t size)
{
	int used = snprintf(sql, size, "SELECT c.cell_id, c.cell_index");

	for (int a = 0; a < KAF_COL_COUNT; a++)
		used += snprintf(sql + used, size - (size_t)used, ", c.%s",
				 kaf_column_info[a].column);
	snprintf(sql + used, size - (size_t)used, ", c.target_runs, "
		 "count(r.replicate), "
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
	for (int a = 0; a < KAF_COL_COUNT; a++)
		an->factors[a] = (struct kaf_factor){.axis = (enum kaf_cell_column)a,
						     .numeric = true};
	rc = prepare(db, sql, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, an->sweep_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = grow_cells(an, &cap) ? no_memory(err) :
			read_cell(st, an, &an->cells[an->ncells], err);
		if (rc) {
			sqlite3_finalize(st);
			return rc;
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

/* Largest Cramer's V first; stable, so ties keep the table order. */
static void order_by_effect(struct kaf_analysis *an)
{
	for (int i = 1; i < an->nvarying; i++) {
		enum kaf_cell_column a = an->varying[i];
		double v = an->factors[a].chi2.cramer_v;
		int j = i;

		for (; j > 0; j--) {
			enum kaf_cell_column prev = an->varying[j - 1];

			if (an->factors[prev].chi2.cramer_v >= v)
				break;
			an->varying[j] = prev;
		}
		an->varying[j] = a;
	}
}

static int analyse_factors(struct kaf_analysis *an, struct kaf_error *err)
{
	double p[KAF_COL_COUNT];
	int rc;

	for (int a = 0; a < KAF_COL_COUNT; a++) {
		struct kaf_factor *f = &an->factors[a];

		if (sort_levels(an, f))
			return no_memory(err);
		rc = pool_factor(an, f, err);
		if (rc)
			return rc;
		f->p_holm = f->chi2.p;
		if (f->nlevels > 1)
			an->varying[an->nvarying++] = (enum kaf_cell_column)a;
	}
	for (int i = 0; i < an->nvarying; i++)
		p[i] = an->factors[an->varying[i]].chi2.p;
	rc = kaf_stats_holm(p, p, an->nvarying, err);
	if (rc)
		return rc;
	for (int i = 0; i < an->nvarying; i++)
		an->factors[an->varying[i]].p_holm = p[i];
	order_by_effect(an);
	return KAF_OK;
}

/* ---- ranking and the tests against the top-ranked cell ---- */

/* What loading needs besides the analysis: the file, cells by id. */
struct loader {
	struct db db;
	struct kaf_analysis *an;
	struct id_index {
		long long id;
		int cell;
	} *ids;                 /* (an->ncells) sorted by id */
};

static int compare_ids(const void *a, const void *b)
{
	const struct id_index *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static int index_ids(struct loader *ld)
{
	const struct kaf_analysis *an = ld->an;

	ld->ids = malloc((size_t)an->ncells * sizeof(*ld->ids));
	if (!ld->ids)
		return KAF_ENOMEM;
	for (int c = 0; c < an->ncells; c++)
		ld->ids[c] = (struct id_index){an->cells[c].cell_id, c};
	qsort(ld->ids, (size_t)an->ncells, sizeof(*ld->ids), compare_ids);
	return KAF_OK;
}

/* Cell index of a cell_id of this sweep; -1 if it is not one. */
static int find_cell(const struct loader *ld, long long id)
{
	struct id_index key = {.id = id};
	const struct id_index *hit = bsearch(&key, ld->ids,
					     (size_t)ld->an->ncells,
					     sizeof(key), compare_ids);

	return hit ? hit->cell : -1;
}

struct ranked {
	double rate;
	long cell_index;
	int cell;
};

static int compare_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->rate != y->rate)
		return x->rate < y->rate ? 1 : -1;
	return (x->cell_index > y->cell_index) -
	       (x->cell_index < y->cell_index);
}

/* Rank as the schema's ranking view does: rate descending, ties shared. */
static int rank_cells(struct kaf_analysis *an)
{
	struct ranked *r = malloc((size_t)an->ncells * sizeof(*r));
	int n = 0;

	an->ranking = malloc((size_t)an->ncells * sizeof(*an->ranking));
	if (!r || !an->ranking) {
		free(r);
		return KAF_ENOMEM;
	}
	for (int c = 0; c < an->ncells; c++)
		if (an->cells[c].runs > 0)
			r[n++] = (struct ranked){an->cells[c].rate,
						 an->cells[c].cell_index, c};
	qsort(r, (size_t)n, sizeof(*r), compare_ranked);
	for (int i = 0; i < n; i++) {
		struct kaf_cell *cell = &an->cells[r[i].cell];

		an->ranking[i] = r[i].cell;
		cell->rank = i > 0 && r[i].rate == r[i - 1].rate ?
			an->cells[r[i - 1].cell].rank : i + 1;
	}
	an->nranked = n;
	free(r);
	return KAF_OK;
}

/*
 * Paired sweeps: replicate r of every cell ran with the same seed, so
 * the runs with equal replicates in the top cell and another are pairs.
 * One self-join counts, per other cell, the pairs and the two kinds of
 * discordant pair.
 */
static int count_pairs(struct loader *ld, const struct kaf_cell *top,
		       struct kaf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(&ld->db, "SELECT o.cell_id, count(*), "
			 "total(t.diverged AND NOT o.diverged), "
			 "total(o.diverged AND NOT t.diverged) "
			 "FROM run AS t JOIN run AS o ON o.replicate = "
			 "t.replicate AND o.cell_id <> t.cell_id "
			 "JOIN cell AS c ON c.cell_id = o.cell_id "
			 "WHERE t.cell_id = ?1 AND c.sweep_id = ?2 "
			 "GROUP BY o.cell_id", &st, err);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, top->cell_id);
	sqlite3_bind_int64(st, 2, ld->an->sweep_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int c = find_cell(ld, sqlite3_column_int64(st, 0));

		if (c < 0)
			continue;
		ld->an->cells[c].pairs = (long)sqlite3_column_int64(st, 1);
		ld->an->cells[c].b = (long)sqlite3_column_double(st, 2);
		ld->an->cells[c].c = (long)sqlite3_column_double(st, 3);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(&ld->db, "cannot pair the runs", err);
	return KAF_OK;
}

static int test_one(const struct kaf_analysis *an, const struct kaf_cell *top,
		    struct kaf_cell *cell, struct kaf_error *err)
{
	long counts[4] = {
		top->diverged, top->runs - top->diverged,
		cell->diverged, cell->runs - cell->diverged,
	};

	if (an->paired)
		return kaf_stats_mcnemar(cell->b, cell->c, &cell->p, err);
	return kaf_stats_fisher(counts, &cell->p, err);
}

/*
 * Every ranked cell against the top one: McNemar's exact test on the
 * pairs of a paired sweep, Fisher's exact test on the 2x2 counts
 * otherwise; Holm's adjustment over the nranked - 1 comparisons.
 */
static int test_against_top(struct loader *ld, struct kaf_error *err)
{
	struct kaf_analysis *an = ld->an;
	struct kaf_cell *top = &an->cells[an->ranking[0]];
	int n = an->nranked - 1, rc = KAF_OK;
	double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(*p));

	if (!p)
		return no_memory(err);
	top->same_as_top = true;
	if (an->paired)
		rc = count_pairs(ld, top, err);
	for (int i = 0; i < n && !rc; i++) {
		struct kaf_cell *cell = &an->cells[an->ranking[i + 1]];

		rc = test_one(an, top, cell, err);
		p[i] = cell->p;
	}
	if (!rc)
		rc = kaf_stats_holm(p, p, n, err);
	for (int i = 0; i < n && !rc; i++) {
		struct kaf_cell *cell = &an->cells[an->ranking[i + 1]];

		cell->p_holm = p[i];
		cell->same_as_top = p[i] >= KAF_ANALYSIS_ALPHA;
	}
	free(p);
	return rc;
}

/* ---- divergences by cell, step and cause ---- */

/* Index of cause name, appended if new; -1 on ENOMEM. */
static int intern_cause(struct kaf_analysis *an, const char *name)
{
	char **grown;

	for (int i = 0; i < an->ncauses; i++)
		if (strcmp(an->causes[i], name) == 0)
			return i;
	grown = realloc(an->causes, (size_t)(an->ncauses + 1) *
			sizeof(*grown));
	if (!grown)
		return -1;
	an->causes = grown;
	grown[an->ncauses] = strdup(name);
	return grown[an->ncauses] ? an->ncauses++ : -1;
}

static int cause_order(const char *name)
{
	for (int i = 0; i < KNOWN_CAUSES; i++)
		if (strcmp(name, known_causes[i]) == 0)
			return i;
	return KNOWN_CAUSES;
}

static int compare_causes(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int ox = cause_order(x), oy = cause_order(y);

	return ox != oy ? ox - oy : strcmp(x, y);
}

/* Known causes in the engine's order, any others by name after them. */
static int sort_causes(struct kaf_analysis *an)
{
	char **old = malloc((size_t)an->ncauses * sizeof(*old));

	if (!old && an->ncauses > 0)
		return KAF_ENOMEM;
	/* A sweep without divergences has no causes, and causes is NULL. */
	if (an->ncauses > 0) {
		memcpy(old, an->causes, (size_t)an->ncauses * sizeof(*old));
		qsort(an->causes, (size_t)an->ncauses, sizeof(*an->causes),
		      compare_causes);
	}
	for (int d = 0; d < an->ndiv; d++) {
		const char *name = old[an->div[d].cause];

		for (int i = 0; i < an->ncauses; i++)
			if (an->causes[i] == name)
				an->div[d].cause = i;
	}
	free(old);
	return KAF_OK;
}

static int add_divergence(struct loader *ld, sqlite3_stmt *st, int *cap)
{
	struct kaf_analysis *an = ld->an;
	const unsigned char *cause = sqlite3_column_text(st, 2);
	struct kaf_divergence d = {
		.cell = find_cell(ld, sqlite3_column_int64(st, 0)),
		.step = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 :
			(long)sqlite3_column_int64(st, 1),
		.count = (long)sqlite3_column_int64(st, 3),
	};

	if (d.cell < 0)
		return KAF_OK;
	d.cause = intern_cause(an, cause ? (const char *)cause : "(null)");
	if (d.cause < 0)
		return KAF_ENOMEM;
	if (an->ndiv == *cap) {
		struct kaf_divergence *grown;

		*cap = *cap ? 2 * *cap : 64;
		grown = realloc(an->div, (size_t)*cap * sizeof(*grown));
		if (!grown)
			return KAF_ENOMEM;
		an->div = grown;
	}
	an->div[an->ndiv++] = d;
	if (d.step + 1 > an->nsteps)
		an->nsteps = d.step + 1;
	return KAF_OK;
}

static int load_divergences(struct loader *ld, struct kaf_error *err)
{
	sqlite3_stmt *st = NULL;
	int cap = 0, rc = prepare(&ld->db, "SELECT r.cell_id, r.step, "
				  "r.cause, count(*) FROM run AS r JOIN cell "
				  "AS c ON c.cell_id = r.cell_id WHERE "
				  "c.sweep_id = ?1 AND r.diverged GROUP BY "
				  "r.cell_id, r.step, r.cause", &st, err);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, ld->an->sweep_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (add_divergence(ld, st, &cap)) {
			sqlite3_finalize(st);
			return no_memory(err);
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(&ld->db, "cannot count the divergences", err);
	return sort_causes(ld->an) ? no_memory(err) : KAF_OK;
}

/* ---- survivors ---- */

static int load_survivors(struct loader *ld, struct kaf_error *err)
{
	struct kaf_analysis *an = ld->an;
	long cap = an->runs - an->diverged;
	sqlite3_stmt *st = NULL;
	int rc;

	/* One read transaction: the count above is exact, not a guess. */
	an->survivors = malloc((size_t)(cap > 0 ? cap : 1) *
			       sizeof(*an->survivors));
	if (!an->survivors)
		return no_memory(err);
	rc = prepare(&ld->db, "SELECT r.cell_id, r.val_loss FROM run AS r "
		     "JOIN cell AS c ON c.cell_id = r.cell_id WHERE "
		     "c.sweep_id = ?1 AND NOT r.diverged", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, an->sweep_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && an->nsurvivors < cap) {
		struct kaf_survivor *s = &an->survivors[an->nsurvivors];

		s->cell = find_cell(ld, sqlite3_column_int64(st, 0));
		s->val_loss = sqlite3_column_type(st, 1) == SQLITE_NULL ?
			NAN : sqlite3_column_double(st, 1);
		an->nsurvivors += s->cell >= 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_error(&ld->db, "cannot read the survivors", err);
	return KAF_OK;
}

/* ---- lifecycle ---- */

static int load_all(struct loader *ld, long long sweep_id,
		    struct kaf_error *err)
{
	struct kaf_analysis *an = ld->an;
	const struct kaf_factor *epochs = &an->factors[KAF_COL_EPOCHS];
	int rc = load_sweep(&ld->db, sweep_id, an, err);

	if (!rc)
		rc = load_cells(&ld->db, an, err);
	if (!rc)
		rc = index_ids(ld) || rank_cells(an) ? no_memory(err) : KAF_OK;
	if (!rc)
		rc = analyse_factors(an, err);
	if (!rc)
		rc = test_against_top(ld, err);
	if (!rc)
		rc = load_divergences(ld, err);
	if (!rc)
		rc = load_survivors(ld, err);
	if (!rc)
		rc = kaf_study_load(ld->db.h, ld->db.path, an, err);
	for (int i = 0; !rc && i < epochs->nlevels; i++)
		if (epochs->levels[i].num > (double)an->nsteps)
			an->nsteps = (long)epochs->levels[i].num;
	return rc;
}

int kaf_analysis_load(const char *db_path, long long sweep_id,
		      struct kaf_analysis **out, struct kaf_error *err)
{
	struct loader ld = {.db = {.path = db_path}};
	int rc;

	*out = NULL;
	if (sweep_id < 0)
		return kaf_error_set(err, KAF_EINVAL, "sweep id %lld is not "
				     "valid (ids start at 1; 0 means the "
				     "latest)", sweep_id);
	ld.an = calloc(1, sizeof(*ld.an));
	if (!ld.an || !(ld.an->db_path = strdup(db_path))) {
		free(ld.an);
		return no_memory(err);
	}
	rc = open_db(&ld.db, err);
	if (!rc)
		rc = check_kaf(&ld.db, err);
	/* One read transaction: every count comes from the same snapshot. */
	if (!rc && sqlite3_exec(ld.db.h, "BEGIN", NULL, NULL, NULL))
		rc = db_error(&ld.db, "cannot start reading", err);
	if (!rc)
		rc = load_all(&ld, sweep_id, err);
	sqlite3_close(ld.db.h);
	free(ld.ids);
	if (rc) {
		kaf_analysis_destroy(ld.an);
		return rc;
	}
	*out = ld.an;
	return KAF_OK;
}

void kaf_analysis_destroy(struct kaf_analysis *an)
{
	if (!an)
		return;
	for (int a = 0; a < KAF_COL_COUNT; a++) {
		for (int i = 0; i < an->factors[a].nlevels; i++)
			free(an->factors[a].levels[i].name);
		free(an->factors[a].levels);
	}
	for (int i = 0; i < an->ncauses; i++)
		free(an->causes[i]);
	free(an->causes);
	free(an->div);
	free(an->survivors);
	kaf_study_destroy(an->study);
	free(an->ranking);
	free(an->cells);
	free(an->db_path);
	free(an->preset);
	free(an->spec);
	free(an->seeding);
	free(an->kaf_version);
	free(an->host);
	free(an->started_at);
	free(an->finished_at);
	free(an);
}

const struct kaf_cell *kaf_analysis_top(const struct kaf_analysis *an)
{
	return &an->cells[an->ranking[0]];
}

const char *kaf_analysis_value(const struct kaf_analysis *an,
			       const struct kaf_cell *cell,
			       enum kaf_cell_column axis)
{
	return an->factors[axis].levels[cell->level[axis]].name;
}

void kaf_analysis_label(const struct kaf_analysis *an,
			const struct kaf_cell *cell, char *buf, size_t size)
{
	size_t used = 0;

	snprintf(buf, size, "all runs");
	for (int a = 0; a < KAF_COL_COUNT && used < size; a++) {
		if (an->factors[a].nlevels < 2)
			continue;
		used += (size_t)snprintf(buf + used, size - used, "%s%s",
					 used ? " / " : "",
					 kaf_analysis_value(an, cell,
							    (enum kaf_cell_column)a));
	}
}

void kaf_analysis_alive(const struct kaf_analysis *an, enum kaf_cell_column axis,
			int level, long *alive)
{
	long runs = an->factors[axis].levels[level].runs;

	for (long t = 0; t <= an->nsteps; t++)
		alive[t] = 0;
	/* alive[t] first holds the divergences at step t - 1 ... */
	for (int d = 0; d < an->ndiv; d++) {
		const struct kaf_divergence *dv = &an->div[d];
		long t = dv->step < 0 ? 1 : dv->step + 1;

		if (an->cells[dv->cell].level[axis] != level)
			continue;
		alive[t <= an->nsteps ? t : an->nsteps] += dv->count;
	}
	/* ... then the runs left once they are taken out in turn. */
	for (long t = 0; t <= an->nsteps; t++) {
		runs -= alive[t];
		alive[t] = runs;
	}
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int kaf_analysis_losses(const struct kaf_analysis *an, enum kaf_cell_column axis,
			int level, double **out, long *n)
{
	double *v = NULL;
	long count = 0;

	for (long i = 0; i < an->nsurvivors; i++) {
		const struct kaf_survivor *s = &an->survivors[i];

		count += an->cells[s->cell].level[axis] == level &&
			 isfinite(s->val_loss);
	}
	*out = NULL;
	*n = 0;
	if (count == 0)
		return KAF_OK;
	v = malloc((size_t)count * sizeof(*v));
	if (!v)
		return KAF_ENOMEM;
	for (long i = 0; i < an->nsurvivors; i++) {
		const struct kaf_survivor *s = &an->survivors[i];

		if (an->cells[s->cell].level[axis] == level &&
		    isfinite(s->val_loss))
			v[(*n)++] = s->val_loss;
	}
	qsort(v, (size_t)*n, sizeof(*v), compare_double);
	*out = v;
	return KAF_OK;
}
