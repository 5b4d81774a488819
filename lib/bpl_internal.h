/*
 * bpl_internal.h - declarations shared by the library's source files.
 * Never installed.  Internal non-static symbols are prefixed bpl__.
 */
#ifndef BPL_INTERNAL_H
#define BPL_INTERNAL_H

#include "bioplaus_rule.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define BPL__NAME_MAX 48      /* longest tensor, buffer or parameter name + 1 */
#define BPL__RULE_NAME_MAX 64 /* longest rule name + 1 */
#define BPL__N_GROUPS 2       /* BPL_GROUP_FORWARD, BPL_GROUP_FEEDBACK */
#define BPL__N_PROPERTIES 7
#define BPL__MAX_UNITS ((size_t)1 << 24) /* keeps every BLAS dimension an int */
#define BPL__MAX_BATCH ((size_t)1 << 24)
#define BPL__MAX_LAYERS 1024
/* Optimiser step counts stay below this, so that (double)t is exact in
 * Adam's bias correction; the loader refuses more, and a step leaves the
 * count at its last value rather than saving one the loader would refuse. */
#define BPL__MAX_OPTIM_STEPS ((uint64_t)1 << 53)
#define BPL__MAX_TENSORS 64 /* per layer: what a saved file may hold */
#define BPL__MAX_STATE_BYTES ((uint64_t)1 << 30) /* a rule's saved state */
#define BPL__MAX_MODEL_BYTES ((uint64_t)1 << 36) /* a model file or buffer */
/* Inference (predict, evaluate) runs in chunks of this many rows, whatever
 * the net's workspace holds: BLAS kernels may round a row differently
 * depending on how many rows a product has, so the chunking must depend on
 * the input alone for the same parameters to give the same outputs. */
#define BPL__INFERENCE_ROWS ((size_t)256)

#if defined(__GNUC__)
#define BPL__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define BPL__PRINTF(fmt, args)
#endif

/* Elementwise kernels are compiled for AVX-512, AVX2 and the baseline, and
 * the best one the CPU supports is picked when the library loads: the
 * optimiser and activation loops are memory- and divide-bound, and a
 * distribution's baseline build would otherwise run them 4 floats wide.
 * Not under ThreadSanitizer: the loader runs the clones' resolvers before the
 * sanitizer's runtime is ready, and gcc instruments them anyway. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_THREAD__)
#define BPL__MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BPL__MULTIVERSION
#endif

/* A function whose sums a * b + c may each be one fused multiply-add (a
 * rounding less): the build's ISO C mode turns that contraction off
 * everywhere else, so that the loops that were written before it keep
 * their bits.  New kernels, whose results no saved run depends on, use
 * it (gcc; clang contracts within a statement by default). */
#if defined(__GNUC__) && !defined(__clang__)
#define BPL__CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define BPL__CONTRACT
#endif

/* ---- errors (error.c) ---------------------------------------------------- */

/* Format the calling thread's error message and return `status`. */
int bpl__fail(int status, const char *fmt, ...) BPL__PRINTF(2, 3);

