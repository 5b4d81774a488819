/*
 * fuzz_api.c - the public API driven by sequences of calls decoded from the
 * input (layout: fuzz_format.h), as SQLite and libgit2 test theirs: nets
 * and layers, built-in and user rules, hyperparameters, training, fitting,
 * prediction, evaluation, alignment, tensors, freezing, random fills,
 * datasets, saving and loading, the building blocks of rules, with
 * well-formed and hostile arguments (NULL, zero, sizes whose products
 * overflow, wrong lengths, NaN, bad enums, calls in the wrong order), and
 * calls back into the library from a user rule's hooks and from a progress
 * callback.
 *
 * What must hold: every call returns a status its documentation allows,
 * never BPL_ERR_INTERNAL, and leaves a message when it fails; a hostile
 * call fails; a failed constructor sets *out to NULL; a successful training
 * step reports a finite loss; whatever bpl_net_save writes, bpl_net_load
 * reads, and what the loaded net saves loads back to the same bytes; the
 * sanitizers see no error, and libFuzzer's -timeout no hang.
 *
 * The work per input is bounded: at most MAX_OPS operations, nets of
 * MAX_LAYERS layers of at most MAX_WIDTH units, batches and datasets of at
 * most MAX_ROWS examples, bpl_net_fit for at most MAX_EPOCHS epochs unless
 * a progress callback stops it within MAX_EVENTS events, calls back into
 * the library one level deep, and no call whose cost estimate exceeds
 * FUZZ_COST_CAP (fuzz_util.h).  Hostile sizes are only those the library
 * must refuse before touching memory: zero, beyond its documented limits,
 * or counts whose product with the row width overflows size_t (a caller
 * cannot hold such a buffer).  A caller that claims a buffer holds more
 * than it does is beyond any check, so the target never does that.
 */
#include <limits.h>

#include "fuzz_input.h"
#include "fuzz_util.h"

#include "bioplaus_rule.h"

#define MAX_OPS 48
#define MAX_LAYERS 4
#define MAX_WIDTH 8
#define MAX_ROWS 8
#define MAX_EPOCHS 3
#define MAX_EVENTS 8
#define LIB_MAX_UNITS ((size_t)1 << 24) /* units and inputs the library accepts */

static const unsigned any = FZ_ANY;
static const unsigned refused = FZ_ANY_ERROR;

typedef struct api {
    input in;
    bpl_net *net[SLOTS];
    bpl_rule *rule[SLOTS]; /* not attached: ours to destroy */
    bpl_dataset *ds[SLOTS];
    int depth;             /* > 0 while a hook or callback calls back into the library */
    unsigned turns;        /* calls back made so far, to vary them */
} api;

static api S;

/* A pointer the library must overwrite with NULL when a constructor fails. */
static char sentinel;
#define UNSET(type) ((type *)(void *)&sentinel)

static unsigned next(void)
{
    return take(&S.in);
}

/* Exactly n elements, none for n = 0: a read past a buffer of the length a
 * call was given, even an empty one, is caught. */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p && n)
        fuzz_abort("out of memory in the target");
    return p;
}

/* -1 for a well-formed call, else which of `kinds` hostile calls to make. */
static int hostile(unsigned kinds)
{
    unsigned v = next();
    return v < VARIANT_HOSTILE || kinds == 0 ? -1 : (int)((v - VARIANT_HOSTILE) % kinds);
}

/* A count whose product with `width` overflows size_t, wrapping to less
 * than `width` (0, refused anyway, when nothing can overflow). */
static size_t overflowing(size_t width)
{
    return width > 1 ? SIZE_MAX / width + 1 : 0;
}

static float *take_floats(size_t n)
{
    float *v = xcalloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = ((float)next() - 128.0f) / 32.0f;
    return v;
}

/* One-hot rows of `width`, the classes from the input. */
static float *take_targets(size_t rows, size_t width)
{
    float *y = xcalloc(rows * width, sizeof *y);
    for (size_t i = 0; width && i < rows; i++)
        y[i * width + next() % width] = 1.0f;
    return y;
}

static void check_out(int rc, const void *out, const char *call)
{
    if ((rc == BPL_OK) != (out != NULL && out != (const void *)&sentinel))
        fuzz_abort("%s returned %d with *out %p", call, rc, out);
}

/* A hostile call must fail. */
static void check_refused(int v, int rc, const char *call)
{
    if (v >= 0 && rc == BPL_OK)
        fuzz_abort("%s accepted hostile call %d", call, v);
}

static size_t width_or_1(size_t n)
{
    return n ? n : 1;
}

/* ---- the objects --------------------------------------------------------------- */

/* The net of a slot, or the first there is: operations find a net to act on. */
static bpl_net *pick_net(void)
{
    unsigned b = next();
    for (unsigned i = 0; i < SLOTS; i++)
        if (S.net[(b + i) % SLOTS])
            return S.net[(b + i) % SLOTS];
    return NULL;
}

static bpl_layer *pick_layer(bpl_net *net)
{
    size_t n = bpl_net_layer_count(net);
    return bpl_net_layer(net, next() % width_or_1(n));
}

/* An unattached rule of a slot, else the rule of a net. */
static bpl_rule *pick_rule(void)
{
    unsigned b = next();
    if (b < 0x80 && S.rule[b % SLOTS])
        return S.rule[b % SLOTS];
    for (unsigned i = 0; i < SLOTS; i++)
        if (bpl_net_rule(S.net[(b + i) % SLOTS]))
            return bpl_net_rule(S.net[(b + i) % SLOTS]);
    return S.rule[b % SLOTS];
}

/* A tensor of the layer by index, else a STRING. */
static void take_tensor_name(bpl_layer *layer, char name[STR_MAX])
{
    unsigned b = next();
    size_t n = bpl_layer_tensor_count(layer);
    if (b < NAME_RAW && n > 0)
        snprintf(name, STR_MAX, "%s", bpl_layer_tensor_name(layer, b % n));
    else
        take_string(&S.in, name);
}

static bpl_rule *builtin(size_t index)
{
    bpl_rule *rule = UNSET(bpl_rule);
    const char *name = bpl_rule_builtin_name(index % bpl_rule_builtin_count());
    int rc = fuzz_check(bpl_rule_create_builtin(&rule, name), FZ(BPL_OK) | FZ(BPL_ERR_NOMEM),
                        "bpl_rule_create_builtin");
    check_out(rc, rule, "bpl_rule_create_builtin");
    return rc == BPL_OK ? rule : NULL;
}

/* A dataset shaped for `net`, `rows` examples from the input. */
static bpl_dataset *dataset_for(bpl_net *net, size_t rows)
{
    size_t n_in = bpl_net_inputs(net), n_out = bpl_net_outputs(net);
    if (!n_in || !n_out)
        return NULL;
    float *x = take_floats(rows * n_in), *y = take_targets(rows, n_out);
    bpl_dataset *ds = UNSET(bpl_dataset);
    int rc = fuzz_check(bpl_dataset_from_f32(&ds, x, y, rows, n_in, n_out),
                        FZ(BPL_OK) | FZ(BPL_ERR_NOMEM), "bpl_dataset_from_f32");
    check_out(rc, ds, "bpl_dataset_from_f32");
    free(x);
    free(y);
    return rc == BPL_OK ? ds : NULL;
}

/* ---- saving and loading ------------------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0)
        fuzz_abort("cannot read back %s", path);
    long n = ftell(f);
    unsigned char *buf = xcalloc(n > 0 ? (size_t)n : 1, 1);
    rewind(f);
    if (n < 0 || fread(buf, 1, (size_t)n, f) != (size_t)n)
        fuzz_abort("cannot read back %s", path);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static bpl_net *load_must_work(const char *path, const char *what)
{
    bpl_net *net = UNSET(bpl_net);
    int rc = fuzz_check(bpl_net_load(&net, path), FZ(BPL_OK) | FZ(BPL_ERR_NOMEM),
                        "bpl_net_load");
    check_out(rc, net, "bpl_net_load");
    if (rc != BPL_OK && rc != BPL_ERR_NOMEM)
        fuzz_abort("%s: bpl_net_load refused a file bpl_net_save wrote", what);
    return rc == BPL_OK ? net : NULL;
}

/* Save `net` as `name`; a file it wrote must load, and the loaded net must
 * save a file that loads back to the same bytes.  (The first load may
 * drop what the saved rule did not claim, such as a tensor added after it
 * was attached; after that, saving and loading change nothing.) */
static int save_checked(bpl_net *net, const char *name)
{
    char path[512], again[512];
    fuzz_path(path, sizeof path, name);
    int rc = fuzz_check(bpl_net_save(net, path), any, "bpl_net_save");
    if (rc != BPL_OK)
        return rc;
    fuzz_reach(FUZZ_REACH_SAVE);
    bpl_net *first = load_must_work(path, "saved");
    if (!first)
        return rc;
    snprintf(again, sizeof again, "%s.again", path);
    fuzz_check(bpl_net_save(first, path), FZ(BPL_OK), "bpl_net_save (loaded)");
    bpl_net *second = load_must_work(path, "saved after loading");
    if (second) {
        fuzz_check(bpl_net_save(second, again), FZ(BPL_OK), "bpl_net_save (loaded twice)");
        size_t na, nb;
        unsigned char *a = read_all(path, &na), *b = read_all(again, &nb);
        if (na != nb || memcmp(a, b, na) != 0)
            fuzz_abort("a loaded net saved %zu bytes, loaded and saved again %zu", na, nb);
        free(a);
        free(b);
    }
    bpl_net_destroy(first);
    bpl_net_destroy(second);
    return rc;
}

/* ---- calls back into the library ------------------------------------------------- */

static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data);

typedef struct fit_state {
    bpl_net *net;
    size_t events, stop, at, epochs, steps;
    unsigned action;
} fit_state;

