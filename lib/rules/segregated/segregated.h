/*
 * segregated.h - what the files of the segregated-dendrites rule
 * ("segregated", described in common.c) share: the model's constants and
 * each mode's entry points.  common.c holds the hyperparameters, the
 * paper's initialisation, attach, the errors, gradients and hooks; rate.c
 * the rate mode's sweeps; spiking.c the continuous-time simulation.
 */
#ifndef BPL_SEGREGATED_H
#define BPL_SEGREGATED_H

#include "../dense_rule.h"

enum mode { RATE, SPIKING };
enum feedback { RANDOM, SYMMETRIC };

/* The model's constants, read from the hyperparameters when they change. */
typedef struct model {
    int mode, feedback, learn_feedback;
    float lambda_max, g_l, g_b, g_a, g_d, e_e, e_i, teaching;
    float k_b, k_d, p_hidden, p_final;
    float dt, tau_s, tau_l;
    size_t phase_steps, integration_steps, test_steps, test_average;
    int jitter;
} model;

/* The spiking simulation's buffers of one layer (spiking.c). */
typedef struct sim sim;

/* The input's spike trains, kept on layer 0. */
typedef struct input_sim {
    float *spikes, *trace_l, *trace_s, *psp;
} input_sim;

/* The spiking mode's state: time runs on from one example to the next in
 * each row of the batch, and this many rows have been started; and every
 * layer's simulation buffers, looked up once per hook rather than in every
 * time step. */
typedef struct seg_spiking {
    size_t started_rows;
    sim *sims; /* one per layer, sized at attach */
    input_sim in;
} seg_spiking;

/* ---- rate.c ------------------------------------------------------------------ */

/* Forward phase: activation = sigma(C), presyn = the rates below. */
int bpl__seg_rate_forward(bpl_net *net, const model *m, const float *x, size_t batch);
/* Target phase: the output's teacher-driven rates and every plateau. */
int bpl__seg_rate_target(bpl_net *net, const model *m, const float *y, size_t batch);

/* ---- spiking.c --------------------------------------------------------------- */

/* The forward phase of a step, or a prediction: activation = sigma(mean C),
 * plateau_f, and presyn = the mean basal PSPs. */
int bpl__seg_spiking_forward(bpl_net *net, seg_spiking *sp, const model *m, const float *x,
                             size_t batch);
/* The target phase, continuing from the forward phase's state. */
int bpl__seg_spiking_target(bpl_net *net, seg_spiking *sp, const model *m, const float *y,
                            size_t batch);
/* Room for every layer's simulation buffers (at attach), and its release. */
int bpl__seg_spiking_attach(bpl_net *net, seg_spiking *sp);
void bpl__seg_spiking_free(seg_spiking *sp);

#endif
