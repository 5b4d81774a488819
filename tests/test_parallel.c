/*
 * test_parallel.c - the data-parallel transport interface of
 * bioplaus_rule.h, without a transport library: bpl_net_set_parallel,
 * bpl_net_gradient_size, bpl_net_state_hash and the per-example draws
 * (bpl_net_example_random_*).
 *
 * Two threads stand in for two processes.  Each trains its own copy of one
 * net, and a reduction over shared memory does what a transport does
 * between processes, as libbioplaus-mpi does it: every side's block times
 * its rows, summed, divided by the rows of both; a failure on either side
 * returned on both, naming the side.  The two sides must stay in step bit
 * for bit, and take the steps one process takes on the whole batch, up to
 * the order of float additions.
 */
#include "testutil.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { INPUTS = 6, CLASSES = 3, SIDES = 2 };
/* 9 examples in batches of 4: steps of 4, 4 and 1 rows, so the last step
 * leaves side 0 with an empty share (it trains one row, weighed 0). */
enum { EXAMPLES = 9, BATCH = 4, EPOCHS = 2, FIT_STEPS = 6 };
/* bpl_net_train_batch with shares of different sizes on the two sides. */
enum { ROWS_0 = 3, ROWS_1 = 5, BATCH_STEPS = 3 };
enum { MAX_CALLS = 16, MEETING_SECONDS = 120 };

/* ---- nets and data ---------------------------------------------------------- */

struct setup {
    const char *rule;
    const char *settings[12]; /* key, value pairs, NULL-ended */
    int regression;           /* the net of make_regression, not the classifier */
    int per_example;          /* the rule draws per example (bpl_net_example_random_*) */
};

/* 6-3 linear with the squared error and every weight 1: a row of FLT_MAX
 * gives an infinite output, so that a step on it fails inside the step,
 * before its reduction (the inputs themselves are finite). */
static bpl_net *make_regression(uint64_t seed)
{
    static const size_t units[] = {CLASSES};
    static const int acts[] = {BPL_ACT_LINEAR};
    bpl_net *net = test_make_net(INPUTS, units, acts, 1, seed);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    float ones[CLASSES * INPUTS];
    for (size_t i = 0; i < CLASSES * INPUTS; i++)
        ones[i] = 1.0f;
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 0), "weight", ones,
                                        CLASSES * INPUTS));
    return net;
}

/* 6-8(tanh)-5(tanh)-3(softmax), or the regression, with the rule's
 * settings. */
static bpl_net *make_net(const struct setup *s, uint64_t seed)
{
    static const size_t units[] = {8, 5, CLASSES};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = s->regression ? make_regression(seed)
                                 : test_make_net(INPUTS, units, acts, 3, seed);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, s->rule));
    for (const char *const *kv = s->settings; kv[0]; kv += 2)
        BPL_OK_OR_FAIL(bpl_rule_set_string(rule, kv[0], kv[1]));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    return net;
}

static const struct setup plain_sgd = {"backprop", {"optimizer", "sgd", "lr", "0.1", NULL}, 0,
                                       0};
static const struct setup regression = {"backprop", {"optimizer", "sgd", "lr", "0.01", NULL},
                                        1, 0};

static void make_rows(float *x, float *y, size_t n, uint64_t seed)
{
    test_fill_uniform(x, n * INPUTS, -1, 1, &seed);
    test_fill_onehot(y, n, CLASSES, &seed);
}

static void fill(float *v, size_t n, float value)
{
    for (size_t i = 0; i < n; i++)
        v[i] = value;
}

static bpl_dataset *make_dataset(void)
{
    float x[EXAMPLES * INPUTS], y[EXAMPLES * CLASSES];
    make_rows(x, y, EXAMPLES, 31);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, EXAMPLES, INPUTS, CLASSES));
    return ds;
}

static uint64_t hash_of(const bpl_net *net)
{
    uint64_t h;
    BPL_OK_OR_FAIL(bpl_net_state_hash(net, &h));
    return h;
}

/* Bit for bit the same tensors and the same hash. */
static void assert_in_step(bpl_net *a, bpl_net *b, const char *what)
{
    ck_assert_msg(hash_of(a) == hash_of(b), "%s: the state hashes differ", what);
    size_t n;
    float *pa = test_snapshot(a, &n);
    ck_assert_msg(test_same_params(b, pa, n), "%s: the tensors differ", what);
    free(pa);
}

/* Every tensor of `a` within tol of `b`'s, relative to its norm. */
static void assert_close(bpl_net *a, bpl_net *b, double tol, const char *what)
{
    char where[64];
    double distance = test_worst_relative_distance(a, b, where, sizeof where);
    ck_assert_msg(distance <= tol, "%s: %s differs by %g of its norm", what, where, distance);
}

/* ---- the two-sided transport ------------------------------------------------ */

/* Where the two threads wait for each other.  A side that never comes (a
 * step that skipped its reduction) fails the test instead of hanging it. */
struct meeting {
    pthread_mutex_t lock;
    pthread_cond_t all_here;
    unsigned here, round;
};

static int meet(struct meeting *m)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += MEETING_SECONDS;
    pthread_mutex_lock(&m->lock);
    unsigned round = m->round;
    if (++m->here == SIDES) {
        m->here = 0;
        m->round++;
        pthread_cond_broadcast(&m->all_here);
    }
    int rc = 0;
    while (m->round == round && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&m->all_here, &m->lock, &deadline);
    int met = m->round != round;
    pthread_mutex_unlock(&m->lock);
    return met;
}

/* What the sides share: each one's contribution to the round. */
struct link {
    struct meeting meeting;
    size_t n;               /* the gradient block's size, the same on both sides */
    float *weighted[SIDES]; /* each side's block times its rows */
    double rows[SIDES];
    int status[SIDES];
    char message[SIDES][256];
};

