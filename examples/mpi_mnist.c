/*
 * mpi_mnist.c - first_mnist.c on several processes: every process loads
 * MNIST and builds the same 784-256-10 net, and libbioplaus-mpi trains it
 * data-parallel, 128 rows per step over all processes.  Process 0 prints.
 *
 *   mpiexec -n 2 mpi-mnist [RULE [EPOCHS]]
 *
 * MNIST comes from $BIOPLAUS_MNIST_DIR, else ./data/mnist.  Build it with
 * $(pkg-config --cflags --libs bioplaus-mpi).
 */
#include <bioplaus_mpi.h>

#include <stdio.h>
#include <stdlib.h>

#define CHECK(call) do { if ((rc = (call)) != BPL_OK) goto done; } while (0)

static int rank;

static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data)
{
    (void)step, (void)steps, (void)user_data;
    if (event == BPL_EVENT_EPOCH && rank == 0) /* the loss over every process */
        printf("epoch %zu: train loss %.4f\n", epoch, loss);
    return 0;
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *dir = getenv("BIOPLAUS_MNIST_DIR") ? getenv("BIOPLAUS_MNIST_DIR") : "data/mnist";
    const char *rule_name = argc > 1 ? argv[1] : "backprop";
    size_t epochs = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 3;
    bpl_mpi *mpi = NULL;
    bpl_dataset *train = NULL, *test = NULL;
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    double accuracy = 0.0;
    int rc;

    CHECK(bpl_mpi_create(&mpi, MPI_COMM_WORLD));
    /* A file missing on one process fails every process here, instead of
     * leaving the others waiting in the first collective call. */
    rc = bpl_dataset_load_mnist(&train, dir, BPL_MNIST_TRAIN);
    if (rc == BPL_OK)
        rc = bpl_dataset_load_mnist(&test, dir, BPL_MNIST_TEST);
    CHECK(bpl_mpi_agree(mpi, rc));
    CHECK(bpl_net_create(&net, 784, 1)); /* the same seed everywhere */
    CHECK(bpl_net_add_dense(net, 256, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    CHECK(bpl_net_add_dense(net, 10, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    CHECK(bpl_rule_create_builtin(&rule, rule_name));
    CHECK(bpl_net_set_rule(net, rule));
    rule = NULL; /* the net owns the rule now */

    CHECK(bpl_mpi_attach(mpi, net));
    CHECK(bpl_mpi_fit(mpi, net, train, epochs, 128, on_progress, NULL));
    CHECK(bpl_mpi_evaluate(mpi, net, test, &accuracy, NULL));
    if (rank == 0)
        printf("%s on %d processes: test accuracy %.2f%%\n", rule_name, bpl_mpi_size(mpi),
               100.0 * accuracy);
done:
    if (rc != BPL_OK && rank == 0)
        fprintf(stderr, "mpi-mnist: %s: %s\n", bpl_strerror(rc), bpl_last_error_message());
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
    bpl_dataset_destroy(train);
    bpl_dataset_destroy(test);
    bpl_mpi_destroy(mpi);
    MPI_Finalize();
    return rc == BPL_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
