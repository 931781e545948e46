#include "stats.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Ties in Fisher's test: R's fisher.test and scipy both use 1 + 1e-7. */
#define FISHER_REL_TOL 1e-7

/* Series and continued fraction stop below this relative change. */
#define GAMMA_EPS (DBL_EPSILON / 2)

/*
 * Both expansions need ~sqrt(a) steps near x == a; this cap covers a up
 * to ~10^8, far beyond any df a kaf table can have.
 */
#define GAMMA_MAX_ITER 200000

/* Lentz's method replaces exact zeros by this to avoid dividing by 0. */
#define GAMMA_TINY 1e-300

/* ---- proportions ---- */

int kaf_stats_wilson(long k, long n, struct kaf_interval *out,
		     struct kaf_error *err)
{
	const double z = KAF_STATS_Z95;
	double kd, nd, root, num;

	assert(out);
	if (n < 0 || k < 0 || k > n)
		return kaf_error_set(err, KAF_EINVAL,
				     "wilson: need 0 <= k <= n, got k = %ld, "
				     "n = %ld", k, n);
	if (n == 0) {
		out->lo = 0.0;
		out->hi = 1.0;
		return KAF_OK;
	}

	/*
	 * The bounds solve (n + z^2) p^2 - (2k + z^2) p + k^2 / n = 0. The
	 * larger root has no cancellation; the smaller is the product of
	 * roots divided by it, which stays accurate when k << n.
	 */
	kd = (double)k;
	nd = (double)n;
	root = z * sqrt(4.0 * kd * ((nd - kd) / nd) + z * z);
	num = 2.0 * kd + z * z + root;
	out->hi = k == n ? 1.0 : fmin(1.0, num / (2.0 * (nd + z * z)));
	out->lo = 2.0 * kd * (kd / nd) / num;
	return KAF_OK;
}

/* ---- exact tests ---- */

/* A 2x2 table's margins and the cut-offs of one Fisher test. */
struct hyper {
	long r1, r2, c1;       /* first row, second row, first column totals */
	double lmode;          /* log weight of the most probable table */
	double lcut;           /* tables at or below this count as extreme */
};

/*
 * log of the hypergeometric weight of the table whose top-left cell is x,
 * up to the constant log C(r1 + r2, c1) that cancels in every ratio.
 */
static double hyper_logw(const struct hyper *h, long x)
{
	return -lgamma((double)x + 1.0) - lgamma((double)(h->r1 - x) + 1.0)
	       - lgamma((double)(h->c1 - x) + 1.0)
	       - lgamma((double)(h->r2 - h->c1 + x) + 1.0);
}

/*
 * Add weights relative to the mode from x towards end (step +-1) into
 * sums[0] (all tables) and sums[1] (extreme ones). Weights only shrink
 * away from the mode, so once one underflows the rest would add 0.
 */
static void hyper_walk(const struct hyper *h, long x, long end, long step,
		       double sums[2])
{
	for (;; x += step) {
		double lw = hyper_logw(h, x);
		double w = exp(lw - h->lmode);

		if (w == 0.0)
			break;
		sums[0] += w;
		if (lw <= h->lcut)
			sums[1] += w;
		if (x == end)
			break;
	}
}

int kaf_stats_fisher(const long *counts, double *p, struct kaf_error *err)
{
	struct hyper h;
	long lo, hi, mode;
	double sums[2] = { 0.0, 0.0 };

	assert(counts && p);
	for (int i = 0; i < 4; i++)
		if (counts[i] < 0)
			return kaf_error_set(err, KAF_EINVAL,
					     "fisher: count %d is %ld, "
					     "must be >= 0", i, counts[i]);

	h.r1 = counts[0] + counts[1];
	h.r2 = counts[2] + counts[3];
	h.c1 = counts[0] + counts[2];
	lo = h.c1 > h.r2 ? h.c1 - h.r2 : 0;
	hi = h.r1 < h.c1 ? h.r1 : h.c1;

	/* Weights relative to the mode are <= 1 and their total >= 1. */
	mode = (long)floor(((double)h.r1 + 1.0) * ((double)h.c1 + 1.0)
			   / ((double)(h.r1 + h.r2) + 2.0));
	mode = mode < lo ? lo : mode > hi ? hi : mode;
	h.lmode = hyper_logw(&h, mode);
	h.lcut = hyper_logw(&h, counts[0]) + log1p(FISHER_REL_TOL);

	hyper_walk(&h, mode, lo, -1, sums);
	if (mode < hi)
		hyper_walk(&h, mode + 1, hi, 1, sums);
	*p = fmin(1.0, sums[1] / sums[0]);
	return KAF_OK;
}

