/*
 * engine_impl.h - the network, K-AF and training in one precision.
 *
 * Included by engine.c once per precision with these defined:
 *   T          float or double: every stored value and every operation
 *   SFX(name)  name with the precision's suffix (_f32, _f64)
 *   VEXP       the vectorizable exp of that precision for arguments <= 0,
 *              the only ones K-AF has (vexp.h)
 *
 * Dimension letters used in the shape comments:
 *   n  training rows          nv  validation rows
 *   d  input features         l   hidden units
 *   e  outputs                c   calc rows of K-AF
 *   m  rows of one forward pass (n, nv or c)
 *
 * Activations are stored feature-major: features x^T (d, m), hidden units
 * (l, m), pre-activations z (e, m), one contiguous row of m values per
 * unit. Weights keep PyTorch's layout. Every sum keeps one order that no
 * instruction set changes: a layer's output is a sequential sum over its
 * inputs, computed for a block of rows at once; a sum over rows (weight
 * gradients, K-AF's sums over calc rows) runs in eight fixed lanes, see
 * SFX(fold). Results do not depend on the SIMD width of the machine or on
 * the thread that runs them.
 */

#define NET SFX(net)
#define INLINE static inline __attribute__((always_inline))

/*
 * The hot loops are compiled once per instruction set and picked at load
 * time. With contraction off and sums in fixed lanes, every version gives
 * bit-identical results; only the speed differs. The helpers they call
 * are INLINE, or KAF_HOT themselves, so that they are compiled for the
 * same instruction set.
 */
#ifndef KAF_HOT
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KAF_HOT __attribute__((target_clones("avx2", "default")))
#else
#define KAF_HOT
#endif
#endif

/*
 * Eight lanes. A sum that is split for SIMD gives lane q the terms q,
 * q + 8, q + 16... in order and then adds the lanes in one fixed tree, so
 * how it is reassociated never depends on the machine. The lanes are a
 * plain T[8] and every loop over them is `omp simd` without a reduction:
 * the compiler maps them onto registers of whatever width it targets
 * (one AVX2 register of floats, two of doubles), lane for lane.
 */
INLINE T SFX(fold)(const T *acc)
{
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
	       ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/*
 * Register blocking, sized for AVX2's sixteen registers (a double takes
 * twice the room of a float). A product block keeps UNITS output units by
 * BLOCK rows of sums in registers and loads each input value once for all
 * UNITS. A Gram block keeps GA x GB dot products of eight lanes each (1 x
 * GB1 for the last rows of its first operand); its GA rows stay in the L1
 * cache while the other operand streams past them.
 */
#define BLOCK (sizeof(T) == sizeof(float) ? 16 : 8)
#define UNITS 6
#define GA (sizeof(T) == sizeof(float) ? 4 : 1)
#define GB (sizeof(T) == sizeof(float) ? 3 : 5)
#define GB1 (sizeof(T) == sizeof(float) ? 6 : 5)

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
	T *w2t;                 /* (l, e) W2 transposed, for the backward */
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
	int nb;                 /* blocks of 8 slots, rounded up to 8 */
	T *first, *last;        /* (e, nb) ends of each block of 8 slots */
	T *kexp;                /* (m e cp at most) exp values of the last
				 * forward, each row's window after the
				 * previous row's */
	T *ku;                  /* (m e cp at most) their scaled distances */
	T *kden;                /* (m, e) kernel denominators */
	T *reach;               /* (m, e) window radii */
	T *pack;                /* (d + 2 l + e, BLOCK) a last partial block */
	int zero_den;           /* rows whose weights all underflowed */
};

/* ---- layout: one allocation, carved into named arrays ---- */

