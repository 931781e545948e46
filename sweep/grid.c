#include "grid.h"

#include <errno.h>
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

static const char *const preset_names[] = {"exp3"};

/* ---- values ---- */

static void axis_clear(struct kaf_axis_values *av)
{
	for (int i = 0; i < av->count; i++)
		free(av->values[i]);
	av->count = 0;
}

void kaf_grid_finish(struct kaf_grid *g)
{
	for (int a = 0; a < KAF_AXIS_COUNT; a++)
		axis_clear(&g->axes[a]);
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

static int find_axis(const char *name)
{
	for (int a = 0; a < KAF_AXIS_COUNT; a++)
		if (!strcmp(kaf_axis_names[a], name))
			return a;
	return -1;
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

/* Replace axis a by the comma-separated list (modified in place). */
static int set_axis_list(struct kaf_grid *g, int a, char *list,
			 const char *what, struct kaf_error *err)
{
	struct kaf_axis_values fresh = {0};
	int rc = KAF_OK;

	if (*trim(list) == '\0')
		rc = kaf_error_set(err, KAF_EINVAL, "%s: axis %s has no values",
				   what, kaf_axis_names[a]);
	while (rc == KAF_OK && list) {
		char *comma = strchr(list, ',');

		if (comma)
			*comma = '\0';
		rc = add_value(&fresh, a, list, what, err);
		list = comma ? comma + 1 : NULL;
	}
	if (rc) {
		axis_clear(&fresh);
		return rc;
	}
	axis_clear(&g->axes[a]);
	g->axes[a] = fresh;
	return KAF_OK;
}

/* ---- the keys that are not axes ---- */

static int set_key(struct kaf_grid *g, const char *key, char *value,
		   const char *what, struct kaf_error *err)
{
	char where[160];
	long runs;
	int s;

	snprintf(where, sizeof(where), "%s: %s", what, key);
	value = trim(value);
	if (!strcmp(key, "runs")) {
		int rc = kaf_cli_int(value, where, 1, KAF_GRID_MAX_RUNS, &runs,
				     err);

		if (rc == KAF_OK)
			g->runs = runs;
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

static int assign(struct kaf_grid *g, char *key, char *value,
		  const char *what, struct kaf_error *err)
{
	char list[512] = "";
	int a;

	key = trim(key);
	if (!strcmp(key, "runs") || !strcmp(key, "seed") ||
	    !strcmp(key, "seeding"))
		return set_key(g, key, value, what, err);
	a = find_axis(key);
	if (a >= 0)
		return set_axis_list(g, a, value, what, err);
	kaf_name_list(kaf_axis_names, KAF_AXIS_COUNT, list, sizeof(list));
	return kaf_error_set(err, KAF_EINVAL, "%s: unknown axis \"%s\" "
			     "(valid: %s; also runs, seed, seeding)", what,
			     key, list);
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
		rc = assign(g, copy, eq + 1, what, err);
	}
	free(copy);
	return rc;
}

int kaf_grid_init(struct kaf_grid *g, struct kaf_error *err)
{
	memset(g, 0, sizeof(*g));
	g->runs = 1000;
	g->seeding = KAF_SEEDING_PAIRED;
	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		char list[128];
		int rc;

		snprintf(list, sizeof(list), "%s", exp3_axes[a]);
		rc = set_axis_list(g, a, list, "defaults", err);
		if (rc) {
			kaf_grid_finish(g);
			return rc;
		}
	}
	return KAF_OK;
}

int kaf_grid_preset(struct kaf_grid *g, const char *name,
		    struct kaf_error *err)
{
	int p = kaf_name_parse(preset_names, 1, name, "--preset", err);
	int rc;

	if (p < 0)
		return p;
	kaf_grid_finish(g);
	rc = kaf_grid_init(g, err);
	if (rc == KAF_OK)
		snprintf(g->preset, sizeof(g->preset), "%s", name);
	return rc;
}

/* One line of a spec (modified in place); source names it in errors. */
static int spec_line(struct kaf_grid *g, char *line, const char *what,
		     struct kaf_error *err)
{
	char *hash = strchr(line, '#'), *body, *eq;

	if (hash)
		*hash = '\0';
	body = trim(line);
	if (*body == '\0')
		return KAF_OK;
	eq = strchr(body, '=');
	if (!eq)
		return kaf_error_set(err, KAF_EINVAL, "%s: \"%s\" is not of "
				     "the form axis = v1, v2", what, body);
	*eq = '\0';
	return assign(g, body, eq + 1, what, err);
}

int kaf_grid_parse_spec(struct kaf_grid *g, const char *text, size_t len,
			const char *source, struct kaf_error *err)
{
	char what[512];
	int lineno = 0, rc = KAF_OK;
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
		rc = spec_line(g, line, what, err);
		free(line);
		at += n + 1;
	}
	return rc;
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
			if (cap > KAF_GRID_MAX_SPEC) {
				fclose(fp);
				free(text);
				return kaf_error_set(err, KAF_EINVAL, "spec file "
						     "%s: larger than %d bytes",
						     path, KAF_GRID_MAX_SPEC);
			}
			more = realloc(text, cap);
			if (!more) {
				fclose(fp);
				free(text);
				return kaf_error_set(err, KAF_ENOMEM,
						     "out of memory");
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

/* ---- reading ---- */

long kaf_grid_cells(const struct kaf_grid *g)
{
	long n = 1;

	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		n *= g->axes[a].count;
		if (n > KAF_GRID_MAX_CELLS)
			return KAF_GRID_MAX_CELLS + 1;
	}
	return n;
}

int kaf_grid_value_index(const struct kaf_grid *g, long index,
			 enum kaf_axis a)
{
	for (int b = KAF_AXIS_COUNT - 1; b > (int)a; b--)
		index /= g->axes[b].count;
	return (int)(index % g->axes[a].count);
}

void kaf_grid_cell(const struct kaf_grid *g, long index,
		   struct kaf_cell *out)
{
	struct kaf_error err;

	out->cfg = kaf_config_default();
	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		const char *v = g->axes[a].values[
			kaf_grid_value_index(g, index, (enum kaf_axis)a)];

		if (a == KAF_AXIS_DATASET)
			out->dataset = v;
		else
			/* Values were checked when they were set. */
			kaf_cli_set_axis(&out->cfg, kaf_axis_names[a], v,
					 "grid", &err);
	}
}

int kaf_grid_spec_text(const struct kaf_grid *g, char *buf, int size)
{
	int used = 0;

#define PUT(...)                                                          \
	used += snprintf(buf + (used < size ? used : size),               \
			 (size_t)(used < size ? size - used : 0), __VA_ARGS__)

	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		PUT("%s = ", kaf_axis_names[a]);
		for (int i = 0; i < g->axes[a].count; i++)
			PUT("%s%s", i ? ", " : "", g->axes[a].values[i]);
		PUT("\n");
	}
	PUT("seed = %llu\n", (unsigned long long)g->seed);
	PUT("seeding = %s\n", kaf_seeding_names[g->seeding]);
#undef PUT
	return used;
}

uint64_t kaf_grid_cell_key(const struct kaf_grid *g, long index)
{
	uint64_t key = 0;

	for (int a = 0; a < KAF_AXIS_COUNT; a++) {
		int v = kaf_grid_value_index(g, index, (enum kaf_axis)a);

		key = kaf_rng_derive(key, kaf_rng_hash_str(kaf_axis_names[a]));
		key = kaf_rng_derive(key,
				     kaf_rng_hash_str(g->axes[a].values[v]));
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
