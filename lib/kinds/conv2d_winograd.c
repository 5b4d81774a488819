/*
 * kinds/conv2d_winograd.c - stride-1 convolutions by Winograd's minimal
 * filtering (Lavin and Gray 2016): fewer multiplications than the direct
 * sum, for the layers whose products dominate an epoch.
 *
 * In one dimension F(m, r) computes m outputs of an r-tap correlation,
 * y_i = sum_j d_(i+j) g_j, from alpha = m + r - 1 inputs with alpha
 * multiplications: y = A^T [(G g) . (B^T d)].  In two, the output is cut
 * into m x m tiles, each read from an alpha x alpha input tile, and
 *   Y = A^T [ sum_c (G g_c G^T) . (B^T d_c B) ] A,
 * where the sum over input channels, done for every one of the alpha^2
 * points at once, is a matrix product: [C_out][C_in] x [C_in][tiles].  A
 * 5x5 kernel with alpha = 8 (m = 4) takes 64 multiplications per 16
 * outputs where the direct sum takes 400.
 *
 * The matrices come from Cook and Toom's construction on the points 0, 1,
 * -1, 2, -2, 1/2, -1/2 and infinity (A^T: powers of the points; G: powers
 * scaled by the Lagrange denominators; B^T: the inverse of the points'
 * Vandermonde matrix, the denominators put back).  They are exact in
 * binary; what float loses is in the transforms' sums, about 1e-5 of the
 * output's size against 1e-7 for the direct sum (tests/test_conv_winograd.c
 * bounds it).
 *
 * The three passes:
 *  - forward: out = conv(in, W) + b, F(m, r) on the input's tiles;
 *  - send_error, which is the forward pass of the error through the
 *    flipped kernel W'[c][o][i][j] = W[o][c][r-1-i][r-1-j] with padding
 *    r - 1 - pad (stride 1 only);
 *  - gradients: gw[o][c] = sum over positions of err[o] (x) in[c], a
 *    correlation with r x r outputs and the error's m x m tiles as taps,
 *    F(r, m) with the same points and the same input tiles; the products
 *    [C_out][tiles] x [tiles][C_in] sum in the transformed domain over the
 *    whole task and are transformed back once.
 *
 * The transforms run on 16 channels at once (a vector's lanes): a chunk's
 * maps are first copied pixel by pixel, channels innermost and padded to
 * a multiple of 16 with zeros ([example][y][x][channel]), so that a
 * tile's values are vector loads; the transformed tiles are [point][tile]
 * [channel], the products [tiles][C_in] x [C_in][C_out] per point.
 */
#include "conv2d_paths.h"

#include <string.h>

#define ALPHA 8

/* Points of the construction, finite ones (infinity is the last). */
static const double points[ALPHA - 1] = {0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5};

/* F(m, r): A^T [m][ALPHA], G [ALPHA][r], B^T [ALPHA][ALPHA]. */
typedef struct wino_mats {
    size_t m, r;
    float at[ALPHA][ALPHA];
    float g[ALPHA][ALPHA];
    float bt[ALPHA][ALPHA];
} wino_mats;

/* inv = a^-1 for the Vandermonde matrix of the points (well conditioned:
 * Gauss-Jordan with partial pivoting in double is exact to the last bit
 * that float keeps). */
static void invert(double a[ALPHA][ALPHA], double inv[ALPHA][ALPHA])
{
    for (size_t i = 0; i < ALPHA; i++)
        for (size_t j = 0; j < ALPHA; j++)
            inv[i][j] = i == j;
    for (size_t col = 0; col < ALPHA; col++) {
        size_t piv = col;
        for (size_t i = col + 1; i < ALPHA; i++)
            if (__builtin_fabs(a[i][col]) > __builtin_fabs(a[piv][col]))
                piv = i;
        for (size_t j = 0; j < ALPHA; j++) {
            double t = a[col][j];
            a[col][j] = a[piv][j], a[piv][j] = t;
            t = inv[col][j];
            inv[col][j] = inv[piv][j], inv[piv][j] = t;
        }
        double p = a[col][col];
        for (size_t j = 0; j < ALPHA; j++)
            a[col][j] /= p, inv[col][j] /= p;
        for (size_t i = 0; i < ALPHA; i++)
            if (i != col) {
                double f = a[i][col];
                for (size_t j = 0; j < ALPHA; j++)
                    a[i][j] -= f * a[col][j], inv[i][j] -= f * inv[col][j];
            }
    }
}

static double power(double x, size_t n)
{
    double p = 1.0;
    while (n--)
        p *= x;
    return p;
}

