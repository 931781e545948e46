/*
 * model.h - one training run of the two-layer network with a chosen output
 * activation, K-AF included, as defined by the study's protocol.
 *
 *   x (d) --W1 (l, d)--> ReLU --W2 (e, l)--> z (e) --phi--> y_hat (e)
 *
 * A run is fully described by a struct kaf_config and a dataset: the split,
 * the calc set and the initial weights are drawn from streams keyed by
 * cfg->seed, so the same config gives bit-identical results on any thread.
 * The arithmetic runs in the configured precision (float32 or float64) with
 * IEEE semantics, so non-finite values and underflow happen where the
 * mainstream frameworks would see them.
 *
 * Memory: kaf_train allocates its workspace once on entry and frees it on
 * return; nothing is allocated per step. Thread-safe: runs share only the
 * read-only dataset.
 *
 * Errors: a bad config returns KAF_EINVAL with a message naming the field
 * and value. Divergence is not an error: it is a result.
 */
#ifndef KAF_MODEL_H
#define KAF_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "data.h"
#include "error.h"

/* ---- the choices, each with a name table ---- */

enum kaf_activation {
	KAF_ACT_LINEAR,
	KAF_ACT_RELU,
	KAF_ACT_SIGMOID,
	KAF_ACT_TANH,
	KAF_ACT_SWISH,
	KAF_ACT_MISH,
	KAF_ACT_KAF,
	KAF_ACT_COUNT,
};

enum kaf_init {
	KAF_INIT_XAVIER_UNIFORM,
	KAF_INIT_KAIMING_UNIFORM,
	KAF_INIT_KAIMING_NORMAL,
	KAF_INIT_COUNT,
};

enum kaf_reg {
	KAF_REG_NONE,
	KAF_REG_L1,
	KAF_REG_L2,
	KAF_REG_COUNT,
};

enum kaf_opt {
	KAF_OPT_SGD,
	KAF_OPT_MOMENTUM,
	KAF_OPT_RMSPROP,
	KAF_OPT_ADAGRAD,
	KAF_OPT_ADAM,
	KAF_OPT_COUNT,
};

enum kaf_precision {
	KAF_PREC_F32,
	KAF_PREC_F64,
	KAF_PREC_COUNT,
};

enum kaf_kernel {
	KAF_KERNEL_NAIVE,
	KAF_KERNEL_STABLE,
	KAF_KERNEL_COUNT,
};

/* Why a run stopped early; KAF_CAUSE_NONE for a run that finished. */
enum kaf_cause {
	KAF_CAUSE_NONE,
	KAF_CAUSE_KERNEL_UNDERFLOW,  /* every kernel weight of a row was 0 */
	KAF_CAUSE_NONFINITE_LOSS,    /* loss NaN or infinite, other reason */
	KAF_CAUSE_NONFINITE_GRAD,    /* some gradient NaN or infinite */
	KAF_CAUSE_GRAD_LIMIT,        /* gradient L2 norm above the limit */
	KAF_CAUSE_COUNT,
};

extern const char *const kaf_activation_names[KAF_ACT_COUNT];
extern const char *const kaf_init_names[KAF_INIT_COUNT];
extern const char *const kaf_reg_names[KAF_REG_COUNT];
extern const char *const kaf_opt_names[KAF_OPT_COUNT];
extern const char *const kaf_precision_names[KAF_PREC_COUNT];
extern const char *const kaf_kernel_names[KAF_KERNEL_COUNT];
extern const char *const kaf_cause_names[KAF_CAUSE_COUNT];

/*
 * Index of s in names[0..count), or KAF_EINVAL with a message listing the
 * valid choices; what names the thing being parsed ("--opt", "line 3").
 */
int kaf_name_parse(const char *const *names, int count, const char *s,
		   const char *what, struct kaf_error *err);

/* Write "a, b, c" into buf. */
void kaf_name_list(const char *const *names, int count, char *buf,
		   int size);

/* ---- configuration ---- */

struct kaf_config {
	enum kaf_activation activation;
	enum kaf_init init;
	enum kaf_reg reg;
	double lambda;            /* regularizer strength */
	enum kaf_opt opt;
	double lr;                /* learning rate */
	int epochs;               /* full-batch steps */
	int hidden;               /* l; 0 = the dataset's protocol width */
	int calc_num;             /* c, rows in the K-AF calc set */
	enum kaf_precision precision;
	enum kaf_kernel kernel;
	bool standardize;         /* train-set mean and deviation */
	double grad_limit;        /* 0 = no limit */
	double bandwidth;         /* initial h */
	uint64_t seed;            /* key of every random stream of the run */
	double train_frac;        /* share of rows for training */
};

/* The protocol's defaults (experiment 3's settings, seed 0). */
struct kaf_config kaf_config_default(void);

