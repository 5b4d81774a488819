/*
 * test_untrusted_model.c - model files from anywhere: what a file can make
 * the library allocate and compute is bounded, a degenerate state cannot
 * make it hang or lie, and whatever bpl_net_save writes, bpl_net_load reads
 * (docs/reliability.md, "Untrusted model files").
 *
 * A hostile file is a saved net edited in place, with its checksums fixed so
 * that only the parser stands between it and the library.  Every case runs
 * under a timeout: a file that made the library spin fails the case.
 *
 * With BPL_WRITE_CORPUS=DIR in the environment, each hostile file named
 * regress-*.bpl is also written to DIR: tests/fuzz/corpus/fuzz_model/
 * regress-zero-rng.bpl and the other files of this test were made so.
 */
#include "testutil.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "bpl_internal.h"

enum { HEADER = 32, MAX_TENSORS_SEEN = 512, MAX_PARAMS_SEEN = 128 };

/* The operations a step may make per tensor value and per row (plus one per
 * output): the budget the documentation promises. */
#define STEP_BUDGET 65536.0

/* ---- model files as bytes ------------------------------------------------------ */

typedef struct model {
    unsigned char *data;
    size_t size, cap;
} model;

static model read_model(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, HEADER);
    rewind(f);
    model m = {malloc((size_t)size + 4096), (size_t)size, (size_t)size + 4096};
    ck_assert_ptr_nonnull(m.data);
    ck_assert_uint_eq(fread(m.data, 1, m.size, f), m.size);
    fclose(f);
    return m;
}

static void write_bytes(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    ck_assert_int_eq(fclose(f), 0);
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void set_f32(model *m, size_t at, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_le(m->data + at, bits, 4);
}

static void set_f64(model *m, size_t at, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_le(m->data + at, bits, 8);
}

static void fix_checksums(model *m)
{
    put_le(m->data + 16, m->size - HEADER, 8);
    put_le(m->data + 24, crc32(0L, m->data + HEADER, (uInt)(m->size - HEADER)), 4);
    put_le(m->data + 28, crc32(0L, m->data, 28), 4);
}

/* Where the fields of a version-2 file are (layout: the top of
 * lib/model_io.c). */
typedef struct tensor_at {
    size_t layer;
    char name[BPL__NAME_MAX];
    size_t rows, cols;
    int flags;
    size_t start, values, m, v, end;
} tensor_at;

typedef struct layout {
    size_t state, steps, n_layers;
    size_t layer_at[BPL__MAX_LAYERS];       /* each layer's record: its kind */
    size_t params_at[BPL__MAX_LAYERS];      /* its width and params (0: none) */
    size_t shape_at[BPL__MAX_LAYERS];       /* its stored shape's rank */
    size_t layer_count_at[BPL__MAX_LAYERS]; /* each layer's tensor count */
    tensor_at tensors[MAX_TENSORS_SEEN];
    size_t n_tensors;
    size_t rule;                            /* the has_rule flag */
    struct {
        char name[BPL__NAME_MAX];
        size_t value;
    } params[MAX_PARAMS_SEEN];
    size_t n_params;
} layout;

static size_t skip_str(const model *m, size_t at, char *dst, size_t size)
{
    size_t n = (size_t)get_le(m->data + at, 4);
    ck_assert_uint_lt(n, size);
    memcpy(dst, m->data + at + 4, n);
    dst[n] = '\0';
    return at + 4 + n;
}

static layout *parse(const model *m)
{
    layout *L = calloc(1, sizeof *L);
    ck_assert_ptr_nonnull(L);
    size_t at = HEADER;
    ck_assert_uint_eq(get_le(m->data + 8, 4), 2); /* the version this reads */
    /* the input shape (its rank and extents), then the seed */
    at += 4 + 8 * (size_t)get_le(m->data + at, 4);
    L->state = at + 8;
    L->n_layers = (size_t)get_le(m->data + at + 44, 4);
    L->steps = at + 48;
    at += 64;
    for (size_t l = 0; l < L->n_layers; l++) {
        char kind[BPL__NAME_MAX];
        L->layer_at[l] = at;
        at = skip_str(m, at, kind, sizeof kind);
        L->params_at[l] = 0;
        if (strcmp(kind, "dense") != 0) { /* units, kernel_h, kernel_w, stride, pad */
            L->params_at[l] = at;
            at += 40;
        }
        L->shape_at[l] = at; /* then rank, extents, activation, init */
        at += 4 + 8 * (size_t)get_le(m->data + at, 4);
        L->layer_count_at[l] = at + 8;
        size_t count = (size_t)get_le(m->data + at + 8, 4);
        at += 12;
        for (size_t i = 0; i < count; i++) {
            ck_assert_uint_lt(L->n_tensors, MAX_TENSORS_SEEN);
            tensor_at *t = &L->tensors[L->n_tensors++];
            t->layer = l;
            t->start = at;
            at = skip_str(m, at, t->name, sizeof t->name);
            t->rows = (size_t)get_le(m->data + at + 4, 8);
            t->cols = (size_t)get_le(m->data + at + 12, 8);
            t->flags = m->data[at + 20];
            t->values = at + 21;
            at = t->values + 4 * t->rows * t->cols;
            if (t->flags & 1) {
                t->m = at;
                t->v = at + 4 * t->rows * t->cols;
                at += 8 * t->rows * t->cols;
            }
            t->end = at;
        }
    }
    L->rule = at;
    if (get_le(m->data + at, 4) == 1) {
        char rule_name[BPL__RULE_NAME_MAX];
        at = skip_str(m, at + 4, rule_name, sizeof rule_name);
        size_t count = (size_t)get_le(m->data + at, 4);
        at += 4;
        for (size_t i = 0; i < count && i < MAX_PARAMS_SEEN; i++) {
            at = skip_str(m, at, L->params[i].name, sizeof L->params[i].name);
            L->params[i].value = at;
            at += 8;
            L->n_params++;
        }
    }
    return L;
}

static const tensor_at *find_tensor(const layout *L, size_t layer, const char *name)
{
    for (size_t i = 0; i < L->n_tensors; i++)
        if (L->tensors[i].layer == layer && strcmp(L->tensors[i].name, name) == 0)
            return &L->tensors[i];
    ck_abort_msg("the file has no tensor '%s' in layer %zu", name, layer);
    return NULL;
}

static size_t param_at(const layout *L, const char *name)
{
    for (size_t i = 0; i < L->n_params; i++)
        if (strcmp(L->params[i].name, name) == 0)
            return L->params[i].value;
    ck_abort_msg("the file has no hyperparameter '%s'", name);
    return 0;
}

/* Cut a tensor out of the file (its layer then holds one tensor fewer). */
static void drop_tensor(model *m, const layout *L, const tensor_at *t)
{
    size_t count_at = L->layer_count_at[t->layer];
    put_le(m->data + count_at, get_le(m->data + count_at, 4) - 1, 4);
    memmove(m->data + t->start, m->data + t->end, m->size - t->end);
    m->size -= t->end - t->start;
}

/* Replace the rule section: rule `name` with one saved hyperparameter and
 * no state. */
static void set_rule(model *m, const layout *L, const char *name, const char *param,
                     double value)
{
    size_t at = L->rule, n = strlen(name), p = strlen(param);
    ck_assert_uint_le(at + 4 + 4 + n + 4 + 4 + p + 8 + 4, m->cap);
    put_le(m->data + at, 1, 4);
    put_le(m->data + at + 4, n, 4);
    memcpy(m->data + at + 8, name, n);
    at += 8 + n;
    put_le(m->data + at, 1, 4);
    put_le(m->data + at + 4, p, 4);
    memcpy(m->data + at + 8, param, p);
    at += 8 + p;
    set_f64(m, at, value);
    put_le(m->data + at + 8, 0, 4);
    m->size = at + 12;
}

static void expect_round_trip(const bpl_net *net, const char *what);

/* ---- nets ------------------------------------------------------------------ */

static void random_batch(float *x, float *y, size_t batch, size_t inputs, size_t outputs,
                         uint64_t *state)
{
    test_fill_uniform(x, batch * inputs, -1.0f, 1.0f, state);
    test_fill_onehot(y, batch, outputs, state);
}

static int train(bpl_net *net, size_t steps, size_t batch, uint64_t seed)
{
    size_t in = bpl_net_inputs(net), out = bpl_net_outputs(net);
    float *x = malloc(batch * in * sizeof *x), *y = malloc(batch * out * sizeof *y);
    ck_assert(x && y);
    int rc = BPL_OK;
    for (size_t s = 0; s < steps && rc == BPL_OK; s++) {
        random_batch(x, y, batch, in, out, &seed);
        rc = bpl_net_train_batch(net, x, y, batch, NULL);
    }
    free(x);
    free(y);
    return rc;
}

/* inputs-units...-outputs (tanh hidden layers, a sigmoid output), the
 * built-in rule `rule` (NULL: none) with settings {name, value, ..., NULL}. */
static bpl_net *make_net(const char *rule, const char *const *settings, size_t inputs,
                         const size_t *units, size_t n_layers)
{
    int acts[8];
    for (size_t l = 0; l < n_layers; l++)
        acts[l] = l + 1 == n_layers ? BPL_ACT_SIGMOID : BPL_ACT_TANH;
    bpl_net *net = test_make_net(inputs, units, acts, n_layers, 11);
    if (!rule)
        return net;
    bpl_rule *r;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&r, rule));
    for (size_t i = 0; settings && settings[i]; i += 2)
        BPL_OK_OR_FAIL(bpl_rule_set_string(r, settings[i], settings[i + 1]));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    return net;
}

