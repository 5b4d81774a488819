/*
 * spiking.c - the segregated rule's spiking mode ("spiking"): the
 * continuous-time model of the paper, simulated for the whole batch at
 * once (see common.c).
 */
#include "segregated.h"

#include <math.h>
#include <string.h>

/* Poisson spikes (one Bernoulli draw per step) at rate_scale * rate, pushed
 * through the two exponential traces of the PSP kernel. */
static int spike_and_filter(bpl_net *net, const model *m, const float *rate, float rate_scale,
                            float *spikes, float *trace_l, float *trace_s, float *psp,
                            size_t n)
{
    TRY(bpl_net_example_random_uniform(net, spikes, n, 0.0, 1.0));
    float p = rate_scale * m->dt;
    float decay_l = expf(-m->dt / m->tau_l), decay_s = expf(-m->dt / m->tau_s);
    float norm = 1.0f / (m->tau_l - m->tau_s);
    for (size_t i = 0; i < n; i++) {
        float spike = spikes[i] < p * rate[i] ? 1.0f : 0.0f;
        spikes[i] = spike;
        trace_l[i] = decay_l * (trace_l[i] + spike);
        trace_s[i] = decay_s * (trace_s[i] + spike);
        psp[i] = norm * (trace_l[i] - trace_s[i]);
    }
    return BPL_OK;
}

/* A layer's simulation buffers, and its broadcast feedback Y (hidden
 * layers: apical and mean_apical too), looked up once per hook.  The loops
 * work on a copy (sim s = sp->sims[l]): pointers read through a pointer
 * into the heap would be read again after every store, and the
 * elementwise loops would not vectorise. */
struct sim {
    bpl_layer *layer;
    float *presyn, *basal, *soma, *rate, *spikes, *trace_l, *trace_s, *psp;
    float *mean_soma, *mean_rate, *spike_rate, *apical, *mean_apical, *feedback;
    size_t n, n_in;
};

static int sim_of(bpl_net *net, size_t l, sim *s)
{
    memset(s, 0, sizeof *s);
    s->layer = bpl_net_layer(net, l);
    s->n = bpl__rule_units(net, l);
    s->n_in = bpl_layer_inputs(s->layer);
    TRY(bpl__rule_buffer(net, l, "presyn", &s->presyn));
    TRY(bpl__rule_buffer(net, l, "basal", &s->basal));
    TRY(bpl__rule_buffer(net, l, "soma", &s->soma));
    TRY(bpl__rule_buffer(net, l, "rate", &s->rate));
    TRY(bpl__rule_buffer(net, l, "spikes", &s->spikes));
    TRY(bpl__rule_buffer(net, l, "trace_l", &s->trace_l));
    TRY(bpl__rule_buffer(net, l, "trace_s", &s->trace_s));
    TRY(bpl__rule_buffer(net, l, "psp", &s->psp));
    TRY(bpl__rule_buffer(net, l, "mean_soma", &s->mean_soma));
    TRY(bpl__rule_buffer(net, l, "mean_rate", &s->mean_rate));
    TRY(bpl__rule_buffer(net, l, "spike_rate", &s->spike_rate));
    if (l < bpl__rule_top(net)) {
        TRY(bpl__rule_buffer(net, l, "apical", &s->apical));
        TRY(bpl__rule_buffer(net, l, "mean_apical", &s->mean_apical));
        TRY(bpl_layer_tensor(s->layer, "feedback", &s->feedback, NULL, NULL));
    }
    return BPL_OK;
}

static int input_sim_of(bpl_net *net, input_sim *s)
{
    TRY(bpl__rule_buffer(net, 0, "input_spikes", &s->spikes));
    TRY(bpl__rule_buffer(net, 0, "input_trace_l", &s->trace_l));
    TRY(bpl__rule_buffer(net, 0, "input_trace_s", &s->trace_s));
    return bpl__rule_buffer(net, 0, "input_psp", &s->psp);
}

/* Every layer's simulation, and the input's, for this hook. */
static int resolve(bpl_net *net, seg_spiking *sp)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++)
        TRY(sim_of(net, l, &sp->sims[l]));
    return input_sim_of(net, &sp->in);
}

int bpl__seg_spiking_attach(bpl_net *net, seg_spiking *sp)
{
    bpl__free(sp->sims);
    sp->sims = bpl__calloc(bpl_net_layer_count(net), sizeof *sp->sims);
    return sp->sims ? BPL_OK : bpl_error_set(BPL_ERR_NOMEM, "out of memory");
}

void bpl__seg_spiking_free(seg_spiking *sp)
{
    bpl__free(sp->sims);
    sp->sims = NULL;
}

static void zero(float *v, size_t n)
{
    memset(v, 0, n * sizeof *v);
}

