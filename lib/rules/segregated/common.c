/*
 * common.c - segregated dendrites (Guerguiev, Lillicrap & Richards 2017,
 * eLife): "segregated".
 *
 * Hidden neurons have a basal dendrite (bottom-up input B), an apical
 * dendrite (top-down input A) and a soma C; output neurons a dendrite and a
 * soma.  Firing rates are lambda_max sigma(C).  The output layer's activity
 * is broadcast to every hidden layer's apical dendrites through fixed random
 * matrices Y_l.  Each example is shown in two phases:
 *
 *   forward phase: the output soma follows its dendrite only;
 *   target phase:  teaching conductances pull each output soma towards E_E
 *                  (the correct class) or E_I (the others).
 *
 * Plateau potentials alpha = sigma(mean apical potential) of each phase
 * drive local updates, with the paper's gains P_hidden = 20/lambda_max and
 * P_final = 20/lambda_max^2:
 *
 *   output: e = (lambda_t - lambda_max sigma(C_f)) k_D lambda_max sigma'(C_f)
 *   hidden: e = (alpha_t - alpha_f) k_B lambda_max sigma'(C_f)
 *   W += lr P mean(e r_below^T),  b += lr P mean(e)      (means over the batch)
 *
 * Two modes.  "rate" (the default): each phase reduces exactly to one
 * deterministic sweep (the official code's non-spiking mode), computed for a
 * whole batch with GEMMs.  "spiking": the continuous-time model of the paper,
 * simulated for the whole batch at once: Poisson spikes, postsynaptic
 * potentials with the kernel (e^{-t/tau_L} - e^{-t/tau_s}) / (tau_L - tau_s)
 * (kept exactly by two exponential traces), Euler steps of the somata,
 * averages over the end of each phase, phase lengths jittered by a Wald draw.
 *
 * The neurons are the model's own sigmoidal rate units: the layers' declared
 * activations are ignored.  Their "activation" buffers hold sigma(C) (rates
 * over lambda_max), so the net's loss, its predictions (argmax = argmax of
 * the output soma) and the alignment diagnostic read the model's activities;
 * a "derivative" buffer gives the diagnostic sigma'(C).  Its maths is dense:
 * the public API and the dense products of kinds/dense.c are used.
 */
#include "segregated.h"

#include <math.h>
#include <string.h>

#include "bpl_internal.h" /* declares the constructor; bpl__calloc */

/* Parameters live in the net's tensors, activities in its buffers; `self`
 * holds the spiking mode's state and the scratch in which symmetric
 * feedback is derived before it is kept. */
typedef struct segregated {
    seg_spiking spiking;
    float *symmetric;
    uint64_t initialised; /* 1 once attach initialised W, b and Y: saved with the net */
    model m;
    uint64_t seen; /* the parameters' generation `m` was read at */
} segregated;

static void read_model(const bpl_rule *r, model *m)
{
    m->mode = (int)bpl__rule_getf(r, "mode");
    m->feedback = (int)bpl__rule_getf(r, "feedback");
    m->learn_feedback = bpl__rule_getf(r, "learn_feedback") != 0.0f;
    m->lambda_max = bpl__rule_getf(r, "lambda_max");
    m->g_l = bpl__rule_getf(r, "g_L");
    m->g_b = bpl__rule_getf(r, "g_B");
    m->g_a = bpl__rule_getf(r, "g_A");
    m->g_d = bpl__rule_getf(r, "g_D");
    m->e_e = bpl__rule_getf(r, "E_E");
    m->e_i = bpl__rule_getf(r, "E_I");
    m->teaching = bpl__rule_getf(r, "teaching_gain");
    m->k_b = m->g_b / (m->g_l + m->g_b + m->g_a);
    m->k_d = m->g_d / (m->g_l + m->g_d);
    float ph = bpl__rule_getf(r, "gain_hidden"), pf = bpl__rule_getf(r, "gain_final");
    m->p_hidden = ph > 0.0f ? ph : 20.0f / m->lambda_max;
    m->p_final = pf > 0.0f ? pf : 20.0f / (m->lambda_max * m->lambda_max);
    m->dt = bpl__rule_getf(r, "dt");
    m->tau_s = bpl__rule_getf(r, "tau_s");
    m->tau_l = bpl__rule_getf(r, "tau_L");
    m->phase_steps = (size_t)bpl__rule_getf(r, "phase_steps");
    m->integration_steps = (size_t)bpl__rule_getf(r, "integration_steps");
    m->test_steps = (size_t)bpl__rule_getf(r, "test_steps");
    m->test_average = (size_t)bpl__rule_getf(r, "test_average");
    m->jitter = bpl__rule_getf(r, "phase_jitter") != 0.0f;
}

