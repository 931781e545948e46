/*
 * rng.h - explicit, splittable pseudo-random numbers.
 *
 * Every random draw in kaf comes from a struct kaf_rng whose state is
 * derived from a key path (sweep seed, run identity, purpose), never from a
 * global, so a result depends only on what the run is, not on which thread
 * ran it or in what order. The generator is SplitMix64: a 64-bit counter
 * advanced by a fixed odd increment and passed through a bijective mixer.
 * It is small, fast and passes BigCrush; it is not cryptographic.
 *
 * Memory: the state is a plain value owned by the caller. Thread-safe as
 * long as each thread has its own state.
 */
#ifndef KAF_RNG_H
#define KAF_RNG_H

#include <stdint.h>

struct kaf_rng {
	uint64_t state;
};

/* Purposes of the independent streams inside one run. */
enum kaf_stream {
	KAF_STREAM_SPLIT = 1,
	KAF_STREAM_CALC = 2,
	KAF_STREAM_W1 = 3,
	KAF_STREAM_W2 = 4,
};

/* The mixing function: a bijection of 64-bit words. */
uint64_t kaf_rng_mix(uint64_t x);

/* Derive a child key from a parent key and a tag; order-sensitive. */
uint64_t kaf_rng_derive(uint64_t parent, uint64_t tag);

/* 64-bit FNV-1a hash of a string, for keys made from names. */
uint64_t kaf_rng_hash_str(const char *s);

/* A generator for the stream (key, purpose). */
void kaf_rng_init(struct kaf_rng *r, uint64_t key, uint64_t purpose);

uint64_t kaf_rng_next(struct kaf_rng *r);

/* Uniform in [0, 1) with 53 random bits. */
double kaf_rng_uniform(struct kaf_rng *r);

/* Standard normal by the Box-Muller transform (one draw per call). */
double kaf_rng_normal(struct kaf_rng *r);

/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t kaf_rng_below(struct kaf_rng *r, uint64_t n);

#endif
