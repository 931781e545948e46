#include "study.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/*
 * The most values one link series may hold per array. Experiment 2's
 * largest, digits, holds 21 x 10 x 101; the bound only stops a damaged
 * file from asking for gigabytes.
 */
#define MAX_LINK_VALUES (1L << 24)

/* What loading needs at hand. */
struct loader {
	sqlite3 *db;
	const char *path;
	struct kaf_analysis *an;
	struct kaf_study *st;
	char **blocks;          /* (an->ncells) cell.block */
};

static int db_error(const struct loader *ld, const char *what,
		    struct kaf_error *err)
{
	return kaf_error_set(err, KAF_EDB, "database \"%s\": cannot read %s: "
			     "%s", ld->path, what, sqlite3_errmsg(ld->db));
}

static int no_memory(struct kaf_error *err)
{
	return kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
}

/* Prepare sql and bind ?1 and ?2 (when sql has it). */
static int prepare2(const struct loader *ld, const char *sql, long long a,
		    long long b, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(ld->db, sql, -1, st, NULL) != SQLITE_OK)
		return KAF_EDB;
	sqlite3_bind_int64(*st, 1, a);
	if (sqlite3_bind_parameter_count(*st) > 1)
		sqlite3_bind_int64(*st, 2, b);
	return KAF_OK;
}

static double column_real(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN :
		sqlite3_column_double(st, col);
}

/* ---- the blocks of the cells ---- */

static int load_blocks(struct loader *ld, struct kaf_error *err)
{
	const struct kaf_analysis *an = ld->an;
	sqlite3_stmt *st = NULL;
	int c = 0, rc;

	ld->blocks = calloc((size_t)an->ncells, sizeof(*ld->blocks));
	if (!ld->blocks)
		return no_memory(err);
	if (prepare2(ld, "SELECT cell_id, block FROM cell WHERE sweep_id = ?1 "
		     "ORDER BY cell_index", an->sweep_id, 0, &st))
		return db_error(ld, "table cell", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && c < an->ncells) {
		const unsigned char *b = sqlite3_column_text(st, 1);

		/* The analysis read the same rows in the same order. */
		if (sqlite3_column_int64(st, 0) != an->cells[c].cell_id)
			break;
		ld->blocks[c] = strdup(b ? (const char *)b : "");
		if (!ld->blocks[c++]) {
			sqlite3_finalize(st);
			return no_memory(err);
		}
	}
	sqlite3_finalize(st);
	if (c != an->ncells)
		return kaf_error_set(err, KAF_EDB, "database \"%s\": the cells "
				     "of sweep %lld changed while read",
				     ld->path, an->sweep_id);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? KAF_OK :
		db_error(ld, "table cell", err);
}

/* ---- final metrics ---- */

/* Welford's running mean and squared deviations, and the extremes. */
struct accum {
	long n;
	double mean, m2, min, max;
};

static void accum_add(struct accum *a, double x)
{
	double delta;

	if (isnan(x))
		return;
	a->n++;
	delta = x - a->mean;
	a->mean += delta / (double)a->n;
	a->m2 += delta * (x - a->mean);
	a->min = a->n == 1 ? x : fmin(a->min, x);
	a->max = a->n == 1 ? x : fmax(a->max, x);
}

static struct kaf_moments accum_moments(const struct accum *a)
{
	return (struct kaf_moments){
		.n = a->n,
		.mean = a->n ? a->mean : NAN,
		.sd = a->n > 1 ? sqrt(a->m2 / (double)(a->n - 1)) : NAN,
		.min = a->n ? a->min : NAN,
		.max = a->n ? a->max : NAN,
	};
}

