/*
 * test_alloc_failure.c - every allocation can fail cleanly.
 *
 * Each operation is run once to count the allocations it makes, then once
 * more per allocation, with that one failing.  Every failure must come back
 * as BPL_ERR_NOMEM (or another documented error) with a message naming the
 * function, leave nothing leaked (run under valgrind or ASan to check) and
 * leave the objects usable: with allocations working again, the same call
 * succeeds and gives what a run that never failed gives.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "bpl_internal.h"

enum { IN = 5, OUT = 3, N = 12, BATCH = 4 };

static float data_x[N * IN], data_y[N * OUT];
static uint8_t pixels[N * IN], labels[N];

static void make_data(void)
{
    uint64_t seed = 21;
    test_fill_uniform(data_x, N * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(data_y, N, OUT, &seed);
    for (size_t i = 0; i < N * IN; i++)
        pixels[i] = (uint8_t)(i * 37 % 256);
    for (size_t i = 0; i < N; i++)
        labels[i] = (uint8_t)(i % OUT);
}

/* Run `call` and store in `n` how many allocations it made. */
#define COUNT_ALLOCATIONS(n, call)                                                   \
    do {                                                                             \
        uint64_t before_ = bpl__alloc_count();                                       \
        call;                                                                        \
        (n) = bpl__alloc_count() - before_;                                          \
    } while (0)

/* Contract breaches of one test, listed together at its end: one broken
 * message should not hide the next allocation's crash or leak. */
static char problems[2048];
static size_t n_problems;

static void note_problem(const char *fmt, ...) BPL__PRINTF(1, 2);
static void note_problem(const char *fmt, ...)
{
    size_t used = strlen(problems);
    if (n_problems++ < 12 && used + 2 < sizeof problems) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(problems + used, sizeof problems - used - 1, fmt, ap);
        va_end(ap);
        strcat(problems, "\n");
    }
}

static void start_test(void)
{
    problems[0] = '\0';
    n_problems = 0;
}

static void end_test(void)
{
    ck_assert_msg(n_problems == 0, "%zu failed calls broke the contract:\n%s", n_problems,
                  problems);
}

/* A call made while allocation k of n failed must fail with a documented
 * status (BPL_ERR_NOMEM, unless a more precise one applies) and a message
 * naming the function. */
static void expect_failure(int rc, const char *fn, uint64_t k, uint64_t n, const char *what)
{
    const char *msg = bpl_last_error_message();
    if (rc >= 0 || rc < BPL_ERR_RANGE)
        note_problem("%s: allocation %llu of %llu failing: %s gave %d (%s): %s", what,
                     (unsigned long long)k, (unsigned long long)n, fn, rc, bpl_strerror(rc),
                     msg);
    else if (strstr(msg, fn) == NULL)
        note_problem("%s: allocation %llu of %llu failing: %s gave %d, message '%s' does not "
                     "name it",
                     what, (unsigned long long)k, (unsigned long long)n, fn, rc, msg);
}

static bpl_net *make_net(const char *rule)
{
    const size_t units[] = {6, 4, OUT};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_SIGMOID, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(IN, units, acts, 3, 5);
    test_attach(net, rule);
    return net;
}

static bpl_dataset *make_dataset(void)
{
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, data_x, data_y, N, IN, OUT));
    return ds;
}

/* What a net computes on the data set: accuracy, loss and raw outputs. */
typedef struct outcome {
    double accuracy, loss;
    float out[N * OUT];
} outcome;

static outcome outcome_of(bpl_net *net, const bpl_dataset *ds)
{
    outcome o;
    BPL_OK_OR_FAIL(bpl_net_evaluate(net, ds, &o.accuracy, &o.loss));
    BPL_OK_OR_FAIL(bpl_net_predict(net, data_x, N, o.out, N * OUT));
    return o;
}

static void assert_same_outcome(const outcome *a, const outcome *b, const char *what,
                                uint64_t k)
{
    ck_assert_msg(a->accuracy == b->accuracy && a->loss == b->loss &&
                      memcmp(a->out, b->out, sizeof a->out) == 0,
                  "%s: after allocation %llu failed, the net computes accuracy %g loss %.9g, "
                  "not %g %.9g",
                  what, (unsigned long long)k, a->accuracy, a->loss, b->accuracy, b->loss);
}

