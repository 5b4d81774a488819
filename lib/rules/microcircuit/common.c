/*
 * common.c - dendritic cortical microcircuits (Sacramento, Costa,
 * Bengio & Senn 2018, NeurIPS): "microcircuit".
 *
 * Every hidden layer l has pyramidal neurons (basal v_B, apical v_A, soma u)
 * and one interneuron per neuron of the layer above (dendrite v_I, soma u_I).
 * Weights: bottom-up W_l ("weight", "bias"), top-down B_l ("feedback",
 * [units(l)][units(l+1)]), pyramidal-to-interneuron W_IP ("ip", "ip_bias",
 * [units(l+1)][units(l)]) and interneuron-to-pyramidal W_PI ("pi",
 * [units(l)][units(l+1)]).  Rates are phi(u), phi the logistic function.
 *
 *   v_B,l = W_l phi(u_{l-1}) + b_l      v_I,l = W_IP,l phi(u_l) + c_l
 *   v_A,l = B_l phi(u_{l+1}) + W_PI,l phi(u_I,l)
 *
 * except that the first layer's input rates are the input itself, x.
 *
 * In the self-predicting state (W_PI = -B, W_IP matching the layer above)
 * interneurons cancel the top-down input and apical potentials are zero; a
 * target at the output breaks the balance, and the apical potential carries
 * the error down.  Plasticity (Eqs. 7-10):
 *
 *   W_l    += lr (phi(u_l) - phi(k v_B,l)) r_{l-1}^T    (k: the soma's attenuation)
 *   W_IP,l += lr (phi(u_I,l) - phi(k_I v_I,l)) r_l^T
 *   W_PI,l += lr (0 - v_A,l) r_I,l^T                    (optional)
 *   B_l    += lr (phi(u_l) - phi(B_l r_{l+1})) r_{l+1}^T (optional)
 *
 * "steady" (the default, and how the paper trained MNIST): each example is
 * one bottom-up sweep, the output nudged towards its target with mixing
 * factor lambda_out, and one top-down sweep in which interneurons mix in the
 * soma above (lambda_inter) and pyramidal somata their apical potential
 * (lambda_apical).  Every synapse learns with the presynaptic rates that
 * formed its compartment's potential: basal and interneuron dendrites are
 * computed in the bottom-up sweep (W and W_IP learn with its rates),
 * apical dendrites in the top-down sweep (W_PI learns with phi(u_I), B
 * with the nudged phi(u_{l+1})); docs/rules/microcircuit.md says why.
 * Every update is a mean over the batch.
 * "continuous": the Euler-integrated dynamics of Eqs. 1-2 with optional
 * noise and low-pass filtered plasticity, for small tasks.
 *
 * The neurons are the model's own (logistic); declared activations are
 * ignored.  "activation" buffers hold the bottom-up rates, which are also the
 * predictions; "derivative" gives the diagnostic phi'.  Its maths is dense:
 * the public API and the dense products of kinds/dense.c are used.
 */
#include "microcircuit.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "bpl_internal.h" /* declares the constructor; bpl__calloc */

/* The number of training steps taken: it ends the pre-training. */
typedef struct microcircuit {
    uint64_t steps;
    int resumed;     /* its state came from a saved net: keep what attach would set */
    int pretraining; /* this step's plan, made by compute_targets */
} microcircuit;

static void read_settings(const bpl_rule *r, settings *s)
{
    s->mode = (int)bpl__rule_getf(r, "mode");
    s->learn_topdown = bpl__rule_getf(r, "learn_topdown") != 0.0f;
    s->learn_pi = bpl__rule_getf(r, "learn_pi") != 0.0f;
    s->rescale = bpl__rule_getf(r, "rescale_lr") != 0.0f;
    s->inter_nudged = (int)bpl__rule_getf(r, "interneuron_target") == 0;
    s->lambda_out = bpl__rule_getf(r, "lambda_out");
    s->lambda_inter = bpl__rule_getf(r, "lambda_inter");
    s->lambda_apical = bpl__rule_getf(r, "lambda_apical");
    s->target_high = bpl__rule_getf(r, "target_high");
    s->target_low = bpl__rule_getf(r, "target_low");
    s->dt = bpl__rule_getf(r, "dt");
    s->g_lk = bpl__rule_getf(r, "g_lk");
    s->g_a = bpl__rule_getf(r, "g_A");
    s->g_b = bpl__rule_getf(r, "g_B");
    s->g_d = bpl__rule_getf(r, "g_D");
    s->g_som = bpl__rule_getf(r, "g_som");
    s->noise = bpl__rule_getf(r, "noise");
    s->tau_w = bpl__rule_getf(r, "tau_w");
    s->steps = (size_t)bpl__rule_getf(r, "steps");
    s->pretrain_steps = (size_t)bpl__rule_getf(r, "pretrain_steps");
}

