/*
 * test_stats.c - reports/stats against values computed elsewhere.
 *
 * Every reference number below was produced outside this code: by hand
 * (exact fractions shown), by exact integer arithmetic in Python
 * (fractions.Fraction with math.comb, summing the hypergeometric or
 * binomial terms), or by scipy 1.10.1 (stats.fisher_exact,
 * stats.binomtest, stats.chi2.sf, stats.chi2_contingency with
 * correction=False, special.gammainc/gammaincc). Tolerances are relative
 * unless said otherwise and are stated per check.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

#define assert_rel(got, want, rtol) \
	check_rel((got), (want), (rtol), #got, __FILE__, __LINE__)

static void check_rel(double got, double want, double rtol, const char *expr,
		      const char *file, int line)
{
	double diff = fabs(got - want);

	if (!(diff <= rtol * fabs(want))) {
		print_error("%s = %.17g, want %.17g (relative diff %.3g, "
			    "allowed %.3g)\n", expr, got, want,
			    diff / fabs(want), rtol);
		_fail(file, line);
	}
}

/* ---- Wilson ---- */

static void wilson(long k, long n, struct kaf_interval *ci)
{
	assert_int_equal(kaf_stats_wilson(k, n, ci, NULL), KAF_OK);
}

/* scipy binomtest(k, n).proportion_ci(0.95, method='wilson'). */
static void test_wilson_zero_successes(void **state)
{
	struct kaf_interval ci;

	(void)state;
	wilson(0, 10, &ci);
	assert_true(ci.lo == 0.0);
	/* also z^2 / (n + z^2) by hand */
	assert_rel(ci.hi, 0.27753279986288926, 1e-12);
}

static void test_wilson_all_successes(void **state)
{
	struct kaf_interval ci;

	(void)state;
	wilson(10, 10, &ci);
	assert_rel(ci.lo, 0.7224672001371109, 1e-12);
	assert_true(ci.hi == 1.0);
}

static void test_wilson_half(void **state)
{
	struct kaf_interval ci;

	(void)state;
	wilson(5, 10, &ci);
	assert_rel(ci.lo, 0.236593090512564, 1e-12);
	assert_rel(ci.hi, 0.7634069094874361, 1e-12);
	wilson(470, 1000, &ci);
	assert_rel(ci.lo, 0.43923991460215, 1e-12);
	assert_rel(ci.hi, 0.5009896909069833, 1e-12);
}

/* Rates near 0 and 1 at n = 10^6: bounds far apart in magnitude. */
static void test_wilson_rare_event_keeps_precision(void **state)
{
	struct kaf_interval ci;

	(void)state;
	wilson(1, 1000000, &ci);
	assert_rel(ci.lo, 1.765245767453709e-07, 1e-10);
	assert_rel(ci.hi, 5.664911804311442e-06, 1e-10);
	wilson(999999, 1000000, &ci);
	assert_rel(ci.lo, 0.9999943350881957, 1e-12);
	assert_rel(ci.hi, 0.9999998234754233, 1e-12);
}

static void test_wilson_empty_is_unit_interval(void **state)
{
	struct kaf_interval ci = { .lo = -1.0, .hi = -1.0 };

	(void)state;
	wilson(0, 0, &ci);
	assert_true(ci.lo == 0.0 && ci.hi == 1.0);
}

static void test_wilson_rejects_bad_counts(void **state)
{
	struct kaf_interval ci;
	struct kaf_error err = { .msg = "" };

	(void)state;
	assert_int_equal(kaf_stats_wilson(11, 10, &ci, &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, "k = 11"));
	assert_int_equal(kaf_stats_wilson(-1, 10, &ci, NULL), KAF_EINVAL);
	assert_int_equal(kaf_stats_wilson(0, -1, &ci, NULL), KAF_EINVAL);
}

/* ---- Fisher ---- */

static double fisher(long a, long b, long c, long d)
{
	const long t[4] = { a, b, c, d };
	double p = -1.0;

	assert_int_equal(kaf_stats_fisher(t, &p, NULL), KAF_OK);
	return p;
}