static void train_one_step(bpl_net *net)
{
    double loss;
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, data_x, data_y, BATCH, &loss));
    ck_assert(isfinite(loss));
}

/* ---- building a net ----------------------------------------------------------- */

typedef struct build {
    bpl_net *net;
    bpl_rule *rule; /* until attached */
    int step;       /* the step that failed */
} build;

static const char *const build_functions[] = {
    "bpl_net_create",          "bpl_net_add_dense", "bpl_net_add_dense", "bpl_net_add_dense",
    "bpl_rule_create_builtin", "bpl_net_set_rule"};
enum { BUILD_STEPS = 6 };

static int build_step(build *b, const char *rule)
{
    switch (b->step) {
    case 0: return bpl_net_create(&b->net, IN, 11);
    case 1: return bpl_net_add_dense(b->net, 6, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM);
    /* orthogonal initialisation needs scratch memory of its own */
    case 2: return bpl_net_add_dense(b->net, 4, BPL_ACT_SIGMOID, BPL_INIT_ORTHOGONAL);
    case 3: return bpl_net_add_dense(b->net, OUT, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM);
    case 4: return bpl_rule_create_builtin(&b->rule, rule);
    default: {
        int rc = bpl_net_set_rule(b->net, b->rule);
        if (rc == BPL_OK)
            b->rule = NULL;
        return rc;
    }
    }
}

/* Go on from step b->step; stop at the first failure, b->step telling which. */
static int build_rest(build *b, const char *rule)
{
    for (; b->step < BUILD_STEPS; b->step++) {
        int rc = build_step(b, rule);
        if (rc != BPL_OK)
            return rc;
    }
    return BPL_OK;
}

START_TEST(building_a_net)
{
    start_test();
    const char *rule = bpl_rule_builtin_name((size_t)_i);
    build b = {0};
    uint64_t n;
    int rc;
    COUNT_ALLOCATIONS(n, rc = build_rest(&b, rule));
    BPL_OK_OR_FAIL(rc);
    bpl_net_destroy(b.net);
    for (uint64_t k = 1; k <= n; k++) {
        memset(&b, 0, sizeof b);
        bpl__alloc_fail_at(k);
        rc = build_rest(&b, rule);
        bpl__alloc_fail_at(0);
        expect_failure(rc, build_functions[b.step], k, n, rule);
        if (b.step == 0)
            ck_assert_ptr_null(b.net);
        if (b.step == 4)
            ck_assert_ptr_null(b.rule);
        /* The failed call can simply be made again: the net and, after a
         * failed attach, the rule are still usable. */
        BPL_OK_OR_FAIL(build_rest(&b, rule));
        train_one_step(b.net);
        bpl_net_destroy(b.net);
        bpl_rule_destroy(b.rule);
    }
    end_test();
}
END_TEST

/* A layer added to a net that has already run must grow the batch workspace
 * too; if that or anything after it fails, the net must be left as it was,
 * workspace included.  The data set is larger than the default inference
 * batch, so that a workspace sized for the wrong layer would overflow. */
enum { WIDE = 6, MANY = 300 };