static int tensor(bpl_net *net, size_t l, const char *name, float **out)
{
    return bpl_layer_tensor(bpl_net_layer(net, l), name, out, NULL, NULL);
}

BPL__MULTIVERSION
void bpl__mc_phi_of(const float *u, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = phi(u[i]);
}

/* out = beta out + in M^T (+ bias), in [batch][cols], M [rows][cols]. */
void bpl__mc_project(bpl_net *net, const float *in, const float *m, const float *bias,
                     size_t batch, size_t rows, size_t cols, float beta, float *out)
{
    bpl__dense_map(net, in, m, bias, batch, rows, cols, beta, BPL_ACT_LINEAR, out);
}

/* ---- attach ----------------------------------------------------------------- */

/* The self-predicting state: W_PI = -B, and W_IP reproduces what the layer
 * above's soma will be without a target: its basal potential, attenuated by
 * (1 - lambda_apical) below the output. */
static int self_predict(bpl_net *net, const settings *s)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l < top; l++) {
        size_t n = bpl__rule_units(net, l), n_above = bpl__rule_units(net, l + 1);
        float *b, *pi, *ip, *ip_bias, *w_above, *b_above;
        TRY(tensor(net, l, "feedback", &b));
        TRY(tensor(net, l, "pi", &pi));
        TRY(tensor(net, l, "ip", &ip));
        TRY(tensor(net, l, "ip_bias", &ip_bias));
        TRY(tensor(net, l + 1, "weight", &w_above));
        TRY(tensor(net, l + 1, "bias", &b_above));
        float k = l + 1 == top ? 1.0f : 1.0f - s->lambda_apical;
        for (size_t i = 0; i < n * n_above; i++) {
            pi[i] = -b[i];
            ip[i] = k * w_above[i];
        }
        for (size_t j = 0; j < n_above; j++)
            ip_bias[j] = k * b_above[j];
    }
    return BPL_OK;
}

static int add_tensors(bpl_net *net, const settings *s, double topdown_scale)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l < top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l), n_above = bpl__rule_units(net, l + 1);
        TRY(bpl_layer_add_tensor(layer, "feedback", n, n_above,
                                 s->learn_topdown ? BPL_GROUP_FEEDBACK : BPL_GROUP_NONE,
                                 BPL_INIT_GLOROT_UNIFORM, topdown_scale, NULL));
        TRY(bpl_layer_add_tensor(layer, "pi", n, n_above,
                                 s->learn_pi ? BPL_GROUP_FEEDBACK : BPL_GROUP_NONE,
                                 BPL_INIT_GLOROT_UNIFORM, 1.0, NULL));
        TRY(bpl_layer_add_tensor(layer, "ip", n_above, n, BPL_GROUP_FEEDBACK,
                                 BPL_INIT_GLOROT_UNIFORM, 1.0, NULL));
        TRY(bpl_layer_add_tensor(layer, "ip_bias", 1, n_above, BPL_GROUP_FEEDBACK,
                                 BPL_INIT_ZERO, 0.0, NULL));
    }
    return BPL_OK;
}

/* The rule's buffers, in the order attach adds them, and where each goes
 * in an mc_layer: every layer's pyramidal neurons, the apical dendrites
 * below the output, and the interneurons (one per neuron above). */
