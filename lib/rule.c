/*
 * rule.c - rule objects: the vtable, string-keyed hyperparameters and the
 * review's property table.
 */
#include "bpl_internal.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const optimizer_keys[BPL__OPT_N] = {
    "optimizer", "lr", "momentum", "beta1", "beta2", "eps", "rho", "weight_decay"};

/* The vtable as version 1 laid it out, frozen: what a caller built against
 * that header allocated.  Version 2 appended its hooks after `destroy`. */
typedef struct vtable_v1 {
    unsigned int version;
    unsigned int flags;
    const char *name;
    int (*attach)(void *self, bpl_net *net);
    int (*forward)(void *self, bpl_net *net, const float *x, size_t batch);
    int (*compute_targets)(void *self, bpl_net *net, const float *y, size_t batch);
    int (*update)(void *self, bpl_net *net);
    void (*destroy)(void *self);
} vtable_v1;

_Static_assert(offsetof(vtable_v1, destroy) == offsetof(bpl_rule_vtable, destroy) &&
                   sizeof(vtable_v1) <= offsetof(bpl_rule_vtable, gradients),
               "version 2 of the vtable must extend version 1 at its end");

/* The size of each version's struct, indexed by version: a caller's vtable
 * is read and written only that far, however large the library's is. */
static const size_t vtable_size[] = {0, sizeof(vtable_v1), sizeof(bpl_rule_vtable)};

_Static_assert(sizeof vtable_size / sizeof vtable_size[0] == BPL_RULE_VTABLE_VERSION + 1,
               "every vtable version has its size");

static int check_version(unsigned int version, const char *caller)
{
    if (version >= 1 && version <= BPL_RULE_VTABLE_VERSION)
        return BPL_OK;
    return bpl__fail(BPL_ERR_VERSION,
                     "%s: vtable version %u not supported (this library knows 1..%u); use "
                     "bpl_rule_vtable_init",
                     caller, version, (unsigned)BPL_RULE_VTABLE_VERSION);
}

BPL_API int bpl_rule_vtable_init(bpl_rule_vtable *vtable, unsigned int version)
{
    BPL_CHECK_ARG(vtable != NULL);
    int rc = check_version(version, "bpl_rule_vtable_init");
    if (rc != BPL_OK)
        return rc;
    memset(vtable, 0, vtable_size[version]);
    vtable->version = version;
    return BPL_OK;
}

static int check_name(const char *name)
{
    if (!name || name[0] == '\0')
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_rule_create: vtable has no name");
    if (strlen(name) >= BPL__RULE_NAME_MAX)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_create: rule name longer than %d characters",
                         BPL__RULE_NAME_MAX - 1);
    if (!bpl__valid_name(name, BPL__RULE_NAME_MAX, 0))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_create: rule name must be printable ASCII");
    return BPL_OK;
}

/* Which hooks go together: a step is either version 1's update or version
 * 2's gradients (then after_apply belongs to it), and a state that is saved
 * must be loadable. */
static const char *hook_mismatch(const bpl_rule_vtable *vt)
{
    if (!vt->forward)
        return "has no forward hook (required)";
    if (!vt->compute_targets)
        return "has no compute_targets hook (required)";
    if (!vt->update && !vt->gradients)
        return "has neither a gradients nor an update hook (one is required)";
    if (vt->update && vt->gradients)
        return "has both an update and a gradients hook (give one: update applies the "
               "step itself, gradients leaves it to the library)";
    if (vt->after_apply && !vt->gradients)
        return "has an after_apply hook without a gradients hook";
    if (!vt->save_state != !vt->load_state)
        return "has only one of save_state and load_state (they come together)";
    return NULL;
}

/* The caller's vtable, read only as far as its version's struct goes. */
static int copy_vtable(const bpl_rule_vtable *vtable, bpl_rule_vtable *copy)
{
    int rc = check_version(vtable->version, "bpl_rule_create");
    if (rc != BPL_OK)
        return rc;
    memset(copy, 0, sizeof *copy);
    memcpy(copy, vtable, vtable_size[vtable->version]);
    if (copy->flags != 0)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_create: vtable flags must be 0, got 0x%x", copy->flags);
    rc = check_name(copy->name);
    if (rc != BPL_OK)
        return rc;
    const char *mismatch = hook_mismatch(copy);
    if (mismatch)
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_rule_create: rule '%s' %s", copy->name,
                         mismatch);
    return BPL_OK;
}

