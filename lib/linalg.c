/*
 * linalg.c - matrix products.  The only file that talks to BLAS.
 *
 * With a BLAS, bpl__gemm is cblas_sgemm.  Without one (-Dblas=none) it runs
 * portable loops ordered so that the innermost loop walks memory
 * contiguously and the compiler can vectorise it.
 */
#include "bpl_internal.h"
#include "config.h"
#include "kinds/conv2d_paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if BPL_HAVE_CBLAS
/* Our own prototypes: the cblas.h header lives in a different place for
 * every vendor.  The enum values are fixed by the CBLAS standard. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c,
                 int ldc);
#endif

#if BPL_BLAS_OPENBLAS
char *openblas_get_config(void);
char *openblas_get_corename(void);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
#elif BPL_BLAS_BLIS
/* BLIS built with its default 64-bit dim_t on LP64 platforms. */
char *bli_info_get_version_str(void);
void bli_init(void);
int bli_arch_query_id(void);
char *bli_arch_string(int id);
void bli_thread_set_num_threads(int64_t n);
int64_t bli_thread_get_num_threads(void);
#endif

double bpl__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if !BPL_HAVE_CBLAS
static float element(const float *x, size_t ld, int trans, size_t r, size_t c)
{
    return trans ? x[c * ld + r] : x[r * ld + c];
}

/* C += alpha * op(A) op(B), C already scaled by beta. */
static void portable_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                          float alpha, const float *a, size_t lda, const float *b,
                          size_t ldb, float *c, size_t ldc)
{
    if (!trans_b) {
        /* Row i of C accumulates rows of B: contiguous in j. */
        for (size_t i = 0; i < m; i++) {
            float *ci = c + i * ldc;
            for (size_t p = 0; p < k; p++) {
                float s = alpha * element(a, lda, trans_a, i, p);
                const float *bp = b + p * ldb;
                for (size_t j = 0; j < n; j++)
                    ci[j] += s * bp[j];
            }
        }
    } else if (!trans_a) {
        /* C[i][j] = dot(A row i, B row j); eight partial sums vectorise. */
        for (size_t i = 0; i < m; i++) {
            const float *ai = a + i * lda;
            for (size_t j = 0; j < n; j++) {
                const float *bj = b + j * ldb;
                float acc[8] = {0};
                size_t p = 0;
                for (; p + 8 <= k; p += 8)
                    for (int u = 0; u < 8; u++)
                        acc[u] += ai[p + u] * bj[p + u];
                float sum = 0;
                for (int u = 0; u < 8; u++)
                    sum += acc[u];
                for (; p < k; p++)
                    sum += ai[p] * bj[p];
                c[i * ldc + j] += alpha * sum;
            }
        }
    } else {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                float sum = 0;
                for (size_t p = 0; p < k; p++)
                    sum += a[p * lda + i] * b[j * ldb + p];
                c[i * ldc + j] += alpha * sum;
            }
    }
}
#endif

void bpl__gemm(bpl__profile *prof, int trans_a, int trans_b, size_t m, size_t n,
               size_t k, float alpha, const float *a, size_t lda, const float *b,
               size_t ldb, float beta, float *c, size_t ldc)
{
    double start = prof ? bpl__now() : 0.0;
#if BPL_HAVE_CBLAS
    cblas_sgemm(CBLAS_ROW_MAJOR, trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS,
                trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS, (int)m, (int)n, (int)k, alpha, a,
                (int)lda, b, (int)ldb, beta, c, (int)ldc);
#else
    /* CBLAS semantics: beta == 0 means C is not read (it may hold NaN). */
    for (size_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f)
            memset(ci, 0, n * sizeof *ci);
        else if (beta != 1.0f)
            for (size_t j = 0; j < n; j++)
                ci[j] *= beta;
    }
    portable_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, c, ldc);
#endif
    if (prof) {
        prof->gemm_seconds += bpl__now() - start;
        prof->gemm_flops += 2.0 * (double)m * (double)n * (double)k;
    }
}

/* A matrix of `rows` rows, each `cols` wide, stored with stride `ld`. */
static int check_matrix(const void *p, size_t rows, size_t cols, size_t ld, char name)
{
    if (!p && rows && cols)
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_gemm: matrix %c is NULL", name);
    if (ld < cols || ld == 0)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_gemm: leading dimension of %c is %zu, its rows hold %zu", name,
                         ld, cols);
    if (rows > (size_t)INT_MAX || ld > (size_t)INT_MAX)
        return bpl__fail(BPL_ERR_OVERFLOW, "bpl_gemm: matrix %c is beyond BLAS's int range",
                         name);
    /* Its last element, (rows - 1) * ld + cols - 1, must be addressable in
     * bytes: always true with a 64-bit size_t once both fit an int, not with
     * a 32-bit one. */
    size_t last;
    if (rows && cols &&
        (!bpl__mul_size(rows - 1, ld, &last) || last > SIZE_MAX / sizeof(float) - cols))
        return bpl__fail(BPL_ERR_OVERFLOW, "bpl_gemm: matrix %c of %zu rows of stride %zu "
                         "is too large to address", name, rows, ld);
    return BPL_OK;
}

