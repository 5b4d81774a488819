/*
 * first_mnist.c - the program of docs/getting-started.md: train a
 * 784-256-10 net on MNIST with the rule named on the command line, print the
 * test accuracy after every epoch, save the model.
 *
 *   first-mnist MNIST_DIR [RULE] [EPOCHS]
 */
#include <bioplaus.h>

#include <stdio.h>
#include <stdlib.h>

#define CHECK(call) do { if ((rc = (call)) != BPL_OK) goto done; } while (0)

struct progress {
    bpl_net *net;
    const bpl_dataset *test;
};

/* Called by bpl_net_fit after every batch and every epoch; 0 means go on. */
static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data)
{
    struct progress *p = user_data;
    double accuracy;
    (void)step;
    (void)steps;
    if (event != BPL_EVENT_EPOCH)
        return 0;
    if (bpl_net_evaluate(p->net, p->test, &accuracy, NULL) != BPL_OK)
        return 1; /* stop; the message is still there for the caller */
    printf("epoch %zu: train loss %.4f, test accuracy %.2f%%\n", epoch, loss,
           100.0 * accuracy);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "data/mnist";
    const char *rule_name = argc > 2 ? argv[2] : "backprop";
    size_t epochs = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 3;
    bpl_dataset *train = NULL, *test = NULL;
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    double accuracy = 0.0;
    int rc;

    CHECK(bpl_dataset_load_mnist(&train, dir, BPL_MNIST_TRAIN));
    CHECK(bpl_dataset_load_mnist(&test, dir, BPL_MNIST_TEST));
    CHECK(bpl_net_create(&net, 784, 1));
    CHECK(bpl_net_add_dense(net, 256, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    CHECK(bpl_net_add_dense(net, 10, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    CHECK(bpl_rule_create_builtin(&rule, rule_name));
    CHECK(bpl_net_set_rule(net, rule));
    rule = NULL; /* the net owns the rule now */

    struct progress p = {net, test};
    CHECK(bpl_net_fit(net, train, epochs, 128, on_progress, &p));
    CHECK(bpl_net_evaluate(net, test, &accuracy, NULL));
    printf("%s: test accuracy %.2f%%\n", rule_name, 100.0 * accuracy);
    CHECK(bpl_net_save(net, "first-mnist.bpl"));
done:
    if (rc != BPL_OK)
        fprintf(stderr, "first-mnist: %s: %s\n", bpl_strerror(rc), bpl_last_error_message());
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
    bpl_dataset_destroy(test);
    bpl_dataset_destroy(train);
    return rc == BPL_OK ? 0 : 1;
}
