/*
 * test_reference.c - what every rule computes has not changed.
 *
 * tests/reference/v1 holds, for every scenario of tests/reference/
 * scenarios.h (every built-in rule in each of its modes), the net trained a
 * fixed number of steps from a fixed seed, saved as a version-1 model file,
 * and what that file predicts once loaded.  The files were made once by
 * tests/reference/make_reference.c with the portable kernels
 * (-Dblas=none) and are never remade.  Here each scenario runs again, with
 * every hyperparameter pinned to the file's values, and
 *   - the file loads and predicts what it predicted then;
 *   - the replayed net holds the same tensors with the same values.
 *   - the v1 file's step counters ("schedule_steps", "microcircuit_steps",
 *     "segregated_initialised", tensors then) came back as its rule's
 *     state, equal to the replayed rule's;
 *   - the loaded file trains on as the replayed net does, and as the same
 *     file does once saved again (format version 2) and loaded.
 * With the portable kernels (the build the files were made with) both must
 * hold to the bit.  A BLAS rounds products in its own order, so with one the
 * values must agree to a relative 1e-4 instead: enough to catch a changed
 * formula, which moves them by far more.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference/run.h"

static int bit_exact(void)
{
    return strcmp(bpl_blas_backend(), "builtin") == 0;
}

static void reference_path(char *dst, size_t size, const char *name, const char *ext)
{
    const char *root = getenv("BPL_SOURCE_ROOT");
    ck_assert_msg(root != NULL, "BPL_SOURCE_ROOT is not set");
    snprintf(dst, size, "%s/tests/reference/v1/%s%s", root, name, ext);
}

static void read_floats(const char *path, float *v, size_t n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4];
        ck_assert_msg(fread(b, 1, 4, f) == 4, "%s is shorter than %zu floats", path, n);
        uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                        (uint32_t)b[3] << 24;
        memcpy(&v[i], &bits, sizeof bits);
    }
    ck_assert_msg(fgetc(f) == EOF, "%s is longer than %zu floats", path, n);
    fclose(f);
}

/* How many of the n values differ: in their bits, or beyond the tolerance. */
static size_t count_differences(const float *got, const float *want, size_t n, float *worst)
{
    size_t differ = 0;
    *worst = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float err = fabsf(got[i] - want[i]) / (1e-3f + fabsf(want[i]));
        if (err > *worst || got[i] != got[i])
            *worst = err;
        differ += bit_exact() ? memcmp(&got[i], &want[i], sizeof got[i]) != 0
                              : !(err <= 1e-4f);
    }
    return differ;
}

static float *tensor_values(bpl_layer *layer, const char *name, size_t *n)
{
    size_t rows, cols;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, &rows, &cols, NULL));
    *n = rows * cols;
    float *v = malloc(*n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, name, v, *n));
    return v;
}

/* The tensors in which version 1 kept a built-in rule's own state: loading
 * a v1 file turns them into the rule's state, so a loaded reference holds
 * none of them, and neither does a replayed net. */
static const char *const v1_state_tensors[] = {"schedule_steps", "microcircuit_steps",
                                               "segregated_initialised"};

static void assert_no_state_tensors(bpl_net *net, const char *scenario)
{
    for (size_t l = 0; l < bpl_net_layer_count(net); l++)
        for (size_t i = 0; i < sizeof v1_state_tensors / sizeof v1_state_tensors[0]; i++)
            ck_assert_msg(bpl_layer_tensor_info(bpl_net_layer(net, l), v1_state_tensors[i],
                                                NULL, NULL, NULL) == BPL_ERR_NOT_FOUND,
                          "%s: layer %zu still holds '%s'", scenario, l, v1_state_tensors[i]);
}

/* The net as model bytes (format version 2). */
static unsigned char *model_bytes(const bpl_net *net, size_t *size)
{
    void *data = NULL;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, size));
    return data;
}

/* The rule's saved state.  A version-2 model ends with the rule's u32
 * has_state and, if set, u64 size and the state's bytes (lib/model_io.c);
 * the built-in rules that keep a state (those of v1_state_tensors) keep 9
 * bytes, a format byte and a count.  *n is 0 for a rule that keeps none. */
