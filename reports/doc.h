/*
 * doc.h - a report as a list of blocks, written as Markdown, HTML, CSV.
 *
 * The report's content is built once, as headings, paragraphs, list
 * items, tables and figures; the writers turn the same blocks into
 * report.md, a self-contained report.html and one CSV file per table, so
 * the three never disagree. A table column may appear in the documents
 * only (a "[lo, hi]" interval for reading), in the CSV only (its two
 * bounds as numbers), or in both. Text is plain UTF-8: each writer
 * escapes what its format needs.
 *
 * Memory: a doc owns every block and string in it (kaf_doc_create,
 * kaf_doc_destroy; destroy(NULL) is a no-op); tables belong to their
 * doc. Building never fails call by call: the first allocation failure
 * is remembered, later calls do nothing, and kaf_doc_status reports it
 * once the doc is built. Not thread-safe: one doc per thread.
 *
 * Errors: writers return 0 or KAF_EIO / KAF_ENOMEM with err naming the
 * file.
 */
#ifndef KAF_DOC_H
#define KAF_DOC_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"

enum kaf_block_kind {
	KAF_BLOCK_HEADING,
	KAF_BLOCK_PARA,
	KAF_BLOCK_ITEM,         /* one item of a bullet list */
	KAF_BLOCK_TABLE,
	KAF_BLOCK_FIGURE,
};

/* Column flags. */
enum {
	KAF_COL_RIGHT = 1,      /* numbers: right-aligned in documents */
};

struct kaf_column {
	char *head;             /* header in documents; NULL: CSV only */
	char *key;              /* header in the CSV; NULL: documents only */
	unsigned flags;
};

struct kaf_table {
	char *name;             /* CSV file is name.csv */
	int ncols, nrows, filled, cap;
	struct kaf_column *cols;        /* (ncols) */
	char **cells;           /* (nrows, ncols) row-major */
	int *status;            /* the owning doc's sticky status */
};

struct kaf_figure {
	char *stem;             /* plots/stem.png and plots/stem.svg */
	char *caption;
	bool drawn;             /* false: the image files do not exist */
	bool animated;          /* plots/stem.gif alone */
};

struct kaf_block {
	enum kaf_block_kind kind;
	int level;              /* headings: 1 .. 3 */
	char *text;             /* heading, paragraph or item text */
	struct kaf_table *table;
	struct kaf_figure figure;
};

struct kaf_doc {
	int nblocks, cap;
	struct kaf_block *blocks;       /* (nblocks) */
	int status;             /* KAF_OK or the first failure */
};

/* ---- building ---- */

struct kaf_doc *kaf_doc_create(void);
void kaf_doc_destroy(struct kaf_doc *doc);

/* KAF_OK, or KAF_ENOMEM if any building call failed. */
int kaf_doc_status(const struct kaf_doc *doc);

void kaf_doc_heading(struct kaf_doc *doc, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kaf_doc_para(struct kaf_doc *doc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void kaf_doc_item(struct kaf_doc *doc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A figure drawn (or not) as plots/stem.{png,svg} under the output. */
void kaf_doc_figure(struct kaf_doc *doc, const char *stem, bool drawn,
		    const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* An animation drawn (or not) as plots/stem.gif. */
void kaf_doc_animation(struct kaf_doc *doc, const char *stem, bool drawn,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * A new empty table written to name.csv; NULL after a failure (the
 * table calls below accept NULL and do nothing). Declare the columns,
 * then fill row by row: kaf_table_row opens a row, each kaf_table_cell
 * fills its next column.
 */
struct kaf_table *kaf_doc_table(struct kaf_doc *doc, const char *name);
void kaf_table_column(struct kaf_table *t, const char *head,
		      const char *key, unsigned flags);
void kaf_table_row(struct kaf_table *t);
void kaf_table_cell(struct kaf_table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The cell at (row, col), or NULL outside the table. */
const char *kaf_table_at(const struct kaf_table *t, int row, int col);

/* ---- writing ---- */

int kaf_doc_write_md(const struct kaf_doc *doc, FILE *out);

/*
 * A self-contained page: the style inline and every drawn figure's PNG
 * (an animation's GIF), read from dir/plots/, embedded as a data: URI.
 */
int kaf_doc_write_html(const struct kaf_doc *doc, const char *title,
		       const char *dir, FILE *out, struct kaf_error *err);

/*
 * Quoting as RFC 4180 (a field holding a comma, quote or line break is
 * quoted, quotes doubled), but lines end in LF for the shell tools.
 */
int kaf_table_write_csv(const struct kaf_table *t, FILE *out);

#endif
