#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Beyond this many cells, names on the rate plot would overlap. */
#define MAX_LABELLED_CELLS 100

/* Heat-map labels switch to white on cells darker than this (%). */
#define DARK_RATE 60

const char *const kaf_plot_stems[KAF_PLOT_COUNT] = {
	[KAF_PLOT_RATES] = "rate_per_cell",
	[KAF_PLOT_HEATMAP] = "heatmap",
	[KAF_PLOT_SURVIVAL] = "survival",
	[KAF_PLOT_VAL_LOSS] = "val_loss",
};

/* Line colours; dash types tell the lines apart in grey print too. */
const char *const kaf_plot_colors[KAF_PLOT_NCOLORS] = {
	"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
	"#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
};

int kaf_plot_open(const char *dir, const char *stem,
		  struct kaf_plot_files *f, struct kaf_error *err)
{
	snprintf(f->gp_path, sizeof(f->gp_path), "%s/%s.gp", dir, stem);
	snprintf(f->dat_path, sizeof(f->dat_path), "%s/%s.dat", dir, stem);
	f->gp = fopen(f->gp_path, "w");
	f->dat = f->gp ? fopen(f->dat_path, "w") : NULL;
	if (f->gp && f->dat)
		return KAF_OK;
	kaf_error_set(err, KAF_EIO, "cannot write \"%s\": %s", f->gp ?
		      f->dat_path : f->gp_path, strerror(errno));
	if (f->gp)
		fclose(f->gp);
	return KAF_EIO;
}

int kaf_plot_close(struct kaf_plot_files *f, struct kaf_error *err)
{
	bool gp_bad = ferror(f->gp) != 0, dat_bad = ferror(f->dat) != 0;

	gp_bad |= fclose(f->gp) != 0;
	dat_bad |= fclose(f->dat) != 0;
	if (gp_bad || dat_bad)
		return kaf_error_set(err, KAF_EIO, "cannot write \"%s\"",
				     gp_bad ? f->gp_path : f->dat_path);
	return KAF_OK;
}

/* Double quotes, so escape \ and "; a line break becomes \n, which
 * gnuplot reads back as one. */
void kaf_plot_quote(FILE *gp, const char *s)
{
	fputc('"', gp);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', gp);
		if (*s == '\n')
			fputs("\\n", gp);
		else
			fputc(*s, gp);
	}
	fputc('"', gp);
}

/*
 * A loop drawing the same figure once per format, so the PNG and the SVG
 * cannot drift apart. Text is not "enhanced": names like xavier_uniform
 * would otherwise print with subscripts.
 */
void kaf_plot_begin(FILE *gp, const char *stem, const char *what,
		    int width, int height)
{
	fprintf(gp, "# %s\n# Written by kaf report. Redraw in this directory "
		"with: gnuplot %s.gp\n# (reads %s.dat, writes %s.png and "
		"%s.svg)\n", what, stem, stem, stem, stem);
	fprintf(gp, "set encoding utf8\nset datafile separator \"\\t\"\n"
		"do for [format in \"png svg\"] {\nif (format eq \"png\") {\n"
		"  set terminal pngcairo noenhanced size %d,%d font "
		"\"Sans,13\" linewidth 1.5\n} else {\n  set terminal svg "
		"noenhanced size %d,%d font \"Sans,13\" linewidth 1.5 "
		"background \"white\"\n}\nset output \"%s.\" . format\n",
		width, height, width, height, stem);
}

void kaf_plot_end(FILE *gp)
{
	fputs("unset output\n}\n", gp);
}

/* set Xtics ("name" 0, ...) for the levels of an axis. */
static void gp_level_tics(FILE *gp, const char *which,
			  const struct kaf_factor *f)
{
	fprintf(gp, "set %stics (", which);
	for (int i = 0; i < f->nlevels; i++) {
		kaf_plot_quote(gp, f->levels[i].name);
		fprintf(gp, " %d%s", i, i + 1 < f->nlevels ? ", " : ")\n");
	}
}