/* One side: the reduction's user_data, and what the reduction was given. */
struct side {
    struct link *link;
    size_t rank;
    size_t calls;
    double rows_seen[MAX_CALLS];
    int status_seen[MAX_CALLS];
};

/* This side's contribution: its mean gradients times its rows, refused
 * when not finite (the sum would hide which side they came from). */
static int weigh(struct link *link, size_t r, const float *block, double rows)
{
    float *w = link->weighted[r];
    for (size_t i = 0; i < link->n; i++) {
        w[i] = block[i] * (float)rows;
        if (!isfinite(w[i]))
            return bpl_error_set(BPL_ERR_NUMERIC, "this side's gradients are not finite");
    }
    return BPL_OK;
}

/* Once both sides are in: the first failure, on the side that did not
 * fail; otherwise the rows-weighted mean, summed in rank order so that both
 * sides get the same bits. */
static int combine(const struct link *link, size_t r, float *block)
{
    for (size_t other = 0; other < SIDES; other++) {
        if (link->status[other] == BPL_OK)
            continue;
        if (link->status[r] != BPL_OK)
            return link->status[r];
        char message[320];
        snprintf(message, sizeof message, "process %zu of %d failed: %s", other, SIDES,
                 link->message[other]);
        return bpl_error_set(link->status[other], message);
    }
    double total = link->rows[0] + link->rows[1];
    for (size_t i = 0; total > 0.0 && i < link->n; i++)
        block[i] = (float)((link->weighted[0][i] + link->weighted[1][i]) / total);
    return BPL_OK;
}

static int two_sided_reduce(void *user_data, float *block, size_t n, double rows, int status)
{
    struct side *side = user_data;
    struct link *link = side->link;
    size_t r = side->rank;
    if (side->calls < MAX_CALLS) {
        side->rows_seen[side->calls] = rows;
        side->status_seen[side->calls] = status;
    }
    side->calls++;
    if (status == BPL_OK && n != link->n)
        status = bpl_error_set(BPL_ERR_STATE, "the gradient block changed size");
    if (status == BPL_OK)
        status = weigh(link, r, block, rows);
    link->rows[r] = rows;
    link->status[r] = status;
    snprintf(link->message[r], sizeof link->message[r], "%s",
             status != BPL_OK ? bpl_last_error_message() : "");
    if (!meet(&link->meeting))
        return bpl_error_set(BPL_ERR_INTERNAL, "the other side never reached its reduction");
    int rc = combine(link, r, block);
    /* Neither side writes its next contribution before both have read. */
    if (!meet(&link->meeting))
        return bpl_error_set(BPL_ERR_INTERNAL, "the other side never left the reduction");
    return rc;
}

/* Two identical nets, each the given side of one transport. */
struct pair {
    struct link link;
    struct side side[SIDES];
    bpl_net *net[SIDES];
};

static void pair_open(struct pair *p, const struct setup *s, uint64_t seed,
                      uint64_t example_seed_0, uint64_t example_seed_1)
{
    const uint64_t example_seed[SIDES] = {example_seed_0, example_seed_1};
    memset(p, 0, sizeof *p);
    ck_assert_int_eq(pthread_mutex_init(&p->link.meeting.lock, NULL), 0);
    ck_assert_int_eq(pthread_cond_init(&p->link.meeting.all_here, NULL), 0);
    for (size_t r = 0; r < SIDES; r++)
        p->net[r] = make_net(s, seed);
    BPL_OK_OR_FAIL(bpl_net_gradient_size(p->net[0], &p->link.n));
    for (size_t r = 0; r < SIDES; r++) {
        p->link.weighted[r] = malloc(p->link.n * sizeof(float));
        ck_assert_ptr_nonnull(p->link.weighted[r]);
        p->side[r].link = &p->link;
        p->side[r].rank = r;
        BPL_OK_OR_FAIL(bpl_net_set_parallel(p->net[r], r, SIDES, two_sided_reduce,
                                            &p->side[r], example_seed[r]));
    }
}

static void pair_close(struct pair *p)
{
    for (size_t r = 0; r < SIDES; r++) {
        bpl_net_destroy(p->net[r]);
        free(p->link.weighted[r]);
    }
    pthread_cond_destroy(&p->link.meeting.all_here);
    pthread_mutex_destroy(&p->link.meeting.lock);
}

/* What one side's thread does: a fit over `ds`, or `steps` training steps
 * on its own rows.  No Check assertions here (they are for the main
 * thread): the status and the message are kept for it. */
struct job {
    bpl_net *net;
    const bpl_dataset *ds;
    const float *x, *y;
    size_t rows, steps;
    int rc;
    char message[512];
};

static void *run_job(void *arg)
{
    struct job *job = arg;
    job->rc = BPL_OK;
    if (job->ds)
        job->rc = bpl_net_fit(job->net, job->ds, EPOCHS, BATCH, NULL, NULL);
    for (size_t s = 0; !job->ds && job->rc == BPL_OK && s < job->steps; s++)
        job->rc = bpl_net_train_batch(job->net, job->x, job->y, job->rows, NULL);
    snprintf(job->message, sizeof job->message, "%s", bpl_last_error_message());
    return NULL;
}

static void run_sides(struct job job[SIDES])
{
    pthread_t thread[SIDES];
    for (size_t r = 0; r < SIDES; r++)
        ck_assert_int_eq(pthread_create(&thread[r], NULL, run_job, &job[r]), 0);
    for (size_t r = 0; r < SIDES; r++)
        ck_assert_int_eq(pthread_join(thread[r], NULL), 0);
}

