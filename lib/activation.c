/*
 * activation.c - activation functions and their derivatives.
 *
 * The forward kernels add the bias and apply the activation in one pass over
 * the GEMM output.  Exponentials come from fast_math.h, which the compiler
 * can vectorise.
 */
#include "bpl_internal.h"
#include "fast_math.h"

#include <string.h>

int bpl__activation_valid(int activation)
{
    return activation >= BPL_ACT_LINEAR && activation <= BPL_ACT_SOFTMAX;
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
            row[j] = bpl__fast_expf(row[j] - max);
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
            a[i] = bpl__fast_tanhf(a[i]);
        break;
    case BPL_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            a[i] = bpl__fast_sigmoidf(a[i]);
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
    size_t n;
    int rc = bpl__check_floats(rows, cols, "bpl_activation_forward", "a", &n);
    if (rc != BPL_OK)
        return rc;
    BPL_CHECK_ARG(a != NULL || n == 0);
    if (!bpl__activation_valid(activation))
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_activation_forward: unknown activation %d",
                         activation);
    /* Rows of no columns hold nothing: softmax would read their first value,
     * and a NULL matrix has no rows to address. */
    if (n > 0)
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
