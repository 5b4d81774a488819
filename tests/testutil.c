/*
 * testutil.c - helpers shared by the Check suites.
 */
#define _GNU_SOURCE
#include "testutil.h"

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
