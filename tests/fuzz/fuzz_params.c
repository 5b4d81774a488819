/*
 * fuzz_params.c - rule hyperparameters driven by arbitrary sequences of
 * operations (format: fuzz_format.h): set, set_string, get, param_info,
 * add_param, add_optimizer, properties and description, attaching the rule
 * to a small net, training and predicting.  Every status is one the header
 * documents, failures always leave a message, and whatever the sequence,
 * each declared hyperparameter keeps a value inside its bounds.
 */
#include "fuzz_input.h"
#include "fuzz_util.h"

#include "bioplaus_rule.h"

#define MAX_OPS 64
#define MAX_BATCH 4

typedef struct state {
    bpl_rule *rule; /* not attached: ours to destroy */
    bpl_net *net;   /* owns the rule attached to it */
} state;

static bpl_rule *builtin(unsigned index)
{
    const char *name = bpl_rule_builtin_name(index % bpl_rule_builtin_count());
    bpl_rule *rule = NULL;
    fuzz_check(bpl_rule_create_builtin(&rule, name), FZ(BPL_OK), "bpl_rule_create_builtin");
    if (!rule || strcmp(bpl_rule_name(rule), name) != 0)
        fuzz_abort("bpl_rule_create_builtin(\"%s\") made '%s'", name,
                   rule ? bpl_rule_name(rule) : "(null)");
    return rule;
}

/* The rule the next operation acts on: the unattached one, else the net's. */
static bpl_rule *target(state *s)
{
    if (s->rule)
        return s->rule;
    return s->net ? bpl_net_rule(s->net) : NULL;
}

/* ---- operands -------------------------------------------------------------- */

static size_t count_choices(const char *choices)
{
    size_t n = 1;
    for (const char *c = choices; *c; c++)
        n += *c == '|';
    return n;
}

/* The text of choice `k` of a '|'-separated list. */
static void choice_text(const char *choices, unsigned k, char buf[STR_MAX])
{
    k %= count_choices(choices);
    const char *start = choices;
    while (k-- > 0)
        start = strchr(start, '|') + 1;
    size_t len = strcspn(start, "|");
    snprintf(buf, STR_MAX, "%.*s", (int)(len < STR_MAX - 1 ? len : STR_MAX - 1), start);
}

/* ---- invariants -------------------------------------------------------------- */

/* Every declared hyperparameter describes itself consistently and holds a
 * value that bpl_rule_set would accept. */
