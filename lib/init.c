/*
 * init.c - tensor initialisers.
 */
#include "bpl_internal.h"

#include <math.h>

int bpl__init_valid(int init)
{
    return init >= BPL_INIT_GLOROT_UNIFORM && init <= BPL_INIT_CONSTANT;
}

static void fill_uniform(float *w, size_t n, double limit, bpl__rng *rng)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (float)(limit * (2.0 * bpl__rng_uniform(rng) - 1.0));
}

static void fill_normal(float *w, size_t n, double stddev, bpl__rng *rng)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (float)(stddev * bpl__rng_normal(rng));
}

/* Orthonormalise `count` random Gaussian vectors of length `len` (count <=
 * len) by modified Gram-Schmidt, applied twice for numerical orthogonality.
 * Vectors are rows of q (stride len), in double. */
static void orthonormal_rows(double *q, size_t count, size_t len, bpl__rng *rng)
{
    for (size_t i = 0; i < count; i++) {
        double *v = q + i * len;
        for (;;) {
            for (size_t k = 0; k < len; k++)
                v[k] = bpl__rng_normal(rng);
            for (int pass = 0; pass < 2; pass++) {
                for (size_t j = 0; j < i; j++) {
                    const double *u = q + j * len;
                    double dot = 0.0;
                    for (size_t k = 0; k < len; k++)
                        dot += u[k] * v[k];
                    for (size_t k = 0; k < len; k++)
                        v[k] -= dot * u[k];
                }
            }
            double norm = 0.0;
            for (size_t k = 0; k < len; k++)
                norm += v[k] * v[k];
            norm = sqrt(norm);
            if (norm > 1e-6) { /* a degenerate draw is redrawn */
                for (size_t k = 0; k < len; k++)
                    v[k] /= norm;
                break;
            }
        }
    }
}

static int fill_orthogonal(float *w, size_t rows, size_t cols, double gain,
                           bpl__rng *rng)
{
    int transpose = rows > cols;
    size_t count = transpose ? cols : rows, len = transpose ? rows : cols, bytes;
    if (!bpl__mul_size(count * len, sizeof(double), &bytes))
        return bpl__fail(BPL_ERR_OVERFLOW, "orthogonal initialiser: matrix too large");
    double *q = bpl__malloc(bytes);
    if (!q)
        return bpl__fail(BPL_ERR_NOMEM, "orthogonal initialiser: out of memory");
    orthonormal_rows(q, count, len, rng);
    for (size_t i = 0; i < count; i++)
        for (size_t k = 0; k < len; k++) {
            float value = (float)(gain * q[i * len + k]);
            if (transpose)
                w[k * cols + i] = value;
            else
                w[i * cols + k] = value;
        }
    bpl__free(q);
    return BPL_OK;
}

int bpl__init_fill(int init, double gain, float *w, size_t rows, size_t cols,
                   bpl__rng *rng)
{
    size_t n = rows * cols;
    double fan_in = (double)cols, fan_out = (double)rows;
    switch (init) {
    case BPL_INIT_GLOROT_UNIFORM:
        fill_uniform(w, n, gain * sqrt(6.0 / (fan_in + fan_out)), rng);
        break;
    case BPL_INIT_GLOROT_NORMAL:
        fill_normal(w, n, gain * sqrt(2.0 / (fan_in + fan_out)), rng);
        break;
    case BPL_INIT_HE_UNIFORM:
        fill_uniform(w, n, gain * sqrt(6.0 / fan_in), rng);
        break;
    case BPL_INIT_HE_NORMAL:
        fill_normal(w, n, gain * sqrt(2.0 / fan_in), rng);
        break;
    case BPL_INIT_ORTHOGONAL:
        return fill_orthogonal(w, rows, cols, gain, rng);
    case BPL_INIT_UNIFORM:
        fill_uniform(w, n, gain, rng);
        break;
    case BPL_INIT_NORMAL:
        fill_normal(w, n, gain, rng);
        break;
    case BPL_INIT_CONSTANT:
        for (size_t i = 0; i < n; i++)
            w[i] = (float)gain;
        break;
    default: /* zero */
        for (size_t i = 0; i < n; i++)
            w[i] = 0.0f;
        break;
    }
    return BPL_OK;
}