/* 2 rows of input and one-hot targets for `net`. */
static void small_batch(bpl_net *net, float **x, float **y)
{
    size_t n_in = width_or_1(bpl_net_inputs(net)), n_out = width_or_1(bpl_net_outputs(net));
    *x = xcalloc(2 * n_in, sizeof **x);
    *y = xcalloc(2 * n_out, sizeof **y);
    for (size_t i = 0; i < 2 * n_in; i++)
        (*x)[i] = (float)(i % 5) * 0.25f - 0.5f;
    (*y)[0] = (*y)[2 * n_out - 1] = 1.0f;
}

static void back_train(bpl_net *net, int predict)
{
    float *x, *y;
    small_batch(net, &x, &y);
    size_t n_out = bpl_net_outputs(net);
    float *out = xcalloc(2 * n_out, sizeof *out);
    if (fuzz_affordable(net, 2)) {
        int rc = predict ? fuzz_check(bpl_net_predict(net, x, 2, out, 2 * n_out), any,
                                      "bpl_net_predict (called back)")
                         : fuzz_check(bpl_net_train_batch(net, x, y, 2, NULL), any,
                                      "bpl_net_train_batch (called back)");
        fuzz_reached_if_ok(rc, predict ? FUZZ_REACH_PREDICT : FUZZ_REACH_TRAIN);
    }
    free(out);
    free(x);
    free(y);
}

static void back_dataset(bpl_net *net, int fit)
{
    float *x, *y;
    small_batch(net, &x, &y);
    size_t n_in = bpl_net_inputs(net), n_out = bpl_net_outputs(net);
    bpl_dataset *ds = NULL;
    if (n_in && n_out && fuzz_affordable(net, 2) &&
        fuzz_check(bpl_dataset_from_f32(&ds, x, y, 2, n_in, n_out),
                   FZ(BPL_OK) | FZ(BPL_ERR_NOMEM), "bpl_dataset_from_f32") == BPL_OK) {
        fit_state inner = {net, 0, 3, 0, 1, 2, REENTER_NONE};
        if (fit)
            fuzz_check(bpl_net_fit(net, ds, 1, 1, on_progress, &inner), any,
                       "bpl_net_fit (called back)");
        else
            fuzz_check(bpl_net_evaluate(net, ds, NULL, NULL), any,
                       "bpl_net_evaluate (called back)");
    }
    bpl_dataset_destroy(ds);
    free(x);
    free(y);
}

static void back_alignment(bpl_net *net)
{
    float *x, *y;
    small_batch(net, &x, &y);
    size_t n = width_or_1(bpl_net_layer_count(net));
    double *angles = xcalloc(n, sizeof *angles);
    if (fuzz_affordable(net, 4))
        fuzz_check(bpl_net_alignment(net, x, y, 2, angles, n), any,
                   "bpl_net_alignment (called back)");
    free(angles);
    free(x);
    free(y);
}

static void back_load(void)
{
    char path[512];
    fuzz_path(path, sizeof path, "api.bpl");
    bpl_net *net = UNSET(bpl_net);
    int rc = fuzz_check(bpl_net_load(&net, path), any, "bpl_net_load (called back)");
    check_out(rc, net, "bpl_net_load (called back)");
    if (rc == BPL_OK)
        bpl_net_destroy(net);
}

static void back_set_rule(bpl_net *net)
{
    bpl_rule *rule = builtin(S.turns);
    if (rule && fuzz_check(bpl_net_set_rule(net, rule), any, "bpl_net_set_rule (called back)") !=
                    BPL_OK)
        bpl_rule_destroy(rule);
}

static void back_tensor(bpl_net *net, unsigned action)
{
    bpl_layer *layer = bpl_net_layer(net, 0);
    size_t rows = 0, cols = 0;
    if (!layer || bpl_layer_tensor_info(layer, "weight", &rows, &cols, NULL) != BPL_OK)
        return;
    float *w = xcalloc(rows * cols, sizeof *w);
    if (action == REENTER_SET_TENSOR) {
        fuzz_check(bpl_layer_get_tensor(layer, "weight", w, rows * cols), FZ(BPL_OK),
                   "bpl_layer_get_tensor (called back)");
        fuzz_check(bpl_layer_set_tensor(layer, "weight", w, rows * cols), any,
                   "bpl_layer_set_tensor (called back)");
    } else if (action == REENTER_INIT_TENSOR) {
        fuzz_check(bpl_layer_init_tensor(layer, "weight", BPL_INIT_GLOROT_UNIFORM, 1.0), any,
                   "bpl_layer_init_tensor (called back)");
    } else if (action == REENTER_ADD_TENSOR) {
        fuzz_check(bpl_layer_add_tensor(layer, "late", 2, 2, BPL_GROUP_FORWARD, BPL_INIT_ZERO,
                                        1.0, NULL),
                   any, "bpl_layer_add_tensor (called back)");
    } else if (action == REENTER_FREEZE) {
        fuzz_check(bpl_layer_set_frozen(layer, "weight", !bpl_layer_frozen(layer, "weight")),
                   any, "bpl_layer_set_frozen (called back)");
    } else if (action == REENTER_ADD_BUFFER) {
        fuzz_check(bpl_layer_add_buffer(layer, "late", 3), any,
                   "bpl_layer_add_buffer (called back)");
    } else if (action == REENTER_BUFFER) {
        float *data;
        fuzz_check(bpl_layer_buffer(layer, "activation", &data, NULL, NULL), any,
                   "bpl_layer_buffer (called back)");
    }
    free(w);
}

/* Hyperparameters a call back may change: the learning rate, and those
 * that decide a rule's dynamics or shape its tensors. */
static void back_rule_set(bpl_net *net)
{
    static const char *const names[] = {"lr",         "mode",      "steps",
                                        "phase_steps", "optimizer", "auxiliary_outputs",
                                        "feedback",   "schedule",  "test_steps"};
    static const double values[] = {0.5, 1, 2, 2, 1, 3, 1, 1, 2};
    size_t i = S.turns % (sizeof names / sizeof names[0]);
    fuzz_check(bpl_rule_set(bpl_net_rule(net), names[i], values[i]), any,
               "bpl_rule_set (called back)");
}

/* One call back into the library on `net`, from a hook or a progress
 * callback.  Never deeper than one level, and never a destroy: a net or
 * dataset in use cannot refuse to go, so destroying it is the caller's
 * bug, not the library's. */
static void call_back(bpl_net *net, unsigned action)
{
    action %= REENTER_KINDS;
    if (S.depth > 0 || action == REENTER_NONE || !net)
        return;
    S.depth++;
    S.turns++;
    char name[32];
    switch (action) {
    case REENTER_TRAIN: back_train(net, 0); break;
    case REENTER_PREDICT: back_train(net, 1); break;
    case REENTER_EVALUATE: back_dataset(net, 0); break;
    case REENTER_FIT: back_dataset(net, 1); break;
    case REENTER_ALIGNMENT: back_alignment(net); break;
    case REENTER_SAVE:
        snprintf(name, sizeof name, "back%u.bpl", S.turns % 2);
        save_checked(net, name);
        break;
    case REENTER_LOAD: back_load(); break;
    case REENTER_SET_RULE: back_set_rule(net); break;
    case REENTER_ADD_DENSE:
        fuzz_check(bpl_net_add_dense(net, 2, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM), any,
                   "bpl_net_add_dense (called back)");
        break;
    case REENTER_SET_LOSS:
        fuzz_check(bpl_net_set_loss(net, BPL_LOSS_MSE), any,
                   "bpl_net_set_loss (called back)");
        break;
    case REENTER_RULE_SET: back_rule_set(net); break;
    case REENTER_RANDOM: {
        float v[4];
        fuzz_check(bpl_net_random_normal(net, v, 4, 0.0, 1.0), FZ(BPL_OK),
                   "bpl_net_random_normal (called back)");
        break;
    }
    case REENTER_RULE_DESTROY: {
        bpl_rule *rule = bpl_net_rule(net);
        bpl_rule_destroy(rule); /* owned by the net: left alone */
        if (bpl_net_rule(net) != rule || (rule && !bpl_rule_name(rule)))
            fuzz_abort("bpl_rule_destroy on a net's rule changed the net");
        break;
    }
    case REENTER_APPLY:
        fuzz_check(bpl_net_apply_gradients(net, 1u), any,
                   "bpl_net_apply_gradients (called back)");
        break;
    default: back_tensor(net, action); break;
    }
    S.depth--;
}

/* bpl_net_fit reports what its documentation says; the callback stops it
 * after `stop` events and calls back into the library at event `at`. */
static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data)
{
    fit_state *f = user_data;
    if ((event != BPL_EVENT_BATCH && event != BPL_EVENT_EPOCH) || epoch < 1 ||
        epoch > f->epochs || steps != f->steps || step < 1 || step > steps ||
        (event == BPL_EVENT_EPOCH && step != steps) || !isfinite(loss))
        fuzz_abort("bpl_net_fit reported event %d, epoch %zu, step %zu of %zu (expected "
                   "%zu), loss %g",
                   event, epoch, step, steps, f->steps, loss);
    f->events++;
    if (f->events == f->at)
        call_back(f->net, f->action);
    return f->events >= f->stop;
}

/* ---- a user rule whose hooks follow a script ---------------------------------------- */

enum { HOOK_ATTACH, HOOK_FORWARD, HOOK_TARGETS, HOOK_UPDATE, HOOKS };

typedef struct user_rule {
    unsigned char attach, forward, targets, update;
    unsigned char reenter[HOOKS];
    unsigned char fail_hook, fail_code;
    int group; /* of the tensors attach adds */
} user_rule;

/* What a failing hook returns: every status, and values that are none. */
static const int hook_failures[] = {
    BPL_ERR_INVALID_ARG, BPL_ERR_NOMEM,     BPL_ERR_SHAPE,    BPL_ERR_STATE,
    BPL_ERR_UNSUPPORTED, BPL_ERR_VERSION,   BPL_ERR_IO,       BPL_ERR_FORMAT,
    BPL_ERR_NUMERIC,     BPL_ERR_CALLBACK,  BPL_ERR_NOT_FOUND, BPL_ERR_OVERFLOW,
    BPL_ERR_RANGE,       1,                 42,               -14,
    -100,                INT_MIN};

