/*
 * data.c - CSV parsing and the built-in datasets.
 *
 * The parser walks the text once, line by line, and keeps every cell of
 * the file in one (rows, columns) table that grows by doubling; only once
 * all rows are known is the table split into x and y. Nothing is sized
 * from what a file claims, so memory follows the bytes actually read.
 */
#include "data.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets_embed.h"

/* Longest cell text quoted back in a message; the rest is cut off. */
#define CELL_SHOWN 40

/* Room for "a, b, c, ..." in the missing-column message. */
#define NAME_LIST_MAX 240

struct builtin_info {
	const char *name;
	enum kaf_task task;
	int hidden;            /* protocol hidden width l1 */
};

/* Order and widths follow PROTOCOL.md, "Datasets". */
static const struct builtin_info builtins[] = {
	{ "iris", KAF_TASK_CLASSIFICATION, 4 },
	{ "digits", KAF_TASK_CLASSIFICATION, 100 },
	{ "wine", KAF_TASK_CLASSIFICATION, 40 },
	{ "boston", KAF_TASK_REGRESSION, 20 },
	{ "breast_cancer", KAF_TASK_CLASSIFICATION, 30 },
};

#define N_BUILTINS ((int)(sizeof(builtins) / sizeof(builtins[0])))

/* A piece of the input; not NUL-terminated. */
struct span {
	const char *p;
	size_t len;
};

struct parser {
	const char *source;
	const char *target_name;
	enum kaf_task task;
	struct kaf_error *err;
	const char *p;         /* next unread byte */
	const char *end;
	int line;              /* 1-based number of the last line read */
	char **names;          /* (ncols) header names, owned until moved */
	int ncols;
	size_t names_cap;
	int target;            /* column of the target, -1 until found */
	double *cells;         /* (nrows, ncols) row-major */
	size_t cells_cap;      /* doubles allocated in cells */
	int nrows;
	char *scratch;         /* NUL-terminated copy of one cell for strtod */
	size_t scratch_cap;
};

/* ---- small helpers ---- */

static char *copy_text(const char *p, size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		return NULL;
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static struct span trim(struct span s)
{
	while (s.len > 0 && is_space(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_space(s.p[s.len - 1]))
		s.len--;
	return s;
}

static bool is_blank(struct span s)
{
	return trim(s).len == 0;
}

/* Where the cell starting at p ends: its comma, or the end of the line. */
static const char *cell_end(const char *p, const char *end)
{
	const char *comma = memchr(p, ',', (size_t)(end - p));

	return comma ? comma : end;
}

static int shown(struct span s)
{
	return s.len < CELL_SHOWN ? (int)s.len : CELL_SHOWN;
}

static int no_memory(struct parser *ps)
{
	return kaf_error_set(ps->err, KAF_ENOMEM,
			     "%s: out of memory while parsing", ps->source);
}

/* Next line without its "\n" or "\r\n"; false once the text is used up. */
static bool next_line(struct parser *ps, struct span *line)
{
	const char *nl;

	if (ps->p >= ps->end)
		return false;
	nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
	line->p = ps->p;
	line->len = (size_t)((nl ? nl : ps->end) - ps->p);
	ps->p = nl ? nl + 1 : ps->end;
	if (line->len > 0 && line->p[line->len - 1] == '\r')
		line->len--;
	ps->line++;
	return true;
}

/* True if no line from here on holds anything but blanks. */
static bool rest_is_blank(struct parser *ps)
{
	struct span line;

	while (next_line(ps, &line)) {
		if (!is_blank(line))
			return false;
	}
	return true;
}

/* ---- header ---- */

/*
 * A quoted name runs to the closing quote, with "" standing for one quote,
 * so names may hold commas. *pp is left after the closing quote.
 */
static int unquote_name(struct parser *ps, const char **pp, const char *end,
			int col, char **name)
{
	const char *p = *pp + 1;
	char *s = malloc((size_t)(end - p) + 1);
	size_t n = 0;

	if (!s)
		return no_memory(ps);
	while (p < end && !(p[0] == '"' && (p + 1 == end || p[1] != '"'))) {
		s[n++] = *p;
		p += p[0] == '"' ? 2 : 1;
	}
	s[n] = '\0';
	*name = s;
	if (p == end)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:1: column %d: quote not closed",
				     ps->source, col + 1);
	*pp = p + 1;
	return 0;
}

/* One header cell at *pp; on return *pp is at the comma or the end. */
static int parse_name(struct parser *ps, const char **pp, const char *end,
		      int col, char **name)
{
	const char *stop;
	struct span s;
	int rc;

	while (*pp < end && is_space(**pp))
		(*pp)++;
	if (*pp < end && **pp == '"') {
		rc = unquote_name(ps, pp, end, col, name);
		if (rc)
			return rc;
		while (*pp < end && is_space(**pp))
			(*pp)++;
		if (*pp < end && **pp != ',')
			return kaf_error_set(ps->err, KAF_EINVAL,
					     "%s:1: column %d: text after the "
					     "closing quote", ps->source,
					     col + 1);
	} else {
		stop = cell_end(*pp, end);
		s = trim((struct span){ *pp, (size_t)(stop - *pp) });
		*pp = stop;
		*name = copy_text(s.p, s.len);
		if (!*name)
			return no_memory(ps);
	}
	if (**name == '\0')
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:1: column %d has an empty name",
				     ps->source, col + 1);
	return 0;
}

