/*
 * test_model.c - the math of the network, K-AF and the optimizers.
 *
 * Gradients are checked three ways: against central finite differences in
 * float64, against fixtures from an independent PyTorch implementation
 * (tests/gen_torch_fixtures.py), and naive K-AF against stable K-AF.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data.h"
#include "model.h"
#include "rng.h"
#include "vexp.h"

#ifndef KAF_FIXTURE_DIR
#error "KAF_FIXTURE_DIR must name tests/fixtures"
#endif

/* ---- the vectorizable exp ---- */

static int64_t ulps_f32(float a, float b)
{
	int32_t ia, ib;

	memcpy(&ia, &a, sizeof(ia));
	memcpy(&ib, &b, sizeof(ib));
	return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

static int64_t ulps_f64(double a, double b)
{
	int64_t ia, ib;

	memcpy(&ia, &a, sizeof(ia));
	memcpy(&ib, &b, sizeof(ib));
	return ia > ib ? ia - ib : ib - ia;
}

static void test_vexp_f32_within_one_ulp_of_libm(void **st)
{
	(void)st;
	/* Every float where the result is subnormal or near the edge. */
	for (float x = -105.0f; x < -86.0f; x = nextafterf(x, 0.0f))
		if (ulps_f32(kaf_vexp_f32(x), expf(x)) > 1)
			fail_msg("exp(%a): %a, libm %a", x, kaf_vexp_f32(x),
				 expf(x));
	/* A dense sample of the rest, overflow included. */
	for (float x = -86.0f; x < 89.0f; x += 0.000731f)
		if (ulps_f32(kaf_vexp_f32(x), expf(x)) > 1)
			fail_msg("exp(%a): %a, libm %a", x, kaf_vexp_f32(x),
				 expf(x));
	assert_true(kaf_vexp_f32(-104.0f) == 0.0f);
	assert_true(kaf_vexp_f32(-103.0f) > 0.0f);
	assert_true(isinf(kaf_vexp_f32(89.0f)));
	assert_true(isinf(kaf_vexp_f32(INFINITY)));
	assert_true(kaf_vexp_f32(-INFINITY) == 0.0f);
	assert_true(isnan(kaf_vexp_f32(NAN)));
}

static void test_vexp_f64_within_one_ulp_of_libm(void **st)
{
	(void)st;
	for (double x = -746.0; x < 710.0; x += 0.0003137)
		if (ulps_f64(kaf_vexp_f64(x), exp(x)) > 1)
			fail_msg("exp(%a): %a, libm %a", x, kaf_vexp_f64(x),
				 exp(x));
	assert_true(kaf_vexp_f64(-746.0) == 0.0);
	assert_true(kaf_vexp_f64(-744.0) > 0.0);
	assert_true(isinf(kaf_vexp_f64(710.0)));
	assert_true(isnan(kaf_vexp_f64(NAN)));
}

static void test_vtanh_within_four_ulp_of_libm(void **st)
{
	(void)st;
	/* Dense over the range where tanh is not yet 1, both signs, and
	 * down through the subnormals, where tanh x is x. */
	for (float x = 0.0f; x < 21.0f; x += 0.0000917f) {
		if (ulps_f32(kaf_vtanh_f32(x), tanhf(x)) > 4)
			fail_msg("tanh(%a): %a, libm %a", x, kaf_vtanh_f32(x),
				 tanhf(x));
		assert_true(kaf_vtanh_f32(-x) == -kaf_vtanh_f32(x));
	}
	for (float x = 0x1p-149f; x < 1e-3f;
	     x = fmaxf(x * 1.0007f, nextafterf(x, 1.0f)))
		if (ulps_f32(kaf_vtanh_f32(x), tanhf(x)) > 4)
			fail_msg("tanh(%a): %a, libm %a", x, kaf_vtanh_f32(x),
				 tanhf(x));
	for (double x = 0.0; x < 21.0; x += 0.0000731) {
		if (ulps_f64(kaf_vtanh_f64(x), tanh(x)) > 4)
			fail_msg("tanh(%a): %a, libm %a", x, kaf_vtanh_f64(x),
				 tanh(x));
		assert_true(kaf_vtanh_f64(-x) == -kaf_vtanh_f64(x));
	}
	for (double x = 0x1p-1074; x < 1e-3;
	     x = fmax(x * 1.0007, nextafter(x, 1.0)))
		if (ulps_f64(kaf_vtanh_f64(x), tanh(x)) > 4)
			fail_msg("tanh(%a): %a, libm %a", x, kaf_vtanh_f64(x),
				 tanh(x));
	assert_true(kaf_vtanh_f32(30.0f) == 1.0f);
	assert_true(kaf_vtanh_f32(-INFINITY) == -1.0f);
	assert_true(signbit(kaf_vtanh_f32(-0.0f)));
	assert_true(isnan(kaf_vtanh_f32(NAN)));
	assert_true(kaf_vtanh_f64(INFINITY) == 1.0);
	assert_true(signbit(kaf_vtanh_f64(-0.0)));
	assert_true(isnan(kaf_vtanh_f64(NAN)));
}

static void test_vexp_neg_equals_vexp(void **st)
{
	(void)st;
	/* The x <= 0 versions K-AF uses are the same functions there. */
	for (float x = -110.0f; x <= 0.0f; x += 0.000173f)
		assert_true(kaf_vexp_neg_f32(x) == kaf_vexp_f32(x));
	for (double x = -750.0; x <= 0.0; x += 0.0001731)
		assert_true(kaf_vexp_neg_f64(x) == kaf_vexp_f64(x));
	assert_true(kaf_vexp_neg_f32(-INFINITY) == 0.0f);
	assert_true(kaf_vexp_neg_f64(-INFINITY) == 0.0);
	assert_true(isnan(kaf_vexp_neg_f32(NAN)));
	assert_true(isnan(kaf_vexp_neg_f64(NAN)));
}

/* ---- a small problem with random weights ---- */

enum { N = 9, D = 3, L = 5, E = 2, C = 5 };

struct problem {
	double x[N * D], y[N * E], w1[L * D], w2[E * L];
	int calc[C];
	struct kaf_probe p;
};

static void problem_init(struct problem *pb, uint64_t seed,
			 enum kaf_activation act, enum kaf_kernel kernel)
{
	struct kaf_rng r;
	static const int calc[C] = {0, 2, 3, 5, 8};

	kaf_rng_init(&r, seed, 99);
	for (int i = 0; i < N * D; i++)
		pb->x[i] = 2 * kaf_rng_uniform(&r) - 1;
	for (int i = 0; i < N; i++)
		for (int k = 0; k < E; k++)
			pb->y[i * E + k] = (i + k) % 2;
	for (int i = 0; i < L * D; i++)
		pb->w1[i] = 1.2 * (2 * kaf_rng_uniform(&r) - 1);
	for (int i = 0; i < E * L; i++)
		pb->w2[i] = 1.2 * (2 * kaf_rng_uniform(&r) - 1);
	memcpy(pb->calc, calc, sizeof(calc));
	pb->p = (struct kaf_probe){
		.n = N, .d = D, .l = L, .e = E, .c = C, .x = pb->x,
		.y = pb->y, .calc = pb->calc, .w1 = pb->w1, .w2 = pb->w2,
		.h = 0.7, .activation = act, .kernel = kernel,
		.reg = KAF_REG_NONE, .precision = KAF_PREC_F64,
	};
}

struct probe_result {
	double yhat[N * E], gw1[L * D], gw2[E * L];
	struct kaf_probe_out out;
};

static void run_probe(const struct kaf_probe *p, struct probe_result *r)
{
	struct kaf_error err;

	r->out = (struct kaf_probe_out){
		.yhat = r->yhat, .grad_w1 = r->gw1, .grad_w2 = r->gw2,
	};
	assert_int_equal(kaf_probe_run(p, &r->out, &err), 0);
}

static double probe_loss(const struct kaf_probe *p)
{
	struct probe_result r;

	run_probe(p, &r);
	return r.out.loss;
}

/* Central difference of the loss in one parameter, step eps. */
static double central_diff(struct kaf_probe *p, double *param, double eps)
{
	double keep = *param, up, down;

	*param = keep + eps;
	up = probe_loss(p);
	*param = keep - eps;
	down = probe_loss(p);
	*param = keep;
	return (up - down) / (2 * eps);
}

static void check_close(double got, double want, double rtol, double atol,
			const char *what, int index)
{
	double diff = fabs(got - want);

	if (!(diff <= atol + rtol * fabs(want)))
		fail_msg("%s[%d]: got %.17g, want %.17g (diff %.3g)", what,
			 index, got, want, diff);
}

static void check_gradients(enum kaf_activation act, enum kaf_kernel kernel,
			    enum kaf_reg reg)
{
	struct problem pb;
	struct probe_result r;
	const double eps = 1e-6, rtol = 1e-6, atol = 1e-9;

	problem_init(&pb, 7 + act, act, kernel);
	pb.p.reg = reg;
	pb.p.lambda = reg == KAF_REG_NONE ? 0 : 0.03;
	run_probe(&pb.p, &r);
	for (int i = 0; i < L * D; i++)
		check_close(r.gw1[i], central_diff(&pb.p, &pb.w1[i], eps),
			    rtol, atol, "grad_w1", i);
	for (int i = 0; i < E * L; i++)
		check_close(r.gw2[i], central_diff(&pb.p, &pb.w2[i], eps),
			    rtol, atol, "grad_w2", i);
	if (act == KAF_ACT_KAF)
		check_close(r.out.grad_h, central_diff(&pb.p, &pb.p.h, eps),
			    rtol, atol, "grad_h", 0);
}

static void test_grad_fixed_activations_match_finite_differences(void **st)
{
	(void)st;
	for (int a = 0; a < KAF_ACT_KAF; a++)
		check_gradients((enum kaf_activation)a, KAF_KERNEL_STABLE,
				KAF_REG_NONE);
}

static void test_grad_kaf_naive_matches_finite_differences(void **st)
{
	(void)st;
	check_gradients(KAF_ACT_KAF, KAF_KERNEL_NAIVE, KAF_REG_NONE);
}

static void test_grad_kaf_stable_matches_finite_differences(void **st)
{
	(void)st;
	check_gradients(KAF_ACT_KAF, KAF_KERNEL_STABLE, KAF_REG_NONE);
}

static void test_grad_regularizers_match_finite_differences(void **st)
{
	(void)st;
	check_gradients(KAF_ACT_KAF, KAF_KERNEL_STABLE, KAF_REG_L2);
	check_gradients(KAF_ACT_TANH, KAF_KERNEL_STABLE, KAF_REG_L1);
}

/* ---- naive against stable ---- */

static void test_kaf_naive_equals_stable_where_finite(void **st)
{
	struct problem pb;
	struct probe_result a, b;

	(void)st;
	for (int prec = 0; prec < KAF_PREC_COUNT; prec++) {
		double tol = prec == KAF_PREC_F32 ? 2e-5 : 1e-12;

		problem_init(&pb, 3, KAF_ACT_KAF, KAF_KERNEL_NAIVE);
		pb.p.precision = (enum kaf_precision)prec;
		run_probe(&pb.p, &a);
		pb.p.kernel = KAF_KERNEL_STABLE;
		run_probe(&pb.p, &b);
		assert_int_equal(a.out.zero_denominators, 0);
		check_close(a.out.loss, b.out.loss, tol, 0, "loss", prec);
		for (int i = 0; i < N * E; i++)
			check_close(a.yhat[i], b.yhat[i], tol, tol, "yhat", i);
		for (int i = 0; i < L * D; i++)
			check_close(a.gw1[i], b.gw1[i], tol * 10, tol, "gw1",
				    i);
		check_close(a.out.grad_h, b.out.grad_h, tol * 10, tol,
			    "grad_h", prec);
	}
}

static void test_kaf_stable_finite_where_naive_underflows(void **st)
{
	struct problem pb;
	struct probe_result a, b;

	(void)st;
	problem_init(&pb, 3, KAF_ACT_KAF, KAF_KERNEL_NAIVE);
	/* z gaps of order 0.1 over h = 0.005 give exponents below -150. */
	pb.p.h = 0.005;
	pb.p.precision = KAF_PREC_F32;
	run_probe(&pb.p, &a);
	assert_true(a.out.zero_denominators > 0);
	assert_true(isnan(a.out.loss));
	pb.p.kernel = KAF_KERNEL_STABLE;
	run_probe(&pb.p, &b);
	assert_int_equal(b.out.zero_denominators, 0);
	assert_true(isfinite(b.out.loss));
	assert_true(isfinite(b.out.grad_h));
	for (int i = 0; i < L * D; i++)
		assert_true(isfinite(b.gw1[i]));
}

static void test_kaf_naive_keeps_subnormal_weights(void **st)
{
	/* Two calc rows, one query: exp(-u^2/2) = 1e-40 is subnormal in
	 * float32 but not zero, so the ratio must stay finite. */
	double x[3 * 1] = {0.0, 1.0, 2.0}, y[3] = {1, 0, 1};
	double w1[1] = {1.0}, w2[1] = {1.0}, yhat[3], g1[1], g2[1];
	int calc[2] = {1, 2};
	double u = sqrt(-2.0 * log(1e-40));
	struct kaf_probe p = {
		.n = 3, .d = 1, .l = 1, .e = 1, .c = 2, .x = x, .y = y,
		.calc = calc, .w1 = w1, .w2 = w2, .h = 1.0 / u,
		.activation = KAF_ACT_KAF, .kernel = KAF_KERNEL_NAIVE,
		.precision = KAF_PREC_F32,
	};
	struct kaf_probe_out out = {.yhat = yhat, .grad_w1 = g1,
				    .grad_w2 = g2};
	struct kaf_error err;

	(void)st;
	/* Row 1 sees only row 2 (one unit of z away, weight ~1e-40/2.5):
	 * subnormal but non-zero, so its prediction is y_2 exactly. */
	assert_int_equal(kaf_probe_run(&p, &out, &err), 0);
	assert_int_equal(out.zero_denominators, 0);
	assert_true(yhat[1] == 1.0);
	/* Shrinking h by a third pushes the weight below 2^-150: 0/0. */
	p.h = 1.0 / (1.8 * u);
	assert_int_equal(kaf_probe_run(&p, &out, &err), 0);
	assert_true(out.zero_denominators > 0);
	assert_true(isnan(out.loss));
}

static void test_kaf_stable_f64_keeps_tiny_weights(void **st)
{
	/*
	 * Row 0 (z = 1) sees eight calc rows near z = 2 (target 0) and nine
	 * at z = 26.5 (target 1), a whole block of slots away. Their relative
	 * weight, exp(-(25.5^2 - 1) / 2) or about 1e-141, is far below
	 * float32's range but a normal float64: y_hat_0 must be about that,
	 * not 0, so the far block cannot be skipped in float64.
	 */
	enum { ROWS = 18, CALC = 17 };
	double x[ROWS], y[ROWS], w1[1] = {1.0}, w2[1] = {1.0};
	double yhat[ROWS], g1[1], g2[1], num = 0, den = 0;
	int calc[CALC];
	struct kaf_probe_out out = {.yhat = yhat, .grad_w1 = g1,
				    .grad_w2 = g2};
	struct kaf_error err;

	(void)st;
	x[0] = 1.0;
	y[0] = 0;
	for (int i = 1; i < ROWS; i++) {
		x[i] = i <= 8 ? 2.0 + 0.01 * i : 26.5;
		y[i] = i > 8;
		calc[i - 1] = i;
		num += y[i] * exp(-(x[i] - 1) * (x[i] - 1) / 2);
		den += exp(-(x[i] - 1) * (x[i] - 1) / 2);
	}
	struct kaf_probe p = {
		.n = ROWS, .d = 1, .l = 1, .e = 1, .c = CALC, .x = x, .y = y,
		.calc = calc, .w1 = w1, .w2 = w2, .h = 1.0,
		.activation = KAF_ACT_KAF, .kernel = KAF_KERNEL_STABLE,
		.precision = KAF_PREC_F64,
	};

	assert_true(num / den > 1e-142 && num / den < 1e-139);
	assert_int_equal(kaf_probe_run(&p, &out, &err), 0);
	check_close(yhat[0], num / den, 1e-10, 0, "yhat stable", 0);
	p.kernel = KAF_KERNEL_NAIVE;
	assert_int_equal(kaf_probe_run(&p, &out, &err), 0);
	check_close(yhat[0], num / den, 1e-10, 0, "yhat naive", 0);
}

/* ---- many rows: windows and blocks of query rows ---- */

enum { WN = 150, WD = 2, WL = 3, WE = 2, WC = 40 };

/*
 * Rows spread over a z range many bandwidths wide, so that each query
 * row's window of calc slots is a small part of them, and the rows fill
 * many blocks, the last one partial.
 */
struct wide {
	double x[WN * WD], y[WN * WE], w1[WL * WD], w2[WE * WL];
	int calc[WC];
	struct kaf_probe p;
};

static void wide_init(struct wide *w, double h, enum kaf_kernel kernel,
		      enum kaf_precision prec)
{
	struct kaf_rng r;

	kaf_rng_init(&r, 5, 77);
	for (int i = 0; i < WN * WD; i++)
		w->x[i] = 4 * kaf_rng_uniform(&r) - 2;
	for (int i = 0; i < WN * WE; i++)
		w->y[i] = kaf_rng_uniform(&r);
	for (int i = 0; i < WL * WD; i++)
		w->w1[i] = 2 * kaf_rng_uniform(&r) - 1;
	for (int i = 0; i < WE * WL; i++)
		w->w2[i] = 2 * kaf_rng_uniform(&r) - 1;
	/* Every third row from row 7: calc rows and others interleave. */
	for (int j = 0; j < WC; j++)
		w->calc[j] = 7 + 3 * j;
	w->p = (struct kaf_probe){
		.n = WN, .d = WD, .l = WL, .e = WE, .c = WC, .x = w->x,
		.y = w->y, .calc = w->calc, .w1 = w->w1, .w2 = w->w2, .h = h,
		.activation = KAF_ACT_KAF, .kernel = kernel,
		.reg = KAF_REG_NONE, .precision = prec,
	};
}

/* y_hat of row i, output k, over every calc row, in long double. */
static long double wide_reference(const struct wide *w, int i, int k)
{
	long double z[WN], top = -INFINITY, num = 0, den = 0;

	for (int r = 0; r < WN; r++) {
		long double hid[WL], v = 0;

		for (int u = 0; u < WL; u++) {
			long double a = 0;

			for (int q = 0; q < WD; q++)
				a += (long double)w->w1[u * WD + q] *
				     w->x[r * WD + q];
			hid[u] = a > 0 ? a : 0;
		}
		for (int u = 0; u < WL; u++)
			v += (long double)w->w2[k * WL + u] * hid[u];
		z[r] = v;
	}
	for (int pass = 0; pass < 2; pass++)
		for (int j = 0; j < WC; j++) {
			int row = w->calc[j];
			long double u = (z[row] - z[i]) / w->p.h;
			long double t = -u * u / 2;

			if (row == i)
				continue;
			if (pass == 0) {
				top = t > top ? t : top;
			} else {
				num += expl(t - top) * w->y[row * WE + k];
				den += expl(t - top);
			}
		}
	return num / den;
}

static void test_kaf_windows_match_every_slot(void **st)
{
	struct wide w;
	double yhat[WN * WE], g1[WL * WD], g2[WE * WL];
	struct kaf_probe_out out = {.yhat = yhat, .grad_w1 = g1,
				    .grad_w2 = g2};
	struct kaf_error err;

	(void)st;
	for (int prec = 0; prec < KAF_PREC_COUNT; prec++) {
		/* Windows cover about 2 x 14.6 h in float32 and 2 x 38.8 h
		 * in float64, against a z range of several units. */
		double h = prec == KAF_PREC_F32 ? 0.04 : 0.015;
		double tol = prec == KAF_PREC_F32 ? 2e-4 : 1e-9;
		int finite = 0;

		wide_init(&w, h, KAF_KERNEL_STABLE, (enum kaf_precision)prec);
		assert_int_equal(kaf_probe_run(&w.p, &out, &err), 0);
		assert_int_equal(out.zero_denominators, 0);
		for (int i = 0; i < WN; i++)
			for (int k = 0; k < WE; k++)
				check_close(yhat[i * WE + k],
					    (double)wide_reference(&w, i, k),
					    tol, tol, "yhat stable", i);
		/* Naive agrees wherever its weights did not all underflow,
		 * and some did: the windows cut where it matters. */
		w.p.kernel = KAF_KERNEL_NAIVE;
		assert_int_equal(kaf_probe_run(&w.p, &out, &err), 0);
		assert_true(out.zero_denominators > 0);
		for (int i = 0; i < WN * WE; i++) {
			if (!isfinite(yhat[i]))
				continue;
			finite++;
			check_close(yhat[i],
				    (double)wide_reference(&w, i / WE, i % WE),
				    tol, tol, "yhat naive", i);
		}
		assert_true(finite > WN * WE / 2);
	}
}

/*
 * A calc row at z = +inf leaves its column unsorted, so every row then
 * visits every slot: its weight is exp(-inf) = 0 for every other row,
 * whose outputs are those of the other calc rows alone; the row itself
 * gets NaN (all its exponents are -inf), in both evaluations.
 */
static void test_kaf_infinite_calc_row_weighs_nothing(void **st)
{
	enum { R = 40, CC = 10 };
	double x[R], y[R], w1[1] = {1.0}, w2[1] = {1.0}, yhat[R];
	double g1[1], g2[1];
	int calc[CC];
	struct kaf_probe_out out = {.yhat = yhat, .grad_w1 = g1,
				    .grad_w2 = g2};
	struct kaf_error err;

	(void)st;
	for (int i = 0; i < R; i++) {
		x[i] = 0.1 * i;
		y[i] = (i * 7) % 5;
	}
	for (int j = 0; j < CC; j++)
		calc[j] = 4 * j;
	x[calc[3]] = INFINITY;
	for (int prec = 0; prec < KAF_PREC_COUNT; prec++)
		for (int kernel = 0; kernel < KAF_KERNEL_COUNT; kernel++) {
			struct kaf_probe p = {
				.n = R, .d = 1, .l = 1, .e = 1, .c = CC,
				.x = x, .y = y, .calc = calc, .w1 = w1,
				.w2 = w2, .h = 0.3, .activation = KAF_ACT_KAF,
				.kernel = (enum kaf_kernel)kernel,
				.precision = (enum kaf_precision)prec,
			};
			double tol = prec == KAF_PREC_F32 ? 1e-5 : 1e-12;

			assert_int_equal(kaf_probe_run(&p, &out, &err), 0);
			assert_true(isnan(yhat[calc[3]]));
			for (int i = 0; i < R; i++) {
				double num = 0, den = 0;

				if (i == calc[3])
					continue;
				for (int j = 0; j < CC; j++) {
					double u = (x[calc[j]] - x[i]) / 0.3;

					if (calc[j] == i || j == 3)
						continue;
					num += exp(-u * u / 2) * y[calc[j]];
					den += exp(-u * u / 2);
				}
				check_close(yhat[i], num / den, tol, tol,
					    "yhat", i);
			}
		}
}

static double wide_loss(const struct kaf_probe *p)
{
	double yhat[WN * WE], g1[WL * WD], g2[WE * WL];
	struct kaf_probe_out out = {.yhat = yhat, .grad_w1 = g1,
				    .grad_w2 = g2};
	struct kaf_error err;

	assert_int_equal(kaf_probe_run(p, &out, &err), 0);
	return out.loss;
}

static double wide_diff(struct kaf_probe *p, double *param, double eps)
{
	double keep = *param, up, down;

	*param = keep + eps;
	up = wide_loss(p);
	*param = keep - eps;
	down = wide_loss(p);
	*param = keep;
	return (up - down) / (2 * eps);
}

static void test_grad_kaf_many_rows_match_finite_differences(void **st)
{
	struct wide w;
	double yhat[WN * WE], g1[WL * WD], g2[WE * WL];
	struct kaf_probe_out out = {.yhat = yhat, .grad_w1 = g1,
				    .grad_w2 = g2};
	struct kaf_error err;
	const double eps = 1e-7, rtol = 1e-5, atol = 1e-8;

	(void)st;
	for (int kernel = 0; kernel < KAF_KERNEL_COUNT; kernel++) {
		/* A bandwidth at which no naive row underflows, yet every
		 * window is a part of the calc rows in float64. */
		wide_init(&w, 0.06, (enum kaf_kernel)kernel, KAF_PREC_F64);
		assert_int_equal(kaf_probe_run(&w.p, &out, &err), 0);
		assert_int_equal(out.zero_denominators, 0);
		for (int i = 0; i < WL * WD; i++)
			check_close(g1[i], wide_diff(&w.p, &w.w1[i], eps),
				    rtol, atol, "grad_w1", i);
		for (int i = 0; i < WE * WL; i++)
			check_close(g2[i], wide_diff(&w.p, &w.w2[i], eps),
				    rtol, atol, "grad_w2", i);
		assert_int_equal(kaf_probe_run(&w.p, &out, &err), 0);
		check_close(out.grad_h, wide_diff(&w.p, &w.p.h, eps),
			    rtol, atol, "grad_h", kernel);
	}
}

/* ---- leave-one-out ---- */

static void test_kaf_leave_one_out_excludes_only_the_row(void **st)
{
	struct problem pb;
	struct probe_result a, b;

	(void)st;
	problem_init(&pb, 11, KAF_ACT_KAF, KAF_KERNEL_STABLE);
	run_probe(&pb.p, &a);
	/* Row 3 is a calc row: its own target must not move its output,
	 * while every other calc row's output does depend on it. */
	pb.y[3 * E] += 5.0;
	run_probe(&pb.p, &b);
	assert_true(a.yhat[3 * E] == b.yhat[3 * E]);
	for (int j = 0; j < C; j++) {
		int row = pb.calc[j];

		if (row != 3)
			assert_true(fabs(a.yhat[row * E] - b.yhat[row * E]) >
				    1e-9);
	}
	/* Row 1 is not a calc row: it sees every calc row, row 3 too. */
	assert_true(fabs(a.yhat[1 * E] - b.yhat[1 * E]) > 1e-9);
}

/* ---- fixtures from PyTorch ---- */

struct fixture {
	char activation[16], kernel[16], precision[8], reg[8];
	double lambda, h, loss, grad_h;
	int n, d, l, e, c, calc[32];
	double x[256], y[64], w1[64], w2[64], yhat[64];
	double grad_w1[64], grad_w2[64];
};

static void read_values(char *rest, double *v, int max, int *count)
{
	char *tok, *save = NULL;

	*count = 0;
	for (tok = strtok_r(rest, " \t\n", &save); tok && *count < max;
	     tok = strtok_r(NULL, " \t\n", &save))
		v[(*count)++] = strtod(tok, NULL);
}

static void fixture_line(struct fixture *f, char *key, char *rest)
{
	double v[256];
	int cnt;
	struct {
		const char *key;
		double *dst;
	} arrays[] = {
		{"x", f->x}, {"y", f->y}, {"w1", f->w1}, {"w2", f->w2},
		{"yhat", f->yhat}, {"grad_w1", f->grad_w1},
		{"grad_w2", f->grad_w2}, {"loss", &f->loss},
		{"grad_h", &f->grad_h}, {"h", &f->h}, {"lambda", &f->lambda},
	};

	if (!strcmp(key, "activation"))
		sscanf(rest, "%15s", f->activation);
	else if (!strcmp(key, "kernel"))
		sscanf(rest, "%15s", f->kernel);
	else if (!strcmp(key, "precision"))
		sscanf(rest, "%7s", f->precision);
	else if (!strcmp(key, "reg"))
		sscanf(rest, "%7s", f->reg);
	read_values(rest, v, 256, &cnt);
	if (!strcmp(key, "n"))
		f->n = (int)v[0];
	else if (!strcmp(key, "d"))
		f->d = (int)v[0];
	else if (!strcmp(key, "l"))
		f->l = (int)v[0];
	else if (!strcmp(key, "e"))
		f->e = (int)v[0];
	else if (!strcmp(key, "calc")) {
		f->c = cnt;
		for (int i = 0; i < cnt; i++)
			f->calc[i] = (int)v[i];
	}
	for (size_t a = 0; a < sizeof(arrays) / sizeof(arrays[0]); a++)
		if (!strcmp(key, arrays[a].key))
			memcpy(arrays[a].dst, v, sizeof(double) * cnt);
}

static void fixture_load(const char *name, struct fixture *f)
{
	char path[512], line[8192];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", KAF_FIXTURE_DIR, name);
	fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot open fixture %s", path);
	memset(f, 0, sizeof(*f));
	while (fgets(line, sizeof(line), fp)) {
		char key[32];
		int used;

		if (line[0] == '#' || sscanf(line, "%31s%n", key, &used) != 1)
			continue;
		fixture_line(f, key, line + used);
	}
	fclose(fp);
	assert_true(f->n > 0 && f->n * f->d <= 256);
}

static int name_index(const char *const *names, int count, const char *s)
{
	struct kaf_error err;
	int i = kaf_name_parse(names, count, s, "fixture", &err);

	if (i < 0)
		fail_msg("%s", err.msg);
	return i;
}

static void check_fixture(const char *name)
{
	struct fixture f;
	double yhat[64], g1[64], g2[64];
	struct kaf_probe_out out = {.yhat = yhat, .grad_w1 = g1,
				    .grad_w2 = g2};
	struct kaf_error err;
	double rtol, atol;

	fixture_load(name, &f);
	struct kaf_probe p = {
		.n = f.n, .d = f.d, .l = f.l, .e = f.e, .c = f.c, .x = f.x,
		.y = f.y, .calc = f.calc, .w1 = f.w1, .w2 = f.w2, .h = f.h,
		.activation = name_index(kaf_activation_names, KAF_ACT_COUNT,
					 f.activation),
		.kernel = name_index(kaf_kernel_names, KAF_KERNEL_COUNT,
				     f.kernel),
		.reg = name_index(kaf_reg_names, KAF_REG_COUNT, f.reg),
		.lambda = f.lambda,
		.precision = name_index(kaf_precision_names, KAF_PREC_COUNT,
					f.precision),
	};
	/* float32: a few ulp of the largest term, as sums differ in order */
	rtol = p.precision == KAF_PREC_F32 ? 1e-4 : 1e-10;
	atol = p.precision == KAF_PREC_F32 ? 1e-6 : 1e-13;
	assert_int_equal(kaf_probe_run(&p, &out, &err), 0);
	check_close(out.loss, f.loss, rtol, atol, name, -1);
	for (int i = 0; i < f.n * f.e; i++)
		check_close(yhat[i], f.yhat[i], rtol, atol, "yhat", i);
	for (int i = 0; i < f.l * f.d; i++)
		check_close(g1[i], f.grad_w1[i], rtol, atol, "grad_w1", i);
	for (int i = 0; i < f.e * f.l; i++)
		check_close(g2[i], f.grad_w2[i], rtol, atol, "grad_w2", i);
	check_close(out.grad_h, f.grad_h, rtol, atol, "grad_h", 0);
}

static void test_fixture_activations_match_torch(void **st)
{
	static const char *const files[] = {
		"torch_net_linear.txt", "torch_net_relu.txt",
		"torch_net_sigmoid.txt", "torch_net_tanh.txt",
		"torch_net_swish.txt", "torch_net_mish.txt",
	};

	(void)st;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		check_fixture(files[i]);
}

static void test_fixture_kaf_matches_torch(void **st)
{
	static const char *const files[] = {
		"torch_net_kaf_naive.txt", "torch_net_kaf_stable.txt",
		"torch_net_kaf_stable_l1.txt", "torch_net_kaf_stable_l2.txt",
		"torch_net_kaf_stable_regression.txt",
		"torch_net_kaf_naive_f32.txt", "torch_net_kaf_stable_f32.txt",
	};

	(void)st;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		check_fixture(files[i]);
}

/* ---- optimizers ---- */

/* Stateful optimizers need their whole history in one call. */
static void test_optim_three_steps_match_torch(void **st)
{
	char path[512], line[1024], key[32];
	double w0[4], g[12], want[3][4], lr = 0;
	int opt = -1, used, cnt, blocks = 0;
	FILE *fp;
	struct kaf_error err;

	(void)st;
	snprintf(path, sizeof(path), "%s/torch_optim.txt", KAF_FIXTURE_DIR);
	fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		double v[8], w[4];
		char name[32];

		if (line[0] == '#' || sscanf(line, "%31s%n", key, &used) != 1)
			continue;
		if (!strcmp(key, "opt") && sscanf(line + used, "%31s", name))
			opt = name_index(kaf_opt_names, KAF_OPT_COUNT, name);
		read_values(line + used, v, 8, &cnt);
		if (!strcmp(key, "lr"))
			lr = v[0];
		else if (!strcmp(key, "w0"))
			memcpy(w0, v, sizeof(w0));
		else if (key[0] == 'g' && key[1] >= '1' && key[1] <= '3')
			memcpy(g + 4 * (key[1] - '1'), v, sizeof(w0));
		else if (key[0] == 'w' && key[1] >= '1' && key[1] <= '3')
			memcpy(want[key[1] - '1'], v, sizeof(w0));
		if (strcmp(key, "end"))
			continue;
		for (int s = 1; s <= 3; s++) {
			memcpy(w, w0, sizeof(w));
			assert_int_equal(kaf_probe_optim(opt, lr, 4, w, g, s,
							 &err), 0);
			for (int i = 0; i < 4; i++)
				check_close(w[i], want[s - 1][i], 1e-12,
					    1e-15, kaf_opt_names[opt], i);
		}
		blocks++;
	}
	fclose(fp);
	assert_int_equal(blocks, KAF_OPT_COUNT);
}

