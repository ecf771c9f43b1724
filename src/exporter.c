/*
 * exporter.c — the OTLP/HTTP export thread (see exporter.h for the contract).
 *
 * Threads: the data path only calls exporter_push_*() and exporter_stats(),
 * which take e->mu for a few instructions. Everything else — encoding,
 * compression, HTTP, retries, logging — runs on the export thread, which
 * holds e->mu only to pop a batch or read/update counters, never across I/O.
 *
 * Memory is bounded by queue_max records per queue (records are bounded in
 * size by telemetry.c), one batch being encoded per signal, and the response
 * body cap (RESP_MAX).
 */
#include "exporter.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "gz.h"
#include "jsonl.h"
#include "util.h"

#define MAX_ATTEMPTS        5           /* per request, first try included */
#define BACKOFF_FIRST_MS    500
#define BACKOFF_MAX_MS      30000
#define RETRY_AFTER_MAX_MS  30000       /* a larger Retry-After is shortened to this */
#define RETRY_BUDGET_MS     60000       /* no retry starts later than this after the first try */
#define RESP_MAX            65536       /* response bytes kept for partial_success / Status */
#define LOG_EVERY_NS        (10ull * 1000000000ull)

static const char *const sig_name[EXPORTER_NSIGNALS] = { "traces", "metrics", "logs" };
static const char *const sig_path[EXPORTER_NSIGNALS] = { "/v1/traces", "/v1/metrics", "/v1/logs" };

/* Ring buffer of owned records (struct otlp_span * or struct otlp_log *). */
struct queue {
	void **items;
	size_t head, n, cap;
	uint64_t first_ns;              /* when the queue last became non-empty */
};

struct conn {
	CURL *h;
	char *url;
	char errbuf[CURL_ERROR_SIZE];
	char *resp;                     /* RESP_MAX bytes */
	size_t resp_len;
	int failing;                    /* last request failed: log the recovery */
	uint64_t last_log_ns;
	uint64_t suppressed;            /* failure lines not written since last_log_ns */
};

struct exporter {
	pthread_mutex_t mu;
	pthread_cond_t cond;            /* CLOCK_MONOTONIC; wakes the thread */
	struct queue q[EXPORTER_NSIGNALS];     /* [EXPORTER_METRICS] unused */
	struct exporter_stats st;
	int stop;                       /* under mu */
	atomic_int stopping;            /* mirrors stop, read by perform() without mu */
	_Atomic uint64_t deadline_ns;   /* end of the final flush (monotonic) */

	struct conn c[EXPORTER_NSIGNALS];
	CURLM *multi;                   /* runs one request at a time; owns the connection cache */
	struct curl_slist *hdrs;
	const struct otlp_span **bspans;    /* max_batch slots each, export thread only */
	const struct otlp_log **blogs;
	const struct otlp_resource *res;
	int interval_ms, max_batch, timeout_ms, gzip;
	exporter_collect_fn collect;
	void *collect_arg;
	uint64_t rng;                   /* jitter, export thread only */
	pthread_t thr;
	int started;
};

enum post_result { POST_OK, POST_RETRY, POST_DROP };

static uint64_t ms_ns(int ms)
{
	return (uint64_t)(ms > 0 ? ms : 0) * 1000000ull;
}

/* ---- self-contained JSON logging to stderr */

static void esc_str(char *dst, size_t cap, const char *s)
{
	jsonl_escape(dst, cap, s ? s : "", s ? strlen(s) : 0, 0);
}

/* One line: {"time":…,"level":…,"msg":…,"signal":…<extra>}. extra is either
 * empty or starts with ','. A single write(2) so that it does not interleave
 * with the engine's lines. */