static int grow_names(struct parser *ps)
{
	size_t cap = ps->names_cap ? ps->names_cap * 2 : 16;
	char **names;

	if (ps->ncols == INT_MAX)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:1: too many columns", ps->source);
	if (cap > SIZE_MAX / sizeof(*names))
		return no_memory(ps);
	names = realloc(ps->names, cap * sizeof(*names));
	if (!names)
		return no_memory(ps);
	ps->names = names;
	ps->names_cap = cap;
	return 0;
}

static int parse_header(struct parser *ps, struct span line)
{
	const char *p = line.p;
	const char *end = line.p + line.len;
	int rc;

	if (is_blank(line))
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:1: header row is blank", ps->source);
	if (memchr(line.p, '\0', line.len))
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:1: header holds a NUL byte",
				     ps->source);
	for (;;) {
		if (ps->ncols == KAF_DATA_MAX_COLUMNS)
			return kaf_error_set(ps->err, KAF_EINVAL,
					     "%s:1: header has more than %d "
					     "columns", ps->source,
					     KAF_DATA_MAX_COLUMNS);
		if ((size_t)ps->ncols == ps->names_cap) {
			rc = grow_names(ps);
			if (rc)
				return rc;
		}
		ps->names[ps->ncols] = NULL;
		rc = parse_name(ps, &p, end, ps->ncols,
				&ps->names[ps->ncols]);
		ps->ncols++;   /* counted even on error, so it gets freed */
		if (rc)
			return rc;
		if (p == end)
			return 0;
		p++;           /* the comma */
	}
}

static int compare_name_refs(const void *a, const void *b)
{
	char **x = *(char **const *)a;
	char **y = *(char **const *)b;
	int c = strcmp(*x, *y);

	if (c)
		return c;
	return (x > y) - (x < y);
}

/*
 * Sorting pointers into names finds repeats in O(c log c), so a header
 * with a million columns cannot stall the parser. Equal names sort in file
 * order, so the message gives the first two columns of the repeated name.
 */
static int check_duplicates(struct parser *ps)
{
	char ***refs = malloc((size_t)ps->ncols * sizeof(*refs));
	int i, first, second, rc = 0;

	if (!refs)
		return no_memory(ps);
	for (i = 0; i < ps->ncols; i++)
		refs[i] = &ps->names[i];
	qsort(refs, (size_t)ps->ncols, sizeof(*refs), compare_name_refs);
	for (i = 1; i < ps->ncols && !rc; i++) {
		if (strcmp(*refs[i - 1], *refs[i]) != 0)
			continue;
		first = (int)(refs[i - 1] - ps->names) + 1;
		second = (int)(refs[i] - ps->names) + 1;
		rc = kaf_error_set(ps->err, KAF_EINVAL,
				   "%s:1: duplicate column name \"%s\" "
				   "(columns %d and %d)", ps->source,
				   *refs[i], first, second);
	}
	free(refs);
	return rc;
}

