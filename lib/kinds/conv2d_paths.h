/*
 * kinds/conv2d_paths.h - the conv kind's paths besides im2col + GEMM
 * (conv2d.c), each for the layers it runs faster:
 *  - direct loops for one input channel moved by 1 (conv2d_direct.c);
 *  - Winograd's minimal filtering for stride-1 layers with many channels
 *    (conv2d_winograd.c);
 *  - the optional accelerator, oneDNN's convolution primitives, where the
 *    build found oneDNN (-Ddnnl; conv2d_dnnl.c says which shapes).  Without
 *    oneDNN every call to it declines.
 */
#ifndef BPL_CONV2D_PATHS_H
#define BPL_CONV2D_PATHS_H

#include "bpl_internal.h"
#include "config.h"

/* The geometry of one conv layer, read from its params and shapes. */
typedef struct bpl__conv_geom {
    size_t c_in, h, w;       /* the input */
    size_t c_out, ho, wo;    /* the output */
    size_t kh, kw, stride, pad;
    size_t k;                /* C_in kh kw: the weight's columns */
    size_t p;                /* H_out W_out: positions of one output map */
} bpl__conv_geom;

/* One pass over `count` examples, as one task of the thread pool runs it.
 *   forward:    out = conv(in, w) + b (before the activation)
 *   send_error: out = beta out + alpha conv_transposed(err, m), m in the
 *               weight's layout
 *   gradients:  gw = alpha err (x) in (overwritten; the bias is not done) */
typedef struct bpl__conv_pass {
    int op; /* BPL__CONV_* */
    size_t count;
    const float *in, *err, *w, *b;
    float alpha, beta;
    float *out;
} bpl__conv_pass;

/* ---- direct loops (conv2d_direct.c) ---- */

/* Whether the direct loops take the layer, given `room` floats of
 * workspace for one example. */
int bpl__conv_direct_takes(const bpl__conv_geom *g, size_t room);
/* One example: out = conv(x, w) + b (before the activation). */
void bpl__conv_direct_forward(const bpl__conv_geom *g, const float *w, const float *b,
                              const float *x, float *out, float *work);
/* One example: gw += err (x) x. */
void bpl__conv_direct_gradient(const bpl__conv_geom *g, const float *err, const float *x,
                               float *gw, float *work);

enum { BPL__CONV_FORWARD, BPL__CONV_SEND_ERROR, BPL__CONV_GRADIENTS };

/* Which passes a path takes (tests cover every path this way). */
enum { BPL__CONV_ACCEL_AUTO, BPL__CONV_ACCEL_NEVER, BPL__CONV_ACCEL_ALWAYS };

/* ---- Winograd (conv2d_winograd.c) ---- */

/* Whether the Winograd path can run pass `op` (BPL__CONV_*) on the layer
 * with `room` floats of workspace: stride 1, a square kernel of 2 to 6,
 * padding below the kernel's size, room for one example.  Whether it
 * should is the caller's choice (conv2d.c). */
int bpl__conv_winograd_takes(const bpl__conv_geom *g, int op, size_t room);
/* Run the pass on pass->count examples (forward: out = conv + b, before
 * the activation; send_error: out = beta out + alpha conv_transposed(err,
 * w), w in the weight's layout; gradients: out = alpha err (x) in,
 * overwritten) with `room` floats at `work`. */
void bpl__conv_winograd_run(bpl__profile *prof, const bpl__conv_geom *g,
                            const bpl__conv_pass *pass, float *work, size_t room);

/* A test hook: which layers the Winograd path runs (BPL__CONV_ACCEL_*:
 * where it pays, none, or every one it can); process-wide. */
void bpl__conv_winograd_force(int mode);
/* Whether its constant B^T is the one its construction gives (tests). */
int bpl__conv_winograd_tables_agree(void);
/* Passes the Winograd path has run in this process (tests check it ran). */
size_t bpl__conv_winograd_passes(void);

/* ---- the accelerator (conv2d_dnnl.c) ---- */


#if BPL_HAVE_DNNL
/* Set up the layer's accelerator state (layer->accel) at build; a failure
 * leaves it NULL and the layer on the portable path. */
void bpl__conv_accel_create(bpl_layer *layer);
void bpl__conv_accel_free(bpl_layer *layer);
/* Run the pass as task `task` of the pool, in calls of a bounded number
 * of examples: how many examples (from the first) it did, all of them, or
 * fewer if it declined (a shape it does not take: none) or oneDNN failed.
 * The caller runs the rest on the portable path; the weight gradient of
 * the examples done is in pass->out, to be added to. */
size_t bpl__conv_accel_run(const bpl_layer *layer, const bpl__conv_geom *g, size_t task,
                           const bpl__conv_pass *pass);
/* A test hook: which passes are taken (BPL__CONV_ACCEL_*); process-wide. */
void bpl__conv_accel_force(int mode);
/* A test hook: examples per call (0: as many as the buffers' bound allows). */
void bpl__conv_accel_set_chunk(size_t examples);
/* A test hook: the n-th call from now fails, as a failure of oneDNN's
 * would (0: none); its entry is then not tried again. */
void bpl__conv_accel_fail_call(size_t n);
/* Passes the accelerator has run in this process (tests check it ran). */
size_t bpl__conv_accel_passes(void);
/* "oneDNN 2.6.3 (avx512_core)", for bpl_blas_info. */
const char *bpl__conv_accel_name(void);
#else
static inline void bpl__conv_accel_create(bpl_layer *layer) { (void)layer; }
static inline void bpl__conv_accel_free(bpl_layer *layer) { (void)layer; }
static inline size_t bpl__conv_accel_run(const bpl_layer *layer, const bpl__conv_geom *g,
                                         size_t task, const bpl__conv_pass *pass)
{
    (void)layer, (void)g, (void)task, (void)pass;
    return 0;
}
static inline void bpl__conv_accel_force(int mode) { (void)mode; }
static inline size_t bpl__conv_accel_passes(void) { return 0; }
static inline void bpl__conv_accel_set_chunk(size_t examples) { (void)examples; }
static inline void bpl__conv_accel_fail_call(size_t n) { (void)n; }
static inline const char *bpl__conv_accel_name(void) { return NULL; }
#endif

#endif