static size_t SFX(layout)(struct NET *net, char *base)
{
	int n = net->n, nv = net->nv, d = net->d, l = net->l;
	int e = net->e, c = net->c, cp = (c + 7) & ~7;
	int nb = (cp / 8 + 7) & ~7, m = n > nv ? n : nv;

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
	CARVE(w2t, T, l * e);
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
	CARVE(first, T, e * nb);
	CARVE(last, T, e * nb);
	CARVE(kexp, T, m * e * cp);
	CARVE(ku, T, m * e * cp);
	CARVE(kden, T, m * e);
	CARVE(reach, T, m * e);
	CARVE(pack, T, (d + 2 * l + e) * BLOCK);
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
	struct NET *net = malloc(sizeof(*net) + 64 + size);
	int np = p->d * p->l + p->l * p->e + 1;
	char *base;

	/*
	 * Not zeroed as a whole (that alone would cost a short run dearly):
	 * every array is written before it is read, and the optimizer's
	 * moments, which start at 0, are cleared here.
	 */
	if (!net)
		return NULL;
	*net = shape;
	net->cp = (net->c + 7) & ~7;
	net->nb = (net->cp / 8 + 7) & ~7;
	base = (char *)(((uintptr_t)(net + 1) + 63) & ~(uintptr_t)63);
	SFX(layout)(net, base);
	memset(net->state1, 0, sizeof(T) * (size_t)np);
	memset(net->state2, 0, sizeof(T) * (size_t)np);
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

/*
 * out (units, rows) = w (units, depth) times in (depth, rows). Every
 * value is a sum over q in order, starting from +0, exactly as a scalar
 * loop makes it. With relu, a value is kept only where the gate is > 0
 * (NaN fails), else +0: the gate is the value itself, or gate's element
 * when gate is set.
 */
struct SFX(product) {
	const T *w;             /* (units, depth) */
	int units, depth;
	const T *in;            /* (depth, stride) */
	T *out;                 /* (units, stride) */
	const T *gate;          /* (units, stride) or NULL */
	bool relu;
	size_t stride;          /* between the rows of in, out and gate */
};

/*
 * Units u0..u0 + nu of p, rows i0..i0 + BLOCK, with the nu x BLOCK sums in
 * registers; nu <= UNITS is a constant where this is inlined.
 */
INLINE void SFX(product_block)(const struct SFX(product) *p, int u0,
			       size_t i0, int nu)
{
	T acc[UNITS][BLOCK];
	const T *w[UNITS];

	for (int u = 0; u < nu; u++) {
		w[u] = p->w + (size_t)(u0 + u) * p->depth;
		for (int r = 0; r < BLOCK; r++)
			acc[u][r] = 0;
	}
	for (int q = 0; q < p->depth; q++) {
		const T *in = p->in + (size_t)q * p->stride + i0;

		for (int u = 0; u < nu; u++) {
			T a = w[u][q];

#pragma omp simd
			for (int r = 0; r < BLOCK; r++)
				acc[u][r] += a * in[r];
		}
	}
	for (int u = 0; u < nu; u++) {
		size_t at = (size_t)(u0 + u) * p->stride + i0;
		const T *gate = p->gate ? p->gate + at : acc[u];
		T *out = p->out + at;

#pragma omp simd
		for (int r = 0; r < BLOCK; r++)
			out[r] = !p->relu || gate[r] > 0 ? acc[u][r] : 0;
	}
}

/* All units of p for rows i0..i0 + BLOCK: UNITS at a time, then the rest. */
KAF_HOT
static void SFX(product_rows)(const struct SFX(product) *p, size_t i0)
{
	int u = 0;

	for (; u + UNITS <= p->units; u += UNITS)
		SFX(product_block)(p, u, i0, UNITS);
	switch (p->units - u) {
	case 5:
		SFX(product_block)(p, u, i0, 5);
		break;
	case 4:
		SFX(product_block)(p, u, i0, 4);
		break;
	case 3:
		SFX(product_block)(p, u, i0, 3);
		break;
	case 2:
		SFX(product_block)(p, u, i0, 2);
		break;
	case 1:
		SFX(product_block)(p, u, i0, 1);
		break;
	default:
		break;
	}
}

/*
 * Rows i0..i0 + rows (fewer than BLOCK) of count rows of src (., stride)
 * into dst (count, BLOCK), zero-padded, so that a last partial block runs
 * the same code as the others; unpack copies the results back.
 */
static void SFX(pack)(T *dst, const T *src, int count, size_t stride,
		      size_t i0, int rows)
{
	for (int r = 0; r < count; r++) {
		memset(dst + (size_t)r * BLOCK, 0, sizeof(T) * BLOCK);
		memcpy(dst + (size_t)r * BLOCK, src + r * stride + i0,
		       sizeof(T) * (size_t)rows);
	}
}

static void SFX(unpack)(T *dst, const T *src, int count, size_t stride,
			size_t i0, int rows)
{
	for (int r = 0; r < count; r++)
		memcpy(dst + r * stride + i0, src + (size_t)r * BLOCK,
		       sizeof(T) * (size_t)rows);
}

/* hid = relu(W1 x), z = W2 hid for the m rows of xt (d, m). */
KAF_HOT
static void SFX(dense_forward)(struct NET *net, const T *xt, int m)
{
	int d = net->d, l = net->l, e = net->e, whole = m - m % BLOCK;
	struct SFX(product) hid = {
		.w = net->w1, .units = l, .depth = d, .in = xt,
		.out = net->hid, .relu = true, .stride = (size_t)m,
	};
	struct SFX(product) z = {
		.w = net->w2, .units = e, .depth = l, .in = net->hid,
		.out = net->z, .stride = (size_t)m,
	};
	T *px = net->pack, *phid = px + (size_t)d * BLOCK;
	T *pz = phid + (size_t)l * BLOCK;

	/* Both layers per block of rows, while its hidden units are hot. */
	for (int i = 0; i < whole; i += BLOCK) {
		SFX(product_rows)(&hid, (size_t)i);
		SFX(product_rows)(&z, (size_t)i);
	}
	if (whole == m)
		return;
	SFX(pack)(px, xt, d, (size_t)m, (size_t)whole, m - whole);
	hid.in = px;
	hid.out = phid;
	z.in = phid;
	z.out = pz;
	hid.stride = z.stride = BLOCK;
	SFX(product_rows)(&hid, 0);
	SFX(product_rows)(&z, 0);
	SFX(unpack)(net->hid, phid, l, (size_t)m, (size_t)whole, m - whole);
	SFX(unpack)(net->z, pz, e, (size_t)m, (size_t)whole, m - whole);
}

/*
 * Rows a0..a0 + ga of a (., n) against rows b0..b0 + gb of b (nb, n), with
 * the ga x gb dot products in registers, eight lanes each; ga <= GA and
 * gb <= GB1 are constants where this is inlined. Rows of b past nb repeat
 * its last row and are not stored.
 */
INLINE void SFX(gram_block)(const T *a, const T *b, int nb, int n, int a0,
			    int b0, T *out, int ga, int gb)
{
	T acc[GA][GB1][8];
	const T *ar[GA], *br[GB1];
	int j = 0;

	for (int s = 0; s < ga; s++)
		ar[s] = a + (size_t)(a0 + s) * n;
	for (int t = 0; t < gb; t++)
		br[t] = b + (size_t)(b0 + t < nb ? b0 + t : nb - 1) * n;
	for (int s = 0; s < ga; s++)
		for (int t = 0; t < gb; t++)
			for (int q = 0; q < 8; q++)
				acc[s][t][q] = 0;
	for (; j + 8 <= n; j += 8)
		for (int t = 0; t < gb; t++)
			for (int s = 0; s < ga; s++)
#pragma omp simd
				for (int q = 0; q < 8; q++)
					acc[s][t][q] += ar[s][j + q] *
							br[t][j + q];
	for (int q = 0; j < n; j++, q++)
		for (int s = 0; s < ga; s++)
			for (int t = 0; t < gb; t++)
				acc[s][t][q] += ar[s][j] * br[t][j];
	for (int s = 0; s < ga; s++)
		for (int t = 0; t < gb && b0 + t < nb; t++)
			out[(size_t)(a0 + s) * nb + b0 + t] =
				SFX(fold)(acc[s][t]);
}

/*
 * out (na, nb) = a (na, n) times b (nb, n)^T: each element the dot
 * product of two rows over the n columns, in the eight lanes. GA rows of
 * a at a time against GB of b, then the rest of a one row at a time
 * against GB1 of b.
 */
KAF_HOT
static void SFX(gram)(const T *a, int na, const T *b, int nb, int n,
		      T *out)
{
	int a0 = 0;

	for (; a0 + GA <= na; a0 += GA)
		for (int b0 = 0; b0 < nb; b0 += GB)
			SFX(gram_block)(a, b, nb, n, a0, b0, out, GA, GB);
	for (; a0 < na; a0++)
		for (int b0 = 0; b0 < nb; b0 += GB1)
			SFX(gram_block)(a, b, nb, n, a0, b0, out, 1, GB1);
}

/* Gradients of W2 and W1 from gz (e, n), training rows only. */
KAF_HOT
static void SFX(dense_backward)(struct NET *net)
{
	int n = net->n, d = net->d, l = net->l, e = net->e;
	int whole = n - n % BLOCK;
	T *gw1 = net->grad, *gw2 = net->grad + d * l;
	struct SFX(product) gh = {
		.w = net->w2t, .units = l, .depth = e, .in = net->gz,
		.out = net->ghid, .gate = net->hid, .relu = true,
		.stride = (size_t)n,
	};
	T *pgz = net->pack, *phid = pgz + (size_t)e * BLOCK;
	T *pgh = phid + (size_t)l * BLOCK;

	for (int k = 0; k < e; k++)
		for (int o = 0; o < l; o++)
			net->w2t[o * e + k] = net->w2[k * l + o];
	SFX(gram)(net->gz, e, net->hid, l, n, gw2);
	for (int i = 0; i < whole; i += BLOCK)
		SFX(product_rows)(&gh, (size_t)i);
	if (whole < n) {
		SFX(pack)(pgz, net->gz, e, (size_t)n, (size_t)whole,
			  n - whole);
		SFX(pack)(phid, net->hid, l, (size_t)n, (size_t)whole,
			  n - whole);
		gh.in = pgz;
		gh.gate = phid;
		gh.out = pgh;
		gh.stride = BLOCK;
		SFX(product_rows)(&gh, 0);
		SFX(unpack)(net->ghid, pgh, l, (size_t)n, (size_t)whole,
			    n - whole);
	}
	SFX(gram)(net->ghid, l, net->x, d, n, gw1);
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
		/*
		 * A block with padding never lies wholly below a value, and
		 * the blocks past the slots begin above every value.
		 */
		for (int b = 0; b < net->nb; b++) {
			T *first = net->first + (size_t)k * net->nb;
			T *last = net->last + (size_t)k * net->nb;

			first[b] = 8 * b < c ? zs[8 * b] : INFINITY;
			last[b] = 8 * b + 7 < c ? zs[8 * b + 7] : INFINITY;
		}
	}
}

