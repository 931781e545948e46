#include "render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "study_render.h"

/* Prose lists at most this many values of an axis. */
#define MAX_LISTED 8

/* Step tables keep one row per step up to this many rows, then bin. */
#define MAX_STEP_ROWS 30

/* Room for one formatted number. */
#define NUM_LEN 48

const char *const kaf_render_tables[] = {
	"sweep", "ranking", "factors", "factor_levels", "causes",
	"divergence_steps", "causes_by_value", "survival", "val_loss",
	"exp1_classification", "exp1_regression", "exp2_shape", NULL,
};

static const char *label(enum kaf_cell_column axis)
{
	return kaf_column_info[axis].label;
}

static const char *pct(double fraction, char *buf)
{
	snprintf(buf, NUM_LEN, "%.1f %%", 100 * fraction);
	return buf;
}

static const char *ci_pct(struct kaf_interval ci, char *buf)
{
	snprintf(buf, NUM_LEN, "%.1f-%.1f %%", 100 * ci.lo, 100 * ci.hi);
	return buf;
}

/* A p-value for prose: "p = 0.032", "p < 1e-9". */
static const char *prose_p(double p, char *buf)
{
	if (kaf_stats_format_p(p, buf, NUM_LEN, NULL))
		snprintf(buf, NUM_LEN, "p = %g", p);
	return buf;
}

/* The same for a table cell: "0.032", "< 1e-9". */
static const char *cell_p(double p, char *buf)
{
	char prose[NUM_LEN];
	const char *s = prose_p(p, prose);

	if (strncmp(s, "p = ", 4) == 0)
		s += 4;
	else if (strncmp(s, "p ", 2) == 0)
		s += 2;
	snprintf(buf, NUM_LEN, "%s", s);
	return buf;
}

static const char *test_name(const struct kaf_analysis *an)
{
	return an->paired ? "McNemar's exact test on the paired replicates" :
		"Fisher's exact test on the 2x2 counts";
}

/* Levels of an axis that have runs. */
static int levels_with_runs(const struct kaf_factor *f)
{
	int n = 0;

	for (int i = 0; i < f->nlevels; i++)
		n += f->levels[i].runs > 0;
	return n;
}

/* ---- summary ---- */

static void summary_overall(const struct kaf_analysis *an,
			    struct kaf_doc *doc)
{
	char rate[NUM_LEN], ci[NUM_LEN], tail[160] = "";
	int short_cells = 0;

	for (int c = 0; c < an->ncells; c++)
		short_cells += an->cells[c].runs < an->cells[c].target_runs;
	if (short_cells || !an->finished_at)
		snprintf(tail, sizeof(tail), " The sweep has not finished: %d "
			 "of its %d cells have fewer runs than asked for.",
			 short_cells, an->ncells);
	kaf_doc_para(doc, "Sweep %lld (%s%s%s%s seeding): %d cells, %ld runs, "
		     "%ld diverged (%s, 95 %% CI %s).%s", an->sweep_id,
		     an->preset ? "preset " : "", an->preset ? an->preset : "",
		     an->preset ? ", " : "", an->seeding, an->ncells, an->runs,
		     an->diverged, pct((double)an->diverged / an->runs, rate),
		     ci_pct(an->ci, ci), tail);
}

static double level_rate(const struct kaf_level *lv)
{
	return lv->runs ? (double)lv->diverged / lv->runs : NAN;
}

/* "none 59.1 %, l1 59.5 %, l2 59.3 %" into buf; sep between two. */
static void list_rates(const struct kaf_factor *f, const char *sep,
		       char *buf, size_t size)
{
	size_t used = 0;
	int listed = 0;

	buf[0] = '\0';
	for (int i = 0; i < f->nlevels && used < size; i++) {
		char rate[NUM_LEN];

		if (f->levels[i].runs == 0)
			continue;
		if (listed++ == MAX_LISTED) {
			snprintf(buf + used, size - used, ", ...");
			return;
		}
		used += (size_t)snprintf(buf + used, size - used, "%s%s %s",
					 used ? sep : "", f->levels[i].name,
					 pct(level_rate(&f->levels[i]), rate));
	}
}

/* Indices of the levels with the lowest and highest rate. */
static void extremes(const struct kaf_factor *f, int *lo, int *hi)
{
	*lo = *hi = -1;
	for (int i = 0; i < f->nlevels; i++) {
		double r = level_rate(&f->levels[i]);

		if (isnan(r))
			continue;
		if (*lo < 0 || r < level_rate(&f->levels[*lo]))
			*lo = i;
		if (*hi < 0 || r > level_rate(&f->levels[*hi]))
			*hi = i;
	}
}

static bool matters(const struct kaf_factor *f)
{
	return levels_with_runs(f) > 1 && f->p_holm < KAF_ANALYSIS_ALPHA;
}

/*
 * "initializer: xavier_uniform 47.0 % vs kaiming_uniform 76.0 % (rate
 * ratio 0.62), p < 1e-9, Cramer's V 0.29." With more values, all rates
 * and their spread (only the extremes past MAX_LISTED values); without
 * an effect, "no detectable effect" and the rates.
 */
