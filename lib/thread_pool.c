/*
 * thread_pool.c - the library's own threads, for the work the BLAS's
 * threads do not do: a conv layer's im2col, col2im, bias and activation
 * passes (and its products with them), one fixed slice of the batch per
 * thread.
 *
 * bpl_set_thread_count sets how many slices (tasks) an operation is cut
 * into and starts the workers it needs, once: nothing is allocated or
 * started during a step.  Task i always runs the same slice, whichever
 * thread runs it, so results depend on the thread count alone, never on
 * timing.  One operation uses the workers at a time: a net training on
 * another user thread meanwhile runs its tasks one after another on its
 * own thread, with the same slices and so the same results.  While the
 * workers run tasks, the BLAS runs single-threaded: the tasks are the
 * parallelism.
 */
#include "bpl_internal.h"

#include <pthread.h>
#include <stdatomic.h>

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_t workers[BPL__MAX_THREADS - 1];
    /* The generation each worker was started at: the operations it must
     * run are the later ones, whenever it first takes the lock. */
    unsigned long born[BPL__MAX_THREADS - 1];
    size_t n_workers;          /* started; worker w runs task w + 1 */
    int busy;                  /* an operation is using the workers */
    int stop;                  /* the library is unloading */
    unsigned long generation;  /* counts operations: a worker's signal to run */
    size_t pending;            /* workers yet to finish the operation's tasks */
    bpl__task_fn fn;
    void *ctx;
    size_t n_tasks;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

/* The thread count set (1 until bpl_set_thread_count says otherwise):
 * read by operations on any thread. */
static _Atomic size_t pool_threads = 1;

static void *worker_main(void *arg)
{
    size_t task = (size_t)(uintptr_t)arg;
    pthread_mutex_lock(&pool.lock);
    unsigned long seen = pool.born[task - 1];
    for (;;) {
        while (pool.generation == seen && !pool.stop)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (pool.stop)
            break;
        seen = pool.generation;
        if (task >= pool.n_tasks)
            continue;
        bpl__task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        size_t n = pool.n_tasks;
        pthread_mutex_unlock(&pool.lock);
        fn(ctx, task, n);
        pthread_mutex_lock(&pool.lock);
        if (--pool.pending == 0)
            pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* A child of fork has the calling thread alone: the workers stay with the
 * parent.  The child forgets them (its operations then run their slices
 * one after another, with the same results) and gets the lock unheld. */
static void before_fork(void)
{
    pthread_mutex_lock(&pool.lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&pool.lock);
}

static void after_fork_child(void)
{
    pool.n_workers = 0;
    pool.busy = 0;
    pthread_mutex_unlock(&pool.lock);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void watch_forks(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

int bpl__pool_set_threads(size_t n)
{
    if (n > BPL__MAX_THREADS)
        n = BPL__MAX_THREADS;
    if (n > 1)
        pthread_once(&fork_once, watch_forks);
    pthread_mutex_lock(&pool.lock);
    int rc = BPL_OK;
    while (pool.n_workers + 1 < n) {
        size_t task = pool.n_workers + 1;
        pool.born[pool.n_workers] = pool.generation;
        if (pthread_create(&pool.workers[pool.n_workers], NULL, worker_main,
                           (void *)(uintptr_t)task) != 0) {
            rc = bpl__fail(BPL_ERR_NOMEM, "bpl_set_thread_count: cannot start thread %zu of %zu",
                           task + 1, n);
            break;
        }
        pool.n_workers++;
    }
    pthread_mutex_unlock(&pool.lock);
    if (rc == BPL_OK)
        atomic_store(&pool_threads, n);
    return rc;
}

size_t bpl__pool_threads(void)
{
    return atomic_load(&pool_threads);
}

void bpl__pool_run(bpl__task_fn fn, void *ctx, size_t n_tasks)
{
    if (n_tasks <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    if (pool.busy || pool.n_workers + 1 < n_tasks) {
        pthread_mutex_unlock(&pool.lock);
        for (size_t t = 0; t < n_tasks; t++) /* the same slices, one after another */
            fn(ctx, t, n_tasks);
        return;
    }
    pool.busy = 1;
    bpl__blas_set_threads(1);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_tasks = n_tasks;
    pool.pending = n_tasks - 1;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    fn(ctx, 0, n_tasks);
    pthread_mutex_lock(&pool.lock);
    while (pool.pending)
        pthread_cond_wait(&pool.done, &pool.lock);
    bpl__blas_set_threads(atomic_load(&pool_threads));
    pool.busy = 0;
    pthread_mutex_unlock(&pool.lock);
}

#if defined(__GNUC__)
/* Stop and join the workers when the library unloads (a dlclose, or the
 * process's exit), so that no thread runs code that is gone. */
__attribute__((destructor)) static void pool_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stop = 1;
    pthread_cond_broadcast(&pool.wake);
    size_t n = pool.n_workers;
    pthread_mutex_unlock(&pool.lock);
    for (size_t w = 0; w < n; w++)
        pthread_join(pool.workers[w], NULL);
}
#endif
