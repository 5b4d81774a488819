/*
 * fuzz_model.c - bpl_net_load on arbitrary files (format version 1 or 2),
 * and bpl_net_load_from_buffer on the same bytes, which must answer as the
 * file does.  A load either fails with
 * a documented status or gives a net that can be used; a net saved and
 * loaded back is the same net: same file, same predictions and the same
 * training step, to the bit.  Then the loaded net is put to work: a few
 * training steps and predictions, an evaluation, a short bpl_net_fit and an
 * alignment on a tiny dataset, and a save whose file must load again
 * (whatever bpl_net_save writes, bpl_net_load reads).  A file that only
 * loads proves little: its generator state, optimiser moments and
 * hyperparameters matter only once the net trains.
 *
 * The input is the file.  Files carry CRC-32 checksums, so an input that
 * does not load as it is gets a second chance with its header's payload
 * size and checksums recomputed: that is what lets mutations reach the
 * parser behind the checksum.
 *
 * A net whose training step would cost more than FUZZ_COST_CAP
 * (fuzz_util.h) is loaded but not run: it counts as skipped.
 */
#include <math.h>
#include <zlib.h>

#include "fuzz_util.h"

#define HEADER_SIZE 32
#define BATCH 3
#define TRAIN_STEPS 3
#define DATA_ROWS 5 /* not a power of two: the shuffle then draws with rejection */
#define FIT_EPOCHS 2
#define FIT_BATCH 2
#define MAX_LAYERS 1024 /* the most a file may hold */

static void store_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Make the header agree with the payload; 1 if that changed anything. */
static int fix_header(unsigned char *d, size_t n)
{
    unsigned char before[HEADER_SIZE];
    memcpy(before, d, HEADER_SIZE);
    store_le(d + 16, n - HEADER_SIZE, 8);
    store_le(d + 24, crc32(0L, d + HEADER_SIZE, (uInt)(n - HEADER_SIZE)), 4);
    store_le(d + 28, crc32(0L, d, 28), 4);
    return memcmp(before, d, HEADER_SIZE) != 0;
}

static int load(bpl_net **net, const char *path, unsigned allowed)
{
    int rc = fuzz_check(bpl_net_load(net, path), allowed, "bpl_net_load");
    if ((rc == BPL_OK) != (*net != NULL))
        fuzz_abort("bpl_net_load returned %d with *out %p", rc, (void *)*net);
    return rc;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0)
        fuzz_abort("cannot read back %s", path);
    long n = ftell(f);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    rewind(f);
    if (n < 0 || !buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        fuzz_abort("cannot read back %s", path);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void save_and_compare(const bpl_net *a, const bpl_net *b, const char *what)
{
    char pa[512], pb[512];
    fuzz_path(pa, sizeof pa, "a.bpl");
    fuzz_path(pb, sizeof pb, "b.bpl");
    fuzz_check(bpl_net_save(a, pa), FZ(BPL_OK), "bpl_net_save");
    fuzz_check(bpl_net_save(b, pb), FZ(BPL_OK), "bpl_net_save");
    size_t na, nb;
    unsigned char *da = read_all(pa, &na), *db = read_all(pb, &nb);
    if (na != nb || memcmp(da, db, na) != 0)
        fuzz_abort("%s: the saved files differ (%zu and %zu bytes)", what, na, nb);
    free(da);
    free(db);
}

/* The same inputs for every net of a run. */
static float *batch_of(size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        fuzz_abort("out of memory in the target");
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)(i * 7 % 11) - 5) * 0.25f;
    return x;
}

static int predict(bpl_net *net, float *out)
{
    size_t n_in = bpl_net_inputs(net), n_out = bpl_net_outputs(net);
    float *x = batch_of(BATCH * n_in);
    int rc = fuzz_check(bpl_net_predict(net, x, BATCH, out, BATCH * n_out),
                        FZ(BPL_OK) | FZ(BPL_ERR_STATE) | FZ(BPL_ERR_NUMERIC),
                        "bpl_net_predict");
    fuzz_reached_if_ok(rc, FUZZ_REACH_PREDICT);
    free(x);
    return rc;
}