static void assert_jobs_ok(const struct job job[SIDES], const char *what)
{
    for (size_t r = 0; r < SIDES; r++)
        ck_assert_msg(job[r].rc == BPL_OK, "%s: side %zu -> %d: %s", what, r, job[r].rc,
                      job[r].message);
}

/* Both sides train `steps` steps, side 0 on rows [0, ROWS_0) of x and y,
 * side 1 on the ROWS_1 rows after them. */
static void train_sides(struct pair *p, const float *x, const float *y, size_t steps)
{
    struct job job[SIDES] = {
        {p->net[0], NULL, x, y, ROWS_0, steps, 0, ""},
        {p->net[1], NULL, x + ROWS_0 * INPUTS, y + ROWS_0 * CLASSES, ROWS_1, steps, 0, ""},
    };
    run_sides(job);
    assert_jobs_ok(job, "train_sides");
}

/* ---- arguments -------------------------------------------------------------- */

static int keep_block(void *user_data, float *block, size_t n, double rows, int status)
{
    (void)user_data, (void)block, (void)n, (void)rows;
    return status;
}

/* Errors name the function, and what was wrong. */
static void expect_set_parallel_error(int rc, const char *detail)
{
    BPL_EXPECT_ERROR(rc, BPL_ERR_INVALID_ARG, "bpl_net_set_parallel");
    ck_assert_msg(strstr(bpl_last_error_message(), detail) != NULL, "message '%s' lacks '%s'",
                  bpl_last_error_message(), detail);
}

START_TEST(set_parallel_arguments)
{
    bpl_net *net = make_net(&plain_sgd, 3);
    expect_set_parallel_error(bpl_net_set_parallel(NULL, 0, 1, NULL, NULL, 0),
                              "invalid argument");
    expect_set_parallel_error(bpl_net_set_parallel(net, 0, 0, keep_block, NULL, 0),
                              "process 0 of 0");
    expect_set_parallel_error(bpl_net_set_parallel(net, 2, 2, keep_block, NULL, 0),
                              "process 2 of 2");
    expect_set_parallel_error(bpl_net_set_parallel(net, 5, 2, keep_block, NULL, 0),
                              "process 5 of 2");
    expect_set_parallel_error(bpl_net_set_parallel(net, 0, 2, NULL, NULL, 0),
                              "reduction function");
    expect_set_parallel_error(bpl_net_set_parallel(net, 1, 3, NULL, NULL, 0),
                              "reduction function");
    /* one process, with or without a transport of its own */
    BPL_OK_OR_FAIL(bpl_net_set_parallel(net, 0, 1, keep_block, NULL, 9));
    BPL_OK_OR_FAIL(bpl_net_set_parallel(net, 0, 1, NULL, NULL, 0));
    BPL_OK_OR_FAIL(bpl_net_set_parallel(net, 2, 3, keep_block, NULL, 9));
    bpl_net_destroy(net);
}
END_TEST

