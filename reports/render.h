/*
 * render.h - the content of a report: an analysed sweep as a document.
 *
 * Every sentence and table is derived from the numbers of the analysis;
 * nothing is written in advance about which axis matters. The sections:
 * a summary in plain words (which axes change the divergence rate and by
 * how much, whether the top-ranked cells really differ, what caused the
 * divergences), the sweep's settings, experiments 1 and 2 when the sweep
 * has their data (study_render.h), the ranking, the factor effects,
 * the causes and steps of divergence, survival by step, the final
 * validation loss of the survivors, and the methods. Tables follow the
 * axes that vary, so any grid gets the same treatment.
 *
 * Memory: blocks are added to the caller's doc. Thread-safe: no state.
 * Errors: KAF_ENOMEM (the doc's status) or KAF_OK.
 */
#ifndef KAF_RENDER_H
#define KAF_RENDER_H

#include "analysis.h"
#include "doc.h"
#include "plot.h"
#include "study_plot.h"

/* Every table name (NAME.csv) a report may hold; NULL-terminated. */
extern const char *const kaf_render_tables[];

/* Append the report of an to doc; plots (KAF_PLOT_COUNT) and study say
 * which figures were drawn. */
int kaf_render_report(const struct kaf_analysis *an,
		      const struct kaf_plot *plots,
		      const struct kaf_study_plots *study,
		      struct kaf_doc *doc);

#endif
