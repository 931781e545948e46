/*
 * vexp.h - exponentials that a compiler can vectorize, with IEEE edges.
 *
 * glibc's expf and exp are scalar calls, and K-AF spends most of a short
 * run in them. These inline versions use only +, -, *, conversions and bit
 * moves, so a `#pragma omp simd` loop around them becomes SIMD code. They
 * keep what the study measures: results fall into the subnormal range and
 * round to zero exactly as a correctly rounded exp would (the final scaling
 * is one IEEE multiplication), overflow gives +inf, and NaN propagates.
 * Accuracy: within 2 ulp of the libm result over the whole range (checked
 * by the tests), the same order as the vector exp of the mainstream
 * frameworks.
 *
 * Method: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite, two-part ln2),
 * exp(r) by its Taylor polynomial, then 2^k applied as two factors so that
 * each stays a normal number while their product may underflow or overflow.
 */
#ifndef KAF_VEXP_H
#define KAF_VEXP_H

#include <stdint.h>
#include <string.h>

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

#pragma omp declare simd
static inline float kaf_vexp_f32(float x)
{
	/* Outside [-104, 89] the result is 0 or +inf after rounding anyway. */
	float xc = x != x ? 0.0f : x < -104.0f ? -104.0f :
		   x > 89.0f ? 89.0f : x;
	float kf = (xc * 0x1.715476p+0f + 0x1.8p23f) - 0x1.8p23f;
	float r = (xc - kf * 0x1.62e400p-1f) - kf * 0x1.7f7d1cp-20f;
	float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 +
		  r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
		  r * (1.0f / 5040)))))));
	int k = (int)kf;
	int ks = k < -127 ? 0 : k;
	int k1 = ks / 2;
	float y = (p * kaf_pow2i_f32(k1)) * kaf_pow2i_f32(ks - k1);

	/*
	 * Below 2^-127 the result is built from integers: round p 2^(k+149)
	 * to an integer m (one IEEE rounding, to nearest even, of the same
	 * real number a floating multiplication would round) and use m as
	 * the bit pattern, m 2^-149. No subnormal ever enters the floating
	 * units, which would otherwise stall on many processors.
	 */
	float scaled = p * kaf_pow2i_f32(k < -127 ? k + 149 : 0);
	int m = (int)((scaled + 0x1.8p23f) - 0x1.8p23f);
	uint32_t bits = (uint32_t)(m < 0 ? 0 : m);
	float tiny;

	memcpy(&tiny, &bits, sizeof(tiny));
	y = k < -127 ? tiny : y;
	return x != x ? x : y;
}

#pragma omp declare simd
static inline double kaf_vexp_f64(double x)
{
	double xc = x != x ? 0.0 : x < -746.0 ? -746.0 :
		    x > 710.0 ? 710.0 : x;
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
	p = 1.0 + r * p;

	int k = (int)kf;
	int k1 = k / 2;
	double y = (p * kaf_pow2i_f64(k1)) * kaf_pow2i_f64(k - k1);

	return x != x ? x : y;
}

#endif