/*
 * First slot of the sorted zs[0..count) whose value is >= v, count if
 * none. A branch-free binary search: the comparisons are unpredictable,
 * so a conditional move beats a branch.
 */
INLINE int SFX(lower_bound)(const T *zs, int count, T v)
{
	int lo = 0, n = count;

	while (n > 1) {
		int half = n / 2;

		lo = zs[lo + half - 1] < v ? lo + half : lo;
		n -= half;
	}
	return lo + (n == 1 && zs[lo] < v);
}

/* The sorted slot query row i excludes in column k (itself), or -1. */
INLINE int SFX(skip)(const struct NET *net, const int *pos, int i, int k)
{
	return pos && pos[i] >= 0 ? net->rank[k * net->c + pos[i]] : -1;
}

/*
 * The distance |zs_s - zi| from zi to the nearest slot s of the sorted
 * zs[0..c), skip excluded; +inf if there is none. It is the nearest one
 * below zi's place or the nearest one above.
 */
INLINE T SFX(nearest)(const T *zs, int c, T zi, int skip)
{
	int p = SFX(lower_bound)(zs, c, zi);
	int below = p - 1 == skip ? p - 2 : p - 1;
	int above = p == skip ? p + 1 : p;
	T near = INFINITY;

	if (below >= 0)
		near = fabs(zs[below] - zi);
	if (above < c && fabs(zs[above] - zi) < near)
		near = fabs(zs[above] - zi);
	return near;
}