static void summary_factor(const struct kaf_factor *f, struct kaf_doc *doc)
{
	char p[NUM_LEN], a[NUM_LEN], b[NUM_LEN], list[640];
	int lo, hi;

	prose_p(f->p_holm, p);
	extremes(f, &lo, &hi);
	if (!matters(f)) {
		list_rates(f, ", ", list, sizeof(list));
		kaf_doc_item(doc, "%s: no detectable effect (%s; %s).",
			     label(f->axis), list, p);
	} else if (levels_with_runs(f) == 2) {
		list_rates(f, " vs ", list, sizeof(list));
		kaf_doc_item(doc, "%s: %s (rate ratio %.2f), %s, Cramér's V "
			     "%.2f.", label(f->axis), list,
			     level_rate(&f->levels[lo]) /
			     level_rate(&f->levels[hi]), p, f->chi2.cramer_v);
	} else if (levels_with_runs(f) <= MAX_LISTED) {
		list_rates(f, ", ", list, sizeof(list));
		kaf_doc_item(doc, "%s: %s (spread %.1f points), %s, Cramér's "
			     "V %.2f.", label(f->axis), list,
			     100 * (level_rate(&f->levels[hi]) -
				    level_rate(&f->levels[lo])), p,
			     f->chi2.cramer_v);
	} else {
		kaf_doc_item(doc, "%s: from %s (%s) to %s (%s), %s, Cramér's "
			     "V %.2f.", label(f->axis),
			     pct(level_rate(&f->levels[lo]), a),
			     f->levels[lo].name,
			     pct(level_rate(&f->levels[hi]), b),
			     f->levels[hi].name, p, f->chi2.cramer_v);
	}
}

/* "2, 3 and 5": the ranks of the cells not different from the top. */
static void same_ranks(const struct kaf_analysis *an, int same, char *buf,
		       size_t size)
{
	size_t used = 0;
	int listed = 0;

	buf[0] = '\0';
	for (int i = 1; i < an->nranked && used < size; i++) {
		const struct kaf_cell *c = &an->cells[an->ranking[i]];

		if (!c->same_as_top)
			continue;
		listed++;
		used += (size_t)snprintf(buf + used, size - used, "%s%d",
					 listed == 1 ? "" : listed == same ?
					 " and " : ", ", c->rank);
	}
}

static void summary_ranking(const struct kaf_analysis *an,
			    struct kaf_doc *doc)
{
	const struct kaf_cell *top = kaf_analysis_top(an);
	char name[256], rate[NUM_LEN], ci[NUM_LEN], ranks[256], head[512];
	int same = 0, others = an->nranked - 1;

	if (others == 0) {
		kaf_doc_para(doc, "Only one cell has runs: there is nothing "
			     "to rank.");
		return;
	}
	for (int i = 1; i < an->nranked; i++)
		same += an->cells[an->ranking[i]].same_as_top;
	kaf_analysis_label(an, top, name, sizeof(name));
	snprintf(head, sizeof(head), "Top-ranked cell: %s, %s diverged "
		 "(95 %% CI %s). By %s (Holm-adjusted, alpha %.2f),", name,
		 pct(top->rate, rate), ci_pct(top->ci, ci), test_name(an),
		 KAF_ANALYSIS_ALPHA);
	if (same == 0) {
		kaf_doc_para(doc, "%s it differs significantly from each of "
			     "the other %d cells: the top of the ranking is "
			     "clear.", head, others);
	} else if (same == others) {
		kaf_doc_para(doc, "%s no other cell differs significantly "
			     "from it: the ranking does not separate the "
			     "cells.", head);
	} else {
		if (same <= 10)
			same_ranks(an, same, ranks, sizeof(ranks));
		kaf_doc_para(doc, "%s it is not significantly different from "
			     "%d other cell%s%s%s%s and differs from the "
			     "remaining %d.", head, same, same > 1 ? "s" : "",
			     same > 10 ? "" : same > 1 ? " (ranks " :
			     " (rank ", same <= 10 ? ranks : "",
			     same <= 10 ? ")" : "", others - same);
	}
}

/* How many top positions of the ranking share the top cell's value. */
static int leading_run(const struct kaf_analysis *an, enum kaf_cell_column axis)
{
	int value = an->cells[an->ranking[0]].level[axis], n = 1;

	while (n < an->nranked && an->cells[an->ranking[n]].level[axis] ==
	       value)
		n++;
	return n;
}

/*
 * "One optimizer dominates the top ranks", tested rather than assumed:
 * for each axis, how far down the ranking the top cell's value holds
 * every position ("the top 3 cells all have optimizer adam").
 */
static void summary_top_group(const struct kaf_analysis *an,
			      struct kaf_doc *doc)
{
	char text[1024];
	size_t used = 0;

	if (an->nranked < 3)
		return;
	for (int i = 0; i < an->nvarying && used < sizeof(text); i++) {
		enum kaf_cell_column a = an->varying[i];
		const char *value = kaf_analysis_value(an, kaf_analysis_top(an),
						       a);
		int n = leading_run(an, a);

		if (n < 2 || n == an->nranked)
			continue;
		used += (size_t)snprintf(text + used, sizeof(text) - used,
					 "%s the top %d cells all have %s %s",
					 used ? ";" : "", n, label(a), value);
	}
	if (used)
		kaf_doc_para(doc, "At the head of the ranking,%s.", text);
	else
		kaf_doc_para(doc, "No value of any axis holds even the top two "
			     "ranks together.");
}

/* Diverged runs per cause (ncauses) and per step (nsteps + 1). */
static int count_causes(const struct kaf_analysis *an, long **by_cause,
			long **by_step)
{
	*by_cause = calloc((size_t)an->ncauses + 1, sizeof(long));
	*by_step = calloc((size_t)an->nsteps + 1, sizeof(long));
	if (!*by_cause || !*by_step)
		return KAF_ENOMEM;
	for (int d = 0; d < an->ndiv; d++) {
		const struct kaf_divergence *dv = &an->div[d];

		(*by_cause)[dv->cause] += dv->count;
		if (dv->step >= 0 && dv->step <= an->nsteps)
			(*by_step)[dv->step] += dv->count;
	}
	return KAF_OK;
}