/* The model, read again only when a hyperparameter has changed. */
static const model *model_of(segregated *self, bpl_net *net)
{
    const bpl_rule *r = bpl_net_rule(net);
    if (bpl__rule_settings_stale(r, &self->seen))
        read_model(r, &self->m);
    return &self->m;
}

/* ---- initialisation ("weight optimization" of the paper's code) -------- */

/* Mean and spread of weights with fan-in n such that somatic potentials start
 * with mean 3 and deviation 3 (Guerguiev et al.'s init_weights). */
static void paper_weight_moments(size_t fan_in, float lambda_max, double *mean, double *sd)
{
    const double nu = lambda_max / 4.0, v_mean = 3.0, v_sd = 3.0, b_mean = 0.8;
    const double v_sm = v_sd * v_sd + v_mean * v_mean, n = (double)fan_in;
    double w_mean = (v_mean - b_mean) / (nu * n * v_mean);
    double w_sm = (v_sm + nu * nu * (n - n * n) * w_mean * w_mean * v_mean * v_mean -
                   2.0 * n * nu * b_mean * v_mean * w_mean - b_mean * b_mean) /
                  (n * nu * nu * v_sm);
    *mean = w_mean;
    *sd = sqrt(w_sm - w_mean * w_mean > 0 ? w_sm - w_mean * w_mean : 0.0);
}

/* v = mean + 3.465 sd U(-1/2, 1/2): 3.465 ~ sqrt(12) makes the spread sd. */
static int fill_paper(bpl_net *net, float *v, size_t n, double mean, double sd)
{
    TRY(bpl_net_random_uniform(net, v, n, -0.5, 0.5));
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(mean + 3.465 * sd * v[i]);
    return BPL_OK;
}

/* The weights are set so that somatic potentials start with mean 3 and
 * spread 3 when the layer below fires at the rate of such potentials.  The
 * broadcast feedback mimics the product of the weights downstream: Y of the
 * last hidden layer is zero-mean noise with the output weights' spread, and
 * each lower Y_l = R_{l+1} Y_{l+1}, R_{l+1} zero-mean noise with the spread
 * of layer l+1's weights. */
static int paper_init(bpl_net *net, const model *m)
{
    size_t top = bpl__rule_top(net), n_top = bpl__rule_units(net, top);
    double spread[BPL__MAX_LAYERS];
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        float *w, *b;
        size_t rows, cols;
        double mean;
        TRY(bpl_layer_tensor(layer, "weight", &w, &rows, &cols));
        TRY(bpl_layer_tensor(layer, "bias", &b, NULL, NULL));
        paper_weight_moments(cols, m->lambda_max, &mean, &spread[l]);
        TRY(fill_paper(net, w, rows * cols, mean, spread[l]));
        TRY(fill_paper(net, b, rows, 0.8, 0.001));
    }
    for (size_t l = top; l-- > 0;) {
        float *y;
        size_t n = bpl__rule_units(net, l), n_above = bpl__rule_units(net, l + 1);
        TRY(bpl_layer_tensor(bpl_net_layer(net, l), "feedback", &y, NULL, NULL));
        if (l + 1 == top) {
            TRY(fill_paper(net, y, n * n_top, 0.0, spread[top]));
            continue;
        }
        float *y_above;
        TRY(bpl_layer_tensor(bpl_net_layer(net, l + 1), "feedback", &y_above, NULL, NULL));
        float *r = bpl__malloc(n * n_above * sizeof *r);
        if (!r)
            return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
        int rc = fill_paper(net, r, n * n_above, 0.0, spread[l + 1]);
        if (rc == BPL_OK)
            rc = bpl_gemm(net, 0, 0, n, n_top, n_above, 1.0f, r, n_above, y_above, n_top, 0.0f,
                          y, n_top);
        bpl__free(r);
        TRY(rc);
    }
    return BPL_OK;
}