/* "a, b, c" cut short with "..." once it would not fit in size bytes. */
static void join_names(char *buf, size_t size, const char *const *names,
		       int n)
{
	size_t used = 0;
	int i, w;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
			     names[i]);
		if (w < 0 || (size_t)w + sizeof(", ...") > size - used) {
			snprintf(buf + used, size - used, "%s...",
				 i ? ", " : "");
			return;
		}
		used += (size_t)w;
	}
}

static int find_target(struct parser *ps)
{
	char list[NAME_LIST_MAX];
	int i;

	for (i = 0; i < ps->ncols; i++) {
		if (strcmp(ps->names[i], ps->target_name) == 0)
			break;
	}
	if (i == ps->ncols) {
		join_names(list, sizeof(list), (const char *const *)ps->names,
			   ps->ncols);
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s: no column named \"%s\" (columns: %s)",
				     ps->source, ps->target_name, list);
	}
	if (ps->ncols < 2)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:1: no feature columns besides \"%s\"",
				     ps->source, ps->target_name);
	ps->target = i;
	return 0;
}

/* ---- rows ---- */

static size_t count_cells(struct span line)
{
	size_t n = 1;
	const char *p = line.p;
	const char *end = line.p + line.len;

	while ((p = memchr(p, ',', (size_t)(end - p)))) {
		n++;
		p++;
	}
	return n;
}

static int reserve_row(struct parser *ps)
{
	size_t per_row = (size_t)ps->ncols;
	size_t limit = SIZE_MAX / sizeof(double) / per_row;
	size_t need, cap;
	double *cells;

	if (ps->nrows == INT_MAX || (size_t)ps->nrows + 1 > limit)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:%d: too many rows", ps->source,
				     ps->line);
	need = ((size_t)ps->nrows + 1) * per_row;
	if (need <= ps->cells_cap)
		return 0;
	/* Start at one row: a wide header alone must not reserve much. */
	cap = ps->cells_cap ? ps->cells_cap : per_row;
	while (cap < need)
		cap *= 2;
	if (cap / per_row > limit)
		cap = limit * per_row;
	cells = realloc(ps->cells, cap * sizeof(*cells));
	if (!cells)
		return no_memory(ps);
	ps->cells = cells;
	ps->cells_cap = cap;
	return 0;
}

/* strtod needs a terminated string; one buffer serves every cell. */
static int copy_to_scratch(struct parser *ps, struct span cell)
{
	char *s;

	if (cell.len + 1 > ps->scratch_cap) {
		s = realloc(ps->scratch, cell.len + 1);
		if (!s)
			return no_memory(ps);
		ps->scratch = s;
		ps->scratch_cap = cell.len + 1;
	}
	memcpy(ps->scratch, cell.p, cell.len);
	ps->scratch[cell.len] = '\0';
	return 0;
}

/*
 * strtod follows LC_NUMERIC: a program that switches to a locale with a
 * decimal comma must parse in the "C" locale or every cell fails here.
 */
static int parse_cell(struct parser *ps, struct span cell, int col,
		      double *v)
{
	const char *name = ps->names[col];
	char *stop;
	int rc;

	if (cell.len == 0)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:%d: column \"%s\": empty cell",
				     ps->source, ps->line, name);
	rc = copy_to_scratch(ps, cell);
	if (rc)
		return rc;
	*v = strtod(ps->scratch, &stop);
	if (stop != ps->scratch + cell.len)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:%d: column \"%s\": cell \"%.*s\" is "
				     "not a number", ps->source, ps->line,
				     name, shown(cell), cell.p);
	if (!isfinite(*v))
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:%d: column \"%s\": cell \"%.*s\" is "
				     "not finite", ps->source, ps->line, name,
				     shown(cell), cell.p);
	if (col == ps->target && ps->task == KAF_TASK_CLASSIFICATION &&
	    *v != floor(*v))
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:%d: column \"%s\": class label "
				     "\"%.*s\" is not an integer", ps->source,
				     ps->line, name, shown(cell), cell.p);
	return 0;
}

