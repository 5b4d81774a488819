/*
 * test_model_io.c - saving and loading nets.
 *
 * A saved net must come back bit for bit: predictions, every tensor
 * (feedback matrices included), hyperparameters, optimiser and generator
 * state, so that training resumes exactly where it stopped.  Damaged files
 * of every kind are refused with a clear status, and saving is atomic.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

enum { IN = 6, H1 = 7, H2 = 5, OUT = 3, B = 8, N_FIT = 13 };

/* Header offsets from the layout documented in lib/model_io.c. */
enum { OFF_VERSION = 8, OFF_FLAGS = 12, OFF_PAYLOAD_SIZE = 16, OFF_PAYLOAD_CRC = 24,
       OFF_HEADER_CRC = 28, HEADER = 32 };
/* Payload offsets (format version 2) of the net's fields and of its first
 * layer ("dense", a shape of rank 1) and tensor. */
enum { P_INPUT_RANK = 0, P_INPUTS = 4, P_LOSS = 52, P_LAYERS = 56, P_KIND = 76,
       P_KIND_NAME = 80, P_RANK = 85, P_UNITS = 89, P_ACTIVATION = 97, P_N_TENSORS = 105,
       P_TENSOR_NAME = 109, P_TENSOR_ROWS = 123, P_TENSOR_COLS = 131 };

/* ---- files ------------------------------------------------------------------ */

typedef struct blob {
    unsigned char *data;
    size_t size;
} blob;

/* Nets and buffers of the running test are also released by the teardown:
 * a failed assertion leaves the test early, and without fork (valgrind) what
 * it held would otherwise be reported as leaked. */
enum { MAX_OWNED = 32 };
static bpl_net *owned_nets[MAX_OWNED];
static void *owned_mem[MAX_OWNED];

static bpl_net *own_net(bpl_net *net)
{
    ck_assert_ptr_nonnull(net);
    for (int i = 0; i < MAX_OWNED; i++)
        if (!owned_nets[i]) {
            owned_nets[i] = net;
            return net;
        }
    ck_abort_msg("too many nets held at once");
    return net;
}

static void drop_net(bpl_net *net)
{
    for (int i = 0; i < MAX_OWNED; i++)
        if (owned_nets[i] == net)
            owned_nets[i] = NULL;
    bpl_net_destroy(net);
}

static void *own_mem(void *p)
{
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < MAX_OWNED; i++)
        if (!owned_mem[i]) {
            owned_mem[i] = p;
            return p;
        }
    ck_abort_msg("too many buffers held at once");
    return p;
}

static void drop_mem(void *p)
{
    for (int i = 0; i < MAX_OWNED; i++)
        if (owned_mem[i] == p)
            owned_mem[i] = NULL;
    free(p);
}

static void release_owned(void)
{
    for (int i = 0; i < MAX_OWNED; i++) {
        bpl_net_destroy(owned_nets[i]);
        free(owned_mem[i]);
        owned_nets[i] = NULL;
        owned_mem[i] = NULL;
    }
}

static blob read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    blob b = {own_mem(malloc((size_t)size + 4096)), (size_t)size};
    ck_assert_uint_eq(fread(b.data, 1, b.size, f), b.size);
    fclose(f);
    return b;
}

static void write_file(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    if (size)
        ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    ck_assert_int_eq(fclose(f), 0);
}

static void store_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void store_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Make both checksums match the (edited) bytes, so that only the parser
 * stands between the file and the net. */
static void fix_checksums(unsigned char *d, size_t size)
{
    store_le64(d + OFF_PAYLOAD_SIZE, size - HEADER);
    store_le32(d + OFF_PAYLOAD_CRC, (uint32_t)crc32(0L, d + HEADER, (uInt)(size - HEADER)));
    store_le32(d + OFF_HEADER_CRC, (uint32_t)crc32(0L, d, 28));
}

static void temp(char *dst, const char *name)
{
    snprintf(dst, 512, "%s", test_temp_path(name));
}

static void temp_dir(char *dst, const char *name)
{
    temp(dst, name);
    ck_assert_msg(mkdir(dst, 0755) == 0, "mkdir %s: %s", dst, strerror(errno));
}

/* Names in `dir` other than "." and "..", space-separated; returns the count. */
static size_t list_dir(const char *dir, char *names, size_t size)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
    size_t n = 0;
    names[0] = '\0';
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t used = strlen(names);
        snprintf(names + used, size - used, "%s%s", n ? " " : "", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* ---- nets ------------------------------------------------------------------ */

static void batch_data(float *x, float *y, size_t rows, uint64_t seed)
{
    test_fill_uniform(x, rows * IN, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, rows, OUT, &seed);
}

static void train_steps(bpl_net *net, int steps, uint64_t seed)
{
    float x[B * IN], y[B * OUT];
    for (int s = 0; s < steps; s++) {
        batch_data(x, y, B, seed + (uint64_t)s);
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
    }
}

static void fit_epoch(bpl_net *net)
{
    float x[N_FIT * IN], y[N_FIT * OUT];
    batch_data(x, y, N_FIT, 99);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, N_FIT, IN, OUT));
    /* 13 examples in batches of 4: the shuffle draws from the generator */
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 1, 4, NULL, NULL));
    bpl_dataset_destroy(ds);
}

static void predictions(bpl_net *net, float *out)
{
    float x[10 * IN];
    uint64_t seed = 1234;
    test_fill_uniform(x, 10 * IN, -2.0f, 2.0f, &seed);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 10, out, 10 * OUT));
}

static const char *const rule_names[] = {"backprop", "fa", "dfa", "usf", "brsf", "frsf"};
enum { N_RULE_NAMES = sizeof rule_names / sizeof rule_names[0] };

typedef struct config {
    int hidden, output, loss;
} config;

/* Every activation in the hidden layers, both losses with every output that
 * suits them. */
static const int hidden_acts[] = {BPL_ACT_LINEAR, BPL_ACT_RELU, BPL_ACT_TANH,
                                  BPL_ACT_SIGMOID};
static const struct {
    int activation, loss;
} outputs[] = {
    {BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY}, {BPL_ACT_SIGMOID, BPL_LOSS_CROSS_ENTROPY},
    {BPL_ACT_LINEAR, BPL_LOSS_MSE},            {BPL_ACT_TANH, BPL_LOSS_MSE},
    {BPL_ACT_RELU, BPL_LOSS_MSE},              {BPL_ACT_SIGMOID, BPL_LOSS_MSE},
    {BPL_ACT_SOFTMAX, BPL_LOSS_MSE},
};
enum { N_HIDDEN = sizeof hidden_acts / sizeof hidden_acts[0],
       N_OUTPUTS = sizeof outputs / sizeof outputs[0] };

/* A net of the given rule and shape, with non-default hyperparameters (the
 * optimiser cycles so that every kind of optimiser state is saved), trained
 * a few steps. */
static bpl_net *make_trained(const char *rule_name, int hidden, int output, int loss,
                             int variant)
{
    const size_t units[] = {H1, H2, OUT};
    const int acts[] = {hidden, hidden, output};
    bpl_net *net = own_net(test_make_net(IN, units, acts, 3, 1000 + (uint64_t)variant));
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, loss));
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, rule_name));
    static const char *const optimizers[] = {"adam", "momentum", "rmsprop", "sgd"};
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", optimizers[variant % 4]));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "lr", 0.0125));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "beta1", 0.8));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "momentum", 0.7));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "weight_decay", 1e-3));
    if (strcmp(rule_name, "backprop") != 0)
        BPL_OK_OR_FAIL(bpl_rule_set(rule, "feedback_scale", 0.625));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    train_steps(net, 3, 50 + (uint64_t)variant);
    return net;
}

/* Every tensor of every layer of `a` exists in `b` with the same shape,
 * group and bits (and the other way round, by count). */
