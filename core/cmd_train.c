/*
 * cmd_train.c - `kaf train`: one training run with its per-epoch table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data.h"
#include "log.h"
#include "model.h"

enum {
	F_DATASET, F_DATA, F_TARGET, F_TASK, F_ACTIVATION, F_INIT, F_REG,
	F_LAMBDA, F_OPT, F_LR, F_EPOCHS, F_HIDDEN, F_CALC_NUM, F_PRECISION,
	F_KERNEL, F_STANDARDIZE, F_GRAD_LIMIT, F_BANDWIDTH, F_SEED, F_EVERY,
	F_HELP, F_COUNT,
};

static const struct kaf_flag train_flags[F_COUNT] = {
	[F_DATASET] = {"dataset", "NAME", "built-in dataset: iris, digits, "
		       "wine, boston, breast_cancer (default boston)"},
	[F_DATA] = {"data", "FILE", "a CSV file of your own instead "
		    "(header row, numeric cells)"},
	[F_TARGET] = {"target", "COLUMN", "the CSV column to predict"},
	[F_TASK] = {"task", "TASK", "classification or regression (needed "
		    "with --data)"},
	[F_ACTIVATION] = {"activation", "NAME", "linear, relu, sigmoid, "
			  "tanh, swish, mish, kaf (default kaf)"},
	[F_INIT] = {"init", "NAME", "xavier_uniform, kaiming_uniform, "
		    "kaiming_normal (default xavier_uniform)"},
	[F_REG] = {"reg", "NAME", "none, l1, l2 (default none)"},
	[F_LAMBDA] = {"lambda", "X", "regularizer strength (default 1e-4)"},
	[F_OPT] = {"opt", "NAME", "sgd, momentum, rmsprop, adagrad, adam "
		   "(default sgd)"},
	[F_LR] = {"lr", "X", "learning rate (default 1e-5)"},
	[F_EPOCHS] = {"epochs", "N", "full-batch steps (default 5)"},
	[F_HIDDEN] = {"hidden", "N", "hidden units (default: the dataset's "
		      "protocol width, 20 for a CSV)"},
	[F_CALC_NUM] = {"calc-num", "N", "K-AF calc rows (default 50)"},
	[F_PRECISION] = {"precision", "P", "f32 or f64 (default f32)"},
	[F_KERNEL] = {"kernel", "K", "naive or stable K-AF evaluation "
		      "(default naive)"},
	[F_STANDARDIZE] = {"standardize", NULL, "scale features by the "
			   "training rows' mean and deviation"},
	[F_GRAD_LIMIT] = {"grad-limit", "X", "diverge when the gradient "
			  "norm exceeds X (default 0: no limit)"},
	[F_BANDWIDTH] = {"bandwidth", "X", "initial K-AF bandwidth h "
			 "(default 1.5)"},
	[F_SEED] = {"seed", "N", "seed of the split, calc set and weights "
		    "(default 0)"},
	[F_EVERY] = {"every", "N", "print every N-th epoch (default: about "
		     "100 lines in all)"},
	[F_HELP] = {"help", NULL, "this help"},
};

static const char *const task_names[] = {"classification", "regression"};

struct train_opts {
	const char *dataset, *data, *target;
	int task;               /* -1 until given */
	long every;
	struct kaf_config cfg;
	bool help;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: kaf train [flags]\n\n"
		"Train one network and print a per-epoch table (epoch, "
		"train loss, validation\nloss, gradient norm, bandwidth) and "
		"the final result on standard output.\n\nflags:\n");
	kaf_cli_help(out, train_flags, F_COUNT);
}

/* Flags whose value is one field of the config, by axis name. */
static const char *axis_of(int f)
{
	static const char *const axes[F_COUNT] = {
		[F_ACTIVATION] = "activation", [F_INIT] = "init",
		[F_REG] = "reg", [F_LAMBDA] = "lambda", [F_OPT] = "opt",
		[F_LR] = "lr", [F_EPOCHS] = "epochs", [F_HIDDEN] = "hidden",
		[F_CALC_NUM] = "calc_num", [F_PRECISION] = "precision",
		[F_KERNEL] = "kernel", [F_GRAD_LIMIT] = "grad_limit",
		[F_BANDWIDTH] = "bandwidth", [F_SEED] = "seed",
	};

	return axes[f];
}

static int parse_flag(struct train_opts *o, int f, const char *v,
		      struct kaf_error *err)
{
	char what[64];

	snprintf(what, sizeof(what), "--%s", train_flags[f].name);
	if (axis_of(f))
		return kaf_cli_set_axis(&o->cfg, axis_of(f), v, what, err);
	switch (f) {
	case F_DATASET:
		o->dataset = v;
		return KAF_OK;
	case F_DATA:
		o->data = v;
		return KAF_OK;
	case F_TARGET:
		o->target = v;
		return KAF_OK;
	case F_TASK:
		o->task = kaf_name_parse(task_names, 2, v, what, err);
		return o->task < 0 ? o->task : KAF_OK;
	case F_STANDARDIZE:
		o->cfg.standardize = true;
		return KAF_OK;
	case F_EVERY:
		return kaf_cli_int(v, what, 1, 1000000000, &o->every, err);
	case F_HELP:
		o->help = true;
		return KAF_OK;
	}
	return KAF_OK;
}