/* The end of every hook: the call back into the library, then the status
 * the script asks for.  The call back may destroy the rule (and `r`), so
 * everything is read first. */
static int hook_end(const user_rule *r, int hook, bpl_net *net, int rc)
{
    unsigned action = r->reenter[hook];
    int fail = r->fail_hook % 8 == hook;
    int code = hook_failures[r->fail_code % (sizeof hook_failures / sizeof hook_failures[0])];
    int explain = r->fail_code & 0x80;
    if (rc == BPL_OK)
        call_back(net, action);
    if (rc == BPL_OK && fail) {
        rc = explain ? bpl_error_set(code, "user rule: failing as asked") : code;
        fuzz_hook_status = code;
    }
    return rc;
}

static size_t units_of(bpl_net *net, size_t l)
{
    return bpl_layer_units(bpl_net_layer(net, l));
}

/* Calls a rule may make at attach that the library must refuse (the first
 * is one it must refuse or survive: regrouping the forward weight). */
static void hostile_attach(bpl_net *net, unsigned k)
{
    bpl_layer *layer = bpl_net_layer(net, 0);
    size_t units = bpl_layer_units(layer), inputs = bpl_layer_inputs(layer);
    switch (k % 8) {
    case 0:
        fuzz_check(bpl_layer_add_tensor(layer, "weight", units, inputs, BPL_GROUP_NONE,
                                        BPL_INIT_ZERO, 1.0, NULL),
                   any, "bpl_layer_add_tensor (regroup)");
        break;
    case 1:
        fuzz_check(bpl_layer_add_tensor(layer, "", 1, 1, 0, 0, 1.0, NULL), refused,
                   "bpl_layer_add_tensor (no name)");
        break;
    case 2:
        fuzz_check(bpl_layer_add_tensor(layer, "t", 0, 1, 0, 0, 1.0, NULL), refused,
                   "bpl_layer_add_tensor (no rows)");
        break;
    case 3:
        fuzz_check(bpl_layer_add_tensor(layer, "t", LIB_MAX_UNITS + 1, 1, 0, 0, 1.0, NULL),
                   refused, "bpl_layer_add_tensor (too many rows)");
        break;
    case 4:
        fuzz_check(bpl_layer_add_tensor(layer, "t", 1, 1, 2, 0, 1.0, NULL), refused,
                   "bpl_layer_add_tensor (bad group)");
        break;
    case 5:
        fuzz_check(bpl_layer_add_tensor(layer, "t", 1, 1, 0, 0, NAN, NULL), refused,
                   "bpl_layer_add_tensor (NaN gain)");
        break;
    case 6:
        fuzz_check(bpl_layer_add_tensor(layer, "bias", units + 1, 1, 0, 0, 1.0, NULL),
                   refused, "bpl_layer_add_tensor (another shape)");
        break;
    default:
        fuzz_check(bpl_layer_add_buffer(layer, "activation", units + 1), refused,
                   "bpl_layer_add_buffer (another width)");
        break;
    }
}

static int u_attach(void *self, bpl_net *net)
{
    const user_rule *r = self;
    size_t top = bpl_net_layer_count(net) - 1;
    unsigned kind = r->attach % 4;
    int rc = BPL_OK;
    if (kind == 2)
        rc = fuzz_check(bpl_layer_add_buffer(bpl_net_layer(net, top), "scratch",
                                             units_of(net, top)),
                        any, "bpl_layer_add_buffer");
    for (size_t l = 0; (kind == 1 || kind == 2) && rc == BPL_OK && l < top; l++)
        rc = fuzz_check(bpl_layer_add_tensor(bpl_net_layer(net, l), "fb", units_of(net, l),
                                             units_of(net, top), r->group,
                                             BPL_INIT_GLOROT_UNIFORM, 1.0, NULL),
                        any, "bpl_layer_add_tensor");
    if (kind == 3)
        hostile_attach(net, r->attach / 4);
    return hook_end(r, HOOK_ATTACH, net, rc);
}

static int u_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    const user_rule *r = self;
    unsigned kind = r->forward % 5;
    int rc = BPL_OK;
    if (kind == 0 || kind == 3)
        rc = fuzz_check(bpl_net_forward_dense(net, x, batch), any, "bpl_net_forward_dense");
    else if (kind == 1)
        rc = fuzz_check(bpl_net_forward_dense(net, x, batch + 1), FZ(BPL_ERR_SHAPE),
                        "bpl_net_forward_dense (another batch)");
    else if (kind == 4)
        rc = fuzz_check(bpl_net_forward_dense(net, NULL, batch), FZ(BPL_ERR_INVALID_ARG),
                        "bpl_net_forward_dense (NULL)");
    if (rc == BPL_OK && kind == 3) {
        float *out;
        size_t rows, cols;
        rc = fuzz_check(bpl_layer_buffer(bpl_net_layer(net, bpl_net_layer_count(net) - 1),
                                         "activation", &out, &rows, &cols),
                        FZ(BPL_OK), "bpl_layer_buffer");
        if (rc == BPL_OK && rows * cols > 0)
            out[rows * cols - 1] = NAN;
    }
    return hook_end(r, HOOK_FORWARD, net, rc);
}

/* Errors sent down with the forward weights, or from the output through the
 * "fb" tensors where attach made them. */
static int send_errors(bpl_net *net, const float *y, size_t batch, int through_feedback)
{
    size_t top = bpl_net_layer_count(net) - 1;
    int rc = fuzz_check(bpl_net_output_delta(net, y, batch), any, "bpl_net_output_delta");
    for (size_t l = top; rc == BPL_OK && l > 0; l--) {
        bpl_layer *layer = bpl_net_layer(net, through_feedback ? l - 1 : l);
        const char *name = through_feedback ? "fb" : "weight";
        float *m;
        size_t rows, cols;
        if (bpl_layer_tensor(layer, name, &m, &rows, &cols) != BPL_OK)
            continue;
        if (through_feedback && rows == units_of(net, l - 1) && cols == units_of(net, top))
            rc = fuzz_check(bpl_net_project_delta(net, top, l - 1, m, 0), any,
                            "bpl_net_project_delta");
        else if (!through_feedback)
            rc = fuzz_check(bpl_net_project_delta(net, l, l - 1, m, 1), any,
                            "bpl_net_project_delta");
    }
    return rc;
}

static void hostile_targets(bpl_net *net, const float *y, size_t batch, unsigned k)
{
    size_t layers = bpl_net_layer_count(net);
    float *w;
    if (bpl_layer_tensor(bpl_net_layer(net, 0), "weight", &w, NULL, NULL) != BPL_OK)
        return;
    switch (k % 6) {
    case 0:
        fuzz_check(bpl_net_project_delta(net, layers, 0, w, 0), refused,
                   "bpl_net_project_delta (no such layer)");
        break;
    case 1:
        fuzz_check(bpl_net_project_delta(net, 0, 0, w, 0), refused,
                   "bpl_net_project_delta (upwards)");
        break;
    case 2:
        /* M NULL is the layer's own map, for the layer just below only. */
        if (layers >= 3)
            fuzz_check(bpl_net_project_delta(net, layers - 1, 0, NULL, 0), refused,
                       "bpl_net_project_delta (NULL, two layers down)");
        break;
    case 3:
        if (layers >= 3)
            fuzz_check(bpl_net_project_delta(net, layers - 1, 0, w, 1), refused,
                       "bpl_net_project_delta (forward weight, two layers down)");
        break;
    case 4:
        fuzz_check(bpl_net_output_delta(net, y, batch + 1), refused,
                   "bpl_net_output_delta (another batch)");
        break;
    default:
        fuzz_check(bpl_net_output_delta(net, NULL, batch), refused,
                   "bpl_net_output_delta (NULL)");
        break;
    }
}

static int u_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    const user_rule *r = self;
    unsigned kind = r->targets % 4;
    int rc = BPL_OK;
    if (kind == 0 || kind == 1)
        rc = send_errors(net, y, batch, kind == 1);
    else if (kind == 2)
        hostile_targets(net, y, batch, r->targets / 4);
    return hook_end(r, HOOK_TARGETS, net, rc);
}

static int u_update(void *self, bpl_net *net)
{
    const user_rule *r = self;
    unsigned kind = r->update % 4;
    size_t layers = bpl_net_layer_count(net);
    unsigned mask = 1u | (r->group == BPL_GROUP_FEEDBACK ? 2u : 0u);
    int rc = BPL_OK;
    if (kind == 0)
        for (size_t l = 0; rc == BPL_OK && l < layers; l++)
            rc = fuzz_check(bpl_net_weight_gradients(net, l), any, "bpl_net_weight_gradients");
    if (kind == 1) {
        fuzz_check(bpl_net_weight_gradients(net, layers), refused,
                   "bpl_net_weight_gradients (no such layer)");
        fuzz_check(bpl_net_apply_gradients(net, 4u), refused,
                   "bpl_net_apply_gradients (unknown group)");
    }
    for (size_t l = 0; kind == 2 && l < layers; l++) {
        float *g;
        size_t rows, cols;
        if (bpl_layer_tensor_grad(bpl_net_layer(net, l), "fb", &g, &rows, &cols) == BPL_OK)
            for (size_t i = 0; i < rows * cols; i++)
                g[i] = 0.01f;
    }
    if (rc == BPL_OK && kind != 1)
        rc = fuzz_check(bpl_net_apply_gradients(net, kind == 2 ? 2u : mask), any,
                        "bpl_net_apply_gradients");
    return hook_end(r, HOOK_UPDATE, net, rc);
}

static void u_destroy(void *self)
{
    free(self);
}