static void assert_same_tensors(bpl_net *a, bpl_net *b, const char *what)
{
    ck_assert_uint_eq(bpl_net_layer_count(a), bpl_net_layer_count(b));
    for (size_t l = 0; l < bpl_net_layer_count(a); l++) {
        bpl_layer *la = bpl_net_layer(a, l), *lb = bpl_net_layer(b, l);
        ck_assert_uint_eq(bpl_layer_units(la), bpl_layer_units(lb));
        ck_assert_uint_eq(bpl_layer_inputs(la), bpl_layer_inputs(lb));
        ck_assert_int_eq(bpl_layer_activation(la), bpl_layer_activation(lb));
        ck_assert_msg(bpl_layer_tensor_count(la) == bpl_layer_tensor_count(lb),
                      "%s: layer %zu has %zu tensors, the other net %zu", what, l,
                      bpl_layer_tensor_count(la), bpl_layer_tensor_count(lb));
        for (size_t t = 0; t < bpl_layer_tensor_count(la); t++) {
            const char *name = bpl_layer_tensor_name(la, t);
            size_t ra, ca, rb, cb;
            int ga, gb;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(la, name, &ra, &ca, &ga));
            int rc = bpl_layer_tensor_info(lb, name, &rb, &cb, &gb);
            ck_assert_msg(rc == BPL_OK, "%s: layer %zu lacks tensor '%s'", what, l, name);
            ck_assert_msg(ra == rb && ca == cb && ga == gb,
                          "%s: layer %zu tensor '%s': %zux%zu group %d vs %zux%zu group %d",
                          what, l, name, ra, ca, ga, rb, cb, gb);
            float *va = malloc(ra * ca * sizeof *va), *vb = malloc(ra * ca * sizeof *vb);
            ck_assert(va && vb);
            BPL_OK_OR_FAIL(bpl_layer_get_tensor(la, name, va, ra * ca));
            BPL_OK_OR_FAIL(bpl_layer_get_tensor(lb, name, vb, ra * ca));
            size_t differ = 0;
            for (size_t i = 0; i < ra * ca; i++)
                differ += memcmp(&va[i], &vb[i], sizeof va[i]) != 0;
            free(va);
            free(vb);
            ck_assert_msg(differ == 0, "%s: layer %zu tensor '%s': %zu of %zu values differ",
                          what, l, name, differ, ra * ca);
        }
    }
}

/* Same rule name and the same value for every hyperparameter. */
static void assert_same_rule(bpl_net *a, bpl_net *b, const char *what)
{
    bpl_rule *ra = bpl_net_rule(a), *rb = bpl_net_rule(b);
    ck_assert_msg(ra != NULL && rb != NULL, "%s: rule missing", what);
    ck_assert_str_eq(bpl_rule_name(ra), bpl_rule_name(rb));
    ck_assert_uint_eq(bpl_rule_param_count(ra), bpl_rule_param_count(rb));
    for (size_t i = 0; i < bpl_rule_param_count(ra); i++) {
        const char *name;
        double va, vb;
        BPL_OK_OR_FAIL(bpl_rule_param_info(ra, i, &name, NULL, NULL, NULL, NULL, NULL, NULL));
        BPL_OK_OR_FAIL(bpl_rule_get(ra, name, &va));
        BPL_OK_OR_FAIL(bpl_rule_get(rb, name, &vb));
        ck_assert_msg(memcmp(&va, &vb, sizeof va) == 0, "%s: hyperparameter %s: %.17g vs %.17g",
                      what, name, va, vb);
    }
}

static void assert_same_predictions(bpl_net *a, bpl_net *b, const char *what)
{
    float pa[10 * OUT], pb[10 * OUT];
    predictions(a, pa);
    predictions(b, pb);
    ck_assert_msg(memcmp(pa, pb, sizeof pa) == 0, "%s: predictions differ", what);
}

static bpl_net *save_and_load(bpl_net *net, const char *name)
{
    char path[512];
    temp(path, name);
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *loaded = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&loaded, path));
    return own_net(loaded);
}

/* ---- round trips -------------------------------------------------------------- */

START_TEST(roundtrip_builtin_rule)
{
    const char *rule_name = rule_names[_i];
    int variant = 0;
    for (int h = 0; h < N_HIDDEN; h++)
        for (int o = 0; o < N_OUTPUTS; o++, variant++) {
            char what[128];
            snprintf(what, sizeof what, "%s, hidden %s, output %s, %s", rule_name,
                     bpl_activation_name(hidden_acts[h]),
                     bpl_activation_name(outputs[o].activation),
                     bpl_loss_name(outputs[o].loss));
            bpl_net *net = make_trained(rule_name, hidden_acts[h], outputs[o].activation,
                                        outputs[o].loss, variant);
            bpl_net *loaded = save_and_load(net, "roundtrip.bpl");
            ck_assert_uint_eq(bpl_net_inputs(loaded), IN);
            ck_assert_uint_eq(bpl_net_outputs(loaded), OUT);
            ck_assert_int_eq(bpl_net_loss(loaded), outputs[o].loss);
            ck_assert_uint_eq(bpl_net_seed(loaded), bpl_net_seed(net));
            ck_assert_uint_eq(bpl_net_param_count(loaded), bpl_net_param_count(net));
            assert_same_predictions(net, loaded, what);
            assert_same_rule(net, loaded, what);
            assert_same_tensors(net, loaded, what);
            /* the non-default values in particular */
            double lr = 0, scale = 0;
            BPL_OK_OR_FAIL(bpl_rule_get(bpl_net_rule(loaded), "lr", &lr));
            ck_assert_double_eq(lr, 0.0125);
            if (strcmp(rule_name, "backprop") != 0) {
                BPL_OK_OR_FAIL(bpl_rule_get(bpl_net_rule(loaded), "feedback_scale", &scale));
                ck_assert_double_eq(scale, 0.625);
            }
            drop_net(net);
            drop_net(loaded);
        }
}
END_TEST

START_TEST(roundtrip_feedback_matrices)
{
    /* fa and dfa keep fixed random feedback matrices, and usf, brsf and frsf
     * theirs of W's signs: the loaded net must have the very same ones, not
     * freshly drawn ones */
    const char *rule_name = rule_names[1 + _i];
    bpl_net *net = make_trained(rule_name, BPL_ACT_TANH, BPL_ACT_SOFTMAX,
                                BPL_LOSS_CROSS_ENTROPY, 0);
    bpl_net *loaded = save_and_load(net, "feedback.bpl");
    size_t checked = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *la = bpl_net_layer(net, l), *lb = bpl_net_layer(loaded, l);
        size_t rows, cols;
        if (bpl_layer_tensor_info(la, "feedback", &rows, &cols, NULL) != BPL_OK)
            continue;
        float *fa = malloc(rows * cols * sizeof *fa), *fb = malloc(rows * cols * sizeof *fb);
        ck_assert(fa && fb);
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(la, "feedback", fa, rows * cols));
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(lb, "feedback", fb, rows * cols));
        int same = memcmp(fa, fb, rows * cols * sizeof *fa) == 0;
        float first_a = fa[0], first_b = fb[0];
        free(fa);
        free(fb);
        ck_assert_msg(same, "%s: layer %zu feedback after load differs (first value %.9g, "
                      "saved %.9g)", rule_name, l, first_b, first_a);
        checked++;
    }
    ck_assert_uint_eq(checked, 2);
    drop_net(net);
    drop_net(loaded);
}
END_TEST

START_TEST(resume_training)
{
    /* optimiser moments, step counts and the generator are saved: training
     * the original and the loaded copy the same way gives the same bits */
    const char *rule_name = rule_names[_i / 4];
    int variant = _i % 4; /* adam, momentum, rmsprop, sgd */
    char what[64];
    snprintf(what, sizeof what, "%s, variant %d", rule_name, variant);
    bpl_net *net = make_trained(rule_name, BPL_ACT_RELU, BPL_ACT_SOFTMAX,
                                BPL_LOSS_CROSS_ENTROPY, variant);
    bpl_net *loaded = save_and_load(net, "resume.bpl");
    train_steps(net, 3, 7);
    train_steps(loaded, 3, 7);
    assert_same_tensors(net, loaded, what);
    fit_epoch(net);
    fit_epoch(loaded);
    assert_same_tensors(net, loaded, what);
    assert_same_predictions(net, loaded, what);
    drop_net(net);
    drop_net(loaded);
}
END_TEST

START_TEST(roundtrip_without_rule)
{
    const size_t units[] = {H1, OUT};
    const int acts[] = {BPL_ACT_SIGMOID, BPL_ACT_SOFTMAX};
    bpl_net *net = own_net(test_make_net(IN, units, acts, 2, 77));
    bpl_net *loaded = save_and_load(net, "norule.bpl");
    ck_assert_ptr_null(bpl_net_rule(loaded));
    ck_assert_uint_eq(bpl_net_seed(loaded), 77);
    assert_same_tensors(net, loaded, "no rule");
    assert_same_predictions(net, loaded, "no rule");
    /* a rule can still be attached and trained afterwards */
    test_attach(loaded, "backprop");
    train_steps(loaded, 1, 3);
    drop_net(net);
    drop_net(loaded);
}
END_TEST

