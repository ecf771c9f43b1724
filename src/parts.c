/* parts.c — the partitions this process holds; see parts.h. */
#include "util.h"
#include "parts.h"

#include <stdlib.h>
#include <string.h>

struct part *parts_find(struct parts *ps, const char *topic, int32_t partition, int create)
{
	struct part *p;

	for (size_t i = 0; i < ps->n; i++)
		if (ps->v[i]->partition == partition && strcmp(ps->v[i]->topic, topic) == 0)
			return ps->v[i];
	if (!create)
		return NULL;
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		ps->v = xrealloc(ps->v, ps->cap * sizeof(*ps->v));
	}
	p = xrealloc(NULL, sizeof(*p));
	*p = (struct part){ .topic = xstrdup(topic), .partition = partition, .next = -1, .parked_from = -1 };
	ps->v[ps->n++] = p;
	return p;
}

void parts_forget(struct parts *ps, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < ps->n; i++) {
		struct part *p = ps->v[i];

		if (p->partition == partition && strcmp(p->topic, topic) == 0) {
			free(p->topic);
			free(p);
			ps->v[i] = ps->v[--ps->n];
			return;
		}
	}
}

void parts_free(struct parts *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->v[i]->topic);
		free(ps->v[i]);
	}
	free(ps->v);
	memset(ps, 0, sizeof(*ps));
}