/* Zero a fraction of each Y_l and scale the rest to keep its mean drive. */
static int sparsify_feedback(bpl_net *net, double sparsity)
{
    for (size_t l = 0; l < bpl__rule_top(net); l++) {
        float *y;
        size_t rows, cols;
        TRY(bpl_layer_tensor(bpl_net_layer(net, l), "feedback", &y, &rows, &cols));
        size_t n = rows * cols;
        for (size_t i = 0; i < n; i += 256) {
            float u[256];
            size_t k = n - i < 256 ? n - i : 256;
            TRY(bpl_net_random_uniform(net, u, k, 0.0, 1.0));
            for (size_t j = 0; j < k; j++)
                y[i + j] = u[j] < sparsity ? 0.0f : y[i + j] / (float)(1.0 - sparsity);
        }
    }
    return BPL_OK;
}

/* Room for every Y_l: sum over the hidden layers of units(l) x units(top). */
static size_t symmetric_size(bpl_net *net)
{
    size_t n = 0;
    for (size_t l = 0; l < bpl__rule_top(net); l++)
        n += bpl__rule_units(net, l) * bpl__rule_units(net, bpl__rule_top(net));
    return n;
}

/* Symmetric feedback: Y_{L-1} = W_L^T, Y_l = W_{l+1}^T Y_{l+1}.  The new
 * matrices are made in `scratch` (symmetric_size floats) and kept only if
 * every value is finite: products of large finite weights can overflow, and
 * a parameter must never be left Inf. */
static int make_symmetric(bpl_net *net, float *scratch)
{
    size_t top = bpl__rule_top(net), n_top = bpl__rule_units(net, top);
    size_t size = symmetric_size(net);
    size_t at = size; /* Y_l starts at the sum over layers below l */
    for (size_t l = top; l-- > 0;) {
        float *w_above;
        TRY(bpl_layer_tensor(bpl_net_layer(net, l + 1), "weight", &w_above, NULL, NULL));
        size_t n = bpl__rule_units(net, l), n_above = bpl__rule_units(net, l + 1);
        float *y = scratch + (at -= n * n_top), *y_above = y + n * n_top;
        if (l + 1 == top) {
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n_top; j++)
                    y[i * n_top + j] = w_above[j * n + i];
        } else {
            TRY(bpl_gemm(net, 1, 0, n, n_top, n_above, 1.0f, w_above, n, y_above, n_top,
                         0.0f, y, n_top));
        }
    }
    for (size_t i = 0; i < size; i++)
        if (!isfinite(scratch[i]))
            return bpl_error_set(BPL_ERR_NUMERIC,
                                 "symmetric feedback: the product of the transposed "
                                 "weights overflows; the feedback is left as it was");
    for (size_t l = 0; l < top; l++) {
        float *y;
        size_t rows, cols;
        TRY(bpl_layer_tensor(bpl_net_layer(net, l), "feedback", &y, &rows, &cols));
        memcpy(y, scratch + at, rows * cols * sizeof *y);
        at += rows * cols;
    }
    return BPL_OK;
}

/* Symmetric Y is a function of the weights, and the weights may have been
 * changed from outside since the last step (bpl_layer_set_tensor, or
 * writes through bpl_layer_tensor): a pass derives it
 * afresh before it first reads it.  Once per pass, not also after each
 * update: on 784-500-500-10 the product W_2^T Y_2 takes about 0.2 ms, some
 * 5% of a batch-32 step.  The stored tensor is therefore the Y of the last
 * pass.  Deriving it before any update also keeps the step all or nothing
 * when the product overflows. */
