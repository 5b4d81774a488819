/*
 * kinds/conv2d_dnnl.c - oneDNN's convolution primitives as the conv kind's
 * accelerator (built with -Ddnnl when oneDNN is found).
 *
 * Why: oneDNN picks its kernels from the CPU's features; on the wider
 * layers (tens of channels) its blocked-layout kernels run near the FMA
 * peak, where im2col + sgemm runs at half of it (docs/performance.md).  On
 * layers of one input channel or one output position they are no faster or
 * slower, so the portable path keeps those (worth_it below).
 *
 * How: each task of the library's thread pool runs its slice of the batch
 * through primitives of its own, made for that slice's size on first use
 * and cached per layer, task and size; oneDNN itself runs single-threaded
 * inside a task (its OpenMP team of one), so the thread count and the
 * slices are the library's, and results depend on the thread count only,
 * as the portable path's do.  The tensors stay in the library's layouts
 * (NCHW rows, weights [C_out][C_in kh kw] = OIHW): each call reorders into
 * the primitive's blocked layouts and back, through buffers per task that
 * every primitive of the layer shares.  The weight gradient leaves the bias
 * to conv2d.c, whose rounding rules the rules rely on.
 *
 * A call takes a bounded number of examples (chunk_cap), so that the
 * buffers do not grow with the batch.  Any failure (a shape a primitive
 * refuses, memory) stops there: the portable path runs the examples not
 * done, and the entry remembers, so that it is not tried again.
 */
#include "conv2d_paths.h"

#include <dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libgomp's, which oneDNN's OpenMP runtime is: one thread per task. */
extern void omp_set_num_threads(int n);

enum { ENTRIES = 6, MAX_ARGS = 4, BUFFERS = MAX_ARGS + 1 };

/* One argument of a primitive: the caller's memory in the library's layout
 * and, where the primitive wants another, its own and the reorder between. */
typedef struct arg_slot {
    int arg;    /* DNNL_ARG_* */
    int output; /* written by the primitive */
    dnnl_memory_t user, inner;
    dnnl_primitive_t reorder; /* user -> inner, or inner -> user for outputs */
} arg_slot;

typedef struct entry {
    int op;
    size_t count;
    int failed;
    dnnl_primitive_t prim;
    dnnl_memory_t scratch;
    arg_slot args[MAX_ARGS];
    size_t n_args;
} entry;

/* What one task of the pool owns: its stream, cached primitives and
 * buffers (inner layouts, the scratchpad, send_error's staging). */
typedef struct task_state {
    dnnl_stream_t stream;
    entry entries[ENTRIES];
    size_t next; /* the entry to replace when all are taken */
    void *buffer[BUFFERS + 1];
    size_t buffer_bytes[BUFFERS + 1];
} task_state;

typedef struct conv_accel {
    dnnl_engine_t engine;
    task_state *tasks[BPL__MAX_THREADS];
} conv_accel;

static int force_mode = BPL__CONV_ACCEL_AUTO;
static size_t chunk_override; /* examples per call, 0: chunk_cap's */
static size_t fail_countdown;  /* a test's failure: the n-th call from now */
static size_t passes_run;

void bpl__conv_accel_force(int mode)
{
    force_mode = mode;
}

void bpl__conv_accel_set_chunk(size_t examples)
{
    chunk_override = examples;
}

void bpl__conv_accel_fail_call(size_t n)
{
    fail_countdown = n;
}

size_t bpl__conv_accel_passes(void)
{
    return __atomic_load_n(&passes_run, __ATOMIC_RELAXED);
}

/* The passes worth taking, from the per-pass rates measured on LeNet's and
 * the wider net's layers (docs/performance.md): one output position, or a
 * single input channel, leave oneDNN's blocked kernels no faster than
 * im2col + GEMM (its error sent down one channel was 2-4 times slower);
 * sending the error down a few channels (6) was slower too. */
static int worth_it(const bpl__conv_geom *g, int op)
{
    if (force_mode != BPL__CONV_ACCEL_AUTO)
        return force_mode == BPL__CONV_ACCEL_ALWAYS;
    if (g->p < 16 || g->c_in < 4)
        return 0;
    return op != BPL__CONV_SEND_ERROR || g->c_in >= 16;
}

/* ---- buffers ------------------------------------------------------------------ */