static int parse_row(struct parser *ps, struct span line)
{
	const char *p = line.p;
	const char *end = line.p + line.len;
	const char *stop;
	size_t count = count_cells(line);
	struct span cell;
	double *row;
	int c, rc;

	if (count != (size_t)ps->ncols)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:%d: row has %zu cells, header has %d",
				     ps->source, ps->line, count, ps->ncols);
	rc = reserve_row(ps);
	if (rc)
		return rc;
	row = ps->cells + (size_t)ps->nrows * (size_t)ps->ncols;
	for (c = 0; c < ps->ncols; c++) {
		stop = cell_end(p, end);
		cell = (struct span){ p, (size_t)(stop - p) };
		rc = parse_cell(ps, trim(cell), c, &row[c]);
		if (rc)
			return rc;
		p = stop < end ? stop + 1 : end;
	}
	ps->nrows++;
	return 0;
}

/* Rows up to the end; blank lines may only trail the last row. */
static int parse_rows(struct parser *ps)
{
	struct span line;
	int blank_line, rc;

	while (next_line(ps, &line)) {
		if (is_blank(line)) {
			blank_line = ps->line;
			if (rest_is_blank(ps))
				break;
			return kaf_error_set(ps->err, KAF_EINVAL,
					     "%s:%d: blank line before the end "
					     "of the data", ps->source,
					     blank_line);
		}
		rc = parse_row(ps, line);
		if (rc)
			return rc;
	}
	if (ps->nrows == 0)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s:2: no data rows after the header",
				     ps->source);
	return 0;
}

/* ---- building the dataset ---- */

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorted distinct values of t (n) into a new array; NULL if out of memory */
static double *distinct_values(const double *t, int n, int *count)
{
	double *v = malloc((size_t)n * sizeof(*v));
	int i, k = 0;

	if (!v)
		return NULL;
	memcpy(v, t, (size_t)n * sizeof(*v));
	qsort(v, (size_t)n, sizeof(*v), compare_doubles);
	for (i = 0; i < n; i++) {
		if (k == 0 || v[i] != v[k - 1])
			v[k++] = v[i];
	}
	*count = k;
	return v;
}

static int check_class_count(struct parser *ps, int k, double first)
{
	if (k < 2)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s: column \"%s\" holds one class (label "
				     "%.15g); classification needs at least "
				     "two", ps->source, ps->target_name, first);
	if (k > KAF_DATA_MAX_CLASSES)
		return kaf_error_set(ps->err, KAF_EINVAL,
				     "%s: column \"%s\" holds %d classes, more "
				     "than the limit of %d", ps->source,
				     ps->target_name, k, KAF_DATA_MAX_CLASSES);
	return 0;
}

/* Class index = rank of the label among the sorted distinct labels. */
static int map_classes(struct parser *ps, struct kaf_dataset *ds,
		       const double *t)
{
	double *classes;
	double *hit;
	int i, k, rc;

	classes = distinct_values(t, ds->n, &k);
	if (!classes)
		return no_memory(ps);
	rc = check_class_count(ps, k, classes[0]);
	if (rc)
		goto out;
	ds->e = k;
	ds->label = malloc((size_t)ds->n * sizeof(*ds->label));
	ds->y = calloc((size_t)ds->n * (size_t)k, sizeof(*ds->y));
	if (!ds->label || !ds->y) {
		rc = no_memory(ps);
		goto out;
	}
	for (i = 0; i < ds->n; i++) {
		hit = bsearch(&t[i], classes, (size_t)k, sizeof(*classes),
			      compare_doubles);
		assert(hit);
		ds->label[i] = (int)(hit - classes);
		ds->y[(size_t)i * (size_t)k + (size_t)ds->label[i]] = 1.0;
	}
out:
	free(classes);
	return rc;
}

/* Hand the header names to ds: features in file order, then the target. */
static int move_names(struct parser *ps, struct kaf_dataset *ds)
{
	int c, j = 0;

	ds->feature_names = calloc((size_t)ds->d, sizeof(char *));
	if (!ds->feature_names)
		return no_memory(ps);
	for (c = 0; c < ps->ncols; c++) {
		if (c == ps->target)
			ds->target_name = ps->names[c];
		else
			ds->feature_names[j++] = ps->names[c];
	}
	free(ps->names);
	ps->names = NULL;
	ps->ncols = 0;
	return 0;
}