START_TEST(saved_file_is_deterministic)
{
    /* the same net saved twice gives the same bytes, and so does a loaded
     * copy saved again */
    char p1[512], p2[512], p3[512];
    temp(p1, "det1.bpl");
    temp(p2, "det2.bpl");
    temp(p3, "det3.bpl");
    bpl_net *net = make_trained("backprop", BPL_ACT_TANH, BPL_ACT_SOFTMAX,
                                BPL_LOSS_CROSS_ENTROPY, 1);
    BPL_OK_OR_FAIL(bpl_net_save(net, p1));
    BPL_OK_OR_FAIL(bpl_net_save(net, p2));
    bpl_net *loaded = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&loaded, p1));
    own_net(loaded);
    BPL_OK_OR_FAIL(bpl_net_save(loaded, p3));
    blob a = read_file(p1), b = read_file(p2), c = read_file(p3);
    ck_assert_uint_eq(a.size, b.size);
    ck_assert_mem_eq(a.data, b.data, a.size);
    int same = a.size == c.size && memcmp(a.data, c.data, a.size) == 0;
    drop_mem(a.data);
    drop_mem(b.data);
    drop_mem(c.data);
    drop_net(net);
    drop_net(loaded);
    ck_assert_msg(same, "a loaded net saved again differs from the file it came from");
}
END_TEST

/* ---- a rule that is not built in ------------------------------------------------ */

enum { MAX_LAYERS = 4 };

typedef struct user_state {
    int created_trace[MAX_LAYERS];
    int created_fb[MAX_LAYERS];
    int attached;
} user_state;

static int user_attach(void *self, bpl_net *net)
{
    user_state *st = self;
    double alpha;
    int rc = bpl_rule_get(bpl_net_rule(net), "alpha", &alpha);
    for (size_t l = 0; rc == BPL_OK && l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        rc = bpl_layer_add_tensor(layer, "trace", bpl_layer_units(layer), 2, BPL_GROUP_NONE,
                                  BPL_INIT_CONSTANT, alpha, &st->created_trace[l]);
        if (rc == BPL_OK)
            rc = bpl_layer_add_tensor(layer, "fb", bpl_layer_inputs(layer),
                                      bpl_layer_units(layer), BPL_GROUP_FEEDBACK,
                                      BPL_INIT_NORMAL, 0.5, &st->created_fb[l]);
    }
    st->attached = 1;
    return rc;
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

/* Forward weights by their gradients; "fb" by a made-up gradient, so that its
 * optimiser (momentum) has state worth saving. */
static int user_update(void *self, bpl_net *net)
{
    (void)self;
    int rc = BPL_OK;
    for (size_t l = 0; rc == BPL_OK && l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        float *fb = NULL, *grad = NULL;
        size_t rows = 0, cols = 0;
        rc = bpl_net_weight_gradients(net, l);
        if (rc == BPL_OK)
            rc = bpl_layer_tensor(layer, "fb", &fb, &rows, &cols);
        if (rc == BPL_OK)
            rc = bpl_layer_tensor_grad(layer, "fb", &grad, NULL, NULL);
        for (size_t i = 0; rc == BPL_OK && i < rows * cols; i++)
            grad[i] = 0.25f * fb[i] + 0.01f;
    }
    if (rc == BPL_OK)
        rc = bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD | 1u << BPL_GROUP_FEEDBACK);
    return rc;
}

static void user_destroy(void *self)
{
    free(self);
}

/* A user rule; its state stays reachable through *state_out while the rule
 * (or the net that owns it) lives. */
static bpl_rule *make_user_rule(const char *name, user_state **state_out)
{
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = name;
    vt.attach = user_attach;
    vt.forward = user_forward;
    vt.compute_targets = user_targets;
    vt.update = user_update;
    vt.destroy = user_destroy;
    user_state *st = calloc(1, sizeof *st);
    ck_assert_ptr_nonnull(st);
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, st));
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "alpha", BPL_PARAM_REAL, 0.5, 0.0, 10.0, NULL,
                                      "value the traces start from"));
    BPL_OK_OR_FAIL(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_MOMENTUM,
                                          0.05));
    *state_out = st;
    return rule;
}

/* A net trained with the user rule; `optimizer` for its forward weights. */
static bpl_net *make_user_net(user_state **state_out, const char *optimizer)
{
    const size_t units[] = {H1, OUT};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = own_net(test_make_net(IN, units, acts, 2, 31));
    bpl_rule *rule = make_user_rule("user.traces", state_out);
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "alpha", 0.25));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "lr", 0.02));
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", optimizer));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    ck_assert_int_eq((*state_out)->created_trace[0], 1);
    ck_assert_int_eq((*state_out)->created_fb[1], 1);
    /* distinctive trace values, unlike anything an initialiser makes */
    float trace[H1 * 2];
    for (size_t i = 0; i < H1 * 2; i++)
        trace[i] = 0.1f * (float)i - 0.3f;
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 0), "trace", trace, H1 * 2));
    train_steps(net, 3, 11);
    return net;
}

START_TEST(user_rule_pending_then_restored)
{
    user_state *st_a, *st_b;
    bpl_net *net = make_user_net(&st_a, "momentum");
    bpl_net *loaded = save_and_load(net, "user.bpl");

    /* not built in: no rule yet, but the net predicts with its dense pass */
    ck_assert_ptr_null(bpl_net_rule(loaded));
    assert_same_predictions(net, loaded, "user rule, before attaching");

    bpl_rule *rule = make_user_rule("user.traces", &st_b);
    BPL_OK_OR_FAIL(bpl_net_set_rule(loaded, rule));
    ck_assert(st_b->attached);
    for (size_t l = 0; l < 2; l++) {
        ck_assert_msg(st_b->created_trace[l] == 0,
                      "layer %zu: 'trace' was created anew instead of restored", l);
        ck_assert_msg(st_b->created_fb[l] == 0,
                      "layer %zu: 'fb' was created anew instead of restored", l);
    }
    double alpha = 0, lr = 0;
    BPL_OK_OR_FAIL(bpl_rule_get(rule, "alpha", &alpha));
    BPL_OK_OR_FAIL(bpl_rule_get(rule, "lr", &lr));
    ck_assert_double_eq(alpha, 0.25);
    ck_assert_double_eq(lr, 0.02);
    assert_same_rule(net, loaded, "user rule");
    assert_same_tensors(net, loaded, "user rule");

    /* the momentum buffers of the weights and of "fb" came back too */
    train_steps(net, 2, 5);
    train_steps(loaded, 2, 5);
    assert_same_tensors(net, loaded, "user rule, resumed");
    drop_net(net);
    drop_net(loaded);
}
END_TEST

START_TEST(user_rule_resumes_adam)
{
    /* Adam also needs its step count (bias correction): a net whose rule is
     * adopted after loading resumes exactly as the original goes on */
    user_state *st_a, *st_b;
    bpl_net *net = make_user_net(&st_a, "adam");
    bpl_net *loaded = save_and_load(net, "user-adam.bpl");
    BPL_OK_OR_FAIL(bpl_net_set_rule(loaded, make_user_rule("user.traces", &st_b)));
    ck_assert_int_eq(st_b->created_fb[0], 0);
    train_steps(net, 2, 5);
    train_steps(loaded, 2, 5);
    assert_same_tensors(net, loaded, "user rule with adam, resumed");
    drop_net(net);
    drop_net(loaded);
}
END_TEST

START_TEST(user_rule_pending_survives_save)
{
    /* a loaded net whose rule is still pending saves it again */
    user_state *st_a, *st_b;
    bpl_net *net = make_user_net(&st_a, "momentum");
    bpl_net *loaded = save_and_load(net, "user1.bpl");
    bpl_net *again = save_and_load(loaded, "user2.bpl");
    ck_assert_ptr_null(bpl_net_rule(again));
    bpl_rule *rule = make_user_rule("user.traces", &st_b);
    BPL_OK_OR_FAIL(bpl_net_set_rule(again, rule));
    ck_assert_int_eq(st_b->created_trace[0], 0);
    double alpha = 0;
    BPL_OK_OR_FAIL(bpl_rule_get(rule, "alpha", &alpha));
    ck_assert_double_eq(alpha, 0.25);
    assert_same_tensors(net, again, "user rule saved while pending");
    drop_net(net);
    drop_net(loaded);
    drop_net(again);
}
END_TEST