static const char *label(enum kaf_cell_column axis)
{
	return kaf_column_info[axis].label;
}

/* The axis whose values split the survival and loss plots. */
static enum kaf_cell_column top_axis(const struct kaf_analysis *an)
{
	return an->nvarying ? an->varying[0] : KAF_COL_DATASET;
}

/* ---- rate per cell ---- */

/* "initializer / optimizer / regularizer": what the labels list. */
static void rates_axes(const struct kaf_analysis *an, char *buf,
		       size_t size)
{
	size_t used = 0;

	snprintf(buf, size, "cell");
	for (int a = 0; a < KAF_COL_COUNT && used < size; a++)
		if (an->factors[a].nlevels > 1)
			used += (size_t)snprintf(buf + used, size - used,
						 "%s%s", used ? " / " : "",
						 label((enum kaf_cell_column)a));
}

static void rates_tics(const struct kaf_analysis *an, FILE *gp)
{
	char name[256];

	if (an->nranked > MAX_LABELLED_CELLS) {
		fputs("set ytics format \"\"\n", gp);
		return;
	}
	fputs("set ytics (", gp);
	for (int i = 0; i < an->nranked; i++) {
		kaf_analysis_label(an, &an->cells[an->ranking[i]], name,
				   sizeof(name));
		kaf_plot_quote(gp, name);
		fprintf(gp, " %d%s", i, i + 1 < an->nranked ? ", " : ")\n");
	}
}

static void rates_series(const struct kaf_analysis *an, FILE *gp,
			 const int *groups)
{
	const char *test = an->paired ? "McNemar" : "Fisher";
	const char *style[3] = {"pt 7 ps 1.4 lc rgb \"black\"",
				"pt 7 ps 1.1 lc rgb \"#1f77b4\"",
				"pt 5 ps 1.1 lc rgb \"#d62728\""};
	char title[3][160];
	bool first = true;

	snprintf(title[0], sizeof(title[0]), "rank 1 (the reference)");
	snprintf(title[1], sizeof(title[1]), "not significantly different "
		 "from rank 1 (%s, Holm, alpha %.2f)", test,
		 KAF_ANALYSIS_ALPHA);
	snprintf(title[2], sizeof(title[2]), "significantly different from "
		 "rank 1");
	fputs("plot ", gp);
	for (int g = 0; g < 3; g++) {
		if (groups[g] == 0)
			continue;
		fprintf(gp, "%s\"rate_per_cell.dat\" using 2:($5 == %d ? $1 : "
			"NaN):3:4 with xerrorbars %s title ", first ? "" :
			", \\\n     ", g, style[g]);
		kaf_plot_quote(gp, title[g]);
		first = false;
	}
	fputc('\n', gp);
}

static void rates_head(const struct kaf_analysis *an, FILE *gp)
{
	double all = 100.0 * (double)an->diverged / (double)an->runs;
	char axes[256], title[512];

	rates_axes(an, axes, sizeof(axes));
	snprintf(title, sizeof(title), "Divergence rate per cell, sweep %lld "
		 "(bars: Wilson 95 %% interval)\ncells: %s; rank 1 at the top",
		 an->sweep_id, axes);
	fputs("set title ", gp);
	kaf_plot_quote(gp, title);
	fprintf(gp, "\nset xlabel \"divergence rate (%% of the cell's runs)"
		"\"\nset xrange [0:100]\nset yrange [%g:-0.6]\nset grid xtics\n"
		"set key outside bottom center vertical\n", an->nranked - 0.4);
	/* The rate of the whole sweep, for scale. */
	fprintf(gp, "set arrow 1 from %.6g, graph 0 to %.6g, graph 1 nohead "
		"dt 2 lc rgb \"gray40\"\nset label 1 \" all runs\" at %.6g, "
		"graph 0.03 left tc rgb \"gray40\"\n", all, all, all);
}

static int plot_rates(const struct kaf_analysis *an, const char *dir,
		      struct kaf_plot *pl, struct kaf_error *err)
{
	int n = an->nranked, groups[3] = {0}, height, rc;
	struct kaf_plot_files f;

