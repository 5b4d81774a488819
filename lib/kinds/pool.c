/*
 * kinds/pool.c - the 2-D pooling kinds, maxpool2d and avgpool2d: over a
 * C x H x W input, each channel's kernel_h x kernel_w windows moved by
 * `stride` give one output each, the window's largest value or its mean:
 * a C x H_out x W_out output with H_out = (H - kernel_h) / stride + 1
 * (rounded down: rows and columns past the last whole window are not
 * read).  Both share this geometry, so both live here.
 *
 * A pooling layer has no parameters: the kind names no weight and no bias,
 * provides no gradients, and its send_error is the layer's own Jacobian
 * (its `m` is NULL).  Max pooling sends each output's error to the first
 * maximum of its window, found again in the layer's input of the current
 * step (bpl__layer_input; the kind sets send_reads_input), so that no
 * argmax is stored and nothing is allocated; average pooling spreads it
 * evenly.  Where windows overlap (stride < window), the errors add.  The
 * activation is whatever the caller gives forward; the layer's own is
 * always linear.  A batch is cut into the library's threads
 * (bpl_set_thread_count), a slice of examples each.
 */
#include "bpl_internal.h"

#include <string.h>

/* 2x2 max pooling has AVX-512 versions of its passes, chosen at run time
 * (max_2x2, send_2x2). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BPL_SEND_2X2_AVX512 1
#endif

typedef struct pool_geom {
    size_t c, h, w;    /* the input */
    size_t ho, wo;     /* the output's extent (C channels as the input) */
    size_t kh, kw, stride;
} pool_geom;

static pool_geom geometry(const bpl_layer *layer)
{
    size_t in[BPL__MAX_DIMS], ndim;
    bpl__layer_input_shape(layer, in, &ndim);
    const bpl__kind_params *q = &layer->params;
    pool_geom g = {
        .c = in[0], .h = in[1], .w = in[2], .ho = layer->shape[1], .wo = layer->shape[2],
        .kh = q->kernel_h, .kw = q->kernel_w, .stride = q->stride,
    };
    return g;
}

/* The offset, within one example's input, of the first element of the
 * window of channel c at output position (oy, ox). */
static size_t window_origin(const pool_geom *g, size_t c, size_t oy, size_t ox)
{
    return (c * g->h + oy * g->stride) * g->w + ox * g->stride;
}

/* Whether v, met after top in a window's scan, becomes its maximum: the
 * first maximum stays, and so does the first NaN, so that pooling never
 * hides a NaN.  Without branches: it runs for every element of every
 * window. */
static inline int takes_over(float v, float top)
{
    return v > top || (v != v && top == top);
}

/* The maxima of n windows along an output row, the k-th starting at
 * origin + k stride, into top[k].  The windows are scanned element by
 * element in row order, all n at once: the inner loop is the long one. */
static void row_max(const pool_geom *g, const float *x, size_t origin, size_t n, float *top)
{
    for (size_t k = 0; k < n; k++)
        top[k] = x[origin + k * g->stride];
    for (size_t i = 0; i < g->kh; i++)
        for (size_t j = i ? 0 : 1; j < g->kw; j++) {
            const float *p = x + origin + i * g->w + j;
            for (size_t k = 0; k < n; k++) {
                float v = p[k * g->stride];
                top[k] = takes_over(v, top[k]) ? v : top[k];
            }
        }
}

/* The same windows' first maxima: their offsets into best[k] (top[k] is
 * scratch). */
static void row_argmax(const pool_geom *g, const float *x, size_t origin, size_t n,
                       float *top, size_t *best)
{
    for (size_t k = 0; k < n; k++) {
        best[k] = origin + k * g->stride;
        top[k] = x[best[k]];
    }
    for (size_t i = 0; i < g->kh; i++)
        for (size_t j = i ? 0 : 1; j < g->kw; j++) {
            size_t at = origin + i * g->w + j;
            for (size_t k = 0; k < n; k++, at += g->stride) {
                float v = x[at];
                int take = takes_over(v, top[k]);
                best[k] = take ? at : best[k];
                top[k] = take ? v : top[k];
            }
        }
}