/* ---- operations -------------------------------------------------------------------- */

static void op_net_create(void)
{
    unsigned slot = next() % SLOTS;
    size_t inputs = 1 + next() % MAX_WIDTH;
    uint64_t seed = next();
    int v = hostile(4);
    bpl_net *net = UNSET(bpl_net);
    if (v == 0) {
        fuzz_check(bpl_net_create(NULL, inputs, seed), FZ(BPL_ERR_INVALID_ARG),
                   "bpl_net_create (NULL)");
        return;
    }
    const size_t bad[] = {0, LIB_MAX_UNITS + 1, SIZE_MAX};
    if (v > 0)
        inputs = bad[v - 1];
    int rc = fuzz_check(bpl_net_create(&net, inputs, seed), any, "bpl_net_create");
    check_out(rc, net, "bpl_net_create");
    check_refused(v, rc, "bpl_net_create");
    if (rc == BPL_OK) {
        bpl_net_destroy(S.net[slot]);
        S.net[slot] = net;
    }
}

static void op_add_dense(void)
{
    bpl_net *net = pick_net();
    size_t units = 1 + next() % MAX_WIDTH;
    int act = (int)(next() % 5), init = (int)(next() % 9);
    int v = hostile(7);
    if (v < 0 && bpl_net_layer_count(net) >= MAX_LAYERS)
        return;
    const size_t bad_units[] = {0, LIB_MAX_UNITS + 1, SIZE_MAX};
    if (v == 0)
        net = NULL;
    else if (v >= 1 && v <= 3)
        units = bad_units[v - 1];
    else if (v == 4)
        act = act % 2 ? -1 : 5;
    else if (v == 5)
        init = init % 2 ? -1 : 9;
    else if (v == 6)
        act = INT_MIN;
    int rc = fuzz_check(bpl_net_add_dense(net, units, act, init), any, "bpl_net_add_dense");
    check_refused(v, rc, "bpl_net_add_dense");
}

/* A divisor of n (> 0) chosen by b. */
static size_t divisor(size_t n, unsigned b)
{
    size_t found[MAX_WIDTH], count = 0;
    for (size_t d = 1; d <= n && count < MAX_WIDTH; d++)
        if (n % d == 0)
            found[count++] = d;
    return found[b % count];
}

/* A conv layer of bytes-chosen geometry (up to MAX_WIDTH channels, kernels
 * up to 4, stride up to 3, padding up to 2).  Before the first layer, the
 * net's inputs get a C x H x W shape of the same product, the factors
 * chosen by the input.  A geometry that does not fit fails, which is fine;
 * hostile calls must fail. */
/* A net without layers gets a C x H x W input shape from the byte `shape`
 * (its inputs factored), so that spatial layers may follow. */
static void give_image_input(bpl_net *net, unsigned shape)
{
    if (!net || bpl_net_layer_count(net) != 0)
        return;
    size_t inputs = bpl_net_inputs(net), dims[3], n_dims = 0;
    fuzz_check(bpl_net_get_input_shape(net, dims, 3, &n_dims), any, "bpl_net_get_input_shape");
    if (n_dims != 3) {
        dims[0] = divisor(inputs, shape);
        dims[1] = divisor(inputs / dims[0], shape >> 3);
        dims[2] = inputs / dims[0] / dims[1];
        fuzz_check(bpl_net_set_input_shape(net, dims, 3), any, "bpl_net_set_input_shape");
    }
}

static void op_add_conv2d(void)
{
    bpl_net *net = pick_net();
    unsigned shape = next();
    size_t channels = 1 + next() % MAX_WIDTH, kh = 1 + next() % 4, kw = 1 + next() % 4;
    size_t stride = 1 + next() % 3, pad = next() % 3;
    int act = (int)(next() % 5), init = (int)(next() % 9);
    int v = hostile(9);
    if (v < 0 && net && bpl_net_layer_count(net) >= MAX_LAYERS)
        return;
    give_image_input(net, shape);
    if (v == 0)
        net = NULL;
    else if (v == 1)
        channels = next() % 2 ? 0 : LIB_MAX_UNITS + 1;
    else if (v == 2)
        kh = 0;
    else if (v == 3)
        stride = 0;
    else if (v == 4)
        act = act % 2 ? -1 : 5;
    else if (v == 5)
        init = init % 2 ? -1 : 9;
    else if (v == 6)
        pad = SIZE_MAX / 2; /* the padded input's extent overflows */
    else if (v == 7)
        kw = SIZE_MAX; /* beyond any padded input */
    else if (v == 8)
        pad = SIZE_MAX / 4; /* the output's extent beyond the library's limits */
    int rc = fuzz_check(bpl_net_add_conv2d(net, channels, kh, kw, stride, pad, act, init), any,
                        "bpl_net_add_conv2d");
    check_refused(v, rc, "bpl_net_add_conv2d");
}

/* A max or average pooling layer; a stride of 0 is the window. */
static void op_add_pool2d(void)
{
    bpl_net *net = pick_net();
    unsigned shape = next(), kind = next();
    size_t window = 1 + next() % 3, stride = next() % 3;
    int v = hostile(4);
    if (v < 0 && net && bpl_net_layer_count(net) >= MAX_LAYERS)
        return;
    give_image_input(net, shape);
    if (v == 0)
        net = NULL;
    else if (v == 1)
        window = 0;
    else if (v == 2)
        window = SIZE_MAX; /* beyond any input */
    else if (v == 3)
        window = LIB_MAX_UNITS + 1;
    int max = kind % 2;
    const char *call = max ? "bpl_net_add_maxpool2d" : "bpl_net_add_avgpool2d";
    int rc = fuzz_check(max ? bpl_net_add_maxpool2d(net, window, stride)
                            : bpl_net_add_avgpool2d(net, window, stride),
                        any, call);
    check_refused(v, rc, call);
}

static void op_set_loss(void)
{
    bpl_net *net = pick_net();
    int loss = (int)(next() % 4);
    int rc = fuzz_check(bpl_net_set_loss(net, loss), any, "bpl_net_set_loss");
    if ((rc == BPL_OK) != (net && (loss == BPL_LOSS_MSE || loss == BPL_LOSS_CROSS_ENTROPY)))
        fuzz_abort("bpl_net_set_loss(%d) returned %d", loss, rc);
    if (rc == BPL_OK && bpl_net_loss(net) != loss)
        fuzz_abort("bpl_net_set_loss(%d) left the loss %d", loss, bpl_net_loss(net));
}

static void keep_rule(unsigned slot, bpl_rule *rule)
{
    bpl_rule_destroy(S.rule[slot]);
    S.rule[slot] = rule;
}

static void op_rule_builtin(void)
{
    unsigned slot = next() % SLOTS, index = next();
    int v = hostile(4);
    char name[STR_MAX];
    snprintf(name, sizeof name, "%s", bpl_rule_builtin_name(index % bpl_rule_builtin_count()));
    if (v == 0) {
        fuzz_check(bpl_rule_create_builtin(NULL, name), refused,
                   "bpl_rule_create_builtin (NULL)");
        return;
    }
    if (v == 2)
        name[0] = '\0';
    else if (v == 3)
        take_string(&S.in, name);
    bpl_rule *rule = UNSET(bpl_rule);
    int rc = fuzz_check(bpl_rule_create_builtin(&rule, v == 1 ? NULL : name), any,
                        "bpl_rule_create_builtin");
    check_out(rc, rule, "bpl_rule_create_builtin");
    if (v == 1 || v == 2)
        check_refused(v, rc, "bpl_rule_create_builtin");
    if (rc == BPL_OK)
        keep_rule(slot, rule);
}

static void read_script(user_rule *r, unsigned char *name_byte, unsigned char *params)
{
    unsigned char b[USER_SCRIPT_SIZE];
    for (int i = 0; i < USER_SCRIPT_SIZE; i++)
        b[i] = (unsigned char)next();
    *name_byte = b[SCRIPT_NAME];
    r->attach = b[SCRIPT_ATTACH];
    r->forward = b[SCRIPT_FORWARD];
    r->targets = b[SCRIPT_TARGETS];
    r->update = b[SCRIPT_UPDATE];
    memcpy(r->reenter, b + SCRIPT_REENTER, HOOKS);
    r->fail_hook = b[SCRIPT_FAIL_HOOK];
    r->fail_code = b[SCRIPT_FAIL_CODE];
    r->group = (int)(b[SCRIPT_GROUP] % 3) - 1;
    *params = b[SCRIPT_PARAMS];
}

static void declare_params(bpl_rule *rule, unsigned params)
{
    static const char *const names[] = {"alpha", "count", "on"};
    static const int kinds[] = {BPL_PARAM_REAL, BPL_PARAM_INT, BPL_PARAM_BOOL};
    for (unsigned i = 0; i < (params & 3) && i < 3; i++)
        fuzz_check(bpl_rule_add_param(rule, names[i], kinds[i], 0.0, 0.0, 1e3, NULL, "doc"),
                   FZ(BPL_OK) | FZ(BPL_ERR_NOMEM), "bpl_rule_add_param");
    if (params & 4)
        fuzz_check(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_SGD, 0.01),
                   FZ(BPL_OK) | FZ(BPL_ERR_NOMEM), "bpl_rule_add_optimizer");
}

