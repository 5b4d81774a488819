/*
 * testhooks.h - for tests linked with the internal build: drive a rule's
 * hooks by hand and read what they leave in a net's buffers and tensors.
 */
#ifndef BPL_TESTHOOKS_H
#define BPL_TESTHOOKS_H

#include <stddef.h>

#include "bioplaus_rule.h"

/* Run the attached rule's forward hook, then compute_targets (if `targets`;
 * y may be NULL for "no target") and the gradients (if `update`), in
 * `phase`, as the step driver does: in BPL_PHASE_TRAIN the optimisers step
 * and after_apply runs; in BPL_PHASE_DIAGNOSE gradients are computed but
 * nothing is applied.  The batch buffers stay readable afterwards. */
void test_run_hooks(bpl_net *net, int phase, const float *x, const float *y, size_t batch,
                    int targets, int update);

/* The gradients of the batch forward and compute_targets left, without
 * applying them (in the net's phase, BPL_PHASE_DIAGNOSE if idle); returns
 * the groups the rule would train. */
unsigned int test_run_gradients(bpl_net *net);

/* Layer l's batch buffer, tensor or tensor gradient `name`; fails the test
 * if there is none. */
float *test_buffer(bpl_net *net, size_t l, const char *name);
float *test_tensor(bpl_net *net, size_t l, const char *name);
float *test_grad(bpl_net *net, size_t l, const char *name);

double test_max_abs(const float *v, size_t n);

#endif
