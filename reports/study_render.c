#include "study_render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shape.h"
#include "study.h"

/* Room for one formatted number or interval. */
#define NUM_LEN 64

const char *const kaf_study_tables[] = {
	"exp1_classification", "exp1_regression", "exp2_shape", NULL,
};

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

/* ---- experiment 1: the comparison ---- */

/* A group's task: that of its first cell that knows, else classes. */
static enum kaf_study_task group_task(const struct kaf_study *st,
				      const struct kaf_study_group *g)
{
	for (int i = 0; i < g->ncells; i++)
		if (st->cells[g->cells[i]].task != KAF_STUDY_UNKNOWN)
			return st->cells[g->cells[i]].task;
	return KAF_STUDY_CLASSIFICATION;
}

static bool row_is_classification(const struct kaf_study *st,
				  const struct kaf_study_group *g, int c)
{
	enum kaf_study_task task = st->cells[c].task;

	if (task == KAF_STUDY_UNKNOWN)
		task = group_task(st, g);
	return task == KAF_STUDY_CLASSIFICATION;
}

/* Accuracy with 3 decimals; losses with 4 significant digits. */
static const char *num(double v, bool accuracy, char *buf)
{
	snprintf(buf, NUM_LEN, accuracy ? "%.3f" : "%.4g", v);
	return buf;
}

/* The metric a group is ranked by: mean accuracy, or mean MSE. */
static const struct kaf_moments *ranked_metric(const struct kaf_study *st,
					       int c, bool accuracy)
{
	return accuracy ? &st->cells[c].accuracy : &st->cells[c].mse;
}

struct ranked {
	double mean;
	int i;
};

static int compare_high_first(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->mean != y->mean)
		return x->mean < y->mean ? 1 : -1;
	return x->i - y->i;
}

static int compare_low_first(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->mean != y->mean)
		return x->mean > y->mean ? 1 : -1;
	return x->i - y->i;
}

/* ", kaf naive (every run diverged)" for the variants without a mean. */
static void list_missing(const struct kaf_analysis *an,
			 const struct kaf_study_group *g, bool accuracy,
			 char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < g->ncells && used < size; i++) {
		const struct kaf_cell *cell = &an->cells[g->cells[i]];

		if (ranked_metric(an->study, g->cells[i], accuracy)->n > 0)
			continue;
		used += (size_t)snprintf(buf + used, size - used, "%s%s (%s)",
					 used ? ", " : "", g->variants[i],
					 cell->runs == 0 ? "no runs yet" :
					 cell->diverged == cell->runs ?
					 "every run diverged" :
					 "no finite value");
	}
}

/* "iris/1 (mean validation accuracy, best first): tanh 0.974, ..." */
static int order_item(const struct kaf_analysis *an,
		      const struct kaf_study_group *g, struct kaf_doc *doc)
{
	bool accuracy = group_task(an->study, g) == KAF_STUDY_CLASSIFICATION;
	struct ranked *r = malloc((size_t)g->ncells * sizeof(*r));
	char list[2048], missing[1024], v[NUM_LEN];
	size_t used = 0;
	int n = 0;

	if (!r)
		return KAF_ENOMEM;
	for (int i = 0; i < g->ncells; i++) {
		const struct kaf_moments *m = ranked_metric(an->study,
							    g->cells[i],
							    accuracy);

		if (m->n > 0)
			r[n++] = (struct ranked){m->mean, i};
	}
	qsort(r, (size_t)n, sizeof(*r), accuracy ? compare_high_first :
	      compare_low_first);
	list[0] = '\0';
	for (int k = 0; k < n && used < sizeof(list); k++)
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s%s %s", k ? ", " : "",
					 g->variants[r[k].i],
					 num(r[k].mean, accuracy, v));
	list_missing(an, g, accuracy, missing, sizeof(missing));
	kaf_doc_item(doc, "%s (mean validation %s, %s first): %s%s%s.",
		     g->name, accuracy ? "accuracy" : "MSE", accuracy ?
		     "best" : "lowest", n ? list : "no variant has a value",
		     missing[0] ? "; not averaged: " : "", missing);
	free(r);
	return KAF_OK;
}

