/*
 * model.c - names, defaults, validation, and the random plan of a run.
 *
 * Everything random about a run is decided here, in float64, from streams
 * keyed by cfg->seed: the shuffled split, the calc set and the initial
 * weights. The engine then runs the plan in the configured precision.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "rng.h"

const char *const kaf_activation_names[KAF_ACT_COUNT] = {
	"linear", "relu", "sigmoid", "tanh", "swish", "mish", "kaf",
};
const char *const kaf_init_names[KAF_INIT_COUNT] = {
	"xavier_uniform", "kaiming_uniform", "kaiming_normal",
};
const char *const kaf_reg_names[KAF_REG_COUNT] = {"none", "l1", "l2"};
const char *const kaf_opt_names[KAF_OPT_COUNT] = {
	"sgd", "momentum", "rmsprop", "adagrad", "adam",
};
const char *const kaf_precision_names[KAF_PREC_COUNT] = {"f32", "f64"};
const char *const kaf_kernel_names[KAF_KERNEL_COUNT] = {"naive", "stable"};
const char *const kaf_cause_names[KAF_CAUSE_COUNT] = {
	"none", "kernel_underflow", "nonfinite_loss", "nonfinite_grad",
	"grad_limit",
};

void kaf_name_list(const char *const *names, int count, char *buf, int size)
{
	int used = 0;

	buf[0] = '\0';
	for (int i = 0; i < count && used < size; i++)
		used += snprintf(buf + used, (size_t)(size - used), "%s%s",
				 i ? ", " : "", names[i]);
}

int kaf_name_parse(const char *const *names, int count, const char *s,
		   const char *what, struct kaf_error *err)
{
	char list[256];

	for (int i = 0; i < count; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	kaf_name_list(names, count, list, sizeof(list));
	return kaf_error_set(err, KAF_EINVAL,
			     "%s: unknown value \"%s\" (valid: %s)", what, s,
			     list);
}

struct kaf_config kaf_config_default(void)
{
	return (struct kaf_config){
		.activation = KAF_ACT_KAF,
		.init = KAF_INIT_XAVIER_UNIFORM,
		.reg = KAF_REG_NONE,
		.lambda = 1e-4,
		.opt = KAF_OPT_SGD,
		.lr = 1e-5,
		.epochs = 5,
		.hidden = 0,
		.calc_num = 50,
		.precision = KAF_PREC_F32,
		.kernel = KAF_KERNEL_NAIVE,
		.standardize = false,
		.grad_limit = 0,
		.bandwidth = 1.5,
		.seed = 0,
		.train_frac = 0.75,
	};
}

/* Training rows for n rows: the complement of a rounded-up test share. */
static int train_rows(int n, double train_frac)
{
	return n - (int)ceil((1.0 - train_frac) * n - 1e-9);
}

static int hidden_of(const struct kaf_config *cfg,
		     const struct kaf_dataset *ds)
{
	int l = cfg->hidden;

	if (l <= 0)
		l = kaf_dataset_builtin_hidden(ds->name);
	return l > 0 ? l : 20;
}

int kaf_config_check(const struct kaf_config *cfg,
		     const struct kaf_dataset *ds, struct kaf_error *err)
{
	int n_tr = train_rows(ds->n, cfg->train_frac);

	if (!(cfg->lr > 0) || !isfinite(cfg->lr))
		return kaf_error_set(err, KAF_EINVAL,
				     "lr must be a positive number, got %g",
				     cfg->lr);
	if (cfg->epochs < 1)
		return kaf_error_set(err, KAF_EINVAL,
				     "epochs must be at least 1, got %d",
				     cfg->epochs);
	if (cfg->hidden < 0 || cfg->hidden > 100000)
		return kaf_error_set(err, KAF_EINVAL,
				     "hidden must be in 1..100000, got %d",
				     cfg->hidden);
	if (!(cfg->lambda >= 0) || !isfinite(cfg->lambda))
		return kaf_error_set(err, KAF_EINVAL,
				     "lambda must be >= 0, got %g",
				     cfg->lambda);
	if (!(cfg->grad_limit >= 0))
		return kaf_error_set(err, KAF_EINVAL,
				     "grad_limit must be >= 0 (0: none), got %g",
				     cfg->grad_limit);
	if (!(cfg->bandwidth != 0) || !isfinite(cfg->bandwidth))
		return kaf_error_set(err, KAF_EINVAL,
				     "bandwidth must be finite and non-zero, "
				     "got %g", cfg->bandwidth);
	if (!(cfg->train_frac > 0 && cfg->train_frac < 1) || n_tr < 2 ||
	    n_tr >= ds->n)
		return kaf_error_set(err, KAF_EINVAL,
				     "dataset %s: %d rows cannot be split into "
				     "training and validation rows",
				     ds->name, ds->n);
	if (cfg->activation == KAF_ACT_KAF &&
	    (cfg->calc_num < 2 || cfg->calc_num > n_tr))
		return kaf_error_set(err, KAF_EINVAL,
				     "calc_num must be in 2..%d (training rows "
				     "of %s), got %d", n_tr, ds->name,
				     cfg->calc_num);
	return KAF_OK;
}

/* ---- the plan ---- */

static double init_bound(enum kaf_init init, int fan_in, int fan_out)
{
	switch (init) {
	case KAF_INIT_XAVIER_UNIFORM:
		return sqrt(6.0 / (fan_in + fan_out));
	case KAF_INIT_KAIMING_UNIFORM:
		return sqrt(6.0 / fan_in);
	default:
		return sqrt(2.0 / fan_in);   /* standard deviation */
	}
}