/*
 * Lady tasting tea: weights 1, 16, 36, 16, 1 out of 70, so the two-sided
 * p is 34 / 70. The two tables of weight 16 tie exactly; missing the tie
 * tolerance or summing one side only gives 17 / 70.
 */
static void test_fisher_tea_tasting(void **state)
{
	(void)state;
	assert_rel(fisher(3, 1, 1, 3), 34.0 / 70.0, 1e-12);
}

/*
 * [[0, 5], [7, 2]]: the extreme tables x = 0 and x = 5 tie at weight 21
 * of 1716, p = 36 / 1716 = 3 / 143 (math.comb). Here, unlike the tea
 * table, the two log weights differ by rounding, so dropping the 1e-7
 * tie tolerance halves p.
 */
static void test_fisher_rounded_ties_count(void **state)
{
	(void)state;
	assert_rel(fisher(0, 5, 7, 2), 3.0 / 143.0, 1e-12);
	/* 5 / 1292, math.comb */
	assert_rel(fisher(0, 7, 11, 4), 5.0 / 1292.0, 1e-12);
}

/* Exact fractions by hand or with math.comb; 1e-10. */
static void test_fisher_small_tables(void **state)
{
	(void)state;
	/* 2 / C(10, 5) = 2 / 252 by hand */
	assert_rel(fisher(0, 5, 5, 0), 2.0 / 252.0, 1e-10);
	/* math.comb; scipy fisher_exact agrees to 1e-15 */
	assert_rel(fisher(1, 9, 11, 3), 0.0027594561852200836, 1e-10);
	assert_rel(fisher(2, 7, 8, 2), 0.023014137565221155, 1e-10);
}

/*
 * Counts in the thousands and beyond: exact math.comb sums. lgamma near
 * 10^6 carries ~1e-9 absolute error, hence 1e-7.
 */
static void test_fisher_large_tables(void **state)
{
	(void)state;
	assert_rel(fisher(470, 530, 760, 240), 5.651675733730754e-41, 1e-7);
	assert_rel(fisher(480, 520, 500, 500), 0.3953996780940272, 1e-7);
	assert_rel(fisher(100000, 2000, 99000, 2100), 0.06264749054608629,
		   1e-7);
}

/* Swapping rows, columns or transposing must not change p. */
static void test_fisher_orientation_invariant(void **state)
{
	double p = fisher(2, 7, 8, 2);

	(void)state;
	assert_rel(fisher(8, 2, 2, 7), p, 1e-12);
	assert_rel(fisher(7, 2, 2, 8), p, 1e-12);
	assert_rel(fisher(2, 8, 7, 2), p, 1e-12);
}

static void test_fisher_degenerate_tables(void **state)
{
	(void)state;
	assert_true(fisher(0, 0, 0, 0) == 1.0);
	assert_true(fisher(5, 0, 7, 0) == 1.0);
	assert_rel(fisher(5, 5, 5, 5), 1.0, 1e-12);
}

static void test_fisher_rejects_negative(void **state)
{
	const long t[4] = { 1, 2, -3, 4 };
	struct kaf_error err = { .msg = "" };
	double p;

	(void)state;
	assert_int_equal(kaf_stats_fisher(t, &p, &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, "-3"));
}

/* ---- McNemar ---- */

static double mcnemar(long b, long c)
{
	double p = -1.0;

	assert_int_equal(kaf_stats_mcnemar(b, c, &p, NULL), KAF_OK);
	return p;
}

static void test_mcnemar_small_exact(void **state)
{
	(void)state;
	/* 2 (1 + 12 + 66) / 2^12 = 158 / 4096 by hand */
	assert_rel(mcnemar(10, 2), 158.0 / 4096.0, 1e-12);
	assert_rel(mcnemar(2, 10), 158.0 / 4096.0, 1e-12);
	/* 2 / 2^7 */
	assert_rel(mcnemar(0, 7), 1.0 / 64.0, 1e-12);
	/* math.comb sum over 2^42; scipy binomtest agrees */
	assert_rel(mcnemar(30, 12), 0.007915897334896727, 1e-10);
}

