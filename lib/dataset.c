/*
 * dataset.c - datasets in memory: uint8 pixels (scaled per batch, so MNIST
 * stays at 47 MB instead of 188 MB) or float features, with uint8 class
 * labels or float target rows.
 */
#include "bpl_internal.h"

#include <math.h>
#include <string.h>

/* An empty dataset with room for its arrays; NULL arrays are not wanted. */
static int dataset_new(bpl_dataset **out, size_t n, size_t n_features, size_t n_targets,
                       int u8_pixels, int with_labels, const char *caller)
{
    size_t n_x, n_y, bytes_x, bytes_y;
    if (!bpl__mul_size(n, n_features, &n_x) || !bpl__mul_size(n, n_targets, &n_y) ||
        !bpl__mul_size(n_x, u8_pixels ? 1 : sizeof(float), &bytes_x) ||
        !bpl__mul_size(n_y, sizeof(float), &bytes_y))
        return bpl__fail(BPL_ERR_OVERFLOW, "%s: %zu examples of %zu features is too large",
                         caller, n, n_features);
    bpl_dataset *ds = bpl__calloc(1, sizeof *ds);
    if (!ds)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    ds->n = n;
    ds->n_features = n_features;
    ds->n_targets = n_targets;
    ds->scale = 1.0f / 255.0f;
    if (u8_pixels)
        ds->pixels = bpl__malloc(bytes_x);
    else
        ds->features = bpl__malloc(bytes_x);
    if (with_labels)
        ds->labels = bpl__malloc(n ? n : 1);
    else
        ds->targets = bpl__malloc(bytes_y);
    if ((u8_pixels ? !ds->pixels : !ds->features) ||
        (with_labels ? !ds->labels : !ds->targets)) {
        bpl_dataset_destroy(ds);
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory for %zu examples", caller, n);
    }
    *out = ds;
    return BPL_OK;
}

BPL_API void bpl_dataset_destroy(bpl_dataset *ds)
{
    if (!ds)
        return;
    bpl__free(ds->pixels);
    bpl__free(ds->features);
    bpl__free(ds->labels);
    bpl__free(ds->targets);
    bpl__free(ds);
}

static int check_labels(const uint8_t *labels, size_t n, size_t n_classes,
                        const char *caller, const char *source)
{
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= n_classes)
            return bpl__fail(source ? BPL_ERR_FORMAT : BPL_ERR_RANGE,
                             "%s: %s%slabel %u of example %zu is outside 0..%zu", caller,
                             source ? source : "", source ? ": " : "", labels[i], i,
                             n_classes - 1);
    return BPL_OK;
}

BPL_API int bpl_dataset_from_u8(bpl_dataset **out, const uint8_t *pixels,
                                const uint8_t *labels, size_t n, size_t n_features,
                                size_t n_classes)
{
    static const char caller[] = "bpl_dataset_from_u8";
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(pixels != NULL);
    BPL_CHECK_ARG(labels != NULL);
    BPL_CHECK_ARG(n > 0);
    BPL_CHECK_ARG(n_features > 0 && n_features <= BPL__MAX_UNITS);
    BPL_CHECK_ARG(n_classes > 0 && n_classes <= 256);
    /* The sizes first: n x n_features that wraps says nothing true about
     * the caller's arrays, labels included. */
    bpl_dataset *ds = NULL;
    int rc = dataset_new(&ds, n, n_features, n_classes, 1, 1, caller);
    if (rc != BPL_OK)
        return rc;
    rc = check_labels(labels, n, n_classes, caller, NULL);
    if (rc != BPL_OK) {
        bpl_dataset_destroy(ds);
        return rc;
    }
    memcpy(ds->pixels, pixels, n * n_features);
    memcpy(ds->labels, labels, n);
    *out = ds;
    return BPL_OK;
}

BPL_API int bpl_dataset_from_f32(bpl_dataset **out, const float *x, const float *y,
                                 size_t n, size_t n_features, size_t n_targets)
{
    static const char caller[] = "bpl_dataset_from_f32";
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(x != NULL);
    BPL_CHECK_ARG(y != NULL);
    BPL_CHECK_ARG(n > 0);
    BPL_CHECK_ARG(n_features > 0 && n_features <= BPL__MAX_UNITS);
    BPL_CHECK_ARG(n_targets > 0 && n_targets <= BPL__MAX_UNITS);
    bpl_dataset *ds;
    int rc = dataset_new(&ds, n, n_features, n_targets, 0, 0, caller);
    if (rc != BPL_OK)
        return rc;
    if (!bpl__all_finite(x, n * n_features) || !bpl__all_finite(y, n * n_targets)) {
        bpl_dataset_destroy(ds);
        return bpl__fail(BPL_ERR_NUMERIC, "%s: x or y contains NaN or Inf", caller);
    }
    memcpy(ds->features, x, n * n_features * sizeof *x);
    memcpy(ds->targets, y, n * n_targets * sizeof *y);
    *out = ds;
    return BPL_OK;
}

/* [start, start + count) within the dataset, without computing a sum that
 * may wrap. */
static int check_range(const bpl_dataset *ds, size_t start, size_t count,
                       const char *caller)
{
    if (start <= ds->n && count <= ds->n - start)
        return BPL_OK;
    return bpl__fail(BPL_ERR_RANGE,
                     "%s: start %zu, count %zu is outside the %zu examples", caller, start,
                     count, ds->n);
}

