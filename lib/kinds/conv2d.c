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
 * Portable path: one example at a time, im2col into the layer's workspace
 * (layer->work, [C_in kh kw][H_out W_out], allocated by build, so no call
 * allocates) and one bpl__gemm, so that -Dblas=none runs the library's own
 * GEMM.  Rows of a batch are examples flattened channel-major, as the
 * activation buffers hold them and as a dense layer above reads them.
 */
#include "bpl_internal.h"

#include <string.h>

/* The geometry of one layer, read from its params and shapes. */
typedef struct conv_geom {
    size_t c_in, h, w;       /* the input */
    size_t c_out, ho, wo;    /* the output */
    size_t kh, kw, stride, pad;
    size_t k;                /* C_in kh kw: the weight's columns */
    size_t p;                /* H_out W_out: positions of one output map */
} conv_geom;

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

/* The input coordinate of output position o and kernel offset i, or -1 in
 * the padding (as a size_t compared against the extent). */
static size_t source_index(size_t o, size_t i, const conv_geom *g, size_t extent, int *inside)
{
    size_t at = o * g->stride + i; /* in padded coordinates */
    *inside = at >= g->pad && at - g->pad < extent;
    return at - g->pad;
}

/* col[(c kh + i) kw + j][oy wo + ox] = x[c][oy s + i - pad][ox s + j - pad]. */
static void im2col(const conv_geom *g, const float *x, float *col)
{
    for (size_t c = 0; c < g->c_in; c++)
        for (size_t i = 0; i < g->kh; i++)
            for (size_t j = 0; j < g->kw; j++) {
                float *row = col + ((c * g->kh + i) * g->kw + j) * g->p;
                for (size_t oy = 0; oy < g->ho; oy++) {
                    int in_y;
                    size_t y = source_index(oy, i, g, g->h, &in_y);
                    float *dst = row + oy * g->wo;
                    for (size_t ox = 0; ox < g->wo; ox++) {
                        int in_x;
                        size_t x_at = source_index(ox, j, g, g->w, &in_x);
                        dst[ox] = in_y && in_x ? x[(c * g->h + y) * g->w + x_at] : 0.0f;
                    }
                }
            }
}

/* x[c][y][x] += alpha col[...][...]: im2col's adjoint. */
static void col2im_add(const conv_geom *g, const float *col, float alpha, float *x)
{
    for (size_t c = 0; c < g->c_in; c++)
        for (size_t i = 0; i < g->kh; i++)
            for (size_t j = 0; j < g->kw; j++) {
                const float *row = col + ((c * g->kh + i) * g->kw + j) * g->p;
                for (size_t oy = 0; oy < g->ho; oy++) {
                    int in_y;
                    size_t y = source_index(oy, i, g, g->h, &in_y);
                    if (!in_y)
                        continue;
                    const float *src = row + oy * g->wo;
                    for (size_t ox = 0; ox < g->wo; ox++) {
                        int in_x;
                        size_t x_at = source_index(ox, j, g, g->w, &in_x);
                        if (in_x)
                            x[(c * g->h + y) * g->w + x_at] += alpha * src[ox];
                    }
                }
            }
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
        !bpl__mul_size(k, p, &work) || !bpl__mul_size(work, sizeof(float), &work) ||
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
    layer->work_size = g.k * g.p; /* checked by output_shape */
    layer->work = bpl__malloc(layer->work_size * sizeof *layer->work);
    if (!layer->work)
        return bpl__fail(BPL_ERR_NOMEM, "conv2d workspace of %zu floats: out of memory",
                         layer->work_size);
    return BPL_OK;
}

static void conv2d_forward(bpl_net *net, const bpl_layer *layer, const float *in, size_t batch,
                           int activation, float *out)
{
    conv_geom g = geometry(layer);
    const float *w = bpl__layer_weight(layer)->data, *b = bpl__layer_bias(layer)->data;
    size_t in_size = g.c_in * g.h * g.w, out_size = layer->size;
    for (size_t n = 0; n < batch; n++) {
        float *o = out + n * out_size;
        im2col(&g, in + n * in_size, layer->work);
        /* [C_out][K] x [K][P] */
        bpl__gemm(bpl__net_profile(net), 0, 0, g.c_out, g.p, g.k, 1.0f, w, g.k, layer->work,
                  g.p, 0.0f, o, g.p);
        for (size_t c = 0; c < g.c_out; c++)
            for (size_t i = 0; i < g.p; i++)
                o[c * g.p + i] += b[c];
    }
    bpl__activation_forward(activation, out, NULL, batch, out_size);
}

static void conv2d_send_error(bpl_net *net, const bpl_layer *layer, const float *m,
                              int transposed, const float *err, size_t batch, float alpha,
                              float beta, float *out)
{
    conv_geom g = geometry(layer);
    size_t in_size = g.c_in * g.h * g.w, out_size = layer->size;
    for (size_t n = 0; n < batch; n++) {
        float *x = out + n * in_size;
        /* beta 0 overwrites, as a GEMM's does: what was there may be NaN. */
        if (beta == 0.0f)
            memset(x, 0, in_size * sizeof *x);
        else if (beta != 1.0f)
            for (size_t i = 0; i < in_size; i++)
                x[i] *= beta;
        /* [K][P] = M^T [K][C_out] x err [C_out][P] */
        if (!transposed)
            bpl__gemm(bpl__net_profile(net), 1, 0, g.k, g.p, g.c_out, 1.0f, m, g.k,
                      err + n * out_size, g.p, 0.0f, layer->work, g.p);
        else
            bpl__gemm(bpl__net_profile(net), 0, 0, g.k, g.p, g.c_out, 1.0f, m, g.c_out,
                      err + n * out_size, g.p, 0.0f, layer->work, g.p);
        col2im_add(&g, layer->work, alpha, x);
    }
}

static void conv2d_gradients(bpl_net *net, bpl_layer *layer, const float *err, const float *in,
                             size_t batch, float alpha, float bias_scale, float bias_divisor,
                             float *gw, float *gb)
{
    conv_geom g = geometry(layer);
    size_t in_size = g.c_in * g.h * g.w, out_size = layer->size;
    if (gb)
        memset(gb, 0, g.c_out * sizeof *gb);
    for (size_t n = 0; n < batch; n++) {
        const float *e = err + n * out_size;
        im2col(&g, in + n * in_size, layer->work);
        /* [C_out][K] (+)= alpha err [C_out][P] x col^T [P][K] */
        bpl__gemm(bpl__net_profile(net), 0, 1, g.c_out, g.k, g.p, alpha, e, g.p, layer->work,
                  g.p, n ? 1.0f : 0.0f, gw, g.k);
        /* The bias sums as the dense kind's does: each rule's own rounding. */
        for (size_t c = 0; gb && c < g.c_out; c++)
            for (size_t i = 0; i < g.p; i++)
                gb[c] += bias_scale == 1.0f && bias_divisor == 1.0f
                             ? e[c * g.p + i]
                             : bias_scale * e[c * g.p + i] / bias_divisor;
    }
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
};