static void *buffer_of(task_state *t, size_t i, size_t bytes)
{
    if (t->buffer[i] && t->buffer_bytes[i] >= bytes)
        return t->buffer[i];
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        return NULL;
    free(t->buffer[i]);
    t->buffer[i] = p;
    t->buffer_bytes[i] = bytes;
    return p;
}

/* ---- entries ------------------------------------------------------------------ */

static void entry_free(entry *e)
{
    for (size_t i = 0; i < e->n_args; i++) {
        dnnl_memory_destroy(e->args[i].user);
        dnnl_memory_destroy(e->args[i].inner);
        dnnl_primitive_destroy(e->args[i].reorder);
    }
    dnnl_memory_destroy(e->scratch);
    dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}

static dnnl_status_t plain_desc(dnnl_memory_desc_t *md, size_t n, size_t c, size_t h, size_t w,
                                int any)
{
    dnnl_dims_t dims = {(dnnl_dim_t)n, (dnnl_dim_t)c, (dnnl_dim_t)h, (dnnl_dim_t)w};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32,
                                        any ? dnnl_format_tag_any : dnnl_abcd);
}

/* The descriptors of the pass over `count` examples: source, weights, bias
 * and destination, in the library's layouts (any = 0) or oneDNN's choice. */
typedef struct descs {
    dnnl_memory_desc_t src, wei, bias, dst;
} descs;

static dnnl_status_t make_descs(const bpl__conv_geom *g, size_t count, int any, descs *d)
{
    dnnl_status_t s = plain_desc(&d->src, count, g->c_in, g->h, g->w, any);
    if (s == dnnl_success)
        s = plain_desc(&d->wei, g->c_out, g->c_in, g->kh, g->kw, any);
    if (s == dnnl_success)
        s = plain_desc(&d->dst, count, g->c_out, g->ho, g->wo, any);
    dnnl_dims_t bias_dims = {(dnnl_dim_t)g->c_out};
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&d->bias, 1, bias_dims, dnnl_f32, dnnl_a);
    return s;
}

/* The primitive descriptor of the pass (backward ones take the forward one
 * as their hint), with a scratchpad the caller provides. */
static dnnl_status_t make_pd(dnnl_engine_t engine, const bpl__conv_geom *g, size_t count, int op,
                             dnnl_primitive_desc_t *out)
{
    descs d;
    dnnl_status_t s = make_descs(g, count, 1, &d);
    /* The right/bottom padding that gives the library's output extent
     * (the division's remainder is dropped there). */
    dnnl_dims_t strides = {(dnnl_dim_t)g->stride, (dnnl_dim_t)g->stride};
    dnnl_dims_t pad_l = {(dnnl_dim_t)g->pad, (dnnl_dim_t)g->pad};
    dnnl_dims_t pad_r = {
        (dnnl_dim_t)((g->ho - 1) * g->stride + g->kh) - (dnnl_dim_t)(g->h + g->pad),
        (dnnl_dim_t)((g->wo - 1) * g->stride + g->kw) - (dnnl_dim_t)(g->w + g->pad)};
    dnnl_convolution_desc_t fwd, bwd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t hint = NULL;
    if (s == dnnl_success)
        s = dnnl_convolution_forward_desc_init(&fwd, dnnl_forward_training,
                                               dnnl_convolution_direct, &d.src, &d.wei, &d.bias,
                                               &d.dst, strides, pad_l, pad_r);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(op == BPL__CONV_FORWARD ? out : &hint, &fwd, attr, engine,
                                       NULL);
    if (s == dnnl_success && op == BPL__CONV_SEND_ERROR)
        s = dnnl_convolution_backward_data_desc_init(&bwd, dnnl_convolution_direct, &d.src,
                                                     &d.wei, &d.dst, strides, pad_l, pad_r);
    else if (s == dnnl_success && op == BPL__CONV_GRADIENTS)
        s = dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &d.src,
                                                        &d.wei, NULL, &d.dst, strides, pad_l,
                                                        pad_r);
    if (s == dnnl_success && op != BPL__CONV_FORWARD)
        s = dnnl_primitive_desc_create(out, &bwd, attr, engine, hint);
    dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

/* An argument: `user` in the library's layout; `inner` and the reorder
 * when the primitive's layout differs. */