static int load_metrics(struct loader *ld, int c, struct kaf_error *err)
{
	struct kaf_study_cell *sc = &ld->st->cells[c];
	struct accum acc = {0}, mse = {0}, mae = {0};
	bool any_acc = false, any_mae = false;
	sqlite3_stmt *st = NULL;
	int rc;

	if (prepare2(ld, "SELECT diverged, accuracy, val_loss, val_mae FROM "
		     "run WHERE cell_id = ?1", ld->an->cells[c].cell_id, 0,
		     &st))
		return db_error(ld, "table run", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		any_acc |= sqlite3_column_type(st, 1) != SQLITE_NULL;
		any_mae |= sqlite3_column_type(st, 3) != SQLITE_NULL;
		if (sqlite3_column_int(st, 0))
			continue;
		accum_add(&acc, column_real(st, 1));
		accum_add(&mse, column_real(st, 2));
		accum_add(&mae, column_real(st, 3));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(ld, "table run", err);
	sc->task = any_acc ? KAF_STUDY_CLASSIFICATION :
		any_mae ? KAF_STUDY_REGRESSION : KAF_STUDY_UNKNOWN;
	sc->accuracy = accum_moments(&acc);
	sc->mse = accum_moments(&mse);
	sc->mae = accum_moments(&mae);
	return KAF_OK;
}

/* ---- loss curves ---- */

/* Room for epochs 0 .. need - 1, the new ones NaN; *cap doubles. */
static int curve_grow(struct kaf_curve *cv, long *cap, long need)
{
	long grown = *cap ? *cap : 256;
	double *train, *val;

	while (grown < need)
		grown *= 2;
	train = realloc(cv->train, (size_t)grown * sizeof(*train));
	if (train)
		cv->train = train;
	val = train ? realloc(cv->val, (size_t)grown * sizeof(*val)) : NULL;
	if (!val)
		return KAF_ENOMEM;
	cv->val = val;
	for (long e = *cap; e < grown; e++)
		cv->train[e] = cv->val[e] = NAN;
	*cap = grown;
	return KAF_OK;
}

/*
 * avg() skips NULL, so an epoch's mean is over the surviving runs with a
 * finite loss there. n ends as the last epoch with a row, plus one.
 */
static int load_curve(struct loader *ld, int c, struct kaf_error *err)
{
	struct kaf_curve *cv = &ld->st->cells[c].curve;
	sqlite3_stmt *st = NULL;
	long cap = 0;
	int rc;

	if (prepare2(ld, "SELECT t.epoch, avg(t.train_loss), avg(t.val_loss) "
		     "FROM trace AS t JOIN run AS r ON r.cell_id = t.cell_id "
		     "AND r.replicate = t.replicate WHERE t.cell_id = ?1 AND "
		     "NOT r.diverged GROUP BY t.epoch ORDER BY t.epoch",
		     ld->an->cells[c].cell_id, 0, &st))
		return db_error(ld, "table trace", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long e = (long)sqlite3_column_int64(st, 0);

		if (e < 0)
			continue;
		if (e >= cap && curve_grow(cv, &cap, e + 1)) {
			sqlite3_finalize(st);
			return no_memory(err);
		}
		cv->train[e] = column_real(st, 1);
		cv->val[e] = column_real(st, 2);
		cv->n = e + 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? KAF_OK : db_error(ld, "table trace", err);
}

static int load_traces(struct loader *ld, int c, struct kaf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (prepare2(ld, "SELECT EXISTS (SELECT 1 FROM trace WHERE cell_id = "
		     "?1)", ld->an->cells[c].cell_id, 0, &st))
		return db_error(ld, "table trace", err);
	rc = sqlite3_step(st);
	ld->st->cells[c].traced = rc == SQLITE_ROW &&
				  sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return db_error(ld, "table trace", err);
	ld->st->traced |= ld->st->cells[c].traced;
	return ld->st->cells[c].traced ? load_curve(ld, c, err) : KAF_OK;
}

/* ---- groups and variants ---- */

static const char *group_key(const struct loader *ld, int c)
{
	return ld->blocks[c][0] ? ld->blocks[c] :
		kaf_analysis_value(ld->an, &ld->an->cells[c],
				   KAF_COL_DATASET);
}

/* Index of the group called name, appended if new; -1 on ENOMEM. */
static int find_group(struct kaf_study *st, const char *name)
{
	struct kaf_study_group *grown;

	/* Linear: a sweep has a handful of blocks or datasets. */
	for (int g = 0; g < st->ngroups; g++)
		if (strcmp(st->groups[g].name, name) == 0)
			return g;
	grown = realloc(st->groups, (size_t)(st->ngroups + 1) *
			sizeof(*grown));
	if (!grown)
		return -1;
	st->groups = grown;
	grown[st->ngroups] = (struct kaf_study_group){.name = strdup(name)};
	return grown[st->ngroups].name ? st->ngroups++ : -1;
}

static int add_member(struct kaf_study_group *g, int c, long epochs)
{
	int *grown = realloc(g->cells, (size_t)(g->ncells + 1) *
			     sizeof(*grown));

	if (!grown)
		return KAF_ENOMEM;
	g->cells = grown;
	g->cells[g->ncells++] = c;
	g->epochs = epochs > g->epochs ? epochs : g->epochs;
	return KAF_OK;
}

/* Whether axis takes more than one value among the group's cells. */
static bool varies_in(const struct kaf_analysis *an,
		      const struct kaf_study_group *g, enum kaf_cell_column axis)
{
	for (int i = 1; i < g->ncells; i++)
		if (an->cells[g->cells[i]].level[axis] !=
		    an->cells[g->cells[0]].level[axis])
			return true;
	return false;
}

/*
 * "relu"; "kaf naive" (K-AF always with its evaluation); then any other
 * axis that varies within the group: "relu, learning rate 0.01".
 */
static char *variant_name(const struct kaf_analysis *an,
			  const struct kaf_study_group *g, int c)
{
	const struct kaf_cell *cell = &an->cells[c];
	const char *act = kaf_analysis_value(an, cell, KAF_COL_ACTIVATION);
	char name[512];
	size_t used;

	used = (size_t)snprintf(name, sizeof(name), "%s", act);
	if (strcmp(act, "kaf") == 0)
		used += (size_t)snprintf(name + used, sizeof(name) - used,
					 " %s", kaf_analysis_value(
						 an, cell, KAF_COL_KERNEL));
	for (int a = KAF_COL_KERNEL + 1; a < KAF_COL_COUNT &&
	     used < sizeof(name); a++)
		if (varies_in(an, g, (enum kaf_cell_column)a))
			used += (size_t)snprintf(name + used, sizeof(name) -
						 used, ", %s %s",
						 kaf_column_info[a].label,
						 kaf_analysis_value(
							 an, cell,
							 (enum kaf_cell_column)a));
	return strdup(name);
}

static int name_variants(const struct kaf_analysis *an,
			 struct kaf_study_group *g)
{
	g->variants = calloc((size_t)g->ncells, sizeof(*g->variants));
	if (!g->variants)
		return KAF_ENOMEM;
	for (int i = 0; i < g->ncells; i++) {
		g->variants[i] = variant_name(an, g, g->cells[i]);
		if (!g->variants[i])
			return KAF_ENOMEM;
	}
	g->curve_from = g->epochs >= KAF_STUDY_CURVE_MIN_EPOCHS ?
		KAF_STUDY_CURVE_FROM : 0;
	return KAF_OK;
}

static int make_groups(struct loader *ld, struct kaf_error *err)
{
	struct kaf_analysis *an = ld->an;
	struct kaf_study *st = ld->st;

	for (int c = 0; c < an->ncells; c++) {
		int g = find_group(st, group_key(ld, c));
		long epochs = (long)an->factors[KAF_COL_EPOCHS].levels[
			an->cells[c].level[KAF_COL_EPOCHS]].num;

		if (g < 0 || add_member(&st->groups[g], c, epochs))
			return no_memory(err);
		st->by_block |= ld->blocks[c][0] != '\0';
	}
	for (int g = 0; g < st->ngroups; g++)
		if (name_variants(an, &st->groups[g]))
			return no_memory(err);
	st->compare = st->traced ||
		      an->factors[KAF_COL_ACTIVATION].nlevels > 1;
	return KAF_OK;
}

bool kaf_curve_shows(const struct kaf_curve *cv, long from)
{
	for (long e = from < 0 ? 0 : from; e < cv->n; e++)
		if (isfinite(cv->train[e]) || isfinite(cv->val[e]))
			return true;
	return false;
}

/* ---- link snapshots ---- */

long kaf_link_points_at(const struct kaf_link_series *ls, int f, int k)
{
	return ((long)f * ls->noutputs + k) * ls->npoints;
}

long kaf_link_calc_at(const struct kaf_link_series *ls, int f, int k)
{
	return ((long)f * ls->noutputs + k) * ls->ncalc;
}

/* A single integer (or -1 for NULL) from a one-row query. */
static int query_long(struct loader *ld, const char *sql, long long a,
		      long long b, long *out, struct kaf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (prepare2(ld, sql, a, b, &st))
		return db_error(ld, "the link snapshots", err);
	rc = sqlite3_step(st);
	*out = rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL ?
		-1 : (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? KAF_OK :
		db_error(ld, "the link snapshots", err);
}

static int compare_frame(const void *key, const void *elem)
{
	long e = *(const long *)key;
	const struct kaf_link_frame *f = elem;

	return (e > f->epoch) - (e < f->epoch);
}

static int frame_of(const struct kaf_link_series *ls, long epoch)
{
	const struct kaf_link_frame *f = bsearch(&epoch, ls->frames,
						 (size_t)ls->nframes,
						 sizeof(*f), compare_frame);

	return f ? (int)(f - ls->frames) : -1;
}

static int load_frames(struct loader *ld, struct kaf_link_series *ls,
		       long long cell_id, struct kaf_error *err)
{
	sqlite3_stmt *st = NULL;
	long n;
	int rc = query_long(ld, "SELECT count(*) FROM link_frame WHERE "
			    "cell_id = ?1 AND replicate = ?2", cell_id,
			    ls->replicate, &n, err);

	if (rc)
		return rc;
	ls->frames = calloc((size_t)(n > 0 ? n : 1), sizeof(*ls->frames));
	if (!ls->frames)
		return no_memory(err);
	if (prepare2(ld, "SELECT epoch, bandwidth FROM link_frame WHERE "
		     "cell_id = ?1 AND replicate = ?2 ORDER BY epoch",
		     cell_id, ls->replicate, &st))
		return db_error(ld, "table link_frame", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && ls->nframes < n)
		ls->frames[ls->nframes++] = (struct kaf_link_frame){
			.epoch = (long)sqlite3_column_int64(st, 0),
			.bandwidth = column_real(st, 1)};
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? KAF_OK :
		db_error(ld, "table link_frame", err);
}

/* NaN-filled (nframes, noutputs, per) arrays a and b. */
static int alloc_values(const struct kaf_link_series *ls, int per,
			double **a, double **b)
{
	long n = (long)ls->nframes * ls->noutputs * per;

	*a = malloc((size_t)(n > 0 ? n : 1) * sizeof(**a));
	*b = malloc((size_t)(n > 0 ? n : 1) * sizeof(**b));
	if (!*a || !*b)
		return KAF_ENOMEM;
	for (long i = 0; i < n; i++)
		(*a)[i] = (*b)[i] = NAN;
	return KAF_OK;
}

/*
 * Rows (epoch, output, index, x, y) of table into a (x) and b (y); per is
 * the index range. Rows outside the frames or ranges are damaged: KAF_EDB.
 */
static int fill_values(struct loader *ld, struct kaf_link_series *ls,
		       long long cell_id, const char *table, int per,
		       double *a, double *b, struct kaf_error *err)
{
	char sql[256];
	sqlite3_stmt *st = NULL;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT epoch, output, %s, %s FROM %s "
		 "WHERE cell_id = ?1 AND replicate = ?2",
		 strcmp(table, "link_calc") ? "point" : "j",
		 strcmp(table, "link_calc") ? "z, yhat" : "z, y", table);
	if (prepare2(ld, sql, cell_id, ls->replicate, &st))
		return db_error(ld, table, err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int f = frame_of(ls, (long)sqlite3_column_int64(st, 0));
		long k = (long)sqlite3_column_int64(st, 1);
		long i = (long)sqlite3_column_int64(st, 2);
		long at;

		if (f < 0 || k < 0 || k >= ls->noutputs || i < 0 || i >= per)
			continue;
		at = ((long)f * ls->noutputs + k) * per + i;
		a[at] = column_real(st, 3);
		b[at] = column_real(st, 4);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? KAF_OK : db_error(ld, table, err);
}

/* Outputs, points and calc rows: the largest index stored, plus one. */
static int link_sizes(struct loader *ld, struct kaf_link_series *ls,
		      long long cell_id, struct kaf_error *err)
{
	long out_p, out_c, points, calc;
	int rc = query_long(ld, "SELECT max(output) FROM link_point WHERE "
			    "cell_id = ?1 AND replicate = ?2", cell_id,
			    ls->replicate, &out_p, err);

	if (!rc)
		rc = query_long(ld, "SELECT max(output) FROM link_calc WHERE "
				"cell_id = ?1 AND replicate = ?2", cell_id,
				ls->replicate, &out_c, err);
	if (!rc)
		rc = query_long(ld, "SELECT max(point) FROM link_point WHERE "
				"cell_id = ?1 AND replicate = ?2", cell_id,
				ls->replicate, &points, err);
	if (!rc)
		rc = query_long(ld, "SELECT max(j) FROM link_calc WHERE "
				"cell_id = ?1 AND replicate = ?2", cell_id,
				ls->replicate, &calc, err);
	if (rc)
		return rc;
	ls->noutputs = (int)((out_p > out_c ? out_p : out_c) + 1);
	ls->npoints = (int)(points + 1);
	ls->ncalc = (int)(calc + 1);
	if ((double)ls->nframes * ls->noutputs *
	    (ls->npoints > ls->ncalc ? ls->npoints : ls->ncalc) >
	    (double)MAX_LINK_VALUES)
		return kaf_error_set(err, KAF_EDB, "database \"%s\": the link "
				     "snapshots of cell %lld are too large "
				     "to read (%d frames x %d outputs x %d "
				     "points)", ld->path, cell_id, ls->nframes,
				     ls->noutputs, ls->npoints);
	return KAF_OK;
}

static int load_series(struct loader *ld, struct kaf_link_series *ls,
		       struct kaf_error *err)
{
	long long id = ld->an->cells[ls->cell].cell_id;
	int rc = load_frames(ld, ls, id, err);

	if (!rc)
		rc = link_sizes(ld, ls, id, err);
	if (!rc && (alloc_values(ls, ls->npoints, &ls->z, &ls->yhat) ||
		    alloc_values(ls, ls->ncalc, &ls->calc_z, &ls->calc_y)))
		rc = no_memory(err);
	if (!rc)
		rc = fill_values(ld, ls, id, "link_point", ls->npoints, ls->z,
				 ls->yhat, err);
	if (!rc)
		rc = fill_values(ld, ls, id, "link_calc", ls->ncalc,
				 ls->calc_z, ls->calc_y, err);
	return rc;
}

/* "iris" for a block; else what tells the cell apart, or its dataset. */
static char *series_name(const struct loader *ld, int c)
{
	char label[256];

	if (ld->blocks[c][0] || ld->an->nvarying == 0)
		return strdup(group_key(ld, c));
	kaf_analysis_label(ld->an, &ld->an->cells[c], label, sizeof(label));
	return strdup(label);
}

static int load_links(struct loader *ld, struct kaf_error *err)
{
	struct kaf_study *st = ld->st;

	for (int c = 0; c < ld->an->ncells; c++) {
		struct kaf_link_series *grown;
		long rep;
		int rc = query_long(ld, "SELECT min(replicate) FROM link_frame "
				    "WHERE cell_id = ?1",
				    ld->an->cells[c].cell_id, 0, &rep, err);

		if (rc)
			return rc;
		if (rep < 0)
			continue;
		grown = realloc(st->links, (size_t)(st->nlinks + 1) *
				sizeof(*grown));
		if (!grown)
			return no_memory(err);
		st->links = grown;
		grown[st->nlinks] = (struct kaf_link_series){.cell = c,
							     .replicate = rep};
		grown[st->nlinks].name = series_name(ld, c);
		if (!grown[st->nlinks++].name)
			return no_memory(err);
		rc = load_series(ld, &grown[st->nlinks - 1], err);
		if (rc)
			return rc;
	}
	return KAF_OK;
}

/* ---- lifecycle ---- */

int kaf_study_load(struct sqlite3 *db, const char *db_path,
		   struct kaf_analysis *an, struct kaf_error *err)
{
	struct loader ld = {.db = db, .path = db_path, .an = an};
	int rc = KAF_OK;

	an->study = ld.st = calloc(1, sizeof(*ld.st));
	if (!ld.st || !(ld.st->cells = calloc((size_t)an->ncells + 1,
					      sizeof(*ld.st->cells))))
		return no_memory(err);
	ld.st->ncells = an->ncells;
	rc = load_blocks(&ld, err);
	for (int c = 0; c < an->ncells && !rc; c++) {
		rc = load_metrics(&ld, c, err);
		if (!rc)
			rc = load_traces(&ld, c, err);
	}
	if (!rc)
		rc = make_groups(&ld, err);
	if (!rc)
		rc = load_links(&ld, err);
	for (int c = 0; ld.blocks && c < an->ncells; c++)
		free(ld.blocks[c]);
	free(ld.blocks);
	return rc;
}

static void free_group(struct kaf_study_group *g)
{
	for (int i = 0; g->variants && i < g->ncells; i++)
		free(g->variants[i]);
	free(g->variants);
	free(g->cells);
	free(g->name);
}

static void free_series(struct kaf_link_series *ls)
{
	free(ls->name);
	free(ls->frames);
	free(ls->z);
	free(ls->yhat);
	free(ls->calc_z);
	free(ls->calc_y);
}

void kaf_study_destroy(struct kaf_study *st)
{
	if (!st)
		return;
	for (int g = 0; g < st->ngroups; g++)
		free_group(&st->groups[g]);
	free(st->groups);
	for (int i = 0; i < st->nlinks; i++)
		free_series(&st->links[i]);
	free(st->links);
	for (int c = 0; c < st->ncells; c++) {
		free(st->cells[c].curve.train);
		free(st->cells[c].curve.val);
	}
	free(st->cells);
	free(st);
}