/* Cook-Toom: y = A^T [(G g) . (B^T d)] for y_i = sum_j d_(i+j) g_j. */
static void make_mats(size_t m, size_t r, wino_mats *w)
{
    double vdm[ALPHA][ALPHA] = {{0}}, inv[ALPHA][ALPHA], denom[ALPHA];
    memset(w, 0, sizeof *w);
    w->m = m, w->r = r;
    for (size_t k = 0; k < ALPHA - 1; k++) {
        denom[k] = 1.0;
        for (size_t l = 0; l < ALPHA - 1; l++)
            if (l != k)
                denom[k] *= points[k] - points[l];
        for (size_t i = 0; i < m; i++)
            w->at[i][k] = (float)power(points[k], i);
        for (size_t j = 0; j < r; j++)
            w->g[k][j] = (float)(power(points[k], j) / denom[k]);
        for (size_t l = 0; l < ALPHA; l++)
            vdm[k][l] = power(points[k], l);
    }
    denom[ALPHA - 1] = 1.0;
    w->at[m - 1][ALPHA - 1] = 1.0f;
    w->g[ALPHA - 1][r - 1] = 1.0f;
    vdm[ALPHA - 1][ALPHA - 1] = 1.0;
    invert(vdm, inv);
    for (size_t k = 0; k < ALPHA; k++)
        for (size_t l = 0; l < ALPHA; l++)
            w->bt[k][l] = (float)(inv[l][k] * denom[k]);
}

/* ---- tiles ----------------------------------------------------------------------- */

#define LANES 16

static size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* Channels rounded up to whole vectors. */
static size_t lanes_of(size_t channels)
{
    return ceil_div(channels, LANES) * LANES;
}

/* One map's tiling: tiles of `size` x `size` values, `step` apart, the
 * first at (offset, offset) (negative: in the padding), of maps h x w;
 * values outside the map are 0.  ph x pw: the pixels the tiles read. */
typedef struct tiling {
    size_t h, w, size, step, ty, tx;
    long offset;
    size_t ph, pw;
} tiling;

static tiling make_tiling(size_t h, size_t w, size_t size, size_t step, long offset,
                          size_t ty, size_t tx)
{
    tiling t = {.h = h, .w = w, .size = size, .step = step, .ty = ty, .tx = tx,
                .offset = offset};
    t.ph = (ty - 1) * step + size;
    t.pw = (tx - 1) * step + size;
    return t;
}

/* The transforms T d T^T of every tile d of the pixels, T = mat [ALPHA]
 * [t->size] (rows ALPHA apart): out[(a ALPHA + b) plane + tile lanes + c]. */
BPL__MULTIVERSION BPL__CONTRACT
static void transform_tiles(const tiling *t, const float *mat, const float *pix, size_t count,
                            size_t lanes, float *out, size_t plane)
{
    size_t per = t->ty * t->tx, n_tiles = count * per, s = t->size;
    for (size_t tile = 0; tile < n_tiles; tile++) {
        size_t n = tile / per, k = tile % per;
        const float *base =
            pix + ((n * t->ph + (k / t->tx) * t->step) * t->pw + (k % t->tx) * t->step) * lanes;
        for (size_t cb = 0; cb < lanes; cb += LANES) {
            float h[ALPHA][ALPHA][LANES];
            /* rows: h[y][b] = sum_x d[y][x] mat[b][x] */
            for (size_t y = 0; y < s; y++)
                for (size_t b = 0; b < ALPHA; b++) {
                    float acc[LANES] = {0};
                    for (size_t x = 0; x < s; x++) {
                        float f = mat[b * ALPHA + x];
                        const float *d = base + (y * t->pw + x) * lanes + cb;
                        if (f != 0.0f)
                            for (size_t l = 0; l < LANES; l++)
                                acc[l] += f * d[l];
                    }
                    memcpy(h[y][b], acc, sizeof acc);
                }
            /* columns: out[a][b] = sum_y mat[a][y] h[y][b] */
            for (size_t a = 0; a < ALPHA; a++)
                for (size_t b = 0; b < ALPHA; b++) {
                    float acc[LANES] = {0};
                    for (size_t y = 0; y < s; y++) {
                        float f = mat[a * ALPHA + y];
                        if (f != 0.0f)
                            for (size_t l = 0; l < LANES; l++)
                                acc[l] += f * h[y][b][l];
                    }
                    memcpy(out + (a * ALPHA + b) * plane + tile * lanes + cb, acc,
                           sizeof acc);
                }
        }
    }
}

/* B^T for ALPHA = 8 (the same for every F(m, r) on these points), as
 * make_mats computes it: constants, whose rows bt_column computes with
 * their common terms shared, for the input's transform, the one every
 * pass runs.  tests/test_conv.c checks the two agree. */
static const float bt8[ALPHA][ALPHA] = {
    {-1.0f, 0.0f, 5.25f, 0.0f, -5.25f, 0.0f, 1.0f, 0.0f},
    {0.0f, 1.0f, 1.0f, -4.25f, -4.25f, 1.0f, 1.0f, 0.0f},
    {0.0f, -1.0f, 1.0f, 4.25f, -4.25f, -1.0f, 1.0f, 0.0f},
    {0.0f, 0.5f, 0.25f, -2.5f, -1.25f, 2.0f, 1.0f, 0.0f},
    {0.0f, -0.5f, 0.25f, 2.5f, -1.25f, -2.0f, 1.0f, 0.0f},
    {0.0f, 2.0f, 4.0f, -2.5f, -5.0f, 0.5f, 1.0f, 0.0f},
    {0.0f, -2.0f, 4.0f, 2.5f, -5.0f, -0.5f, 1.0f, 0.0f},
    {0.0f, -1.0f, 0.0f, 5.25f, 0.0f, -5.25f, 0.0f, 1.0f},
};

