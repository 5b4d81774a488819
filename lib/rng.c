/*
 * rng.c - the per-net random generator: xoshiro256** seeded by splitmix64.
 * Every random choice of a net comes from its own generator, so results
 * depend on the seed only, never on global state or other nets.
 */
#include "bpl_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

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

/* Rejection of the 2^64 mod n lowest values makes r % n unbiased.  A draw
 * is rejected with probability below n / 2^64, so a working generator
 * never needs a second try in practice; the cap only matters for a
 * degenerate state (all zero: xoshiro256** then returns 0 for ever), where
 * the slightly biased r % n ends what would otherwise be an endless loop. */
enum { BELOW_TRIES = 64 };

uint64_t bpl__rng_below(bpl__rng *rng, uint64_t n)
{
    uint64_t threshold = (0 - n) % n, r = 0;
    for (int i = 0; i < BELOW_TRIES; i++) {
        r = bpl__rng_next(rng);
        if (r >= threshold)
            break;
    }
    return r % n;
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

/* ---- fast Gaussian fill -------------------------------------------------
 *
 * Box-Muller on 24-bit uniforms with float polynomials that vectorise: the
 * noise-injecting rules draw a normal per hidden unit per example every
 * step, and libm's log and cos, called per value, would cost more than the
 * rest of the step.  log: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m =
 * 2 atanh((m-1)/(m+1)) to t^9 (error < 2e-9).  The angle is a quadrant (2
 * bits) plus psi in [-pi/4, pi/4) (22 bits), whose sine and cosine are
 * Taylor polynomials to degree 9 and 8 (error < 4e-9). */

enum { NORMAL_CHUNK = 256 };

static inline float log_unit(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t e = (int32_t)((bits >> 23) & 0xff) - 127;
    uint32_t mbits = (bits & 0x7fffffu) | 0x3f800000u;
    float m;
    memcpy(&m, &mbits, sizeof m);
    int big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e += big;
    float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    float p = 2.0f / 9.0f;
    p = p * t2 + 2.0f / 7.0f;
    p = p * t2 + 2.0f / 5.0f;
    p = p * t2 + 2.0f / 3.0f;
    p = p * t2 + 2.0f;
    return (float)e * 0.693147180559945f + p * t;
}

/* Two normals from two 24-bit random integers. */
BPL__MULTIVERSION
static void box_muller(const uint32_t *radius_bits, const uint32_t *angle_bits, float *z0,
                       float *z1, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float u = (float)(radius_bits[i] + 1) * 0x1.0p-24f; /* (0, 1] */
        float r = sqrtf(-2.0f * log_unit(u));
        uint32_t q = angle_bits[i] >> 22;
        float psi = (float)(angle_bits[i] & 0x3fffffu) * (0x1.0p-22f * 1.57079632679f) -
                    0.785398163397f;
        float p2 = psi * psi;
        float sn = psi * (1.0f + p2 * (-1.0f / 6 + p2 * (1.0f / 120 + p2 * (-1.0f / 5040 +
                                                                           p2 / 362880))));
        float cs = 1.0f + p2 * (-0.5f + p2 * (1.0f / 24 + p2 * (-1.0f / 720 + p2 / 40320)));
        /* angle = q pi/2 + pi/4 + psi */
        float s = (sn + cs) * 0.707106781187f, c = (cs - sn) * 0.707106781187f;
        float x = (q & 1) ? s : c, y = (q & 1) ? c : s;
        z0[i] = r * (((q + 1) & 2) ? -x : x);
        z1[i] = r * ((q & 2) ? -y : y);
    }
}

void bpl__rng_fill_normal(bpl__rng *rng, float *dst, size_t n, float mean, float stddev)
{
    uint32_t radius[NORMAL_CHUNK], angle[NORMAL_CHUNK];
    float z0[NORMAL_CHUNK], z1[NORMAL_CHUNK];
    while (n > 0) {
        size_t pairs = (n + 1) / 2 < NORMAL_CHUNK ? (n + 1) / 2 : NORMAL_CHUNK;
        for (size_t i = 0; i < pairs; i++) {
            uint64_t r = bpl__rng_next(rng);
            radius[i] = (uint32_t)(r >> 40);
            angle[i] = (uint32_t)(r >> 16) & 0xffffffu;
        }
        box_muller(radius, angle, z0, z1, pairs);
        size_t i = 0;
        for (; i < pairs && n >= 2; i++, n -= 2) {
            *dst++ = mean + stddev * z0[i];
            *dst++ = mean + stddev * z1[i];
        }
        if (i < pairs && n == 1) {
            *dst++ = mean + stddev * z0[i];
            n = 0;
        }
    }
}