static void op_rule_user(void)
{
    unsigned slot = next() % SLOTS;
    user_rule *r = xcalloc(1, sizeof *r);
    unsigned char name_byte, params;
    read_script(r, &name_byte, &params);
    int v = hostile(7);
    bpl_rule_vtable vt;
    fuzz_check(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION), FZ(BPL_OK),
               "bpl_rule_vtable_init");
    char long_name[100];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    vt.name = name_byte < 0x80 ? "user" : "user2";
    vt.attach = u_attach;
    vt.forward = u_forward;
    vt.compute_targets = u_targets;
    vt.update = u_update;
    vt.destroy = u_destroy;
    if (v == 2) vt.forward = NULL;
    if (v == 3) vt.flags = 1;
    if (v == 4) vt.version = BPL_RULE_VTABLE_VERSION + 1;
    if (v == 5) vt.name = NULL;
    if (v == 6) vt.name = name_byte % 2 ? "" : long_name;
    bpl_rule *rule = UNSET(bpl_rule);
    int rc = fuzz_check(bpl_rule_create(v == 0 ? NULL : &rule, v == 1 ? NULL : &vt, r), any,
                        "bpl_rule_create");
    if (v != 0)
        check_out(rc, rule, "bpl_rule_create");
    check_refused(v == 6 && name_byte % 2 == 0 ? -1 : v, rc, "bpl_rule_create");
    if (rc != BPL_OK) {
        free(r); /* a rule that was not created does not call destroy */
        return;
    }
    declare_params(rule, params);
    keep_rule(slot, rule);
}

static void op_rule_set(int as_string)
{
    bpl_rule *rule = pick_rule();
    char name[STR_MAX], text[STR_MAX];
    take_name(&S.in, rule, name);
    if (as_string) {
        take_string(&S.in, text);
        fuzz_check(bpl_rule_set_string(rule, name, text), any, "bpl_rule_set_string");
        return;
    }
    double value = take_value(&S.in, rule, name), before = 0.0, after = 0.0;
    int had = bpl_rule_get(rule, name, &before) == BPL_OK;
    int rc = fuzz_check(bpl_rule_set(rule, name, value), any, "bpl_rule_set");
    if (had && bpl_rule_get(rule, name, &after) == BPL_OK &&
        memcmp(rc == BPL_OK ? &value : &before, &after, sizeof after) != 0 &&
        !(rc == BPL_OK && value == after))
        fuzz_abort("bpl_rule_set('%s', %.17g) returned %d and left %.17g", name, value, rc,
                   after);
}

static void op_rule_get(void)
{
    bpl_rule *rule = pick_rule();
    char name[STR_MAX];
    take_name(&S.in, rule, name);
    unsigned kind = next() % 3;
    double v;
    if (kind == 0) {
        fuzz_check(bpl_rule_get(rule, name, &v), any, "bpl_rule_get");
    } else if (kind == 1) {
        fuzz_check(bpl_rule_get(rule, name, NULL), refused, "bpl_rule_get (NULL)");
    } else {
        size_t index = next();
        fuzz_check(bpl_rule_param_info(rule, index, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                   any, "bpl_rule_param_info");
    }
}

/* The tensors sdtp's auxiliary outputs add at attach, against the cap. */
static int attach_affordable(bpl_net *net, const bpl_rule *rule)
{
    double aux = 0.0, widest = 0.0;
    if (rule && strcmp(bpl_rule_name(rule), "sdtp") == 0)
        aux = fuzz_param_or(rule, "auxiliary_outputs", 0.0);
    for (size_t l = 0; l < bpl_net_layer_count(net); l++)
        if ((double)units_of(net, l) > widest)
            widest = (double)units_of(net, l);
    if ((fuzz_tensor_elements(net) + aux * (widest + 1.0)) * 4.0 * MAX_ROWS <= FUZZ_COST_CAP)
        return 1;
    fuzz_reach(FUZZ_REACH_SKIPPED);
    return 0;
}

static void op_attach(void)
{
    bpl_net *net = pick_net();
    unsigned slot = next() % SLOTS;
    int v = hostile(3);
    bpl_rule *rule = S.rule[slot], *fresh = NULL;
    if (v == 0)
        net = NULL;
    else if (v == 1)
        rule = NULL;
    else if (v == 2)
        rule = bpl_net_rule(S.net[slot]); /* owned by a net already */
    else if (!rule)
        rule = fresh = builtin(slot);
    if (v < 0 && (!rule || !attach_affordable(net, rule))) {
        bpl_rule_destroy(fresh);
        return;
    }
    int rc = fuzz_check(bpl_net_set_rule(net, rule), any, "bpl_net_set_rule");
    check_refused(v, rc, "bpl_net_set_rule");
    if (rc == BPL_OK && rule == S.rule[slot])
        S.rule[slot] = NULL; /* the net's now */
    if (rc != BPL_OK)
        bpl_rule_destroy(fresh);
}

static void op_train(void)
{
    bpl_net *net = pick_net();
    size_t batch = 1 + next() % MAX_ROWS;
    int v = hostile(8);
    size_t n_in = width_or_1(bpl_net_inputs(net)), n_out = width_or_1(bpl_net_outputs(net));
    float *x = take_floats(batch * n_in), *y = take_targets(batch, n_out);
    double loss = NAN;
    if (v == 4)
        x[0] = NAN;
    if (v == 5)
        y[0] = INFINITY;
    if ((v < 0 || v == 7) && !fuzz_affordable(net, (double)batch)) {
        free(x);
        free(y);
        return;
    }
    int rc = fuzz_check(bpl_net_train_batch(v == 0 ? NULL : net, v == 1 ? NULL : x,
                                            v == 2 ? NULL : y,
                                            v == 3 ? 0 : v == 6 ? overflowing(n_in) : batch,
                                            v == 7 ? NULL : &loss),
                        any, "bpl_net_train_batch");
    check_refused(v == 7 ? -1 : v, rc, "bpl_net_train_batch");
    if (rc == BPL_OK && v < 0 && !isfinite(loss))
        fuzz_abort("a successful training step reported the loss %g", loss);
    fuzz_reached_if_ok(rc, FUZZ_REACH_TRAIN);
    free(x);
    free(y);
}

static void op_predict(void)
{
    bpl_net *net = pick_net();
    size_t batch = 1 + next() % MAX_ROWS;
    int v = hostile(9);
    size_t n_in = width_or_1(bpl_net_inputs(net)), n_out = bpl_net_outputs(net);
    float *x = take_floats(batch * n_in), *out = xcalloc(batch * n_out + 1, sizeof *out);
    size_t out_len = batch * n_out;
    const size_t bad_len[] = {out_len - 1, out_len + 1, 0};
    if (v == 7)
        x[0] = NAN;
    if (v >= 4 && v <= 6)
        out_len = bad_len[v - 4];
    if (v == 8) {
        batch = overflowing(n_in);
        out_len = batch * n_out;
    }
    if (v < 0 && !fuzz_affordable(net, (double)batch)) {
        free(x);
        free(out);
        return;
    }
    int rc = fuzz_check(bpl_net_predict(v == 0 ? NULL : net, v == 1 ? NULL : x,
                                        v == 3 ? 0 : batch, v == 2 ? NULL : out, out_len),
                        any, "bpl_net_predict");
    check_refused(v == 6 && n_out == 0 ? -1 : v, rc, "bpl_net_predict");
    fuzz_reached_if_ok(rc, FUZZ_REACH_PREDICT);
    free(x);
    free(out);
}

static void op_alignment(void)
{
    bpl_net *net = pick_net();
    size_t batch = 1 + next() % MAX_ROWS;
    int v = hostile(7);
    size_t n_in = width_or_1(bpl_net_inputs(net)), n_out = width_or_1(bpl_net_outputs(net));
    size_t n = bpl_net_layer_count(net);
    float *x = take_floats(batch * n_in), *y = take_targets(batch, n_out);
    double *angles = xcalloc(n + 1, sizeof *angles);
    if (v < 0 && !fuzz_affordable(net, 2.0 * (double)batch)) {
        free(x);
        free(y);
        free(angles);
        return;
    }
    int rc = fuzz_check(bpl_net_alignment(v == 0 ? NULL : net, v == 1 ? NULL : x,
                                          v == 2 ? NULL : y,
                                          v == 3 ? 0 : v == 6 ? overflowing(n_in) : batch,
                                          v == 4 ? NULL : angles, v == 5 ? n - 1 : n),
                        any, "bpl_net_alignment");
    check_refused(v == 5 && n == 0 ? -1 : v, rc, "bpl_net_alignment");
    for (size_t l = 0; rc == BPL_OK && l < n; l++)
        if (!(angles[l] >= 0.0 && angles[l] <= 180.0) && !isnan(angles[l]))
            fuzz_abort("bpl_net_alignment gave layer %zu the angle %g", l, angles[l]);
    free(x);
    free(y);
    free(angles);
}

/* The dataset of a slot, else one made for the net (ours to destroy). */
static bpl_dataset *dataset_or_new(bpl_net *net, unsigned b, bpl_dataset **made)
{
    *made = NULL;
    if (S.ds[b % SLOTS])
        return S.ds[b % SLOTS];
    return *made = dataset_for(net, 1 + b % MAX_ROWS);
}

static void op_fit(void)
{
    bpl_net *net = pick_net();
    unsigned ds_byte = next();
    size_t epochs = next() % (MAX_EPOCHS + 1), batch_size = 1 + next() % MAX_ROWS;
    unsigned stop = next() % (MAX_EVENTS + 1), at = next(), action = next();
    int v = hostile(5);
    bpl_dataset *made, *ds = dataset_or_new(net, ds_byte, &made);
    if (v == 4) {
        epochs = SIZE_MAX; /* ended by the callback */
        stop = 1 + stop % MAX_EVENTS;
    }
    if (v == 3)
        batch_size = SIZE_MAX; /* valid: a batch is the whole dataset */
    size_t n = bpl_dataset_example_count(ds), bs = batch_size < n ? batch_size : n;
    fit_state f = {net, 0, stop, at % (MAX_EVENTS + 1), epochs, bs ? (n + bs - 1) / bs : 0,
                   action};
    double rows = (double)epochs * (double)n;
    if (stop && (double)stop * (double)bs < rows)
        rows = (double)stop * (double)bs;
    if ((v < 0 || v >= 3) && !fuzz_affordable(net, rows)) {
        bpl_dataset_destroy(made);
        return;
    }
    int rc = fuzz_check(bpl_net_fit(v == 0 ? NULL : net, v == 1 ? NULL : ds, epochs,
                                    v == 2 ? 0 : batch_size, stop ? on_progress : NULL, &f),
                        any, "bpl_net_fit");
    check_refused(v >= 3 ? -1 : v, rc, "bpl_net_fit");
    if (rc == BPL_OK && stop && f.events > stop)
        fuzz_abort("bpl_net_fit went on after its callback asked it to stop");
    bpl_dataset_destroy(made);
}

static void op_evaluate(void)
{
    bpl_net *net = pick_net();
    unsigned ds_byte = next();
    int v = hostile(3);
    bpl_dataset *made, *ds = dataset_or_new(net, ds_byte, &made);
    double accuracy = NAN, loss = NAN;
    if (!fuzz_affordable(net, (double)bpl_dataset_example_count(ds))) {
        bpl_dataset_destroy(made);
        return;
    }
    int rc = fuzz_check(bpl_net_evaluate(v == 0 ? NULL : net, v == 1 ? NULL : ds,
                                         v == 2 ? NULL : &accuracy, v == 2 ? NULL : &loss),
                        any, "bpl_net_evaluate");
    check_refused(v == 2 ? -1 : v, rc, "bpl_net_evaluate");
    if (rc == BPL_OK && v < 0 && !(accuracy >= 0.0 && accuracy <= 1.0))
        fuzz_abort("bpl_net_evaluate reported the accuracy %g", accuracy);
    bpl_dataset_destroy(made);
}

static void op_tensor_get_set(int set)
{
    bpl_net *net = pick_net();
    bpl_layer *layer = pick_layer(net);
    char name[STR_MAX];
    take_tensor_name(layer, name);
    int v = hostile(set ? 7 : 6);
    size_t rows = 0, cols = 0;
    int found = bpl_layer_tensor_info(layer, name, &rows, &cols, NULL) == BPL_OK;
    size_t len = found ? rows * cols : 1;
    float *buf = set ? take_floats(len + 1) : xcalloc(len + 1, sizeof *buf);
    const size_t bad_len[] = {len - 1, len + 1, SIZE_MAX};
    size_t claimed = v >= 3 && v <= 5 ? bad_len[v - 3] : len;
    if (v == 6)
        buf[0] = NAN;
    int rc = set ? bpl_layer_set_tensor(v == 0 ? NULL : layer, v == 1 ? NULL : name,
                                        v == 2 ? NULL : buf, claimed)
                 : bpl_layer_get_tensor(v == 0 ? NULL : layer, v == 1 ? NULL : name,
                                        v == 2 ? NULL : buf, claimed);
    fuzz_check(rc, any, set ? "bpl_layer_set_tensor" : "bpl_layer_get_tensor");
    check_refused(v, rc, set ? "bpl_layer_set_tensor" : "bpl_layer_get_tensor");
    if (rc == BPL_OK && set) {
        float *back = xcalloc(len, sizeof *back);
        fuzz_check(bpl_layer_get_tensor(layer, name, back, len), FZ(BPL_OK),
                   "bpl_layer_get_tensor (after set)");
        if (memcmp(back, buf, len * sizeof *buf) != 0)
            fuzz_abort("tensor '%s' does not read back what was set", name);
        free(back);
    }
    free(buf);
}

static void op_tensor_init(void)
{
    bpl_net *net = pick_net();
    bpl_layer *layer = pick_layer(net);
    char name[STR_MAX];
    take_tensor_name(layer, name);
    int init = (int)(next() % 11) - 1;
    double gain = take_value(&S.in, NULL, "");
    fuzz_check(bpl_layer_init_tensor(layer, name, init, gain), any, "bpl_layer_init_tensor");
}

static void op_tensor_add(void)
{
    static const char *const names[] = {"fb", "weight", "bias", "extra", "feedback"};
    bpl_net *net = pick_net();
    bpl_layer *layer = pick_layer(net);
    char name[STR_MAX];
    unsigned b = next();
    if (b < NAME_RAW)
        snprintf(name, sizeof name, "%s", names[b % 5]);
    else
        take_string(&S.in, name);
    size_t rows = 1 + next() % MAX_WIDTH, cols = 1 + next() % MAX_WIDTH;
    int group = (int)(next() % 3) - 1;
    int v = hostile(6);
    const size_t bad[] = {0, LIB_MAX_UNITS + 1, SIZE_MAX};
    if (v >= 1 && v <= 3)
        rows = bad[v - 1];
    if (v == 4)
        group = group < 0 ? -2 : 2;
    int existed = 0; /* pending tensors too, which info does not show */
    for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++)
        existed |= strcmp(bpl_layer_tensor_name(layer, t), name) == 0;
    int created = -1;
    int rc = fuzz_check(bpl_layer_add_tensor(v == 0 ? NULL : layer, name, rows, cols, group,
                                             BPL_INIT_GLOROT_NORMAL, v == 5 ? INFINITY : 1.0,
                                             &created),
                        any, "bpl_layer_add_tensor");
    check_refused(v, rc, "bpl_layer_add_tensor");
    if (rc == BPL_OK && created != !existed)
        fuzz_abort("bpl_layer_add_tensor('%s') reported created %d; it existed: %d", name,
                   created, existed);
}

