/*
 * study_render.h - the report's sections on experiments 1 and 2.
 *
 * "Activations compared (experiment 1)" appears when the sweep has
 * traces or its activation varies: per group (block, else dataset) the
 * variants ordered by their mean validation accuracy (classification)
 * or MSE (regression); the comparison table, one row per cell, with
 * runs, divergences and the mean, sample deviation and range over the
 * runs that did not diverge (exp1_classification.csv,
 * exp1_regression.csv); and the mean loss curves per group.
 *
 * "The learned link (experiment 2)" appears when the sweep has link
 * snapshots: the shape of every output's final link, judged by shape.h
 * with the criterion stated in words (exp2_shape.csv), then per series
 * the final link's panels and the animation of its snapshots.
 *
 * Memory: blocks are added to the caller's doc. Thread-safe: no state.
 * Errors: KAF_ENOMEM (the doc's status) or KAF_OK.
 */
#ifndef KAF_STUDY_RENDER_H
#define KAF_STUDY_RENDER_H

#include "analysis.h"
#include "doc.h"
#include "study_plot.h"

/* The tables these sections may write (NAME.csv); NULL-terminated. */
extern const char *const kaf_study_tables[];

/* Append the sections that apply to an; sp says which figures exist. */
int kaf_study_render(const struct kaf_analysis *an,
		     const struct kaf_study_plots *sp, struct kaf_doc *doc);

#endif
