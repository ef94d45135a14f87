/* A fixed set of worker threads, one mutex, a queue of jobs to run and a queue of jobs
 * done. A worker that finishes a job when the done queue is empty writes the eventfd once;
 * the loop then takes the whole done queue in one go. Cancelling marks a job that a worker
 * holds, so the result of cancelled work is discarded on the loop, never delivered. */
#define _GNU_SOURCE
#include "pool.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "util.h"

/* Lower than the loop's 0, not so low that a busy host starves parsing altogether. */
#define WORKER_NICE 10
/* Least time between two returns of free memory to the system (see trim_when_idle). */
#define TRIM_INTERVAL 1.0

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct pool_job {
    struct pool *pool;
    pool_fn work, done, discard;
    void *arg;
    enum job_state state;   /* under the pool's mutex */
    int cancelled;          /* under the pool's mutex */
    TAILQ_ENTRY(pool_job) link;
};

TAILQ_HEAD(job_queue, pool_job);

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    struct job_queue queued, done;   /* under lock */
    size_t queued_count;             /* under lock */
    int stopping;                    /* under lock */
    int started;                     /* workers named and lowered, under lock */
    pthread_t *workers;
    int threads;
    int wake_fd;
    struct event *wake;
    size_t outstanding;              /* submitted, not yet delivered or discarded (loop only) */
    struct event *trim_timer;
    double last_trim;
};

/* Lowers the calling thread's priority; on Linux nice and policy are per thread. */
static void lower_priority(void)
{
    struct sched_param param = {.sched_priority = 0};
    if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &param) != 0)
        log_debug("parse worker: SCHED_BATCH refused");
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE) != 0)
        log_debug("parse worker: nice %d refused: %s", WORKER_NICE, strerror(errno));
}

static void *worker_main(void *arg)
{
    struct pool *p = arg;
    pthread_setname_np(pthread_self(), "moviesd-parse");
    lower_priority();
    pthread_mutex_lock(&p->lock);
    p->started++;
    pthread_cond_broadcast(&p->work_ready);
    for (;;) {
        while (!p->stopping && TAILQ_EMPTY(&p->queued))
            pthread_cond_wait(&p->work_ready, &p->lock);
        if (p->stopping)
            break;
        struct pool_job *job = TAILQ_FIRST(&p->queued);
        TAILQ_REMOVE(&p->queued, job, link);
        p->queued_count--;
        job->state = JOB_RUNNING;
        pthread_mutex_unlock(&p->lock);
        job->work(job->arg);
        pthread_mutex_lock(&p->lock);
        job->state = JOB_DONE;
        int was_empty = TAILQ_EMPTY(&p->done);
        TAILQ_INSERT_TAIL(&p->done, job, link);
        if (was_empty) {
            uint64_t one = 1;
            /* Fails only when the counter is full, and then the loop is woken anyway. */
            ssize_t n = write(p->wake_fd, &one, sizeof one);
            (void)n;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Gives the heap's free pages back to the system. A burst of parsing leaves the workers'
 * malloc arenas holding what its pages and trees took (50 cities of 126 KB pages at 64
 * connections: RSS 34 MB after, 27 MB trimmed), which glibc keeps for reuse otherwise. */
static void trim_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pool *p = arg;
    if (p->outstanding > 0)
        return;
    malloc_trim(0);
    p->last_trim = clock_monotonic();
}

/* Trims once the pool is idle: at once, or when TRIM_INTERVAL has passed since the last. */
static void trim_when_idle(struct pool *p)
{
    if (p->outstanding > 0 || evtimer_pending(p->trim_timer, NULL))
        return;
    double wait = p->last_trim + TRIM_INTERVAL - clock_monotonic();
    if (wait <= 0) {
        trim_now(-1, 0, p);
        return;
    }
    struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
    evtimer_add(p->trim_timer, &tv);
}

/* The loop's side: every finished job, delivered or discarded, in the order they ended. */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct pool *p = arg;
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count);
    (void)n;
    struct job_queue finished = TAILQ_HEAD_INITIALIZER(finished);
    pthread_mutex_lock(&p->lock);
    TAILQ_CONCAT(&finished, &p->done, link);
    pthread_mutex_unlock(&p->lock);
    struct pool_job *job;
    while ((job = TAILQ_FIRST(&finished)) != NULL) {
        TAILQ_REMOVE(&finished, job, link);
        /* Only the loop cancels, so reading the flag here needs no lock. */
        if (job->cancelled)
            job->discard(job->arg);
        else
            job->done(job->arg);
        free(job);
        p->outstanding--;
    }
    trim_when_idle(p);
}