enum side { EVERY, APICAL, INTER };
typedef struct slot {
    const char *name;
    size_t at;
    enum side side;
} slot;
#define SLOT(field, side) {#field, offsetof(mc_layer, field), side}
static const slot slots[] = {
    SLOT(v_basal, EVERY),     SLOT(u, EVERY),          SLOT(rate_u, EVERY),
    SLOT(derivative, EVERY),  SLOT(scratch, EVERY),    SLOT(noise, EVERY),
    SLOT(v_apical, APICAL),   SLOT(v_inter, INTER),    SLOT(u_inter, INTER),
    SLOT(rate_inter, INTER),  SLOT(err_inter, INTER),  SLOT(noise_inter, INTER),
};
#undef SLOT
enum { N_SLOTS = sizeof slots / sizeof slots[0] };

const char *const bpl__mc_tensor_names[MC_N_TENSORS] = {"weight", "bias", "feedback",
                                                        "pi",     "ip",   "ip_bias"};

static int add_buffers(bpl_net *net)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t i = 0; i < N_SLOTS; i++) {
            if (slots[i].side != EVERY && l == top)
                continue;
            size_t size = bpl__rule_units(net, slots[i].side == INTER ? l + 1 : l);
            TRY(bpl_layer_add_buffer(layer, slots[i].name, size));
        }
    }
    return BPL_OK;
}

/* Whether tensor k learns, so that it has a gradient. */
static int learns(const settings *s, size_t k)
{
    return k == MC_FEEDBACK ? s->learn_topdown : k == MC_PI ? s->learn_pi : 1;
}

int bpl__mc_layers(bpl_net *net, const settings *s, int grads, mc_layer *L)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        mc_layer *m = &L[l];
        memset(m, 0, sizeof *m);
        m->layer = bpl_net_layer(net, l);
        m->n = bpl__rule_units(net, l);
        m->n_in = bpl_layer_inputs(m->layer);
        m->n_above = l < top ? bpl__rule_units(net, l + 1) : 0;
        TRY(bpl__rule_buffer(net, l, "activation", &m->activation));
        TRY(bpl__rule_buffer(net, l, "delta", &m->delta));
        for (size_t i = 0; i < N_SLOTS; i++)
            if (slots[i].side == EVERY || l < top)
                TRY(bpl__rule_buffer(net, l, slots[i].name,
                                     (float **)(void *)((char *)m + slots[i].at)));
        for (size_t k = 0; k < (l < top ? MC_N_TENSORS : MC_FEEDBACK); k++) {
            const char *name = bpl__mc_tensor_names[k];
            TRY(bpl_layer_tensor(m->layer, name, &m->t[k], NULL, NULL));
            if (grads && learns(s, k))
                TRY(bpl_layer_tensor_grad(m->layer, name, &m->g[k], NULL, NULL));
        }
    }
    return BPL_OK;
}

static int mc_attach(microcircuit *self, bpl_net *net, const settings *s)
{
    if (bpl_net_layer_count(net) < 2)
        return bpl_error_set(BPL_ERR_STATE, "microcircuits need a hidden layer");
    bpl_rule *rule = bpl_net_rule(net);
    TRY(add_tensors(net, s, bpl__rule_getf(rule, "topdown_scale")));
    /* A loaded net keeps its weights; a fresh attach initialises them. */
    if (!self->resumed && bpl__rule_getf(rule, "self_predicting_init") != 0.0f)
        TRY(self_predict(net, s));
    TRY(bpl__mc_add_filters(net, s));
    TRY(add_buffers(net));
    int learned = s->learn_topdown || s->learn_pi;
    return bpl_rule_set_property(rule, BPL_PROP_SEPARATE_WEIGHTS_LEARNED,
                                 s->learn_topdown ? BPL_TICK_YES : BPL_TICK_PARTIAL,
                                 s->learn_topdown ? "top-down and interneuron weights learned"
                                 : learned
                                     ? "interneuron weights learned, top-down fixed"
                                     : "interneuron W_IP learned; top-down and W_PI fixed");
}

/* The output's target potential: the logit of a rate between target_low
 * and target_high. */
float bpl__mc_target_potential(const settings *s, float y)
{
    float rate = s->target_low + (s->target_high - s->target_low) * y;
    return logf(rate / (1.0f - rate));
}

/* post [batch][rows] x pre [batch][cols] -> [rows][cols] / batch, and the
 * column sums of post / batch for a bias. */
