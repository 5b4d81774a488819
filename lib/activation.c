/*
 * activation.c - activation functions and their derivatives.
 *
 * The forward kernels add the bias and apply the activation in one pass over
 * the GEMM output.  Exponentials use a polynomial exp that the compiler can
 * vectorise (libm's expf/tanhf are scalar calls): relative error about 2e-7,
 * i.e. within a couple of float ulps, which training cannot tell apart.
 */
#include "bpl_internal.h"

#include <string.h>

int bpl__activation_valid(int activation)
{
    return activation >= BPL_ACT_LINEAR && activation <= BPL_ACT_SOFTMAX;
}

/* e^x for float: 2^k * e^r with k = round(x / ln 2), |r| <= ln2/2, and a
 * degree-6 Taylor polynomial for e^r (truncation error < 1.3e-7). */
static inline float fast_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds */
    float k = (x * 1.44269504088896341f + round_magic) - round_magic;
    float r = x - k * 0.693145751953125f;    /* ln 2, high part */
    r = r - k * 1.428606765330187045e-06f;   /* ln 2, low part */
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
static inline float fast_tanhf(float x)
{
    float ax = x < 0 ? -x : x;
    float t = fast_expf(-2.0f * ax);
    float y = (1.0f - t) / (1.0f + t);
    return x < 0 ? -y : y;
}

static inline float fast_sigmoidf(float x)
{
    return 1.0f / (1.0f + fast_expf(-x));
}

static void softmax_rows(float *a, size_t rows, size_t cols)
{
    for (size_t i = 0; i < rows; i++) {
        float *row = a + i * cols;
        float max = row[0];
        for (size_t j = 1; j < cols; j++)
            max = row[j] > max ? row[j] : max;
        float sum = 0.0f;
        for (size_t j = 0; j < cols; j++) {
            row[j] = fast_expf(row[j] - max);
            sum += row[j];
        }
        float inv = 1.0f / sum;
        for (size_t j = 0; j < cols; j++)
            row[j] *= inv;
    }
}

BPL__MULTIVERSION
void bpl__activation_forward(int activation, float *a, const float *bias, size_t rows,
                             size_t cols)
{
    if (bias) {
        for (size_t i = 0; i < rows; i++) {
            float *row = a + i * cols;
            for (size_t j = 0; j < cols; j++)
                row[j] += bias[j];
        }
    }
    size_t n = rows * cols;
    switch (activation) {
    case BPL_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            a[i] = a[i] > 0.0f ? a[i] : 0.0f;
        break;
    case BPL_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            a[i] = fast_tanhf(a[i]);
        break;
    case BPL_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            a[i] = fast_sigmoidf(a[i]);
        break;
    case BPL_ACT_SOFTMAX:
        softmax_rows(a, rows, cols);
        break;
    default: /* linear */
        break;
    }
}

BPL__MULTIVERSION
void bpl__activation_backward(int activation, float *delta, const float *h, size_t n)
{
    switch (activation) {
    case BPL_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            delta[i] = h[i] > 0.0f ? delta[i] : 0.0f;
        break;
    case BPL_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            delta[i] *= 1.0f - h[i] * h[i];
        break;
    case BPL_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            delta[i] *= h[i] * (1.0f - h[i]);
        break;
    default: /* linear; softmax never reaches here (output layer only) */
        break;
    }
}

BPL__MULTIVERSION
int bpl__all_finite(const float *v, size_t n)
{
    /* A float is NaN or Inf exactly when its exponent bits are all ones.  An
     * integer OR-reduction vectorises; a float reduction would not. */
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

BPL_API int bpl_activation_forward(int activation, float *a, const float *bias,
                                   size_t rows, size_t cols)
{
    BPL_CHECK_ARG(a != NULL || rows * cols == 0);
    if (!bpl__activation_valid(activation))
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_activation_forward: unknown activation %d",
                         activation);
    bpl__activation_forward(activation, a, bias, rows, cols);
    return BPL_OK;
}

BPL_API int bpl_activation_backward(int activation, float *delta, const float *h, size_t n)
{
    BPL_CHECK_ARG((delta != NULL && h != NULL) || n == 0);
    if (!bpl__activation_valid(activation) || activation == BPL_ACT_SOFTMAX)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_activation_backward: activation %d has no elementwise "
                         "derivative",
                         activation);
    bpl__activation_backward(activation, delta, h, n);
    return BPL_OK;
}
