/* sha256.h - SHA-256 (FIPS 180-4), for the run key's hash in a lease.
 *
 * A lease stores only the hash of the run key that `up` wrote to
 * env_file; `down` hashes the key it is given and compares. One-shot and
 * incremental forms; no allocation. */
#ifndef DRONE_DEPS_SHA256_H
#define DRONE_DEPS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 64

struct sha256 {
	uint32_t h[8];
	uint64_t bytes; /* message length so far */
	unsigned char block[64];
	size_t used; /* bytes waiting in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
/* Pads, writes the digest and wipes s. */
void sha256_final(struct sha256 *s, unsigned char out[SHA256_DIGEST_LEN]);
/* The digest of data as lowercase hex and a NUL (out holds 65 bytes). */
void sha256_hex(const void *data, size_t n, char out[SHA256_HEX_LEN + 1]);

#endif
