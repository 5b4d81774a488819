/*
 * kinds/conv2d_direct.c - the conv kind's direct loops for one input
 * channel moved by 1 (a first layer on images), over a zero-padded copy of
 * the plane.  With one channel im2col's columns would be kh kw copies of
 * the image, written and read again for a product of few rows (LeNet's:
 * 6), where these loops read the plane from the cache.  They run along an
 * output row in blocks of LANES columns, each block's sums kept in
 * registers over the whole kernel, GROUP output channels at a time.
 * Measured (bench-conv, 1 thread): LeNet's first layer (6 channels)
 * forward 33 -> 48-51 GFLOP/s, weight gradient 30 -> 33-41; with 32
 * channels (the wider net's) the product of im2col's columns was the
 * faster (77 and 70 against 67-70 and 41-45), so the loops take fewer than
 * 16 channels.  The error sent down keeps the im2col path: a first layer
 * sends none.
 */
#include "conv2d_paths.h"

#include <stdint.h>
#include <string.h>

enum { LANES = 16 };

/* Independent sums per loop, so that the additions overlap rather than
 * wait for each other (an FMA's latency is several cycles). */
enum { GROUP = 4 };

/* The largest kernel (kh kw) the direct loops take (their weights are
 * copied to the stack). */
#define DIRECT_MAX_KERNEL 256

static size_t lane_blocks(const bpl__conv_geom *g)
{
    return (g->wo + LANES - 1) / LANES;
}

static size_t plane_floats(const bpl__conv_geom *g)
{
    /* a row's last block reads up to LANES - 1 floats past the plane */
    return (g->h + 2 * g->pad) * (g->w + 2 * g->pad) + LANES;
}

/* The output channels rounded up to whole groups. */
static size_t group_channels(const bpl__conv_geom *g)
{
    return (g->c_out + GROUP - 1) / GROUP * GROUP;
}

/* The plane and, for the weight gradient, an example's errors with rows
 * of whole blocks (and of whole groups of channels), in a task's workspace after its weight gradient. */
static size_t direct_floats(const bpl__conv_geom *g)
{
    return plane_floats(g) + group_channels(g) * g->ho * lane_blocks(g) * LANES;
}


/* The plane with `pad` zeros around it (and zeros after it), into buf. */
static void padded_plane(const bpl__conv_geom *g, const float *x, float *buf)
{
    size_t pw = g->w + 2 * g->pad;
    memset(buf, 0, plane_floats(g) * sizeof *buf);
    for (size_t y = 0; y < g->h; y++)
        memcpy(buf + (y + g->pad) * pw + g->pad, x + y * g->w, g->w * sizeof *buf);
}

/* A block of LANES floats as one value (GCC's and clang's vector
 * extension: the compiler keeps it in registers of the widest width the
 * target clone has), loaded from anywhere. */
typedef float lanes_f __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t lanes_i __attribute__((vector_size(LANES * sizeof(int32_t))));

static inline void load_lanes(lanes_f *v, const float *p)
{
    memcpy(v, p, sizeof *v);
}


/* out[o][y][x] = b[o] + sum_ij w[o][i][j] plane[y + i][x + j], for GROUP
 * output channels at a time: each block of the plane loaded once for all.
 * The group's weights, zeros past the last channel, are copied side by
 * side first, so that every loop over the group has GROUP turns and its
 * sums stay in registers. */
BPL__MULTIVERSION
static void direct_forward(const bpl__conv_geom *g, const float *w, const float *b,
                           const float *plane, float *out)
{
    float wg[DIRECT_MAX_KERNEL][GROUP], bg[GROUP];
    size_t pw = g->w + 2 * g->pad, kk = g->kh * g->kw;
    for (size_t o0 = 0; o0 < g->c_out; o0 += GROUP) {
        size_t group = g->c_out - o0 < GROUP ? g->c_out - o0 : GROUP;
        for (size_t o = 0; o < GROUP; o++) {
            bg[o] = o < group ? b[o0 + o] : 0.0f;
            for (size_t t = 0; t < kk; t++)
                wg[t][o] = o < group ? w[(o0 + o) * kk + t] : 0.0f;
        }
        for (size_t y = 0; y < g->ho; y++)
            for (size_t x0 = 0; x0 < g->wo; x0 += LANES) {
                lanes_f acc[GROUP], in;
                for (size_t o = 0; o < GROUP; o++)
                    acc[o] = (lanes_f){0} + bg[o];
                for (size_t i = 0; i < g->kh; i++)
                    for (size_t j = 0; j < g->kw; j++) {
                        load_lanes(&in, plane + (y + i) * pw + x0 + j);
                        const float *wt = wg[i * g->kw + j];
                        for (size_t o = 0; o < GROUP; o++)
                            acc[o] += wt[o] * in;
                    }
                size_t n = g->wo - x0 < LANES ? g->wo - x0 : LANES;
                for (size_t o = 0; o < group; o++) {
                    float *dst = out + ((o0 + o) * g->ho + y) * g->wo + x0;
                    if (n == LANES)
                        memcpy(dst, &acc[o], sizeof acc[o]); /* one store */
                    else
                        for (size_t x = 0; x < n; x++)
                            dst[x] = acc[o][x];
                }
            }
    }
}

