/*
 * alloc.c - the library's only entry to the heap.
 *
 * Every allocation goes through here so that a test build can count
 * allocations (no allocation may happen inside a training step) and make the
 * k-th one fail (every failure path must be clean).
 */
#include "bpl_internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef BPL_TESTING
#include <stdatomic.h>
static _Atomic uint64_t n_allocs;
static _Atomic uint64_t fail_at; /* absolute allocation number that fails */

uint64_t bpl__alloc_count(void)
{
    return atomic_load(&n_allocs);
}

void bpl__alloc_fail_at(uint64_t k)
{
    atomic_store(&fail_at, k ? atomic_load(&n_allocs) + k : 0);
}

static int allocation_allowed(void)
{
    uint64_t n = atomic_fetch_add(&n_allocs, 1) + 1;
    return n != atomic_load(&fail_at);
}
#else
static int allocation_allowed(void)
{
    return 1;
}
#endif

void *bpl__malloc(size_t size)
{
    if (!allocation_allowed())
        return NULL;
    return malloc(size ? size : 1);
}

void *bpl__calloc(size_t n, size_t size)
{
    if (!allocation_allowed())
        return NULL;
    if (n == 0 || size == 0)
        n = size = 1;
    return calloc(n, size);
}

void *bpl__realloc(void *ptr, size_t size)
{
    if (!allocation_allowed())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void bpl__free(void *ptr)
{
    free(ptr);
}

char *bpl__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = bpl__malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

int bpl__mul_size(size_t n, size_t size, size_t *out)
{
    if (size != 0 && n > SIZE_MAX / size)
        return 0;
    *out = n * size;
    return 1;
}