static void check_params(const bpl_rule *rule)
{
    size_t n = bpl_rule_param_count(rule);
    for (size_t i = 0; i < n; i++) {
        const char *name, *choices, *doc;
        int kind;
        double def, lo, hi, v;
        fuzz_check(bpl_rule_param_info(rule, i, &name, &kind, &def, &lo, &hi, &choices, &doc),
                   FZ(BPL_OK), "bpl_rule_param_info");
        if (!name || !name[0] || !doc || kind < BPL_PARAM_REAL || kind > BPL_PARAM_CHOICE ||
            (kind == BPL_PARAM_CHOICE) != (choices != NULL))
            fuzz_abort("parameter %zu of rule '%s' describes itself inconsistently", i,
                       bpl_rule_name(rule));
        fuzz_check(bpl_rule_get(rule, name, &v), FZ(BPL_OK), "bpl_rule_get");
        if (!(lo <= v && v <= hi) || (kind != BPL_PARAM_REAL && v != floor(v)))
            fuzz_abort("rule '%s': '%s' (kind %d) holds %.17g, outside [%g, %g] or not whole",
                       bpl_rule_name(rule), name, kind, v, lo, hi);
        if (kind == BPL_PARAM_CHOICE && hi != (double)(count_choices(choices) - 1))
            fuzz_abort("rule '%s': choice '%s' has bound %g for the list '%s'",
                       bpl_rule_name(rule), name, hi, choices);
    }
    fuzz_check(bpl_rule_param_info(rule, n, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
               FZ(BPL_ERR_RANGE), "bpl_rule_param_info");
}

/* ---- operations on the rule ---------------------------------------------------- */

static const unsigned set_statuses = FZ(BPL_OK) | FZ(BPL_ERR_INVALID_ARG) |
                                     FZ(BPL_ERR_NOT_FOUND) | FZ(BPL_ERR_RANGE) |
                                     FZ(BPL_ERR_STATE);

/* A successful set stores the value; a failed one changes nothing. */
static void check_set_effect(bpl_rule *rule, const char *name, int rc, int had,
                             double before, const double *wanted)
{
    double now;
    if (!had)
        return;
    fuzz_check(bpl_rule_get(rule, name, &now), FZ(BPL_OK), "bpl_rule_get");
    if (rc == BPL_OK && wanted && now != *wanted)
        fuzz_abort("bpl_rule_set('%s', %.17g) stored %.17g", name, *wanted, now);
    if (rc != BPL_OK && memcmp(&now, &before, sizeof now) != 0)
        fuzz_abort("a failed set of '%s' changed it from %.17g to %.17g", name, before, now);
}

static void op_set(input *in, bpl_rule *rule)
{
    char name[STR_MAX];
    take_name(in, rule, name);
    double value = take_value(in, rule, name), before = 0.0;
    int had = bpl_rule_get(rule, name, &before) == BPL_OK;
    int rc = fuzz_check(bpl_rule_set(rule, name, value), set_statuses, "bpl_rule_set");
    check_set_effect(rule, name, rc, had, before, &value);
}

static void op_set_string(input *in, bpl_rule *rule)
{
    char name[STR_MAX], text[STR_MAX];
    take_name(in, rule, name);
    take_string(in, text);
    size_t i;
    const char *choices = NULL;
    if (param_index(rule, name, &i))
        bpl_rule_param_info(rule, i, NULL, NULL, NULL, NULL, NULL, &choices, NULL);
    if (!text[0] && choices)
        choice_text(choices, take(in), text); /* an empty string asks for a real choice */
    double before = 0.0;
    int had = bpl_rule_get(rule, name, &before) == BPL_OK;
    int rc = fuzz_check(bpl_rule_set_string(rule, name, text), set_statuses,
                        "bpl_rule_set_string");
    check_set_effect(rule, name, rc, had, before, NULL);
}

static void op_get(input *in, bpl_rule *rule)
{
    char name[STR_MAX];
    take_name(in, rule, name);
    double v;
    size_t i;
    int rc = fuzz_check(bpl_rule_get(rule, name, &v),
                        FZ(BPL_OK) | FZ(BPL_ERR_NOT_FOUND) | FZ(BPL_ERR_INVALID_ARG),
                        "bpl_rule_get");
    if ((rc == BPL_OK) != param_index(rule, name, &i))
        fuzz_abort("bpl_rule_get('%s') returned %d, disagreeing with param_info", name, rc);
}

static void op_param_info(input *in, bpl_rule *rule)
{
    size_t index = take(in), count = bpl_rule_param_count(rule);
    const char *name = NULL, *choices = NULL, *doc = NULL;
    int rc = fuzz_check(bpl_rule_param_info(rule, index, &name, NULL, NULL, NULL, NULL,
                                            &choices, &doc),
                        FZ(BPL_OK) | FZ(BPL_ERR_RANGE), "bpl_rule_param_info");
    if ((rc == BPL_OK) != (index < count))
        fuzz_abort("bpl_rule_param_info(%zu) of %zu parameters returned %d", index, count, rc);
}

static void op_add_param(input *in, bpl_rule *rule)
{
    char name[STR_MAX], choices[STR_MAX], doc[STR_MAX];
    take_string(in, name);
    int kind = (int)(take(in) % 6) - 1;
    double def = take_value(in, rule, name), lo = take_value(in, rule, name);
    double hi = take_value(in, rule, name);
    unsigned flags = take(in);
    take_string(in, choices);
    take_string(in, doc);
    size_t before = bpl_rule_param_count(rule);
    int rc = fuzz_check(bpl_rule_add_param(rule, name, kind, def, lo, hi,
                                           flags & 1 ? NULL : choices, flags & 2 ? NULL : doc),
                        FZ(BPL_OK) | FZ(BPL_ERR_INVALID_ARG) | FZ(BPL_ERR_NOMEM) |
                            FZ(BPL_ERR_STATE),
                        "bpl_rule_add_param");
    size_t i;
    if (bpl_rule_param_count(rule) != before + (rc == BPL_OK) ||
        (rc == BPL_OK && (!param_index(rule, name, &i) || i != before)))
        fuzz_abort("bpl_rule_add_param('%s') returned %d; %zu parameters before, %zu after",
                   name, rc, before, bpl_rule_param_count(rule));
}

static void op_add_optimizer(input *in, bpl_rule *rule)
{
    char prefix[STR_MAX];
    int group = (int)(take(in) % 4) - 1;
    take_string(in, prefix);
    int optimizer = (int)(take(in) % 6) - 1;
    double lr = take_value(in, rule, "lr");
    fuzz_check(bpl_rule_add_optimizer(rule, group, prefix, optimizer, lr),
               FZ(BPL_OK) | FZ(BPL_ERR_INVALID_ARG) | FZ(BPL_ERR_NOMEM) | FZ(BPL_ERR_STATE),
               "bpl_rule_add_optimizer");
}

static void op_property(input *in, bpl_rule *rule)
{
    char note[STR_MAX];
    int property = (int)(take(in) % 9) - 1, tick = (int)(take(in) % 7) - 1;
    take_string(in, note);
    int rc = fuzz_check(bpl_rule_set_property(rule, property, tick, note),
                        FZ(BPL_OK) | FZ(BPL_ERR_INVALID_ARG) | FZ(BPL_ERR_NOMEM),
                        "bpl_rule_set_property");
    int got = -1;
    const char *text = NULL;
    int rc_get = fuzz_check(bpl_rule_property(rule, property, &got, &text),
                            FZ(BPL_OK) | FZ(BPL_ERR_INVALID_ARG), "bpl_rule_property");
    if (rc == BPL_OK && (rc_get != BPL_OK || got != tick || !text || strcmp(text, note) != 0))
        fuzz_abort("property %d set to %d '%s' reads back as %d '%s'", property, tick, note,
                   got, text ? text : "(null)");
}

static void op_description(input *in, bpl_rule *rule)
{
    char text[STR_MAX];
    take_string(in, text);
    int rc = fuzz_check(bpl_rule_set_description(rule, text),
                        FZ(BPL_OK) | FZ(BPL_ERR_NOMEM), "bpl_rule_set_description");
    if (rc == BPL_OK && strcmp(bpl_rule_description(rule), text) != 0)
        fuzz_abort("description set to '%s' reads back as '%s'", text,
                   bpl_rule_description(rule));
}

/* ---- the net ----------------------------------------------------------------- */

/* A net of at most 4 x 3 layers of at most 4 units; zero bytes give 2-3-2. */
static bpl_net *make_net(input *in)
{
    static const int outputs[] = {BPL_ACT_SOFTMAX, BPL_ACT_SIGMOID, BPL_ACT_LINEAR};
    uint64_t seed = take(in);
    size_t n_in = 1 + (take(in) + 1) % 4, n_layers = 1 + (take(in) + 1) % 3;
    bpl_net *net = NULL;
    fuzz_check(bpl_net_create(&net, n_in, seed), FZ(BPL_OK), "bpl_net_create");
    int out_act = BPL_ACT_SOFTMAX;
    for (size_t l = 0; l < n_layers; l++) {
        size_t units = 1 + (take(in) + (l + 1 < n_layers ? 2 : 1)) % 4;
        unsigned a = take(in);
        int act = l + 1 < n_layers ? (int)(a % 4) : outputs[a % 3];
        int init = (int)(take(in) % 9);
        fuzz_check(bpl_net_add_dense(net, units, act, init), FZ(BPL_OK), "bpl_net_add_dense");
        out_act = act;
    }
    if (out_act == BPL_ACT_LINEAR)
        fuzz_check(bpl_net_set_loss(net, BPL_LOSS_MSE), FZ(BPL_OK), "bpl_net_set_loss");
    return net;
}

static void op_attach(input *in, state *s)
{
    if (!s->rule)
        s->rule = builtin(take(in));
    if (!s->net)
        s->net = make_net(in);
    bpl_rule *rule = s->rule;
    int rc = fuzz_check(bpl_net_set_rule(s->net, rule), FZ_ANY, "bpl_net_set_rule");
    if (rc == BPL_OK)
        s->rule = NULL;
    if ((bpl_net_rule(s->net) == rule) != (rc == BPL_OK))
        fuzz_abort("bpl_net_set_rule returned %d but the net's rule is %p, not %p", rc,
                   (void *)bpl_net_rule(s->net), (void *)rule);
}

/* x [batch][inputs] from the input bytes, in [-4, 4). */
static size_t take_batch(input *in, const bpl_net *net, float *x)
{
    size_t batch = 1 + take(in) % MAX_BATCH, n = batch * bpl_net_inputs(net);
    for (size_t i = 0; i < n; i++)
        x[i] = ((float)take(in) - 128.0f) / 32.0f;
    return batch;
}

static void op_train(input *in, state *s)
{
    if (!s->net)
        return;
    float x[MAX_BATCH * 4], y[MAX_BATCH * 4] = {0};
    size_t batch = take_batch(in, s->net, x), n_out = bpl_net_outputs(s->net);
    for (size_t i = 0; i < batch; i++)
        y[i * n_out + take(in) % n_out] = 1.0f;
    fuzz_cap_costs(bpl_net_rule(s->net));
    double loss = NAN;
    int rc = fuzz_check(bpl_net_train_batch(s->net, x, y, batch, &loss), FZ_ANY,
                        "bpl_net_train_batch");
    if (!bpl_net_rule(s->net) && rc != BPL_ERR_STATE)
        fuzz_abort("a training step without a rule returned %d", rc);
    if (rc == BPL_OK && !isfinite(loss))
        fuzz_abort("a successful training step reported the loss %g", loss);
    fuzz_reached_if_ok(rc, FUZZ_REACH_TRAIN);
}

static void op_predict(input *in, state *s)
{
    if (!s->net)
        return;
    float x[MAX_BATCH * 4], out[MAX_BATCH * 4];
    size_t batch = take_batch(in, s->net, x);
    fuzz_cap_costs(bpl_net_rule(s->net));
    fuzz_reached_if_ok(
        fuzz_check(bpl_net_predict(s->net, x, batch, out, batch * bpl_net_outputs(s->net)),
                   FZ_ANY, "bpl_net_predict"),
        FUZZ_REACH_PREDICT);
}

static void run(input *in, state *s)
{
    unsigned op = take(in) % OP_COUNT;
    if (op != OP_ATTACH && op != OP_TRAIN && op != OP_PREDICT && !target(s))
        s->rule = builtin(0);
    bpl_rule *rule = target(s);
    switch (op) {
    case OP_SET: op_set(in, rule); break;
    case OP_SET_STRING: op_set_string(in, rule); break;
    case OP_GET: op_get(in, rule); break;
    case OP_PARAM_INFO: op_param_info(in, rule); break;
    case OP_ADD_PARAM: op_add_param(in, rule); break;
    case OP_ADD_OPTIMIZER: op_add_optimizer(in, rule); break;
    case OP_PROPERTY: op_property(in, rule); break;
    case OP_DESCRIPTION: op_description(in, rule); break;
    case OP_ATTACH: op_attach(in, s); break;
    case OP_TRAIN: op_train(in, s); break;
    case OP_PREDICT: op_predict(in, s); break;
    case OP_NEW_RULE:
        bpl_rule_destroy(s->rule);
        s->rule = builtin(take(in));
        break;
    default: break;
    }
    if (target(s))
        check_params(target(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_begin();
    input in = {data, size};
    state s = {builtin(take(&in)), NULL};
    for (int i = 0; i < MAX_OPS && in.n > 0; i++)
        run(&in, &s);
    /* Every sequence ends with its rule on a net and one training step. */
    if (!s.net || !bpl_net_rule(s.net))
        op_attach(&in, &s);
    op_train(&in, &s);
    bpl_rule_destroy(s.rule);
    bpl_net_destroy(s.net);
    return 0;
}