int kaf_stats_mcnemar(long b, long c, double *p, struct kaf_error *err)
{
	long n, m;
	double lterm, ratio = 1.0, sum = 1.0;

	assert(p);
	if (b < 0 || c < 0)
		return kaf_error_set(err, KAF_EINVAL,
				     "mcnemar: discordant counts must be >= 0, "
				     "got b = %ld, c = %ld", b, c);
	n = b + c;
	m = b < c ? b : c;
	if (n == 0 || 2 * m == n) {
		*p = 1.0;
		return KAF_OK;
	}

	/*
	 * m < n / 2, so binomial terms grow up to i == m: sum t_i / t_m from
	 * i = m down, using t_{i-1} / t_i = i / (n - i + 1).
	 */
	lterm = lgamma((double)n + 1.0) - lgamma((double)m + 1.0)
		- lgamma((double)(n - m) + 1.0) - (double)n * log(2.0);
	for (long i = m; i > 0; i--) {
		ratio *= (double)i / (double)(n - i + 1);
		sum += ratio;
		if (ratio < sum * DBL_EPSILON)
			break;
	}
	*p = fmin(1.0, 2.0 * exp(lterm + log(sum)));
	return KAF_OK;
}

/* ---- incomplete gamma ---- */

/* x^a e^-x / Gamma(a), the factor shared by both expansions. */
static double gamma_prefix(double a, double x)
{
	return exp(a * log(x) - x - lgamma(a));
}

/* P(a, x) by its power series; converges fast for x < a + 1. */
static double gamma_p_series(double a, double x)
{
	double denom = a, term = 1.0 / a, sum = term;

	for (int i = 0; i < GAMMA_MAX_ITER; i++) {
		denom += 1.0;
		term *= x / denom;
		sum += term;
		if (term < sum * GAMMA_EPS)
			break;
	}
	return sum * gamma_prefix(a, x);
}

/*
 * Q(a, x) by its continued fraction
 *   1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / (x + 5 - a - ...)))
 * evaluated forward with the modified Lentz method; for x >= a + 1.
 */
static double gamma_q_fraction(double a, double x)
{
	double b = x + 1.0 - a;
	double c = 1.0 / GAMMA_TINY;
	double d = 1.0 / b;
	double f = d;

	for (int i = 1; i < GAMMA_MAX_ITER; i++) {
		double an = -(double)i * ((double)i - a);
		double delta;

		b += 2.0;
		d = an * d + b;
		if (fabs(d) < GAMMA_TINY)
			d = GAMMA_TINY;
		c = b + an / c;
		if (fabs(c) < GAMMA_TINY)
			c = GAMMA_TINY;
		d = 1.0 / d;
		delta = c * d;
		f *= delta;
		if (fabs(delta - 1.0) < GAMMA_EPS)
			break;
	}
	return f * gamma_prefix(a, x);
}

/*
 * Set *p and *q for valid a and x; return 0, or -1 outside the domain.
 * The split at x = a + 1 lies near the median (~a - 1/3), so whichever
 * tail is small is computed directly and only the large one comes from
 * 1 - small, where rounding costs little relative precision.
 */
static int gamma_pq(double a, double x, double *p, double *q)
{
	if (isnan(a) || isnan(x) || a <= 0.0 || x < 0.0 || isinf(a))
		return -1;
	if (x == 0.0) {
		*p = 0.0;
		*q = 1.0;
	} else if (isinf(x)) {
		*p = 1.0;
		*q = 0.0;
	} else if (x < a + 1.0) {
		*p = fmin(1.0, gamma_p_series(a, x));
		*q = 1.0 - *p;
	} else {
		*q = fmin(1.0, gamma_q_fraction(a, x));
		*p = 1.0 - *q;
	}
	return 0;
}

double kaf_stats_gamma_p(double a, double x)
{
	double p, q;

	return gamma_pq(a, x, &p, &q) ? NAN : p;
}

double kaf_stats_gamma_q(double a, double x)
{
	double p, q;

	return gamma_pq(a, x, &p, &q) ? NAN : q;
}

double kaf_stats_chi2_sf(double x, int df)
{
	if (df <= 0 || isnan(x))
		return NAN;
	if (x <= 0.0)
		return 1.0;
	return kaf_stats_gamma_q(0.5 * df, 0.5 * x);
}

/* ---- chi-square ---- */

/* Row sums into rows (r), column sums into cols (k); return the total. */
static double table_margins(const long *counts, int r, int k, double *rows,
			    double *cols)
{
	double total = 0.0;

	for (int j = 0; j < k; j++)
		cols[j] = 0.0;
	for (int i = 0; i < r; i++) {
		rows[i] = 0.0;
		for (int j = 0; j < k; j++) {
			rows[i] += (double)counts[(size_t)i * k + j];
			cols[j] += (double)counts[(size_t)i * k + j];
		}
		total += rows[i];
	}
	return total;
}

static int count_nonzero(const double *v, int n)
{
	int kept = 0;

	for (int i = 0; i < n; i++)
		kept += v[i] > 0.0;
	return kept;
}

