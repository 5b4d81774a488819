/*
 * kinds/conv2d.c - the 2-D convolution kind: out = act(W * in + b) over a
 * C_in x H x W input, C_out x H_out x W_out output, weight W
 * [C_out][C_in kh kw] (a row per output channel, its columns in input
 * channel, then kernel row, then kernel column order) and a bias per
 * output channel.
 *
 * The layer keeps its window in layer->params (bpl__kind_params: kernel_h,
 * kernel_w, stride, pad; `units` is C_out): the output shape is a pure
 * function of the input shape, units and those params.  Zero padding of
 * `pad` on every side; H_out = (H + 2 pad - kh) / stride + 1.
 *
 * Portable path: the batch in chunks of examples (as many as a bounded
 * workspace holds), each chunk's im2col side by side in one matrix
 * [C_in kh kw][count H_out W_out] (layer->work, allocated by build, so no
 * call allocates), and one bpl__gemm per chunk: products as wide as the
 * chunk, not one example's positions, so that the late layers (a few
 * positions per example) run as matrix products, not vector ones; -Dblas=none
 * runs the library's own GEMM.  Rows of a batch are examples flattened
 * channel-major, as the activation buffers hold them and as a dense layer
 * above reads them: a chunk's outputs and errors are copied between that
 * layout and the product's [C_out][count positions] (the bias added on the
 * way).
 *
 * Other paths, chosen by the layer's shape: a kernel covering the whole
 * unpadded input runs as dense products (below); stride 1, a square
 * kernel and at least 16 channels in and out, Winograd's minimal
 * filtering (conv2d_winograd.c); one input channel moved by 1, direct
 * loops (conv2d_direct.c); where the build has oneDNN, the passes it runs
 * faster go to its primitives (conv2d_dnnl.c).
 */
#include "conv2d_paths.h"

#include <string.h>

/* The geometry of one layer (conv2d_paths.h). */
typedef bpl__conv_geom conv_geom;

static conv_geom geometry(const bpl_layer *layer)
{
    size_t in[BPL__MAX_DIMS], ndim;
    bpl__layer_input_shape(layer, in, &ndim);
    const bpl__kind_params *q = &layer->params;
    conv_geom g = {
        .c_in = in[0], .h = in[1], .w = in[2],
        .c_out = layer->shape[0], .ho = layer->shape[1], .wo = layer->shape[2],
        .kh = q->kernel_h, .kw = q->kernel_w, .stride = q->stride, .pad = q->pad,
    };
    g.k = g.c_in * g.kh * g.kw;
    g.p = g.ho * g.wo;
    return g;
}

/* The output positions o in [*lo, *hi) whose input coordinate o stride +
 * offset - pad falls inside [0, extent): the others read the padding. */
static void valid_range(size_t n_out, size_t offset, const conv_geom *g, size_t extent,
                        size_t *lo, size_t *hi)
{
    size_t first = g->pad > offset ? (g->pad - offset + g->stride - 1) / g->stride : 0;
    size_t last = extent + g->pad > offset ? (extent + g->pad - offset - 1) / g->stride + 1 : 0;
    *lo = first < n_out ? first : n_out;
    *hi = last < n_out ? last : n_out;
    if (*hi < *lo)
        *hi = *lo;
}

/* The rows of one kernel offset (i, j): the output positions whose input
 * is inside, [y_lo, y_hi) x [x_lo, x_hi). */
typedef struct offset_range {
    size_t y_lo, y_hi, x_lo, x_hi;
} offset_range;

static offset_range range_of(const conv_geom *g, size_t i, size_t j)
{
    offset_range r;
    valid_range(g->ho, i, g, g->h, &r.y_lo, &r.y_hi);
    valid_range(g->wo, j, g, g->w, &r.x_lo, &r.x_hi);
    return r;
}

/* Row (c, i, j) of one example's columns: dst[oy wo + ox] =
 * x[c][oy s + i - pad][ox s + j - pad], 0 in the padding.  Loops, not
 * memset and memcpy: the runs are a few dozen floats. */