static void test_optim_first_step_by_hand(void **st)
{
	struct kaf_error err;
	double w[1], g[1] = {0.5};

	(void)st;
	/* sgd: 1 - 0.1 * 0.5 */
	w[0] = 1.0;
	kaf_probe_optim(KAF_OPT_SGD, 0.1, 1, w, g, 1, &err);
	assert_float_equal(w[0], 0.95, 1e-15);
	/* adam's first step moves by lr whatever g is (sign of g). */
	w[0] = 1.0;
	kaf_probe_optim(KAF_OPT_ADAM, 0.01, 1, w, g, 1, &err);
	assert_float_equal(w[0], 1.0 - 0.01 * 0.5 / (0.5 + 1e-8), 1e-15);
	/* rmsprop: v = 0.01 g^2, step lr g / (0.1 |g| + eps) = 10 lr */
	w[0] = 1.0;
	kaf_probe_optim(KAF_OPT_RMSPROP, 0.01, 1, w, g, 1, &err);
	assert_float_equal(w[0], 1.0 - 0.01 * 0.5 / (0.05 + 1e-8), 1e-14);
	/* adagrad: sum = g^2, step lr g / (|g| + eps) = lr */
	w[0] = 1.0;
	kaf_probe_optim(KAF_OPT_ADAGRAD, 0.1, 1, w, g, 1, &err);
	assert_float_equal(w[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-10), 1e-15);
	/* momentum: buffer starts at g, so step 2 moves by lr (0.9g + g) */
	double g2[2] = {0.5, 0.5};
	w[0] = 1.0;
	kaf_probe_optim(KAF_OPT_MOMENTUM, 0.1, 1, w, g2, 2, &err);
	assert_float_equal(w[0], 1.0 - 0.05 - 0.1 * 0.95, 1e-15);
}

