/*
 * getrandom(2) entropy source for the static mbedTLS build (musl only).
 *
 * mbedTLS 2.28 calls the getrandom syscall only when built against glibc
 * (entropy_poll.c tests __GLIBC__); under musl it falls back to opening
 * /dev/urandom, so every TLS handshake fails in a root without /dev (a
 * chroot, a scratch or BusyBox container with a minimal /dev, a
 * distroless sandbox).  tools/static-deps.sh therefore builds mbedTLS with
 * MBEDTLS_NO_PLATFORM_ENTROPY and MBEDTLS_ENTROPY_HARDWARE_ALT set, and adds
 * this file's object to libmbedcrypto.a: mbedtls_entropy_init() then
 * registers mbedtls_hardware_poll() below as its only strong source.
 *
 * Not part of plugin/: the dev build links the system mbedTLS or OpenSSL
 * through libcurl and never sees this file.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/random.h>
#include <sys/types.h>

#include "mbedtls/entropy.h"
#include "mbedtls/entropy_poll.h"

/*
 * Fill output with len bytes from the kernel's CSPRNG; *olen gets the count.
 * Blocks only before the kernel pool is initialised (flags 0), which is the
 * behaviour mbedTLS has with glibc.  Returns 0, or
 * MBEDTLS_ERR_ENTROPY_SOURCE_FAILED with *olen 0.
 */
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len,
			  size_t *olen)
{
	size_t done = 0;

	(void)data; /* no per-source state */
	*olen = 0;
	while (done < len) {
		ssize_t n = getrandom(output + done, len - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
		}
		done += (size_t)n;
	}
	*olen = done;
	return 0;
}