static void op_freeze(void)
{
    bpl_net *net = pick_net();
    bpl_layer *layer = pick_layer(net);
    char name[STR_MAX];
    take_tensor_name(layer, name);
    int frozen = (int)(next() % 3);
    int rc = fuzz_check(bpl_layer_set_frozen(layer, name, frozen), any,
                        "bpl_layer_set_frozen");
    if (rc == BPL_OK && bpl_layer_frozen(layer, name) != (frozen != 0))
        fuzz_abort("tensor '%s' frozen %d reads back %d", name, frozen,
                   bpl_layer_frozen(layer, name));
}

static void op_random(void)
{
    bpl_net *net = pick_net();
    size_t n = next() % 16;
    unsigned kind = next();
    double a = take_value(&S.in, NULL, ""), b = take_value(&S.in, NULL, "");
    float *dst = xcalloc(n, sizeof *dst);
    int rc = kind % 2 ? bpl_net_random_normal(net, kind & 2 ? NULL : dst, n, a, b)
                      : bpl_net_random_uniform(net, kind & 2 ? NULL : dst, n, a, b);
    fuzz_check(rc, any, kind % 2 ? "bpl_net_random_normal" : "bpl_net_random_uniform");
    for (size_t i = 0; rc == BPL_OK && !(kind & 2) && i < n; i++)
        if (!isfinite(dst[i]))
            fuzz_abort("bpl_net_random_%s(%g, %g) succeeded with the value %g",
                       kind % 2 ? "normal" : "uniform", a, b, (double)dst[i]);
    free(dst);
}

static void op_save(void)
{
    bpl_net *net = pick_net();
    int v = hostile(6);
    if (v < 0) {
        save_checked(net, "api.bpl");
        return;
    }
    char path[5200];
    if (v == 3) {
        snprintf(path, sizeof path, "%s", fuzz_scratch_dir()); /* a directory */
    } else if (v == 4) {
        fuzz_path(path, sizeof path, "missing/api.bpl");
    } else {
        memset(path, 'p', sizeof path - 1);
        path[sizeof path - 1] = '\0';
        fuzz_path(path, 512, "");
        path[strlen(path)] = 'p'; /* a name far beyond PATH_MAX */
    }
    int rc = fuzz_check(bpl_net_save(v == 0 ? NULL : net, v == 1 ? NULL : v == 2 ? "" : path),
                        any, "bpl_net_save");
    check_refused(v, rc, "bpl_net_save");
}

static void op_load(void)
{
    unsigned slot = next() % SLOTS;
    int v = hostile(5);
    char path[512];
    fuzz_path(path, sizeof path, v == 2 ? "missing.bpl" : "api.bpl");
    if (v == 3)
        snprintf(path, sizeof path, "%s", fuzz_scratch_dir());
    if (v == 4) {
        unsigned char junk[64];
        size_t n = next() % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (unsigned char)next();
        fuzz_path(path, sizeof path, "junk.bpl");
        fuzz_write(path, junk, n);
    }
    if (v == 0) {
        fuzz_check(bpl_net_load(NULL, path), refused, "bpl_net_load (NULL)");
        return;
    }
    bpl_net *net = UNSET(bpl_net);
    int rc = fuzz_check(bpl_net_load(&net, v == 1 ? NULL : path), any, "bpl_net_load");
    check_out(rc, net, "bpl_net_load");
    check_refused(v, rc, "bpl_net_load");
    if (rc == BPL_OK) {
        bpl_net_destroy(S.net[slot]);
        S.net[slot] = net;
    }
}

static void keep_dataset(unsigned slot, bpl_dataset *ds)
{
    bpl_dataset_destroy(S.ds[slot]);
    S.ds[slot] = ds;
}

static void op_dataset_u8(unsigned slot, size_t n, size_t features, size_t classes)
{
    int v = hostile(9);
    uint8_t *pixels = xcalloc(n * features, 1), *labels = xcalloc(n, 1);
    for (size_t i = 0; i < n * features; i++)
        pixels[i] = (uint8_t)next();
    for (size_t i = 0; i < n; i++)
        labels[i] = (uint8_t)(next() % classes);
    if (v == 7)
        labels[n - 1] = (uint8_t)classes; /* classes <= 255 here */
    const size_t bad_classes[] = {0, 257};
    bpl_dataset *ds = UNSET(bpl_dataset);
    int rc = fuzz_check(bpl_dataset_from_u8(v == 0 ? NULL : &ds, v == 1 ? NULL : pixels,
                                            v == 2 ? NULL : labels,
                                            v == 3 ? 0 : v == 8 ? overflowing(features) : n,
                                            v == 4 ? 0 : features,
                                            v == 5 || v == 6 ? bad_classes[v - 5] : classes),
                        any, "bpl_dataset_from_u8");
    if (v != 0)
        check_out(rc, ds, "bpl_dataset_from_u8");
    check_refused(v, rc, "bpl_dataset_from_u8");
    if (rc == BPL_OK)
        keep_dataset(slot, ds);
    free(pixels);
    free(labels);
}