static dnnl_status_t add_arg(entry *e, dnnl_engine_t engine, const_dnnl_primitive_desc_t pd,
                             int arg, dnnl_query_t query, int index,
                             const dnnl_memory_desc_t *plain, int output)
{
    arg_slot *a = &e->args[e->n_args++];
    a->arg = arg;
    a->output = output;
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, query, index);
    dnnl_status_t s = want ? dnnl_memory_create(&a->user, plain, engine, DNNL_MEMORY_NONE)
                           : dnnl_runtime_error;
    if (s != dnnl_success || dnnl_memory_desc_equal(want, plain))
        return s;
    s = dnnl_memory_create(&a->inner, want, engine, DNNL_MEMORY_NONE);
    dnnl_primitive_desc_t rpd = NULL;
    if (s == dnnl_success)
        s = output ? dnnl_reorder_primitive_desc_create(&rpd, want, engine, plain, engine, NULL)
                   : dnnl_reorder_primitive_desc_create(&rpd, plain, engine, want, engine, NULL);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return s;
}

static dnnl_status_t entry_make(entry *e, dnnl_engine_t engine, const bpl__conv_geom *g,
                                int op, size_t count)
{
    descs d;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = make_descs(g, count, 0, &d);
    if (s == dnnl_success)
        s = make_pd(engine, g, count, op, &pd);
    if (s == dnnl_success && op == BPL__CONV_FORWARD) {
        s = add_arg(e, engine, pd, DNNL_ARG_SRC, dnnl_query_src_md, 0, &d.src, 0);
        if (s == dnnl_success)
            s = add_arg(e, engine, pd, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, &d.wei, 0);
        if (s == dnnl_success)
            s = add_arg(e, engine, pd, DNNL_ARG_DST, dnnl_query_dst_md, 0, &d.dst, 1);
    } else if (s == dnnl_success && op == BPL__CONV_SEND_ERROR) {
        s = add_arg(e, engine, pd, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, &d.dst, 0);
        if (s == dnnl_success)
            s = add_arg(e, engine, pd, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, &d.wei, 0);
        if (s == dnnl_success)
            s = add_arg(e, engine, pd, DNNL_ARG_DIFF_SRC, dnnl_query_diff_src_md, 0, &d.src, 1);
    } else if (s == dnnl_success) {
        s = add_arg(e, engine, pd, DNNL_ARG_SRC, dnnl_query_src_md, 0, &d.src, 0);
        if (s == dnnl_success)
            s = add_arg(e, engine, pd, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, &d.dst, 0);
        if (s == dnnl_success)
            s = add_arg(e, engine, pd, DNNL_ARG_DIFF_WEIGHTS, dnnl_query_diff_weights_md, 0,
                        &d.wei, 1);
    }
    /* The bias goes in as it is (one plain vector) on the forward pass. */
    if (s == dnnl_success && op == BPL__CONV_FORWARD)
        s = add_arg(e, engine, pd, DNNL_ARG_BIAS, dnnl_query_weights_md, 1, &d.bias, 0);
    const dnnl_memory_desc_t *scratch =
        s == dnnl_success ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    if (scratch && dnnl_memory_desc_get_size(scratch) > 0)
        s = dnnl_memory_create(&e->scratch, scratch, engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&e->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/* The task's entry for (op, count): found, or made in the next slot. */
static entry *entry_for(task_state *t, dnnl_engine_t engine, const bpl__conv_geom *g, int op,
                        size_t count)
{
    for (size_t i = 0; i < ENTRIES; i++) {
        entry *e = &t->entries[i];
        if ((e->prim || e->failed) && e->op == op && e->count == count)
            return e->failed ? NULL : e;
    }
    entry *e = &t->entries[t->next];
    t->next = (t->next + 1) % ENTRIES;
    entry_free(e);
    e->op = op;
    e->count = count;
    if (entry_make(e, engine, g, op, count) != dnnl_success) {
        entry_free(e);
        e->op = op;
        e->count = count;
        e->failed = 1;
        return NULL;
    }
    return e;
}

/* ---- running a pass ------------------------------------------------------------- */

/* The caller's pointer for each argument; the inner memories and the
 * scratchpad on the task's buffers. */
static dnnl_status_t bind(entry *e, task_state *t, const void *user[MAX_ARGS])
{
    dnnl_status_t s = dnnl_success;
    for (size_t i = 0; s == dnnl_success && i < e->n_args; i++) {
        arg_slot *a = &e->args[i];
        s = dnnl_memory_set_data_handle(a->user, (void *)(uintptr_t)user[i]);
        if (s == dnnl_success && a->inner) {
            const dnnl_memory_desc_t *md;
            s = dnnl_memory_get_memory_desc(a->inner, &md);
            void *p = s == dnnl_success ? buffer_of(t, i, dnnl_memory_desc_get_size(md)) : NULL;
            s = p ? dnnl_memory_set_data_handle(a->inner, p) : dnnl_out_of_memory;
        }
    }
    if (s == dnnl_success && e->scratch) {
        const dnnl_memory_desc_t *md;
        s = dnnl_memory_get_memory_desc(e->scratch, &md);
        void *p = s == dnnl_success ? buffer_of(t, MAX_ARGS, dnnl_memory_desc_get_size(md)) : NULL;
        s = p ? dnnl_memory_set_data_handle(e->scratch, p) : dnnl_out_of_memory;
    }
    return s;
}

static dnnl_status_t reorder(dnnl_stream_t stream, const arg_slot *a)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a->output ? a->inner : a->user},
                               {DNNL_ARG_TO, a->output ? a->user : a->inner}};
    return dnnl_primitive_execute(a->reorder, stream, 2, args);
}