START_TEST(gradient_size_arguments)
{
    bpl_net *net = make_net(&plain_sgd, 3);
    size_t n = 7;
    BPL_EXPECT_ERROR(bpl_net_gradient_size(NULL, &n), BPL_ERR_INVALID_ARG,
                     "bpl_net_gradient_size");
    BPL_EXPECT_ERROR(bpl_net_gradient_size(net, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_gradient_size");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(state_hash_arguments)
{
    bpl_net *net = make_net(&plain_sgd, 3);
    uint64_t h = 0;
    BPL_EXPECT_ERROR(bpl_net_state_hash(NULL, &h), BPL_ERR_INVALID_ARG, "bpl_net_state_hash");
    BPL_EXPECT_ERROR(bpl_net_state_hash(net, NULL), BPL_ERR_INVALID_ARG, "bpl_net_state_hash");
    bpl_net_destroy(net);
}
END_TEST

/* A refused draw writes nothing and draws nothing: the net's generator
 * (in the hash) is where it was. */
static void expect_range(bpl_net *net, int normal, double a, double b, const char *name)
{
    float dst[3] = {-7.0f, -7.0f, -7.0f};
    uint64_t before = hash_of(net);
    int rc = normal ? bpl_net_example_random_normal(net, dst, 3, a, b)
                    : bpl_net_example_random_uniform(net, dst, 3, a, b);
    test_expect_error(rc, BPL_ERR_RANGE, name, name, __FILE__, __LINE__);
    for (size_t i = 0; i < 3; i++)
        ck_assert_msg(dst[i] == -7.0f, "%s (%g, %g) wrote dst[%zu]", name, a, b, i);
    ck_assert_msg(hash_of(net) == before, "%s (%g, %g) drew from the generator", name, a, b);
}

START_TEST(example_random_arguments)
{
    static const char uniform[] = "bpl_net_example_random_uniform";
    static const char normal[] = "bpl_net_example_random_normal";
    bpl_net *net = make_net(&plain_sgd, 3);
    float dst[3];
    BPL_EXPECT_ERROR(bpl_net_example_random_uniform(NULL, dst, 3, 0, 1), BPL_ERR_INVALID_ARG,
                     uniform);
    BPL_EXPECT_ERROR(bpl_net_example_random_normal(NULL, dst, 3, 0, 1), BPL_ERR_INVALID_ARG,
                     normal);
    BPL_EXPECT_ERROR(bpl_net_example_random_uniform(net, NULL, 3, 0, 1), BPL_ERR_INVALID_ARG,
                     uniform);
    BPL_EXPECT_ERROR(bpl_net_example_random_normal(net, NULL, 3, 0, 1), BPL_ERR_INVALID_ARG,
                     normal);
    /* no values: nothing to write to, nothing drawn */
    uint64_t before = hash_of(net);
    BPL_OK_OR_FAIL(bpl_net_example_random_uniform(net, NULL, 0, 0, 1));
    BPL_OK_OR_FAIL(bpl_net_example_random_normal(net, NULL, 0, 0, 1));
    ck_assert(hash_of(net) == before);

    expect_range(net, 0, 1.0, 0.0, uniform);
    expect_range(net, 0, NAN, 1.0, uniform);
    expect_range(net, 0, 0.0, INFINITY, uniform);
    expect_range(net, 0, -1e39, 0.0, uniform);
    expect_range(net, 0, -FLT_MAX, FLT_MAX, uniform); /* hi - lo is not a float */
    expect_range(net, 1, 0.0, -1.0, normal);
    expect_range(net, 1, 0.0, NAN, normal);
    expect_range(net, 1, NAN, 1.0, normal);
    expect_range(net, 1, FLT_MAX, 1e36, normal); /* |mean| + 5.8 stddev */

    /* the edges of what is accepted */
    BPL_OK_OR_FAIL(bpl_net_example_random_uniform(net, dst, 3, 2.5, 2.5));
    for (size_t i = 0; i < 3; i++)
        ck_assert_float_eq(dst[i], 2.5f);
    BPL_OK_OR_FAIL(bpl_net_example_random_normal(net, dst, 3, -1.5, 0.0));
    for (size_t i = 0; i < 3; i++)
        ck_assert_float_eq(dst[i], -1.5f);
    bpl_net_destroy(net);
}
END_TEST

/* ---- re-entry --------------------------------------------------------------- */

struct reentry {
    bpl_net *net;
    int set_rc, size_rc, hash_rc;
};

/* The transport cannot be changed, nor the block laid out again, while the
 * net runs a callback or a step. */
static void try_reentry(struct reentry *r)
{
    size_t n;
    uint64_t h;
    r->set_rc = bpl_net_set_parallel(r->net, 0, 1, NULL, NULL, 0);
    r->size_rc = bpl_net_gradient_size(r->net, &n);
    r->hash_rc = bpl_net_state_hash(r->net, &h);
}

static int reentry_from_progress(int event, size_t epoch, size_t step, size_t steps,
                                 double loss, void *user_data)
{
    (void)event, (void)epoch, (void)step, (void)steps, (void)loss;
    try_reentry(user_data);
    return 1;
}

static int reentry_from_reduce(void *user_data, float *block, size_t n, double rows,
                               int status)
{
    (void)block, (void)n, (void)rows;
    try_reentry(user_data);
    return status;
}

START_TEST(no_reentry_from_callbacks)
{
    bpl_dataset *ds = make_dataset();
    bpl_net *net = make_net(&plain_sgd, 3);
    struct reentry r = {net, BPL_OK, BPL_OK, BPL_ERR_INTERNAL};
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 1, BATCH, reentry_from_progress, &r));
    ck_assert_int_eq(r.set_rc, BPL_ERR_STATE);
    ck_assert_int_eq(r.size_rc, BPL_ERR_STATE);
    ck_assert_int_eq(r.hash_rc, BPL_OK); /* a read, allowed anywhere */

    r = (struct reentry){net, BPL_OK, BPL_OK, BPL_ERR_INTERNAL};
    BPL_OK_OR_FAIL(bpl_net_set_parallel(net, 0, 1, reentry_from_reduce, &r, 1));
    float x[BATCH * INPUTS], y[BATCH * CLASSES];
    make_rows(x, y, BATCH, 5);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, BATCH, NULL));
    ck_assert_int_eq(r.set_rc, BPL_ERR_STATE);
    ck_assert_int_eq(r.size_rc, BPL_ERR_STATE);
    ck_assert_int_eq(r.hash_rc, BPL_OK);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

/* ---- the gradient block and the hash ---------------------------------------- */

/* The floats of every tensor the optimisers train (BPL_GROUP_NONE is not). */
static size_t trained_floats(bpl_net *net)
{
    size_t total = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            size_t rows, cols;
            int group;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, bpl_layer_tensor_name(layer, t), &rows,
                                                 &cols, &group));
            if (group != BPL_GROUP_NONE)
                total += rows * cols;
        }
    }
    return total;
}

static const struct setup block_rules[] = {
    {"backprop", {NULL}, 0, 0}, {"fa", {NULL}, 0, 0}, {"dtp", {NULL}, 0, 1},
    {"segregated", {NULL}, 0, 0},
};

START_TEST(gradient_size_is_the_trained_tensors)
{
    static const size_t units[] = {8, 5, CLASSES};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *bare = test_make_net(INPUTS, units, acts, 3, 3);
    size_t n = 7;
    BPL_OK_OR_FAIL(bpl_net_gradient_size(bare, &n));
    ck_assert_uint_eq(n, 0); /* no rule yet */
    bpl_net_destroy(bare);

    bpl_net *net = make_net(&block_rules[_i], 3);
    BPL_OK_OR_FAIL(bpl_net_gradient_size(net, &n));
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(n, trained_floats(net));
    bpl_net_destroy(net);
}
END_TEST

START_TEST(state_hash_follows_the_state)
{
    bpl_net *a = make_net(&plain_sgd, 3), *b = make_net(&plain_sgd, 3);
    bpl_net *other = make_net(&plain_sgd, 4);
    uint64_t h = hash_of(a);
    ck_assert(hash_of(a) == h); /* a read: asking again changes nothing */
    ck_assert(hash_of(b) == h);
    ck_assert(hash_of(other) != h);

    /* the tensors */
    float x[BATCH * INPUTS], y[BATCH * CLASSES], out[BATCH * CLASSES];
    make_rows(x, y, BATCH, 5);
    BPL_OK_OR_FAIL(bpl_net_predict(a, x, BATCH, out, BATCH * CLASSES));
    ck_assert(hash_of(a) == h);
    BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, BATCH, NULL));
    ck_assert(hash_of(a) != h);
    BPL_OK_OR_FAIL(bpl_net_train_batch(b, x, y, BATCH, NULL));
    ck_assert(hash_of(a) == hash_of(b));

    /* the hyperparameters */
    h = hash_of(b);
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(b), "lr", 0.05));
    ck_assert(hash_of(b) != h);
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(b), "lr", 0.1));
    ck_assert(hash_of(b) == h);

    /* the generator */
    float draw[2];
    BPL_OK_OR_FAIL(bpl_net_random_uniform(b, draw, 2, 0, 1));
    ck_assert(hash_of(b) != h);
    bpl_net_destroy(a);
    bpl_net_destroy(b);
    bpl_net_destroy(other);
}
END_TEST

