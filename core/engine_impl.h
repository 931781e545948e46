/*
 * engine_impl.h - the network, K-AF and training in one precision.
 *
 * Included by engine.c once per precision with these defined:
 *   T          float or double: every stored value and every operation
 *   SFX(name)  name with the precision's suffix (_f32, _f64)
 *   VEXP       the vectorizable exp of that precision for arguments <= 0,
 *              the only ones K-AF has (vexp.h)
 *   VEXPG      the same for every argument, for the fixed activations
 *   VTANH      the vectorizable tanh of that precision
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
 * instruction set changes: a layer's output, and a K-AF output's sums
 * over calc rows, are sequential sums computed for a block of rows at
 * once; a sum over rows (weight gradients, K-AF's gradients of calc rows
 * and of h) runs in fixed lanes, see SFX(fold). Results do not depend on
 * the SIMD width of the machine or on the thread that runs them.
 */

#define NET SFX(net)
#define INLINE static inline __attribute__((always_inline))

/*
 * The hot loops are compiled once per instruction set (AVX-512, AVX2 and
 * the baseline) and picked at load time. With contraction off and sums in
 * fixed lanes, every version gives bit-identical results; only the speed
 * differs, and a test compares them with a build that has no clones. The
 * helpers they call are INLINE, or KAF_HOT themselves, so that they are
 * compiled for the same instruction set.
 */
#ifndef KAF_HOT
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KAF_HOT                                                         \
	__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
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