static int derive_symmetric(bpl_net *net, const model *m, void *self)
{
    segregated *seg = self;
    return m->feedback == SYMMETRIC ? make_symmetric(net, seg->symmetric) : BPL_OK;
}

/* ---- attach ---------------------------------------------------------------- */

static int check_layers(bpl_net *net)
{
    if (bpl_net_layer_count(net) < 2)
        return bpl_error_set(BPL_ERR_STATE, "segregated dendrites need a hidden layer");
    return BPL_OK;
}

/* Per layer: "presyn" holds the presynaptic rates of the update (rate mode:
 * lambda_max times the layer below; spiking: the mean basal PSP), the rest
 * is the spiking simulation's state, means and scratch.  Hidden layers add
 * their apical side, the output layer its target-phase rates; layer 0 holds
 * the input's spike traces. */
static int add_buffers(bpl_net *net)
{
    static const char *const every[] = {"basal", "soma", "rate", "spikes", "trace_l",
                                        "trace_s", "psp", "mean_soma", "mean_rate",
                                        "spike_rate", "derivative"};
    static const char *const hidden[] = {"apical", "mean_apical", "plateau_f", "plateau_t"};
    static const char *const input[] = {"input_spikes", "input_trace_l", "input_trace_s",
                                        "input_psp"};
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l);
        TRY(bpl_layer_add_buffer(layer, "presyn", bpl_layer_inputs(layer)));
        for (size_t i = 0; i < sizeof every / sizeof every[0]; i++)
            TRY(bpl_layer_add_buffer(layer, every[i], n));
        for (size_t i = 0; l < top && i < sizeof hidden / sizeof hidden[0]; i++)
            TRY(bpl_layer_add_buffer(layer, hidden[i], n));
    }
    TRY(bpl_layer_add_buffer(bpl_net_layer(net, top), "target_rate",
                             bpl__rule_units(net, top)));
    for (size_t i = 0; i < sizeof input / sizeof input[0]; i++)
        TRY(bpl_layer_add_buffer(bpl_net_layer(net, 0), input[i], bpl_net_inputs(net)));
    return BPL_OK;
}

static int seg_attach(void *self_, bpl_net *net)
{
    segregated *self = self_;
    TRY(check_layers(net));
    const model *m = model_of(self, net);
    size_t top = bpl__rule_top(net), n_top = bpl__rule_units(net, top);
    for (size_t l = 0; l < top; l++)
        TRY(bpl_layer_add_tensor(bpl_net_layer(net, l), "feedback", bpl__rule_units(net, l),
                                 n_top, m->learn_feedback ? BPL_GROUP_FEEDBACK : BPL_GROUP_NONE,
                                 BPL_INIT_UNIFORM, 1.0, NULL));
    /* A loaded net comes with its state (initialised) and keeps its weights. */
    int fresh = !self->initialised;
    if (fresh) {
        if (bpl__rule_getf(bpl_net_rule(net), "paper_init") != 0.0f)
            TRY(paper_init(net, m));
        double sparsity = bpl__rule_getf(bpl_net_rule(net), "feedback_sparsity");
        if (sparsity > 0.0)
            TRY(sparsify_feedback(net, sparsity));
    }
    if (m->feedback == SYMMETRIC) {
        bpl__free(self->symmetric);
        self->symmetric = bpl__malloc(symmetric_size(net) * sizeof *self->symmetric);
        if (!self->symmetric)
            return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
        /* A loaded net keeps the feedback it was saved with, so that
         * save, load and save give the same bytes; every pass derives Y
         * again before reading it. */
        if (fresh)
            TRY(make_symmetric(net, self->symmetric));
    }
    TRY(add_buffers(net));
    TRY(bpl__seg_spiking_attach(net, &self->spiking));
    self->initialised = 1;
    return bpl_rule_set_property(bpl_net_rule(net), BPL_PROP_SEPARATE_WEIGHTS_LEARNED,
                                 m->learn_feedback ? BPL_TICK_YES : BPL_TICK_NO,
                                 m->learn_feedback ? "Y learned to reconstruct hidden rates"
                                                  : "fixed random Y");
}

