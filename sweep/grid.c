#include "grid.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data.h"
#include "rng.h"

const char *const kaf_axis_names[KAF_AXIS_COUNT] = {
	"dataset", "activation", "kernel", "precision", "init", "reg",
	"lambda", "opt", "lr", "epochs", "hidden", "calc_num", "standardize",
	"grad_limit", "bandwidth",
};

const char *const kaf_seeding_names[KAF_SEEDING_COUNT] = {
	"paired", "independent",
};

/* Experiment 3 of the protocol, one string per axis. */
static const char *const exp3_axes[KAF_AXIS_COUNT] = {
	[KAF_AXIS_DATASET] = "boston",
	[KAF_AXIS_ACTIVATION] = "kaf",
	[KAF_AXIS_KERNEL] = "naive",
	[KAF_AXIS_PRECISION] = "f32",
	[KAF_AXIS_INIT] = "xavier_uniform,kaiming_uniform",
	[KAF_AXIS_REG] = "none,l1,l2",
	[KAF_AXIS_LAMBDA] = "1e-4",
	[KAF_AXIS_OPT] = "sgd,rmsprop,adagrad,adam",
	[KAF_AXIS_LR] = "1e-5",
	[KAF_AXIS_EPOCHS] = "5",
	[KAF_AXIS_HIDDEN] = "20",
	[KAF_AXIS_CALC_NUM] = "50",
	[KAF_AXIS_STANDARDIZE] = "false",
	[KAF_AXIS_GRAD_LIMIT] = "0",
	[KAF_AXIS_BANDWIDTH] = "1.5",
};

static const char *const preset_names[] = {"exp1", "exp2", "exp3"};

/*
 * Experiment 1: every activation (K-AF in both evaluations) on the five
 * datasets in two settings each, exp_num runs per cell, traces kept.
 */
static const char exp1_spec[] =
	"activation = linear, relu, sigmoid, tanh, swish, mish, kaf\n"
	"kernel = naive, stable\n"
	"reg = none\n"
	"init = kaiming_uniform\n"
	"opt = sgd\n"
	"[iris/1]\ndataset = iris\nhidden = 4\nlr = 1e-1\n"
	"epochs = 1000\nruns = 3\ncalc_num = 30\n"
	"[iris/2]\ndataset = iris\nhidden = 4\nlr = 1e-2\n"
	"epochs = 1000\nruns = 3\ncalc_num = 30\n"
	"[digits/1]\ndataset = digits\nhidden = 100\nlr = 1e-2\n"
	"epochs = 2000\nruns = 3\ncalc_num = 36\n"
	"[digits/2]\ndataset = digits\nhidden = 100\nlr = 1e-3\n"
	"epochs = 10000\nruns = 3\ncalc_num = 36\n"
	"[wine/1]\ndataset = wine\nhidden = 40\nlr = 1e-3\n"
	"epochs = 3000\nruns = 3\ncalc_num = 27\n"
	"[wine/2]\ndataset = wine\nhidden = 40\nlr = 1e-4\nopt = adam\n"
	"epochs = 3000\nruns = 3\ncalc_num = 36\n"
	"[boston/1]\ndataset = boston\nhidden = 20\nlr = 1e-5\n"
	"epochs = 1000\nruns = 5\ncalc_num = 26\n"
	"[boston/2]\ndataset = boston\nhidden = 20\nlr = 1e-5\n"
	"init = xavier_uniform\nopt = adam\nepochs = 1000\nruns = 5\n"
	"calc_num = 26\n"
	"[breast_cancer/1]\ndataset = breast_cancer\nhidden = 30\n"
	"lr = 1e-3\nepochs = 1000\nruns = 5\ncalc_num = 29\n"
	"[breast_cancer/2]\ndataset = breast_cancer\nhidden = 30\n"
	"lr = 1e-3\nepochs = 1000\nruns = 5\ncalc_num = 285\n";