void kaf_init_fill(double *w, int rows, int cols, enum kaf_init init,
		   uint64_t seed, int stream)
{
	struct kaf_rng rng;
	double b = init_bound(init, cols, rows);

	kaf_rng_init(&rng, seed, stream);
	for (int i = 0; i < rows * cols; i++) {
		if (init == KAF_INIT_KAIMING_NORMAL)
			w[i] = b * kaf_rng_normal(&rng);
		else
			w[i] = b * (2.0 * kaf_rng_uniform(&rng) - 1.0);
	}
}

/* Fisher-Yates prefix: the first k entries of idx become a sample. */
static void sample(int *idx, int n, int k, uint64_t seed,
		   enum kaf_stream stream)
{
	struct kaf_rng rng;

	kaf_rng_init(&rng, seed, stream);
	for (int i = 0; i < n; i++)
		idx[i] = i;
	for (int i = 0; i < k && i < n - 1; i++) {
		int j = i + (int)kaf_rng_below(&rng, (uint64_t)(n - i));
		int t = idx[i];

		idx[i] = idx[j];
		idx[j] = t;
	}
}

static void standardize(const struct kaf_dataset *ds, const int *train,
			int n, double *mu, double *sd)
{
	int d = ds->d;

	for (int k = 0; k < d; k++) {
		double s = 0, ss = 0;

		for (int i = 0; i < n; i++)
			s += ds->x[(size_t)train[i] * d + k];
		mu[k] = s / n;
		for (int i = 0; i < n; i++) {
			double r = ds->x[(size_t)train[i] * d + k] - mu[k];

			ss += r * r;
		}
		/* A constant feature is centred and left unscaled. */
		sd[k] = ss > 0 ? sqrt(ss / n) : 1.0;
	}
}

int kaf_train(const struct kaf_dataset *ds, const struct kaf_config *cfg,
	      const struct kaf_hooks *hooks, struct kaf_result *res,
	      struct kaf_error *err)
{
	int rc = kaf_config_check(cfg, ds, err);
	int n = ds->n, d = ds->d, e = ds->e, l = hidden_of(cfg, ds);
	int n_tr = train_rows(n, cfg->train_frac);
	int c = cfg->activation == KAF_ACT_KAF ? cfg->calc_num : 0;
	int *perm, *calc;
	double *mu, *sd, *w1, *w2;

	if (rc)
		return rc;
	/* Doubles first: after an odd count of ints they lose alignment. */
	mu = malloc(sizeof(double) * (size_t)(2 * d + l * d + e * l) +
		    sizeof(int) * (size_t)(n + n_tr));
	if (!mu)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	sd = mu + d;
	w1 = sd + d;
	w2 = w1 + l * d;
	perm = (int *)(w2 + e * l);
	calc = perm + n;

	sample(perm, n, n, cfg->seed, KAF_STREAM_SPLIT);
	sample(calc, n_tr, c, cfg->seed, KAF_STREAM_CALC);
	if (cfg->standardize)
		standardize(ds, perm, n_tr, mu, sd);
	kaf_init_fill(w1, l, d, cfg->init, cfg->seed, KAF_STREAM_W1);
	kaf_init_fill(w2, e, l, cfg->init, cfg->seed, KAF_STREAM_W2);

	struct kaf_plan plan = {
		.d = d, .l = l, .e = e, .n = n_tr, .nv = n - n_tr, .c = c,
		.x = ds->x, .y = ds->y, .train = perm, .val = perm + n_tr,
		.calc = calc, .mu = cfg->standardize ? mu : NULL,
		.sd = cfg->standardize ? sd : NULL, .w1 = w1, .w2 = w2,
		.h = cfg->bandwidth,
		.classification = ds->task == KAF_TASK_CLASSIFICATION,
	};
	*res = (struct kaf_result){
		.cause = KAF_CAUSE_NONE, .step = -1, .n_train = n_tr,
		.n_val = n - n_tr, .train_loss = NAN, .val_loss = NAN,
		.accuracy = NAN, .val_mae = NAN, .bandwidth = NAN,
	};
	if (cfg->precision == KAF_PREC_F32)
		rc = kaf_engine_train_f32(&plan, cfg, hooks, res, err);
	else
		rc = kaf_engine_train_f64(&plan, cfg, hooks, res, err);
	free(mu);
	return rc;
}

/* ---- probes ---- */

int kaf_probe_run(const struct kaf_probe *p, struct kaf_probe_out *out,
		  struct kaf_error *err)
{
	int *rows = malloc(sizeof(int) * (size_t)p->n);
	int rc;

	if (!rows)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	for (int i = 0; i < p->n; i++)
		rows[i] = i;

	struct kaf_plan plan = {
		.d = p->d, .l = p->l, .e = p->e, .n = p->n, .nv = 0,
		.c = p->c, .x = p->x, .y = p->y, .train = rows, .val = rows,
		.calc = p->calc, .w1 = p->w1, .w2 = p->w2, .h = p->h,
	};
	if (p->precision == KAF_PREC_F32)
		rc = kaf_engine_probe_f32(&plan, p, out, err);
	else
		rc = kaf_engine_probe_f64(&plan, p, out, err);
	free(rows);
	return rc;
}

int kaf_probe_optim(enum kaf_opt opt, double lr, int n, double *w,
		    const double *grads, int steps, struct kaf_error *err)
{
	return kaf_engine_optim_f64(opt, lr, n, w, grads, steps, err);
}
