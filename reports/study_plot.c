#include "study_plot.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One panel of the link figures, in pixels: the still, the GIF. */
#define PANEL_W 400
#define PANEL_H 320
#define MOVIE_PANEL_W 300
#define MOVIE_PANEL_H 240

/* The narrowest link figure: its title must fit. */
#define MIN_WIDTH 640

/* The animation lasts about this long (1/100 s) within these delays. */
#define MOVIE_LENGTH 800
#define MIN_DELAY 8
#define MAX_DELAY 50

/* Room a stem keeps for a "_N" suffix that makes it unique. */
#define SUFFIX_ROOM 8

const char *const kaf_study_plot_prefixes[] = {"exp1_", "exp2_", NULL};

static int no_memory(struct kaf_error *err)
{
	return kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
}

/* ---- stems ---- */

static bool stem_taken(const struct kaf_study_plots *sp,
		       const struct kaf_plot *self, const char *stem)
{
	for (int i = 0; i < sp->n; i++)
		if (&sp->all[i] != self && strcmp(sp->all[i].stem, stem) == 0)
			return true;
	return false;
}

/* prefix + name with non-alphanumerics as '_', unique among sp's. */
static void name_plot(struct kaf_study_plots *sp, struct kaf_plot *pl,
		      const char *prefix, const char *name, bool animated)
{
	/* base leaves SUFFIX_ROOM, so "_N" always fits in a stem. */
	char base[KAF_PLOT_STEM_MAX], stem[KAF_PLOT_STEM_MAX + 16];
	size_t len = (size_t)snprintf(base, sizeof(base), "%s", prefix);

	for (const char *p = name; *p && len + SUFFIX_ROOM < sizeof(base);
	     p++)
		base[len++] = isalnum((unsigned char)*p) ? *p : '_';
	base[len] = '\0';
	snprintf(stem, sizeof(stem), "%s", base);
	for (int n = 2; stem_taken(sp, pl, stem); n++)
		snprintf(stem, sizeof(stem), "%s_%d", base, n);
	kaf_plot_init(pl, stem, animated);
}

/* ---- experiment 1: loss curves ---- */

static void widen(double v, double *range)
{
	if (!isfinite(v))
		return;
	range[0] = fmin(range[0], v);
	range[1] = fmax(range[1], v);
}

static void put_value(FILE *dat, double v)
{
	if (isfinite(v))
		fprintf(dat, "\t%.9g", v);
	else
		fputs("\tNaN", dat);
}

/*
 * One data block per variant with a curve from the group's first shown
 * epoch: epoch, train, val. Fills shown (ncells), the value ranges of
 * the two panels and the last epoch; returns the blocks written.
 */
static int loss_data(const struct kaf_study *st,
		     const struct kaf_study_group *g, FILE *dat, bool *shown,
		     double range[2][2], long *last)
{
	int blocks = 0;

	for (int i = 0; i < g->ncells; i++) {
		const struct kaf_curve *cv = &st->cells[g->cells[i]].curve;

		shown[i] = kaf_curve_shows(cv, g->curve_from);
		if (!shown[i])
			continue;
		fputs(blocks++ ? "\n\n" : "", dat);
		for (long e = g->curve_from; e < cv->n; e++) {
			fprintf(dat, "%ld", e);
			put_value(dat, cv->train[e]);
			put_value(dat, cv->val[e]);
			fputc('\n', dat);
			widen(cv->train[e], range[0]);
			widen(cv->val[e], range[1]);
		}
		*last = cv->n - 1 > *last ? cv->n - 1 : *last;
	}
	return blocks;
}