/* One training step on both nets: same status, same resulting state. */
static void train_both(bpl_net *a, bpl_net *b)
{
    size_t n_in = bpl_net_inputs(a), n_out = bpl_net_outputs(a);
    float *x = batch_of(BATCH * n_in), *y = calloc(BATCH * n_out, sizeof *y);
    if (!y)
        fuzz_abort("out of memory in the target");
    for (size_t i = 0; i < BATCH; i++)
        y[i * n_out + i % n_out] = 1.0f;
    int ra = fuzz_reached_if_ok(fuzz_check(bpl_net_train_batch(a, x, y, BATCH, NULL), FZ_ANY,
                                           "bpl_net_train_batch"),
                                FUZZ_REACH_TRAIN);
    int rb = fuzz_check(bpl_net_train_batch(b, x, y, BATCH, NULL), FZ_ANY,
                        "bpl_net_train_batch");
    if (ra != rb)
        fuzz_abort("a training step of the saved net returned %d, of the loaded one %d", ra,
                   rb);
    save_and_compare(a, b, "after a training step");
    free(x);
    free(y);
}

/* The segregated rule's spiking mode keeps membrane potentials and spike
 * traces in its batch buffers from one call to the next ("time runs on"),
 * and a saved file does not hold them: a loaded net starts at rest, so it
 * cannot predict like the net it was saved from.  Such a net is compared
 * with a second load of the same file instead, unless
 * BPL_FUZZ_STRICT_RESUME is set (which shows the difference). */
static int resumes_exactly(bpl_net *net)
{
    const bpl_rule *rule = bpl_net_rule(net);
    double mode;
    const char *strict = getenv("BPL_FUZZ_STRICT_RESUME");
    if ((strict && strict[0]) || !rule || strcmp(bpl_rule_name(rule), "segregated") != 0)
        return 1;
    return bpl_rule_get(rule, "mode", &mode) == BPL_OK && mode == 0.0;
}

static void roundtrip(bpl_net *a)
{
    size_t n_out = BATCH * bpl_net_outputs(a);
    float *pa = malloc(n_out * sizeof *pa), *pb = malloc(n_out * sizeof *pb);
    if (!pa || !pb)
        fuzz_abort("out of memory in the target");
    int rc = predict(a, pa);
    if (rc == BPL_ERR_STATE && bpl_net_loss(a) != BPL_LOSS_MSE) {
        /* cross-entropy on a linear output: the outputs do not depend on it */
        fuzz_check(bpl_net_set_loss(a, BPL_LOSS_MSE), FZ(BPL_OK), "bpl_net_set_loss");
        rc = predict(a, pa);
    }
    if (rc == BPL_OK) {
        char path[512];
        fuzz_path(path, sizeof path, "saved.bpl");
        fuzz_reached_if_ok(fuzz_check(bpl_net_save(a, path), FZ(BPL_OK), "bpl_net_save"),
                           FUZZ_REACH_SAVE);
        bpl_net *b = NULL, *c = NULL, *ref = a;
        load(&b, path, FZ(BPL_OK)); /* a file the library wrote must load */
        save_and_compare(a, b, "after loading");
        if (!resumes_exactly(a)) {
            load(&c, path, FZ(BPL_OK));
            ref = c;
        }
        int ra = predict(ref, pa), rb = predict(b, pb);
        if (ra != rb || (ra == BPL_OK && memcmp(pa, pb, n_out * sizeof *pa) != 0))
            fuzz_abort("the loaded net predicts differently (status %d vs %d)", ra, rb);
        if (bpl_net_rule(a))
            train_both(ref, b);
        bpl_net_destroy(b);
        bpl_net_destroy(c);
    }
    free(pa);
    free(pb);
}

/* ---- putting the loaded net to work ------------------------------------------------ */

/* y [rows][outputs]: one-hot rows. */
static float *targets_of(size_t rows, size_t n_out)
{
    float *y = calloc(rows * n_out ? rows * n_out : 1, sizeof *y);
    if (!y)
        fuzz_abort("out of memory in the target");
    for (size_t i = 0; n_out && i < rows; i++)
        y[i * n_out + (i * 5 + 1) % n_out] = 1.0f;
    return y;
}

typedef struct progress {
    size_t events, epochs, steps;
} progress;

/* bpl_net_fit reports what its documentation says, in order. */
static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data)
{
    progress *p = user_data;
    if ((event != BPL_EVENT_BATCH && event != BPL_EVENT_EPOCH) || epoch < 1 ||
        epoch > p->epochs || steps != p->steps || step < 1 || step > steps ||
        (event == BPL_EVENT_EPOCH && step != steps) || !isfinite(loss))
        fuzz_abort("bpl_net_fit reported event %d, epoch %zu, step %zu of %zu, loss %g",
                   event, epoch, step, steps, loss);
    p->events++;
    return 0;
}