BPL_API int bpl_rule_create(bpl_rule **out, const bpl_rule_vtable *vtable, void *self)
{
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(vtable != NULL);
    bpl_rule_vtable vt;
    int rc = copy_vtable(vtable, &vt);
    if (rc != BPL_OK)
        return rc;
    bpl_rule *rule = bpl__calloc(1, sizeof *rule);
    if (!rule)
        return bpl__fail(BPL_ERR_NOMEM, "bpl_rule_create: out of memory");
    rule->vt = vt;
    snprintf(rule->name, sizeof rule->name, "%s", vt.name);
    rule->vt.name = rule->name;
    rule->params_generation = 1; /* a cache that has seen nothing holds 0 */
    for (int p = 0; p < BPL__N_PROPERTIES; p++)
        rule->tick[p] = BPL_TICK_UNKNOWN;
    /* Until it says otherwise, a rule may rely on everything a dense layer
     * gives, as every rule could before layers had kinds. */
    rule->needs = BPL__CAN_ALL;
    rc = bpl_rule_add_optimizer(rule, BPL_GROUP_FORWARD, "", BPL_OPT_ADAM, 1e-3);
    if (rc != BPL_OK) {
        rule->vt.destroy = NULL; /* creation failed: the caller keeps `self` */
        bpl_rule_destroy(rule);
        return rc;
    }
    rule->self = self;
    *out = rule;
    return BPL_OK;
}

BPL_API int bpl_rule_create_builtin(bpl_rule **out, const char *name)
{
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(name != NULL);
    for (size_t i = 0; i < bpl__n_builtin_rules; i++)
        if (strcmp(bpl__builtin_rules[i].vtable->name, name) == 0) {
            int rc = bpl__builtin_rules[i].create(out);
            if (rc != BPL_OK) {
                *out = NULL;
                bpl__error_prefix("bpl_rule_create_builtin");
            } else {
                (*out)->builtin = 1;
            }
            return rc;
        }
    char known[256] = "";
    for (size_t i = 0; i < bpl__n_builtin_rules; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, bpl__builtin_rules[i].vtable->name, sizeof known - strlen(known) - 1);
    }
    return bpl__fail(BPL_ERR_NOT_FOUND,
                     "bpl_rule_create_builtin: no built-in rule '%s' (known: %s)", name,
                     known);
}

BPL_API size_t bpl_rule_builtin_count(void)
{
    return bpl__n_builtin_rules;
}

BPL_API const char *bpl_rule_builtin_name(size_t index)
{
    return index < bpl__n_builtin_rules ? bpl__builtin_rules[index].vtable->name : NULL;
}

static void free_rule(bpl_rule *rule)
{
    /* The destroy hook may hold the rule: destroying or attaching it from
     * there would free it twice or attach what is being freed. */
    rule->destroying = 1;
    if (rule->vt.destroy)
        rule->vt.destroy(rule->self);
    for (size_t i = 0; i < rule->n_params; i++) {
        bpl__free(rule->params[i].choices);
        bpl__free(rule->params[i].doc);
    }
    bpl__free(rule->params);
    for (size_t i = 0; i < rule->n_recs; i++)
        bpl__free(rule->recs[i].value);
    bpl__free(rule->recs);
    for (int p = 0; p < BPL__N_PROPERTIES; p++)
        bpl__free(rule->note[p]);
    bpl__free(rule->description);
    bpl__free(rule);
}

BPL_API void bpl_rule_destroy(bpl_rule *rule)
{
    if (rule && !rule->owner && !rule->destroying)
        free_rule(rule);
}

void bpl__rule_free_owned(bpl_rule *rule)
{
    if (rule)
        free_rule(rule);
}

BPL_API const char *bpl_rule_name(const bpl_rule *rule)
{
    return rule ? rule->name : NULL;
}

BPL_API const char *bpl_rule_description(const bpl_rule *rule)
{
    return rule && rule->description ? rule->description : "";
}

BPL_API int bpl_rule_set_description(bpl_rule *rule, const char *text)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(text != NULL);
    char *copy = bpl__strdup(text);
    if (!copy)
        return bpl__fail(BPL_ERR_NOMEM, "bpl_rule_set_description: out of memory");
    bpl__free(rule->description);
    rule->description = copy;
    return BPL_OK;
}

/* ---- hyperparameters ------------------------------------------------------ */

int bpl__rule_settings_stale(const bpl_rule *rule, uint64_t *seen)
{
    if (*seen == rule->params_generation)
        return 0;
    *seen = rule->params_generation;
    return 1;
}