START_TEST(user_rule_other_name_starts_fresh)
{
    user_state *st_a, *st_b;
    bpl_net *net = make_user_net(&st_a, "momentum");
    bpl_net *loaded = save_and_load(net, "user-other.bpl");
    bpl_rule *rule = make_user_rule("user.other", &st_b);
    BPL_OK_OR_FAIL(bpl_net_set_rule(loaded, rule));
    ck_assert_int_eq(st_b->created_trace[0], 1);
    ck_assert_int_eq(st_b->created_trace[1], 1);
    ck_assert_int_eq(st_b->created_fb[0], 1);
    double alpha = 0, lr = 0;
    BPL_OK_OR_FAIL(bpl_rule_get(rule, "alpha", &alpha));
    BPL_OK_OR_FAIL(bpl_rule_get(rule, "lr", &lr));
    ck_assert_double_eq(alpha, 0.5);
    ck_assert_double_eq(lr, 1e-3);
    /* the traces are the initialiser's (constant alpha), not the saved ones */
    float trace[H1 * 2];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(loaded, 0), "trace", trace, H1 * 2));
    for (size_t i = 0; i < H1 * 2; i++)
        ck_assert_float_eq(trace[i], 0.5f);
    /* the forward weights are the saved ones all the same */
    float wa[H1 * IN], wb[H1 * IN];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 0), "weight", wa, H1 * IN));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(loaded, 0), "weight", wb, H1 * IN));
    ck_assert_mem_eq(wa, wb, sizeof wa);
    drop_net(net);
    drop_net(loaded);
}
END_TEST

START_TEST(user_rule_replaced_by_builtin)
{
    /* attaching a built-in rule drops the pending rule's tensors */
    user_state *st_a;
    bpl_net *net = make_user_net(&st_a, "momentum");
    bpl_net *loaded = save_and_load(net, "user-builtin.bpl");
    test_attach(loaded, "backprop");
    ck_assert_str_eq(bpl_rule_name(bpl_net_rule(loaded)), "backprop");
    for (size_t l = 0; l < 2; l++) {
        bpl_layer *layer = bpl_net_layer(loaded, l);
        ck_assert_uint_eq(bpl_layer_tensor_count(layer), 2);
        ck_assert_int_eq(bpl_layer_tensor_info(layer, "trace", NULL, NULL, NULL),
                         BPL_ERR_NOT_FOUND);
    }
    train_steps(loaded, 1, 2);
    drop_net(net);
    drop_net(loaded);
}
END_TEST

/* ---- damaged files -------------------------------------------------------------- */

/* A reference model file (fa: feedback tensors and hyperparameters). */
static blob reference_file(const char *path)
{
    bpl_net *net = make_trained("fa", BPL_ACT_TANH, BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY,
                                0);
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    drop_net(net);
    bpl_net *check = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&check, path));
    bpl_net_destroy(check);
    return read_file(path);
}

/* Load `path`; returns the status, checking that failures leave *out NULL
 * and that file errors name the file. */
static int try_load(const char *path)
{
    bpl_net *net = (bpl_net *)1;
    int rc = bpl_net_load(&net, path);
    if (rc == BPL_OK) {
        ck_assert_ptr_nonnull(net);
        bpl_net_destroy(net);
        return rc;
    }
    ck_assert_ptr_null(net);
    if (rc == BPL_ERR_FORMAT || rc == BPL_ERR_VERSION || rc == BPL_ERR_IO)
        ck_assert_msg(strstr(bpl_last_error_message(), path) != NULL,
                      "status %d: message '%s' does not name the file", rc,
                      bpl_last_error_message());
    return rc;
}

static void note_position(char *list, size_t size, size_t pos, int rc)
{
    size_t used = strlen(list);
    if (used + 24 < size)
        snprintf(list + used, size - used, " %zu(rc %d)", pos, rc);
}

START_TEST(corrupt_byte_flips)
{
    char good[512], bad[512];
    temp(good, "flip-good.bpl");
    temp(bad, "flip-bad.bpl");
    blob ref = reference_file(good);
    unsigned char *copy = own_mem(malloc(ref.size));
    char wrong[4096] = "";
    size_t n_wrong = 0, n_tried = 0;
    static const unsigned char masks[] = {0x01, 0x80, 0xff};
    for (size_t pos = 0; pos < ref.size; pos++) {
        /* every header byte; payload bytes with a stride */
        if (pos >= HEADER && pos % 3 != 0 && pos != ref.size - 1)
            continue;
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy(copy, ref.data, ref.size);
            copy[pos] ^= masks[m];
            write_file(bad, copy, ref.size);
            int rc = try_load(bad);
            int version_field = pos >= OFF_VERSION && pos < OFF_FLAGS + 4;
            n_tried++;
            if (rc == BPL_ERR_FORMAT || (version_field && rc == BPL_ERR_VERSION))
                continue;
            n_wrong++;
            note_position(wrong, sizeof wrong, pos, rc);
        }
    }
    size_t size = ref.size;
    drop_mem(copy);
    drop_mem(ref.data);
    ck_assert_msg(n_wrong == 0, "%zu of %zu single-byte flips in a %zu-byte model were not "
                  "refused with BPL_ERR_FORMAT; positions:%s", n_wrong, n_tried, size, wrong);
}
END_TEST

START_TEST(corrupt_truncated)
{
    char good[512], bad[512];
    temp(good, "trunc-good.bpl");
    temp(bad, "trunc-bad.bpl");
    blob ref = reference_file(good);
    char wrong[4096] = "";
    size_t n_wrong = 0;
    for (size_t len = 0; len < ref.size; len += len < 2 * HEADER ? 1 : 3) {
        write_file(bad, ref.data, len);
        int rc = try_load(bad);
        if (rc != BPL_ERR_FORMAT) {
            n_wrong++;
            note_position(wrong, sizeof wrong, len, rc);
        }
    }
    /* the last byte missing */
    write_file(bad, ref.data, ref.size - 1);
    ck_assert_int_eq(try_load(bad), BPL_ERR_FORMAT);
    drop_mem(ref.data);
    ck_assert_msg(n_wrong == 0, "%zu truncations not refused with BPL_ERR_FORMAT:%s",
                  n_wrong, wrong);
}
END_TEST

START_TEST(corrupt_appended)
{
    char good[512], bad[512];
    temp(good, "append-good.bpl");
    temp(bad, "append-bad.bpl");
    blob ref = reference_file(good);
    const size_t extra[] = {1, 7, 4096};
    for (size_t e = 0; e < 3; e++) {
        memset(ref.data + ref.size, 0, extra[e]);
        write_file(bad, ref.data, ref.size + extra[e]);
        BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_FORMAT, bad);
    }
    /* appended bytes counted in the header and covered by the checksum:
     * the parser still notices them */
    unsigned char *grown = own_mem(malloc(ref.size + 8));
    memcpy(grown, ref.data, ref.size);
    drop_mem(ref.data);
    memset(grown + ref.size, 0x42, 8);
    fix_checksums(grown, ref.size + 8);
    write_file(bad, grown, ref.size + 8);
    drop_mem(grown);
    BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_FORMAT, bad);
}
END_TEST

START_TEST(corrupt_bad_magic)
{
    char good[512], bad[512];
    temp(good, "magic-good.bpl");
    temp(bad, "magic-bad.bpl");
    blob ref = reference_file(good);
    ref.data[0] = 'X';
    write_file(bad, ref.data, ref.size);
    BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_FORMAT, "magic");
    /* CR LF turned into LF LF, as a text-mode transfer would */
    ref.data[0] = 'B';
    ref.data[6] = '\n';
    write_file(bad, ref.data, ref.size);
    BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_FORMAT, bad);
    drop_mem(ref.data);
    static const char text[] = "hello, I am not a model at all, only some text\n";
    write_file(bad, (const unsigned char *)text, sizeof text - 1);
    BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_FORMAT, "magic");
    write_file(bad, (const unsigned char *)"BPL", 3);
    BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_FORMAT, bad);
    write_file(bad, (const unsigned char *)"", 0);
    BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_FORMAT, bad);
}
END_TEST

