/*
 * vexp.h - exp and tanh that a compiler can vectorize, with IEEE edges.
 *
 * glibc's expf and exp are scalar calls, and K-AF spends most of a short
 * run in them. These inline versions use only +, -, *, conversions and bit
 * moves, so a `#pragma omp simd` loop around them becomes SIMD code. They
 * keep what the study measures: results fall into the subnormal range and
 * round to zero exactly as a correctly rounded exp would (the final scaling
 * is one IEEE rounding), overflow gives +inf, and NaN propagates.
 * Accuracy: within 1 ulp of the libm result over the whole range (checked
 * by the tests), the same order as the vector exp of the mainstream
 * frameworks. K-AF uses the _neg versions below; the general ones serve
 * the tests as the full-range reference of the same method.
 *
 * Method: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite, two-part ln2),
 * exp(r) by its Taylor polynomial, then 2^k applied by multiplications by
 * normal powers of two, the first exact, so that only the last rounds.
 * The general float32 version builds results below 2^-126 from integers;
 * the _neg version gets the same value from one more multiplication.
 *
 * The _neg versions are for x <= 0 (or NaN), the kernel weights' case:
 * the same value, bit for bit, in fewer steps, with no overflow to
 * handle. A positive x gives some value there, never a fault.
 */
#ifndef KAF_VEXP_H
#define KAF_VEXP_H

#include <stdint.h>
#include <string.h>

