/*
 * test_shape.c - the shape judgement of experiment 2 on synthetic curves
 * whose answers are known analytically.
 *
 * Each curve is sampled on 101 evenly spaced z values, as kaf samples a
 * learned link. The ranges are chosen so that the answer does not sit on
 * a threshold: for the sigmoid on [-6, 6], the last tenth of the span
 * rises by 0.6 % of the range (bounded: below 2 %) and no tenth of the
 * span stays within 0.1 % (no plateau).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "error.h"
#include "shape.h"

#define N 101

struct curve {
	double z[N], y[N];
};

/* Sample f on [a, b]. */
static void sample(struct curve *c, double a, double b, double (*f)(double))
{
	for (int i = 0; i < N; i++) {
		c->z[i] = a + (b - a) * i / (N - 1);
		c->y[i] = f(c->z[i]);
	}
}

static struct kaf_shape judge(const struct curve *c)
{
	struct kaf_shape s;

	assert_int_equal(kaf_shape_judge(c->z, c->y, N, &s), KAF_OK);
	return s;
}

/* increasing, decreasing, zero gradient, bounded above */
static void expect(const struct kaf_shape *s, bool inc, bool dec, bool zero,
		   bool bounded)
{
	assert_int_equal(s->increasing, inc);
	assert_int_equal(s->decreasing, dec);
	assert_int_equal(s->zero_gradient, zero);
	assert_int_equal(s->bounded_above, bounded);
	assert_int_equal(isnan(s->zero_z), !zero || s->flat);
}

static double wavy_ramp(double z)
{
	return z + 0.3 * sin(z);        /* slope 0.7 .. 1.3 */
}

static double decay(double z)
{
	return exp(-z);
}

static double bump(double z)
{
	return exp(-z * z / 2);
}

static double dip(double z)
{
	return -exp(-z * z / 2);
}

static double sigmoid(double z)
{
	return 1 / (1 + exp(-z));
}

static double relu(double z)
{
	return z > 0 ? z : 0;
}

static double swish(double z)
{
	return z * sigmoid(z);
}

/* 0, then a smooth rise on [-1, 1], then 1: a kernel link's step. */
static double smooth_step(double z)
{
	if (z <= -1)
		return 0;
	if (z >= 1)
		return 1;
	return 0.5 + 0.75 * z - 0.25 * z * z * z;
}

static double constant(double z)
{
	(void)z;
	return 0.25;
}

static void test_shape_increasing(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -3, 3, wavy_ramp);
	s = judge(&c);
	expect(&s, true, false, false, false);
	assert_false(s.flat);
	assert_true(fabs(s.min - wavy_ramp(-3)) < 1e-12);
	assert_true(fabs(s.max - wavy_ramp(3)) < 1e-12);
}

static void test_shape_decreasing(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, 0, 4, decay);
	s = judge(&c);
	/* Its maximum is at the left end, where it still climbs steeply. */
	expect(&s, false, true, false, false);
}

static void test_shape_bump_has_zero_gradient_and_bound(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -3, 3, bump);
	s = judge(&c);
	expect(&s, false, false, true, true);
	/* The turning point is the grid point at the top: z = 0 exactly. */
	assert_true(fabs(s.zero_z) < 1e-12);
}

static void test_shape_dip_is_not_bounded_above(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -3, 3, dip);
	s = judge(&c);
	expect(&s, false, false, true, false);
}

static void test_shape_sigmoid_saturates(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -6, 6, sigmoid);
	s = judge(&c);
	expect(&s, true, false, false, true);
}

static void test_shape_ramp_and_exponential_are_unbounded(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -2, 3, exp);
	s = judge(&c);
	expect(&s, true, false, false, false);
	for (int i = 0; i < N; i++)
		c.y[i] = 2 * c.z[i] + 1;
	s = judge(&c);
	expect(&s, true, false, false, false);
}

static void test_shape_flat(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -1, 1, constant);
	s = judge(&c);
	assert_true(s.flat);
	expect(&s, false, false, true, true);
	/* Rounding noise far below the range threshold is still flat. */
	for (int i = 0; i < N; i++)
		c.y[i] += (i % 2 ? 1 : -1) * 1e-9;
	s = judge(&c);
	assert_true(s.flat);
	/* All zero: no range, no scale. */
	for (int i = 0; i < N; i++)
		c.y[i] = 0;
	s = judge(&c);
	assert_true(s.flat);
}

static void test_shape_relu_has_a_plateau(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -2, 2, relu);
	s = judge(&c);
	expect(&s, true, false, true, false);
	/* The plateau is [-2, 0] (within tol of 0 up to z = 0.0): middle -1. */
	assert_true(fabs(s.zero_z + 1) < 1e-9);
}

static void test_shape_step_has_plateaus_and_bound(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -3, 3, smooth_step);
	s = judge(&c);
	expect(&s, true, false, true, true);
	assert_true(s.zero_z < -1);
}

static void test_shape_swish_turns_at_its_minimum(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -6, 4, swish);
	s = judge(&c);
	expect(&s, false, false, true, false);
	/* swish' = 0 at z = -1.2785; the grid step is 0.1. */
	assert_true(fabs(s.zero_z + 1.2785) <= 0.05 + 1e-9);
}

static void test_shape_wiggles_below_tolerance_are_ignored(void **state)
{
	struct curve c;
	struct kaf_shape s;
	double range;

	(void)state;
	sample(&c, -6, 6, sigmoid);
	range = sigmoid(6) - sigmoid(-6);
	/* Falls of up to 6e-4 R where the curve is flat: within tol. */
	for (int i = 0; i < N; i++)
		c.y[i] += (i % 2 ? 3e-4 : -3e-4) * range;
	s = judge(&c);
	expect(&s, true, false, false, true);
	/* A fall of 3e-3 R is a turn. */
	c.y[N - 10] -= 3e-3 * range;
	s = judge(&c);
	assert_false(s.increasing);
	assert_true(s.zero_gradient);
}

static void test_shape_rejects_bad_input(void **state)
{
	struct curve c;
	struct kaf_shape s;

	(void)state;
	sample(&c, -1, 1, sigmoid);
	assert_int_equal(kaf_shape_judge(c.z, c.y, 2, &s), KAF_EINVAL);
	assert_true(isnan(s.zero_z));
	c.y[5] = NAN;
	assert_int_equal(kaf_shape_judge(c.z, c.y, N, &s), KAF_EINVAL);
	c.y[5] = 0.5;
	c.z[7] = c.z[6];
	assert_int_equal(kaf_shape_judge(c.z, c.y, N, &s), KAF_EINVAL);
	c.z[7] = INFINITY;
	assert_int_equal(kaf_shape_judge(c.z, c.y, N, &s), KAF_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shape_increasing),
		cmocka_unit_test(test_shape_decreasing),
		cmocka_unit_test(test_shape_bump_has_zero_gradient_and_bound),
		cmocka_unit_test(test_shape_dip_is_not_bounded_above),
		cmocka_unit_test(test_shape_sigmoid_saturates),
		cmocka_unit_test(
			test_shape_ramp_and_exponential_are_unbounded),
		cmocka_unit_test(test_shape_flat),
		cmocka_unit_test(test_shape_relu_has_a_plateau),
		cmocka_unit_test(test_shape_step_has_plateaus_and_bound),
		cmocka_unit_test(test_shape_swish_turns_at_its_minimum),
		cmocka_unit_test(
			test_shape_wiggles_below_tolerance_are_ignored),
		cmocka_unit_test(test_shape_rejects_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