bpl__param *bpl__rule_find_param(const bpl_rule *rule, const char *name)
{
    for (size_t i = 0; i < rule->n_params; i++)
        if (strcmp(rule->params[i].name, name) == 0)
            return &rule->params[i];
    return NULL;
}

static size_t count_choices(const char *choices)
{
    size_t n = 1;
    for (const char *c = choices; *c; c++)
        n += *c == '|';
    return n;
}

/* Index of `name` in "a|b|c", or -1. */
static long choice_index(const char *choices, const char *name)
{
    size_t len = strlen(name);
    long index = 0;
    for (const char *c = choices;; index++) {
        const char *end = strchr(c, '|');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == len && strncmp(c, name, n) == 0)
            return index;
        if (!end)
            return -1;
        c = end + 1;
    }
}

static int check_value(const bpl__param *p, double value, const char *caller)
{
    if (isnan(value))
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: '%s' cannot be NaN", caller, p->name);
    if (value < p->lo || value > p->hi)
        return bpl__fail(BPL_ERR_RANGE, "%s: '%s' = %g is outside [%g, %g]", caller,
                         p->name, value, p->lo, p->hi);
    if (p->kind != BPL_PARAM_REAL && value != floor(value))
        return bpl__fail(BPL_ERR_RANGE, "%s: '%s' takes whole numbers, got %g", caller,
                         p->name, value);
    return BPL_OK;
}

BPL_API int bpl_rule_add_param(bpl_rule *rule, const char *name, int kind,
                               double default_value, double lo, double hi,
                               const char *choices, const char *doc)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(name != NULL);
    if (!bpl__valid_name(name, BPL__NAME_MAX, 1))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_add_param: bad name '%s' (1-%d characters of "
                         "[A-Za-z0-9_.-])",
                         name, BPL__NAME_MAX - 1);
    if (rule->owner)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_rule_add_param: '%s': rule already attached to a net", name);
    if (kind < BPL_PARAM_REAL || kind > BPL_PARAM_CHOICE)
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_rule_add_param: '%s': unknown kind %d",
                         name, kind);
    if (bpl__rule_find_param(rule, name))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_add_param: '%s' is already declared", name);
    if (kind == BPL_PARAM_CHOICE) {
        if (!choices || choices[0] == '\0')
            return bpl__fail(BPL_ERR_INVALID_ARG,
                             "bpl_rule_add_param: '%s': a choice needs a list", name);
        lo = 0;
        hi = (double)(count_choices(choices) - 1);
    } else if (kind == BPL_PARAM_BOOL) {
        lo = 0;
        hi = 1;
    }
    if (isnan(lo) || isnan(hi) || lo > hi)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_add_param: '%s': bounds [%g, %g] are not an interval",
                         name, lo, hi);

    bpl__param param = {.kind = kind, .value = default_value, .def = default_value,
                        .lo = lo, .hi = hi};
    snprintf(param.name, sizeof param.name, "%s", name);
    if (check_value(&param, default_value, "bpl_rule_add_param") != BPL_OK)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_add_param: default %g of '%s' is outside [%g, %g] or "
                         "not a whole number",
                         default_value, name, lo, hi);
    if (rule->n_params == rule->cap_params) {
        size_t cap = rule->cap_params ? 2 * rule->cap_params : 16;
        bpl__param *grown = bpl__realloc(rule->params, cap * sizeof *grown);
        if (!grown)
            return bpl__fail(BPL_ERR_NOMEM, "bpl_rule_add_param: out of memory");
        rule->params = grown;
        rule->cap_params = cap;
    }
    param.doc = bpl__strdup(doc ? doc : "");
    param.choices = kind == BPL_PARAM_CHOICE ? bpl__strdup(choices) : NULL;
    if (!param.doc || (kind == BPL_PARAM_CHOICE && !param.choices)) {
        bpl__free(param.doc);
        bpl__free(param.choices);
        return bpl__fail(BPL_ERR_NOMEM, "bpl_rule_add_param: out of memory");
    }
    rule->params[rule->n_params++] = param;
    rule->params_generation++;
    return BPL_OK;
}

/* 1 if `p` is the parameter bpl_rule_add_optimizer would declare: an
 * earlier call with the same prefix, which a new call may reset. */
static int same_declaration(const bpl__param *p, int kind, double lo, double hi,
                            const char *choices)
{
    if (p->kind != kind)
        return 0;
    if (kind == BPL_PARAM_CHOICE)
        return p->choices && strcmp(p->choices, choices) == 0;
    return p->lo == lo && p->hi == hi;
}

