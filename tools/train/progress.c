/*
 * progress.c - what the terminal shows while training: the progress bar
 * and the line of each epoch.
 */
#include "train.h"

#include <stdio.h>
#include <time.h>

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int count_digits(size_t n)
{
    return snprintf(NULL, 0, "%zu", n);
}

/* Rows of batch `step` (from 1): only the last batch of an epoch may be short. */
static size_t batch_rows(const struct trainer *t, size_t step)
{
    size_t n_train = bpl_dataset_example_count(t->session->train);
    size_t start = (step - 1) * t->opt->batch;
    return n_train - start < t->opt->batch ? n_train - start : t->opt->batch;
}

static void draw_progress(struct trainer *t, size_t epoch, size_t step, size_t steps)
{
    enum { BAR_WIDTH = 24 };
    double elapsed = now_seconds() - t->epoch_start;
    size_t examples = (step - 1) * t->opt->batch + batch_rows(t, step);
    size_t filled = BAR_WIDTH * step / steps;
    char bar[BAR_WIDTH + 1];
    for (size_t i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    printf("\r\033[Kepoch %*zu/%zu [%s] %*zu/%zu  loss %.4f  %.0f ex/s",
           count_digits(t->opt->epochs), epoch, t->opt->epochs, bar, count_digits(steps),
           step, steps, t->running_loss_sum / (double)examples,
           elapsed > 0.0 ? (double)examples / elapsed : 0.0);
    fflush(stdout);
    t->line_dirty = 1;
}

void on_batch(struct trainer *t, size_t epoch, size_t step, size_t steps, double loss)
{
    t->running_loss_sum += loss * (double)batch_rows(t, step);
    if (!t->show_progress)
        return;
    double now = now_seconds();
    /* Redrawing every batch would make the terminal the bottleneck. */
    if (step == 1 || step == steps || now - t->last_draw >= 0.1) {
        t->last_draw = now;
        draw_progress(t, epoch, step, steps);
    }
}

void print_epoch(struct trainer *t, size_t epoch, const struct epoch_result *r)
{
    if (t->line_dirty)
        printf("\r\033[K"); /* the epoch line replaces the progress bar */
    t->line_dirty = 0;
    printf("epoch %*zu/%zu  train_loss %.4f", count_digits(t->opt->epochs), epoch,
           t->opt->epochs, r->train_loss);
    if (t->session->val)
        printf("  val_acc %.4f", r->val_accuracy);
    printf("  test_acc %.4f  time %.2fs\n", r->test_accuracy, r->seconds);
    fflush(stdout);
}
