/**
 * @file bioplaus_rule.h
 * @brief The extension API of libbioplaus: writing learning rules.
 *
 * bioplaus.h is everything a program needs to build nets, pick a rule by
 * name, train, predict, save and load.  This header adds what only the
 * author of a learning rule needs, and is the library's extension API:
 *
 *  - the rule contract: the vtable of hooks (bpl_rule_vtable), what each
 *    hook must do and when the step driver calls it, and bpl_rule_create;
 *  - the declarations a rule makes about itself: hyperparameters
 *    (bpl_rule_add_param, bpl_rule_add_optimizer, bpl_rule_fix_param),
 *    its description, property table and recommended set-up;
 *  - the state hooks see: the net's phase and place in bpl_net_fit, each
 *    layer's tensors and their gradients, its batch buffers and its input;
 *  - what a rule needs of every layer's kind (bpl_rule_set_needs);
 *  - the building blocks the built-in rules are made of: on one layer of
 *    any kind, its forward map, sending an error to its input (through
 *    its weight or another tensor of that shape) and its parameter
 *    gradients (bpl_layer_forward, bpl_layer_send_error,
 *    bpl_layer_gradients); on the whole net, the dense forward pass, the
 *    output error, projecting an error down, weight gradients, the
 *    optimiser step of version-1 rules; the matrix product (bpl_gemm), the
 *    activation kernels and the net's random generator.
 *
 * The built-in rules are written with exactly this API.  It includes
 * bioplaus.h, and follows its conventions (status codes, ownership,
 * threads, re-entrancy).
 *
 * Stability.  The extension API is versioned with the library: its
 * functions are exported in the same symbol version node and keep their
 * signatures and meaning for as long as the soname (libbioplaus.so.N)
 * stays.  The vtable only grows at its end: each layout has its
 * BPL_RULE_VTABLE_VERSION, and a rule built against an older layout keeps
 * working unchanged, since bpl_rule_create reads only the fields of the
 * version the vtable declares.  New status codes stay within
 * [BPL_STATUS_MIN, -1], so a hook can pass on any status it gets.  While
 * the version is 0.x, a minor release may change the building blocks (new
 * layer kinds need new ones); it then changes the soname too, and the
 * NEWS file lists what changed.
 *
 * Copyright (c) the libbioplaus authors.  MIT licence, see COPYING.
 */
#ifndef BIOPLAUS_RULE_H
#define BIOPLAUS_RULE_H

#include "bioplaus.h"

/* Version of the bpl_rule_vtable layout this header describes: 2 added
 * gradients, after_apply, save_state and load_state at the end. */
#define BPL_RULE_VTABLE_VERSION 2

