/*
 * arch.c - the net's layers: --arch SPEC and --hidden SIZES parsed into one
 * list, the net built from it, a loaded net compared with it, and the net
 * described back for the config line.
 *
 *   --arch conv:C:K[:S[:P]],maxpool:K[:S],avgpool:K[:S],dense:N,...
 *
 * C output channels, a K x K kernel, stride S (1), zero padding P (0); a
 * pooling layer's stride defaults to its window.  Spatial layers read the
 * images as 1 x 28 x 28; a dense layer flattens what is below it.
 */
#include "train.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [ARCH_DENSE] = "dense", [ARCH_CONV] = "conv", [ARCH_MAXPOOL] = "maxpool",
    [ARCH_AVGPOOL] = "avgpool"};

/* The library's name of each kind, as bpl_layer_kind gives it. */
static const char *const library_kinds[] = {
    [ARCH_DENSE] = "dense", [ARCH_CONV] = "conv2d", [ARCH_MAXPOOL] = "maxpool2d",
    [ARCH_AVGPOOL] = "avgpool2d"};

/* Up to `max` colon-separated positive integers after the kind's name;
 * the number read, or 0 if one is not a positive integer. */
static size_t parse_numbers(const char *text, size_t *values, size_t max)
{
    size_t n = 0;
    for (const char *p = text; *p == ':'; n++) {
        p++;
        if (n == max || !isdigit((unsigned char)*p))
            return 0;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno == ERANGE || v > SIZE_MAX || (*end != ':' && *end))
            return 0;
        values[n] = (size_t)v;
        p = end;
    }
    return n;
}

static int parse_layer(const char *spec, struct arch_layer *layer)
{
    size_t values[4] = {0}, n = 0;
    int kind = -1;
    for (int k = 0; k < ARCH_KINDS; k++) {
        size_t len = strlen(kind_names[k]);
        if (strncmp(spec, kind_names[k], len) == 0 && spec[len] == ':') {
            kind = k;
            n = parse_numbers(spec + len, values, k == ARCH_CONV ? 4 : k == ARCH_DENSE ? 1 : 2);
        }
    }
    /* Padding alone may be 0. */
    size_t positive = kind == ARCH_CONV && n == 4 ? 3 : n;
    for (size_t i = 0; i < positive; i++)
        if (values[i] == 0)
            n = 0;
    if (kind < 0 || n == 0 || (kind == ARCH_CONV && n < 2))
        return 0;
    layer->kind = kind;
    layer->size = kind == ARCH_DENSE || kind == ARCH_CONV ? values[0] : 0;
    layer->kernel = kind == ARCH_DENSE ? 0 : kind == ARCH_CONV ? values[1] : values[0];
    if (kind == ARCH_CONV) {
        layer->stride = n > 2 ? values[2] : 1;
        layer->pad = n > 3 ? values[3] : 0;
    } else {
        layer->stride = kind == ARCH_DENSE ? 0 : n > 1 ? values[1] : values[0];
        layer->pad = 0;
    }
    return 1;
}

int parse_arch(const char *text, struct options *opt)
{
    static const char usage[] =
        "--arch expects comma-separated layers conv:C:K[:S[:P]], maxpool:K[:S], "
        "avgpool:K[:S] or dense:N with positive numbers (padding may be 0), such as "
        "conv:6:5:1:2,maxpool:2,dense:84; got '%s'";
    char spec[64];
    opt->n_arch = 0;
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof spec)
            return usage_error(usage, text);
        memcpy(spec, p, len);
        spec[len] = '\0';
        if (opt->n_arch == MAX_HIDDEN_LAYERS)
            return usage_error("--arch: at most %d hidden layers", MAX_HIDDEN_LAYERS);
        if (!parse_layer(spec, &opt->arch[opt->n_arch]))
            return usage_error(usage, text);
        opt->n_arch++;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int is_spatial(const struct options *opt)
{
    for (size_t i = 0; i < opt->n_arch; i++)
        if (opt->arch[i].kind != ARCH_DENSE)
            return 1;
    return 0;
}

static int add_layer(const struct arch_layer *a, int activation, int init, bpl_net *net)
{
    switch (a->kind) {
    case ARCH_CONV:
        return bpl_net_add_conv2d(net, a->size, a->kernel, a->kernel, a->stride, a->pad,
                                  activation, init);
    case ARCH_MAXPOOL: return bpl_net_add_maxpool2d(net, a->kernel, a->stride);
    case ARCH_AVGPOOL: return bpl_net_add_avgpool2d(net, a->kernel, a->stride);
    default: return bpl_net_add_dense(net, a->size, activation, init);
    }
}