/*
 * The slots of the sorted column k that can carry a non-zero weight for
 * query value zi lie within reach of it: [*lo, *hi), widened to whole
 * blocks of 8, counts the blocks wholly below zi - reach and the blocks
 * starting at or below zi + reach.
 */
INLINE void SFX(ends)(const struct NET *net, int k, T zi, T reach, int *lo,
		      int *hi)
{
	const T *first = net->first + (size_t)k * net->nb;
	const T *last = net->last + (size_t)k * net->nb;
	int below = 0, reached = 0;

	for (int b = 0; b < net->nb; b += 8)
#pragma omp simd reduction(+ : below, reached)
		for (int q = 0; q < 8; q++) {
			below += last[b + q] < zi - reach;
			reached += first[b + q] <= zi + reach;
		}
	*lo = 8 * below;
	*hi = 8 * reached;
}

/*
 * The kernel exponent t = -u^2 / 2 of slot s with scaled distance u: -inf
 * for the excluded slot and the padding slots, so their exp is exactly 0.
 */
INLINE T SFX(exponent)(T u, int s, int skip, int c)
{
	return s < c && s != skip ? -(u * u) / 2 : -INFINITY;
}

/* The largest exponent over slots [lo, hi), multiples of 8. */
INLINE T SFX(top_exponent)(const struct NET *net, const T *zck, T zi,
			   int skip, int lo, int hi)
{
	T h = *net->h, best;
	T top[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
		    -INFINITY, -INFINITY, -INFINITY, -INFINITY};

	for (int j = lo; j < hi; j += 8)
#pragma omp simd
		for (int q = 0; q < 8; q++) {
			T t = SFX(exponent)((zck[j + q] - zi) / h, j + q,
					    skip, net->c);

			top[q] = t > top[q] ? t : top[q];
		}
	best = top[0];
	for (int q = 1; q < 8; q++)
		best = top[q] > best ? top[q] : best;
	return best;
}