START_TEST(growing_a_net_that_has_run)
{
    start_test();
    float *x = malloc(MANY * IN * sizeof *x), *y = malloc(MANY * WIDE * sizeof *y), out[WIDE];
    uint64_t seed = 8;
    test_fill_uniform(x, MANY * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, MANY, WIDE, &seed);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, MANY, IN, WIDE));
    bpl_net *net;
    double want_accuracy, want_loss, accuracy, loss;
    uint64_t n = 0;
    for (uint64_t k = 0; k <= n; k++) {
        BPL_OK_OR_FAIL(bpl_net_create(&net, IN, 3));
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, WIDE, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM));
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, 1, out, WIDE)); /* sizes the workspace */
        if (k == 0) { /* the reference, and the count */
            BPL_OK_OR_FAIL(bpl_net_evaluate(net, ds, &want_accuracy, &want_loss));
            COUNT_ALLOCATIONS(n, BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SIGMOID,
                                                                  BPL_INIT_ORTHOGONAL)));
            bpl_net_destroy(net);
            continue;
        }
        bpl__alloc_fail_at(k);
        int rc = bpl_net_add_dense(net, 2, BPL_ACT_SIGMOID, BPL_INIT_ORTHOGONAL);
        bpl__alloc_fail_at(0);
        expect_failure(rc, "bpl_net_add_dense", k, n, "a net that has run");
        ck_assert_uint_eq(bpl_net_layer_count(net), 1);
        BPL_OK_OR_FAIL(bpl_net_evaluate(net, ds, &accuracy, &loss));
        ck_assert_msg(accuracy == want_accuracy && loss == want_loss,
                      "after allocation %llu failed: accuracy %g loss %g, not %g %g",
                      (unsigned long long)k, accuracy, loss, want_accuracy, want_loss);
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SIGMOID, BPL_INIT_ORTHOGONAL));
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, 1, out, 2));
        bpl_net_destroy(net);
    }
    ck_assert_uint_gt(n, 0);
    bpl_dataset_destroy(ds);
    free(x);
    free(y);
    end_test();
}
END_TEST

/* ---- training and inference ------------------------------------------------------ */

/* One operation on a net and the dataset of the test. */
typedef int (*net_op)(bpl_net *net, const bpl_dataset *ds);

static int fit_once(bpl_net *net, const bpl_dataset *ds)
{
    return bpl_net_fit(net, ds, 1, BATCH, NULL, NULL);
}

static int evaluate(bpl_net *net, const bpl_dataset *ds)
{
    double accuracy, loss;
    return bpl_net_evaluate(net, ds, &accuracy, &loss);
}

static int predict(bpl_net *net, const bpl_dataset *ds)
{
    (void)ds;
    float out[N * OUT];
    return bpl_net_predict(net, data_x, N, out, N * OUT);
}

/* Fail each allocation that `op` (named `what`) makes on a fresh net of
 * `rule`, in turn: each must return BPL_ERR_NOMEM naming `what`, and
 * leave a net that behaves as one `op` never touched.  With `retry`, `op`
 * then runs again and the net must equal one on which it succeeded the
 * first time (nothing half-trained). */
static void fail_each_allocation(const char *rule, net_op op, const char *what, int retry)
{
    start_test();
    bpl_dataset *ds = make_dataset();
    bpl_net *ref = make_net(rule);
    if (retry)
        BPL_OK_OR_FAIL(op(ref, ds));
    outcome want = outcome_of(ref, ds);
    bpl_net_destroy(ref);

    bpl_net *net = make_net(rule);
    uint64_t n;
    int rc;
    COUNT_ALLOCATIONS(n, rc = op(net, ds));
    BPL_OK_OR_FAIL(rc);
    bpl_net_destroy(net);
    ck_assert_uint_gt(n, 0); /* the first step or inference sizes the workspace */
    for (uint64_t k = 1; k <= n; k++) {
        net = make_net(rule);
        bpl__alloc_fail_at(k);
        rc = op(net, ds);
        bpl__alloc_fail_at(0);
        expect_failure(rc, what, k, n, rule);
        if (retry)
            BPL_OK_OR_FAIL(op(net, ds));
        outcome got = outcome_of(net, ds);
        assert_same_outcome(&got, &want, rule, k);
        bpl_net_destroy(net);
    }
    bpl_dataset_destroy(ds);
    end_test();
}

START_TEST(fitting)
{
    fail_each_allocation(bpl_rule_builtin_name((size_t)_i), fit_once, "bpl_net_fit", 1);
}
END_TEST

START_TEST(evaluating)
{
    fail_each_allocation(bpl_rule_builtin_name((size_t)_i), evaluate, "bpl_net_evaluate", 0);
}
END_TEST

START_TEST(predicting)
{
    fail_each_allocation(bpl_rule_builtin_name((size_t)_i), predict, "bpl_net_predict", 0);
}
END_TEST

/* ---- saving and loading ---------------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
    ck_assert(data != NULL && fread(data, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* No temporary file of an interrupted save is left in `dir`. */
