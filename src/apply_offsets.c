/* apply_offsets.c — what the sink holds per partition: start offsets on
 * assignment, the advance of each batch, stored offsets that went back
 * (re-read from there), the idle look at them, reloads onto another sink
 * or other routes; see apply.h. */
#include "util.h"
#include "apply_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- what the sink holds ------------------------------------------------ */

/* Read the stored offset of a partition into its entry, retrying while the
 * sink is away. A wait serves rebalances, which may forget the partition:
 * topic must not be the entry's own string. 0 (also when it was forgotten),
 * -1 when stopping. */
static int part_load(struct apply *a, const char *topic, int32_t partition)
{
	char err[512];

	for (int attempt = 0;; attempt++) {
		int64_t next;
		int rc = sink_load_offset(a->sink, topic, partition, &next, err, sizeof(err));
		struct part *p = parts_find(&a->parts, topic, partition, 0);

		if (!p)
			return 0;
		if (rc >= 0) {
			p->next = rc ? next : -1;
			return 0;
		}
		log_warn("cannot read stored offsets, retrying", LF_S("topic", topic), LF_I("partition", partition),
		         LF_S("error", err));
		if (apply_backoff(a, attempt))
			return -1;
	}
}

/* A copy of the partitions of w (or, w NULL, of all held), to walk while
 * waits may change both. */
struct tp {
	char *topic;
	int32_t partition;
};

static size_t snapshot(struct apply *a, struct apply_work *w, struct tp **out)
{
	size_t n = w ? w->nadv : a->parts.n;
	struct tp *v = xrealloc(NULL, (n + 1) * sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		v[i].topic = xstrdup(w ? w->adv[i].topic : a->parts.v[i]->topic);
		v[i].partition = w ? w->adv[i].partition : a->parts.v[i]->partition;
	}
	*out = v;
	return n;
}

static void snapshot_free(struct tp *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].topic);
	free(v);
}

/* Drop every message of one partition from a batch (not applied: its
 * offsets were not stored, so it is read again). */
void apply_drop_partition(struct batch *b, const char *topic, int32_t partition)
{
	size_t o = 0;

	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		if (m->rkm && m->rkm->partition == partition && strcmp(m->topic, topic) == 0) {
			dlq_release(&m->dlq);
			b->bytes -= m->rkm->len + m->rkm->key_len;
			rd_kafka_message_destroy(m->rkm);
		} else {
			b->m[o++] = *m;
		}
	}
	b->n = o;
}

void apply_drop_everywhere(struct apply *a, const char *topic, int32_t partition)
{
	apply_drop_partition(&a->cur->b, topic, partition);
	if (a->fly)
		apply_drop_partition(&a->fly->b, topic, partition);
	if (a->settling)
		apply_drop_partition(&a->settling->b, topic, partition);
	wait_drop(&a->wt, topic, partition);
}

/* Read partition p again from offset to (its beginning when to < 0): what
 * this process holds of it is dropped. */
static void reposition(struct apply *a, struct part *p, int64_t to, const char *why)
{
	char err[256];
	int64_t at = to >= 0 ? to : RD_KAFKA_OFFSET_BEGINNING;

	apply_drop_everywhere(a, p->topic, p->partition);
	if (consumer_seek(a->cons, p->topic, p->partition, at, err, sizeof(err)))
		log_error("cannot re-read the partition", LF_S("topic", p->topic), LF_I("partition", p->partition),
		          LF_S("error", err));
	else
		log_warn(why, LF_S("topic", p->topic), LF_I("partition", p->partition),
		         LF_S("from", to >= 0 ? NULL : "the beginning"), LF_I("offset", to));
	p->next = to;
}


int apply_assign(struct apply *a, rd_kafka_topic_partition_list_t *l)
{
	apply_quiesce(a);
	for (int i = 0; i < l->cnt; i++) {
		struct part *p = parts_find(&a->parts, l->elems[i].topic, l->elems[i].partition, 1);

		if (part_load(a, l->elems[i].topic, l->elems[i].partition))
			return -1;
		l->elems[i].offset = p->next >= 0 ? p->next : RD_KAFKA_OFFSET_INVALID;
	}
	return 0;
}

/* Messages below the stored offset were applied already (a redelivery, or a
 * commit whose answer was lost): mark them duplicate. */
void apply_filter_applied(struct apply *a, struct apply_work *w)
{
	struct batch *b = &w->b;

	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];
		struct part *p = parts_find(&a->parts, m->topic, m->rkm->partition, 0);

		if (p && p->next >= 0 && m->rkm->offset < p->next && m->outcome != OUT_DUPLICATE) {
			dlq_release(&m->dlq);
			m->outcome = OUT_DUPLICATE;
			m->superseded = 0;
		}
	}
}