/*
 * Experiment 2: K-AF alone, one run per dataset, the link snapshotted.
 * The stable evaluation equals the naive one wherever that is finite and
 * keeps the picture when a naive row would be 0/0.
 */
static const char exp2_spec[] =
	"activation = kaf\nkernel = stable\nopt = sgd\n"
	"init = kaiming_uniform\nreg = none\nepochs = 1000\nruns = 1\n"
	"[iris]\ndataset = iris\nlr = 1e-1\nhidden = 4\ncalc_num = 30\n"
	"[digits]\ndataset = digits\nlr = 1e-1\nhidden = 100\n"
	"calc_num = 36\n"
	"[wine]\ndataset = wine\nlr = 1e-2\nhidden = 40\ncalc_num = 36\n"
	"[boston]\ndataset = boston\nlr = 1e-5\nhidden = 20\n"
	"calc_num = 26\n"
	"[breast_cancer]\ndataset = breast_cancer\nlr = 1e-2\n"
	"hidden = 30\ncalc_num = 285\n";

/* ---- values ---- */

static void axis_clear(struct kaf_axis_values *av)
{
	for (int i = 0; i < av->count; i++)
		free(av->values[i]);
	av->count = 0;
}

static void block_clear(struct kaf_block *b)
{
	for (int a = 0; a < KAF_AXIS_COUNT; a++)
		axis_clear(&b->axes[a]);
}

static void blocks_clear(struct kaf_grid *g)
{
	for (int i = 0; i < g->n_blocks; i++)
		block_clear(&g->blocks[i]);
	free(g->blocks);
	g->blocks = NULL;
	g->n_blocks = 0;
}

void kaf_grid_finish(struct kaf_grid *g)
{
	block_clear(&g->base);
	blocks_clear(g);
	free(g->cells);
	g->cells = NULL;
	g->n_cells = 0;
}

/* A deep copy of src into dst (which holds nothing). */
static int block_copy(struct kaf_block *dst, const struct kaf_block *src,
		      struct kaf_error *err)
{
	*dst = *src;
	for (int a = 0; a < KAF_AXIS_COUNT; a++)
		for (int i = 0; i < src->axes[a].count; i++)
			dst->axes[a].values[i] = NULL;
	for (int a = 0; a < KAF_AXIS_COUNT; a++)
		for (int i = 0; i < src->axes[a].count; i++)
			if (!(dst->axes[a].values[i] =
			      strdup(src->axes[a].values[i]))) {
				block_clear(dst);
				return kaf_error_set(err, KAF_ENOMEM,
						     "out of memory");
			}
	return KAF_OK;
}

/* Shortest text that reads back as exactly v. */
static void format_number(double v, char *buf, size_t size)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/*
 * Check one value of axis a and write its canonical text to out: the
 * name as given for choices, the shortest round-trip form for numbers.
 */
