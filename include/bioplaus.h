/**
 * @file bioplaus.h
 * @brief The user API of libbioplaus.
 *
 * libbioplaus trains fully connected neural networks with biologically
 * plausible learning rules behind one stable C API: eight built-in rules
 * (backpropagation as the reference; feedback alignment and direct feedback
 * alignment; target propagation, difference target propagation and its
 * simplified form; segregated dendrites; dendritic cortical microcircuits)
 * and rules written by the caller through hooks.  C99 and C++ clean; the
 * region between the BEGIN CDEF and END CDEF lines is plain C that cffi can
 * cdef() once the BPL_API token is removed.
 *
 * This header is all a program needs to build nets, choose rules by name,
 * train, predict, diagnose, save and load.  Writing a rule takes the
 * extension API as well: bioplaus_rule.h, which includes this header.
 *
 * Conventions used throughout:
 *
 *  - Every call that can fail returns an int status: BPL_OK (0) or one of the
 *    negative BPL_ERR_* codes below, whose values never change.  After a
 *    failure, bpl_last_error_message() on the same thread names the function
 *    and what was wrong.  The message is meaningful only right after a call
 *    that returned an error.
 *  - Objects returned through a `**out` parameter belong to the caller and are
 *    freed with their own bpl_*_destroy(), which accepts NULL.  On failure
 *    `*out` is set to NULL.
 *  - Borrowing and copying show in the name.  A function named for what it
 *    gives (bpl_net_layer, bpl_rule_name, bpl_rule_property's note, and in
 *    bioplaus_rule.h bpl_layer_tensor, bpl_layer_buffer) hands out a pointer
 *    borrowed from its owner: never freed by the caller, valid as long as
 *    its documentation says and never longer than the owner.  `get` in a
 *    name (bpl_layer_get_tensor, bpl_dataset_get, bpl_rule_get) copies into
 *    memory the caller provides, `set` copies from it (bpl_layer_set_tensor,
 *    bpl_rule_set_string): once the call returns, the library holds no
 *    pointer into caller memory, strings included.  The one exception is
 *    the `user_data` or `self` pointer of a callback or rule, which is kept
 *    as given and passed back.
 *  - A number of things that can be listed ends in `_count`
 *    (bpl_net_layer_count, bpl_layer_tensor_count, bpl_rule_param_count,
 *    bpl_dataset_example_count); a width is named for what it measures
 *    (bpl_net_inputs, bpl_layer_units, bpl_dataset_features).
 *  - Tensors are float32, row-major.  A batch is [batch][features]; a dense
 *    layer's weight is [units][inputs] and its bias [1][units].
 *  - The library never prints, never exits and never aborts on caller input.
 *
 * Threads: there is no global mutable state.  A net (with its layers and
 * rule) and a dataset are not internally synchronised: use each from one
 * thread at a time; different nets may be trained concurrently.  The
 * functions that take no object (bpl_strerror, bpl_version_*, bpl_blas_*,
 * bpl_rule_builtin_*, name lookups) are safe from any thread, except
 * bpl_set_thread_count, which changes the BLAS library's process-wide setting.
 *
 * Re-entrancy: while the library runs user code of a net (a hook of its
 * rule, bpl_net_fit's progress callback, its log callback), the library is
 * walking that net.  The user code may read the net and write tensor values
 * in place, but on the same net these calls fail with BPL_ERR_STATE:
 *  - from every hook and callback: bpl_net_add_dense (and every other
 *    bpl_net_add_* call), bpl_net_set_loss, bpl_net_set_rule,
 *    bpl_net_set_log_fn, bpl_net_train_batch, bpl_net_fit;
 *  - from every hook and the log callback, but not from the progress
 *    callback (between steps): bpl_net_predict, bpl_net_evaluate,
 *    bpl_net_alignment, bpl_net_set_profiling;
 *  - from everything but the attach hook: bpl_layer_add_tensor,
 *    bpl_layer_add_buffer.
 * bpl_net_destroy from such user code is deferred (see bpl_net_destroy).  A
 * dataset given to bpl_net_fit or bpl_net_evaluate must not be destroyed
 * before the call returns.
 *
 * Copyright (c) the libbioplaus authors.  MIT licence, see COPYING.
 */
#ifndef BIOPLAUS_H
#define BIOPLAUS_H

#include <stddef.h>
#include <stdint.h>

/* Version: the single source of truth, read by the build. */
#define BPL_VERSION_MAJOR 0
#define BPL_VERSION_MINOR 2
#define BPL_VERSION_PATCH 0
#define BPL_VERSION_NUMBER \
    (BPL_VERSION_MAJOR * 10000 + BPL_VERSION_MINOR * 100 + BPL_VERSION_PATCH)
#define BPL_VERSION_STRING "0.2.0"

#ifndef BPL_API
#if defined(_WIN32) && !defined(BPL_STATIC)
#ifdef BPL_BUILDING_LIBRARY
#define BPL_API __declspec(dllexport)
#else
#define BPL_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define BPL_API __attribute__((visibility("default")))
#else
#define BPL_API
#endif
#endif

/* The most dimensions a shape has (bpl_net_set_input_shape): C x H x W
 * images need 3. */
#define BPL_MAX_DIMS 4