START_TEST(newer_format_version)
{
    char good[512], bad[512];
    temp(good, "version-good.bpl");
    temp(bad, "version-bad.bpl");
    blob ref = reference_file(good);
    store_le32(ref.data + OFF_VERSION, 3);
    store_le32(ref.data + OFF_HEADER_CRC, (uint32_t)crc32(0L, ref.data, 28));
    write_file(bad, ref.data, ref.size);
    BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_VERSION, "version");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), bad));
    /* a far newer one */
    store_le32(ref.data + OFF_VERSION, 0x7fffffffu);
    store_le32(ref.data + OFF_HEADER_CRC, (uint32_t)crc32(0L, ref.data, 28));
    write_file(bad, ref.data, ref.size);
    BPL_EXPECT_ERROR(try_load(bad), BPL_ERR_VERSION, "version");
    /* version 0 never existed: refused either way */
    store_le32(ref.data + OFF_VERSION, 0);
    store_le32(ref.data + OFF_HEADER_CRC, (uint32_t)crc32(0L, ref.data, 28));
    write_file(bad, ref.data, ref.size);
    int rc = try_load(bad);
    ck_assert_msg(rc == BPL_ERR_VERSION || rc == BPL_ERR_FORMAT, "version 0: status %d", rc);
    drop_mem(ref.data);
}
END_TEST

/* Write the reference with `edit` applied to its payload and the checksums
 * made to match; expect FORMAT. */
static void expect_nonsense_refused(const blob *ref, const char *bad, size_t offset,
                                    const unsigned char *bytes, size_t n, const char *what)
{
    unsigned char *copy = own_mem(malloc(ref->size));
    memcpy(copy, ref->data, ref->size);
    memcpy(copy + HEADER + offset, bytes, n);
    fix_checksums(copy, ref->size);
    write_file(bad, copy, ref->size);
    drop_mem(copy);
    int rc = try_load(bad);
    ck_assert_msg(rc == BPL_ERR_FORMAT, "%s: status %d (%s), expected BPL_ERR_FORMAT: %s",
                  what, rc, bpl_strerror(rc), bpl_last_error_message());
}

static void le32(unsigned char *b, uint32_t v)
{
    store_le32(b, v);
}

START_TEST(corrupt_payload_with_valid_checksums)
{
    char good[512], bad[512];
    temp(good, "nonsense-good.bpl");
    temp(bad, "nonsense-bad.bpl");
    blob ref = reference_file(good);
    unsigned char b[8];

    le32(b, 0xffffffffu);
    expect_nonsense_refused(&ref, bad, P_LAYERS, b, 4, "2^32-1 layers");
    le32(b, 1000);
    expect_nonsense_refused(&ref, bad, P_LAYERS, b, 4, "1000 layers in a small file");
    le32(b, 0);
    expect_nonsense_refused(&ref, bad, P_LAYERS, b, 4, "no layers");
    le32(b, 77);
    expect_nonsense_refused(&ref, bad, P_LOSS, b, 4, "unknown loss");
    le32(b, 99);
    expect_nonsense_refused(&ref, bad, P_ACTIVATION, b, 4, "unknown activation");
    le32(b, 0xffffffffu);
    expect_nonsense_refused(&ref, bad, P_N_TENSORS, b, 4, "2^32-1 tensors");
    le32(b, 0xffffffffu);
    expect_nonsense_refused(&ref, bad, P_TENSOR_NAME, b, 4, "a 4 GiB tensor name");
    store_le64(b, (uint64_t)1 << 40);
    expect_nonsense_refused(&ref, bad, P_TENSOR_ROWS, b, 8, "2^40 rows");
    store_le64(b, (uint64_t)1 << 24);
    expect_nonsense_refused(&ref, bad, P_TENSOR_ROWS, b, 8, "2^24 rows");
    expect_nonsense_refused(&ref, bad, P_TENSOR_COLS, b, 8, "2^24 columns");
    store_le64(b, 0);
    expect_nonsense_refused(&ref, bad, P_UNITS, b, 8, "a layer of no units");
    expect_nonsense_refused(&ref, bad, P_INPUTS, b, 8, "no inputs");
    /* kinds and shapes: an unknown kind, ranks out of range or not held */
    expect_nonsense_refused(&ref, bad, P_KIND_NAME, (const unsigned char *)"conv9", 5,
                            "an unknown layer kind");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "'conv9'"));
    le32(b, 0);
    expect_nonsense_refused(&ref, bad, P_RANK, b, 4, "a layer shape of rank 0");
    le32(b, 9);
    expect_nonsense_refused(&ref, bad, P_RANK, b, 4, "a layer shape of rank 9");
    le32(b, 0xffffffffu);
    expect_nonsense_refused(&ref, bad, P_INPUT_RANK, b, 4, "an input shape of rank 2^32-1");
    le32(b, 5);
    expect_nonsense_refused(&ref, bad, P_INPUT_RANK, b, 4, "an input shape of rank 5");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "rank 5"));
    le32(b, 0xffffffffu);
    expect_nonsense_refused(&ref, bad, P_KIND, b, 4, "a 4 GiB kind name");
    /* a net and a first layer of 2^24 (the most a layer may have) in a file
     * of a few kilobytes */
    store_le64(b, (uint64_t)1 << 24);
    unsigned char *copy = own_mem(malloc(ref.size));
    memcpy(copy, ref.data, ref.size);
    memcpy(copy + HEADER + P_INPUTS, b, 8);
    memcpy(copy + HEADER + P_UNITS, b, 8);
    fix_checksums(copy, ref.size);
    write_file(bad, copy, ref.size);
    drop_mem(copy);
    drop_mem(ref.data);
    int rc = try_load(bad);
    ck_assert_msg(rc == BPL_ERR_FORMAT,
                  "2^24 inputs and a first layer of 2^24 units in a %zu-byte file: status "
                  "%d (%s), expected BPL_ERR_FORMAT: %s",
                  ref.size, rc, bpl_strerror(rc), bpl_last_error_message());
}
END_TEST

START_TEST(corrupt_payload_fuzz)
{
    /* Low-bit flips of payload bytes behind valid checksums: each file is
     * either a valid net or refused with FORMAT, never a crash (valgrind
     * watches the reads). */
    char good[512], bad[512];
    temp(good, "fuzz-good.bpl");
    temp(bad, "fuzz-bad.bpl");
    blob ref = reference_file(good);
    unsigned char *copy = own_mem(malloc(ref.size));
    char wrong[4096] = "";
    size_t n_wrong = 0, n_refused = 0;
    for (size_t pos = HEADER; pos < ref.size; pos += pos < HEADER + 160 ? 1 : 5) {
        memcpy(copy, ref.data, ref.size);
        copy[pos] ^= 0x01;
        fix_checksums(copy, ref.size);
        write_file(bad, copy, ref.size);
        int rc = try_load(bad);
        n_refused += rc == BPL_ERR_FORMAT;
        if (rc != BPL_OK && rc != BPL_ERR_FORMAT) {
            n_wrong++;
            note_position(wrong, sizeof wrong, pos, rc);
        }
    }
    drop_mem(copy);
    drop_mem(ref.data);
    ck_assert_msg(n_wrong == 0, "%zu edits gave a status other than OK or FORMAT:%s",
                  n_wrong, wrong);
    ck_assert_uint_gt(n_refused, 10);
}
END_TEST

START_TEST(load_io_errors)
{
    char missing[512], dir[512];
    temp(missing, "no-such-model.bpl");
    bpl_net *net = (bpl_net *)1;
    BPL_EXPECT_ERROR(bpl_net_load(&net, missing), BPL_ERR_IO, missing);
    ck_assert_ptr_null(net);
    temp_dir(dir, "a-directory.bpl");
    net = (bpl_net *)1;
    BPL_EXPECT_ERROR(bpl_net_load(&net, dir), BPL_ERR_IO, dir);
    ck_assert_ptr_null(net);
}
END_TEST

START_TEST(null_arguments)
{
    char path[512];
    temp(path, "null-args.bpl");
    const size_t units[] = {OUT};
    const int acts[] = {BPL_ACT_SOFTMAX};
    bpl_net *net = own_net(test_make_net(IN, units, acts, 1, 5));
    BPL_EXPECT_ERROR(bpl_net_save(NULL, path), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_net_save(net, NULL), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_net_save(net, ""), BPL_ERR_INVALID_ARG, NULL);
    ck_assert_int_eq(access(path, F_OK), -1);
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *loaded = (bpl_net *)1;
    BPL_EXPECT_ERROR(bpl_net_load(NULL, path), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_net_load(&loaded, NULL), BPL_ERR_INVALID_ARG, NULL);
    ck_assert_ptr_null(loaded);
    drop_net(net);
}
END_TEST