	rc = kaf_plot_open(dir, pl->stem, &f, err);
	if (rc)
		return rc;
	for (int i = 0; i < n; i++) {
		const struct kaf_cell *c = &an->cells[an->ranking[i]];
		int g = i == 0 ? 0 : c->same_as_top ? 1 : 2;

		groups[g]++;
		fprintf(f.dat, "%d\t%.6g\t%.6g\t%.6g\t%d\n", i, 100 * c->rate,
			100 * c->ci.lo, 100 * c->ci.hi, g);
	}
	height = 200 + 26 * n;
	height = height < 520 ? 520 : height > 8000 ? 8000 : height;
	kaf_plot_begin(f.gp, pl->stem, "Divergence rate per cell", 1100,
		       height);
	rates_head(an, f.gp);
	rates_tics(an, f.gp);
	rates_series(an, f.gp, groups);
	kaf_plot_end(f.gp);
	return kaf_plot_close(&f, err);
}

/* ---- heat map ---- */

struct grid {
	enum kaf_cell_column x, y;
	int panel_axis;         /* an enum kaf_cell_column, or -1: one panel */
	int nx, ny, np;
	long *runs, *div;       /* (np, ny, nx) pooled over other axes */
};

static int grid_fill(const struct kaf_analysis *an, struct grid *g)
{
	size_t n;

	g->x = an->varying[0];
	g->y = an->varying[1];
	g->panel_axis = an->nvarying > 2 ? (int)an->varying[2] : -1;
	g->nx = an->factors[g->x].nlevels;
	g->ny = an->factors[g->y].nlevels;
	g->np = g->panel_axis < 0 ? 1 : an->factors[g->panel_axis].nlevels;
	n = (size_t)g->nx * (size_t)g->ny * (size_t)g->np;
	g->runs = calloc(n, sizeof(long));
	g->div = calloc(n, sizeof(long));
	if (!g->runs || !g->div)
		return KAF_ENOMEM;
	for (int c = 0; c < an->ncells; c++) {
		const struct kaf_cell *cell = &an->cells[c];
		int p = g->panel_axis < 0 ? 0 : cell->level[g->panel_axis];
		size_t at = ((size_t)p * (size_t)g->ny +
			     (size_t)cell->level[g->y]) * (size_t)g->nx +
			    (size_t)cell->level[g->x];

		g->runs[at] += cell->runs;
		g->div[at] += cell->diverged;
	}
	return KAF_OK;
}

/* One data block per panel with runs; returns how many were written. */
static int grid_write(const struct grid *g, FILE *dat, bool *has_data)
{
	int blocks = 0;

	for (int p = 0; p < g->np; p++) {
		const long *runs = g->runs + (size_t)p * g->nx * g->ny;
		const long *div = g->div + (size_t)p * g->nx * g->ny;

		has_data[p] = false;
		for (int i = 0; i < g->nx * g->ny; i++)
			has_data[p] |= runs[i] > 0;
		if (!has_data[p])
			continue;
		if (blocks++)
			fputs("\n\n", dat);
		for (int i = 0; i < g->nx * g->ny; i++)
			if (runs[i] > 0)
				fprintf(dat, "%d\t%d\t%.6g\t%ld\n", i % g->nx,
					i / g->nx, 100.0 * div[i] / runs[i],
					runs[i]);
	}
	return blocks;
}