/* ---- per-example draws ------------------------------------------------------ */

enum { DRAWS = 64 };

static void draw_both(bpl_net *net, float *u, float *z)
{
    BPL_OK_OR_FAIL(bpl_net_example_random_uniform(net, u, DRAWS, -2.0, 3.0));
    BPL_OK_OR_FAIL(bpl_net_example_random_normal(net, z, DRAWS, 1.0, 0.5));
}

/* On one process the per-example draws are the net's generator's: the
 * same as bpl_net_random_* of a twin, reproducible from the seed, and they
 * move the generator on. */
START_TEST(one_process_draws_from_the_net)
{
    bpl_net *a = make_net(&plain_sgd, 3), *b = make_net(&plain_sgd, 3);
    bpl_net *twin = make_net(&plain_sgd, 3), *other = make_net(&plain_sgd, 4);
    /* a transport that is gone leaves the net's generator in charge */
    BPL_OK_OR_FAIL(bpl_net_set_parallel(b, 0, 1, keep_block, NULL, 5));
    BPL_OK_OR_FAIL(bpl_net_set_parallel(b, 0, 1, NULL, NULL, 0));
    float ua[DRAWS], za[DRAWS], ub[DRAWS], zb[DRAWS], ut[DRAWS], zt[DRAWS], uo[DRAWS],
        zo[DRAWS];
    uint64_t before = hash_of(a);
    draw_both(a, ua, za);
    ck_assert(hash_of(a) != before);
    draw_both(b, ub, zb);
    draw_both(other, uo, zo);
    BPL_OK_OR_FAIL(bpl_net_random_uniform(twin, ut, DRAWS, -2.0, 3.0));
    BPL_OK_OR_FAIL(bpl_net_random_normal(twin, zt, DRAWS, 1.0, 0.5));
    ck_assert_mem_eq(ua, ub, sizeof ua);
    ck_assert_mem_eq(za, zb, sizeof za);
    ck_assert_mem_eq(ua, ut, sizeof ua);
    ck_assert_mem_eq(za, zt, sizeof za);
    ck_assert(memcmp(ua, uo, sizeof ua) != 0);
    ck_assert(memcmp(za, zo, sizeof za) != 0);
    ck_assert(hash_of(a) == hash_of(b));
    ck_assert(hash_of(a) == hash_of(twin));
    for (size_t i = 0; i < DRAWS; i++) {
        ck_assert(ua[i] >= -2.0f && ua[i] < 3.0f);
        ck_assert(fabsf(za[i] - 1.0f) < 5.8f * 0.5f);
    }
    /* the stream goes on: the next draws are new ones */
    draw_both(a, ub, zb);
    ck_assert(memcmp(ua, ub, sizeof ua) != 0);
    bpl_net_destroy(a);
    bpl_net_destroy(b);
    bpl_net_destroy(twin);
    bpl_net_destroy(other);
}
END_TEST

/* Under a transport they come from a stream of the process's own, seeded
 * with example_seed: the net's generator (which every process keeps in
 * step) is not touched, and bpl_net_random_* stays the net's. */
START_TEST(transport_draws_from_its_own_stream)
{
    bpl_net *a = make_net(&plain_sgd, 3), *b = make_net(&plain_sgd, 4);
    bpl_net *c = make_net(&plain_sgd, 3), *twin = make_net(&plain_sgd, 3);
    BPL_OK_OR_FAIL(bpl_net_set_parallel(a, 0, 2, keep_block, NULL, 77));
    BPL_OK_OR_FAIL(bpl_net_set_parallel(b, 1, 2, keep_block, NULL, 77));
    BPL_OK_OR_FAIL(bpl_net_set_parallel(c, 0, 2, keep_block, NULL, 78));
    float ua[DRAWS], za[DRAWS], ub[DRAWS], zb[DRAWS], uc[DRAWS], zc[DRAWS];
    uint64_t before = hash_of(a);
    draw_both(a, ua, za);
    ck_assert(hash_of(a) == before);
    draw_both(b, ub, zb);
    draw_both(c, uc, zc);
    /* the seed decides the stream, whatever the net */
    ck_assert_mem_eq(ua, ub, sizeof ua);
    ck_assert_mem_eq(za, zb, sizeof za);
    ck_assert(memcmp(ua, uc, sizeof ua) != 0);
    ck_assert(memcmp(za, zc, sizeof za) != 0);
    /* setting the transport again starts the stream again */
    BPL_OK_OR_FAIL(bpl_net_set_parallel(a, 0, 2, keep_block, NULL, 77));
    draw_both(a, ub, zb);
    ck_assert_mem_eq(ua, ub, sizeof ua);
    ck_assert_mem_eq(za, zb, sizeof za);
    /* the net's own draws are those of a twin without a transport */
    float own[DRAWS], twins[DRAWS];
    BPL_OK_OR_FAIL(bpl_net_random_uniform(a, own, DRAWS, 0, 1));
    BPL_OK_OR_FAIL(bpl_net_random_uniform(twin, twins, DRAWS, 0, 1));
    ck_assert_mem_eq(own, twins, sizeof own);
    ck_assert(hash_of(a) == hash_of(twin));
    /* back to one process: the per-example draws are the net's again */
    BPL_OK_OR_FAIL(bpl_net_set_parallel(a, 0, 1, NULL, NULL, 0));
    BPL_OK_OR_FAIL(bpl_net_example_random_uniform(a, own, DRAWS, 0, 1));
    BPL_OK_OR_FAIL(bpl_net_random_uniform(twin, twins, DRAWS, 0, 1));
    ck_assert_mem_eq(own, twins, sizeof own);
    bpl_net_destroy(a);
    bpl_net_destroy(b);
    bpl_net_destroy(c);
    bpl_net_destroy(twin);
}
END_TEST

