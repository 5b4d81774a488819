/*
 * test_api_library.c - the library as a whole: version numbers and strings,
 * status codes and error messages (per thread), the names of enumerations,
 * the BLAS back-end.
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

START_TEST(test_version)
{
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", BPL_VERSION_MAJOR, BPL_VERSION_MINOR,
             BPL_VERSION_PATCH);
    ck_assert_str_eq(BPL_VERSION_STRING, expected);
    ck_assert_str_eq(bpl_version_string(), BPL_VERSION_STRING);
    ck_assert_uint_eq(bpl_version_number(), BPL_VERSION_NUMBER);
    ck_assert_uint_eq(bpl_version_number(), BPL_VERSION_MAJOR * 10000u +
                                                BPL_VERSION_MINOR * 100u + BPL_VERSION_PATCH);
}
END_TEST

static const int all_statuses[] = {
    BPL_OK,          BPL_ERR_INVALID_ARG, BPL_ERR_NOMEM,    BPL_ERR_SHAPE,
    BPL_ERR_STATE,   BPL_ERR_UNSUPPORTED, BPL_ERR_VERSION,  BPL_ERR_IO,
    BPL_ERR_FORMAT,  BPL_ERR_NUMERIC,     BPL_ERR_CALLBACK, BPL_ERR_NOT_FOUND,
    BPL_ERR_OVERFLOW, BPL_ERR_RANGE,      BPL_ERR_INTERNAL};
#define N_STATUSES (sizeof all_statuses / sizeof all_statuses[0])

START_TEST(test_strerror)
{
    /* The values are ABI: pin them. */
    ck_assert_int_eq(BPL_ERR_INVALID_ARG, -1);
    ck_assert_int_eq(BPL_ERR_RANGE, -13);
    ck_assert_int_eq(BPL_ERR_INTERNAL, -99);
    for (size_t i = 0; i < N_STATUSES; i++) {
        const char *s = bpl_strerror(all_statuses[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(s[0] != '\0', "empty description of %d", all_statuses[i]);
        ck_assert_str_ne(s, "unknown status code");
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(s, bpl_strerror(all_statuses[j]));
    }
    ck_assert_str_eq(bpl_strerror(BPL_ERR_SHAPE), "shape mismatch");
    static const int unknown[] = {1, 42, -14, -98, -100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        ck_assert_str_eq(bpl_strerror(unknown[i]), "unknown status code");
}
END_TEST

struct thread_report {
    int fresh_is_empty;
    int rc;
    char msg[256];
};

static void *other_thread(void *arg)
{
    struct thread_report *r = arg;
    const char *msg = bpl_last_error_message();
    r->fresh_is_empty = msg != NULL && msg[0] == '\0';
    bpl_net *net;
    r->rc = bpl_net_create(&net, 0, 1);
    snprintf(r->msg, sizeof r->msg, "%s", bpl_last_error_message());
    return NULL;
}

START_TEST(test_error_messages)
{
    ck_assert_ptr_nonnull(bpl_last_error_message());
    ck_assert_int_eq(bpl_error_set(BPL_ERR_RANGE, "my rule: alpha too large"), BPL_ERR_RANGE);
    ck_assert_str_eq(bpl_last_error_message(), "my rule: alpha too large");
    /* NULL is treated as "": still a valid string */
    ck_assert_int_eq(bpl_error_set(BPL_ERR_IO, NULL), BPL_ERR_IO);
    ck_assert_ptr_nonnull(bpl_last_error_message());
    ck_assert_str_eq(bpl_last_error_message(), "");
    ck_assert_int_eq(bpl_error_set(BPL_OK, "fine"), BPL_OK);

    BPL_EXPECT_ERROR(bpl_net_create(NULL, 3, 0), BPL_ERR_INVALID_ARG, "bpl_net_create");

    /* Messages are per thread: a new thread starts with "" and its failures
     * do not touch this thread's message. */
    bpl_error_set(BPL_ERR_STATE, "main thread message");
    struct thread_report report = {0};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, other_thread, &report), 0);
    ck_assert_int_eq(pthread_join(thread, NULL), 0);
    ck_assert(report.fresh_is_empty);
    ck_assert_int_eq(report.rc, BPL_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(report.msg, "bpl_net_create"));
    ck_assert_str_eq(bpl_last_error_message(), "main thread message");
}
END_TEST

