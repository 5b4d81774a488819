/*
 * fuzz_model.c - bpl_net_load on arbitrary files.  A load either fails with
 * a documented status or gives a net that can be used; a net saved and
 * loaded back is the same net: same file, same predictions and the same
 * training step, to the bit.
 *
 * The input is the file.  Files carry CRC-32 checksums, so an input that
 * does not load as it is gets a second chance with its header's payload
 * size and checksums recomputed: that is what lets mutations reach the
 * parser behind the checksum.
 */
#include <zlib.h>

#include "fuzz_util.h"

#define HEADER_SIZE 32
#define BATCH 3

static void store_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Make the header agree with the payload; 1 if that changed anything. */
static int fix_header(unsigned char *d, size_t n)
{
    unsigned char before[HEADER_SIZE];
    memcpy(before, d, HEADER_SIZE);
    store_le(d + 16, n - HEADER_SIZE, 8);
    store_le(d + 24, crc32(0L, d + HEADER_SIZE, (uInt)(n - HEADER_SIZE)), 4);
    store_le(d + 28, crc32(0L, d, 28), 4);
    return memcmp(before, d, HEADER_SIZE) != 0;
}

static int load(bpl_net **net, const char *path, unsigned allowed)
{
    int rc = fuzz_check(bpl_net_load(net, path), allowed, "bpl_net_load");
    if ((rc == BPL_OK) != (*net != NULL))
        fuzz_abort("bpl_net_load returned %d with *out %p", rc, (void *)*net);
    return rc;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0)
        fuzz_abort("cannot read back %s", path);
    long n = ftell(f);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    rewind(f);
    if (n < 0 || !buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        fuzz_abort("cannot read back %s", path);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void save_and_compare(const bpl_net *a, const bpl_net *b, const char *what)
{
    char pa[512], pb[512];
    fuzz_path(pa, sizeof pa, "a.bpl");
    fuzz_path(pb, sizeof pb, "b.bpl");
    fuzz_check(bpl_net_save(a, pa), FZ(BPL_OK), "bpl_net_save");
    fuzz_check(bpl_net_save(b, pb), FZ(BPL_OK), "bpl_net_save");
    size_t na, nb;
    unsigned char *da = read_all(pa, &na), *db = read_all(pb, &nb);
    if (na != nb || memcmp(da, db, na) != 0)
        fuzz_abort("%s: the saved files differ (%zu and %zu bytes)", what, na, nb);
    free(da);
    free(db);
}

/* The same inputs for every net of a run. */
static float *batch_of(size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        fuzz_abort("out of memory in the target");
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)(i * 7 % 11) - 5) * 0.25f;
    return x;
}

static int predict(bpl_net *net, float *out)
{
    size_t n_in = bpl_net_input_size(net), n_out = bpl_net_output_size(net);
    float *x = batch_of(BATCH * n_in);
    int rc = fuzz_check(bpl_net_predict(net, x, BATCH, out, BATCH * n_out),
                        FZ(BPL_OK) | FZ(BPL_ERR_STATE) | FZ(BPL_ERR_NUMERIC),
                        "bpl_net_predict");
    free(x);
    return rc;
}

/* One training step on both nets: same status, same resulting state. */
static void train_both(bpl_net *a, bpl_net *b)
{
    size_t n_in = bpl_net_input_size(a), n_out = bpl_net_output_size(a);
    float *x = batch_of(BATCH * n_in), *y = calloc(BATCH * n_out, sizeof *y);
    if (!y)
        fuzz_abort("out of memory in the target");
    for (size_t i = 0; i < BATCH; i++)
        y[i * n_out + i % n_out] = 1.0f;
    int ra = fuzz_check(bpl_net_train_batch(a, x, y, BATCH, NULL), FZ_ANY,
                        "bpl_net_train_batch");
    int rb = fuzz_check(bpl_net_train_batch(b, x, y, BATCH, NULL), FZ_ANY,
                        "bpl_net_train_batch");
    if (ra != rb)
        fuzz_abort("a training step of the saved net returned %d, of the loaded one %d", ra,
                   rb);
    save_and_compare(a, b, "after a training step");
    free(x);
    free(y);
}

/* The segregated rule's spiking mode keeps membrane potentials and spike
 * traces in its batch buffers from one call to the next ("time runs on"),
 * and a saved file does not hold them: a loaded net starts at rest, so it
 * cannot predict like the net it was saved from.  Such a net is compared
 * with a second load of the same file instead, unless
 * BPL_FUZZ_STRICT_RESUME is set (which shows the difference). */
static int resumes_exactly(bpl_net *net)
{
    const bpl_rule *rule = bpl_net_rule(net);
    double mode;
    const char *strict = getenv("BPL_FUZZ_STRICT_RESUME");
    if ((strict && strict[0]) || !rule || strcmp(bpl_rule_name(rule), "segregated") != 0)
        return 1;
    return bpl_rule_get(rule, "mode", &mode) == BPL_OK && mode == 0.0;
}

static void roundtrip(bpl_net *a)
{
    fuzz_cap_costs(bpl_net_rule(a));
    size_t n_out = BATCH * bpl_net_output_size(a);
    float *pa = malloc(n_out * sizeof *pa), *pb = malloc(n_out * sizeof *pb);
    if (!pa || !pb)
        fuzz_abort("out of memory in the target");
    int rc = predict(a, pa);
    if (rc == BPL_ERR_STATE && bpl_net_loss(a) != BPL_LOSS_MSE) {
        /* cross-entropy on a linear output: the outputs do not depend on it */
        fuzz_check(bpl_net_set_loss(a, BPL_LOSS_MSE), FZ(BPL_OK), "bpl_net_set_loss");
        rc = predict(a, pa);
    }
    if (rc == BPL_OK) {
        char path[512];
        fuzz_path(path, sizeof path, "saved.bpl");
        fuzz_check(bpl_net_save(a, path), FZ(BPL_OK), "bpl_net_save");
        bpl_net *b = NULL, *c = NULL, *ref = a;
        load(&b, path, FZ(BPL_OK)); /* a file the library wrote must load */
        save_and_compare(a, b, "after loading");
        if (!resumes_exactly(a)) {
            load(&c, path, FZ(BPL_OK));
            ref = c;
        }
        int ra = predict(ref, pa), rb = predict(b, pb);
        if (ra != rb || (ra == BPL_OK && memcmp(pa, pb, n_out * sizeof *pa) != 0))
            fuzz_abort("the loaded net predicts differently (status %d vs %d)", ra, rb);
        if (bpl_net_rule(a))
            train_both(ref, b);
        bpl_net_destroy(b);
        bpl_net_destroy(c);
    }
    free(pa);
    free(pb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned loadable = FZ(BPL_OK) | FZ(BPL_ERR_FORMAT) | FZ(BPL_ERR_VERSION);
    char path[512];
    fuzz_path(path, sizeof path, "input.bpl");
    fuzz_write(path, data, size);
    bpl_net *net = NULL;
    int rc = load(&net, path, loadable);
    if (rc != BPL_OK && size >= HEADER_SIZE) {
        unsigned char *fixed = malloc(size);
        if (!fixed)
            fuzz_abort("out of memory in the target");
        memcpy(fixed, data, size);
        if (fix_header(fixed, size)) {
            fuzz_write(path, fixed, size);
            rc = load(&net, path, loadable);
        }
        free(fixed);
    }
    if (rc == BPL_OK)
        roundtrip(net);
    bpl_net_destroy(net);
    return 0;
}
