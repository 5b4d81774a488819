/*
 * test_threads.c - different nets train concurrently on different threads.
 *
 * The header promises no global mutable state: each net, with its rule, its
 * generator and its workspace, is independent of every other.  Here jobs of
 * every built-in rule build a net and a dataset, train, evaluate, save and
 * reload, first one job after another and then all jobs at once, one
 * thread each.  Every tensor and every evaluation must come out bit for bit
 * the same both ways: any shared state that one thread writes while another
 * reads shows up as a difference (and, under ThreadSanitizer, as a report).
 * Error messages are per thread, and stay with the thread whose call failed.
 * Conv layers split their work between the library's own threads with the
 * same bits every time, also while other nets train beside them.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { INPUTS = 20, HIDDEN = 16, CLASSES = 4, EXAMPLES = 64, BATCH = 16, EPOCHS = 3 };
enum { JOBS_PER_RULE = 2 };

/* Hyperparameters per rule: segregated dendrites run spiking (every step
 * draws from the net's generator) with short phases to stay fast. */
static const char *const rule_settings[][3] = {
    {"segregated", "mode", "spiking"},
    {"segregated", "phase_steps", "4"},
    {"segregated", "integration_steps", "2"},
    {"segregated", "test_steps", "6"},
    {"segregated", "test_average", "3"},
};

/* One job: what a thread is given, and everything it produced. */
struct job {
    const char *rule;
    uint64_t seed;
    char path[512];              /* where the net is saved and loaded from */
    pthread_barrier_t *start;    /* released together; NULL when run alone */

    int rc;                      /* BPL_OK, or the first failure's status */
    char failure[768];           /* that call and its message */
    float *trained, *loaded;     /* every tensor after training / after loading */
    size_t n_trained, n_loaded;
    double accuracy[2], loss[2]; /* evaluation of the trained and the loaded net */
};

/* Inside a job: no Check assertions (they are not for other threads), the
 * failing call is recorded for the main thread to report. */
#define TRY(call)                                                                   \
    do {                                                                            \
        if ((job->rc = (call)) != BPL_OK) {                                         \
            snprintf(job->failure, sizeof job->failure, "%s: %s", #call,            \
                     bpl_last_error_message());                                     \
            goto done;                                                              \
        }                                                                           \
    } while (0)

static size_t count_floats(bpl_net *net)
{
    size_t total = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            size_t rows = 0, cols = 0;
            bpl_layer_tensor_info(layer, bpl_layer_tensor_name(layer, t), &rows, &cols, NULL);
            total += rows * cols;
        }
    }
    return total;
}

/* Every tensor of every layer, concatenated in layer and tensor order. */
static int snapshot(bpl_net *net, float **out, size_t *n_out)
{
    size_t total = count_floats(net), off = 0;
    float *buf = malloc((total ? total : 1) * sizeof *buf);
    *out = buf;
    *n_out = total;
    if (!buf)
        return bpl_error_set(BPL_ERR_NOMEM, "snapshot: out of memory");
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            const char *name = bpl_layer_tensor_name(layer, t);
            size_t rows = 0, cols = 0;
            int rc = bpl_layer_tensor_info(layer, name, &rows, &cols, NULL);
            if (rc == BPL_OK)
                rc = bpl_layer_get_tensor(layer, name, buf + off, rows * cols);
            if (rc != BPL_OK)
                return rc;
            off += rows * cols;
        }
    }
    return BPL_OK;
}

/* A random classification task of the job's own, from caller arrays. */
static int make_dataset(bpl_dataset **out, uint64_t seed)
{
    float *x = malloc(EXAMPLES * INPUTS * sizeof *x);
    float *y = malloc(EXAMPLES * CLASSES * sizeof *y);
    int rc = bpl_error_set(BPL_ERR_NOMEM, "make_dataset: out of memory");
    if (x && y) {
        test_fill_uniform(x, EXAMPLES * INPUTS, -1.0f, 1.0f, &seed);
        test_fill_onehot(y, EXAMPLES, CLASSES, &seed);
        rc = bpl_dataset_from_f32(out, x, y, EXAMPLES, INPUTS, CLASSES);
    }
    free(x);
    free(y);
    return rc;
}

