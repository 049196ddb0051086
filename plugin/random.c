/* random.c - getrandom-based secrets; see random.h. */
#include "random.h"

#include <errno.h>
#include <sys/random.h>

static int random_bytes(unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

/* Maps random bytes onto alphabet without modulo bias: bytes at or above
 * the largest multiple of the alphabet size are drawn again. */
static int random_from(const char *alphabet, unsigned size, char *out, size_t n)
{
	unsigned limit = 256 - 256 % size;
	size_t i = 0;

	while (i < n) {
		unsigned char chunk[64];
		size_t k;

		if (random_bytes(chunk, sizeof(chunk)) < 0)
			return -1;
		for (k = 0; k < sizeof(chunk) && i < n; k++)
			if (chunk[k] < limit)
				out[i++] = alphabet[chunk[k] % size];
	}
	out[n] = '\0';
	return 0;
}

int random_alnum(char *out, size_t n)
{
	static const char alnum[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	return random_from(alnum, sizeof(alnum) - 1, out, n);
}

int random_hex(char *out, size_t n)
{
	return random_from("0123456789abcdef", 16, out, n);
}
