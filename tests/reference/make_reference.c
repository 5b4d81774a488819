/*
 * make_reference.c - make-reference DIR: train every reference scenario
 * (scenarios.h) and write DIR/<name>.bpl (the trained net) and
 * DIR/<name>.pred (what that file predicts once loaded: float32,
 * little-endian, [REF_PREDICT_ROWS][REF_OUTPUTS]).
 *
 * Run once, with a -Dblas=none build, to make tests/reference/v1: those
 * files record what the rules computed then, and are not to be remade.
 */
#include "run.h"

#include <stdio.h>
#include <string.h>

static int write_floats(const char *path, const float *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        unsigned char b[4] = {(unsigned char)bits, (unsigned char)(bits >> 8),
                              (unsigned char)(bits >> 16), (unsigned char)(bits >> 24)};
        fwrite(b, 1, 4, f);
    }
    return fclose(f);
}

static int make(const ref_scenario *s, const char *dir)
{
    char path[4096];
    bpl_net *net = NULL, *loaded = NULL;
    float pred[REF_PREDICT_ROWS * REF_OUTPUTS];
    int rc = ref_build(s, NULL, &net);
    if (rc == BPL_OK)
        rc = ref_train(net);
    snprintf(path, sizeof path, "%s/%s.bpl", dir, s->name);
    if (rc == BPL_OK)
        rc = bpl_net_save(net, path);
    if (rc == BPL_OK)
        rc = bpl_net_load(&loaded, path);
    if (rc == BPL_OK)
        rc = ref_predict(loaded, pred);
    snprintf(path, sizeof path, "%s/%s.pred", dir, s->name);
    if (rc == BPL_OK && write_floats(path, pred, sizeof pred / sizeof pred[0]) != 0)
        rc = bpl_error_set(BPL_ERR_IO, "cannot write the predictions");
    if (rc != BPL_OK)
        fprintf(stderr, "make-reference: %s: %s\n", s->name, bpl_last_error_message());
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (strcmp(bpl_blas_backend(), "builtin") != 0)
        fprintf(stderr, "make-reference: warning: built with the %s backend, not -Dblas=none\n",
                bpl_blas_backend());
    int failed = 0;
    for (size_t i = 0; i < REF_N_SCENARIOS; i++)
        failed |= make(&ref_scenarios[i], argv[1]) != BPL_OK;
    return failed;
}