struct pool *pool_new(struct event_base *base, int threads)
{
    struct pool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_ready, NULL);
    TAILQ_INIT(&p->queued);
    TAILQ_INIT(&p->done);
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wake_fd < 0) {
        log_error("parse pool: eventfd: %s", strerror(errno));
        pthread_cond_destroy(&p->work_ready);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    p->wake = event_new(base, p->wake_fd, EV_READ | EV_PERSIST, deliver, p);
    event_add(p->wake, NULL);
    p->trim_timer = evtimer_new(base, trim_now, p);
    p->last_trim = -TRIM_INTERVAL;
    p->workers = xcalloc(threads > 0 ? (size_t)threads : 1, sizeof *p->workers);
    for (int i = 0; i < threads; i++) {
        int err = pthread_create(&p->workers[i], NULL, worker_main, p);
        if (err != 0) {
            log_error("parse pool: starting worker %d of %d: %s", i + 1, threads, strerror(err));
            pool_free(p);
            return NULL;
        }
        p->threads++;
    }
    /* Startup waits for every worker to be named and lowered: from then on the threads
     * are what /proc and the logs say they are. */
    pthread_mutex_lock(&p->lock);
    while (p->started < p->threads)
        pthread_cond_wait(&p->work_ready, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return p;
}

void pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work_ready);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->threads; i++)
        pthread_join(p->workers[i], NULL);
    struct job_queue *queues[] = {&p->queued, &p->done};
    for (size_t q = 0; q < 2; q++) {
        struct pool_job *job;
        while ((job = TAILQ_FIRST(queues[q])) != NULL) {
            TAILQ_REMOVE(queues[q], job, link);
            job->discard(job->arg);
            free(job);
        }
    }
    event_free(p->wake);
    event_free(p->trim_timer);
    close(p->wake_fd);
    free(p->workers);
    pthread_cond_destroy(&p->work_ready);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

struct pool_job *pool_submit(struct pool *p, pool_fn work, pool_fn done, pool_fn discard,
                             void *arg, enum pool_position position)
{
    struct pool_job *job = xcalloc(1, sizeof *job);
    job->pool = p;
    job->work = work;
    job->done = done;
    job->discard = discard;
    job->arg = arg;
    p->outstanding++;
    if (p->threads == 0) {
        job->state = JOB_RUNNING;
        work(arg);
    }
    pthread_mutex_lock(&p->lock);
    if (p->threads == 0) {
        job->state = JOB_DONE;
        TAILQ_INSERT_TAIL(&p->done, job, link);
        event_active(p->wake, EV_READ, 0);
    } else {
        job->state = JOB_QUEUED;
        if (position == POOL_FRONT)
            TAILQ_INSERT_HEAD(&p->queued, job, link);
        else
            TAILQ_INSERT_TAIL(&p->queued, job, link);
        p->queued_count++;
        pthread_cond_signal(&p->work_ready);
    }
    pthread_mutex_unlock(&p->lock);
    return job;
}

void pool_cancel(struct pool_job *job)
{
    struct pool *p = job->pool;
    pthread_mutex_lock(&p->lock);
    if (job->state == JOB_QUEUED) {
        TAILQ_REMOVE(&p->queued, job, link);
        p->queued_count--;
        pthread_mutex_unlock(&p->lock);
        job->discard(job->arg);
        free(job);
        p->outstanding--;
        trim_when_idle(p);
        return;
    }
    job->cancelled = 1;
    pthread_mutex_unlock(&p->lock);
}

int pool_threads(const struct pool *p)
{
    return p->threads;
}

size_t pool_queued(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->queued_count;
    pthread_mutex_unlock(&p->lock);
    return n;
}
