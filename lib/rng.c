/*
 * rng.c - the per-net random generator: xoshiro256** seeded by splitmix64.
 * Every random choice of a net comes from its own generator, so results
 * depend on the seed only, never on global state or other nets.
 */
#include "bpl_internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void bpl__rng_seed(bpl__rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

uint64_t bpl__rng_next(bpl__rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double bpl__rng_uniform(bpl__rng *rng)
{
    return (double)(bpl__rng_next(rng) >> 11) * 0x1.0p-53;
}

/* Box-Muller without a cached spare, so the generator state alone is the
 * whole state (it is what a saved model stores). */
double bpl__rng_normal(bpl__rng *rng)
{
    double u1 = 1.0 - bpl__rng_uniform(rng); /* (0, 1]: log is finite */
    double u2 = bpl__rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Rejection of the 2^64 mod n lowest values makes r % n unbiased. */
uint64_t bpl__rng_below(bpl__rng *rng, uint64_t n)
{
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t r = bpl__rng_next(rng);
        if (r >= threshold)
            return r % n;
    }
}

void bpl__rng_shuffle(bpl__rng *rng, size_t *items, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bpl__rng_below(rng, i);
        size_t tmp = items[i - 1];
        items[i - 1] = items[j];
        items[j] = tmp;
    }
}

BPL_API int bpl_net_random_uniform(bpl_net *net, float *dst, size_t n, double lo,
                                   double hi)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(dst != NULL || n == 0);
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return bpl__fail(BPL_ERR_RANGE, "bpl_net_random_uniform: need finite lo <= hi");
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(lo + (hi - lo) * bpl__rng_uniform(&net->rng));
    return BPL_OK;
}

BPL_API int bpl_net_random_normal(bpl_net *net, float *dst, size_t n, double mean,
                                  double stddev)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(dst != NULL || n == 0);
    if (!isfinite(mean) || !isfinite(stddev) || stddev < 0)
        return bpl__fail(BPL_ERR_RANGE,
                         "bpl_net_random_normal: need finite mean and stddev >= 0");
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(mean + stddev * bpl__rng_normal(&net->rng));
    return BPL_OK;
}
