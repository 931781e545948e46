/*
 * report.h - a sweep's report as a directory of files; the C API behind
 * `kaf report`, also called by the sweep when a preset ends.
 *
 * The report of one sweep of a kaf database is a directory holding:
 *   report.md      the report in Markdown
 *   report.html    the same, self-contained: style inline, every plot
 *                  embedded as PNG data, so it opens offline
 *   NAME.csv       one file per table, full-precision numbers
 *   plots/         each figure as NAME.png (pngcairo) and NAME.svg, an
 *                  animation as NAME.gif, with the NAME.gp script and
 *                  NAME.dat data that drew it
 * What it says is described in render.h, the figures in plot.h.
 *
 * Writing is all or nothing: every file is generated in a hidden staging
 * directory inside the output directory (.kaf-report-XXXXXX) and renamed
 * into place only once all were written; after an error the staging
 * directory is removed and the output directory is as it was. Files of
 * an earlier report that this one does not produce (a heat map, when
 * only one axis varies now) are removed, so a directory never mixes two
 * reports. The database is opened read-only and never written. A report
 * killed midway leaves its staging directory behind; deleting it is
 * safe.
 *
 * gnuplot is optional: without it (see plot.h for how it is found, and
 * KAF_GNUPLOT) the tables are written and one warning on standard error
 * names the plots skipped and how to install gnuplot.
 *
 * Memory: a result owns its paths; free them with
 * kaf_report_result_finish. Thread-safe for distinct output
 * directories; diagnostics go through kaf_log.
 *
 * Errors: 0 or a negative KAF_E* code with err naming the value at
 * fault: the database file (KAF_EIO, KAF_EDB), the sweep (KAF_EINVAL),
 * the output directory (KAF_EIO), or KAF_ENOMEM.
 */
#ifndef KAF_REPORT_H
#define KAF_REPORT_H

#include <stdbool.h>

#include "error.h"

#define KAF_REPORT_DEFAULT_DB "kaf.db"
#define KAF_REPORT_DEFAULT_DIR "report"

struct kaf_report_opts {
	const char *db_path;    /* NULL: KAF_REPORT_DEFAULT_DB */
	long long sweep_id;     /* 0: the latest sweep (largest id) */
	const char *out_dir;    /* NULL: KAF_REPORT_DEFAULT_DIR; created,
				 * parents too, if missing */
	bool no_plots;          /* write the plot scripts, do not run them */
};

struct kaf_report_result {
	long long sweep_id;     /* the sweep reported */
	int nfiles;
	char **files;           /* (nfiles) paths written: out_dir/NAME */
	int plots_drawn;        /* figures drawn */
};

/*
 * Write the report described by opts. On success res (if not NULL)
 * lists the files written, report.md first; on failure res is empty
 * and nothing in the output directory has changed.
 */
int kaf_report_run(const struct kaf_report_opts *opts,
		   struct kaf_report_result *res, struct kaf_error *err);

/* Free the paths of res; a zeroed or finished result is fine. */
void kaf_report_result_finish(struct kaf_report_result *res);

/*
 * The sweep's entry point: report sweep_id (0: the latest) of the
 * database at db_path into out_dir, drawing the plots if gnuplot is
 * available. The same as kaf_report_run without the list of files.
 */
int kaf_report_write(const char *db_path, long long sweep_id,
		     const char *out_dir, struct kaf_error *err);

#endif