/* ---- one process with a reduction ------------------------------------------- */

enum probe_act { PROBE_KEEP, PROBE_ZERO, PROBE_FAIL, PROBE_FAIL_SILENTLY };

/* A transport of one process whose reduction a test controls. */
struct probe {
    enum probe_act act;
    size_t calls, n;
    double rows;
    int status;
};

static int probe_reduce(void *user_data, float *block, size_t n, double rows, int status)
{
    struct probe *p = user_data;
    p->calls++;
    p->n = n;
    p->rows = rows;
    p->status = status;
    if (status != BPL_OK)
        return status;
    switch (p->act) {
    case PROBE_ZERO:
        memset(block, 0, n * sizeof *block);
        return BPL_OK;
    case PROBE_FAIL:
        return bpl_error_set(BPL_ERR_IO, "the link is down");
    case PROBE_FAIL_SILENTLY:
        return BPL_ERR_IO;
    default:
        return BPL_OK;
    }
}

/* The reduction sits between the gradients and the optimisers: it is given
 * the whole block and the step's rows, and what it leaves is what is
 * stepped; a diagnostic pass never reduces. */
START_TEST(reduction_feeds_the_optimisers)
{
    bpl_net *net = make_net(&plain_sgd, 3), *alone = make_net(&plain_sgd, 3);
    float x[BATCH * INPUTS], y[BATCH * CLASSES];
    make_rows(x, y, BATCH, 5);
    struct probe p = {PROBE_KEEP, 0, 0, 0.0, BPL_ERR_INTERNAL};
    BPL_OK_OR_FAIL(bpl_net_set_parallel(net, 0, 1, probe_reduce, &p, 1));
    size_t n;
    BPL_OK_OR_FAIL(bpl_net_gradient_size(net, &n));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, BATCH, NULL));
    BPL_OK_OR_FAIL(bpl_net_train_batch(alone, x, y, BATCH, NULL));
    ck_assert_uint_eq(p.calls, 1);
    ck_assert_uint_eq(p.n, n);
    ck_assert_double_eq(p.rows, BATCH);
    ck_assert_int_eq(p.status, BPL_OK);
    assert_in_step(net, alone, "a reduction that keeps the block");

    /* plain SGD on a zeroed block leaves every tensor as it was */
    p.act = PROBE_ZERO;
    size_t total;
    float *before = test_snapshot(net, &total);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, BATCH, NULL));
    ck_assert(test_same_params(net, before, total));
    free(before);

    double angles[3];
    p.calls = 0;
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, BATCH, angles, 3));
    ck_assert_uint_eq(p.calls, 0);
    bpl_net_destroy(net);
    bpl_net_destroy(alone);
}
END_TEST

/* A reduction that fails fails the step with its status and message, or
 * with one of the library's when it left none; no parameter changes. */
START_TEST(failed_reduction_fails_the_step)
{
    bpl_net *net = make_net(&plain_sgd, 3);
    float x[BATCH * INPUTS], y[BATCH * CLASSES];
    make_rows(x, y, BATCH, 5);
    struct probe p = {PROBE_FAIL, 0, 0, 0.0, BPL_OK};
    BPL_OK_OR_FAIL(bpl_net_set_parallel(net, 0, 1, probe_reduce, &p, 1));
    size_t total;
    float *before = test_snapshot(net, &total);
    uint64_t h = hash_of(net);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, BATCH, NULL), BPL_ERR_IO,
                     "the link is down");
    ck_assert_uint_eq(p.calls, 1); /* not called again with its own failure */
    p.act = PROBE_FAIL_SILENTLY;
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, BATCH, NULL), BPL_ERR_IO,
                     "reduction failed without a message");
    ck_assert_uint_eq(p.calls, 2);
    ck_assert(test_same_params(net, before, total));
    ck_assert(hash_of(net) == h);
    /* the transport still works */
    p.act = PROBE_KEEP;
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, BATCH, NULL));
    ck_assert(!test_same_params(net, before, total));
    free(before);
    bpl_net_destroy(net);
}
END_TEST

/* A step that fails before its reduction still calls it once, with its
 * status, and returns that status with its own message. */
START_TEST(failed_step_still_reduces)
{
    bpl_net *net = make_net(&regression, 3);
    float x[BATCH * INPUTS], y[BATCH * CLASSES];
    make_rows(x, y, BATCH, 5);
    fill(x, BATCH * INPUTS, FLT_MAX);
    struct probe p = {PROBE_KEEP, 0, 0, 0.0, BPL_OK};
    BPL_OK_OR_FAIL(bpl_net_set_parallel(net, 0, 1, probe_reduce, &p, 1));
    size_t total;
    float *before = test_snapshot(net, &total);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, BATCH, NULL), BPL_ERR_NUMERIC, "loss");
    ck_assert_uint_eq(p.calls, 1);
    ck_assert_int_eq(p.status, BPL_ERR_NUMERIC);
    ck_assert(test_same_params(net, before, total));
    free(before);
    bpl_net_destroy(net);
}
END_TEST

