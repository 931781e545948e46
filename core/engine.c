/*
 * engine.c - instantiates engine_impl.h in float32 and float64.
 *
 * <tgmath.h> makes exp, tanh, sqrt... resolve to the function of the
 * argument's type, so each copy computes in its own precision; the file is
 * built without -ffast-math and with contraction off, so every operation is
 * a rounded IEEE operation and subnormals are kept.
 */
#include "engine.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "vexp.h"

#define T float
#define SFX(name) name##_f32
#define VEXP kaf_vexp_neg_f32
#define VEXPG kaf_vexp_f32
#define VTANH kaf_vtanh_f32
#include "engine_impl.h"
#undef T
#undef SFX
#undef VEXP
#undef VEXPG
#undef VTANH

#define T double
#define SFX(name) name##_f64
#define VEXP kaf_vexp_neg_f64
#define VEXPG kaf_vexp_f64
#define VTANH kaf_vtanh_f64
#include "engine_impl.h"
#undef T
#undef SFX
#undef VEXP
#undef VEXPG
#undef VTANH

int kaf_engine_optim_f64(enum kaf_opt opt, double lr, int n, double *w,
			 const double *grads, int steps,
			 struct kaf_error *err)
{
	double *state = calloc(2 * (size_t)n, sizeof(*state));

	if (!state)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	for (int s = 0; s < steps; s++)
		optim_step_f64(opt, lr, n, s + 1, w, grads + (size_t)s * n,
			       state, state + n);
	free(state);
	return KAF_OK;
}
