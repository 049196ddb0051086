/* json.c - jsmn-based extraction; see json.h. */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS /* as json.h: one token layout */
#include <jsmn.h>

#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* jsmn's strict mode checks only a primitive's first character: "tru"
 * passes. Accept exactly true, false, null and JSON numbers. */
static bool primitive_valid(const char *p, size_t n)
{
	size_t i = 0;

	if ((n == 4 && !memcmp(p, "true", 4)) || (n == 5 && !memcmp(p, "false", 5)) ||
	    (n == 4 && !memcmp(p, "null", 4)))
		return true;
	if (i < n && p[i] == '-')
		i++;
	if (i >= n || !isdigit((unsigned char)p[i]))
		return false;
	if (p[i] == '0')
		i++;
	else
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
	if (i < n && p[i] == '.') {
		if (++i >= n || !isdigit((unsigned char)p[i]))
			return false;
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (i >= n || !isdigit((unsigned char)p[i]))
			return false;
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
	}
	return i == n;
}

int json_parse(struct json *j, const char *text, size_t len)
{
	unsigned int cap = 64;
	jsmn_parser parser;
	int n;

	j->text = text;
	j->tok = NULL;
	j->ntok = 0;
	for (;;) {
		jsmntok_t *t = realloc(j->tok, cap * sizeof(*t));

		if (!t)
			return -1;
		j->tok = t;
		jsmn_init(&parser);
		n = jsmn_parse(&parser, text, len, j->tok, cap);
		if (n != JSMN_ERROR_NOMEM)
			break;
		if (cap >= JSON_MAX_TOKENS)
			return -1;
		cap *= 4;
	}
	if (n < 1)
		goto out_invalid;
	j->ntok = n;
	/* Insist that the first token spans the whole document, bar white
	 * space after it, and is an object, array or string: jsmn would also
	 * accept "{} {}" as two roots. */
	if (json_skip(j, 0) != n || j->tok[0].type == JSMN_PRIMITIVE ||
	    j->tok[0].type == JSMN_UNDEFINED)
		goto out_invalid;
	for (size_t i = (size_t)j->tok[0].end; i < len; i++)
		if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t')
			goto out_invalid;
	for (int i = 0; i < n; i++)
		if (j->tok[i].type == JSMN_PRIMITIVE &&
		    !primitive_valid(text + j->tok[i].start,
				     (size_t)(j->tok[i].end - j->tok[i].start)))
			goto out_invalid;
	return 0;

out_invalid:
	j->ntok = 0;
	return -1;
}

void json_free(struct json *j)
{
	free(j->tok);
	j->tok = NULL;
	j->ntok = 0;
}

int json_skip(const struct json *j, int idx)
{
	int pending = 1;

	/* Each token owns `size` direct children; walk until every child of
	 * the subtree has been visited. */
	while (pending > 0 && idx < j->ntok) {
		pending += j->tok[idx].size - 1;
		idx++;
	}
	return idx;
}

int json_object_get(const struct json *j, int obj, const char *key)
{
	size_t klen = strlen(key);
	int i, idx;

	if (obj < 0 || obj >= j->ntok || j->tok[obj].type != JSMN_OBJECT)
		return -1;
	idx = obj + 1;
	for (i = 0; i < j->tok[obj].size && idx < j->ntok; i++) {
		const jsmntok_t *k = &j->tok[idx];
		int val = idx + 1;

		if (val >= j->ntok)
			return -1;
		if (k->type == JSMN_STRING && (size_t)(k->end - k->start) == klen &&
		    memcmp(j->text + k->start, key, klen) == 0)
			return val;
		idx = json_skip(j, val);
	}
	return -1;
}

int json_array_get(const struct json *j, int arr, int i)
{
	int idx, n;

	if (arr < 0 || arr >= j->ntok || j->tok[arr].type != JSMN_ARRAY || i < 0 ||
	    i >= j->tok[arr].size)
		return -1;
	idx = arr + 1;
	for (n = 0; n < i && idx < j->ntok; n++)
		idx = json_skip(j, idx);
	return idx < j->ntok ? idx : -1;
}