/* Split the cell table into x and the target column t (n). */
static int split_columns(struct parser *ps, struct kaf_dataset *ds,
			 double **t)
{
	const double *row;
	int i, c, j;

	ds->x = malloc((size_t)ds->n * (size_t)ds->d * sizeof(*ds->x));
	*t = malloc((size_t)ds->n * sizeof(**t));
	if (!ds->x || !*t)
		return no_memory(ps);
	for (i = 0; i < ds->n; i++) {
		row = ps->cells + (size_t)i * (size_t)ps->ncols;
		j = 0;
		for (c = 0; c < ps->ncols; c++) {
			if (c == ps->target)
				(*t)[i] = row[c];
			else
				ds->x[(size_t)i * (size_t)ds->d + j++] = row[c];
		}
	}
	return 0;
}

static int build_dataset(struct parser *ps, struct kaf_dataset *ds)
{
	double *t = NULL;
	int rc;

	ds->task = ps->task;
	ds->n = ps->nrows;
	ds->d = ps->ncols - 1;
	ds->name = copy_text(ps->source, strlen(ps->source));
	if (!ds->name)
		return no_memory(ps);
	rc = split_columns(ps, ds, &t);
	if (!rc && ps->task == KAF_TASK_CLASSIFICATION) {
		rc = map_classes(ps, ds, t);
	} else if (!rc) {
		ds->e = 1;
		ds->y = t;
		t = NULL;
	}
	if (!rc)
		rc = move_names(ps, ds);
	free(t);
	return rc;
}

static void parser_finish(struct parser *ps)
{
	int i;

	for (i = 0; i < ps->ncols; i++)
		free(ps->names[i]);
	free(ps->names);
	free(ps->cells);
	free(ps->scratch);
}

/* ---- construction ---- */

static int parse_text(struct parser *ps)
{
	struct span line;
	int rc;

	if (!next_line(ps, &line) || (is_blank(line) && rest_is_blank(ps)))
		return kaf_error_set(ps->err, KAF_EINVAL, "%s: file is empty",
				     ps->source);
	rc = parse_header(ps, line);
	if (!rc)
		rc = check_duplicates(ps);
	if (!rc)
		rc = find_target(ps);
	if (!rc)
		rc = parse_rows(ps);
	return rc;
}

int kaf_dataset_parse_csv(const char *text, size_t len, const char *source,
			  const char *target, enum kaf_task task,
			  struct kaf_dataset **out, struct kaf_error *err)
{
	struct parser ps = {
		.source = source, .target_name = target, .task = task,
		.err = err, .p = text, .end = text + len, .target = -1,
	};
	struct kaf_dataset *ds = NULL;
	int rc;

	assert(text || len == 0);
	assert(source && target && out);
	*out = NULL;
	/* Spreadsheets often save UTF-8 with a byte order mark in front. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		ps.p += 3;
	rc = parse_text(&ps);
	if (!rc) {
		ds = calloc(1, sizeof(*ds));
		rc = ds ? build_dataset(&ps, ds) : no_memory(&ps);
	}
	parser_finish(&ps);
	if (rc) {
		kaf_dataset_destroy(ds);
		return rc;
	}
	*out = ds;
	return 0;
}

/*
 * Read in growing chunks rather than trusting a size from stat or ftell,
 * which pipes and /proc files do not report. The buffer stops one byte
 * past KAF_DATA_MAX_BYTES: holding that byte means the file is too big.
 */
static int read_file(const char *path, char **text, size_t *len,
		     struct kaf_error *err)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 0, n = 0;
	char *buf = NULL, *bigger;
	int rc = 0;