static void jlog(const char *level, const char *msg, const char *signal, const char *extra)
{
	char line[2048], ts[40];

	jsonl_time(ts, sizeof(ts));
	int n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\",\"signal\":\"%s\"%s}\n",
	                 ts, level, msg, signal, extra ? extra : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

/* Failure lines are rate limited per signal; returns 1 if this one may be
 * written (and adds the suppressed count to extra). */
static int may_log_failure(struct conn *c, char *extra, size_t cap)
{
	uint64_t now = mono_ns();
	if (c->last_log_ns && now - c->last_log_ns < LOG_EVERY_NS) {
		c->suppressed++;
		return 0;
	}
	if (c->suppressed) {
		size_t l = strlen(extra);
		snprintf(extra + l, cap - l, ",\"suppressed\":%llu", (unsigned long long)c->suppressed);
	}
	c->last_log_ns = now;
	c->suppressed = 0;
	return 1;
}

/* ---- HTTP */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct conn *c = arg;
	size_t n = size * nmemb;
	size_t room = RESP_MAX - c->resp_len;
	size_t k = n < room ? n : room;
	memcpy(c->resp + c->resp_len, ptr, k);
	c->resp_len += k;
	return n;           /* the rest is discarded, not an error */
}

/* curl_easy_perform() through the multi handle, so that a request in
 * flight is abandoned within POLL_MS once the final flush is over (the
 * easy interface would only notice in its once-a-second progress callback).
 * The connection returns to the multi handle's cache: keep-alive. */
#define POLL_MS 50

static CURLcode perform(struct exporter *e, CURL *h)
{
	CURLcode rc = CURLE_ABORTED_BY_CALLBACK;
	int running = 1, left;
	CURLMsg *msg;

	if (curl_multi_add_handle(e->multi, h) != CURLM_OK)
		return CURLE_FAILED_INIT;
	for (;;) {
		if (curl_multi_perform(e->multi, &running) != CURLM_OK) {
			rc = CURLE_FAILED_INIT;
			break;
		}
		if (!running) {
			while ((msg = curl_multi_info_read(e->multi, &left)))
				if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
					rc = msg->data.result;
			break;
		}
		if (atomic_load(&e->stopping) && mono_ns() >= atomic_load(&e->deadline_ns))
			break;  /* CURLE_ABORTED_BY_CALLBACK */
		curl_multi_poll(e->multi, NULL, 0, POLL_MS, NULL);
	}
	curl_multi_remove_handle(e->multi, h);
	return rc;
}

static int retryable_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return 1;
	default:
		return 0;
	}
}

static int is_protobuf(CURL *h)
{
	char *ct = NULL;
	return curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct
	       && strncmp(ct, "application/x-protobuf", 22) == 0;
}

