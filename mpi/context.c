/*
 * context.c - a communicator, the net it trains, and the two kinds of
 * collective call everything else is made of: the round (one
 * MPI_Allreduce of the gradient block with a small header: rows, failures,
 * stop requests, loss) and the agreement on a status outside training.
 *
 * Every process makes the same sequence of rounds during a fit: one per
 * step (the core's reduction, also when the step failed before it) and one
 * at the end of each epoch.  A round that carries a failure is followed by
 * two small collectives that tell every process which one failed and why,
 * and then every process stops: so a failure anywhere ends the fit
 * everywhere, and nobody waits for a process that is gone.
 */
#include "mpi_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bpl__mpi_error(int mpi_rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(mpi_rc, text, &len);
    char message[MPI_MAX_ERROR_STRING + 64];
    snprintf(message, sizeof message, "%s failed: %s", what, text);
    return bpl_error_set(BPL_ERR_IO, message);
}

static int fail(int status, const char *message)
{
    return bpl_error_set(status, message);
}

BPL_API const char *bpl_mpi_library_version(void)
{
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (!version[0] && MPI_Get_library_version(version, &len) != MPI_SUCCESS)
        snprintf(version, sizeof version, "unknown");
    return version;
}

BPL_API int bpl_mpi_create(bpl_mpi **out, MPI_Comm comm)
{
    if (!out)
        return fail(BPL_ERR_INVALID_ARG, "bpl_mpi_create: out is NULL");
    *out = NULL;
    int initialised = 0, finalised = 0;
    MPI_Initialized(&initialised);
    MPI_Finalized(&finalised);
    if (!initialised || finalised)
        return fail(BPL_ERR_STATE, "bpl_mpi_create: MPI is not initialised (MPI_Init_thread)");
    if (comm == MPI_COMM_NULL)
        return fail(BPL_ERR_INVALID_ARG, "bpl_mpi_create: the communicator is MPI_COMM_NULL");
    bpl_mpi *m = calloc(1, sizeof *m);
    int rc = MPI_SUCCESS;
    if (m)
        rc = MPI_Comm_dup(comm, &m->comm);
    if (!m || rc != MPI_SUCCESS) {
        free(m);
        return m ? bpl__mpi_error(rc, "bpl_mpi_create: MPI_Comm_dup")
                 : fail(BPL_ERR_NOMEM, "bpl_mpi_create: out of memory");
    }
    /* Failures come back as codes, which every call turns into a status. */
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &m->rank);
    MPI_Comm_size(m->comm, &m->size);
    *out = m;
    return BPL_OK;
}

BPL_API void bpl_mpi_destroy(bpl_mpi *m)
{
    if (!m)
        return;
    if (m->net)
        bpl_net_set_parallel(m->net, 0, 1, NULL, NULL, 0);
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised)
        MPI_Comm_free(&m->comm);
    free(m->buf);
    free(m);
}

BPL_API int bpl_mpi_rank(const bpl_mpi *m)
{
    return m ? m->rank : -1;
}

BPL_API int bpl_mpi_size(const bpl_mpi *m)
{
    return m ? m->size : -1;
}

/* ---- agreement ------------------------------------------------------------------ */

/* Every process is here and some failed: the lowest-ranked failure's code
 * and message reach every process.  A failed process keeps its own. */
static int spread_failure(bpl_mpi *m, int status)
{
    int mine = status != BPL_OK ? m->rank : m->size, first = m->size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, m->comm);
    if (rc != MPI_SUCCESS)
        return bpl__mpi_error(rc, "MPI_Allreduce of the failed process");
    struct {
        int code;
        char message[480];
    } failure = {BPL_OK, ""};
    if (m->rank == first) {
        failure.code = status;
        snprintf(failure.message, sizeof failure.message, "%s", bpl_last_error_message());
    }
    if (first < m->size) {
        rc = MPI_Bcast(&failure, (int)sizeof failure, MPI_BYTE, first, m->comm);
        if (rc != MPI_SUCCESS)
            return bpl__mpi_error(rc, "MPI_Bcast of a failure");
    }
    if (status != BPL_OK)
        return status;
    char message[560];
    snprintf(message, sizeof message, "process %d of %d failed: %s", first, m->size,
             failure.message);
    return fail(failure.code != BPL_OK ? failure.code : BPL_ERR_INTERNAL, message);
}