static void moment_columns(struct kaf_table *t, const char *head,
			   const char *key)
{
	char h[NUM_LEN], k[NUM_LEN];

	snprintf(h, sizeof(h), "mean %s", head);
	snprintf(k, sizeof(k), "%s_mean", key);
	kaf_table_column(t, h, NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, k, 0);
	snprintf(h, sizeof(h), "%s sd", head);
	snprintf(k, sizeof(k), "%s_sd", key);
	kaf_table_column(t, h, NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, k, 0);
	snprintf(h, sizeof(h), "%s min-max", head);
	kaf_table_column(t, h, NULL, KAF_COL_RIGHT);
	snprintf(k, sizeof(k), "%s_min", key);
	kaf_table_column(t, NULL, k, 0);
	snprintf(k, sizeof(k), "%s_max", key);
	kaf_table_column(t, NULL, k, 0);
}

/* Empty cells where a moment is undefined (no runs, or one for sd). */
static void moment_cells(struct kaf_table *t, const struct kaf_moments *m,
			 bool accuracy)
{
	char a[NUM_LEN], b[NUM_LEN];

	kaf_table_cell(t, "%s", m->n ? num(m->mean, accuracy, a) : "");
	kaf_table_cell(t, m->n ? "%.15g" : "", m->mean);
	kaf_table_cell(t, "%s", m->n > 1 ? num(m->sd, accuracy, a) : "");
	kaf_table_cell(t, m->n > 1 ? "%.15g" : "", m->sd);
	if (m->n)
		kaf_table_cell(t, "[%s, %s]", num(m->min, accuracy, a),
			       num(m->max, accuracy, b));
	else
		kaf_table_cell(t, "%s", "");
	kaf_table_cell(t, m->n ? "%.15g" : "", m->min);
	kaf_table_cell(t, m->n ? "%.15g" : "", m->max);
}

static struct kaf_table *compare_table(const struct kaf_study *st,
				       bool accuracy, struct kaf_doc *doc)
{
	struct kaf_table *t = kaf_doc_table(doc, accuracy ?
					    "exp1_classification" :
					    "exp1_regression");
	const char *group = st->by_block ? "block" : "dataset";

	kaf_table_column(t, group, group, 0);
	kaf_table_column(t, "activation", "variant", 0);
	kaf_table_column(t, NULL, "activation", 0);
	kaf_table_column(t, NULL, "kernel", 0);
	kaf_table_column(t, "runs", "runs", KAF_COL_RIGHT);
	kaf_table_column(t, "diverged", "diverged", KAF_COL_RIGHT);
	kaf_table_column(t, "averaged", "averaged", KAF_COL_RIGHT);
	if (accuracy) {
		moment_columns(t, "accuracy", "accuracy");
	} else {
		moment_columns(t, "MSE", "mse");
		moment_columns(t, "MAE", "mae");
	}
	kaf_table_column(t, NULL, "cell_index", 0);
	return t;
}

static void compare_row(const struct kaf_analysis *an,
			const struct kaf_study_group *g, int i, bool accuracy,
			struct kaf_table *t)
{
	const struct kaf_cell *cell = &an->cells[g->cells[i]];
	const struct kaf_study_cell *sc = &an->study->cells[g->cells[i]];

	kaf_table_row(t);
	kaf_table_cell(t, "%s", g->name);
	kaf_table_cell(t, "%s", g->variants[i]);
	kaf_table_cell(t, "%s", kaf_analysis_value(an, cell,
						   KAF_COL_ACTIVATION));
	kaf_table_cell(t, "%s", kaf_analysis_value(an, cell, KAF_COL_KERNEL));
	kaf_table_cell(t, "%ld", cell->runs);
	kaf_table_cell(t, "%ld", cell->diverged);
	kaf_table_cell(t, "%ld", accuracy ? sc->accuracy.n : sc->mse.n);
	if (accuracy) {
		moment_cells(t, &sc->accuracy, true);
	} else {
		moment_cells(t, &sc->mse, false);
		moment_cells(t, &sc->mae, false);
	}
	kaf_table_cell(t, "%ld", cell->cell_index);
}