/* Check cfg against ds; KAF_EINVAL naming the field on failure. */
int kaf_config_check(const struct kaf_config *cfg,
		     const struct kaf_dataset *ds, struct kaf_error *err);

/* ---- results ---- */

struct kaf_result {
	bool diverged;
	enum kaf_cause cause;
	int step;               /* 0-based step of divergence, -1 if none */
	int steps;              /* steps taken, including a diverged one */
	int zero_denominators;  /* rows whose kernel weights all underflowed */
	double train_loss;      /* MSE at the last step taken */
	double val_loss;        /* validation MSE after the last update */
	double accuracy;        /* validation accuracy; NAN for regression */
	double val_mae;         /* validation MAE; NAN for classification */
	double max_grad_norm;   /* largest gradient L2 norm seen */
	double bandwidth;       /* final h */
	int n_train;
	int n_val;
};

/* One line of the per-epoch table, handed to kaf_hooks.on_epoch. */
struct kaf_epoch {
	int epoch;              /* 0-based step */
	double train_loss;      /* MSE before this step's update */
	double val_loss;        /* after the update; NAN if not evaluated */
	double grad_norm;
	double bandwidth;       /* after the update */
};

/*
 * A snapshot of the learned K-AF link y_hat_k(z) at one step: for every
 * output k, the link on `points` values of z evenly spanning the range
 * the training rows reach, and the calc rows (z_j, y_j) that define it.
 * It is the link of that step's forward pass (before its update), always
 * evaluated in the stable form, which equals the naive one wherever that
 * is finite and is defined where a naive row would be 0/0. Arrays belong
 * to the engine and live until the callback returns.
 */
struct kaf_link {
	int epoch;              /* 0-based step */
	int e, points, c;
	double h;
	const double *z;        /* (e, points) */
	const double *yhat;     /* (e, points) */
	const double *calc_z;   /* (e, c) */
	const double *calc_y;   /* (e, c) */
};

/*
 * Optional observers. on_epoch is called every eval_every steps (and at
 * the last step) with the validation loss evaluated; eval_every 0 means
 * only the final evaluation is done. on_link is called every link_every
 * steps and at the last step, for K-AF runs. A non-zero return from
 * either stops the run.
 */
struct kaf_hooks {
	int eval_every;
	int (*on_epoch)(void *ctx, const struct kaf_epoch *ep);
	int link_every;
	int link_points;        /* 0: 101 */
	int (*on_link)(void *ctx, const struct kaf_link *link);
	void *ctx;
};

/*
 * Train one network on ds as cfg says; hooks may be NULL. Returns 0 with
 * res filled (diverged or not), KAF_EINVAL for a bad config, KAF_ENOMEM.
 */
int kaf_train(const struct kaf_dataset *ds, const struct kaf_config *cfg,
	      const struct kaf_hooks *hooks, struct kaf_result *res,
	      struct kaf_error *err);

/* ---- direct access to the math, for tests and tools ---- */

/*
 * A fixed network on fixed data: one forward and backward pass in the
 * requested precision through the same code that training uses. Arrays in
 * PyTorch layout, caller-owned, double: inputs are rounded to float32 for
 * KAF_PREC_F32. The n rows are training rows (leave-one-out applies).
 */
struct kaf_probe {
	int n, d, l, e, c;
	const double *x;        /* (n, d) */
	const double *y;        /* (n, e) */
	const int *calc;        /* (c) row indices, for K-AF */
	const double *w1;       /* (l, d) */
	const double *w2;       /* (e, l) */
	double h;
	enum kaf_activation activation;
	enum kaf_kernel kernel;
	enum kaf_reg reg;
	double lambda;
	enum kaf_precision precision;
};

struct kaf_probe_out {
	double loss;            /* MSE plus penalty */
	double *yhat;           /* (n, e) */
	double *grad_w1;        /* (l, d) */
	double *grad_w2;        /* (e, l) */
	double grad_h;
	int zero_denominators;
};

int kaf_probe_run(const struct kaf_probe *p, struct kaf_probe_out *out,
		  struct kaf_error *err);

/*
 * Apply `steps` optimizer updates to w (n values, double) with the
 * gradients grads[s * n .. s * n + n) for s = 0..steps-1, in float64.
 */
int kaf_probe_optim(enum kaf_opt opt, double lr, int n, double *w,
		    const double *grads, int steps, struct kaf_error *err);

/*
 * Fill w (rows, cols), PyTorch layout, as the initializer init would for
 * a layer with fan_in = cols and fan_out = rows, from stream (seed,
 * stream). Uniform initializers draw U(-1, 1) scaled by their bound, so
 * two initializers with one seed give proportional weights.
 */
void kaf_init_fill(double *w, int rows, int cols, enum kaf_init init,
		   uint64_t seed, int stream);

#endif