/*
 * One row's weights from its exp values ex[0..count), count a multiple
 * of 8 (naive: divided by sqrt(2 pi)): returns their sum with the
 * targets y and sets *den to their plain sum, both in the eight lanes.
 * naive is a constant where this is inlined.
 */
INLINE T SFX(row_sums)(const T *ex, const T *y, int count, bool naive,
		       T *den)
{
	const T norm = (T)2.5066282746310002;  /* sqrt(2 pi) */
	T d[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};

	for (int j = 0; j < count; j += 8)
#pragma omp simd
		for (int q = 0; q < 8; q++) {
			T w = naive ? ex[j + q] / norm : ex[j + q];

			d[q] += w;
			s[q] += w * y[j + q];
		}
	*den = SFX(fold)(d);
	return SFX(fold)(s);
}

/*
 * The radius around each query row's value, in reach, beyond which every
 * kernel weight is exactly 0, and stable's shift of the row's exponents,
 * in kden (the denominators take its place later).
 *
 * Naive: |u| beyond the exp underflow threshold of the precision (14.43
 * in float32, 38.60 in float64) gives exactly 0. Stable: the exponents
 * are shifted by the nearest included row's, so the threshold applies to
 * u^2 - u_near^2. The radii carry a margin for the rounding of u. The
 * shift is the largest exponent of the row, and the nearest included row
 * has it: |u| grows with |zc - zi| and every step rounds monotonically,
 * so its -u^2 / 2 is the largest, bit for bit.
 *
 * Each step is a loop over all rows, so that the long chain of dependent
 * steps of one row overlaps with the next rows' instead of stalling.
 */
INLINE void SFX(radii)(struct NET *net, const T *z, int m, const int *pos)
{
	const T eps = sizeof(T) == sizeof(float) ? (T)0x1p-23 : (T)0x1p-52;
	const T r2 = sizeof(T) == sizeof(float) ? (T)(14.6 * 14.6)
						: (T)(38.8 * 38.8);
	/* Stable: u^2 - u_near^2 beyond twice the underflow exponent (103.97
	 * in float32, 745.13 in float64) gives exactly 0. */
	const T gap = sizeof(T) == sizeof(float) ? (T)212 : (T)1500;
	int cp = net->cp, e = net->e;
	size_t rows = (size_t)m * e;
	T h = fabs(*net->h), *reach = net->reach, *top = net->kden;

	if (net->kernel == KAF_KERNEL_NAIVE) {
		for (size_t ik = 0; ik < rows; ik++) {
			top[ik] = 0;
			reach[ik] = sqrt(r2) * h * (1 + 64 * eps);
		}
		return;
	}
	for (int i = 0; i < m; i++)
		for (int k = 0; k < e; k++)
			reach[(size_t)i * e + k] = SFX(nearest)(
				net->zc + (size_t)k * cp, net->c,
				z[(size_t)k * m + i], SFX(skip)(net, pos, i, k));
	for (size_t ik = 0; ik < rows; ik++) {
		T near = reach[ik] / h;

		top[ik] = -(near * near) / 2;
		reach[ik] = sqrt(near * near * (1 + 64 * eps) + gap) * h *
			    (1 + 64 * eps);
	}
}