/* Pearson's sum over cells whose row and column are both non-empty. */
static double pearson_stat(const long *counts, int r, int k,
			   const double *rows, const double *cols, double n)
{
	double stat = 0.0;

	for (int i = 0; i < r; i++) {
		if (rows[i] == 0.0)
			continue;
		for (int j = 0; j < k; j++) {
			double e, d;

			if (cols[j] == 0.0)
				continue;
			e = rows[i] * cols[j] / n;
			d = (double)counts[(size_t)i * k + j] - e;
			stat += d * d / e;
		}
	}
	return stat;
}

static int check_table(const long *counts, int r, int k,
		       struct kaf_error *err)
{
	if (r < 1 || k < 1)
		return kaf_error_set(err, KAF_EINVAL,
				     "chi2: table is %d x %d, needs at least "
				     "1 x 1", r, k);
	for (size_t i = 0; i < (size_t)r * k; i++)
		if (counts[i] < 0)
			return kaf_error_set(err, KAF_EINVAL,
					     "chi2: count at row %zu, column "
					     "%zu is %ld, must be >= 0",
					     i / k, i % k, counts[i]);
	return KAF_OK;
}

int kaf_stats_chi2(const long *counts, int r, int k, struct kaf_chi2 *out,
		   struct kaf_error *err)
{
	double *rows, *cols, n;
	int rc, rkept, kkept, small;

	assert(counts && out);
	rc = check_table(counts, r, k, err);
	if (rc)
		return rc;
	rows = malloc(((size_t)r + k) * sizeof(*rows));
	if (!rows)
		return kaf_error_set(err, KAF_ENOMEM,
				     "chi2: no memory for %d x %d margins",
				     r, k);
	cols = rows + r;

	n = table_margins(counts, r, k, rows, cols);
	rkept = count_nonzero(rows, r);
	kkept = count_nonzero(cols, k);
	*out = (struct kaf_chi2){ .stat = 0.0, .df = 0, .p = 1.0 };
	if (rkept >= 2 && kkept >= 2) {
		small = rkept < kkept ? rkept : kkept;
		out->stat = pearson_stat(counts, r, k, rows, cols, n);
		out->df = (rkept - 1) * (kkept - 1);
		out->p = kaf_stats_chi2_sf(out->stat, out->df);
		out->cramer_v = fmin(1.0, sqrt(out->stat / (n * (small - 1))));
	}
	free(rows);
	return KAF_OK;
}

/* ---- multiple tests and prose ---- */

struct ranked_p {
	double p;
	int index;
};

static int compare_ranked(const void *a, const void *b)
{
	const struct ranked_p *x = a, *y = b;

	if (x->p != y->p)
		return x->p < y->p ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

int kaf_stats_holm(const double *p, double *adj, int n,
		   struct kaf_error *err)
{
	struct ranked_p *order;
	double running = 0.0;

	assert(n <= 0 || (p && adj));
	if (n < 0)
		return kaf_error_set(err, KAF_EINVAL,
				     "holm: %d p-values, must be >= 0", n);
	for (int i = 0; i < n; i++)
		if (!(p[i] >= 0.0 && p[i] <= 1.0))
			return kaf_error_set(err, KAF_EINVAL,
					     "holm: p[%d] = %g is not in "
					     "[0, 1]", i, p[i]);
	if (n == 0)
		return KAF_OK;
	order = malloc((size_t)n * sizeof(*order));
	if (!order)
		return kaf_error_set(err, KAF_ENOMEM,
				     "holm: no memory for %d p-values", n);

	for (int i = 0; i < n; i++)
		order[i] = (struct ranked_p){ .p = p[i], .index = i };
	qsort(order, (size_t)n, sizeof(*order), compare_ranked);

	/* The j-th smallest (from 0) is scaled by n - j; keep it monotone. */
	for (int j = 0; j < n; j++) {
		double scaled = fmin(1.0, (double)(n - j) * order[j].p);

		running = fmax(running, scaled);
		adj[order[j].index] = running;
	}
	free(order);
	return KAF_OK;
}

int kaf_stats_format_p(double p, char *buf, size_t size,
		       struct kaf_error *err)
{
	int len;

	assert(buf || size == 0);
	if (size > 0)
		buf[0] = '\0';
	if (!(p >= 0.0 && p <= 1.0))
		return kaf_error_set(err, KAF_EINVAL,
				     "format_p: p = %g is not in [0, 1]", p);

	if (p < KAF_STATS_P_FLOOR)
		len = snprintf(buf, size, "p < 1e-9");
	else if (p < 0.01)
		len = snprintf(buf, size, "p = %.1e", p);
	else
		len = snprintf(buf, size, "p = %.3f", p);

	if (len < 0 || (size_t)len >= size) {
		if (size > 0)
			buf[0] = '\0';
		return kaf_error_set(err, KAF_EINVAL,
				     "format_p: buffer of %zu bytes is too "
				     "small for p = %g", size, p);
	}
	return KAF_OK;
}