static const size_t small_units[] = {4, 3, 2};

/* A 3-4-3-2 net of `rule`, trained for two steps, as a file. */
static model trained_file(const char *rule, const char *const *settings, const char *name)
{
    bpl_net *net = make_net(rule, settings, 3, small_units, 3);
    BPL_OK_OR_FAIL(train(net, 2, 4, 5));
    const char *path = test_temp_path(name);
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    return read_model(path);
}

/* Write the edited file (into `path`, 512 bytes); a regress-* file also
 * goes to the corpus directory when asked for. */
static void write_edited(model *m, const char *name, char *path)
{
    fix_checksums(m);
    snprintf(path, 512, "%s", test_temp_path(name));
    write_bytes(path, m->data, m->size);
    const char *corpus = getenv("BPL_WRITE_CORPUS");
    if (corpus && corpus[0] && strncmp(name, "regress-", 8) == 0) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s/%s", corpus, name);
        write_bytes(copy, m->data, m->size);
    }
}

static int load_edited(model *m, const char *name, bpl_net **out)
{
    char path[512];
    write_edited(m, name, path);
    *out = NULL;
    return bpl_net_load(out, path);
}

/* The edited file must be refused with `status`, the message naming `needle`. */
static void expect_refused(model *m, const char *name, int status, const char *needle)
{
    bpl_net *net;
    int rc = load_edited(m, name, &net);
    BPL_EXPECT_ERROR(rc, status, needle);
    ck_assert_ptr_null(net);
}

static bpl_net *expect_loaded(model *m, const char *name)
{
    bpl_net *net;
    int rc = load_edited(m, name, &net);
    ck_assert_msg(rc == BPL_OK, "%s: status %d (%s): %s", name, rc, bpl_strerror(rc),
                  bpl_last_error_message());
    return net;
}

/* Every value of every tensor (with its moments), in order. */
typedef struct snapshot {
    float *v;
    size_t n;
} snapshot;

static snapshot take_snapshot(const bpl_net *net)
{
    snapshot s = {NULL, 0};
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        for (size_t l = 0; l < net->n_layers; l++)
            for (size_t i = 0; i < net->layers[l]->n_tensors; i++) {
                const bpl__tensor *t = &net->layers[l]->tensors[i];
                size_t n = t->rows * t->cols;
                const float *parts[3] = {t->data, t->m, t->v};
                for (int p = 0; p < 3; p++) {
                    if (parts[p] && s.v)
                        memcpy(s.v + k, parts[p], n * sizeof *s.v);
                    k += parts[p] ? n : 0;
                }
            }
        if (!s.v) {
            s.n = k;
            s.v = malloc((k ? k : 1) * sizeof *s.v);
            ck_assert_ptr_nonnull(s.v);
        }
    }
    return s;
}

static void expect_unchanged(const bpl_net *net, snapshot *before, const char *what)
{
    snapshot after = take_snapshot(net);
    ck_assert_uint_eq(after.n, before->n);
    ck_assert_msg(memcmp(after.v, before->v, after.n * sizeof *after.v) == 0,
                  "%s: a refused step changed the parameters or moments", what);
    free(after.v);
    free(before->v);
}

/* ---- 1. the random generator ------------------------------------------------ */

START_TEST(zero_generator_state)
{
    model m = trained_file("fa", NULL, "zero-rng-source.bpl");
    layout *L = parse(&m);
    for (int i = 0; i < 4; i++)
        put_le(m.data + L->state + 8 * i, 0, 8);
    expect_refused(&m, "regress-zero-rng.bpl", BPL_ERR_FORMAT, "generator state");
    /* one nonzero word is a valid xoshiro256** state */
    put_le(m.data + L->state + 24, 1, 8);
    bpl_net *net = expect_loaded(&m, "one-bit-rng.bpl");
    BPL_OK_OR_FAIL(train(net, 1, 4, 3));
    bpl_net_destroy(net);
    free(L);
    free(m.data);
}
END_TEST

/* Whatever sets a generator to zero, nothing that draws from it may spin:
 * bpl__rng_below's rejection loop, the shuffle of bpl_net_fit and the
 * orthogonal initialiser's redraw of a degenerate vector. */
START_TEST(degenerate_generator_terminates)
{
    bpl__rng rng = {{0, 0, 0, 0}};
    const uint64_t bounds[] = {3, 5, 7, 1000, ((uint64_t)1 << 24) + 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
        ck_assert_uint_lt(bpl__rng_below(&rng, bounds[i]), bounds[i]);
    size_t items[10], seen = 0;
    for (size_t i = 0; i < 10; i++)
        items[i] = i;
    bpl__rng_shuffle(&rng, items, 10);
    for (size_t i = 0; i < 10; i++)
        seen |= (size_t)1 << items[i];
    ck_assert_uint_eq(seen, 0x3ff);

    /* orthogonal: columns (5 x 3) or rows (3 x 5) orthonormal */
    const size_t shapes[][2] = {{5, 3}, {3, 5}, {4, 4}, {1, 6}};
    for (size_t s = 0; s < 4; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1];
        float w[36];
        BPL_OK_OR_FAIL(bpl__init_fill(BPL_INIT_ORTHOGONAL, 1.0, w, rows, cols, 1, &rng));
        int by_rows = rows <= cols;
        size_t count = by_rows ? rows : cols, len = by_rows ? cols : rows;
        for (size_t a = 0; a < count; a++)
            for (size_t b = 0; b < count; b++) {
                double dot = 0.0;
                for (size_t k = 0; k < len; k++) {
                    float wa = by_rows ? w[a * cols + k] : w[k * cols + a];
                    float wb = by_rows ? w[b * cols + k] : w[k * cols + b];
                    dot += (double)wa * wb;
                }
                ck_assert_msg(fabs(dot - (a == b)) < 1e-5, "%zux%zu: <%zu,%zu> = %g", rows,
                              cols, a, b, dot);
            }
    }

    /* a net whose generator is stuck: building and fitting still end */
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 3, 1));
    memset(net->rng.s, 0, sizeof net->rng.s);
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_ORTHOGONAL));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SIGMOID, BPL_INIT_ORTHOGONAL));
    test_attach(net, "backprop");
    float x[20 * 3], y[20 * 2];
    uint64_t seed = 9;
    random_batch(x, y, 20, 3, 2, &seed);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 20, 3, 2));
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 2, 7, NULL, NULL));
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

/* ---- 2. optimiser state ----------------------------------------------------- */