/* "kernel_underflow 980 (98.0 %), nonfinite_grad 20 (2.0 %)", most first. */
static void list_causes(const struct kaf_analysis *an, const long *by_cause,
			char *buf, size_t size)
{
	size_t used = 0;
	bool *done = calloc((size_t)an->ncauses + 1, sizeof(*done));

	buf[0] = '\0';
	for (int n = 0; done && n < an->ncauses && used < size; n++) {
		int best = -1;
		char share[NUM_LEN];

		for (int c = 0; c < an->ncauses; c++)
			if (!done[c] && (best < 0 || by_cause[c] >
					 by_cause[best]))
				best = c;
		done[best] = true;
		used += (size_t)snprintf(buf + used, size - used, "%s%s %ld "
					 "(%s)", n ? ", " : "",
					 an->causes[best], by_cause[best],
					 pct((double)by_cause[best] /
					     an->diverged, share));
	}
	free(done);
}

static int summary_causes(const struct kaf_analysis *an,
			  struct kaf_doc *doc)
{
	long *by_cause, *by_step, first = -1, last = -1, mode = 0;
	char list[1024], share[NUM_LEN];

	if (an->diverged == 0) {
		kaf_doc_para(doc, "No run diverged.");
		return KAF_OK;
	}
	if (count_causes(an, &by_cause, &by_step)) {
		free(by_cause);
		free(by_step);
		return KAF_ENOMEM;
	}
	list_causes(an, by_cause, list, sizeof(list));
	for (long s = 0; s <= an->nsteps; s++) {
		if (!by_step[s])
			continue;
		first = first < 0 ? s : first;
		last = s;
		mode = by_step[s] > by_step[mode] ? s : mode;
	}
	if (first < 0)
		kaf_doc_para(doc, "Causes of the %ld divergences: %s. Their "
			     "steps were not recorded.", an->diverged, list);
	else if (first == last)
		kaf_doc_para(doc, "Causes of the %ld divergences: %s. All "
			     "happened at step %ld.", an->diverged, list,
			     first);
	else
		kaf_doc_para(doc, "Causes of the %ld divergences: %s. The "
			     "most common step was %ld (%ld, %s); the "
			     "first at step %ld, the last at step %ld.",
			     an->diverged, list, mode, by_step[mode],
			     pct((double)by_step[mode] / an->diverged, share),
			     first, last);
	free(by_cause);
	free(by_step);
	return KAF_OK;
}

static int section_summary(const struct kaf_analysis *an,
			   struct kaf_doc *doc)
{
	kaf_doc_heading(doc, 2, "Summary");
	summary_overall(an, doc);
	if (an->nvarying == 0)
		kaf_doc_para(doc, "Only one configuration was run: there are "
			     "no axes to compare.");
	else
		kaf_doc_para(doc, "Which axes change the divergence rate, "
			     "largest effect first (chi-square test of each "
			     "axis, p Holm-adjusted over the %d that vary):",
			     an->nvarying);
	for (int i = 0; i < an->nvarying; i++)
		summary_factor(&an->factors[an->varying[i]], doc);
	summary_ranking(an, doc);
	summary_top_group(an, doc);
	return summary_causes(an, doc);
}

/* ---- the sweep ---- */

static void sweep_row(struct kaf_table *t, const char *field,
		      const char *value)
{
	kaf_table_row(t);
	kaf_table_cell(t, "%s", field);
	kaf_table_cell(t, "%s", value ? value : "");
}

static void sweep_table(const struct kaf_analysis *an, struct kaf_doc *doc)
{
	struct kaf_table *t = kaf_doc_table(doc, "sweep");
	char num[4][NUM_LEN];

	snprintf(num[0], NUM_LEN, "%lld", an->sweep_id);
	snprintf(num[1], NUM_LEN, "%lld", an->seed);
	snprintf(num[2], NUM_LEN, "%ld", an->runs_per_cell);
	snprintf(num[3], NUM_LEN, "%d", an->ncells);
	kaf_table_column(t, "field", "field", 0);
	kaf_table_column(t, "value", "value", 0);
	sweep_row(t, "sweep", num[0]);
	sweep_row(t, "preset", an->preset ? an->preset : "(none)");
	sweep_row(t, "seeding", an->seeding);
	sweep_row(t, "seed", num[1]);
	sweep_row(t, "runs per cell (largest asked for)", num[2]);
	sweep_row(t, "cells", num[3]);
	sweep_row(t, "started", an->started_at);
	sweep_row(t, "finished", an->finished_at ? an->finished_at :
		  "not yet");
	sweep_row(t, "kaf version", an->kaf_version);
	sweep_row(t, "host", an->host);
	sweep_row(t, "database", an->db_path);
}

/* "initializer (xavier_uniform, kaiming_uniform); ..." or the fixed. */
static void list_axes(const struct kaf_analysis *an, bool varying,
		      char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int a = 0; a < KAF_COL_COUNT && used < size; a++) {
		const struct kaf_factor *f = &an->factors[a];

		if ((f->nlevels > 1) != varying)
			continue;
		used += (size_t)snprintf(buf + used, size - used, "%s%s %s",
					 used ? (varying ? "; " : ", ") : "",
					 label(f->axis), varying ? "(" : "");
		for (int i = 0; i < f->nlevels && used < size; i++)
			used += (size_t)snprintf(buf + used, size - used,
						 "%s%s", i ? ", " : "",
						 f->levels[i].name);
		if (varying && used < size)
			used += (size_t)snprintf(buf + used, size - used, ")");
	}
}