/* 2 P(X <= 900), X ~ Bin(1900, 1/2), exact with math.comb. */
static void test_mcnemar_large(void **state)
{
	(void)state;
	assert_rel(mcnemar(1000, 900), 0.02310884510890107, 1e-8);
}

/* P(X <= 3) = 1/2 for Bin(7, 1/2), so p is exactly 1, as for b == c. */
static void test_mcnemar_balanced_gives_one(void **state)
{
	(void)state;
	assert_true(mcnemar(0, 0) == 1.0);
	assert_true(mcnemar(5, 5) == 1.0);
	assert_rel(mcnemar(3, 4), 1.0, 1e-12);
	assert_true(mcnemar(400000, 400000) == 1.0);
}

static void test_mcnemar_rejects_negative(void **state)
{
	double p;

	(void)state;
	assert_int_equal(kaf_stats_mcnemar(-1, 3, &p, NULL), KAF_EINVAL);
	assert_int_equal(kaf_stats_mcnemar(3, -1, &p, NULL), KAF_EINVAL);
}

/* ---- incomplete gamma and chi-square tail ---- */

/* Published 5 % critical values: 3.841459 (df 1), 5.991465 (df 2). */
static void test_chi2_sf_known_quantiles(void **state)
{
	(void)state;
	assert_rel(kaf_stats_chi2_sf(3.841458820694124, 1), 0.05, 1e-12);
	assert_rel(kaf_stats_chi2_sf(5.991464547107979, 2), 0.05, 1e-12);
	assert_true(kaf_stats_chi2_sf(0.0, 3) == 1.0);
	assert_true(isnan(kaf_stats_chi2_sf(1.0, 0)));
}

/* scipy stats.chi2.sf; far tails must keep relative precision. */
static void test_chi2_sf_tails(void **state)
{
	(void)state;
	assert_rel(kaf_stats_chi2_sf(100.0, 1), 1.5239706048320995e-23, 1e-10);
	assert_rel(kaf_stats_chi2_sf(200.0, 4), 3.75727673578106e-42, 1e-10);
	assert_rel(kaf_stats_chi2_sf(30.0, 20), 0.06985366069940986, 1e-12);
	assert_rel(kaf_stats_chi2_sf(0.5, 3), 0.9188914116546758, 1e-12);
	assert_rel(kaf_stats_chi2_sf(1e-6, 1), 0.9992021155721779, 1e-12);
}

/* Q(1, x) = e^-x and Q(1/2, x) = erfc(sqrt x); values from scipy. */
static void test_gamma_q_closed_forms(void **state)
{
	(void)state;
	assert_rel(kaf_stats_gamma_q(1.0, 2.5), 0.0820849986238988, 1e-12);
	assert_rel(kaf_stats_gamma_q(0.5, 2.0), 0.04550026389635857, 1e-12);
}

/* x = a + 1 switches from the series to the continued fraction. */
static void test_gamma_both_sides_of_switch(void **state)
{
	(void)state;
	assert_rel(kaf_stats_gamma_q(5.0, 5.9), 0.2986647867616197, 1e-12);
	assert_rel(kaf_stats_gamma_p(5.0, 5.9), 0.7013352132383803, 1e-12);
	assert_rel(kaf_stats_gamma_q(5.0, 6.1), 0.27189426531895466, 1e-12);
	assert_rel(kaf_stats_gamma_p(5.0, 6.1), 0.7281057346810453, 1e-12);
	/* lgamma(500) ~ 2600 limits the prefactor to ~1e-13 */
	assert_rel(kaf_stats_gamma_q(500.0, 520.0), 0.18469114909874365,
		   1e-10);
}