static int canonical_value(int a, const char *v, const char *what,
			   char *out, size_t size, struct kaf_error *err)
{
	struct kaf_config cfg = kaf_config_default();
	const char *axis = kaf_axis_names[a];
	char where[160];
	int rc;

	snprintf(where, sizeof(where), "%s: axis %s", what, axis);
	if (a == KAF_AXIS_DATASET) {
		char list[128] = "";

		for (int i = 0; i < kaf_dataset_builtin_count(); i++)
			if (!strcmp(kaf_dataset_builtin_name(i), v)) {
				snprintf(out, size, "%s", v);
				return KAF_OK;
			}
		for (int i = 0; i < kaf_dataset_builtin_count(); i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list),
				 "%s%s", i ? ", " : "",
				 kaf_dataset_builtin_name(i));
		return kaf_error_set(err, KAF_EINVAL, "%s: unknown value \"%s\" "
				     "(valid: %s)", where, v, list);
	}
	rc = kaf_cli_set_axis(&cfg, axis, v, where, err);
	if (rc)
		return rc;
	if (a == KAF_AXIS_LAMBDA || a == KAF_AXIS_LR ||
	    a == KAF_AXIS_GRAD_LIMIT || a == KAF_AXIS_BANDWIDTH) {
		double x = a == KAF_AXIS_LAMBDA ? cfg.lambda :
			   a == KAF_AXIS_LR ? cfg.lr :
			   a == KAF_AXIS_GRAD_LIMIT ? cfg.grad_limit :
			   cfg.bandwidth;

		format_number(x, out, size);
	} else if (a == KAF_AXIS_STANDARDIZE) {
		snprintf(out, size, "%s", cfg.standardize ? "true" : "false");
	} else if (a == KAF_AXIS_EPOCHS || a == KAF_AXIS_HIDDEN ||
		   a == KAF_AXIS_CALC_NUM) {
		snprintf(out, size, "%ld", strtol(v, NULL, 10));
	} else {
		snprintf(out, size, "%s", v);
	}
	return KAF_OK;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/* Add one value to a list being built, checked and canonical. */
static int add_value(struct kaf_axis_values *av, int a, char *tok,
		     const char *what, struct kaf_error *err)
{
	char canon[64], *v = trim(tok);
	int rc;

	if (*v == '\0')
		return kaf_error_set(err, KAF_EINVAL, "%s: axis %s has an "
				     "empty value", what, kaf_axis_names[a]);
	if (av->count == KAF_GRID_MAX_VALUES)
		return kaf_error_set(err, KAF_EINVAL, "%s: axis %s has more "
				     "than %d values", what, kaf_axis_names[a],
				     KAF_GRID_MAX_VALUES);
	rc = canonical_value(a, v, what, canon, sizeof(canon), err);
	if (rc)
		return rc;
	for (int i = 0; i < av->count; i++)
		if (!strcmp(av->values[i], canon))
			return kaf_error_set(err, KAF_EINVAL, "%s: axis %s "
					     "lists \"%s\" twice", what,
					     kaf_axis_names[a], v);
	av->values[av->count] = strdup(canon);
	if (!av->values[av->count])
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	av->count++;
	return KAF_OK;
}

/* Parse a comma-separated list (modified in place) into fresh values. */
static int parse_list(int a, char *list, const char *what,
		      struct kaf_axis_values *fresh, struct kaf_error *err)
{
	int rc = KAF_OK;

	memset(fresh, 0, sizeof(*fresh));
	if (*trim(list) == '\0')
		rc = kaf_error_set(err, KAF_EINVAL, "%s: axis %s has no values",
				   what, kaf_axis_names[a]);
	while (rc == KAF_OK && list) {
		char *comma = strchr(list, ',');

		if (comma)
			*comma = '\0';
		rc = add_value(fresh, a, list, what, err);
		list = comma ? comma + 1 : NULL;
	}
	if (rc)
		axis_clear(fresh);
	return rc;
}

/* Put a copy of values into axis a of block b. */
static int put_axis(struct kaf_block *b, int a,
		    const struct kaf_axis_values *values, struct kaf_error *err)
{
	struct kaf_axis_values copy = {0};

	for (int i = 0; i < values->count; i++) {
		copy.values[i] = strdup(values->values[i]);
		if (!copy.values[i]) {
			axis_clear(&copy);
			return kaf_error_set(err, KAF_ENOMEM, "out of memory");
		}
		copy.count++;
	}
	axis_clear(&b->axes[a]);
	b->axes[a] = copy;
	return KAF_OK;
}

/* ---- the cells ---- */

static long block_size(const struct kaf_block *b)
{
	long n = 1;

	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		n *= b->axes[a].count;
		if (n > KAF_GRID_MAX_CELLS)
			return KAF_GRID_MAX_CELLS + 1;
	}
	return n;
}