/* Two 24-bit uniforms in [0, 1) per 64-bit draw. */
void bpl__rng_fill_uniform(bpl__rng *rng, float *dst, size_t n, float lo, float hi)
{
    float scale = (hi - lo) * 0x1.0p-24f;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        uint64_t r = bpl__rng_next(rng);
        dst[i] = lo + scale * (float)(uint32_t)(r >> 40);
        dst[i + 1] = lo + scale * (float)(uint32_t)((r >> 16) & 0xffffffu);
    }
    if (i < n)
        dst[i] = lo + scale * (float)(uint32_t)(bpl__rng_next(rng) >> 40);
}

/* The largest |z| bpl__rng_fill_normal can draw: Box-Muller's radius
 * sqrt(-2 ln u) with u >= 2^-24, sqrt(48 ln 2) = 5.77, rounded up. */
#define NORMAL_FILL_MAX 5.8

/* Every value a fill writes must be a finite float, or the net (when dst is
 * one of its tensors) would hold values no saved file may contain.  The
 * arithmetic is float: hi - lo must fit too. */
static int fill_uniform(bpl__rng *rng, float *dst, size_t n, double lo, double hi,
                        const char *caller)
{
    if (!(lo <= hi) || !(fabs(lo) <= FLT_MAX) || !(fabs(hi) <= FLT_MAX) ||
        !isfinite((float)hi - (float)lo))
        return bpl__fail(BPL_ERR_RANGE,
                         "%s: need lo <= hi with lo, hi and hi - lo "
                         "within the float range (+-%g), got [%g, %g]",
                         caller, (double)FLT_MAX, lo, hi);
    bpl__rng_fill_uniform(rng, dst, n, (float)lo, (float)hi);
    return BPL_OK;
}

static int fill_normal(bpl__rng *rng, float *dst, size_t n, double mean, double stddev,
                       const char *caller)
{
    if (!(stddev >= 0) || !(fabs(mean) + NORMAL_FILL_MAX * stddev <= FLT_MAX))
        return bpl__fail(BPL_ERR_RANGE,
                         "%s: need stddev >= 0 and |mean| + %g stddev "
                         "within the float range (%g), got mean %g, stddev %g",
                         caller, NORMAL_FILL_MAX, (double)FLT_MAX, mean, stddev);
    bpl__rng_fill_normal(rng, dst, n, (float)mean, (float)stddev);
    return BPL_OK;
}

/* Draws for this process's examples: from the net's generator, unless a
 * data-parallel transport gave the process a stream of its own (parallel.c). */
static bpl__rng *example_stream(bpl_net *net)
{
    return net->parallel.own_stream ? &net->parallel.example_rng : &net->rng;
}

BPL_API int bpl_net_random_uniform(bpl_net *net, float *dst, size_t n, double lo, double hi)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(dst != NULL || n == 0);
    return fill_uniform(&net->rng, dst, n, lo, hi, "bpl_net_random_uniform");
}

BPL_API int bpl_net_random_normal(bpl_net *net, float *dst, size_t n, double mean,
                                  double stddev)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(dst != NULL || n == 0);
    return fill_normal(&net->rng, dst, n, mean, stddev, "bpl_net_random_normal");
}

BPL_API int bpl_net_example_random_uniform(bpl_net *net, float *dst, size_t n, double lo,
                                           double hi)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(dst != NULL || n == 0);
    return fill_uniform(example_stream(net), dst, n, lo, hi, "bpl_net_example_random_uniform");
}

BPL_API int bpl_net_example_random_normal(bpl_net *net, float *dst, size_t n, double mean,
                                          double stddev)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(dst != NULL || n == 0);
    return fill_normal(example_stream(net), dst, n, mean, stddev,
                       "bpl_net_example_random_normal");
}
