/*
 * sign_symmetry.c - the sign-concordant feedback rules of Liao, Leibo &
 * Poggio (2016), as Moskovitz, Litwin-Kumar & Abbott (2018) and BioTorch
 * name them.  Like feedback alignment, each layer sends its error down
 * through a feedback tensor B_l in place of W_l,
 *   delta_{l-1} = send_error(delta_l through B_l) (.) act'(a_{l-1}),
 * but B_l carries W_l's signs, elementwise, at every step:
 *   usf   B = sign(W) c, one magnitude per layer,
 *         c = feedback_scale sqrt(2 / (fan_in + fan_out));
 *   brsf  B = sign(W) (.) |R|, R redrawn every batch;
 *   frsf  B = sign(W) (.) |R|, R drawn once, at attach.
 * R is Glorot-uniform with gain feedback_scale, as fa's B: |R| is
 * U[0, feedback_scale sqrt(6 / (fan_in + fan_out))), and c is the root mean
 * square of those values, so the three rules (and fa) send errors of the
 * same size down; an unscaled sign(W) (magnitude 1) would grow the error
 * by about sqrt(fan) per layer.  Fans are counted as the library's Glorot
 * initialisers count them: fan_in the weight's columns, fan_out its rows
 * times a conv kernel's area.
 *
 * B has W's own layout on every kind (dense and conv alike), so the error
 * goes down through the products backprop runs with W.  B is a tensor of
 * the layer ("feedback", never trained), kept in step with W's signs
 * before each send and after each update, so that it agrees with W
 * whenever a user looks.  frsf keeps |R| as a second tensor,
 * "feedback_magnitude": a tensor is saved and restored with the model
 * (whatever the layer's kind), and keeps its values where W is exactly 0
 * (sign 0), which B alone would lose.  brsf draws from the net's
 * generator, which a model file saves and the diagnostics give back, so
 * a loaded model continues with the same draws and a diagnostic pass
 * changes nothing.  None of the three has state beyond its tensors.
 */
#include "dense_rule.h"

#include <math.h>

#include "bpl_internal.h" /* declares the constructors */

enum { USF, BRSF, FRSF };

typedef struct sign_rule {
    int magnitudes; /* USF, BRSF or FRSF */
} sign_rule;

/* The weight of layer l, or NULL for a kind without one (pooling): such a
 * layer has no feedback tensor either. */
static const bpl__tensor *layer_weight(bpl_net *net, size_t l)
{
    bpl_layer *layer = bpl_net_layer(net, l);
    return bpl__layer_kind(layer)->weight ? bpl__layer_weight(layer) : NULL;
}

/* b[i] = m[i] with w[i]'s sign (0 where w[i] is 0 or NaN); m may be b. */
static void take_signs(const float *w, const float *m, float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float mag = fabsf(m[i]);
        b[i] = w[i] > 0.0f ? mag : w[i] < 0.0f ? -mag : 0.0f;
    }
}

/* b[i] = c with w[i]'s sign. */
static void take_signs_uniform(const float *w, float c, float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = w[i] > 0.0f ? c : w[i] < 0.0f ? -c : 0.0f;
}

/* Glorot's fan_in + fan_out of the layer's weight w, as the initialisers
 * count them (a conv kernel's area in fan_out); run at every step. */
static double fan_sum(const bpl_layer *layer, const bpl__tensor *w)
{
    return bpl__init_fan_sum(w->rows, w->cols, bpl__layer_kernel_area(layer));
}

/* Glorot's limit sqrt(6 / (fan_in + fan_out)). */
static double glorot_limit(const bpl_layer *layer, const bpl__tensor *w)
{
    return sqrt(6.0 / fan_sum(layer, w));
}

/* usf's c / feedback_scale: the RMS of Glorot-uniform values, limit / sqrt(3). */
static double usf_magnitude(const bpl_layer *layer, const bpl__tensor *w)
{
    return sqrt(2.0 / fan_sum(layer, w));
}

/* Set layer l's B from W's current signs.  `draw` (brsf): new magnitudes
 * from the net's generator first; otherwise brsf keeps the batch's. */
static int refresh_layer(const sign_rule *rule, bpl_net *net, size_t l, int draw,
                         double scale)
{
    const bpl__tensor *w = layer_weight(net, l);
    if (!w)
        return BPL_OK;
    bpl_layer *layer = bpl_net_layer(net, l);
    size_t n = w->rows * w->cols;
    float *b, *r;
    TRY(bpl_layer_tensor(layer, "feedback", &b, NULL, NULL));
    switch (rule->magnitudes) {
    case USF:
        take_signs_uniform(w->data, (float)(scale * usf_magnitude(layer, w)), b, n);
        break;
    case BRSF:
        if (draw)
            TRY(bpl_net_random_uniform(net, b, n, 0.0, scale * glorot_limit(layer, w)));
        take_signs(w->data, b, b, n);
        break;
    default:
        TRY(bpl_layer_tensor(layer, "feedback_magnitude", &r, NULL, NULL));
        take_signs(w->data, r, b, n);
        break;
    }
    return BPL_OK;
}

static int refresh(const sign_rule *rule, bpl_net *net, int draw)
{
    double scale;
    TRY(bpl_rule_get(bpl_net_rule(net), "feedback_scale", &scale));
    for (size_t l = 1; l < bpl_net_layer_count(net); l++)
        TRY(refresh_layer(rule, net, l, draw, scale));
    return BPL_OK;
}

/* B (and frsf's |R|) of every layer with a weight.  A B restored from a
 * model file is kept as saved, so that saving again writes the same bytes
 * (the next step takes W's signs anyway); a new one takes them at once. */