static void loss_panel(FILE *gp, const struct kaf_study_group *g,
		       const bool *shown, const char *stem, int panel,
		       bool log)
{
	int block = 0;

	fprintf(gp, "set ylabel \"%s loss (MSE%s)\"\n", panel == 0 ?
		"training" : "validation", log ? ", log scale" : "");
	fputs(log ? "set logscale y\n" : "unset logscale y\n", gp);
	fputs(panel == 0 ? "set key at screen 0.76, graph 1 left top Left "
	      "reverse\nunset xlabel\n" : "unset key\nset xlabel "
	      "\"epoch\"\n", gp);
	fputs("plot ", gp);
	for (int i = 0; i < g->ncells; i++) {
		if (!shown[i])
			continue;
		fprintf(gp, "%s\"%s.dat\" index %d using 1:%d with lines lw 2 "
			"dt %d lc rgb \"%s\" title ", block ? ", \\\n     " :
			"", stem, block, panel + 2, i % 5 + 1,
			kaf_plot_colors[i % KAF_PLOT_NCOLORS]);
		kaf_plot_quote(gp, g->variants[i]);
		block++;
	}
	fputc('\n', gp);
}

static void loss_script(FILE *gp, const struct kaf_study_group *g,
			const bool *shown, const char *stem,
			double range[2][2], long last)
{
	char title[320];
	bool log;

	kaf_plot_begin(gp, stem, "Mean loss per epoch of each variant",
		       1100, 900);
	snprintf(title, sizeof(title), "Mean loss per epoch, %s (runs that "
		 "did not diverge)", g->name);
	fputs("set multiplot layout 2,1 title ", gp);
	kaf_plot_quote(gp, title);
	/* Margins fixed on the screen keep the panels aligned; the key
	 * sits in the right one. */
	fprintf(gp, "\nset lmargin at screen 0.12\nset rmargin at screen 0.74"
		"\nset grid\nset xrange [%ld:%ld]\n", g->curve_from,
		last > g->curve_from ? last : g->curve_from + 1);
	/* One scale for both panels, so they read alike. */
	log = fmin(range[0][0], range[1][0]) > 0 &&
	      fmax(range[0][1], range[1][1]) >= KAF_STUDY_LOG_SPAN *
	      fmin(range[0][0], range[1][0]);
	loss_panel(gp, g, shown, stem, 0, log);
	loss_panel(gp, g, shown, stem, 1, log);
	fputs("unset multiplot\n", gp);
	kaf_plot_end(gp);
}

static int plot_loss(const struct kaf_study *st,
		     const struct kaf_study_group *g, const char *dir,
		     struct kaf_plot *pl, struct kaf_error *err)
{
	double range[2][2] = {{INFINITY, -INFINITY}, {INFINITY, -INFINITY}};
	bool *shown = calloc((size_t)g->ncells, sizeof(*shown));
	struct kaf_plot_files f;
	long last = g->curve_from;
	int blocks, rc;

	if (!shown)
		return no_memory(err);
	rc = kaf_plot_open(dir, pl->stem, &f, err);
	if (rc) {
		free(shown);
		return rc;
	}
	blocks = loss_data(st, g, f.dat, shown, range, &last);
	if (blocks > 0)
		loss_script(f.gp, g, shown, pl->stem, range, last);
	free(shown);
	rc = kaf_plot_close(&f, err);
	if (!rc && blocks == 0) {
		pl->state = KAF_PLOT_NOT_APPLICABLE;
		snprintf(pl->note, sizeof(pl->note), "no run that did not "
			 "diverge has a trace from epoch %ld on",
			 g->curve_from);
		unlink(f.gp_path);
		unlink(f.dat_path);
	}
	return rc;
}

/* ---- experiment 2: the learned link ---- */

int kaf_study_movie_frames(const struct kaf_link_series *ls)
{
	return ls->nframes < KAF_STUDY_MAX_FRAMES ? ls->nframes :
		KAF_STUDY_MAX_FRAMES;
}

int kaf_study_movie_frame(const struct kaf_link_series *ls, int i)
{
	int shown = kaf_study_movie_frames(ls);

	if (shown == ls->nframes || shown < 2)
		return i;
	return (int)lround((double)i * (ls->nframes - 1) / (shown - 1));
}

/* Width of cols panels, wide enough for the figure's title. */
static int canvas(int panel, int cols)
{
	int width = 60 + panel * cols;

	return width < MIN_WIDTH ? MIN_WIDTH : width;
}

