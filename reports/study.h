/*
 * study.h - the original study's experiments 1 and 2, read from a sweep.
 *
 * Experiment 1 compares output activations per dataset and setting. For
 * every cell the study holds its final validation accuracy
 * (classification) or MSE and MAE (regression), summarised over the runs
 * that did not diverge, and its mean training and validation loss per
 * epoch over those runs, from table trace. Cells are grouped as the
 * original study tabulated them: by block (the spec section, "iris/1")
 * when the sweep has blocks, else by dataset; within a group each cell is
 * a variant named by what tells it from the others ("relu", "kaf naive").
 *
 * Experiment 2 watches the learned K-AF link. For every cell with link
 * snapshots, the study holds the frames of its first replicate: per
 * frame the bandwidth, the curve y_hat_k(z) of every output k, and the
 * calc rows (z_j, y_jk) that define it.
 *
 * kaf_study_load is called by kaf_analysis_load inside its read
 * transaction, so the study and the rest of the analysis describe one
 * snapshot of a database a sweep may still be writing. Reading costs one
 * small query per cell, plus the traces and snapshots when there are
 * any: about a second for experiment 1's 640,000 trace rows.
 *
 * Memory: a study belongs to its analysis (an->study) and is freed with
 * it. Not thread-safe while loading; read-only afterwards.
 *
 * Errors: 0 or KAF_EDB (a query failed, or the snapshots are malformed)
 * or KAF_ENOMEM, with err naming the database and the table.
 */
#ifndef KAF_STUDY_H
#define KAF_STUDY_H

#include <stdbool.h>

#include "analysis.h"
#include "error.h"

struct sqlite3;

/* Loss curves start here, as the original study's did ... */
#define KAF_STUDY_CURVE_FROM 100

/* ... unless the cells trained fewer epochs than this. */
#define KAF_STUDY_CURVE_MIN_EPOCHS 200

enum kaf_study_task {
	KAF_STUDY_UNKNOWN,      /* no run stored accuracy or MAE */
	KAF_STUDY_CLASSIFICATION,       /* some run stored an accuracy */
	KAF_STUDY_REGRESSION,   /* some run stored an MAE, none accuracy */
};

/* One metric over the runs of a cell that did not diverge. */
struct kaf_moments {
	long n;                 /* runs with a value (NULL: not finite) */
	double mean;            /* NaN when n is 0 */
	double sd;              /* sample (n - 1); NaN when n < 2 */
	double min, max;        /* NaN when n is 0 */
};

/* Mean loss per epoch over the runs of a cell that did not diverge. */
struct kaf_curve {
	long n;                 /* epochs 0 .. n - 1; 0: no traces */
	double *train, *val;    /* (n) NaN where no run has a value */
};

struct kaf_study_cell {
	enum kaf_study_task task;
	bool traced;            /* some run of the cell has trace rows */
	struct kaf_moments accuracy, mse, mae;
	struct kaf_curve curve;
};

/* Cells compared side by side: one block, or one dataset. */
struct kaf_study_group {
	char *name;             /* "iris/1", or "iris" */
	int ncells;
	int *cells;             /* (ncells) cell indices, grid order */
	char **variants;        /* (ncells) "relu", "kaf naive", ... */
	long epochs;            /* the most epochs of its cells */
	long curve_from;        /* first epoch its loss curves show */
};

struct kaf_link_frame {
	long epoch;             /* 0-based step of the snapshot */
	double bandwidth;       /* h then; NaN when not stored */
};

/*
 * The snapshots of one run's learned link. Values not stored are NaN;
 * points are in ascending z within each frame and output.
 */
struct kaf_link_series {
	char *name;             /* its block, else its cell's label */
	int cell;               /* index into an->cells */
	long replicate;         /* the cell's first replicate with frames */
	int nframes, noutputs, npoints, ncalc;
	struct kaf_link_frame *frames;  /* (nframes) ascending epoch */
	double *z, *yhat;       /* (nframes, noutputs, npoints) */
	double *calc_z, *calc_y;        /* (nframes, noutputs, ncalc) */
};

struct kaf_study {
	int ncells;
	struct kaf_study_cell *cells;   /* (ncells) like an->cells */
	bool by_block;          /* groups are blocks, not datasets */
	bool traced;            /* some cell has traces */
	bool compare;           /* experiment 1 applies: traces, or the
				 * activation varies */
	int ngroups;
	struct kaf_study_group *groups; /* (ngroups) by first cell */
	int nlinks;
	struct kaf_link_series *links;  /* (nlinks) by cell */
};

/*
 * Read the study of the analysed sweep from db (open, inside a read
 * transaction; db_path for messages) into a new an->study. Needs
 * an->cells and an->factors loaded.
 */
int kaf_study_load(struct sqlite3 *db, const char *db_path,
		   struct kaf_analysis *an, struct kaf_error *err);

void kaf_study_destroy(struct kaf_study *st);

/* Whether the curve has a finite value at some epoch from from on. */
bool kaf_curve_shows(const struct kaf_curve *cv, long from);

/* Offset of (frame f, output k) in a series' point and calc arrays. */
long kaf_link_points_at(const struct kaf_link_series *ls, int f, int k);
long kaf_link_calc_at(const struct kaf_link_series *ls, int f, int k);

#endif