static void section_sweep(const struct kaf_analysis *an,
			  struct kaf_doc *doc)
{
	char list[2048];

	kaf_doc_heading(doc, 2, "Sweep");
	sweep_table(an, doc);
	list_axes(an, true, list, sizeof(list));
	if (an->nvarying)
		kaf_doc_para(doc, "Axes that vary: %s.", list);
	list_axes(an, false, list, sizeof(list));
	kaf_doc_para(doc, "Fixed settings: %s.", list);
}

/* ---- ranking ---- */

static void ranking_columns(const struct kaf_analysis *an,
			    struct kaf_table *t)
{
	kaf_table_column(t, "rank", "rank", KAF_COL_RIGHT);
	for (int a = 0; a < KAF_COL_COUNT; a++)
		if (an->factors[a].nlevels > 1)
			kaf_table_column(t, kaf_column_info[a].label,
					 kaf_column_info[a].column, 0);
	if (an->nvarying == 0)
		kaf_table_column(t, "cell", "cell", 0);
	kaf_table_column(t, "runs", "runs", KAF_COL_RIGHT);
	kaf_table_column(t, "divergence count", "diverged", KAF_COL_RIGHT);
	kaf_table_column(t, "divergence probability", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "probability", 0);
	kaf_table_column(t, "Wilson 95 % CI", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "ci_low", 0);
	kaf_table_column(t, NULL, "ci_high", 0);
	if (an->paired) {
		kaf_table_column(t, "pairs", "pairs", KAF_COL_RIGHT);
		kaf_table_column(t, "b", "b", KAF_COL_RIGHT);
		kaf_table_column(t, "c", "c", KAF_COL_RIGHT);
	}
	kaf_table_column(t, "p vs rank 1", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "p", 0);
	kaf_table_column(t, "p (Holm)", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "p_holm", 0);
	kaf_table_column(t, "not different from rank 1", NULL, 0);
	kaf_table_column(t, NULL, "not_different_from_top", 0);
	kaf_table_column(t, NULL, "cell_index", 0);
}

static void ranking_row(const struct kaf_analysis *an,
			const struct kaf_cell *c, struct kaf_table *t)
{
	bool top = c == kaf_analysis_top(an);
	char p[NUM_LEN], ph[NUM_LEN];

	kaf_table_row(t);
	kaf_table_cell(t, "%d", c->rank);
	for (int a = 0; a < KAF_COL_COUNT; a++)
		if (an->factors[a].nlevels > 1)
			kaf_table_cell(t, "%s", kaf_analysis_value(an, c,
							(enum kaf_cell_column)a));
	if (an->nvarying == 0)
		kaf_table_cell(t, "all runs");
	kaf_table_cell(t, "%ld", c->runs);
	kaf_table_cell(t, "%ld", c->diverged);
	kaf_table_cell(t, "%.3f", c->rate);
	kaf_table_cell(t, "%.15g", c->rate);
	kaf_table_cell(t, "[%.3f, %.3f]", c->ci.lo, c->ci.hi);
	kaf_table_cell(t, "%.15g", c->ci.lo);
	kaf_table_cell(t, "%.15g", c->ci.hi);
	if (an->paired) {
		kaf_table_cell(t, top ? "" : "%ld", c->pairs);
		kaf_table_cell(t, top ? "" : "%ld", c->b);
		kaf_table_cell(t, top ? "" : "%ld", c->c);
	}
	kaf_table_cell(t, "%s", top ? "" : cell_p(c->p, p));
	kaf_table_cell(t, top ? "" : "%.6g", c->p);
	kaf_table_cell(t, "%s", top ? "" : cell_p(c->p_holm, ph));
	kaf_table_cell(t, top ? "" : "%.6g", c->p_holm);
	kaf_table_cell(t, "%s", top ? "(reference)" : c->same_as_top ?
		       "yes" : "");
	kaf_table_cell(t, "%d", c->same_as_top ? 1 : 0);
	kaf_table_cell(t, "%ld", c->cell_index);
}

static void ranking_method(const struct kaf_analysis *an,
			   struct kaf_doc *doc)
{
	char name[256];

	kaf_analysis_label(an, kaf_analysis_top(an), name, sizeof(name));
	kaf_doc_para(doc, "Cells ordered by divergence probability (diverged "
		     "runs / runs), highest first; equal probabilities share "
		     "a rank. The interval is Wilson's 95 %% score interval. "
		     "Every cell is compared with the top-ranked one (rank 1, "
		     "%s) by %s%s. The %d p-values are Holm-adjusted; "
		     "\"yes\" in the last column marks a cell not "
		     "significantly different from rank 1 at alpha = %.2f.",
		     name, test_name(an), an->paired ? ": a pair is the two "
		     "runs with the same replicate number, which share a "
		     "seed; b counts the pairs where only the rank-1 cell "
		     "diverged, c those where only this cell did" : "",
		     an->nranked - 1, KAF_ANALYSIS_ALPHA);
}