BPL_API int bpl_mpi_agree(bpl_mpi *m, int status)
{
    if (!m)
        return fail(BPL_ERR_INVALID_ARG, "bpl_mpi_agree: the context is NULL");
    int failed = status != BPL_OK, any = 0;
    int rc = MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, m->comm);
    if (rc != MPI_SUCCESS)
        return bpl__mpi_error(rc, "bpl_mpi_agree: MPI_Allreduce");
    return any ? spread_failure(m, status) : BPL_OK;
}

/* Whether a 64-bit value is the same on every process: one MPI_MAX over
 * (v, ~v) gives the largest and the complement of the smallest. */
int bpl__mpi_same_everywhere(bpl_mpi *m, uint64_t value, int *same_out)
{
    uint64_t pair[2] = {value, ~value}, max[2];
    int rc = MPI_Allreduce(pair, max, 2, MPI_UINT64_T, MPI_MAX, m->comm);
    if (rc != MPI_SUCCESS)
        return bpl__mpi_error(rc, "MPI_Allreduce of a checksum");
    *same_out = max[0] == ~max[1];
    return BPL_OK;
}

/* ---- rounds ---------------------------------------------------------------------- */

int bpl__mpi_reserve(bpl_mpi *m, size_t n)
{
    if (n > ((size_t)-1) / sizeof(float) - BPL__MPI_HEADER || n + BPL__MPI_HEADER > (size_t)2147483647)
        return fail(BPL_ERR_OVERFLOW, "libbioplaus-mpi: the gradient block is too large for "
                                      "one MPI_Allreduce (over 2^31 floats)");
    if (n + BPL__MPI_HEADER > m->cap) {
        float *buf = realloc(m->buf, (n + BPL__MPI_HEADER) * sizeof *buf);
        if (!buf)
            return fail(BPL_ERR_NOMEM, "libbioplaus-mpi: out of memory");
        m->buf = buf;
        m->cap = n + BPL__MPI_HEADER;
    }
    m->n = n;
    return BPL_OK;
}

int bpl__mpi_round(bpl_mpi *m, float *block, double rows, int status, double loss,
                   double *loss_out)
{
    size_t n = m->n;
    float *b = m->buf;
    if (status == BPL_OK && block) {
        /* x - x is 0 for finite x and NaN for NaN and Inf: one pass finds
         * non-finite gradients, so that the process they come from is named. */
        float finite = 0.0f;
        for (size_t i = 0; i < n; i++) {
            b[i] = block[i] * (float)rows;
            finite += b[i] - b[i];
        }
        if (finite != 0.0f) {
            status = bpl_error_set(BPL_ERR_NUMERIC, "the gradients of this process's rows have "
                                                    "NaN or Inf; parameters left unchanged");
            memset(b, 0, n * sizeof *b);
        }
    } else {
        memset(b, 0, n * sizeof *b);
    }
    b[n + BPL__MPI_ROWS] = (float)rows;
    b[n + BPL__MPI_FAILED] = status != BPL_OK;
    b[n + BPL__MPI_STOP] = (float)m->stop_request;
    b[n + BPL__MPI_LOSS] = (float)(loss * rows);
    int rc = MPI_Allreduce(MPI_IN_PLACE, b, (int)(n + BPL__MPI_HEADER), MPI_FLOAT, MPI_SUM,
                           m->comm);
    if (rc != MPI_SUCCESS) {
        m->failure_seen = 1;
        return bpl__mpi_error(rc, "libbioplaus-mpi: MPI_Allreduce of the gradients");
    }
    if (b[n + BPL__MPI_FAILED] > 0.0f) {
        m->failure_seen = 1;
        return spread_failure(m, status);
    }
    double total = b[n + BPL__MPI_ROWS];
    if (block && total > 0.0)
        for (size_t i = 0; i < n; i++)
            block[i] = (float)(b[i] / total);
    if (b[n + BPL__MPI_STOP] > 0.0f)
        m->stop_agreed = 1;
    if (loss_out)
        *loss_out = total > 0.0 ? b[n + BPL__MPI_LOSS] / total : 0.0;
    return BPL_OK;
}