/* One table per task present, rows in group then grid order. */
static void compare_tables(const struct kaf_analysis *an,
			   struct kaf_doc *doc)
{
	const struct kaf_study *st = an->study;

	for (int pass = 0; pass < 2; pass++) {
		bool accuracy = pass == 0;
		struct kaf_table *t = NULL;

		for (int g = 0; g < st->ngroups; g++) {
			const struct kaf_study_group *gr = &st->groups[g];

			for (int i = 0; i < gr->ncells; i++) {
				if (row_is_classification(st, gr,
							  gr->cells[i]) !=
				    accuracy)
					continue;
				if (!t) {
					kaf_doc_para(doc, "%s", accuracy ?
						     "Classification:" :
						     "Regression (MSE and "
						     "MAE on the validation "
						     "rows):");
					t = compare_table(st, accuracy, doc);
				}
				compare_row(an, gr, i, accuracy, t);
			}
		}
	}
}

/* ---- experiment 1: the loss curves ---- */

/* " No curve: kaf naive (every run diverged)." or "". */
static void no_curves(const struct kaf_analysis *an,
		      const struct kaf_study_group *g, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < g->ncells && used < size; i++) {
		const struct kaf_cell *cell = &an->cells[g->cells[i]];

		if (kaf_curve_shows(&an->study->cells[g->cells[i]].curve,
				    g->curve_from))
			continue;
		used += (size_t)snprintf(buf + used, size - used, "%s%s (%s)",
					 used ? ", " : " No curve: ",
					 g->variants[i], cell->runs > 0 &&
					 cell->diverged == cell->runs ?
					 "every run diverged" : "no trace of "
					 "a run that did not diverge");
	}
	if (used && used < size)
		snprintf(buf + used, size - used, ".");
}

static void curve_figure(const struct kaf_analysis *an,
			 const struct kaf_study_group *g,
			 const struct kaf_plot *pl, struct kaf_doc *doc)
{
	char start[320], missing[1024];

	if (g->curve_from > 0)
		snprintf(start, sizeof(start), "from epoch %ld on, as in the "
			 "original study, so that the large losses of the "
			 "first steps do not flatten the curves",
			 g->curve_from);
	else
		snprintf(start, sizeof(start), "from epoch 0: its cells "
			 "trained %ld epochs, fewer than %d, too few to leave "
			 "out the first %d", g->epochs,
			 KAF_STUDY_CURVE_MIN_EPOCHS, KAF_STUDY_CURVE_FROM);
	no_curves(an, g, missing, sizeof(missing));
	kaf_doc_figure(doc, pl->stem, pl->state == KAF_PLOT_DRAWN,
		       "Mean training (top) and validation (bottom) loss per "
		       "epoch in %s, one line per activation, averaged over "
		       "the runs that did not diverge; %s.%s%s%s", g->name,
		       start, missing, pl->note[0] ? " Not drawn: " : "",
		       pl->note);
}

static void curves_section(const struct kaf_analysis *an,
			   const struct kaf_study_plots *sp,
			   struct kaf_doc *doc)
{
	const struct kaf_study *st = an->study;

	kaf_doc_heading(doc, 3, "Loss curves");
	if (!st->traced || !sp->loss) {
		kaf_doc_para(doc, "The sweep stored no per-epoch losses. Run "
			     "it with --trace (the exp1 preset does) for the "
			     "training and validation loss curves.");
		return;
	}
	kaf_doc_para(doc, "Training and validation loss (MSE) at each epoch, "
		     "averaged over the runs of each activation that did not "
		     "diverge; where no such run has a finite loss at an "
		     "epoch, the line breaks. When the values of a figure "
		     "span a factor of %d or more, its y axes are "
		     "logarithmic.",
		     KAF_STUDY_LOG_SPAN);
	for (int g = 0; g < st->ngroups; g++)
		curve_figure(an, &st->groups[g], &sp->loss[g], doc);
}