static void section_ranking(const struct kaf_analysis *an,
			    const struct kaf_plot *plot, struct kaf_doc *doc)
{
	struct kaf_table *t;
	int unranked = an->ncells - an->nranked;

	kaf_doc_heading(doc, 2, "Ranking");
	ranking_method(an, doc);
	t = kaf_doc_table(doc, "ranking");
	ranking_columns(an, t);
	for (int i = 0; i < an->nranked; i++)
		ranking_row(an, &an->cells[an->ranking[i]], t);
	if (unranked)
		kaf_doc_para(doc, "%d cell%s no runs yet and %s not ranked.",
			     unranked, unranked > 1 ? "s have" : " has",
			     unranked > 1 ? "are" : "is");
	kaf_doc_figure(doc, plot->stem, plot->state == KAF_PLOT_DRAWN,
		       "Divergence rate of every cell in rank order, with "
		       "its Wilson 95 %% interval; colour and marker say "
		       "whether it differs significantly from rank 1.%s%s",
		       plot->note[0] ? " Not drawn: " : "", plot->note);
}

/* ---- factor effects ---- */

static void factors_table(const struct kaf_analysis *an, struct kaf_doc *doc)
{
	struct kaf_table *t = kaf_doc_table(doc, "factors");

	kaf_table_column(t, "axis", NULL, 0);
	kaf_table_column(t, NULL, "axis", 0);
	kaf_table_column(t, "values", "values", KAF_COL_RIGHT);
	kaf_table_column(t, "chi-square", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "chi2", 0);
	kaf_table_column(t, "df", "df", KAF_COL_RIGHT);
	kaf_table_column(t, "p", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "p", 0);
	kaf_table_column(t, "p (Holm)", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "p_holm", 0);
	kaf_table_column(t, "Cramér's V", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "cramer_v", 0);
	kaf_table_column(t, "spread (points)", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "spread", 0);
	kaf_table_column(t, "verdict", "verdict", 0);
	for (int i = 0; i < an->nvarying; i++) {
		const struct kaf_factor *f = &an->factors[an->varying[i]];
		char p[NUM_LEN], ph[NUM_LEN];
		int lo, hi;

		double spread;

		extremes(f, &lo, &hi);
		spread = level_rate(&f->levels[hi]) -
			 level_rate(&f->levels[lo]);
		kaf_table_row(t);
		kaf_table_cell(t, "%s", label(f->axis));
		kaf_table_cell(t, "%s", kaf_column_info[f->axis].column);
		kaf_table_cell(t, "%d", f->nlevels);
		kaf_table_cell(t, "%.2f", f->chi2.stat);
		kaf_table_cell(t, "%.15g", f->chi2.stat);
		kaf_table_cell(t, "%d", f->chi2.df);
		kaf_table_cell(t, "%s", cell_p(f->chi2.p, p));
		kaf_table_cell(t, "%.6g", f->chi2.p);
		kaf_table_cell(t, "%s", cell_p(f->p_holm, ph));
		kaf_table_cell(t, "%.6g", f->p_holm);
		kaf_table_cell(t, "%.3f", f->chi2.cramer_v);
		kaf_table_cell(t, "%.15g", f->chi2.cramer_v);
		kaf_table_cell(t, "%.1f", 100 * spread);
		kaf_table_cell(t, "%.15g", 100 * spread);
		kaf_table_cell(t, "%s", matters(f) ? "matters" :
			       "no detectable effect");
	}
}

static void levels_table(const struct kaf_analysis *an, struct kaf_doc *doc)
{
	struct kaf_table *t = kaf_doc_table(doc, "factor_levels");

	kaf_table_column(t, "axis", NULL, 0);
	kaf_table_column(t, NULL, "axis", 0);
	kaf_table_column(t, "value", "value", 0);
	kaf_table_column(t, "runs", "runs", KAF_COL_RIGHT);
	kaf_table_column(t, "diverged", "diverged", KAF_COL_RIGHT);
	kaf_table_column(t, "rate", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "rate", 0);
	kaf_table_column(t, "Wilson 95 % CI", NULL, KAF_COL_RIGHT);
	kaf_table_column(t, NULL, "ci_low", 0);
	kaf_table_column(t, NULL, "ci_high", 0);
	for (int i = 0; i < an->nvarying; i++) {
		const struct kaf_factor *f = &an->factors[an->varying[i]];

		for (int j = 0; j < f->nlevels; j++) {
			const struct kaf_level *lv = &f->levels[j];
			char rate[NUM_LEN], ci[NUM_LEN];

			kaf_table_row(t);
			kaf_table_cell(t, "%s", label(f->axis));
			kaf_table_cell(t, "%s", kaf_column_info[f->axis].column);
			kaf_table_cell(t, "%s", lv->name);
			kaf_table_cell(t, "%ld", lv->runs);
			kaf_table_cell(t, "%ld", lv->diverged);
			kaf_table_cell(t, "%s", lv->runs ?
				       pct(level_rate(lv), rate) : "");
			kaf_table_cell(t, "%.15g", level_rate(lv));
			kaf_table_cell(t, "%s", ci_pct(lv->ci, ci));
			kaf_table_cell(t, "%.15g", lv->ci.lo);
			kaf_table_cell(t, "%.15g", lv->ci.hi);
		}
	}
}

static void heatmap_caption(const struct kaf_analysis *an,
			    const struct kaf_plot *plot, struct kaf_doc *doc)
{
	char what[256] = "Heat map";

	if (an->nvarying >= 2)
		snprintf(what, sizeof(what), "Divergence rate (%%) of every "
			 "combination of %s and %s, the two axes with the "
			 "largest effect%s%s%s.", label(an->varying[0]),
			 label(an->varying[1]), an->nvarying > 2 ?
			 ", one panel per " : "", an->nvarying > 2 ?
			 label(an->varying[2]) : "", an->nvarying > 3 ?
			 ", pooled over the other axes" : "");
	kaf_doc_figure(doc, plot->stem, plot->state == KAF_PLOT_DRAWN,
		       "%s%s%s", what, plot->note[0] ? " Not drawn: " : "",
		       plot->note);
}

