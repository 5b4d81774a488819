/*
 * scenarios.h - the training runs whose results must never change without
 * intent: every built-in rule in each of its modes, trained a fixed number
 * of steps from a fixed seed on fixed data.
 *
 * tests/reference/make_reference.c ran each once and saved the trained net
 * (tests/reference/v1/<name>.bpl, format version 1) and what that file
 * predicts once loaded (<name>.pred).  tests/test_reference.c runs each
 * again with the library as it is now and compares.  The files are never
 * regenerated: they are what the code computed when they were made, and a
 * change in what a rule computes must show as a failure.
 *
 * Only the public API is used, and only its stable parts, so that the same
 * scenario can be replayed by later versions of the library.
 */
#ifndef BPL_REFERENCE_SCENARIOS_H
#define BPL_REFERENCE_SCENARIOS_H

#include <stddef.h>
#include <stdint.h>

#include "bioplaus.h"

enum { REF_INPUTS = 6, REF_HIDDEN1 = 5, REF_HIDDEN2 = 4, REF_OUTPUTS = 3 };
enum { REF_STEPS = 6, REF_BATCH = 5 };       /* bpl_net_train_batch steps */
enum { REF_FIT_ROWS = 7, REF_FIT_BATCH = 3 }; /* then one epoch of bpl_net_fit */
enum { REF_PREDICT_ROWS = 8 };
#define REF_SEED UINT64_C(20261206)

typedef struct ref_scenario {
    const char *name;
    const char *rule;
    int hidden, output, loss;   /* activations of both hidden layers and the output */
    const char *params;         /* "key=value;..." set before attaching */
    const char *frozen;         /* "layer:tensor" frozen before training, or NULL */
} ref_scenario;

static const ref_scenario ref_scenarios[] = {
    {"backprop-adam", "backprop", BPL_ACT_TANH, BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY,
     "lr=0.01", NULL},
    {"backprop-sgd-decay-frozen", "backprop", BPL_ACT_RELU, BPL_ACT_SIGMOID,
     BPL_LOSS_CROSS_ENTROPY, "optimizer=sgd;lr=0.1;weight_decay=0.001", "1:bias"},
    {"backprop-rmsprop-mse", "backprop", BPL_ACT_SIGMOID, BPL_ACT_LINEAR, BPL_LOSS_MSE,
     "optimizer=rmsprop;lr=0.01", NULL},
    {"fa-momentum", "fa", BPL_ACT_TANH, BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY,
     "optimizer=momentum;lr=0.05;feedback_scale=0.5", NULL},
    {"dfa-adam", "dfa", BPL_ACT_TANH, BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY, "lr=0.01",
     NULL},
    {"tp-parallel-pretrain", "tp", BPL_ACT_TANH, BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY,
     "lr=0.01;fb_lr=0.01;pretrain_steps=2", NULL},
    {"dtp-parallel", "dtp", BPL_ACT_TANH, BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY,
     "lr=0.01;fb_lr=0.01", NULL},
    {"dtp-alternating-label", "dtp", BPL_ACT_TANH, BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY,
     "lr=0.01;fb_lr=0.01;schedule=alternating;alternate_steps=2;first_target=label;"
     "inverse_loss=denoising",
     NULL},
    {"sdtp-parallel", "sdtp", BPL_ACT_TANH, BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY,
     "lr=0.01;fb_lr=0.01", NULL},
    {"sdtp-auxiliary-alternating", "sdtp", BPL_ACT_TANH, BPL_ACT_SOFTMAX,
     BPL_LOSS_CROSS_ENTROPY,
     "lr=0.01;fb_lr=0.01;auxiliary_outputs=4;schedule=alternating;alternate_steps=3", NULL},
    {"segregated-rate", "segregated", BPL_ACT_SIGMOID, BPL_ACT_SIGMOID,
     BPL_LOSS_CROSS_ENTROPY, "lr=0.05", NULL},
    {"segregated-rate-symmetric", "segregated", BPL_ACT_SIGMOID, BPL_ACT_SIGMOID,
     BPL_LOSS_CROSS_ENTROPY, "lr=0.05;feedback=symmetric", NULL},
    {"segregated-rate-learned-feedback", "segregated", BPL_ACT_SIGMOID, BPL_ACT_SIGMOID,
     BPL_LOSS_CROSS_ENTROPY, "lr=0.05;learn_feedback=1;fb_lr=0.05;feedback_sparsity=0.5",
     NULL},
    {"segregated-spiking", "segregated", BPL_ACT_SIGMOID, BPL_ACT_SIGMOID,
     BPL_LOSS_CROSS_ENTROPY,
     "lr=0.05;mode=spiking;phase_steps=4;integration_steps=2;test_steps=6;test_average=3",
     NULL},
    {"microcircuit-steady", "microcircuit", BPL_ACT_SIGMOID, BPL_ACT_SIGMOID,
     BPL_LOSS_CROSS_ENTROPY, "lr=0.01", NULL},
    {"microcircuit-steady-learned", "microcircuit", BPL_ACT_SIGMOID, BPL_ACT_SIGMOID,
     BPL_LOSS_CROSS_ENTROPY,
     /* SGD: Adam divides the tiny diluted gradients of this set-up by
      * their own size, so a BLAS's rounding would flip its steps */
     "optimizer=sgd;lr=0.5;fb_optimizer=sgd;fb_lr=0.5;learn_topdown=1;learn_pi=1;"
     "interneuron_target=bottom_up;pretrain_steps=2;rescale_lr=0",
     NULL},
    {"microcircuit-continuous", "microcircuit", BPL_ACT_SIGMOID, BPL_ACT_SIGMOID,
     BPL_LOSS_CROSS_ENTROPY, "lr=0.01;mode=continuous;steps=5;noise=0.1", NULL},
};
enum { REF_N_SCENARIOS = sizeof ref_scenarios / sizeof ref_scenarios[0] };

/* Values from a fixed 64-bit LCG, the same on every machine and version. */
static inline float ref_uniform(uint64_t *state)
{
    *state = *state * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (float)((*state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* x [rows][REF_INPUTS] in [-1, 1), y [rows][REF_OUTPUTS] one-hot. */
static inline void ref_data(uint64_t seed, float *x, float *y, size_t rows)
{
    uint64_t state = seed;
    for (size_t i = 0; i < rows * REF_INPUTS; i++)
        x[i] = ref_uniform(&state);
    for (size_t r = 0; r < rows; r++) {
        size_t k = (size_t)((ref_uniform(&state) + 1.0f) * 0.5f * REF_OUTPUTS) % REF_OUTPUTS;
        for (size_t j = 0; j < REF_OUTPUTS; j++)
            y[r * REF_OUTPUTS + j] = j == k ? 1.0f : 0.0f;
    }
}

#endif