/* Whether make_mats's B^T is bt8, to float's rounding of the inverse
 * (for the tests). */
int bpl__conv_winograd_tables_agree(void)
{
    wino_mats w;
    make_mats(4, 5, &w);
    for (size_t k = 0; k < ALPHA; k++)
        for (size_t l = 0; l < ALPHA; l++)
            if (__builtin_fabsf(w.bt[k][l] - bt8[k][l]) > 1e-6f)
                return 0;
    return 1;
}

/* A vector of LANES floats (GCC's vector extension: one register where
 * the target has 512-bit vectors, several elsewhere). */
typedef float vec __attribute__((vector_size(LANES * sizeof(float)), aligned(4)));

/* dst[j][i] = src[i][j] for a 16 x 16 block (rows src_stride and
 * dst_stride floats apart): four stages, in each of which rows i and
 * i + d trade their off-diagonal d x d blocks, two-input shuffles all. */
#define STAGE(d, LO, HI)                                                                   \
    for (size_t i = 0; i < LANES; i++)                                                     \
        if (!(i & (d))) {                                                                  \
            vec a = r[i], b = r[i + (d)];                                                  \
            r[i] = __builtin_shufflevector(a, b, LO);                                      \
            r[i + (d)] = __builtin_shufflevector(a, b, HI);                                \
        }
#define LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31

/* Inlined into each caller's clones (BPL__MULTIVERSION), so that it runs
 * on the vectors the CPU has. */
#define INLINE static inline __attribute__((always_inline))

INLINE void transpose16(const float *src, size_t src_stride, float *dst, size_t dst_stride)
{
    vec r[LANES];
    for (size_t i = 0; i < LANES; i++)
        memcpy(&r[i], src + i * src_stride, sizeof r[i]);
    STAGE(8, LO8, HI8)
    STAGE(4, LO4, HI4)
    STAGE(2, LO2, HI2)
    STAGE(1, LO1, HI1)
    for (size_t i = 0; i < LANES; i++)
        memcpy(dst + i * dst_stride, &r[i], sizeof r[i]);
}

/* Short runs of floats copied or zeroed inline, in fixed-size pieces:
 * the rows of these maps are a few dozen floats, and a call to the C
 * library's memcpy or memset per row cost more than the copy (7% of the
 * wider net's step in a profile). */
typedef float quad __attribute__((vector_size(4 * sizeof(float)), aligned(4)));

INLINE void copy_floats(float *dst, const float *src, size_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4)
        memcpy(dst, src, sizeof(quad));
    for (; n; n--)
        *dst++ = *src++;
}

INLINE void zero_floats(float *dst, size_t n)
{
    const quad zero = {0};
    for (; n >= 4; n -= 4, dst += 4)
        memcpy(dst, &zero, sizeof zero);
    for (; n; n--)
        *dst++ = 0.0f;
}

/* One channel's map with the tiling's padding: dst[y][x] = map[y +
 * offset][x + offset], 0 outside the map (and everywhere for no map). */
INLINE void pad_plane(const tiling *t, const float *map, float *dst)
{
    /* columns [x0, x1) are the map's */
    size_t x0 = t->offset < 0 ? (size_t)-t->offset : 0;
    long end = (long)t->w - t->offset;
    size_t x1 = end < 0 ? 0 : (size_t)end < t->pw ? (size_t)end : t->pw;
    x0 = x0 < x1 ? x0 : x1;
    for (size_t y = 0; y < t->ph; y++) {
        long sy = (long)y + t->offset;
        float *d = dst + y * t->pw;
        if (!map || sy < 0 || sy >= (long)t->h) {
            zero_floats(d, t->pw);
            continue;
        }
        zero_floats(d, x0);
        copy_floats(d + x0, map + sy * (long)t->w + ((long)x0 + t->offset), x1 - x0);
        zero_floats(d + x1, t->pw - x1);
    }
}

/* The `count` examples' maps (n_ch channels of h x w, examples
 * map_stride apart) as pixels: dst[n][y][x][c] = map[n][c][y + offset]
 * [x + offset], 0 outside the map and for c >= n_ch up to lanes.  Sixteen
 * channels at a time, padded into `planes` ([16][ph][pw]), then turned
 * pixel-major by 16 x 16 transpositions. */
BPL__MULTIVERSION BPL__CONTRACT
static void to_pixels(const tiling *t, const float *maps, size_t n_ch, size_t map_stride,
                      size_t count, size_t lanes, float *planes, float *dst)
{
    size_t plane = t->h * t->w, pixels = t->ph * t->pw;
    for (size_t n = 0; n < count; n++)
        for (size_t cb = 0; cb < lanes; cb += LANES) {
            for (size_t l = 0; l < LANES; l++)
                pad_plane(t, cb + l < n_ch ? maps + n * map_stride + (cb + l) * plane : NULL,
                          planes + l * pixels);
            float *out = dst + n * pixels * lanes + cb;
            size_t p = 0;
            for (; p + LANES <= pixels; p += LANES)
                transpose16(planes + p, pixels, out + p * lanes, lanes);
            for (; p < pixels; p++)
                for (size_t l = 0; l < LANES; l++)
                    out[p * lanes + l] = planes[l * pixels + p];
        }
}