BPL_API int bpl_dataset_slice(bpl_dataset **out, const bpl_dataset *ds, size_t start,
                              size_t count)
{
    static const char caller[] = "bpl_dataset_slice";
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(ds != NULL);
    BPL_CHECK_ARG(count > 0);
    int rc = check_range(ds, start, count, caller);
    if (rc != BPL_OK)
        return rc;
    bpl_dataset *slice;
    rc = dataset_new(&slice, count, ds->n_features, ds->n_targets, ds->pixels != NULL,
                         ds->labels != NULL, caller);
    if (rc != BPL_OK)
        return rc;
    size_t f = ds->n_features, t = ds->n_targets;
    if (ds->pixels)
        memcpy(slice->pixels, ds->pixels + start * f, count * f);
    else
        memcpy(slice->features, ds->features + start * f, count * f * sizeof(float));
    if (ds->labels)
        memcpy(slice->labels, ds->labels + start, count);
    else
        memcpy(slice->targets, ds->targets + start * t, count * t * sizeof(float));
    slice->scale = ds->scale;
    slice->offset = ds->offset;
    *out = slice;
    return BPL_OK;
}

BPL_API size_t bpl_dataset_example_count(const bpl_dataset *ds)
{
    return ds ? ds->n : 0;
}

BPL_API size_t bpl_dataset_features(const bpl_dataset *ds)
{
    return ds ? ds->n_features : 0;
}

BPL_API size_t bpl_dataset_targets(const bpl_dataset *ds)
{
    return ds ? ds->n_targets : 0;
}

BPL_API int bpl_dataset_set_scaling(bpl_dataset *ds, double scale, double offset)
{
    BPL_CHECK_ARG(ds != NULL);
    if (!ds->pixels)
        return bpl__fail(BPL_ERR_UNSUPPORTED,
                         "bpl_dataset_set_scaling: only uint8 datasets are scaled");
    float largest = (float)(fabs(scale) * 255.0 + fabs(offset));
    if (!isfinite(scale) || !isfinite(offset) || !isfinite(largest))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_dataset_set_scaling: scale %g and offset %g must keep "
                         "every pixel finite",
                         scale, offset);
    ds->scale = (float)scale;
    ds->offset = (float)offset;
    return BPL_OK;
}

static size_t label_of(const bpl_dataset *ds, size_t i)
{
    if (ds->labels)
        return ds->labels[i];
    const float *row = ds->targets + i * ds->n_targets;
    size_t best = 0;
    for (size_t j = 1; j < ds->n_targets; j++)
        if (row[j] > row[best])
            best = j;
    return best;
}

BPL_API int bpl_dataset_label(const bpl_dataset *ds, size_t index, int *label_out)
{
    BPL_CHECK_ARG(ds != NULL);
    BPL_CHECK_ARG(label_out != NULL);
    if (index >= ds->n)
        return bpl__fail(BPL_ERR_RANGE, "bpl_dataset_label: index %zu of %zu examples",
                         index, ds->n);
    *label_out = (int)label_of(ds, index);
    return BPL_OK;
}

/* One example into its rows of x and y (either may be NULL). */
static void gather_one(const bpl_dataset *ds, size_t i, float *x, float *y)
{
    size_t f = ds->n_features, t = ds->n_targets;
    if (x) {
        if (ds->pixels) {
            const uint8_t *p = ds->pixels + i * f;
            float scale = ds->scale, offset = ds->offset;
            for (size_t j = 0; j < f; j++)
                x[j] = (float)p[j] * scale + offset;
        } else {
            memcpy(x, ds->features + i * f, f * sizeof *x);
        }
    }
    if (y) {
        if (ds->labels) {
            memset(y, 0, t * sizeof *y);
            y[ds->labels[i]] = 1.0f;
        } else {
            memcpy(y, ds->targets + i * t, t * sizeof *y);
        }
    }
}

void bpl__dataset_gather(const bpl_dataset *ds, const size_t *idx, size_t count, float *x,
                         float *y)
{
    for (size_t r = 0; r < count; r++)
        gather_one(ds, idx[r], x + r * ds->n_features, y + r * ds->n_targets);
}

void bpl__dataset_gather_range(const bpl_dataset *ds, size_t start, size_t count, float *x,
                               float *y)
{
    for (size_t r = 0; r < count; r++)
        gather_one(ds, start + r, x ? x + r * ds->n_features : NULL,
                   y ? y + r * ds->n_targets : NULL);
}

BPL_API int bpl_dataset_get(const bpl_dataset *ds, size_t start, size_t count,
                            float *x_out, size_t x_len, float *y_out, size_t y_len)
{
    static const char caller[] = "bpl_dataset_get";
    BPL_CHECK_ARG(ds != NULL);
    int rc = check_range(ds, start, count, caller);
    if (rc != BPL_OK)
        return rc;
    if (x_out && x_len != count * ds->n_features)
        return bpl__fail(BPL_ERR_SHAPE, "%s: x_len %zu != count %zu x features %zu",
                         caller, x_len, count, ds->n_features);
    if (y_out && y_len != count * ds->n_targets)
        return bpl__fail(BPL_ERR_SHAPE, "%s: y_len %zu != count %zu x targets %zu", caller,
                         y_len, count, ds->n_targets);
    bpl__dataset_gather_range(ds, start, count, x_out, y_out);
    return BPL_OK;
}