/*
 * The window [lo, hi) of every query row, in win: the blocks of 8 slots
 * within reach of its value. Rows inside a window may still get weight 0.
 * A row of an unsorted column, or with a non-finite value or radius,
 * visits every slot and finds its largest exponent itself. Kept apart
 * from the loops over the windows, whose lengths are then in memory,
 * known early, instead of at the end of a long chain of dependent steps.
 */
INLINE void SFX(windows)(struct NET *net, const T *z, int m,
			 const int *pos)
{
	int cp = net->cp, e = net->e;
	bool stable = net->kernel == KAF_KERNEL_STABLE;
	T h = fabs(*net->h);

	SFX(radii)(net, z, m, pos);
	for (int i = 0; i < m; i++) {
		for (int k = 0; k < e; k++) {
			size_t ik = (size_t)i * e + k;
			T zi = z[(size_t)k * m + i], reach = net->reach[ik];
			int *lo = net->win + 2 * ik, *hi = lo + 1;

			if (net->sorted[k] && isfinite(zi) && isfinite(reach) &&
			    h > 0) {
				SFX(ends)(net, k, zi, reach, lo, hi);
			} else {
				*lo = 0;
				*hi = cp;
				if (stable)
					net->kden[ik] = SFX(top_exponent)(net,
						net->zc + (size_t)k * cp, zi,
						SFX(skip)(net, pos, i, k), 0,
						cp);
			}
			/*
			 * An empty window keeps one block, so that a row whose
			 * weights all underflow divides 0 by 0 at run time,
			 * never in a path the compiler folded to a constant.
			 */
			if (*lo == *hi && *hi < cp)
				*hi += 8;
			else if (*lo == *hi)
				*lo -= 8;
		}
	}
}

/*
 * Every row's scaled distances u and exponents t - top (naive: top is 0,
 * and t - 0 is t, bit for bit) into ku and kexp, each row's window after
 * the previous row's. Returns the number of values.
 */
INLINE size_t SFX(exponents)(struct NET *net, const T *z, int m,
			     const int *pos)
{
	int cp = net->cp, e = net->e;
	T h = *net->h;
	size_t used = 0;

	for (int i = 0; i < m; i++) {
		for (int k = 0; k < e; k++) {
			size_t ik = (size_t)i * e + k, ki = (size_t)k * m + i;
			const T *zck = net->zc + (size_t)k * cp;
			T zi = z[ki], top = net->kden[ik];
			T *u = net->ku + used, *t = net->kexp + used;
			int skip = SFX(skip)(net, pos, i, k);
			int lo = net->win[2 * ik], hi = net->win[2 * ik + 1];

			for (int j = lo; j < hi; j += 8)
#pragma omp simd
				for (int q = 0; q < 8; q++) {
					u[j - lo + q] = (zck[j + q] - zi) / h;
					t[j - lo + q] = SFX(exponent)(
						u[j - lo + q], j + q, skip,
						net->c) - top;
				}
			used += (size_t)(hi - lo);
		}
	}
	return used;
}

/* y_hat and the denominators from the exp values in kexp. */
INLINE void SFX(outputs)(struct NET *net, T *yhat, int m)
{
	int cp = net->cp, e = net->e;
	bool naive = net->kernel == KAF_KERNEL_NAIVE;
	const T *ex = net->kexp;

	net->zero_den = 0;
	for (int i = 0; i < m; i++) {
		for (int k = 0; k < e; k++) {
			size_t ik = (size_t)i * e + k, ki = (size_t)k * m + i;
			int lo = net->win[2 * ik];
			int count = net->win[2 * ik + 1] - lo;
			const T *yck = net->yc + (size_t)k * cp + lo;
			T num, den;

			if (naive)
				num = SFX(row_sums)(ex, yck, count, true, &den);
			else
				num = SFX(row_sums)(ex, yck, count, false,
						    &den);
			ex += count;
			net->kden[ik] = den;
			net->zero_den += den == 0;
			yhat[ki] = num / den;
		}
	}
}