/* Every neuron at rest, every trace empty. */
static void reset_network(bpl_net *net, const seg_spiking *sp, size_t batch)
{
    size_t n_in = bpl_net_inputs(net);
    zero(sp->in.trace_l, batch * n_in);
    zero(sp->in.trace_s, batch * n_in);
    zero(sp->in.psp, batch * n_in);
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        sim s = sp->sims[l];
        zero(s.soma, batch * s.n);
        zero(s.trace_l, batch * s.n);
        zero(s.trace_s, batch * s.n);
        zero(s.psp, batch * s.n);
    }
}

/* The updates use the forward phase's mean basal PSPs ("presyn"), so only
 * that phase averages them. */
static void reset_means(bpl_net *net, const seg_spiking *sp, size_t batch, int forward_phase)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        sim s = sp->sims[l];
        if (forward_phase)
            zero(s.presyn, batch * s.n_in);
        zero(s.mean_soma, batch * s.n);
        zero(s.mean_rate, batch * s.n);
        zero(s.spike_rate, batch * s.n);
        if (s.mean_apical)
            zero(s.mean_apical, batch * s.n);
    }
}

static void add_to(float *sum, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum[i] += v[i];
}

/* One Euler step of the soma (teacher: y, or NULL). */
static void soma_step(const model *m, const sim *s, int output, const float *y, size_t batch)
{
    size_t n = batch * s->n;
    for (size_t i = 0; i < n; i++) {
        float c = s->soma[i], dc;
        if (!output) {
            dc = -m->g_l * c + m->g_b * (s->basal[i] - c) + m->g_a * (s->apical[i] - c);
        } else {
            dc = -m->g_l * c + m->g_d * (s->basal[i] - c);
            if (y) {
                float t = y[i];
                dc += m->teaching * (t * (m->e_e - c) + (1.0f - t) * (m->e_i - c));
            }
        }
        s->soma[i] = c + m->dt * dc;
    }
}

/* One time step of the whole net; the means take it when `record`.  Layers
 * update in order, so the basal input sees this step's spikes below while the
 * apical input sees the output's spikes of the step before. */
static int time_step(bpl_net *net, const seg_spiking *sp, const model *m, const float *x,
                     const float *y, size_t batch, int record, int forward_phase)
{
    size_t top = bpl__rule_top(net), n_in = bpl_net_inputs(net);
    const input_sim *in = &sp->in;
    TRY(spike_and_filter(net, m, x, m->lambda_max, in->spikes, in->trace_l, in->trace_s,
                         in->psp, batch * n_in));
    const float *below = in->psp;
    const float *top_psp = sp->sims[top].psp;
    size_t n_top = sp->sims[top].n;
    for (size_t l = 0; l <= top; l++) {
        sim s = sp->sims[l];
        TRY(bpl_layer_forward(s.layer, below, batch, BPL_ACT_LINEAR, s.basal));
        if (l < top)
            TRY(bpl_gemm(net, 0, 1, batch, s.n, n_top, 1.0f, top_psp, n_top, s.feedback,
                         n_top, 0.0f, s.apical, s.n));
        soma_step(m, &s, l == top, y, batch);
        memcpy(s.rate, s.soma, batch * s.n * sizeof *s.rate);
        TRY(bpl_activation_forward(BPL_ACT_SIGMOID, s.rate, NULL, batch, s.n));
        TRY(spike_and_filter(net, m, s.rate, m->lambda_max, s.spikes, s.trace_l,
                             s.trace_s, s.psp, batch * s.n));
        if (record) {
            if (forward_phase)
                add_to(s.presyn, below, batch * s.n_in);
            add_to(s.mean_soma, s.soma, batch * s.n);
            add_to(s.mean_rate, s.rate, batch * s.n);
            add_to(s.spike_rate, s.spikes, batch * s.n);
            if (l < top)
                add_to(s.mean_apical, s.apical, batch * s.n);
        }
        below = s.psp;
    }
    return BPL_OK;
}

static void scale(float *v, size_t n, float factor)
{
    for (size_t i = 0; i < n; i++)
        v[i] *= factor;
}

/* Run a phase of `length` steps, averaging the last `window`.  The means are
 * per step; spike_rate is spikes per unit time over lambda_max, comparable
 * with mean_rate = mean sigma(C). */
static int run_phase(bpl_net *net, const seg_spiking *sp, const model *m, const float *x,
                     const float *y, size_t batch, size_t length, size_t window)
{
    int forward_phase = y == NULL;
    reset_means(net, sp, batch, forward_phase);
    if (window > length)
        window = length;
    for (size_t t = 0; t < length; t++)
        TRY(time_step(net, sp, m, x, y, batch, t >= length - window, forward_phase));
    float inv = 1.0f / (float)window;
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        sim s = sp->sims[l];
        if (forward_phase)
            scale(s.presyn, batch * s.n_in, inv);
        scale(s.mean_soma, batch * s.n, inv);
        scale(s.mean_rate, batch * s.n, inv);
        scale(s.spike_rate, batch * s.n, inv / (m->lambda_max * m->dt));
        if (s.mean_apical)
            scale(s.mean_apical, batch * s.n, inv);
    }
    return BPL_OK;
}