static void op_dataset_f32(unsigned slot, size_t n, size_t features, size_t targets)
{
    int v = hostile(8);
    float *x = take_floats(n * features), *y = take_targets(n, targets);
    if (v == 5)
        x[0] = NAN;
    if (v == 6)
        y[0] = -INFINITY;
    bpl_dataset *ds = UNSET(bpl_dataset);
    int rc = fuzz_check(bpl_dataset_from_f32(v == 0 ? NULL : &ds, v == 1 ? NULL : x,
                                             v == 2 ? NULL : y,
                                             v == 3 ? 0 : v == 7 ? overflowing(features) : n,
                                             v == 4 ? 0 : features, targets),
                        any, "bpl_dataset_from_f32");
    if (v != 0)
        check_out(rc, ds, "bpl_dataset_from_f32");
    check_refused(v, rc, "bpl_dataset_from_f32");
    if (rc == BPL_OK)
        keep_dataset(slot, ds);
    free(x);
    free(y);
}

/* A dataset shaped like a net (or of the input's shape): u8 or float. */
static void op_dataset(void)
{
    unsigned slot = next() % SLOTS;
    bpl_net *net = pick_net();
    unsigned kind = next();
    size_t n = 1 + next() % MAX_ROWS;
    size_t features = bpl_net_inputs(net), outputs = bpl_net_outputs(net);
    if (kind & 2 || !features || !outputs) {
        features = 1 + kind / 4 % MAX_WIDTH;
        outputs = 1 + kind / 32 % MAX_WIDTH;
    }
    if (kind & 1)
        op_dataset_f32(slot, n, features, outputs);
    else
        op_dataset_u8(slot, n, features, outputs);
}

static void op_dataset_slice(void)
{
    unsigned slot = next() % SLOTS;
    const bpl_dataset *src = S.ds[next() % SLOTS];
    size_t n = bpl_dataset_example_count(src);
    unsigned a = next(), b = next();
    size_t start = a % (n + 2), count = b < 0xf0 ? b % (n + 2) : SIZE_MAX - (b & 1);
    bpl_dataset *ds = UNSET(bpl_dataset);
    int rc = fuzz_check(bpl_dataset_slice(&ds, src, start, count), any, "bpl_dataset_slice");
    check_out(rc, ds, "bpl_dataset_slice");
    if ((rc == BPL_OK) != (src && count > 0 && start <= n && count <= n - start))
        fuzz_abort("bpl_dataset_slice [%zu, +%zu) of %zu examples returned %d", start, count,
                   n, rc);
    if (rc == BPL_OK && (bpl_dataset_example_count(ds) != count ||
                         bpl_dataset_features(ds) != bpl_dataset_features(src) ||
                         bpl_dataset_targets(ds) != bpl_dataset_targets(src)))
        fuzz_abort("a slice of %zu examples has another shape", count);
    if (rc == BPL_OK)
        keep_dataset(slot, ds);
}

static void op_dataset_get(void)
{
    bpl_dataset *ds = S.ds[next() % SLOTS];
    unsigned kind = next() % 3;
    size_t n = bpl_dataset_example_count(ds), f = bpl_dataset_features(ds),
           t = bpl_dataset_targets(ds);
    size_t start = next() % (n + 2), count = next() % (n + 2);
    int v = hostile(5);
    if (kind == 1) {
        int label = -1;
        int rc = fuzz_check(bpl_dataset_label(ds, start, v == 0 ? NULL : &label), any,
                            "bpl_dataset_label");
        if (rc == BPL_OK && (label < 0 || (size_t)label >= t))
            fuzz_abort("example %zu has the label %d of %zu", start, label, t);
        return;
    }
    if (kind == 2) {
        double scale = take_value(&S.in, NULL, ""), offset = take_value(&S.in, NULL, "");
        fuzz_check(bpl_dataset_set_scaling(ds, scale, offset), any,
                   "bpl_dataset_set_scaling");
        return;
    }
    float *x = xcalloc(count * f + 1, sizeof *x), *y = xcalloc(count * t + 1, sizeof *y);
    size_t x_len = count * f + (v == 2), y_len = count * t + (v == 3);
    int rc = fuzz_check(bpl_dataset_get(v == 4 ? NULL : ds, start, count, v == 0 ? NULL : x,
                                        x_len, v == 1 ? NULL : y, y_len),
                        any, "bpl_dataset_get");
    check_refused(v == 2 || v == 3 || v == 4 ? v : -1, rc, "bpl_dataset_get");
    free(x);
    free(y);
}

static void op_destroy(void)
{
    unsigned kind = next() % 4, slot = next() % SLOTS;
    if (kind == 0) {
        bpl_net_destroy(S.net[slot]);
        S.net[slot] = NULL;
    } else if (kind == 1) {
        bpl_rule_destroy(S.rule[slot]);
        S.rule[slot] = NULL;
    } else if (kind == 2) {
        bpl_dataset_destroy(S.ds[slot]);
        S.ds[slot] = NULL;
    } else {
        call_back(S.net[slot], REENTER_RULE_DESTROY);
    }
}

/* ---- everything else: introspection, names, building blocks outside a step ---------- */

static void misc_null_getters(void)
{
    if (bpl_net_inputs(NULL) || bpl_net_outputs(NULL) || bpl_net_layer_count(NULL) ||
        bpl_net_param_count(NULL) || bpl_net_seed(NULL) || bpl_net_layer(NULL, 0) ||
        bpl_net_rule(NULL) || bpl_net_phase(NULL) != BPL_PHASE_IDLE || bpl_net_loss(NULL) ||
        bpl_layer_index(NULL) || bpl_layer_units(NULL) || bpl_layer_inputs(NULL) ||
        bpl_layer_activation(NULL) != -1 || bpl_layer_tensor_count(NULL) ||
        bpl_layer_tensor_name(NULL, 0) || bpl_layer_frozen(NULL, "weight") ||
        bpl_rule_name(NULL) || bpl_rule_param_count(NULL) || bpl_dataset_example_count(NULL) ||
        bpl_dataset_features(NULL) || bpl_dataset_targets(NULL))
        fuzz_abort("a getter gave something for NULL");
    bpl_net_destroy(NULL);
    bpl_rule_destroy(NULL);
    bpl_dataset_destroy(NULL);
}

static void misc_names(void)
{
    int value = (int)(int8_t)next();
    if (!bpl_strerror(value) || !bpl_activation_name(value) || !bpl_init_name(value) ||
        !bpl_loss_name(value) || !bpl_optimizer_name(value) || !bpl_property_name(value) ||
        !bpl_tick_name(value) || !bpl_version_string() || !bpl_blas_backend() ||
        !bpl_blas_info() || bpl_version_number() != BPL_VERSION_NUMBER)
        fuzz_abort("a name or version function returned NULL for %d", value);
    char text[STR_MAX];
    take_string(&S.in, text);
    int out = -1;
    int (*const parse[])(const char *, int *) = {bpl_activation_from_name, bpl_init_from_name,
                                                 bpl_loss_from_name, bpl_optimizer_from_name};
    const char *(*const name_of[])(int) = {bpl_activation_name, bpl_init_name, bpl_loss_name,
                                           bpl_optimizer_name};
    unsigned which = next() % 4;
    int rc = fuzz_check(parse[which](next() % 8 ? text : NULL, &out), any, "bpl_*_from_name");
    if (rc == BPL_OK && strcmp(name_of[which](out), text) != 0)
        fuzz_abort("'%s' parsed as %d, whose name is '%s'", text, out, name_of[which](out));
    fuzz_check(parse[which](text, NULL), any, "bpl_*_from_name (NULL out)");
}

static void misc_profile(bpl_net *net)
{
    size_t epoch = 1, step = 1, steps = 1;
    double seconds, gemm, flops;
    uint64_t count;
    fuzz_check(bpl_net_set_profiling(net, (int)next() % 3), any, "bpl_net_set_profiling");
    fuzz_check(bpl_net_profile(net, &seconds, &gemm, &flops, &count), any, "bpl_net_profile");
    fuzz_check(bpl_net_profile(net, NULL, NULL, NULL, NULL), any, "bpl_net_profile (NULL)");
    int rc = fuzz_check(bpl_net_progress(net, &epoch, &step, &steps), any, "bpl_net_progress");
    if (rc == BPL_OK && (epoch || step || steps))
        fuzz_abort("bpl_net_progress outside bpl_net_fit gave %zu %zu %zu", epoch, step,
                   steps);
}

/* The building blocks of rules outside a step: refused. */
static void misc_blocks(bpl_net *net)
{
    float *x, *y;
    small_batch(net, &x, &y);
    bpl_layer *layer = bpl_net_layer(net, 0);
    float *w = NULL, *data;
    const float *input;
    bpl_layer_tensor(layer, "weight", &w, NULL, NULL);
    fuzz_check(bpl_net_forward_dense(net, x, 2), refused, "bpl_net_forward_dense (idle)");
    fuzz_check(bpl_net_output_delta(net, y, 2), refused, "bpl_net_output_delta (idle)");
    fuzz_check(bpl_net_project_delta(net, 1, 0, w ? w : x, 1), refused,
               "bpl_net_project_delta (idle)");
    fuzz_check(bpl_net_weight_gradients(net, 0), refused, "bpl_net_weight_gradients (idle)");
    fuzz_check(bpl_layer_buffer(layer, "activation", &data, NULL, NULL), refused,
               "bpl_layer_buffer (idle)");
    fuzz_check(bpl_layer_input(layer, &input, NULL, NULL), refused, "bpl_layer_input (idle)");
    fuzz_check(bpl_net_apply_gradients(net, next() % 5), any, "bpl_net_apply_gradients (idle)");
    free(x);
    free(y);
}

