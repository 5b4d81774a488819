/*
 * train.h - what the files of bioplaus-train share: the options, the
 * session of one run, the state of training, and each file's functions.
 *
 * Functions that can fail return 0 or the exit status to end with (after
 * printing why); parse_options returns KEEP_GOING when there is a run to
 * do.
 */
#ifndef BIOPLAUS_TRAIN_H
#define BIOPLAUS_TRAIN_H

#include <bioplaus.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

enum { EXIT_USAGE = 2, KEEP_GOING = -1 };
enum { MAX_HIDDEN_LAYERS = 64, MAX_PARAMS = 64 };

/* The official training file holds 60000 images; --val is checked against
 * it before any file is read, and against the real count once loaded.  The
 * net is built for 28x28 images and 10 classes before the data is read, so
 * that a net the library refuses is a usage error found at once. */
enum { MNIST_TRAIN_IMAGES = 60000, MNIST_FEATURES = 784, MNIST_CLASSES = 10 };

extern const char program[];          /* the name messages start with */
extern const char default_data_dir[]; /* without --data and $BIOPLAUS_MNIST_DIR */

/* The training choices a rule may recommend, as bits of options.recommended. */
enum {
    FROM_RULE_HIDDEN = 1 << 0,
    FROM_RULE_ACTIVATION = 1 << 1,
    FROM_RULE_INIT = 1 << 2,
    FROM_RULE_BATCH = 1 << 3,
    FROM_RULE_EPOCHS = 1 << 4,
    FROM_RULE_LR_DECAY = 1 << 5
};

/* A hidden layer of --arch (or --hidden, whose layers are dense). */
enum { ARCH_DENSE, ARCH_CONV, ARCH_MAXPOOL, ARCH_AVGPOOL, ARCH_KINDS };
struct arch_layer {
    int kind;      /* ARCH_* */
    size_t size;   /* units of a dense layer, output channels of a conv */
    size_t kernel; /* the square kernel or pooling window; 0 for dense */
    size_t stride;
    size_t pad;
};

struct options {
    const char *rule;
    struct arch_layer arch[MAX_HIDDEN_LAYERS];
    size_t n_arch;
    int activation;
    int init;
    size_t epochs;         /* 0 with --load: evaluate only */
    size_t batch;
    const char *optimizer; /* NULL: the rule's own or recommended */
    double lr;
    double lr_decay;       /* the learning rate is multiplied by it after each epoch */
    size_t frozen[MAX_HIDDEN_LAYERS + 1]; /* layers whose weight and bias stay fixed */
    size_t n_frozen;
    uint64_t seed;
    const char *data_dir;  /* NULL: $BIOPLAUS_MNIST_DIR, else ./data/mnist */
    size_t limit;          /* 0: every training image */
    size_t val;
    const char *csv_path;
    const char *save_path;
    const char *load_path; /* NULL: a new net */
    int threads;           /* 0: leave the BLAS library's setting alone */
    const char *params[MAX_PARAMS];
    size_t n_params;
    int list_params;
    int quiet;
    uint64_t given;        /* bit (id - OPT_RULE) of every option on the command line */
    unsigned recommended;  /* FROM_RULE_* bits: choices taken from the rule */
};

/* Everything that must be freed, in one place so every exit path frees it. */
struct session {
    bpl_rule *rule; /* NULL once the net owns it */
    bpl_net *net;
    bpl_dataset *train;
    bpl_dataset *val;
    bpl_dataset *test;
    FILE *csv;
    const char *data_dir;
};

struct epoch_result {
    double train_loss;
    double val_accuracy, val_loss;
    double test_accuracy, test_loss;
    double seconds;
};

/* State shared with the progress and log callbacks. */
struct trainer {
    const struct options *opt;
    struct session *session;
    int show_progress;        /* stdout is a terminal and --quiet is off */
    int line_dirty;           /* a progress bar is on the current terminal line */
    double epoch_start;
    double last_draw;
    double running_loss_sum;  /* batch loss times batch rows, this epoch */
    double train_seconds;     /* training only: evaluation is excluded */
    size_t epochs_done;
    struct epoch_result last;
    int failed;               /* evaluation failed inside the callback */
    char failure[512];
};