/* The core's reduction of one step (bpl_reduce_fn). */
static int reduce_step(void *user_data, float *block, size_t n, double rows, int status)
{
    bpl_mpi *m = user_data;
    /* Every process's block has the same size (their nets are the same);
     * a process whose block changed still takes part, and fails. */
    if (status == BPL_OK && n != m->n)
        status = fail(BPL_ERR_STATE, "libbioplaus-mpi: the net's gradient block changed size "
                                     "since bpl_mpi_attach");
    return bpl__mpi_round(m, block, rows, status, 0.0, NULL);
}

/* ---- attach ------------------------------------------------------------------------ */

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int check_attach(bpl_mpi *m, bpl_net *net, size_t *n_out, uint64_t *hash_out)
{
    if (!net)
        return fail(BPL_ERR_INVALID_ARG, "bpl_mpi_attach: the net is NULL");
    if (m->net)
        return fail(BPL_ERR_STATE, "bpl_mpi_attach: the context already trains a net "
                                   "(bpl_mpi_detach it first)");
    if (!bpl_net_rule(net))
        return fail(BPL_ERR_STATE, "bpl_mpi_attach: attach a rule to the net first");
    int rc = bpl_net_gradient_size(net, n_out);
    if (rc == BPL_OK)
        rc = bpl_net_state_hash(net, hash_out);
    if (rc == BPL_OK)
        rc = bpl__mpi_reserve(m, *n_out);
    return rc;
}

BPL_API int bpl_mpi_attach(bpl_mpi *m, bpl_net *net)
{
    if (!m)
        return fail(BPL_ERR_INVALID_ARG, "bpl_mpi_attach: the context is NULL");
    size_t n = 0;
    uint64_t hash = 0;
    int rc = bpl_mpi_agree(m, check_attach(m, net, &n, &hash));
    int same_net = 0, same_size = 0;
    if (rc == BPL_OK)
        rc = bpl__mpi_same_everywhere(m, hash, &same_net);
    if (rc == BPL_OK)
        rc = bpl__mpi_same_everywhere(m, (uint64_t)n, &same_size);
    if (rc != BPL_OK)
        return rc;
    if (!same_net || !same_size)
        return fail(BPL_ERR_STATE,
                    "bpl_mpi_attach: the processes' nets differ (build them from the same "
                    "seed, layers and rule, or load them from the same file)");
    uint64_t example_seed = mix(hash ^ mix((uint64_t)m->rank + 1));
    rc = bpl_net_set_parallel(net, (size_t)m->rank, (size_t)m->size, reduce_step, m,
                              example_seed);
    rc = bpl_mpi_agree(m, rc);
    if (rc == BPL_OK)
        m->net = net;
    else if (net)
        bpl_net_set_parallel(net, 0, 1, NULL, NULL, 0);
    return rc;
}

BPL_API int bpl_mpi_detach(bpl_mpi *m)
{
    if (!m)
        return fail(BPL_ERR_INVALID_ARG, "bpl_mpi_detach: the context is NULL");
    int rc = m->net ? bpl_net_set_parallel(m->net, 0, 1, NULL, NULL, 0) : BPL_OK;
    m->net = NULL;
    return bpl_mpi_agree(m, rc);
}