/* The usual windows, 2 x 2 moved by 2 (LeNet's), on their own: the first
 * maximum of each horizontal pair of the rows, over a block of whole rows
 * at once (a long loop the compiler vectorises: an output row is a dozen
 * windows), then the first of each vertical pair of those.  Of a window's
 * elements a, b (its first row), c, d, the winner of (a, b) against that of
 * (c, d) is the first maximum in row order, as row_max's scan finds it:
 * strict comparisons keep the earlier of equals, and the first NaN.
 * Needs an even input width (no pair across two rows). */
enum { PAIR_BLOCK = 1024 }; /* floats of pair maxima on the stack */

static int is_2x2(const pool_geom *g)
{
    return g->kh == 2 && g->kw == 2 && g->stride == 2 && g->w % 2 == 0 && g->w <= PAIR_BLOCK;
}

/* top[i] = the first maximum of x[2i], x[2i + 1]; second[i] = 1 if it is
 * the second. */
BPL__MULTIVERSION
static void pair_max(const float *x, size_t n, float *top, unsigned char *second)
{
    for (size_t i = 0; i < n; i++) {
        float a = x[2 * i], b = x[2 * i + 1];
        int later = takes_over(b, a);
        top[i] = later ? b : a;
        second[i] = (unsigned char)later;
    }
}

/* Whole row pairs of one channel per block: rows per block, at least 1. */
static size_t block_rows(const pool_geom *g)
{
    return PAIR_BLOCK / g->w;
}

static void max_2x2_pairs(const pool_geom *g, const float *x, float *o)
{
    float top[PAIR_BLOCK];
    unsigned char second[PAIR_BLOCK];
    for (size_t c = 0; c < g->c; c++)
        for (size_t oy = 0; oy < g->ho; oy += block_rows(g)) {
            size_t rows = g->ho - oy < block_rows(g) ? g->ho - oy : block_rows(g);
            pair_max(x + (c * g->h + 2 * oy) * g->w, rows * g->w, top, second);
            for (size_t r = 0; r < rows; r++, o += g->wo) {
                const float *up = top + 2 * r * g->wo, *down = up + g->wo;
                for (size_t k = 0; k < g->wo; k++)
                    o[k] = takes_over(down[k], up[k]) ? down[k] : up[k];
            }
        }
}

/* out = beta out over one example's input row (beta 0 overwrites, as a
 * GEMM's does: what was there may be NaN). */
static void scale_row(float *x, size_t n, float beta)
{
    if (beta == 0.0f)
        memset(x, 0, n * sizeof *x);
    else if (beta != 1.0f)
        for (size_t i = 0; i < n; i++)
            x[i] *= beta;
}

/* Each window's error to its first maximum: the windows do not overlap,
 * so each input element gets one term at most (added to d, which the
 * caller has scaled by beta). */
static void send_2x2_scatter(const pool_geom *g, const float *x, const float *e, float alpha,
                             float *d)
{
    float top[PAIR_BLOCK];
    unsigned char second[PAIR_BLOCK];
    for (size_t c = 0; c < g->c; c++)
        for (size_t oy = 0; oy < g->ho; oy += block_rows(g)) {
            size_t rows = g->ho - oy < block_rows(g) ? g->ho - oy : block_rows(g);
            size_t origin = (c * g->h + 2 * oy) * g->w;
            pair_max(x + origin, rows * g->w, top, second);
            for (size_t r = 0; r < rows; r++, e += g->wo) {
                const float *up = top + 2 * r * g->wo, *down = up + g->wo;
                for (size_t k = 0; k < g->wo; k++) {
                    size_t lower = (size_t)takes_over(down[k], up[k]);
                    size_t row = 2 * r + lower;
                    d[origin + row * g->w + 2 * k + second[row * g->wo + k]] += alpha * e[k];
                }
            }
        }
}

#ifdef BPL_SEND_2X2_AVX512