static void assert_no_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "left behind: %s/%s", dir,
                      e->d_name);
    closedir(d);
}

static bpl_net *trained_net(const char *rule)
{
    bpl_net *net = make_net(rule);
    train_one_step(net);
    return net;
}

/* What a net loaded from `path` computes.  Loaded nets are compared with
 * loaded nets: a net that has trained runs inference in batches of its
 * training size, and BLAS rounds differently for another row count. */
static outcome outcome_of_file(const char *path, const bpl_dataset *ds)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_load(&net, path));
    outcome o = outcome_of(net, ds);
    bpl_net_destroy(net);
    return o;
}

START_TEST(saving)
{
    start_test();
    const char *rule = bpl_rule_builtin_name((size_t)_i);
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", test_temp_path("save"));
    ck_assert(mkdir(dir, 0700) == 0 || errno == EEXIST);
    snprintf(path, sizeof path, "%s/%s.bpl", dir, rule);
    bpl_dataset *ds = make_dataset();
    bpl_net *net = trained_net(rule), *old = make_net(rule);
    uint64_t n;
    int rc;
    COUNT_ALLOCATIONS(n, rc = bpl_net_save(net, path));
    BPL_OK_OR_FAIL(rc);
    outcome want = outcome_of_file(path, ds);
    for (uint64_t k = 1; k <= n; k++) {
        BPL_OK_OR_FAIL(bpl_net_save(old, path)); /* what a failed save must leave */
        size_t old_size, size;
        unsigned char *before = read_file(path, &old_size);
        bpl__alloc_fail_at(k);
        rc = bpl_net_save(net, path);
        bpl__alloc_fail_at(0);
        expect_failure(rc, "bpl_net_save", k, n, rule);
        unsigned char *after = read_file(path, &size);
        ck_assert_msg(size == old_size && memcmp(before, after, size) == 0,
                      "%s: a failed save changed the file", rule);
        assert_no_temporaries(dir);
        free(before);
        free(after);
        BPL_OK_OR_FAIL(bpl_net_save(net, path));
        outcome got = outcome_of_file(path, ds);
        assert_same_outcome(&got, &want, rule, k);
    }
    bpl_net_destroy(net);
    bpl_net_destroy(old);
    bpl_dataset_destroy(ds);
    end_test();
}
END_TEST

START_TEST(loading)
{
    start_test();
    const char *rule = bpl_rule_builtin_name((size_t)_i);
    char path[512];
    snprintf(path, sizeof path, "%s", test_temp_path("load.bpl"));
    bpl_dataset *ds = make_dataset();
    bpl_net *net = trained_net(rule);
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    outcome want = outcome_of_file(path, ds);
    uint64_t n;
    int rc;
    COUNT_ALLOCATIONS(n, rc = bpl_net_load(&net, path));
    BPL_OK_OR_FAIL(rc);
    bpl_net_destroy(net);
    for (uint64_t k = 1; k <= n; k++) {
        bpl__alloc_fail_at(k);
        rc = bpl_net_load(&net, path);
        bpl__alloc_fail_at(0);
        expect_failure(rc, "bpl_net_load", k, n, rule);
        ck_assert_ptr_null(net);
        BPL_OK_OR_FAIL(bpl_net_load(&net, path));
        outcome got = outcome_of(net, ds);
        assert_same_outcome(&got, &want, rule, k);
        bpl_net_destroy(net);
    }
    bpl_dataset_destroy(ds);
    end_test();
}
END_TEST

/* Saving to and loading from memory: a failed allocation fails the call,
 * leaves its outputs cleared, and the next call gives the same bytes. */
