/*
 * testutil.c - helpers shared by the Check suites.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void test_expect_error(int rc, int status, const char *needle, const char *expr,
                       const char *file, int line)
{
    const char *msg = bpl_last_error_message();
    ck_assert_msg(rc == status, "%s:%d: %s -> %d (%s), expected %d (%s); message: %s", file,
                  line, expr, rc, bpl_strerror(rc), status, bpl_strerror(status), msg);
    ck_assert_msg(msg != NULL && msg[0] != '\0', "%s:%d: %s: empty error message", file,
                  line, expr);
    if (needle)
        ck_assert_msg(strstr(msg, needle) != NULL,
                      "%s:%d: %s: message '%s' does not mention '%s'", file, line, expr,
                      msg, needle);
}

void test_expect_failure(int rc, const char *needle, const char *expr, const char *file,
                         int line)
{
    const char *msg = bpl_last_error_message();
    ck_assert_msg(rc < 0, "%s:%d: %s -> %d, expected a failure", file, line, expr, rc);
    ck_assert_msg(strstr(msg, needle) != NULL, "%s:%d: %s: message '%s' lacks '%s'", file,
                  line, expr, msg, needle);
}

int test_run_suite(Suite *suite)
{
    /* The temporary directory is made here, in the parent: forked test
     * processes do not run exit handlers, the parent removes it. */
    test_temp_path("");
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int has_mnist(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    if (access(path, R_OK) == 0)
        return 1;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    return access(path, R_OK) == 0;
}

const char *test_mnist_dir(void)
{
    static char dir[4096];
    const char *env = getenv("BIOPLAUS_MNIST_DIR");
    if (env && env[0])
        return has_mnist(env) ? env : NULL;
    const char *root = getenv("BPL_SOURCE_ROOT");
    if (!root)
        return NULL;
    snprintf(dir, sizeof dir, "%s/data/mnist", root);
    if (has_mnist(dir))
        return dir;
    snprintf(dir, sizeof dir, "%s/../shared/data/mnist", root);
    return has_mnist(dir) ? dir : NULL;
}

const char *test_require_mnist(void)
{
    const char *dir = test_mnist_dir();
    if (dir)
        return dir;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fprintf(stderr, "MNIST files not found (set BIOPLAUS_MNIST_DIR); required in CI\n");
        exit(EXIT_FAILURE);
    }
    fprintf(stderr, "SKIP: MNIST files not found; set BIOPLAUS_MNIST_DIR or run "
                    "examples/get-mnist.sh\n");
    exit(77);
}

bpl_net *test_make_net(size_t inputs, const size_t *units, const int *activations,
                       size_t n_layers, uint64_t seed)
{
    bpl_net *net = NULL;
    BPL_OK_OR_FAIL(bpl_net_create(&net, inputs, seed));
    for (size_t l = 0; l < n_layers; l++)
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, units[l], activations[l],
                                         BPL_INIT_GLOROT_UNIFORM));
    return net;
}

void test_attach(bpl_net *net, const char *name)
{
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, name));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
}

static uint64_t next(uint64_t *state)
{
    /* splitmix64: tests need reproducible data, not quality randomness */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void test_fill_uniform(float *v, size_t n, float lo, float hi, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)((double)(next(state) >> 11) * 0x1.0p-53);
}

void test_fill_onehot(float *y, size_t rows, size_t classes, uint64_t *state)
{
    memset(y, 0, rows * classes * sizeof *y);
    for (size_t i = 0; i < rows; i++)
        y[i * classes + next(state) % classes] = 1.0f;
}

static char temp_dir[256];
static pid_t temp_dir_owner;

/* Forked test processes inherit this exit handler: only the process that
 * made the directory removes it. */
static void remove_temp_dir(void)
{
    char cmd[300];
    if (temp_dir[0] && getpid() == temp_dir_owner) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", temp_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", temp_dir);
    }
}