/* takes_over on sixteen lanes: a mask bit per lane where it holds. */
__attribute__((target("avx512f"))) static inline __mmask16 takes_over16(__m512 v, __m512 top)
{
    __mmask16 nan_over = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) &
                         _mm512_cmp_ps_mask(top, top, _CMP_ORD_Q);
    return _mm512_cmp_ps_mask(v, top, _CMP_GT_OQ) | nan_over;
}

/* The same with AVX-512, sixteen input columns of a row pair at a time
 * (eight windows: a lane and its neighbour hold one window's pair and
 * compute the same winner), every element written by masks, the error or
 * 0: no store to a computed index, and rows of 7 or 14 windows fill the
 * vectors.  beta 0 overwrites, other betas scale first; an odd last input
 * row is no window's and is only scaled. */
__attribute__((target("avx512f")))
static void send_2x2_avx512(const pool_geom *g, const float *x, const float *e, float alpha,
                            float beta, float *d)
{
    const __m512i partner = _mm512_set_epi32(14, 15, 12, 13, 10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1);
    const __m512i halves = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __mmask16 odd = 0xAAAA;
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (size_t c = 0; c < g->c; c++) {
        size_t origin = c * g->h * g->w;
        for (size_t r = 0; r < g->ho; r++, e += g->wo)
            for (size_t x0 = 0; x0 < g->w; x0 += 16) {
                unsigned n = g->w - x0 < 16 ? (unsigned)(g->w - x0) : 16; /* even */
                __mmask16 m = (__mmask16)((1u << n) - 1), half = (__mmask16)((1u << n / 2) - 1);
                const float *up = x + origin + 2 * r * g->w + x0, *down = up + g->w;
                float *du = d + origin + 2 * r * g->w + x0, *dd = du + g->w;
                __m512 u = _mm512_maskz_loadu_ps(m, up), w = _mm512_maskz_loadu_ps(m, down);
                __m512 u2 = _mm512_permutexvar_ps(partner, u);
                __m512 w2 = _mm512_permutexvar_ps(partner, w);
                /* each window's a, b (first row) and p, q (second) in both its lanes */
                __m512 a = _mm512_mask_blend_ps(odd, u, u2), b = _mm512_mask_blend_ps(odd, u2, u);
                __m512 p = _mm512_mask_blend_ps(odd, w, w2), q = _mm512_mask_blend_ps(odd, w2, w);
                __mmask16 right_up = takes_over16(b, a), right_down = takes_over16(q, p);
                __mmask16 lower = takes_over16(_mm512_mask_blend_ps(right_down, p, q),
                                               _mm512_mask_blend_ps(right_up, a, b));
                __m512 v = _mm512_mul_ps(
                    va, _mm512_permutexvar_ps(halves, _mm512_maskz_loadu_ps(half, e + x0 / 2)));
                __m512 vu = _mm512_maskz_mov_ps((__mmask16)(~lower & ~(right_up ^ odd)), v);
                __m512 vd = _mm512_maskz_mov_ps((__mmask16)(lower & ~(right_down ^ odd)), v);
                if (beta != 0.0f) {
                    vu = _mm512_add_ps(vu, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, du)));
                    vd = _mm512_add_ps(vd, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, dd)));
                }
                _mm512_mask_storeu_ps(du, m, vu);
                _mm512_mask_storeu_ps(dd, m, vd);
            }
        if (g->h % 2) /* beyond the last window */
            scale_row(d + origin + (g->h - 1) * g->w, g->w, beta);
    }
}
#endif

static int force_portable;

void bpl__pool_force_portable(int on)
{
    force_portable = on;
}

/* One example's error through 2x2 windows moved by 2: with AVX-512 where
 * the CPU has it, else scaled, then scattered. */
static void send_2x2(const pool_geom *g, const float *x, const float *e, float alpha, float beta,
                     float *d)
{
#ifdef BPL_SEND_2X2_AVX512
    if (!force_portable && __builtin_cpu_supports("avx512f")) {
        send_2x2_avx512(g, x, e, alpha, beta, d);
        return;
    }
#endif
    scale_row(d, g->c * g->h * g->w, beta);
    send_2x2_scatter(g, x, e, alpha, d);
}

