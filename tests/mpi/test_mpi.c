/*
 * test_mpi.c - libbioplaus-mpi, run under mpiexec with 2 or 3 processes.
 *
 * Equivalence: P processes with a global batch of B rows give the weights
 * one process gives with batch B, up to float reassociation, for every rule
 * data-parallel training supports.  Faults: a failure on one process
 * reaches every process's call, named, without a hang.  Checkpoints,
 * stopping, shared-out evaluation and the lockstep check.
 *
 * Check runs without fork (forking under MPI is not allowed), so every
 * process runs the same tests in the same order, and each test's
 * collective calls meet.  meson's timeout ends a test that hangs.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bioplaus_mpi.h"
#include "bioplaus_rule.h"
#include "../testutil.h"

#define OK(call)                                                                           \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        ck_assert_msg(rc_ == BPL_OK, "%s -> %d: %s", #call, rc_, bpl_last_error_message()); \
    } while (0)

enum { INPUTS = 12, CLASSES = 4, EXAMPLES = 55, BATCH = 10 };

static int rank, size;

/* A reproducible classification set: the same on every process. */
static bpl_dataset *make_data(size_t n, int poison)
{
    float *x = malloc(n * INPUTS * sizeof *x), *y = calloc(n * CLASSES, sizeof *y);
    ck_assert(x && y);
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        size_t label = i % CLASSES;
        for (size_t j = 0; j < INPUTS; j++) {
            s = s * 1103515245u + 12345u;
            float noise = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
            x[i * INPUTS + j] = noise + (j % CLASSES == label ? 1.0f : 0.0f);
        }
        /* Poisoned: finite targets so large that this process's weighted
         * gradients overflow float: the reduction refuses its block as
         * non-finite, on this process alone (the loss, summed in double,
         * stays finite). */
        y[i * CLASSES + label] = poison ? 3e38f : 1.0f;
    }
    bpl_dataset *ds;
    OK(bpl_dataset_from_f32(&ds, x, y, n, INPUTS, CLASSES));
    free(x);
    free(y);
    return ds;
}

struct setup {
    const char *rule;
    const char *settings[8]; /* key, value pairs, NULL-ended */
    int conv;
};

static bpl_net *make_net(const struct setup *s, uint64_t seed)
{
    bpl_net *net;
    int hidden = strcmp(s->rule, "microcircuit") == 0 ? BPL_ACT_SIGMOID : BPL_ACT_TANH;
    int top = strcmp(s->rule, "microcircuit") == 0 ? BPL_ACT_SIGMOID : BPL_ACT_SOFTMAX;
    OK(bpl_net_create(&net, INPUTS, seed));
    if (s->conv) {
        size_t dims[3] = {1, 3, 4};
        OK(bpl_net_set_input_shape(net, dims, 3));
        OK(bpl_net_add_conv2d(net, 3, 2, 2, 1, 0, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM));
    }
    OK(bpl_net_add_dense(net, 10, hidden, BPL_INIT_GLOROT_UNIFORM));
    OK(bpl_net_add_dense(net, 8, hidden, BPL_INIT_GLOROT_UNIFORM));
    OK(bpl_net_add_dense(net, CLASSES, top, BPL_INIT_GLOROT_UNIFORM));
    bpl_rule *rule;
    OK(bpl_rule_create_builtin(&rule, s->rule));
    for (const char *const *kv = s->settings; kv[0]; kv += 2)
        OK(bpl_rule_set_string(rule, kv[0], kv[1]));
    OK(bpl_net_set_rule(net, rule));
    return net;
}

/* Every trained tensor of `a` within tol of `b`'s, relative to its norm. */
static void assert_close(bpl_net *a, bpl_net *b, double tol, const char *what)
{
    char where[64];
    double distance = test_worst_relative_distance(a, b, where, sizeof where);
    ck_assert_msg(distance <= tol, "%s: %s differs by %g of its norm (rank %d of %d)", what,
                  where, distance, rank, size);
}

