/*
 * first_mnist.c - the program of docs/getting-started.md: train a
 * 784-256-10 net on MNIST with the rule named on the command line, print the
 * test accuracy after every epoch, save the model.
 *
 *   first-mnist [RULE [EPOCHS [MODEL_FILE]]]
 *
 * MNIST comes from $BIOPLAUS_MNIST_DIR, else ./data/mnist; the model goes to
 * MODEL_FILE, else first-mnist.bpl in $TMPDIR (else /tmp).
 */
#include <bioplaus.h>

#include <stdio.h>
#include <stdlib.h>

#define CHECK(call) do { if ((rc = (call)) != BPL_OK) goto done; } while (0)

/* Where the environment says, else a default. */
static const char *env_or(const char *name, const char *fallback)
{
    const char *value = getenv(name);
    return value && *value ? value : fallback;
}

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
    const char *dir = env_or("BIOPLAUS_MNIST_DIR", "data/mnist");
    const char *rule_name = argc > 1 ? argv[1] : "backprop";
    size_t epochs = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 3;
    char default_model[4096];
    const char *model = argc > 3 ? argv[3] : default_model;
    bpl_dataset *train = NULL, *test = NULL;
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    double accuracy = 0.0;
    int rc;

    /* Not the current directory, which may be a source tree. */
    snprintf(default_model, sizeof default_model, "%s/first-mnist.bpl",
             env_or("TMPDIR", "/tmp"));

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
    CHECK(bpl_net_save(net, model));
    printf("model saved to %s\n", model);
done:
    if (rc != BPL_OK)
        fprintf(stderr, "first-mnist: %s: %s\n", bpl_strerror(rc), bpl_last_error_message());
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
    bpl_dataset_destroy(test);
    bpl_dataset_destroy(train);
    return rc == BPL_OK ? 0 : 1;
}