START_TEST(negative_second_moment)
{
    model m = trained_file("backprop", NULL, "moment-source.bpl"); /* Adam */
    layout *L = parse(&m);
    const tensor_at *w = find_tensor(L, 0, "weight");
    ck_assert(w->flags & 1);
    set_f32(&m, w->v, -3e38f);
    expect_refused(&m, "regress-negative-adam-moment.bpl", BPL_ERR_FORMAT,
                   "negative second moment");
    set_f32(&m, w->v, -1e-30f);
    expect_refused(&m, "tiny-negative-moment.bpl", BPL_ERR_FORMAT, "second moment");
    set_f32(&m, w->v, -0.0f); /* the square root of -0 is -0: harmless */
    bpl_net *net = expect_loaded(&m, "minus-zero-moment.bpl");
    BPL_OK_OR_FAIL(train(net, 1, 4, 3));
    bpl_net_destroy(net);
    free(L);
    free(m.data);
}
END_TEST

START_TEST(optimiser_state_checked)
{
    model m = trained_file("backprop", NULL, "state-source.bpl");
    model original = {malloc(m.cap), m.size, m.cap};
    ck_assert_ptr_nonnull(original.data);
    memcpy(original.data, m.data, m.size);
    layout *L = parse(&m);
    const tensor_at *w = find_tensor(L, 1, "weight");
    const struct {
        size_t at;
        float value;
    } moments[] = {{w->m, NAN}, {w->m, INFINITY}, {w->v, NAN}, {w->v, INFINITY}};
    for (size_t i = 0; i < 4; i++) {
        memcpy(m.data, original.data, m.size);
        set_f32(&m, moments[i].at, moments[i].value);
        expect_refused(&m, "bad-moment.bpl", BPL_ERR_FORMAT, "optimiser state");
    }
    /* the step count: Adam's bias correction needs t = count + 1 >= 1 */
    const uint64_t counts[] = {UINT64_MAX, (uint64_t)1 << 53};
    for (size_t i = 0; i < 2; i++) {
        memcpy(m.data, original.data, m.size);
        put_le(m.data + L->steps, counts[i], 8);
        expect_refused(&m, i == 0 ? "regress-optimiser-steps.bpl" : "many-steps.bpl",
                       BPL_ERR_FORMAT, "step count");
    }
    memcpy(m.data, original.data, m.size);
    put_le(m.data + L->steps, ((uint64_t)1 << 53) - 1, 8);
    bpl_net *net = expect_loaded(&m, "most-steps.bpl");
    BPL_OK_OR_FAIL(train(net, 1, 4, 3));
    bpl_net_destroy(net);
    free(L);
    free(m.data);
    free(original.data);
}
END_TEST

/* The all-or-nothing step holds for any state, not only for those a load
 * lets through: here the state is broken in memory. */
START_TEST(step_refuses_bad_state)
{
    const char *const optimisers[] = {"adam", "rmsprop", "momentum", "sgd"};
    for (size_t o = 0; o < 4; o++) {
        for (int breakage = 0; breakage < 4; breakage++) {
            const char *settings[] = {"optimizer", optimisers[o], NULL};
            bpl_net *net = make_net("backprop", settings, 3, small_units, 3);
            BPL_OK_OR_FAIL(train(net, 1, 4, 1));
            bpl__tensor *t = &net->layers[1]->tensors[0];
            const char *needle = "overflow";
            if (breakage == 0) { /* a negative second moment */
                if (o > 1) {
                    bpl_net_destroy(net);
                    continue;
                }
                t->v[2] = -3e38f;
                needle = "negative second moment";
            } else if (breakage == 1) { /* an infinite first moment */
                if (o > 2 || o == 1) {
                    bpl_net_destroy(net);
                    continue;
                }
                t->m[2] = INFINITY;
            } else if (breakage == 2) { /* a step count about to wrap */
                net->optim[BPL_GROUP_FORWARD].steps = UINT64_MAX;
                if (o != 0) {
                    bpl_net_destroy(net);
                    continue;
                }
            } else { /* an infinite weight */
                t->data[2] = INFINITY;
                needle = NULL;
            }
            snapshot before = take_snapshot(net);
            uint64_t steps = net->optim[BPL_GROUP_FORWARD].steps;
            int rc = train(net, 1, 4, 2);
            char what[64];
            snprintf(what, sizeof what, "%s, breakage %d", optimisers[o], breakage);
            ck_assert_msg(rc == BPL_ERR_NUMERIC, "%s: status %d (%s)", what, rc,
                          bpl_strerror(rc));
            if (needle)
                ck_assert_msg(strstr(bpl_last_error_message(), needle) != NULL,
                              "%s: message '%s' lacks '%s'", what, bpl_last_error_message(),
                              needle);
            expect_unchanged(net, &before, what);
            ck_assert_uint_eq(net->optim[BPL_GROUP_FORWARD].steps, steps);
            bpl_net_destroy(net);
        }
    }
}
END_TEST

/* Segregated dendrites with symmetric feedback derive Y from the weights
 * after each update: weights of 1e20 make W^T W^T overflow.  The step must
 * fail and keep Y finite (the weights have moved: the update came first). */
START_TEST(symmetric_feedback_overflow)
{
    const char *settings[] = {"feedback", "symmetric", NULL};
    const size_t units[] = {3, 3, 2};
    bpl_net *net = make_net("segregated", settings, 2, units, 3);
    float big[9];
    for (int i = 0; i < 9; i++)
        big[i] = 1e20f;
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 1), "weight", big, 9));
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 2), "weight", big, 6));
    BPL_EXPECT_ERROR(train(net, 1, 2, 1), BPL_ERR_NUMERIC, "symmetric feedback");
    for (size_t l = 0; l < 2; l++) {
        float y[6];
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, l), "feedback", y,
                                            3 * 2));
        for (int i = 0; i < 6; i++)
            ck_assert_msg(isfinite(y[i]), "Y_%zu[%d] = %g", l, i, (double)y[i]);
    }
    expect_round_trip(net, "after an overflowing symmetric feedback");
    bpl_net_destroy(net);
}
END_TEST

/* ---- 3. values beyond the float range ----------------------------------------- */

static void expect_weights(bpl_layer *layer, const float *want, size_t n)
{
    float got[16];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", got, n));
    ck_assert_msg(memcmp(got, want, n * sizeof *got) == 0, "a refused call wrote weights");
}