static int declare_or_reset(bpl_rule *rule, const char *name, int kind, double def,
                            double lo, double hi, const char *choices, const char *doc,
                            size_t *index_out)
{
    bpl__param *p = bpl__rule_find_param(rule, name);
    if (!p) {
        int rc = bpl_rule_add_param(rule, name, kind, def, lo, hi, choices, doc);
        if (rc != BPL_OK)
            return rc;
        p = &rule->params[rule->n_params - 1];
    } else {
        p->def = p->value = def;
        rule->params_generation++;
    }
    *index_out = (size_t)(p - rule->params);
    return BPL_OK;
}

/* Forget the parameters declared after the first `n` (a failed call's). */
static void drop_params_after(bpl_rule *rule, size_t n)
{
    while (rule->n_params > n) {
        bpl__param *p = &rule->params[--rule->n_params];
        bpl__free(p->choices);
        bpl__free(p->doc);
        rule->params_generation++;
    }
}

BPL_API int bpl_rule_add_optimizer(bpl_rule *rule, int group, const char *prefix,
                                   int default_optimizer, double default_lr)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(prefix != NULL);
    BPL_CHECK_ARG(group >= 0 && group < BPL__N_GROUPS);
    BPL_CHECK_ARG(default_optimizer >= BPL_OPT_SGD && default_optimizer <= BPL_OPT_ADAM);
    if (strlen(prefix) + 16 >= BPL__NAME_MAX)
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_rule_add_optimizer: prefix too long");
    /* Checked before anything changes, so a failure leaves the rule as it was. */
    if (!(default_lr >= 0.0 && default_lr <= 1e3))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_add_optimizer: default %slr = %g is outside [0, 1000]",
                         prefix, default_lr);
    if (rule->owner)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_rule_add_optimizer: rule already attached to a net");
    static const char *const group_names[] = {"forward", "feedback"};
    const char *gname = group_names[group];
    struct {
        int kind;
        double def, lo, hi;
        const char *doc;
    } spec[BPL__OPT_N] = {
        {BPL_PARAM_CHOICE, default_optimizer, 0, 0, "optimiser"},
        {BPL_PARAM_REAL, default_lr, 0, 1e3, "learning rate"},
        {BPL_PARAM_REAL, 0.9, 0, 0.999999, "momentum coefficient (momentum optimiser)"},
        {BPL_PARAM_REAL, 0.9, 0, 0.999999, "Adam first-moment decay"},
        {BPL_PARAM_REAL, 0.999, 0, 0.999999999, "Adam second-moment decay"},
        {BPL_PARAM_REAL, 1e-8, 1e-12, 1, "denominator stabiliser (Adam, RMSprop)"},
        {BPL_PARAM_REAL, 0.9, 0, 0.999999999, "RMSprop squared-gradient decay"},
        {BPL_PARAM_REAL, 0.0, 0, 1, "L2 weight decay added to the gradient"},
    };
    static const char *const kinds = "sgd|momentum|rmsprop|adam";
    /* A name the rule already has must be this optimiser's own, from an
     * earlier call; a parameter of another kind or range is refused before
     * anything changes. */
    for (int k = 0; k < BPL__OPT_N; k++) {
        char name[BPL__NAME_MAX];
        snprintf(name, sizeof name, "%s%s", prefix, optimizer_keys[k]);
        const bpl__param *p = bpl__rule_find_param(rule, name);
        if (p && !same_declaration(p, spec[k].kind, spec[k].lo, spec[k].hi, kinds))
            return bpl__fail(BPL_ERR_INVALID_ARG,
                             "bpl_rule_add_optimizer: '%s' is already declared as another "
                             "kind of parameter; choose another prefix",
                             name);
    }
    size_t n_before = rule->n_params;
    size_t index[BPL__OPT_N];
    for (int k = 0; k < BPL__OPT_N; k++) {
        char name[BPL__NAME_MAX], doc[96];
        snprintf(name, sizeof name, "%s%s", prefix, optimizer_keys[k]);
        snprintf(doc, sizeof doc, "%s of the %s weights", spec[k].doc, gname);
        int rc = declare_or_reset(rule, name, spec[k].kind, spec[k].def, spec[k].lo,
                                  spec[k].hi, kinds, doc, &index[k]);
        if (rc != BPL_OK) {
            drop_params_after(rule, n_before);
            return bpl__fail(rc, "bpl_rule_add_optimizer: %s", bpl_strerror(rc));
        }
    }
    memcpy(rule->opt_param[group], index, sizeof index);
    rule->opt_declared[group] = 1;
    return BPL_OK;
}