/* ---- initializers ---- */

static void moments(const double *w, int count, double *mean, double *var,
		    double *maxabs)
{
	double s = 0, ss = 0;

	*maxabs = 0;
	for (int i = 0; i < count; i++) {
		s += w[i];
		if (fabs(w[i]) > *maxabs)
			*maxabs = fabs(w[i]);
	}
	*mean = s / count;
	for (int i = 0; i < count; i++)
		ss += (w[i] - *mean) * (w[i] - *mean);
	*var = ss / count;
}

static void test_init_ranges_and_moments(void **st)
{
	enum { ROWS = 400, COLS = 250 };
	static double w[ROWS * COLS];
	double mean, var, maxabs;
	double b;

	(void)st;
	/* Uniform(-b, b): variance b^2 / 3, no value outside. */
	kaf_init_fill(w, ROWS, COLS, KAF_INIT_XAVIER_UNIFORM, 1, 3);
	b = sqrt(6.0 / (ROWS + COLS));
	moments(w, ROWS * COLS, &mean, &var, &maxabs);
	assert_true(maxabs <= b);
	assert_true(maxabs > 0.999 * b);
	assert_float_equal(mean, 0, 4 * b / sqrt(3.0 * ROWS * COLS));
	assert_float_equal(var, b * b / 3, 0.01 * b * b / 3);

	kaf_init_fill(w, ROWS, COLS, KAF_INIT_KAIMING_UNIFORM, 1, 3);
	b = sqrt(6.0 / COLS);
	moments(w, ROWS * COLS, &mean, &var, &maxabs);
	assert_true(maxabs <= b && maxabs > 0.999 * b);
	assert_float_equal(var, b * b / 3, 0.01 * b * b / 3);

	/* Normal(0, 2 / fan_in): variance within 1 %, tails present. */
	kaf_init_fill(w, ROWS, COLS, KAF_INIT_KAIMING_NORMAL, 1, 3);
	moments(w, ROWS * COLS, &mean, &var, &maxabs);
	assert_float_equal(var, 2.0 / COLS, 0.01 * 2.0 / COLS);
	assert_float_equal(mean, 0, 4 * sqrt(2.0 / COLS / (ROWS * COLS)));
	assert_true(maxabs > 3.5 * sqrt(2.0 / COLS));
}