static void misc_gemm(bpl_net *net)
{
    size_t m = next() % 4, n = next() % 4, k = next() % 4;
    int ta = (int)(next() % 2), tb = (int)(next() % 2);
    int v = hostile(6);
    size_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    size_t lda = a_cols + next() % 2, ldb = b_cols + next() % 2, ldc = n + next() % 2;
    float *a = take_floats(a_rows * lda), *b = take_floats(b_rows * ldb);
    float *c = xcalloc(m * ldc, sizeof *c);
    if (v == 1)
        lda = a_cols ? a_cols - 1 : 0;
    if (v == 2)
        ldc = 0;
    if (v == 3)
        ldb = (size_t)INT_MAX + 1 + b_cols; /* beyond BLAS's int */
    if (v == 4 && m)
        m = (size_t)INT_MAX + 1;
    int rc = fuzz_check(bpl_gemm(net, ta, tb, m, n, k, 1.0f, v == 0 ? NULL : a, lda,
                                 v == 5 ? NULL : b, ldb, 0.5f, c, ldc),
                        any, "bpl_gemm");
    int must_fail = (v == 0 && a_rows && a_cols) || (v == 1 && a_cols) || v == 2 ||
                    v == 3 || (v == 4 && m) || (v == 5 && b_rows && b_cols);
    check_refused(must_fail ? v : -1, rc, "bpl_gemm");
    free(a);
    free(b);
    free(c);
}

static void misc_activation(void)
{
    int act = (int)(next() % 7) - 1;
    size_t rows = next() % 4, cols = next() % 4;
    int v = hostile(3);
    float *a = take_floats(rows * cols), *h = take_floats(rows * cols);
    float *bias = take_floats(cols);
    if (v == 1 && cols > 1)
        rows = overflowing(cols);
    /* NULL values (0) with any, and rows overflowing with the width (1),
     * must be refused by the forward kernel; NULL values (0) or outputs (2)
     * by the backward one. */
    int refuse = (v == 0 && rows * cols > 0) || (v == 1 && cols > 1);
    int rc = fuzz_check(bpl_activation_forward(act, v == 0 ? NULL : a, next() % 2 ? bias : NULL,
                                               rows, cols),
                        any, "bpl_activation_forward");
    check_refused(refuse ? v : -1, rc, "bpl_activation_forward");
    size_t n = v == 1 ? 0 : rows * cols;
    refuse = (v == 0 || v == 2) && n > 0;
    rc = fuzz_check(bpl_activation_backward(act, v == 0 ? NULL : a, v == 2 ? NULL : h, n), any,
                    "bpl_activation_backward");
    check_refused(refuse ? v : -1, rc, "bpl_activation_backward");
    if (rc == BPL_OK && act == BPL_ACT_SOFTMAX)
        fuzz_abort("bpl_activation_backward accepted softmax");
    free(a);
    free(h);
    free(bias);
}

static void misc_rule_info(void)
{
    bpl_rule *rule = pick_rule();
    int property = (int)(next() % 9) - 1, tick = (int)(next() % 7) - 1;
    const char *note = NULL, *name = NULL;
    fuzz_check(bpl_rule_property(rule, property, &tick, &note), any,
               "bpl_rule_property");
    fuzz_check(bpl_rule_set_property(rule, property, tick, next() % 2 ? "note" : NULL), any,
               "bpl_rule_set_property");
    fuzz_check(bpl_rule_set_description(rule, next() % 2 ? "description" : NULL), any,
               "bpl_rule_set_description");
    fuzz_check(bpl_rule_param_info(rule, next(), &name, NULL, NULL, NULL, NULL, NULL, NULL),
               any, "bpl_rule_param_info");
    if (rule && !bpl_rule_description(rule))
        fuzz_abort("bpl_rule_description returned NULL");
}

static void misc_layer_info(bpl_net *net)
{
    bpl_layer *layer = pick_layer(net);
    char name[STR_MAX];
    take_tensor_name(layer, name);
    float *data;
    size_t count = bpl_layer_tensor_count(layer);
    if (bpl_layer_tensor_name(layer, count))
        fuzz_abort("bpl_layer_tensor_name beyond the last tensor is not NULL");
    fuzz_check(bpl_layer_tensor_info(layer, name, NULL, NULL, NULL), any,
               "bpl_layer_tensor_info");
    fuzz_check(bpl_layer_tensor(layer, name, &data, NULL, NULL), any, "bpl_layer_tensor");
    fuzz_check(bpl_layer_tensor_grad(layer, name, &data, NULL, NULL), any,
               "bpl_layer_tensor_grad");
    fuzz_check(bpl_layer_tensor(layer, name, NULL, NULL, NULL), refused,
               "bpl_layer_tensor (NULL)");
    fuzz_check(bpl_layer_add_buffer(layer, next() % 2 ? "activation" : name,
                                    next() % (MAX_WIDTH + 1)),
               any, "bpl_layer_add_buffer");
    bpl_layer_frozen(layer, NULL);
}

static void count_log(int level, const char *message, void *user_data)
{
    (void)level;
    (void)message;
    ++*(unsigned *)user_data;
}

static void misc_other(bpl_net *net)
{
    static unsigned logged;
    bpl_rule_vtable vt;
    fuzz_check(bpl_rule_vtable_init(NULL, BPL_RULE_VTABLE_VERSION), refused,
               "bpl_rule_vtable_init (NULL)");
    fuzz_check(bpl_rule_vtable_init(&vt, next()), any, "bpl_rule_vtable_init");
    fuzz_check(bpl_net_set_log_fn(net, next() % 2 ? count_log : NULL, &logged), any,
               "bpl_net_set_log_fn");
    int threads = (int)(next() % 3) - 1;
    int rc = fuzz_check(bpl_set_thread_count(threads), any, "bpl_set_thread_count");
    if ((rc == BPL_OK) > (threads >= 1) || bpl_thread_count() < 1)
        fuzz_abort("bpl_set_thread_count(%d) returned %d, now %d threads", threads, rc,
                   bpl_thread_count());
    fuzz_check(bpl_error_set(BPL_OK, NULL), FZ(BPL_OK), "bpl_error_set");
}

static void op_misc(void)
{
    unsigned which = next();
    bpl_net *net = pick_net();
    switch (which % 9) {
    case 0: misc_null_getters(); break;
    case 1: misc_names(); break;
    case 2: misc_profile(net); break;
    case 3: misc_blocks(net); break;
    case 4: misc_gemm(net); break;
    case 5: misc_activation(); break;
    case 6: misc_rule_info(); break;
    case 7: misc_layer_info(net); break;
    default: misc_other(net); break;
    }
}

/* ---- the sequence -------------------------------------------------------------------- */

static void run(void)
{
    switch (next() % API_OP_COUNT) {
    case API_NET_CREATE: op_net_create(); break;
    case API_ADD_DENSE: op_add_dense(); break;
    case API_SET_LOSS: op_set_loss(); break;
    case API_RULE_BUILTIN: op_rule_builtin(); break;
    case API_RULE_USER: op_rule_user(); break;
    case API_RULE_SET: op_rule_set(0); break;
    case API_RULE_SET_STRING: op_rule_set(1); break;
    case API_RULE_GET: op_rule_get(); break;
    case API_ATTACH: op_attach(); break;
    case API_TRAIN: op_train(); break;
    case API_PREDICT: op_predict(); break;
    case API_FIT: op_fit(); break;
    case API_EVALUATE: op_evaluate(); break;
    case API_ALIGNMENT: op_alignment(); break;
    case API_TENSOR_GET: op_tensor_get_set(0); break;
    case API_TENSOR_SET: op_tensor_get_set(1); break;
    case API_TENSOR_INIT: op_tensor_init(); break;
    case API_TENSOR_ADD: op_tensor_add(); break;
    case API_FREEZE: op_freeze(); break;
    case API_RANDOM: op_random(); break;
    case API_SAVE: op_save(); break;
    case API_LOAD: op_load(); break;
    case API_DATASET: op_dataset(); break;
    case API_DATASET_SLICE: op_dataset_slice(); break;
    case API_DATASET_GET: op_dataset_get(); break;
    case API_DESTROY: op_destroy(); break;
    case API_ADD_CONV2D: op_add_conv2d(); break;
    case API_ADD_POOL2D: op_add_pool2d(); break;
    default: op_misc(); break;
    }
}

/* Every sequence ends on a working net 0 (3-4-2 with backprop unless it
 * has layers and a rule already): a training step, a prediction, a save. */
static void finish(void)
{
    if (!S.net[0])
        fuzz_check(bpl_net_create(&S.net[0], 3, 1), FZ(BPL_OK), "bpl_net_create");
    bpl_net *net = S.net[0];
    if (!net)
        return;
    if (!bpl_net_layer_count(net)) {
        fuzz_check(bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM),
                   FZ(BPL_OK), "bpl_net_add_dense");
        fuzz_check(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM),
                   FZ(BPL_OK), "bpl_net_add_dense");
    }
    if (!bpl_net_rule(net)) {
        bpl_rule *rule = builtin(0);
        if (rule && fuzz_check(bpl_net_set_rule(net, rule), any, "bpl_net_set_rule") != BPL_OK)
            bpl_rule_destroy(rule);
    }
    back_train(net, 0);
    back_train(net, 1);
    save_checked(net, "api.bpl");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_begin();
    fuzz_scratch_dir();
    fuzz_empty_dir(); /* no file of an earlier input: each input runs alone */
    memset(&S, 0, sizeof S);
    S.in = (input){data, size};
    for (int i = 0; i < MAX_OPS && S.in.n > 0; i++)
        run();
    finish();
    for (unsigned i = 0; i < SLOTS; i++) {
        bpl_net_destroy(S.net[i]);
        bpl_rule_destroy(S.rule[i]);
        bpl_dataset_destroy(S.ds[i]);
    }
    return 0;
}