static void test_gamma_small_tails(void **state)
{
	(void)state;
	assert_rel(kaf_stats_gamma_p(3.0, 0.01), 1.6542165280748778e-07,
		   1e-12);
	assert_rel(kaf_stats_gamma_q(2.5, 40.0), 8.391825114831597e-16,
		   1e-12);
	assert_rel(kaf_stats_gamma_q(0.1, 1e-3), 0.473231431607555, 1e-12);
}

static void test_gamma_edges(void **state)
{
	(void)state;
	assert_true(kaf_stats_gamma_p(2.0, 0.0) == 0.0);
	assert_true(kaf_stats_gamma_q(2.0, 0.0) == 1.0);
	assert_true(kaf_stats_gamma_p(2.0, INFINITY) == 1.0);
	assert_true(kaf_stats_gamma_q(2.0, INFINITY) == 0.0);
	assert_true(kaf_stats_gamma_q(0.5, 2000.0) == 0.0);
	assert_true(isnan(kaf_stats_gamma_q(0.0, 1.0)));
	assert_true(isnan(kaf_stats_gamma_q(-1.0, 1.0)));
	assert_true(isnan(kaf_stats_gamma_p(1.0, -1.0)));
	assert_true(isnan(kaf_stats_gamma_p(NAN, 1.0)));
	assert_true(isnan(kaf_stats_gamma_q(1.0, NAN)));
}

/* ---- chi-square test ---- */

static void chi2(const long *t, int r, int k, struct kaf_chi2 *out)
{
	assert_int_equal(kaf_stats_chi2(t, r, k, out, NULL), KAF_OK);
}

/*
 * By hand: margins 30, 70 by 40, 60 of 100; expected 12, 18, 28, 42;
 * every (O - E)^2 is 4, so X^2 = 4 (1/12 + 1/18 + 1/28 + 1/42) = 50/63
 * and V = sqrt(X^2 / 100) = sqrt(1/126). p from scipy chi2_contingency.
 */
static void test_chi2_table_by_hand(void **state)
{
	const long t[4] = { 10, 20, 30, 40 };
	struct kaf_chi2 res;

	(void)state;
	chi2(t, 2, 2, &res);
	assert_rel(res.stat, 50.0 / 63.0, 1e-12);
	assert_int_equal(res.df, 1);
	assert_rel(res.cramer_v, sqrt(1.0 / 126.0), 1e-12);
	assert_rel(res.p, 0.37299848361348686, 1e-12);
}

/*
 * The empty middle row is dropped: same as [[5, 5], [2, 8]], by hand
 * expected 3.5, 6.5 per row, (O - E)^2 = 2.25, X^2 = 180/91, df 1.
 */
static void test_chi2_drops_empty_rows(void **state)
{
	const long t[6] = { 5, 5, 0, 0, 2, 8 };
	struct kaf_chi2 res;

	(void)state;
	chi2(t, 3, 2, &res);
	assert_rel(res.stat, 180.0 / 91.0, 1e-12);
	assert_int_equal(res.df, 1);
	assert_rel(res.p, 0.15959894244264472, 1e-12);
}

/* All runs diverged: one outcome column only, nothing to test. */
static void test_chi2_single_column_is_untestable(void **state)
{
	const long t[6] = { 3, 0, 4, 0, 9, 0 };
	const long empty[4] = { 0, 0, 0, 0 };
	struct kaf_chi2 res;

	(void)state;
	chi2(t, 3, 2, &res);
	assert_int_equal(res.df, 0);
	assert_true(res.stat == 0.0 && res.p == 1.0 && res.cramer_v == 0.0);
	chi2(empty, 2, 2, &res);
	assert_int_equal(res.df, 0);
	assert_true(res.p == 1.0);
}