static int block_value_index(const struct kaf_block *b, long index, int a)
{
	for (int x = KAF_AXIS_COUNT - 1; x > a; x--)
		index /= b->axes[x].count;
	return (int)(index % b->axes[a].count);
}

/* The K-AF-only axes keep their first value for other activations. */
static bool redundant(const struct kaf_block *b, long index)
{
	int act = block_value_index(b, index, KAF_AXIS_ACTIVATION);

	if (!strcmp(b->axes[KAF_AXIS_ACTIVATION].values[act], "kaf"))
		return false;
	return block_value_index(b, index, KAF_AXIS_KERNEL) != 0 ||
	       block_value_index(b, index, KAF_AXIS_CALC_NUM) != 0 ||
	       block_value_index(b, index, KAF_AXIS_BANDWIDTH) != 0;
}

static const struct kaf_block *block_of(const struct kaf_grid *g, int i)
{
	return g->n_blocks ? &g->blocks[i] : &g->base;
}

/* Enumerate the cells again after a change. */
static int rebuild(struct kaf_grid *g, struct kaf_error *err)
{
	int nb = g->n_blocks ? g->n_blocks : 1;
	long total = 0, k = 0;
	struct kaf_cell_ref *cells;

	for (int i = 0; i < nb; i++) {
		total += block_size(block_of(g, i));
		if (total > KAF_GRID_MAX_CELLS)
			return kaf_error_set(err, KAF_EINVAL, "the grid has more "
					     "than %ld cells",
					     KAF_GRID_MAX_CELLS);
	}
	cells = malloc(sizeof(*cells) * (size_t)(total ? total : 1));
	if (!cells)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	for (int i = 0; i < nb; i++) {
		const struct kaf_block *b = block_of(g, i);
		long n = block_size(b);

		for (long j = 0; j < n; j++)
			if (!redundant(b, j))
				cells[k++] = (struct kaf_cell_ref){i, j};
	}
	free(g->cells);
	g->cells = cells;
	g->n_cells = k;
	return KAF_OK;
}

/* ---- assignments ---- */

static int set_key(struct kaf_grid *g, struct kaf_block *only,
		   const char *key, char *value, const char *what,
		   struct kaf_error *err)
{
	char where[160];
	long n;
	int s, rc;

	snprintf(where, sizeof(where), "%s: %s", what, key);
	value = trim(value);
	if (!strcmp(key, "runs")) {
		rc = kaf_cli_int(value, where, 1, KAF_GRID_MAX_RUNS, &n, err);
		if (rc)
			return rc;
		if (only) {
			only->runs = n;
			return KAF_OK;
		}
		g->base.runs = n;
		for (int i = 0; i < g->n_blocks; i++)
			g->blocks[i].runs = n;
		return KAF_OK;
	}
	if (!strcmp(key, "link_every")) {
		rc = kaf_cli_int(value, where, 0, 1000000000, &n, err);
		if (rc == KAF_OK)
			g->link_every = (int)n;
		return rc;
	}
	if (!strcmp(key, "seed"))
		return kaf_cli_u64(value, where, &g->seed, err);
	s = kaf_name_parse(kaf_seeding_names, KAF_SEEDING_COUNT, value, where,
			   err);
	if (s < 0)
		return s;
	g->seeding = (enum kaf_seeding)s;
	return KAF_OK;
}

static bool is_key(const char *key)
{
	return !strcmp(key, "runs") || !strcmp(key, "seed") ||
	       !strcmp(key, "seeding") || !strcmp(key, "link_every");
}

