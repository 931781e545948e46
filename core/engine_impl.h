/*
 * engine_impl.h - the network, K-AF and training in one precision.
 *
 * Included by engine.c once per precision with these defined:
 *   T          float or double: every stored value and every operation
 *   SFX(name)  name with the precision's suffix (_f32, _f64)
 *   VEXP       the vectorizable exp of that precision (vexp.h)
 *
 * Dimension letters used in the shape comments:
 *   n  training rows          nv  validation rows
 *   d  input features         l   hidden units
 *   e  outputs                c   calc rows of K-AF
 *   m  rows of one forward pass (n, nv or c)
 *
 * Activations are stored feature-major: features x^T (d, m), hidden units
 * (l, m), pre-activations z (e, m), one contiguous row of m values per
 * unit. Every product is then an axpy over rows or a dot product over
 * rows, long and contiguous: the compiler vectorizes both, axpys keep a
 * sequential order per element and dot products use SFX(dot)'s fixed
 * eight lanes, so results do not depend on the SIMD width of the machine
 * or on the thread that runs them. Weights keep PyTorch's layout.
 */

/* Sum of v[0..count): lane q takes v[q], v[q + 8], ...; then a tree. */
static inline T SFX(sum)(const T *v, int count)
{
	T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	int j = 0;

	for (; j + 8 <= count; j += 8)
		for (int q = 0; q < 8; q++)
			acc[q] += v[j + q];
	for (int q = 0; j < count; j++, q++)
		acc[q] += v[j];
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
	       ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Dot product of a and b in the same fixed order. */
static inline T SFX(dot)(const T *a, const T *b, int count)
{
	T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	int j = 0;

	for (; j + 8 <= count; j += 8)
		for (int q = 0; q < 8; q++)
			acc[q] += a[j + q] * b[j + q];
	for (int q = 0; j < count; j++, q++)
		acc[q] += a[j] * b[j];
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
	       ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* dst[0..m) += a * src[0..m) */
static inline void SFX(axpy)(T *restrict dst, T a, const T *restrict src,
			     int m)
{
#pragma omp simd
	for (int i = 0; i < m; i++)
		dst[i] += a * src[i];
}

#define NET SFX(net)

/*
 * The hot loops are compiled once per instruction set and picked at load
 * time. With contraction off and sums in fixed lanes, every version gives
 * bit-identical results; only the speed differs.
 */
#ifndef KAF_HOT
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KAF_HOT __attribute__((target_clones("avx2", "default")))
#else
#define KAF_HOT
#endif
#endif

struct NET {
	int n, nv, d, l, e, c;
	int cp;                 /* c rounded up to a multiple of 8 */
	int np;                 /* parameters the optimizer updates */
	int step;               /* optimizer steps taken */
	bool classification;
	enum kaf_activation act;
	enum kaf_kernel kernel;
	enum kaf_reg reg;
	T lambda;

	T *x;                   /* (d, n) training features */
	T *y;                   /* (e, n) training targets */
	T *xv;                  /* (d, nv) validation features */
	T *yv;                  /* (e, nv) validation targets */
	T *xc;                  /* (d, c) calc-row features */
	int *calc;              /* (c) training row of each calc row */
	int *pos;               /* (n) position in calc, -1 if absent */

	T *theta;               /* (P) W1 (l, d) | W2 (e, l) | h */
	T *w1, *w2, *h;         /* views into theta */
	T *grad;                /* (P) same layout as theta */
	T *state1, *state2;     /* (P) optimizer moments */

	T *hid;                 /* (l, m) post-ReLU hidden units */
	T *z;                   /* (e, m) pre-activations */
	T *yhat;                /* (e, m) outputs */
	T *gz;                  /* (e, n) loss gradient at z */
	T *ghid;                /* (l, n) loss gradient at hidden units */
	T *ycal;                /* (e, c) calc targets by calc position */
	T *zc;                  /* (e, cp) calc pre-activations, sorted */
	T *yc;                  /* (e, cp) their targets, same order */
	int *ord;               /* (e, c) calc position of each sorted slot */
	int *rank;              /* (e, c) sorted slot of each calc position */
	bool *sorted;           /* (e) column sorted, so windows apply */
	int *win;               /* (m, e, 2) first and end slot of a row */
	T *gzc;                 /* (e, cp) gradient at sorted calc slots */
	T *kexp;                /* (m, e, cp) exp values of the last forward */
	T *kden;                /* (n, e) kernel denominators */
	T *t;                   /* (cp) exponent scratch */
	T *u;                   /* (cp) scaled distance scratch */
	T *v1, *v2;             /* (cp) per-term scratch for sums */
	int zero_den;           /* rows whose weights all underflowed */
};

/* ---- layout: one allocation, carved into named arrays ---- */

static size_t SFX(layout)(struct NET *net, char *base)
{
	int n = net->n, nv = net->nv, d = net->d, l = net->l;
	int e = net->e, c = net->c, cp = (c + 7) & ~7;
	int m = n > nv ? n : nv;

	m = m > c ? m : c;
	int np = d * l + l * e + 1;
	size_t off = 0;

#define CARVE(field, type, count)                                       \
	do {                                                            \
		off = (off + 63) & ~(size_t)63;                         \
		net->field = base ? (type *)(base + off) : NULL;       \
		off += sizeof(type) * (size_t)(count);                  \
	} while (0)

	CARVE(x, T, n * d);
	CARVE(y, T, n * e);
	CARVE(xv, T, nv * d);
	CARVE(yv, T, nv * e);
	CARVE(xc, T, c * d);
	CARVE(calc, int, c);
	CARVE(pos, int, n);
	CARVE(theta, T, np);
	CARVE(grad, T, np);
	CARVE(state1, T, np);
	CARVE(state2, T, np);
	CARVE(hid, T, m * l);
	CARVE(z, T, m * e);
	CARVE(yhat, T, m * e);
	CARVE(gz, T, n * e);
	CARVE(ghid, T, l * n);
	CARVE(ycal, T, e * c);
	CARVE(zc, T, e * cp);
	CARVE(yc, T, e * cp);
	CARVE(ord, int, e * c);
	CARVE(rank, int, e * c);
	CARVE(sorted, bool, e);
	CARVE(win, int, m * e * 2);
	CARVE(gzc, T, e * cp);
	CARVE(kexp, T, m * e * cp);
	CARVE(kden, T, m * e);
	CARVE(t, T, cp);
	CARVE(u, T, cp);
	CARVE(v1, T, cp);
	CARVE(v2, T, cp);
#undef CARVE
	return off;
}

/* dst (width, count) = the source rows, transposed, standardized. */
static void SFX(load_rows)(T *dst, const double *src, int width,
			   const int *rows, int count, const double *mu,
			   const double *sd)
{
	for (int i = 0; i < count; i++) {
		const double *s = src + (size_t)rows[i] * width;

		for (int k = 0; k < width; k++) {
			double v = s[k];

			if (mu)
				v = (v - mu[k]) / sd[k];
			dst[(size_t)k * count + i] = (T)v;
		}
	}
}

/* Allocate and fill a network from a plan; NULL if out of memory. */
static struct NET *SFX(net_create)(const struct kaf_plan *p,
				   enum kaf_activation act,
				   enum kaf_kernel kernel, enum kaf_reg reg,
				   double lambda)
{
	struct NET shape = {
		.n = p->n, .nv = p->nv, .d = p->d, .l = p->l, .e = p->e,
		.c = act == KAF_ACT_KAF ? p->c : 0,
	};
	size_t size = SFX(layout)(&shape, NULL);
	struct NET *net = calloc(1, sizeof(*net) + 64 + size);
	char *base;

	if (!net)
		return NULL;
	*net = shape;
	net->cp = (net->c + 7) & ~7;
	base = (char *)(((uintptr_t)(net + 1) + 63) & ~(uintptr_t)63);
	SFX(layout)(net, base);
	net->act = act;
	net->kernel = kernel;
	net->reg = reg;
	net->lambda = (T)lambda;
	net->classification = p->classification;
	net->w1 = net->theta;
	net->w2 = net->theta + p->d * p->l;
	net->h = net->w2 + p->l * p->e;
	net->np = p->d * p->l + p->l * p->e + (act == KAF_ACT_KAF);

	SFX(load_rows)(net->x, p->x, p->d, p->train, p->n, p->mu, p->sd);
	SFX(load_rows)(net->y, p->y, p->e, p->train, p->n, NULL, NULL);
	SFX(load_rows)(net->xv, p->x, p->d, p->val, p->nv, p->mu, p->sd);
	SFX(load_rows)(net->yv, p->y, p->e, p->val, p->nv, NULL, NULL);
	for (int i = 0; i < net->n; i++)
		net->pos[i] = -1;
	for (int j = 0; j < net->c; j++) {
		int row = p->calc[j];

		net->calc[j] = row;
		net->pos[row] = j;
		for (int k = 0; k < p->d; k++)
			net->xc[(size_t)k * net->c + j] =
				net->x[(size_t)k * p->n + row];
		for (int k = 0; k < p->e; k++)
			net->ycal[k * net->c + j] =
				net->y[(size_t)k * p->n + row];
	}
	for (int i = 0; i < p->l * p->d; i++)
		net->w1[i] = (T)p->w1[i];
	for (int i = 0; i < p->e * p->l; i++)
		net->w2[i] = (T)p->w2[i];
	*net->h = (T)p->h;
	return net;
}

/* ---- dense layers ---- */

/* hid = relu(W1 x), z = W2 hid for the m rows of xt (d, m). */
KAF_HOT
static void SFX(dense_forward)(struct NET *net, const T *xt, int m)
{
	int d = net->d, l = net->l, e = net->e;

	for (int o = 0; o < l; o++) {
		T *ho = net->hid + (size_t)o * m;

		memset(ho, 0, sizeof(T) * (size_t)m);
		for (int k = 0; k < d; k++)
			SFX(axpy)(ho, net->w1[o * d + k], xt + (size_t)k * m,
				  m);
#pragma omp simd
		for (int i = 0; i < m; i++)
			ho[i] = ho[i] > 0 ? ho[i] : 0;
	}
	for (int k = 0; k < e; k++) {
		T *zk = net->z + (size_t)k * m;

		memset(zk, 0, sizeof(T) * (size_t)m);
		for (int o = 0; o < l; o++)
			SFX(axpy)(zk, net->w2[k * l + o],
				  net->hid + (size_t)o * m, m);
	}
}

/* Gradients of W2 and W1 from gz (e, n), training rows only. */
KAF_HOT
static void SFX(dense_backward)(struct NET *net)
{
	int n = net->n, d = net->d, l = net->l, e = net->e;
	T *gw1 = net->grad, *gw2 = net->grad + d * l;

	for (int k = 0; k < e; k++)
		for (int o = 0; o < l; o++)
			gw2[k * l + o] = SFX(dot)(net->gz + (size_t)k * n,
						  net->hid + (size_t)o * n, n);
	for (int o = 0; o < l; o++) {
		T *go = net->ghid + (size_t)o * n;
		const T *ho = net->hid + (size_t)o * n;

		memset(go, 0, sizeof(T) * (size_t)n);
		for (int k = 0; k < e; k++)
			SFX(axpy)(go, net->w2[k * l + o],
				  net->gz + (size_t)k * n, n);
#pragma omp simd
		for (int i = 0; i < n; i++)
			go[i] = ho[i] > 0 ? go[i] : 0;
		for (int k = 0; k < d; k++)
			gw1[o * d + k] = SFX(dot)(go, net->x + (size_t)k * n,
						  n);
	}
}

/* ---- fixed activations ---- */

static T SFX(sigmoid)(T v)
{
	return 1 / (1 + exp(-v));
}

static T SFX(softplus)(T v)
{
	/* The threshold of the mainstream frameworks: linear above 20. */
	return v > 20 ? v : log1p(exp(v));
}

static void SFX(act_forward)(enum kaf_activation act, const T *z, T *yhat,
			     int count)
{
	for (int i = 0; i < count; i++) {
		T v = z[i];

		switch (act) {
		case KAF_ACT_RELU:
			yhat[i] = v > 0 ? v : 0;
			break;
		case KAF_ACT_SIGMOID:
			yhat[i] = SFX(sigmoid)(v);
			break;
		case KAF_ACT_TANH:
			yhat[i] = tanh(v);
			break;
		case KAF_ACT_SWISH:
			yhat[i] = v * SFX(sigmoid)(v);
			break;
		case KAF_ACT_MISH:
			yhat[i] = v * tanh(SFX(softplus)(v));
			break;
		default:
			yhat[i] = v;
			break;
		}
	}
}

/* gz = g * phi'(z), elementwise; g and gz may alias. */
static void SFX(act_backward)(enum kaf_activation act, const T *z,
			      const T *g, T *gz, int count)
{
	for (int i = 0; i < count; i++) {
		T v = z[i], s, t;

		switch (act) {
		case KAF_ACT_RELU:
			gz[i] = v > 0 ? g[i] : 0;
			break;
		case KAF_ACT_SIGMOID:
			s = SFX(sigmoid)(v);
			gz[i] = g[i] * (s * (1 - s));
			break;
		case KAF_ACT_TANH:
			t = tanh(v);
			gz[i] = g[i] * (1 - t * t);
			break;
		case KAF_ACT_SWISH:
			s = SFX(sigmoid)(v);
			gz[i] = g[i] * (s + v * s * (1 - s));
			break;
		case KAF_ACT_MISH:
			t = tanh(SFX(softplus)(v));
			s = SFX(sigmoid)(v);
			gz[i] = g[i] * (t + v * (1 - t * t) * s);
			break;
		default:
			gz[i] = g[i];
			break;
		}
	}
}

/* ---- K-AF ---- */

/*
 * The calc rows' pre-activations by output, sorted ascending with their
 * targets, from z (., e). Sorting lets each query row visit only the calc
 * rows whose kernel weight can be non-zero: a weight whose exponent is
 * below the underflow threshold is exactly 0 in IEEE arithmetic, so
 * skipping it changes no value. A column with a non-finite value is left
 * unsorted and every row then visits all of it.
 */
static void SFX(gather_calc)(struct NET *net, const T *z, int m,
			     const int *rows)
{
	int c = net->c, cp = net->cp, e = net->e;

	for (int k = 0; k < e; k++) {
		T *zs = net->zc + (size_t)k * cp;
		int *ord = net->ord + (size_t)k * c;
		bool finite = true;

		for (int j = 0; j < c; j++) {
			T v = z[(size_t)k * m + (rows ? rows[j] : j)];
			int s = j;

			finite = finite && isfinite(v);
			/* Insertion sort: c is small and the order changes
			 * little from one step to the next. */
			while (finite && s > 0 && zs[s - 1] > v) {
				zs[s] = zs[s - 1];
				ord[s] = ord[s - 1];
				s--;
			}
			zs[s] = v;
			ord[s] = j;
		}
		if (!finite)
			for (int j = 0; j < c; j++) {
				zs[j] = z[(size_t)k * m + (rows ? rows[j] : j)];
				ord[j] = j;
			}
		net->sorted[k] = finite;
		for (int s = 0; s < c; s++) {
			net->yc[k * cp + s] = net->ycal[k * c + ord[s]];
			net->rank[k * c + ord[s]] = s;
		}
		/* Padding slots: finite, weightless, so they add exact 0s. */
		for (int s = c; s < cp; s++) {
			zs[s] = 0;
			net->yc[k * cp + s] = 0;
		}
	}
}

/*
 * First slot of the sorted column zs[0..c) whose value is >= v, by a
 * branch-free binary search (the comparisons are unpredictable, so a
 * conditional move beats a branch).
 */
static inline int SFX(lower_bound)(const T *zs, int c, T v)
{
	int lo = 0, n = c;

	while (n > 1) {
		int half = n / 2;

		lo = zs[lo + half - 1] < v ? lo + half : lo;
		n -= half;
	}
	return lo + (n == 1 && zs[lo] < v);
}

/*
 * Slots [*lo, *hi) of the sorted column that can carry a non-zero weight
 * for query value zi. Naive: |u| beyond the exp underflow threshold of
 * the precision (14.43 in float32, 38.60 in float64) gives exactly 0.
 * Stable: the exponent is shifted by the nearest included row's, so the
 * threshold applies to u^2 - u_near^2. The radii carry a margin for the
 * rounding of u; rows inside the window may still get weight 0. The
 * window grows outwards from zi's place, a few slots each way.
 */
static inline __attribute__((always_inline)) void
SFX(window)(const struct NET *net, int k, T zi, int skip, int *lo, int *hi)
{
	const T *zs = net->zc + (size_t)k * net->cp;
	const T eps = sizeof(T) == sizeof(float) ? (T)0x1p-23 : (T)0x1p-52;
	T h = fabs(*net->h), r2, reach;
	int c = net->c, p, a, b;

	*lo = 0;
	*hi = c;
	if (!net->sorted[k] || !isfinite(zi) || !isfinite(h) || !(h > 0))
		return;
	p = SFX(lower_bound)(zs, c, zi);
	r2 = sizeof(T) == sizeof(float) ? (T)(14.6 * 14.6) : (T)(38.8 * 38.8);
	if (net->kernel == KAF_KERNEL_STABLE) {
		T near = INFINITY;

		for (int s = p - 2; s <= p + 1; s++)
			if (s >= 0 && s < c && s != skip &&
			    fabs(zs[s] - zi) < near)
				near = fabs(zs[s] - zi);
		near /= h;
		r2 = near * near * (1 + 64 * eps) + 212;
	}
	reach = sqrt(r2) * h * (1 + 64 * eps);
	if (!isfinite(reach))
		return;
	for (a = p; a > 0 && zs[a - 1] >= zi - reach; a--)
		;
	for (b = p; b < c && zs[b] <= zi + reach; b++)
		;
	*lo = a;
	*hi = b;
}

/*
 * Kernel exponentials of one query value zi against the sorted calc
 * column zck over slots [lo, hi), both multiples of 8: t_j = -u_j^2 / 2
 * with u_j = (zc_j - zi) / h. Stable shifts by the largest t over the
 * included rows. The excluded slot and the padding slots get t = -inf, so
 * their exp is exactly 0.
 */
static inline __attribute__((always_inline)) void
SFX(kernel_row)(const struct NET *net, const T *zck, T zi, int skip,
		int lo, int hi, T *ex)
{
	T h = *net->h, *t = net->t;
	int c = net->c;

#pragma omp simd
	for (int j = lo; j < hi; j++) {
		T u = (zck[j] - zi) / h;

		t[j] = j < c ? -(u * u) / 2 : -INFINITY;
	}
	if (skip >= lo && skip < hi)
		t[skip] = -INFINITY;
	if (net->kernel == KAF_KERNEL_STABLE) {
		T top[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
			    -INFINITY, -INFINITY, -INFINITY, -INFINITY};
		T best;

		for (int j = lo; j < hi; j += 8)
			for (int q = 0; q < 8; q++)
				top[q] = t[j + q] > top[q] ? t[j + q] : top[q];
		best = top[0];
		for (int q = 1; q < 8; q++)
			best = top[q] > best ? top[q] : best;
#pragma omp simd
		for (int j = lo; j < hi; j++)
			ex[j] = VEXP(t[j] - best);
	} else {
#pragma omp simd
		for (int j = lo; j < hi; j++)
			ex[j] = VEXP(t[j]);
	}
}

/*
 * y_hat for m query rows with pre-activations z (m, e). pos maps a query
 * row to its calc position (leave-one-out) or is NULL for rows outside
 * the training set. Keeps exp values, windows and denominators for the
 * backward pass and counts rows whose denominator is exactly zero.
 */
KAF_HOT
static void SFX(kaf_forward)(struct NET *net, const T *z, T *yhat, int m,
			     const int *pos)
{
	int cp = net->cp, e = net->e;
	bool naive = net->kernel == KAF_KERNEL_NAIVE;
	const T norm = (T)2.5066282746310002;  /* sqrt(2 pi) */
	T *w = net->v1, *wy = net->v2;

	net->zero_den = 0;
	for (int i = 0; i < m; i++) {
		for (int k = 0; k < e; k++) {
			size_t ik = (size_t)i * e + k, ki = (size_t)k * m + i;
			T *ex = net->kexp + ik * cp;
			const T *yck = net->yc + (size_t)k * cp;
			int skip = pos && pos[i] >= 0 ?
				   net->rank[k * net->c + pos[i]] : -1;
			int *lo = net->win + 2 * ik, *hi = lo + 1;
			T den;

			SFX(window)(net, k, z[ki], skip, lo, hi);
			/* Whole blocks of 8: slots past the window weigh 0. */
			*lo &= ~7;
			*hi = (*hi + 7) & ~7;
			SFX(kernel_row)(net, net->zc + (size_t)k * cp, z[ki],
					skip, *lo, *hi, ex);
#pragma omp simd
			for (int j = *lo; j < *hi; j++) {
				w[j] = naive ? ex[j] / norm : ex[j];
				wy[j] = w[j] * yck[j];
			}
			den = SFX(sum)(w + *lo, *hi - *lo);
			net->kden[ik] = den;
			net->zero_den += den == 0;
			yhat[ki] = SFX(sum)(wy + *lo, *hi - *lo) / den;
		}
	}
}

/*
 * Per-term derivatives of one output y_hat_ik with upstream gradient g
 * over slots [lo, hi): v1_j = dL/dz_j through u_j (the calc side),
 * v2_j = dL/dh. The excluded slot has exp 0 and u 0, so its terms are
 * exactly zero, and so are those of slots outside the window.
 *
 * Naive follows the chain a framework's autograd builds from the formula
 * as written, division by division, so that a tiny denominator overflows
 * the gradient exactly where it would there. Once g / den or the
 * denominator's gradient is infinite, that chain multiplies infinity by a
 * zero weight somewhere and the row's gradient is NaN; the function says
 * so by returning false. Stable takes the same derivative through the
 * normalized weights.
 */
static inline __attribute__((always_inline)) bool SFX(kaf_row_grad)(struct NET *net, const T *ex, const T *zck,
			      const T *yck, T zi, T yh, T den, T g, int lo,
			      int hi)
{
	const T norm = (T)2.5066282746310002;
	T h = *net->h, *u = net->u, *gd = net->v1, *gh = net->v2;

#pragma omp simd
	for (int j = lo; j < hi; j++)
		u[j] = (zck[j] - zi) / h;
	if (net->kernel == KAF_KERNEL_NAIVE) {
		T gnum = g / den;
		T gden = -g * (yh / den);

		if (!isfinite(gnum) || !isfinite(gden))
			return false;
#pragma omp simd
		for (int j = lo; j < hi; j++) {
			T gt = ((gnum * yck[j] + gden) / norm) * ex[j];
			T gu = (-(gt / 2)) * (2 * u[j]);

			gd[j] = gu / h;
			gh[j] = -gu * (u[j] / h);
		}
	} else {
#pragma omp simd
		for (int j = lo; j < hi; j++) {
			T gu = -(g * (yck[j] - yh) * (ex[j] / den) * u[j]);

			gd[j] = gu / h;
			gh[j] = -gu * (u[j] / h);
		}
	}
	return true;
}

/* gz (n, e) and dL/dh from dL/dy_hat held in gz on entry. */
KAF_HOT
static void SFX(kaf_backward)(struct NET *net)
{
	int c = net->c, cp = net->cp, e = net->e;
	T gh = 0;

	memset(net->gzc, 0, sizeof(T) * (size_t)(e * cp));
	for (int i = 0; i < net->n; i++) {
		for (int k = 0; k < e; k++) {
			size_t ik = (size_t)i * e + k;
			size_t ki = (size_t)k * net->n + i;
			T *gzck = net->gzc + (size_t)k * cp;
			const T *gd = net->v1;
			int lo = net->win[2 * ik], hi = net->win[2 * ik + 1];

			if (!SFX(kaf_row_grad)(net, net->kexp + ik * cp,
					       net->zc + (size_t)k * cp,
					       net->yc + (size_t)k * cp,
					       net->z[ki], net->yhat[ki],
					       net->kden[ik], net->gz[ki], lo,
					       hi)) {
				gh = NAN;
				net->gz[ki] = NAN;
				continue;
			}
#pragma omp simd
			for (int j = lo; j < hi; j++)
				gzck[j] += gd[j];
			gh += SFX(sum)(net->v2 + lo, hi - lo);
			net->gz[ki] = -SFX(sum)(gd + lo, hi - lo);
		}
	}
	for (int k = 0; k < e; k++)
		for (int s = 0; s < c; s++)
			net->gz[(size_t)k * net->n +
				net->calc[net->ord[k * c + s]]] +=
				net->gzc[k * cp + s];
	net->grad[net->np - 1] = gh;
}

/* ---- loss, penalty, optimizer ---- */

static T SFX(mse)(const T *yhat, const T *y, int count)
{
	T s = 0;

	for (int i = 0; i < count; i++) {
		T r = yhat[i] - y[i];

		s += r * r;
	}
	return s / count;
}

static T SFX(penalty)(const struct NET *net)
{
	int nw = net->d * net->l + net->l * net->e;
	T s = 0;

	if (net->reg == KAF_REG_NONE)
		return 0;
	for (int i = 0; i < nw; i++) {
		T w = net->theta[i];

		s += net->reg == KAF_REG_L1 ? fabs(w) : w * w;
	}
	return net->lambda * s;
}

static void SFX(penalty_grad)(struct NET *net)
{
	int nw = net->d * net->l + net->l * net->e;
	T lam = net->lambda;

	for (int i = 0; i < nw; i++) {
		T w = net->theta[i];

		if (net->reg == KAF_REG_L1)
			net->grad[i] += lam * (T)((w > 0) - (w < 0));
		else if (net->reg == KAF_REG_L2)
			net->grad[i] += lam * (2 * w);
	}
}

/* One update of theta[0..np) by grad, with the protocol's defaults. */
static void SFX(optim_step)(enum kaf_opt opt, T lr, int np, int step,
			    T *theta, const T *grad, T *s1, T *s2)
{
	/* Scalars in float64 and rounded once, as the frameworks do. */
	const T beta1 = (T)0.9, beta2 = (T)0.999;
	const T one_m_beta1 = (T)(1 - 0.9), one_m_beta2 = (T)(1 - 0.999);
	const T one_m_alpha = (T)(1 - 0.99);
	T step_size = (T)((double)lr / (1 - pow(0.9, step)));
	T bc2_sqrt = (T)sqrt(1 - pow(0.999, step));

	for (int i = 0; i < np; i++) {
		T g = grad[i];

		switch (opt) {
		case KAF_OPT_SGD:
			theta[i] -= lr * g;
			break;
		case KAF_OPT_MOMENTUM:
			s1[i] = step == 1 ? g : (T)0.9 * s1[i] + g;
			theta[i] -= lr * s1[i];
			break;
		case KAF_OPT_RMSPROP:
			s2[i] = (T)0.99 * s2[i] + one_m_alpha * g * g;
			theta[i] -= lr * g / (sqrt(s2[i]) + (T)1e-8);
			break;
		case KAF_OPT_ADAGRAD:
			s2[i] += g * g;
			theta[i] -= lr * g / (sqrt(s2[i]) + (T)1e-10);
			break;
		case KAF_OPT_ADAM:
			s1[i] = beta1 * s1[i] + one_m_beta1 * g;
			s2[i] = beta2 * s2[i] + one_m_beta2 * g * g;
			theta[i] -= step_size * s1[i] /
				    (sqrt(s2[i]) / bc2_sqrt + (T)1e-8);
			break;
		default:
			break;
		}
	}
}

/* ---- one pass over the training rows ---- */

/* Forward on the training rows; returns MSE plus penalty. */
static T SFX(train_forward)(struct NET *net, T *mse)
{
	int n = net->n, e = net->e;

	SFX(dense_forward)(net, net->x, n);
	if (net->act == KAF_ACT_KAF) {
		SFX(gather_calc)(net, net->z, n, net->calc);
		SFX(kaf_forward)(net, net->z, net->yhat, n, net->pos);
	} else {
		SFX(act_forward)(net->act, net->z, net->yhat, n * e);
	}
	*mse = SFX(mse)(net->yhat, net->y, n * e);
	return *mse + SFX(penalty)(net);
}

/* Backward after train_forward: fills grad (P). */
static void SFX(train_backward)(struct NET *net)
{
	int count = net->n * net->e;
	T scale = (T)2 / (T)count;

	for (int i = 0; i < count; i++)
		net->gz[i] = scale * (net->yhat[i] - net->y[i]);
	if (net->act == KAF_ACT_KAF)
		SFX(kaf_backward)(net);
	else
		SFX(act_backward)(net->act, net->z, net->gz, net->gz, count);
	SFX(dense_backward)(net);
	SFX(penalty_grad)(net);
}

/* ---- evaluation outside training ---- */

struct SFX(eval) {
	double mse, mae, accuracy;
};

/* Over the e values v[0], v[stride], ...: the first largest. */
static int SFX(argmax)(const T *v, int e, int stride)
{
	int best = 0;

	for (int k = 1; k < e; k++)
		if (v[(size_t)k * stride] > v[(size_t)best * stride])
			best = k;
	return best;
}

static bool SFX(row_finite)(const T *v, int e, int stride)
{
	for (int k = 0; k < e; k++)
		if (!isfinite(v[(size_t)k * stride]))
			return false;
	return true;
}

/* Validation metrics with the current weights. */
static struct SFX(eval) SFX(evaluate)(struct NET *net)
{
	struct SFX(eval) ev = {NAN, NAN, NAN};
	int nv = net->nv, e = net->e, correct = 0;
	double se = 0, ae = 0;

	if (nv == 0)
		return ev;
	if (net->act == KAF_ACT_KAF) {
		SFX(dense_forward)(net, net->xc, net->c);
		SFX(gather_calc)(net, net->z, net->c, NULL);
	}
	SFX(dense_forward)(net, net->xv, nv);
	if (net->act == KAF_ACT_KAF)
		SFX(kaf_forward)(net, net->z, net->yhat, nv, NULL);
	else
		SFX(act_forward)(net->act, net->z, net->yhat, nv * e);
	for (int i = 0; i < nv; i++) {
		const T *yh = net->yhat + i, *yt = net->yv + i;

		for (int k = 0; k < e; k++) {
			double r = (double)yh[(size_t)k * nv] -
				   (double)yt[(size_t)k * nv];

			se += r * r;
			ae += fabs(r);
		}
		/* A row with a NaN output counts as wrong. */
		if (net->classification && SFX(row_finite)(yh, e, nv))
			correct += SFX(argmax)(yh, e, nv) ==
				   SFX(argmax)(yt, e, nv);
	}
	ev.mse = se / ((double)nv * e);
	ev.mae = ae / ((double)nv * e);
	if (net->classification)
		ev.accuracy = (double)correct / nv;
	return ev;
}

/* ---- training ---- */

static double SFX(grad_norm)(const struct NET *net, bool *finite)
{
	double s = 0;

	*finite = true;
	for (int i = 0; i < net->np; i++) {
		double g = net->grad[i];

		if (!isfinite(g))
			*finite = false;
		s += g * g;
	}
	return sqrt(s);
}

/* ---- link snapshots ---- */

/* Storage for one snapshot, allocated once per run. */
struct SFX(link_buf) {
	struct kaf_link link;
	double *mem;            /* z, yhat (e, points); calc z, y (e, c) */
	bool taken;
};

static int SFX(link_alloc)(struct SFX(link_buf) *lb, const struct NET *net,
			   int points)
{
	size_t e = (size_t)net->e, c = (size_t)net->c, p = (size_t)points;

	lb->mem = malloc(sizeof(double) * (2 * e * p + 2 * e * c));
	if (!lb->mem)
		return KAF_ENOMEM;
	lb->link = (struct kaf_link){
		.e = net->e, .points = points, .c = net->c, .z = lb->mem,
		.yhat = lb->mem + e * p, .calc_z = lb->mem + 2 * e * p,
		.calc_y = lb->mem + 2 * e * p + e * c,
	};
	return KAF_OK;
}

/* y_hat at query z from the calc column k, in the stable form. */
static double SFX(link_at)(const struct NET *net, int k, double zq)
{
	const T *zs = net->zc + (size_t)k * net->cp;
	const T *ys = net->yc + (size_t)k * net->cp;
	double h = *net->h, top = -INFINITY, num = 0, den = 0;

	for (int j = 0; j < net->c; j++) {
		double u = ((double)zs[j] - zq) / h;

		top = fmax(top, -u * u / 2);
	}
	for (int j = 0; j < net->c; j++) {
		double u = ((double)zs[j] - zq) / h;
		double w = exp(-u * u / 2 - top);

		num += w * (double)ys[j];
		den += w;
	}
	return num / den;
}

/* The link of the forward pass just made, over the training z range. */
static void SFX(link_take)(const struct NET *net, struct SFX(link_buf) *lb,
			   int epoch)
{
	struct kaf_link *lk = &lb->link;
	double *z = lb->mem, *yh = lb->mem + (size_t)net->e * lk->points;
	double *cz = (double *)lk->calc_z, *cy = (double *)lk->calc_y;

	lk->epoch = epoch;
	lk->h = *net->h;
	for (int k = 0; k < net->e; k++) {
		const T *zk = net->z + (size_t)k * net->n;
		double lo = INFINITY, hi = -INFINITY;

		for (int i = 0; i < net->n; i++) {
			lo = fmin(lo, (double)zk[i]);
			hi = fmax(hi, (double)zk[i]);
		}
		for (int q = 0; q < lk->points; q++) {
			size_t at = (size_t)k * lk->points + q;

			z[at] = lo + (hi - lo) * q / (lk->points - 1);
			yh[at] = SFX(link_at)(net, k, z[at]);
		}
		for (int j = 0; j < net->c; j++) {
			cz[(size_t)k * net->c + j] =
				net->zc[(size_t)k * net->cp + j];
			cy[(size_t)k * net->c + j] =
				net->yc[(size_t)k * net->cp + j];
		}
	}
	lb->taken = true;
}

/*
 * One step; returns the cause if it diverged, else KAF_CAUSE_NONE. With
 * lb, the link of this step's forward pass is kept there.
 */
static enum kaf_cause SFX(step)(struct NET *net,
				const struct kaf_config *cfg,
				struct kaf_epoch *ep, struct kaf_result *res,
				struct SFX(link_buf) *lb)
{
	T mse;
	T loss = SFX(train_forward)(net, &mse);
	bool finite;

	ep->train_loss = mse;
	res->zero_denominators = net->zero_den;
	if (!isfinite(loss))
		return net->zero_den > 0 ? KAF_CAUSE_KERNEL_UNDERFLOW
					 : KAF_CAUSE_NONFINITE_LOSS;
	if (lb)
		SFX(link_take)(net, lb, ep->epoch);
	SFX(train_backward)(net);
	ep->grad_norm = SFX(grad_norm)(net, &finite);
	if (ep->grad_norm > res->max_grad_norm || !finite)
		res->max_grad_norm = ep->grad_norm;
	if (!finite)
		return KAF_CAUSE_NONFINITE_GRAD;
	if (cfg->grad_limit > 0 && ep->grad_norm > cfg->grad_limit)
		return KAF_CAUSE_GRAD_LIMIT;
	net->step++;
	SFX(optim_step)(cfg->opt, (T)cfg->lr, net->np, net->step, net->theta,
			net->grad, net->state1, net->state2);
	return KAF_CAUSE_NONE;
}

static void SFX(finish)(struct NET *net, struct kaf_result *res)
{
	struct SFX(eval) ev = SFX(evaluate)(net);

	res->val_loss = ev.mse;
	res->accuracy = ev.accuracy;
	res->val_mae = net->classification ? NAN : ev.mae;
	res->bandwidth = net->act == KAF_ACT_KAF ? (double)*net->h : NAN;
}

int SFX(kaf_engine_train)(const struct kaf_plan *plan,
			  const struct kaf_config *cfg,
			  const struct kaf_hooks *hooks,
			  struct kaf_result *res, struct kaf_error *err)
{
	struct NET *net = SFX(net_create)(plan, cfg->activation, cfg->kernel,
					  cfg->reg, cfg->lambda);
	int every = hooks ? hooks->eval_every : 0;
	int links = hooks && hooks->on_link && cfg->activation == KAF_ACT_KAF ?
		    hooks->link_every : 0;
	struct SFX(link_buf) lb = {0};
	int stop = 0;

	if (!net || (links > 0 &&
		     SFX(link_alloc)(&lb, net, hooks->link_points > 1 ?
				     hooks->link_points : 101))) {
		free(net);
		return kaf_error_set(err, KAF_ENOMEM,
				     "out of memory for a network of %d rows",
				     plan->n);
	}
	for (int s = 0; s < cfg->epochs && !stop; s++) {
		struct kaf_epoch ep = {.epoch = s, .val_loss = NAN};
		bool snap = links > 0 && (s % links == 0 ||
					  s + 1 == cfg->epochs);
		enum kaf_cause cause;

		lb.taken = false;
		cause = SFX(step)(net, cfg, &ep, res, snap ? &lb : NULL);
		if (lb.taken)
			stop |= hooks->on_link(hooks->ctx, &lb.link);

		res->steps = s + 1;
		res->train_loss = ep.train_loss;
		if (cause != KAF_CAUSE_NONE) {
			res->diverged = true;
			res->cause = cause;
			res->step = s;
		}
		ep.bandwidth = cfg->activation == KAF_ACT_KAF ? *net->h : NAN;
		if (every > 0 && (s % every == 0 || s + 1 == cfg->epochs ||
				  res->diverged)) {
			ep.val_loss = SFX(evaluate)(net).mse;
			stop |= hooks->on_epoch(hooks->ctx, &ep);
		}
		if (res->diverged)
			break;
	}
	SFX(finish)(net, res);
	free(lb.mem);
	free(net);
	return KAF_OK;
}

/* ---- probes for tests ---- */

int SFX(kaf_engine_probe)(const struct kaf_plan *plan,
			  const struct kaf_probe *p,
			  struct kaf_probe_out *out, struct kaf_error *err)
{
	struct NET *net = SFX(net_create)(plan, p->activation, p->kernel,
					  p->reg, p->lambda);
	int d = p->d, l = p->l, e = p->e;
	T mse;

	if (!net)
		return kaf_error_set(err, KAF_ENOMEM, "out of memory");
	out->loss = SFX(train_forward)(net, &mse);
	out->zero_denominators = net->zero_den;
	for (int i = 0; i < p->n; i++)
		for (int k = 0; k < e; k++)
			out->yhat[i * e + k] = net->yhat[(size_t)k * p->n + i];
	SFX(train_backward)(net);
	for (int i = 0; i < l * d; i++)
		out->grad_w1[i] = net->grad[i];
	for (int i = 0; i < e * l; i++)
		out->grad_w2[i] = net->grad[d * l + i];
	out->grad_h = p->activation == KAF_ACT_KAF ? net->grad[net->np - 1]
						    : 0;
	free(net);
	return KAF_OK;
}

#undef NET