/* ---- two sides ------------------------------------------------------------ */

/* Rules whose steps do not depend on how the batch is split: their
 * gradients are means over rows. */
static const struct setup split_free[] = {
    {"backprop", {"optimizer", "sgd", "lr", "0.1", NULL}, 0, 0},
    {"backprop", {"optimizer", "adam", "lr", "0.01", NULL}, 0, 0},
    {"backprop", {"optimizer", "momentum", "lr", "0.1", "weight_decay", "0.01", NULL}, 0, 0},
    {"fa", {"optimizer", "sgd", "lr", "0.1", NULL}, 0, 0},
    {"segregated", {"optimizer", "sgd", "lr", "0.1", "mode", "rate", NULL}, 0, 0},
    {"microcircuit", {"optimizer", "sgd", "lr", "0.1", "mode", "steady", NULL}, 0, 0},
    /* draws its noise per example, all 0 here */
    {"dtp", {"optimizer", "sgd", "lr", "0.1", "fb_optimizer", "sgd", "noise", "0", NULL}, 0,
     1},
};
enum { N_SPLIT_FREE = sizeof split_free / sizeof split_free[0] };

/* The net one process trains.  A rule that draws per example draws, on
 * one process, from the net's generator, which also shuffles each epoch:
 * from the second epoch on it would shuffle otherwise than the sides,
 * whose draws come from streams of their own.  So that the orders agree,
 * such a rule's net gets a stream of its own too, from a transport of one
 * process that keeps the block. */
static bpl_net *one_process(const struct setup *s, uint64_t seed)
{
    bpl_net *net = make_net(s, seed);
    if (s->per_example)
        BPL_OK_OR_FAIL(bpl_net_set_parallel(net, 0, 1, keep_block, NULL, 1));
    return net;
}

/* Each side fits its share of every batch: the sides stay identical, and
 * come out where one process fitting the whole batches does.  The rows
 * each side's reduction is given are its shares: 2, 2 and 1 of the last
 * batch's one row, the empty share weighed 0. */
START_TEST(fit_on_two_sides_is_fit_on_one)
{
    static const double rows[SIDES][FIT_STEPS / EPOCHS] = {{2, 2, 0}, {2, 2, 1}};
    const struct setup *s = &split_free[_i];
    bpl_dataset *ds = make_dataset();
    struct pair p;
    pair_open(&p, s, 7, 11, 12);
    struct job job[SIDES] = {{p.net[0], ds, NULL, NULL, 0, 0, 0, ""},
                             {p.net[1], ds, NULL, NULL, 0, 0, 0, ""}};
    run_sides(job);
    assert_jobs_ok(job, s->rule);
    assert_in_step(p.net[0], p.net[1], s->rule);
    bpl_net *alone = one_process(s, 7);
    BPL_OK_OR_FAIL(bpl_net_fit(alone, ds, EPOCHS, BATCH, NULL, NULL));
    for (size_t r = 0; r < SIDES; r++) {
        assert_close(p.net[r], alone, 1e-5, s->rule);
        ck_assert_uint_eq(p.side[r].calls, FIT_STEPS);
        for (size_t c = 0; c < FIT_STEPS; c++) {
            ck_assert_int_eq(p.side[r].status_seen[c], BPL_OK);
            ck_assert_double_eq(p.side[r].rows_seen[c], rows[r][c % (FIT_STEPS / EPOCHS)]);
        }
    }
    bpl_net_destroy(alone);
    pair_close(&p);
    bpl_dataset_destroy(ds);
}
END_TEST

/* bpl_net_train_batch on shares of 3 and 5 rows: the mean weighted by rows
 * is the mean over the whole batch of 8. */
START_TEST(train_batch_on_two_sides_is_one_batch)
{
    const struct setup *s = &split_free[_i];
    float x[(ROWS_0 + ROWS_1) * INPUTS], y[(ROWS_0 + ROWS_1) * CLASSES];
    make_rows(x, y, ROWS_0 + ROWS_1, 41);
    struct pair p;
    pair_open(&p, s, 7, 11, 12);
    train_sides(&p, x, y, BATCH_STEPS);
    assert_in_step(p.net[0], p.net[1], s->rule);
    bpl_net *alone = one_process(s, 7);
    for (size_t step = 0; step < BATCH_STEPS; step++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(alone, x, y, ROWS_0 + ROWS_1, NULL));
    for (size_t r = 0; r < SIDES; r++) {
        assert_close(p.net[r], alone, 1e-5, s->rule);
        ck_assert_uint_eq(p.side[r].calls, BATCH_STEPS);
        ck_assert_double_eq(p.side[r].rows_seen[0], r == 0 ? ROWS_0 : ROWS_1);
    }
    bpl_net_destroy(alone);
    pair_close(&p);
}
END_TEST

/* Rules that draw per example: tp's noise, the spiking model's spikes. */
static const struct setup noisy[] = {
    {"dtp", {"optimizer", "sgd", "lr", "0.1", "noise", "0.5", NULL}, 0, 1},
    {"segregated", {"mode", "spiking", "phase_steps", "4", "integration_steps", "2", NULL}, 0,
     1},
};

static uint64_t two_sided_hash(const struct setup *s, const float *x, const float *y,
                               uint64_t seed_0, uint64_t seed_1)
{
    struct pair p;
    pair_open(&p, s, 7, seed_0, seed_1);
    train_sides(&p, x, y, BATCH_STEPS);
    assert_in_step(p.net[0], p.net[1], s->rule);
    uint64_t h = hash_of(p.net[0]);
    pair_close(&p);
    return h;
}

/* Sides with different rows draw different amounts from their own streams
 * and still stay in step; the run is reproducible from the example seeds,
 * and the noise it drew shows in the result. */