int add_hidden_layers(const struct options *opt, bpl_net *net)
{
    static const size_t image[] = {1, 28, 28};
    int rc = is_spatial(opt) ? bpl_net_set_input_shape(net, image, 3) : BPL_OK;
    for (size_t i = 0; rc == BPL_OK && i < opt->n_arch; i++)
        rc = add_layer(&opt->arch[i], opt->activation, opt->init, net);
    return rc;
}

/* The layer as the spec would have made it: kind, width and window. */
static int same_layer(const struct arch_layer *a, const bpl_layer *layer)
{
    size_t dims[BPL_MAX_DIMS], ndim, kh, kw, stride, pad;
    if (strcmp(bpl_layer_kind(layer), library_kinds[a->kind]) != 0 ||
        bpl_layer_get_shape(layer, dims, BPL_MAX_DIMS, &ndim) != BPL_OK ||
        bpl_layer_get_window(layer, &kh, &kw, &stride, &pad) != BPL_OK)
        return 0;
    if (a->kind == ARCH_DENSE)
        return dims[0] == a->size;
    return kh == a->kernel && kw == a->kernel && stride == a->stride && pad == a->pad &&
           (a->kind != ARCH_CONV || dims[0] == a->size);
}

int same_arch(const struct options *opt, bpl_net *net)
{
    if (bpl_net_layer_count(net) != opt->n_arch + 1)
        return 0;
    for (size_t i = 0; i < opt->n_arch; i++)
        if (!same_layer(&opt->arch[i], bpl_net_layer(net, i)))
            return 0;
    return 1;
}

static void append(char *buf, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list args;
    va_start(args, fmt);
    if (used < size)
        vsnprintf(buf + used, size - used, fmt, args);
    va_end(args);
}

/* A layer in the spec's words ("conv:6:5:1:2", "maxpool:2:2", "dense:84";
 * a kernel that is not square as "5x3"). */
static void describe_layer(bpl_layer *layer, char *buf, size_t size)
{
    const char *kind = bpl_layer_kind(layer);
    size_t dims[BPL_MAX_DIMS], ndim = 0, kh = 0, kw = 0, stride = 0, pad = 0;
    bpl_layer_get_shape(layer, dims, BPL_MAX_DIMS, &ndim);
    bpl_layer_get_window(layer, &kh, &kw, &stride, &pad);
    int conv = strcmp(kind, "conv2d") == 0;
    if (strcmp(kind, "dense") == 0)
        append(buf, size, "-dense:%zu", dims[0]);
    else if (conv)
        append(buf, size, "-conv:%zu:", dims[0]);
    else
        append(buf, size, "-%s:", strcmp(kind, "maxpool2d") == 0 ? "maxpool" : "avgpool");
    if (strcmp(kind, "dense") == 0)
        return;
    if (kh == kw)
        append(buf, size, "%zu", kh);
    else
        append(buf, size, "%zux%zu", kh, kw);
    append(buf, size, ":%zu", stride);
    if (conv)
        append(buf, size, ":%zu", pad);
}

/* "784-256-256-10" for a dense net over flat input, as always; otherwise
 * the input's shape and each layer in --arch's words, e.g.
 * "1x28x28-conv:6:5:1:2-maxpool:2:2-dense:84-dense:10". */
void describe_architecture(bpl_net *net, char *buf, size_t size)
{
    size_t dims[BPL_MAX_DIMS], ndim = 0;
    int dense = 1;
    for (size_t i = 0; i < bpl_net_layer_count(net); i++)
        dense = dense && strcmp(bpl_layer_kind(bpl_net_layer(net, i)), "dense") == 0;
    bpl_net_get_input_shape(net, dims, BPL_MAX_DIMS, &ndim);
    buf[0] = '\0';
    for (size_t d = 0; d < ndim; d++)
        append(buf, size, d ? "x%zu" : "%zu", dims[d]);
    for (size_t i = 0; i < bpl_net_layer_count(net); i++) {
        bpl_layer *layer = bpl_net_layer(net, i);
        if (dense && ndim == 1)
            append(buf, size, "-%zu", bpl_layer_units(layer));
        else
            describe_layer(layer, buf, size);
    }
}