/* One POST. *retry_after_ms: the server's Retry-After, or -1. */
static enum post_result post(struct exporter *e, int sig, const uint8_t *body, size_t len,
                             size_t n_items, long *retry_after_ms)
{
	struct conn *c = &e->c[sig];
	char extra[1024] = "", esc[512];
	long status = 0;
	long timeout = e->timeout_ms;

	*retry_after_ms = -1;
	if (atomic_load(&e->stopping)) {
		uint64_t now = mono_ns(), dl = atomic_load(&e->deadline_ns);
		if (now >= dl)
			return POST_DROP;
		if ((uint64_t)timeout * 1000000ull > dl - now)
			timeout = (long)((dl - now) / 1000000ull) + 1;
	}
	c->resp_len = 0;
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, (const char *)body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, timeout);
	CURLcode rc = perform(e, c->h);

	pthread_mutex_lock(&e->mu);
	e->st.requests[sig]++;
	pthread_mutex_unlock(&e->mu);

	if (rc != CURLE_OK) {
		esc_str(esc, sizeof(esc), rc == CURLE_ABORTED_BY_CALLBACK ? "abandoned at shutdown"
		                           : c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
		snprintf(extra, sizeof(extra), ",\"error\":\"%s\",\"items\":%zu", esc, n_items);
		if (may_log_failure(c, extra, sizeof(extra)))
			jlog("warn", "otlp export failed", sig_name[sig], extra);
		c->failing = 1;
		return retryable_curl(rc) ? POST_RETRY : POST_DROP;
	}
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);

	if (status >= 200 && status < 300) {
		int64_t rejected = 0;
		char msg[512];
		if (c->failing) {
			c->failing = 0;
			c->last_log_ns = 0;
			snprintf(extra, sizeof(extra), ",\"status\":%ld", status);
			jlog("info", "otlp export recovered", sig_name[sig], extra);
		}
		if (c->resp_len && is_protobuf(c->h)
		    && otlp_decode_partial_success(sig_name[sig], (const uint8_t *)c->resp, c->resp_len,
		                                   &rejected, msg, sizeof(msg)) == 1) {
			esc_str(esc, sizeof(esc), msg);
			snprintf(extra, sizeof(extra), ",\"rejected\":%lld,\"error\":\"%s\"",
			         (long long)rejected, esc);
			if (may_log_failure(c, extra, sizeof(extra)))
				jlog("warn", "otlp partial success", sig_name[sig], extra);
		}
		return POST_OK;
	}

	int retry = status == 429 || status == 502 || status == 503 || status == 504;
	if (retry) {
		curl_off_t ra = 0;
		if (curl_easy_getinfo(c->h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			*retry_after_ms = ra * 1000 > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : (long)ra * 1000;
	}
	char msg[512] = "";
	if (c->resp_len && is_protobuf(c->h))
		otlp_decode_status((const uint8_t *)c->resp, c->resp_len, msg, sizeof(msg));
	esc_str(esc, sizeof(esc), msg);
	if (*esc)
		snprintf(extra, sizeof(extra), ",\"status\":%ld,\"error\":\"%s\",\"items\":%zu", status, esc, n_items);
	else
		snprintf(extra, sizeof(extra), ",\"status\":%ld,\"items\":%zu", status, n_items);
	if (may_log_failure(c, extra, sizeof(extra)))
		jlog("warn", "otlp export failed", sig_name[sig], extra);
	c->failing = 1;
	return retry ? POST_RETRY : POST_DROP;
}

/* Sleep ms unless stopping; returns 1 if stopping. */
static int sleep_unless_stopping(struct exporter *e, uint64_t ms)
{
	uint64_t until = mono_ns() + ms * 1000000ull;
	int stop;

	pthread_mutex_lock(&e->mu);
	while (!e->stop && mono_ns() < until) {
		struct timespec ts = { (time_t)(until / 1000000000ull), (long)(until % 1000000000ull) };
		pthread_cond_timedwait(&e->cond, &e->mu, &ts);
	}
	stop = e->stop;
	pthread_mutex_unlock(&e->mu);
	return stop;
}

static uint64_t rng_next(struct exporter *e)
{
	uint64_t x = e->rng;            /* xorshift64: jitter needs no more */
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return e->rng = x;
}

/* Send an encoded request with retries; the body stays the caller's.
 * Updates sent/failed by n_items. */
static void send_request(struct exporter *e, int sig, const uint8_t *body, size_t len, size_t n_items)
{
	uint8_t *gz = NULL;
	size_t gzlen = 0;
	enum post_result r = POST_DROP;
	uint64_t budget_end = mono_ns() + ms_ns(RETRY_BUDGET_MS);

	if (e->gzip && gz_compress(body, len, &gz, &gzlen) == 0) {
		body = gz;
		len = gzlen;
	} else if (e->gzip) {
		jlog("warn", "otlp gzip failed", sig_name[sig], NULL);
		goto done;      /* the handle's headers say gzip: cannot send plain */
	}
	for (int attempt = 1;; attempt++) {
		long retry_after = -1;
		r = post(e, sig, body, len, n_items, &retry_after);
		if (r != POST_RETRY || attempt >= MAX_ATTEMPTS)
			break;
		uint64_t wait;
		if (retry_after >= 0) {
			wait = (uint64_t)retry_after;
		} else {
			/* exponential steps, each jittered uniformly over 0.5x..1.5x */
			uint64_t step = (uint64_t)BACKOFF_FIRST_MS << (attempt - 1);
			if (step > BACKOFF_MAX_MS)
				step = BACKOFF_MAX_MS;
			wait = step / 2 + rng_next(e) % (step + 1);
		}
		/* one batch must not hold up the other signals for long */
		if (mono_ns() + wait * 1000000ull > budget_end)
			break;
		if (sleep_unless_stopping(e, wait))
			break;      /* shutting down: no more retries, the final flush is bounded */
	}
done:
	free(gz);
	pthread_mutex_lock(&e->mu);
	if (r == POST_OK)
		e->st.sent[sig] += n_items;
	else
		e->st.failed[sig] += n_items;
	pthread_mutex_unlock(&e->mu);
}

/* Pop one batch (up to max_batch) of a record queue, encode, send, free. */
static void flush_batch(struct exporter *e, int sig)
{
	struct queue *q = &e->q[sig];
	size_t n;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	pthread_mutex_lock(&e->mu);
	n = q->n < (size_t)e->max_batch ? q->n : (size_t)e->max_batch;
	for (size_t i = 0; i < n; i++) {
		if (sig == EXPORTER_TRACES)
			e->bspans[i] = q->items[q->head];
		else
			e->blogs[i] = q->items[q->head];
		q->head = (q->head + 1) % q->cap;
	}
	q->n -= n;
	pthread_mutex_unlock(&e->mu);
	if (n == 0)
		return;

	if (sig == EXPORTER_TRACES)
		rc = otlp_encode_spans(e->res, e->bspans, n, &buf, &len);
	else
		rc = otlp_encode_logs(e->res, e->blogs, n, &buf, &len);
	/* the records are ours (exporter.h): const only for the encoder */
	for (size_t i = 0; i < n; i++)
		free(sig == EXPORTER_TRACES ? (void *)e->bspans[i] : (void *)e->blogs[i]);
	if (rc == 0) {
		send_request(e, sig, buf, len, n);
		free(buf);
	} else {
		jlog("error", "otlp encode failed", sig_name[sig], NULL);
		pthread_mutex_lock(&e->mu);
		e->st.failed[sig] += n;
		pthread_mutex_unlock(&e->mu);
	}
}

static void export_metrics(struct exporter *e)
{
	struct exporter_stats st;
	uint8_t *buf = NULL;
	size_t len = 0, n = 0;

	if (!e->collect)
		return;
	exporter_stats(e, &st);
	if (e->collect(e->collect_arg, &st, &buf, &len, &n) != 0)
		return;
	send_request(e, EXPORTER_METRICS, buf, len, n);
	free(buf);
}

static int queue_due(const struct exporter *e, const struct queue *q, uint64_t now)
{
	return q->n >= (size_t)e->max_batch || (q->n > 0 && now >= q->first_ns + ms_ns(e->interval_ms));
}

static void final_flush(struct exporter *e)
{
	static const int rec[] = { EXPORTER_TRACES, EXPORTER_LOGS };

	for (size_t k = 0; k < 2; k++) {
		for (;;) {
			pthread_mutex_lock(&e->mu);
			size_t left = e->q[rec[k]].n;
			pthread_mutex_unlock(&e->mu);
			if (!left || mono_ns() >= atomic_load(&e->deadline_ns))
				break;
			flush_batch(e, rec[k]);
		}
	}
	if (mono_ns() < atomic_load(&e->deadline_ns))
		export_metrics(e);
	/* what is left is dropped */
	pthread_mutex_lock(&e->mu);
	for (size_t k = 0; k < 2; k++) {
		struct queue *q = &e->q[rec[k]];
		e->st.failed[rec[k]] += q->n;
		while (q->n) {
			free(q->items[q->head]);
			q->head = (q->head + 1) % q->cap;
			q->n--;
		}
	}
	pthread_mutex_unlock(&e->mu);
}

static void *run(void *arg)
{
	struct exporter *e = arg;
	uint64_t next_metrics = mono_ns() + ms_ns(e->interval_ms);

	pthread_mutex_lock(&e->mu);
	while (!e->stop) {
		uint64_t now = mono_ns();
		int due_t = queue_due(e, &e->q[EXPORTER_TRACES], now);
		int due_l = queue_due(e, &e->q[EXPORTER_LOGS], now);
		int due_m = now >= next_metrics;

		if (!due_t && !due_l && !due_m) {
			/* A queue that becomes non-empty is due at first_ns + interval,
			 * never before next_metrics: no need to wake us for it. Pushes
			 * signal when a queue reaches a full batch. */
			uint64_t wake = next_metrics;
			struct timespec ts = { (time_t)(wake / 1000000000ull), (long)(wake % 1000000000ull) };
			pthread_cond_timedwait(&e->cond, &e->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&e->mu);
		if (due_t)
			flush_batch(e, EXPORTER_TRACES);
		if (due_l)
			flush_batch(e, EXPORTER_LOGS);
		if (due_m) {
			export_metrics(e);
			next_metrics = mono_ns() + ms_ns(e->interval_ms);
		}
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	final_flush(e);
	return NULL;
}

/* ---- API */

static int push(struct exporter *e, int sig, void *item)
{
	struct queue *q = &e->q[sig];

	pthread_mutex_lock(&e->mu);
	if (q->n >= q->cap || e->stop) {
		e->st.queue_full[sig]++;
		pthread_mutex_unlock(&e->mu);
		free(item);
		return -1;
	}
	if (q->n == 0)
		q->first_ns = mono_ns();
	q->items[(q->head + q->n) % q->cap] = item;
	if (++q->n == (size_t)e->max_batch)
		pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->mu);
	return 0;
}

int exporter_push_span(struct exporter *e, struct otlp_span *s)
{
	return push(e, EXPORTER_TRACES, s);
}

int exporter_push_log(struct exporter *e, struct otlp_log *l)
{
	return push(e, EXPORTER_LOGS, l);
}

void exporter_stats(struct exporter *e, struct exporter_stats *out)
{
	pthread_mutex_lock(&e->mu);
	*out = e->st;
	pthread_mutex_unlock(&e->mu);
}

uint64_t exporter_dropped(struct exporter *e)
{
	struct exporter_stats st;
	uint64_t n = 0;

	exporter_stats(e, &st);
	for (int i = 0; i < EXPORTER_NSIGNALS; i++)
		n += st.queue_full[i] + st.failed[i];
	return n;
}

static int header_ok(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

static int init_conn(struct exporter *e, int sig, const char *base, size_t baselen)
{
	struct conn *c = &e->c[sig];
	size_t n = baselen + strlen(sig_path[sig]) + 1;

	c->url = malloc(n);
	c->resp = malloc(RESP_MAX);
	c->h = curl_easy_init();
	if (!c->url || !c->resp || !c->h)
		return -1;
	snprintf(c->url, n, "%.*s%s", (int)baselen, base, sig_path[sig]);
	/* Options fixed for the life of the handle; the connection it caches
	 * is reused by the next request (keep-alive). */
	if (curl_easy_setopt(c->h, CURLOPT_URL, c->url) != CURLE_OK
	    || curl_easy_setopt(c->h, CURLOPT_POST, 1L) != CURLE_OK
	    || curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, e->hdrs) != CURLE_OK
	    || curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
	    || curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK
	    || curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK
	    || curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c) != CURLE_OK
	    || curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms) != CURLE_OK
	    || curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK)
		return -1;
	return 0;
}