/* sigma of a mean, into another buffer: activations and plateaus. */
static int sigma_of(const float *v, float *out, size_t batch, size_t n)
{
    memcpy(out, v, batch * n * sizeof *out);
    return bpl_activation_forward(BPL_ACT_SIGMOID, out, NULL, batch, n);
}

/* A phase length: base + floor(Wald(mu 2, lambda 1)) when jittered
 * (Michael, Schucany & Haas 1976). */
static int phase_length(bpl_net *net, const model *m, size_t base, size_t *out)
{
    *out = base;
    if (!m->jitter)
        return BPL_OK;
    float z, u;
    TRY(bpl_net_random_normal(net, &z, 1, 0.0, 1.0));
    TRY(bpl_net_random_uniform(net, &u, 1, 0.0, 1.0));
    const double mu = 2.0, lambda = 1.0, w = (double)z * z;
    double x = mu + mu * mu * w / (2 * lambda) -
               mu / (2 * lambda) * sqrt(4 * mu * lambda * w + mu * mu * w * w);
    double wald = u <= mu / (mu + x) ? x : mu * mu / x;
    *out = base + (size_t)floor(wald < BPL__MAX_JITTER ? wald : BPL__MAX_JITTER);
    return BPL_OK;
}

/* Time runs on, as in the paper: each row of the batch is a population that
 * sees one example after another, and a phase begins where the last one
 * ended (its first steps are the settling time).  Rows start at rest the
 * first time they are used. */
static void start_rows(bpl_net *net, seg_spiking *sp, size_t batch)
{
    if (batch <= sp->started_rows)
        return;
    reset_network(net, sp, batch);
    sp->started_rows = batch;
}

/* Forward phase: activation = sigma(mean C), plateau_f from the mean apical
 * potential, presyn = the mean basal PSPs. */
static int spiking_forward(bpl_net *net, seg_spiking *sp, const model *m, const float *x,
                           size_t batch, size_t length, size_t window)
{
    TRY(resolve(net, sp));
    start_rows(net, sp, batch);
    TRY(run_phase(net, sp, m, x, NULL, batch, length, window));
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        sim s = sp->sims[l];
        float *act;
        TRY(bpl__rule_buffer(net, l, "activation", &act));
        TRY(sigma_of(s.mean_soma, act, batch, s.n));
        if (l < bpl__rule_top(net)) {
            float *a_f;
            TRY(bpl__rule_buffer(net, l, "plateau_f", &a_f));
            TRY(sigma_of(s.mean_apical, a_f, batch, s.n));
        }
    }
    return BPL_OK;
}

/* Target phase, continuing from the forward phase's state. */
static int spiking_target(bpl_net *net, seg_spiking *sp, const model *m, const float *x,
                          const float *y, size_t batch, size_t length, size_t window)
{
    size_t top = bpl__rule_top(net);
    TRY(resolve(net, sp));
    TRY(run_phase(net, sp, m, x, y, batch, length, window));
    float *s_t;
    const sim *out = &sp->sims[top];
    TRY(bpl__rule_buffer(net, top, "target_rate", &s_t));
    memcpy(s_t, out->mean_rate, batch * out->n * sizeof *s_t);
    for (size_t l = 0; l < top; l++) {
        float *a_t;
        TRY(bpl__rule_buffer(net, l, "plateau_t", &a_t));
        TRY(sigma_of(sp->sims[l].mean_apical, a_t, batch, sp->sims[l].n));
    }
    return BPL_OK;
}

int bpl__seg_spiking_forward(bpl_net *net, seg_spiking *sp, const model *m, const float *x,
                             size_t batch)
{
    if (bpl_net_phase(net) == BPL_PHASE_PREDICT)
        return spiking_forward(net, sp, m, x, batch, m->test_steps, m->test_average);
    size_t length;
    TRY(phase_length(net, m, m->phase_steps, &length));
    return spiking_forward(net, sp, m, x, batch, length, m->integration_steps);
}

int bpl__seg_spiking_target(bpl_net *net, seg_spiking *sp, const model *m, const float *y,
                            size_t batch)
{
    const float *x;
    size_t length;
    TRY(bpl_layer_input(bpl_net_layer(net, 0), &x, NULL, NULL));
    TRY(phase_length(net, m, m->phase_steps, &length));
    return spiking_target(net, sp, m, x, y, batch, length, m->integration_steps);
}