/* Panels in a grid about two and a half times as wide as high. */
static void grid_of(int panels, int *rows, int *cols)
{
	*cols = panels <= 5 ? panels : (int)ceil(sqrt(2.5 * panels));
	*cols = *cols < 1 ? 1 : *cols;
	*rows = (panels + *cols - 1) / *cols;
}

/*
 * The finite (x, y) pairs as one data block; its index, or -1 when none
 * is finite (gnuplot refuses to plot an empty block).
 */
static int put_block(FILE *dat, const double *x, const double *y, int n,
		     int *blocks)
{
	bool any = false;

	for (int i = 0; i < n; i++) {
		if (!isfinite(x[i]) || !isfinite(y[i]))
			continue;
		if (!any && *blocks)
			fputs("\n\n", dat);
		any = true;
		fprintf(dat, "%.9g\t%.9g\n", x[i], y[i]);
	}
	return any ? (*blocks)++ : -1;
}

/* Where one panel's data sit in the data file; -1: not there. */
struct panel {
	int curve, calc;
};

static struct panel put_panel(const struct kaf_link_series *ls, int f,
			      int k, FILE *dat, int *blocks)
{
	long p = kaf_link_points_at(ls, f, k), c = kaf_link_calc_at(ls, f, k);
	struct panel at;

	at.curve = put_block(dat, ls->z + p, ls->yhat + p, ls->npoints,
			     blocks);
	at.calc = put_block(dat, ls->calc_z + c, ls->calc_y + c, ls->ncalc,
			    blocks);
	return at;
}

static void link_panel(FILE *gp, const char *stem, int k, struct panel at)
{
	fprintf(gp, "set title \"output %d\"\nset xlabel \"z_%d\"\n"
		"set ylabel \"y_hat_%d(z)\"\n", k, k, k);
	if (at.curve < 0 && at.calc < 0) {
		/* A line above the range: an empty panel that still plots. */
		fputs("set label 1 \"no finite values\" at graph 0.5, 0.5 "
		      "center\nplot [0:1] [0:1] 2 notitle\nunset label 1\n",
		      gp);
		return;
	}
	fputs("plot ", gp);
	if (at.curve >= 0)
		fprintf(gp, "\"%s.dat\" index %d using 1:2 with lines lw 2 "
			"lc rgb \"%s\" title \"learned link\"", stem, at.curve,
			kaf_plot_colors[0]);
	if (at.calc >= 0)
		fprintf(gp, "%s\"%s.dat\" index %d using 1:2 with points pt 7 "
			"ps 0.7 lc rgb \"%s\" title \"calc rows\"",
			at.curve >= 0 ? ", \\\n     " : "", stem, at.calc,
			kaf_plot_colors[1]);
	fputc('\n', gp);
}

/*
 * [lo, hi] of output k's finite z (axis 0) or y_hat and y (axis 1) in
 * the frames the animation shows, or in the last frame alone; [0, 1]
 * when none is finite.
 */
static void value_range(const struct kaf_link_series *ls, int k, int axis,
			bool movie, double *range)
{
	int from = movie ? 0 : ls->nframes - 1;
	int to = movie ? kaf_study_movie_frames(ls) : ls->nframes;

	range[0] = INFINITY;
	range[1] = -INFINITY;
	for (int i = from; i < to; i++) {
		int f = movie ? kaf_study_movie_frame(ls, i) : i;
		long p = kaf_link_points_at(ls, f, k);
		long c = kaf_link_calc_at(ls, f, k);
		const double *pv = axis ? ls->yhat : ls->z;
		const double *cv = axis ? ls->calc_y : ls->calc_z;

		for (int j = 0; j < ls->npoints; j++)
			widen(pv[p + j], range);
		for (int j = 0; j < ls->ncalc; j++)
			widen(cv[c + j], range);
	}
	if (!(range[0] <= range[1])) {
		range[0] = 0;
		range[1] = 1;
	}
}

/* A round step (1, 2 or 5 times a power of ten) for about 4 tics. */
static double tic_step(double span)
{
	double raw = span / 4, mag = pow(10, floor(log10(raw)));
	double r = raw / mag;

	return mag * (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10);
}