/* ---- training runs ---- */

static struct kaf_dataset *boston(void)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err;

	assert_int_equal(kaf_dataset_builtin("boston", &ds, &err), 0);
	return ds;
}

static void test_train_same_seed_same_result(void **st)
{
	struct kaf_dataset *ds = boston();
	struct kaf_config cfg = kaf_config_default();
	struct kaf_result a, b, c;
	struct kaf_error err;

	(void)st;
	cfg.kernel = KAF_KERNEL_STABLE;
	cfg.seed = 42;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &a, &err), 0);
	assert_int_equal(kaf_train(ds, &cfg, NULL, &b, &err), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	cfg.seed = 43;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &c, &err), 0);
	assert_true(a.train_loss != c.train_loss);
	assert_true(a.val_loss != c.val_loss);
	kaf_dataset_destroy(ds);
}

static void test_train_detects_each_cause(void **st)
{
	struct kaf_dataset *ds = boston();
	struct kaf_config cfg = kaf_config_default();
	struct kaf_result r;
	struct kaf_error err;

	(void)st;
	/* A tiny bandwidth underflows every naive float32 weight at once. */
	cfg.bandwidth = 1e-3;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), 0);
	assert_true(r.diverged);
	assert_int_equal(r.cause, KAF_CAUSE_KERNEL_UNDERFLOW);
	assert_int_equal(r.step, 0);
	assert_true(r.zero_denominators > 0);

	/* The same run with the stable kernel survives. */
	cfg.kernel = KAF_KERNEL_STABLE;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), 0);
	assert_false(r.diverged);
	assert_int_equal(r.step, -1);
	assert_int_equal(r.steps, cfg.epochs);

	/* Any gradient at all is over a limit of 1e-12. */
	cfg.bandwidth = 1.5;
	cfg.grad_limit = 1e-12;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), 0);
	assert_int_equal(r.cause, KAF_CAUSE_GRAD_LIMIT);
	assert_int_equal(r.step, 0);

	/* A huge learning rate on a fixed activation overflows. */
	cfg.grad_limit = 0;
	cfg.activation = KAF_ACT_LINEAR;
	cfg.lr = 1e30;
	cfg.epochs = 50;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), 0);
	assert_true(r.diverged);
	assert_true(r.cause == KAF_CAUSE_NONFINITE_LOSS ||
		    r.cause == KAF_CAUSE_NONFINITE_GRAD);
	assert_true(r.step > 0);
	kaf_dataset_destroy(ds);
}

