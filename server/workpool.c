/*
 * workpool.c - thread pool with loop-side completion
 */
#include <stdlib.h>

#include "log.h"
#include "workpool.h"

struct workpool_job {
	struct workpool_job *next;
	void (*work)(void *);
	void (*done)(void *);
	void *arg;
};

/* workpool_run_done - run the completions queued so far, in order */
static void
workpool_run_done(struct workpool *wp)
{
	struct workpool_job *j, *next;

	pthread_mutex_lock(&wp->lock);
	j = wp->done_head;
	wp->done_head = wp->done_tail = NULL;
	pthread_mutex_unlock(&wp->lock);
	for (; j != NULL; j = next) {
		next = j->next;
		wp->outstanding--;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
}

static void
workpool_wakeup_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	workpool_run_done(w->data);
}

/* workpool_thread - take jobs until stopping and the queue is empty */
static void *
workpool_thread(void *arg)
{
	struct workpool *wp = arg;
	struct workpool_job *j;

	for (;;) {
		pthread_mutex_lock(&wp->lock);
		while (wp->todo_head == NULL && !wp->stopping)
			pthread_cond_wait(&wp->cond, &wp->lock);
		j = wp->todo_head;
		if (j == NULL) {
			pthread_mutex_unlock(&wp->lock);
			return NULL;
		}
		wp->todo_head = j->next;
		if (wp->todo_head == NULL)
			wp->todo_tail = NULL;
		pthread_mutex_unlock(&wp->lock);

		j->work(j->arg);

		pthread_mutex_lock(&wp->lock);
		j->next = NULL;
		if (wp->done_tail != NULL)
			wp->done_tail->next = j;
		else
			wp->done_head = j;
		wp->done_tail = j;
		pthread_mutex_unlock(&wp->lock);
		ev_async_send(wp->loop, &wp->wakeup);
	}
}

int
workpool_init(struct workpool *wp, struct ev_loop *loop, unsigned nthreads)
{
	*wp = (struct workpool){ .loop = loop, .nthreads = nthreads ? nthreads : 1 };
	if (pthread_mutex_init(&wp->lock, NULL) != 0)
		return -1;
	if (pthread_cond_init(&wp->cond, NULL) != 0) {
		pthread_mutex_destroy(&wp->lock);
		return -1;
	}
	ev_async_init(&wp->wakeup, workpool_wakeup_cb);
	wp->wakeup.data = wp;
	ev_async_start(loop, &wp->wakeup);
	/* The wake-up must not keep the loop alive on its own. */
	ev_unref(loop);
	return 0;
}

/* workpool_start_threads - start the threads on first use */
static int
workpool_start_threads(struct workpool *wp)
{
	wp->threads = calloc(wp->nthreads, sizeof(*wp->threads));
	if (wp->threads == NULL)
		return -1;
	for (wp->started = 0; wp->started < wp->nthreads; wp->started++)
		if (pthread_create(&wp->threads[wp->started], NULL,
		    workpool_thread, wp) != 0)
			break;
	if (wp->started == 0) {
		free(wp->threads);
		wp->threads = NULL;
		return -1;
	}
	return 0;
}

int
workpool_submit(struct workpool *wp, void (*work)(void *), void (*done)(void *),
    void *arg)
{
	struct workpool_job *j;

	if (wp->stopping)
		return -1;
	if (wp->threads == NULL && workpool_start_threads(wp) < 0) {
		log_msg(LOG_ERROR, "workpool: cannot start threads");
		return -1;
	}
	if ((j = malloc(sizeof(*j))) == NULL)
		return -1;
	*j = (struct workpool_job){ .work = work, .done = done, .arg = arg };
	pthread_mutex_lock(&wp->lock);
	if (wp->todo_tail != NULL)
		wp->todo_tail->next = j;
	else
		wp->todo_head = j;
	wp->todo_tail = j;
	wp->outstanding++;
	pthread_cond_signal(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
	return 0;
}

void
workpool_destroy(struct workpool *wp)
{
	unsigned i;

	pthread_mutex_lock(&wp->lock);
	wp->stopping = 1;
	pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
	for (i = 0; i < wp->started; i++)
		pthread_join(wp->threads[i], NULL);
	free(wp->threads);
	wp->threads = NULL;
	workpool_run_done(wp);
	ev_ref(wp->loop);
	ev_async_stop(wp->loop, &wp->wakeup);
	pthread_cond_destroy(&wp->cond);
	pthread_mutex_destroy(&wp->lock);
}
