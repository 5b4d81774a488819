/*
 * dense_rule.h - what the built-in rules share: how they are created and
 * declare their hyperparameters, their step counters, and, for the rules
 * that run the standard dense forward pass and train every layer on its
 * weight gradient (backprop, feedback alignment, direct feedback alignment),
 * the forward pass and gradients: those three differ only in how the output
 * error reaches the hidden layers.
 */
#ifndef BPL_DENSE_RULE_H
#define BPL_DENSE_RULE_H

#include "bpl_internal.h"

/* The most time steps a hyperparameter may ask one step or prediction to
 * simulate (the microcircuit's `steps`, the segregated rule's phase and test
 * lengths and averaging windows): model files are untrusted, and this bound
 * is what keeps the cost of a step within the documented budget (see
 * "Untrusted model files" in docs/reliability.md). */
#define BPL__MAX_TIME_STEPS 10000
/* The most steps a phase-length jitter adds (a Wald(2, 1) draw from 24-bit
 * uniforms stays below 140 anyway). */
#define BPL__MAX_JITTER 1000.0

/* Return the status of `call` unless it is BPL_OK. */
#define TRY(call)                                                                        \
    do {                                                                                 \
        int rc_ = (call);                                                                \
        if (rc_ != BPL_OK)                                                               \
            return rc_;                                                                  \
    } while (0)

int bpl__dense_forward(void *self, bpl_net *net, const float *x, size_t batch);
/* Every layer's weight gradients from its "delta"; trains the forward group. */
int bpl__dense_gradients(void *self, bpl_net *net, unsigned int *groups);

/* The output error, then sent down layer by layer through each layer's
 * weight (`matrix` NULL: backprop) or its tensor `matrix`, shaped like the
 * weight (`is_forward_weight`) or, on dense layers only, like the weight's
 * transpose (feedback alignment's B: other kinds' feedback tensors always
 * have the weight's layout, and go down by the products backprop runs); a
 * layer without parameters (bpl_layer_param_count 0) sends through its own
 * Jacobian and needs no `matrix`. */
int bpl__dense_send_down(bpl_net *net, const float *y, size_t batch, const char *matrix,
                         int is_forward_weight);

/* The review's property table of a rule: ticks and notes (may be NULL) in
 * enum bpl_property order; and its recommended training set-up, key and
 * value pairs ended by NULL (see bpl_rule_set_recommendation). */
typedef struct bpl__rule_card {
    const char *description;
    int ticks[7];
    const char *notes[7];
    const char *const *recommended;
    unsigned needs; /* of every layer's kind: enum bpl_needs, as a user rule declares,
                       and internal BPL__CAN_* bits (rule->builtin_needs) */
} bpl__rule_card;

/* What the rules that send errors down through the layers need of a kind,
 * and what those whose own maths multiplies by W as a matrix need. */
#define BPL__NEEDS_BACKWARD (BPL_NEEDS_FORWARD | BPL_NEEDS_SEND_ERROR | BPL_NEEDS_GRADIENTS)
#define BPL__NEEDS_DENSE (BPL__NEEDS_BACKWARD | BPL_NEEDS_DENSE)
/* Difference target propagation: a learned inverse of every layer, dense
 * (a layer with a dense matrix) or of the weight's shape run through the
 * kind's transposed map (a transposed convolution). */
#define BPL__NEEDS_INVERSE (BPL__NEEDS_BACKWARD | BPL__CAN_TRANSPOSE)

/* One row of a rule's hyperparameter table (see bpl_rule_add_param). */
typedef struct bpl__param_spec {
    const char *name;
    int kind;
    double def, lo, hi;
    const char *choices, *doc;
} bpl__param_spec;

int bpl__rule_add_params(bpl_rule *rule, const bpl__param_spec *specs, size_t n);
/* bpl_rule_fix_param for each of the n names. */
int bpl__rule_fix_params(bpl_rule *rule, const char *const *names, size_t n);

/* Declares what a rule has beyond its forward optimiser. */
typedef int (*bpl__declare_fn)(bpl_rule *rule, const void *context);

/* Create a built-in rule over `vtable` and `self`: its card, the forward
 * optimiser with `default_lr`, then whatever `declare` (may be NULL) adds,
 * given `context`, then the card's recommended set-up.  Takes `self`: on failure it is released through
 * vtable->destroy. */
int bpl__rule_build(bpl_rule **out, const bpl_rule_vtable *vtable, void *self,
                    const bpl__rule_card *card, double default_lr, bpl__declare_fn declare,
                    const void *context);

/* A rule without state of its own, plus "feedback_scale", the gain of fixed
 * random feedback matrices the attach hook draws. */
int bpl__feedback_rule_create(bpl_rule **out, const bpl_rule_vtable *vtable,
                              const bpl__rule_card *card, double default_lr);

/* Declares "feedback_scale" (a bpl__declare_fn; context unused), for a rule
 * that declares more hyperparameters beside it. */
int bpl__declare_feedback_scale(bpl_rule *rule, const void *context);

/* Add a fixed random Glorot-uniform feedback tensor, scaled by the rule's
 * "feedback_scale", to a layer. */
int bpl__add_feedback(bpl_net *net, bpl_layer *layer, size_t rows, size_t cols);

/* The output layer's index, a layer's size, layer l's batch buffer `name`,
 * and the value of one of the attached rule's own hyperparameters (declared
 * by the rule, so the look-up cannot fail). */
size_t bpl__rule_top(const bpl_net *net);
size_t bpl__rule_units(bpl_net *net, size_t l);
int bpl__rule_buffer(bpl_net *net, size_t l, const char *name, float **out);
float bpl__rule_getf(const bpl_rule *rule, const char *name);

#endif