/* 2^k for -126 <= k <= 127; other k give some value, never a fault. */
static inline float kaf_pow2i_f32(int k)
{
	uint32_t bits = (uint32_t)(k + 127) << 23;
	float f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

static inline double kaf_pow2i_f64(int k)
{
	uint64_t bits = (uint64_t)(k + 1023) << 52;
	double f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

/*
 * exp(r) - 1 for xc = k ln2 + r in [-104, 89], and k in *k. NaN must not
 * reach here: its conversion to int would be undefined.
 */
static inline float kaf_vexpm1_reduce_f32(float xc, int *k)
{
	float kf = (xc * 0x1.715476p+0f + 0x1.8p23f) - 0x1.8p23f;
	float r = (xc - kf * 0x1.62e400p-1f) - kf * 0x1.7f7d1cp-20f;

	/*
	 * The terms from r^3 on in two halves side by side (their rounding
	 * hardly reaches the result), the first three in Horner's order:
	 * a shorter chain of dependent steps.
	 */
	float r2 = r * r;
	float lo = 1.0f / 6 + r * (1.0f / 24);
	float hi = (1.0f / 120 + r * (1.0f / 720)) + r2 * (1.0f / 5040);

	*k = (int)kf;
	return r * (1.0f + r * (0.5f + r * (lo + r2 * hi)));
}

/* exp(r) for xc = k ln2 + r in [-104, 89], and k in *k; not NaN. */
static inline float kaf_vexp_reduce_f32(float xc, int *k)
{
	return 1.0f + kaf_vexpm1_reduce_f32(xc, k);
}

/*
 * p 2^k for k < -126, where it is subnormal, from integers: round
 * p 2^(k+149) (less than 2^23) to an integer m by adding 2^23, the same
 * single rounding to nearest even a multiplication would make, and use m
 * as the bit pattern of m 2^-149. No subnormal ever enters the floating
 * units, which would otherwise stall on many processors.
 */
static inline float kaf_vexp_tiny_f32(float p, int k)
{
	float big = p * kaf_pow2i_f32(k + 149) + 0x1p23f;
	uint32_t bits;
	float tiny;

	memcpy(&bits, &big, sizeof(bits));
	bits -= 0x4b000000u;    /* the bits of 2^23 */
	memcpy(&tiny, &bits, sizeof(tiny));
	return tiny;
}

#pragma omp declare simd
static inline float kaf_vexp_f32(float x)
{
	/*
	 * Outside [-104, 89] the result is 0 or +inf after rounding anyway;
	 * NaN takes the lower bound (the comparison fails) and is given back
	 * at the end.
	 */
	float xc = x > -104.0f ? x : -104.0f;
	int k;

	xc = xc < 89.0f ? xc : 89.0f;
	float p = kaf_vexp_reduce_f32(xc, &k);

	/* 2^128, not a float, is 2^127 x 2. */
	int kn = k < 127 ? k : 127;
	float y = (p * kaf_pow2i_f32(kn)) * kaf_pow2i_f32(k - kn);

	y = k < -126 ? kaf_vexp_tiny_f32(p, k) : y;
	return x != x ? x : y;
}

#pragma omp declare simd
static inline float kaf_vexp_neg_f32(float x)
{
	float xc = x > -104.0f ? x : -104.0f;
	int k;
	float p = kaf_vexp_reduce_f32(xc, &k);

	/*
	 * 2^(k+32) is normal for every k here (-150..0), so p 2^(k+32) is
	 * exact and the scaling by 2^-32 is the one rounding, into the
	 * subnormal range too: the same value as the integer route above.
	 */
	return x != x ? x : (p * kaf_pow2i_f32(k + 32)) * 0x1p-32f;
}

/* exp(r) - 1 for xc = k ln2 + r in [-746, 710], and k in *k; not NaN. */
static inline double kaf_vexpm1_reduce_f64(double xc, int *k)
{
	double kf = (xc * 0x1.71547652b82fep+0 + 0x1.8p52) - 0x1.8p52;
	double r = (xc - kf * 0x1.62e42fee00000p-1) -
		   kf * 0x1.a39ef35793c76p-33;
	double p = 1.0 / 6227020800.0;

	p = 1.0 / 479001600.0 + r * p;
	p = 1.0 / 39916800.0 + r * p;
	p = 1.0 / 3628800.0 + r * p;
	p = 1.0 / 362880.0 + r * p;
	p = 1.0 / 40320.0 + r * p;
	p = 1.0 / 5040.0 + r * p;
	p = 1.0 / 720.0 + r * p;
	p = 1.0 / 120.0 + r * p;
	p = 1.0 / 24.0 + r * p;
	p = 1.0 / 6.0 + r * p;
	p = 0.5 + r * p;
	p = 1.0 + r * p;
	*k = (int)kf;
	return r * p;
}

/* exp(r) for xc = k ln2 + r in [-746, 710], and k in *k; not NaN. */
static inline double kaf_vexp_reduce_f64(double xc, int *k)
{
	return 1.0 + kaf_vexpm1_reduce_f64(xc, k);
}

#pragma omp declare simd
static inline double kaf_vexp_f64(double x)
{
	/* As in float32: NaN takes the lower bound and comes back at the end. */
	double xc = x > -746.0 ? x : -746.0;
	int k;

	xc = xc < 710.0 ? xc : 710.0;
	double p = kaf_vexp_reduce_f64(xc, &k);

	/* Two factors, 2^(k/2) and 2^(k - k/2), each normal. */
	int k1 = k / 2;
	double y = (p * kaf_pow2i_f64(k1)) * kaf_pow2i_f64(k - k1);

	return x != x ? x : y;
}

#pragma omp declare simd
static inline double kaf_vexp_neg_f64(double x)
{
	double xc = x > -746.0 ? x : -746.0;
	int k;
	double p = kaf_vexp_reduce_f64(xc, &k);

	/* 2^(k+60) is normal for every k here (-1076..0): one rounding. */
	return x != x ? x : (p * kaf_pow2i_f64(k + 60)) * 0x1p-60;
}

/*
 * tanh, from exp(2|x|) - 1 = u: tanh |x| = u / (u + 2), with no
 * cancellation, as u comes from the reduction's exp(r) - 1 scaled by
 * 2^k plus 2^k - 1 in one rounding. Above |x| = 20, tanh is 1 after
 * rounding in both precisions. Within 4 ulp of libm (checked by the
 * tests); the sign of zero and NaN are kept.
 */
#pragma omp declare simd
static inline float kaf_vtanh_f32(float x)
{
	float ax = x < 0 ? -x : x;
	int k;
	float q = kaf_vexpm1_reduce_f32(ax > 20.0f ? 0.0f : 2 * ax, &k);
	float u = q * kaf_pow2i_f32(k) + (kaf_pow2i_f32(k) - 1.0f);
	float t = ax > 20.0f ? 1.0f : u / (u + 2.0f);

	return x != x ? x : x < 0 ? -t : t == 0 ? x : t;
}

#pragma omp declare simd
static inline double kaf_vtanh_f64(double x)
{
	double ax = x < 0 ? -x : x;
	int k;
	double q = kaf_vexpm1_reduce_f64(ax > 20.0 ? 0.0 : 2 * ax, &k);
	double u = q * kaf_pow2i_f64(k) + (kaf_pow2i_f64(k) - 1.0);
	double t = ax > 20.0 ? 1.0 : u / (u + 2.0);

	return x != x ? x : x < 0 ? -t : t == 0 ? x : t;
}

#endif
