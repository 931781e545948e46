/*
 * data.h - datasets: the five built-in sets and users' CSV files.
 *
 * A dataset is a dense table of n rows: features x (n, d) as double and
 * targets y (n, e). For classification y is one-hot over e classes and
 * label[i] holds the class index; for regression e == 1, y holds the value
 * and label is NULL. Class indices are the sorted distinct integer labels
 * of the file, numbered from 0.
 *
 * Memory: kaf_dataset_* constructors return a heap object that the caller
 * frees with kaf_dataset_destroy (NULL is a no-op). Datasets are read-only
 * after construction and may be shared between threads.
 *
 * Errors: negative KAF_E* codes with a message naming the source (file
 * name or built-in name), the line number and the offending cell.
 */
#ifndef KAF_DATA_H
#define KAF_DATA_H

#include <stddef.h>

#include "error.h"

/*
 * Most classes a classification CSV may have. y is one-hot (n, e), so the
 * cap keeps memory within a fixed multiple of the input size even when a
 * hostile file gives every row a label of its own. The study needs 10.
 */
#define KAF_DATA_MAX_CLASSES 256

/*
 * Most columns and bytes a CSV file may have. The parser keeps every cell
 * as a double and a network's weights grow with the columns, so without
 * them a 2-million-column header or an endless stream (a FIFO, /dev/zero)
 * takes memory until the machine gives out. A file at the byte limit
 * costs at most about 1 GB; the largest built-in set, digits, has 65
 * columns in 270 kB.
 */
#define KAF_DATA_MAX_COLUMNS 100000
#define KAF_DATA_MAX_BYTES ((size_t)64 << 20)

enum kaf_task {
	KAF_TASK_CLASSIFICATION,
	KAF_TASK_REGRESSION,
};

struct kaf_dataset {
	char *name;            /* built-in name or file path */
	enum kaf_task task;
	int n;                 /* rows */
	int d;                 /* features */
	int e;                 /* outputs: classes, or 1 for regression */
	double *x;             /* (n, d) row-major */
	double *y;             /* (n, e) row-major */
	int *label;            /* (n) class index, NULL for regression */
	char **feature_names;  /* (d) column names from the header */
	char *target_name;     /* name of the target column */
};

/* ---- construction ---- */

/*
 * Parse CSV text: a header row of column names, then one row per sample,
 * every cell numeric. The column named target is the target; the others
 * are features in file order. source names the text in error messages.
 * Errors (KAF_EINVAL): empty input, no data rows, ragged row, empty or
 * non-numeric cell, target column missing, non-integer class label,
 * fewer than two classes.
 * Also KAF_EINVAL: duplicate or empty column name, a blank line with rows
 * after it, no feature column, more than KAF_DATA_MAX_CLASSES classes,
 * more than KAF_DATA_MAX_COLUMNS columns.
 */
int kaf_dataset_parse_csv(const char *text, size_t len, const char *source,
			  const char *target, enum kaf_task task,
			  struct kaf_dataset **out, struct kaf_error *err);

/*
 * Read path and parse it as above; KAF_EIO if it cannot be read,
 * KAF_EINVAL if it holds more than KAF_DATA_MAX_BYTES.
 */
int kaf_dataset_load_csv(const char *path, const char *target,
			 enum kaf_task task, struct kaf_dataset **out,
			 struct kaf_error *err);

/*
 * One of the built-in sets: iris, digits, wine, boston, breast_cancer.
 * KAF_EINVAL with the list of names if name is unknown.
 */
int kaf_dataset_builtin(const char *name, struct kaf_dataset **out,
			struct kaf_error *err);

void kaf_dataset_destroy(struct kaf_dataset *ds);

/* ---- facts about the built-in sets ---- */

/* Number of built-in sets and the i-th name (NULL past the end). */
int kaf_dataset_builtin_count(void);
const char *kaf_dataset_builtin_name(int i);

/* Protocol hidden width for a built-in set, or 0 if name is unknown. */
int kaf_dataset_builtin_hidden(const char *name);

#endif