BPL__MULTIVERSION
static void im2col_row(const conv_geom *g, const float *x, size_t c, size_t i, size_t j,
                       const offset_range *r, float *dst)
{
    for (size_t o = 0; o < r->y_lo * g->wo; o++)
        dst[o] = 0.0f;
    for (size_t oy = r->y_lo; oy < r->y_hi; oy++) {
        float *d = dst + oy * g->wo;
        for (size_t ox = 0; ox < r->x_lo; ox++)
            d[ox] = 0.0f;
        if (r->x_hi > r->x_lo) { /* then x_lo's input column is inside */
            const float *src = x + (c * g->h + oy * g->stride + i - g->pad) * g->w +
                               (r->x_lo * g->stride + j - g->pad);
            size_t n = r->x_hi - r->x_lo;
            if (g->stride == 1)
                for (size_t o = 0; o < n; o++)
                    d[r->x_lo + o] = src[o];
            else
                for (size_t o = 0; o < n; o++)
                    d[r->x_lo + o] = src[o * g->stride];
        }
        for (size_t ox = r->x_hi; ox < g->wo; ox++)
            d[ox] = 0.0f;
    }
    for (size_t o = r->y_hi * g->wo; o < g->p; o++)
        dst[o] = 0.0f;
}

/* A chunk's columns: row (c kh + i) kw + j of col holds, for each of the
 * `count` examples in turn, its positions' inputs at that kernel offset.
 * Written row by row, so that the stores stream through col (the chunk's
 * inputs are the smaller, re-read side). */
static void im2col(const conv_geom *g, const float *x, size_t count, float *col)
{
    size_t ld = count * g->p, in_size = g->c_in * g->h * g->w;
    for (size_t c = 0; c < g->c_in; c++)
        for (size_t i = 0; i < g->kh; i++)
            for (size_t j = 0; j < g->kw; j++) {
                offset_range r = range_of(g, i, j);
                float *row = col + ((c * g->kh + i) * g->kw + j) * ld;
                for (size_t n = 0; n < count; n++)
                    im2col_row(g, x + n * in_size, c, i, j, &r, row + n * g->p);
            }
}

/* x[c][y][x] += alpha col[...][...]: im2col's adjoint over a chunk, read
 * row by row.  Each input element gets its terms in kernel-offset order,
 * whatever the chunk. */
BPL__MULTIVERSION
static void col2im_add(const conv_geom *g, const float *col, size_t count, float alpha,
                       float *x)
{
    size_t ld = count * g->p, in_size = g->c_in * g->h * g->w;
    for (size_t c = 0; c < g->c_in; c++)
        for (size_t i = 0; i < g->kh; i++)
            for (size_t j = 0; j < g->kw; j++) {
                offset_range r = range_of(g, i, j);
                if (r.x_hi == r.x_lo)
                    continue;
                size_t n_x = r.x_hi - r.x_lo;
                for (size_t n = 0; n < count; n++) {
                    const float *row = col + ((c * g->kh + i) * g->kw + j) * ld + n * g->p;
                    for (size_t oy = r.y_lo; oy < r.y_hi; oy++) {
                        const float *src = row + oy * g->wo + r.x_lo;
                        float *dst = x + n * in_size +
                                     (c * g->h + oy * g->stride + i - g->pad) * g->w +
                                     (r.x_lo * g->stride + j - g->pad);
                        if (g->stride == 1)
                            for (size_t o = 0; o < n_x; o++)
                                dst[o] += alpha * src[o];
                        else
                            for (size_t o = 0; o < n_x; o++)
                                dst[o * g->stride] += alpha * src[o];
                    }
                }
            }
}

/* ---- chunks of examples ------------------------------------------------------ */

/* The workspace a layer may hold, in floats (8 MiB): several examples'
 * columns side by side make products wide enough to run near the FMA
 * peak (one example of a late layer may have a single output position),
 * and the bound keeps the memory a constant, not a multiple of the batch. */
#define CONV_WORK_FLOATS ((size_t)1 << 21)