START_TEST(values_beyond_float_refused)
{
    bpl_net *net = make_net("fa", NULL, 3, small_units, 3);
    bpl_layer *layer = bpl_net_layer(net, 0);
    float before[12];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", before, 12));
    /* every initialiser refuses a gain that is not a float */
    for (int init = BPL_INIT_GLOROT_UNIFORM; init <= BPL_INIT_CONSTANT; init++) {
        BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", init, 1e300), BPL_ERR_RANGE,
                         "bpl_layer_init_tensor");
        BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", init, -1e39), BPL_ERR_RANGE,
                         "float");
        expect_weights(layer, before, 12);
    }
    /* a float gain whose values are not: normal draws reach 8.6 sd, the
     * Glorot limit of a 4 x 3 matrix is sqrt(6/7) = 0.93 times the gain */
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", BPL_INIT_NORMAL, 1e38),
                     BPL_ERR_RANGE, "normal");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", BPL_INIT_HE_UNIFORM, 3e38),
                     BPL_ERR_RANGE, "he_uniform");
    expect_weights(layer, before, 12);
    const struct {
        int init;
        double gain;
    } fit[] = {{BPL_INIT_CONSTANT, 3.4e38},      {BPL_INIT_UNIFORM, -3.4e38},
               {BPL_INIT_ORTHOGONAL, 3.4e38},    {BPL_INIT_NORMAL, 3.9e37},
               {BPL_INIT_GLOROT_UNIFORM, 3.4e38}, {BPL_INIT_GLOROT_NORMAL, 6e37},
               {BPL_INIT_ZERO, 1e30}};
    for (size_t i = 0; i < sizeof fit / sizeof fit[0]; i++) {
        BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", fit[i].init, fit[i].gain));
        float w[12];
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", w, 12));
        for (size_t k = 0; k < 12; k++)
            ck_assert_msg(isfinite(w[k]), "init %d gain %g wrote %g", fit[i].init,
                          fit[i].gain, (double)w[k]);
    }

    /* bpl_layer_add_tensor: a new tensor is not created, an existing one
     * refuses the gain too */
    bpl_layer *top = bpl_net_layer(net, 2);
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(top, "extra", 2, 2, BPL_GROUP_NONE,
                                          BPL_INIT_CONSTANT, 1e300, NULL),
                     BPL_ERR_RANGE, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(top, "extra", 2, 2, BPL_GROUP_NONE,
                                          BPL_INIT_NORMAL, 1e38, NULL),
                     BPL_ERR_RANGE, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_tensor_info(top, "extra", NULL, NULL, NULL),
                     BPL_ERR_NOT_FOUND, "extra");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(top, "feedback", 3, 2, BPL_GROUP_NONE,
                                          BPL_INIT_CONSTANT, -1e300, NULL),
                     BPL_ERR_RANGE, "gain");

    /* random fills */
    float dst[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    const double uniform[][2] = {{0, 1e300}, {-1e300, 0}, {-3e38, 3e38}, {0, INFINITY},
                                 {NAN, 1}, {2, 1}};
    for (size_t i = 0; i < sizeof uniform / sizeof uniform[0]; i++)
        BPL_EXPECT_ERROR(bpl_net_random_uniform(net, dst, 8, uniform[i][0], uniform[i][1]),
                         BPL_ERR_RANGE, "bpl_net_random_uniform");
    const double normal[][2] = {{0, 1e300}, {1e300, 1}, {0, 1e38}, {3e38, 1e37},
                                {0, -1}, {NAN, 1}, {0, INFINITY}};
    for (size_t i = 0; i < sizeof normal / sizeof normal[0]; i++)
        BPL_EXPECT_ERROR(bpl_net_random_normal(net, dst, 8, normal[i][0], normal[i][1]),
                         BPL_ERR_RANGE, "bpl_net_random_normal");
    for (size_t k = 0; k < 8; k++)
        ck_assert(dst[k] == 7.0f);
    BPL_OK_OR_FAIL(bpl_net_random_uniform(net, dst, 8, -FLT_MAX / 2, FLT_MAX / 2));
    for (size_t k = 0; k < 8; k++)
        ck_assert(isfinite(dst[k]));
    BPL_OK_OR_FAIL(bpl_net_random_uniform(net, dst, 8, 0, FLT_MAX));
    for (size_t k = 0; k < 8; k++)
        ck_assert(isfinite(dst[k]));
    BPL_OK_OR_FAIL(bpl_net_random_normal(net, dst, 8, 0, 5e37));
    for (size_t k = 0; k < 8; k++)
        ck_assert(isfinite(dst[k]));

    /* what was accepted saves into a file that loads */
    const char *path = test_temp_path("extreme.bpl");
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_CONSTANT, 3.4e38));
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *back;
    BPL_OK_OR_FAIL(bpl_net_load(&back, path));
    bpl_net_destroy(back);
    bpl_net_destroy(net);
}
END_TEST

/* ---- 4. whatever bpl_net_save writes, bpl_net_load reads ---------------------------- */

static uint64_t draw(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
    return (double)(draw(s) >> 11) * 0x1.0p-53;
}

/* Save, load, save again: both must succeed and give the same bytes. */
static void expect_round_trip(const bpl_net *net, const char *what)
{
    char first[512], second[512]; /* test_temp_path's buffer is reused */
    snprintf(first, sizeof first, "%s", test_temp_path("trip-a.bpl"));
    snprintf(second, sizeof second, "%s", test_temp_path("trip-b.bpl"));
    int rc = bpl_net_save(net, first);
    ck_assert_msg(rc == BPL_OK, "%s: save: %s", what, bpl_last_error_message());
    bpl_net *back = NULL;
    rc = bpl_net_load(&back, first);
    ck_assert_msg(rc == BPL_OK, "%s: a file bpl_net_save wrote does not load: %s", what,
                  bpl_last_error_message());
    BPL_OK_OR_FAIL(bpl_net_save(back, second));
    bpl_net_destroy(back);
    model a = read_model(first), b = read_model(second);
    size_t diff = HEADER;
    while (diff < a.size && diff < b.size && a.data[diff] == b.data[diff])
        diff++;
    ck_assert_msg(a.size == b.size && diff == a.size,
                  "%s: saved again after loading, the file differs (%zu and %zu bytes, "
                  "from byte %zu)",
                  what, a.size, b.size, diff);
    free(a.data);
    free(b.data);
}

static int is_time_steps(const char *name)
{
    static const char *const names[] = {"steps", "phase_steps", "integration_steps",
                                        "test_steps", "test_average"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* A value inside the hyperparameter's bounds: an end, the default or in
 * between (learning rates log-uniform, up to divergence); counts small. */
static double draw_value(const char *name, int kind, double def, double lo, double hi,
                         uint64_t *s)
{
    if (is_time_steps(name) || strstr(name, "_steps"))
        hi = fmin(hi, lo + 5);
    if (kind == BPL_PARAM_INT)
        hi = fmin(hi, lo + 64);
    if (kind != BPL_PARAM_REAL)
        return lo + (double)(draw(s) % (uint64_t)(hi - lo + 1));
    if (strcmp(name, "lr") == 0 || strcmp(name, "fb_lr") == 0)
        return exp(log(1e-6) + uniform01(s) * (log(hi) - log(1e-6)));
    switch (draw(s) % 4) {
    case 0: return lo;
    case 1: return hi;
    case 2: return def;
    default: return lo + uniform01(s) * (hi - lo);
    }
}

static void randomise_rule(bpl_rule *rule, uint64_t *s)
{
    for (size_t i = 0; i < bpl_rule_param_count(rule); i++) {
        const char *name;
        int kind;
        double def, lo, hi;
        BPL_OK_OR_FAIL(bpl_rule_param_info(rule, i, &name, &kind, &def, &lo, &hi, NULL, NULL));
        if (draw(s) % 3 == 0)
            continue; /* keep the default */
        double value = draw_value(name, kind, def, lo, hi, s);
        int rc = bpl_rule_set(rule, name, value);
        ck_assert_msg(rc == BPL_OK, "%s = %g: %s", name, value, bpl_last_error_message());
    }
}

/* A user's rule: backprop's targets through the forward weights, a few
 * tensors of its own and many hyperparameters with one-letter names. */
static int user_attach(void *self, bpl_net *net)
{
    (void)self;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        int rc = bpl_layer_add_tensor(bpl_net_layer(net, l), "trace of l", 1, 2,
                                      l % 2 ? BPL_GROUP_FEEDBACK : BPL_GROUP_NONE,
                                      BPL_INIT_NORMAL, 1.0, NULL);
        if (rc != BPL_OK)
            return rc;
    }
    return BPL_OK;
}

static int user_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int user_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    int rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = bpl_net_layer_count(net) - 1; rc == BPL_OK && l > 0; l--) {
        float *w;
        rc = bpl_layer_tensor(bpl_net_layer(net, l), "weight", &w, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, w, 1);
    }
    return rc;
}

static int user_update(void *self, bpl_net *net)
{
    (void)self;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        int rc = bpl_net_weight_gradients(net, l);
        if (rc != BPL_OK)
            return rc;
    }
    return bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD);
}

static bpl_rule *user_rule(void)
{
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "a user's rule";
    vt.attach = user_attach;
    vt.forward = user_forward;
    vt.compute_targets = user_targets;
    vt.update = user_update;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, NULL));
    for (char c = 'a'; c <= 'z'; c++) {
        char name[2] = {c, '\0'};
        BPL_OK_OR_FAIL(bpl_rule_add_param(rule, name, BPL_PARAM_REAL, 0.5, 0, 1, NULL, "x"));
    }
    return rule;
}

/* A random net: 1-3 layers of 1-5 units, any activation and loss, any
 * built-in rule (or none, or a user's), hyperparameters anywhere in their
 * bounds, initialisers with any gain, frozen tensors, a few steps at any
 * learning rate (some diverge and are refused). */
