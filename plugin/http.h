/* http.h - one reused libcurl connection per endpoint, with retries.
 *
 * A struct http_client wraps one easy handle, so consecutive requests to the
 * same host reuse the connection (and TLS session). Every option is set
 * again for each request and every request has a timeout. Response bodies
 * are capped at HTTP_MAX_BODY. Debug logging prints method, path, status
 * and milliseconds: never a header value or a body. */
#ifndef DRONE_DEPS_HTTP_H
#define DRONE_DEPS_HTTP_H

#include <stdbool.h>

#include "buf.h"

#define HTTP_MAX_BODY (4u << 20)

struct http_client {
	void *curl;	       /* CURL *, owned */
	void *multi;	       /* CURLM *, owned: runs curl's transfers */
	char base_url[512];    /* "https://host:port" or "http://localhost" */
	char unix_socket[256]; /* "" or a socket path for the Docker API */
	const char *ca_cert;   /* borrowed; NULL: system bundle */
	bool insecure;
	long connect_timeout_ms;
	long wait_note_ms; /* > 0: a line each this long a request waits */
	unsigned requests; /* requests sent, retries included */
};

struct http_request {
	const char *method;	  /* "GET", "POST", ... */
	const char *path;	  /* appended to base_url; no secret in it */
	const char *content_type; /* NULL: no body */
	const char *body;
	size_t body_len;
	const char *bearer; /* NULL or an access token (never logged) */
	bool retry;	    /* idempotent: retry transient failures */
	bool probe;	    /* a liveness probe: no retry when nothing
				     listens or the name does not resolve */
};

struct http_response {
	long status;	      /* 0 when no HTTP answer came */
	int transport_error;  /* a CURLcode; 0 when an HTTP answer came */
	char error[256];      /* transport error text */
	struct buf body;      /* capped at HTTP_MAX_BODY */
	char location[512];   /* Location header, if any */
	char api_version[16]; /* Api-Version header (Docker), if any */
	long retry_after;     /* Retry-After seconds, 0 if none */
	bool sent;	      /* the request was written to a connection: a
			       * server listens, however slow its answer */
};

/* Creates the handle. Returns 0 or -1. base_url must be http(s). */
int http_client_init(struct http_client *c, const char *base_url);
void http_client_cleanup(struct http_client *c);
/* In a forked child: new handles with the same settings, so the child
 * never sends on the parent's connections. The parent's handles are
 * dropped, not cleaned up (that could close or shut down TLS on a socket
 * the parent still uses); the child must end with _exit. 0 or -1. */
int http_client_fresh(struct http_client *c);

/* Sends one request, with no retry, waiting at most timeout_ms. Fills resp
 * (free with http_response_free). Returns 0 when an HTTP answer came
 * (whatever its status), -1 on a transport error. */
int http_send(struct http_client *c, const struct http_request *req, long timeout_ms,
	      struct http_response *resp);

/* http_send with retries until deadline_ms (a monotonic time, see
 * http_now_ms): when req->retry, on transport errors and on 429, 502, 503,
 * 504, with exponential backoff. Certificate failures and oversized
 * answers are never retried (they do not heal), nor, for a probe, a
 * refused connection. Returns as http_send. */
int http_send_retry(struct http_client *c, const struct http_request *req, long long deadline_ms,
		    struct http_response *resp);

void http_response_free(struct http_response *resp);
/* Reads one header line (n bytes, not NUL-terminated, as curl hands it
 * over) into resp: Location, Api-Version, Retry-After. Other lines are
 * ignored. */
void http_parse_header(struct http_response *resp, const char *line, size_t n);

/* Whether a transport error means nothing listens or the name does not
 * resolve (no server), as opposed to a failure mid-conversation. */
bool http_error_is_unreachable(int transport_error);
/* Whether the answer was refused for its size (over HTTP_MAX_BODY). */
bool http_error_is_too_large(int transport_error);
/* Whether a stop signal ended the transfer (signals_interrupted). */
bool http_error_is_stopped(int transport_error);
/* Whether an answer's status is worth a retry: 429, 502, 503, 504. */
bool http_status_is_transient(long status);
/* Whether the transfer ran out of time. */
bool http_error_is_timeout(int transport_error);
/* Whether the error is a certificate problem. */
bool http_error_is_tls(int transport_error);

long long http_now_ms(void);
/* Sleeps ms milliseconds; less when a stop signal interrupts the bind
 * (see signals_interrupted). */
void http_sleep_ms(long ms);

int http_global_init(void);
void http_global_cleanup(void);

#endif