int bpl__rule_optim_config(const bpl_rule *rule, int group, bpl__optim_config *out)
{
    if (!rule->opt_declared[group])
        return bpl__fail(BPL_ERR_STATE,
                         "rule '%s' declares no optimiser for group %d (see "
                         "bpl_rule_add_optimizer)",
                         rule->name, group);
    const size_t *idx = rule->opt_param[group];
    out->kind = (int)rule->params[idx[BPL__OPT_KIND]].value;
    out->lr = rule->params[idx[BPL__OPT_LR]].value;
    out->momentum = rule->params[idx[BPL__OPT_MOMENTUM]].value;
    out->beta1 = rule->params[idx[BPL__OPT_BETA1]].value;
    out->beta2 = rule->params[idx[BPL__OPT_BETA2]].value;
    out->eps = rule->params[idx[BPL__OPT_EPS]].value;
    out->rho = rule->params[idx[BPL__OPT_RHO]].value;
    out->weight_decay = rule->params[idx[BPL__OPT_WEIGHT_DECAY]].value;
    return BPL_OK;
}

static int find_param(const bpl_rule *rule, const char *name, const char *caller,
                      bpl__param **out)
{
    *out = bpl__rule_find_param(rule, name);
    if (*out)
        return BPL_OK;
    return bpl__fail(BPL_ERR_NOT_FOUND, "%s: rule '%s' has no hyperparameter '%s'",
                     caller, rule->name, name);
}

BPL_API int bpl_rule_set(bpl_rule *rule, const char *name, double value)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(name != NULL);
    bpl__param *p;
    int rc = find_param(rule, name, "bpl_rule_set", &p);
    if (rc == BPL_OK)
        rc = check_value(p, value, "bpl_rule_set");
    if (rc == BPL_OK && p->fixed && rule->owner && value != p->value)
        rc = bpl__fail(BPL_ERR_STATE,
                       "bpl_rule_set: '%s' shapes the net's tensors and is fixed once the "
                       "rule is attached; set it before bpl_net_set_rule",
                       name);
    if (rc == BPL_OK) {
        p->value = value;
        rule->params_generation++;
    }
    return rc;
}

BPL_API int bpl_rule_fix_param(bpl_rule *rule, const char *name)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(name != NULL);
    bpl__param *p;
    int rc = find_param(rule, name, "bpl_rule_fix_param", &p);
    if (rc != BPL_OK)
        return rc;
    /* The attach hook has read it already: fixing it now would not undo
     * what a change before made. */
    if (rule->owner)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_rule_fix_param: '%s': rule '%s' is already attached to a net",
                         name, rule->name);
    p->fixed = 1;
    return BPL_OK;
}

BPL_API int bpl_rule_set_needs(bpl_rule *rule, unsigned int needs)
{
    BPL_CHECK_ARG(rule != NULL);
    if (needs & ~(unsigned)BPL_NEEDS_ALL)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_set_needs: 0x%x holds bits outside BPL_NEEDS_ALL (0x%x)",
                         needs, (unsigned)BPL_NEEDS_ALL);
    /* The net checked its kinds against the needs when the rule came. */
    if (rule->owner)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_rule_set_needs: rule '%s' is already attached to a net",
                         rule->name);
    rule->needs = needs; /* the public bits are the capabilities' (bpl_internal.h) */
    return BPL_OK;
}

BPL_API unsigned int bpl_rule_needs(const bpl_rule *rule)
{
    return rule ? rule->needs : 0u;
}

BPL_API int bpl_rule_get(const bpl_rule *rule, const char *name, double *value_out)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(name != NULL);
    BPL_CHECK_ARG(value_out != NULL);
    bpl__param *p;
    int rc = find_param(rule, name, "bpl_rule_get", &p);
    if (rc == BPL_OK)
        *value_out = p->value;
    return rc;
}

/* The value `text` stands for: a choice name, a boolean word or a number. */
static int parse_text(const bpl__param *p, const char *text, double *out, const char *caller)
{
    if (p->kind == BPL_PARAM_CHOICE) {
        long index = choice_index(p->choices, text);
        if (index >= 0) {
            *out = (double)index;
            return BPL_OK;
        }
    }
    if (p->kind == BPL_PARAM_BOOL) {
        int yes = strcmp(text, "true") == 0 || strcmp(text, "yes") == 0;
        if (yes || strcmp(text, "false") == 0 || strcmp(text, "no") == 0) {
            *out = yes ? 1.0 : 0.0;
            return BPL_OK;
        }
    }
    char *end;
    errno = 0;
    double number = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE)
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: '%s' for '%s' is not a number%s%s", caller,
                         text, p->name, p->kind == BPL_PARAM_CHOICE ? " nor one of " : "",
                         p->kind == BPL_PARAM_CHOICE ? p->choices : "");
    *out = number;
    return BPL_OK;
}