void bpl__mc_outer(bpl_net *net, const float *post, const float *pre, size_t batch,
                   size_t rows, size_t cols, float *out, float *bias_out)
{
    bpl__dense_outer(net, post, pre, batch, rows, cols, 1.0f / (float)batch, 1.0f,
                     (float)batch, out, bias_out);
}

/* ---- the hooks ------------------------------------------------------------------- */

typedef struct mc_rule {
    microcircuit state;
    work wk; /* continuous mode's scratch, sized at attach */
    settings s;
    uint64_t seen;     /* the parameters' generation `s` was read at */
    mc_layer *layers;  /* one per layer, filled by each hook */
} mc_rule;

/* The hyperparameters, read again only when one has changed. */
static const settings *settings_of(mc_rule *self, bpl_net *net)
{
    const bpl_rule *r = bpl_net_rule(net);
    if (bpl__rule_settings_stale(r, &self->seen))
        read_settings(r, &self->s);
    return &self->s;
}

static int mc_forward(void *self_, bpl_net *net, const float *x, size_t batch)
{
    mc_rule *self = self_;
    const settings *s = settings_of(self, net);
    mc_layer *L = self->layers;
    TRY(bpl__mc_layers(net, s, 0, L));
    if (s->mode != CONTINUOUS) {
        return bpl__mc_bottom_up(net, L, x, batch);
    }
    bpl__mc_rest(net, L, batch);
    TRY(bpl__mc_simulate(net, L, s, x, NULL, batch, NULL));
    bpl__mc_publish_rates(net, L, batch);
    return BPL_OK;
}

static int zero_gradients(bpl_net *net)
{
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            const char *name = bpl_layer_tensor_name(layer, t);
            float *g;
            size_t rows, cols;
            if (bpl_layer_tensor_grad(layer, name, &g, &rows, &cols) == BPL_OK)
                memset(g, 0, rows * cols * sizeof *g);
        }
    }
    return BPL_OK;
}

static int mc_targets(void *self_, bpl_net *net, const float *y, size_t batch)
{
    mc_rule *self = self_;
    const settings *s = settings_of(self, net);
    self->state.pretraining = self->state.steps < s->pretrain_steps;
    const float *target = self->state.pretraining ? NULL : y;
    mc_layer *L = self->layers;
    TRY(bpl__mc_layers(net, s, s->mode == CONTINUOUS, L));
    if (s->mode != CONTINUOUS) {
        bpl__mc_top_down(net, L, s, target, batch);
        bpl__mc_steady_errors(net, L, s, batch);
        return BPL_OK;
    }
    /* The plasticity is integrated along the simulation, into the
     * gradients and the working copy of the filters. */
    const float *x;
    TRY(bpl_layer_input(bpl_net_layer(net, 0), &x, NULL, NULL));
    TRY(zero_gradients(net));
    TRY(bpl__mc_begin_filters(net, &self->wk));
    return bpl__mc_simulate(net, L, s, x, target, batch, &self->wk);
}

/* With B learned and W_PI not, W_PI is kept at -B, the state Eq. 9 drives it
 * to: then the apical potential without a target stays B (r_above - r_I),
 * zero once the interneurons match the layer above, however B moves.  Left
 * to lag behind B, W_PI no longer cancels the top-down input, and that
 * mismatch swamps the rescaled errors of the hidden layers. */
static int follow_topdown(bpl_net *net, mc_layer *L, const settings *s)
{
    if (!s->learn_topdown || s->learn_pi)
        return BPL_OK;
    TRY(bpl__mc_layers(net, s, 0, L));
    for (size_t l = 0; l < bpl__rule_top(net); l++) {
        const float *b = L[l].t[MC_FEEDBACK];
        float *pi = L[l].t[MC_PI];
        size_t n = L[l].n * L[l].n_above;
        for (size_t i = 0; i < n; i++)
            pi[i] = -b[i];
    }
    return BPL_OK;
}