/* A save that failed (status `rc`, message `message`) left the previous
 * model `before` at `path` byte for byte, loadable and predicting as `old`,
 * and no temporary file in `dir`.  Frees before.data. */
static void assert_save_failed_keeping(int rc, const char *message, bpl_net *old,
                                       const char *dir, const char *path, blob before,
                                       const char *what)
{
    ck_assert_msg(rc == BPL_ERR_IO, "%s: status %d: %s", what, rc, message);
    ck_assert_msg(strstr(message, path) != NULL, "%s: message: %s", what, message);
    blob after = read_file(path);
    ck_assert_uint_eq(after.size, before.size);
    ck_assert_mem_eq(after.data, before.data, before.size);
    drop_mem(before.data);
    drop_mem(after.data);
    bpl_net *loaded = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&loaded, path));
    own_net(loaded);
    assert_same_predictions(old, loaded, what);
    drop_net(loaded);
    char names[1024];
    size_t n = list_dir(dir, names, sizeof names);
    ck_assert_msg(n == 1 && strcmp(names, "model.bpl") == 0, "%s: directory holds: %s", what,
                  names);
}
/* ---- atomic saving ---------------------------------------------------------------- */

START_TEST(save_over_existing)
{
    char dir[512], path[1024], names[1024];
    temp_dir(dir, "atomic");
    snprintf(path, sizeof path, "%s/model.bpl", dir);
    bpl_net *first = make_trained("backprop", BPL_ACT_RELU, BPL_ACT_SOFTMAX,
                                  BPL_LOSS_CROSS_ENTROPY, 0);
    bpl_net *second = make_trained("dfa", BPL_ACT_TANH, BPL_ACT_SIGMOID, BPL_LOSS_MSE, 1);
    BPL_OK_OR_FAIL(bpl_net_save(first, path));
    for (int i = 0; i < 3; i++) {
        bpl_net *net = i % 2 ? first : second;
        BPL_OK_OR_FAIL(bpl_net_save(net, path));
        bpl_net *loaded = NULL;
        BPL_OK_OR_FAIL(bpl_net_load(&loaded, path));
        own_net(loaded);
        ck_assert_str_eq(bpl_rule_name(bpl_net_rule(loaded)),
                         bpl_rule_name(bpl_net_rule(net)));
        assert_same_predictions(net, loaded, "saved over");
        drop_net(loaded);
    }
    /* no temporary file is left behind */
    size_t n = list_dir(dir, names, sizeof names);
    ck_assert_msg(n == 1 && strcmp(names, "model.bpl") == 0, "directory holds: %s", names);
    drop_net(first);
    drop_net(second);
}
END_TEST

START_TEST(save_into_missing_directory)
{
    char base[512], missing[600], path[700], names[1024];
    temp_dir(base, "save-parent");
    snprintf(missing, sizeof missing, "%s/not-there", base);
    snprintf(path, sizeof path, "%s/model.bpl", missing);
    const size_t units[] = {OUT};
    const int acts[] = {BPL_ACT_SOFTMAX};
    bpl_net *net = own_net(test_make_net(IN, units, acts, 1, 5));
    BPL_EXPECT_ERROR(bpl_net_save(net, path), BPL_ERR_IO, path);
    struct stat st;
    ck_assert_int_eq(stat(missing, &st), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(list_dir(base, names, sizeof names) == 0, "created: %s", names);
    drop_net(net);
}
END_TEST

START_TEST(save_into_read_only_directory)
{
    char dir[512], path[1024], names[1024];
    temp_dir(dir, "read-only");
    bpl_net *old = make_trained("fa", BPL_ACT_TANH, BPL_ACT_SOFTMAX,
                                BPL_LOSS_CROSS_ENTROPY, 0);
    bpl_net *fresh = make_trained("backprop", BPL_ACT_RELU, BPL_ACT_SOFTMAX,
                                  BPL_LOSS_CROSS_ENTROPY, 2);
    if (geteuid() == 0) {
        /* root writes into read-only directories; a parent that is a regular
         * file stops everyone */
        char file[600];
        snprintf(file, sizeof file, "%s/plain-file", dir);
        write_file(file, (const unsigned char *)"keep me\n", 8);
        snprintf(path, sizeof path, "%s/model.bpl", file);
        BPL_EXPECT_ERROR(bpl_net_save(fresh, path), BPL_ERR_IO, path);
        blob kept = read_file(file);
        ck_assert_uint_eq(kept.size, 8);
        ck_assert_mem_eq(kept.data, "keep me\n", 8);
        drop_mem(kept.data);
        size_t n = list_dir(dir, names, sizeof names);
        ck_assert_msg(n == 1 && strcmp(names, "plain-file") == 0, "directory holds: %s",
                      names);
    } else {
        snprintf(path, sizeof path, "%s/model.bpl", dir);
        BPL_OK_OR_FAIL(bpl_net_save(old, path));
        blob before = read_file(path);
        ck_assert_int_eq(chmod(dir, 0555), 0);
        int rc = bpl_net_save(fresh, path);
        char message[1024];
        snprintf(message, sizeof message, "%s", bpl_last_error_message());
        ck_assert_int_eq(chmod(dir, 0755), 0);
        assert_save_failed_keeping(rc, message, old, dir, path, before, "read-only directory");
    }
    drop_net(old);
    drop_net(fresh);
}
END_TEST

/* A disk that fills up part-way through a save, simulated with a file-size
 * limit below the model's size (SIGXFSZ ignored, so writes fail with
 * EFBIG): the save reports an I/O error, the previous model is there byte
 * for byte and loads, and no temporary file is left. */
START_TEST(save_fails_part_way_keeps_previous)
{
    char dir[512], path[1024];
    temp_dir(dir, "disk-full");
    snprintf(path, sizeof path, "%s/model.bpl", dir);
    bpl_net *old = make_trained("fa", BPL_ACT_TANH, BPL_ACT_SOFTMAX,
                                BPL_LOSS_CROSS_ENTROPY, 0);
    bpl_net *fresh = make_trained("backprop", BPL_ACT_RELU, BPL_ACT_SOFTMAX,
                                  BPL_LOSS_CROSS_ENTROPY, 2);
    BPL_OK_OR_FAIL(bpl_net_save(old, path));
    blob before = read_file(path);
    ck_assert_uint_gt(before.size, 256);

    struct rlimit saved;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 128; /* bytes: the header fits, the weights do not */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = bpl_net_save(fresh, path);
    char message[1024];
    snprintf(message, sizeof message, "%s", bpl_last_error_message());
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, previous);

    assert_save_failed_keeping(rc, message, old, dir, path, before, "file-size limit");
    /* with room again, the same net saves */
    BPL_OK_OR_FAIL(bpl_net_save(fresh, path));
    drop_net(old);
    drop_net(fresh);
}
END_TEST

START_TEST(save_onto_a_directory)
{
    /* the final rename fails: the directory stays and no temporary remains */
    char dir[512], target[1024], names[1024];
    temp_dir(dir, "rename-fails");
    snprintf(target, sizeof target, "%s/model.bpl", dir);
    ck_assert_int_eq(mkdir(target, 0755), 0);
    const size_t units[] = {OUT};
    const int acts[] = {BPL_ACT_SOFTMAX};
    bpl_net *net = own_net(test_make_net(IN, units, acts, 1, 5));
    BPL_EXPECT_ERROR(bpl_net_save(net, target), BPL_ERR_IO, target);
    struct stat st;
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    size_t n = list_dir(dir, names, sizeof names);
    ck_assert_msg(n == 1 && strcmp(names, "model.bpl") == 0, "directory holds: %s", names);
    drop_net(net);
}
END_TEST

/* ---- special paths: links, FIFOs, sockets, devices, directories -------------- */

static bpl_net *small_net(uint64_t seed)
{
    const size_t units[] = {OUT};
    const int acts[] = {BPL_ACT_SOFTMAX};
    return own_net(test_make_net(IN, units, acts, 1, seed));
}

/* `link` is still a symbolic link reading `target`. */
static void assert_link(const char *link, const char *target)
{
    struct stat st;
    ck_assert_msg(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "'%s' is no longer a link",
                  link);
    char text[1024];
    ssize_t n = readlink(link, text, sizeof text - 1);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    ck_assert_str_eq(text, target);
}