START_TEST(noisy_rules_stay_in_step)
{
    const struct setup *s = &noisy[_i];
    float x[(ROWS_0 + ROWS_1) * INPUTS], y[(ROWS_0 + ROWS_1) * CLASSES];
    make_rows(x, y, ROWS_0 + ROWS_1, 41);
    uint64_t h = two_sided_hash(s, x, y, 11, 12);
    ck_assert_msg(two_sided_hash(s, x, y, 11, 12) == h, "%s: not reproducible", s->rule);
    ck_assert_msg(two_sided_hash(s, x, y, 13, 14) != h, "%s: the seeds change nothing",
                  s->rule);
}
END_TEST

/* How side 1's rows break a step, and what its reduction is then given. */
struct failure {
    const struct setup *setup;
    int overflow_x;   /* rows of FLT_MAX; else targets of 3e38 */
    int status_given; /* the status side 1's reduction is called with */
    const char *side_1_says;
};

static const struct failure failures[] = {
    /* an infinite loss: the step fails before its reduction */
    {&regression, 1, BPL_ERR_NUMERIC, "loss"},
    /* finite gradients that overflow once weighed: the reduction fails */
    {&plain_sgd, 0, BPL_OK, "not finite"},
};

static void spoil(const struct failure *f, float *x, float *y, size_t rows)
{
    if (f->overflow_x)
        fill(x, rows * INPUTS, FLT_MAX);
    for (size_t i = 0; !f->overflow_x && i < rows * CLASSES; i++)
        y[i] *= 3e38f;
}

/* A step that breaks on side 1 only: side 1's reduction is still called,
 * both steps fail with side 1's status (side 0's naming side 1), neither
 * net changes, and the next step goes on in step. */
START_TEST(failure_on_one_side_fails_both)
{
    const struct failure *f = &failures[_i];
    float x[(ROWS_0 + ROWS_1) * INPUTS], y[(ROWS_0 + ROWS_1) * CLASSES];
    float bad_x[ROWS_1 * INPUTS], bad_y[ROWS_1 * CLASSES];
    make_rows(x, y, ROWS_0 + ROWS_1, 41);
    memcpy(bad_x, x + ROWS_0 * INPUTS, sizeof bad_x);
    memcpy(bad_y, y + ROWS_0 * CLASSES, sizeof bad_y);
    spoil(f, bad_x, bad_y, ROWS_1);
    struct pair p;
    pair_open(&p, f->setup, 7, 11, 12);
    train_sides(&p, x, y, 1);
    size_t total;
    float *before = test_snapshot(p.net[0], &total);

    struct job job[SIDES] = {
        {p.net[0], NULL, x, y, ROWS_0, 1, 0, ""},
        {p.net[1], NULL, bad_x, bad_y, ROWS_1, 1, 0, ""},
    };
    run_sides(job);
    for (size_t r = 0; r < SIDES; r++) {
        ck_assert_msg(job[r].rc == BPL_ERR_NUMERIC, "side %zu -> %d: %s", r, job[r].rc,
                      job[r].message);
        ck_assert_uint_eq(p.side[r].calls, 2);
        ck_assert(test_same_params(p.net[r], before, total));
    }
    ck_assert_int_eq(p.side[0].status_seen[1], BPL_OK);
    ck_assert_int_eq(p.side[1].status_seen[1], f->status_given);
    ck_assert_msg(strstr(job[0].message, "process 1 of 2 failed") != NULL, "side 0: %s",
                  job[0].message);
    ck_assert_msg(strstr(job[1].message, f->side_1_says) != NULL, "side 1: %s",
                  job[1].message);
    assert_in_step(p.net[0], p.net[1], "after the failure");

    train_sides(&p, x, y, 1);
    ck_assert_uint_eq(p.side[0].calls, 3);
    ck_assert(!test_same_params(p.net[0], before, total));
    assert_in_step(p.net[0], p.net[1], "after the next step");
    free(before);
    pair_close(&p);
}
END_TEST

static Suite *parallel_suite(void)
{
    Suite *s = suite_create("parallel");
    TCase *args = tcase_create("arguments");
    tcase_add_test(args, set_parallel_arguments);
    tcase_add_test(args, gradient_size_arguments);
    tcase_add_test(args, state_hash_arguments);
    tcase_add_test(args, example_random_arguments);
    tcase_add_test(args, no_reentry_from_callbacks);
    suite_add_tcase(s, args);

    TCase *state = tcase_create("state");
    tcase_add_loop_test(state, gradient_size_is_the_trained_tensors, 0,
                        (int)(sizeof block_rules / sizeof block_rules[0]));
    tcase_add_test(state, state_hash_follows_the_state);
    tcase_add_test(state, one_process_draws_from_the_net);
    tcase_add_test(state, transport_draws_from_its_own_stream);
    suite_add_tcase(s, state);

    TCase *one = tcase_create("one-process");
    tcase_add_test(one, reduction_feeds_the_optimisers);
    tcase_add_test(one, failed_reduction_fails_the_step);
    tcase_add_test(one, failed_step_still_reduces);
    suite_add_tcase(s, one);

    TCase *two = tcase_create("two-sides");
    tcase_add_loop_test(two, fit_on_two_sides_is_fit_on_one, 0, N_SPLIT_FREE);
    tcase_add_loop_test(two, train_batch_on_two_sides_is_one_batch, 0, N_SPLIT_FREE);
    tcase_add_loop_test(two, noisy_rules_stay_in_step, 0, (int)(sizeof noisy / sizeof noisy[0]));
    tcase_add_loop_test(two, failure_on_one_side_fails_both, 0,
                        (int)(sizeof failures / sizeof failures[0]));
    suite_add_tcase(s, two);
    return s;
}

int main(void)
{
    return test_run_suite(parallel_suite());
}
