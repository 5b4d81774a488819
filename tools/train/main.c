/*
 * bioplaus-train - train a fully connected net on MNIST with any built-in
 * learning rule and report its test accuracy.
 *
 *     bioplaus-train --rule fa --epochs 10
 *
 * Every option left out takes the rule's recommended training set-up
 * (bpl_rule_recommendation), so each rule trains as its documented runs
 * did.  `--load FILE` evaluates a saved net, or trains it further.
 *
 * Run `bioplaus-train --help` for every option.  Exit status: 0 on success,
 * 1 when the data or training fail, 2 for a usage error.  The last line
 * printed on stdout is always the `final ...` summary, so scripts can read
 * it with `tail -n 1`.
 *
 * main.c is a run from the options to the final line; train.h says which
 * file holds each of its steps.
 */
#include "train.h"

#include <stdio.h>
#include <unistd.h>

static int set_threads(int threads)
{
    if (threads == 0)
        return 0;
    int rc = bpl_set_thread_count(threads);
    if (rc == BPL_ERR_UNSUPPORTED) { /* e.g. the single-threaded builtin kernels */
        fprintf(stderr, "%s: warning: --threads %d ignored: %s\n", program, threads,
                bpl_last_error_message());
        return 0;
    }
    return rc == BPL_OK ? 0 : library_error(rc);
}

static void close_session(struct session *s)
{
    if (s->csv)
        fclose(s->csv);
    bpl_net_destroy(s->net);
    bpl_rule_destroy(s->rule);
    bpl_dataset_destroy(s->train);
    bpl_dataset_destroy(s->val);
    bpl_dataset_destroy(s->test);
}

static int run(struct options *opt)
{
    struct session s = {0};
    struct trainer t = {0};
    t.opt = opt;
    t.session = &s;
    /* mpiexec may give a process a terminal whatever its own stdout is. */
    t.show_progress = !opt->quiet && isatty(STDOUT_FILENO) && parallel_processes() == 1;
    /* Usage errors, and a --save that cannot succeed, come before the slow
     * data load. */
    /* Under mpiexec every step that may fail on one process alone is
     * agreed on, so that no process goes on to wait for one that stopped. */
    int status = parallel_agree(prepare_net(opt, &s, &t));
    if (status == 0 && opt->save_path)
        status = parallel_agree(check_save_path(opt->save_path));
    if (status == 0)
        status = set_threads(opt->threads);
    if (status == 0)
        status = parallel_agree(load_data(opt, &s));
    if (status == 0 && opt->csv_path)
        status = parallel_agree(open_csv(opt->csv_path, &s));
    if (status == 0 && !opt->quiet)
        print_header(opt, &s);
    if (status == 0)
        status = opt->epochs ? train(&t) : evaluate_only(&t);
    if (status == 0 && opt->csv_path)
        status = parallel_agree(close_csv(opt->csv_path, &s));
    if (status == 0 && opt->save_path)
        status = save_net(opt, &s);
    if (status == 0)
        print_final(&t);
    close_session(&s);
    return status;
}

static int start_and_run(int argc, char **argv)
{
    struct options opt;
    int status = parse_options(argc, argv, &opt);
    if (status != KEEP_GOING)
        return status;
    if (opt.list_params)
        return list_params(&opt);
    return run(&opt);
}

int main(int argc, char **argv)
{
    int status = parallel_start(&argc, &argv);
    if (status == 0)
        status = start_and_run(argc, argv);
    parallel_finish();
    return status;
}
