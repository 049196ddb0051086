/* fuzz_status.c - libFuzzer target: status' reading and rendering of
 * server data (status_render: the code status_run reads and prints with).
 *
 * The input is 8 bytes of clock (little-endian unix seconds, any value),
 * one byte whose low bit asks for JSON, then four parts separated by NUL
 * bytes: a realm name, that realm's answer (GET /admin/realms/{name}),
 * its first-user list (createdTimestamp) and a Docker /services list.
 * Names and marks may hold anything, control characters included; numbers
 * may be huge or negative.
 *
 * Checked besides memory safety (every fixed buffer of the renderer):
 * - the output never holds a control character: C0 and DEL, or C1 as
 *   UTF-8 (c2 80..9f), but the newline that ends each line;
 * - text: a header line, one line per item, a counts line, each ended by
 *   a newline; JSON: one document that parses, then a newline. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "status.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_status: check failed: %s (line %d)\n", \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* The next NUL-separated part of the input, copied into a block of
 * exactly its length (no NUL after it: the readers must honour len). */
static char *part(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
	size_t n = nul ? (size_t)(nul - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);

	CHECK(s != NULL);
	memcpy(s, *p, n);
	s[n] = '\0';
	*len = n;
	*p = nul ? nul + 1 : end;
	return s;
}

static void check_output(const char *out, size_t n, bool json)
{
	size_t i, lines = 0;
	struct json j;

	CHECK(n > 0 && out[n - 1] == '\n');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c == '\n') {
			lines++;
			continue;
		}
		CHECK(c >= 0x20 && c != 0x7f);
		CHECK(!(c == 0xc2 && i + 1 < n && (unsigned char)out[i + 1] >= 0x80 &&
			(unsigned char)out[i + 1] <= 0x9f));
	}
	if (json) {
		CHECK(lines == 1);
		CHECK(json_parse(&j, out, n - 1) == 0);
		CHECK(json_is_object(&j, 0));
		json_free(&j);
	} else {
		CHECK(lines >= 2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + 9, *end = data + size;
	char *name, *realm, *users, *list, *out = NULL;
	size_t name_len, realm_len, users_len, list_len, out_len = 0;
	long long now;
	bool json;
	FILE *f;

	if (size < 9)
		return 0;
	memcpy(&now, data, sizeof(now));
	json = data[8] & 1;
	name = part(&p, end, &name_len);
	realm = part(&p, end, &realm_len);
	users = part(&p, end, &users_len);
	list = part(&p, end, &list_len);

	f = open_memstream(&out, &out_len);
	CHECK(f != NULL);
	CHECK(status_render(name, realm, realm_len, users, users_len, list, list_len, now, json,
			    f) == 0);
	CHECK(fclose(f) == 0);
	check_output(out, out_len, json);

	free(out);
	free(list);
	free(users);
	free(realm);
	free(name);
	return 0;
}