#ifdef BPL_SEND_2X2_AVX512
/* The same as max_2x2_pairs with AVX-512: 32 input columns of a row pair
 * at a time, their even and odd elements drawn apart, 16 windows' first
 * maxima in one vector, masked at the row's end. */
__attribute__((target("avx512f")))
static void max_2x2_avx512(const pool_geom *g, const float *x, float *o)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (size_t c = 0; c < g->c; c++)
        for (size_t r = 0; r < g->ho; r++, o += g->wo) {
            const float *up = x + (c * g->h + 2 * r) * g->w, *down = up + g->w;
            for (size_t x0 = 0; x0 < g->w; x0 += 32) {
                unsigned n = g->w - x0 < 32 ? (unsigned)(g->w - x0) : 32; /* even */
                __mmask16 m0 = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
                __mmask16 m1 = (__mmask16)(n > 16 ? (1u << (n - 16)) - 1 : 0);
                __mmask16 out = (__mmask16)((1u << n / 2) - 1);
                __m512 u0 = _mm512_maskz_loadu_ps(m0, up + x0);
                __m512 u1 = _mm512_maskz_loadu_ps(m1, up + x0 + 16);
                __m512 w0 = _mm512_maskz_loadu_ps(m0, down + x0);
                __m512 w1 = _mm512_maskz_loadu_ps(m1, down + x0 + 16);
                __m512 a = _mm512_permutex2var_ps(u0, even, u1);
                __m512 b = _mm512_permutex2var_ps(u0, odd, u1);
                __m512 p = _mm512_permutex2var_ps(w0, even, w1);
                __m512 q = _mm512_permutex2var_ps(w0, odd, w1);
                __m512 top = _mm512_mask_blend_ps(takes_over16(b, a), a, b);
                __m512 bottom = _mm512_mask_blend_ps(takes_over16(q, p), p, q);
                _mm512_mask_storeu_ps(o + x0 / 2, out,
                                      _mm512_mask_blend_ps(takes_over16(bottom, top), top, bottom));
            }
        }
}
#endif

/* One example's 2x2 windows moved by 2: with AVX-512 where the CPU has it. */
static void max_2x2(const pool_geom *g, const float *x, float *o)
{
#ifdef BPL_SEND_2X2_AVX512
    if (!force_portable && __builtin_cpu_supports("avx512f")) {
        max_2x2_avx512(g, x, o);
        return;
    }
#endif
    max_2x2_pairs(g, x, o);
}

static float window_mean(const pool_geom *g, const float *x, size_t origin)
{
    float sum = 0.0f;
    for (size_t i = 0; i < g->kh; i++)
        for (size_t j = 0; j < g->kw; j++)
            sum += x[origin + i * g->w + j];
    return sum / (float)(g->kh * g->kw);
}

/* ---- the kinds' operations ----------------------------------------------------- */

static int pool_output_shape(const size_t *in_dims, size_t in_ndim, size_t units,
                             const bpl__kind_params *q, size_t *dims, size_t *ndim)
{
    (void)units; /* the channels are the input's */
    if (in_ndim != 3)
        return bpl__fail(BPL_ERR_SHAPE, "a pooling layer needs a C x H x W input (set it "
                                        "with bpl_net_set_input_shape)");
    if (q->kernel_h == 0 || q->kernel_w == 0 || q->stride == 0)
        return bpl__fail(BPL_ERR_INVALID_ARG, "the window and the stride must be > 0");
    if (q->pad != 0)
        return bpl__fail(BPL_ERR_INVALID_ARG, "a pooling layer takes no padding, not %zu",
                         q->pad);
    if (q->kernel_h > in_dims[1] || q->kernel_w > in_dims[2])
        return bpl__fail(BPL_ERR_SHAPE, "window %zux%zu does not fit the %zux%zu input",
                         q->kernel_h, q->kernel_w, in_dims[1], in_dims[2]);
    size_t ho = (in_dims[1] - q->kernel_h) / q->stride + 1;
    size_t wo = (in_dims[2] - q->kernel_w) / q->stride + 1;
    size_t size;
    /* No larger than the input, but the loader's dims are a file's. */
    if (!bpl__mul_size(in_dims[0], ho, &size) || !bpl__mul_size(size, wo, &size) ||
        size > BPL__MAX_UNITS)
        return bpl__fail(BPL_ERR_OVERFLOW, "output %zux%zux%zu is above %zu elements",
                         in_dims[0], ho, wo, BPL__MAX_UNITS);
    dims[0] = in_dims[0];
    dims[1] = ho;
    dims[2] = wo;
    *ndim = 3;
    return BPL_OK;
}