/* ---- the hooks ------------------------------------------------------------- */

static int seg_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    const model *m = model_of(self, net);
    if (m->mode != SPIKING)
        return bpl__seg_rate_forward(net, m, x, batch); /* reads no Y */
    TRY(derive_symmetric(net, m, self));
    segregated *seg = self;
    return bpl__seg_spiking_forward(net, &seg->spiking, m, x, batch);
}

/* The errors of both modes, into the "delta" buffers:
 *   output: lambda_max^2 k_D (sigma_t - sigma(C_f)) sigma'(C_f)
 *   hidden: lambda_max k_B (alpha_t - alpha_f) sigma'(C_f) */
static int errors(bpl_net *net, const model *m, size_t batch)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        float *s, *d, *want, *have;
        size_t n = batch * bpl__rule_units(net, l);
        TRY(bpl__rule_buffer(net, l, "activation", &s));
        TRY(bpl__rule_buffer(net, l, "delta", &d));
        float c;
        if (l == top) {
            TRY(bpl__rule_buffer(net, l, "target_rate", &want));
            have = s;
            c = m->lambda_max * m->lambda_max * m->k_d;
        } else {
            TRY(bpl__rule_buffer(net, l, "plateau_t", &want));
            TRY(bpl__rule_buffer(net, l, "plateau_f", &have));
            c = m->lambda_max * m->k_b;
        }
        float *derivative;
        TRY(bpl__rule_buffer(net, l, "derivative", &derivative));
        for (size_t i = 0; i < n; i++) {
            derivative[i] = s[i] * (1.0f - s[i]); /* sigma'(C), for diagnostics */
            d[i] = c * (want[i] - have[i]) * derivative[i];
        }
    }
    return BPL_OK;
}

static int seg_targets(void *self_, bpl_net *net, const float *y, size_t batch)
{
    segregated *self = self_;
    const model *m = model_of(self, net);
    if (m->mode == SPIKING) {
        TRY(bpl__seg_spiking_target(net, &self->spiking, m, y, batch));
    } else {
        TRY(derive_symmetric(net, m, self));
        TRY(bpl__seg_rate_target(net, m, y, batch));
    }
    return errors(net, m, batch);
}

/* grad W = -(P / batch) delta^T presyn, grad b = -(P / batch) sum delta: the
 * paper's "+=" updates as gradients for the optimiser, which subtracts. */
static int layer_gradients(bpl_net *net, size_t l, float gain, size_t batch)
{
    bpl_layer *layer = bpl_net_layer(net, l);
    float *d, *presyn;
    TRY(bpl__rule_buffer(net, l, "delta", &d));
    TRY(bpl__rule_buffer(net, l, "presyn", &presyn));
    float alpha = -gain / (float)batch;
    return bpl_layer_gradients(layer, d, presyn, batch, alpha, alpha, 1.0f);
}

/* Learned feedback: Y_l += lr mean([(lambda_max sigma(C_l) - alpha_f)
 * sigma'(A_f)] r_top^T), r_top = lambda_max sigma(C_top), all of the forward
 * phase: it trains sigma(Y r_top) to reconstruct the hidden rates. */
static int feedback_gradients(bpl_net *net, const model *m, size_t l, size_t batch)
{
    size_t top = bpl__rule_top(net), n = bpl__rule_units(net, l);
    size_t n_top = bpl__rule_units(net, top);
    float *s, *a_f, *scratch, *s_top, *gy;
    TRY(bpl__rule_buffer(net, l, "activation", &s));
    TRY(bpl__rule_buffer(net, l, "plateau_f", &a_f));
    TRY(bpl__rule_buffer(net, l, "spikes", &scratch));
    TRY(bpl__rule_buffer(net, top, "activation", &s_top));
    TRY(bpl_layer_tensor_grad(bpl_net_layer(net, l), "feedback", &gy, NULL, NULL));
    for (size_t i = 0; i < batch * n; i++)
        scratch[i] = (m->lambda_max * s[i] - a_f[i]) * a_f[i] * (1.0f - a_f[i]);
    bpl__dense_outer(net, scratch, s_top, batch, n, n_top, -m->lambda_max / (float)batch, 1.0f,
                     1.0f, gy, NULL);
    return BPL_OK;
}