BPL_API int bpl_rule_set_string(bpl_rule *rule, const char *name, const char *value)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(name != NULL);
    BPL_CHECK_ARG(value != NULL);
    bpl__param *p;
    double number;
    int rc = find_param(rule, name, "bpl_rule_set_string", &p);
    if (rc == BPL_OK)
        rc = parse_text(p, value, &number, "bpl_rule_set_string");
    return rc == BPL_OK ? bpl_rule_set(rule, name, number) : rc;
}

BPL_API size_t bpl_rule_param_count(const bpl_rule *rule)
{
    return rule ? rule->n_params : 0;
}

BPL_API int bpl_rule_param_info(const bpl_rule *rule, size_t index, const char **name_out,
                                int *kind_out, double *default_out, double *lo_out,
                                double *hi_out, const char **choices_out,
                                const char **doc_out)
{
    BPL_CHECK_ARG(rule != NULL);
    if (index >= rule->n_params)
        return bpl__fail(BPL_ERR_RANGE,
                         "bpl_rule_param_info: index %zu out of range (rule '%s' has %zu)",
                         index, rule->name, rule->n_params);
    const bpl__param *p = &rule->params[index];
    if (name_out) *name_out = p->name;
    if (kind_out) *kind_out = p->kind;
    if (default_out) *default_out = p->def;
    if (lo_out) *lo_out = p->lo;
    if (hi_out) *hi_out = p->hi;
    if (choices_out) *choices_out = p->choices;
    if (doc_out) *doc_out = p->doc;
    return BPL_OK;
}

/* ---- the recommended training set-up ------------------------------------------ */

/* Text checks of the training choices' values: 1 if `text` is valid. */

/* A whole number in [1, max], digits only. */
static int whole_in(const char *text, unsigned long long max)
{
    if (text[0] < '0' || text[0] > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    return *end == '\0' && errno != ERANGE && value >= 1 && value <= max;
}

static int valid_hidden(const char *text)
{
    if (text[0] == '\0' || strcmp(text, "0") == 0)
        return 1; /* no hidden layer */
    char units[32];
    for (const char *p = text;;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof units)
            return 0;
        memcpy(units, p, n);
        units[n] = '\0';
        if (!whole_in(units, BPL__MAX_UNITS))
            return 0;
        if (p[n] == '\0')
            return 1;
        p += n + 1;
    }
}

static int valid_activation(const char *text)
{
    int activation;
    return bpl_activation_from_name(text, &activation) == BPL_OK &&
           activation != BPL_ACT_SOFTMAX;
}

static int valid_init(const char *text)
{
    int init;
    return bpl_init_from_name(text, &init) == BPL_OK;
}

static int valid_batch_size(const char *text)
{
    return whole_in(text, BPL__MAX_BATCH);
}

static int valid_epochs(const char *text)
{
    return whole_in(text, (unsigned long long)1 << 32);
}

static int valid_lr_decay(const char *text)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    return end != text && *end == '\0' && errno != ERANGE && value > 0.0 && value <= 1.0;
}

/* The training choices a rule may recommend that are not its hyperparameters:
 * the library does not use them itself, front ends do. */
static const struct training_choice {
    const char *key;
    int (*valid)(const char *text);
    const char *what;
} training_choices[] = {
    {"hidden", valid_hidden, "comma-separated hidden layer sizes, or \"\" or 0 for none"},
    {"activation", valid_activation, "the name of a hidden activation"},
    {"init", valid_init, "the name of an initialiser"},
    {"batch_size", valid_batch_size, "a whole number of examples from 1"},
    {"epochs", valid_epochs, "a whole number of epochs from 1"},
    {"lr_decay", valid_lr_decay, "a factor in (0, 1]"},
};
#define N_TRAINING_CHOICES (sizeof training_choices / sizeof training_choices[0])
static const char ignores_key[] = "ignores";

static const struct training_choice *find_training_choice(const char *key, size_t n)
{
    for (size_t i = 0; i < N_TRAINING_CHOICES; i++)
        if (strlen(training_choices[i].key) == n && strncmp(training_choices[i].key, key, n) == 0)
            return &training_choices[i];
    return NULL;
}