static void heatmap_setup(const struct kaf_analysis *an,
			  const struct grid *g, FILE *gp, int panels)
{
	int cols = panels < 3 ? panels : 3;

	fprintf(gp, "set multiplot layout %d,%d title \"Divergence rate by "
		"%s and %s%s%s%s\"\n", (panels + cols - 1) / cols, cols,
		label(g->x), label(g->y), g->panel_axis < 0 ? "" :
		", one panel per ", g->panel_axis < 0 ? "" :
		label((enum kaf_cell_column)g->panel_axis), an->nvarying > 3 ?
		" (pooled over the other axes)" : "");
	fprintf(gp, "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\n",
		g->nx - 0.5, g->ny - 0.5);
	gp_level_tics(gp, "x", &an->factors[g->x]);
	gp_level_tics(gp, "y", &an->factors[g->y]);
	if (g->nx > 5)
		fputs("set xtics rotate by 30 right\n", gp);
	fprintf(gp, "set xlabel \"%s\"\nset ylabel \"%s\"\n", label(g->x),
		label(g->y));
	fputs("set cbrange [0:100]\nset cblabel \"divergence rate (%)\"\n"
	      "set palette defined (0 \"#ffffe5\", 25 \"#fee391\", 50 "
	      "\"#fe9929\", 75 \"#cc4c02\", 100 \"#662506\")\n"
	      "set style fill solid 1.0 border lc rgb \"white\"\n"
	      "unset key\n", gp);
}

static void heatmap_panel(const struct kaf_analysis *an,
			  const struct grid *g, FILE *gp, int p, int block)
{
	if (g->panel_axis >= 0) {
		char title[256];

		snprintf(title, sizeof(title), "%s = %s",
			 label((enum kaf_cell_column)g->panel_axis),
			 an->factors[g->panel_axis].levels[p].name);
		fputs("set title ", gp);
		kaf_plot_quote(gp, title);
		fputc('\n', gp);
	}
	/* Labels in two passes: black on light cells, white on dark. */
	fprintf(gp, "plot \"heatmap.dat\" index %d using 1:2:(0.5):(0.5):3 "
		"with boxxyerror fc palette, \\\n", block);
	fprintf(gp, "     \"\" index %d using 1:2:($3 < %d ? "
		"sprintf(\"%%.1f %%%%\", $3) : \"\") with labels tc rgb "
		"\"black\", \\\n", block, DARK_RATE);
	fprintf(gp, "     \"\" index %d using 1:2:($3 >= %d ? "
		"sprintf(\"%%.1f %%%%\", $3) : \"\") with labels tc rgb "
		"\"white\"\n", block, DARK_RATE);
}

static int heatmap_script(const struct kaf_analysis *an, const char *dir,
			  struct kaf_plot *pl, struct grid *g,
			  struct kaf_error *err)
{
	bool *has_data = calloc((size_t)g->np, sizeof(*has_data));
	struct kaf_plot_files f;
	int panels, cols, block = 0, rc;

	if (!has_data)
		return kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
	rc = kaf_plot_open(dir, pl->stem, &f, err);
	if (rc) {
		free(has_data);
		return rc;
	}
	panels = grid_write(g, f.dat, has_data);
	cols = panels < 3 ? panels : 3;
	kaf_plot_begin(f.gp, pl->stem, "Divergence rate over two axes",
		 80 + 500 * cols, 60 + 420 * ((panels + cols - 1) / cols));
	heatmap_setup(an, g, f.gp, panels);
	for (int p = 0; p < g->np; p++)
		if (has_data[p])
			heatmap_panel(an, g, f.gp, p, block++);
	fputs("unset multiplot\n", f.gp);
	kaf_plot_end(f.gp);
	free(has_data);
	return kaf_plot_close(&f, err);
}

static int plot_heatmap(const struct kaf_analysis *an, const char *dir,
			struct kaf_plot *pl, struct kaf_error *err)
{
	struct grid g = {0};
	int rc;

	if (an->nvarying < 2) {
		pl->state = KAF_PLOT_NOT_APPLICABLE;
		snprintf(pl->note, sizeof(pl->note), "a heat map needs two "
			 "axes that vary; this sweep has %d", an->nvarying);
		return KAF_OK;
	}
	rc = grid_fill(an, &g);
	if (rc)
		rc = kaf_error_set(err, rc, "report: out of memory");
	else
		rc = heatmap_script(an, dir, pl, &g, err);
	free(g.runs);
	free(g.div);
	return rc;
}

/* ---- survival ---- */

static void survival_head(const struct kaf_analysis *an, FILE *gp,
			  enum kaf_cell_column axis)
{
	long span = an->nsteps > 0 ? an->nsteps : 1;