/* out = B^T d for one column of 8, bt8's rows with their common terms
 * shared (the sums of rows 1 and 2, 3 and 4, 5 and 6 differ by a sign). */
INLINE void bt_column(const vec d[ALPHA], vec out[ALPHA])
{
    vec e1 = d[2] + d[6] - 4.25f * d[4], o1 = d[1] + d[5] - 4.25f * d[3];
    vec e3 = 0.25f * d[2] - 1.25f * d[4] + d[6], o3 = 0.5f * d[1] - 2.5f * d[3] + 2.0f * d[5];
    vec e5 = 4.0f * d[2] - 5.0f * d[4] + d[6], o5 = 2.0f * d[1] - 2.5f * d[3] + 0.5f * d[5];
    out[0] = d[6] - d[0] + 5.25f * (d[2] - d[4]);
    out[1] = e1 + o1, out[2] = e1 - o1;
    out[3] = e3 + o3, out[4] = e3 - o3;
    out[5] = e5 + o5, out[6] = e5 - o5;
    out[7] = d[7] - d[1] + 5.25f * (d[3] - d[5]);
}

/* transform_tiles for the input's ALPHA x ALPHA tiles with bt8. */
BPL__MULTIVERSION BPL__CONTRACT
static void transform_input_tiles(const tiling *t, const float *pix, size_t count, size_t lanes,
                                  float *out, size_t plane)
{
    size_t per = t->ty * t->tx, n_tiles = count * per;
    for (size_t tile = 0; tile < n_tiles; tile++) {
        size_t n = tile / per, k = tile % per;
        const float *base =
            pix + ((n * t->ph + (k / t->tx) * t->step) * t->pw + (k % t->tx) * t->step) * lanes;
        for (size_t cb = 0; cb < lanes; cb += LANES) {
            vec h[ALPHA][ALPHA], d[ALPHA], col[ALPHA], res[ALPHA];
            /* h[.][x] = B^T d[.][x]: each column of the tile */
            for (size_t x = 0; x < ALPHA; x++) {
                for (size_t y = 0; y < ALPHA; y++)
                    memcpy(&d[y], base + (y * t->pw + x) * lanes + cb, sizeof d[y]);
                bt_column(d, col);
                for (size_t a = 0; a < ALPHA; a++)
                    h[a][x] = col[a];
            }
            /* out[a][.] = B^T h[a][.]^T: each row */
            for (size_t a = 0; a < ALPHA; a++) {
                bt_column(h[a], res);
                for (size_t b = 0; b < ALPHA; b++)
                    memcpy(out + (a * ALPHA + b) * plane + tile * lanes + cb, &res[b],
                           sizeof res[b]);
            }
        }
    }
}

/* transform_tiles for 4 x 4 tiles (the error's, in the gradient of 5x5
 * kernels), mat [ALPHA][4]: fixed loop bounds, so that the compiler
 * unrolls them and keeps the tile in registers. */
BPL__MULTIVERSION BPL__CONTRACT
static void transform_tiles4(const tiling *t, const float *mat, const float *pix, size_t count,
                             size_t lanes, float *out, size_t plane)
{
    size_t per = t->ty * t->tx, n_tiles = count * per;
    float g[ALPHA][4];
    for (size_t a = 0; a < ALPHA; a++)
        for (size_t j = 0; j < 4; j++)
            g[a][j] = mat[a * ALPHA + j];
    for (size_t tile = 0; tile < n_tiles; tile++) {
        size_t n = tile / per, k = tile % per;
        const float *base =
            pix + ((n * t->ph + (k / t->tx) * t->step) * t->pw + (k % t->tx) * t->step) * lanes;
        for (size_t cb = 0; cb < lanes; cb += LANES) {
            vec d[4][4], h[4][ALPHA];
            for (size_t y = 0; y < 4; y++)
                for (size_t x = 0; x < 4; x++)
                    memcpy(&d[y][x], base + (y * t->pw + x) * lanes + cb, sizeof d[y][x]);
            for (size_t y = 0; y < 4; y++)
                for (size_t b = 0; b < ALPHA; b++)
                    h[y][b] = g[b][0] * d[y][0] + g[b][1] * d[y][1] + g[b][2] * d[y][2] +
                              g[b][3] * d[y][3];
            for (size_t a = 0; a < ALPHA; a++)
                for (size_t b = 0; b < ALPHA; b++) {
                    vec v = g[a][0] * h[0][b] + g[a][1] * h[1][b] + g[a][2] * h[2][b] +
                            g[a][3] * h[3][b];
                    memcpy(out + (a * ALPHA + b) * plane + tile * lanes + cb, &v, sizeof v);
                }
        }
    }
}