struct exporter *exporter_new(const struct exporter_config *cfg, char *err, size_t errlen)
{
	struct exporter *e = NULL;
	pthread_condattr_t ca;
	const char *base = cfg->endpoint;
	size_t baselen = base ? strlen(base) : 0;
	char line[1024];

	while (baselen && base[baselen - 1] == '/')
		baselen--;
	if (!baselen || !header_ok(base)) {
		snprintf(err, errlen, "telemetry endpoint is empty or invalid");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed");
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		curl_global_cleanup();
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->res = cfg->resource;
	e->interval_ms = cfg->interval_ms > 0 ? cfg->interval_ms : 5000;
	e->max_batch = cfg->max_batch > 0 ? cfg->max_batch : 512;
	e->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
	e->gzip = cfg->gzip;
	e->collect = cfg->collect_metrics;
	e->collect_arg = cfg->collect_arg;
	if (getrandom(&e->rng, sizeof(e->rng), 0) != (ssize_t)sizeof(e->rng) || !e->rng)
		e->rng = mono_ns() | 1;
	size_t qmax = cfg->queue_max > 0 ? (size_t)cfg->queue_max : 2048;
	for (int s = 0; s < EXPORTER_NSIGNALS; s++) {
		if (s == EXPORTER_METRICS)
			continue;
		e->q[s].cap = qmax;
		if (!(e->q[s].items = calloc(qmax, sizeof(void *))))
			goto nomem;
	}
	e->bspans = calloc((size_t)e->max_batch, sizeof(*e->bspans));
	e->blogs = calloc((size_t)e->max_batch, sizeof(*e->blogs));
	if (!e->bspans || !e->blogs)
		goto nomem;

	e->hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	/* no "Expect: 100-continue" round trip for bodies over 1 KiB */
	if (e->hdrs && !curl_slist_append(e->hdrs, "Expect:"))
		goto nomem;
	if (e->hdrs && e->gzip && !curl_slist_append(e->hdrs, "Content-Encoding: gzip"))
		goto nomem;
	for (size_t i = 0; i < cfg->n_headers && e->hdrs; i++) {
		const struct exporter_header *h = &cfg->headers[i];
		if (!header_ok(h->name) || !*h->name || strchr(h->name, ':') || !header_ok(h->value)) {
			snprintf(err, errlen, "invalid telemetry header '%s'", h->name ? h->name : "");
			goto fail;
		}
		snprintf(line, sizeof(line), "%s: %s", h->name, h->value);
		if (!curl_slist_append(e->hdrs, line))
			goto nomem;
	}
	if (!e->hdrs || !(e->multi = curl_multi_init()))
		goto nomem;
	for (int s = 0; s < EXPORTER_NSIGNALS; s++)
		if (init_conn(e, s, base, baselen) != 0) {
			snprintf(err, errlen, "cannot set up curl for %s", sig_name[s]);
			goto fail;
		}

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&e->mu, NULL);
	if (pthread_create(&e->thr, NULL, run, e) != 0) {
		snprintf(err, errlen, "cannot start the telemetry export thread");
		goto fail;
	}
	e->started = 1;
	return e;

nomem:
	snprintf(err, errlen, "out of memory");
fail:
	exporter_free(&e, 0);
	return NULL;
}