static const struct setup setups[] = {
    {"backprop", {"optimizer", "sgd", "lr", "0.1", NULL}, 0},
    {"fa", {"optimizer", "sgd", "lr", "0.1", NULL}, 0},
    {"dfa", {"optimizer", "sgd", "lr", "0.1", NULL}, 0},
    {"usf", {"optimizer", "sgd", "lr", "0.1", NULL}, 0},
    {"brsf", {"optimizer", "sgd", "lr", "0.1", NULL}, 0},
    {"frsf", {"optimizer", "sgd", "lr", "0.1", NULL}, 0},
    {"segregated", {"optimizer", "sgd", "lr", "0.1", "mode", "rate", NULL}, 0},
    {"microcircuit", {"optimizer", "sgd", "lr", "0.1", "mode", "steady", NULL}, 0},
    {"backprop", {"optimizer", "sgd", "lr", "0.1", NULL}, 1},
    {"fa", {"optimizer", "sgd", "lr", "0.1", NULL}, 1},
    {"backprop", {"optimizer", "adam", "lr", "0.01", NULL}, 0},
};

/* 12 steps: 2 epochs of 55 rows in batches of 10, the last of 5 rows (1, 2
 * and 2 rows on 3 processes). */
START_TEST(test_same_weights_as_one_process)
{
    const struct setup *s = &setups[_i];
    bpl_dataset *ds = make_data(EXAMPLES, 0);
    bpl_net *alone = make_net(s, 7), *shared = make_net(s, 7);
    OK(bpl_net_fit(alone, ds, 2, BATCH, NULL, NULL));
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    OK(bpl_mpi_attach(mpi, shared));
    OK(bpl_mpi_fit(mpi, shared, ds, 2, BATCH, NULL, NULL));
    char what[96];
    snprintf(what, sizeof what, "%s%s", s->rule, s->conv ? " (conv)" : "");
    assert_close(shared, alone, 1e-5, what);
    double acc_alone, loss_alone, acc, loss;
    OK(bpl_net_evaluate(alone, ds, &acc_alone, &loss_alone));
    OK(bpl_mpi_evaluate(mpi, shared, ds, &acc, &loss));
    ck_assert_msg(fabs(acc - acc_alone) <= 1.0 / EXAMPLES + 1e-12, "%s: accuracy %g vs %g",
                  what, acc, acc_alone);
    ck_assert_msg(fabs(loss - loss_alone) <= 1e-4 * (1.0 + fabs(loss_alone)),
                  "%s: loss %g vs %g", what, loss, loss_alone);
    bpl_mpi_destroy(mpi);
    bpl_net_destroy(alone);
    bpl_net_destroy(shared);
    bpl_dataset_destroy(ds);
}
END_TEST