	fputs("set title ", gp);
	if (an->nvarying) {
		char title[256];

		snprintf(title, sizeof(title), "Runs still alive after each "
			 "training step, by %s", label(axis));
		kaf_plot_quote(gp, title);
		fputs("\nset key outside right title ", gp);
		kaf_plot_quote(gp, label(axis));
	} else {
		kaf_plot_quote(gp, "Runs still alive after each training step");
		fputs("\nunset key", gp);
	}
	fprintf(gp, "\nset xlabel \"training steps completed (1 step = 1 "
		"full-batch epoch)\"\nset ylabel \"runs not diverged (%% of "
		"runs)\"\nset xrange [0:%ld]\nset yrange [0:105]\nset grid\n",
		span);
	if (span <= 20)
		fputs("set xtics 1\n", gp);
}

static int plot_survival(const struct kaf_analysis *an, const char *dir,
			 struct kaf_plot *pl, struct kaf_error *err)
{
	enum kaf_cell_column axis = top_axis(an);
	const struct kaf_factor *f = &an->factors[axis];
	long *alive = malloc((size_t)(an->nsteps + 1) * sizeof(*alive));
	struct kaf_plot_files files;
	int block = 0, rc;

	if (!alive)
		return kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
	rc = kaf_plot_open(dir, pl->stem, &files, err);
	if (rc) {
		free(alive);
		return rc;
	}
	kaf_plot_begin(files.gp, pl->stem, "Survival curves", 1100, 640);
	survival_head(an, files.gp, axis);
	for (int i = 0; i < f->nlevels; i++) {
		if (f->levels[i].runs == 0)
			continue;
		kaf_analysis_alive(an, axis, i, alive);
		fputs(block ? "\n\n" : "", files.dat);
		for (long t = 0; t <= an->nsteps; t++)
			fprintf(files.dat, "%ld\t%.6g\n", t,
				100.0 * alive[t] / f->levels[i].runs);
		fprintf(files.gp, "%s\"survival.dat\" index %d using 1:2 with "
			"steps lw 2.5 dt %d lc rgb \"%s\" title ", block ?
			", \\\n     " : "plot ", block, block % 5 + 1,
			kaf_plot_colors[block % KAF_PLOT_NCOLORS]);
		kaf_plot_quote(files.gp, an->nvarying ? f->levels[i].name :
			       "all");
		block++;
	}
	fputc('\n', files.gp);
	kaf_plot_end(files.gp);
	free(alive);
	return kaf_plot_close(&files, err);
}

/* ---- final validation loss of the survivors ---- */

/* Data blocks per level; *lo, *hi the range; returns the box count. */
static int losses_write(const struct kaf_analysis *an, enum kaf_cell_column axis,
			FILE *dat, FILE *gp, double *lo, double *hi)
{
	const struct kaf_factor *f = &an->factors[axis];
	int boxes = 0;

	fputs("set xtics (", gp);
	for (int i = 0; i < f->nlevels; i++) {
		char name[320];
		double *v;
		long n;

		if (kaf_analysis_losses(an, axis, i, &v, &n))
			return -1;
		if (n == 0)
			continue;
		fputs(boxes ? "\n\n" : "", dat);
		for (long k = 0; k < n; k++)
			fprintf(dat, "%.9g\n", v[k]);
		*lo = fmin(*lo, v[0]);
		*hi = fmax(*hi, v[n - 1]);
		snprintf(name, sizeof(name), "%s (n = %ld)", an->nvarying ?
			 f->levels[i].name : "all runs", n);
		fputs(boxes ? ", " : "", gp);
		kaf_plot_quote(gp, name);
		fprintf(gp, " %d", ++boxes);
		free(v);
	}
	fputs(")\n", gp);
	return boxes;
}

static void losses_head(const struct kaf_analysis *an, FILE *gp,
			enum kaf_cell_column axis, int boxes, double lo, double hi)
{
	char title[256];

