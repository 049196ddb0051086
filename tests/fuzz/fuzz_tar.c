/* fuzz_tar.c - libFuzzer target: the tar writer (tar_add, tar_finish) that
 * copies the secret files into the watchdog container.
 *
 * The input is a name (up to the first NUL byte), two bytes of mode and
 * the file's data. The archive made of a folder entry and that file is
 * read back by an independent reader, as Docker's archive upload would:
 *
 * - a name of 100 bytes or more is refused (-1) and nothing half-written
 *   is used; otherwise each header is 512 bytes, its checksum (computed
 *   with the field as spaces) is right, the name, mode, type and size
 *   fields read back as given, the data follows, padded with zeros to a
 *   512-byte boundary, and two zero blocks end the stream;
 * - the stream's length is exactly that. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "watchdog.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_tar: check failed: %s (line %d)\n", \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static unsigned long octal(const unsigned char *f, size_t n)
{
	char s[16];
	char *end;
	unsigned long v;

	CHECK(n < sizeof(s));
	memcpy(s, f, n);
	s[n] = '\0';
	v = strtoul(s, &end, 8);
	/* the field is digits, then a NUL or a space */
	CHECK(end != s && (*end == '\0' || *end == ' '));
	return v;
}

/* Checks one header at h for name, mode, type and size. */
static void check_header(const unsigned char *h, const char *name, unsigned mode, char type,
			 size_t size)
{
	unsigned sum = 0;
	size_t i;

	for (i = 0; i < 512; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	CHECK(octal(h + 148, 7) == sum);
	CHECK(strnlen((const char *)h, 100) == strlen(name));
	CHECK(memcmp(h, name, strlen(name)) == 0);
	CHECK(octal(h + 100, 7) == mode);
	CHECK(octal(h + 124, 11) == size);
	CHECK(h[156] == (unsigned char)type);
	CHECK(memcmp(h + 257, "ustar", 6) == 0);
}

static bool zero(const unsigned char *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	struct buf tar = BUF_INIT;
	const unsigned char *t;
	size_t name_len, len, pad;
	unsigned mode;
	char *name, *file;
	int rc;

	if (!nul || (size_t)(nul - data) + 3 > size)
		return 0;
	name_len = (size_t)(nul - data);
	name = malloc(name_len + 1);
	CHECK(name != NULL);
	memcpy(name, data, name_len + 1);
	/* permission bits, as the callers pass (0400, 0444, 0700, 0755) */
	mode = ((unsigned)nul[1] << 8 | nul[2]) & 07777;
	len = size - name_len - 3;
	file = malloc(len ? len : 1);
	CHECK(file != NULL);
	memcpy(file, nul + 3, len);

	rc = tar_add(&tar, "run/", 0755, NULL, 0);
	CHECK(rc == 0);
	rc = tar_add(&tar, name, mode, file, len);
	if (name_len >= 100) {
		CHECK(rc == -1);
		goto out_free;
	}
	CHECK(rc == 0);
	CHECK(tar_finish(&tar) == 0);

	pad = (512 - len % 512) % 512;
	CHECK(tar.len == 512 + 512 + len + pad + 1024);
	t = (const unsigned char *)tar.data;
	check_header(t, "run/", 0755, '5', 0);
	check_header(t + 512, name, mode, '0', len);
	CHECK(len == 0 || memcmp(t + 1024, file, len) == 0);
	CHECK(zero(t + 1024 + len, pad + 1024));
out_free:
	buf_free(&tar);
	free(file);
	free(name);
	return 0;
}