/* Inputs into the primitive's layouts, the primitive, its outputs back. */
static dnnl_status_t execute(entry *e, task_state *t)
{
    dnnl_exec_arg_t args[MAX_ARGS + 1];
    int n = 0;
    dnnl_status_t s = dnnl_success;
    for (size_t i = 0; i < e->n_args; i++) {
        const arg_slot *a = &e->args[i];
        if (a->reorder && !a->output && s == dnnl_success)
            s = reorder(t->stream, a);
        args[n++] = (dnnl_exec_arg_t){a->arg, a->inner ? a->inner : a->user};
    }
    if (e->scratch)
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    if (s == dnnl_success)
        s = dnnl_primitive_execute(e->prim, t->stream, n, args);
    for (size_t i = 0; i < e->n_args && s == dnnl_success; i++)
        if (e->args[i].reorder && e->args[i].output)
            s = reorder(t->stream, &e->args[i]);
    if (s == dnnl_success)
        s = dnnl_stream_wait(t->stream);
    return s;
}

static task_state *task_of(conv_accel *a, size_t task)
{
    if (task >= BPL__MAX_THREADS)
        return NULL;
    task_state *t = a->tasks[task];
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (t && dnnl_stream_create(&t->stream, a->engine, dnnl_stream_default_flags) != dnnl_success) {
        free(t);
        t = NULL;
    }
    a->tasks[task] = t; /* each task touches its own slot only */
    return t;
}

/* out = beta out + alpha staged (beta 0 overwrites, NaN or not). */
static void combine(float *out, const float *staged, size_t n, float alpha, float beta)
{
    if (beta == 0.0f)
        for (size_t i = 0; i < n; i++)
            out[i] = alpha * staged[i];
    else
        for (size_t i = 0; i < n; i++)
            out[i] = beta * out[i] + alpha * staged[i];
}

/* Examples per call: the blocked copies of a call's tensors are at most
 * about CHUNK_BYTES each (channels padded to blocks of 16), so that the
 * buffers do not grow with the batch (the portable path's workspace does
 * not either); at 64 examples and more the wider net's second layer ran
 * at 91% of the FMA peak already. */
#define CHUNK_BYTES ((size_t)8 << 20)

static size_t chunk_cap(const bpl__conv_geom *g)
{
    if (chunk_override)
        return chunk_override;
    size_t in = (g->c_in + 15) / 16 * 16 * g->h * g->w;
    size_t out = (g->c_out + 15) / 16 * 16 * g->p;
    size_t per = (in > out ? in : out) * sizeof(float);
    return CHUNK_BYTES / per ? CHUNK_BYTES / per : 1;
}

/* One call over `count` examples starting at example `first` of the pass;
 * the weight gradient's calls after the first add theirs. */