	snprintf(title, sizeof(title), "Final validation loss of the runs "
		 "that did not diverge%s%s", an->nvarying ? ", by " : "",
		 an->nvarying ? label(axis) : "");
	fputs("set title ", gp);
	kaf_plot_quote(gp, title);
	fprintf(gp, "\nset xlabel \"%s\"\nset ylabel \"final validation "
		"loss (MSE%s)\"\n", an->nvarying ? label(axis) : "",
		lo > 0 && hi / lo >= 100 ? ", log scale" : "");
	if (lo > 0 && hi / lo >= 100)
		fputs("set logscale y\n", gp);
	fprintf(gp, "set xrange [0.4:%g]\nset grid ytics\nunset key\n"
		"set style fill solid 0.35 border -1\nset boxwidth 0.5\n"
		"set style boxplot outliers pointtype 7\nset pointsize 0.4\n",
		boxes + 0.6);
	if (boxes > 6)
		fputs("set xtics rotate by 30 right\n", gp);
}

static int plot_losses(const struct kaf_analysis *an, const char *dir,
		       struct kaf_plot *pl, struct kaf_error *err)
{
	enum kaf_cell_column axis = top_axis(an);
	double lo = INFINITY, hi = -INFINITY;
	struct kaf_plot_files f;
	int boxes, rc;

	rc = kaf_plot_open(dir, pl->stem, &f, err);
	if (rc)
		return rc;
	kaf_plot_begin(f.gp, pl->stem, "Final validation loss of the survivors",
		 1100, 640);
	boxes = losses_write(an, axis, f.dat, f.gp, &lo, &hi);
	if (boxes > 0) {
		losses_head(an, f.gp, axis, boxes, lo, hi);
		fputs("plot ", f.gp);
		for (int b = 0; b < boxes; b++)
			fprintf(f.gp, "%s\"val_loss.dat\" index %d using "
				"(%d):1 with boxplot lc rgb \"%s\"", b ? ", " :
				"", b, b + 1,
				kaf_plot_colors[b % KAF_PLOT_NCOLORS]);
		fputc('\n', f.gp);
	}
	kaf_plot_end(f.gp);
	rc = kaf_plot_close(&f, err);
	if (boxes < 0)
		return kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
	if (!rc && boxes == 0) {
		pl->state = KAF_PLOT_NOT_APPLICABLE;
		snprintf(pl->note, sizeof(pl->note), "no run survived with a "
			 "finite validation loss");
		unlink(f.gp_path);
		unlink(f.dat_path);
	}
	return rc;
}

/* ---- finding and running gnuplot ---- */

static bool is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, X_OK) == 0;
}

static bool search_path(const char *name, char *path, size_t size)
{
	const char *dirs = getenv("PATH");

	if (!dirs || !*dirs)
		dirs = "/usr/local/bin:/usr/bin:/bin";
	while (*dirs) {
		size_t len = strcspn(dirs, ":");

		/* An empty entry means the working directory. */
		snprintf(path, size, "%.*s%s%s", (int)len, dirs, len ? "/" : "",
			 name);
		if (is_executable(path))
			return true;
		dirs += len + (dirs[len] == ':');
	}
	return false;
}

int kaf_plot_find_gnuplot(char *path, size_t size, struct kaf_error *err)
{
	const char *env = getenv("KAF_GNUPLOT");
	const char *name = env && *env ? env : "gnuplot";

	if (strchr(name, '/')) {
		snprintf(path, size, "%s", name);
		if (is_executable(path))
			return KAF_OK;
		return kaf_error_set(err, KAF_EIO, "KAF_GNUPLOT=\"%s\" is not "
				     "an executable file", name);
	}
	if (search_path(name, path, size))
		return KAF_OK;
	return kaf_error_set(err, KAF_EIO, "%s\"%s\" was not found on PATH",
			     env && *env ? "KAF_GNUPLOT=" : "", name);
}

/* The last non-empty line gnuplot wrote: its error, usually. */
static void last_line(const char *log_path, char *out, size_t size)
{
	FILE *f = fopen(log_path, "r");
	char line[512];

	snprintf(out, size, "no message");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		size_t n;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[strspn(line, " \t^")] == '\0')
			continue;
		n = strlen(line);
		n = n < size ? n : size - 1;
		memcpy(out, line, n);
		out[n] = '\0';
	}
	fclose(f);
}