/* Fail with BPL_ERR_INVALID_ARG naming the function and the broken condition. */
#define BPL_CHECK_ARG(expr)                                                      \
    do {                                                                         \
        if (!(expr))                                                             \
            return bpl__fail(BPL_ERR_INVALID_ARG, "%s: invalid argument: '%s'",  \
                             __func__, #expr);                                   \
    } while (0)

/* Prefix the current message with `prefix: ` (used when propagating). */
void bpl__error_prefix(const char *prefix);

/* ---- names (names.c) ------------------------------------------------------ */

/* 1 if `name` has 1 to max - 1 printable ASCII characters, each, for an
 * `identifier` (a hyperparameter's name), of [A-Za-z0-9_.-]. */
int bpl__valid_name(const char *name, size_t max, int identifier);

/* ---- memory (alloc.c) ---------------------------------------------------- */

void *bpl__malloc(size_t size);
void *bpl__calloc(size_t n, size_t size);
void *bpl__realloc(void *ptr, size_t size);
void bpl__free(void *ptr);
char *bpl__strdup(const char *s);
/* n * size without overflow; returns 0 and leaves *out alone on overflow. */
int bpl__mul_size(size_t n, size_t size, size_t *out);
/* rows x cols floats of a caller's buffer: BPL_ERR_OVERFLOW (naming `caller`
 * and `what`) unless the count and its size in bytes fit a size_t.  Checked
 * before the buffer is read or written: a wrapped count would be a licence to
 * run past it. */
int bpl__check_floats(size_t rows, size_t cols, const char *caller, const char *what,
                      size_t *n_out);
#ifdef BPL_TESTING
/* Test hooks: count allocations; make the k-th one from now fail (0 = never). */
uint64_t bpl__alloc_count(void);
void bpl__alloc_fail_at(uint64_t k);
#endif

/* ---- files (files.c) ------------------------------------------------------ */

/* Open a regular file for reading, following symbolic links, without ever
 * blocking (a FIFO is refused, not opened for good); anything else fails
 * with BPL_ERR_IO naming `caller`, the path and what it is.  *size_out is
 * the file's size when it was opened. */
int bpl__open_regular(const char *path, const char *caller, int *fd_out, uint64_t *size_out);
/* Read until n bytes or the end of the file; *got says how many arrived.
 * Returns 0, or -1 with errno set. */
int bpl__read_fully(int fd, void *dst, size_t n, size_t *got);
/* "a directory", "a FIFO", ... for a stat mode. */
const char *bpl__file_kind(unsigned mode);

/* ---- random numbers (rng.c) ---------------------------------------------- */

typedef struct bpl__rng {
    uint64_t s[4];
} bpl__rng;

void bpl__rng_seed(bpl__rng *rng, uint64_t seed);
uint64_t bpl__rng_next(bpl__rng *rng);
double bpl__rng_uniform(bpl__rng *rng);             /* [0, 1) */
double bpl__rng_normal(bpl__rng *rng);              /* N(0, 1) */
uint64_t bpl__rng_below(bpl__rng *rng, uint64_t n); /* uniform in [0, n), n > 0 */
void bpl__rng_shuffle(bpl__rng *rng, size_t *items, size_t n);
/* n draws from U[lo, hi) with 24-bit resolution. */
void bpl__rng_fill_uniform(bpl__rng *rng, float *dst, size_t n, float lo, float hi);
/* n draws from N(mean, stddev^2), vectorised (float precision). */
void bpl__rng_fill_normal(bpl__rng *rng, float *dst, size_t n, float mean, float stddev);

/* ---- matrix products (linalg.c: the only file that calls BLAS) ----------- */

typedef struct bpl__profile {
    int on;
    double step_seconds;
    double gemm_seconds;
    double gemm_flops;
    uint64_t steps;
} bpl__profile;

/* Row-major C = alpha * op(A) * op(B) + beta * C, op(A) is m x k, op(B) is
 * k x n.  Dimensions are validated by callers to fit an int.  `prof` may be
 * NULL. */
void bpl__gemm(bpl__profile *prof, int trans_a, int trans_b, size_t m, size_t n,
               size_t k, float alpha, const float *a, size_t lda, const float *b,
               size_t ldb, float beta, float *c, size_t ldc);
double bpl__now(void);
/* A warning about a known-slow BLAS configuration, or NULL. */
const char *bpl__blas_warning(void);

/* The BLAS's own thread count (a no-op for the portable kernels). */
void bpl__blas_set_threads(size_t n);

/* ---- the library's threads (thread_pool.c) --------------------------------- */

#define BPL__MAX_THREADS 64
/* One task of an operation cut into n_tasks: task `task` does its fixed
 * slice, whichever thread runs it. */
typedef void (*bpl__task_fn)(void *ctx, size_t task, size_t n_tasks);
/* Set the thread count (at most BPL__MAX_THREADS) and start the workers it
 * needs; BPL_ERR_NOMEM (the count unchanged) if a thread cannot start. */
int bpl__pool_set_threads(size_t n);
/* The thread count set, 1 by default: how many tasks an operation may be
 * cut into. */
size_t bpl__pool_threads(void);
/* Run tasks 0..n_tasks-1 and return when all are done: on the workers and
 * the calling thread, the BLAS single-threaded meanwhile; or one after
 * another on the calling thread when another operation holds the workers. */
void bpl__pool_run(bpl__task_fn fn, void *ctx, size_t n_tasks);

/* ---- BLAS kernel sets and the CPU (blas_kernels.c) ------------------------ */

/* Vector extensions, narrowest first; GENERIC is portable C (no extension). */
enum {
    BPL__ISA_UNKNOWN = 0,
    BPL__ISA_GENERIC,
    BPL__ISA_SSE,
    BPL__ISA_AVX,
    BPL__ISA_AVX2,
    BPL__ISA_AVX512
};
const char *bpl__isa_name(int isa);
/* The widest vector extension of the running CPU. */
int bpl__cpu_isa(void);
/* The extension a BLAS kernel set (OpenBLAS core or BLIS arch name) uses. */
int bpl__kernel_isa(const char *kernels);
/* The warning for `kernels` of `backend` ("openblas", ...) on a CPU with
 * `cpu_isa`, written into buf; NULL when there is nothing known to warn of. */
const char *bpl__blas_advice(const char *backend, const char *kernels, int cpu_isa,
                             char *buf, size_t size);

/* ---- elementwise kernels (activation.c, loss.c, init.c) ------------------ */

int bpl__activation_valid(int activation);
/* rows x cols in place: a = act(a + bias) (bias may be NULL). */
void bpl__activation_forward(int activation, float *a, const float *bias, size_t rows,
                             size_t cols);
/* delta *= act'(.), the derivative expressed through the activation h. */
void bpl__activation_backward(int activation, float *delta, const float *h, size_t n);

int bpl__loss_valid(int loss);
/* Sum over the batch of the per-example loss of outputs h against y. */
double bpl__loss_sum(int loss, int activation, const float *h, const float *y,
                     size_t rows, size_t cols);
/* delta = scale * dLoss/d(pre-activation) for each example. */
void bpl__loss_delta(int loss, int activation, const float *h, const float *y,
                     float *delta, size_t rows, size_t cols, float scale);

int bpl__init_valid(int init);
/* Fill a rows x cols matrix.  Its fans are cols in and rows * receptive
 * out: `receptive` is the kernel area a conv weight's columns cover
 * (bpl__layer_receptive), 1 for a plain matrix.  Returns BPL_OK,
 * BPL_ERR_RANGE (the gain or the values it gives do not fit a float;
 * nothing is written) or BPL_ERR_NOMEM (orthogonal). */
int bpl__init_fill(int init, double gain, float *w, size_t rows, size_t cols,
                   size_t receptive, bpl__rng *rng);
/* Glorot's fan_in + fan_out of such a matrix. */
double bpl__init_fan_sum(size_t rows, size_t cols, size_t receptive);

/* 1 if every one of the n values is finite. */
int bpl__all_finite(const float *v, size_t n);

/* ---- tensors and buffers -------------------------------------------------- */

typedef struct bpl__tensor {
    char name[BPL__NAME_MAX];
    size_t rows, cols;
    int group;      /* BPL_GROUP_* */
    int from_rule;  /* added by the attached rule: removed when it goes */
    int pending;    /* restored by bpl_net_load, waiting for its rule */
    int frozen;     /* skipped by the optimiser */
    float *data;
    /* A trained tensor's gradient and optimiser moments (NULL for
     * BPL_GROUP_NONE): once placed, views into the net's gradient block and
     * its group's optimiser (gradient_block.c); before, storage of its own. */
    float *grad;
    float *m, *v;
    int placed;
} bpl__tensor;

typedef struct bpl__buffer {
    char name[BPL__NAME_MAX];
    size_t cols;
    int from_rule;
    float *data;    /* capacity rows x cols */
} bpl__buffer;

/* ---- layer kinds (kinds/) --------------------------------------------------- */

#define BPL__MAX_DIMS BPL_MAX_DIMS /* a shape: [units], or C x H x W */

/* What a kind can do, and what a rule needs of every layer's kind
 * (bpl_net_set_rule refuses a rule whose needs a layer's kind lacks).  A
 * rule declares its needs in the public bits (enum bpl_needs,
 * bpl_rule_set_needs), each the capability of the same value. */
enum {
    BPL__CAN_FORWARD = BPL_NEEDS_FORWARD,       /* bpl__layer_forward */
    BPL__CAN_SEND_ERROR = BPL_NEEDS_SEND_ERROR, /* bpl__layer_send_error through W or a
                                                   tensor of its shape */
    BPL__CAN_GRADIENTS = BPL_NEEDS_GRADIENTS,   /* bpl__layer_gradients of its parameters */
    BPL__CAN_DENSE = BPL_NEEDS_DENSE,           /* W is a [units][inputs] matrix that a
                                                   rule's own maths (inverses, dendrites)
                                                   may multiply by */
    BPL__CAN_ALL = BPL_NEEDS_ALL,
    /* Not a public need (a rule author has no block to train such an inverse
     * with): send_error through a tensor V of the weight's shape is the
     * transpose of the layer's linear map with V in W's place, from the
     * output space back to the input space, and gradients with err and in
     * swapped (err: rows of the output space, in: an error in the input
     * space), into V's gradient, is that map's gradient in V.  A learned
     * inverse of the weight's shape runs through the kind's own ops:
     * difference target propagation's transposed convolutions.  Kinds
     * without parameters (pooling) lack it.  Far above the public bits, so
     * that these may grow. */
    BPL__CAN_TRANSPOSE = 1u << 16
};

/* A layer kind's operations, in the manner of kann's operator table: each
 * entry does one thing on a batch of rows, given the layer, and the rest of
 * the library reaches a layer's parameters only through them (or by the
 * names the kind gives).  An entry whose capability is missing may be
 * NULL, except forward and output_shape, which every kind has: prediction
 * runs without a rule (BPL__CAN_FORWARD is still a rule's declared need, so
 * that needs read whole). */
/* A layer's hyperparameters beyond its width (`units`): the window of the
 * spatial kinds (kernel_h x kernel_w, stride, zero padding on each side;
 * the pooling kinds' window, pad 0).  Kept on the layer and given to the
 * kind's output_shape; dense layers leave it zero.  One struct for every kind, so that the ops table and the
 * layer stay kind-neutral. */
typedef struct bpl__kind_params {
    size_t kernel_h, kernel_w, stride, pad;
} bpl__kind_params;

/* A kind without parameters (the pooling kinds) names no weight and no
 * bias (both NULL) and has no gradients entry: its layers have nothing to
 * initialise, train, count or measure, and every pass skips them where it
 * would reach a parameter.  Its send_error is the layer's own Jacobian:
 * `m` is NULL (and `transposed` meaningless), since no tensor can stand
 * for a map that has none.  A rule's needs of BPL__CAN_GRADIENTS do not
 * apply to it (bpl__net_check_kinds). */
typedef struct bpl__kind {
    const char *name;   /* "dense" */
    unsigned caps;      /* BPL__CAN_* */
    /* Its parameter tensors' names, made by build in the forward group;
     * NULL for a kind without (pooling): a model file then stores none. */
    const char *weight;
    const char *bias;
    /* The kind reads no bpl__kind_params and its width is its output shape
     * (dense): a model file stores neither for its layers.  Zero for every
     * other kind, whose layer records hold the width and params after the
     * kind's name (lib/model_io.c), so that a kind stores them unless it
     * says it need not. */
    int ignores_params;
    /* send_error reads the layer's input of the current step
     * (bpl__layer_input, net->batch rows): max pooling's Jacobian depends
     * on where each window's maximum is.  The public block refuses it
     * outside a step or for another batch. */
    int send_reads_input;
    /* The output shape of a layer of `units` (and params) over an input of
     * in_dims: *ndim dims into dims (room for BPL__MAX_DIMS).  A pure
     * function, so that a loader can check a layer before anything is
     * allocated.  BPL_OK, or a failure (bpl__fail) saying what does not
     * fit, which the caller prefixes with the layer and its input shape. */
    int (*output_shape)(const size_t *in_dims, size_t in_ndim, size_t units,
                        const bpl__kind_params *params, size_t *dims, size_t *ndim);
    /* The values the parameter tensors of such a layer hold (the weight's
     * and the bias's), for a geometry output_shape accepted; pure too, so
     * that a loader checks the file holds them before building the layer.
     * NULL for a kind without parameters. */
    uint64_t (*param_values)(const size_t *in_dims, size_t in_ndim, size_t units,
                             const bpl__kind_params *params);
    /* Add the layer's parameter tensors (not initialised) and any workspace
     * of its own; its shape and params are set. */
    int (*build)(bpl_layer *layer);
    /* out = act(f(in) + bias), in [batch][input size], out [batch][size]. */
    void (*forward)(bpl_net *net, const bpl_layer *layer, const float *in, size_t batch,
                    int activation, float *out);
    /* out = beta out + alpha (err sent to the input through m): m is the
     * weight or a tensor of its shape, or, `transposed`, of its transpose's;
     * NULL for a kind without parameters (its own Jacobian). */
    void (*send_error)(bpl_net *net, const bpl_layer *layer, const float *m, int transposed,
                       const float *err, size_t batch, float alpha, float beta, float *out);
    /* The parameters' gradients (NULL for a kind without parameters) from
     * the error at the output and the input, written over w_grad (the weight's shape: alpha err^T in) and b_grad
     * (the bias's: the column sums of bias_scale err / bias_divisor, each
     * rule's scaling, rounded as the rule has always rounded it; NULL: no
     * bias gradient).  The destinations are the caller's, so that a tensor
     * of the weight's shape trained through the layer's map gets its
     * gradient from the same op: bpl__layer_gradients gives the layer's own
     * weight and bias, target propagation a transposed inverse's V (with
     * err and in swapped, see BPL__CAN_TRANSPOSE). */
    void (*gradients)(bpl_net *net, bpl_layer *layer, const float *err, const float *in,
                      size_t batch, float alpha, float bias_scale, float bias_divisor,
                      float *w_grad, float *b_grad);
    /* Free what build set up besides tensors and work (layer->accel); NULL
     * for a kind that sets up nothing else. */
    void (*release)(bpl_layer *layer);
} bpl__kind;

extern const bpl__kind bpl__dense_kind;
extern const bpl__kind bpl__conv2d_kind;
extern const bpl__kind bpl__maxpool2d_kind, bpl__avgpool2d_kind;
/* A test hook: 2x2 max pooling's passes on their portable loops even
 * where the CPU has AVX-512 (nonzero), or chosen by the CPU (0). */
void bpl__pool_force_portable(int on);

/* The kinds this library knows, as a model file names them (kinds/kinds.c):
 * the kind called `name`, or NULL; and their names for a message
 * ("dense, conv2d"). */
const bpl__kind *bpl__kind_find(const char *name);
void bpl__kind_names(char *buf, size_t size);
#ifdef BPL_TESTING
/* Test hook: one more kind the loader knows (NULL: none), for test-only kinds. */
void bpl__kind_register_test(const bpl__kind *kind);
#endif

/* Dense matrix products, for the dense kind and for rules whose own maths
 * is dense (inverses, dendritic compartments):
 * out = act(beta out + in M^T + bias), in [batch][cols], M [rows][cols]
 * (bias may be NULL; BPL_ACT_LINEAR for the affine part alone); */
void bpl__dense_map(bpl_net *net, const float *in, const float *m, const float *bias,
                    size_t batch, size_t rows, size_t cols, float beta, int activation,
                    float *out);
/* w_out = alpha post^T pre ([rows][cols]) and, unless b_out is NULL, its
 * column sums of bias_scale post / bias_divisor, post [batch][rows],
 * pre [batch][cols]. */
void bpl__dense_outer(bpl_net *net, const float *post, const float *pre, size_t batch,
                      size_t rows, size_t cols, float alpha, float bias_scale,
                      float bias_divisor, float *w_out, float *b_out);

struct bpl_layer {
    bpl_net *net;
    size_t index;
    const bpl__kind *kind;
    size_t shape[BPL__MAX_DIMS]; /* the output's, set by the kind */
    size_t ndim;
    size_t size; /* elements of one output row: the product of the shape */
    int activation;
    int init;
    size_t units;            /* the width it was added with (dense: its size) */
    bpl__kind_params params; /* the kind's hyperparameters (zero for dense) */
    /* The kind's own scratch (conv2d: a chunk's im2col per thread), sized by
     * build, allocated before the layer first computes
     * (bpl__layer_ensure_work), freed with the layer; NULL until then, and
     * when the kind needs none. */
    float *work;
    size_t work_size;
    void *accel; /* the kind's accelerator state (conv2d: oneDNN's), or NULL */
    bpl__tensor *tensors; /* the kind's parameters and the rule's tensors */
    size_t n_tensors, cap_tensors;
    bpl__buffer *buffers; /* [0] = "activation", [1] = "delta" */
    size_t n_buffers, cap_buffers;
};

/* ---- parameters and rules (rule.c) ---------------------------------------- */

typedef struct bpl__param {
    char name[BPL__NAME_MAX];
    int kind;
    double value, def, lo, hi;
    char *choices; /* "a|b|c" for BPL_PARAM_CHOICE */
    char *doc;
    int fixed; /* shapes the net at attach (bpl_rule_fix_param) */
} bpl__param;

/* Optimiser hyperparameters of one group, in declaration order. */
enum {
    BPL__OPT_KIND = 0,
    BPL__OPT_LR,
    BPL__OPT_MOMENTUM,
    BPL__OPT_BETA1,
    BPL__OPT_BETA2,
    BPL__OPT_EPS,
    BPL__OPT_RHO,
    BPL__OPT_WEIGHT_DECAY,
    BPL__OPT_N
};

typedef struct bpl__optim_config {
    int kind;
    double lr, momentum, beta1, beta2, eps, rho, weight_decay;
} bpl__optim_config;

/* One entry of a rule's recommended training set-up. */
typedef struct bpl__recommendation {
    char key[BPL__NAME_MAX]; /* a hyperparameter or a training choice */
    char *value;
} bpl__recommendation;

struct bpl_rule {
    bpl_rule_vtable vt;
    char name[BPL__RULE_NAME_MAX];
    void *self;
    bpl_net *owner;
    char *description;
    bpl__param *params;
    size_t n_params, cap_params;
    /* Moves whenever a parameter is declared, dropped or set (bpl_rule_set,
     * and so bpl_rule_set_string and a load): a rule keeps the values it
     * resolved into its own settings until it moves, rather than looking
     * every one up by name in every hook (bpl__rule_settings_stale). */
    uint64_t params_generation;
    size_t opt_param[BPL__N_GROUPS][BPL__OPT_N]; /* param indices, if declared */
    int opt_declared[BPL__N_GROUPS];
    int tick[BPL__N_PROPERTIES];
    char *note[BPL__N_PROPERTIES];
    int destroying; /* its destroy hook runs: it cannot be destroyed or attached again */
    int builtin;    /* made by bpl_rule_create_builtin: writes parameters only
                       through the optimiser's checked step */
    unsigned needs; /* BPL__CAN_* every layer's kind must have
                       (bpl_rule_set_needs; BPL__CAN_ALL unless declared) */
    unsigned builtin_needs; /* internal BPL__CAN_* bits beyond the public ones
                               (BPL__CAN_TRANSPOSE) that a built-in rule needs:
                               checked with `needs`, set from its card, not a
                               user's to declare or drop */
    bpl__recommendation *recs; /* in the order they were first set */
    size_t n_recs, cap_recs;
};

bpl__param *bpl__rule_find_param(const bpl_rule *rule, const char *name);
/* Whether the rule's parameters changed since `*seen` (0 before the first
 * look: a rule's generation is never 0); if so, *seen becomes the current
 * generation, and the caller re-reads its settings. */
int bpl__rule_settings_stale(const bpl_rule *rule, uint64_t *seen);
/* The optimiser of a group, or BPL_ERR_STATE if the rule declares none. */
int bpl__rule_optim_config(const bpl_rule *rule, int group, bpl__optim_config *out);
/* Call a hook's result through the error conventions. */
int bpl__hook_result(const bpl_rule *rule, const char *hook, int rc);

/* ---- model bytes (model_io.c) ---------------------------------------------- */

/* The model file's bytes for `net` (format version 2, header included), in
 * a buffer of the library's; `caller` names the public function in errors. */
int bpl__model_encode(const bpl_net *net, const char *caller, unsigned char **data_out,
                      size_t *size_out);
/* A net from a model file's bytes (version 1 or 2); `source` names them in
 * errors (a path, or "(buffer)"). */
int bpl__model_decode(const unsigned char *data, size_t size, const char *caller,
                      const char *source, bpl_net **out);

/* ---- a rule's own state (rule_state.c) ------------------------------------ */

/* What the rule's save_state hook writes, in a buffer of the library's
 * (*data_out NULL and *size_out 0 if the rule has no such hook); a hook
 * that breaks its contract fails with BPL_ERR_CALLBACK. */
int bpl__rule_save_state(const bpl_rule *rule, unsigned char **data_out, size_t *size_out);
/* Give a saved state to the rule's load_state hook (BPL_ERR_STATE if it
 * has none), run as user code of the attach kind. */
int bpl__rule_load_state(bpl_rule *rule, bpl_net *net, const unsigned char *data,
                         size_t size);
/* The built-in rules' state, a step count (or 1 for "initialised"): a
 * format byte and a u64, BPL__COUNT_STATE_SIZE bytes.  Save follows the
 * save_state hook's contract; load fails with BPL_ERR_FORMAT on any other
 * size or format or a count beyond `max`. */
#define BPL__COUNT_STATE_SIZE 9
int bpl__count_state_save(uint64_t count, void *data, size_t capacity, size_t *size_out);
int bpl__count_state_load(const void *data, size_t size, uint64_t max, uint64_t *count_out);
/* The most steps a built-in rule counts (what its state may load), and one
 * step more, saturating there: a count loaded at the limit and trained on
 * must still save a file that loads.  No schedule reaches it by training. */
#define BPL__MAX_RULE_STEPS (BPL__MAX_OPTIM_STEPS - 1)
void bpl__count_step(uint64_t *count);
/* Free a rule that a net owned. */
void bpl__rule_free_owned(bpl_rule *rule);

/* ---- optimisers (optim.c) -------------------------------------------------- */

/* The optimiser of one parameter group: its configuration (the attached
 * rule's hyperparameters of the group, read at every step), the steps it
 * has taken and its moments, laid out as the group's part of the net's
 * gradient block: element i of m, v and grad_block[offset + i] belong to
 * the same parameter. */
typedef struct bpl__optimizer {
    bpl__optim_config cfg;
    uint64_t steps;
    float *m, *v;
    size_t offset, size;
} bpl__optimizer;

/* Step every trained tensor of the groups in `mask` (bit 1 << group), all
 * or nothing: BPL_ERR_NUMERIC (naming `caller`, the tensor and the layer)
 * leaves every parameter, moment and step count as it was. */
int bpl__net_apply(bpl_net *net, unsigned int mask, const char *caller);

/* ---- the gradient block (gradient_block.c) ---------------------------------- */

/* Storage of a tensor's own for its gradient and moments (zeroed), until
 * the next layout places it in the block; release frees it (or forgets a
 * place in the block) and leaves the pointers NULL. */
int bpl__tensor_alloc_training(bpl__tensor *t);
void bpl__tensor_release_training(bpl__tensor *t);
/* Tensors were added, removed or regrouped: lay out again before a step. */
void bpl__net_invalidate_layout(bpl_net *net);
/* Move every trained tensor's gradient and moments into contiguous blocks,
 * if anything changed since the last layout (BPL_ERR_NOMEM leaves things as
 * they were). */
int bpl__net_layout(bpl_net *net);
void bpl__net_free_blocks(bpl_net *net);
/* Lay out, then give every trained gradient as one block of *size_out
 * floats: the forward group's at optim[BPL_GROUP_FORWARD].offset, the
 * feedback group's after it. */
int bpl__net_gradient_block(bpl_net *net, float **block_out, size_t *size_out);

/* ---- user code run by a net (net.c) ------------------------------------------ */

/* Kinds of user code a net calls.  While one runs, the calls it may make on
 * the same net are limited (docs/reliability.md, "Thread safety and
 * re-entrancy"): nothing may change the structure the library is walking. */
enum {
    BPL__IN_ATTACH = 1u << 0,   /* a rule's attach hook */
    BPL__IN_STEP = 1u << 1,     /* a rule's step hook: forward to after_apply */
    BPL__IN_DESTROY = 1u << 2,  /* a rule's destroy hook */
    BPL__IN_PROGRESS = 1u << 3, /* bpl_net_fit's progress callback */
    BPL__IN_LOG = 1u << 4       /* the net's log callback */
};

typedef struct bpl__callout {
    unsigned kinds;   /* BPL__IN_* of every user call in progress on the net */
    const char *what; /* the innermost, for messages */
} bpl__callout;

/* Mark the net as running user code of `kind`; returns the mark to restore. */
bpl__callout bpl__net_call_out(bpl_net *net, unsigned kind, const char *what);
void bpl__net_return(bpl_net *net, bpl__callout previous);
/* BPL_ERR_STATE naming `caller` if user code of a kind outside `allowed` is
 * running on the net, or the net is waiting to be destroyed. */
int bpl__net_check_reentry(const bpl_net *net, unsigned allowed, const char *caller);
/* The last step of every public call that may run user code: a
 * bpl_net_destroy that user code deferred happens once the outermost such
 * call returns.  Passes `rc` through; `net` may be NULL. */
int bpl__net_finish(bpl_net *net, int rc);

/* ---- nets (net.c, layer.c, train.c) ---------------------------------------- */

typedef int (*bpl__reduce_fn)(bpl_net *net, float *block, size_t size, unsigned int groups,
                              void *data);

/* Data-parallel training (parallel.c): this process's share of each batch
 * and the transport's reduction.  size 0 or 1: one process. */
typedef struct bpl__parallel {
    size_t rank, size;
    bpl_reduce_fn reduce;
    void *user_data;
    int own_stream;       /* per-example draws from example_rng, not the net's */
    bpl__rng example_rng;
    double rows;          /* the weight of this process's rows in the step */
    int weight_given;     /* rows set for the next step (else its batch) */
    int reduced;          /* the step in progress has been through reduce */
    int failure_shared;   /* ... and every process knows it failed */
} bpl__parallel;

typedef struct bpl__saved_param {
    char name[BPL__NAME_MAX];
    double value;
} bpl__saved_param;

struct bpl_net {
    size_t n_inputs; /* the product of the input shape */
    size_t in_shape[BPL__MAX_DIMS];
    size_t in_ndim;
    uint64_t seed;
    bpl__rng rng;
    int loss;
    bpl_layer **layers; /* separately allocated: handles stay valid */
    size_t n_layers, cap_layers;
    bpl_rule *rule;

    /* A rule saved in a file but not built in: applied when a rule of this
     * name is attached. */
    char pending_rule[BPL__RULE_NAME_MAX];
    bpl__saved_param *pending_params;
    size_t n_pending_params;
    /* and its state (save_state's bytes), given to load_state */
    int has_pending_state;
    unsigned char *pending_state;
    size_t pending_state_size;

    /* The step in progress. */
    int phase;
    size_t batch;    /* rows of the current batch */
    size_t capacity; /* rows every batch buffer has room for */
    const float *x;  /* the current batch input (borrowed) */
    float *stage_x, *stage_y; /* capacity rows, for datasets */

    bpl__callout callout; /* the user code running now, if any */
    int destroy_deferred;  /* bpl_net_destroy was called from user code */
    /* bpl_net_load is attaching the file's rule: the rule may only adopt
     * tensors the file holds, so what a load allocates stays bounded by the
     * file's size (docs/reliability.md, "Untrusted model files"). */
    int restoring;
    size_t fit_epoch, fit_step, fit_steps; /* bpl_net_fit's position, 0 outside */
    bpl__optimizer optim[BPL__N_GROUPS];
    float *grad_block; /* every trained tensor's gradient (gradient_block.c) */
    size_t grad_size;
    int layout_valid;  /* the block holds every trained tensor */
    bpl__reduce_fn reduce_fn; /* the reduction point's work (step.c), or NULL */
    void *reduce_data;
    bpl__parallel parallel;
    bpl_log_fn log_fn;
    void *log_user_data;
    int blas_checked;
    bpl__profile profile;
};

bpl__tensor *bpl__layer_find_tensor(const bpl_layer *layer, const char *name);
/* A layer's kind (its operations and name) and output shape: *ndim dims
 * into dims (room for BPL__MAX_DIMS). */
const bpl__kind *bpl__layer_kind(const bpl_layer *layer);
void bpl__layer_shape(const bpl_layer *layer, size_t *dims, size_t *ndim);
/* Elements of one row of the layer's input (the layer below's output or the
 * net's input) and the input's shape. */
size_t bpl__layer_input_size(const bpl_layer *layer);
void bpl__layer_input_shape(const bpl_layer *layer, size_t *dims, size_t *ndim);
/* The layer's weight and bias as its kind names them; NULL for a kind
 * without parameters. */
/* Allocate the kind's workspace (work_size floats) if it is not yet:
 * BPL_OK or NOMEM.  bpl__net_reserve and the public blocks call it, so
 * that every op finds it. */
int bpl__layer_ensure_work(bpl_layer *layer);
bpl__tensor *bpl__layer_weight(const bpl_layer *layer);
/* The kernel area (kernel_h * kernel_w) that a rows x cols tensor of the
 * layer counts in its fan_out: a conv layer's tensors of its weight's shape
 * ([C_out][C_in kh kw]: each input reaches C_out kh kw outputs), as PyTorch
 * and Keras count a conv kernel's fans; 1 for every other tensor. */
size_t bpl__layer_receptive(const bpl_layer *layer, size_t rows, size_t cols);
/* What bpl__layer_receptive gives the layer's weight itself: a conv
 * layer's kernel area, 1 for other kinds.  No lookup: for every step. */
size_t bpl__layer_kernel_area(const bpl_layer *layer);
bpl__tensor *bpl__layer_bias(const bpl_layer *layer);
/* The net's input shape: [n_inputs] unless set. */
void bpl__net_input_shape(const bpl_net *net, size_t *dims, size_t *ndim);
/* bpl_net_set_input_shape without its arguments' NULL and re-entry checks
 * (for the loader): ndim (1..BPL_MAX_DIMS) dims > 0 whose product is the
 * input size, before the first layer; the same errors otherwise. */
int bpl__net_set_input_shape(bpl_net *net, const size_t *dims, size_t ndim);
bpl__buffer *bpl__layer_find_buffer(const bpl_layer *layer, const char *name);
void bpl__layer_free(bpl_layer *layer);
/* Create a layer of `kind`: its parameter tensors and standard buffers (no
 * initialisation).  A kind without parameters takes BPL_ACT_LINEAR only. */
int bpl__layer_create(bpl_net *net, const bpl__kind *kind, size_t units,
                      const bpl__kind_params *params, int activation, int init,
                      bpl_layer **out);
/* Add a tensor with no initialisation; used by add_tensor and by loading. */
int bpl__layer_new_tensor(bpl_layer *layer, const char *name, size_t rows, size_t cols,
                          int group, bpl__tensor **out);
/* Remove one tensor from its layer (the loader's conversion of a version-1
 * step counter into its rule's state). */
void bpl__layer_remove_tensor(bpl_layer *layer, bpl__tensor *t);
/* Drop every tensor and buffer added by a rule (or only pending tensors). */
void bpl__layer_remove_rule_items(bpl_layer *layer, int pending_only);

/* Append a layer (checked arguments); `initialise` draws its weight. */
int bpl__net_append_layer(bpl_net *net, const bpl__kind *kind, size_t units,
                          const bpl__kind_params *params, int activation, int init,
                          int initialise);
/* Grow every batch buffer to hold `rows` rows. */
int bpl__net_reserve(bpl_net *net, size_t rows);
/* Check that layers, activations and loss make a trainable net. */
int bpl__net_validate(const bpl_net *net, const char *caller);
void bpl__net_log(bpl_net *net, int level, const char *fmt, ...) BPL__PRINTF(3, 4);
void bpl__net_clear_pending(bpl_net *net);
bpl__profile *bpl__net_profile(bpl_net *net);

/* ---- kind-neutral building blocks (kinds/blocks.c) ------------------------------- */

/* The rows of the layer's input in this step: the batch or the activation below. */
const float *bpl__layer_input(const bpl_layer *layer);
/* out = act(f(in) + bias) by the layer's kind, for any `in` shaped like its input. */
void bpl__layer_forward(bpl_net *net, const bpl_layer *layer, const float *in, size_t batch,
                        int activation, float *out);
/* out = beta out + alpha (err [batch][size] sent to the input through
 * `through`): NULL for the layer's weight (or, for a kind without
 * parameters, its own Jacobian, which takes nothing else), or a tensor of
 * the weight's shape (`transposed`: of its transpose's shape). */
void bpl__layer_send_error(bpl_net *net, const bpl_layer *layer, const float *through,
                           int transposed, const float *err, size_t batch, float alpha,
                           float beta, float *out);
/* The layer's weight and bias gradients from an error at its output and an
 * input (see bpl__kind.gradients for the scaling); nothing for a kind
 * without parameters. */
void bpl__layer_gradients(bpl_net *net, bpl_layer *layer, const float *err, const float *in,
                          size_t batch, float alpha, float bias_scale, float bias_divisor);
/* The same op written into w_grad ([rows][cols] of the weight) and b_grad
 * (NULL: none) instead of the layer's own gradients. */
void bpl__layer_gradients_into(bpl_net *net, bpl_layer *layer, const float *err,
                               const float *in, size_t batch, float alpha, float bias_scale,
                               float bias_divisor, float *w_grad, float *b_grad);
/* BPL_ERR_UNSUPPORTED naming `caller`, the rule, the first layer (index and
 * kind) lacking a capability in `needs` (BPL__CAN_*), and the capability.
 * A kind without parameters lacks no BPL__CAN_GRADIENTS: it has nothing to
 * take gradients of. */
int bpl__net_check_kinds(const bpl_net *net, unsigned needs, const char *rule,
                         const char *caller);

/* The dense forward pass without argument checks (net->batch rows). */
void bpl__forward_dense(bpl_net *net, const float *x);
/* Mean loss of the output activation against y for the current batch. */
double bpl__batch_loss(const bpl_net *net, const float *y);
/* ---- the step driver (step.c) ---------------------------------------------------- */

/* One training step (BPL_PHASE_TRAIN: forward, loss, compute_targets,
 * gradients, reduction, optimisers, after_apply) or diagnostic pass
 * (BPL_PHASE_DIAGNOSE: up to the gradients, from a zeroed gradient block;
 * the generator is given back as it was) of the attached rule on a batch
 * already checked and fitting the workspace.  *loss_out (may be NULL)
 * receives a training step's loss. */
int bpl__net_step(bpl_net *net, const float *x, const float *y, size_t batch, int phase,
                  double *loss_out);
/* The driver's parts, for tests that drive hooks by hand: the rule's
 * forward hook (or the dense pass) on net->batch rows; compute_targets;
 * and the gradients with what follows them in the net's phase (a
 * version-1 rule's update), *groups_out the groups the rule trained. */
int bpl__run_forward(bpl_net *net, const float *x);
int bpl__run_compute_targets(bpl_net *net, const float *y, size_t batch);
int bpl__run_update(bpl_net *net, unsigned int *groups_out);
/* Install the function the reduction point calls (NULL: none) with the
 * gradient block, its size in floats, the groups about to be stepped and
 * `data`; its status fails the step before anything is applied.  For a
 * reduction across processes; tests use it to watch the step. */
void bpl__net_set_reducer(bpl_net *net, bpl__reduce_fn fn, void *data);
/* parallel.c: the transport's reduction of the step's gradient block (with
 * this process's status), and this process's share [*first, *first +
 * *count) of a batch of `rows` rows from `start`, with the weight of its
 * rows in the reduction (0 for the one row a process with an empty share
 * trains). */
int bpl__parallel_reduce(bpl_net *net, int status);
void bpl__parallel_share(const bpl_net *net, size_t start, size_t rows, size_t *first,
                         size_t *count, double *weight);
/* Backprop gradients of every layer's weight and bias (diagnostics). */
void bpl__backprop_gradients(bpl_net *net, const float *y);

/* ---- datasets (dataset.c, idx.c) ------------------------------------------- */

struct bpl_dataset {
    size_t n, n_features, n_targets;
    uint8_t *pixels;  /* [n][n_features] or NULL */
    float *features;  /* [n][n_features] or NULL */
    uint8_t *labels;  /* [n] or NULL */
    float *targets;   /* [n][n_targets] or NULL */
    float scale, offset;
};

/* Gather examples idx[0..count) into x [count][features], y [count][targets]. */
void bpl__dataset_gather(const bpl_dataset *ds, const size_t *idx, size_t count,
                         float *x, float *y);
/* Same for a contiguous range. */
void bpl__dataset_gather_range(const bpl_dataset *ds, size_t start, size_t count,
                               float *x, float *y);

/* ---- built-in rules (rules/) -------------------------------------------------- */

typedef int (*bpl__rule_ctor)(bpl_rule **out);
typedef struct bpl__builtin_rule {
    const bpl_rule_vtable *vtable; /* its name is the rule's */
    bpl__rule_ctor create;         /* makes the rule over that vtable */
} bpl__builtin_rule;

extern const bpl__builtin_rule bpl__builtin_rules[];
extern const size_t bpl__n_builtin_rules;

/* Each is the static const vtable its constructor makes its rule with. */
extern const bpl_rule_vtable bpl__backprop_vtable, bpl__fa_vtable, bpl__dfa_vtable,
    bpl__tp_vtable, bpl__dtp_vtable, bpl__sdtp_vtable, bpl__segregated_vtable,
    bpl__microcircuit_vtable, bpl__usf_vtable, bpl__brsf_vtable, bpl__frsf_vtable;

int bpl__rule_backprop_create(bpl_rule **out);
int bpl__rule_fa_create(bpl_rule **out);
int bpl__rule_dfa_create(bpl_rule **out);
int bpl__rule_tp_create(bpl_rule **out);
int bpl__rule_dtp_create(bpl_rule **out);
int bpl__rule_sdtp_create(bpl_rule **out);
int bpl__rule_segregated_create(bpl_rule **out);
int bpl__rule_microcircuit_create(bpl_rule **out);
int bpl__rule_usf_create(bpl_rule **out);
int bpl__rule_brsf_create(bpl_rule **out);
int bpl__rule_frsf_create(bpl_rule **out);

#endif /* BPL_INTERNAL_H */