static void train_steps(bpl_net *net, const float *x, const float *y)
{
    size_t n_out = bpl_net_outputs(net);
    float *out = malloc(BATCH * n_out * sizeof *out);
    if (!out)
        fuzz_abort("out of memory in the target");
    for (int i = 0; i < TRAIN_STEPS; i++) {
        double loss = NAN;
        int rc = fuzz_check(bpl_net_train_batch(net, x, y, BATCH, &loss), FZ_ANY,
                            "bpl_net_train_batch");
        if (!bpl_net_rule(net) && rc != BPL_ERR_STATE)
            fuzz_abort("a training step without a rule returned %d", rc);
        if (rc == BPL_OK && !isfinite(loss))
            fuzz_abort("a successful training step reported the loss %g", loss);
        fuzz_reached_if_ok(rc, FUZZ_REACH_TRAIN);
        fuzz_reached_if_ok(fuzz_check(bpl_net_predict(net, x, BATCH, out, BATCH * n_out),
                                      FZ_ANY, "bpl_net_predict"),
                           FUZZ_REACH_PREDICT);
    }
    free(out);
}

static void on_dataset(bpl_net *net, const float *x, const float *y)
{
    size_t n_in = bpl_net_inputs(net), n_out = bpl_net_outputs(net);
    bpl_dataset *ds = NULL;
    if (fuzz_check(bpl_dataset_from_f32(&ds, x, y, DATA_ROWS, n_in, n_out),
                   FZ(BPL_OK) | FZ(BPL_ERR_NOMEM), "bpl_dataset_from_f32") != BPL_OK)
        return;
    double accuracy = NAN, loss = NAN;
    int rc = fuzz_check(bpl_net_evaluate(net, ds, &accuracy, &loss), FZ_ANY,
                        "bpl_net_evaluate");
    if (rc == BPL_OK && !(accuracy >= 0.0 && accuracy <= 1.0))
        fuzz_abort("bpl_net_evaluate reported the accuracy %g", accuracy);
    progress p = {0, FIT_EPOCHS, (DATA_ROWS + FIT_BATCH - 1) / FIT_BATCH};
    rc = fuzz_check(bpl_net_fit(net, ds, FIT_EPOCHS, FIT_BATCH, on_progress, &p), FZ_ANY,
                    "bpl_net_fit");
    if (rc == BPL_OK && p.events != FIT_EPOCHS * (p.steps + 1))
        fuzz_abort("bpl_net_fit succeeded after %zu progress events", p.events);
    bpl_dataset_destroy(ds);
    double angles[MAX_LAYERS];
    size_t n_layers = bpl_net_layer_count(net);
    if (n_layers <= MAX_LAYERS)
        fuzz_check(bpl_net_alignment(net, x, y, BATCH, angles, n_layers), FZ_ANY,
                   "bpl_net_alignment");
}

/* Whatever bpl_net_save writes, bpl_net_load reads, and the net it gives
 * saves to the same file. */
static void save_reload(bpl_net *net)
{
    char path[512];
    fuzz_path(path, sizeof path, "worked.bpl");
    if (fuzz_reached_if_ok(fuzz_check(bpl_net_save(net, path), FZ(BPL_OK), "bpl_net_save"),
                           FUZZ_REACH_SAVE) != BPL_OK)
        return;
    bpl_net *back = NULL;
    load(&back, path, FZ(BPL_OK));
    save_and_compare(net, back, "after training, fitting and loading");
    bpl_net_destroy(back);
}

static void exercise(bpl_net *net)
{
    size_t n_in = bpl_net_inputs(net), n_out = bpl_net_outputs(net);
    float *x = batch_of(DATA_ROWS * n_in), *y = targets_of(DATA_ROWS, n_out);
    train_steps(net, x, y);
    on_dataset(net, x, y);
    save_reload(net);
    free(x);
    free(y);
}