struct enum_names {
    const char *(*name)(int);
    int (*from_name)(const char *, int *);
    int first, last;
    const char *function;
    const char *example;
    int example_value;
};

START_TEST(test_enum_names)
{
    const struct enum_names tables[] = {
        {bpl_activation_name, bpl_activation_from_name, BPL_ACT_LINEAR, BPL_ACT_SOFTMAX,
         "bpl_activation_from_name", "tanh", BPL_ACT_TANH},
        {bpl_init_name, bpl_init_from_name, BPL_INIT_GLOROT_UNIFORM, BPL_INIT_CONSTANT,
         "bpl_init_from_name", "glorot_uniform", BPL_INIT_GLOROT_UNIFORM},
        {bpl_loss_name, bpl_loss_from_name, BPL_LOSS_CROSS_ENTROPY, BPL_LOSS_MSE,
         "bpl_loss_from_name", "cross_entropy", BPL_LOSS_CROSS_ENTROPY},
        {bpl_optimizer_name, bpl_optimizer_from_name, BPL_OPT_SGD, BPL_OPT_ADAM,
         "bpl_optimizer_from_name", "adam", BPL_OPT_ADAM},
    };
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        const struct enum_names *e = &tables[t];
        for (int v = e->first; v <= e->last; v++) {
            const char *name = e->name(v);
            ck_assert_ptr_nonnull(name);
            ck_assert_msg(name[0] != '\0' && strcmp(name, "unknown") != 0,
                          "%s: value %d has no name", e->function, v);
            int back = -1;
            BPL_OK_OR_FAIL(e->from_name(name, &back));
            ck_assert_int_eq(back, v);
        }
        ck_assert_str_eq(e->name(e->example_value), e->example);
        static const int outside[] = {-1, -100, 1000, INT_MIN, INT_MAX};
        for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
            ck_assert_str_eq(e->name(outside[i]), "unknown");
        ck_assert_str_eq(e->name(e->first - 1), "unknown");
        ck_assert_str_eq(e->name(e->last + 1), "unknown");
        int out = 12345;
        BPL_EXPECT_ERROR(e->from_name("no-such-name", &out), BPL_ERR_NOT_FOUND, e->function);
        BPL_EXPECT_ERROR(e->from_name("", &out), BPL_ERR_NOT_FOUND, e->function);
        BPL_EXPECT_ERROR(e->from_name("unknown", &out), BPL_ERR_NOT_FOUND, e->function);
        BPL_EXPECT_ERROR(e->from_name(NULL, &out), BPL_ERR_INVALID_ARG, e->function);
        BPL_EXPECT_ERROR(e->from_name(e->example, NULL), BPL_ERR_INVALID_ARG, e->function);
    }
    int act;
    BPL_OK_OR_FAIL(bpl_activation_from_name("relu", &act));
    ck_assert_int_eq(act, BPL_ACT_RELU);
}
END_TEST

START_TEST(test_blas)
{
    const char *backend = bpl_blas_backend();
    ck_assert_ptr_nonnull(backend);
    ck_assert_msg(strcmp(backend, "openblas") == 0 || strcmp(backend, "blis") == 0 ||
                      strcmp(backend, "cblas") == 0 || strcmp(backend, "builtin") == 0,
                  "unexpected backend '%s'", backend);
    const char *info = bpl_blas_info();
    ck_assert_ptr_nonnull(info);
    ck_assert_msg(info[0] != '\0', "empty BLAS info");

    BPL_EXPECT_ERROR(bpl_set_thread_count(0), BPL_ERR_RANGE, "bpl_set_thread_count");
    BPL_EXPECT_ERROR(bpl_set_thread_count(-4), BPL_ERR_RANGE, "bpl_set_thread_count");
    BPL_OK_OR_FAIL(bpl_set_thread_count(1));
    ck_assert_int_eq(bpl_thread_count(), 1);
    /* Every backend takes more: the library's own threads split conv work. */
    BPL_OK_OR_FAIL(bpl_set_thread_count(2));
    ck_assert_int_eq(bpl_thread_count(), 2);
    BPL_OK_OR_FAIL(bpl_set_thread_count(1));
    ck_assert_int_ge(bpl_thread_count(), 1);
}
END_TEST

static Suite *library_suite(void)
{
    Suite *s = suite_create("api_library");
    TCase *tc = tcase_create("library");
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_error_messages);
    tcase_add_test(tc, test_enum_names);
    tcase_add_test(tc, test_blas);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(library_suite());
}