static int compare_section(const struct kaf_analysis *an,
			   const struct kaf_study_plots *sp,
			   struct kaf_doc *doc)
{
	const struct kaf_study *st = an->study;

	kaf_doc_heading(doc, 2, "Activations compared (experiment 1)");
	kaf_doc_para(doc, "Each %s of the sweep with its output activations "
		     "side by side, as in the original study; K-AF's two "
		     "evaluations, naive and stable, are separate rows. The "
		     "validation accuracy (classification) or MSE and MAE "
		     "(regression) at the end of training are averaged over "
		     "the runs that did not diverge: \"averaged\" counts "
		     "them, \"diverged\" counts the others. sd is the sample "
		     "standard deviation (n - 1) over the same runs, empty "
		     "below two; min-max their range. The variants, by mean:",
		     st->by_block ? "block (dataset and setting)" :
		     "dataset");
	for (int g = 0; g < st->ngroups; g++)
		if (order_item(an, &st->groups[g], doc))
			return KAF_ENOMEM;
	compare_tables(an, doc);
	curves_section(an, sp, doc);
	return KAF_OK;
}

/* ---- experiment 2: the learned link ---- */

/* The final frame's finite points of output k, into z and y (n). */
static int final_points(const struct kaf_link_series *ls, int k,
			double *z, double *y)
{
	long at = kaf_link_points_at(ls, ls->nframes - 1, k);
	int n = 0;

	for (int i = 0; i < ls->npoints; i++) {
		if (!isfinite(ls->z[at + i]) || !isfinite(ls->yhat[at + i]))
			continue;
		z[n] = ls->z[at + i];
		y[n++] = ls->yhat[at + i];
	}
	return n;
}

static void shape_columns(struct kaf_table *t, const char *name)
{
	kaf_table_column(t, name, "cell", 0);
	kaf_table_column(t, NULL, "cell_index", 0);
	kaf_table_column(t, NULL, "replicate", 0);
	kaf_table_column(t, "output", "output", KAF_COL_RIGHT);
	kaf_table_column(t, "epoch", "epoch", KAF_COL_RIGHT);
	kaf_table_column(t, "h", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "bandwidth", 0);
	kaf_table_column(t, "y_hat range", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "y_min", 0);
	kaf_table_column(t, NULL, "y_max", 0);
	kaf_table_column(t, "increasing", "increasing", 0);
	kaf_table_column(t, "decreasing", "decreasing", 0);
	kaf_table_column(t, "zero gradient", NULL, 0);
	kaf_table_column(t, NULL, "zero_gradient", 0);
	kaf_table_column(t, NULL, "zero_gradient_z", 0);
	kaf_table_column(t, "bounded above", "bounded_above", 0);
}

static void shape_cells(struct kaf_table *t, const struct kaf_shape *s)
{
	kaf_table_cell(t, "[%.4g, %.4g]", s->min, s->max);
	kaf_table_cell(t, "%.15g", s->min);
	kaf_table_cell(t, "%.15g", s->max);
	kaf_table_cell(t, "%s", yes_no(s->increasing));
	kaf_table_cell(t, "%s", yes_no(s->decreasing));
	if (s->flat)
		kaf_table_cell(t, "yes (flat)");
	else if (s->zero_gradient)
		kaf_table_cell(t, "yes (z = %.3g)", s->zero_z);
	else
		kaf_table_cell(t, "no");
	kaf_table_cell(t, "%s", yes_no(s->zero_gradient));
	kaf_table_cell(t, isnan(s->zero_z) ? "" : "%.15g", s->zero_z);
	kaf_table_cell(t, "%s", yes_no(s->bounded_above));
}

