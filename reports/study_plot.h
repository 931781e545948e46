/*
 * study_plot.h - the figures of experiments 1 and 2, drawn by gnuplot.
 *
 * Experiment 1, per group of cells (a block, or a dataset): the mean
 * training and validation loss per epoch of every variant, one line
 * each, in two panels stacked over one epoch axis, from the group's
 * curve_from epoch on; when the values span a factor of
 * KAF_STUDY_LOG_SPAN or more, both y axes are logarithmic. Stem
 * exp1_loss_<group>.
 *
 * Experiment 2, per link series: the learned link at the last snapshot,
 * one panel per output dimension laid out in a grid, the curve
 * y_hat_k(z) as a line and the calc rows (z_jk, y_jk) as dots; stem
 * exp2_link_<name>, PNG and SVG. And the same panels for every snapshot
 * as an animated GIF, one frame per snapshot, each panel's axes fixed
 * across frames, the frame's title giving the epoch and the bandwidth;
 * stem exp2_movie_<name>, file exp2_movie_<name>.gif. At most
 * KAF_STUDY_MAX_FRAMES frames are drawn, evenly spread over the
 * snapshots, the first and last always among them.
 *
 * Stems are the names with every character that is not a letter or a
 * digit turned into '_', made unique by a numeric suffix.
 *
 * Memory: the records are allocated into a caller-owned struct, freed
 * with kaf_study_plots_finish. Thread-safety and gnuplot: as plot.h.
 *
 * Errors: 0 or KAF_EIO (a script or data file could not be written) or
 * KAF_ENOMEM, with err naming the file. gnuplot's own failures are
 * recorded in the figures' records, as in plot.h.
 */
#ifndef KAF_STUDY_PLOT_H
#define KAF_STUDY_PLOT_H

#include "analysis.h"
#include "error.h"
#include "plot.h"
#include "study.h"

#define KAF_STUDY_MAX_FRAMES 200

/* Loss axes are logarithmic when the values span this factor. */
#define KAF_STUDY_LOG_SPAN 100

struct kaf_study_plots {
	int n;
	struct kaf_plot *all;   /* (n) the figures below, in this order */
	struct kaf_plot *loss;  /* (ngroups) when the study has traces and
				 * compares activations, else NULL */
	struct kaf_plot *link;  /* (nlinks) final link, PNG and SVG */
	struct kaf_plot *movie; /* (nlinks) the snapshots as a GIF */
};

/* Stem prefixes of these figures, for removing stale files; NULL-ended. */
extern const char *const kaf_study_plot_prefixes[];

/*
 * Write the scripts and data of every figure of an->study into dir and,
 * when gnuplot is not NULL, draw them. *sp is filled whatever happens to
 * the drawing; on error it is left empty.
 */
int kaf_study_plot_all(const struct kaf_analysis *an, const char *dir,
		       const char *gnuplot, struct kaf_study_plots *sp,
		       struct kaf_error *err);

/* Free the records; a zeroed or finished struct is fine. */
void kaf_study_plots_finish(struct kaf_study_plots *sp);

/* How many frames the animation of ls shows, and which is the i-th. */
int kaf_study_movie_frames(const struct kaf_link_series *ls);
int kaf_study_movie_frame(const struct kaf_link_series *ls, int i);

#endif