static bpl_net *random_net(uint64_t *s, char *what, size_t size)
{
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SIGMOID, BPL_ACT_RELU, BPL_ACT_LINEAR,
                               BPL_ACT_SOFTMAX};
    size_t n_rules = bpl_rule_builtin_count(), pick = (size_t)(draw(s) % (n_rules + 2));
    size_t n_layers = 1 + (size_t)(draw(s) % 3), inputs = 1 + (size_t)(draw(s) % 5);
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, inputs, draw(s)));
    for (size_t l = 0; l < n_layers; l++) {
        int act = acts[draw(s) % (l + 1 == n_layers ? 5 : 4)];
        int init = (int)(draw(s) % (BPL_INIT_CONSTANT + 1));
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, 1 + (size_t)(draw(s) % 5), act, init));
    }
    int out_act = bpl_layer_activation(bpl_net_layer(net, n_layers - 1));
    int ce = out_act == BPL_ACT_SOFTMAX || out_act == BPL_ACT_SIGMOID;
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, ce && draw(s) % 2 ? BPL_LOSS_CROSS_ENTROPY
                                                           : BPL_LOSS_MSE));
    const char *rule_name = pick < n_rules ? bpl_rule_builtin_name(pick)
                            : pick == n_rules ? "none"
                                              : "user";
    snprintf(what, size, "%s, %zu layers", rule_name, n_layers);
    if (pick == n_rules)
        return net;
    bpl_rule *rule = NULL;
    if (pick < n_rules)
        BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, rule_name));
    else
        rule = user_rule();
    randomise_rule(rule, s);
    int rc = bpl_net_set_rule(net, rule);
    if (rc != BPL_OK) { /* microcircuits and segregated nets need a hidden layer */
        ck_assert_msg(rc == BPL_ERR_STATE, "%s: set_rule: %s", what, bpl_last_error_message());
        bpl_rule_destroy(rule);
        return net;
    }
    return net;
}

/* Poke the net as a user might: initialisers at any gain, frozen flags. */
static void poke(bpl_net *net, uint64_t *s)
{
    static const double gains[] = {1.0, -2.0, 1e3, 1e30, 3e38, 1e39, 1e300};
    for (int k = 0; k < 3; k++) {
        bpl_layer *layer = bpl_net_layer(net, (size_t)(draw(s) % bpl_net_layer_count(net)));
        const char *name = bpl_layer_tensor_name(layer, (size_t)(draw(s) % 2));
        int init = (int)(draw(s) % (BPL_INIT_CONSTANT + 1));
        int rc = bpl_layer_init_tensor(layer, name, init, gains[draw(s) % 7]);
        ck_assert_msg(rc == BPL_OK || rc == BPL_ERR_RANGE, "init_tensor: %s",
                      bpl_last_error_message());
        rc = bpl_layer_set_frozen(layer, name, (int)(draw(s) % 2));
        ck_assert_int_eq(rc, BPL_OK);
    }
}

START_TEST(save_then_load_always)
{
    uint64_t s = 2024;
    for (int trial = 0; trial < 120; trial++) {
        char what[96];
        bpl_net *net = random_net(&s, what, sizeof what);
        poke(net, &s);
        expect_round_trip(net, what);
        if (bpl_net_rule(net)) {
            size_t steps = (size_t)(draw(&s) % 4), batch = 1 + (size_t)(draw(&s) % 4);
            int rc = train(net, steps, batch, draw(&s));
            ck_assert_msg(rc == BPL_OK || rc == BPL_ERR_NUMERIC || rc == BPL_ERR_STATE,
                          "%s: training: %d %s", what, rc, bpl_last_error_message());
            expect_round_trip(net, what);
        }
        bpl_net_destroy(net);
    }

    /* a net without layers */
    bpl_net *empty;
    BPL_OK_OR_FAIL(bpl_net_create(&empty, 4, 1));
    expect_round_trip(empty, "no layers");
    bpl_net_destroy(empty);

    /* what a file may not hold is refused where it would be made ... */
    bpl_net *net = make_net(NULL, NULL, 3, small_units, 3);
    bpl_layer *layer = bpl_net_layer(net, 1);
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "tab\there", 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 0, NULL),
                     BPL_ERR_INVALID_ARG, "printable");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "caf\xc3\xa9", 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 0, NULL),
                     BPL_ERR_INVALID_ARG, "printable");
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "line\nbreak";
    vt.forward = user_forward;
    vt.compute_targets = user_targets;
    vt.update = user_update;
    bpl_rule *bad_rule = NULL;
    BPL_EXPECT_ERROR(bpl_rule_create(&bad_rule, &vt, NULL), BPL_ERR_INVALID_ARG, "printable");
    for (int i = 2; i < BPL__MAX_TENSORS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, name, 1, 1, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                            0, NULL));
    }
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "one too many", 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 0, NULL),
                     BPL_ERR_OVERFLOW, "64 tensors");
    expect_round_trip(net, "64 tensors in a layer");

    /* ... or when saving: NaN written through a borrowed pointer */
    float *w;
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "t7", &w, NULL, NULL));
    w[0] = NAN;
    const char *path = test_temp_path("never-written.bpl");
    BPL_EXPECT_ERROR(bpl_net_save(net, path), BPL_ERR_NUMERIC, "'t7'");
    ck_assert_int_ne(access(path, F_OK), 0);
    bpl_net_destroy(net);
}
END_TEST

/* ---- 5. what a file can make the library compute and allocate ---------------------- */

/* A rule's step count loaded at its limit and trained on still saves a
 * file that loads: the count saturates (found by fuzz-model, which loaded
 * a dtp net counted 2^53 - 10 steps, trained it and could not reload it). */
START_TEST(rule_step_count_at_limit)
{
    static const char *const rules[] = {"tp", "dtp", "microcircuit"};
    static const size_t units[] = {5, 4, 3};
    unsigned char state[BPL__COUNT_STATE_SIZE];
    size_t size;
    BPL_OK_OR_FAIL(bpl__count_state_save(BPL__MAX_RULE_STEPS - 2, state, sizeof state, &size));
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        bpl_net *net = make_net(rules[i], NULL, 6, units, 3);
        bpl_rule *rule = bpl_net_rule(net);
        BPL_OK_OR_FAIL(rule->vt.load_state(rule->self, net, state, size));
        int rc = train(net, 5, 2, 7);
        ck_assert_msg(rc == BPL_OK, "%s: %s", rules[i], bpl_last_error_message());
        expect_round_trip(net, rules[i]);
        void *data;
        size_t bytes;
        BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &bytes));
        bpl_net *back;
        BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&back, data, bytes));
        bpl_buffer_free(data);
        rule = bpl_net_rule(back);
        unsigned char saved[BPL__COUNT_STATE_SIZE];
        size_t saved_size;
        BPL_OK_OR_FAIL(rule->vt.save_state(rule->self, saved, sizeof saved, &saved_size));
        uint64_t count;
        BPL_OK_OR_FAIL(bpl__count_state_load(saved, saved_size, BPL__MAX_RULE_STEPS, &count));
        ck_assert_msg(count == BPL__MAX_RULE_STEPS, "%s: count %llu", rules[i],
                      (unsigned long long)count);
        bpl_net_destroy(back);
        bpl_net_destroy(net);
    }
}
END_TEST