static void section_factors(const struct kaf_analysis *an,
			    const struct kaf_plot *plot, struct kaf_doc *doc)
{
	kaf_doc_heading(doc, 2, "Factor effects");
	if (an->nvarying == 0) {
		kaf_doc_para(doc, "No axis varies in this sweep.");
		return;
	}
	kaf_doc_para(doc, "Every axis that varies in the sweep, largest "
		     "effect first. The rate of a value pools every run of "
		     "the cells with that value. Pearson's chi-square test "
		     "(values x diverged or not, no continuity correction) "
		     "asks whether the axis matters at all; its p-values are "
		     "Holm-adjusted over the %d axes, and an axis \"matters\" "
		     "when the adjusted p is below %.2f. Cramér's V sizes the "
		     "effect (0: none, 1: the value decides the outcome); "
		     "the spread is the highest minus the lowest rate, in "
		     "percentage points.%s", an->nvarying, KAF_ANALYSIS_ALPHA,
		     an->paired ? " The test counts runs as independent; in "
		     "this paired sweep runs with the same replicate share a "
		     "seed, which it ignores." : "");
	factors_table(an, doc);
	kaf_doc_para(doc, "Divergence rate per value, pooled over the other "
		     "axes:");
	levels_table(an, doc);
	heatmap_caption(an, plot, doc);
}

/* ---- causes ---- */

static void causes_table(const struct kaf_analysis *an, struct kaf_doc *doc)
{
	struct kaf_table *t = kaf_doc_table(doc, "causes");

	kaf_table_column(t, "cause", "cause", 0);
	kaf_table_column(t, "diverged runs", "runs", KAF_COL_RIGHT);
	kaf_table_column(t, "% of divergences", "share_of_diverged",
			 KAF_COL_RIGHT);
	kaf_table_column(t, "% of all runs", "share_of_runs", KAF_COL_RIGHT);
	kaf_table_column(t, "first step", "first_step", KAF_COL_RIGHT);
	kaf_table_column(t, "last step", "last_step", KAF_COL_RIGHT);
	for (int c = 0; c < an->ncauses; c++) {
		long count = 0, first = -1, last = -1;

		for (int d = 0; d < an->ndiv; d++) {
			const struct kaf_divergence *dv = &an->div[d];

			if (dv->cause != c)
				continue;
			count += dv->count;
			if (dv->step >= 0 && (first < 0 || dv->step < first))
				first = dv->step;
			last = dv->step > last ? dv->step : last;
		}
		kaf_table_row(t);
		kaf_table_cell(t, "%s", an->causes[c]);
		kaf_table_cell(t, "%ld", count);
		kaf_table_cell(t, "%.1f", 100.0 * count / an->diverged);
		kaf_table_cell(t, "%.1f", 100.0 * count / an->runs);
		kaf_table_cell(t, first < 0 ? "" : "%ld", first);
		kaf_table_cell(t, last < 0 ? "" : "%ld", last);
	}
}

/* Rows of the step table: one per step, or bins when there are many. */
struct step_bins {
	long width, nbins;      /* bin nbins - 1 holds unrecorded steps */
	long *counts;           /* (nbins, ncauses) */
};

static int bin_steps(const struct kaf_analysis *an, struct step_bins *b)
{
	long last = 0;

	for (int d = 0; d < an->ndiv; d++)
		last = an->div[d].step > last ? an->div[d].step : last;
	b->width = last + 1 > MAX_STEP_ROWS ? (last + 20) / 20 : 1;
	b->nbins = last / b->width + 2;
	b->counts = calloc((size_t)(b->nbins * an->ncauses) + 1,
			   sizeof(long));
	if (!b->counts)
		return KAF_ENOMEM;
	for (int d = 0; d < an->ndiv; d++) {
		const struct kaf_divergence *dv = &an->div[d];
		long bin = dv->step < 0 ? b->nbins - 1 : dv->step / b->width;

		b->counts[bin * an->ncauses + dv->cause] += dv->count;
	}
	return KAF_OK;
}

static void steps_row(const struct kaf_analysis *an,
		      const struct step_bins *b, long bin, struct kaf_table *t)
{
	const long *row = b->counts + bin * an->ncauses;
	long total = 0;

	for (int c = 0; c < an->ncauses; c++)
		total += row[c];
	if (total == 0)
		return;
	kaf_table_row(t);
	if (bin == b->nbins - 1)
		kaf_table_cell(t, "not recorded");
	else if (b->width == 1)
		kaf_table_cell(t, "%ld", bin);
	else
		kaf_table_cell(t, "%ld-%ld", bin * b->width,
			       (bin + 1) * b->width - 1);
	for (int c = 0; c < an->ncauses; c++)
		kaf_table_cell(t, "%ld", row[c]);
	kaf_table_cell(t, "%ld", total);
}

static int steps_table(const struct kaf_analysis *an, struct kaf_doc *doc)
{
	struct step_bins b;
	struct kaf_table *t;

	if (bin_steps(an, &b))
		return KAF_ENOMEM;
	kaf_doc_para(doc, "Diverged runs by the step at which they diverged "
		     "(0-based)%s and cause:", b.width > 1 ?
		     ", in bins of steps," : "");
	t = kaf_doc_table(doc, "divergence_steps");
	kaf_table_column(t, "step", "step", KAF_COL_RIGHT);
	for (int c = 0; c < an->ncauses; c++)
		kaf_table_column(t, an->causes[c], an->causes[c],
				 KAF_COL_RIGHT);
	kaf_table_column(t, "total", "total", KAF_COL_RIGHT);
	for (long bin = 0; bin < b.nbins; bin++)
		steps_row(an, &b, bin, t);
	free(b.counts);
	return KAF_OK;
}