static void shape_row(const struct kaf_analysis *an,
		      const struct kaf_link_series *ls, int k, double *z,
		      double *y, struct kaf_table *t)
{
	const struct kaf_link_frame *last = &ls->frames[ls->nframes - 1];
	int n = final_points(ls, k, z, y);
	struct kaf_shape s;

	kaf_table_row(t);
	kaf_table_cell(t, "%s", ls->name);
	kaf_table_cell(t, "%ld", an->cells[ls->cell].cell_index);
	kaf_table_cell(t, "%ld", ls->replicate);
	kaf_table_cell(t, "%d", k);
	kaf_table_cell(t, "%ld", last->epoch);
	kaf_table_cell(t, isfinite(last->bandwidth) ? "%.4g" : "",
		       last->bandwidth);
	kaf_table_cell(t, isfinite(last->bandwidth) ? "%.15g" : "",
		       last->bandwidth);
	if (kaf_shape_judge(z, y, n, &s) == KAF_OK) {
		shape_cells(t, &s);
		return;
	}
	/* Fewer than three finite points, or z not ascending: a collapsed
	 * link whose rows all share one z. */
	kaf_table_cell(t, "not judged: %d finite point%s%s", n, n == 1 ?
		       "" : "s", n >= KAF_SHAPE_MIN_POINTS ?
		       ", z not increasing" : "");
}

static int shape_table(const struct kaf_analysis *an, struct kaf_doc *doc)
{
	const struct kaf_study *st = an->study;
	struct kaf_table *t = kaf_doc_table(doc, "exp2_shape");
	int most = 1;
	double *z, *y;

	for (int l = 0; l < st->nlinks; l++)
		most = st->links[l].npoints > most ? st->links[l].npoints :
			most;
	z = malloc((size_t)most * sizeof(*z));
	y = malloc((size_t)most * sizeof(*y));
	if (!z || !y) {
		free(z);
		free(y);
		return KAF_ENOMEM;
	}
	shape_columns(t, st->by_block ? "block" : "cell");
	for (int l = 0; l < st->nlinks; l++)
		for (int k = 0; k < st->links[l].noutputs &&
		     st->links[l].nframes > 0; k++)
			shape_row(an, &st->links[l], k, z, y, t);
	free(z);
	free(y);
	return KAF_OK;
}

/* "101" when every series has that many points, else "its". */
static void points_count(const struct kaf_study *st, char *buf)
{
	snprintf(buf, NUM_LEN, "%d", st->links[0].npoints);
	for (int l = 1; l < st->nlinks; l++)
		if (st->links[l].npoints != st->links[0].npoints)
			snprintf(buf, NUM_LEN, "its");
}

static void shape_criterion(const struct kaf_study *st, struct kaf_doc *doc)
{
	char points[NUM_LEN];

	points_count(st, points);
	kaf_doc_para(doc, "Each output's link at the last snapshot is judged "
		     "from %s points, z ascending, at a resolution tied to "
		     "its own range R = max - min of y_hat: tol = %g R. "
		     "Increasing: the curve never falls more than tol below "
		     "its running maximum; decreasing: it never rises more "
		     "than tol above its running minimum. Zero gradient: the "
		     "curve is not monotone in that sense (it rises and falls "
		     "by more than tol, so its slope changes sign; the table "
		     "gives the z of the first turning point), or it stays "
		     "within tol over a stretch of at least %g %% of the z "
		     "range (a plateau; the table gives its middle). Bounded "
		     "above: at each end where the curve comes within tol of "
		     "its maximum, it flattens, rising by less than %g %% of "
		     "R over the last %g %% of the z range toward that end; "
		     "a curve whose maximum is interior is bounded above. A "
		     "curve whose range is below %g of its largest |y_hat| is "
		     "flat: neither increasing nor decreasing, zero gradient "
		     "everywhere, bounded above.", points, KAF_SHAPE_TOL,
		     100 * KAF_SHAPE_STRETCH, 100 * KAF_SHAPE_END_RISE,
		     100 * KAF_SHAPE_STRETCH, KAF_SHAPE_FLAT);
	kaf_doc_para(doc, "The judgement holds on the z range the training "
		     "rows reached and at this resolution: an asymptote that "
		     "stays within tol over a tenth of the range counts as a "
		     "plateau. Every K-AF link is a weighted mean of the calc "
		     "rows' targets, so it never leaves their range and tends "
		     "to the target of the outermost calc row beyond the "
		     "data: bounded in the mathematical sense, always. The "
		     "question the table answers is whether it flattens "
		     "where the data are.");
}