/* key = value into one block (only) or into the base and every block. */
static int assign(struct kaf_grid *g, struct kaf_block *only, char *key,
		  char *value, const char *what, struct kaf_error *err)
{
	struct kaf_axis_values fresh;
	char list[512] = "";
	int a = -1, rc;

	key = trim(key);
	if (is_key(key))
		return set_key(g, only, key, value, what, err);
	for (int x = 0; x < KAF_AXIS_COUNT; x++)
		if (!strcmp(kaf_axis_names[x], key))
			a = x;
	if (a < 0) {
		kaf_name_list(kaf_axis_names, KAF_AXIS_COUNT, list,
			      sizeof(list));
		return kaf_error_set(err, KAF_EINVAL, "%s: unknown axis "
				     "\"%s\" (valid: %s; also runs, seed, "
				     "seeding, link_every)", what, key, list);
	}
	rc = parse_list(a, value, what, &fresh, err);
	if (rc)
		return rc;
	if (only)
		rc = put_axis(only, a, &fresh, err);
	else
		rc = put_axis(&g->base, a, &fresh, err);
	for (int i = 0; !only && rc == KAF_OK && i < g->n_blocks; i++)
		rc = put_axis(&g->blocks[i], a, &fresh, err);
	axis_clear(&fresh);
	return rc;
}

int kaf_grid_set(struct kaf_grid *g, const char *assignment,
		 const char *what, struct kaf_error *err)
{
	char *copy = strdup(assignment), *eq;
	int rc;

	if (!copy)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	eq = strchr(copy, '=');
	if (!eq)
		rc = kaf_error_set(err, KAF_EINVAL, "%s: \"%s\" is not of the "
				   "form AXIS=V1,V2,...", what, assignment);
	else {
		*eq = '\0';
		rc = assign(g, NULL, copy, eq + 1, what, err);
	}
	free(copy);
	return rc ? rc : rebuild(g, err);
}

int kaf_grid_init(struct kaf_grid *g, struct kaf_error *err)
{
	memset(g, 0, sizeof(*g));
	g->base.runs = 1000;
	g->seeding = KAF_SEEDING_PAIRED;
	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		struct kaf_axis_values fresh;
		char list[128];
		int rc;

		snprintf(list, sizeof(list), "%s", exp3_axes[a]);
		rc = parse_list(a, list, "defaults", &fresh, err);
		if (rc == KAF_OK)
			g->base.axes[a] = fresh;
		if (rc) {
			kaf_grid_finish(g);
			return rc;
		}
	}
	return rebuild(g, err);
}

/* ---- spec text ---- */

/* Start a block named by "[name]" (line modified in place). */
static int start_block(struct kaf_grid *g, char *line, const char *what,
		       bool *sectioned, struct kaf_error *err)
{
	char *name = trim(line + 1), *close = strchr(name, ']');
	struct kaf_block *more;

	if (!close || close[1] != '\0' || close == name)
		return kaf_error_set(err, KAF_EINVAL, "%s: a section is "
				     "written [name]", what);
	*close = '\0';
	if (strlen(name) >= sizeof(g->base.name))
		return kaf_error_set(err, KAF_EINVAL, "%s: section name longer "
				     "than %zu bytes", what,
				     sizeof(g->base.name) - 1);
	if (!*sectioned) {
		/* The first section replaces any blocks of a preset. */
		blocks_clear(g);
		*sectioned = true;
	}
	for (int i = 0; i < g->n_blocks; i++)
		if (!strcmp(g->blocks[i].name, name))
			return kaf_error_set(err, KAF_EINVAL, "%s: section "
					     "[%s] appears twice", what, name);
	if (g->n_blocks == KAF_GRID_MAX_BLOCKS)
		return kaf_error_set(err, KAF_EINVAL, "%s: more than %d "
				     "sections", what, KAF_GRID_MAX_BLOCKS);
	more = realloc(g->blocks, sizeof(*more) * (size_t)(g->n_blocks + 1));
	if (!more)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	g->blocks = more;
	if (block_copy(&g->blocks[g->n_blocks], &g->base, err))
		return KAF_ENOMEM;
	snprintf(g->blocks[g->n_blocks].name, sizeof(g->base.name), "%s",
		 name);
	g->n_blocks++;
	return KAF_OK;
}