/* How the outputs are written: the forward pass's out = y + bias, or the
 * error's out = beta out + alpha y. */
typedef struct output_mode {
    const float *bias;
    float alpha, beta;
} output_mode;


/* One tile's m x m outputs of the LANES channels from pb (y[i][j][lane])
 * into the maps [channel][ho][wo], clipped to them. */
static void store_tile(const output_mode *mode, const float *y, size_t m, size_t n_p, size_t pb,
                       size_t ho, size_t wo, size_t oy, size_t ox, float *out)
{
    size_t n_l = n_p - pb < LANES ? n_p - pb : LANES;
    size_t rows = ho - oy < m ? ho - oy : m, cols = wo - ox < m ? wo - ox : m;
    for (size_t l = 0; l < n_l; l++) {
        float *o = out + (pb + l) * ho * wo + oy * wo + ox;
        float add = mode->bias ? mode->bias[pb + l] : 0.0f;
        if (mode->bias || mode->beta == 0.0f) /* overwrite: what was there may be NaN */
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < cols; j++)
                    o[i * wo + j] = mode->alpha * y[(i * m + j) * LANES + l] + add;
        else
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < cols; j++)
                    o[i * wo + j] = mode->beta * o[i * wo + j] + mode->alpha * y[(i * m + j) * LANES + l];
    }
}

/* store_tile for m = 4: the 16 outputs of each channel made one vector
 * by a transposition, the mode applied to it whole, and written 4 floats
 * to a row. */
INLINE void store_tile4(const output_mode *mode, const float *y, size_t n_p, size_t pb,
                        size_t ho, size_t wo, size_t oy, size_t ox, float *out)
{
    float yt[LANES][LANES];
    transpose16(y, LANES, &yt[0][0], LANES);
    size_t n_l = n_p - pb < LANES ? n_p - pb : LANES;
    size_t rows = ho - oy < 4 ? ho - oy : 4, cols = wo - ox < 4 ? wo - ox : 4;
    for (size_t l = 0; l < n_l; l++) {
        float *o = out + (pb + l) * ho * wo + oy * wo + ox;
        vec v, old = {0};
        memcpy(&v, yt[l], sizeof v);
        if (mode->bias)
            v += mode->bias[pb + l];
        else if (mode->beta == 0.0f) /* overwrite: what was there may be NaN */
            v *= mode->alpha;
        else {
            for (size_t i = 0; i < rows; i++)
                memcpy((float *)&old + 4 * i, o + i * wo, cols * sizeof *o);
            v = mode->beta * old + mode->alpha * v;
        }
        for (size_t i = 0; i < rows; i++)
            memcpy(o + i * wo, (float *)&v + 4 * i, cols * sizeof *o);
    }
}

/* out = A^T M for one column of 8, F(4, r): the powers 0 to 3 of the
 * points, infinity's term in the last. */
INLINE void at4_column(const vec mm[ALPHA], vec out[4])
{
    vec s1 = mm[1] + mm[2], d1 = mm[1] - mm[2];
    vec s2 = mm[3] + mm[4], d2 = mm[3] - mm[4];
    vec s3 = mm[5] + mm[6], d3 = mm[5] - mm[6];
    out[0] = mm[0] + s1 + s2 + s3;
    out[1] = d1 + 2.0f * d2 + 0.5f * d3;
    out[2] = s1 + 4.0f * s2 + 0.25f * s3;
    out[3] = d1 + 8.0f * d2 + 0.125f * d3 + mm[7];
}

/* inverse_tiles for m = 4 (5x5 kernels), with at4_column. */
BPL__MULTIVERSION BPL__CONTRACT
static void inverse_tiles4(const float *mm, size_t plane, size_t n_p, size_t lanes, size_t count,
                           size_t ty,
                           size_t tx, size_t ho, size_t wo, size_t out_stride,
                           const output_mode *mode, float *out)
{
    size_t per = ty * tx, n_tiles = count * per;
    for (size_t tile = 0; tile < n_tiles; tile++) {
        size_t n = tile / per, k = tile % per, oy = (k / tx) * 4, ox = (k % tx) * 4;
        for (size_t pb = 0; pb < lanes; pb += LANES) {
            vec h[4][ALPHA], col[ALPHA], res[4];
            float y[4][4][LANES];
            for (size_t b = 0; b < ALPHA; b++) {
                for (size_t a = 0; a < ALPHA; a++)
                    memcpy(&col[a], mm + (a * ALPHA + b) * plane + tile * lanes + pb,
                           sizeof col[a]);
                at4_column(col, res);
                for (size_t i = 0; i < 4; i++)
                    h[i][b] = res[i];
            }
            for (size_t i = 0; i < 4; i++) {
                at4_column(h[i], res);
                for (size_t j = 0; j < 4; j++)
                    memcpy(y[i][j], &res[j], sizeof res[j]);
            }
            store_tile4(mode, &y[0][0][0], n_p, pb, ho, wo, oy, ox, out + n * out_stride);
        }
    }
}

