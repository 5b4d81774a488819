/*
 * gemm_job.c - the GEMM-only bound and the sgemm rate: the products of a
 * backprop step with the library's shapes and transposes, each timed alone
 * with bpl_gemm.
 */
#include "bench_train.h"

#include "bioplaus_rule.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (float)((double)(seed >> 40) / (double)(1ULL << 24) - 0.5);
    }
}

/* Seconds of one product: the best of five loops of budget/5 seconds each.
 * The best, not the mean, because this is a lower bound and interruptions
 * by other processes only ever add time. */
static double time_gemm(int ta, int tb, size_t m, size_t n, size_t k, const float *a,
                        const float *b, float *c, double budget)
{
    size_t lda = ta ? m : k, ldb = tb ? k : n;
    bpl_gemm(NULL, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n); /* warm */
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        size_t calls = 0;
        double start = now(), elapsed;
        do {
            bpl_gemm(NULL, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
            calls++;
            elapsed = now() - start;
        } while (elapsed < budget / 5);
        double each = elapsed / (double)calls;
        best = trial == 0 || each < best ? each : best;
    }
    return best;
}

/* The products of one backprop step at `rows` rows, each timed alone, with
 * the shapes and transposes the library uses (lib/dense.c): per layer the
 * forward product, the weight gradient delta^T x, and (above the first
 * layer) the error sent down, delta W. */
static double time_step(const job *j, size_t rows, float *const *buf, gemm_result *r,
                        int record)
{
    const net_shape *s = j->net;
    double total = 0;
    for (size_t l = 1; l < s->n_sizes; l++) {
        size_t in = s->sizes[l - 1], out = s->sizes[l];
        const float *x = buf[0], *w = buf[1];
        float *c = buf[2];
        struct { int ta, tb; size_t m, n, k; } shapes[3] = {
            {0, 1, rows, out, in},  /* activation = x W^T */
            {1, 0, out, in, rows},  /* grad W = delta^T x */
            {0, 0, rows, in, out}}; /* delta below = delta W */
        for (int i = 0; i < (l > 1 ? 3 : 2); i++) {
            double t = time_gemm(shapes[i].ta, shapes[i].tb, shapes[i].m, shapes[i].n,
                                 shapes[i].k, x, w, c, j->o->gemm_seconds);
            total += t;
            if (record && r->n_shapes < sizeof r->shapes / sizeof r->shapes[0]) {
                r->shapes[r->n_shapes].trans_a = shapes[i].ta;
                r->shapes[r->n_shapes].trans_b = shapes[i].tb;
                r->shapes[r->n_shapes].m = shapes[i].m;
                r->shapes[r->n_shapes].n = shapes[i].n;
                r->shapes[r->n_shapes].k = shapes[i].k;
                r->shapes[r->n_shapes].seconds = t;
                r->n_shapes++;
                r->step_flops += 2.0 * (double)shapes[i].m * (double)shapes[i].n *
                                 (double)shapes[i].k;
            }
        }
    }
    return total;
}

void gemm_job(const job *j, void *out)
{
    gemm_result *r = out;
    memset(r, 0, sizeof *r);
    int rc = j->threads ? bpl_set_thread_count((int)j->threads) : BPL_OK;
    if (rc != BPL_OK) {
        set_error(&r->status, "threads", rc);
        return;
    }
    /* One operand size fits every product: rows x widest or widest^2. */
    size_t widest = 0, n = bpl_dataset_example_count(j->ds);
    for (size_t l = 0; l < j->net->n_sizes; l++)
        widest = j->net->sizes[l] > widest ? j->net->sizes[l] : widest;
    size_t side = j->batch > widest ? j->batch : widest;
    float *buf[3] = {NULL, NULL, NULL};
    int have = 1;
    for (int i = 0; i < 3; i++) {
        buf[i] = malloc(side * widest * sizeof(float));
        have = have && buf[i];
        if (buf[i])
            fill(buf[i], side * widest, (uint64_t)i + 7);
    }
    if (!have) {
        set_error(&r->status, "gemm buffers", BPL_ERR_NOMEM);
    } else {
        r->step_seconds = time_step(j, j->batch, buf, r, 1);
        size_t full = n / j->batch, rest = n % j->batch;
        r->epoch_seconds = (double)full * r->step_seconds;
        if (rest)
            r->epoch_seconds += time_step(j, rest, buf, r, 0);
        r->status.ok = 1;
    }
    for (int i = 0; i < 3; i++)
        free(buf[i]);
}