/* scipy chi2_contingency(correction=False). */
static void test_chi2_many_groups(void **state)
{
	const long t[8] = { 12, 88, 30, 70, 25, 75, 40, 60 };
	const long big[4] = { 470, 530, 760, 240 };
	struct kaf_chi2 res;

	(void)state;
	chi2(t, 4, 2, &res);
	assert_rel(res.stat, 20.7585085005263, 1e-12);
	assert_int_equal(res.df, 3);
	assert_rel(res.p, 0.00011815971178491222, 1e-10);
	/* scipy.stats.contingency.association(method='cramer') */
	assert_rel(res.cramer_v, 0.22780753115583285, 1e-12);
	chi2(big, 2, 2, &res);
	assert_rel(res.stat, 177.5947629606166, 1e-12);
	assert_rel(res.p, 1.6240533077621714e-40, 1e-9);
}

/* 3x3, so V divides by N (3 - 1); scipy chi2_contingency, association. */
static void test_chi2_three_categories(void **state)
{
	const long t[9] = { 10, 5, 5, 3, 12, 5, 4, 4, 12 };
	struct kaf_chi2 res;

	(void)state;
	chi2(t, 3, 3, &res);
	assert_rel(res.stat, 14.941940412528647, 1e-12);
	assert_int_equal(res.df, 4);
	assert_rel(res.p, 0.004823163887982786, 1e-10);
	assert_rel(res.cramer_v, 0.35286848839816426, 1e-12);
}

/*
 * Perfect association, by hand. 2x2: E = 25 everywhere, X^2 = 4 * 625 /
 * 25 = 100 = N. 3x3 diagonal of 10s: E = 10/3; diagonal cells add 40/3
 * each, the six others 10/3 each, X^2 = 60 = N (3 - 1), df 4, p from
 * scipy chi2.sf(60, 4). V = 1 in both.
 */
static void test_chi2_cramer_v_perfect(void **state)
{
	const long t[4] = { 50, 0, 0, 50 };
	const long t3[9] = { 10, 0, 0, 0, 10, 0, 0, 0, 10 };
	struct kaf_chi2 res;

	(void)state;
	chi2(t, 2, 2, &res);
	assert_rel(res.stat, 100.0, 1e-12);
	assert_rel(res.cramer_v, 1.0, 1e-12);
	chi2(t3, 3, 3, &res);
	assert_rel(res.stat, 60.0, 1e-12);
	assert_int_equal(res.df, 4);
	assert_rel(res.p, 2.9008631203404573e-12, 1e-10);
	assert_rel(res.cramer_v, 1.0, 1e-12);
}

static void test_chi2_rejects_bad_input(void **state)
{
	const long t[4] = { 1, 2, 3, -4 };
	struct kaf_chi2 res;
	struct kaf_error err = { .msg = "" };

	(void)state;
	assert_int_equal(kaf_stats_chi2(t, 0, 2, &res, NULL), KAF_EINVAL);
	assert_int_equal(kaf_stats_chi2(t, 2, 2, &res, &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, "row 1, column 1"));
}

/* ---- Holm ---- */

/*
 * By hand: sorted 0.005, 0.01, 0.03, 0.04 scaled by 4, 3, 2, 1 give
 * 0.02, 0.03, 0.06, 0.04; the running maximum lifts the last to 0.06.
 */
static void test_holm_hand_example(void **state)
{
	double p[4] = { 0.01, 0.04, 0.03, 0.005 };
	const double want[4] = { 0.03, 0.06, 0.06, 0.02 };

	(void)state;
	assert_int_equal(kaf_stats_holm(p, p, 4, NULL), KAF_OK);
	for (int i = 0; i < 4; i++)
		assert_rel(p[i], want[i], 1e-12);
}

static void test_holm_caps_at_one(void **state)
{
	const double p[3] = { 0.5, 0.6, 0.5 };
	double adj[3];

	(void)state;
	assert_int_equal(kaf_stats_holm(p, adj, 3, NULL), KAF_OK);
	for (int i = 0; i < 3; i++)
		assert_true(adj[i] == 1.0);
	assert_int_equal(kaf_stats_holm(p, adj, 0, NULL), KAF_OK);
}

