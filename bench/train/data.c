/*
 * data.c - random pixels and labels of MNIST's shape, for machines without
 * the files (or with --synthetic).
 */
#include "bench_train.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Random pixels and labels of MNIST's shape, for machines without the files. */
bpl_dataset *synthetic_mnist(void)
{
    enum { N = 60000, F = 784 };
    uint8_t *pixels = malloc((size_t)N * F), *labels = malloc(N);
    if (!pixels || !labels) {
        fprintf(stderr, "bench-train: out of memory\n");
        exit(1);
    }
    uint64_t s = 1;
    for (size_t i = 0; i < (size_t)N * F; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        pixels[i] = (uint8_t)(s >> 56);
    }
    for (size_t i = 0; i < N; i++)
        labels[i] = (uint8_t)(i % 10);
    bpl_dataset *ds;
    int rc = bpl_dataset_from_u8(&ds, pixels, labels, N, F, 10);
    free(pixels);
    free(labels);
    if (rc != BPL_OK) {
        fprintf(stderr, "bench-train: synthetic data: %s\n", bpl_last_error_message());
        exit(1);
    }
    return ds;
}