static void rule_state(bpl_net *net, unsigned char state[9], size_t *n)
{
    static const char *const stateful[] = {"tp", "dtp", "sdtp", "segregated",
                                           "microcircuit"};
    const char *name = bpl_rule_name(bpl_net_rule(net));
    int keeps = 0;
    for (size_t i = 0; i < sizeof stateful / sizeof stateful[0]; i++)
        keeps |= name && strcmp(name, stateful[i]) == 0;
    size_t size;
    unsigned char *b = model_bytes(net, &size);
    ck_assert_uint_ge(size, 32 + 21);
    static const unsigned char none[4] = {0, 0, 0, 0};
    static const unsigned char nine[12] = {1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0};
    const unsigned char *tail = b + size - (keeps ? 21 : 4);
    ck_assert_msg(memcmp(tail, keeps ? nine : none, keeps ? 12 : 4) == 0,
                  "rule '%s': the model does not end with %s", name,
                  keeps ? "a 9-byte state" : "has_state 0");
    *n = keeps ? 9 : 0;
    if (keeps)
        memcpy(state, tail + 12, 9);
    bpl_buffer_free(b);
}

static void assert_same_rule_state(bpl_net *got, bpl_net *want,
                                   const char *scenario)
{
    unsigned char a[9], b[9];
    size_t na, nb;
    rule_state(got, a, &na);
    rule_state(want, b, &nb);
    ck_assert_msg(na == nb && memcmp(a, b, na) == 0,
                  "%s: the rule's state (its step count) differs from the reference",
                  scenario);
}

/* Every tensor of the reference is in the replayed net with the same values,
 * and the replayed net has no other. */
static void assert_same_tensors(bpl_net *replayed, bpl_net *reference, const char *scenario)
{
    ck_assert_uint_eq(bpl_net_layer_count(replayed), bpl_net_layer_count(reference));
    for (size_t l = 0; l < bpl_net_layer_count(reference); l++) {
        bpl_layer *ref = bpl_net_layer(reference, l), *got = bpl_net_layer(replayed, l);
        ck_assert_msg(bpl_layer_tensor_count(got) == bpl_layer_tensor_count(ref),
                      "%s: layer %zu has %zu tensors, the reference %zu", scenario, l,
                      bpl_layer_tensor_count(got), bpl_layer_tensor_count(ref));
        for (size_t t = 0; t < bpl_layer_tensor_count(ref); t++) {
            const char *name = bpl_layer_tensor_name(ref, t);
            size_t n_want, n_got;
            float *want = tensor_values(ref, name, &n_want);
            ck_assert_msg(bpl_layer_tensor_info(got, name, NULL, NULL, NULL) == BPL_OK,
                          "%s: layer %zu has no tensor '%s'", scenario, l, name);
            float *values = tensor_values(got, name, &n_got);
            ck_assert_uint_eq(n_got, n_want);
            float worst;
            size_t differ = count_differences(values, want, n_want, &worst);
            free(want);
            free(values);
            ck_assert_msg(differ == 0,
                          "%s: layer %zu tensor '%s': %zu of %zu values differ from the "
                          "reference (worst relative error %g)",
                          scenario, l, name, differ, n_want, worst);
        }
    }
}

START_TEST(file_predicts_as_it_did)
{
    const ref_scenario *s = &ref_scenarios[_i];
    char path[4096];
    float want[REF_PREDICT_ROWS * REF_OUTPUTS], got[REF_PREDICT_ROWS * REF_OUTPUTS];
    reference_path(path, sizeof path, s->name, ".pred");
    read_floats(path, want, sizeof want / sizeof want[0]);
    reference_path(path, sizeof path, s->name, ".bpl");
    bpl_net *net = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&net, path));
    BPL_OK_OR_FAIL(ref_predict(net, got));
    float worst;
    size_t differ = count_differences(got, want, sizeof want / sizeof want[0], &worst);
    bpl_net_destroy(net);
    ck_assert_msg(differ == 0,
                  "%s: the version-1 file predicts %zu of %zu values differently (worst "
                  "relative error %g)",
                  s->name, differ, sizeof want / sizeof want[0], worst);
}
END_TEST

