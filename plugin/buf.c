/* buf.c - growable byte buffer; see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > (size_t)-1 - b->len - 1)
		return -1;
	need = b->len + extra + 1;
	if (b->limit && need > b->limit + 1)
		return -1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	/* Never realloc: a block that moves would leave its old bytes (a
	 * token, a password) behind in freed memory. Copy, wipe, free. */
	p = malloc(cap);
	if (!p)
		return -1;
	if (b->data) {
		memcpy(p, b->data, b->len + 1);
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const char *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int buf_json_string(struct buf *b, const char *s)
{
	size_t start = b->len;
	const unsigned char *p;

	if (buf_append(b, "\"", 1) < 0)
		return -1;
	for (p = (const unsigned char *)s; *p; p++) {
		int rc;

		switch (*p) {
		case '"': rc = buf_append(b, "\\\"", 2); break;
		case '\\': rc = buf_append(b, "\\\\", 2); break;
		case '\n': rc = buf_append(b, "\\n", 2); break;
		case '\r': rc = buf_append(b, "\\r", 2); break;
		case '\t': rc = buf_append(b, "\\t", 2); break;
		default:
			/* C0 and DEL escaped, and C1 (UTF-8 c2 80..9f) too: the
			 * same string, and no control character in the text */
			if (*p < 0x20 || *p == 0x7f)
				rc = buf_printf(b, "\\u%04x", *p);
			else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
				rc = buf_printf(b, "\\u%04x", *++p);
			else
				rc = buf_append(b, (const char *)p, 1);
		}
		if (rc < 0)
			goto out_undo;
	}
	if (buf_append(b, "\"", 1) < 0)
		goto out_undo;
	return 0;

out_undo:
	b->len = start;
	b->data[start] = '\0';
	return -1;
}

int buf_form_value(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = b->len;
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		char enc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
		int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			    *p == '~';

		if (buf_append(b, plain ? (const char *)p : enc, plain ? 1 : 3) < 0) {
			b->len = start;
			if (b->data)
				b->data[start] = '\0';
			return -1;
		}
	}
	return 0;
}

int buf_base64(struct buf *b, const unsigned char *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t start = b->len, i;

	for (i = 0; i < len; i += 3) {
		unsigned v = (unsigned)data[i] << 16;
		char out[4];

		if (i + 1 < len)
			v |= (unsigned)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		out[0] = alphabet[(v >> 18) & 63];
		out[1] = alphabet[(v >> 12) & 63];
		out[2] = (char)(i + 1 < len ? alphabet[(v >> 6) & 63] : '=');
		out[3] = (char)(i + 2 < len ? alphabet[v & 63] : '=');
		if (buf_append(b, out, 4) < 0) {
			b->len = start;
			if (b->data)
				b->data[start] = '\0';
			return -1;
		}
	}
	return 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free_secret(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap); /* not dropped before free() */
	buf_free(b);
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}