static int pool_build(bpl_layer *layer)
{
    (void)layer; /* no parameters, no workspace */
    return BPL_OK;
}

/* ---- a pass, cut into the library's threads ------------------------------------ */

/* One pass over a batch: each example's output depends on that example
 * alone, so the tasks' slices give the same bits for any thread count. */
typedef struct pool_job {
    const bpl_layer *layer;
    pool_geom g;
    const float *in, *err;
    float *out;
    int activation;
    float alpha, beta;
    size_t batch;
    void (*slice)(const struct pool_job *j, size_t n0, size_t n1);
} pool_job;

static void pool_task(void *ctx, size_t task, size_t n_tasks)
{
    const pool_job *j = ctx;
    j->slice(j, j->batch * task / n_tasks, j->batch * (task + 1) / n_tasks);
}

static void run_job(pool_job *j)
{
    size_t n = bpl__pool_threads();
    n = n < j->batch ? n : j->batch;
    bpl__pool_run(pool_task, j, n ? n : 1);
}

static void maxpool_slice(const pool_job *j, size_t n0, size_t n1)
{
    const pool_geom *g = &j->g;
    size_t in_size = g->c * g->h * g->w, size = j->layer->size;
    for (size_t n = n0; n < n1; n++) {
        const float *x = j->in + n * in_size;
        float *o = j->out + n * size;
        if (is_2x2(g)) {
            max_2x2(g, x, o);
            continue;
        }
        for (size_t c = 0; c < g->c; c++)
            for (size_t oy = 0; oy < g->ho; oy++, o += g->wo)
                row_max(g, x, window_origin(g, c, oy, 0), g->wo, o);
    }
    bpl__activation_forward(j->activation, j->out + n0 * size, NULL, n1 - n0, size);
}

static void avgpool_slice(const pool_job *j, size_t n0, size_t n1)
{
    const pool_geom *g = &j->g;
    size_t in_size = g->c * g->h * g->w, size = j->layer->size;
    for (size_t n = n0; n < n1; n++) {
        const float *x = j->in + n * in_size;
        float *o = j->out + n * size;
        for (size_t c = 0; c < g->c; c++)
            for (size_t oy = 0; oy < g->ho; oy++)
                for (size_t ox = 0; ox < g->wo; ox++)
                    *o++ = window_mean(g, x, window_origin(g, c, oy, ox));
    }
    bpl__activation_forward(j->activation, j->out + n0 * size, NULL, n1 - n0, size);
}

/* Each output's error to its window's first maximum in the layer's input
 * of this step.  An output row's windows are found a chunk at a time, in
 * scratch on the stack: nothing is allocated. */