/* Causes per value of the axis with the largest effect. */
static void causes_by_value(const struct kaf_analysis *an,
			    struct kaf_doc *doc)
{
	enum kaf_cell_column axis = an->varying[0];
	const struct kaf_factor *f = &an->factors[axis];
	struct kaf_table *t;

	kaf_doc_para(doc, "Runs and divergences by cause for each %s (the "
		     "axis with the largest effect):", label(axis));
	t = kaf_doc_table(doc, "causes_by_value");
	kaf_table_column(t, label(axis), kaf_column_info[axis].column, 0);
	kaf_table_column(t, "runs", "runs", KAF_COL_RIGHT);
	kaf_table_column(t, "diverged", "diverged", KAF_COL_RIGHT);
	for (int c = 0; c < an->ncauses; c++)
		kaf_table_column(t, an->causes[c], an->causes[c],
				 KAF_COL_RIGHT);
	for (int lv = 0; lv < f->nlevels; lv++) {
		kaf_table_row(t);
		kaf_table_cell(t, "%s", f->levels[lv].name);
		kaf_table_cell(t, "%ld", f->levels[lv].runs);
		kaf_table_cell(t, "%ld", f->levels[lv].diverged);
		for (int c = 0; c < an->ncauses; c++) {
			long n = 0;

			for (int d = 0; d < an->ndiv; d++) {
				const struct kaf_divergence *dv = &an->div[d];

				if (dv->cause == c &&
				    an->cells[dv->cell].level[axis] == lv)
					n += dv->count;
			}
			kaf_table_cell(t, "%ld", n);
		}
	}
}

static int section_causes(const struct kaf_analysis *an,
			  struct kaf_doc *doc)
{
	kaf_doc_heading(doc, 2, "Causes of divergence");
	if (an->diverged == 0) {
		kaf_doc_para(doc, "No run diverged.");
		return KAF_OK;
	}
	kaf_doc_para(doc, "The cause the engine recorded for each diverged "
		     "run: kernel_underflow, every K-AF kernel weight of some "
		     "row underflowed to zero (0/0); nonfinite_loss, the loss "
		     "was not finite for another reason; nonfinite_grad, a "
		     "gradient was not finite; grad_limit, the gradient norm "
		     "exceeded the limit.");
	causes_table(an, doc);
	if (steps_table(an, doc))
		return KAF_ENOMEM;
	if (an->nvarying)
		causes_by_value(an, doc);
	return KAF_OK;
}

/* ---- survival ---- */

static enum kaf_cell_column top_axis(const struct kaf_analysis *an)
{
	return an->nvarying ? an->varying[0] : KAF_COL_DATASET;
}

/* Row t of the survival table: every step while few, else ~20 of them. */
static bool survival_shown(long t, long nsteps)
{
	long every = nsteps <= 20 ? 1 : (nsteps + 19) / 20;

	return t % every == 0 || t == nsteps;
}

static int survival_table(const struct kaf_analysis *an,
			  struct kaf_doc *doc)
{
	enum kaf_cell_column axis = top_axis(an);
	const struct kaf_factor *f = &an->factors[axis];
	long *alive = calloc((size_t)(f->nlevels * (an->nsteps + 1)),
			     sizeof(*alive));
	struct kaf_table *t;

	if (!alive)
		return KAF_ENOMEM;
	for (int lv = 0; lv < f->nlevels; lv++)
		kaf_analysis_alive(an, axis, lv, alive + lv * (an->nsteps + 1));
	t = kaf_doc_table(doc, "survival");
	kaf_table_column(t, "steps completed", "steps", KAF_COL_RIGHT);
	for (int lv = 0; lv < f->nlevels; lv++)
		kaf_table_column(t, an->nvarying ? f->levels[lv].name : "all",
				 an->nvarying ? f->levels[lv].name : "all",
				 KAF_COL_RIGHT);
	for (long s = 0; s <= an->nsteps; s++) {
		if (!survival_shown(s, an->nsteps))
			continue;
		kaf_table_row(t);
		kaf_table_cell(t, "%ld", s);
		for (int lv = 0; lv < f->nlevels; lv++)
			kaf_table_cell(t, f->levels[lv].runs ? "%.1f" : "",
				       100.0 * alive[lv * (an->nsteps + 1) +
						     s] / f->levels[lv].runs);
	}
	free(alive);
	return KAF_OK;
}

static int section_survival(const struct kaf_analysis *an,
			    const struct kaf_plot *plot, struct kaf_doc *doc)
{
	kaf_doc_heading(doc, 2, "Survival");
	kaf_doc_para(doc, "Percentage of runs not yet diverged after each "
		     "number of completed training steps (1 step = 1 "
		     "full-batch epoch)%s%s; a run that diverged at 0-based "
		     "step s completed s steps.", an->nvarying ? ", per " :
		     "", an->nvarying ? label(top_axis(an)) : "");
	kaf_doc_figure(doc, plot->stem, plot->state == KAF_PLOT_DRAWN,
		       "Runs still alive after each step%s%s.%s%s",
		       an->nvarying ? ", one line per " : "",
		       an->nvarying ? label(top_axis(an)) : "",
		       plot->note[0] ? " Not drawn: " : "", plot->note);
	return survival_table(an, doc);
}

/* ---- final validation loss of the survivors ---- */