/* "activation,init:paper_init": training choices, each with an optional
 * hyperparameter of the rule while which it is ignored. */
static int check_ignores(const bpl_rule *rule, const char *text)
{
    if (text[0] == '\0')
        return BPL_OK; /* nothing is ignored */
    for (const char *item = text;;) {
        size_t n = strcspn(item, ",");
        size_t choice_length = strcspn(item, ",:");
        if (!find_training_choice(item, choice_length))
            return bpl__fail(BPL_ERR_INVALID_ARG,
                             "bpl_rule_set_recommendation: 'ignores': '%.*s' in '%s' is not "
                             "a training choice (hidden, activation, init, batch_size, epochs, "
                             "lr_decay)",
                             (int)choice_length, item, text);
        if (choice_length < n) {
            char name[BPL__NAME_MAX];
            size_t name_length = n - choice_length - 1;
            snprintf(name, sizeof name, "%.*s", (int)name_length, item + choice_length + 1);
            if (name_length >= sizeof name || !bpl__rule_find_param(rule, name))
                return bpl__fail(BPL_ERR_INVALID_ARG,
                                 "bpl_rule_set_recommendation: 'ignores': '%s' after ':' in "
                                 "'%s' is no hyperparameter of rule '%s'",
                                 name, text, rule->name);
        }
        if (item[n] == '\0')
            return BPL_OK;
        item += n + 1;
    }
}

/* A recommendation's value must be one its key accepts. */
static int check_recommendation(const bpl_rule *rule, const char *key, const char *value)
{
    static const char caller[] = "bpl_rule_set_recommendation";
    const bpl__param *p = bpl__rule_find_param(rule, key);
    if (p) {
        double number;
        int rc = parse_text(p, value, &number, caller);
        return rc == BPL_OK ? check_value(p, number, caller) : rc;
    }
    if (strcmp(key, ignores_key) == 0)
        return check_ignores(rule, value);
    const struct training_choice *choice = find_training_choice(key, strlen(key));
    if (!choice)
        return bpl__fail(BPL_ERR_NOT_FOUND,
                         "%s: '%s' is neither a hyperparameter of rule '%s' nor a training "
                         "choice (hidden, activation, init, batch_size, epochs, lr_decay, "
                         "ignores)",
                         caller, key, rule->name);
    if (!choice->valid(value))
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: '%s' for '%s' is not %s", caller, value,
                         key, choice->what);
    return BPL_OK;
}

static bpl__recommendation *find_recommendation(const bpl_rule *rule, const char *key)
{
    for (size_t i = 0; i < rule->n_recs; i++)
        if (strcmp(rule->recs[i].key, key) == 0)
            return &rule->recs[i];
    return NULL;
}

static void remove_recommendation(bpl_rule *rule, bpl__recommendation *r)
{
    bpl__free(r->value);
    size_t index = (size_t)(r - rule->recs);
    memmove(r, r + 1, (rule->n_recs - index - 1) * sizeof *r);
    rule->n_recs--;
}

BPL_API int bpl_rule_set_recommendation(bpl_rule *rule, const char *key, const char *value)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(key != NULL);
    bpl__recommendation *r = find_recommendation(rule, key);
    if (!value) {
        if (r)
            remove_recommendation(rule, r);
        return BPL_OK;
    }
    int rc = check_recommendation(rule, key, value);
    if (rc != BPL_OK)
        return rc;
    char *copy = bpl__strdup(value);
    if (!copy)
        return bpl__fail(BPL_ERR_NOMEM, "bpl_rule_set_recommendation: out of memory");
    if (!r && rule->n_recs == rule->cap_recs) {
        size_t cap = rule->cap_recs ? 2 * rule->cap_recs : 8;
        bpl__recommendation *grown = bpl__realloc(rule->recs, cap * sizeof *grown);
        if (!grown) {
            bpl__free(copy);
            return bpl__fail(BPL_ERR_NOMEM, "bpl_rule_set_recommendation: out of memory");
        }
        rule->recs = grown;
        rule->cap_recs = cap;
    }
    if (!r) {
        r = &rule->recs[rule->n_recs++];
        snprintf(r->key, sizeof r->key, "%s", key); /* checked: a known name */
        r->value = NULL;
    }
    bpl__free(r->value);
    r->value = copy;
    return BPL_OK;
}

BPL_API size_t bpl_rule_recommendation_count(const bpl_rule *rule)
{
    return rule ? rule->n_recs : 0;
}