/*
 * A panel's axes with 5 % of room on each side: z always (with round
 * tics, so that long labels do not overlap), y only in the animation,
 * whose frames must share it; the still scales y to its data.
 */
static void panel_axes(const struct kaf_link_series *ls, int k,
		       bool movie, FILE *gp)
{
	double r[2][2];

	for (int axis = 0; axis < 2; axis++) {
		double pad;

		value_range(ls, k, axis, movie, r[axis]);
		pad = r[axis][1] > r[axis][0] ? 0.05 * (r[axis][1] -
							r[axis][0]) :
			0.5 * fmax(1e-3, fabs(r[axis][0]));
		r[axis][0] -= pad;
		r[axis][1] += pad;
	}
	fprintf(gp, "set xrange [%.9g:%.9g]\nset xtics %.9g\n", r[0][0],
		r[0][1], tic_step(r[0][1] - r[0][0]));
	if (movie)
		fprintf(gp, "set yrange [%.9g:%.9g]\n", r[1][0], r[1][1]);
}

static void frame_title(const struct kaf_link_series *ls, int f,
			const char *what, FILE *gp)
{
	char title[320], h[64] = "not stored";

	if (isfinite(ls->frames[f].bandwidth))
		snprintf(h, sizeof(h), "%.4g", ls->frames[f].bandwidth);
	snprintf(title, sizeof(title), "%s%s, epoch %ld, bandwidth h = %s",
		 what, ls->name, ls->frames[f].epoch, h);
	kaf_plot_quote(gp, title);
}

/*
 * Open the files of a plot of the link snapshots and lay its panels out
 * in rows x cols. Returns 1 when opened, 0 (KAF_OK) when there is nothing
 * to draw (pl says so), or a negative error.
 */
static int open_link_plot(const struct kaf_link_series *ls, const char *dir,
			  struct kaf_plot *pl, struct kaf_plot_files *f,
			  int *rows, int *cols, struct kaf_error *err)
{
	int rc;

	if (ls->nframes == 0 || ls->noutputs == 0) {
		pl->state = KAF_PLOT_NOT_APPLICABLE;
		snprintf(pl->note, sizeof(pl->note), "no snapshot holds "
			 "values");
		return KAF_OK;
	}
	rc = kaf_plot_open(dir, pl->stem, f, err);
	if (rc)
		return rc;
	grid_of(ls->noutputs, rows, cols);
	return 1;
}

static int plot_link(const struct kaf_link_series *ls, const char *dir,
		     struct kaf_plot *pl, struct kaf_error *err)
{
	int last = ls->nframes - 1, rows = 1, cols = 1, blocks = 0, rc;
	struct kaf_plot_files f;

	rc = open_link_plot(ls, dir, pl, &f, &rows, &cols, err);
	if (rc <= 0)
		return rc;
	kaf_plot_begin(f.gp, pl->stem, "The learned link at the last "
		       "snapshot", canvas(PANEL_W, cols), 80 + PANEL_H * rows);
	fprintf(f.gp, "set multiplot layout %d,%d title ", rows, cols);
	frame_title(ls, last, "Learned link: ", f.gp);
	/* Targets sit on 0 and 1: keep them off the frame. */
	fputs("\nset grid\nunset key\nset offsets 0, 0, graph 0.05, "
	      "graph 0.05\n", f.gp);
	for (int k = 0; k < ls->noutputs; k++) {
		panel_axes(ls, k, false, f.gp);
		link_panel(f.gp, pl->stem, k, put_panel(ls, last, k, f.dat,
							&blocks));
	}
	fputs("unset multiplot\n", f.gp);
	kaf_plot_end(f.gp);
	return kaf_plot_close(&f, err);
}