/* `path` loads and predicts as `net`. */
static void assert_holds(const char *path, bpl_net *net, const char *what)
{
    bpl_net *loaded = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&loaded, path));
    own_net(loaded);
    assert_same_predictions(net, loaded, what);
    drop_net(loaded);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* `dir` holds exactly the space-separated names `expected`, in order. */
static void assert_lists(const char *dir, const char *expected, const char *what)
{
    char listed[1024], names[1024] = "";
    char *sorted[32];
    size_t n = list_dir(dir, listed, sizeof listed);
    ck_assert_uint_le(n, 32);
    for (size_t i = 0; i < n; i++)
        sorted[i] = strtok(i ? NULL : listed, " ");
    qsort(sorted, n, sizeof sorted[0], compare_names);
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", i ? " " : "", sorted[i]);
    }
    ck_assert_msg(strcmp(names, expected) == 0, "%s: '%s' holds '%s', expected '%s'", what,
                  dir, names, expected);
}

/* A save over a symbolic link replaces the file it points to, atomically
 * (the temporary file goes beside the target), and the link stays. */
START_TEST(save_through_symlinks)
{
    char links[512], models[512], target[1024], link[1024], chain[1024], dangling[1024];
    char created[1024];
    temp_dir(links, "links");
    temp_dir(models, "models");
    snprintf(target, sizeof target, "%s/v1.bpl", models);
    snprintf(link, sizeof link, "%s/current.bpl", links);
    snprintf(chain, sizeof chain, "%s/latest.bpl", links);
    snprintf(dangling, sizeof dangling, "%s/next.bpl", links);
    snprintf(created, sizeof created, "%s/v2.bpl", models);
    bpl_net *old = small_net(1), *fresh = small_net(2), *third = small_net(3);
    BPL_OK_OR_FAIL(bpl_net_save(old, target));
    /* relative, into another directory */
    ck_assert_int_eq(symlink("../models/v1.bpl", link), 0);
    BPL_OK_OR_FAIL(bpl_net_save(fresh, link));
    assert_link(link, "../models/v1.bpl");
    assert_holds(target, fresh, "through a relative link");
    assert_lists(models, "v1.bpl", "through a relative link");
    /* a chain: latest.bpl -> current.bpl -> ../models/v1.bpl */
    ck_assert_int_eq(symlink("current.bpl", chain), 0);
    BPL_OK_OR_FAIL(bpl_net_save(third, chain));
    assert_link(chain, "current.bpl");
    assert_link(link, "../models/v1.bpl");
    assert_holds(target, third, "through a chain of links");
    /* dangling: the file it names is created, as open() would */
    ck_assert_int_eq(symlink(created, dangling), 0);
    BPL_OK_OR_FAIL(bpl_net_save(old, dangling));
    assert_link(dangling, created);
    assert_holds(created, old, "through a dangling link");
    assert_holds(dangling, old, "through a dangling link");
    assert_lists(models, "v1.bpl v2.bpl", "after every save");
    drop_net(old);
    drop_net(fresh);
    drop_net(third);
}
END_TEST

START_TEST(save_symlink_loop)
{
    char dir[512], a[1024], b[1024], self[1024];
    temp_dir(dir, "loop");
    snprintf(a, sizeof a, "%s/a.bpl", dir);
    snprintf(b, sizeof b, "%s/b.bpl", dir);
    snprintf(self, sizeof self, "%s/self.bpl", dir);
    ck_assert_int_eq(symlink("b.bpl", a), 0);
    ck_assert_int_eq(symlink("a.bpl", b), 0);
    ck_assert_int_eq(symlink("self.bpl", self), 0);
    bpl_net *net = small_net(1);
    BPL_EXPECT_ERROR(bpl_net_save(net, a), BPL_ERR_IO, a);
    ck_assert_msg(strstr(bpl_last_error_message(), "symbolic links") != NULL, "message: %s",
                  bpl_last_error_message());
    BPL_EXPECT_ERROR(bpl_net_save(net, self), BPL_ERR_IO, self);
    assert_link(a, "b.bpl");
    assert_link(b, "a.bpl");
    assert_link(self, "self.bpl");
    assert_lists(dir, "a.bpl b.bpl self.bpl", "after refused saves");
    drop_net(net);
}
END_TEST

/* A socket bound at `path` (closed again: the node stays). */
static void make_socket(const char *path)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(path), sizeof addr.sun_path);
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    close(fd);
}

/* 'p' FIFO, 's' socket, 'l' link, 'd' directory, 'c' device, 'f' file. */
static char type_of(const char *path)
{
    struct stat st;
    ck_assert_msg(lstat(path, &st) == 0, "'%s': %s", path, strerror(errno));
    return S_ISFIFO(st.st_mode)   ? 'p'
           : S_ISSOCK(st.st_mode) ? 's'
           : S_ISLNK(st.st_mode)  ? 'l'
           : S_ISDIR(st.st_mode)  ? 'd'
           : S_ISCHR(st.st_mode)  ? 'c'
           : S_ISREG(st.st_mode)  ? 'f'
                                  : '?';
}

/* A FIFO, a socket, a device or a directory is refused with an I/O error
 * and left as it was, whether named directly or through a link. */
START_TEST(save_onto_special_files)
{
    char dir[512], fifo[1024], sock[1024], to_null[1024], sub[1024], to_sub[1024];
    temp_dir(dir, "specials");
    snprintf(fifo, sizeof fifo, "%s/fifo.bpl", dir);
    snprintf(sock, sizeof sock, "%s/sock.bpl", dir);
    snprintf(to_null, sizeof to_null, "%s/null.bpl", dir);
    snprintf(sub, sizeof sub, "%s/sub.bpl", dir);
    snprintf(to_sub, sizeof to_sub, "%s/to-sub.bpl", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    make_socket(sock);
    ck_assert_int_eq(symlink("/dev/null", to_null), 0);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(symlink("sub.bpl", to_sub), 0);
    bpl_net *net = small_net(1);
    const struct {
        const char *path;
        char type;
    } cases[] = {{fifo, 'p'}, {sock, 's'}, {to_null, 'l'}, {sub, 'd'}, {to_sub, 'l'}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        BPL_EXPECT_ERROR(bpl_net_save(net, cases[i].path), BPL_ERR_IO, cases[i].path);
        ck_assert_msg(strstr(bpl_last_error_message(), "not a regular file") != NULL,
                      "message: %s", bpl_last_error_message());
        ck_assert_msg(type_of(cases[i].path) == cases[i].type, "'%s' changed type",
                      cases[i].path);
    }
    assert_link(to_null, "/dev/null");
    ck_assert_int_eq(type_of("/dev/null"), 'c');
    assert_link(to_sub, "sub.bpl");
    assert_lists(sub, "", "the directory");
    assert_lists(dir, "fifo.bpl null.bpl sock.bpl sub.bpl to-sub.bpl", "after refused saves");
    drop_net(net);
}
END_TEST

/* Load in a child that an alarm kills after 3 s; returns the status and
 * copies the message. */
static int load_in_child(const char *path, char *message, size_t size)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGALRM, SIG_DFL); /* Check's handler would kill the whole test */
        alarm(3);
        bpl_net *net = NULL;
        int rc = bpl_net_load(&net, path);
        bpl_net_destroy(net);
        const char *m = bpl_last_error_message();
        ssize_t w = write(fds[1], m, strlen(m));
        (void)w;
        _exit(-rc);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < size && (r = read(fds[0], message + got, size - 1 - got)) > 0)
        got += (size_t)r;
    message[got] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM,
                  "loading '%s' blocked for 3 s", path);
    ck_assert_msg(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
    return -WEXITSTATUS(status);
}

/* A FIFO without a writer would block the open, a device would read as
 * empty or forever: each is refused at once (a FIFO is loaded in a child,
 * so that a load that blocks fails the test instead of hanging it). */