BPL_API int bpl_rule_recommendation(const bpl_rule *rule, size_t index, const char **key_out,
                                    const char **value_out)
{
    BPL_CHECK_ARG(rule != NULL);
    if (index >= rule->n_recs)
        return bpl__fail(BPL_ERR_RANGE,
                         "bpl_rule_recommendation: index %zu out of range (rule '%s' has "
                         "%zu)",
                         index, rule->name, rule->n_recs);
    if (key_out)
        *key_out = rule->recs[index].key;
    if (value_out)
        *value_out = rule->recs[index].value;
    return BPL_OK;
}

BPL_API int bpl_rule_recommended(const bpl_rule *rule, const char *key, const char **value_out)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(key != NULL);
    BPL_CHECK_ARG(value_out != NULL);
    const bpl__recommendation *r = find_recommendation(rule, key);
    if (!r)
        return bpl__fail(BPL_ERR_NOT_FOUND, "bpl_rule_recommended: rule '%s' recommends no '%s'",
                         rule->name, key);
    *value_out = r->value;
    return BPL_OK;
}

BPL_API int bpl_rule_ignores(const bpl_rule *rule, const char *choice, int *ignored_out)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(choice != NULL);
    BPL_CHECK_ARG(ignored_out != NULL);
    *ignored_out = 0;
    if (!find_training_choice(choice, strlen(choice)))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_rule_ignores: '%s' is not a training choice (hidden, "
                         "activation, init, batch_size, epochs, lr_decay)",
                         choice);
    const bpl__recommendation *r = find_recommendation(rule, ignores_key);
    for (const char *item = r ? r->value : ""; *item;) {
        size_t n = strcspn(item, ",");
        size_t choice_length = strcspn(item, ",:");
        if (choice_length == strlen(choice) && strncmp(item, choice, choice_length) == 0) {
            if (choice_length == n) { /* unconditional */
                *ignored_out = 1;
                return BPL_OK;
            }
            /* While the named hyperparameter is nonzero. */
            char name[BPL__NAME_MAX];
            snprintf(name, sizeof name, "%.*s", (int)(n - choice_length - 1),
                     item + choice_length + 1);
            const bpl__param *p = bpl__rule_find_param(rule, name);
            *ignored_out = p && p->value != 0.0;
            return BPL_OK;
        }
        item += item[n] ? n + 1 : n;
    }
    return BPL_OK;
}

/* ---- properties --------------------------------------------------------------- */

BPL_API int bpl_rule_property(const bpl_rule *rule, int property, int *tick_out,
                              const char **note_out)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(property >= 0 && property < BPL__N_PROPERTIES);
    BPL_CHECK_ARG(tick_out != NULL);
    *tick_out = rule->tick[property];
    if (note_out)
        *note_out = rule->note[property] ? rule->note[property] : "";
    return BPL_OK;
}

BPL_API int bpl_rule_set_property(bpl_rule *rule, int property, int tick, const char *note)
{
    BPL_CHECK_ARG(rule != NULL);
    BPL_CHECK_ARG(property >= 0 && property < BPL__N_PROPERTIES);
    BPL_CHECK_ARG(tick >= BPL_TICK_NO && tick <= BPL_TICK_UNKNOWN);
    char *copy = NULL;
    if (note && note[0] != '\0' && !(copy = bpl__strdup(note)))
        return bpl__fail(BPL_ERR_NOMEM, "bpl_rule_set_property: out of memory");
    bpl__free(rule->note[property]);
    rule->note[property] = copy;
    rule->tick[property] = tick;
    return BPL_OK;
}

/* ---- hooks -------------------------------------------------------------------- */

int bpl__hook_result(const bpl_rule *rule, const char *hook, int rc)
{
    if (rc == BPL_OK)
        return BPL_OK;
    char prefix[BPL__RULE_NAME_MAX + 32];
    snprintf(prefix, sizeof prefix, "rule '%s' %s", rule->name, hook);
    /* The whole reserved range passes, not only the statuses this library
     * knows: a rule built against a newer header may return a newer one. */
    int status = rc < 0 && rc >= BPL_STATUS_MIN;
    if (!status)
        return bpl__fail(BPL_ERR_CALLBACK, "%s: hook returned %d", prefix, rc);
    const char *msg = bpl_last_error_message();
    if (msg[0] == '\0')
        bpl__fail(rc, "%s", bpl_strerror(rc));
    bpl__error_prefix(prefix);
    return rc;
}
