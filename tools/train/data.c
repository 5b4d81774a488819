/*
 * data.c - the MNIST files: where they are, the training file split into
 * training and validation images, and what to say when they are missing.
 */
#include "train.h"

#include <stdio.h>
#include <stdlib.h>

const char default_data_dir[] = "./data/mnist";
static const char *const mnist_files[] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

static const char *data_dir(const struct options *opt)
{
    const char *env = getenv("BIOPLAUS_MNIST_DIR");
    if (opt->data_dir)
        return opt->data_dir;
    return env && env[0] ? env : default_data_dir;
}

static int data_error(int status, const char *dir)
{
    library_error(status);
    if (status != BPL_ERR_IO && status != BPL_ERR_FORMAT)
        return EXIT_FAILURE;
    fprintf(stderr,
            "%s: expected %s, %s, %s and %s (gzipped or not) in '%s'; "
            "examples/get-mnist.sh %s (in libbioplaus's sources) downloads them, or use "
            "--data DIR or BIOPLAUS_MNIST_DIR\n",
            program, mnist_files[0], mnist_files[1], mnist_files[2], mnist_files[3], dir,
            dir);
    return EXIT_FAILURE;
}

/* Split the official training file into training and validation images. */
static int split_training_file(const struct options *opt, struct session *s,
                               const bpl_dataset *full)
{
    size_t n = bpl_dataset_example_count(full);
    if (opt->val >= n)
        return usage_error("--val %zu leaves no training images: the file holds %zu",
                           opt->val, n);
    size_t n_train = n - opt->val;
    if (opt->limit && opt->limit < n_train)
        n_train = opt->limit;
    int rc = bpl_dataset_slice(&s->train, full, 0, n_train);
    if (rc == BPL_OK && opt->val)
        rc = bpl_dataset_slice(&s->val, full, n - opt->val, opt->val);
    return rc == BPL_OK ? 0 : library_error(rc);
}

/* The net was built for MNIST's shape before the files were read. */
static int check_data_shape(const struct session *s)
{
    size_t features = bpl_dataset_features(s->test), classes = bpl_dataset_targets(s->test);
    if (features == MNIST_FEATURES && classes == MNIST_CLASSES)
        return 0;
    fprintf(stderr, "%s: the images in '%s' have %zu pixels and %zu classes; this program "
                    "trains on %d pixels (28x28) and %d classes\n",
            program, s->data_dir, features, classes, MNIST_FEATURES, MNIST_CLASSES);
    return EXIT_FAILURE;
}

/* The training file only when there is training to do. */
int load_data(const struct options *opt, struct session *s)
{
    bpl_dataset *full = NULL;
    s->data_dir = data_dir(opt);
    int rc = opt->epochs ? bpl_dataset_load_mnist(&full, s->data_dir, BPL_MNIST_TRAIN)
                         : BPL_OK;
    if (rc != BPL_OK)
        return data_error(rc, s->data_dir);
    rc = bpl_dataset_load_mnist(&s->test, s->data_dir, BPL_MNIST_TEST);
    if (rc != BPL_OK) {
        bpl_dataset_destroy(full);
        return data_error(rc, s->data_dir);
    }
    int status = full ? split_training_file(opt, s, full) : 0;
    bpl_dataset_destroy(full); /* the slices are copies: free the 47 MB now */
    return status ? status : check_data_shape(s);
}
