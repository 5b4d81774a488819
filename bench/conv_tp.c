/*
 * conv_tp.c - a rule on MNIST with a strided-conv net of LeNet's size, no
 * pooling (target propagation's inverses cannot undo a pooling layer):
 *
 *   1x28x28 -> conv 6@5x5 stride 2 pad 2 (6x14x14) -> conv 16@5x5 stride 2
 *   (16x5x5) -> dense 120 -> dense 84 -> dense 10 (softmax)
 *
 * every hidden layer with the same activation, Glorot-uniform weights,
 * batch 128, constant learning rates.  The first 55,000 training images
 * train, the last 5,000 are the validation hold-out, the 10,000 test images
 * are reported.  One CSV row per epoch on stdout, as bioplaus-train --csv
 * writes them (bench/quote-results.py reads them from docs/runs/).
 *
 *   bench-conv-tp RULE EPOCHS SEED ACTIVATION [key=value ...]
 *
 * The keys are the rule's hyperparameters (bpl_rule_set_string).  The MNIST
 * files come from $BIOPLAUS_MNIST_DIR.  (Until the command-line trainer
 * takes an architecture, this is how the conv results of docs/results.md
 * were made.)
 */
#include <bioplaus.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check(int rc, const char *what)
{
    if (rc != BPL_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, bpl_strerror(rc), bpl_last_error_message());
        exit(1);
    }
    return rc;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int activation_of(const char *name)
{
    if (strcmp(name, "relu") == 0)
        return BPL_ACT_RELU;
    if (strcmp(name, "tanh") == 0)
        return BPL_ACT_TANH;
    fprintf(stderr, "activation: tanh or relu, not '%s'\n", name);
    exit(2);
}

static bpl_net *lenet_strided(uint64_t seed, int act)
{
    static const size_t chw[] = {1, 28, 28};
    bpl_net *net;
    check(bpl_net_create(&net, 784, seed), "net");
    check(bpl_net_set_input_shape(net, chw, 3), "input shape");
    check(bpl_net_add_conv2d(net, 6, 5, 5, 2, 2, act, BPL_INIT_GLOROT_UNIFORM), "conv 1");
    check(bpl_net_add_conv2d(net, 16, 5, 5, 2, 0, act, BPL_INIT_GLOROT_UNIFORM), "conv 2");
    check(bpl_net_add_dense(net, 120, act, BPL_INIT_GLOROT_UNIFORM), "dense 120");
    check(bpl_net_add_dense(net, 84, act, BPL_INIT_GLOROT_UNIFORM), "dense 84");
    check(bpl_net_add_dense(net, 10, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM), "output");
    return net;
}

/* The epoch's mean training loss, which bpl_net_fit gives at its end. */
static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *data)
{
    (void)epoch;
    (void)step;
    (void)steps;
    if (event == BPL_EVENT_EPOCH)
        *(double *)data = loss;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s RULE EPOCHS SEED ACTIVATION [key=value ...]\n", argv[0]);
        return 2;
    }
    const char *dir = getenv("BIOPLAUS_MNIST_DIR");
    if (!dir) {
        fprintf(stderr, "set BIOPLAUS_MNIST_DIR\n");
        return 2;
    }
    size_t epochs = strtoul(argv[2], NULL, 10);
    bpl_dataset *all, *train, *val, *test;
    check(bpl_dataset_load_mnist(&all, dir, BPL_MNIST_TRAIN), "MNIST train");
    check(bpl_dataset_load_mnist(&test, dir, BPL_MNIST_TEST), "MNIST test");
    check(bpl_dataset_slice(&train, all, 0, 55000), "slice");
    check(bpl_dataset_slice(&val, all, 55000, 5000), "slice");

    bpl_net *net = lenet_strided(strtoull(argv[3], NULL, 10), activation_of(argv[4]));
    bpl_rule *rule;
    check(bpl_rule_create_builtin(&rule, argv[1]), argv[1]);
    for (int i = 5; i < argc; i++) {
        char key[64];
        const char *eq = strchr(argv[i], '=');
        if (!eq || (size_t)(eq - argv[i]) >= sizeof key) {
            fprintf(stderr, "not key=value: %s\n", argv[i]);
            return 2;
        }
        memcpy(key, argv[i], (size_t)(eq - argv[i]));
        key[eq - argv[i]] = '\0';
        check(bpl_rule_set_string(rule, key, eq + 1), argv[i]);
    }
    check(bpl_net_set_rule(net, rule), "attach");
    printf("epoch,train_loss,val_accuracy,val_loss,test_accuracy,test_loss,seconds,"
           "cumulative_seconds\n");
    double total = 0.0;
    for (size_t e = 1; e <= epochs; e++) {
        double t0 = now(), train_loss = 0.0, val_acc, val_loss, test_acc, test_loss;
        check(bpl_net_fit(net, train, 1, 128, on_progress, &train_loss), "fit");
        double seconds = now() - t0;
        total += seconds;
        check(bpl_net_evaluate(net, val, &val_acc, &val_loss), "validation");
        check(bpl_net_evaluate(net, test, &test_acc, &test_loss), "test");
        printf("%zu,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f,%.3f\n", e, train_loss, val_acc, val_loss,
               test_acc, test_loss, seconds, total);
        fflush(stdout);
    }
    bpl_net_destroy(net);
    bpl_dataset_destroy(train);
    bpl_dataset_destroy(val);
    bpl_dataset_destroy(test);
    bpl_dataset_destroy(all);
    return 0;
}