/* One line of a spec (modified in place); what names it in errors. */
static int spec_line(struct kaf_grid *g, char *line, const char *what,
		     bool *sectioned, struct kaf_error *err)
{
	char *hash = strchr(line, '#'), *body, *eq;

	if (hash)
		*hash = '\0';
	body = trim(line);
	if (*body == '\0')
		return KAF_OK;
	if (*body == '[')
		return start_block(g, body, what, sectioned, err);
	eq = strchr(body, '=');
	if (!eq)
		return kaf_error_set(err, KAF_EINVAL, "%s: \"%s\" is not of "
				     "the form axis = v1, v2", what, body);
	*eq = '\0';
	return assign(g, *sectioned ? &g->blocks[g->n_blocks - 1] : NULL,
		      body, eq + 1, what, err);
}

int kaf_grid_parse_spec(struct kaf_grid *g, const char *text, size_t len,
			const char *source, struct kaf_error *err)
{
	char what[512];
	int lineno = 0, rc = KAF_OK;
	bool sectioned = false;
	size_t at = 0;

	while (rc == KAF_OK && at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - text - at) : len - at;
		char *line;

		snprintf(what, sizeof(what), "%s:%d", source, ++lineno);
		if (n > KAF_GRID_MAX_LINE)
			return kaf_error_set(err, KAF_EINVAL, "%s: line longer "
					     "than %d bytes", what,
					     KAF_GRID_MAX_LINE);
		if (memchr(text + at, '\0', n))
			return kaf_error_set(err, KAF_EINVAL, "%s: NUL byte in "
					     "a text file", what);
		line = malloc(n + 1);
		if (!line)
			return kaf_error_set(err, KAF_ENOMEM, "out of memory");
		memcpy(line, text + at, n);
		line[n] = '\0';
		rc = spec_line(g, line, what, &sectioned, err);
		free(line);
		at += n + 1;
	}
	return rc ? rc : rebuild(g, err);
}

int kaf_grid_load_spec(struct kaf_grid *g, const char *path,
		       struct kaf_error *err)
{
	FILE *fp = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0, cap = 0;
	int rc;

	if (!fp)
		return kaf_error_set(err, KAF_EIO, "spec file %s: %s", path,
				     strerror(errno));
	for (;;) {
		if (len == cap) {
			char *more;

			cap = cap ? 2 * cap : 4096;
			more = cap > KAF_GRID_MAX_SPEC ? NULL
			       : realloc(text, cap);
			if (!more) {
				fclose(fp);
				free(text);
				return kaf_error_set(err, KAF_EINVAL, "spec file "
						     "%s: larger than %d bytes",
						     path, KAF_GRID_MAX_SPEC);
			}
			text = more;
		}
		size_t got = fread(text + len, 1, cap - len, fp);

		len += got;
		if (got == 0)
			break;
	}
	rc = ferror(fp) ? kaf_error_set(err, KAF_EIO, "spec file %s: read "
					"error", path)
			: kaf_grid_parse_spec(g, text, len, path, err);
	fclose(fp);
	free(text);
	return rc;
}

int kaf_grid_preset(struct kaf_grid *g, const char *name,
		    struct kaf_error *err)
{
	int p = kaf_name_parse(preset_names, 3, name, "--preset", err);
	const char *spec = p == 0 ? exp1_spec : exp2_spec;
	int rc;

	if (p < 0)
		return p;
	kaf_grid_finish(g);
	rc = kaf_grid_init(g, err);
	if (rc == KAF_OK && p < 2)
		rc = kaf_grid_parse_spec(g, spec, strlen(spec), name, err);
	if (rc)
		return rc;
	snprintf(g->preset, sizeof(g->preset), "%s", name);
	g->trace = p == 0;
	g->link_every = p == 1 ? 50 : 0;
	return KAF_OK;
}

/* ---- reading ---- */

long kaf_grid_cells(const struct kaf_grid *g)
{
	return g->n_cells;
}