const char *test_temp_path(const char *name)
{
    static char path[512];
    if (!temp_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(temp_dir, sizeof temp_dir, "%s/bpltest-XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(temp_dir)) {
            perror("mkdtemp");
            exit(EXIT_FAILURE);
        }
        temp_dir_owner = getpid();
        atexit(remove_temp_dir);
    }
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

struct test_moments test_moments(const float *w, size_t n)
{
    struct test_moments m = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        m.mean += w[i];
        m.max_abs = fmax(m.max_abs, fabs(w[i]));
    }
    m.mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        m.sd += (w[i] - m.mean) * (w[i] - m.mean);
    m.sd = sqrt(m.sd / (double)n);
    return m;
}

bpl_net *test_small_classifier(uint64_t seed)
{
    static const size_t units[] = {5, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    return test_make_net(4, units, acts, 2, seed);
}

bpl_net *test_deep_net(uint64_t seed, float *x, float *y, size_t batch)
{
    static const size_t units[] = {6, 4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    uint64_t s = seed * 3 + 1;
    test_fill_uniform(x, batch * 5, -1, 1, &s);
    test_fill_onehot(y, batch, 3, &s);
    return test_make_net(5, units, acts, 3, seed);
}

float *test_snapshot(bpl_net *net, size_t *n_out)
{
    size_t total = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, bpl_layer_tensor_name(layer, t),
                                                 &rows, &cols, NULL));
            total += rows * cols;
        }
    }
    float *buf = malloc((total ? total : 1) * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    size_t off = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            const char *name = bpl_layer_tensor_name(layer, t);
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, &rows, &cols, NULL));
            BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, name, buf + off, rows * cols));
            off += rows * cols;
        }
    }
    *n_out = total;
    return buf;
}

int test_same_params(bpl_net *net, const float *before, size_t n)
{
    size_t now_n;
    float *now = test_snapshot(net, &now_n);
    int same = now_n == n && memcmp(now, before, n * sizeof *now) == 0;
    free(now);
    return same;
}

void test_get_weight(bpl_net *net, size_t layer, float *dst, size_t len)
{
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, layer), "weight", dst, len));
}

double test_expected_loss(int loss, int out_act, const float *h, const float *y, size_t rows,
                          size_t cols)
{
    double total = 0;
    for (size_t i = 0; i < rows * cols; i++) {
        if (loss == BPL_LOSS_MSE)
            total += 0.5 * ((double)h[i] - y[i]) * ((double)h[i] - y[i]);
        else if (out_act == BPL_ACT_SIGMOID)
            total -= y[i] * log((double)h[i]) + (1.0 - y[i]) * log(1.0 - (double)h[i]);
        else
            total -= y[i] * log((double)h[i]);
    }
    return total / (double)rows;
}

bpl_net *test_diverging_regression(void)
{
    static const size_t units[] = {3};
    static const int acts[] = {BPL_ACT_LINEAR};
    bpl_net *net = test_make_net(4, units, acts, 1, 13);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    test_attach(net, "backprop");
    BPL_OK_OR_FAIL(bpl_rule_set_string(bpl_net_rule(net), "optimizer", "sgd"));
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 1000.0));
    return net;
}

double test_worst_relative_distance(bpl_net *a, bpl_net *b, char *where, size_t where_size)
{
    double worst = -1.0;
    if (where && where_size)
        where[0] = '\0';
    for (size_t l = 0; l < bpl_net_layer_count(a); l++) {
        bpl_layer *la = bpl_net_layer(a, l), *lb = bpl_net_layer(b, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(la); t++) {
            const char *name = bpl_layer_tensor_name(la, t);
            float *va, *vb;
            size_t rows, cols;
            ck_assert_int_eq(bpl_layer_tensor(la, name, &va, &rows, &cols), BPL_OK);
            ck_assert_int_eq(bpl_layer_tensor(lb, name, &vb, NULL, NULL), BPL_OK);
            double diff = 0.0, norm = 0.0;
            for (size_t i = 0; i < rows * cols; i++) {
                diff += ((double)va[i] - vb[i]) * ((double)va[i] - vb[i]);
                norm += (double)vb[i] * vb[i];
            }
            /* An all-zero tensor must match exactly. */
            double distance = diff == 0.0 ? 0.0 : norm == 0.0 ? INFINITY : sqrt(diff / norm);
            if (distance > worst) {
                worst = distance;
                if (where)
                    snprintf(where, where_size, "layer %zu tensor %s", l, name);
            }
        }
    }
    return worst < 0.0 ? 0.0 : worst;
}
