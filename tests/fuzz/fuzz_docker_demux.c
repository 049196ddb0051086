/* fuzz_docker_demux.c - libFuzzer target: the Docker exec/attach stream
 * demultiplexer (docker_demux).
 *
 * The input is the body of a POST /exec/{id}/start answer without a TTY:
 * frames of an 8-byte header (stream 0/1/2, three zero bytes, big-endian
 * length) and a payload. The input is copied into a block of exactly its
 * length, so a read past the last frame is an AddressSanitizer report.
 *
 * Checked besides memory safety: on success the payload bytes of stream 1
 * and stream 2 add up to the input less 8 bytes per frame (stream 0
 * counted apart), and each output buffer is NUL-terminated at its length;
 * a NULL stderr buffer is allowed (stderr then dropped). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "docker.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_docker_demux: check failed: %s (line %d)\n", \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* Walks the frames independently: payload bytes per stream, or -1 when
 * the stream is malformed. */
static int expect(const uint8_t *p, size_t len, size_t count[3])
{
	size_t pos = 0;

	count[0] = count[1] = count[2] = 0;
	while (pos < len) {
		size_t n;

		if (len - pos < 8 || p[pos] > 2 || p[pos + 1] || p[pos + 2] || p[pos + 3])
			return -1;
		n = (size_t)p[pos + 4] << 24 | (size_t)p[pos + 5] << 16 |
		    (size_t)p[pos + 6] << 8 | (size_t)p[pos + 7];
		if (n > len - pos - 8)
			return -1;
		count[p[pos]] += n;
		pos += 8 + n;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, err = BUF_INIT, out2 = BUF_INIT;
	char *in = malloc(size ? size : 1);
	size_t count[3];
	int rc, want;

	CHECK(in != NULL);
	if (size)
		memcpy(in, data, size);
	want = expect(data, size, count);
	rc = docker_demux(in, size, &out, &err);
	CHECK(rc == want);
	if (rc == 0) {
		CHECK(out.len == count[1]);
		CHECK(err.len == count[2]);
		CHECK(strlen(buf_str(&out)) <= out.len);
		CHECK(!out.data || out.data[out.len] == '\0');
		CHECK(!err.data || err.data[err.len] == '\0');
	}
	CHECK(docker_demux(in, size, &out2, NULL) == want);
	if (rc == 0)
		CHECK(out2.len == out.len && (!out.len || !memcmp(out.data, out2.data, out.len)));
	buf_free(&out);
	buf_free(&err);
	buf_free(&out2);
	free(in);
	return 0;
}