static int seg_gradients(void *self, bpl_net *net, unsigned int *groups)
{
    const model *m = model_of(self, net);
    size_t batch, top = bpl__rule_top(net);
    float *unused;
    TRY(bpl_layer_buffer(bpl_net_layer(net, 0), "activation", &unused, &batch, NULL));
    for (size_t l = 0; l <= top; l++)
        TRY(layer_gradients(net, l, l == top ? m->p_final : m->p_hidden, batch));
    *groups = 1u << BPL_GROUP_FORWARD;
    if (m->learn_feedback) {
        for (size_t l = 0; l < top; l++)
            TRY(feedback_gradients(net, m, l, batch));
        *groups |= 1u << BPL_GROUP_FEEDBACK;
    }
    return BPL_OK;
}

/* ---- construction ------------------------------------------------------------ */

static void seg_destroy(void *self_)
{
    segregated *self = self_;
    bpl__free(self->symmetric);
    bpl__seg_spiking_free(&self->spiking);
    bpl__free(self);
}

/* Whether the weights were initialised, saved so that a loaded net keeps
 * them: given back before attach. */
static int seg_save_state(void *self_, void *data, size_t capacity, size_t *size_out)
{
    const segregated *self = self_;
    return bpl__count_state_save(self->initialised, data, capacity, size_out);
}

static int seg_load_state(void *self_, bpl_net *net, const void *data, size_t size)
{
    segregated *self = self_;
    (void)net;
    return bpl__count_state_load(data, size, 1, &self->initialised);
}

static const bpl__param_spec params[] = {
    {"mode", BPL_PARAM_CHOICE, RATE, 0, 0, "rate|spiking",
     "rate: one sweep per phase (fast); spiking: the continuous-time model"},
    {"lambda_max", BPL_PARAM_REAL, 0.2, 1e-3, 1, NULL, "maximum firing rate per step"},
    {"g_L", BPL_PARAM_REAL, 0.1, 1e-6, 100, NULL, "leak conductance (1 / tau_L)"},
    {"g_B", BPL_PARAM_REAL, 0.6, 0, 100, NULL, "basal-to-soma conductance"},
    {"g_A", BPL_PARAM_REAL, 0.0, 0, 100, NULL,
     "apical-to-soma conductance (spiking mode; 0: apical input is isolated)"},
    {"g_D", BPL_PARAM_REAL, 0.6, 0, 100, NULL, "output dendrite-to-soma conductance"},
    {"E_E", BPL_PARAM_REAL, 8.0, -100, 100, NULL, "excitatory reversal potential"},
    {"E_I", BPL_PARAM_REAL, -8.0, -100, 100, NULL, "inhibitory reversal potential"},
    {"teaching_gain", BPL_PARAM_REAL, 1.0, 0, 100, NULL,
     "scales the teaching conductances g_E = y, g_I = 1 - y (0: no teacher)"},
    {"gain_hidden", BPL_PARAM_REAL, 0.0, 0, 1e6, NULL,
     "P of hidden updates; 0 = the paper's 20 / lambda_max"},
    {"gain_final", BPL_PARAM_REAL, 0.0, 0, 1e6, NULL,
     "P of output updates; 0 = the paper's 20 / lambda_max^2"},
    {"feedback", BPL_PARAM_CHOICE, RANDOM, 0, 0, "random|symmetric",
     "Y_l fixed random, or the product of the transposed weights above"},
    {"feedback_sparsity", BPL_PARAM_REAL, 0.0, 0, 0.99, NULL,
     "fraction of Y zeroed at attach, the rest scaled up (the paper: 0.8)"},
    {"learn_feedback", BPL_PARAM_BOOL, 0, 0, 1, NULL,
     "train Y to reconstruct hidden rates from the output (fb_ optimiser)"},
    {"paper_init", BPL_PARAM_BOOL, 1, 0, 1, NULL,
     "initialise W, b and Y as the paper's code (mean soma potential 3)"},
    {"dt", BPL_PARAM_REAL, 1.0, 1e-3, 10, NULL, "spiking: time step (ms)"},
    {"tau_s", BPL_PARAM_REAL, 3.0, 1e-3, 1e3, NULL, "spiking: synaptic time constant"},
    {"tau_L", BPL_PARAM_REAL, 10.0, 1e-3, 1e3, NULL, "spiking: PSP leak time constant"},
    {"phase_steps", BPL_PARAM_INT, 50, 1, BPL__MAX_TIME_STEPS, NULL,
     "spiking: base length of each phase"},
    {"integration_steps", BPL_PARAM_INT, 20, 1, BPL__MAX_TIME_STEPS, NULL,
     "spiking: steps at the end of a phase that are averaged"},
    {"phase_jitter", BPL_PARAM_BOOL, 1, 0, 1, NULL,
     "spiking: lengthen each phase by floor(Wald(2, 1)) steps"},
    {"test_steps", BPL_PARAM_INT, 250, 1, BPL__MAX_TIME_STEPS, NULL,
     "spiking: length of a prediction"},
    {"test_average", BPL_PARAM_INT, 220, 1, BPL__MAX_TIME_STEPS, NULL,
     "spiking: steps of a prediction that are averaged"},
};