BPL_API int bpl_gemm(bpl_net *net, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                     float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                     float beta, float *c, size_t ldc)
{
    int rc = check_matrix(a, trans_a ? k : m, trans_a ? m : k, lda, 'A');
    if (rc == BPL_OK)
        rc = check_matrix(b, trans_b ? n : k, trans_b ? k : n, ldb, 'B');
    if (rc == BPL_OK)
        rc = check_matrix(c, m, n, ldc, 'C');
    if (rc != BPL_OK)
        return rc;
    if (m == 0 || n == 0)
        return BPL_OK;
    bpl__gemm(net ? bpl__net_profile(net) : NULL, trans_a != 0, trans_b != 0, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
    return BPL_OK;
}

#if BPL_BLAS_BLIS
/* The kernel set BLIS runs.  BLIS 0.9 aborts the process when its kernel
 * table is queried before it is initialised and BLIS_ARCH_TYPE is set, so
 * initialise it first (bli_init does nothing the second time). */
static const char *blis_kernels(void)
{
    bli_init();
    return bli_arch_string(bli_arch_query_id());
}
#endif

BPL_API const char *bpl_blas_backend(void)
{
    return BPL_BLAS_NAME;
}

#if BPL_BLAS_BLIS
/* BLIS answers -1 until told: it then reads BLIS_NUM_THREADS, else
 * OMP_NUM_THREADS, else runs one thread. */
static int blis_threads(void)
{
    int64_t n = bli_thread_get_num_threads();
    const char *env = getenv("BLIS_NUM_THREADS");
    if (n <= 0 && !(env && atoi(env) > 0))
        env = getenv("OMP_NUM_THREADS");
    if (n <= 0)
        n = env && atoi(env) > 0 ? atoi(env) : 1;
    return (int)n;
}
#endif

#if BPL_BLAS_OPENBLAS || BPL_BLAS_BLIS
/* "core=Haswell (AVX2 kernels); cpu=AVX-512": the kernel set and what the
 * CPU could run, side by side, so that a mismatch shows. */
static const char *kernels_and_cpu(const char *key, const char *kernels, char *buf,
                                   size_t size)
{
    snprintf(buf, size, "%s=%s (%s kernels); cpu=%s", key, kernels ? kernels : "unknown",
             bpl__isa_name(bpl__kernel_isa(kernels)), bpl__isa_name(bpl__cpu_isa()));
    return buf;
}
#endif

BPL_API const char *bpl_blas_info(void)
{
    static _Thread_local char info[320];
#if BPL_BLAS_OPENBLAS || BPL_BLAS_BLIS
    char kernels[96];
#endif
#if BPL_BLAS_OPENBLAS
    snprintf(info, sizeof info, "%s; %s; threads=%d", openblas_get_config(),
             kernels_and_cpu("core", openblas_get_corename(), kernels, sizeof kernels),
             openblas_get_num_threads());
#elif BPL_BLAS_BLIS
    snprintf(info, sizeof info, "BLIS %s; %s; threads=%d", bli_info_get_version_str(),
             kernels_and_cpu("kernels", blis_kernels(), kernels, sizeof kernels),
             blis_threads());
#elif BPL_HAVE_CBLAS
    snprintf(info, sizeof info,
             "CBLAS from the system BLAS (no vendor query available); cpu=%s",
             bpl__isa_name(bpl__cpu_isa()));
#else
    snprintf(info, sizeof info, "builtin portable kernels, single-threaded; cpu=%s",
             bpl__isa_name(bpl__cpu_isa()));
#endif
    const char *accel = bpl__conv_accel_name();
    size_t used = strlen(info);
    if (accel && used < sizeof info)
        snprintf(info + used, sizeof info - used, "; conv: %s", accel);
    return info;
}

const char *bpl__blas_warning(void)
{
    static _Thread_local char msg[400];
#if BPL_BLAS_OPENBLAS
    return bpl__blas_advice("openblas", openblas_get_corename(), bpl__cpu_isa(), msg,
                            sizeof msg);
#elif BPL_BLAS_BLIS
    return bpl__blas_advice("blis", blis_kernels(), bpl__cpu_isa(), msg, sizeof msg);
#else
    (void)msg;
    return NULL;
#endif
}

void bpl__blas_set_threads(size_t n)
{
#if BPL_BLAS_OPENBLAS
    openblas_set_num_threads((int)n);
#elif BPL_BLAS_BLIS
    bli_thread_set_num_threads((int64_t)n);
#else
    (void)n;
#endif
}

/* The library's threads first: if one cannot start, nothing has changed. */
BPL_API int bpl_set_thread_count(int n)
{
    if (n < 1)
        return bpl__fail(BPL_ERR_RANGE, "bpl_set_thread_count: n must be >= 1, got %d", n);
    int rc = bpl__pool_set_threads((size_t)n);
    if (rc == BPL_OK)
        bpl__blas_set_threads((size_t)n);
    return rc;
}

BPL_API int bpl_thread_count(void)
{
#if BPL_BLAS_OPENBLAS
    return openblas_get_num_threads();
#elif BPL_BLAS_BLIS
    return blis_threads();
#else
    return (int)bpl__pool_threads();
#endif
}
