/* http.c - libcurl wrapper; see http.h. */
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "signals.h"

int http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

long long http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void http_sleep_ms(long ms)
{
	signals_sleep_ms(ms);
}

int http_client_init(struct http_client *c, const char *base_url)
{
	size_t n;

	memset(c, 0, sizeof(*c));
	n = strlen(base_url);
	while (n > 0 && base_url[n - 1] == '/')
		n--; /* paths start with '/' */
	if (n >= sizeof(c->base_url))
		return -1;
	memcpy(c->base_url, base_url, n);
	c->base_url[n] = '\0';
	c->connect_timeout_ms = 5000;
	c->curl = curl_easy_init();
	c->multi = curl_multi_init();
	return c->curl && c->multi ? 0 : -1;
}

int http_client_fresh(struct http_client *c)
{
	c->curl = curl_easy_init();
	c->multi = curl_multi_init();
	c->requests = 0;
	return c->curl && c->multi ? 0 : -1;
}

void http_client_cleanup(struct http_client *c)
{
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
	c->multi = NULL;
}

/* How long one poll of a transfer may wait: a second, less when the
 * stopped budget ends sooner; -1 once it has ended. In teardown a stop no
 * longer ends the transfer at once: it ends it at the budget's end,
 * however long the request's own timeout. */
static int poll_wait_ms(void)
{
	long long limit = signals_stop_deadline_ms(), remaining;

	if (!limit)
		return 1000;
	remaining = limit - http_now_ms();
	if (remaining <= 0)
		return -1;
	return remaining < 1000 ? (int)remaining : 1000;
}

/* curl_easy_perform, but a stop signal ends the transfer at once: the
 * multi interface polls the stop signal's descriptor beside the socket.
 * The connection cache lives in the multi handle, so connections are
 * reused across requests as with the easy interface. With wait_note_ms,
 * a long wait says so every wait_note_ms: a silent minute in a CI log
 * looks like a hang. */
static CURLcode http_perform(struct http_client *c, const struct http_request *req)
{
	struct curl_waitfd stop = { .fd = signals_stop_fd(), .events = CURL_WAIT_POLLIN };
	long long start = http_now_ms(), note = start + c->wait_note_ms;
	CURLcode rc = CURLE_OK;
	CURLMsg *msg;
	bool stopped_budget = false;
	int running = 1, left;

	if (curl_multi_add_handle(c->multi, c->curl) != CURLM_OK)
		return CURLE_FAILED_INIT;
	for (;;) {
		int wait_ms;

		if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
			rc = CURLE_FAILED_INIT;
			break;
		}
		if (!running)
			break;
		if (signals_interrupted()) {
			rc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		wait_ms = poll_wait_ms();
		if (wait_ms < 0) {
			rc = CURLE_OPERATION_TIMEDOUT;
			stopped_budget = true;
			break;
		}
		if (curl_multi_poll(c->multi, &stop, stop.fd >= 0 ? 1 : 0, wait_ms, NULL) !=
		    CURLM_OK) {
			rc = CURLE_FAILED_INIT;
			break;
		}
		if (c->wait_note_ms > 0 && http_now_ms() >= note) {
			log_info("still waiting for the answer to %s %s%s (%lld s)", req->method,
				 c->base_url, req->path, (http_now_ms() - start) / 1000);
			note += c->wait_note_ms;
		}
	}
	if (!running) {
		msg = curl_multi_info_read(c->multi, &left);
		rc = msg && msg->msg == CURLMSG_DONE ? msg->data.result : CURLE_FAILED_INIT;
	}
	curl_multi_remove_handle(c->multi, c->curl);
	if (stopped_budget)
		log_debug("http: %s %s given up: the stopped budget (%d ms) ran out", req->method,
			  req->path, SIGNALS_STOPPED_BUDGET_MS);
	return rc;
}

void http_response_free(struct http_response *resp)
{
	buf_free(&resp->body);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct buf *body = userdata;
	size_t n = size * nmemb;

	/* Returning less than n makes curl stop with CURLE_WRITE_ERROR: that
	 * is how an oversized body is refused. */
	return buf_append(body, data, n) == 0 ? n : 0;
}

