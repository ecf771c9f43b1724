/*
 * parts.h — what this process knows of the partitions it holds.
 *
 * For each assigned partition: the next offset stored for it in the sink
 * (as last read or written by this process), whether cdcrouter paused it
 * (while a batch waits, or parked for want of a route), and where a parked
 * partition is to resume. Entries are allocated one by one, so a pointer
 * to one stays valid until parts_forget() of that partition.
 */
#ifndef CDCR_PARTS_H
#define CDCR_PARTS_H

#include <stddef.h>
#include <stdint.h>

struct part {
	char *topic;
	int32_t partition;
	int64_t next;             /* stored next offset; -1 = no row stored */
	int paused;               /* paused by cdcrouter (resume only these: librdkafka 2.0.2 #4637) */
	int parked;               /* no route for its topic: paused until a reload routes it */
	int64_t parked_from;      /* the first of its messages not applied */
	int seen;                 /* apply's idle check found its row */
};

struct parts {
	struct part **v;
	size_t n, cap;
};

/* The entry of a partition; with create, made (next = -1) when missing. */
struct part *parts_find(struct parts *ps, const char *topic, int32_t partition, int create);
void parts_forget(struct parts *ps, const char *topic, int32_t partition);
void parts_free(struct parts *ps);

#endif
