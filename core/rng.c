#include "rng.h"

#include <math.h>

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

uint64_t kaf_rng_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t kaf_rng_derive(uint64_t parent, uint64_t tag)
{
	return kaf_rng_mix(kaf_rng_mix(parent + GOLDEN_GAMMA) ^
			   kaf_rng_mix(tag * GOLDEN_GAMMA + 1));
}

uint64_t kaf_rng_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

void kaf_rng_init(struct kaf_rng *r, uint64_t key, uint64_t purpose)
{
	r->state = kaf_rng_derive(key, purpose);
}

uint64_t kaf_rng_next(struct kaf_rng *r)
{
	r->state += GOLDEN_GAMMA;
	return kaf_rng_mix(r->state);
}

double kaf_rng_uniform(struct kaf_rng *r)
{
	return (double)(kaf_rng_next(r) >> 11) * 0x1.0p-53;
}

double kaf_rng_normal(struct kaf_rng *r)
{
	/* 1 - U lies in (0, 1], so the logarithm is finite. */
	double u1 = 1.0 - kaf_rng_uniform(r);
	double u2 = kaf_rng_uniform(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t kaf_rng_below(struct kaf_rng *r, uint64_t n)
{
	/* Reject the top partial block so every residue is equally likely. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;

	do
		x = kaf_rng_next(r);
	while (x >= limit);
	return x % n;
}
