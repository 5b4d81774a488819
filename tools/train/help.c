/*
 * help.c - what the program says about itself and the rules without
 * training: --help, --version and --list-params.
 */
#include "train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print "a, b, c" after `indent` spaces, wrapped before column 80. */
static void print_wrapped_names(int indent, const char *(*name_at)(size_t))
{
    int column = printf("%*s", indent, "");
    for (size_t i = 0; name_at(i) != NULL; i++) {
        const char *separator = name_at(i + 1) ? "," : "";
        if (i > 0 && column + 1 + (int)strlen(name_at(i)) + 1 > 79)
            column = printf("\n%*s", indent, "") - 1;
        else if (i > 0)
            column += printf(" ");
        column += printf("%s%s", name_at(i), separator);
    }
    printf("\n");
}

void print_help(void)
{
    char rules[256];
    join_names(rules, sizeof rules, rule_name_at);
    printf("Usage: %s [OPTION]...\n"
           "Train a net on MNIST with a learning rule and report its\n"
           "test accuracy.  Options marked (R) default to the rule's recommended\n"
           "training set-up, which --list-params shows.\n\n", program);
    printf("Model and rule:\n"
           "  --rule NAME         learning rule: %s (default: backprop)\n"
           "  --hidden SIZES      comma-separated hidden layer sizes; \"\" or 0 for none (R)\n"
           "  --arch SPEC         the hidden layers instead of --hidden: comma-separated\n"
           "                      conv:C:K[:S[:P]] (C maps, KxK kernel, stride S = 1,\n"
           "                      zero padding P = 0), maxpool:K[:S], avgpool:K[:S]\n"
           "                      (stride = K) and dense:N, over 1x28x28 images; e.g.\n"
           "                      LeNet-5: conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,\n"
           "                      conv:120:5,dense:84\n"
           "  --activation NAME   hidden layers: tanh, relu or sigmoid (R); the output\n"
           "                      layer is softmax with cross-entropy; refused for rules\n"
           "                      whose model fixes it (segregated, microcircuit)\n"
           "  --init NAME         weight initialiser (R), one of\n",
           rules);
    print_wrapped_names(22, init_name_at);
    printf("  --optimizer NAME    sgd, momentum, rmsprop or adam (R)\n"
           "  --lr X              learning rate, positive (R)\n"
           "  --lr-decay F        multiply the learning rate by F after every epoch (R)\n"
           "  --freeze LAYERS     comma-separated layers (0 = the first hidden) whose\n"
           "                      weights and biases stay fixed (default: none)\n"
           "  --param KEY=VALUE   set any rule hyperparameter; repeatable; applied after\n"
           "                      the recommendation, --optimizer and --lr (default: none)\n"
           "  --list-params       list the rule's hyperparameters and recommended set-up\n"
           "                      and exit\n"
           "  --seed N            seed of every random choice, 64-bit (default: 1)\n\n");
    printf("Training:\n"
           "  --epochs N          passes over the training images (R; with --load: 0,\n"
           "                      evaluate only)\n"
           "  --batch N           mini-batch size (R)\n"
           "  --val N             hold out the last N of the %d training images for\n"
           "                      validation; 0 for none (default: 5000)\n"
           "  --limit N           train on the first N of the remaining training images\n"
           "                      (default: all of them)\n"
           "  --threads N         BLAS threads (default: the BLAS library's own)\n\n",
           MNIST_TRAIN_IMAGES);
    printf("Data and output:\n"
           "  --data DIR          directory of the four MNIST IDX files, gzipped or not\n"
           "                      (default: $BIOPLAUS_MNIST_DIR if set, else %s)\n"
           "  --csv FILE          write one row per epoch: epoch,train_loss,val_accuracy,\n"
           "                      val_loss,test_accuracy,test_loss,seconds,cumulative_seconds\n"
           "                      (default: none)\n"
           "  --save FILE         save the net at the end; checked before training\n"
           "                      (default: none)\n"
           "  --load FILE         start from a net saved with --save: evaluate it on the\n"
           "                      test set or, with --epochs N, train it N more epochs\n"
           "                      with its saved rule and hyperparameters (--optimizer,\n"
           "                      --lr and --param override them)\n"
           "  --quiet             print only the final line\n"
           "  --help              show this help and exit\n"
           "  --version           show the library version and BLAS backend and exit\n\n"
           "The first line, config ..., names the values taken from the rule's\n"
           "recommendation in recommended=...  The last line is: final test_accuracy=A\n"
           "test_error=PERCENT epochs=N seconds=S (S: training time, evaluation excluded,\n"
           "3 decimals or more).  Exit status: 0 success, 1 failure, 2 usage error.\n"
           "examples/get-mnist.sh, in libbioplaus's sources, downloads the data.\n",
           default_data_dir);
}

void print_version(void)
{
    printf("%s (libbioplaus) %s\n", program, bpl_version_string());
    if (bpl_version_number() != BPL_VERSION_NUMBER)
        printf("built with the header of version %s\n", BPL_VERSION_STRING);
    printf("BLAS backend: %s\nBLAS info: %s\n", bpl_blas_backend(), bpl_blas_info());
}

static void print_param(const bpl_rule *rule, size_t index)
{
    static const char *const kinds[] = {"real", "int", "bool", "choice"};
    const char *name, *choices, *doc;
    int kind;
    double def, lo, hi;
    if (bpl_rule_param_info(rule, index, &name, &kind, &def, &lo, &hi, &choices, &doc))
        return;
    char def_text[64], range[128];
    if (kind == BPL_PARAM_CHOICE) {
        choice_name(choices, def, def_text, sizeof def_text);
        snprintf(range, sizeof range, "%s", choices);
    } else if (kind == BPL_PARAM_BOOL) {
        snprintf(def_text, sizeof def_text, "%s", def != 0.0 ? "true" : "false");
        snprintf(range, sizeof range, "true|false");
    } else {
        /* Enough digits that an upper bound of 0.999999999 does not read as 1. */
        snprintf(def_text, sizeof def_text, "%.10g", def);
        snprintf(range, sizeof range, "[%.10g, %.10g]", lo, hi);
    }
    const char *kind_name = kind >= 0 && kind < 4 ? kinds[kind] : "?";
    printf("  %-16s %-6s  default %-8s  %-26s  %s\n", name, kind_name, def_text, range, doc);
}

static void print_recommendation(const bpl_rule *rule)
{
    printf("recommended set-up (taken for every option left out):\n");
    for (size_t i = 0; i < bpl_rule_recommendation_count(rule); i++) {
        const char *key, *value;
        if (bpl_rule_recommendation(rule, i, &key, &value) == BPL_OK)
            printf("  %-16s %s\n", key, value[0] ? value : "\"\"");
    }
}

int list_params(const struct options *opt)
{
    bpl_rule *rule;
    int rc = bpl_rule_create_builtin(&rule, opt->rule);
    if (rc != BPL_OK)
        return library_error(rc);
    printf("rule %s: %s\n", bpl_rule_name(rule), bpl_rule_description(rule));
    printf("hyperparameters (set with --param KEY=VALUE):\n");
    for (size_t i = 0; i < bpl_rule_param_count(rule); i++)
        print_param(rule, i);
    print_recommendation(rule);
    bpl_rule_destroy(rule);
    return EXIT_SUCCESS;
}