/* ---- a mutator that keeps files loadable ----------------------------------------------
 *
 * Byte-level mutations of a model file almost always break its structure,
 * and the loader then refuses it: few inputs would reach a training step.
 * Nine mutations in ten therefore walk the file's layout (lib/model_io.c)
 * and change one value in place: the generator state, the optimiser step
 * counts, activations and initialisers, tensor values and optimiser
 * moments, frozen flags, the rule's hyperparameters and a layer's window
 * (width, kernel, stride, padding of a conv layer).  One such change
 * in HOSTILE_ONE_IN is one a file should not hold; the tenth mutation is
 * libFuzzer's own.  libFuzzer stacks several mutations before each
 * execution: a unit this mutator has just made only gets valid changes,
 * so that stacking keeps it loadable.  Either way the header's size and
 * checksums are recomputed, so the loader sees the change. */

enum field_kind {
    FIELD_STATE,  /* the 32 bytes of the generator state */
    FIELD_SEED,   /* u64 */
    FIELD_STEPS,  /* u64: an optimiser step count, or the count of a built-in
                     rule's state */
    FIELD_LOSS,   /* u32 */
    FIELD_ACT,    /* u32: a layer's activation */
    FIELD_INIT,   /* u32: a layer's initialiser */
    FIELD_GROUP,  /* i32: a tensor's group */
    FIELD_FLAGS,  /* a tensor's flags byte: only the frozen bit is changed */
    FIELD_FLOATS, /* f32 values (a tensor, its first or second moments) */
    FIELD_PARAM,  /* f64: a hyperparameter */
    FIELD_WINDOW  /* u64: a layer's width, kernel height or width, stride or
                     padding (every kind but dense) */
};

/* Each field takes a value it may hold, and one time in HOSTILE_ONE_IN a
 * value a file should not hold (a zero generator state, a NaN, a negative
 * second moment, an out-of-range enum or hyperparameter): libFuzzer stacks
 * several mutations per execution, so mostly valid ones keep a good share
 * of files loadable, and the hostile ones test that the loader refuses. */
#define HOSTILE_ONE_IN 10

typedef struct field {
    size_t at, count; /* offset in the file; floats of FIELD_FLOATS */
    int kind;
} field;

#define MAX_FIELDS 512

typedef struct layout {
    const unsigned char *d;
    size_t n, pos;
    field fields[MAX_FIELDS];
    size_t n_fields;
    int bad;
} layout;

static uint64_t peek(layout *l, int bytes)
{
    uint64_t v = 0;
    if (l->bad || l->n - l->pos < (size_t)bytes) {
        l->bad = 1;
        return 0;
    }
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | l->d[l->pos + (size_t)i];
    return v;
}

static void add_field(layout *l, size_t count, int kind)
{
    if (!l->bad && l->n_fields < MAX_FIELDS)
        l->fields[l->n_fields++] = (field){l->pos, count, kind};
}

static uint64_t skip(layout *l, int bytes, int kind)
{
    uint64_t v = peek(l, bytes);
    if (kind >= 0)
        add_field(l, 1, kind);
    if (!l->bad)
        l->pos += (size_t)bytes;
    return v;
}

static void skip_floats(layout *l, uint64_t count)
{
    if (l->bad || count > (l->n - l->pos) / 4) {
        l->bad = 1;
        return;
    }
    if (count)
        add_field(l, (size_t)count, FIELD_FLOATS);
    l->pos += 4 * (size_t)count;
}

/* 1 if the str at the position is `s`. */
static int str_is(layout *l, const char *s)
{
    size_t n = strlen(s);
    return !l->bad && l->n - l->pos >= 4 + n && peek(l, 4) == n &&
           memcmp(l->d + l->pos + 4, s, n) == 0;
}

static void skip_str(layout *l)
{
    uint64_t len = skip(l, 4, -1);
    if (!l->bad && len > l->n - l->pos)
        l->bad = 1;
    if (!l->bad)
        l->pos += (size_t)len;
}

static void walk_tensor(layout *l)
{
    skip_str(l);
    skip(l, 4, FIELD_GROUP);
    uint64_t rows = skip(l, 8, -1), cols = skip(l, 8, -1);
    unsigned flags = (unsigned)skip(l, 1, FIELD_FLAGS);
    if (rows > (1u << 24) || cols > (1u << 24)) {
        l->bad = 1;
        return;
    }
    for (int part = 0; part < ((flags & 1) ? 3 : 1); part++)
        skip_floats(l, rows * cols);
}

/* A shape of format version 2: u32 rank and u64 extents. */
static void skip_shape(layout *l)
{
    uint64_t rank = skip(l, 4, -1);
    for (uint64_t i = 0; !l->bad && i < rank && i < 8; i++)
        skip(l, 8, -1);
}