static int parse_args(int argc, char **argv, struct train_opts *o,
		      struct kaf_error *err)
{
	int i = 1, f;
	const char *v;

	while ((f = kaf_cli_next(argc, argv, &i, train_flags, F_COUNT,
				 "train", &v, err)) >= 0) {
		int rc = parse_flag(o, f, v, err);

		if (rc)
			return rc;
	}
	if (f == KAF_CLI_ERROR)
		return KAF_EINVAL;
	if (o->help)
		return KAF_OK;
	if (o->data && o->dataset)
		return kaf_error_set(err, KAF_EINVAL, "kaf train: give "
				     "--dataset or --data, not both");
	if (o->data && (!o->target || o->task < 0))
		return kaf_error_set(err, KAF_EINVAL, "kaf train: --data "
				     "needs --target COLUMN and --task "
				     "classification|regression");
	if (!o->data && (o->target || o->task >= 0))
		return kaf_error_set(err, KAF_EINVAL, "kaf train: --target "
				     "and --task go with --data FILE");
	return KAF_OK;
}

struct table {
	FILE *out;
	int rows;
};

static int print_epoch(void *ctx, const struct kaf_epoch *ep)
{
	struct table *t = ctx;

	if (t->rows++ == 0)
		fprintf(t->out, "%8s %14s %14s %14s %12s\n", "epoch",
			"train_loss", "val_loss", "grad_norm", "bandwidth");
	fprintf(t->out, "%8d %14.7g %14.7g %14.7g %12.6g\n", ep->epoch,
		ep->train_loss, ep->val_loss, ep->grad_norm, ep->bandwidth);
	return 0;
}

static void print_result(FILE *out, const struct kaf_dataset *ds,
			 const struct kaf_result *r)
{
	fprintf(out, "\ndiverged            %s\n", r->diverged ? "yes" : "no");
	if (r->diverged) {
		fprintf(out, "cause               %s\n",
			kaf_cause_names[r->cause]);
		fprintf(out, "step                %d\n", r->step);
	}
	fprintf(out, "steps               %d\n", r->steps);
	fprintf(out, "train_rows          %d\n", r->n_train);
	fprintf(out, "val_rows            %d\n", r->n_val);
	fprintf(out, "train_loss          %.7g\n", r->train_loss);
	fprintf(out, "val_loss            %.7g\n", r->val_loss);
	if (ds->task == KAF_TASK_CLASSIFICATION) {
		fprintf(out, "val_accuracy        %.4f\n", r->accuracy);
	} else {
		fprintf(out, "val_mse             %.7g\n", r->val_loss);
		fprintf(out, "val_mae             %.7g\n", r->val_mae);
	}
	fprintf(out, "max_grad_norm       %.7g\n", r->max_grad_norm);
	fprintf(out, "bandwidth           %.7g\n", r->bandwidth);
}

static int load_dataset(const struct train_opts *o,
			struct kaf_dataset **ds, struct kaf_error *err)
{
	if (o->data)
		return kaf_dataset_load_csv(o->data, o->target,
					    (enum kaf_task)o->task, ds, err);
	return kaf_dataset_builtin(o->dataset ? o->dataset : "boston", ds,
				   err);
}

int kaf_cmd_train(int argc, char **argv)
{
	struct train_opts o = {.task = -1, .cfg = kaf_config_default()};
	struct kaf_dataset *ds = NULL;
	struct kaf_result res;
	struct kaf_error err;
	struct table table = {.out = stdout};
	int rc;

	if (parse_args(argc, argv, &o, &err)) {
		kaf_log_error("%s", err.msg);
		return KAF_EXIT_USAGE;
	}
	if (o.help) {
		usage(stdout);
		return 0;
	}
	if (load_dataset(&o, &ds, &err)) {
		kaf_log_error("%s", err.msg);
		return KAF_EXIT_USAGE;
	}
	struct kaf_hooks hooks = {
		.eval_every = o.every ? (int)o.every
			    : (o.cfg.epochs + 99) / 100,
		.on_epoch = print_epoch,
		.ctx = &table,
	};
	rc = kaf_train(ds, &o.cfg, &hooks, &res, &err);
	if (rc) {
		kaf_log_error("kaf train: %s", err.msg);
		kaf_dataset_destroy(ds);
		return rc == KAF_EINVAL ? KAF_EXIT_USAGE : 1;
	}
	print_result(stdout, ds, &res);
	kaf_dataset_destroy(ds);
	return 0;
}
