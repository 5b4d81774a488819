/*
 * fast_math.h - exponentials the compiler can vectorise.
 *
 * libm's expf and tanhf are scalar calls, so a loop that uses them runs one
 * float at a time.  These are a polynomial exp and the logistic and tanh
 * functions built on it: relative error about 2e-7, within a couple of float
 * ulps, which training cannot tell apart.
 */
#ifndef BPL_FAST_MATH_H
#define BPL_FAST_MATH_H

#include <stdint.h>
#include <string.h>

/* e^x for float: 2^k * e^r with k = round(x / ln 2), |r| <= ln2/2, and a
 * degree-6 Taylor polynomial for e^r (truncation error < 1.3e-7). */
static inline float bpl__fast_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds */
    float k = (x * 1.44269504088896341f + round_magic) - round_magic;
    k = k == k ? k : 0.0f; /* NaN: keep it out of the integer conversion; r stays NaN */
    float r = x - k * 0.693145751953125f;  /* ln 2, high part */
    r = r - k * 1.428606765330187045e-06f; /* ln 2, low part */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)k + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh(x) = sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|}); absolute error < 2e-7. */
static inline float bpl__fast_tanhf(float x)
{
    float ax = x < 0 ? -x : x;
    float t = bpl__fast_expf(-2.0f * ax);
    float y = (1.0f - t) / (1.0f + t);
    return x < 0 ? -y : y;
}

static inline float bpl__fast_sigmoidf(float x)
{
    return 1.0f / (1.0f + bpl__fast_expf(-x));
}

#endif