/* Copies a header value (trimmed) into out when the line is "name: value".
 * A value that does not fit, or holds a control character, is dropped
 * (out ""): a cut version or URL would be a wrong one, and values reach
 * log lines. */
static void header_value(const char *line, size_t n, const char *name, char *out, size_t outsz)
{
	size_t k = strlen(name), i;

	if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return;
	line += k + 1;
	n -= k + 1;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	out[0] = '\0';
	if (n >= outsz)
		return;
	for (i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			return;
	memcpy(out, line, n);
	out[n] = '\0';
}

void http_parse_header(struct http_response *resp, const char *line, size_t n)
{
	char retry[16] = "";

	header_value(line, n, "Location", resp->location, sizeof(resp->location));
	header_value(line, n, "Api-Version", resp->api_version, sizeof(resp->api_version));
	header_value(line, n, "Retry-After", retry, sizeof(retry));
	if (retry[0]) {
		char *end;
		long v = strtol(retry, &end, 10);

		resp->retry_after = (*end == '\0' && v > 0) ? v : 0;
	}
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	size_t n = size * nmemb;

	http_parse_header(userdata, data, n);
	return n;
}

int http_send(struct http_client *c, const struct http_request *req, long timeout_ms,
	      struct http_response *resp)
{
	CURL *curl = c->curl;
	struct curl_slist *headers = NULL, *h;
	struct buf auth = BUF_INIT;
	char url[2048], ctype[128];
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	curl_off_t total_us = 0;
	long request_size = 0;
	int ret = -1;

	memset(resp, 0, sizeof(*resp));
	resp->body.limit = HTTP_MAX_BODY;
	if (snprintf(url, sizeof(url), "%s%s", c->base_url, req->path) >= (int)sizeof(url)) {
		snprintf(resp->error, sizeof(resp->error), "URL too long");
		resp->transport_error = CURLE_URL_MALFORMAT;
		return -1;
	}
	if (timeout_ms < 1)
		timeout_ms = 1;

	h = curl_slist_append(headers, "Accept: application/json");
	if (!h)
		goto out_oom;
	headers = h;
	/* curl would add "Expect: 100-continue" to larger POSTs, costing a
	 * round trip for nothing. */
	h = curl_slist_append(headers, "Expect:");
	if (!h)
		goto out_oom;
	headers = h;
	if (req->content_type) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s", req->content_type);
		h = curl_slist_append(headers, ctype);
		if (!h)
			goto out_oom;
		headers = h;
	}
	if (req->bearer) {
		/* Sized to the token: a master admin token grows with every
		 * realm on the server (keycloak.h caps it). */
		if (buf_puts(&auth, "Authorization: Bearer ") < 0 ||
		    buf_puts(&auth, req->bearer) < 0)
			h = NULL;
		else
			h = curl_slist_append(headers, auth.data);
		buf_free_secret(&auth);
		if (!h)
			goto out_oom;
		headers = h;
	}

	/* Reset keeps live connections, the TLS session and DNS caches; every
	 * option is then set for this request alone. */
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
			 c->connect_timeout_ms < timeout_ms ? c->connect_timeout_ms : timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp->body);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
	/* Redirects are never followed: a 3xx is an answer like any other,
	 * and the bearer token must not travel to another host. */
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_BODY);
	if (c->unix_socket[0])
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->unix_socket);
	if (c->ca_cert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_cert);
	if (c->insecure) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(req->method, "GET") == 0) {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
		if (req->content_type || strcmp(req->method, "POST") == 0) {
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)(req->body ? req->body_len : 0));
		} else if (strcmp(req->method, "HEAD") == 0) {
			curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
		}
	}

	c->requests++;
	rc = http_perform(c, req);
	curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &total_us);
	if (curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &request_size) == CURLE_OK)
		resp->sent = request_size > 0;
	/* The slist holds the Authorization header: forget it in curl first. */
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	if (rc != CURLE_OK) {
		resp->transport_error = (int)rc;
		if (rc == CURLE_WRITE_ERROR || rc == CURLE_FILESIZE_EXCEEDED)
			snprintf(resp->error, sizeof(resp->error),
				 "response body over %u bytes refused", HTTP_MAX_BODY);
		else if (rc == CURLE_ABORTED_BY_CALLBACK)
			snprintf(resp->error, sizeof(resp->error), "stopped by a signal");
		else
			snprintf(resp->error, sizeof(resp->error), "%s",
				 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		log_debug("http: %s %s failed after %lld ms: %s", req->method, req->path,
			  (long long)(total_us / 1000), resp->error);
		goto out_free;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
	log_debug("http: %s %s %ld %lld ms", req->method, req->path, resp->status,
		  (long long)(total_us / 1000));
	ret = 0;
	goto out_free;

out_oom:
	snprintf(resp->error, sizeof(resp->error), "out of memory");
	resp->transport_error = CURLE_OUT_OF_MEMORY;
out_free:
	for (h = headers; h; h = h->next) {
		volatile char *p = h->data;

		while (*p) /* wipe the Authorization header before freeing it */
			*p++ = 0;
	}
	curl_slist_free_all(headers);
	return ret;
}

bool http_status_is_transient(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

int http_send_retry(struct http_client *c, const struct http_request *req, long long deadline_ms,
		    struct http_response *resp)
{
	long backoff_ms = 100;
	int attempt = 0;

	for (;;) {
		long long now = http_now_ms();
		long wait_ms;
		int rc;

		attempt++;
		deadline_ms = signals_clamp_deadline(deadline_ms);
		rc = http_send(c, req, (long)(deadline_ms - now), resp);
		if (!req->retry)
			return rc;
		if (rc == 0 && !http_status_is_transient(resp->status))
			return 0;
		if (rc < 0 && resp->transport_error == CURLE_ABORTED_BY_CALLBACK)
			return rc;
		if (rc < 0 && (http_error_is_tls(resp->transport_error) ||
			       http_error_is_too_large(resp->transport_error) ||
			       (req->probe && http_error_is_unreachable(resp->transport_error) &&
				!resp->sent)))
			return rc;
		wait_ms = backoff_ms;
		if (rc == 0 && resp->retry_after > 0)
			wait_ms = resp->retry_after < 5 ? resp->retry_after * 1000 : 5000;
		if (http_now_ms() + wait_ms >= deadline_ms || signals_interrupted())
			return rc;
		if (rc == 0)
			log_info("%s %s answered %ld, retrying in %ld ms (attempt %d)", req->method,
				 req->path, resp->status, wait_ms, attempt);
		else
			log_info("%s %s failed (%s), retrying in %ld ms (attempt %d)", req->method,
				 req->path, resp->error, wait_ms, attempt);
		http_response_free(resp);
		http_sleep_ms(wait_ms);
		if (signals_interrupted()) {
			memset(resp, 0, sizeof(*resp));
			snprintf(resp->error, sizeof(resp->error), "stopped by a signal");
			resp->transport_error = CURLE_ABORTED_BY_CALLBACK;
			return -1;
		}
		if (backoff_ms < 2000)
			backoff_ms *= 2;
	}
}

bool http_error_is_unreachable(int e)
{
	return e == CURLE_COULDNT_RESOLVE_HOST || e == CURLE_COULDNT_CONNECT ||
	       e == CURLE_COULDNT_RESOLVE_PROXY || (e == CURLE_OPERATION_TIMEDOUT);
}

bool http_error_is_timeout(int e)
{
	return e == CURLE_OPERATION_TIMEDOUT;
}

bool http_error_is_too_large(int e)
{
	return e == CURLE_WRITE_ERROR || e == CURLE_FILESIZE_EXCEEDED;
}

bool http_error_is_tls(int e)
{
	return e == CURLE_PEER_FAILED_VERIFICATION || e == CURLE_SSL_CONNECT_ERROR ||
	       e == CURLE_SSL_CACERT_BADFILE || e == CURLE_SSL_CERTPROBLEM;
}

bool http_error_is_stopped(int e)
{
	return e == CURLE_ABORTED_BY_CALLBACK;
}
