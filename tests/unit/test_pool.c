/* The parse pool: work runs on workers at a lower priority, done runs on the loop and
 * never inside submit or cancel, cancelled and leftover work is discarded and never
 * delivered, front jobs overtake. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "check.h"
#include "pool.h"

static pthread_t loop_thread;

/* A gate workers wait at, so a test can hold a worker inside a job. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open = 1, gate_waiting;

static void gate_close(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = 0;
    gate_waiting = 0;
    pthread_mutex_unlock(&gate_lock);
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* Waits (on the test's thread) until n workers stand at the gate. */
static void gate_wait_for(int n)
{
    for (;;) {
        pthread_mutex_lock(&gate_lock);
        int waiting = gate_waiting;
        pthread_mutex_unlock(&gate_lock);
        if (waiting >= n)
            return;
        usleep(1000);
    }
}

struct job {
    int id;
    int worked, done, discarded;
    int on_loop_thread;     /* where work ran */
    int nice, policy;       /* the worker's, seen from inside the work */
    int *order, *order_n;   /* done order */
};

static void work(void *arg)
{
    struct job *j = arg;
    pthread_mutex_lock(&gate_lock);
    gate_waiting++;
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    j->on_loop_thread = pthread_equal(pthread_self(), loop_thread);
    j->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    j->policy = sched_getscheduler(0);
    j->worked++;
}

static int inside_call;   /* set while the test is inside pool_submit or pool_cancel */
static int misplaced;     /* done or discard seen inside a call, or off the loop thread */

static void done(void *arg)
{
    struct job *j = arg;
    misplaced += inside_call || !pthread_equal(pthread_self(), loop_thread);
    j->done++;
    if (j->order)
        j->order[(*j->order_n)++] = j->id;
}

static void discard(void *arg)
{
    struct job *j = arg;
    misplaced += !pthread_equal(pthread_self(), loop_thread);
    j->discarded++;
}

static struct pool_job *submit(struct pool *p, struct job *j, enum pool_position pos)
{
    inside_call = 1;
    struct pool_job *pj = pool_submit(p, work, done, discard, j, pos);
    inside_call = 0;
    return pj;
}

/* Runs the loop for a millisecond: long enough to take what the workers finished. */
static void run_a_millisecond(struct event_base *base)
{
    struct timeval tick = {0, 1000};
    event_base_loopexit(base, &tick);
    event_base_dispatch(base);
}

/* Runs the loop until every job of jobs[0..n) is done or discarded, or 10 s pass. */
static int run_until_settled(struct event_base *base, struct job *jobs, int n)
{
    for (int turn = 0; turn < 10000; turn++) {
        int settled = 1;
        for (int i = 0; i < n; i++)
            settled &= jobs[i].done + jobs[i].discarded == 1;
        if (settled)
            return 1;
        run_a_millisecond(base);
    }
    return 0;
}

static void test_jobs_run_on_workers_and_come_back_on_the_loop(struct event_base *base)
{
    struct pool *p = pool_new(base, 2);
    CHECK(p != NULL);
    CHECK_INT(pool_threads(p), 2);
    enum { N = 200 };
    static struct job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct job){.id = i};
        submit(p, &jobs[i], POOL_BACK);
    }
    int none_done_at_once = 1;
    for (int i = 0; i < N; i++)
        none_done_at_once &= jobs[i].done == 0;
    CHECK(none_done_at_once);
    CHECK(run_until_settled(base, jobs, N));
    int off_loop = 0, lowered = 0, batch = 0, once = 0;
    for (int i = 0; i < N; i++) {
        off_loop += !jobs[i].on_loop_thread;
        lowered += jobs[i].nice == 10;
        batch += jobs[i].policy == SCHED_BATCH;
        once += jobs[i].worked == 1 && jobs[i].done == 1 && jobs[i].discarded == 0;
    }
    CHECK_INT(off_loop, N);
    CHECK_INT(lowered, N);
    CHECK_INT(batch, N);
    CHECK_INT(once, N);
    CHECK_INT(misplaced, 0);
    CHECK_INT(pool_queued(p), 0);
    pool_free(p);
}

