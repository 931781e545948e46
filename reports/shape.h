/*
 * shape.h - the shape of a learned link, judged from its sampled curve.
 *
 * Experiment 2 asks four questions of every learned link y_hat_k(z): is
 * it monotonically increasing, monotonically decreasing, does it have a
 * point of zero gradient, is it bounded above? kaf_shape_judge answers
 * them from n points (z_i, y_i) with z ascending. Every threshold is a
 * fraction of the curve's own range R = max y - min y, or of its z span,
 * so the answers do not depend on the units of y or z:
 *
 *   tol = KAF_SHAPE_TOL * R.
 *   flat: R <= KAF_SHAPE_FLAT * max |y_i|. A flat curve is neither
 *     increasing nor decreasing, has zero gradient and is bounded above.
 *   increasing: the curve never falls more than tol below its running
 *     maximum; decreasing: never rises more than tol above its running
 *     minimum. A curve that is neither has turned: it rose and fell (or
 *     fell and rose) by more than tol.
 *   zero gradient: the curve has turned (a smooth curve that rises and
 *     then falls has a zero slope in between, at the turning point), or
 *     it stays within tol over a stretch of at least KAF_SHAPE_STRETCH of
 *     the z span (a plateau).
 *   bounded above: at each end where the curve comes within tol of its
 *     maximum, it flattens: over the last KAF_SHAPE_STRETCH of the z span
 *     toward that end it rises by less than KAF_SHAPE_END_RISE * R. A
 *     curve whose maximum is interior is bounded above.
 *
 * The judgement holds on the sampled range and at its resolution: an
 * asymptote that stays within tol over a tenth of the span counts as a
 * plateau, since a finite grid cannot tell it from one.
 *
 * Memory: none allocated. Pure and thread-safe.
 * Errors: KAF_EINVAL for fewer than KAF_SHAPE_MIN_POINTS points, a value
 * that is not finite, or z not strictly ascending.
 */
#ifndef KAF_SHAPE_H
#define KAF_SHAPE_H

#include <stdbool.h>

/* Tolerance of the monotonicity, turning and plateau tests, times R. */
#define KAF_SHAPE_TOL 1e-3

/* Below this fraction of max |y| the range counts as no range at all. */
#define KAF_SHAPE_FLAT 1e-6

/* Length of a plateau and of the end zones, as a fraction of z span. */
#define KAF_SHAPE_STRETCH 0.10

/* The most an end zone may rise toward its end to flatten, times R. */
#define KAF_SHAPE_END_RISE 0.02

#define KAF_SHAPE_MIN_POINTS 3

struct kaf_shape {
	double min, max;        /* of y; R = max - min */
	bool flat;
	bool increasing, decreasing, zero_gradient, bounded_above;
	/*
	 * Where the slope is zero: the first turning point, else the middle
	 * of the first plateau; NaN when there is none. A flat curve has
	 * zero slope everywhere and reports NaN too.
	 */
	double zero_z;
};

/*
 * Judge the curve (z[i], y[i]), i < n, into *out. On error *out is
 * zeroed with zero_z NaN.
 */
int kaf_shape_judge(const double *z, const double *y, int n,
		    struct kaf_shape *out);

#endif
