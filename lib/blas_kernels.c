/*
 * blas_kernels.c - which vector extension the BLAS kernels use, which one
 * the CPU has, and when the difference is worth a warning.
 *
 * OpenBLAS and BLIS pick their kernels from a table of CPU models.  Debian's
 * OpenBLAS 0.3.21 does not know some recent CPUs and runs its SSE3
 * "Prescott" kernels on them: a backprop epoch then takes about three times
 * as long (docs/performance.md).  Debian's BLIS 0.9.0 falls back to its
 * portable "generic" kernels on such a CPU: almost four times as long as its
 * AVX-512 ones.  Those cases are warned about.  AVX2 kernels on an AVX-512
 * CPU are not: they were measured 1.6x slower on one host and as fast on
 * another, so bpl_blas_info shows both names and leaves the judgement to a
 * benchmark on the user's machine.
 *
 * The classification is a pure function of its inputs (bpl__blas_advice),
 * so that it can be tested for every case on any machine.
 */
#include "bpl_internal.h"

#include <stdio.h>
#include <string.h>

const char *bpl__isa_name(int isa)
{
    switch (isa) {
    case BPL__ISA_GENERIC: return "portable C";
    case BPL__ISA_SSE: return "SSE";
    case BPL__ISA_AVX: return "AVX";
    case BPL__ISA_AVX2: return "AVX2";
    case BPL__ISA_AVX512: return "AVX-512";
    default: return "unknown";
    }
}

int bpl__cpu_isa(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f"))
        return BPL__ISA_AVX512;
    if (__builtin_cpu_supports("avx2"))
        return BPL__ISA_AVX2;
    if (__builtin_cpu_supports("avx"))
        return BPL__ISA_AVX;
    if (__builtin_cpu_supports("sse2"))
        return BPL__ISA_SSE;
#endif
    return BPL__ISA_UNKNOWN;
}

/* Kernel sets by name: OpenBLAS's core names (openblas_get_corename) and
 * BLIS's configuration names (bli_arch_string), x86 only. */
static const struct {
    const char *name;
    int isa;
} kernel_sets[] = {
    {"Katmai", BPL__ISA_SSE},        {"Coppermine", BPL__ISA_SSE},
    {"Northwood", BPL__ISA_SSE},     {"Prescott", BPL__ISA_SSE},
    {"Core2", BPL__ISA_SSE},         {"Penryn", BPL__ISA_SSE},
    {"Dunnington", BPL__ISA_SSE},    {"Nehalem", BPL__ISA_SSE},
    {"Atom", BPL__ISA_SSE},          {"Opteron", BPL__ISA_SSE},
    {"Barcelona", BPL__ISA_SSE},     {"Nano", BPL__ISA_SSE},
    {"penryn", BPL__ISA_SSE},        {"Sandybridge", BPL__ISA_AVX},
    {"Bulldozer", BPL__ISA_AVX},     {"Piledriver", BPL__ISA_AVX},
    {"Steamroller", BPL__ISA_AVX},   {"Excavator", BPL__ISA_AVX},
    {"sandybridge", BPL__ISA_AVX},   {"bulldozer", BPL__ISA_AVX},
    {"piledriver", BPL__ISA_AVX},    {"steamroller", BPL__ISA_AVX},
    {"excavator", BPL__ISA_AVX},     {"Haswell", BPL__ISA_AVX2},
    {"Zen", BPL__ISA_AVX2},          {"haswell", BPL__ISA_AVX2},
    {"zen", BPL__ISA_AVX2},          {"zen2", BPL__ISA_AVX2},
    {"zen3", BPL__ISA_AVX2},         {"SkylakeX", BPL__ISA_AVX512},
    {"Cooperlake", BPL__ISA_AVX512}, {"SapphireRapids", BPL__ISA_AVX512},
    {"skx", BPL__ISA_AVX512},        {"knl", BPL__ISA_AVX512},
    {"zen4", BPL__ISA_AVX512},       {"generic", BPL__ISA_GENERIC},
};

int bpl__kernel_isa(const char *kernels)
{
    for (size_t i = 0; kernels && i < sizeof kernel_sets / sizeof kernel_sets[0]; i++)
        if (strcmp(kernel_sets[i].name, kernels) == 0)
            return kernel_sets[i].isa;
    return BPL__ISA_UNKNOWN;
}

/* How to make each library choose better kernels. */
static const char openblas_fix[] =
    "set OPENBLAS_CORETYPE=Haswell (or SkylakeX with AVX-512) before starting the program, "
    "or build with -Dblas=blis";
static const char blis_fix[] =
    "set BLIS_ARCH_TYPE=0 (skx, with AVX-512) or 3 (haswell, with AVX2) before starting "
    "the program (BLIS 0.9's numbering), or build with -Dblas=openblas";

const char *bpl__blas_advice(const char *backend, const char *kernels, int cpu_isa,
                             char *buf, size_t size)
{
    if (!backend || !kernels)
        return NULL;
    int openblas = strcmp(backend, "openblas") == 0, blis = strcmp(backend, "blis") == 0;
    int kernel_isa = bpl__kernel_isa(kernels);
    /* Known to matter: kernels narrower than AVX where AVX2 ones could run
     * (3x for OpenBLAS's SSE3 set, 4x for BLIS's portable one). */
    int narrow = kernel_isa == BPL__ISA_SSE || kernel_isa == BPL__ISA_GENERIC;
    if (!(openblas || blis) || !narrow || cpu_isa < BPL__ISA_AVX2)
        return NULL;
    snprintf(buf, size, "%s runs its '%s' kernels (%s) on a CPU with %s, several times "
                        "slower; %s",
             openblas ? "OpenBLAS" : "BLIS", kernels, bpl__isa_name(kernel_isa),
             bpl__isa_name(cpu_isa), openblas ? openblas_fix : blis_fix);
    return buf;
}