START_TEST(through_memory)
{
    start_test();
    const char *rule = bpl_rule_builtin_name((size_t)_i);
    bpl_net *net = trained_net(rule), *loaded = NULL;
    void *want = NULL, *data = NULL;
    size_t want_size, size;
    uint64_t n;
    int rc;
    COUNT_ALLOCATIONS(n, rc = bpl_net_save_to_buffer(net, &want, &want_size));
    BPL_OK_OR_FAIL(rc);
    for (uint64_t k = 1; k <= n; k++) {
        bpl__alloc_fail_at(k);
        rc = bpl_net_save_to_buffer(net, &data, &size);
        bpl__alloc_fail_at(0);
        expect_failure(rc, "bpl_net_save_to_buffer", k, n, rule);
        ck_assert(data == NULL && size == 0);
    }
    COUNT_ALLOCATIONS(n, rc = bpl_net_load_from_buffer(&loaded, want, want_size));
    BPL_OK_OR_FAIL(rc);
    bpl_net_destroy(loaded);
    for (uint64_t k = 1; k <= n; k++) {
        bpl__alloc_fail_at(k);
        rc = bpl_net_load_from_buffer(&loaded, want, want_size);
        bpl__alloc_fail_at(0);
        expect_failure(rc, "bpl_net_load_from_buffer", k, n, rule);
        ck_assert_ptr_null(loaded);
    }
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&loaded, want, want_size));
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(loaded, &data, &size));
    ck_assert_msg(size == want_size && memcmp(data, want, size) == 0,
                  "%s: saved, loaded and saved again from memory, the bytes differ", rule);
    bpl_buffer_free(data);
    bpl_buffer_free(want);
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
    end_test();
}
END_TEST

/* ---- datasets ----------------------------------------------------------------------- */

/* Every example of two datasets, as floats, is the same. */
static void assert_same_examples(const bpl_dataset *a, const bpl_dataset *b)
{
    size_t n = bpl_dataset_example_count(a), f = bpl_dataset_features(a),
           t = bpl_dataset_targets(a);
    ck_assert_uint_eq(bpl_dataset_example_count(b), n);
    ck_assert_uint_eq(bpl_dataset_features(b), f);
    ck_assert_uint_eq(bpl_dataset_targets(b), t);
    float *xa = malloc(n * f * sizeof *xa), *xb = malloc(n * f * sizeof *xb);
    float *ya = malloc(n * t * sizeof *ya), *yb = malloc(n * t * sizeof *yb);
    BPL_OK_OR_FAIL(bpl_dataset_get(a, 0, n, xa, n * f, ya, n * t));
    BPL_OK_OR_FAIL(bpl_dataset_get(b, 0, n, xb, n * f, yb, n * t));
    ck_assert(memcmp(xa, xb, n * f * sizeof *xa) == 0);
    ck_assert(memcmp(ya, yb, n * t * sizeof *ya) == 0);
    free(xa), free(xb), free(ya), free(yb);
}

typedef int (*dataset_maker)(bpl_dataset **out, const void *ctx);

/* Make a dataset with each allocation failing in turn, then for real. */
static void dataset_fails_cleanly(dataset_maker make, const void *ctx, const char *fn)
{
    bpl_dataset *want, *ds;
    uint64_t n;
    int rc;
    COUNT_ALLOCATIONS(n, rc = make(&want, ctx));
    BPL_OK_OR_FAIL(rc);
    ck_assert_uint_gt(n, 0);
    for (uint64_t k = 1; k <= n; k++) {
        bpl__alloc_fail_at(k);
        rc = make(&ds, ctx);
        bpl__alloc_fail_at(0);
        expect_failure(rc, fn, k, n, fn);
        ck_assert_ptr_null(ds);
        BPL_OK_OR_FAIL(make(&ds, ctx));
        assert_same_examples(ds, want);
        bpl_dataset_destroy(ds);
    }
    bpl_dataset_destroy(want);
}

static int from_u8(bpl_dataset **out, const void *ctx)
{
    (void)ctx;
    return bpl_dataset_from_u8(out, pixels, labels, N, IN, OUT);
}

static int from_f32(bpl_dataset **out, const void *ctx)
{
    (void)ctx;
    return bpl_dataset_from_f32(out, data_x, data_y, N, IN, OUT);
}

static int slice(bpl_dataset **out, const void *ctx)
{
    return bpl_dataset_slice(out, ctx, 3, N - 5);
}

