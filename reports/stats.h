/*
 * stats.h - small-sample statistics for divergence rates.
 *
 * The report ranks grid cells by how often their runs diverged; these
 * functions say how sure it may be: a Wilson interval per cell, exact
 * tests for two cells (Fisher) or paired seeds (McNemar), a chi-square
 * test across many cells, Holm's correction when many tests are read
 * together, and a formatter for p-values in prose.
 *
 * Counts are long and may reach ~10^6 per cell; all arithmetic is double
 * and works in log space where factorials appear.
 *
 * Memory: results go to caller-supplied structs and buffers; only the
 * chi-square and Holm functions allocate, and they free before returning.
 * Thread-safe: no state is kept. The one caveat is C's lgamma(), which
 * glibc lets write the global signgam; here its argument is always
 * positive so every write stores +1.
 *
 * Errors: fallible functions return 0 or a negative KAF_E* code and fill
 * err (which may be NULL) with a sentence naming the bad value. The pure
 * incomplete-gamma functions return NaN for arguments outside their domain.
 */
#ifndef KAF_STATS_H
#define KAF_STATS_H

#include <stddef.h>

#include "error.h"

/* Two-sided 95 % normal quantile, Phi^-1(0.975). */
#define KAF_STATS_Z95 1.959963984540054

/* Below this a p-value is written "p < 1e-9". */
#define KAF_STATS_P_FLOOR 1e-9

/* Room for any string kaf_stats_format_p writes, NUL included. */
#define KAF_STATS_P_LEN 16

struct kaf_interval {
	double lo;             /* lower bound, in [0, 1] */
	double hi;             /* upper bound, in [lo, 1] */
};

struct kaf_chi2 {
	double stat;           /* Pearson X^2, no continuity correction */
	int df;                /* (rows kept - 1) * (columns kept - 1) */
	double p;              /* upper tail P(X^2 >= stat); 1 when df == 0 */
	double cramer_v;       /* effect size in [0, 1]; 0 when df == 0 */
};

/* ---- proportions ---- */

/*
 * Wilson score 95 % interval for k successes in n trials. The bounds are
 * the roots of the score equation, computed without cancellation, so
 * 1 of 10^6 keeps full relative precision; k == 0 gives lo == 0 and
 * k == n gives hi == 1 exactly. n == 0 is not an error: nothing is known,
 * so the interval is [0, 1]. Errors (KAF_EINVAL): k < 0, n < 0, k > n.
 */
int kaf_stats_wilson(long k, long n, struct kaf_interval *out,
		     struct kaf_error *err);

/* ---- exact tests ---- */

/*
 * Fisher's exact test, two-sided, for the 2x2 table counts (2, 2) in
 * row-major order. p sums the hypergeometric probabilities (margins
 * fixed) of every table no more probable than the observed one, with
 * the relative tolerance 1e-7 that R and scipy use so that tables tied
 * in exact arithmetic stay tied after rounding. Probabilities come from
 * lgamma, relative to the most probable table, so nothing underflows
 * until p itself is below ~1e-300 (then p == 0). lgamma's rounding at
 * large arguments bounds the relative error of p near 1e-9 for counts of
 * 10^6. Cost: the tables are walked outwards from the most probable one
 * until weights underflow, ~20 sqrt(total) terms (2 ms at 10^6).
 * Errors (KAF_EINVAL): a negative count.
 */
int kaf_stats_fisher(const long *counts, double *p, struct kaf_error *err);

/*
 * McNemar's exact test, two-sided, for paired outcomes with b pairs
 * discordant one way and c the other: p = min(1, 2 P(X <= min(b, c)))
 * for X ~ Binomial(b + c, 1/2). b + c == 0 gives p = 1. The tail is
 * summed down from its largest term and stops once terms no longer
 * change the sum, so about 10 sqrt(b + c) terms at worst; relative error
 * is ~1e-9 at b + c ~ 10^6, set by lgamma's rounding.
 * Errors (KAF_EINVAL): b < 0 or c < 0.
 */
int kaf_stats_mcnemar(long b, long c, double *p, struct kaf_error *err);

/* ---- chi-square ---- */

/*
 * Pearson chi-square test of independence for counts (r, k), row-major:
 * r groups (grid cells) by k outcome categories (for kaf usually k == 2,
 * diverged or not). Rows and columns whose total is zero carry no
 * information and are left out of both the statistic and df. If fewer
 * than two rows or two columns remain (or the table is empty) there is
 * nothing to test: stat = 0, df = 0, p = 1, V = 0. No warning is given
 * for small expected counts; use Fisher for sparse 2x2 tables.
 * Errors: KAF_EINVAL for r < 1, k < 1 or a negative count; KAF_ENOMEM.
 */
int kaf_stats_chi2(const long *counts, int r, int k, struct kaf_chi2 *out,
		   struct kaf_error *err);

/*
 * Regularized incomplete gamma functions P(a, x) and Q(a, x) = 1 - P.
 * The one below ~1/2 is computed directly (series when x < a + 1, a
 * continued fraction otherwise), the other as its complement, so small
 * tails keep their relative precision. Relative error is ~1e-14 for a up
 * to 10^3 and degrades slowly beyond, because the prefactor goes through
 * lgamma(a). Edges: x == 0 gives P = 0, Q = 1; x == +inf gives P = 1,
 * Q = 0. NaN for a <= 0, x < 0 or NaN arguments.
 */
double kaf_stats_gamma_p(double a, double x);
double kaf_stats_gamma_q(double a, double x);

/*
 * Upper tail of the chi-square distribution with df degrees of freedom:
 * Q(df / 2, x / 2). 1 for x <= 0; NaN for df <= 0 or NaN x.
 */
double kaf_stats_chi2_sf(double x, int df);

/* ---- multiple tests and prose ---- */

/*
 * Holm's step-down adjustment of n p-values p (n) into adj (n); adj may
 * be p itself. Adjusted values are monotone in the raw ones and capped at
 * 1. n == 0 does nothing. Errors: KAF_EINVAL for n < 0 or a p outside
 * [0, 1] (NaN included); KAF_ENOMEM. Cost O(n log n).
 */
int kaf_stats_holm(const double *p, double *adj, int n,
		   struct kaf_error *err);

/*
 * Write p for prose into buf (size bytes): "p = 0.032" (three decimals)
 * at 0.01 and above, "p = 3.1e-05" (two significant digits) below that,
 * and "p < 1e-9" below KAF_STATS_P_FLOOR, including p == 0.
 * KAF_STATS_P_LEN bytes always suffice. Errors (KAF_EINVAL): p outside
 * [0, 1] or NaN, or buf too small; buf then holds "" when size > 0.
 */
int kaf_stats_format_p(double p, char *buf, size_t size,
		       struct kaf_error *err);

#endif