/* Quantile q of sorted v (n > 0), interpolating between order stats. */
static double quantile(const double *v, long n, double q)
{
	double h = q * (double)(n - 1);
	long lo = (long)floor(h);

	if (lo + 1 >= n)
		return v[n - 1];
	return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

static int loss_row(const struct kaf_analysis *an, enum kaf_cell_column axis,
		    int lv, struct kaf_table *t)
{
	const struct kaf_level *level = &an->factors[axis].levels[lv];
	static const double qs[5] = {0, 0.25, 0.5, 0.75, 1};
	double *v;
	long n;

	if (kaf_analysis_losses(an, axis, lv, &v, &n))
		return KAF_ENOMEM;
	kaf_table_row(t);
	kaf_table_cell(t, "%s", an->nvarying ? level->name : "all runs");
	kaf_table_cell(t, "%ld", level->runs - level->diverged);
	kaf_table_cell(t, "%ld", level->runs - level->diverged - n);
	for (int i = 0; i < 5; i++)
		kaf_table_cell(t, n ? "%.5g" : "", n ? quantile(v, n, qs[i]) :
			       0.0);
	free(v);
	return KAF_OK;
}

static int section_losses(const struct kaf_analysis *an,
			  const struct kaf_plot *plot, struct kaf_doc *doc)
{
	enum kaf_cell_column axis = top_axis(an);
	static const char *const heads[5] = {
		"min", "Q1", "median", "Q3", "max",
	};
	struct kaf_table *t;

	kaf_doc_heading(doc, 2, "Validation loss of the runs that survived");
	kaf_doc_para(doc, "Final validation loss (mean squared error) of the "
		     "runs that did not diverge%s%s. Quartiles interpolate "
		     "between order statistics; runs whose final loss was "
		     "not finite are counted apart.", an->nvarying ?
		     ", per " : "", an->nvarying ? label(axis) : "");
	t = kaf_doc_table(doc, "val_loss");
	kaf_table_column(t, an->nvarying ? label(axis) : "runs",
			 an->nvarying ? kaf_column_info[axis].column : "runs", 0);
	kaf_table_column(t, "survivors", "survivors", KAF_COL_RIGHT);
	kaf_table_column(t, "loss not finite", "not_finite", KAF_COL_RIGHT);
	for (int i = 0; i < 5; i++)
		kaf_table_column(t, heads[i], heads[i], KAF_COL_RIGHT);
	for (int lv = 0; lv < an->factors[axis].nlevels; lv++)
		if (loss_row(an, axis, lv, t))
			return KAF_ENOMEM;
	kaf_doc_figure(doc, plot->stem, plot->state == KAF_PLOT_DRAWN,
		       "Distribution of the final validation loss of the "
		       "surviving runs%s%s (box: quartiles; whiskers: 1.5 "
		       "interquartile ranges; points: beyond).%s%s",
		       an->nvarying ? ", one box per " : "",
		       an->nvarying ? label(axis) : "",
		       plot->note[0] ? " Not drawn: " : "", plot->note);
	return KAF_OK;
}

/* ---- methods ---- */

static void section_methods(const struct kaf_analysis *an,
			    struct kaf_doc *doc)
{
	kaf_doc_heading(doc, 2, "Methods");
	kaf_doc_item(doc, "A run diverges at the first step where the loss or "
		     "a gradient is not finite, or the gradient norm exceeds "
		     "the limit when one is set; it stops there. Counts, "
		     "steps and causes are read from the database.");
	kaf_doc_item(doc, "Divergence probability: diverged runs / runs. "
		     "Intervals: Wilson 95 %% score intervals (z = %.4f).",
		     KAF_STATS_Z95);
	kaf_doc_item(doc, "Ranking: each cell against rank 1 by %s, "
		     "two-sided; Holm's step-down adjustment over the %d "
		     "comparisons; alpha = %.2f.", test_name(an),
		     an->nranked - 1, KAF_ANALYSIS_ALPHA);
	kaf_doc_item(doc, "Axes: Pearson's chi-square test of values x "
		     "(diverged, survived), Holm-adjusted over the axes that "
		     "vary; effect size Cramér's V.");
	kaf_doc_item(doc, "Every table is also a CSV file beside this report; "
		     "where the document rounds a number, the CSV has it to "
		     "15 significant digits. Plots are drawn by gnuplot "
		     "from plots/NAME.gp and plots/NAME.dat; redraw one with "
		     "`cd plots && gnuplot NAME.gp`.");
	kaf_doc_item(doc, "Regenerate: kaf report --db %s --sweep %lld.",
		     an->db_path, an->sweep_id);
}

int kaf_render_report(const struct kaf_analysis *an,
		      const struct kaf_plot *plots,
		      const struct kaf_study_plots *study,
		      struct kaf_doc *doc)
{
	int rc;

	kaf_doc_heading(doc, 1, "kaf report: sweep %lld%s%s%s", an->sweep_id,
			an->preset ? " (" : "", an->preset ? an->preset : "",
			an->preset ? ")" : "");
	rc = section_summary(an, doc);
	section_sweep(an, doc);
	if (!rc)
		rc = kaf_study_render(an, study, doc);
	section_ranking(an, &plots[KAF_PLOT_RATES], doc);
	section_factors(an, &plots[KAF_PLOT_HEATMAP], doc);
	if (!rc)
		rc = section_causes(an, doc);
	if (!rc)
		rc = section_survival(an, &plots[KAF_PLOT_SURVIVAL], doc);
	if (!rc)
		rc = section_losses(an, &plots[KAF_PLOT_VAL_LOSS], doc);
	section_methods(an, doc);
	return rc ? rc : kaf_doc_status(doc);
}