/* A rule's state (version 2): a built-in rule's is a format byte and a
 * u64 count, mutated as a step count. */
static void walk_state(layout *l)
{
    if (skip(l, 4, -1) != 1)
        return;
    uint64_t size = skip(l, 8, -1);
    if (size == 9) {
        skip(l, 1, -1);
        skip(l, 8, FIELD_STEPS);
    }
}

/* The fields of a model file (format version 1 or 2), as far as its
 * layout holds together. */
static void walk(layout *l)
{
    l->pos = 8;
    int v2 = skip(l, 4, -1) >= 2;
    l->pos = HEADER_SIZE;
    if (v2)
        skip_shape(l); /* the input's */
    else
        skip(l, 8, -1); /* inputs */
    skip(l, 8, FIELD_SEED);
    if (l->n - l->pos >= 32)
        add_field(l, 1, FIELD_STATE);
    for (int i = 0; i < 4; i++)
        skip(l, 8, -1);
    skip(l, 4, FIELD_LOSS);
    uint64_t layers = skip(l, 4, -1);
    skip(l, 8, FIELD_STEPS);
    skip(l, 8, FIELD_STEPS);
    for (uint64_t i = 0; !l->bad && i < layers; i++) {
        if (v2) {
            int dense = str_is(l, "dense");
            skip_str(l); /* kind */
            for (int p = 0; !dense && p < 5; p++)
                skip(l, 8, FIELD_WINDOW); /* units, kernel_h, kernel_w, stride, pad */
            skip_shape(l);
        } else {
            skip(l, 8, -1); /* units */
        }
        skip(l, 4, FIELD_ACT);
        skip(l, 4, FIELD_INIT);
        uint64_t tensors = skip(l, 4, -1);
        for (uint64_t t = 0; !l->bad && t < tensors && t < 64; t++)
            walk_tensor(l);
    }
    if (skip(l, 4, -1) != 1)
        return;
    skip_str(l);
    uint64_t params = skip(l, 4, -1);
    for (uint64_t i = 0; !l->bad && i < params && i < 256; i++) {
        skip_str(l);
        skip(l, 8, FIELD_PARAM);
    }
    if (v2 && params <= 256)
        walk_state(l);
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#define PICK(table, r) (table)[(r) % (sizeof(table) / sizeof((table)[0]))]

static const float edge_floats[] = {0.0f,  -0.0f, 1.0f,  -1.0f,    3e38f, -3e38f,
                                    1e-45f, 1e-38f, 1e30f, -1e30f, 65504.0f, 0.5f};
static const double edge_doubles[] = {-1.0,   1e4 + 0.5, 10001.0, 1e6,  1e7,   65536.0,
                                      1e300,  -1e300,    9007199254740992.0, 1e-300};
static const uint64_t edge_counts[] = {((uint64_t)1 << 53) - 1, (uint64_t)1 << 53,
                                       (uint64_t)1 << 63, UINT64_MAX};

static void mutate_floats(unsigned char *p, size_t count, uint64_t r, int may_harm)
{
    size_t first = (size_t)(r >> 8) % count, last = r & 1 ? count : first + 1;
    float v = (float)((int)(r >> 40 & 0xff) - 128) / 32.0f; /* [-4, 4) */
    uint32_t bits = (r >> 48) & 1 ? 0x7fc00000u : 0x7f800000u; /* NaN or Inf */
    if (may_harm && (r >> 20) % HOSTILE_ONE_IN == 0)
        memcpy(&v, &bits, sizeof v);
    else if ((r & 6) == 0) /* an edge value one time in four */
        v = PICK(edge_floats, r >> 32);
    for (size_t i = first; i < last; i++)
        memcpy(p + 4 * i, &v, sizeof v);
}

/* A hyperparameter nudged (whole numbers stay whole), or an edge value. */
static void mutate_param(unsigned char *p, uint64_t r, int may_harm)
{
    static const double factors[] = {0.0, 0.5, 2.0};
    double v;
    memcpy(&v, p, sizeof v); /* little-endian, as the file */
    if (may_harm && (r >> 8) % HOSTILE_ONE_IN == 0)
        v = PICK(edge_doubles, r >> 16);
    else if (r & 1)
        v = v * PICK(factors, r >> 16);
    else
        v = v + (r & 2 ? 1.0 : -1.0);
    memcpy(p, &v, sizeof v);
}

/* 0 if the field has no valid value but its own (a group, the loss) and
 * this is not a hostile mutation: another field is tried instead. */
static int mutate_field(unsigned char *d, const field *f, uint64_t *rng, int may_harm)
{
    uint64_t r = next_random(rng);
    int hostile = may_harm && (r >> 56) % HOSTILE_ONE_IN == 0;
    unsigned char *p = d + f->at;
    switch (f->kind) {
    case FIELD_STATE:
        if (hostile)
            memset(p, 0, 32); /* xoshiro256** would return 0 for ever */
        else
            store_le(p + 8 * (r % 4), r >> 2 | 1, 8);
        break;
    case FIELD_SEED: store_le(p, r >> 8, 8); break;
    case FIELD_STEPS: store_le(p, hostile ? PICK(edge_counts, r) : (r >> 8) % 100000, 8); break;
    case FIELD_LOSS:
    case FIELD_GROUP:
        if (!hostile)
            return 0;
        store_le(p, r >> 8, 4);
        break;
    case FIELD_ACT: store_le(p, hostile ? r >> 8 : r % 5, 4); break;
    case FIELD_INIT: store_le(p, hostile ? r >> 8 : r % 9, 4); break;
    case FIELD_FLAGS: p[0] ^= 2; break;
    case FIELD_WINDOW: /* mostly refused: the stored shape no longer matches */
        store_le(p, hostile ? PICK(edge_counts, r >> 8) : (r >> 8) % 6, 8);
        break;
    case FIELD_FLOATS: mutate_floats(p, f->count, r, may_harm); break;
    default: mutate_param(p, r, may_harm); break;
    }
    return 1;
}

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);

