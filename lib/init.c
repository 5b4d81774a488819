/*
 * init.c - tensor initialisers.
 */
#include "bpl_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The largest |z| bpl__rng_normal draws: Box-Muller's radius sqrt(-2 ln u)
 * with u >= 2^-53, sqrt(106 ln 2) = 8.57, rounded up. */
#define NORMAL_MAX 8.6

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

/* Remove from v its projection on the i orthonormal rows of q before it,
 * twice (modified Gram-Schmidt, for numerical orthogonality), and make it a
 * unit vector unless what is left is degenerate (then returns 0). */
static int orthonormalise(const double *q, size_t i, size_t len, double *v)
{
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
    if (!(norm > 1e-6))
        return 0;
    for (size_t k = 0; k < len; k++)
        v[k] /= norm;
    return 1;
}

/* A degenerate draw is redrawn, a few times: a working generator needs a
 * second draw with a probability of about 1e-6 per row at most. */
enum { ORTHO_TRIES = 8 };

static int draw_row(double *q, size_t i, size_t len, bpl__rng *rng)
{
    double *v = q + i * len;
    for (int t = 0; t < ORTHO_TRIES; t++) {
        for (size_t k = 0; k < len; k++)
            v[k] = bpl__rng_normal(rng);
        if (orthonormalise(q, i, len, v))
            return 1;
    }
    return 0;
}

/* The last resort: the unit vector e_k that sticks out most of the rows
 * so far.  With i < len orthonormal rows, the squared residuals of the len
 * unit vectors add up to len - i >= 1, so the largest residual is at least
 * 1 / sqrt(len), far above the degeneracy threshold. */
static void basis_row(double *q, size_t i, size_t len)
{
    double *v = q + i * len;
    size_t best = 0;
    double best_residual = -1.0;
    for (size_t e = 0; e < len; e++) {
        double inside = 0.0; /* |projection of e_e|^2 */
        for (size_t j = 0; j < i; j++)
            inside += q[j * len + e] * q[j * len + e];
        double residual = 1.0 - inside;
        if (residual > best_residual) {
            best_residual = residual;
            best = e;
        }
    }
    memset(v, 0, len * sizeof *v);
    v[best] = 1.0;
    orthonormalise(q, i, len, v);
}

/* Orthonormalise `count` random Gaussian vectors of length `len` (count <=
 * len).  Vectors are rows of q (stride len), in double.  A generator stuck
 * in a degenerate state (all zero: every normal draw is 0) must not make
 * this loop for ever: after ORTHO_TRIES draws from the net's generator, a
 * private one seeded by the row takes over, and after as many of its
 * draws, a unit vector. */
static void orthonormal_rows(double *q, size_t count, size_t len, bpl__rng *rng)
{
    for (size_t i = 0; i < count; i++) {
        if (draw_row(q, i, len, rng))
            continue;
        bpl__rng spare;
        bpl__rng_seed(&spare, (uint64_t)i);
        if (!draw_row(q, i, len, &spare))
            basis_row(q, i, len);
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

double bpl__init_fan_sum(size_t rows, size_t cols, size_t receptive)
{
    return (double)cols + (double)rows * (double)receptive;
}

/* The limit of a uniform initialiser, the standard deviation of a normal
 * one, the gain of the others. */
static double scale_of(int init, double gain, size_t rows, size_t cols, size_t receptive)
{
    double fan_in = (double)cols, fan_sum = bpl__init_fan_sum(rows, cols, receptive);
    switch (init) {
    case BPL_INIT_GLOROT_UNIFORM: return gain * sqrt(6.0 / fan_sum);
    case BPL_INIT_GLOROT_NORMAL: return gain * sqrt(2.0 / fan_sum);
    case BPL_INIT_HE_UNIFORM: return gain * sqrt(6.0 / fan_in);
    case BPL_INIT_HE_NORMAL: return gain * sqrt(2.0 / fan_in);
    default: return gain;
    }
}

/* The largest magnitude the initialiser writes (orthogonal entries are at
 * most 1 times the gain). */
static double largest_value(int init, double scale)
{
    switch (init) {
    case BPL_INIT_GLOROT_NORMAL:
    case BPL_INIT_HE_NORMAL:
    case BPL_INIT_NORMAL: return NORMAL_MAX * fabs(scale);
    case BPL_INIT_ZERO: return 0.0;
    default: return fabs(scale);
    }
}

/* A gain that is not a float, or values beyond the float range, would
 * leave Inf in a tensor: a net no saved file may hold. */
static int check_range(int init, double gain, double scale)
{
    double largest = largest_value(init, scale);
    if (fabs(gain) <= FLT_MAX && largest <= FLT_MAX)
        return BPL_OK;
    return bpl__fail(BPL_ERR_RANGE,
                     "initialiser %s with gain %g: the gain or the values it gives (up to "
                     "%g) do not fit a float (at most %g)",
                     bpl_init_name(init), gain, largest, (double)FLT_MAX);
}

int bpl__init_fill(int init, double gain, float *w, size_t rows, size_t cols,
                   size_t receptive, bpl__rng *rng)
{
    size_t n = rows * cols;
    double scale = scale_of(init, gain, rows, cols, receptive);
    int rc = check_range(init, gain, scale);
    if (rc != BPL_OK)
        return rc;
    switch (init) {
    case BPL_INIT_GLOROT_UNIFORM:
    case BPL_INIT_HE_UNIFORM:
    case BPL_INIT_UNIFORM:
        fill_uniform(w, n, scale, rng);
        break;
    case BPL_INIT_GLOROT_NORMAL:
    case BPL_INIT_HE_NORMAL:
    case BPL_INIT_NORMAL:
        fill_normal(w, n, scale, rng);
        break;
    case BPL_INIT_ORTHOGONAL:
        return fill_orthogonal(w, rows, cols, gain, rng);
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