START_TEST(making_datasets)
{
    start_test();
    dataset_fails_cleanly(from_u8, NULL, "bpl_dataset_from_u8");
    dataset_fails_cleanly(from_f32, NULL, "bpl_dataset_from_f32");
    bpl_dataset *u8, *f32;
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&u8, pixels, labels, N, IN, OUT));
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&f32, data_x, data_y, N, IN, OUT));
    dataset_fails_cleanly(slice, u8, "bpl_dataset_slice");
    dataset_fails_cleanly(slice, f32, "bpl_dataset_slice");
    bpl_dataset_destroy(u8);
    bpl_dataset_destroy(f32);
    end_test();
}
END_TEST

/* IDX files of the test data, raw or gzip. */
typedef struct idx_paths {
    char images[512], labels[512];
} idx_paths;

static void write_idx(const char *path, const unsigned char *head, size_t head_size,
                      const uint8_t *body, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert(f != NULL);
        ck_assert(gzwrite(f, head, (unsigned)head_size) == (int)head_size);
        ck_assert(gzwrite(f, body, (unsigned)n) == (int)n);
        ck_assert(gzclose(f) == Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    ck_assert(fwrite(head, 1, head_size, f) == head_size);
    ck_assert(fwrite(body, 1, n, f) == n);
    ck_assert(fclose(f) == 0);
}

static idx_paths write_idx_pair(const char *images, const char *labels_name, int gz)
{
    const unsigned char image_head[] = {0, 0, 8, 2, 0, 0, 0, N, 0, 0, 0, IN};
    const unsigned char label_head[] = {0, 0, 8, 1, 0, 0, 0, N};
    idx_paths p;
    snprintf(p.images, sizeof p.images, "%s", test_temp_path(images));
    snprintf(p.labels, sizeof p.labels, "%s", test_temp_path(labels_name));
    write_idx(p.images, image_head, sizeof image_head, pixels, sizeof pixels, gz);
    write_idx(p.labels, label_head, sizeof label_head, labels, sizeof labels, gz);
    return p;
}

static int load_idx(bpl_dataset **out, const void *ctx)
{
    const idx_paths *p = ctx;
    return bpl_dataset_load_idx(out, p->images, p->labels, OUT);
}

START_TEST(loading_idx)
{
    start_test();
    idx_paths raw = write_idx_pair("raw-images", "raw-labels", 0);
    idx_paths gz = write_idx_pair("gz-images.gz", "gz-labels.gz", 1);
    dataset_fails_cleanly(load_idx, &raw, "bpl_dataset_load_idx");
    dataset_fails_cleanly(load_idx, &gz, "bpl_dataset_load_idx");
    /* and what is loaded is what was written */
    bpl_dataset *a, *b;
    BPL_OK_OR_FAIL(load_idx(&a, &gz));
    BPL_OK_OR_FAIL(from_u8(&b, NULL));
    assert_same_examples(a, b);
    bpl_dataset_destroy(a);
    bpl_dataset_destroy(b);
    end_test();
}
END_TEST

static Suite *alloc_failure_suite(void)
{
    Suite *s = suite_create("alloc_failure");
    int rules = (int)bpl_rule_builtin_count();
    TCase *nets = tcase_create("nets");
    tcase_add_loop_test(nets, building_a_net, 0, rules);
    tcase_add_loop_test(nets, fitting, 0, rules);
    tcase_add_loop_test(nets, evaluating, 0, rules);
    tcase_add_loop_test(nets, predicting, 0, rules);
    suite_add_tcase(s, nets);
    TCase *workspace = tcase_create("workspace");
    tcase_add_test(workspace, growing_a_net_that_has_run);
    suite_add_tcase(s, workspace);
    TCase *files = tcase_create("files");
    tcase_add_loop_test(files, saving, 0, rules);
    tcase_add_loop_test(files, loading, 0, rules);
    tcase_add_loop_test(files, through_memory, 0, rules);
    suite_add_tcase(s, files);
    TCase *datasets = tcase_create("datasets");
    tcase_add_test(datasets, making_datasets);
    tcase_add_test(datasets, loading_idx);
    suite_add_tcase(s, datasets);
    return s;
}

int main(void)
{
    make_data();
    return test_run_suite(alloc_failure_suite());
}