#ifdef __cplusplus
extern "C" {
#endif

/* --- BEGIN CDEF ---------------------------------------------------------- */

/** What a net is doing while it calls its rule's hooks. */
enum bpl_phase {
    BPL_PHASE_IDLE = 0,
    BPL_PHASE_TRAIN = 1,     /**< a training step: the optimisers apply the gradients */
    BPL_PHASE_PREDICT = 2,   /**< inference: only forward is called */
    BPL_PHASE_DIAGNOSE = 3   /**< diagnostics: gradients are computed, never applied,
                                and after_apply is not called (a version-1 rule's
                                update must not advance schedules or counters) */
};

/* ========================================================================
 * The net and its layers, seen from a rule's hooks
 * ======================================================================== */

/** The phase the net is in (enum bpl_phase); meant for rule hooks. */
BPL_API int bpl_net_phase(const bpl_net *net);

/** Add a tensor of shape [rows][cols] to the layer, trained in `group` (or
 * BPL_GROUP_NONE for a tensor the optimiser never touches).  A new tensor is
 * filled by `init` with `gain` from the net's generator.  If a tensor of
 * that name already exists with the same shape (e.g. restored by
 * bpl_net_load before the rule was attached), it is kept with its values
 * and its group is set; *created_out (may be NULL) tells which happened.
 * Leaving a group drops the tensor's gradient and optimiser state.  A
 * layer's "weight" and "bias" always stay in BPL_GROUP_FORWARD (freeze them
 * with bpl_layer_set_frozen instead).
 * Names are 1-47 printable ASCII characters; a layer holds at most 64
 * tensors.  While bpl_net_load attaches a file's built-in rule, a rule can
 * only adopt tensors the file holds (a model file pays for what it makes the
 * library allocate).
 * Errors: INVALID_ARG (including another group for "weight" or "bias"),
 * SHAPE (exists with another shape), OVERFLOW (too large, or a 65th
 * tensor), RANGE (the gain, or the values it gives, beyond the float range;
 * nothing is created), FORMAT (a tensor missing from the file being
 * loaded), NOMEM, STATE (called from a hook other than attach, or from a
 * callback of the net). */
BPL_API int bpl_layer_add_tensor(bpl_layer *layer, const char *name,
                                 size_t rows, size_t cols, int group,
                                 int init, double gain, int *created_out);

/** Borrow a tensor's storage for in-place use by a rule.  Valid until the
 * tensor is removed (a new rule is attached) or the net is destroyed.
 * Any of rows_out/cols_out may be NULL.  Errors: INVALID_ARG, NOT_FOUND. */
BPL_API int bpl_layer_tensor(bpl_layer *layer, const char *name, float **data_out,
                             size_t *rows_out, size_t *cols_out);

/** Borrow the gradient buffer of a trained tensor (same shape).  A rule
 * writes the gradient of its loss here (the optimiser steps against it);
 * bpl_net_apply_gradients consumes it.  Errors: INVALID_ARG, NOT_FOUND,
 * STATE (tensor in BPL_GROUP_NONE has no gradient). */
BPL_API int bpl_layer_tensor_grad(bpl_layer *layer, const char *name, float **data_out,
                                  size_t *rows_out, size_t *cols_out);

/** Re-initialise an existing tensor (enum bpl_init, gain).  Normal
 * initialisers draw up to 8.6 standard deviations, uniform ones up to their
 * limit: a gain whose values would not fit a float is refused before
 * anything is written.
 * Errors: INVALID_ARG, NOT_FOUND, RANGE, NOMEM. */
BPL_API int bpl_layer_init_tensor(bpl_layer *layer, const char *name, int init,
                                  double gain);

/** Register a per-example buffer of `cols` floats per row, sized by the net
 * for every batch.  Adding an existing name with the same width is a no-op.
 * One name is special: a rule whose neurons are not the layer's activation
 * fills "derivative" (units wide) with d activity / d pre-activation, and
 * bpl_net_alignment uses it in place of the activation's derivative.
 * Names are 1-47 printable ASCII characters.
 * Errors: INVALID_ARG, SHAPE (exists with another width), NOMEM, STATE
 * (called from a hook other than attach, or from a callback of the net). */
BPL_API int bpl_layer_add_buffer(bpl_layer *layer, const char *name, size_t cols);

/** Borrow a batch buffer: rows = the current batch size.  Valid during the
 * current hook call only.  Errors: INVALID_ARG, NOT_FOUND, STATE (outside
 * of a step). */
BPL_API int bpl_layer_buffer(bpl_layer *layer, const char *name, float **data_out,
                             size_t *rows_out, size_t *cols_out);

/** Borrow the layer's input for the current batch: the batch itself for
 * layer 0, the activation of the layer below otherwise.  Valid during the
 * current hook call only. */
BPL_API int bpl_layer_input(bpl_layer *layer, const float **data_out,
                            size_t *rows_out, size_t *cols_out);

/* ========================================================================
 * Building blocks on one layer, whatever its kind
 *
 * What a layer's kind does with its parameters, for rules that run their
 * own dynamics; the built-in rules are made of these.  Each uses one
 * capability of the layer's kind (enum bpl_needs): a rule declares the
 * ones it uses with bpl_rule_set_needs, so that bpl_net_set_rule refuses a
 * net with a kind that lacks one, and the block itself fails with
 * BPL_ERR_UNSUPPORTED on such a layer.  Rows are examples: `in` is
 * [batch][bpl_layer_inputs(layer)] and `err` [batch][bpl_layer_units(layer)]
 * (the input flattened, whatever its shape).  Outputs must not overlap the
 * inputs; the library keeps no pointer.  They may be called outside a step
 * too (they read the layer's parameters and write the caller's memory, or
 * the layer's gradient buffers), except sending an error through a
 * max-pooling layer (below).
 *
 * Layers without parameters.  A pooling layer (bpl_layer_kind "maxpool2d"
 * or "avgpool2d") has no "weight" and no "bias": bpl_layer_param_count is
 * 0.  Its error goes down through its own Jacobian, never through a
 * tensor (`through` and `m` NULL below); it has no gradients (its kind
 * lacks BPL_NEEDS_GRADIENTS, which a rule's needs do not ask of it), no
 * initialisation and no alignment angle.  A rule that walks the layers
 * skips such a layer wherever it would reach a parameter: it adds no
 * feedback tensor to it and sends its error down with m NULL.
 * ======================================================================== */

/** The layer's forward map on any rows `in` (not only the layer's own
 * input), with `activation` (enum bpl_activation, not necessarily the
 * layer's own: BPL_ACT_LINEAR gives the pre-activation):
 * out [batch][units] = act(f(in) + bias), f(in) = in W^T for a dense layer.
 * Needs BPL_NEEDS_FORWARD.  Errors: INVALID_ARG (NULL, batch 0, unknown
 * activation), OVERFLOW (batch above 2^24 rows, or a buffer too large to
 * address), UNSUPPORTED (the layer's kind has no forward map). */
BPL_API int bpl_layer_forward(bpl_layer *layer, const float *in, size_t batch,
                              int activation, float *out);

/** Send an error at the layer's output to its input:
 * out [batch][inputs] = beta out + alpha (err sent down through M), for a
 * dense layer err M.  M is the layer's tensor `through` (NULL: its
 * weight), of the weight's shape, or, with `transposed` nonzero, of the
 * transpose's shape ([inputs][units] for a dense layer: how feedback
 * alignment stores B there, so that err B^T is sent; its B on other kinds,
 * and the sign-symmetry rules' B everywhere, has the weight's shape).  A
 * layer without parameters sends through its own Jacobian: `through` must
 * be NULL (`transposed` is ignored).  Average pooling spreads each output's
 * error evenly over its window; max pooling sends it to the first maximum
 * (row by row) of its window in the layer's input of the current step
 * (bpl_layer_input), so it is called from a rule hook with the step's
 * batch.  Where windows overlap, the errors add.  With beta 0, `out` is
 * not read.  No activation derivative is applied: follow with
 * bpl_activation_backward for a delta.  Needs BPL_NEEDS_SEND_ERROR.
 * Errors: INVALID_ARG (NULL, batch 0, `through` given for a layer without
 * parameters), NOT_FOUND (no tensor `through`), SHAPE (`through` is not of
 * the weight's shape, or with `transposed` of its transpose's; max
 * pooling: a batch other than the step's), STATE (max pooling outside a
 * step), OVERFLOW, UNSUPPORTED. */
BPL_API int bpl_layer_send_error(bpl_layer *layer, const char *through, int transposed,
                                 const float *err, size_t batch, float alpha, float beta,
                                 float *out);

/** The gradients of the layer's weight and bias from an error at its
 * output and the rows that came in, written over their gradient buffers
 * (bpl_layer_tensor_grad): for a dense layer grad W = alpha err^T in and
 * grad b = the column sums of bias_scale err / bias_divisor.  (1, 1, 1)
 * gives the plain gradient; two factors for the bias let a rule round as
 * its maths says (x / n is not always x (1 / n) in floats).  Needs
 * BPL_NEEDS_GRADIENTS.  Errors: INVALID_ARG (NULL, batch 0, a factor not
 * finite, bias_divisor 0), OVERFLOW, UNSUPPORTED (also for a layer without
 * parameters, which has no gradients). */
BPL_API int bpl_layer_gradients(bpl_layer *layer, const float *err, const float *in,
                                size_t batch, float alpha, float bias_scale,
                                float bias_divisor);

/* ========================================================================
 * Building blocks on the whole net (the standard dense passes)
 * ======================================================================== */

/** The standard dense forward pass: for every layer, activation =
 * act(input * weight^T + bias) (each layer's own forward map, whatever its
 * kind).  Call from a forward hook. */
BPL_API int bpl_net_forward_dense(bpl_net *net, const float *x, size_t batch);

/** Write dLoss/d(pre-activation) of the output layer, divided by the batch
 * size, into the output layer's "delta" buffer (p - y for softmax or sigmoid
 * with cross-entropy).  Call after the forward pass of the same batch. */
BPL_API int bpl_net_output_delta(bpl_net *net, const float *y, size_t batch);

/** Send an error from layer `from` to layer `to`:
 *   delta[to] = (delta[from] * M^T) (.) act'(activation[to])
 * where M is [units(to)][units(from)] (a feedback matrix), or, when
 * `m_is_forward_weight` is nonzero, M is [units(from)][units(to)] and used
 * as is: backpropagation through layer `from`'s own weight (to = from - 1).
 * To the layer just below, the error goes through layer `from`'s kind
 * (bpl_layer_send_error), and `m` NULL means through the layer's own
 * forward map: its weight, or, for a layer without parameters (pooling),
 * its Jacobian, which takes no `m` (`m_is_forward_weight` is then ignored).
 * Errors: INVALID_ARG (NULL net; an `m` for a layer without parameters),
 * SHAPE (`to` >= `from`, or `from` - 1 != `to` with a forward weight or m
 * NULL), STATE (outside a step). */
BPL_API int bpl_net_project_delta(bpl_net *net, size_t from, size_t to,
                                  const float *m, int m_is_forward_weight);

/** Gradients of a layer's "weight" and "bias" from its "delta" buffer and its
 * input: grad_W = delta^T * input, grad_b = column sums of delta.  A layer
 * without parameters (pooling) has none: nothing is done (BPL_OK), so a
 * rule may call it for every layer. */
BPL_API int bpl_net_weight_gradients(bpl_net *net, size_t layer);

/** For version-1 rules (those with an update hook): step every trained
 * tensor of the groups in `group_mask` (bit 1<<group) with its group's
 * optimiser (the rule's hyperparameters, see bpl_rule_add_optimizer).
 * Every gradient is checked for NaN and Inf before any tensor is touched:
 * BPL_ERR_NUMERIC leaves all parameters unchanged.  In BPL_PHASE_DIAGNOSE
 * this does nothing and returns BPL_OK.  A rule with a gradients hook never
 * calls it: the library steps the groups its gradients hook names.
 * Errors: INVALID_ARG, STATE (outside a training step: call it from a rule's
 * hooks; from a rule with a gradients hook; or no optimiser declared for a
 * group), NUMERIC. */
BPL_API int bpl_net_apply_gradients(bpl_net *net, unsigned int group_mask);

/** Row-major C = alpha * op(A) * op(B) + beta * C through the library's
 * BLAS (or its portable kernels), op(A) being m x k and op(B) k x n;
 * trans_a / trans_b nonzero transpose A / B, whose leading dimensions are
 * lda / ldb.  With beta 0, C is not read.  `net` (may be NULL) is the net
 * whose profile counts the product.  Errors: INVALID_ARG (NULL matrices, a
 * leading dimension smaller than its row), OVERFLOW (a dimension beyond
 * what BLAS can index). */
BPL_API int bpl_gemm(bpl_net *net, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                     float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                     float beta, float *c, size_t ldc);

/** In place over a rows x cols matrix: a = act(a + bias), the bias (may be
 * NULL) added to every row; softmax works row by row.  Errors: INVALID_ARG,
 * OVERFLOW (rows x cols floats beyond the address space). */
BPL_API int bpl_activation_forward(int activation, float *a, const float *bias,
                                   size_t rows, size_t cols);

/** delta *= act'(.) over n values, the derivative written through the
 * activation's output h (1 - h^2 for tanh, h (1 - h) for sigmoid, h > 0 for
 * relu, 1 for linear).  Errors: INVALID_ARG (NULL, softmax, whose
 * derivative is not elementwise). */
BPL_API int bpl_activation_backward(int activation, float *delta, const float *h, size_t n);

/** Where bpl_net_fit is: the epoch (from 1), the step within it (from 1) and
 * the steps per epoch.  All three are 0 outside bpl_net_fit (for example
 * during bpl_net_train_batch).  Rules with epoch-based schedules read it. */
BPL_API int bpl_net_progress(const bpl_net *net, size_t *epoch_out, size_t *step_out,
                             size_t *steps_out);

/** Fill `dst` with draws from the net's generator: uniform in [lo, hi),
 * or normal (24-bit Box-Muller, |z| < 5.8).  Every value drawn must fit a
 * float: lo, hi and hi - lo, or |mean| + 5.8 stddev, at most FLT_MAX.
 * Errors: INVALID_ARG, RANGE (nothing is written). */
BPL_API int bpl_net_random_uniform(bpl_net *net, float *dst, size_t n,
                                   double lo, double hi);
BPL_API int bpl_net_random_normal(bpl_net *net, float *dst, size_t n,
                                  double mean, double stddev);

/** The same draws for what belongs to this process's examples (noise per
 * example and unit, spikes): from the net's generator, or, while a
 * data-parallel transport trains the net (bpl_net_set_parallel), from a
 * stream of this process's own.  A rule draws with bpl_net_random_* what
 * every process must draw alike (once per batch for the whole net, e.g.
 * brsf's feedback magnitudes) and with these what depends on its rows, so
 * that processes with different rows stay in step.  Errors as above. */
BPL_API int bpl_net_example_random_uniform(bpl_net *net, float *dst, size_t n,
                                           double lo, double hi);
BPL_API int bpl_net_example_random_normal(bpl_net *net, float *dst, size_t n,
                                          double mean, double stddev);

/* ========================================================================
 * The rule contract
 *
 * A rule is a vtable of hooks that see the whole net and the whole batch.
 * Built-in rules are made with exactly this vtable.  One step driver runs
 * them, for bpl_net_train_batch, every step of bpl_net_fit and
 * bpl_net_alignment alike:
 *
 *   1. forward(x)          the rule's dynamics; the output layer's
 *                          "activation" is the prediction the loss is
 *                          taken of
 *   2. compute_targets(y)  errors, targets or second-phase states
 *   3. gradients(&groups)  the gradients of the trained tensors, into their
 *                          gradient buffers (bpl_layer_tensor_grad), and
 *                          the groups to train this step
 *   4. the library steps the optimiser of each of those groups, all or
 *      nothing (a non-finite gradient or result fails the step with
 *      BPL_ERR_NUMERIC and changes no parameter)
 *   5. after_apply()       what the rule does once the step stands (keep a
 *                          tensor in step with the new weights, count the
 *                          step)
 *
 * bpl_net_alignment runs 1 to 3 only (in BPL_PHASE_DIAGNOSE): it never
 * applies and never calls after_apply, and restores the net's random
 * generator afterwards, so a rule needs no case for diagnostics: whatever
 * its hooks change before after_apply must be what a step that fails at
 * 4 may leave changed.  Inference calls forward only (BPL_PHASE_PREDICT).
 *
 * Version 1 rules give update() instead of gradients() and after_apply():
 * it computes the gradients and calls bpl_net_apply_gradients itself, which
 * does nothing in BPL_PHASE_DIAGNOSE.  Such rules keep working unchanged.
 *
 * Each hook returns 0 on success, a status in [BPL_STATUS_MIN, -1] to fail
 * with that status (passed on unchanged, whether this library knows it or
 * not), or any other value (a positive one, or one below BPL_STATUS_MIN)
 * to fail with BPL_ERR_CALLBACK.  Hooks use the building blocks above;
 * what else they may call on their net is listed under "Re-entrancy" at
 * the top of bioplaus.h.
 * ======================================================================== */

typedef struct bpl_rule_vtable {
    unsigned int version;  /**< set by bpl_rule_vtable_init */
    unsigned int flags;    /**< reserved, must be 0 */
    const char *name;      /**< required; copied by bpl_rule_create */
    /** optional: per-net set-up (add tensors and buffers).  Called once by
     * bpl_net_set_rule. */
    int (*attach)(void *self, bpl_net *net);
    /** required: forward dynamics; leave the output in the output layer's
     * "activation" buffer (predictions are read from there). */
    int (*forward)(void *self, bpl_net *net, const float *x, size_t batch);
    /** required: errors, targets or second-phase states from y [batch][outputs] */
    int (*compute_targets)(void *self, bpl_net *net, const float *y, size_t batch);
    /** version 1's step: gradients, then bpl_net_apply_gradients.  A rule
     * gives either update or gradients, never both. */
    int (*update)(void *self, bpl_net *net);
    /** optional: release `self` when the rule is destroyed */
    void (*destroy)(void *self);

    /* ---- version 2 -------------------------------------------------------- */

    /** Write the gradient of every tensor the rule trains this step into its
     * gradient buffer, and leave in *groups the groups (bit 1 << group) the
     * library is to step.  *groups arrives holding every group the rule
     * has an optimiser for (bpl_rule_add_optimizer); a rule with a schedule
     * clears the groups that rest.  Never steps anything itself. */
    int (*gradients)(void *self, bpl_net *net, unsigned int *groups);
    /** optional (with gradients): called once the optimisers have stepped,
     * in training only. */
    int (*after_apply)(void *self, bpl_net *net);
    /** optional, with load_state: the rule's own state that is neither a
     * tensor nor a hyperparameter (a step count, a flag), saved with the
     * net (bpl_net_save, bpl_net_save_to_buffer) as an opaque blob.  Write
     * it into `data` (`capacity` bytes) and its length into *size_out.
     * Called first with data NULL and capacity 0 to learn the size, then
     * with a buffer of that size, and must then write exactly that many
     * bytes (at most 2^30).  Use a portable encoding (fixed widths,
     * little-endian) and begin with a format byte of your own, so that a
     * later version of the rule can still read what this one wrote: the
     * bytes travel in model files and between machines. */
    int (*save_state)(void *self, void *data, size_t capacity, size_t *size_out);
    /** optional, with save_state: restore what save_state wrote, when a
     * saved net gets its rule back (bpl_net_load, bpl_net_load_from_buffer
     * for a built-in rule; bpl_net_set_rule with a rule of the saved name
     * for another).  Called BEFORE the attach hook, so that attach knows
     * it continues a saved net (and keeps what it would initialise
     * afresh); it may read the net's layers but not its rule's tensors,
     * which attach adopts.  A rule attached afresh gets no call.  The
     * bytes come from the file, which may be hostile: check the size and
     * every value, and fail with BPL_ERR_FORMAT rather than trust them.
     * If attaching fails afterwards, the rule keeps what it loaded. */
    int (*load_state)(void *self, bpl_net *net, const void *data, size_t size);
    /* later versions only append fields here */
} bpl_rule_vtable;

/** Zero a vtable of the given version and set its version: only the size
 * that version's struct had is written, so a caller built against an older
 * header (a smaller struct) may pass its own.  For bindings that cannot use
 * macros.  Errors: INVALID_ARG, VERSION (version not supported by this
 * library). */
BPL_API int bpl_rule_vtable_init(bpl_rule_vtable *vtable, unsigned int version);

/** Create a rule from a vtable (copied, with its name) and a `self` pointer
 * passed to every hook.  Only the fields of the vtable's version are read
 * (the hooks of later versions count as NULL).  The rule starts with the
 * forward optimiser's hyperparameters declared (see bpl_rule_add_optimizer:
 * "optimizer", "lr", ...; Adam, lr 1e-3).  If creation fails, `destroy` is
 * not called.  The name (1-63 printable ASCII characters) is saved with the
 * net.
 * Errors: INVALID_ARG (missing or unprintable name; forward,
 * compute_targets, or one of update and gradients missing; both update and
 * gradients, after_apply without gradients, only one of save_state and
 * load_state; flags != 0), VERSION, NOMEM. */
BPL_API int bpl_rule_create(bpl_rule **out, const bpl_rule_vtable *vtable, void *self);

/* --- what a rule declares about itself ---------------------------------- */

/** What a rule needs of every layer's kind (bits, for bpl_rule_set_needs).
 * Dense layers provide all of them; a kind that lacks one cannot be
 * trained by a rule that needs it.  Convolutions lack BPL_NEEDS_DENSE;
 * pooling layers lack it and BPL_NEEDS_GRADIENTS, which is not asked of
 * them: they have no parameters to take gradients of. */
enum bpl_needs {
    BPL_NEEDS_FORWARD = 1 << 0,    /**< bpl_layer_forward, bpl_net_forward_dense */
    BPL_NEEDS_SEND_ERROR = 1 << 1, /**< bpl_layer_send_error, and bpl_net_project_delta
                                        to the layer just below */
    BPL_NEEDS_GRADIENTS = 1 << 2,  /**< bpl_layer_gradients, bpl_net_weight_gradients */
    BPL_NEEDS_DENSE = 1 << 3,      /**< the weight is a [units][inputs] matrix that the
                                        rule multiplies by itself (bpl_gemm on
                                        "weight": inverses, dendritic compartments) */
    BPL_NEEDS_ALL = (1 << 4) - 1   /**< what a rule that declares nothing needs */
};

/** Declare what the rule needs of every layer's kind (enum bpl_needs bits
 * ORed), replacing what it declared before.  A rule made by
 * bpl_rule_create starts needing BPL_NEEDS_ALL: a rule written before
 * layer kinds existed may rely on every one.  The built-in rules declare
 * theirs the same way.  bpl_net_set_rule then refuses, with
 * BPL_ERR_UNSUPPORTED naming the layer, its kind and the capability, a net
 * with a layer whose kind lacks one.  Before the rule is attached.
 * Errors: INVALID_ARG (NULL, a bit outside BPL_NEEDS_ALL), STATE (the rule
 * is attached). */
BPL_API int bpl_rule_set_needs(bpl_rule *rule, unsigned int needs);

/** What the rule needs of every layer's kind (enum bpl_needs bits); 0 for
 * NULL. */
BPL_API unsigned int bpl_rule_needs(const bpl_rule *rule);

/** Set the rule's one-line description (copied). */
BPL_API int bpl_rule_set_description(bpl_rule *rule, const char *text);

/** Declare a hyperparameter (for rule authors, before the rule is attached).
 * `choices` is "a|b|c" for BPL_PARAM_CHOICE (lo/hi are then ignored) and
 * NULL otherwise.  Errors: INVALID_ARG (bad kind, name or default out of
 * bounds, duplicate name), NOMEM. */
BPL_API int bpl_rule_add_param(bpl_rule *rule, const char *name, int kind,
                               double default_value, double lo, double hi,
                               const char *choices, const char *doc);

/** Declare the optimiser hyperparameters of a parameter group, each name
 * prefixed with `prefix` ("" for the forward group, "fb_" for feedback):
 * optimizer (choice sgd|momentum|rmsprop|adam), lr, momentum, beta1, beta2,
 * eps, rho (RMSprop decay), weight_decay.  Re-declaring a group updates its
 * defaults.  Errors: INVALID_ARG, NOMEM. */
BPL_API int bpl_rule_add_optimizer(bpl_rule *rule, int group, const char *prefix,
                                   int default_optimizer, double default_lr);

/** Mark a declared hyperparameter as one that shapes the net: the attach
 * hook reads it to decide which tensors and buffers to add and how large
 * (a mode, a feature count, which weights learn), so once the rule is
 * attached bpl_rule_set refuses another value with BPL_ERR_STATE.  Call it
 * after bpl_rule_add_param, before the rule is attached.  The built-in
 * rules mark theirs (e.g. "mode", "feedback", "auxiliary_outputs").
 * Errors: INVALID_ARG, NOT_FOUND (no such hyperparameter), STATE (the rule
 * is attached). */
BPL_API int bpl_rule_fix_param(bpl_rule *rule, const char *name);

/** Set (value copied) or, with value NULL, remove an entry of the
 * recommended set-up.  The value is checked: a hyperparameter's must be one
 * bpl_rule_set_string would accept (declare the hyperparameter first); a
 * training choice's must have the form above.  Errors: INVALID_ARG (NULL,
 * malformed value), RANGE (a hyperparameter's value outside its bounds),
 * NOT_FOUND (neither a hyperparameter of the rule nor a training choice),
 * NOMEM. */
BPL_API int bpl_rule_set_recommendation(bpl_rule *rule, const char *key,
                                        const char *value);

/** Set one of the seven properties (enum bpl_property) to an enum bpl_tick,
 * with an optional short note (copied; NULL for none).  User rules start
 * with every property BPL_TICK_UNKNOWN.  Errors: INVALID_ARG. */
BPL_API int bpl_rule_set_property(bpl_rule *rule, int property, int tick,
                                  const char *note);

/* ========================================================================
 * Data-parallel transports
 *
 * What a library that trains one net on several processes (libbioplaus-mpi)
 * plugs into.  Every process holds the whole net and trains its share of
 * each batch; the step driver hands the gradients of every trained tensor,
 * as one contiguous block, to the transport's reduction before any
 * optimiser steps, so that every process then takes the same step.
 * ======================================================================== */

/** A transport's reduction, called once per training step on every
 * process, between the gradients and the optimisers.  `block` holds the `n`
 * gradients of this process's `rows` (their mean over those rows); `rows`
 * is 0 for a process whose share of a short batch is empty (it trained one
 * row that must not count).  The function replaces block by the
 * rows-weighted mean over every process and returns BPL_OK.
 *
 * It is also called, with status != BPL_OK, when this process's step failed
 * before its reduction (block then holds nothing useful), so that no
 * process waits for one that will not come; its result is then ignored and
 * the step returns `status` with the failure's own message.  When another
 * process failed, it returns that failure's code with bpl_error_set (the
 * message should name the process), and this process's step fails too,
 * its parameters unchanged. */
typedef int (*bpl_reduce_fn)(void *user_data, float *block, size_t n, double rows, int status);

/** Train `net` as process `rank` of `size` (rank < size): from now on
 * bpl_net_fit trains, of each batch of the whole run, only rows
 * [start + len*rank/size, start + len*(rank+1)/size), all processes having
 * drawn the same order; every training step goes through `reduce` (with
 * `user_data`); draws per example come from a stream seeded with
 * `example_seed` (bpl_net_example_random_*), while bpl_net_random_* stays
 * the net's generator, which every process keeps in step.  size 1 with
 * reduce NULL goes back to one process.  The transport keeps the processes'
 * nets identical: the same seed, layers, rule and saved state.  Errors:
 * INVALID_ARG (NULL net; rank >= size; size > 1 without reduce), STATE
 * (called from a hook or callback of the net). */
BPL_API int bpl_net_set_parallel(bpl_net *net, size_t rank, size_t size, bpl_reduce_fn reduce,
                                 void *user_data, uint64_t example_seed);

/** The number of floats in the net's gradient block (what `reduce` gets),
 * laying it out if tensors were added since: 0 before a rule is attached.
 * Errors: INVALID_ARG, STATE (called from a hook or callback), NOMEM. */
BPL_API int bpl_net_gradient_size(bpl_net *net, size_t *n_out);

/** A 64-bit hash (FNV-1a) of every tensor's bits, the rule's hyperparameters
 * and the net's generator: equal on processes whose nets are in step, and,
 * in practice, different otherwise.  Errors: INVALID_ARG. */
BPL_API int bpl_net_state_hash(const bpl_net *net, uint64_t *hash_out);

/* --- END CDEF ------------------------------------------------------------ */

#ifdef __cplusplus
}
#endif

#endif /* BIOPLAUS_RULE_H */
