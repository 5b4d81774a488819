/*
 * peak.c - the machine's single-core FMA peak, measured: independent
 * chains of fused multiply-adds, as many as hide the instruction's latency,
 * with the widest vectors the CPU has.  What a GEMM can at best reach.
 */
#include "peak.h"

#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define CHAINS 12
#define ROUNDS 2000000

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

__attribute__((target("avx512f"))) static double run_avx512(void)
{
    __m512 acc[CHAINS], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c);
    double start = seconds_now();
    for (long r = 0; r < ROUNDS; r++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    double seconds = seconds_now() - start;
    float sink = 0.0f;
    for (int c = 0; c < CHAINS; c++)
        sink += _mm512_reduce_add_ps(acc[c]);
    volatile float keep = sink; /* the chains are live */
    (void)keep;
    return 2.0 * 16 * CHAINS * (double)ROUNDS / seconds * 1e-9;
}

__attribute__((target("avx2,fma"))) static double run_avx2(void)
{
    __m256 acc[CHAINS], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm256_set1_ps((float)c);
    double start = seconds_now();
    for (long r = 0; r < ROUNDS; r++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm256_fmadd_ps(acc[c], m, a);
    double seconds = seconds_now() - start;
    float lanes[8], sink = 0.0f;
    for (int c = 0; c < CHAINS; c++) {
        _mm256_storeu_ps(lanes, acc[c]);
        for (int i = 0; i < 8; i++)
            sink += lanes[i];
    }
    volatile float keep = sink;
    (void)keep;
    return 2.0 * 8 * CHAINS * (double)ROUNDS / seconds * 1e-9;
}

double fma_peak(const char **isa)
{
    double best = 0.0;
    __builtin_cpu_init();
    int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        *isa = "none (no AVX2/FMA)";
        return 0.0;
    }
    *isa = wide ? "AVX-512 FMA" : "AVX2 FMA";
    for (int i = 0; i < 5; i++) { /* the best of five: the machine may be shared */
        double g = wide ? run_avx512() : run_avx2();
        best = g > best ? g : best;
    }
    return best;
}
#else
double fma_peak(const char **isa)
{
    *isa = "not measured on this architecture";
    return 0.0;
}
#endif