/* Shared-out evaluation gives what one process gets on the whole set. */
START_TEST(test_evaluation_is_shared_out)
{
    const struct setup s = {"backprop", {NULL}, 0};
    bpl_dataset *ds = make_data(EXAMPLES, 0);
    bpl_net *net = make_net(&s, 3);
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    double acc_alone, loss_alone, acc, loss;
    OK(bpl_net_evaluate(net, ds, &acc_alone, &loss_alone));
    OK(bpl_mpi_evaluate(mpi, net, ds, &acc, &loss));
    ck_assert_double_eq_tol(acc, acc_alone, 1e-12);
    ck_assert_double_eq_tol(loss, loss_alone, 1e-6 * (1.0 + loss_alone)); /* sums in another order */
    bpl_mpi_destroy(mpi);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

/* NaN on the last process only: every process's fit fails, naming it, and
 * no process's net takes the failed step. */
START_TEST(test_failure_on_one_process_reaches_all)
{
    const struct setup s = {"backprop", {"optimizer", "sgd", NULL}, 0};
    bpl_dataset *ds = make_data(EXAMPLES, rank == size - 1);
    bpl_net *net = make_net(&s, 5);
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    OK(bpl_mpi_attach(mpi, net));
    float before[INPUTS * 10], after[INPUTS * 10];
    OK(bpl_layer_get_tensor(bpl_net_layer(net, 0), "weight", before, INPUTS * 10));
    int rc = bpl_mpi_fit(mpi, net, ds, 1, BATCH, NULL, NULL);
    ck_assert_int_eq(rc, BPL_ERR_NUMERIC);
    if (rank != size - 1) {
        char expected[64];
        snprintf(expected, sizeof expected, "process %d of %d failed", size - 1, size);
        ck_assert_msg(strstr(bpl_last_error_message(), expected), "message: %s",
                      bpl_last_error_message());
    }
    OK(bpl_layer_get_tensor(bpl_net_layer(net, 0), "weight", after, INPUTS * 10));
    ck_assert_msg(memcmp(before, after, sizeof before) == 0, "a failed first step changed the net");
    /* The context is still usable: the processes are in step. */
    OK(bpl_mpi_agree(mpi, BPL_OK));
    bpl_mpi_destroy(mpi);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

/* A bad argument on one process fails the collective call everywhere. */
START_TEST(test_bad_argument_on_one_process)
{
    const struct setup s = {"backprop", {NULL}, 0};
    bpl_dataset *ds = make_data(EXAMPLES, 0);
    bpl_net *net = make_net(&s, 5);
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    OK(bpl_mpi_attach(mpi, net));
    int rc = bpl_mpi_fit(mpi, net, ds, 1, rank == 0 ? 0 : BATCH, NULL, NULL);
    ck_assert_int_eq(rc, BPL_ERR_INVALID_ARG);
    rc = bpl_mpi_fit(mpi, net, rank == size - 1 ? NULL : ds, 1, BATCH, NULL, NULL);
    ck_assert_int_eq(rc, BPL_ERR_INVALID_ARG);
    /* Valid everywhere, but not the same: the loops would not meet. */
    rc = bpl_mpi_fit(mpi, net, ds, rank == size - 1 ? 2 : 1, BATCH, NULL, NULL);
    ck_assert_int_eq(rc, BPL_ERR_INVALID_ARG);
    rc = bpl_mpi_fit(mpi, net, ds, 1, rank == size - 1 ? BATCH + 1 : BATCH, NULL, NULL);
    ck_assert_int_eq(rc, BPL_ERR_INVALID_ARG);
    bpl_dataset *fewer = make_data(EXAMPLES - (rank == size - 1), 0);
    double accuracy;
    ck_assert_int_eq(bpl_mpi_evaluate(mpi, net, fewer, &accuracy, NULL), BPL_ERR_SHAPE);
    bpl_dataset_destroy(fewer);
    bpl_mpi_destroy(mpi);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

/* Nets built from different seeds are refused at attach, on every process. */
START_TEST(test_different_nets_are_refused)
{
    const struct setup s = {"backprop", {NULL}, 0};
    bpl_net *net = make_net(&s, rank == size - 1 ? 99 : 5);
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    ck_assert_int_eq(bpl_mpi_attach(mpi, net), BPL_ERR_STATE);
    bpl_mpi_destroy(mpi);
    bpl_net_destroy(net);
}
END_TEST

/* A net changed on one process behind the library's back is caught at the
 * end of the epoch. */
START_TEST(test_lockstep_check)
{
    const struct setup s = {"backprop", {"optimizer", "sgd", NULL}, 0};
    bpl_dataset *ds = make_data(EXAMPLES, 0);
    bpl_net *net = make_net(&s, 5);
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    OK(bpl_mpi_attach(mpi, net));
    if (rank == size - 1) {
        float *w;
        OK(bpl_layer_tensor(bpl_net_layer(net, 0), "weight", &w, NULL, NULL));
        w[0] += 1.0f;
    }
    ck_assert_int_eq(bpl_mpi_fit(mpi, net, ds, 1, BATCH, NULL, NULL), BPL_ERR_STATE);
    ck_assert_msg(strstr(bpl_last_error_message(), "no longer the same"), "message: %s",
                  bpl_last_error_message());
    bpl_mpi_destroy(mpi);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

static int stop_at_step_2(int event, size_t epoch, size_t step, size_t steps, double loss,
                          void *user_data)
{
    (void)epoch, (void)steps, (void)loss;
    int *epochs_seen = user_data;
    if (event == BPL_EVENT_EPOCH)
        ++*epochs_seen;
    return event == BPL_EVENT_BATCH && step == 2 && rank == size - 1;
}

/* One process asks to stop: all stop after the same step, in step. */
START_TEST(test_stop_on_one_process)
{
    const struct setup s = {"backprop", {"optimizer", "sgd", NULL}, 0};
    bpl_dataset *ds = make_data(EXAMPLES, 0);
    bpl_net *net = make_net(&s, 5);
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    OK(bpl_mpi_attach(mpi, net));
    int epochs_seen = 0;
    OK(bpl_mpi_fit(mpi, net, ds, 3, BATCH, stop_at_step_2, &epochs_seen));
    ck_assert_int_eq(epochs_seen, 0);
    uint64_t hash;
    OK(bpl_net_state_hash(net, &hash));
    uint64_t pair[2] = {hash, ~hash}, max[2];
    MPI_Allreduce(pair, max, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    ck_assert_msg(max[0] == ~max[1], "the processes' nets differ after stopping");
    bpl_mpi_destroy(mpi);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

/* Rank 0 saves; every process loads the file and goes on exactly as the
 * net that was not saved. */
START_TEST(test_checkpoint_and_resume)
{
    const struct setup s = {"backprop", {"optimizer", "adam", "lr", "0.01", NULL}, 0};
    bpl_dataset *ds = make_data(EXAMPLES, 0);
    bpl_net *net = make_net(&s, 5);
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    OK(bpl_mpi_attach(mpi, net));
    OK(bpl_mpi_fit(mpi, net, ds, 1, BATCH, NULL, NULL));
    char path[64] = "";
    if (rank == 0)
        snprintf(path, sizeof path, "test-mpi-%ld.bpl", (long)getpid());
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    OK(bpl_mpi_save(mpi, net, path));
    OK(bpl_mpi_fit(mpi, net, ds, 1, BATCH, NULL, NULL));
    OK(bpl_mpi_detach(mpi));

    bpl_net *resumed;
    OK(bpl_mpi_agree(mpi, bpl_net_load(&resumed, path)));
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        remove(path);
    OK(bpl_mpi_attach(mpi, resumed));
    OK(bpl_mpi_fit(mpi, resumed, ds, 1, BATCH, NULL, NULL));
    assert_close(resumed, net, 0.0, "resumed");
    /* A save that fails on rank 0 fails everywhere. */
    ck_assert_int_eq(bpl_mpi_save(mpi, resumed, "no-such-dir/x.bpl"), BPL_ERR_IO);
    bpl_mpi_destroy(mpi);
    bpl_net_destroy(resumed);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(test_agree)
{
    bpl_mpi *mpi;
    OK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    ck_assert_int_eq(bpl_mpi_size(mpi), size);
    ck_assert_int_eq(bpl_mpi_rank(mpi), rank);
    OK(bpl_mpi_agree(mpi, BPL_OK));
    int mine = rank == size - 1 ? bpl_error_set(BPL_ERR_IO, "cannot read the data") : BPL_OK;
    ck_assert_int_eq(bpl_mpi_agree(mpi, mine), BPL_ERR_IO);
    ck_assert_msg(strstr(bpl_last_error_message(), "cannot read the data"), "message: %s",
                  bpl_last_error_message());
    bpl_mpi_destroy(mpi);
    ck_assert_int_eq(bpl_mpi_create(NULL, MPI_COMM_WORLD), BPL_ERR_INVALID_ARG);
    ck_assert_int_eq(bpl_mpi_rank(NULL), -1);
}
END_TEST

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    Suite *s = suite_create("mpi");
    /* One case per test: CK_RUN_CASE=name runs one alone. */
    struct {
        const char *name;
        const TTest *test;
        int loops;
    } cases[] = {
        {"equivalence", test_same_weights_as_one_process, (int)(sizeof setups / sizeof setups[0])},
        {"evaluation", test_evaluation_is_shared_out, 1},
        {"failure", test_failure_on_one_process_reaches_all, 1},
        {"bad-argument", test_bad_argument_on_one_process, 1},
        {"different-nets", test_different_nets_are_refused, 1},
        {"lockstep", test_lockstep_check, 1},
        {"stop", test_stop_on_one_process, 1},
        {"checkpoint", test_checkpoint_and_resume, 1},
        {"agree", test_agree, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, cases[i].test, 0, cases[i].loops);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL); /* every process reports its failures */
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* Every process's failures count: a test may fail on one only. */
    int total = 0;
    MPI_Allreduce(&failed, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%d processes: %d failed assertions in all\n", size, total);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
