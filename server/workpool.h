/*
 * workpool.h - a pthread pool whose jobs complete on the event loop
 *
 * work(arg) runs on a pool thread; done(arg) then runs on the loop thread.
 * Completions go through a locked list and one ev_async wake-up per batch
 * (ev_async is not a queue: many sends may coalesce into one callback).
 * Threads start lazily with the first job, so a daemon whose plugins never
 * use the pool never has threads.
 */
#ifndef WORKPOOL_H
#define WORKPOOL_H

#include <ev.h>
#include <pthread.h>

struct workpool_job;

struct workpool {
	struct ev_loop *loop;
	ev_async wakeup;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct workpool_job *todo_head, *todo_tail;	/* for the threads */
	struct workpool_job *done_head, *done_tail;	/* for the loop */
	pthread_t *threads;
	unsigned nthreads, started;
	unsigned outstanding;				/* submitted, done not run */
	int stopping;
};

int workpool_init(struct workpool *wp, struct ev_loop *loop, unsigned nthreads);
/* workpool_submit - queue a job; 0, or -1 (no memory / no thread) */
int workpool_submit(struct workpool *wp, void (*work)(void *),
    void (*done)(void *), void *arg);
/* workpool_destroy - finish every queued job, run every done, join */
void workpool_destroy(struct workpool *wp);

#endif