START_TEST(time_steps_bounded)
{
    const char *mc[] = {"mode", "continuous", "steps", "3", NULL};
    model m = trained_file("microcircuit", mc, "mc-source.bpl");
    layout *L = parse(&m);
    size_t at = param_at(L, "steps");
    set_f64(&m, at, 1e7);
    expect_refused(&m, "regress-microcircuit-steps.bpl", BPL_ERR_FORMAT, "'steps'");
    set_f64(&m, at, 10001);
    expect_refused(&m, "mc-steps.bpl", BPL_ERR_FORMAT, "'steps'");
    set_f64(&m, at, 10000);
    bpl_net *net = expect_loaded(&m, "mc-most-steps.bpl");
    BPL_EXPECT_ERROR(bpl_rule_set(bpl_net_rule(net), "steps", 10001), BPL_ERR_RANGE, "steps");
    bpl_net_destroy(net);
    free(L);
    free(m.data);

    const char *seg[] = {"mode", "spiking", "phase_steps", "3", "integration_steps", "2",
                         "test_steps", "3", "test_average", "2", NULL};
    m = trained_file("segregated", seg, "seg-source.bpl");
    L = parse(&m);
    const char *const names[] = {"test_steps", "phase_steps", "integration_steps",
                                 "test_average"};
    for (size_t i = 0; i < 4; i++) {
        size_t p = param_at(L, names[i]);
        double was;
        memcpy(&was, m.data + p, sizeof was);
        char name[64], needle[64];
        snprintf(name, sizeof name, i == 0 ? "regress-segregated-%s.bpl" : "seg-%s.bpl",
                 names[i]);
        snprintf(needle, sizeof needle, "'%s'", names[i]);
        set_f64(&m, p, i < 2 ? 1e6 : 10001);
        expect_refused(&m, name, BPL_ERR_FORMAT, needle);
        set_f64(&m, p, was);
    }
    free(L);
    free(m.data);
}
END_TEST

/* Load `path` in a child process whose address space may grow by at most
 * `headroom` bytes; returns the status, or 1000 + the signal that killed it. */
static int load_with_capped_memory(const char *path, size_t headroom)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* BLAS and the allocator settle before the measure */
        bpl_net *warm = make_net("backprop", NULL, 3, small_units, 3);
        train(warm, 1, 2, 1);
        bpl_net_destroy(warm);
        unsigned long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (!statm || fscanf(statm, "%lu", &pages) != 1)
            _exit(200);
        fclose(statm);
        struct rlimit lim;
        getrlimit(RLIMIT_AS, &lim);
        rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + headroom;
        if (lim.rlim_max == RLIM_INFINITY || cap < lim.rlim_max)
            lim.rlim_cur = cap;
        if (setrlimit(RLIMIT_AS, &lim) != 0)
            _exit(201);
        bpl_net *net = NULL;
        int rc = bpl_net_load(&net, path);
        bpl_net_destroy(net);
        _exit(-rc);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        return 1000 + WTERMSIG(status);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) < 200, "child set-up failed (%d)", WEXITSTATUS(status));
    return -WEXITSTATUS(status);
}

/* The documented bound on what a load allocates. */
static size_t load_budget(size_t file_size)
{
    return 16 * file_size + ((size_t)1 << 20);
}

START_TEST(missing_rule_tensors)
{
    /* a small net that names sdtp with 65536 auxiliary outputs: the rule
     * would make 64 x 65537 inverse weights (with gradient and moments) and
     * 65536 x 64 auxiliary ones, 84 MB from a file of 2 KB */
    const size_t units[] = {64, 1};
    bpl_net *net = make_net(NULL, NULL, 1, units, 2);
    char path[512];
    snprintf(path, sizeof path, "%s", test_temp_path("no-rule.bpl"));
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    model m = read_model(path);
    layout *L = parse(&m);
    set_rule(&m, L, "sdtp", "auxiliary_outputs", 65536);
    write_edited(&m, "regress-sdtp-auxiliary-outputs.bpl", path);
    int rc = load_with_capped_memory(path, load_budget(m.size));
    ck_assert_msg(rc == BPL_ERR_FORMAT,
                  "a %zu-byte file: status %d under a memory cap of 16 F + 1 MiB", m.size, rc);
    expect_refused(&m, "regress-sdtp-auxiliary-outputs.bpl", BPL_ERR_FORMAT, "'inverse'");
    free(L);
    free(m.data);

    /* a saved fa net, its feedback matrix cut out */
    m = trained_file("fa", NULL, "fa-source.bpl");
    L = parse(&m);
    drop_tensor(&m, L, find_tensor(L, 2, "feedback"));
    expect_refused(&m, "fa-without-feedback.bpl", BPL_ERR_FORMAT, "'feedback'");
    free(L);
    free(m.data);

    /* the same net saved with its rule, every tensor in the file, loads */
    const char *aux[] = {"auxiliary_outputs", "16", NULL};
    net = make_net("sdtp", aux, 1, units, 2);
    snprintf(path, sizeof path, "%s", test_temp_path("sdtp-complete.bpl"));
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    m = read_model(path);
    rc = load_with_capped_memory(path, load_budget(m.size));
    ck_assert_msg(rc == BPL_OK, "status %d under a memory cap of 16 F + 1 MiB", rc);
    free(m.data);
}
END_TEST

/* A user's rule that adds many small tensors: the file is mostly records. */
static int many_attach(void *self, bpl_net *net)
{
    (void)self;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++)
        for (int i = 2; i < BPL__MAX_TENSORS; i++) {
            char name[4] = {(char)('A' + i / 26), (char)('a' + i % 26), '\0', '\0'};
            int rc = bpl_layer_add_tensor(bpl_net_layer(net, l), name, 1, 1,
                                          BPL_GROUP_NONE, BPL_INIT_CONSTANT, 1.0, NULL);
            if (rc != BPL_OK)
                return rc;
        }
    return BPL_OK;
}

START_TEST(load_memory_bounded)
{
    /* large tensors: a trained sdtp net with auxiliary outputs */
    const char *aux[] = {"auxiliary_outputs", "300", NULL};
    const size_t units[] = {256, 256, 10};
    bpl_net *net = make_net("sdtp", aux, 64, units, 3);
    BPL_OK_OR_FAIL(train(net, 1, 8, 4));
    const char *path = test_temp_path("large.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    model m = read_model(path);
    int rc = load_with_capped_memory(path, load_budget(m.size));
    ck_assert_msg(rc == BPL_OK, "%zu-byte file: status %d under a cap of 16 F + 1 MiB",
                  m.size, rc);
    printf("load_memory_bounded: a %zu-byte sdtp net loads within 16 F + 1 MiB\n", m.size);
    free(m.data);

    /* many small tensors: 256 layers of 64 tensors each, left pending */
    BPL_OK_OR_FAIL(bpl_net_create(&net, 1, 3));
    for (int l = 0; l < 256; l++)
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, 1, BPL_ACT_SIGMOID, BPL_INIT_ZERO));
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "many";
    vt.attach = many_attach;
    vt.forward = user_forward;
    vt.compute_targets = user_targets;
    vt.update = user_update;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, NULL));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    path = test_temp_path("many.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    m = read_model(path);
    rc = load_with_capped_memory(path, load_budget(m.size));
    ck_assert_msg(rc == BPL_OK, "%zu-byte file: status %d under a cap of 16 F + 1 MiB",
                  m.size, rc);
    printf("load_memory_bounded: a %zu-byte file of %d tensors loads within 16 F + 1 MiB\n",
           m.size, 256 * BPL__MAX_TENSORS);
    free(m.data);
}
END_TEST

/* A conv layer whose workspace is large for its few weights (1x1 over a
 * 32x1x1 input padded by 2047: 2^24 positions, 2 GiB of im2col) loads
 * within the bound: the workspace waits for the first computation, which
 * fails cleanly under the cap. */
START_TEST(conv_workspace_not_allocated_by_load)
{
    bpl_net *net;
    const size_t chw[] = {32, 1, 1};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 32, 3));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 1, 1, 1, 1, 2047, BPL_ACT_LINEAR,
                                      BPL_INIT_GLOROT_UNIFORM));
    const char *path = test_temp_path("padded.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    model m = read_model(path);
    int rc = load_with_capped_memory(path, load_budget(m.size));
    ck_assert_msg(rc == BPL_OK, "%zu-byte file: status %d under a cap of 16 F + 1 MiB", m.size,
                  rc);
    free(m.data);
    BPL_OK_OR_FAIL(bpl_net_load(&net, path));
    ck_assert_ptr_null(net->layers[0]->work); /* sized, not allocated */
    ck_assert_uint_ge(net->layers[0]->work_size, (size_t)1 << 24);
    bpl_net_destroy(net);
}
END_TEST

static size_t tensor_values(bpl_net *net)
{
    size_t n = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, bpl_layer_tensor_name(layer, t),
                                                 &rows, &cols, NULL));
            n += rows * cols;
        }
    }
    return n;
}

