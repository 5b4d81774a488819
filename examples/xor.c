/*
 * xor.c - the smallest complete libbioplaus program: a 2-4-1 net learns XOR
 * with backpropagation.  Exits 0 only if all four predictions are right.
 */
#include <bioplaus.h>

#include <stdio.h>

/* On failure, jump to the single clean-up path with the status in rc. */
#define CHECK(call) do { if ((rc = (call)) != BPL_OK) goto done; } while (0)

int main(void)
{
    static const float x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const float y[4][1] = {{0}, {1}, {1}, {0}};
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    bpl_dataset *data = NULL;
    float out[4];
    int rc, correct = 0;

    CHECK(bpl_net_create(&net, 2, 42));
    CHECK(bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    CHECK(bpl_net_add_dense(net, 1, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM));
    CHECK(bpl_net_set_loss(net, BPL_LOSS_CROSS_ENTROPY));
    CHECK(bpl_rule_create_builtin(&rule, "backprop"));
    CHECK(bpl_rule_set_string(rule, "optimizer", "adam"));
    CHECK(bpl_rule_set(rule, "lr", 0.1));
    CHECK(bpl_net_set_rule(net, rule));
    rule = NULL; /* the net owns the rule now */
    CHECK(bpl_dataset_from_f32(&data, &x[0][0], &y[0][0], 4, 2, 1));
    CHECK(bpl_net_fit(net, data, 300, 4, NULL, NULL));
    CHECK(bpl_net_predict(net, &x[0][0], 4, out, 4));
    for (int i = 0; i < 4; i++) {
        printf("%g xor %g -> %.3f\n", x[i][0], x[i][1], out[i]);
        correct += (out[i] > 0.5f) == (y[i][0] > 0.5f);
    }
done:
    if (rc != BPL_OK)
        fprintf(stderr, "xor: %s: %s\n", bpl_strerror(rc), bpl_last_error_message());
    bpl_dataset_destroy(data);
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
    return rc == BPL_OK && correct == 4 ? 0 : 1;
}