/* One example's share of a chunk: its columns [K][P] and its outputs or
 * errors [C_out][P]. */
static size_t chunk_floats(const conv_geom *g)
{
    return (g->k + g->c_out) * g->p;
}

/* Examples per chunk for the caches: a chunk's columns and outputs in
 * 256 KiB, within a core's L2, so that the product reads what im2col wrote
 * from the cache rather than from memory; one example at least.  Measured
 * on LeNet's and the wider net's layers (docs/performance.md): chunks of
 * 2 MiB (and at least 1024 columns) took 5-20% longer, one example per
 * product (the narrowest) longer still. */
#define CONV_CHUNK_FLOATS ((size_t)1 << 16)

static size_t cache_examples(const conv_geom *g)
{
    size_t fit = CONV_CHUNK_FLOATS / chunk_floats(g);
    return fit ? fit : 1;
}

/* The least a task needs: its own weight gradient (the tasks' sums are
 * added in order after they finish) and one example's chunk. */
static size_t task_floats(const conv_geom *g)
{
    return g->c_out * g->k + chunk_floats(g);
}

/* ---- the kind's operations ---------------------------------------------------- */

/* One output extent: (n + 2 pad - k) / stride + 1, or 0 when the kernel
 * does not fit the padded input (or the sum overflows). */
static size_t out_extent(size_t n, size_t k, size_t stride, size_t pad)
{
    size_t padded;
    if (!bpl__mul_size(pad, 2, &padded) || padded > SIZE_MAX - n)
        return 0;
    padded += n;
    return padded < k ? 0 : (padded - k) / stride + 1;
}

static int conv2d_output_shape(const size_t *in_dims, size_t in_ndim, size_t units,
                               const bpl__kind_params *q, size_t *dims, size_t *ndim)
{
    if (in_ndim != 3)
        return bpl__fail(BPL_ERR_SHAPE, "a conv2d layer needs a C x H x W input (set it with "
                                        "bpl_net_set_input_shape)");
    if (q->kernel_h == 0 || q->kernel_w == 0 || q->stride == 0)
        return bpl__fail(BPL_ERR_INVALID_ARG, "the kernel and the stride must be > 0");
    size_t ho = out_extent(in_dims[1], q->kernel_h, q->stride, q->pad);
    size_t wo = out_extent(in_dims[2], q->kernel_w, q->stride, q->pad);
    if (ho == 0 || wo == 0)
        return bpl__fail(BPL_ERR_SHAPE,
                         "kernel %zux%zu does not fit the input padded by %zu on each side",
                         q->kernel_h, q->kernel_w, q->pad);
    /* Every GEMM dimension stays an int (BPL__MAX_UNITS), and the layer's
     * row and its workspace fit a size_t of bytes. */
    size_t k, p, size, work;
    if (!bpl__mul_size(in_dims[0], q->kernel_h, &k) || !bpl__mul_size(k, q->kernel_w, &k) ||
        !bpl__mul_size(ho, wo, &p) || !bpl__mul_size(p, units, &size) ||
        k > SIZE_MAX - units || !bpl__mul_size(k + units, p, &work) ||
        work > SIZE_MAX - units * k || !bpl__mul_size(work + units * k, sizeof(float), &work) ||
        k > BPL__MAX_UNITS || size > BPL__MAX_UNITS)
        return bpl__fail(BPL_ERR_OVERFLOW,
                         "output %zux%zux%zu with kernel %zux%zu is too large (at most %zu "
                         "outputs and %zu weights per output channel)",
                         units, ho, wo, q->kernel_h, q->kernel_w, BPL__MAX_UNITS,
                         BPL__MAX_UNITS);
    dims[0] = units;
    dims[1] = ho;
    dims[2] = wo;
    *ndim = 3;
    return BPL_OK;
}

/* A weight [C_out][C_in kh kw] and a bias [C_out]; output_shape bounded
 * C_in kh kw and C_out by BPL__MAX_UNITS. */