static int mc_gradients(void *self_, bpl_net *net, unsigned int *groups)
{
    mc_rule *self = self_;
    const settings *s = settings_of(self, net);
    size_t batch;
    float *unused;
    TRY(bpl_layer_buffer(bpl_net_layer(net, 0), "activation", &unused, &batch, NULL));
    int forward = !self->state.pretraining;
    if (s->mode != CONTINUOUS) {
        TRY(bpl__mc_layers(net, s, 1, self->layers));
        TRY(bpl__mc_steady_gradients(net, self->layers, s, batch, forward));
    } else {
        TRY(bpl__mc_check_filters(net, &self->wk)); /* before anything is applied */
    }
    *groups = 1u << BPL_GROUP_FEEDBACK;
    if (forward)
        *groups |= 1u << BPL_GROUP_FORWARD;
    return BPL_OK;
}

/* The step stands: its filters become the net's, W_PI follows B, and the
 * step counts towards the end of the pre-training. */
static int mc_after_apply(void *self_, bpl_net *net)
{
    mc_rule *self = self_;
    const settings *s = settings_of(self, net);
    if (s->mode == CONTINUOUS)
        TRY(bpl__mc_copy_filters(net, &self->wk, 1));
    TRY(follow_topdown(net, self->layers, s));
    bpl__count_step(&self->state.steps);
    return BPL_OK;
}

/* The step count (it ends the pre-training) is the rule's saved state,
 * given back before attach. */
static int mc_save_state(void *self_, void *data, size_t capacity, size_t *size_out)
{
    const mc_rule *self = self_;
    return bpl__count_state_save(self->state.steps, data, capacity, size_out);
}

static int mc_load_state(void *self_, bpl_net *net, const void *data, size_t size)
{
    mc_rule *self = self_;
    (void)net;
    TRY(bpl__count_state_load(data, size, BPL__MAX_RULE_STEPS, &self->state.steps));
    self->state.resumed = 1;
    return BPL_OK;
}

/* ---- construction ------------------------------------------------------------------ */

static int mc_attach_with_work(void *self_, bpl_net *net)
{
    mc_rule *self = self_;
    TRY(mc_attach(&self->state, net, settings_of(self, net)));
    bpl__free(self->layers);
    self->layers = bpl__calloc(bpl_net_layer_count(net), sizeof *self->layers);
    if (!self->layers)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    return bpl__mc_work_attach(net, &self->wk);
}

static void mc_destroy(void *self_)
{
    mc_rule *self = self_;
    bpl__mc_work_free(&self->wk);
    bpl__free(self->layers);
    bpl__free(self);
}

static const bpl__param_spec params[] = {
    {"mode", BPL_PARAM_CHOICE, STEADY, 0, 0, "steady|continuous",
     "steady: a bottom-up and a top-down sweep per example; continuous: Euler dynamics"},
    {"lambda_out", BPL_PARAM_REAL, 0.2, 1e-6, 1, NULL,
     "steady: how far the output soma moves towards its target"},
    {"lambda_inter", BPL_PARAM_REAL, 0.1, 0, 1, NULL,
     "steady: how far interneurons move towards the soma above"},
    {"lambda_apical", BPL_PARAM_REAL, 0.1, 1e-6, 0.999, NULL,
     "steady: weight of the apical potential in the pyramidal soma"},
    {"target_high", BPL_PARAM_REAL, 0.8, 1e-3, 0.999, NULL, "target rate of the right class"},
    {"target_low", BPL_PARAM_REAL, 0.1, 1e-3, 0.999, NULL, "target rate of the other classes"},
    {"rescale_lr", BPL_PARAM_BOOL, 1, 0, 1, NULL,
     "steady: divide pyramidal updates by the mixing factors their error went through"},
    {"interneuron_target", BPL_PARAM_CHOICE, 0, 0, 0, "nudged|bottom_up",
     "steady: interneuron plasticity predicts the soma above with (nudged, Eq. 8) or "
     "without (bottom_up) the target's influence"},
    {"learn_topdown", BPL_PARAM_BOOL, 0, 0, 1, NULL,
     "learn the top-down weights B (Eq. 10) with the fb_ optimiser"},
    {"learn_pi", BPL_PARAM_BOOL, 0, 0, 1, NULL,
     "learn the interneuron-to-pyramidal weights (Eq. 9) with the fb_ optimiser"},
    {"self_predicting_init", BPL_PARAM_BOOL, 1, 0, 1, NULL,
     "start in the self-predicting state (W_PI = -B, W_IP from the weights above)"},
    {"pretrain_steps", BPL_PARAM_INT, 0, 0, 1e12, NULL,
     "batches without a target in which only interneuron-side weights learn"},
    {"topdown_scale", BPL_PARAM_REAL, 1.0, 0, 1e3, NULL,
     "gain of the Glorot-uniform top-down weights B"},
    {"dt", BPL_PARAM_REAL, 0.1, 1e-4, 10, NULL, "continuous: Euler time step"},
    {"steps", BPL_PARAM_INT, 100, 1, BPL__MAX_TIME_STEPS, NULL,
     "continuous: steps of each half of a presentation (settling, then with target)"},
    {"g_lk", BPL_PARAM_REAL, 0.1, 0, 100, NULL, "continuous: leak conductance"},
    {"g_A", BPL_PARAM_REAL, 0.8, 0, 100, NULL, "continuous: apical conductance"},
    {"g_B", BPL_PARAM_REAL, 1.0, 0, 100, NULL, "continuous: basal conductance"},
    {"g_D", BPL_PARAM_REAL, 1.0, 0, 100, NULL, "continuous: interneuron dendritic conductance"},
    {"g_som", BPL_PARAM_REAL, 0.8, 0, 100, NULL,
     "continuous: somatic nudging conductance (target, and soma above to interneuron)"},
    {"noise", BPL_PARAM_REAL, 0.0, 0, 100, NULL,
     "continuous: standard deviation of the somatic noise per unit time"},
    {"tau_w", BPL_PARAM_REAL, 30.0, 1e-3, 1e6, NULL,
     "continuous: time constant of the plasticity's low-pass filter"},
};