const char *kaf_grid_value(const struct kaf_grid *g, long index,
			   enum kaf_axis a)
{
	const struct kaf_cell_ref *ref = &g->cells[index];
	const struct kaf_block *b = block_of(g, ref->block);

	return b->axes[a].values[block_value_index(b, ref->index, a)];
}

bool kaf_grid_varies(const struct kaf_grid *g, enum kaf_axis a)
{
	for (long i = 1; i < g->n_cells; i++)
		if (strcmp(kaf_grid_value(g, i, a), kaf_grid_value(g, 0, a)))
			return true;
	return false;
}

long kaf_grid_total_runs(const struct kaf_grid *g)
{
	long total = 0;

	for (long i = 0; i < g->n_cells; i++)
		total += block_of(g, g->cells[i].block)->runs;
	return total;
}

long kaf_grid_max_runs(const struct kaf_grid *g)
{
	long most = 0;

	for (int i = 0; i < (g->n_blocks ? g->n_blocks : 1); i++)
		if (block_of(g, i)->runs > most)
			most = block_of(g, i)->runs;
	return most;
}

void kaf_grid_cell(const struct kaf_grid *g, long index,
		   struct kaf_cell *out)
{
	const struct kaf_block *b = block_of(g, g->cells[index].block);
	struct kaf_error err;

	out->cfg = kaf_config_default();
	out->block = b->name;
	out->runs = b->runs;
	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		const char *v = kaf_grid_value(g, index, (enum kaf_axis)a);

		if (a == KAF_AXIS_DATASET)
			out->dataset = v;
		else
			/* Values were checked when they were set. */
			kaf_cli_set_axis(&out->cfg, kaf_axis_names[a], v,
					 "grid", &err);
	}
}

/* snprintf at buf + *used, counting what would have been written. */
static void append(char *buf, int size, int *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char *buf, int size, int *used, const char *fmt, ...)
{
	char *at = buf + (*used < size ? *used : size - 1);
	size_t room = (size_t)(*used < size ? size - *used : 1);
	va_list ap;

	va_start(ap, fmt);
	*used += vsnprintf(at, room, fmt, ap);
	va_end(ap);
}

int kaf_grid_spec_text(const struct kaf_grid *g, char *buf, int size)
{
	int used = 0;

	for (int i = 0; i < (g->n_blocks ? g->n_blocks : 1); i++) {
		const struct kaf_block *b = block_of(g, i);

		if (g->n_blocks)
			append(buf, size, &used, "[%s]\n", b->name);
		for (int a = 0; a < KAF_AXIS_COUNT; a++) {
			append(buf, size, &used, "%s = ", kaf_axis_names[a]);
			for (int v = 0; v < b->axes[a].count; v++)
				append(buf, size, &used, "%s%s", v ? ", " : "",
				       b->axes[a].values[v]);
			append(buf, size, &used, "\n");
		}
	}
	append(buf, size, &used, "seed = %llu\n",
	       (unsigned long long)g->seed);
	append(buf, size, &used, "seeding = %s\n",
	       kaf_seeding_names[g->seeding]);
	return used;
}

uint64_t kaf_grid_cell_key(const struct kaf_grid *g, long index)
{
	uint64_t key = 0;

	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		key = kaf_rng_derive(key, kaf_rng_hash_str(kaf_axis_names[a]));
		key = kaf_rng_derive(key, kaf_rng_hash_str(
			kaf_grid_value(g, index, (enum kaf_axis)a)));
	}
	return key;
}

uint64_t kaf_grid_run_seed(const struct kaf_grid *g, long index, long r)
{
	uint64_t base = g->seed;

	if (g->seeding == KAF_SEEDING_INDEPENDENT)
		base = kaf_rng_derive(base, kaf_grid_cell_key(g, index));
	return kaf_rng_derive(base, (uint64_t)r);
}
