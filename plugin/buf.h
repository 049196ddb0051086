/* buf.h - a growable byte buffer, always NUL-terminated.
 *
 * Owns its storage: buf_free() releases it. Appends never fail silently:
 * they return -1 on allocation failure (or on a size cap, see limit)
 * and leave the buffer as it was. Growing wipes the old storage before
 * freeing it, so a buffer that held a secret leaves no copy behind;
 * buf_free_secret() wipes the last one. */
#ifndef DRONE_DEPS_BUF_H
#define DRONE_DEPS_BUF_H

#include <stddef.h>

struct buf {
	char *data;   /* NULL until the first append; then NUL-terminated */
	size_t len;   /* bytes in use, not counting the NUL */
	size_t cap;   /* bytes allocated */
	size_t limit; /* 0: no limit; else appends past this many bytes fail */
};

#define BUF_INIT              \
	{                     \
		NULL, 0, 0, 0 \
	}

int buf_append(struct buf *b, const char *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
int buf_json_string(struct buf *b, const char *s);
/* Appends s percent-encoded for application/x-www-form-urlencoded. */
int buf_form_value(struct buf *b, const char *s);
/* Appends len bytes of data base64-encoded (RFC 4648, with padding). */
int buf_base64(struct buf *b, const unsigned char *data, size_t len);
/* Empties the buffer but keeps its storage. */
void buf_reset(struct buf *b);
/* Overwrites the contents with zeros, then frees: for buffers that held a
 * secret. */
void buf_free_secret(struct buf *b);
void buf_free(struct buf *b);
/* Returns the contents, "" when empty; never NULL. */
const char *buf_str(const struct buf *b);

#endif
