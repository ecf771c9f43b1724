/* nudge.c — wake librdkafka's fetcher when the prefetch queue ran dry; see nudge.h. */
#include "nudge.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define GAP_MIN_MS   10         /* a partition's first gap, and after it moved */
#define GAP_MAX_MS   1000       /* librdkafka's own wake-up */
#define CHECK_MIN_MS 5          /* between two looks at the assignment */

struct part {                   /* per partition ever nudged */
	char *topic;
	int32_t partition;
	int64_t pos;            /* position at its last nudge */
	int64_t at_ms;          /* no nudge before this */
	int gap_ms;
};

struct nudge {
	rd_kafka_t *rk;
	size_t queue_msgs, queue_bytes;
	size_t dry_msgs, dry_bytes;     /* handed out since the queue was last dry */
	int maybe_held;                 /* the queue may have been over a threshold */
	int64_t check_at_ms;
	int next;                       /* round robin over the assignment */
	struct part *p;
	size_t np, cap;
	unsigned long sent;
};

struct nudge *nudge_new(rd_kafka_t *rk, size_t queue_msgs, size_t queue_bytes)
{
	struct nudge *n = xcalloc(1, sizeof(*n));

	n->rk = rk;
	n->queue_msgs = queue_msgs;
	n->queue_bytes = queue_bytes;
	return n;
}

void nudge_free(struct nudge **np)
{
	struct nudge *n = *np;

	if (!n)
		return;
	for (size_t i = 0; i < n->np; i++)
		free(n->p[i].topic);
	free(n->p);
	free(n);
	*np = NULL;
}

void nudge_seen(struct nudge *n, size_t len)
{
	n->dry_msgs++;
	n->dry_bytes += len;
}

unsigned long nudge_count(const struct nudge *n) { return n->sent; }

static struct part *part_of(struct nudge *n, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < n->np; i++)
		if (n->p[i].partition == partition && strcmp(n->p[i].topic, topic) == 0)
			return &n->p[i];
	if (n->np == n->cap) {
		n->cap = n->cap ? n->cap * 2 : 8;
		n->p = xrealloc(n->p, n->cap * sizeof(*n->p));
	}
	n->p[n->np] = (struct part){ xstrdup(topic), partition, -1, 0, GAP_MIN_MS };
	return &n->p[n->np++];
}

/* A ListOffsets request for the newest offset: queuing it wakes the
 * leader's broker thread; the answer is not needed. */
static void wake(struct nudge *n, const char *topic, int32_t partition)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t e;

	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = RD_KAFKA_OFFSET_END;
	e = rd_kafka_offsets_for_times(n->rk, l, NUDGE_WAIT_MS);
	if (e && e != RD_KAFKA_RESP_ERR__TIMED_OUT)
		log_debug("fetch nudge not sent", LF_S("topic", topic), LF_I("partition", partition),
		          LF_S("error", rd_kafka_err2str(e)));
	rd_kafka_topic_partition_list_destroy(l);
}

void nudge_dry(struct nudge *n)
{
	rd_kafka_topic_partition_list_t *a = NULL;
	int64_t now;

	if (n->dry_msgs >= n->queue_msgs || n->dry_bytes >= n->queue_bytes)
		n->maybe_held = 1;
	n->dry_msgs = n->dry_bytes = 0;
	now = (int64_t)(mono_ns() / 1000000);
	if (now < n->check_at_ms)
		return;
	n->check_at_ms = now + CHECK_MIN_MS;
	if (rd_kafka_assignment(n->rk, &a) || !a) {
		if (a)
			rd_kafka_topic_partition_list_destroy(a);
		return;
	}
	rd_kafka_position(n->rk, a);
	for (int k = 0; k < a->cnt; k++) {
		rd_kafka_topic_partition_t *tp = &a->elems[(n->next + k) % a->cnt];
		int64_t lo, hi = -1;
		struct part *p;
		int behind;

		if (tp->offset < 0)
			continue;
		behind = rd_kafka_get_watermark_offsets(n->rk, tp->topic, tp->partition, &lo, &hi) == 0 &&
		         hi > tp->offset;
		if (!behind && !n->maybe_held)
			continue;
		p = part_of(n, tp->topic, tp->partition);
		if (now < p->at_ms)
			continue;
		if (p->pos == tp->offset)
			p->gap_ms = p->gap_ms * 2 > GAP_MAX_MS ? GAP_MAX_MS : p->gap_ms * 2;
		else
			p->gap_ms = GAP_MIN_MS;
		p->pos = tp->offset;
		p->at_ms = now + p->gap_ms;
		n->next = (n->next + k + 1) % a->cnt;
		n->sent++;
		log_debug("fetch nudge", LF_S("topic", tp->topic), LF_I("partition", tp->partition),
		          LF_I("offset", tp->offset), LF_I("high_watermark", hi),
		          LF_S("reason", behind ? "behind" : "queue drained"), LF_I("next_gap_ms", p->gap_ms));
		n->maybe_held = 0;
		wake(n, tp->topic, tp->partition);
		break;
	}
	rd_kafka_topic_partition_list_destroy(a);
}
