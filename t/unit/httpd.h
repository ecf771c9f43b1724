/*
 * httpd.h — a tiny loopback HTTP/1.1 server for the telemetry unit tests
 * (header-only, test code). It accepts keep-alive connections, records every
 * request (path, a few headers, body) and answers according to a per-test
 * policy for /v1/logs and /v1/traces; everything else gets 200 with an empty
 * application/x-protobuf body.
 */
#ifndef CDCR_TEST_HTTPD_H
#define CDCR_TEST_HTTPD_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum httpd_mode {
	HTTPD_OK,               /* 200, empty body */
	HTTPD_503_THEN_OK,      /* first request 503 + Retry-After: 1, then 200 */
	HTTPD_400,              /* 400 with a google.rpc.Status body */
	HTTPD_PARTIAL,          /* 200 with partial_success (logs only) */
	HTTPD_HANG,             /* read the request, never answer */
};

struct httpd_req {
	char path[64], ctype[64], cenc[32], xtest[32];
	uint8_t *body;
	size_t len;
	double t;               /* seconds, CLOCK_MONOTONIC */
};

#define HTTPD_MAX_REQ 256
#define HTTPD_MAX_CONN 16

struct httpd {
	int lfd, port;
	pthread_t thr;
	atomic_int stop;
	enum httpd_mode logs_mode, traces_mode;
	const uint8_t *resp_body;       /* body for HTTPD_400 / HTTPD_PARTIAL */
	size_t resp_len;
	pthread_mutex_t mu;
	struct httpd_req req[HTTPD_MAX_REQ];
	int n_req;
	int n_logs, n_traces;           /* requests seen per path, to drive the modes */
	int n_conn;                     /* connections accepted */
};

struct httpd_conn {
	int fd;
	char *buf;
	size_t len, cap;
};

static double httpd_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void httpd_header(const char *hdrs, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	for (const char *p = hdrs; p && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");
			while (*v == ' ')
				v++;
			size_t n = e ? (size_t)(e - v) : strlen(v);
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return;
		}
	}
}

static void httpd_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w <= 0)
			return;
		c += w;
		n -= (size_t)w;
	}
}

/* Handle every complete request in the buffer; 0 to keep the connection. */
static int httpd_serve(struct httpd *h, struct httpd_conn *c)
{
	for (;;) {
		char *end;
		c->buf[c->len] = '\0';
		if (!(end = strstr(c->buf, "\r\n\r\n")))
			return 0;
		size_t hlen = (size_t)(end - c->buf) + 4;
		char cl[32];
		httpd_header(c->buf, "Content-Length", cl, sizeof(cl));
		size_t blen = (size_t)strtoul(cl, NULL, 10);
		if (c->len < hlen + blen)
			return 0;

		struct httpd_req r;
		memset(&r, 0, sizeof(r));
		sscanf(c->buf, "POST %63s", r.path);
		httpd_header(c->buf, "Content-Type", r.ctype, sizeof(r.ctype));
		httpd_header(c->buf, "Content-Encoding", r.cenc, sizeof(r.cenc));
		httpd_header(c->buf, "X-Test", r.xtest, sizeof(r.xtest));
		r.body = malloc(blen ? blen : 1);
		memcpy(r.body, c->buf + hlen, blen);
		r.len = blen;
		r.t = httpd_now();

		enum httpd_mode mode = HTTPD_OK;
		int nth = 0;
		pthread_mutex_lock(&h->mu);
		if (strcmp(r.path, "/v1/logs") == 0) {
			mode = h->logs_mode;
			nth = h->n_logs++;
		} else if (strcmp(r.path, "/v1/traces") == 0) {
			mode = h->traces_mode;
			nth = h->n_traces++;
		}
		if (h->n_req < HTTPD_MAX_REQ)
			h->req[h->n_req++] = r;
		else
			free(r.body);
		pthread_mutex_unlock(&h->mu);

		memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
		c->len -= hlen + blen;

		char head[256];
		int status = 200;
		const char *extra = "";
		const uint8_t *body = NULL;
		size_t len = 0;
		if (mode == HTTPD_HANG)
			continue;
		if (mode == HTTPD_503_THEN_OK && nth == 0) {
			status = 503;
			extra = "Retry-After: 1\r\n";
		} else if (mode == HTTPD_400) {
			status = 400;
			body = h->resp_body;
			len = h->resp_len;
		} else if (mode == HTTPD_PARTIAL) {
			body = h->resp_body;
			len = h->resp_len;
		}
		int n = snprintf(head, sizeof(head),
		                 "HTTP/1.1 %d X\r\nContent-Type: application/x-protobuf\r\n%sContent-Length: %zu\r\n\r\n",
		                 status, extra, len);
		httpd_write_all(c->fd, head, (size_t)n);
		if (len)
			httpd_write_all(c->fd, body, len);
	}
}

static void *httpd_run(void *arg)
{
	struct httpd *h = arg;
	struct httpd_conn conn[HTTPD_MAX_CONN];
	int nc = 0;

	while (!atomic_load(&h->stop)) {
		struct pollfd pf[HTTPD_MAX_CONN + 1];
		pf[0] = (struct pollfd){ .fd = h->lfd, .events = POLLIN };
		for (int i = 0; i < nc; i++)
			pf[i + 1] = (struct pollfd){ .fd = conn[i].fd, .events = POLLIN };
		if (poll(pf, (nfds_t)nc + 1, 50) <= 0)
			continue;
		for (int i = nc - 1; i >= 0; i--) {
			if (!pf[i + 1].revents)
				continue;
			struct httpd_conn *c = &conn[i];
			if (c->cap - c->len < 65536 + 1) {
				c->cap = c->cap * 2 + 65536 + 1;
				c->buf = realloc(c->buf, c->cap);
			}
			ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
			if (r > 0) {
				c->len += (size_t)r;
				httpd_serve(h, c);
				continue;
			}
			close(c->fd);
			free(c->buf);
			conn[i] = conn[--nc];
		}
		if ((pf[0].revents & POLLIN) && nc < HTTPD_MAX_CONN) {
			int fd = accept(h->lfd, NULL, NULL);
			if (fd >= 0) {
				conn[nc++] = (struct httpd_conn){ .fd = fd };
				h->n_conn++;
			}
		}
	}
	for (int i = 0; i < nc; i++) {
		close(conn[i].fd);
		free(conn[i].buf);
	}
	return NULL;
}

/* Listen on 127.0.0.1, an ephemeral port; 0 on success. */
static int httpd_start(struct httpd *h)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	pthread_mutex_init(&h->mu, NULL);
	h->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (h->lfd < 0)
		return -1;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(h->lfd, 16)
	    || getsockname(h->lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	h->port = ntohs(sa.sin_port);
	return pthread_create(&h->thr, NULL, httpd_run, h) ? -1 : 0;
}

/* Stop serving; the recorded requests stay readable until httpd_free. */
static void httpd_stop(struct httpd *h)
{
	atomic_store(&h->stop, 1);
	pthread_join(h->thr, NULL);
	close(h->lfd);
}

static void httpd_free(struct httpd *h)
{
	for (int i = 0; i < h->n_req; i++)
		free(h->req[i].body);
	pthread_mutex_destroy(&h->mu);
}

/* Number of requests recorded so far for path (NULL = all). */
static int httpd_count(struct httpd *h, const char *path)
{
	int n = 0;
	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < h->n_req; i++)
		n += !path || strcmp(h->req[i].path, path) == 0;
	pthread_mutex_unlock(&h->mu);
	return n;
}

/* A port nothing listens on (bound, then closed). */
static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0
	    && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

#endif