/*
 * y_hat for m query rows with pre-activations z (m, e). pos maps a query
 * row to its calc position (leave-one-out) or is NULL for rows outside
 * the training set. Keeps windows, denominators, exp values and scaled
 * distances for the backward pass, and counts rows whose denominator is
 * exactly zero.
 *
 * In passes: the windows, the exponents of all rows, all their exps in
 * one long loop (where SIMD pays best and nothing is set up per row), and
 * the sums of each row.
 */
KAF_HOT
static void SFX(kaf_forward)(struct NET *net, const T *z, T *yhat, int m,
			     const int *pos)
{
	T *kexp = net->kexp;
	size_t used;

	SFX(windows)(net, z, m, pos);
	used = SFX(exponents)(net, z, m, pos);
#pragma omp simd
	for (size_t j = 0; j < used; j++)
		kexp[j] = VEXP(kexp[j]);
	SFX(outputs)(net, yhat, m);
}

/*
 * The derivatives of one output y_hat_ik with upstream gradient g, over
 * slots [lo, hi) with exp values ex[0..hi - lo) and scaled distances
 * ku[0..hi - lo) from the forward pass: adds dL/dz_j of every
 * calc slot j (through u_j) to gzck, and returns dL/dz_i in *gzi and
 * dL/dh in *gh, each summed in the eight lanes. The excluded slot has
 * exp 0 and u 0, so its terms are exactly zero, and so are those of slots
 * outside the window.
 *
 * Naive follows the chain a framework's autograd builds from the formula
 * as written, division by division, so that a tiny denominator overflows
 * the gradient exactly where it would there. Once g / den or the
 * denominator's gradient is infinite, that chain multiplies infinity by a
 * zero weight somewhere and the row's gradient is NaN; the function says
 * so by returning false. Stable takes the same derivative through the
 * normalized weights. naive is a constant where this is inlined.
 */
