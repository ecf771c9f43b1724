/* wait.c — waiting without leaving the group; see wait.h. */
#include "util.h"
#include "wait.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void wait_free(struct wait *w)
{
	wait_drop_all(w);
	free(w->held);
	w->held = NULL;
	w->capheld = 0;
}

/* Pause every assigned partition not paused yet (those assigned during the
 * wait too). */
static void pause_assigned(struct wait *w)
{
	rd_kafka_topic_partition_list_t *l = consumer_assignment(*w->cons);

	for (int i = 0; l && i < l->cnt; i++) {
		struct part *p = parts_find(w->parts, l->elems[i].topic, l->elems[i].partition, 1);

		if (!p->paused && consumer_pause(*w->cons, p->topic, p->partition, 1) == 0)
			p->paused = 1;
	}
	if (l)
		rd_kafka_topic_partition_list_destroy(l);
	w->waiting = 1;
}

void wait_resume(struct wait *w)
{
	if (!w->waiting)
		return;
	for (size_t i = 0; i < w->parts->n; i++) {
		struct part *p = w->parts->v[i];

		if (p->paused && !p->parked && consumer_pause(*w->cons, p->topic, p->partition, 0) == 0)
			p->paused = 0;
	}
	w->waiting = 0;
}

static void held_insert(struct wait *w, size_t at, rd_kafka_message_t *m)
{
	if (w->nheld == w->capheld) {
		w->capheld = w->capheld ? w->capheld * 2 : 16;
		w->held = xrealloc(w->held, w->capheld * sizeof(*w->held));
	}
	memmove(w->held + at + 1, w->held + at, (w->nheld - at) * sizeof(*w->held));
	w->held[at] = m;
	w->nheld++;
}

/* A message polled while waiting: kept for the next batch, its partition paused. */
static void hold(struct wait *w, rd_kafka_message_t *m)
{
	struct part *p = parts_find(w->parts, rd_kafka_topic_name(m->rkt), m->partition, 1);

	held_insert(w, w->nheld, m);
	if (!p->paused && consumer_pause(*w->cons, p->topic, p->partition, 1) == 0)
		p->paused = 1;
}

void wait_hold_back(struct wait *w, rd_kafka_message_t *m) { held_insert(w, 0, m); }

rd_kafka_message_t *wait_take(struct wait *w)
{
	rd_kafka_message_t *m;

	if (!w->nheld)
		return NULL;
	m = w->held[0];
	memmove(w->held, w->held + 1, (w->nheld - 1) * sizeof(*w->held));
	w->nheld--;
	return m;
}

void wait_drop(struct wait *w, const char *topic, int32_t partition)
{
	size_t o = 0;

	for (size_t i = 0; i < w->nheld; i++) {
		if (w->held[i]->partition == partition && strcmp(rd_kafka_topic_name(w->held[i]->rkt), topic) == 0)
			rd_kafka_message_destroy(w->held[i]);
		else
			w->held[o++] = w->held[i];
	}
	w->nheld = o;
}

void wait_drop_all(struct wait *w)
{
	for (size_t i = 0; i < w->nheld; i++)
		rd_kafka_message_destroy(w->held[i]);
	w->nheld = 0;
	w->waiting = 0;
}

int wait_idle(struct wait *w, long ms)
{
	uint64_t end = mono_ns() + (uint64_t)ms * 1000000ULL;

	while (!*w->stop) {
		uint64_t now = mono_ns();
		long step = now >= end ? 0 : (long)((end - now) / 1000000ULL);

		if (*w->dlq)
			dlq_poll(*w->dlq, 0);
		if (step <= 0)
			break;
		if (step > 100)
			step = 100;
		if (w->in_rebalance || !*w->cons) {
			struct timespec ts = { 0, step * 1000000L };

			nanosleep(&ts, NULL);
		} else {
			int fatal = 0;
			rd_kafka_message_t *m;

			pause_assigned(w);
			m = consumer_poll(*w->cons, (int)step, &fatal);
			if (m)
				hold(w, m);
			if (w->tick)
				w->tick(w->tick_opaque);
		}
	}
	return *w->stop ? -1 : 0;
}

int wait_backoff(struct wait *w, int attempt, long first_ms, long max_ms)
{
	long ms = first_ms;

	for (int i = 0; i < attempt && ms < max_ms; i++)
		ms *= 2;
	if (ms > max_ms)
		ms = max_ms;
	ms = ms / 2 + random() % (ms / 2 + 1);          /* jitter */
	return wait_idle(w, ms);
}