static void maxpool_send_slice(const pool_job *j, size_t n0, size_t n1)
{
    enum { CHUNK = 64 };
    float top[CHUNK];
    size_t best[CHUNK];
    const pool_geom *g = &j->g;
    size_t in_size = g->c * g->h * g->w;
    for (size_t n = n0; n < n1; n++) {
        const float *x = j->in + n * in_size, *e = j->err + n * j->layer->size;
        float *d = j->out + n * in_size;
        if (is_2x2(g)) {
            send_2x2(g, x, e, j->alpha, j->beta, d);
            continue;
        }
        scale_row(d, in_size, j->beta);
        for (size_t c = 0; c < g->c; c++)
            for (size_t oy = 0; oy < g->ho; oy++)
                for (size_t ox = 0; ox < g->wo; ox += CHUNK) {
                    size_t count = g->wo - ox < CHUNK ? g->wo - ox : CHUNK;
                    row_argmax(g, x, window_origin(g, c, oy, ox), count, top, best);
                    for (size_t k = 0; k < count; k++)
                        d[best[k]] += j->alpha * *e++;
                }
    }
}

/* Each output's error spread evenly over its window. */
static void avgpool_send_slice(const pool_job *j, size_t n0, size_t n1)
{
    const pool_geom *g = &j->g;
    size_t in_size = g->c * g->h * g->w;
    float share = j->alpha / (float)(g->kh * g->kw);
    for (size_t n = n0; n < n1; n++) {
        const float *e = j->err + n * j->layer->size;
        float *d = j->out + n * in_size;
        scale_row(d, in_size, j->beta);
        for (size_t c = 0; c < g->c; c++)
            for (size_t oy = 0; oy < g->ho; oy++)
                for (size_t ox = 0; ox < g->wo; ox++) {
                    float v = share * *e++;
                    size_t origin = window_origin(g, c, oy, ox);
                    for (size_t i = 0; i < g->kh; i++)
                        for (size_t k = 0; k < g->kw; k++)
                            d[origin + i * g->w + k] += v;
                }
    }
}

/* ---- the kinds' passes ------------------------------------------------------------ */

static void maxpool_forward(bpl_net *net, const bpl_layer *layer, const float *in,
                            size_t batch, int activation, float *out)
{
    (void)net;
    pool_job j = {.layer = layer, .g = geometry(layer), .in = in, .out = out,
                  .activation = activation, .batch = batch, .slice = maxpool_slice};
    run_job(&j);
}

static void avgpool_forward(bpl_net *net, const bpl_layer *layer, const float *in,
                            size_t batch, int activation, float *out)
{
    (void)net;
    pool_job j = {.layer = layer, .g = geometry(layer), .in = in, .out = out,
                  .activation = activation, .batch = batch, .slice = avgpool_slice};
    run_job(&j);
}

/* The Jacobian reads the layer's input of this step (send_reads_input). */
static void maxpool_send_error(bpl_net *net, const bpl_layer *layer, const float *m,
                               int transposed, const float *err, size_t batch, float alpha,
                               float beta, float *out)
{
    (void)net, (void)m, (void)transposed;
    pool_job j = {.layer = layer, .g = geometry(layer), .in = bpl__layer_input(layer),
                  .err = err, .out = out, .alpha = alpha, .beta = beta, .batch = batch,
                  .slice = maxpool_send_slice};
    run_job(&j);
}

static void avgpool_send_error(bpl_net *net, const bpl_layer *layer, const float *m,
                               int transposed, const float *err, size_t batch, float alpha,
                               float beta, float *out)
{
    (void)net, (void)m, (void)transposed;
    pool_job j = {.layer = layer, .g = geometry(layer), .err = err, .out = out,
                  .alpha = alpha, .beta = beta, .batch = batch, .slice = avgpool_send_slice};
    run_job(&j);
}

const bpl__kind bpl__maxpool2d_kind = {
    .name = "maxpool2d",
    .caps = BPL__CAN_FORWARD | BPL__CAN_SEND_ERROR,
    .send_reads_input = 1,
    .output_shape = pool_output_shape,
    .build = pool_build,
    .forward = maxpool_forward,
    .send_error = maxpool_send_error,
};

const bpl__kind bpl__avgpool2d_kind = {
    .name = "avgpool2d",
    .caps = BPL__CAN_FORWARD | BPL__CAN_SEND_ERROR,
    .output_shape = pool_output_shape,
    .build = pool_build,
    .forward = avgpool_forward,
    .send_error = avgpool_send_error,
};