static int sign_attach(void *self, bpl_net *net)
{
    const sign_rule *rule = self;
    double scale;
    TRY(bpl_rule_get(bpl_net_rule(net), "feedback_scale", &scale));
    for (size_t l = 1; l < bpl_net_layer_count(net); l++) {
        const bpl__tensor *w = layer_weight(net, l);
        if (!w)
            continue;
        bpl_layer *layer = bpl_net_layer(net, l);
        /* frsf's R: Glorot-uniform, as fa's B (its sign is never used). */
        if (rule->magnitudes == FRSF)
            TRY(bpl_layer_add_tensor(layer, "feedback_magnitude", w->rows, w->cols,
                                     BPL_GROUP_NONE, BPL_INIT_GLOROT_UNIFORM, scale, NULL));
        int created;
        TRY(bpl_layer_add_tensor(layer, "feedback", w->rows, w->cols, BPL_GROUP_NONE,
                                 BPL_INIT_ZERO, 1.0, &created));
        if (created) /* brsf draws its first magnitudes */
            TRY(refresh_layer(rule, net, l, 1, scale));
    }
    return BPL_OK;
}

static int sign_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    TRY(refresh(self, net, 1));
    return bpl__dense_send_down(net, y, batch, "feedback", 1);
}

/* The step moved W, and some of its signs: B follows at once. */
static int sign_after_apply(void *self, bpl_net *net)
{
    return refresh(self, net, 0);
}

static void sign_destroy(void *self)
{
    bpl__free(self);
}

#define SIGN_VTABLE(rule_name)                                                            \
    {                                                                                     \
        .version = BPL_RULE_VTABLE_VERSION, .name = rule_name, .attach = sign_attach,     \
        .forward = bpl__dense_forward, .compute_targets = sign_targets,                   \
        .gradients = bpl__dense_gradients, .after_apply = sign_after_apply,               \
        .destroy = sign_destroy,                                                          \
    }

const bpl_rule_vtable bpl__usf_vtable = SIGN_VTABLE("usf");
const bpl_rule_vtable bpl__brsf_vtable = SIGN_VTABLE("brsf");
const bpl_rule_vtable bpl__frsf_vtable = SIGN_VTABLE("frsf");

/* Each rule's card: the property row differs from fa's in weight transport
 * (one bit of each weight, its sign, reaches the feedback) and in what
 * the feedback is. */
#define SIGN_TICKS                                                                        \
    {BPL_TICK_NO, BPL_TICK_PARTIAL, BPL_TICK_NO, BPL_TICK_NO, BPL_TICK_NO,                \
     BPL_TICK_NOT_APPLICABLE, BPL_TICK_YES}

/* Recommended: fa's set-up, which each of the three learns at least as well
 * with (docs/rules/usf.md, brsf.md, frsf.md). */
static const char *const recommended[] = {
    "hidden", "256,256", "activation", "tanh", "init", "glorot_uniform",
    "optimizer", "adam", "lr", "0.001", "lr_decay", "1", "batch_size", "128",
    "epochs", "20", NULL};

static int declare_scale(bpl_rule *rule, const void *context)
{
    return bpl_rule_add_param(rule, "feedback_scale", BPL_PARAM_REAL, 1.0, 1e-6, 1e3, NULL,
                              context);
}

static int build(bpl_rule **out, const bpl_rule_vtable *vtable, int magnitudes,
                 const bpl__rule_card *card, const char *scale_doc)
{
    sign_rule *rule = bpl__malloc(sizeof *rule);
    if (!rule)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", vtable->name);
    rule->magnitudes = magnitudes;
    return bpl__rule_build(out, vtable, rule, card, 1e-3, declare_scale, scale_doc);
}

int bpl__rule_usf_create(bpl_rule **out)
{
    static const bpl__rule_card card = {
        "Uniform sign-concordant feedback (Liao, Leibo & Poggio 2016): errors sent down "
        "through B_l = sign(W_l), one magnitude per layer.",
        SIGN_TICKS,
        {NULL, "W's signs", "an error network with W's signs", NULL,
         "B follows W's signs", NULL, "delta"},
        recommended, BPL__NEEDS_BACKWARD};
    return build(out, &bpl__usf_vtable, USF, &card,
                 "gain of B_l's magnitude, sqrt(2/(fan_in+fan_out)) (fa's RMS)");
}

int bpl__rule_brsf_create(bpl_rule **out)
{
    static const bpl__rule_card card = {
        "Batchwise random-magnitude sign-concordant feedback (Liao, Leibo & Poggio 2016): "
        "B_l = sign(W_l) times random magnitudes redrawn every batch.",
        SIGN_TICKS,
        {NULL, "W's signs", "an error network with W's signs", NULL,
         "W's signs, magnitudes redrawn every batch", NULL, "delta"},
        recommended, BPL__NEEDS_BACKWARD};
    return build(out, &bpl__brsf_vtable, BRSF, &card,
                 "gain of the Glorot-uniform magnitudes |R_l| drawn every batch");
}

int bpl__rule_frsf_create(bpl_rule **out)
{
    static const bpl__rule_card card = {
        "Fixed random-magnitude sign-concordant feedback (Liao, Leibo & Poggio 2016): "
        "B_l = sign(W_l) times fixed random magnitudes.",
        SIGN_TICKS,
        {NULL, "W's signs", "an error network with W's signs", NULL,
         "W's signs, fixed random magnitudes", NULL, "delta"},
        recommended, BPL__NEEDS_BACKWARD};
    return build(out, &bpl__frsf_vtable, FRSF, &card,
                 "gain of the fixed Glorot-uniform magnitudes |R_l|");
}