static uint64_t conv2d_param_values(const size_t *in_dims, size_t in_ndim, size_t units,
                                    const bpl__kind_params *q)
{
    (void)in_ndim;
    return (uint64_t)units * ((uint64_t)in_dims[0] * q->kernel_h * q->kernel_w + 1);
}

static int conv2d_build(bpl_layer *layer)
{
    conv_geom g = geometry(layer);
    bpl__tensor *t;
    int rc = bpl__layer_new_tensor(layer, "weight", g.c_out, g.k, BPL_GROUP_FORWARD, &t);
    if (rc == BPL_OK)
        rc = bpl__layer_new_tensor(layer, "bias", 1, g.c_out, BPL_GROUP_FORWARD, &t);
    if (rc != BPL_OK)
        return rc;
    /* The budget, or one task's least if more (checked by output_shape);
     * allocated before the layer first computes (bpl__layer_ensure_work). */
    layer->work_size = task_floats(&g) > CONV_WORK_FLOATS ? task_floats(&g) : CONV_WORK_FLOATS;
    bpl__conv_accel_create(layer);
    return BPL_OK;
}

/* The chunk's errors err[n][c][p] as one [C_out][count P] matrix. */
static void gather_errors(const conv_geom *g, const float *err, size_t count, float *res)
{
    size_t ld = count * g->p, out_size = g->c_out * g->p;
    for (size_t n = 0; n < count; n++)
        for (size_t c = 0; c < g->c_out; c++)
            memcpy(res + c * ld + n * g->p, err + n * out_size + c * g->p,
                   g->p * sizeof *res);
}

/* The product's [C_out][count P] back to a row per example, the bias
 * added on the way. */
BPL__MULTIVERSION
static void scatter_outputs(const conv_geom *g, const float *res, const float *b, size_t count,
                            float *out)
{
    size_t ld = count * g->p, out_size = g->c_out * g->p;
    for (size_t n = 0; n < count; n++)
        for (size_t c = 0; c < g->c_out; c++) {
            const float *r = res + c * ld + n * g->p;
            float *o = out + n * out_size + c * g->p;
            for (size_t i = 0; i < g->p; i++)
                o[i] = r[i] + b[c];
        }
}

static void forward_chunk(bpl__profile *prof, const conv_geom *g, const float *w, const float *b,
                          const float *in, size_t count, int activation, float *out,
                          float *work)
{
    size_t ld = count * g->p, out_size = g->c_out * g->p;
    float *col = work, *res = work + g->k * ld;
    im2col(g, in, count, col);
    /* [C_out][K] x [K][count P] */
    bpl__gemm(prof, 0, 0, g->c_out, ld, g->k, 1.0f, w, g->k, col, ld, 0.0f,
              res, ld);
    scatter_outputs(g, res, b, count, out);
    bpl__activation_forward(activation, out, NULL, count, out_size);
}

static void send_error_chunk(bpl__profile *prof, const conv_geom *g, const float *m, int transposed,
                             const float *err, size_t count, float alpha, float beta,
                             float *out, float *work)
{
    size_t ld = count * g->p, in_size = g->c_in * g->h * g->w;
    float *col = work, *res = work + g->k * ld;
    gather_errors(g, err, count, res);
    /* [K][count P] = M^T [K][C_out] x err [C_out][count P] */
    if (!transposed)
        bpl__gemm(prof, 1, 0, g->k, ld, g->c_out, 1.0f, m, g->k, res, ld,
                  0.0f, col, ld);
    else
        bpl__gemm(prof, 0, 0, g->k, ld, g->c_out, 1.0f, m, g->c_out, res, ld,
                  0.0f, col, ld);
    /* beta 0 overwrites, as a GEMM's does: what was there may be NaN. */
    if (beta == 0.0f)
        memset(out, 0, count * in_size * sizeof *out);
    else if (beta != 1.0f)
        for (size_t i = 0; i < count * in_size; i++)
            out[i] *= beta;
    col2im_add(g, col, count, alpha, out);
}