static void test_cancel_discards_and_never_delivers(struct event_base *base)
{
    struct pool *p = pool_new(base, 1);
    struct job running = {.id = 1}, queued = {.id = 2}, kept = {.id = 3};
    gate_close();
    struct pool_job *r = submit(p, &running, POOL_BACK);
    gate_wait_for(1);   /* the one worker holds "running" */
    struct pool_job *q = submit(p, &queued, POOL_BACK);
    submit(p, &kept, POOL_BACK);
    CHECK_INT(pool_queued(p), 2);
    inside_call = 1;
    pool_cancel(q);     /* nobody has it: discarded at once */
    inside_call = 0;
    CHECK_INT(queued.discarded, 1);
    CHECK_INT(pool_queued(p), 1);
    inside_call = 1;
    pool_cancel(r);     /* its worker has it: discarded once the worker is through */
    inside_call = 0;
    CHECK_INT(running.discarded, 0);
    gate_release();
    for (int turn = 0; turn < 10000 && (running.discarded == 0 || kept.done == 0); turn++)
        run_a_millisecond(base);
    CHECK_INT(running.worked, 1);
    CHECK_INT(running.done, 0);
    CHECK_INT(running.discarded, 1);
    CHECK_INT(queued.worked, 0);
    CHECK_INT(queued.done, 0);
    CHECK_INT(kept.done, 1);
    CHECK_INT(misplaced, 0);
    pool_free(p);
}

static void test_front_jobs_overtake(struct event_base *base)
{
    struct pool *p = pool_new(base, 1);
    int order[4], order_n = 0;
    struct job hold = {.id = 0, .order = order, .order_n = &order_n};
    struct job a = {.id = 1, .order = order, .order_n = &order_n};
    struct job b = {.id = 2, .order = order, .order_n = &order_n};
    struct job c = {.id = 3, .order = order, .order_n = &order_n};
    gate_close();
    submit(p, &hold, POOL_BACK);
    gate_wait_for(1);
    submit(p, &a, POOL_BACK);
    submit(p, &b, POOL_BACK);
    submit(p, &c, POOL_FRONT);
    gate_release();
    for (int turn = 0; turn < 10000 && order_n < 4; turn++)
        run_a_millisecond(base);
    CHECK_INT(order_n, 4);
    CHECK_INT(order[0], 0);
    CHECK_INT(order[1], 3);
    CHECK_INT(order[2], 1);
    CHECK_INT(order[3], 2);
    pool_free(p);
}

static void test_free_discards_what_is_left(struct event_base *base)
{
    struct pool *p = pool_new(base, 1);
    struct job held = {.id = 1}, waiting = {.id = 2};
    gate_close();
    submit(p, &held, POOL_BACK);
    gate_wait_for(1);
    submit(p, &waiting, POOL_BACK);
    gate_release();
    pool_free(p);   /* joins the worker; nothing is delivered after this */
    CHECK_INT(held.done, 0);
    CHECK_INT(held.discarded, 1);
    CHECK_INT(waiting.done, 0);
    CHECK_INT(waiting.discarded, 1);
    CHECK_INT(misplaced, 0);
}

static void test_no_threads_works_on_the_loop(struct event_base *base)
{
    struct pool *p = pool_new(base, 0);
    CHECK_INT(pool_threads(p), 0);
    struct job j = {.id = 1};
    submit(p, &j, POOL_BACK);
    CHECK_INT(j.worked, 1);     /* inside submit, on this thread */
    CHECK(j.on_loop_thread);
    CHECK_INT(j.done, 0);       /* but delivered later */
    CHECK(run_until_settled(base, &j, 1));
    CHECK_INT(j.done, 1);
    struct job c = {.id = 2};
    struct pool_job *pj = submit(p, &c, POOL_BACK);
    pool_cancel(pj);
    struct job after = {.id = 3};
    submit(p, &after, POOL_BACK);
    for (int turn = 0; turn < 10000 && after.done == 0; turn++)
        run_a_millisecond(base);
    CHECK_INT(c.done, 0);
    CHECK_INT(c.discarded, 1);
    CHECK_INT(after.done, 1);
    CHECK_INT(misplaced, 0);
    pool_free(p);
}

int main(void)
{
    loop_thread = pthread_self();
    struct event_base *base = event_base_new();
    test_jobs_run_on_workers_and_come_back_on_the_loop(base);
    test_cancel_discards_and_never_delivers(base);
    test_front_jobs_overtake(base);
    test_free_discards_what_is_left(base);
    test_no_threads_works_on_the_loop(base);
    event_base_free(base);
    return check_summary();
}