int json_iter_init(struct json_iter *it, const struct json *j, int arr)
{
	it->j = j;
	it->next = arr + 1;
	it->left = 0;
	if (arr < 0 || arr >= j->ntok || j->tok[arr].type != JSMN_ARRAY)
		return -1;
	it->left = j->tok[arr].size;
	return it->left;
}

int json_iter_next(struct json_iter *it)
{
	int idx = it->next;

	if (it->left <= 0 || idx >= it->j->ntok)
		return -1;
	it->left--;
	it->next = json_skip(it->j, idx);
	return idx;
}

int json_array_len(const struct json *j, int arr)
{
	if (arr < 0 || arr >= j->ntok || j->tok[arr].type != JSMN_ARRAY)
		return -1;
	return j->tok[arr].size;
}

bool json_is_object(const struct json *j, int idx)
{
	return idx >= 0 && idx < j->ntok && j->tok[idx].type == JSMN_OBJECT;
}

bool json_is_string(const struct json *j, int idx)
{
	return idx >= 0 && idx < j->ntok && j->tok[idx].type == JSMN_STRING;
}

bool json_is_true(const struct json *j, int idx)
{
	return idx >= 0 && idx < j->ntok && j->tok[idx].type == JSMN_PRIMITIVE &&
	       j->tok[idx].end - j->tok[idx].start == 4 &&
	       memcmp(j->text + j->tok[idx].start, "true", 4) == 0;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Appends code point cp as UTF-8; returns bytes written or -1. */
static int put_utf8(unsigned cp, char *out, size_t room)
{
	unsigned char b[4];
	int n, i;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xC0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if ((size_t)n > room)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (char)b[i];
	return n;
}

int json_string_copy(const struct json *j, int idx, char *out, size_t outsz)
{
	const char *p, *end;
	size_t o = 0;

	if (!json_is_string(j, idx) || outsz == 0)
		return -1;
	p = j->text + j->tok[idx].start;
	end = j->text + j->tok[idx].end;
	while (p < end) {
		char c = *p++;

		if (c == '\\') {
			unsigned cp;
			int n;

			if (p >= end)
				return -1;
			c = *p++;
			switch (c) {
			case '"':
			case '\\':
			case '/': break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u':
				if (hex4(p, end, &cp) < 0)
					return -1;
				p += 4;
				if (cp >= 0xD800 && cp < 0xDC00) {
					unsigned lo;

					if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
					    hex4(p + 2, end, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
						return -1;
					p += 6;
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
					return -1;
				}
				if (cp == 0)
					return -1; /* a NUL would truncate silently */
				n = put_utf8(cp, out + o, outsz - 1 - o);
				if (n < 0)
					return -1;
				o += (size_t)n;
				continue;
			default: return -1;
			}
		}
		if (o + 1 >= outsz)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

int json_get_string(const struct json *j, int obj, const char *key, char *out, size_t outsz)
{
	return json_string_copy(j, json_object_get(j, obj, key), out, outsz);
}

int json_get_long(const struct json *j, int obj, const char *key, long long *out)
{
	int idx = json_object_get(j, obj, key);
	char num[32], *end;
	const jsmntok_t *t;
	size_t n;
	long long v;

	if (idx < 0)
		return -1;
	t = &j->tok[idx];
	if (t->type != JSMN_PRIMITIVE && t->type != JSMN_STRING)
		return -1;
	n = (size_t)(t->end - t->start);
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, j->text + t->start, n);
	num[n] = '\0';
	if (!(num[0] == '-' || (num[0] >= '0' && num[0] <= '9')))
		return -1;
	errno = 0;
	v = strtoll(num, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int json_error_message(const char *text, size_t len, const char *const keys[], char *out,
		       size_t outsz)
{
	struct json j;
	int rc = -1;

	out[0] = '\0';
	if (json_parse(&j, text, len) == 0 && json_is_object(&j, 0))
		for (int i = 0; keys[i] && rc < 0; i++)
			if (json_get_string(&j, 0, keys[i], out, outsz) >= 0)
				rc = 0;
	json_free(&j);
	if (rc < 0)
		out[0] = '\0';
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return rc;
}