/* gw = alpha err col^T over the chunk, added to what gw holds unless `first`. */
static void weight_gradient_chunk(bpl__profile *prof, const conv_geom *g, const float *err,
                                  const float *in, size_t count, float alpha, int first,
                                  float *gw, float *work)
{
    size_t ld = count * g->p;
    float *col = work, *res = work + g->k * ld;
    gather_errors(g, err, count, res);
    im2col(g, in, count, col);
    /* [C_out][K] (+)= alpha err [C_out][count P] x col^T [count P][K] */
    bpl__gemm(prof, 0, 1, g->c_out, g->k, ld, alpha, res, ld, col, ld,
              first ? 0.0f : 1.0f, gw, g->k);
}

/* ---- an operation, cut into tasks --------------------------------------------- */

enum { OP_FORWARD, OP_SEND_ERROR, OP_GRADIENTS };

/* One operation on a batch and its arguments, as each task sees it. */
typedef struct conv_job {
    bpl_net *net;
    const bpl_layer *layer;
    conv_geom g;
    int op;
    size_t batch, n_tasks;
    const float *in, *err, *m, *b;
    int transposed, activation;
    float alpha, beta;
    float *out, *gw;
} conv_job;

/* As many tasks as the thread count, the batch and the workspace allow: a
 * function of those alone, so that results are too. */
static size_t task_count(const bpl_layer *layer, const conv_geom *g, size_t batch)
{
    size_t n = bpl__pool_threads(), fit = layer->work_size / task_floats(g);
    n = n < fit ? n : fit;
    n = n < batch ? n : batch;
    return n ? n : 1;
}

/* A kernel that covers the whole unpadded input (LeNet's last conv layer:
 * one output position per map) is a dense layer: the columns of an example
 * are its input row itself, so the products run on the rows as they are,
 * without im2col's copy of each input element alone. */
static int covers_input(const conv_geom *g)
{
    return g->p == 1 && g->pad == 0 && g->kh == g->h && g->kw == g->w;
}

/* The slice [n0, n0 + count) of such a layer: the dense kind's products,
 * the rows [count][K] in, [count][C_out] out. */
static void dense_slice(const conv_job *j, size_t task, float *slice, size_t n0, size_t count)
{
    const conv_geom *g = &j->g;
    bpl__profile *prof = task == 0 ? bpl__net_profile(j->net) : NULL;
    /* Each pass has only the rows it reads: the input or the errors. */
    const float *in = j->in ? j->in + n0 * g->k : NULL;
    const float *err = j->err ? j->err + n0 * g->c_out : NULL;
    if (j->op == OP_FORWARD) {
        float *out = j->out + n0 * g->c_out;
        /* out = in W^T */
        bpl__gemm(prof, 0, 1, count, g->c_out, g->k, 1.0f, in, g->k, j->m, g->k, 0.0f, out,
                  g->c_out);
        for (size_t n = 0; n < count; n++)
            for (size_t c = 0; c < g->c_out; c++)
                out[n * g->c_out + c] += j->b[c];
        bpl__activation_forward(j->activation, out, NULL, count, g->c_out);
    } else if (j->op == OP_SEND_ERROR) {
        float *out = j->out + n0 * g->k;
        /* beta 0 overwrites, as a GEMM's does: what was there may be NaN. */
        if (j->beta == 0.0f)
            memset(out, 0, count * g->k * sizeof *out);
        /* out = beta out + alpha err M ([C_out][K]) or err M^T ([K][C_out]) */
        bpl__gemm(prof, 0, j->transposed, count, g->k, g->c_out, j->alpha, err, g->c_out, j->m,
                  j->transposed ? g->c_out : g->k, j->beta, out, g->k);
    } else {
        /* gw = alpha err^T in */
        bpl__gemm(prof, 1, 0, g->c_out, g->k, count, j->alpha, err, g->c_out, in, g->k, 0.0f,
                  task == 0 ? j->gw : slice, g->k);
    }
}

/* One input channel moved by 1, few output channels: the direct loops
 * (conv2d_direct.c), with room in the task's workspace after its weight
 * gradient. */