void exporter_free(struct exporter **ep, int timeout_ms)
{
	struct exporter *e = *ep;

	if (!e)
		return;
	*ep = NULL;
	if (e->started) {
		pthread_mutex_lock(&e->mu);
		atomic_store(&e->deadline_ns, mono_ns() + ms_ns(timeout_ms));
		atomic_store(&e->stopping, 1);
		e->stop = 1;
		pthread_cond_signal(&e->cond);
		pthread_mutex_unlock(&e->mu);
		curl_multi_wakeup(e->multi);    /* a request in flight rechecks the deadline */
		pthread_join(e->thr, NULL);
		pthread_cond_destroy(&e->cond);
		pthread_mutex_destroy(&e->mu);
	}
	for (int s = 0; s < EXPORTER_NSIGNALS; s++) {
		struct queue *q = &e->q[s];
		for (; q->items && q->n; q->n--, q->head = (q->head + 1) % q->cap)
			free(q->items[q->head]);
		free(q->items);
		if (e->c[s].h)
			curl_easy_cleanup(e->c[s].h);
		free(e->c[s].url);
		free(e->c[s].resp);
	}
	if (e->multi)
		curl_multi_cleanup(e->multi);
	curl_slist_free_all(e->hdrs);
	free(e->bspans);
	free(e->blogs);
	free(e);
	curl_global_cleanup();
}
