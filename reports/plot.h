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
 * per value of that axis. The figures of experiments 1 and 2 are
 * written by study_plot.h with the helpers at the end of this header;
 * an animation is one stem.gif instead of the PNG and SVG.
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
#include <stdio.h>

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

/* Room for a stem: letters, digits and '_' only. */
#define KAF_PLOT_STEM_MAX 80

struct kaf_plot {
	char stem[KAF_PLOT_STEM_MAX];   /* "rate_per_cell", ... */
	bool animated;          /* stem.gif instead of stem.png, stem.svg */
	enum kaf_plot_state state;
	int frames;             /* of a drawn animation */
	char note[256];         /* why not drawn; "" when drawn */
};

/* The file stems, by kaf_plot_id. */
extern const char *const kaf_plot_stems[KAF_PLOT_COUNT];

#define KAF_PLOT_NCOLORS 10

/* Line colours, in the order the lines of a figure take them. */
extern const char *const kaf_plot_colors[KAF_PLOT_NCOLORS];

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

/* A record for the figure stem, not yet drawn. */
void kaf_plot_init(struct kaf_plot *pl, const char *stem, bool animated);

/* The file starts with the PNG signature and an IHDR chunk. */
bool kaf_plot_is_png(const char *path);

/* The file's root element is <svg ...> and it ends with </svg>. */
bool kaf_plot_is_svg(const char *path);

/*
 * The number of images (frames) in a GIF file whose blocks are all well
 * formed up to the trailer; -1 for anything else.
 */
int kaf_plot_gif_frames(const char *path);

/* ---- for the modules that write figures of their own ---- */

/* A figure's two files while they are written: stem.gp and stem.dat. */
struct kaf_plot_files {
	FILE *gp, *dat;
	char gp_path[4096], dat_path[4096];
};

/* Create dir/stem.gp and dir/stem.dat; KAF_EIO naming the file. */
int kaf_plot_open(const char *dir, const char *stem,
		  struct kaf_plot_files *f, struct kaf_error *err);

/* Close both; KAF_EIO if either could not be written in full. */
int kaf_plot_close(struct kaf_plot_files *f, struct kaf_error *err);

/* s as a gnuplot string literal. */
void kaf_plot_quote(FILE *gp, const char *s);

/*
 * The head of a script that draws stem.png and stem.svg (width x height
 * pixels), with a comment saying how to redraw it; kaf_plot_end closes
 * it. The commands between run once per format.
 */
void kaf_plot_begin(FILE *gp, const char *stem, const char *what,
		    int width, int height);
void kaf_plot_end(FILE *gp);

/*
 * Run gnuplot on dir/stem.gp in dir and check its output: a PNG and an
 * SVG, or a GIF of at least one frame when pl->animated. Sets pl->state
 * to KAF_PLOT_DRAWN, or KAF_PLOT_FAILED with the reason in pl->note.
 */
void kaf_plot_draw(const char *gnuplot, const char *dir, struct kaf_plot *pl);

#endif