#ifdef __cplusplus
extern "C" {
#endif

/* --- BEGIN CDEF ---------------------------------------------------------- */

/* ========================================================================
 * Status codes.  Values are part of the ABI: never renumbered or reused.
 * ======================================================================== */
enum bpl_status {
    BPL_OK = 0,
    BPL_ERR_INVALID_ARG = -1,  /**< NULL where not allowed, bad enum, zero size */
    BPL_ERR_NOMEM = -2,        /**< memory allocation failed */
    BPL_ERR_SHAPE = -3,        /**< buffer length or dimension mismatch */
    BPL_ERR_STATE = -4,        /**< call not valid in the object's state */
    BPL_ERR_UNSUPPORTED = -5,  /**< not supported by this build, or by a layer's kind */
    BPL_ERR_VERSION = -6,      /**< struct or file version not understood */
    BPL_ERR_IO = -7,           /**< reading or writing a file failed */
    BPL_ERR_FORMAT = -8,       /**< corrupt, truncated or foreign file */
    BPL_ERR_NUMERIC = -9,      /**< NaN or Inf in inputs or during training */
    BPL_ERR_CALLBACK = -10,    /**< a user callback reported failure */
    BPL_ERR_NOT_FOUND = -11,   /**< unknown name (rule, parameter, tensor) */
    BPL_ERR_OVERFLOW = -12,    /**< size too large to represent */
    BPL_ERR_RANGE = -13,       /**< value outside its documented bounds */
    BPL_ERR_INTERNAL = -99,    /**< a bug in libbioplaus: please report it */
    /** Not a status: the lowest value a status will ever have.  Every status
     * the library defines, now or in a later version, lies in
     * [BPL_STATUS_MIN, -1], so a rule hook that returns one of them (a status
     * it got from the library, or one it chose) fails with exactly that
     * status, even if the library it runs in is older than the status. */
    BPL_STATUS_MIN = -1000
};

/** Activation functions of dense layers. */
enum bpl_activation {
    BPL_ACT_LINEAR = 0,
    BPL_ACT_RELU = 1,
    BPL_ACT_TANH = 2,
    BPL_ACT_SIGMOID = 3,
    BPL_ACT_SOFTMAX = 4  /**< output layer only */
};

/** Tensor initialisers.  For a [rows][cols] matrix, fan_in = cols and
 * fan_out = rows, except that a conv layer's weight [C_out][C_in kh kw],
 * and any tensor of that shape on the layer, has fan_out = C_out kh kw
 * (the kernel's area counted on both sides, as PyTorch and Keras count
 * it); `gain` multiplies the scale given here. */
enum bpl_init {
    BPL_INIT_GLOROT_UNIFORM = 0, /**< U(+-gain*sqrt(6/(fan_in+fan_out))) */
    BPL_INIT_GLOROT_NORMAL = 1,  /**< N(0, gain^2 * 2/(fan_in+fan_out)) */
    BPL_INIT_HE_UNIFORM = 2,     /**< U(+-gain*sqrt(6/fan_in)) */
    BPL_INIT_HE_NORMAL = 3,      /**< N(0, gain^2 * 2/fan_in) */
    BPL_INIT_ORTHOGONAL = 4,     /**< gain * random semi-orthogonal matrix */
    BPL_INIT_ZERO = 5,           /**< all zeros */
    BPL_INIT_UNIFORM = 6,        /**< U(-gain, +gain) */
    BPL_INIT_NORMAL = 7,         /**< N(0, gain^2) */
    BPL_INIT_CONSTANT = 8        /**< every element = gain */
};

/** Loss of the output layer, averaged over the batch. */
enum bpl_loss {
    /** -sum_j y_j log p_j with a softmax output; the binary form
     * -sum_j [y_j log p_j + (1-y_j) log(1-p_j)] with a sigmoid output. */
    BPL_LOSS_CROSS_ENTROPY = 1,
    /** 1/2 sum_j (h_j - y_j)^2, any output activation. */
    BPL_LOSS_MSE = 2
};

/** Optimisers, selected per parameter group through rule hyperparameters. */
enum bpl_optimizer {
    BPL_OPT_SGD = 0,
    BPL_OPT_MOMENTUM = 1,
    BPL_OPT_RMSPROP = 2,
    BPL_OPT_ADAM = 3
};

/** Parameter groups: each trains with its own optimiser and learning rate. */
enum bpl_group {
    BPL_GROUP_NONE = -1,    /**< not trained by the optimiser (fixed, or set by the rule) */
    BPL_GROUP_FORWARD = 0,  /**< forward weights and biases */
    BPL_GROUP_FEEDBACK = 1  /**< learned feedback pathway (inverses, top-down) */
};

/** Kinds of rule hyperparameter.  All values travel as double. */
enum bpl_param_kind {
    BPL_PARAM_REAL = 0,
    BPL_PARAM_INT = 1,    /**< integral values only */
    BPL_PARAM_BOOL = 2,   /**< 0 or 1 */
    BPL_PARAM_CHOICE = 3  /**< index into a '|'-separated list of names */
};

/** The seven properties of the review's comparison table. */
enum bpl_property {
    BPL_PROP_EXACT_GRADIENTS = 0,
    BPL_PROP_NO_WEIGHT_TRANSPORT = 1,
    BPL_PROP_NO_SEPARATE_PATHWAYS = 2,
    BPL_PROP_DENDRITIC_INTEGRATION = 3,
    BPL_PROP_SEPARATE_WEIGHTS_LEARNED = 4,
    BPL_PROP_LINEAR_STABILIZATION = 5,
    BPL_PROP_EXPLICIT_ERROR = 6
};

/** Values of a property. */
enum bpl_tick {
    BPL_TICK_NO = 0,
    BPL_TICK_YES = 1,
    BPL_TICK_PARTIAL = 2,        /**< holds only in part; the note says where */
    BPL_TICK_NOT_APPLICABLE = 3,
    BPL_TICK_UNKNOWN = 4         /**< not declared (the default for user rules) */
};

/** Events reported to a progress callback by bpl_net_fit. */
enum bpl_event {
    BPL_EVENT_BATCH = 1,  /**< after each training step */
    BPL_EVENT_EPOCH = 2   /**< after each epoch */
};

/** Log levels of messages sent to a net's log callback. */
enum bpl_log_level {
    BPL_LOG_ERROR = 1,
    BPL_LOG_WARNING = 2,
    BPL_LOG_INFO = 3
};

/** Which file of the standard MNIST (or Fashion-MNIST) layout to load. */
enum bpl_mnist_split {
    BPL_MNIST_TRAIN = 0,  /**< train-images-idx3-ubyte, train-labels-idx1-ubyte */
    BPL_MNIST_TEST = 1    /**< t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte */
};

typedef struct bpl_net bpl_net;         /* opaque */
typedef struct bpl_layer bpl_layer;     /* opaque, borrowed from its net */
typedef struct bpl_rule bpl_rule;       /* opaque */
typedef struct bpl_dataset bpl_dataset; /* opaque */

/* ========================================================================
 * Library information and errors
 * ======================================================================== */

/** Runtime version as MAJOR*10000 + MINOR*100 + PATCH; compare with
 * BPL_VERSION_NUMBER to detect a header/library mismatch. */
BPL_API unsigned int bpl_version_number(void);

/** Runtime version string, e.g. "0.2.0".  Static, never NULL. */
BPL_API const char *bpl_version_string(void);

/** A static description of a status code ("shape mismatch"); unknown codes
 * give "unknown status code".  Never NULL. */
BPL_API const char *bpl_strerror(int status);

/** The detail of the most recent failure on the calling thread, e.g.
 * "bpl_net_add_dense: units must be > 0".  Never NULL; "" if no call on this
 * thread has failed yet.  Valid until the next failing call on this thread. */
BPL_API const char *bpl_last_error_message(void);

/** Set the calling thread's error message and return `status`.  Meant for
 * rule callbacks (C or Python) that want to explain why they fail: return
 * bpl_error_set(BPL_ERR_RANGE, "my rule: alpha too large").  The library
 * prefixes the rule name and hook when it propagates the failure.  A NULL
 * message is treated as "". */
BPL_API int bpl_error_set(int status, const char *message);

/** The BLAS the library was built against: "openblas", "blis", "cblas" or
 * "builtin" (the portable fallback kernels).  Static, never NULL. */
BPL_API const char *bpl_blas_backend(void);

/** What the BLAS reports about itself at run time (version, kernel set,
 * threading), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... core=Haswell"; built
 * with oneDNN (-Ddnnl), followed by "; conv: oneDNN 2.6.3 (avx512_core)"
 * or the like, the conv layers' accelerator and the instruction set it
 * runs.  Static storage, never NULL. */
BPL_API const char *bpl_blas_info(void);

/** Set the number of threads (process-wide): the BLAS library's own setting
 * where the backend can be told (OpenBLAS, BLIS), and the library's own
 * threads, which conv layers split each batch between: n fixed slices, so
 * that results depend on n but never on timing (a net training while
 * another holds those threads runs its slices on its own thread, with the
 * same results).  The library starts its n - 1 threads here, never during
 * training; 1, the default, starts none.  n >= 1; values above 64 run 64
 * slices.  Errors: RANGE (n < 1), NOMEM (a thread could not start; the
 * count is unchanged). */
BPL_API int bpl_set_thread_count(int n);

/** The BLAS library's current thread count (1 for the builtin kernels). */
BPL_API int bpl_thread_count(void);

/** Names of enum values, for messages, command lines and bindings.  Static,
 * never NULL ("unknown" for values out of range). */
BPL_API const char *bpl_activation_name(int activation);  /* "tanh" */
BPL_API const char *bpl_init_name(int init);              /* "glorot_uniform" */
BPL_API const char *bpl_loss_name(int loss);              /* "cross_entropy" */
BPL_API const char *bpl_optimizer_name(int optimizer);    /* "adam" */
BPL_API const char *bpl_property_name(int property);      /* "Exact Gradients" */
BPL_API const char *bpl_tick_name(int tick);              /* "yes", "partial" */

/** Parse a name back into its enum value ("relu" -> BPL_ACT_RELU).
 * BPL_ERR_NOT_FOUND for an unknown name. */
BPL_API int bpl_activation_from_name(const char *name, int *activation_out);
BPL_API int bpl_init_from_name(const char *name, int *init_out);
BPL_API int bpl_loss_from_name(const char *name, int *loss_out);
BPL_API int bpl_optimizer_from_name(const char *name, int *optimizer_out);

/* ========================================================================
 * Networks
 * ======================================================================== */

/** Create an empty network with `n_inputs` input features.  `seed` drives
 * every random choice the net makes (initialisation, feedback matrices,
 * shuffling, noise), so the same seed and the same calls give the same
 * results with the same build.  The default loss is cross-entropy.
 * Errors: INVALID_ARG (out NULL, n_inputs 0), NOMEM. */
BPL_API int bpl_net_create(bpl_net **out, size_t n_inputs, uint64_t seed);

/** Describe the net's input as `ndim` dimensions (1..BPL_MAX_DIMS), for
 * example {3, 32, 32} for C x H x W images; their product must equal the
 * input count given to bpl_net_create.  A batch row still holds the input
 * flattened, row-major (C outermost).  The shape is for layer kinds that
 * read it (a dense layer flattens its input); a new net's is [inputs].
 * Only before the first layer is added.
 * Errors: INVALID_ARG (NULL, ndim 0 or above BPL_MAX_DIMS, a dimension 0),
 * OVERFLOW (the product overflows), SHAPE (the product is not
 * bpl_net_inputs), STATE (the net has a layer, or called from a hook or
 * callback of the net). */
BPL_API int bpl_net_set_input_shape(bpl_net *net, const size_t *dims, size_t ndim);

/** Copy the net's input shape into `dims` (room for `capacity` values;
 * BPL_MAX_DIMS always suffices) and its number of dimensions into
 * *ndim_out.  With dims NULL and capacity 0, only *ndim_out is written.
 * Errors: INVALID_ARG (net or ndim_out NULL, dims NULL with a capacity),
 * SHAPE (capacity below the number of dimensions; *ndim_out is written,
 * dims is not). */
BPL_API int bpl_net_get_input_shape(const bpl_net *net, size_t *dims, size_t capacity,
                                    size_t *ndim_out);

/** Destroy a net, its layers and its attached rule.  NULL is a no-op.
 * Called from user code the net is running (a hook of its rule, the
 * progress or log callback), the destruction is deferred until the
 * outermost library call on the net returns, and the net must not be used
 * after that call: bpl_net_fit stops after the current step (and returns
 * what it would have returned), other calls finish, and in between the
 * calls that need an idle net fail with BPL_ERR_STATE. */
BPL_API void bpl_net_destroy(bpl_net *net);

/** Append a dense layer of `units` neurons with the given activation, its
 * weight initialised by `init` (gain 1) from the net's generator and its bias
 * zero.  Layers must be added before a rule is attached.  A softmax layer
 * must end up as the output layer (checked when training starts).
 * Errors: INVALID_ARG (NULL net, units 0, unknown activation or init),
 * STATE (a rule is already attached, or called from a hook or callback of
 * the net), OVERFLOW, NOMEM. */
BPL_API int bpl_net_add_dense(bpl_net *net, size_t units, int activation, int init);

/** Append a 2-D convolution layer: `out_channels` maps, each the
 * correlation of the input's C channels with a kernel_h x kernel_w kernel
 * moved by `stride`, over the input zero-padded by `padding` on every side,
 * plus a bias per output channel, then the activation.  Its input is C x H
 * x W: the net's input shape (bpl_net_set_input_shape) for the first layer,
 * or the previous layer's output shape; its output is out_channels x H_out
 * x W_out with H_out = (H + 2 padding - kernel_h) / stride + 1 (W_out
 * likewise), flattened channel by channel in a batch row, as a dense layer
 * above reads it.  The weight, out_channels x (C kernel_h kernel_w), is
 * initialised by `init` (gain 1) from the net's generator; the bias is zero.
 * Model files store the layer with its window (bpl_net_save).
 * Softmax is refused: it would normalise over every map and position at
 * once; end the net with a dense softmax layer.
 * Errors: INVALID_ARG (NULL net, out_channels, a kernel extent or the
 * stride 0, unknown activation or init, softmax), SHAPE (the input is not
 * C x H x W, or the kernel does not fit the padded input; the message names the layer
 * and both shapes), STATE (a rule is already attached, or called from a
 * hook or callback of the net), OVERFLOW (a size or product too large),
 * NOMEM. */
BPL_API int bpl_net_add_conv2d(bpl_net *net, size_t out_channels, size_t kernel_h,
                               size_t kernel_w, size_t stride, size_t padding, int activation,
                               int init);

/** Append a 2-D max-pooling layer: each channel of its C x H x W input (as
 * for bpl_net_add_conv2d) cut into window x window squares moved by
 * `stride` (0: stride = window, squares side by side), each giving its
 * largest value.  The output is C x H_out x W_out with H_out = (H -
 * window) / stride + 1, rounded down (W_out likewise): rows and columns
 * past the last whole window are not read.  No padding.  A pooling layer
 * has no parameters (bpl_layer_param_count is 0: nothing to initialise,
 * train or measure) and no activation of its own (always BPL_ACT_LINEAR).
 * Its error goes back to the first maximum of each window (row by row),
 * added where windows overlap.  The rules that send errors down through
 * the layers (backprop, fa) and dfa train nets with pooling layers; those
 * that need a dense weight matrix refuse them (bpl_net_set_rule:
 * UNSUPPORTED).  Model files store the layer with its window.
 * Errors: INVALID_ARG (NULL net, window 0), SHAPE (the input is not C x H x
 * W, or the window does not fit it; the message names the layer, its input
 * shape and the window), STATE (a rule is already attached, or called from
 * a hook or callback of the net), NOMEM. */
BPL_API int bpl_net_add_maxpool2d(bpl_net *net, size_t window, size_t stride);

/** Append a 2-D average-pooling layer: as bpl_net_add_maxpool2d, each
 * window giving the mean of its window x window values, and its error
 * spread evenly over the window.  Same shapes, errors and rules. */
BPL_API int bpl_net_add_avgpool2d(bpl_net *net, size_t window, size_t stride);

/** Select the loss (enum bpl_loss).  Cross-entropy needs a softmax or sigmoid
 * output layer; this is checked when training starts.
 * Errors: INVALID_ARG, STATE (called from a hook or callback of the net). */
BPL_API int bpl_net_set_loss(bpl_net *net, int loss);

/** Introspection.  Getters return 0 (or NULL) for a NULL net. */
BPL_API int bpl_net_loss(const bpl_net *net);
BPL_API size_t bpl_net_inputs(const bpl_net *net);
BPL_API size_t bpl_net_outputs(const bpl_net *net);  /* 0 without layers */
BPL_API size_t bpl_net_layer_count(const bpl_net *net);
/** Number of forward parameters (every layer's weight and bias; a pooling
 * layer has none). */
BPL_API size_t bpl_net_param_count(const bpl_net *net);
BPL_API uint64_t bpl_net_seed(const bpl_net *net);
/** The layer at `index` (0 = first hidden layer), borrowed from the net and
 * valid as long as it lives.  NULL if out of range. */
BPL_API bpl_layer *bpl_net_layer(bpl_net *net, size_t index);
/** The attached rule, borrowed; NULL if none. */
BPL_API bpl_rule *bpl_net_rule(bpl_net *net);

/** Attach a rule.  On BPL_OK the net owns the rule (do not destroy it) and
 * any previously attached rule is destroyed; on error the caller keeps it.
 * The rule's attach hook runs now and may add tensors and buffers to the
 * layers.  Errors: INVALID_ARG (NULL, rule already owned by a net or being
 * destroyed), STATE (no layers, or called from a hook or callback of the
 * net), UNSUPPORTED (a layer's kind cannot do what the rule needs; the
 * message names the layer's index and kind, and the net is left as it
 * was), whatever the attach hook returns. */
BPL_API int bpl_net_set_rule(bpl_net *net, bpl_rule *rule);

/** Log callback: receives preformatted messages (no printf-style arguments).
 * The library logs rarely: e.g. a warning when the BLAS runs on slow
 * fallback kernels.  fn NULL switches logging off.
 * Errors: INVALID_ARG, STATE (called from a hook or callback of the net). */
typedef void (*bpl_log_fn)(int level, const char *message, void *user_data);
BPL_API int bpl_net_set_log_fn(bpl_net *net, bpl_log_fn fn, void *user_data);

/* ========================================================================
 * Layers: borrowed handles.  Each layer holds named tensors ("weight"
 * [units][inputs], "bias" [1][units], and whatever its rule adds, e.g.
 * "feedback") and named batch buffers ("activation" and "delta"
 * [batch][units], and whatever its rule adds).
 * ======================================================================== */

BPL_API size_t bpl_layer_index(const bpl_layer *layer);
BPL_API size_t bpl_layer_units(const bpl_layer *layer);
BPL_API size_t bpl_layer_inputs(const bpl_layer *layer);
BPL_API int bpl_layer_activation(const bpl_layer *layer);  /* -1 for NULL */
/** The layer's kind: "dense", "conv2d", "maxpool2d" or "avgpool2d" (static;
 * NULL for NULL). */
BPL_API const char *bpl_layer_kind(const bpl_layer *layer);
/** Elements of the layer's forward parameters, its "weight" and "bias"; 0
 * for a layer without parameters (a pooling layer, which has neither
 * tensor) and for NULL. */
BPL_API size_t bpl_layer_param_count(const bpl_layer *layer);

/** Copy the layer's output shape into `dims` (room for `capacity` values;
 * BPL_MAX_DIMS always suffices) and its number of dimensions into
 * *ndim_out: [units] for a dense layer, {C, H, W} for a spatial one.
 * bpl_layer_units is the product.  With dims NULL and capacity 0, only
 * *ndim_out is written.
 * Errors: INVALID_ARG (layer or ndim_out NULL, dims NULL with a capacity),
 * SHAPE (capacity below the number of dimensions; *ndim_out is written,
 * dims is not). */
BPL_API int bpl_layer_get_shape(const bpl_layer *layer, size_t *dims, size_t capacity,
                                size_t *ndim_out);

/** The window of a spatial layer as it was added: kernel height and width,
 * stride and zero padding on each side (a pooling layer's window is its
 * kernel, its padding 0).  All 0 for a dense layer.  Any pointer may be
 * NULL.  Errors: INVALID_ARG (layer NULL). */
BPL_API int bpl_layer_get_window(const bpl_layer *layer, size_t *kernel_h, size_t *kernel_w,
                                 size_t *stride, size_t *padding);

/** Number of tensors of the layer, and the name of tensor `index` (borrowed;
 * NULL if out of range). */
BPL_API size_t bpl_layer_tensor_count(const bpl_layer *layer);
BPL_API const char *bpl_layer_tensor_name(const bpl_layer *layer, size_t index);

/** Shape and parameter group (enum bpl_group) of a named tensor.  Any out
 * pointer may be NULL.  Errors: INVALID_ARG, NOT_FOUND. */
BPL_API int bpl_layer_tensor_info(const bpl_layer *layer, const char *name,
                                  size_t *rows_out, size_t *cols_out, int *group_out);

/** Copy a named tensor out to `dst` (`len` floats, must equal rows*cols).
 * Errors: INVALID_ARG, NOT_FOUND, SHAPE. */
BPL_API int bpl_layer_get_tensor(const bpl_layer *layer, const char *name,
                                 float *dst, size_t len);

/** Copy `len` floats (rows*cols) into a named tensor, e.g. to set a feedback
 * matrix to the transpose of the weight above.  Non-finite values are
 * rejected before anything is written.
 * Errors: INVALID_ARG, NOT_FOUND, SHAPE, NUMERIC, STATE (inside a step). */
BPL_API int bpl_layer_set_tensor(bpl_layer *layer, const char *name,
                                 const float *src, size_t len);

/** Freeze (nonzero) or unfreeze a trained tensor: the optimiser skips a
 * frozen tensor, whatever its rule computes.  The flag is saved with the net.
 * Errors: INVALID_ARG, NOT_FOUND, STATE (a tensor of BPL_GROUP_NONE is never
 * trained, so it cannot be frozen or unfrozen). */
BPL_API int bpl_layer_set_frozen(bpl_layer *layer, const char *name, int frozen);

/** 1 if the named tensor is frozen, 0 if not or if it does not exist. */
BPL_API int bpl_layer_frozen(const bpl_layer *layer, const char *name);

/* ========================================================================
 * Learning rules
 *
 * A rule is made by name (bpl_rule_create_builtin: the built-in rules) or
 * from a vtable of hooks (bpl_rule_create, bioplaus_rule.h: rules written
 * by the caller).  Either kind is tuned through its hyperparameters below
 * and attached with bpl_net_set_rule.
 * ======================================================================== */

/** Create a built-in rule by name, one of those bpl_rule_builtin_count and
 * bpl_rule_builtin_name list (the README and docs/rules/ describe them).
 * Errors: INVALID_ARG, NOT_FOUND (the message lists the known names), NOMEM. */
BPL_API int bpl_rule_create_builtin(bpl_rule **out, const char *name);

/** Destroy a rule that is not attached to a net.  NULL is a no-op; a rule
 * owned by a net is left alone (the net destroys it), and so is a rule whose
 * destroy hook is running. */
BPL_API void bpl_rule_destroy(bpl_rule *rule);

/** Built-in rules, for listing. */
BPL_API size_t bpl_rule_builtin_count(void);
BPL_API const char *bpl_rule_builtin_name(size_t index);  /* NULL if out of range */

BPL_API const char *bpl_rule_name(const bpl_rule *rule);  /* NULL for NULL */
/** One line on what the rule is and where it comes from ("" if unset). */
BPL_API const char *bpl_rule_description(const bpl_rule *rule);

/* --- hyperparameters: string-keyed doubles, enumerable ------------------ */

/** Set / get a hyperparameter.  Errors: INVALID_ARG (NULL, NaN), NOT_FOUND,
 * RANGE (outside bounds, not integral for INT/BOOL/CHOICE), STATE (a
 * hyperparameter that shapes the net's tensors, such as a rule's mode or its
 * feedback kind, changed after the rule was attached: set it before
 * bpl_net_set_rule).  Setting a value equal to the current one always
 * succeeds. */
BPL_API int bpl_rule_set(bpl_rule *rule, const char *name, double value);
BPL_API int bpl_rule_get(const bpl_rule *rule, const char *name, double *value_out);

/** Set from text: a number, or a choice name for BPL_PARAM_CHOICE
 * ("optimizer", "rmsprop").  Errors as bpl_rule_set, plus INVALID_ARG for
 * text that is neither. */
BPL_API int bpl_rule_set_string(bpl_rule *rule, const char *name, const char *value);

BPL_API size_t bpl_rule_param_count(const bpl_rule *rule);

/** Describe hyperparameter `index`.  Any out pointer may be NULL; strings are
 * borrowed from the rule (choices_out is NULL unless kind is CHOICE).
 * Errors: INVALID_ARG, RANGE (index out of range). */
BPL_API int bpl_rule_param_info(const bpl_rule *rule, size_t index,
                                const char **name_out, int *kind_out,
                                double *default_out, double *lo_out, double *hi_out,
                                const char **choices_out, const char **doc_out);

/* --- the recommended training set-up ------------------------------------ */

/** A rule's recommended training set-up: string key/value pairs a front end
 * (a command line, a script) uses for every choice its user leaves open.
 * Each built-in rule recommends the set-up of its documented runs
 * (docs/results.md).  A key is either
 *
 *  - one of the rule's hyperparameters ("optimizer", "lr", "fb_lr",
 *    "auxiliary_outputs", ...), its value text that bpl_rule_set_string
 *    accepts: front ends apply it with bpl_rule_set_string; or
 *  - a training choice the library does not own, whose value is text:
 *      "hidden"      comma-separated hidden layer sizes ("256,256"; "" or
 *                    "0" for none)
 *      "activation"  the hidden layers' activation (bpl_activation_name)
 *      "init"        the weights' initialiser (bpl_init_name)
 *      "batch_size"  examples per mini-batch
 *      "epochs"      passes over the training set
 *      "lr_decay"    factor in (0, 1] applied to "lr" after every epoch
 *      "ignores"     comma-separated training choices the rule's model fixes,
 *                    each optionally followed by ":NAME", a hyperparameter
 *                    while which (nonzero) it is ignored:
 *                    "activation,init:paper_init".  See bpl_rule_ignores.
 *
 * A key that is a hyperparameter of the rule is always that hyperparameter.
 * Entries keep the order in which they were first set.  Strings are
 * borrowed from the rule and valid until the entry is changed or the rule
 * destroyed. */
BPL_API size_t bpl_rule_recommendation_count(const bpl_rule *rule);  /* 0 for NULL */

/** Entry `index` of the recommended set-up.  Either out pointer may be NULL.
 * Errors: INVALID_ARG, RANGE (index out of range). */
BPL_API int bpl_rule_recommendation(const bpl_rule *rule, size_t index,
                                    const char **key_out, const char **value_out);

/** The recommended value of `key`.  Errors: INVALID_ARG, NOT_FOUND (the rule
 * recommends nothing for it). */
BPL_API int bpl_rule_recommended(const bpl_rule *rule, const char *key,
                                 const char **value_out);

/** Whether the rule, with its current hyperparameters, ignores a training
 * choice ("activation", "init", ...; see "ignores" above): *ignored_out is 1
 * if so, else 0.  Front ends use it to refuse options that would have no
 * effect.  Errors: INVALID_ARG (NULL, not a training choice). */
BPL_API int bpl_rule_ignores(const bpl_rule *rule, const char *choice, int *ignored_out);

/* --- metadata: the review's property table ------------------------------ */

/** Read one of the seven properties (enum bpl_property) as an enum bpl_tick,
 * with an optional short note ("final layer"), borrowed, "" if none.
 * Errors: INVALID_ARG. */
BPL_API int bpl_rule_property(const bpl_rule *rule, int property,
                              int *tick_out, const char **note_out);

/* ========================================================================
 * Datasets: images (uint8, scaled per batch) or float features, with class
 * labels (uint8) or float targets.
 * ======================================================================== */

/** Load an IDX image file (unsigned bytes: magic 0x00000803 for
 * [n][rows][cols] images, or 0x00000802 for [n][features]) and an IDX label
 * file (0x00000801, [n]), each raw or gzip compressed.  Magic numbers, dimensions, counts, label range (< n_classes)
 * and exact file length are validated; the message names the file and the
 * problem.  Both headers are read and checked against each other before
 * either payload, the labels are read before the images, and no file is
 * inflated more than 4 KiB past what its header declares.  A gzip file may
 * hold several members (their data is concatenated, as gzip -d does); a
 * byte after the last member is refused, as a byte after a raw file's data
 * is.  Each path must lead (symbolic links are followed) to a regular file:
 * a FIFO, device, socket or directory is refused at once, without blocking.
 * Pixels are scaled by 1/255 per batch (see bpl_dataset_set_scaling).
 * Errors: INVALID_ARG, IO (cannot open or read, not a regular file), FORMAT,
 * NOMEM. */
BPL_API int bpl_dataset_load_idx(bpl_dataset **out, const char *images_path,
                                 const char *labels_path, size_t n_classes);

/** Load a split of MNIST (or Fashion-MNIST) from `dir`, trying the usual file
 * names with and without ".gz".  10 classes.  Errors as bpl_dataset_load_idx;
 * IO names the files looked for when none is found. */
BPL_API int bpl_dataset_load_mnist(bpl_dataset **out, const char *dir, int split);

/** Build from caller arrays (copied).  `pixels` is [n][n_features] uint8,
 * `labels` [n] with values < n_classes. */
BPL_API int bpl_dataset_from_u8(bpl_dataset **out, const uint8_t *pixels,
                                const uint8_t *labels, size_t n, size_t n_features,
                                size_t n_classes);

/** Build from float arrays (copied): x [n][n_features], y [n][n_targets]
 * (one-hot rows for classification, any values for regression).
 * Non-finite values are rejected (NUMERIC). */
BPL_API int bpl_dataset_from_f32(bpl_dataset **out, const float *x, const float *y,
                                 size_t n, size_t n_features, size_t n_targets);

/** A new dataset holding a copy of examples [start, start + count).
 * Errors: INVALID_ARG, RANGE, NOMEM. */
BPL_API int bpl_dataset_slice(bpl_dataset **out, const bpl_dataset *ds, size_t start,
                              size_t count);

BPL_API void bpl_dataset_destroy(bpl_dataset *ds);  /* NULL is a no-op */

BPL_API size_t bpl_dataset_example_count(const bpl_dataset *ds);
BPL_API size_t bpl_dataset_features(const bpl_dataset *ds);
/** Width of a target row: n_classes for labelled data, n_targets otherwise. */
BPL_API size_t bpl_dataset_targets(const bpl_dataset *ds);

/** uint8 features are presented as pixel*scale + offset (default 1/255, 0).
 * Errors: INVALID_ARG (non-finite), UNSUPPORTED (float dataset). */
BPL_API int bpl_dataset_set_scaling(bpl_dataset *ds, double scale, double offset);

/** Class label of example `index` (argmax of its target row for float data). */
BPL_API int bpl_dataset_label(const bpl_dataset *ds, size_t index, int *label_out);

/** Copy examples [start, start+count) out as floats: x_out [count][features]
 * (scaled), y_out [count][targets] (one-hot for labels).  Either out may be
 * NULL (its length is then ignored).  Errors: INVALID_ARG, RANGE, SHAPE. */
BPL_API int bpl_dataset_get(const bpl_dataset *ds, size_t start, size_t count,
                            float *x_out, size_t x_len, float *y_out, size_t y_len);

/* ========================================================================
 * Training and inference
 * ======================================================================== */

/** One training step of the attached rule on a batch: x [batch][inputs],
 * y [batch][outputs].  loss_out (may be NULL) receives the mean loss of the
 * batch before the update.  Inputs with NaN or Inf, or a non-finite loss or
 * gradient, give BPL_ERR_NUMERIC with the parameters unchanged.
 * Errors: INVALID_ARG, STATE (no rule or layers, invalid net, called from a
 * hook or callback of the net), OVERFLOW (batch x inputs or outputs floats
 * beyond the address space), NUMERIC, whatever a hook returns. */
BPL_API int bpl_net_train_batch(bpl_net *net, const float *x, const float *y,
                                size_t batch, double *loss_out);

/** Progress callback of bpl_net_fit.  `epoch` counts from 1; `step` is the
 * step within the epoch (1..steps) for BPL_EVENT_BATCH and equals `steps`
 * for BPL_EVENT_EPOCH; `loss` is the batch's loss, or the epoch's mean
 * training loss.  Return 0 to go on, nonzero to stop training (bpl_net_fit
 * then returns BPL_OK).  The callback runs between steps: on the same net it
 * may call bpl_net_evaluate, bpl_net_predict, bpl_net_alignment,
 * bpl_net_save, bpl_net_set_profiling, set tensors and hyperparameters (a
 * learning-rate schedule), but not train or change the net's structure
 * (see "Re-entrancy" at the top of this file). */
typedef int (*bpl_progress_fn)(int event, size_t epoch, size_t step, size_t steps,
                               double loss, void *user_data);

/** Train for `epochs` passes over `ds` in shuffled mini-batches of
 * `batch_size` (the last batch of an epoch may be smaller), each epoch's
 * order a fresh permutation drawn from the net's generator.  So fitting
 * e1 + e2 epochs gives bit for bit what fitting e1, saving, loading and
 * fitting e2 gives (same build and thread count): a run can resume from
 * its last completed epoch.  fn may be NULL.
 * Errors: INVALID_ARG, SHAPE (dataset features/targets vs net), STATE (also:
 * called from a hook or callback of the net), NUMERIC (the message names
 * epoch and step), whatever a hook returns. */
BPL_API int bpl_net_fit(bpl_net *net, const bpl_dataset *ds, size_t epochs,
                        size_t batch_size, bpl_progress_fn fn, void *user_data);

/** Outputs (probabilities with a softmax output) for x [batch][inputs] into
 * out [batch][outputs] (`out_len` floats).  Uses the rule's forward hook if
 * a rule is attached, the dense forward pass otherwise.
 *
 * Determinism: the outputs depend on the parameters, the rule and
 * hyperparameters, and x and batch only, never on what the net did before
 * (the batch size it trained with, earlier predictions): the rows go
 * through the net in chunks of 256 whatever the net's history.  So a net
 * predicts bit for bit what it predicted before bpl_net_save, once loaded
 * with bpl_net_load, with the same library build, BLAS, kernel set and
 * thread count.  A row's outputs may differ in the last bits with the
 * batch it is part of (BLAS kernels round products of different sizes
 * differently).  Rules whose inference draws from the net's generator or
 * carries state from one call to the next (the segregated rule's spiking
 * mode, the microcircuit's continuous mode with noise) are outside this
 * guarantee.
 * Errors: INVALID_ARG, SHAPE, STATE (also: called from a hook or the log
 * callback of the net; the progress callback may call it), OVERFLOW (batch x
 * inputs or outputs floats beyond the address space), NUMERIC (non-finite
 * input). */
BPL_API int bpl_net_predict(bpl_net *net, const float *x, size_t batch, float *out,
                            size_t out_len);

/** Accuracy (fraction of argmax(output) == label) and mean loss over a
 * dataset.  Either out may be NULL.  Deterministic as bpl_net_predict: the
 * examples go through the net in the same chunks of 256.
 * Errors as bpl_net_predict. */
BPL_API int bpl_net_evaluate(bpl_net *net, const bpl_dataset *ds, double *accuracy_out,
                             double *loss_out);

/* ========================================================================
 * Diagnostics
 * ======================================================================== */

/** For one batch, the angle in degrees between the weight update the
 * attached rule would make for each layer and the backprop gradient of the
 * net's loss (0 = same direction, 90 = orthogonal).  The gradient is taken
 * through the activities the rule's forward hook computed, with each layer's
 * activation derivative: for rules with the dense forward pass, the usual
 * gradient.  Nothing is applied and no parameter changes.  `angles_out` has
 * room for `n` >= bpl_net_layer_count(net) values; a layer whose rule
 * update or gradient is zero gets NaN, and so does a layer without
 * parameters (a pooling layer: there is no update to measure).
 * Errors: INVALID_ARG, SHAPE, STATE (as bpl_net_predict), OVERFLOW, NUMERIC,
 * hook errors. */
BPL_API int bpl_net_alignment(bpl_net *net, const float *x, const float *y, size_t batch,
                              double *angles_out, size_t n);

/** Opt-in timing of the library's own work: with profiling on, every
 * training step records its wall time and the time and floating-point
 * operations of its matrix products.  Reset to zero when switched on.
 * bpl_net_set_profiling fails with STATE from a hook or the log callback of
 * the net (the progress callback may call it). */
BPL_API int bpl_net_set_profiling(bpl_net *net, int on);
BPL_API int bpl_net_profile(const bpl_net *net, double *step_seconds_out,
                            double *gemm_seconds_out, double *gemm_flops_out,
                            uint64_t *steps_out);

/* ========================================================================
 * Persistence
 * ======================================================================== */

/** Save the net: architecture (the input's shape, each layer's kind and
 * output shape), loss, every layer tensor (weights, biases, feedback
 * matrices), optimiser state, generator state, and the attached rule's
 * name, hyperparameters and own state (its save_state hook).  Versioned
 * little-endian format (version 2; docs/api.md, "Saving and loading") with a
 * magic number and CRC-32 checksums.  The file is written under a temporary
 * name in the same directory, flushed and renamed, so `path` is either the
 * old file or the complete new one, never a half-written file.  Whatever it
 * writes, bpl_net_load reads: a net holding NaN or Inf (written through
 * bpl_layer_tensor) is refused with NUMERIC, naming the tensor, and no file
 * is written.
 *
 * What `path` names when the save starts decides what happens:
 *  - nothing, or a regular file: it is created or replaced atomically;
 *  - a symbolic link (or a chain of them): the link stays, and the file it
 *    leads to is replaced atomically (the temporary file goes in that file's
 *    directory); a dangling link's target is created; a loop, or more than
 *    40 links, is refused with IO;
 *  - a FIFO, socket, device or directory, directly or through links: refused
 *    with IO ("not a regular file"), and left untouched.
 * The temporary file is named ".<name>.bpl-tmp.<pid>.<8 hex digits>" beside
 * the file replaced (<name> is that file's name, cut to 200 bytes).  A save
 * killed before it finishes (SIGKILL, SIGXFSZ, power loss) leaves it
 * behind; such files can be found with the glob ".*.bpl-tmp.*" and deleted
 * once the process <pid> is gone.
 * Errors: INVALID_ARG, STATE (inside a step), NUMERIC, IO, NOMEM, whatever
 * the rule's save_state hook returns (CALLBACK if it breaks its contract). */
BPL_API int bpl_net_save(const bpl_net *net, const char *path);

/** Load a saved net (format version 2, or version 1 from libbioplaus 0.1:
 * the step counters its built-in rules kept in tensors become their
 * state).  A built-in rule is recreated and attached with its
 * hyperparameters, tensors and state.  A rule that is not built in is left
 * pending: attach a rule of the same name with bpl_net_set_rule and it gets
 * the saved hyperparameters, tensors and state (its load_state hook; a
 * rule without one is refused with STATE when the file holds a state).  `path` must lead (symbolic links
 * are followed) to a regular file: a FIFO, device, socket or directory is
 * refused with IO at once, without blocking.
 *
 * The file may come from anywhere.  What a caller can rely on (F the
 * file's size, N the values of its tensors, B the rows of a batch, O the
 * outputs; docs/reliability.md, "Untrusted model files"):
 *  - the load allocates at most 16 F + 1 MiB and takes time linear in F;
 *    a built-in rule may only adopt tensors the file holds;
 *  - a loaded net holds only finite values, second moments >= 0, a
 *    generator state that is not all zero, optimiser step counts below
 *    2^53 and hyperparameters inside their rule's bounds, so every loop
 *    ends and a step either succeeds with finite parameters or fails with
 *    NUMERIC, changing nothing;
 *  - a training step or a prediction of B rows costs at most
 *    2^16 x N x (B + O) floating-point operations and a workspace of
 *    32 x B x (inputs + units of every layer) floats: time-step
 *    hyperparameters are at most 10^4.  A caller wanting less reads the
 *    rule's hyperparameters after loading and refuses what it will not run.
 * Errors: INVALID_ARG, IO, FORMAT (bad magic, checksum, truncated, values
 * out of range, a layer kind or shape this library does not know, a
 * tensor its rule needs missing, a state its rule refuses), VERSION (a
 * newer format), NOMEM. */
BPL_API int bpl_net_load(bpl_net **out, const char *path);

/** Save the net as bpl_net_save does, into memory: *data_out receives a
 * buffer the library allocates, holding *size_out bytes (exactly what
 * bpl_net_save would write to a file); free it with bpl_buffer_free.  For
 * pickling, sending a net to another process, embedding.  On failure
 * *data_out is NULL and *size_out 0.
 * Errors: INVALID_ARG, STATE (inside a step), NUMERIC, OVERFLOW (beyond
 * 2^36 bytes), NOMEM, whatever the rule's save_state hook returns. */
BPL_API int bpl_net_save_to_buffer(const bpl_net *net, void **data_out, size_t *size_out);

/** Free a buffer of bpl_net_save_to_buffer.  NULL is a no-op. */
BPL_API void bpl_buffer_free(void *data);

/** Load a net from `size` bytes at `data`, as bpl_net_load does from a
 * file, with the same checks and guarantees (the bytes may be hostile;
 * messages name the source "(buffer)").  The bytes are only read, and may
 * be freed once the call returns.  data may be NULL only with size 0
 * (which is refused with FORMAT, as an empty file is).
 * Errors: INVALID_ARG, FORMAT, VERSION, NOMEM (as bpl_net_load). */
BPL_API int bpl_net_load_from_buffer(bpl_net **out, const void *data, size_t size);

/* --- END CDEF ------------------------------------------------------------ */

#ifdef __cplusplus
}
#endif

#endif /* BIOPLAUS_H */
