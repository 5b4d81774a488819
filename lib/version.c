/*
 * version.c - runtime version and enum names.
 */
#include "bpl_internal.h"

#include <string.h>

BPL_API unsigned int bpl_version_number(void)
{
    return BPL_VERSION_NUMBER;
}

BPL_API const char *bpl_version_string(void)
{
    return BPL_VERSION_STRING;
}

/* Index-to-name tables: an enum value is its position. */
static const char *const activation_names[] = {"linear", "relu", "tanh", "sigmoid",
                                               "softmax"};
static const char *const init_names[] = {"glorot_uniform", "glorot_normal", "he_uniform",
                                         "he_normal",      "orthogonal",    "zero",
                                         "uniform",        "normal",        "constant"};
static const char *const loss_names[] = {"", "cross_entropy", "mse"};
static const char *const optimizer_names[] = {"sgd", "momentum", "rmsprop", "adam"};
static const char *const property_names[] = {"Exact Gradients",
                                             "No Weight Transport",
                                             "No Separate Pathways",
                                             "Dendritic Integration",
                                             "Separate Weights Learned",
                                             "Linear Stabilization",
                                             "Explicit Error Representation"};
static const char *const tick_names[] = {"no", "yes", "partial", "n/a", "unknown"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, int value)
{
    if (value < 0 || (size_t)value >= n || names[value][0] == '\0')
        return "unknown";
    return names[value];
}

static int value_of(const char *const *names, size_t n, const char *what,
                    const char *caller, const char *name, int *out)
{
    if (!name || !out)
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: invalid argument: NULL", caller);
    for (size_t i = 0; i < n; i++) {
        if (names[i][0] != '\0' && strcmp(names[i], name) == 0) {
            *out = (int)i;
            return BPL_OK;
        }
    }
    return bpl__fail(BPL_ERR_NOT_FOUND, "%s: unknown %s '%s'", caller, what, name);
}

BPL_API const char *bpl_activation_name(int activation)
{
    return name_of(activation_names, COUNT(activation_names), activation);
}

BPL_API const char *bpl_init_name(int init)
{
    return name_of(init_names, COUNT(init_names), init);
}

BPL_API const char *bpl_loss_name(int loss)
{
    return name_of(loss_names, COUNT(loss_names), loss);
}

BPL_API const char *bpl_optimizer_name(int optimizer)
{
    return name_of(optimizer_names, COUNT(optimizer_names), optimizer);
}

BPL_API const char *bpl_property_name(int property)
{
    return name_of(property_names, COUNT(property_names), property);
}

BPL_API const char *bpl_tick_name(int tick)
{
    return name_of(tick_names, COUNT(tick_names), tick);
}

BPL_API int bpl_activation_from_name(const char *name, int *activation_out)
{
    return value_of(activation_names, COUNT(activation_names), "activation",
                    "bpl_activation_from_name", name, activation_out);
}

BPL_API int bpl_init_from_name(const char *name, int *init_out)
{
    return value_of(init_names, COUNT(init_names), "initializer", "bpl_init_from_name",
                    name, init_out);
}

BPL_API int bpl_loss_from_name(const char *name, int *loss_out)
{
    return value_of(loss_names, COUNT(loss_names), "loss", "bpl_loss_from_name", name,
                    loss_out);
}

BPL_API int bpl_optimizer_from_name(const char *name, int *optimizer_out)
{
    return value_of(optimizer_names, COUNT(optimizer_names), "optimizer",
                    "bpl_optimizer_from_name", name, optimizer_out);
}
