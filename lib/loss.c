/*
 * loss.c - loss values and their derivative with respect to the output
 * layer's pre-activation.
 */
#include "bpl_internal.h"

#include <float.h>
#include <math.h>

int bpl__loss_valid(int loss)
{
    return loss == BPL_LOSS_CROSS_ENTROPY || loss == BPL_LOSS_MSE;
}

static double safe_log(float p)
{
    return log(p > FLT_MIN ? (double)p : (double)FLT_MIN);
}

double bpl__loss_sum(int loss, int activation, const float *h, const float *y,
                     size_t rows, size_t cols)
{
    double total = 0.0;
    size_t n = rows * cols;
    if (loss == BPL_LOSS_MSE) {
        for (size_t i = 0; i < n; i++) {
            double d = (double)h[i] - (double)y[i];
            total += 0.5 * d * d;
        }
    } else if (activation == BPL_ACT_SIGMOID) {
        for (size_t i = 0; i < n; i++)
            total -= y[i] * safe_log(h[i]) + (1.0 - y[i]) * safe_log(1.0f - h[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            if (y[i] != 0.0f)
                total -= y[i] * safe_log(h[i]);
    }
    return total;
}

/* d/da of 1/2 |softmax(a) - y|^2 = p (.) (g - <p, g>), g = p - y. */
static void softmax_mse_delta(const float *p, const float *y, float *delta, size_t cols,
                              float scale)
{
    float dot = 0.0f;
    for (size_t j = 0; j < cols; j++)
        dot += p[j] * (p[j] - y[j]);
    for (size_t j = 0; j < cols; j++)
        delta[j] = scale * p[j] * ((p[j] - y[j]) - dot);
}

void bpl__loss_delta(int loss, int activation, const float *h, const float *y,
                     float *delta, size_t rows, size_t cols, float scale)
{
    size_t n = rows * cols;
    if (loss == BPL_LOSS_CROSS_ENTROPY && activation == BPL_ACT_SOFTMAX) {
        /* d/da_j of -sum_k y_k log p_k = p_j sum_k y_k - y_j */
        for (size_t i = 0; i < rows; i++) {
            const float *p = h + i * cols, *t = y + i * cols;
            float mass = 0.0f;
            for (size_t j = 0; j < cols; j++)
                mass += t[j];
            for (size_t j = 0; j < cols; j++)
                delta[i * cols + j] = scale * (p[j] * mass - t[j]);
        }
    } else if (loss == BPL_LOSS_CROSS_ENTROPY) { /* sigmoid output */
        for (size_t i = 0; i < n; i++)
            delta[i] = scale * (h[i] - y[i]);
    } else if (activation == BPL_ACT_SOFTMAX) {
        for (size_t i = 0; i < rows; i++)
            softmax_mse_delta(h + i * cols, y + i * cols, delta + i * cols, cols, scale);
    } else {
        for (size_t i = 0; i < n; i++)
            delta[i] = scale * (h[i] - y[i]);
        bpl__activation_backward(activation, delta, h, n);
    }
}