START_TEST(load_special_files)
{
    char dir[512], fifo[1024], link[1024], model[1024], to_model[1024];
    temp_dir(dir, "load-specials");
    snprintf(fifo, sizeof fifo, "%s/fifo.bpl", dir);
    snprintf(link, sizeof link, "%s/to-fifo.bpl", dir);
    snprintf(model, sizeof model, "%s/model.bpl", dir);
    snprintf(to_model, sizeof to_model, "%s/to-model.bpl", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(symlink("fifo.bpl", link), 0);
    const char *refused[] = {fifo, link, "/dev/zero", "/dev/null", dir};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char message[2048];
        int rc;
        struct stat st;
        if (stat(refused[i], &st) == 0 && S_ISFIFO(st.st_mode)) {
            rc = load_in_child(refused[i], message, sizeof message);
        } else {
            bpl_net *net = (bpl_net *)1;
            rc = bpl_net_load(&net, refused[i]);
            ck_assert_ptr_null(net);
            snprintf(message, sizeof message, "%s", bpl_last_error_message());
        }
        ck_assert_msg(rc == BPL_ERR_IO, "'%s': status %d: %s", refused[i], rc, message);
        ck_assert_msg(strstr(message, refused[i]) && strstr(message, "not a regular file"),
                      "message: %s", message);
    }
    /* a link to a model loads */
    bpl_net *net = small_net(4);
    BPL_OK_OR_FAIL(bpl_net_save(net, model));
    ck_assert_int_eq(symlink("model.bpl", to_model), 0);
    assert_holds(to_model, net, "through a link");
    drop_net(net);
}
END_TEST

/* A save killed part-way (here by SIGXFSZ, as a file-size limit does by
 * default) cannot clean up: what it leaves is named as documented,
 * ".<name>.bpl-tmp.<pid>.<8 hex digits>" beside the target, and the
 * previous model is intact. */
START_TEST(save_killed_leaves_named_temporary)
{
    char dir[512], path[1024], names[1024];
    temp_dir(dir, "killed");
    snprintf(path, sizeof path, "%s/model.bpl", dir);
    bpl_net *old = small_net(1), *fresh = small_net(2);
    BPL_OK_OR_FAIL(bpl_net_save(old, path));
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit none = {0, 0}, small;
        setrlimit(RLIMIT_CORE, &none);
        getrlimit(RLIMIT_FSIZE, &small);
        small.rlim_cur = 128;
        signal(SIGXFSZ, SIG_DFL);
        if (setrlimit(RLIMIT_FSIZE, &small) != 0)
            _exit(1);
        bpl_net_save(fresh, path);
        _exit(2); /* not killed */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ,
                  "the save was not killed (status 0x%x)", status);
    assert_holds(path, old, "after a killed save");
    ck_assert_uint_eq(list_dir(dir, names, sizeof names), 2);
    char prefix[64], leftover[1024] = "";
    snprintf(prefix, sizeof prefix, ".model.bpl.bpl-tmp.%ld.", (long)pid);
    char *space = strchr(names, ' ');
    *space = '\0';
    snprintf(leftover, sizeof leftover, "%s", strcmp(names, "model.bpl") ? names : space + 1);
    const char *hex = leftover + strlen(prefix);
    ck_assert_msg(strncmp(leftover, prefix, strlen(prefix)) == 0 && strlen(hex) == 8 &&
                      strspn(hex, "0123456789abcdef") == 8,
                  "the leftover '%s' does not match '%sXXXXXXXX'", leftover, prefix);
    drop_net(old);
    drop_net(fresh);
}
END_TEST

/* Whatever a caller writes into a net's tensors with bpl_layer_set_tensor
 * and bpl_layer_init_tensor, bpl_net_save writes a file bpl_net_load reads.
 * (A rule's step count is its own state, out of the callers' reach.) */

static void write_every_tensor(bpl_net *net)
{
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            const char *name = bpl_layer_tensor_name(layer, t);
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, &rows, &cols, NULL));
            float *before = own_mem(malloc(rows * cols * sizeof *before));
            float *half = own_mem(malloc(rows * cols * sizeof *half));
            BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, name, before, rows * cols));
            for (size_t i = 0; i < rows * cols; i++)
                half[i] = 0.5f;
            int set = bpl_layer_set_tensor(layer, name, half, rows * cols);
            int init = bpl_layer_init_tensor(layer, name, BPL_INIT_CONSTANT, -1.5);
            ck_assert_msg(set == BPL_OK && init == BPL_OK, "'%s' of layer %zu: %s", name, l,
                          bpl_last_error_message());
            drop_mem(before);
            drop_mem(half);
        }
    }
}

START_TEST(written_tensors_save_and_load)
{
    const char *rule_name = bpl_rule_builtin_name((size_t)_i);
    const size_t units[] = {H1, H2, OUT};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = own_net(test_make_net(IN, units, acts, 3, 77));
    test_attach(net, rule_name);
    train_steps(net, 2, 5);
    write_every_tensor(net);
    drop_net(save_and_load(net, "written.bpl"));
    drop_net(net);
}
END_TEST

/* The loader accepts optimiser step counts below 2^53 (Adam's bias
 * correction uses the count as a double).  A file one below the limit
 * loads and trains; the count stays below the limit, so the net it saves
 * loads too. */
enum { P_STEPS = 60 };

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

START_TEST(step_count_at_limit)
{
    const uint64_t last = ((uint64_t)1 << 53) - 1;
    char path[512];
    temp(path, "steps.bpl");
    bpl_net *net = small_net(3);
    test_attach(net, "backprop");
    train_steps(net, 1, 8);
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    blob b = read_file(path);
    for (int g = 0; g < 2; g++)
        store_le64(b.data + HEADER + P_STEPS + 8 * g, last);
    fix_checksums(b.data, b.size);
    write_file(path, b.data, b.size);
    drop_mem(b.data);
    bpl_net *loaded = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&loaded, path));
    own_net(loaded);
    train_steps(loaded, 2, 9);
    BPL_OK_OR_FAIL(bpl_net_save(loaded, path));
    b = read_file(path);
    ck_assert_uint_eq(load_le64(b.data + HEADER + P_STEPS), last);
    drop_mem(b.data);
    drop_net(save_and_load(loaded, "steps-again.bpl"));
    drop_net(loaded);
    drop_net(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_io");

    TCase *tc = tcase_create("roundtrip");
    tcase_add_loop_test(tc, roundtrip_builtin_rule, 0, N_RULE_NAMES);
    tcase_add_loop_test(tc, roundtrip_feedback_matrices, 0, N_RULE_NAMES - 1);
    tcase_add_loop_test(tc, resume_training, 0, 4 * N_RULE_NAMES);
    tcase_add_test(tc, roundtrip_without_rule);
    tcase_add_test(tc, saved_file_is_deterministic);
    tcase_add_loop_test(tc, written_tensors_save_and_load, 0, (int)bpl_rule_builtin_count());
    tcase_add_test(tc, step_count_at_limit);
    tcase_add_checked_fixture(tc, NULL, release_owned);
    suite_add_tcase(s, tc);

    tc = tcase_create("user_rule");
    tcase_add_test(tc, user_rule_pending_then_restored);
    tcase_add_test(tc, user_rule_resumes_adam);
    tcase_add_test(tc, user_rule_pending_survives_save);
    tcase_add_test(tc, user_rule_other_name_starts_fresh);
    tcase_add_test(tc, user_rule_replaced_by_builtin);
    tcase_add_checked_fixture(tc, NULL, release_owned);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt");
    tcase_add_test(tc, corrupt_byte_flips);
    tcase_add_test(tc, corrupt_truncated);
    tcase_add_test(tc, corrupt_appended);
    tcase_add_test(tc, corrupt_bad_magic);
    tcase_add_test(tc, newer_format_version);
    tcase_add_test(tc, corrupt_payload_with_valid_checksums);
    tcase_add_test(tc, corrupt_payload_fuzz);
    tcase_add_test(tc, load_io_errors);
    tcase_add_test(tc, null_arguments);
    tcase_add_checked_fixture(tc, NULL, release_owned);
    suite_add_tcase(s, tc);

    tc = tcase_create("atomic_save");
    tcase_add_test(tc, save_over_existing);
    tcase_add_test(tc, save_into_missing_directory);
    tcase_add_test(tc, save_into_read_only_directory);
    tcase_add_test(tc, save_onto_a_directory);
    tcase_add_test(tc, save_fails_part_way_keeps_previous);
    tcase_add_test(tc, save_killed_leaves_named_temporary);
    tcase_add_checked_fixture(tc, NULL, release_owned);
    suite_add_tcase(s, tc);

    tc = tcase_create("special_paths");
    tcase_add_test(tc, save_through_symlinks);
    tcase_add_test(tc, save_symlink_loop);
    tcase_add_test(tc, save_onto_special_files);
    tcase_add_test(tc, load_special_files);
    tcase_add_checked_fixture(tc, NULL, release_owned);
    suite_add_tcase(s, tc);

    return test_run_suite(s);
}
