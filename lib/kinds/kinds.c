/*
 * kinds/kinds.c - the layer kinds this library knows, by the names a model
 * file gives them.  A kind is listed here once it can be rebuilt from a
 * layer record: its name, width and params (lib/model_io.c).
 */
#include "bpl_internal.h"

#include <stdio.h>
#include <string.h>

static const bpl__kind *const known[] = {&bpl__dense_kind, &bpl__conv2d_kind, &bpl__maxpool2d_kind,
                                         &bpl__avgpool2d_kind};
#define N_KNOWN (sizeof known / sizeof known[0])

#ifdef BPL_TESTING
static const bpl__kind *test_kind;

void bpl__kind_register_test(const bpl__kind *kind)
{
    test_kind = kind;
}
#endif

const bpl__kind *bpl__kind_find(const char *name)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strcmp(known[i]->name, name) == 0)
            return known[i];
#ifdef BPL_TESTING
    if (test_kind && strcmp(test_kind->name, name) == 0)
        return test_kind;
#endif
    return NULL;
}

void bpl__kind_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_KNOWN && used < size; i++) {
        int n = snprintf(buf + used, size - used, i ? ", %s" : "%s", known[i]->name);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}
