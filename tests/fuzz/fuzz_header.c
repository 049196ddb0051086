/* fuzz_header.c - libFuzzer target: the response header lines drone-deps
 * reads (http_parse_header: Location, Api-Version, Retry-After).
 *
 * The input is a header block as a server might send it, one line per
 * '\n'; each line goes to http_parse_header as curl hands it over (with
 * its line end, not NUL-terminated), in a block of exactly its length so
 * a read past the end is an AddressSanitizer report. Content-Length is
 * curl's to read: drone-deps has no parser of its own for it (an answer
 * over HTTP_MAX_BODY is refused by the body callback, see http.c).
 *
 * Checked besides memory safety, after each line:
 * - location and api_version are NUL-terminated inside their arrays,
 *   end in no line-end or blank (values are trimmed) and hold no control
 *   character: a value too long for its field or with one is dropped,
 *   never cut (the first finding: "Api-Version: 1.41\r..." was cut to
 *   15 bytes ending in a blank, seed api-version-cut.txt);
 * - retry_after is 0 or a positive number of seconds from a Retry-After
 *   line, and the retry wait http_send_retry derives from it stays
 *   within 5 s (a date or trailing text gives 0: the usual backoff);
 * - a line that names none of the three headers changes nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_header: check failed: %s (line %d)\n", \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static void check_value(const char *v, size_t size)
{
	size_t n, i;

	CHECK(memchr(v, '\0', size) != NULL);
	n = strlen(v);
	if (n > 0)
		CHECK(v[n - 1] != '\r' && v[n - 1] != '\n' && v[n - 1] != ' ');
	for (i = 0; i < n; i++)
		CHECK((unsigned char)v[i] >= 0x20 || v[i] == '\t');
}

static bool names(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && strncasecmp(line, name, k) == 0 && line[k] == ':';
}

static void one_line(struct http_response *resp, const uint8_t *data, size_t n)
{
	char *line = malloc(n ? n : 1);
	struct http_response before = *resp;
	long wait_ms;

	CHECK(line != NULL);
	memcpy(line, data, n);
	http_parse_header(resp, line, n);
	check_value(resp->location, sizeof(resp->location));
	check_value(resp->api_version, sizeof(resp->api_version));
	CHECK(resp->retry_after >= 0);
	if (resp->retry_after != before.retry_after && resp->retry_after > 0)
		CHECK(names(line, n, "Retry-After"));
	/* http_send_retry's wait for it */
	wait_ms = resp->retry_after < 5 ? resp->retry_after * 1000 : 5000;
	CHECK(wait_ms >= 0 && wait_ms <= 5000);
	if (!names(line, n, "Location") && !names(line, n, "Api-Version") &&
	    !names(line, n, "Retry-After"))
		CHECK(!strcmp(before.location, resp->location) &&
		      !strcmp(before.api_version, resp->api_version) &&
		      before.retry_after == resp->retry_after);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_response resp;
	size_t start = 0, i;

	memset(&resp, 0, sizeof(resp));
	for (i = 0; i < size; i++) {
		if (data[i] != '\n')
			continue;
		one_line(&resp, data + start, i + 1 - start);
		start = i + 1;
	}
	if (start < size)
		one_line(&resp, data + start, size - start);
	return 0;
}