/* INPUTS-HIDDEN-HIDDEN-CLASSES with the job's rule attached. */
static int make_net(bpl_net **out, const char *rule_name, uint64_t seed)
{
    /* The microcircuit's neurons are logistic whatever is declared: declare
     * them so, as its own tests do. */
    int logistic = strcmp(rule_name, "microcircuit") == 0;
    int hidden = logistic ? BPL_ACT_SIGMOID : BPL_ACT_TANH;
    int output = logistic ? BPL_ACT_SIGMOID : BPL_ACT_SOFTMAX;
    bpl_rule *rule = NULL;
    int rc = bpl_net_create(out, INPUTS, seed);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(*out, HIDDEN, hidden, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(*out, HIDDEN, hidden, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(*out, CLASSES, output, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_rule_create_builtin(&rule, rule_name);
    for (size_t i = 0; rc == BPL_OK && i < sizeof rule_settings / sizeof *rule_settings; i++)
        if (strcmp(rule_settings[i][0], rule_name) == 0)
            rc = bpl_rule_set_string(rule, rule_settings[i][1], rule_settings[i][2]);
    if (rc == BPL_OK)
        rc = bpl_net_set_rule(*out, rule);
    if (rc != BPL_OK)
        bpl_rule_destroy(rule); /* still ours: the net did not take it */
    return rc;
}

static void *run_job(void *arg)
{
    struct job *job = arg;
    bpl_dataset *data = NULL;
    bpl_net *net = NULL, *loaded = NULL;
    if (job->start)
        pthread_barrier_wait(job->start);
    TRY(make_dataset(&data, job->seed));
    TRY(make_net(&net, job->rule, job->seed));
    TRY(bpl_net_fit(net, data, EPOCHS, BATCH, NULL, NULL));
    TRY(bpl_net_evaluate(net, data, &job->accuracy[0], &job->loss[0]));
    TRY(snapshot(net, &job->trained, &job->n_trained));
    TRY(bpl_net_save(net, job->path));
    TRY(bpl_net_load(&loaded, job->path));
    TRY(snapshot(loaded, &job->loaded, &job->n_loaded));
    TRY(bpl_net_evaluate(loaded, data, &job->accuracy[1], &job->loss[1]));
done:
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
    bpl_dataset_destroy(data);
    return NULL;
}

/* ---- running the jobs ----------------------------------------------------- */

/* JOBS_PER_RULE jobs per built-in rule, so that every rule also runs
 * beside itself, each job with a seed of its own.  `run` names the model
 * files so that the two runs do not share them. */
static struct job *make_jobs(size_t n, const char *run)
{
    struct job *jobs = calloc(n, sizeof *jobs);
    ck_assert_ptr_nonnull(jobs);
    for (size_t i = 0; i < n; i++) {
        char name[64];
        jobs[i].rule = bpl_rule_builtin_name(i % bpl_rule_builtin_count());
        jobs[i].seed = 1000 + i;
        snprintf(name, sizeof name, "%s-%zu-%s.bpl", run, i, jobs[i].rule);
        /* test_temp_path returns a static buffer: copy it before any thread runs */
        snprintf(jobs[i].path, sizeof jobs[i].path, "%s", test_temp_path(name));
    }
    return jobs;
}

static void free_jobs(struct job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(jobs[i].trained);
        free(jobs[i].loaded);
    }
    free(jobs);
}

static void run_one_after_another(struct job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        run_job(&jobs[i]);
}

/* All jobs at once: the barrier holds every thread until the last one has
 * started, so that the jobs overlap rather than run in creation order. */
static void run_together(struct job *jobs, size_t n)
{
    pthread_t *threads = calloc(n, sizeof *threads);
    pthread_barrier_t start;
    ck_assert_ptr_nonnull(threads);
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (size_t i = 0; i < n; i++) {
        jobs[i].start = &start;
        ck_assert_int_eq(pthread_create(&threads[i], NULL, run_job, &jobs[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    free(threads);
}

static void assert_ok(const struct job *job, const char *run)
{
    ck_assert_msg(job->rc == BPL_OK, "%s, %s: %d (%s) from %s", job->rule, run, job->rc,
                  bpl_strerror(job->rc), job->failure);
}

static int same_floats(const float *a, size_t na, const float *b, size_t nb)
{
    return na == nb && memcmp(a, b, na * sizeof *a) == 0;
}

/* Bitwise: a concurrent run must not change a single rounding. */
static void assert_same(const struct job *alone, const struct job *together)
{
    ck_assert_msg(same_floats(alone->trained, alone->n_trained, together->trained,
                              together->n_trained),
                  "%s: trained tensors differ between the runs", alone->rule);
    ck_assert_msg(same_floats(alone->loaded, alone->n_loaded, together->loaded,
                              together->n_loaded),
                  "%s: loaded tensors differ between the runs", alone->rule);
    ck_assert_msg(memcmp(alone->accuracy, together->accuracy, sizeof alone->accuracy) == 0 &&
                      memcmp(alone->loss, together->loss, sizeof alone->loss) == 0,
                  "%s: evaluations differ: accuracy %.17g/%.17g vs %.17g/%.17g, "
                  "loss %.17g/%.17g vs %.17g/%.17g",
                  alone->rule, alone->accuracy[0], alone->accuracy[1], together->accuracy[0],
                  together->accuracy[1], alone->loss[0], alone->loss[1], together->loss[0],
                  together->loss[1]);
}

START_TEST(test_concurrent_training_matches_sequential)
{
    /* One BLAS thread: OpenBLAS and BLIS keep a process-wide thread pool of
     * their own, outside this library; what is under test is the library's
     * state with several callers, not how a BLAS shares its pool. */
    BPL_OK_OR_FAIL(bpl_set_thread_count(1));
    size_t n = JOBS_PER_RULE * bpl_rule_builtin_count();
    struct job *alone = make_jobs(n, "alone"), *together = make_jobs(n, "together");

    run_one_after_another(alone, n);
    for (size_t i = 0; i < n; i++) {
        assert_ok(&alone[i], "one after another");
        ck_assert_msg(same_floats(alone[i].trained, alone[i].n_trained, alone[i].loaded,
                                  alone[i].n_loaded),
                      "%s: the loaded net's tensors differ from the saved net's",
                      alone[i].rule);
    }
    run_together(together, n);
    for (size_t i = 0; i < n; i++) {
        assert_ok(&together[i], "together");
        assert_same(&alone[i], &together[i]);
    }
    free_jobs(alone, n);
    free_jobs(together, n);
}
END_TEST

/* ---- the library's own threads --------------------------------------------- */

enum { CONV_SIDE = 8, CONV_STEPS = 6, CONV_JOBS = 4, CONV_BATCH = 16 };

struct conv_job {
    uint64_t seed;
    pthread_barrier_t *start;
    int rc;
    char failure[768];
    float *trained;
    size_t n_trained;
};

/* A conv net over a 1 x 8 x 8 input trained by backprop on a fixed batch:
 * its conv layers cut their work into tasks on the library's threads. */
static void *run_conv_job(void *arg)
{
    struct conv_job *job = arg;
    const size_t chw[] = {1, CONV_SIDE, CONV_SIDE}, inputs = CONV_SIDE * CONV_SIDE;
    float x[CONV_BATCH * CONV_SIDE * CONV_SIDE], y[CONV_BATCH * CLASSES];
    uint64_t seed = job->seed;
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    if (job->start)
        pthread_barrier_wait(job->start);
    test_fill_uniform(x, CONV_BATCH * inputs, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, CONV_BATCH, CLASSES, &seed);
    TRY(bpl_net_create(&net, inputs, job->seed));
    TRY(bpl_net_set_input_shape(net, chw, 3));
    TRY(bpl_net_add_conv2d(net, 4, 3, 3, 1, 1, BPL_ACT_RELU, BPL_INIT_HE_UNIFORM));
    TRY(bpl_net_add_maxpool2d(net, 2, 0)); /* 4x4x4: pooling splits its batch too */
    TRY(bpl_net_add_conv2d(net, 6, 3, 3, 1, 0, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    TRY(bpl_net_add_dense(net, CLASSES, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    TRY(bpl_rule_create_builtin(&rule, "backprop"));
    TRY(bpl_net_set_rule(net, rule));
    rule = NULL;
    for (int step = 0; step < CONV_STEPS; step++)
        TRY(bpl_net_train_batch(net, x, y, CONV_BATCH, NULL));
    TRY(snapshot(net, &job->trained, &job->n_trained));
done:
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
    return NULL;
}

/* The jobs one after another, or all at once (released together). */
static void run_conv_jobs(struct conv_job *jobs, int together)
{
    pthread_t threads[CONV_JOBS];
    pthread_barrier_t start;
    if (together)
        ck_assert_int_eq(pthread_barrier_init(&start, NULL, CONV_JOBS), 0);
    for (size_t i = 0; i < CONV_JOBS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].seed = 100 + i;
        jobs[i].start = together ? &start : NULL;
        if (together)
            ck_assert_int_eq(pthread_create(&threads[i], NULL, run_conv_job, &jobs[i]), 0);
        else
            run_conv_job(&jobs[i]);
    }
    for (size_t i = 0; together && i < CONV_JOBS; i++)
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
    if (together)
        pthread_barrier_destroy(&start);
    for (size_t i = 0; i < CONV_JOBS; i++)
        ck_assert_msg(jobs[i].rc == BPL_OK, "conv job %zu: %s", i, jobs[i].failure);
}

/* With two threads, conv and pooling layers split every batch between the
 * library's threads: the same bits every time, whether the workers are free or
 * another net holds them (its tasks then run on its own thread); and, the
 * slices' sums added in another order, the same training as one thread to
 * rounding. */
START_TEST(test_conv_on_library_threads)
{
    struct conv_job one[CONV_JOBS], alone[CONV_JOBS], again[CONV_JOBS], together[CONV_JOBS];
    BPL_OK_OR_FAIL(bpl_set_thread_count(1));
    run_conv_jobs(one, 0);
    BPL_OK_OR_FAIL(bpl_set_thread_count(2));
    run_conv_jobs(alone, 0);
    run_conv_jobs(again, 0);
    run_conv_jobs(together, 1);
    BPL_OK_OR_FAIL(bpl_set_thread_count(1));
    for (size_t i = 0; i < CONV_JOBS; i++) {
        ck_assert(same_floats(alone[i].trained, alone[i].n_trained, again[i].trained,
                              again[i].n_trained));
        ck_assert_msg(same_floats(alone[i].trained, alone[i].n_trained, together[i].trained,
                                  together[i].n_trained),
                      "conv job %zu: tensors differ when nets share the threads", i);
        ck_assert_uint_eq(one[i].n_trained, alone[i].n_trained);
        double worst = 0.0;
        for (size_t k = 0; k < one[i].n_trained; k++)
            worst = fmax(worst, fabs(one[i].trained[k] - alone[i].trained[k]));
        ck_assert_msg(worst <= 1e-4, "conv job %zu: 1 and 2 threads differ by %g", i, worst);
        free(one[i].trained);
        free(alone[i].trained);
        free(again[i].trained);
        free(together[i].trained);
    }
}
END_TEST

/* ---- error messages --------------------------------------------------------- */

enum { MESSENGERS = 8, ROUNDS = 500 };

/* Calls that fail with a message naming the call and quoting `name`. */
static int unknown_rule(const char *name)
{
    bpl_rule *rule;
    return bpl_rule_create_builtin(&rule, name);
}

static int unknown_activation(const char *name)
{
    int value;
    return bpl_activation_from_name(name, &value);
}

static int unknown_init(const char *name)
{
    int value;
    return bpl_init_from_name(name, &value);
}

static int unknown_loss(const char *name)
{
    int value;
    return bpl_loss_from_name(name, &value);
}

static int unknown_optimizer(const char *name)
{
    int value;
    return bpl_optimizer_from_name(name, &value);
}

static const struct provocation {
    const char *call;
    int (*provoke)(const char *name);
} provocations[] = {
    {"bpl_rule_create_builtin", unknown_rule},
    {"bpl_activation_from_name", unknown_activation},
    {"bpl_init_from_name", unknown_init},
    {"bpl_loss_from_name", unknown_loss},
    {"bpl_optimizer_from_name", unknown_optimizer},
};

struct messenger {
    size_t index;
    pthread_barrier_t *start;
    int wrong;           /* rounds whose message was not this thread's own */
    char example[600];   /* the first such message */
};

/* Fail with a call and a name of this thread's own, let the others run, and
 * read the message back. */
static void *provoke_errors(void *arg)
{
    struct messenger *m = arg;
    const struct provocation *p = &provocations[m->index % (sizeof provocations /
                                                             sizeof *provocations)];
    char name[32], quoted[40];
    snprintf(name, sizeof name, "thread-%zu", m->index);
    snprintf(quoted, sizeof quoted, "'%s'", name);
    pthread_barrier_wait(m->start);
    for (int round = 0; round < ROUNDS; round++) {
        int rc = p->provoke(name);
        sched_yield(); /* let other threads fail in between */
        const char *msg = bpl_last_error_message();
        if (rc == BPL_OK || !strstr(msg, p->call) || !strstr(msg, quoted)) {
            if (m->wrong++ == 0)
                snprintf(m->example, sizeof m->example, "%s(\"%s\") -> %d: '%s'", p->call,
                         name, rc, msg);
        }
    }
    return NULL;
}

START_TEST(test_error_messages_stay_with_their_thread)
{
    struct messenger messengers[MESSENGERS] = {{0}};
    pthread_t threads[MESSENGERS];
    pthread_barrier_t start;
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, MESSENGERS), 0);
    for (size_t i = 0; i < MESSENGERS; i++) {
        messengers[i].index = i;
        messengers[i].start = &start;
        ck_assert_int_eq(pthread_create(&threads[i], NULL, provoke_errors, &messengers[i]), 0);
    }
    for (size_t i = 0; i < MESSENGERS; i++)
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (size_t i = 0; i < MESSENGERS; i++)
        ck_assert_msg(messengers[i].wrong == 0, "thread %zu: %d of %d messages not its own, "
                      "first: %s", i, messengers[i].wrong, ROUNDS, messengers[i].example);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("concurrency");
    tcase_add_test(tc, test_concurrent_training_matches_sequential);
    tcase_add_test(tc, test_error_messages_stay_with_their_thread);
    tcase_add_test(tc, test_conv_on_library_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(threads_suite());
}