static int add_params(bpl_rule *rule, const void *context)
{
    (void)context;
    TRY(bpl__rule_add_params(rule, params, sizeof params / sizeof params[0]));
    TRY(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_SGD, 0.0));
    /* Applied to Y when the rule is attached. */
    static const char *const shaping[] = {"feedback", "learn_feedback", "paper_init",
                                          "feedback_sparsity"};
    return bpl__rule_fix_params(rule, shaping, sizeof shaping / sizeof shaping[0]);
}

const bpl_rule_vtable bpl__segregated_vtable = {
    .version = BPL_RULE_VTABLE_VERSION,
    .name = "segregated",
    .attach = seg_attach,
    .forward = seg_forward,
    .compute_targets = seg_targets,
    .gradients = seg_gradients,
    .destroy = seg_destroy,
    .save_state = seg_save_state,
    .load_state = seg_load_state,
};

int bpl__rule_segregated_create(bpl_rule **out)
{
    segregated *self = bpl__calloc(1, sizeof *self);
    if (!self)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    /* Recommended: the documented run, 98.0% after 10 epochs (docs/results.md).
     * The model's rates are its own sigmoids, and paper_init sets W and b. */
    static const char *const recommended[] = {
        "hidden", "500", "optimizer", "adam", "lr", "0.01", "lr_decay", "1",
        "batch_size", "32", "epochs", "10", "ignores", "activation,init:paper_init", NULL};
    static const bpl__rule_card card = {
        "Segregated dendrites (Guerguiev, Lillicrap & Richards 2017): basal, apical and "
        "somatic compartments; output activity broadcast to apical dendrites; local "
        "updates from plateau potentials of a forward and a target phase.",
        {BPL_TICK_NO, BPL_TICK_YES, BPL_TICK_YES, BPL_TICK_YES, BPL_TICK_NO,
         BPL_TICK_NOT_APPLICABLE, BPL_TICK_NO},
        {NULL, NULL, "feedback arrives in the apical dendrites of the same neurons",
         "basal, apical and somatic compartments", "fixed random Y", NULL,
         "only implicit: plateau potentials of two phases"}, recommended, BPL__NEEDS_DENSE};
    /* The paper trains online (batch 1) with SGD at 0.21 and the gains P: that
     * reproduces its 2.9% on MNIST (784-500-10, 10 epochs) but costs a GEMV
     * per example.  On mini-batches SGD must go slower and stalls; Adam at
     * 1e-2 with batch 32 reaches 2.0% in the same 10 epochs (the gains are
     * then a constant factor Adam normalises away). */
    return bpl__rule_build(out, &bpl__segregated_vtable, self, &card, 1e-2, add_params, NULL);
}
