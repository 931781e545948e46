/*
 * plot.h - the report's figures, drawn by gnuplot.
 *
 * Each figure is a data file and a gnuplot script in a plots directory:
 * stem.dat and stem.gp, which draw stem.png (pngcairo) and stem.svg when
 * run there (`cd plots && gnuplot stem.gp`, also the way to redraw one by
 * hand). kaf runs gnuplot once per script, checks its exit status and
 * that the files it wrote are a PNG and an SVG; a figure that fails is
 * reported in its kaf_plot record, not as an error, so the tables of a
 * report never depend on gnuplot.
 *
 * The figures: divergence rate per cell with Wilson intervals, in rank
 * order; a heat map of the rate over the two axes with the largest
 * effect, one panel per value of the third; the fraction of runs still
 * alive after each step, one line per value of the axis with the largest
 * effect; the final validation loss of the runs that survived, one box
 * per value of that axis.
 *
 * gnuplot is found through the environment: KAF_GNUPLOT, when set and
 * not empty, names the program (a path, or a name looked up on PATH);
 * otherwise "gnuplot" is looked up on PATH.
 *
 * Memory: nothing is kept between calls; records are caller-owned.
 * Thread-safe apart from the environment lookup; gnuplot runs in a child
 * process (fork and exec), so calling this from a threaded program is
 * safe as long as no other thread changes the working directory's files.
 *
 * Errors: 0 or a negative KAF_E* code with err naming the file: KAF_EIO
 * when a script or data file cannot be written, KAF_ENOMEM.
 */
#ifndef KAF_PLOT_H
#define KAF_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include "analysis.h"
#include "error.h"

enum kaf_plot_id {
	KAF_PLOT_RATES,
	KAF_PLOT_HEATMAP,
	KAF_PLOT_SURVIVAL,
	KAF_PLOT_VAL_LOSS,
	KAF_PLOT_COUNT,
};

enum kaf_plot_state {
	KAF_PLOT_DRAWN,         /* stem.png and stem.svg exist and are valid */
	KAF_PLOT_NOT_APPLICABLE,        /* nothing to draw; note says why */
	KAF_PLOT_NO_GNUPLOT,    /* script and data written, not run */
	KAF_PLOT_FAILED,        /* gnuplot failed; note has its message */
};

struct kaf_plot {
	const char *stem;       /* "rate_per_cell", "heatmap", ... */
	enum kaf_plot_state state;
	char note[256];         /* why not drawn; "" when drawn */
};

/* The file stems, by kaf_plot_id. */
extern const char *const kaf_plot_stems[KAF_PLOT_COUNT];

/*
 * Resolve the gnuplot program to run into path (size bytes), from
 * $KAF_GNUPLOT or PATH as above. KAF_EIO when it cannot be found or is
 * not an executable file; err then says where kaf looked.
 */
int kaf_plot_find_gnuplot(char *path, size_t size, struct kaf_error *err);

/*
 * Write every figure's stem.dat and stem.gp into dir (an existing
 * directory) and, when gnuplot is not NULL, run that program on each
 * script with dir as its working directory. plots (KAF_PLOT_COUNT) are
 * filled whatever happens to the drawing. Only the scripts' own files
 * are errors.
 */
int kaf_plot_all(const struct kaf_analysis *an, const char *dir,
		 const char *gnuplot, struct kaf_plot *plots,
		 struct kaf_error *err);

/* The file starts with the PNG signature and an IHDR chunk. */
bool kaf_plot_is_png(const char *path);

/* The file's root element is <svg ...> and it ends with </svg>. */
bool kaf_plot_is_svg(const char *path);

#endif