/* Back from the transformed domain: for every tile of the `count`
 * examples and every one of the n_p channels, y = A^T M A (m x m), from
 * mm[(a ALPHA + b) plane + tile lanes + p], clipped to the maps ho x wo. */
BPL__MULTIVERSION BPL__CONTRACT
static void inverse_tiles(const wino_mats *w, const float *mm, size_t plane, size_t n_p,
                          size_t lanes,
                          size_t count, size_t ty, size_t tx, size_t ho, size_t wo,
                          size_t out_stride, const output_mode *mode, float *out)
{
    size_t per = ty * tx, n_tiles = count * per, m = w->m;
    for (size_t tile = 0; tile < n_tiles; tile++) {
        size_t n = tile / per, k = tile % per, oy = (k / tx) * m, ox = (k % tx) * m;
        for (size_t pb = 0; pb < lanes; pb += LANES) {
            float h[ALPHA][ALPHA][LANES], y[ALPHA * ALPHA][LANES];
            /* rows: h[a][j] = sum_b M[a][b] A^T[j][b] */
            for (size_t a = 0; a < ALPHA; a++)
                for (size_t j = 0; j < m; j++) {
                    float acc[LANES] = {0};
                    for (size_t b = 0; b < ALPHA; b++) {
                        float f = w->at[j][b];
                        const float *src = mm + (a * ALPHA + b) * plane + tile * lanes + pb;
                        if (f != 0.0f)
                            for (size_t l = 0; l < LANES; l++)
                                acc[l] += f * src[l];
                    }
                    memcpy(h[a][j], acc, sizeof acc);
                }
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < m; j++) {
                    float acc[LANES] = {0};
                    for (size_t a = 0; a < ALPHA; a++) {
                        float f = w->at[i][a];
                        if (f != 0.0f)
                            for (size_t l = 0; l < LANES; l++)
                                acc[l] += f * h[a][j][l];
                    }
                    memcpy(y[i * m + j], acc, sizeof acc);
                }
            store_tile(mode, &y[0][0], m, n_p, pb, ho, wo, oy, ox, out + n * out_stride);
        }
    }
}

/* u[(a ALPHA + b)][q][p] (rows of p_lanes, q_lanes rows per point, zero
 * beyond n_p and n_q) = (G g G^T)[a][b] for the kernel g of output p and
 * input q: W[p][q] (forward) or, flipped, W[q][p] turned by half a turn
 * (the error's pass). */
static void transform_kernels(const wino_mats *w, const float *wt, size_t n_p, size_t n_q,
                              size_t p_lanes, size_t q_lanes, int flipped, float *u)
{
    size_t r = w->r, plane = p_lanes * q_lanes;
    memset(u, 0, ALPHA * ALPHA * plane * sizeof *u);
    for (size_t p = 0; p < n_p; p++)
        for (size_t q = 0; q < n_q; q++) {
            float g[ALPHA][ALPHA], h[ALPHA][ALPHA];
            const float *k = flipped ? wt + (q * n_p + p) * r * r : wt + (p * n_q + q) * r * r;
            for (size_t i = 0; i < r; i++)
                for (size_t j = 0; j < r; j++)
                    g[i][j] = flipped ? k[(r - 1 - i) * r + (r - 1 - j)] : k[i * r + j];
            for (size_t i = 0; i < r; i++)
                for (size_t b = 0; b < ALPHA; b++) {
                    float acc = 0.0f;
                    for (size_t j = 0; j < r; j++)
                        acc += g[i][j] * w->g[b][j];
                    h[i][b] = acc;
                }
            for (size_t a = 0; a < ALPHA; a++)
                for (size_t b = 0; b < ALPHA; b++) {
                    float acc = 0.0f;
                    for (size_t i = 0; i < r; i++)
                        acc += w->g[a][i] * h[i][b];
                    u[(a * ALPHA + b) * plane + q * p_lanes + p] = acc;
                }
        }
}

/* gw[o][c] = alpha A^T GW[c][o] A, r x r, from the transformed sums
 * gwt[(a ALPHA + b)][c][o] (rows of o_lanes, c_lanes rows per point). */
static void inverse_kernels(const wino_mats *w, const float *gwt, size_t n_out, size_t n_in,
                            size_t o_lanes, size_t c_lanes, float alpha, float *gw)
{
    size_t r = w->m, plane = o_lanes * c_lanes; /* F(r, m): w->m is the kernel's r */
    for (size_t o = 0; o < n_out; o++)
        for (size_t c = 0; c < n_in; c++) {
            float h[ALPHA][ALPHA];
            for (size_t a = 0; a < ALPHA; a++)
                for (size_t j = 0; j < r; j++) {
                    float acc = 0.0f;
                    for (size_t b = 0; b < ALPHA; b++)
                        acc += gwt[(a * ALPHA + b) * plane + c * o_lanes + o] * w->at[j][b];
                    h[a][j] = acc;
                }
            float *dst = gw + (o * n_in + c) * r * r;
            for (size_t i = 0; i < r; i++)
                for (size_t j = 0; j < r; j++) {
                    float acc = 0.0f;
                    for (size_t a = 0; a < ALPHA; a++)
                        acc += w->at[i][a] * h[a][j];
                    dst[i * r + j] = alpha * acc;
                }
        }
}