static int add_params(bpl_rule *rule, const void *context)
{
    (void)context;
    TRY(bpl__rule_add_params(rule, params, sizeof params / sizeof params[0]));
    TRY(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_ADAM, 1e-3));
    /* Read when the rule is attached: which weights learn, their start, the
     * continuous mode's filters. */
    static const char *const shaping[] = {"mode", "learn_topdown", "learn_pi",
                                          "topdown_scale", "self_predicting_init"};
    return bpl__rule_fix_params(rule, shaping, sizeof shaping / sizeof shaping[0]);
}

const bpl_rule_vtable bpl__microcircuit_vtable = {
    .version = BPL_RULE_VTABLE_VERSION,
    .name = "microcircuit",
    .attach = mc_attach_with_work,
    .forward = mc_forward,
    .compute_targets = mc_targets,
    .gradients = mc_gradients,
    .after_apply = mc_after_apply,
    .destroy = mc_destroy,
    .save_state = mc_save_state,
    .load_state = mc_load_state,
};

int bpl__rule_microcircuit_create(bpl_rule **out)
{
    mc_rule *self = bpl__calloc(1, sizeof *self);
    if (!self)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    /* Recommended: the documented run, 97.8% after 40 epochs (docs/results.md).
     * The model's rates are its own logistic functions. */
    static const char *const recommended[] = {
        "hidden", "500,500", "init", "glorot_uniform", "optimizer", "adam", "lr", "0.001",
        "fb_optimizer", "adam", "fb_lr", "0.001", "lr_decay", "0.95", "batch_size", "32",
        "epochs", "40", "ignores", "activation", NULL};
    static const bpl__rule_card card = {
        "Dendritic cortical microcircuits (Sacramento, Costa, Bengio & Senn 2018): "
        "interneurons cancel top-down input in the self-predicting state; a nudged output "
        "leaves an apical error that drives local plasticity.",
        {BPL_TICK_PARTIAL, BPL_TICK_YES, BPL_TICK_YES, BPL_TICK_YES, BPL_TICK_PARTIAL,
         BPL_TICK_NOT_APPLICABLE, BPL_TICK_YES},
        {"in the limit of weak feedback with B = W^T", NULL,
         "errors live in the apical dendrites of the same neurons",
         "basal, apical and somatic compartments; interneurons",
         "interneuron W_IP learned; top-down and W_PI fixed", NULL,
         "the apical potential: top-down minus interneuron prediction"}, recommended,
        BPL__NEEDS_DENSE};
    return bpl__rule_build(out, &bpl__microcircuit_vtable, self, &card, 1e-3, add_params, NULL);
}
