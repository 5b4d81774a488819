/*
 * peak.h - the machine's single-core FMA peak, measured (peak.c); shared
 * by bench-conv and bench-train, which state their arithmetic against it.
 */
#ifndef BENCH_PEAK_H
#define BENCH_PEAK_H

/* Single-core FMA peak in GFLOP/s, and the instructions it used (0 and why
 * not where it cannot be measured). */
double fma_peak(const char **isa);

#endif