static void test_holm_rejects_out_of_range(void **state)
{
	const double p[2] = { 0.1, NAN };
	const double q[2] = { 0.1, 1.5 };
	double adj[2];

	(void)state;
	assert_int_equal(kaf_stats_holm(p, adj, 2, NULL), KAF_EINVAL);
	assert_int_equal(kaf_stats_holm(q, adj, 2, NULL), KAF_EINVAL);
}

/* ---- p-value prose ---- */

static void expect_format(double p, const char *want)
{
	char buf[KAF_STATS_P_LEN];

	assert_int_equal(kaf_stats_format_p(p, buf, sizeof(buf), NULL),
			 KAF_OK);
	assert_string_equal(buf, want);
}

static void test_format_p_styles(void **state)
{
	(void)state;
	expect_format(0.032, "p = 0.032");
	expect_format(34.0 / 70.0, "p = 0.486");
	expect_format(1.0, "p = 1.000");
	expect_format(3.1e-05, "p = 3.1e-05");
	expect_format(0.0012, "p = 1.2e-03");
	expect_format(1e-9, "p = 1.0e-09");
	expect_format(9.99e-10, "p < 1e-9");
	expect_format(0.0, "p < 1e-9");
}

static void test_format_p_rejects_bad_input(void **state)
{
	char small[6] = "xxxxx";
	char buf[KAF_STATS_P_LEN];

	(void)state;
	assert_int_equal(kaf_stats_format_p(0.5, small, sizeof(small), NULL),
			 KAF_EINVAL);
	assert_string_equal(small, "");
	assert_int_equal(kaf_stats_format_p(1.5, buf, sizeof(buf), NULL),
			 KAF_EINVAL);
	assert_int_equal(kaf_stats_format_p(NAN, buf, sizeof(buf), NULL),
			 KAF_EINVAL);
	assert_int_equal(kaf_stats_format_p(-0.1, buf, sizeof(buf), NULL),
			 KAF_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wilson_zero_successes),
		cmocka_unit_test(test_wilson_all_successes),
		cmocka_unit_test(test_wilson_half),
		cmocka_unit_test(test_wilson_rare_event_keeps_precision),
		cmocka_unit_test(test_wilson_empty_is_unit_interval),
		cmocka_unit_test(test_wilson_rejects_bad_counts),
		cmocka_unit_test(test_fisher_tea_tasting),
		cmocka_unit_test(test_fisher_rounded_ties_count),
		cmocka_unit_test(test_fisher_small_tables),
		cmocka_unit_test(test_fisher_large_tables),
		cmocka_unit_test(test_fisher_orientation_invariant),
		cmocka_unit_test(test_fisher_degenerate_tables),
		cmocka_unit_test(test_fisher_rejects_negative),
		cmocka_unit_test(test_mcnemar_small_exact),
		cmocka_unit_test(test_mcnemar_large),
		cmocka_unit_test(test_mcnemar_balanced_gives_one),
		cmocka_unit_test(test_mcnemar_rejects_negative),
		cmocka_unit_test(test_chi2_sf_known_quantiles),
		cmocka_unit_test(test_chi2_sf_tails),
		cmocka_unit_test(test_gamma_q_closed_forms),
		cmocka_unit_test(test_gamma_both_sides_of_switch),
		cmocka_unit_test(test_gamma_small_tails),
		cmocka_unit_test(test_gamma_edges),
		cmocka_unit_test(test_chi2_table_by_hand),
		cmocka_unit_test(test_chi2_drops_empty_rows),
		cmocka_unit_test(test_chi2_single_column_is_untestable),
		cmocka_unit_test(test_chi2_many_groups),
		cmocka_unit_test(test_chi2_three_categories),
		cmocka_unit_test(test_chi2_cramer_v_perfect),
		cmocka_unit_test(test_chi2_rejects_bad_input),
		cmocka_unit_test(test_holm_hand_example),
		cmocka_unit_test(test_holm_caps_at_one),
		cmocka_unit_test(test_holm_rejects_out_of_range),
		cmocka_unit_test(test_format_p_styles),
		cmocka_unit_test(test_format_p_rejects_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
