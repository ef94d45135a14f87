/* Worker threads for CPU-heavy work (parsing pages) off the event loop. The loop submits a
 * job; a worker runs its work function; the loop takes finished jobs back through one
 * wake-up (an eventfd it watches) and calls each job's done function there. A job's
 * argument belongs to the worker while its work runs and to the loop otherwise, so work
 * must touch nothing but its argument. Workers run at a lower scheduling priority than the
 * loop (SCHED_BATCH, nice 10): cached answers keep their latency when every core parses. */
#ifndef MOVIESD_POOL_H
#define MOVIESD_POOL_H

#include <stddef.h>

struct event_base;
struct pool;
struct pool_job;

typedef void (*pool_fn)(void *arg);

/* threads 0 runs each job's work on the loop, inside pool_submit (its done function still
 * runs later, from the loop, as with workers). NULL if the threads could not be made. */
struct pool *pool_new(struct event_base *base, int threads);
/* Stops the workers once their current jobs are through and frees every job left with
 * its discard function, never its done function. Accepts NULL. */
void pool_free(struct pool *p);

/* Where a job joins the queue: behind the others, or ahead of them for work a client
 * waits on. */
enum pool_position { POOL_BACK, POOL_FRONT };

/* Queues work(arg) for a worker; done(arg) follows on the loop, never from inside
 * pool_submit or pool_cancel. discard(arg) frees arg of a job that was cancelled (or left
 * at pool_free). Returns the job, valid until done runs or the job is cancelled. */
struct pool_job *pool_submit(struct pool *p, pool_fn work, pool_fn done, pool_fn discard,
                             void *arg, enum pool_position position);
/* done will not be called; arg is discarded at once if no worker has it, else as soon as
 * its worker is through. */
void pool_cancel(struct pool_job *job);

int pool_threads(const struct pool *p);
size_t pool_queued(struct pool *p);     /* jobs waiting for a worker */

#endif
