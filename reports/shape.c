#include "shape.h"

#include <math.h>

#include "error.h"

/*
 * Zone and plateau lengths compare differences of z with a fraction of
 * the span; on an even grid they are equal up to rounding, so the
 * comparison allows this relative slack.
 */
#define SPAN_SLACK 1e-9

/*
 * The first turning point at resolution tol, or -1. Until the curve has
 * moved more than tol it has no trend; then ext follows the extreme in
 * the trend's direction (the running maximum of a rising curve), and the
 * first point more than tol back from it makes ext a turning point.
 * *trend ends as +1 (rising), -1 (falling) or 0 (never moved).
 */
static int first_turn(const double *y, int n, double tol, int *trend)
{
	int lo = 0, hi = 0, ext = 0;

	*trend = 0;
	for (int j = 1; j < n; j++) {
		if (*trend == 0) {
			hi = y[j] > y[hi] ? j : hi;
			lo = y[j] < y[lo] ? j : lo;
			if (y[hi] - y[lo] > tol) {
				*trend = hi > lo ? 1 : -1;
				ext = *trend > 0 ? hi : lo;
			}
		} else if (*trend > 0 ? y[j] > y[ext] : y[j] < y[ext]) {
			ext = j;
		} else if (fabs(y[ext] - y[j]) > tol) {
			return ext;
		}
	}
	return -1;
}

/*
 * The middle z of the first stretch of at least KAF_SHAPE_STRETCH of the
 * span over which y stays within tol; NaN if there is none. Quadratic in
 * n, which is about a hundred points here.
 */
static double plateau_middle(const double *z, const double *y, int n,
			     double tol)
{
	double need = KAF_SHAPE_STRETCH * (z[n - 1] - z[0]) *
		      (1 - SPAN_SLACK);

	for (int i = 0; i < n; i++) {
		double lo = y[i], hi = y[i];
		int end = i;

		for (int j = i + 1; j < n; j++) {
			lo = fmin(lo, y[j]);
			hi = fmax(hi, y[j]);
			if (hi - lo > tol)
				break;
			end = j;
		}
		if (z[end] - z[i] >= need)
			return 0.5 * (z[i] + z[end]);
	}
	return NAN;
}

/*
 * Whether the curve flattens toward one end: over the last
 * KAF_SHAPE_STRETCH of the span it rises toward that end by less than
 * KAF_SHAPE_END_RISE * range.
 */
static bool end_flattens(const double *z, const double *y, int n,
			 double range, bool right)
{
	double zone = KAF_SHAPE_STRETCH * (z[n - 1] - z[0]) *
		      (1 + SPAN_SLACK);
	int end = right ? n - 1 : 0, step = right ? -1 : 1;
	double low = y[end];

	for (int i = end; i >= 0 && i < n && fabs(z[i] - z[end]) <= zone;
	     i += step)
		low = fmin(low, y[i]);
	return y[end] - low < KAF_SHAPE_END_RISE * range;
}

static int check_input(const double *z, const double *y, int n)
{
	if (n < KAF_SHAPE_MIN_POINTS)
		return KAF_EINVAL;
	for (int i = 0; i < n; i++) {
		if (!isfinite(z[i]) || !isfinite(y[i]))
			return KAF_EINVAL;
		if (i > 0 && !(z[i] > z[i - 1]))
			return KAF_EINVAL;
	}
	return KAF_OK;
}

int kaf_shape_judge(const double *z, const double *y, int n,
		    struct kaf_shape *out)
{
	double range, tol;
	int trend, turn;
	bool left, right;

	*out = (struct kaf_shape){.zero_z = NAN};
	if (check_input(z, y, n))
		return KAF_EINVAL;
	out->min = out->max = y[0];
	for (int i = 1; i < n; i++) {
		out->min = fmin(out->min, y[i]);
		out->max = fmax(out->max, y[i]);
	}
	range = out->max - out->min;
	out->flat = range <= KAF_SHAPE_FLAT * fmax(fabs(out->min),
						   fabs(out->max));
	if (out->flat) {
		out->zero_gradient = out->bounded_above = true;
		return KAF_OK;
	}

	tol = KAF_SHAPE_TOL * range;
	turn = first_turn(y, n, tol, &trend);
	out->increasing = turn < 0 && trend > 0;
	out->decreasing = turn < 0 && trend < 0;
	out->zero_z = turn >= 0 ? z[turn] : plateau_middle(z, y, n, tol);
	out->zero_gradient = !isnan(out->zero_z);

	left = y[0] < out->max - tol || end_flattens(z, y, n, range, false);
	right = y[n - 1] < out->max - tol ||
		end_flattens(z, y, n, range, true);
	out->bounded_above = left && right;
	return KAF_OK;
}