/*
 * fork and exec rather than system(): no shell to quote paths for, and
 * the child may change directory without touching ours. Between fork
 * and exec the child only calls async-signal-safe functions, as a
 * threaded parent requires.
 */
static int spawn(const char *gnuplot, const char *dir, const char *script,
		 int log_fd, int null_fd)
{
	char *argv[] = {(char *)"gnuplot", (char *)script, NULL};
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(log_fd, STDOUT_FILENO);
		dup2(log_fd, STDERR_FILENO);
		if (chdir(dir) == 0)
			execv(gnuplot, argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Whether gnuplot wrote what pl promises; if not, say so in pl->note. */
static bool check_output(const char *dir, struct kaf_plot *pl)
{
	char path[4096];

	if (pl->animated) {
		snprintf(path, sizeof(path), "%s/%s.gif", dir, pl->stem);
		pl->frames = kaf_plot_gif_frames(path);
		if (pl->frames > 0)
			return true;
		snprintf(pl->note, sizeof(pl->note), "gnuplot wrote no valid "
			 "GIF file %s.gif", pl->stem);
		return false;
	}
	snprintf(path, sizeof(path), "%s/%s.png", dir, pl->stem);
	if (!kaf_plot_is_png(path)) {
		snprintf(pl->note, sizeof(pl->note), "gnuplot wrote no valid "
			 "PNG file %s.png", pl->stem);
		return false;
	}
	snprintf(path, sizeof(path), "%s/%s.svg", dir, pl->stem);
	if (!kaf_plot_is_svg(path)) {
		snprintf(pl->note, sizeof(pl->note), "gnuplot wrote no valid "
			 "SVG file %s.svg", pl->stem);
		return false;
	}
	return true;
}

void kaf_plot_draw(const char *gnuplot, const char *dir, struct kaf_plot *pl)
{
	char script[KAF_PLOT_STEM_MAX + 8], log_path[4096];
	int log_fd, null_fd, status;

	snprintf(script, sizeof(script), "%s.gp", pl->stem);
	snprintf(log_path, sizeof(log_path), "%s/%s.log", dir, pl->stem);
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0644);
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	status = log_fd < 0 || null_fd < 0 ? -1 :
		spawn(gnuplot, dir, script, log_fd, null_fd);
	if (log_fd >= 0)
		close(log_fd);
	if (null_fd >= 0)
		close(null_fd);
	pl->state = KAF_PLOT_FAILED;
	if (status < 0) {
		snprintf(pl->note, sizeof(pl->note), "could not start "
			 "gnuplot (%s)", gnuplot);
	} else if (status != 0) {
		char msg[200];

		last_line(log_path, msg, sizeof(msg));
		snprintf(pl->note, sizeof(pl->note), "gnuplot exited with "
			 "status %d: %s", status, msg);
	} else if (check_output(dir, pl)) {
		pl->state = KAF_PLOT_DRAWN;
	}
	unlink(log_path);
}

void kaf_plot_init(struct kaf_plot *pl, const char *stem, bool animated)
{
	*pl = (struct kaf_plot){.state = KAF_PLOT_NO_GNUPLOT,
				.animated = animated};
	snprintf(pl->stem, sizeof(pl->stem), "%s", stem);
}

typedef int plot_fn(const struct kaf_analysis *an, const char *dir,
		    struct kaf_plot *pl, struct kaf_error *err);

int kaf_plot_all(const struct kaf_analysis *an, const char *dir,
		 const char *gnuplot, struct kaf_plot *plots,
		 struct kaf_error *err)
{
	static plot_fn *const write[KAF_PLOT_COUNT] = {
		[KAF_PLOT_RATES] = plot_rates,
		[KAF_PLOT_HEATMAP] = plot_heatmap,
		[KAF_PLOT_SURVIVAL] = plot_survival,
		[KAF_PLOT_VAL_LOSS] = plot_losses,
	};
	int rc = KAF_OK;

	for (int i = 0; i < KAF_PLOT_COUNT; i++)
		kaf_plot_init(&plots[i], kaf_plot_stems[i], false);
	for (int i = 0; i < KAF_PLOT_COUNT && !rc; i++) {
		rc = write[i](an, dir, &plots[i], err);
		if (!rc && gnuplot && plots[i].state == KAF_PLOT_NO_GNUPLOT)
			kaf_plot_draw(gnuplot, dir, &plots[i]);
	}
	return rc;
}

/* ---- checking what gnuplot wrote ---- */

bool kaf_plot_is_png(const char *path)
{
	static const unsigned char head[16] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
		0, 0, 0, 13, 'I', 'H', 'D', 'R',
	};
	unsigned char buf[16];
	FILE *f = fopen(path, "rb");
	bool ok;

	if (!f)
		return false;
	ok = fread(buf, 1, sizeof(buf), f) == sizeof(buf) &&
	     memcmp(buf, head, sizeof(head)) == 0;
	fclose(f);
	return ok;
}