START_TEST(training_computes_what_it_did)
{
    const ref_scenario *s = &ref_scenarios[_i];
    char path[4096];
    reference_path(path, sizeof path, s->name, ".bpl");
    bpl_net *reference = NULL, *replayed = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&reference, path));
    BPL_OK_OR_FAIL(ref_build(s, bpl_net_rule(reference), &replayed));
    BPL_OK_OR_FAIL(ref_train(replayed));
    assert_no_state_tensors(reference, s->name);
    assert_same_tensors(replayed, reference, s->name);
    assert_same_rule_state(replayed, reference, s->name);
    bpl_net_destroy(replayed);
    bpl_net_destroy(reference);
}
END_TEST

/* A few more steps, on data none of the scenarios saw. */
static void train_on(bpl_net *net)
{
    float x[REF_BATCH * REF_INPUTS], y[REF_BATCH * REF_OUTPUTS];
    for (int step = 0; step < 4; step++) {
        ref_data(5000 + (uint64_t)step, x, y, REF_BATCH);
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, REF_BATCH, NULL));
    }
}

/* The net saved (format version 2) and loaded again: its batch buffers
 * start afresh, as a loaded v1 file's do (the spiking segregated rule's
 * neurons run on from one call to the next in them). */
static bpl_net *reloaded(bpl_net *net)
{
    size_t size;
    unsigned char *v2 = model_bytes(net, &size);
    bpl_net *copy = NULL;
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&copy, v2, size));
    bpl_buffer_free(v2);
    bpl_net_destroy(net);
    return copy;
}

/* A v1 file from the code before format version 2 trains on as the net it
 * was saved from would have: as the replayed net, saved by this code and
 * loaded, trains on, its step counts included.  With the portable kernels
 * the two end identical to the byte (every tensor, moment, step count,
 * generator state and rule state); with a BLAS their rules' step counts
 * agree.  And whatever the kernels, the v1 file saved again (version 2) and
 * loaded trains on to the same bytes as the v1 file itself. */
START_TEST(v1_file_trains_on_as_it_would_have)
{
    const ref_scenario *s = &ref_scenarios[_i];
    char path[4096];
    reference_path(path, sizeof path, s->name, ".bpl");
    bpl_net *reference = NULL, *replayed = NULL, *resaved = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&reference, path));
    BPL_OK_OR_FAIL(bpl_net_load(&resaved, path));
    resaved = reloaded(resaved);
    BPL_OK_OR_FAIL(ref_build(s, bpl_net_rule(reference), &replayed));
    BPL_OK_OR_FAIL(ref_train(replayed));
    replayed = reloaded(replayed);
    train_on(reference);
    train_on(resaved);
    train_on(replayed);
    /* With a BLAS the two start 1e-4 apart, and training on moves them
     * further: only their step counts must agree then. */
    if (bit_exact())
        assert_same_tensors(replayed, reference, s->name);
    assert_same_rule_state(replayed, reference, s->name);
    size_t n_ref, n_resaved, n_replayed;
    unsigned char *a = model_bytes(reference, &n_ref), *b = model_bytes(resaved, &n_resaved);
    unsigned char *c = model_bytes(replayed, &n_replayed);
    ck_assert_msg(n_ref == n_resaved && memcmp(a, b, n_ref) == 0,
                  "%s: the v1 file and its version-2 copy train on differently", s->name);
    if (bit_exact())
        ck_assert_msg(n_ref == n_replayed && memcmp(a, c, n_ref) == 0,
                      "%s: the v1 file trains on differently from the replayed net",
                      s->name);
    bpl_buffer_free(a);
    bpl_buffer_free(b);
    bpl_buffer_free(c);
    bpl_net_destroy(replayed);
    bpl_net_destroy(resaved);
    bpl_net_destroy(reference);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("reference");
    TCase *tc = tcase_create(bit_exact() ? "bit for bit" : "to a relative 1e-4");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, file_predicts_as_it_did, 0, REF_N_SCENARIOS);
    tcase_add_loop_test(tc, training_computes_what_it_did, 0, REF_N_SCENARIOS);
    tcase_add_loop_test(tc, v1_file_trains_on_as_it_would_have, 0, REF_N_SCENARIOS);
    suite_add_tcase(suite, tc);
    return test_run_suite(suite);
}