static int direct_case(const conv_job *j)
{
    const conv_geom *g = &j->g;
    size_t room = j->layer->work_size / j->n_tasks - g->c_out * g->k;
    return j->op != OP_SEND_ERROR && bpl__conv_direct_takes(g, room);
}

/* The slice [n0, n0 + count) example by example. */
static void direct_slice(const conv_job *j, size_t task, float *slice, float *work, size_t n0,
                         size_t count)
{
    const conv_geom *g = &j->g;
    size_t in_size = g->h * g->w, out_size = g->c_out * g->p, nw = g->c_out * g->k;
    float *gw = task == 0 ? j->gw : slice;
    if (j->op == OP_GRADIENTS)
        memset(gw, 0, nw * sizeof *gw);
    for (size_t n = n0; n < n0 + count; n++) {
        if (j->op == OP_FORWARD)
            bpl__conv_direct_forward(g, j->m, j->b, j->in + n * in_size, j->out + n * out_size,
                                     work);
        else
            bpl__conv_direct_gradient(g, j->err + n * out_size, j->in + n * in_size, gw, work);
    }
    if (j->op == OP_FORWARD)
        bpl__activation_forward(j->activation, j->out + n0 * out_size, NULL, count, out_size);
    else if (j->alpha != 1.0f)
        for (size_t i = 0; i < nw; i++)
            gw[i] *= j->alpha;
}

/* Which layers the Winograd path runs (BPL__CONV_ACCEL_*, a test hook). */
static int winograd_mode = BPL__CONV_ACCEL_AUTO;

void bpl__conv_winograd_force(int mode)
{
    winograd_mode = mode;
}

/* The Winograd path where it can run the pass and, unless forced, where
 * it pays: at least 16 channels in and out, so that its transforms, a
 * cost per tile and channel, are small beside the products over the
 * other side's channels (measured in docs/performance.md). */
static int winograd_case(const conv_job *j, size_t room)
{
    const conv_geom *g = &j->g;
    if (winograd_mode == BPL__CONV_ACCEL_NEVER || (j->op == OP_SEND_ERROR && j->transposed))
        return 0;
    int op = j->op == OP_FORWARD ? BPL__CONV_FORWARD
             : j->op == OP_SEND_ERROR ? BPL__CONV_SEND_ERROR : BPL__CONV_GRADIENTS;
    if (!bpl__conv_winograd_takes(g, op, room))
        return 0;
    return winograd_mode == BPL__CONV_ACCEL_ALWAYS || (g->c_in >= 16 && g->c_out >= 16);
}

/* The slice [n0, n0 + count) by Winograd's minimal filtering. */
static void winograd_slice(const conv_job *j, size_t task, float *slice, float *work,
                           size_t room, size_t n0, size_t count)
{
    const conv_geom *g = &j->g;
    size_t in_size = g->c_in * g->h * g->w, out_size = g->c_out * g->p;
    bpl__conv_pass pass = {.count = count, .alpha = j->alpha, .beta = j->beta, .w = j->m};
    if (j->op == OP_FORWARD) {
        pass.op = BPL__CONV_FORWARD;
        pass.in = j->in + n0 * in_size, pass.b = j->b, pass.out = j->out + n0 * out_size;
    } else if (j->op == OP_SEND_ERROR) {
        pass.op = BPL__CONV_SEND_ERROR;
        pass.err = j->err + n0 * out_size, pass.out = j->out + n0 * in_size;
    } else {
        pass.op = BPL__CONV_GRADIENTS;
        pass.in = j->in + n0 * in_size, pass.err = j->err + n0 * out_size;
        pass.out = task == 0 ? j->gw : slice;
    }
    bpl__conv_winograd_run(task == 0 ? bpl__net_profile(j->net) : NULL, g, &pass, work, room);
    if (j->op == OP_FORWARD)
        bpl__activation_forward(j->activation, pass.out, NULL, count, out_size);
}