/* ---- the passes ------------------------------------------------------------------- */

/* A pass seen as a forward convolution: n_q input maps h x w, n_p output
 * maps ho x wo, padding pad (the error's pass: the layer's output is the
 * input here). */
typedef struct wino_conv {
    size_t n_q, h, w, n_p, ho, wo, pad;
    size_t q_lanes, p_lanes;
} wino_conv;

/* The output tile for an r x r kernel: m = ALPHA - r + 1. */
static size_t tile_of(const bpl__conv_geom *g)
{
    return ALPHA - g->kh + 1;
}

static wino_conv conv_of(const bpl__conv_geom *g, int op)
{
    wino_conv c;
    if (op == BPL__CONV_SEND_ERROR)
        c = (wino_conv){.n_q = g->c_out, .h = g->ho, .w = g->wo, .n_p = g->c_in,
                        .ho = g->h, .wo = g->w, .pad = g->kh - 1 - g->pad};
    else
        c = (wino_conv){.n_q = g->c_in, .h = g->h, .w = g->w, .n_p = g->c_out,
                        .ho = g->ho, .wo = g->wo, .pad = g->pad};
    c.q_lanes = lanes_of(c.n_q);
    c.p_lanes = lanes_of(c.n_p);
    return c;
}

static tiling input_tiling(const bpl__conv_geom *g, const wino_conv *c)
{
    size_t m = tile_of(g);
    return make_tiling(c->h, c->w, ALPHA, m, -(long)c->pad, ceil_div(c->ho, m),
                       ceil_div(c->wo, m));
}

/* Floats of the kernels' transforms (or the gradient's sums), and the
 * slack of plane_of's strides. */
static size_t fixed_floats(const wino_conv *c)
{
    return ALPHA * ALPHA * (c->q_lanes * c->p_lanes + 2 * LANES);
}

/* The floats from one point's matrix [tiles][lanes] to the next: a cache
 * line more than the matrix, so that the 64 points' rows of one tile,
 * which the transforms read or write together, fall in different cache
 * sets (a power-of-two stride, as 256 tiles of 64 channels give, would
 * put all 64 in one set of an 8-way L1). */
static size_t plane_of(size_t nt, size_t lanes)
{
    return nt * lanes + LANES;
}

/* Floats of one example's share: the input's transforms, the products
 * (or the error's transforms) and the pixels; and (counted per example,
 * needed once) the padded planes of 16 channels. */
static size_t example_floats(const wino_conv *c, const tiling *t)
{
    size_t wider = c->q_lanes > c->p_lanes ? c->q_lanes : c->p_lanes;
    return ALPHA * ALPHA * (c->q_lanes + c->p_lanes) * t->ty * t->tx +
           t->ph * t->pw * (wider + LANES);
}

/* Examples per chunk: products about TARGET_TILES tiles tall (measured on
 * the wider net's second layer, docs/performance.md), fewer if the room
 * is short. */
#define TARGET_TILES 256

static size_t chunk_examples(const wino_conv *c, const tiling *t, size_t room, size_t count)
{
    size_t fixed = fixed_floats(c), per = example_floats(c, t);
    size_t want = ceil_div(TARGET_TILES, t->ty * t->tx);
    size_t fit = room > fixed ? (room - fixed) / per : 0;
    want = want < fit ? want : fit;
    return want < count ? want : count;
}

int bpl__conv_winograd_takes(const bpl__conv_geom *g, int op, size_t room)
{
    if (g->stride != 1 || g->kh != g->kw || g->kh < 2 || g->kh > 6 || g->pad >= g->kh)
        return 0;
    wino_conv c = conv_of(g, op);
    tiling t = input_tiling(g, &c);
    return chunk_examples(&c, &t, room, 1) == 1;
}