INLINE bool SFX(kaf_row_grad)(const struct NET *net, bool naive,
			      const T *ex, const T *ku, const T *yck,
			      T *gzck, T yh, T den, T g, int lo, int hi,
			      T *gzi, T *gh)
{
	const T norm = (T)2.5066282746310002;
	T h = *net->h, gnum = g / den, gden = -g * (yh / den);
	T sd[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	T sh[8] = {0, 0, 0, 0, 0, 0, 0, 0};

	if (naive && (!isfinite(gnum) || !isfinite(gden)))
		return false;
	for (int j = lo; j < hi; j += 8)
#pragma omp simd
		for (int q = 0; q < 8; q++) {
			int s = j + q;
			T u = ku[s - lo], x = ex[s - lo], gu, gd;

			if (naive) {
				T gt = ((gnum * yck[s] + gden) / norm) * x;

				gu = (-(gt / 2)) * (2 * u);
			} else {
				gu = -(g * (yck[s] - yh) * (x / den) * u);
			}
			gd = gu / h;
			gzck[s] += gd;
			sd[q] += gd;
			sh[q] += -gu * (u / h);
		}
	*gzi = -SFX(fold)(sd);
	*gh = SFX(fold)(sh);
	return true;
}

/* gz (n, e) and dL/dh from dL/dy_hat held in gz on entry. */
KAF_HOT
static void SFX(kaf_backward)(struct NET *net)
{
	int c = net->c, cp = net->cp, e = net->e;
	bool naive = net->kernel == KAF_KERNEL_NAIVE;
	size_t used = 0, ik = 0;
	T gh = 0;

	memset(net->gzc, 0, sizeof(T) * (size_t)(e * cp));
	for (int i = 0; i < net->n; i++) {
		for (int k = 0; k < e; k++, ik++) {
			size_t ki = (size_t)k * net->n + i;
			int lo = net->win[2 * ik], hi = net->win[2 * ik + 1];
			const T *ex = net->kexp + used, *ku = net->ku + used;
			const T *yck = net->yc + (size_t)k * cp;
			T *gzck = net->gzc + (size_t)k * cp, row_gh;
			bool ok;

			used += (size_t)(hi - lo);
			if (naive)
				ok = SFX(kaf_row_grad)(net, true, ex, ku, yck,
						       gzck, net->yhat[ki],
						       net->kden[ik],
						       net->gz[ki], lo, hi,
						       &net->gz[ki], &row_gh);
			else
				ok = SFX(kaf_row_grad)(net, false, ex, ku, yck,
						       gzck, net->yhat[ki],
						       net->kden[ik],
						       net->gz[ki], lo, hi,
						       &net->gz[ki], &row_gh);
			if (!ok) {
				gh = NAN;
				net->gz[ki] = NAN;
				continue;
			}
			gh += row_gh;
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

	if (net->reg == KAF_REG_NONE)
		return;
	for (int i = 0; i < nw; i++) {
		T w = net->theta[i];

		if (net->reg == KAF_REG_L1)
			net->grad[i] += lam * (T)((w > 0) - (w < 0));
		else if (net->reg == KAF_REG_L2)
			net->grad[i] += lam * (2 * w);
	}
}

/*
 * One update of theta[0..np) by grad, with the protocol's defaults; one
 * loop per optimizer, so the choice is made once per step.
 */
static void SFX(optim_step)(enum kaf_opt opt, T lr, int np, int step,
			    T *theta, const T *grad, T *s1, T *s2)
{
	/* Scalars in float64 and rounded once, as the frameworks do. */
	const T beta1 = (T)0.9, beta2 = (T)0.999;
	const T one_m_beta1 = (T)(1 - 0.9), one_m_beta2 = (T)(1 - 0.999);
	const T one_m_alpha = (T)(1 - 0.99);
	T step_size = (T)((double)lr / (1 - pow(0.9, step)));
	T bc2_sqrt = (T)sqrt(1 - pow(0.999, step));

	switch (opt) {
	case KAF_OPT_SGD:
		for (int i = 0; i < np; i++)
			theta[i] -= lr * grad[i];
		break;
	case KAF_OPT_MOMENTUM:
		for (int i = 0; i < np; i++) {
			s1[i] = step == 1 ? grad[i] : (T)0.9 * s1[i] + grad[i];
			theta[i] -= lr * s1[i];
		}
		break;
	case KAF_OPT_RMSPROP:
		for (int i = 0; i < np; i++) {
			s2[i] = (T)0.99 * s2[i] + one_m_alpha * grad[i] * grad[i];
			theta[i] -= lr * grad[i] / (sqrt(s2[i]) + (T)1e-8);
		}
		break;
	case KAF_OPT_ADAGRAD:
		for (int i = 0; i < np; i++) {
			s2[i] += grad[i] * grad[i];
			theta[i] -= lr * grad[i] / (sqrt(s2[i]) + (T)1e-10);
		}
		break;
	case KAF_OPT_ADAM:
		for (int i = 0; i < np; i++) {
			s1[i] = beta1 * s1[i] + one_m_beta1 * grad[i];
			s2[i] = beta2 * s2[i] + one_m_beta2 * grad[i] * grad[i];
			theta[i] -= step_size * s1[i] /
				    (sqrt(s2[i]) / bc2_sqrt + (T)1e-8);
		}
		break;
	default:
		break;
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

/* The run's final metrics from ev, the evaluation of its last weights. */
static void SFX(finish)(struct NET *net, const struct SFX(eval) *ev,
			struct kaf_result *res)
{
	res->val_loss = ev->mse;
	res->accuracy = ev->accuracy;
	res->val_mae = net->classification ? NAN : ev->mae;
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
	struct SFX(eval) ev;
	bool evaluated = false;   /* ev holds the current weights' metrics */
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
		evaluated = false;
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
			ev = SFX(evaluate)(net);
			evaluated = true;
			ep.val_loss = ev.mse;
			stop |= hooks->on_epoch(hooks->ctx, &ep);
		}
		if (res->diverged)
			break;
	}
	if (!evaluated)
		ev = SFX(evaluate)(net);
	SFX(finish)(net, &ev, res);
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
#undef INLINE
#undef BLOCK
#undef UNITS
#undef GA
#undef GB
#undef GB1