static int run_chunk(task_state *t, entry *e, const bpl__conv_geom *g,
                     const bpl__conv_pass *pass, size_t first, size_t count)
{
    size_t in_size = g->c_in * g->h * g->w, out_size = g->c_out * g->p, nw = g->c_out * g->k;
    size_t result_floats = pass->op == BPL__CONV_GRADIENTS ? nw : count * in_size;
    int staged = pass->op == BPL__CONV_SEND_ERROR ? pass->alpha != 1.0f || pass->beta != 0.0f
                 : pass->op == BPL__CONV_GRADIENTS ? first > 0
                                                   : 0;
    float *out = pass->out + (pass->op == BPL__CONV_FORWARD      ? first * out_size
                              : pass->op == BPL__CONV_SEND_ERROR ? first * in_size
                                                                 : 0);
    float *result = out;
    if (staged && !(result = buffer_of(t, BUFFERS, result_floats * sizeof *result)))
        return 0;
    const float *in = pass->in ? pass->in + first * in_size : NULL;
    const float *err = pass->err ? pass->err + first * out_size : NULL;
    const void *user[MAX_ARGS];
    if (pass->op == BPL__CONV_FORWARD) {
        user[0] = in, user[1] = pass->w, user[2] = result, user[3] = pass->b;
    } else if (pass->op == BPL__CONV_SEND_ERROR) {
        user[0] = err, user[1] = pass->w, user[2] = result;
    } else {
        user[0] = in, user[1] = err, user[2] = result;
    }
    if (fail_countdown && --fail_countdown == 0)
        return 0;
    if (bind(e, t, user) != dnnl_success || execute(e, t) != dnnl_success)
        return 0;
    if (pass->op == BPL__CONV_SEND_ERROR && staged)
        combine(out, result, result_floats, pass->alpha, pass->beta);
    else if (pass->op == BPL__CONV_GRADIENTS && staged)
        combine(out, result, nw, pass->alpha, 1.0f);
    else if (pass->op == BPL__CONV_GRADIENTS && pass->alpha != 1.0f)
        for (size_t i = 0; i < nw; i++)
            out[i] *= pass->alpha;
    return 1;
}

size_t bpl__conv_accel_run(const bpl_layer *layer, const bpl__conv_geom *g, size_t task,
                           const bpl__conv_pass *pass)
{
    conv_accel *a = layer->accel;
    if (!a || !worth_it(g, pass->op))
        return 0;
    /* Before the primitives are made: they take their thread count then. */
    omp_set_num_threads(1);
    task_state *t = task_of(a, task);
    if (!t)
        return 0;
    size_t cap = chunk_cap(g), n_chunks = (pass->count + cap - 1) / cap, done = 0;
    for (size_t c = 0; c < n_chunks; c++) {
        size_t from = pass->count * c / n_chunks, to = pass->count * (c + 1) / n_chunks;
        entry *e = entry_for(t, a->engine, g, pass->op, to - from);
        if (!e || !run_chunk(t, e, g, pass, from, to - from)) {
            if (e)
                e->failed = 1;
            break; /* the caller runs the rest, from `done` on */
        }
        done = to;
    }
    if (done)
        __atomic_fetch_add(&passes_run, 1, __ATOMIC_RELAXED);
    return done;
}

/* ---- a layer's state -------------------------------------------------------------- */

void bpl__conv_accel_create(bpl_layer *layer)
{
    conv_accel *a = calloc(1, sizeof *a);
    if (a && dnnl_engine_create(&a->engine, dnnl_cpu, 0) != dnnl_success) {
        free(a);
        a = NULL;
    }
    layer->accel = a;
}

void bpl__conv_accel_free(bpl_layer *layer)
{
    conv_accel *a = layer->accel;
    if (!a)
        return;
    for (size_t i = 0; i < BPL__MAX_THREADS; i++) {
        task_state *t = a->tasks[i];
        if (!t)
            continue;
        for (size_t k = 0; k < ENTRIES; k++)
            entry_free(&t->entries[k]);
        for (size_t k = 0; k <= BUFFERS; k++)
            free(t->buffer[k]);
        dnnl_stream_destroy(t->stream);
        free(t);
    }
    dnnl_engine_destroy(a->engine);
    free(a);
    layer->accel = NULL;
}

const char *bpl__conv_accel_name(void)
{
    static _Thread_local char name[64];
    const dnnl_version_t *v = dnnl_version();
    const char *isa;
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx2: isa = "avx2"; break;
    case dnnl_cpu_isa_avx512_core: isa = "avx512_core"; break;
    case dnnl_cpu_isa_avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl_cpu_isa_avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl_cpu_isa_avx512_core_amx: isa = "avx512_core_amx"; break;
    default: isa = "other"; break;
    }
    snprintf(name, sizeof name, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch, isa);
    return name;
}
