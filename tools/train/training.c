/*
 * training.c - training: bpl_net_fit with a progress callback that
 * evaluates, reports and decays the learning rate after every epoch; or,
 * for a loaded net without --epochs, evaluation alone.
 */
#include "train.h"

#include <stdio.h>
#include <stdlib.h>

/* Evaluation inside the callback cannot fail through bpl_net_fit: keep the
 * message and stop training instead. */
static int stop_with_error(struct trainer *t, int status)
{
    snprintf(t->failure, sizeof t->failure, "%s: %s: %s", program, bpl_strerror(status),
             bpl_last_error_message());
    t->failed = 1;
    return 1;
}

static int evaluate(struct trainer *t, struct epoch_result *r)
{
    struct session *s = t->session;
    int rc = BPL_OK;
    if (s->val)
        rc = parallel_evaluate(s->net, s->val, &r->val_accuracy, &r->val_loss);
    if (rc == BPL_OK)
        rc = parallel_evaluate(s->net, s->test, &r->test_accuracy, &r->test_loss);
    return rc == BPL_OK ? 0 : stop_with_error(t, rc);
}

/* The rule reads "lr" at every step, so a schedule is a setting between epochs. */
static int decay_learning_rate(struct trainer *t)
{
    bpl_rule *rule = bpl_net_rule(t->session->net);
    double lr;
    int rc = bpl_rule_get(rule, "lr", &lr);
    if (rc == BPL_OK)
        rc = bpl_rule_set(rule, "lr", lr * t->opt->lr_decay);
    return rc == BPL_OK ? 0 : stop_with_error(t, rc);
}

static int on_epoch(struct trainer *t, size_t epoch, double train_loss)
{
    struct epoch_result r = {0};
    r.train_loss = train_loss;
    r.seconds = now_seconds() - t->epoch_start;
    t->train_seconds += r.seconds;
    /* With nothing to show for it, evaluating before the last epoch is wasted time. */
    int wanted = !t->opt->quiet || t->session->csv || epoch == t->opt->epochs;
    if (wanted && evaluate(t, &r) != 0)
        return 1;
    if (!t->opt->quiet)
        print_epoch(t, epoch, &r);
    if (t->session->csv)
        write_csv_row(t->session->csv, epoch, &r, t->session->val != NULL, t->train_seconds);
    if (t->opt->lr_decay != 1.0 && decay_learning_rate(t) != 0)
        return 1;
    t->last = r;
    t->epochs_done = epoch;
    t->running_loss_sum = 0.0;
    t->epoch_start = now_seconds(); /* evaluation time is not training time */
    return 0;
}

static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data)
{
    struct trainer *t = user_data;
    if (event == BPL_EVENT_BATCH) {
        on_batch(t, epoch, step, steps, loss);
        return 0;
    }
    return event == BPL_EVENT_EPOCH ? on_epoch(t, epoch, loss) : 0;
}

int train(struct trainer *t)
{
    struct session *s = t->session;
    t->epoch_start = now_seconds();
    int rc = parallel_fit(s->net, s->train, t->opt->epochs, t->opt->batch, on_progress, t);
    if (t->line_dirty) {
        printf("\n"); /* keep the interrupted progress bar visible */
        t->line_dirty = 0;
    }
    if (rc != BPL_OK)
        return library_error(rc);
    if (t->failed) {
        fprintf(stderr, "%s\n", t->failure);
        return EXIT_FAILURE;
    }
    return 0;
}

/* A loaded net without --epochs: the test set only. */
int evaluate_only(struct trainer *t)
{
    struct session *s = t->session;
    int rc = parallel_evaluate(s->net, s->test, &t->last.test_accuracy, &t->last.test_loss);
    return rc == BPL_OK ? 0 : library_error(rc);
}
