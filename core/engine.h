/*
 * engine.h - the numerical engine behind model.h, one copy per precision.
 *
 * model.c decides everything random (split, calc set, initial weights) in
 * float64 and hands the engine a plan; the engine copies what it needs into
 * one block of its own precision and runs there. Internal to core/.
 */
#ifndef KAF_ENGINE_H
#define KAF_ENGINE_H

#include <stdbool.h>

#include "model.h"

struct kaf_plan {
	int d, l, e;            /* features, hidden units, outputs */
	int n, nv, c;           /* training, validation and calc rows */
	const double *x;        /* (rows, d) source features */
	const double *y;        /* (rows, e) source targets */
	const int *train;       /* (n) source row of each training row */
	const int *val;         /* (nv) source row of each validation row */
	const int *calc;        /* (c) training-row index of each calc row */
	const double *mu;       /* (d) feature means, or NULL */
	const double *sd;       /* (d) feature deviations, or NULL */
	const double *w1;       /* (l, d) initial weights, PyTorch layout */
	const double *w2;       /* (e, l) */
	double h;               /* initial bandwidth */
	bool classification;
};

int kaf_engine_train_f32(const struct kaf_plan *plan,
			 const struct kaf_config *cfg,
			 const struct kaf_hooks *hooks, struct kaf_result *res,
			 struct kaf_error *err);
int kaf_engine_train_f64(const struct kaf_plan *plan,
			 const struct kaf_config *cfg,
			 const struct kaf_hooks *hooks, struct kaf_result *res,
			 struct kaf_error *err);

int kaf_engine_probe_f32(const struct kaf_plan *plan,
			 const struct kaf_probe *p, struct kaf_probe_out *out,
			 struct kaf_error *err);
int kaf_engine_probe_f64(const struct kaf_plan *plan,
			 const struct kaf_probe *p, struct kaf_probe_out *out,
			 struct kaf_error *err);

int kaf_engine_optim_f64(enum kaf_opt opt, double lr, int n, double *w,
			 const double *grads, int steps,
			 struct kaf_error *err);

#endif