/* The errors err[o][y][x] into rows of whole blocks, zeros after each
 * and in the channels that complete the last group. */
static void blocked_errors(const bpl__conv_geom *g, const float *err, float *buf)
{
    size_t ws = lane_blocks(g) * LANES, rows = g->c_out * g->ho;
    for (size_t r = 0; r < rows; r++) {
        memcpy(buf + r * ws, err + r * g->wo, g->wo * sizeof *buf);
        memset(buf + r * ws + g->wo, 0, (ws - g->wo) * sizeof *buf);
    }
    memset(buf + rows * ws, 0, (group_channels(g) - g->c_out) * g->ho * ws * sizeof *buf);
}

/* gw[o][i][j] += sum_yx err[o][y][x] plane[y + i][x + j]: per weight, the
 * terms of each block column in a lane, the lanes summed at the end; GROUP
 * output channels at a time, each block of the plane loaded once for all
 * (the channels past the last have zero errors).  Past a
 * row's end the errors are zero and the products are masked away (an
 * infinite input there must not add a NaN). */
BPL__MULTIVERSION
static void direct_weight_gradient(const bpl__conv_geom *g, const float *eb, const float *plane,
                                   float *gw)
{
    size_t pw = g->w + 2 * g->pad, ws = lane_blocks(g) * LANES, kk = g->kh * g->kw;
    lanes_i column;
    for (int x = 0; x < LANES; x++)
        column[x] = x;
    for (size_t o0 = 0; o0 < g->c_out; o0 += GROUP) {
        size_t group = g->c_out - o0 < GROUP ? g->c_out - o0 : GROUP;
        for (size_t t = 0; t < kk; t++) {
            size_t i = t / g->kw, j = t % g->kw;
            lanes_f acc[GROUP] = {{0}}, e, in;
            for (size_t x0 = 0; x0 < g->wo; x0 += LANES) {
                lanes_i inside = column < (int32_t)(g->wo - x0);
                for (size_t y = 0; y < g->ho; y++) {
                    load_lanes(&in, plane + (y + i) * pw + x0 + j);
                    in = (lanes_f)((lanes_i)in & inside);
                    for (size_t o = 0; o < GROUP; o++) {
                        load_lanes(&e, eb + ((o0 + o) * g->ho + y) * ws + x0);
                        acc[o] += e * in;
                    }
                }
            }
            for (size_t o = 0; o < group; o++) {
                float sum = 0.0f;
                for (int x = 0; x < LANES; x++)
                    sum += acc[o][x];
                gw[(o0 + o) * kk + t] += sum;
            }
        }
    }
}


int bpl__conv_direct_takes(const bpl__conv_geom *g, size_t room)
{
    return g->c_in == 1 && g->c_out < 16 && g->stride == 1 &&
           g->kh * g->kw <= DIRECT_MAX_KERNEL && direct_floats(g) <= room;
}

void bpl__conv_direct_forward(const bpl__conv_geom *g, const float *w, const float *b,
                              const float *x, float *out, float *work)
{
    padded_plane(g, x, work);
    direct_forward(g, w, b, work, out);
}

void bpl__conv_direct_gradient(const bpl__conv_geom *g, const float *err, const float *x,
                               float *gw, float *work)
{
    float *eb = work + plane_floats(g);
    padded_plane(g, x, work);
    blocked_errors(g, err, eb);
    direct_weight_gradient(g, eb, work, gw);
}