/* The task's slice through the accelerator, if it takes the pass: how
 * many of its examples (from the first) are done. */
static size_t accelerated(const conv_job *j, size_t task, float *slice, size_t n0, size_t count)
{
    const conv_geom *g = &j->g;
    size_t in_size = g->c_in * g->h * g->w, out_size = g->c_out * g->p;
    bpl__conv_pass pass = {.count = count, .alpha = j->alpha, .beta = j->beta};
    if (j->op == OP_FORWARD) {
        pass.op = BPL__CONV_FORWARD;
        pass.in = j->in + n0 * in_size, pass.w = j->m, pass.b = j->b;
        pass.out = j->out + n0 * out_size;
    } else if (j->op == OP_SEND_ERROR) {
        if (j->transposed)
            return 0;
        pass.op = BPL__CONV_SEND_ERROR;
        pass.err = j->err + n0 * out_size, pass.w = j->m;
        pass.out = j->out + n0 * in_size;
    } else {
        pass.op = BPL__CONV_GRADIENTS;
        pass.in = j->in + n0 * in_size, pass.err = j->err + n0 * out_size;
        pass.out = task == 0 ? j->gw : slice;
    }
    size_t done = bpl__conv_accel_run(j->layer, g, task, &pass);
    if (j->op == OP_FORWARD)
        bpl__activation_forward(j->activation, pass.out, NULL, done, out_size);
    return done;
}

/* Task t of n: examples [batch t / n, batch (t + 1) / n), in chunks as
 * even as the task's slice of the workspace allows (after its weight
 * gradient's room); the first task's products count in the profile. */
static void conv_task(void *ctx, size_t task, size_t n_tasks)
{
    const conv_job *j = ctx;
    const conv_geom *g = &j->g;
    size_t n0 = j->batch * task / n_tasks, n1 = j->batch * (task + 1) / n_tasks;
    size_t in_size = g->c_in * g->h * g->w, out_size = g->c_out * g->p;
    float *slice = j->layer->work + task * (j->layer->work_size / n_tasks);
    float *work = slice + g->c_out * g->k;
    if (covers_input(g)) {
        dense_slice(j, task, slice, n0, n1 - n0);
        return;
    }
    size_t room = j->layer->work_size / n_tasks - g->c_out * g->k;
    if (winograd_case(j, room)) {
        winograd_slice(j, task, slice, work, room, n0, n1 - n0);
        return;
    }
    /* The accelerator's examples, then the rest here (its weight gradient
     * added to theirs). */
    size_t done = accelerated(j, task, slice, n0, n1 - n0);
    if (done == 0 && direct_case(j)) {
        direct_slice(j, task, slice, work, n0, n1 - n0);
        return;
    }
    n0 += done;
    size_t most = (j->layer->work_size / n_tasks - g->c_out * g->k) / chunk_floats(g);
    size_t cached = cache_examples(g);
    most = cached < most ? cached : most;
    size_t count = n1 - n0, n_chunks = (count + most - 1) / most;
    bpl__profile *prof = task == 0 ? bpl__net_profile(j->net) : NULL;
    for (size_t c = 0; c < n_chunks; c++) {
        size_t a = n0 + count * c / n_chunks, b = n0 + count * (c + 1) / n_chunks;
        if (j->op == OP_FORWARD)
            forward_chunk(prof, g, j->m, j->b, j->in + a * in_size,
                          b - a, j->activation, j->out + a * out_size, work);
        else if (j->op == OP_SEND_ERROR)
            send_error_chunk(prof, g, j->m, j->transposed, j->err + a * out_size, b - a,
                             j->alpha, j->beta, j->out + a * in_size, work);
        else
            weight_gradient_chunk(prof, g, j->err + a * out_size, j->in + a * in_size, b - a,
                                  j->alpha, done == 0 && c == 0, task == 0 ? j->gw : slice,
                                  work);
    }
}

static void run_job(conv_job *j)
{
    j->n_tasks = task_count(j->layer, &j->g, j->batch);
    bpl__pool_run(conv_task, j, j->n_tasks);
}