static void movie_head(const struct kaf_link_series *ls, const char *stem,
		       FILE *gp, int rows, int cols)
{
	int frames = kaf_study_movie_frames(ls);
	int delay = MOVIE_LENGTH / (frames > 0 ? frames : 1);

	delay = delay < MIN_DELAY ? MIN_DELAY : delay > MAX_DELAY ?
		MAX_DELAY : delay;
	fprintf(gp, "# The learned link at every snapshot, one frame each\n"
		"# Written by kaf report. Redraw in this directory with: "
		"gnuplot %s.gp\n# (reads %s.dat, writes %s.gif)\n", stem, stem,
		stem);
	fprintf(gp, "set encoding utf8\nset datafile separator \"\\t\"\n"
		"set terminal gif animate delay %d loop 0 noenhanced size "
		"%d,%d font \"Sans,10\"\nset output \"%s.gif\"\nset grid\n"
		"unset key\n",
		delay, canvas(MOVIE_PANEL_W, cols), 80 + MOVIE_PANEL_H * rows,
		stem);
}

static int plot_movie(const struct kaf_link_series *ls, const char *dir,
		      struct kaf_plot *pl, struct kaf_error *err)
{
	int rows = 1, cols = 1, blocks = 0, rc;
	struct kaf_plot_files f;

	rc = open_link_plot(ls, dir, pl, &f, &rows, &cols, err);
	if (rc <= 0)
		return rc;
	movie_head(ls, pl->stem, f.gp, rows, cols);
	for (int i = 0; i < kaf_study_movie_frames(ls); i++) {
		int fr = kaf_study_movie_frame(ls, i);

		fprintf(f.gp, "set multiplot layout %d,%d title ", rows, cols);
		frame_title(ls, fr, "", f.gp);
		fputc('\n', f.gp);
		for (int k = 0; k < ls->noutputs; k++) {
			panel_axes(ls, k, true, f.gp);
			link_panel(f.gp, pl->stem, k, put_panel(ls, fr, k,
								f.dat,
								&blocks));
		}
		fputs("unset multiplot\n", f.gp);
	}
	fputs("unset output\n", f.gp);
	return kaf_plot_close(&f, err);
}

/* ---- all of them ---- */

static int allocate(const struct kaf_study *st, struct kaf_study_plots *sp)
{
	int nloss = st->compare && st->traced ? st->ngroups : 0;

	sp->n = nloss + 2 * st->nlinks;
	if (sp->n == 0)
		return KAF_OK;
	sp->all = calloc((size_t)sp->n, sizeof(*sp->all));
	if (!sp->all)
		return KAF_ENOMEM;
	sp->loss = nloss ? sp->all : NULL;
	sp->link = sp->all + nloss;
	sp->movie = sp->link + st->nlinks;
	return KAF_OK;
}

static void draw(const char *gnuplot, const char *dir, struct kaf_plot *pl)
{
	if (gnuplot && pl->state == KAF_PLOT_NO_GNUPLOT)
		kaf_plot_draw(gnuplot, dir, pl);
}

int kaf_study_plot_all(const struct kaf_analysis *an, const char *dir,
		       const char *gnuplot, struct kaf_study_plots *sp,
		       struct kaf_error *err)
{
	const struct kaf_study *st = an->study;
	int rc = KAF_OK;

	*sp = (struct kaf_study_plots){0};
	if (allocate(st, sp))
		return no_memory(err);
	for (int g = 0; sp->loss && g < st->ngroups && !rc; g++) {
		name_plot(sp, &sp->loss[g], "exp1_loss_", st->groups[g].name,
			  false);
		rc = plot_loss(st, &st->groups[g], dir, &sp->loss[g], err);
		if (!rc)
			draw(gnuplot, dir, &sp->loss[g]);
	}
	for (int l = 0; l < st->nlinks && !rc; l++) {
		name_plot(sp, &sp->link[l], "exp2_link_", st->links[l].name,
			  false);
		name_plot(sp, &sp->movie[l], "exp2_movie_", st->links[l].name,
			  true);
		rc = plot_link(&st->links[l], dir, &sp->link[l], err);
		if (!rc)
			rc = plot_movie(&st->links[l], dir, &sp->movie[l], err);
		if (!rc) {
			draw(gnuplot, dir, &sp->link[l]);
			draw(gnuplot, dir, &sp->movie[l]);
		}
	}
	if (rc)
		kaf_study_plots_finish(sp);
	return rc;
}

void kaf_study_plots_finish(struct kaf_study_plots *sp)
{
	free(sp->all);
	*sp = (struct kaf_study_plots){0};
}