/* forward and send_error: one forward convolution, in chunks. */
static void run_conv(bpl__profile *prof, const bpl__conv_geom *g, const bpl__conv_pass *pass,
                     float *work, size_t room)
{
    wino_conv c = conv_of(g, pass->op);
    int send = pass->op == BPL__CONV_SEND_ERROR;
    wino_mats w;
    make_mats(tile_of(g), g->kh, &w);
    tiling t = input_tiling(g, &c);
    size_t per = t.ty * t.tx, chunk = chunk_examples(&c, &t, room, pass->count);
    size_t in_size = c.n_q * c.h * c.w, out_size = c.n_p * c.ho * c.wo;
    float *u = work;
    transform_kernels(&w, pass->w, c.n_p, c.n_q, c.p_lanes, c.q_lanes, send, u);
    const float *src = send ? pass->err : pass->in;
    output_mode mode = {.bias = send ? NULL : pass->b, .alpha = send ? pass->alpha : 1.0f,
                        .beta = pass->beta};
    for (size_t n0 = 0; n0 < pass->count; n0 += chunk) {
        size_t count = pass->count - n0 < chunk ? pass->count - n0 : chunk, nt = count * per;
        size_t vp = plane_of(nt, c.q_lanes), mp = plane_of(nt, c.p_lanes);
        float *v = u + fixed_floats(&c), *mm = v + ALPHA * ALPHA * vp;
        float *pix = mm + ALPHA * ALPHA * mp;
        float *planes = pix + count * t.ph * t.pw * c.q_lanes;
        to_pixels(&t, src + n0 * in_size, c.n_q, in_size, count, c.q_lanes, planes, pix);
        transform_input_tiles(&t, pix, count, c.q_lanes, v, vp);
        /* M[xi] [tiles][P] = V[xi] [tiles][Q] x U[xi] [Q][P] */
        for (size_t xi = 0; xi < ALPHA * ALPHA; xi++)
            bpl__gemm(prof, 0, 0, nt, c.p_lanes, c.q_lanes, 1.0f, v + xi * vp, c.q_lanes,
                      u + xi * c.q_lanes * c.p_lanes, c.p_lanes, 0.0f, mm + xi * mp, c.p_lanes);
        if (w.m == 4)
            inverse_tiles4(mm, mp, c.n_p, c.p_lanes, count, t.ty, t.tx, c.ho, c.wo, out_size,
                           &mode, pass->out + n0 * out_size);
        else
            inverse_tiles(&w, mm, mp, c.n_p, c.p_lanes, count, t.ty, t.tx, c.ho, c.wo, out_size,
                          &mode, pass->out + n0 * out_size);
    }
}

/* gradients: gw = alpha sum err (x) in, F(r, m) on the same input tiles
 * and the error's m x m tiles. */
static void run_gradients(bpl__profile *prof, const bpl__conv_geom *g,
                          const bpl__conv_pass *pass, float *work, size_t room)
{
    wino_conv c = conv_of(g, BPL__CONV_FORWARD);
    size_t m = tile_of(g);
    wino_mats w;
    make_mats(g->kh, m, &w); /* F(r, m): r outputs, m taps */
    tiling t = input_tiling(g, &c);
    tiling te = make_tiling(c.ho, c.wo, m, m, 0, t.ty, t.tx);
    size_t per = t.ty * t.tx, chunk = chunk_examples(&c, &t, room, pass->count);
    size_t in_size = c.n_q * c.h * c.w, out_size = c.n_p * c.ho * c.wo;
    float *gwt = work;
    for (size_t n0 = 0; n0 < pass->count; n0 += chunk) {
        size_t count = pass->count - n0 < chunk ? pass->count - n0 : chunk, nt = count * per;
        size_t vp = plane_of(nt, c.q_lanes), ep = plane_of(nt, c.p_lanes);
        float *v = gwt + fixed_floats(&c), *e = v + ALPHA * ALPHA * vp;
        float *pix = e + ALPHA * ALPHA * ep;
        float *planes = pix + count * t.ph * t.pw * (c.q_lanes > c.p_lanes ? c.q_lanes : c.p_lanes);
        to_pixels(&t, pass->in + n0 * in_size, c.n_q, in_size, count, c.q_lanes, planes, pix);
        transform_input_tiles(&t, pix, count, c.q_lanes, v, vp);
        to_pixels(&te, pass->err + n0 * out_size, c.n_p, out_size, count, c.p_lanes, planes,
                  pix);
        if (m == 4)
            transform_tiles4(&te, &w.g[0][0], pix, count, c.p_lanes, e, ep);
        else
            transform_tiles(&te, &w.g[0][0], pix, count, c.p_lanes, e, ep);
        /* GW[xi] [Q][P] (+)= V[xi]^T [Q][tiles] x E[xi] [tiles][P] */
        for (size_t xi = 0; xi < ALPHA * ALPHA; xi++)
            bpl__gemm(prof, 1, 0, c.q_lanes, c.p_lanes, nt, 1.0f, v + xi * vp, c.q_lanes,
                      e + xi * ep, c.p_lanes, n0 == 0 ? 0.0f : 1.0f,
                      gwt + xi * c.q_lanes * c.p_lanes, c.p_lanes);
    }
    inverse_kernels(&w, gwt, c.n_p, c.n_q, c.p_lanes, c.q_lanes, pass->alpha, pass->out);
}

/* Passes run, for the tests (tasks on several threads add to it). */
static size_t passes_run;

size_t bpl__conv_winograd_passes(void)
{
    return __atomic_load_n(&passes_run, __ATOMIC_RELAXED);
}

void bpl__conv_winograd_run(bpl__profile *prof, const bpl__conv_geom *g,
                            const bpl__conv_pass *pass, float *work, size_t room)
{
    if (pass->count == 0)
        return;
    __atomic_fetch_add(&passes_run, 1, __ATOMIC_RELAXED);
    if (pass->op == BPL__CONV_GRADIENTS)
        run_gradients(prof, g, pass, work, room);
    else
        run_conv(prof, g, pass, work, room);
}