static void conv2d_forward(bpl_net *net, const bpl_layer *layer, const float *in, size_t batch,
                           int activation, float *out)
{
    conv_job j = {.net = net, .layer = layer, .g = geometry(layer), .op = OP_FORWARD,
                  .batch = batch, .in = in, .m = bpl__layer_weight(layer)->data,
                  .b = bpl__layer_bias(layer)->data,
                  .activation = activation, .out = out};
    run_job(&j);
}

static void conv2d_send_error(bpl_net *net, const bpl_layer *layer, const float *m,
                              int transposed, const float *err, size_t batch, float alpha,
                              float beta, float *out)
{
    conv_job j = {.net = net, .layer = layer, .g = geometry(layer), .op = OP_SEND_ERROR,
                  .batch = batch, .err = err, .m = m, .transposed = transposed,
                  .alpha = alpha, .beta = beta, .out = out};
    run_job(&j);
}

/* A channel's terms over one example's positions, in 16 running sums (a
 * single one would be a chain of dependent additions), then those sums in
 * order: the same rounding for a given map size, whatever the batch. */
static float channel_sum(const float *e, size_t p, float scale, float divisor, int plain)
{
    float lanes[16] = {0};
    size_t i = 0;
    for (; i + 16 <= p; i += 16)
        for (size_t l = 0; l < 16; l++)
            lanes[l] += plain ? e[i + l] : scale * e[i + l] / divisor;
    for (size_t l = 0; i < p; i++, l++)
        lanes[l] += plain ? e[i] : scale * e[i] / divisor;
    float sum = 0.0f;
    for (size_t l = 0; l < 16; l++)
        sum += lanes[l];
    return sum;
}

/* The bias's gradient: each channel's terms bias_scale err / bias_divisor
 * (each rule's own rounding: s x / 1 and 1 x / d round as s x and x / d),
 * summed over positions, then over the examples in order. */
BPL__MULTIVERSION
static void bias_gradient(const conv_geom *g, const float *err, size_t batch, float scale,
                          float divisor, float *gb)
{
    size_t out_size = g->c_out * g->p;
    int plain = scale == 1.0f && divisor == 1.0f;
    memset(gb, 0, g->c_out * sizeof *gb);
    for (size_t n = 0; n < batch; n++)
        for (size_t c = 0; c < g->c_out; c++)
            gb[c] += channel_sum(err + n * out_size + c * g->p, g->p, scale, divisor, plain);
}

static void conv2d_gradients(bpl_net *net, bpl_layer *layer, const float *err, const float *in,
                             size_t batch, float alpha, float bias_scale, float bias_divisor,
                             float *gw, float *gb)
{
    conv_job j = {.net = net, .layer = layer, .g = geometry(layer), .op = OP_GRADIENTS,
                  .batch = batch, .in = in, .err = err, .alpha = alpha, .gw = gw};
    run_job(&j);
    /* The other tasks' sums, added in task order. */
    size_t nw = j.g.c_out * j.g.k;
    for (size_t t = 1; t < j.n_tasks; t++) {
        const float *part = layer->work + t * (layer->work_size / j.n_tasks);
        for (size_t i = 0; i < nw; i++)
            gw[i] += part[i];
    }
    if (gb)
        bias_gradient(&j.g, err, batch, bias_scale, bias_divisor, gb);
}

static void conv2d_release(bpl_layer *layer)
{
    bpl__conv_accel_free(layer);
}

const bpl__kind bpl__conv2d_kind = {
    .name = "conv2d",
    .caps = BPL__CAN_FORWARD | BPL__CAN_SEND_ERROR | BPL__CAN_GRADIENTS | BPL__CAN_TRANSPOSE,
    .weight = "weight",
    .bias = "bias",
    .output_shape = conv2d_output_shape,
    .param_values = conv2d_param_values,
    .build = conv2d_build,
    .forward = conv2d_forward,
    .send_error = conv2d_send_error,
    .gradients = conv2d_gradients,
    .release = conv2d_release,
};