static void series_figures(const struct kaf_analysis *an,
			   const struct kaf_link_series *ls,
			   const struct kaf_plot *link,
			   const struct kaf_plot *movie, struct kaf_doc *doc)
{
	const struct kaf_link_frame *first = &ls->frames[0];
	const struct kaf_link_frame *last = &ls->frames[ls->nframes - 1];
	const char *dataset = kaf_analysis_value(an, &an->cells[ls->cell],
						 KAF_COL_DATASET);
	int shown = kaf_study_movie_frames(ls);
	char h[NUM_LEN] = "not stored", some[160] = "", run[320];

	if (isfinite(last->bandwidth))
		snprintf(h, sizeof(h), "%.4g", last->bandwidth);
	snprintf(run, sizeof(run), "%s%s%s", strcmp(dataset, ls->name) ?
		 "dataset " : "", strcmp(dataset, ls->name) ? dataset : "",
		 strcmp(dataset, ls->name) ? ", " : "");
	if (shown < ls->nframes)
		snprintf(some, sizeof(some), " (%d of the %d snapshots, evenly "
			 "spread)", shown, ls->nframes);
	kaf_doc_heading(doc, 3, "%s", ls->name);
	kaf_doc_figure(doc, link->stem, link->state == KAF_PLOT_DRAWN,
		       "The link learned in %s (%sreplicate %ld) at its last "
		       "snapshot, epoch %ld, bandwidth h = %s: one panel per "
		       "output dimension k, the curve y_hat_k(z) over the z "
		       "range the training rows reached and the calc rows "
		       "(z_jk, y_jk) as dots.%s%s", ls->name, run,
		       ls->replicate, last->epoch, h, link->note[0] ?
		       " Not drawn: " : "", link->note);
	kaf_doc_animation(doc, movie->stem, movie->state == KAF_PLOT_DRAWN,
			  "The same over training, one frame per snapshot "
			  "from epoch %ld to epoch %ld%s; each panel's axes "
			  "stay fixed across frames and the title gives the "
			  "epoch and the bandwidth.%s%s", first->epoch,
			  last->epoch, some, movie->note[0] ? " Not drawn: " :
			  "", movie->note);
}

static int link_section(const struct kaf_analysis *an,
			const struct kaf_study_plots *sp,
			struct kaf_doc *doc)
{
	const struct kaf_study *st = an->study;
	int rc;

	kaf_doc_heading(doc, 2, "The learned link (experiment 2)");
	kaf_doc_para(doc, "For every cell whose runs kept snapshots of the "
		     "K-AF link (its first such replicate), the link "
		     "y_hat_k(z) of each output dimension k: the kernel "
		     "estimate over the calc rows, evaluated in the stable "
		     "form on a grid of z spanning the range the training "
		     "rows' z reached at that step, with the calc rows (z_j, "
		     "y_jk) that define it.");
	shape_criterion(st, doc);
	rc = shape_table(an, doc);
	for (int l = 0; l < st->nlinks && !rc; l++)
		if (st->links[l].nframes > 0)
			series_figures(an, &st->links[l], &sp->link[l],
				       &sp->movie[l], doc);
	return rc;
}

int kaf_study_render(const struct kaf_analysis *an,
		     const struct kaf_study_plots *sp, struct kaf_doc *doc)
{
	int rc = KAF_OK;

	if (an->study->compare)
		rc = compare_section(an, sp, doc);
	if (!rc && an->study->nlinks > 0)
		rc = link_section(an, sp, doc);
	return rc;
}