static uint64_t hash_of(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 0x100000001b3u;
    return h ^ size;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed)
{
    /* A unit that this mutator made last time is being mutated again: only
     * valid changes then, so that stacked mutations leave it loadable. */
    static uint64_t last;
    int fresh = hash_of(data, size) != last;
    uint64_t rng = (uint64_t)seed * 0x9e3779b97f4a7c15u | 1;
    static layout l;
    l.d = data;
    l.n = size;
    l.n_fields = 0;
    l.bad = size < HEADER_SIZE;
    if (!l.bad)
        walk(&l);
    int changed = 0;
    int structured = !fresh || next_random(&rng) % 10 != 0;
    for (int tries = 0; l.n_fields > 0 && structured && !changed && tries < 4; tries++)
        changed = mutate_field(data, &l.fields[next_random(&rng) % l.n_fields], &rng, fresh);
    if (!changed)
        size = LLVMFuzzerMutate(data, size, max_size);
    if (size >= HEADER_SIZE)
        fix_header(data, size);
    last = hash_of(data, size);
    return size;
}

/* The same bytes loaded from memory give the same answer as from the file:
 * the same status and, loaded, a net that saves the same file. */
static void same_from_memory(const bpl_net *from_file, int rc, const uint8_t *data,
                             size_t size)
{
    bpl_net *net = NULL;
    int rm = bpl_net_load_from_buffer(&net, size ? data : NULL, size);
    if (rm != rc || (rm == BPL_OK) != (net != NULL))
        fuzz_abort("bpl_net_load_from_buffer returned %d, bpl_net_load %d", rm, rc);
    if (net)
        save_and_compare(from_file, net, "loaded from memory");
    bpl_net_destroy(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned loadable = FZ(BPL_OK) | FZ(BPL_ERR_FORMAT) | FZ(BPL_ERR_VERSION);
    fuzz_begin();
    char path[512];
    fuzz_path(path, sizeof path, "input.bpl");
    fuzz_write(path, data, size);
    bpl_net *net = NULL;
    int rc = load(&net, path, loadable);
    same_from_memory(net, rc, data, size);
    if (rc != BPL_OK && size >= HEADER_SIZE) {
        unsigned char *fixed = malloc(size);
        if (!fixed)
            fuzz_abort("out of memory in the target");
        memcpy(fixed, data, size);
        if (fix_header(fixed, size)) {
            fuzz_write(path, fixed, size);
            rc = load(&net, path, loadable);
        }
        free(fixed);
    }
    if (rc == BPL_OK && fuzz_affordable(net, DATA_ROWS)) {
        roundtrip(net);
        exercise(net);
    }
    bpl_net_destroy(net);
    return 0;
}