static void test_train_learns_iris(void **st)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_config cfg = kaf_config_default();
	struct kaf_result r;
	struct kaf_error err;

	(void)st;
	assert_int_equal(kaf_dataset_builtin("iris", &ds, &err), 0);
	cfg.init = KAF_INIT_KAIMING_UNIFORM;
	cfg.lr = 0.1;
	cfg.epochs = 1000;
	cfg.calc_num = 30;
	cfg.kernel = KAF_KERNEL_STABLE;
	cfg.seed = 1;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), 0);
	assert_false(r.diverged);
	/* Chance is 1/3; a working K-AF separates iris well. */
	assert_true(r.accuracy > 0.8);
	assert_int_equal(r.n_train + r.n_val, 150);
	assert_int_equal(r.n_val, 38);
	kaf_dataset_destroy(ds);
}

static void test_config_rejects_bad_values(void **st)
{
	struct kaf_dataset *ds = boston();
	struct kaf_config cfg = kaf_config_default();
	struct kaf_result r;
	struct kaf_error err;

	(void)st;
	cfg.calc_num = 1;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, "calc_num"));
	cfg.calc_num = 10000;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), KAF_EINVAL);
	cfg = kaf_config_default();
	cfg.lr = -1;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, "lr"));
	cfg = kaf_config_default();
	cfg.epochs = 0;
	assert_int_equal(kaf_train(ds, &cfg, NULL, &r, &err), KAF_EINVAL);
	assert_int_equal(kaf_name_parse(kaf_opt_names, KAF_OPT_COUNT, "adamw",
					"--opt", &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, "adamw"));
	assert_non_null(strstr(err.msg, "rmsprop"));
	kaf_dataset_destroy(ds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vexp_f32_within_one_ulp_of_libm),
		cmocka_unit_test(test_vexp_f64_within_one_ulp_of_libm),
		cmocka_unit_test(test_vexp_neg_equals_vexp),
		cmocka_unit_test(test_vtanh_within_four_ulp_of_libm),
		cmocka_unit_test(
			test_grad_fixed_activations_match_finite_differences),
		cmocka_unit_test(
			test_grad_kaf_naive_matches_finite_differences),
		cmocka_unit_test(
			test_grad_kaf_stable_matches_finite_differences),
		cmocka_unit_test(
			test_grad_regularizers_match_finite_differences),
		cmocka_unit_test(test_kaf_naive_equals_stable_where_finite),
		cmocka_unit_test(test_kaf_stable_finite_where_naive_underflows),
		cmocka_unit_test(test_kaf_windows_match_every_slot),
		cmocka_unit_test(test_kaf_infinite_calc_row_weighs_nothing),
		cmocka_unit_test(test_grad_kaf_many_rows_match_finite_differences),
		cmocka_unit_test(test_kaf_naive_keeps_subnormal_weights),
		cmocka_unit_test(test_kaf_stable_f64_keeps_tiny_weights),
		cmocka_unit_test(test_kaf_leave_one_out_excludes_only_the_row),
		cmocka_unit_test(test_fixture_activations_match_torch),
		cmocka_unit_test(test_fixture_kaf_matches_torch),
		cmocka_unit_test(test_optim_three_steps_match_torch),
		cmocka_unit_test(test_optim_first_step_by_hand),
		cmocka_unit_test(test_init_ranges_and_moments),
		cmocka_unit_test(test_train_same_seed_same_result),
		cmocka_unit_test(test_train_detects_each_cause),
		cmocka_unit_test(test_train_learns_iris),
		cmocka_unit_test(test_config_rejects_bad_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