/* The advance of every partition with a message still to take effect. */
void apply_build_advances(struct apply *a, struct apply_work *w)
{
	struct batch *b = &w->b;

	w->nadv = 0;
	for (size_t i = 0; i < b->n; i++) {
		const rd_kafka_message_t *k = b->m[i].rkm;
		struct sink_advance *adv = NULL;

		if (b->m[i].outcome == OUT_DUPLICATE)
			continue;
		for (size_t j = 0; j < w->nadv && !adv; j++)
			if (w->adv[j].partition == k->partition && strcmp(w->adv[j].topic, b->m[i].topic) == 0)
				adv = &w->adv[j];
		if (!adv) {
			struct part *p = parts_find(&a->parts, b->m[i].topic, k->partition, 1);

			if (w->nadv == w->capadv) {
				w->capadv = w->capadv ? w->capadv * 2 : 8;
				w->adv = xrealloc(w->adv, w->capadv * sizeof(*w->adv));
			}
			adv = &w->adv[w->nadv++];
			*adv = (struct sink_advance){ p->topic, k->partition, p->next, k->offset + 1 };
		}
		if (k->offset + 1 > adv->next)
			adv->next = k->offset + 1;
	}
}

/* After a transient error, a stall or a fence: re-read what the sink holds
 * for w's partitions. Ahead of what this process stored: another process or
 * a commit whose answer was lost applied it, the messages below are
 * duplicates. Behind it: the sink lost commits, re-read from there. */
int apply_reload_offsets(struct apply *a, struct apply_work *w)
{
	struct tp *v;
	size_t n = snapshot(a, w, &v);
	int rc = 0;

	for (size_t j = 0; j < n && !rc; j++) {
		struct part *p = parts_find(&a->parts, v[j].topic, v[j].partition, 0);
		int64_t before = p ? p->next : -1;

		if (!p)
			continue;
		rc = part_load(a, v[j].topic, v[j].partition);
		p = parts_find(&a->parts, v[j].topic, v[j].partition, 0);
		if (!rc && p && (p->next < before || (before >= 0 && p->next < 0))) {
			tele_rewind(a->tele, p->topic);
			reposition(a, p, p->next, "the offset stored in the sink went backwards (a restore, a failover, "
			           "lost commits or an edit): re-reading the partition from it");
		}
	}
	snapshot_free(v, n);
	apply_build_advances(a, w);
	apply_filter_applied(a, w);
	return rc;
}

void apply_sink_changed(struct apply *a)
{
	struct tp *v;
	size_t n = snapshot(a, NULL, &v);

	for (size_t i = 0; i < n; i++) {
		struct part *p = parts_find(&a->parts, v[i].topic, v[i].partition, 0);
		int64_t before = p ? p->next : -1;

		if (!p || part_load(a, v[i].topic, v[i].partition))
			continue;
		p = parts_find(&a->parts, v[i].topic, v[i].partition, 0);
		if (p && p->next != before)
			reposition(a, p, p->next, "the new sink stores another offset for the partition: "
			           "continuing from it");
	}
	snapshot_free(v, n);
}

static void idle_cb(void *arg, const char *topic, int32_t partition, int64_t next)
{
	struct apply *a = arg;
	struct part *p = parts_find(&a->parts, topic, partition, 0);

	if (p)
		p->seen = 1;
	if (p && p->next > next) {
		tele_rewind(a->tele, p->topic);
		reposition(a, p, next, "the offset stored in the sink went backwards (a restore, a failover, "
		           "lost commits or an edit): re-reading the partition from it");
	}
}

void apply_idle(struct apply *a)
{
	uint64_t now = mono_ns();
	char err[512];

	if (a->cur->b.n || a->fly || a->settling || !a->parts.n || !a->sink ||
	    now - a->idle_check_ns < APPLY_IDLE_CHECK_MS * 1000000ULL)
		return;
	a->idle_check_ns = now;
	for (size_t i = 0; i < a->parts.n; i++)
		a->parts.v[i]->seen = 0;
	if (sink_each_offset(a->sink, idle_cb, a, err, sizeof(err))) {
		log_debug("idle check of the stored offsets failed", LF_S("error", err));
		return;
	}
	for (size_t i = 0; i < a->parts.n; i++) {
		struct part *p = a->parts.v[i];

		if (!p->seen && p->next >= 0) {     /* the row is gone: from the beginning */
			tele_rewind(a->tele, p->topic);
			reposition(a, p, -1, "the offset stored in the sink went backwards (a restore, a failover, "
			           "lost commits or an edit): re-reading the partition from it");
		}
	}
}

void apply_routes_changed(struct apply *a)
{
	for (size_t i = 0; i < a->parts.n; i++) {
		struct part *p = a->parts.v[i];
		char err[256];

		if (!p->parked || !routes_match(a->cfg->routes, p->topic))
			continue;
		p->parked = 0;
		if (consumer_seek(a->cons, p->topic, p->partition, p->parked_from, err, sizeof(err)))
			log_error("cannot re-read the partition", LF_S("topic", p->topic), LF_I("partition", p->partition),
			          LF_S("error", err));
		if (p->paused && consumer_pause(a->cons, p->topic, p->partition, 0) == 0)
			p->paused = 0;
		log_info("partition routed again, resuming", LF_S("topic", p->topic), LF_I("partition", p->partition),
		         LF_I("offset", p->parked_from));
	}
}