	if (!f)
		return kaf_error_set(err, KAF_EIO, "%s: cannot open: %s", path,
				     strerror(errno));
	do {
		if (n > KAF_DATA_MAX_BYTES)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > KAF_DATA_MAX_BYTES)
				cap = KAF_DATA_MAX_BYTES + 1;
			bigger = realloc(buf, cap);
			if (!bigger) {
				rc = kaf_error_set(err, KAF_ENOMEM,
						   "%s: out of memory", path);
				break;
			}
			buf = bigger;
		}
		n += fread(buf + n, 1, cap - n, f);
	} while (!feof(f) && !ferror(f));
	if (!rc && n > KAF_DATA_MAX_BYTES)
		rc = kaf_error_set(err, KAF_EINVAL, "%s: larger than %zu MiB, "
				   "the limit for a CSV file", path,
				   KAF_DATA_MAX_BYTES >> 20);
	if (!rc && ferror(f))
		rc = kaf_error_set(err, KAF_EIO, "%s: cannot read: %s", path,
				   strerror(errno));
	fclose(f);
	if (rc) {
		free(buf);
		return rc;
	}
	*text = buf;
	*len = n;
	return 0;
}

int kaf_dataset_load_csv(const char *path, const char *target,
			 enum kaf_task task, struct kaf_dataset **out,
			 struct kaf_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	assert(path && out);
	*out = NULL;
	rc = read_file(path, &text, &len, err);
	if (rc)
		return rc;
	rc = kaf_dataset_parse_csv(text, len, path, target, task, out, err);
	free(text);
	return rc;
}

static const struct builtin_info *find_builtin(const char *name)
{
	int i;

	for (i = 0; i < N_BUILTINS; i++) {
		if (strcmp(builtins[i].name, name) == 0)
			return &builtins[i];
	}
	return NULL;
}

static const struct kaf_builtin_csv *find_embedded(const char *name)
{
	int i;

	for (i = 0; i < kaf_builtin_csv_count; i++) {
		if (strcmp(kaf_builtin_csvs[i].name, name) == 0)
			return &kaf_builtin_csvs[i];
	}
	return NULL;
}

static int unknown_builtin(const char *name, struct kaf_error *err)
{
	const char *names[N_BUILTINS];
	char list[NAME_LIST_MAX];
	int i;

	for (i = 0; i < N_BUILTINS; i++)
		names[i] = builtins[i].name;
	join_names(list, sizeof(list), names, N_BUILTINS);
	return kaf_error_set(err, KAF_EINVAL,
			     "unknown dataset \"%s\" (built-in: %s)", name,
			     list);
}

int kaf_dataset_builtin(const char *name, struct kaf_dataset **out,
			struct kaf_error *err)
{
	const struct builtin_info *info;
	const struct kaf_builtin_csv *csv;
	char source[64];
	char *short_name;
	int rc;

	assert(name && out);
	*out = NULL;
	info = find_builtin(name);
	if (!info)
		return unknown_builtin(name, err);
	csv = find_embedded(info->name);
	if (!csv)
		return kaf_error_set(err, KAF_EINVAL, "built-in dataset \"%s\" "
				     "was not embedded in this build", name);
	/* Messages point at the committed file, core/datasets/<name>.csv. */
	snprintf(source, sizeof(source), "%s.csv", info->name);
	rc = kaf_dataset_parse_csv(csv->text, csv->len, source, "target",
				   info->task, out, err);
	if (rc)
		return rc;
	short_name = copy_text(info->name, strlen(info->name));
	if (!short_name) {
		kaf_dataset_destroy(*out);
		*out = NULL;
		return kaf_error_set(err, KAF_ENOMEM, "%s: out of memory",
				     name);
	}
	free((*out)->name);
	(*out)->name = short_name;
	return 0;
}

void kaf_dataset_destroy(struct kaf_dataset *ds)
{
	int i;

	if (!ds)
		return;
	if (ds->feature_names) {
		for (i = 0; i < ds->d; i++)
			free(ds->feature_names[i]);
	}
	free(ds->feature_names);
	free(ds->target_name);
	free(ds->label);
	free(ds->y);
	free(ds->x);
	free(ds->name);
	free(ds);
}

/* ---- facts about the built-in sets ---- */

int kaf_dataset_builtin_count(void)
{
	return N_BUILTINS;
}

const char *kaf_dataset_builtin_name(int i)
{
	if (i < 0 || i >= N_BUILTINS)
		return NULL;
	return builtins[i].name;
}

int kaf_dataset_builtin_hidden(const char *name)
{
	const struct builtin_info *info = name ? find_builtin(name) : NULL;

	return info ? info->hidden : 0;
}