/* Skip the prolog: XML declaration, comments, DOCTYPE, whitespace. */
static const char *svg_root(const char *s)
{
	for (;;) {
		s += strspn(s, " \t\r\n");
		if (strncmp(s, "<?", 2) == 0 || strncmp(s, "<!", 2) == 0) {
			const char *end = strncmp(s, "<!--", 4) == 0 ?
				strstr(s, "-->") : strchr(s, '>');

			if (!end)
				return NULL;
			s = end + 1;
			continue;
		}
		return s;
	}
}

bool kaf_plot_is_svg(const char *path)
{
	FILE *f = fopen(path, "rb");
	char head[4096], tail[64];
	size_t n, t = 0;
	long len;
	const char *root;

	if (!f)
		return false;
	n = fread(head, 1, sizeof(head) - 1, f);
	head[n] = '\0';
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 &&
	    fseek(f, len > 63 ? len - 63 : 0, SEEK_SET) == 0)
		t = fread(tail, 1, sizeof(tail) - 1, f);
	fclose(f);
	tail[t] = '\0';
	root = svg_root(head);
	return root && strncmp(root, "<svg", 4) == 0 &&
	       strchr(" \t\r\n>", root[4]) && strstr(tail, "</svg>");
}

/*
 * Walk the GIF's blocks (header, screen descriptor and colour table,
 * then extensions and images until the trailer), so a truncated or
 * foreign file is refused rather than counted.
 */
static bool skip_sub_blocks(FILE *f)
{
	int len;

	while ((len = fgetc(f)) > 0)
		if (fseek(f, len, SEEK_CUR) != 0)
			return false;
	return len == 0;
}

static long table_size(int packed)
{
	return packed & 0x80 ? 3L << ((packed & 7) + 1) : 0;
}

int kaf_plot_gif_frames(const char *path)
{
	unsigned char head[13], image[9];
	FILE *f = fopen(path, "rb");
	int frames = 0, kind;
	bool ok;

	if (!f)
		return -1;
	ok = fread(head, 1, sizeof(head), f) == sizeof(head) &&
	     (memcmp(head, "GIF89a", 6) == 0 || memcmp(head, "GIF87a", 6) == 0)
	     && fseek(f, table_size(head[10]), SEEK_CUR) == 0;
	while (ok && (kind = fgetc(f)) != 0x3b) {
		if (kind == 0x21) {             /* extension: label, blocks */
			ok = fgetc(f) != EOF && skip_sub_blocks(f);
		} else if (kind == 0x2c) {      /* image descriptor */
			ok = fread(image, 1, sizeof(image), f) ==
			     sizeof(image) &&
			     fseek(f, table_size(image[8]), SEEK_CUR) == 0 &&
			     fgetc(f) != EOF && skip_sub_blocks(f);
			frames += ok;
		} else {
			ok = false;
		}
	}
	fclose(f);
	return ok ? frames : -1;
}
