/*
 * run.h - one reference scenario, built and trained the same way by the
 * program that made the reference files and by the test that replays them.
 */
#ifndef BPL_REFERENCE_RUN_H
#define BPL_REFERENCE_RUN_H

#include "scenarios.h"

/* Build the scenario's net with its rule attached.  Hyperparameters come
 * from the scenario, then, if `pinned` is not NULL, every hyperparameter
 * of `pinned` is copied over, so that a replay does not depend on the
 * defaults of the day.  Returns a status; *out is NULL on failure. */
int ref_build(const ref_scenario *s, const bpl_rule *pinned, bpl_net **out);

/* The scenario's training: REF_STEPS batches, then one epoch of bpl_net_fit. */
int ref_train(bpl_net *net);

/* Predictions of REF_PREDICT_ROWS fixed rows into out [rows][REF_OUTPUTS]. */
int ref_predict(bpl_net *net, float *out);

#endif