/* Every rule at its most expensive: each time-step hyperparameter at the
 * largest value the rule accepts, simulated modes, learned and symmetric
 * feedback, auxiliary outputs.  The net comes from a file, as an untrusted
 * one would. */
START_TEST(step_cost_bounded)
{
    static const char *const costly[][9] = {
        {"microcircuit", "mode", "continuous", "learn_topdown", "1", "learn_pi", "1", NULL},
        {"segregated", "mode", "spiking", "feedback", "symmetric", "learn_feedback", "1",
         NULL},
        {"sdtp", "auxiliary_outputs", "8", NULL},
        {"dtp", "first_target", "gradient", NULL},
        {"tp", "schedule", "alternating", "alternate_steps", "1", NULL},
        {"backprop", NULL},
        {"fa", NULL},
        {"dfa", NULL}};
    const size_t units[] = {3, 2}, batch = 2;
    for (size_t r = 0; r < sizeof costly / sizeof costly[0]; r++) {
        const char *name = costly[r][0];
        bpl_rule *rule;
        BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, name));
        for (size_t i = 1; costly[r][i]; i += 2)
            BPL_OK_OR_FAIL(bpl_rule_set_string(rule, costly[r][i], costly[r][i + 1]));
        for (size_t i = 0; i < bpl_rule_param_count(rule); i++) {
            const char *param;
            double hi;
            BPL_OK_OR_FAIL(bpl_rule_param_info(rule, i, &param, NULL, NULL, NULL, &hi, NULL,
                                               NULL));
            if (strcmp(param, "steps") == 0 || strcmp(param, "phase_steps") == 0 ||
                strcmp(param, "test_steps") == 0)
                BPL_OK_OR_FAIL(bpl_rule_set(rule, param, hi));
        }
        const int acts[] = {BPL_ACT_TANH, BPL_ACT_SIGMOID};
        bpl_net *net = test_make_net(2, units, acts, 2, 3);
        BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
        const char *path = test_temp_path("costly.bpl");
        BPL_OK_OR_FAIL(bpl_net_save(net, path));
        bpl_net_destroy(net);
        BPL_OK_OR_FAIL(bpl_net_load(&net, path));

        double budget = STEP_BUDGET * (double)tensor_values(net) * (double)(batch + 2);
        float x[2 * 2] = {0.5f, -0.25f, 1.0f, 0.0f}, y[2 * 2] = {1, 0, 0, 1}, out[2 * 2];
        double flops;
        BPL_OK_OR_FAIL(bpl_net_set_profiling(net, 1));
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, batch, NULL));
        BPL_OK_OR_FAIL(bpl_net_profile(net, NULL, NULL, &flops, NULL));
        ck_assert_msg(flops > 0 && flops <= budget,
                      "%s: a training step made %g operations, the budget is %g", name, flops,
                      budget);
        BPL_OK_OR_FAIL(bpl_net_set_profiling(net, 1));
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, batch, out, batch * 2));
        BPL_OK_OR_FAIL(bpl_net_profile(net, NULL, NULL, &flops, NULL));
        ck_assert_msg(flops > 0 && flops <= budget,
                      "%s: a prediction made %g operations, the budget is %g", name, flops,
                      budget);
        bpl_net_destroy(net);
    }
}
END_TEST

/* ---- conv layers ------------------------------------------------------------ */

/* 2x6x6 -> conv 3@3x3 pad 1 (tanh) -> conv 2@2x2 stride 2 (tanh) -> dense 3
 * (sigmoid), fa (its feedback matrices are in the file), trained for two
 * steps, as a file. */
static model conv_file(const char *name)
{
    bpl_net *net;
    const size_t chw[] = {2, 6, 6};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 72, 3));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(
        bpl_net_add_conv2d(net, 3, 3, 3, 1, 1, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(
        bpl_net_add_conv2d(net, 2, 2, 2, 2, 0, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM));
    test_attach(net, "fa");
    BPL_OK_OR_FAIL(train(net, 2, 4, 5));
    const char *path = test_temp_path(name);
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    return read_model(path);
}

enum { P_UNITS, P_KERNEL_H, P_KERNEL_W, P_STRIDE, P_PAD };

/* The conv file with one u64 of layer `l`'s record (a param, or an extent
 * of its shape) set to `value`: refused with BPL_ERR_FORMAT and `needle`. */
static void expect_conv_param_refused(size_t l, int field, uint64_t value, const char *needle)
{
    model m = conv_file("conv-source.bpl");
    layout *L = parse(&m);
    put_le(m.data + L->params_at[l] + 8 * (size_t)field, value, 8);
    expect_refused(&m, "conv-edited.bpl", BPL_ERR_FORMAT, needle);
    free(L);
    free(m.data);
}

static void expect_conv_extent_refused(size_t l, size_t dim, uint64_t value,
                                       const char *needle)
{
    model m = conv_file("conv-source.bpl");
    layout *L = parse(&m);
    put_le(m.data + L->shape_at[l] + 4 + 8 * dim, value, 8);
    expect_refused(&m, "conv-edited.bpl", BPL_ERR_FORMAT, needle);
    free(L);
    free(m.data);
}

/* Give a tensor of the file another shape, its values (and moments)
 * zero-padded or cut to fit. */
static void reshape_tensor(model *m, const tensor_at *t, size_t rows, size_t cols)
{
    size_t old_n = t->rows * t->cols, n = rows * cols, parts = t->flags & 1 ? 3 : 1;
    size_t old_bytes = 4 * old_n * parts, bytes = 4 * n * parts;
    ck_assert_uint_le(m->size - old_bytes + bytes, m->cap);
    memmove(m->data + t->values + bytes, m->data + t->values + old_bytes,
            m->size - t->values - old_bytes);
    if (bytes > old_bytes)
        memset(m->data + t->values + old_bytes, 0, bytes - old_bytes);
    m->size = m->size - old_bytes + bytes;
    put_le(m->data + t->values - 17, rows, 8);
    put_le(m->data + t->values - 9, cols, 8);
}

START_TEST(conv_file_loads)
{
    /* the unedited file loads, and the parser above reads it right */
    model m = conv_file("conv-source.bpl");
    layout *L = parse(&m);
    ck_assert_uint_eq(L->n_layers, 3);
    ck_assert_uint_eq(get_le(m.data + L->params_at[0] + 8 * P_UNITS, 8), 3);
    ck_assert_uint_eq(get_le(m.data + L->params_at[1] + 8 * P_STRIDE, 8), 2);
    ck_assert_uint_eq(L->params_at[2], 0);
    ck_assert_uint_eq(find_tensor(L, 0, "weight")->cols, 18);
    ck_assert_uint_eq(find_tensor(L, 1, "feedback")->rows, 2); /* W's layout */
    ck_assert_uint_eq(find_tensor(L, 1, "feedback")->cols, 12);
    bpl_net *net = expect_loaded(&m, "conv-unedited.bpl");
    bpl_net_destroy(net);
    free(L);
    free(m.data);
}
END_TEST

START_TEST(conv_params_checked)
{
    /* a zero stride or kernel */
    expect_conv_param_refused(0, P_STRIDE, 0, "the kernel and the stride must be > 0");
    expect_conv_param_refused(1, P_KERNEL_W, 0, "layer 1 (conv2d) does not fit its input 3x6x6");
    /* a kernel larger than the padded input */
    expect_conv_param_refused(0, P_KERNEL_H, 9, "kernel 9x3 does not fit the input padded");
    expect_conv_param_refused(1, P_KERNEL_H, 7, "does not fit the input padded by 0");
    /* params whose sums and products overflow */
    expect_conv_param_refused(0, P_PAD, (uint64_t)1 << 63, "does not fit the input padded");
    expect_conv_param_refused(0, P_PAD, UINT64_MAX / 2 - 2, "does not fit the input padded");
    expect_conv_param_refused(0, P_KERNEL_H, (uint64_t)1 << 33, "kernel 8589934592x3 does");
    expect_conv_param_refused(0, P_PAD, (uint64_t)1 << 40, "too large");
    expect_conv_param_refused(0, P_STRIDE, UINT64_MAX, "stored shape is not the one");
    /* a width out of range, or other than the stored shape's */
    expect_conv_param_refused(0, P_UNITS, (uint64_t)1 << 24 | 1, "width is beyond 2^24");
    expect_conv_param_refused(0, P_UNITS, UINT64_MAX, "width is beyond 2^24");
    expect_conv_param_refused(0, P_UNITS, 0, "stored shape is not the one its kind gives");
    expect_conv_param_refused(0, P_UNITS, 4, "layer 0 (conv2d): its stored shape");
    /* a window that gives another shape than the stored one */
    expect_conv_param_refused(0, P_PAD, 0, "layer 0 (conv2d): its stored shape");
    expect_conv_param_refused(1, P_STRIDE, 1, "layer 1 (conv2d): its stored shape");
}
END_TEST

/* An activation the library would not give the layer's kind: a bad file
 * (BPL_ERR_FORMAT), not a bad argument of the caller's. */
START_TEST(spatial_activation_checked)
{
    model m = conv_file("conv-source.bpl");
    layout *L = parse(&m);
    put_le(m.data + L->layer_count_at[0] - 8, BPL_ACT_SOFTMAX, 4);
    expect_refused(&m, "conv-softmax.bpl", BPL_ERR_FORMAT, "end the net with a dense softmax");
    free(L);
    free(m.data);

    bpl_net *net;
    const size_t chw[] = {1, 4, 4};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 16, 3));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_maxpool2d(net, 2, 0));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    const char *path = test_temp_path("pool-source.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    m = read_model(path);
    L = parse(&m);
    put_le(m.data + L->layer_count_at[0] - 8, BPL_ACT_TANH, 4);
    expect_refused(&m, "pool-tanh.bpl", BPL_ERR_FORMAT, "no activation of its own");
    free(L);
    free(m.data);
}
END_TEST