/* Sixteen lanes: the two halves folded, then added. */
INLINE T SFX(fold16)(const T *acc)
{
	return SFX(fold)(acc) + SFX(fold)(acc + 8);
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

/*
 * Query rows K-AF works on at once, one per lane; see SFX(block). Sixteen
 * rows keep two AVX2 registers of floats, or one AVX-512 register, busy
 * with independent work. Sums across them fold in fixed order too.
 */
#define LANES 16
_Static_assert(LANES == 16, "SFX(fold16) folds sixteen lanes");

struct NET {
	int n, nv, d, l, e, c;
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
	T *sg, *th;             /* (e, n) sigmoid(z), tanh(softplus(z)) */
	T *gz;                  /* (e, n) loss gradient at z */
	T *ghid;                /* (l, n) loss gradient at hidden units */
	T *ycal;                /* (e, c) calc targets by calc position */
	T *zc;                  /* (e, c) calc pre-activations, sorted */
	T *yc;                  /* (e, c) their targets, same order */
	int *ord;               /* (e, c) calc position of each sorted slot */
	int *rank;              /* (e, c) sorted slot of each calc position */
	bool *sorted;           /* (e) column sorted, so windows apply */
	int *qo;                /* (m) query rows in K-AF's order */
	int *slot;              /* (m) first calc slot not below each row */
	int *count;             /* (c + 2) rows per gap between slots */
	T *bex, *bu;            /* (c, LANES) a block's exp values and
				 * scaled distances, for its backward */
	T *gzc8;                /* (c, LANES) gradient at sorted calc slots,
				 * by lane */
	T kgh;                  /* dL/dh of the last training pass */
	T *pack;                /* (d + 2 l + e, BLOCK) a last partial block */
	int zero_den;           /* rows whose weights all underflowed */
};

/* ---- layout: one allocation, carved into named arrays ---- */

static size_t SFX(layout)(struct NET *net, char *base)
{
	int n = net->n, nv = net->nv, d = net->d, l = net->l;
	int e = net->e, c = net->c, m = n > nv ? n : nv;

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
	CARVE(sg, T, n * e);
	CARVE(th, T, n * e);
	CARVE(gz, T, n * e);
	CARVE(ghid, T, l * n);
	CARVE(ycal, T, e * c);
	CARVE(zc, T, e * c);
	CARVE(yc, T, e * c);
	CARVE(ord, int, e * c);
	CARVE(rank, int, e * c);
	CARVE(sorted, bool, e);
	CARVE(qo, int, m);
	CARVE(slot, int, m);
	CARVE(count, int, c + 2);
	CARVE(bex, T, c * LANES);
	CARVE(bu, T, c * LANES);
	CARVE(gzc8, T, c * LANES);
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
	for (int k = 0; k < net->e; k++)
		for (int j = 0; j < net->c; j++)
			net->ord[(size_t)k * net->c + j] = j;
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

/*
 * The fixed activations, vectorized: each loop runs over one activation,
 * on the exponential VEXPG (within 1 ulp, IEEE edges kept) and VTANH
 * (within 4 ulp).
 *
 * mish is z tanh(softplus(z)) with softplus linear above 20, the
 * mainstream frameworks' threshold, where tanh is 1 in both precisions.
 * Below it, tanh(log(1 + e)) with e = exp(z) is n / (n + 2) for
 * n = e (e + 2): one exponential, and no cancellation anywhere.
 */
INLINE T SFX(sigmoid)(T v)
{
	return 1 / (1 + VEXPG(-v));
}

INLINE T SFX(mish_tanh)(T v)
{
	T e = VEXPG(v > 20 ? (T)20 : v), n = e * (e + 2);

	return v > 20 ? (T)1 : n / (n + 2);
}

/*
 * yhat = phi(z), elementwise. With sg and th, the sigmoid and the
 * tanh(softplus) that swish and mish go through are kept there for the
 * backward, which then needs no exponential: the values are the same as
 * computing them again.
 */
KAF_HOT
static void SFX(act_forward)(enum kaf_activation act, const T *z, T *yhat,
			     T *sg, T *th, int count)
{
	switch (act) {
	case KAF_ACT_RELU:
#pragma omp simd
		for (int i = 0; i < count; i++)
			yhat[i] = z[i] > 0 ? z[i] : 0;
		break;
	case KAF_ACT_SIGMOID:
#pragma omp simd
		for (int i = 0; i < count; i++)
			yhat[i] = SFX(sigmoid)(z[i]);
		break;
	case KAF_ACT_TANH:
#pragma omp simd
		for (int i = 0; i < count; i++)
			yhat[i] = VTANH(z[i]);
		break;
	case KAF_ACT_SWISH:
		if (!sg) {
#pragma omp simd
			for (int i = 0; i < count; i++)
				yhat[i] = z[i] * SFX(sigmoid)(z[i]);
			break;
		}
#pragma omp simd
		for (int i = 0; i < count; i++) {
			sg[i] = SFX(sigmoid)(z[i]);
			yhat[i] = z[i] * sg[i];
		}
		break;
	case KAF_ACT_MISH:
		if (!th) {
#pragma omp simd
			for (int i = 0; i < count; i++)
				yhat[i] = z[i] * SFX(mish_tanh)(z[i]);
			break;
		}
#pragma omp simd
		for (int i = 0; i < count; i++) {
			th[i] = SFX(mish_tanh)(z[i]);
			sg[i] = SFX(sigmoid)(z[i]);
			yhat[i] = z[i] * th[i];
		}
		break;
	default:
		memcpy(yhat, z, sizeof(T) * (size_t)count);
		break;
	}
}

/*
 * gz = g * phi'(z), elementwise, after act_forward kept yhat, sg and th;
 * g and gz may alias.
 */
KAF_HOT
static void SFX(act_backward)(enum kaf_activation act, const T *z,
			      const T *yhat, const T *sg, const T *th,
			      const T *g, T *gz, int count)
{
	switch (act) {
	case KAF_ACT_RELU:
#pragma omp simd
		for (int i = 0; i < count; i++)
			gz[i] = z[i] > 0 ? g[i] : 0;
		break;
	case KAF_ACT_SIGMOID:
#pragma omp simd
		for (int i = 0; i < count; i++)
			gz[i] = g[i] * (yhat[i] * (1 - yhat[i]));
		break;
	case KAF_ACT_TANH:
#pragma omp simd
		for (int i = 0; i < count; i++)
			gz[i] = g[i] * (1 - yhat[i] * yhat[i]);
		break;
	case KAF_ACT_SWISH:
#pragma omp simd
		for (int i = 0; i < count; i++) {
			T s = sg[i];

			gz[i] = g[i] * (s + z[i] * s * (1 - s));
		}
		break;
	case KAF_ACT_MISH:
#pragma omp simd
		for (int i = 0; i < count; i++) {
			T t = th[i];

			gz[i] = g[i] * (t + z[i] * (1 - t * t) * sg[i]);
		}
		break;
	default:
		if (gz != g)
			memcpy(gz, g, sizeof(T) * (size_t)count);
		break;
	}
}

/* ---- K-AF ---- */

/*
 * The calc rows' pre-activations by output, sorted ascending with their
 * targets, from z (., e); ties in calc order. Sorting lets each query row
 * visit only the calc rows whose kernel weight can be non-zero: a weight
 * whose exponent is below the underflow threshold is exactly 0 in IEEE
 * arithmetic, so skipping it changes no value. A column with a
 * non-finite value is left unsorted and every row then visits all of it.
 *
 * The sort starts from the previous pass's order, which a step changes
 * little, so insertion sort is nearly linear; the order it reaches is
 * unique, so where it started never shows.
 */
static void SFX(gather_calc)(struct NET *net, const T *z, int m,
			     const int *rows)
{
	int c = net->c, e = net->e;

	for (int k = 0; k < e; k++) {
		T *zs = net->zc + (size_t)k * c;
		int *ord = net->ord + (size_t)k * c;
		bool finite = true;

		for (int s = 0; s < c; s++) {
			int j = ord[s];

			zs[s] = z[(size_t)k * m + (rows ? rows[j] : j)];
			finite = finite && isfinite(zs[s]);
		}
		for (int s = 1; finite && s < c; s++) {
			T v = zs[s];
			int j = ord[s], t = s;

			for (; t > 0 && (zs[t - 1] > v ||
					 (zs[t - 1] == v && ord[t - 1] > j));
			     t--) {
				zs[t] = zs[t - 1];
				ord[t] = ord[t - 1];
			}
			zs[t] = v;
			ord[t] = j;
		}
		if (!finite)
			for (int j = 0; j < c; j++) {
				zs[j] = z[(size_t)k * m + (rows ? rows[j] : j)];
				ord[j] = j;
			}
		net->sorted[k] = finite;
		for (int s = 0; s < c; s++) {
			net->yc[k * c + s] = net->ycal[k * c + ord[s]];
			net->rank[k * c + ord[s]] = s;
		}
	}
}

/*
 * The first of the sorted zs[0..c) that is >= v (strict: > v), or c. The
 * steps depend on c alone, so the loop never mispredicts; the
 * comparisons, which are unpredictable, become conditional moves.
 */
INLINE int SFX(bound)(const T *zs, int c, T v, bool strict)
{
	int lo = 0, n = c;

	while (n > 1) {
		int half = n / 2;
		T at = zs[lo + half - 1];

		lo = (strict ? at <= v : at < v) ? lo + half : lo;
		n -= half;
	}
	return lo + (n == 1 && (strict ? zs[lo] <= v : zs[lo] < v));
}

/* How the query rows of a column meet the calc slots (both precisions). */
#ifndef KAF_REACH_DECLARED
#define KAF_REACH_DECLARED
enum kaf_reach {
	KAF_REACH_NONE,         /* a value is not finite: no windows */
	KAF_REACH_GROUPED,      /* rows grouped by gap, each block its window */
	KAF_REACH_WIDE,         /* rows in order: one radius spans the slots */
};
#endif

/*
 * The m query rows of column zk against the sorted calc slots zs[0..c).
 * If the slots span less than reach_min, the smallest radius any row can
 * have, a window holds all of them for every row between them, and
 * ordering the rows would gain little: they stay in order, and only with
 * slots is slot[i] found, the first slot not below row i. Otherwise the
 * rows are grouped by the gap between slots they fall in: slot[i] as
 * above, and qo lists the rows by slot, then by row. Rows of one group
 * share their nearest slots, so LANES of them in a row need nearly the
 * same window. The order is a function of the values alone, and each
 * row's output does not depend on it.
 */
static enum kaf_reach SFX(group_rows)(const T *zs, int c, const T *zk,
				      int m, T reach_min, bool slots,
				      int *qo, int *slot, int *count)
{
	bool finite = true, wide = zs[c - 1] - zs[0] <= reach_min;
	int i = 0;

	for (int r = 0; r < m; r++)
		finite = finite && isfinite(zk[r]);
	if (!finite)
		return KAF_REACH_NONE;
	if (wide && !slots)
		return KAF_REACH_WIDE;
	/* Eight searches side by side: each is a chain of dependent loads,
	 * and eight chains keep the processor busy. */
	for (; i + 8 <= m; i += 8) {
		int at[8] = {0, 0, 0, 0, 0, 0, 0, 0}, n = c;

		while (n > 1) {
			int half = n / 2;

			for (int q = 0; q < 8; q++)
				at[q] += zs[at[q] + half - 1] < zk[i + q] ? half
									  : 0;
			n -= half;
		}
		for (int q = 0; q < 8; q++)
			slot[i + q] = at[q] + (n == 1 && zs[at[q]] < zk[i + q]);
	}
	for (; i < m; i++)
		slot[i] = SFX(bound)(zs, c, zk[i], false);
	if (wide)
		return KAF_REACH_WIDE;
	memset(count, 0, sizeof(int) * (size_t)(c + 2));
	for (int r = 0; r < m; r++)
		count[slot[r] + 1]++;
	for (int s = 1; s <= c; s++)
		count[s] += count[s - 1];
	for (int r = 0; r < m; r++)
		qo[count[slot[r]]++] = r;
	return KAF_REACH_GROUPED;
}

/*
 * K-AF works on LANES query rows at once, one row per lane: their values,
 * excluded slots and exponent shifts, and the window [lo, hi) of sorted
 * calc slots that holds every slot with a non-zero weight for any of them.
 * Each row sums over the window in slot order, so its output does not
 * depend on which rows share its block: the slots a row reaches for its
 * neighbours' sake add exact zeros.
 */
struct SFX(block) {
	int row[LANES];         /* query rows; a last block repeats its last */
	int rows;               /* real rows, 1..LANES */
	int skip[LANES];        /* the slot each row excludes, or -1 */
	int at[LANES];          /* the first slot not below each row */
	T zi[LANES], top[LANES];
	int lo, hi;
};

/* The excluded sorted slot of query row i in column k, or -1. */
INLINE int SFX(skip)(const struct NET *net, const int *pos, int i, int k)
{
	return pos && pos[i] >= 0 ? net->rank[k * net->c + pos[i]] : -1;
}

/*
 * Stable's shift for the block: each row's largest exponent over all
 * slots; naive's is 0.
 */
INLINE void SFX(scan_top)(const struct NET *net, const T *zs,
			  struct SFX(block) *b)
{
	T h = *net->h;

	for (int q = 0; q < LANES; q++)
		b->top[q] = -INFINITY;
	for (int j = 0; j < net->c; j++)
#pragma omp simd
		for (int q = 0; q < LANES; q++) {
			T u = (zs[j] - b->zi[q]) / h;
			T t = j != b->skip[q] ? -(u * u) / 2 : -INFINITY;

			b->top[q] = t > b->top[q] ? t : b->top[q];
		}
}

/*
 * The radius around a query row's value beyond which every kernel weight
 * is exactly 0.
 *
 * Naive: |u| beyond the exp underflow threshold of the precision (14.43
 * in float32, 38.60 in float64) gives exactly 0. Stable: the exponents
 * are shifted by the nearest included slot's, the row's largest (|u|
 * grows with |zs - zi| and every step rounds monotonically, so its
 * -u^2 / 2 is the largest, bit for bit), and u^2 - u_near^2 beyond twice
 * the underflow exponent (103.97 in float32, 745.13 in float64) gives
 * exactly 0. The radii carry a margin for the rounding of u.
 */
INLINE T SFX(naive_reach)(T h)
{
	const T eps = sizeof(T) == sizeof(float) ? (T)0x1p-23 : (T)0x1p-52;
	const T r2 = sizeof(T) == sizeof(float) ? (T)(14.6 * 14.6)
						: (T)(38.8 * 38.8);

	return sqrt(r2) * h * (1 + 64 * eps);
}

/* Stable's radius for a row whose nearest slot is u_near h away. */
INLINE T SFX(stable_reach)(T u_near, T h)
{
	const T eps = sizeof(T) == sizeof(float) ? (T)0x1p-23 : (T)0x1p-52;
	const T gap = sizeof(T) == sizeof(float) ? (T)212 : (T)1500;

	return sqrt(u_near * u_near * (1 + 64 * eps) + gap) * h *
	       (1 + 64 * eps);
}

/* No row's radius is smaller. */
INLINE T SFX(reach_min)(const struct NET *net)
{
	return net->kernel == KAF_KERNEL_NAIVE ? SFX(naive_reach)(*net->h)
					       : SFX(stable_reach)(0, *net->h);
}

/*
 * The window and shifts of a block of rows, from each row's nearest
 * included slot, next to its first slot not below it (stable; naive's
 * shift is 0). Returns false if some radius is not finite; the caller
 * then visits every slot.
 */
INLINE bool SFX(window)(const struct NET *net, const T *zs,
			struct SFX(block) *b)
{
	int c = net->c;
	T h = *net->h, below = INFINITY, above = -INFINITY;
	T near[LANES], reach[LANES];

	if (net->kernel == KAF_KERNEL_NAIVE) {
		for (int q = 0; q < LANES; q++) {
			b->top[q] = 0;
			reach[q] = SFX(naive_reach)(h);
		}
	} else {
		for (int q = 0; q < LANES; q++) {
			int p = b->at[q], skip = b->skip[q];
			int lo = p - 1 == skip ? p - 2 : p - 1;
			int hi = p == skip ? p + 1 : p;
			T zi = b->zi[q];

			near[q] = INFINITY;
			if (lo >= 0)
				near[q] = fabs(zs[lo] - zi);
			if (hi < c && fabs(zs[hi] - zi) < near[q])
				near[q] = fabs(zs[hi] - zi);
		}
#pragma omp simd
		for (int q = 0; q < LANES; q++) {
			T u = near[q] / h;

			b->top[q] = -(u * u) / 2;
			reach[q] = SFX(stable_reach)(u, h);
		}
	}
	for (int q = 0; q < LANES; q++) {
		if (!isfinite(reach[q]))
			return false;
		below = b->zi[q] - reach[q] < below ? b->zi[q] - reach[q]
						    : below;
		above = b->zi[q] + reach[q] > above ? b->zi[q] + reach[q]
						    : above;
	}
	b->lo = SFX(bound)(zs, c, below, false);
	b->hi = SFX(bound)(zs, c, above, true);
	return true;
}

/*
 * The forward sums of one block over its window, for output column zs,
 * ys: y_hat in yh and the denominators in den, per lane. With keep, each
 * slot's exp values and scaled distances are kept in ex and uu, LANES per
 * slot, for the backward. naive and keep are constants where this is
 * inlined.
 */
INLINE void SFX(block_sums)(const struct NET *net, const T *zs, const T *ys,
			    const struct SFX(block) *b, bool naive, bool keep,
			    T *ex, T *uu, T *yh, T *den)
{
	const T norm = (T)2.5066282746310002;  /* sqrt(2 pi) */
	T h = *net->h;
	T d[LANES] = {0};
	T s[LANES] = {0};

	for (int j = b->lo; j < b->hi; j++) {
		T zj = zs[j], yj = ys[j];
		size_t at = (size_t)(j - b->lo) * LANES;

#pragma omp simd
		for (int q = 0; q < LANES; q++) {
			T u = (zj - b->zi[q]) / h;
			T t = j != b->skip[q] ? -(u * u) / 2 - b->top[q]
					      : -INFINITY;
			T x = VEXP(t);
			T w = naive ? x / norm : x;

			if (keep) {
				ex[at + q] = x;
				uu[at + q] = u;
			}
			d[q] += w;
			s[q] += w * yj;
		}
	}
#pragma omp simd
	for (int q = 0; q < LANES; q++) {
		yh[q] = s[q] / d[q];
		den[q] = d[q];
	}
}

/*
 * The backward of one block with upstream gradients g: adds h dL/dz_j of
 * every slot j (through u_j) to its lanes in gzc8 and dL/dh to the lanes
 * of gh, and sets gzi to dL/dz_i of each row. Each sum over slots is
 * taken before its one division by h. The excluded slot has exp 0 and
 * u 0, so its terms are exactly zero, and so are those of slots outside
 * the window.
 *
 * Naive follows the chain a framework's autograd builds from the formula
 * as written, so that a tiny denominator overflows the gradient exactly
 * where it would there: g / den and the denominator's gradient. Once
 * either is infinite, that chain multiplies infinity by a zero weight
 * somewhere and the row's gradient is NaN; such a row's gzi is NaN, and
 * so is gh. Stable takes the same derivative through the normalized
 * weights. naive is a constant where this is inlined.
 */
INLINE void SFX(block_grad)(const struct NET *net, const T *ys,
			    const struct SFX(block) *b, bool naive,
			    const T *ex, const T *uu, const T *yh,
			    const T *den, const T *g, T *gzc8, T *gh,
			    T *gzi)
{
	const T norm = (T)2.5066282746310002;  /* sqrt(2 pi) */
	T h = *net->h, a[LANES], c[LANES];
	T su[LANES] = {0};
	T shu[LANES] = {0};
	bool bad[LANES], any = false;

	/*
	 * Per lane, the factors of a slot's dL/du: naive, u's gradient is
	 * -(a y_j + c) x u with a and c the weight gradients' two parts over
	 * sqrt(2 pi); stable, -a (y_j - y_hat) x u with a = g / den.
	 */
#pragma omp simd
	for (int q = 0; q < LANES; q++) {
		T gnum = g[q] / den[q], gden = -g[q] * (yh[q] / den[q]);

		bad[q] = naive && (!isfinite(gnum) || !isfinite(gden));
		a[q] = naive ? gnum / norm : gnum;
		c[q] = naive ? gden / norm : yh[q];
	}
	for (int q = 0; naive && q < b->rows; q++)
		any = any || bad[q];
	for (int j = b->lo; j < b->hi; j++) {
		T yj = ys[j], *acc = gzc8 + (size_t)j * LANES;
		size_t at = (size_t)(j - b->lo) * LANES;

#pragma omp simd
		for (int q = 0; q < LANES; q++) {
			T u = uu[at + q], x = ex[at + q];
			T gu = naive ? -((a[q] * yj + c[q]) * x * u)
				     : -(a[q] * (yj - c[q]) * x * u);

			acc[q] += gu;
			su[q] += gu;
			shu[q] += gu * u;
		}
	}
#pragma omp simd
	for (int q = 0; q < LANES; q++) {
		gzi[q] = bad[q] ? NAN : -(su[q] / h);
		gh[q] = any ? NAN : gh[q] - shu[q] / h;
	}
}

/* One output column of a K-AF pass: what every block of it shares. */
struct SFX(column) {
	int k, m;
	const T *zs, *ys;       /* (c) sorted calc values and targets */
	const T *zk;            /* (m) query values */
	const int *pos;         /* calc position of a query row, or NULL */
	bool windows;           /* sorted, finite: windows apply */
};

/*
 * The block of query rows qo[p0..p0 + LANES) of column col, a last one
 * repeating its last row: their values, excluded slots, shifts and
 * window. Without windows, or where a radius is not finite, the window is
 * every slot and stable's shift is found by scanning them.
 */
INLINE void SFX(block_fill)(const struct NET *net,
			    const struct SFX(column) *col, const int *qo,
			    int p0, bool naive, struct SFX(block) *b)
{
	b->rows = col->m - p0 < LANES ? col->m - p0 : LANES;
	for (int q = 0; q < LANES; q++) {
		int row = qo[p0 + (q < b->rows ? q : b->rows - 1)];

		b->row[q] = row;
		b->zi[q] = col->zk[row];
		b->skip[q] = SFX(skip)(net, col->pos, row, col->k);
		b->at[q] = col->windows && !naive ? net->slot[row] : 0;
	}
	if (col->windows && SFX(window)(net, col->zs, b))
		return;
	b->lo = 0;
	b->hi = net->c;
	if (naive)
		for (int q = 0; q < LANES; q++)
			b->top[q] = 0;
	else
		SFX(scan_top)(net, col->zs, b);
}

/*
 * One block: its outputs into yhat (e, m); with train, its rows' dL/dz
 * into gz for loss gradients scale * (y_hat - y), and its parts of the
 * calc slots' gradients and of dL/dh into gzc8 and gh.
 */
INLINE void SFX(block_run)(struct NET *net, const struct SFX(column) *col,
			   const struct SFX(block) *b, T *yhat, T scale,
			   bool naive, bool train, T *gh)
{
	T yh[LANES], den[LANES], g[LANES] = {0}, gzi[LANES];
	size_t base = (size_t)col->k * col->m;

	SFX(block_sums)(net, col->zs, col->ys, b, naive, train, net->bex,
			net->bu, yh, den);
	for (int q = 0; q < b->rows; q++) {
		yhat[base + b->row[q]] = yh[q];
		net->zero_den += den[q] == 0;
		if (train)
			g[q] = scale * (yh[q] - net->y[base + b->row[q]]);
	}
	if (!train)
		return;
	SFX(block_grad)(net, col->ys, b, naive, net->bex, net->bu, yh, den,
			g, net->gzc8, gh, gzi);
	for (int q = 0; q < b->rows; q++)
		net->gz[base + b->row[q]] = gzi[q];
}

/*
 * y_hat (e, m) for m query rows with pre-activations z (e, m), from the
 * sorted calc columns. pos maps a query row to its calc position
 * (leave-one-out) or is NULL for rows outside the training set.
 * With train, also the K-AF part of the backward for loss gradients
 * scale * (y_hat - y): gz (e, n) gets dL/dz and net->kgh dL/dh.
 * Counts rows whose denominator is exactly zero.
 */
INLINE void SFX(kaf_pass)(struct NET *net, const T *z, T *yhat, int m,
			  const int *pos, bool naive, bool train)
{
	int c = net->c, e = net->e;
	T scale = (T)2 / (T)(m * e), gh[LANES] = {0};

	net->zero_den = 0;
	for (int k = 0; k < e; k++) {
		struct SFX(column) col = {
			.k = k, .m = m, .zs = net->zc + (size_t)k * c,
			.ys = net->yc + (size_t)k * c,
			.zk = z + (size_t)k * m, .pos = pos,
		};
		enum kaf_reach reach = KAF_REACH_NONE;

		if (net->sorted[k] && *net->h > 0 && isfinite(*net->h))
			reach = SFX(group_rows)(col.zs, c, col.zk, m,
						SFX(reach_min)(net), !naive,
						net->qo, net->slot,
						net->count);
		col.windows = reach != KAF_REACH_NONE;
		if (reach != KAF_REACH_GROUPED)
			for (int p = 0; p < m; p++)
				net->qo[p] = p;
		if (train)
			memset(net->gzc8, 0, sizeof(T) * (size_t)c * LANES);
		for (int p0 = 0; p0 < m; p0 += LANES) {
			struct SFX(block) b;

			SFX(block_fill)(net, &col, net->qo, p0, naive, &b);
			SFX(block_run)(net, &col, &b, yhat, scale, naive,
				       train, gh);
		}
		for (int s = 0; train && s < c; s++)
			net->gz[(size_t)k * m + net->calc[net->ord[k * c + s]]]
				+= SFX(fold16)(net->gzc8 + (size_t)s * LANES) /
				   *net->h;
	}
	if (train)
		net->kgh = SFX(fold16)(gh);
}

/* kaf_pass with its constants fixed, one version per kernel. */
KAF_HOT
static void SFX(kaf_forward)(struct NET *net, const T *z, T *yhat, int m,
			     const int *pos, bool train)
{
	if (net->kernel == KAF_KERNEL_NAIVE) {
		if (train)
			SFX(kaf_pass)(net, z, yhat, m, pos, true, true);
		else
			SFX(kaf_pass)(net, z, yhat, m, pos, true, false);
	} else {
		if (train)
			SFX(kaf_pass)(net, z, yhat, m, pos, false, true);
		else
			SFX(kaf_pass)(net, z, yhat, m, pos, false, false);
	}
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
		SFX(kaf_forward)(net, net->z, net->yhat, n, net->pos, true);
	} else {
		SFX(act_forward)(net->act, net->z, net->yhat, net->sg,
				 net->th, n * e);
	}
	*mse = SFX(mse)(net->yhat, net->y, n * e);
	return *mse + SFX(penalty)(net);
}

/*
 * Backward after train_forward: fills grad (P). K-AF's part of it, gz and
 * dL/dh, came with the forward pass.
 */
static void SFX(train_backward)(struct NET *net)
{
	int count = net->n * net->e;
	T scale = (T)2 / (T)count;

	if (net->act == KAF_ACT_KAF) {
		net->grad[net->np - 1] = net->kgh;
	} else {
		for (int i = 0; i < count; i++)
			net->gz[i] = scale * (net->yhat[i] - net->y[i]);
		SFX(act_backward)(net->act, net->z, net->yhat, net->sg,
				  net->th, net->gz, net->gz, count);
	}
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
		SFX(kaf_forward)(net, net->z, net->yhat, nv, NULL, false);
	else
		SFX(act_forward)(net->act, net->z, net->yhat, NULL, NULL,
				 nv * e);
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
	const T *zs = net->zc + (size_t)k * net->c;
	const T *ys = net->yc + (size_t)k * net->c;
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
				net->zc[(size_t)k * net->c + j];
			cy[(size_t)k * net->c + j] =
				net->yc[(size_t)k * net->c + j];
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