/* The long options, from 256 so that getopt's own codes stay apart; an
 * option's bit in options.given is id - OPT_RULE. */
enum option_id {
    OPT_RULE = 256, OPT_HIDDEN, OPT_ACTIVATION, OPT_INIT, OPT_EPOCHS, OPT_BATCH,
    OPT_OPTIMIZER, OPT_LR, OPT_SEED, OPT_DATA, OPT_LIMIT, OPT_VAL, OPT_CSV, OPT_SAVE,
    OPT_THREADS, OPT_PARAM, OPT_LIST_PARAMS, OPT_LR_DECAY, OPT_FREEZE, OPT_LOAD, OPT_ARCH
};

/* ---- messages.c: one line on stderr, and the exit status to return */
int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
int library_error(int status);

/* ---- arch.c: the hidden layers */
int parse_arch(const char *text, struct options *opt);
int add_hidden_layers(const struct options *opt, bpl_net *net);
int same_arch(const struct options *opt, bpl_net *net);

/* ---- names.c: the names of what can be chosen */
void join_names(char *buf, size_t size, const char *(*name_at)(size_t));
const char *rule_name_at(size_t i);
const char *init_name_at(size_t i);
const char *optimizer_name_at(size_t i);
const char *hidden_activation_name_at(size_t i);
void choice_name(const char *choices, double index, char *buf, size_t size);

/* ---- help.c: --help, --version, --list-params */
void print_help(void);
void print_version(void);
int list_params(const struct options *opt);

/* ---- options.c: the command line */
int given(const struct options *opt, int id);
int apply_option(int id, const char *arg, struct options *opt);
int parse_options(int argc, char **argv, struct options *opt);

/* ---- rule.c: the rule and its recommendation */
int has_param(const bpl_rule *rule, const char *key);
int param_given(const struct options *opt, const char *key);
int apply_settings(const struct options *opt, bpl_rule *rule);
int create_rule(const struct options *opt, bpl_rule **out);
int check_ignored(const struct options *opt, const bpl_rule *rule);
int take_recommendation(struct options *opt, const bpl_rule *rule);

/* ---- data.c: the MNIST files */
int load_data(const struct options *opt, struct session *s);

/* ---- net.c: the net */
void print_log(int level, const char *message, void *user_data);
void describe_architecture(bpl_net *net, char *buf, size_t size);
int prepare_net(struct options *opt, struct session *s, struct trainer *t);

/* ---- saved.c: --load and --save */
int check_against_file(const struct options *opt, bpl_net *net);
int load_net(struct options *opt, struct session *s, struct trainer *t);
int check_save_path(const char *path);
int save_net(const struct options *opt, const struct session *s);

/* ---- training.c: the epochs */
int train(struct trainer *t);
int evaluate_only(struct trainer *t);

/* ---- progress.c: the terminal while training */
double now_seconds(void);
void on_batch(struct trainer *t, size_t epoch, size_t step, size_t steps, double loss);
void print_epoch(struct trainer *t, size_t epoch, const struct epoch_result *r);

/* ---- csv.c: the --csv file */
int open_csv(const char *path, struct session *s);
void write_csv_row(FILE *csv, size_t epoch, const struct epoch_result *r,
                   int have_val, double cumulative_seconds);
int close_csv(const char *path, struct session *s);

/* ---- parallel.c: several processes under mpiexec (libbioplaus-mpi) */
int parallel_start(int *argc, char ***argv);
void parallel_finish(void);
int parallel_processes(void);
int parallel_rank(void);
int parallel_agree(int status);
int parallel_fit(bpl_net *net, const bpl_dataset *ds, size_t epochs, size_t batch,
                 bpl_progress_fn fn, void *user_data);
int parallel_evaluate(bpl_net *net, const bpl_dataset *ds, double *accuracy, double *loss);
int parallel_save(const bpl_net *net, const char *path);

/* ---- report.c: the config line and the final line */
void print_header(const struct options *opt, struct session *s);
void print_final(const struct trainer *t);

#endif