START_TEST(conv_shape_checked)
{
    /* a stored shape that disagrees with its kind's */
    expect_conv_extent_refused(0, 1, 5, "stored shape is not the one its kind gives it");
    expect_conv_extent_refused(1, 0, 3, "stored shape is not the one its kind gives it");
    expect_conv_extent_refused(1, 2, 0, "impossible extent");
    model m = conv_file("conv-source.bpl");
    layout *L = parse(&m);
    put_le(m.data + L->shape_at[0], 2, 4); /* rank 2: the last extent read as activation */
    expect_refused(&m, "conv-rank.bpl", BPL_ERR_FORMAT, NULL);
    free(L);
    free(m.data);

    /* a kind this library does not know */
    m = conv_file("conv-source.bpl");
    L = parse(&m);
    memcpy(m.data + L->layer_at[1] + 4, "conv3d", 6);
    expect_refused(&m, "conv-unknown-kind.bpl", BPL_ERR_FORMAT,
                   "layer 1 is of kind 'conv3d', which this library does not know (it "
                   "knows dense, conv2d, maxpool2d, avgpool2d)");
    free(L);
    free(m.data);
}
END_TEST

START_TEST(conv_tensors_checked)
{
    /* a conv layer holding a dense layer's weight, [units][inputs] */
    model m = conv_file("conv-source.bpl");
    layout *L = parse(&m);
    reshape_tensor(&m, find_tensor(L, 0, "weight"), 3, 72);
    expect_refused(&m, "conv-dense-weight.bpl", BPL_ERR_FORMAT,
                   "a weight or bias does not fit its layer");
    free(L);
    free(m.data);
    /* the same values as another shape, and a bias per position */
    m = conv_file("conv-source.bpl");
    L = parse(&m);
    reshape_tensor(&m, find_tensor(L, 1, "weight"), 6, 4);
    expect_refused(&m, "conv-weight-reshaped.bpl", BPL_ERR_FORMAT, "does not fit its layer");
    free(L);
    free(m.data);
    m = conv_file("conv-source.bpl");
    L = parse(&m);
    reshape_tensor(&m, find_tensor(L, 0, "bias"), 1, 108);
    expect_refused(&m, "conv-bias-per-position.bpl", BPL_ERR_FORMAT, "does not fit its layer");
    free(L);
    free(m.data);
    /* missing weight or bias */
    static const char *const parts[] = {"weight", "bias"};
    for (int i = 0; i < 2; i++) {
        m = conv_file("conv-source.bpl");
        L = parse(&m);
        drop_tensor(&m, L, find_tensor(L, 1, parts[i]));
        expect_refused(&m, "conv-missing.bpl", BPL_ERR_FORMAT, "lacks its weight or bias");
        free(L);
        free(m.data);
    }
    /* fewer tensors than its kind has */
    m = conv_file("conv-source.bpl");
    L = parse(&m);
    put_le(m.data + L->layer_count_at[0], 1, 4);
    expect_refused(&m, "conv-one-tensor.bpl", BPL_ERR_FORMAT, NULL);
    free(L);
    free(m.data);
    /* a weight twice: the count says one more, the second a copy */
    m = conv_file("conv-source.bpl");
    L = parse(&m);
    const tensor_at *w = find_tensor(L, 0, "weight");
    size_t len = w->end - w->start;
    ck_assert_uint_le(m.size + len, m.cap);
    memmove(m.data + w->end + len, m.data + w->end, m.size - w->end);
    memcpy(m.data + w->end, m.data + w->start, len);
    m.size += len;
    put_le(m.data + L->layer_count_at[0], get_le(m.data + L->layer_count_at[0], 4) + 1, 4);
    expect_refused(&m, "conv-weight-twice.bpl", BPL_ERR_FORMAT, "two tensors of the same name");
    free(L);
    free(m.data);
    /* fa's feedback of another shape than the weight's */
    m = conv_file("conv-source.bpl");
    L = parse(&m);
    reshape_tensor(&m, find_tensor(L, 1, "feedback"), 12, 2); /* W^T's: a dense B's */
    expect_refused(&m, "conv-feedback-reshaped.bpl", BPL_ERR_FORMAT, "restoring its rule");
    free(L);
    free(m.data);
}
END_TEST

/* A conv layer's parameters must be in the file: a width whose weights
 * would take 20 MB, with the shape to match, is refused before anything is
 * allocated for it. */
START_TEST(conv_larger_than_file)
{
    model m = conv_file("conv-source.bpl");
    layout *L = parse(&m);
    put_le(m.data + L->params_at[0] + 8 * P_UNITS, (uint64_t)1 << 18, 8);
    put_le(m.data + L->shape_at[0] + 4, (uint64_t)1 << 18, 8);
    char path[512];
    write_edited(&m, "conv-wide.bpl", path);
    int rc = load_with_capped_memory(path, load_budget(m.size));
    ck_assert_msg(rc == BPL_ERR_FORMAT, "status %d under a memory cap of 16 F + 1 MiB", rc);
    expect_refused(&m, "conv-wide.bpl", BPL_ERR_FORMAT,
                   "a layer is larger than the rest of the file");
    free(L);
    free(m.data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("untrusted_model");
    TCase *tc = tcase_create("untrusted_model");
    /* a file that made the library spin fails its case instead of hanging */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, zero_generator_state);
    tcase_add_test(tc, degenerate_generator_terminates);
    tcase_add_test(tc, negative_second_moment);
    tcase_add_test(tc, optimiser_state_checked);
    tcase_add_test(tc, step_refuses_bad_state);
    tcase_add_test(tc, symmetric_feedback_overflow);
    tcase_add_test(tc, values_beyond_float_refused);
    tcase_add_test(tc, save_then_load_always);
    tcase_add_test(tc, rule_step_count_at_limit);
    tcase_add_test(tc, time_steps_bounded);
    tcase_add_test(tc, missing_rule_tensors);
    tcase_add_test(tc, load_memory_bounded);
    tcase_add_test(tc, step_cost_bounded);
    tcase_add_test(tc, conv_file_loads);
    tcase_add_test(tc, conv_params_checked);
    tcase_add_test(tc, conv_shape_checked);
    tcase_add_test(tc, spatial_activation_checked);
    tcase_add_test(tc, conv_workspace_not_allocated_by_load);
    tcase_add_test(tc, conv_tensors_checked);
    tcase_add_test(tc, conv_larger_than_file);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
