/* json.h - read values out of JSON responses with jsmn.
 *
 * json_parse() tokenizes a whole document (growing the token array on
 * JSMN_ERROR_NOMEM); lookups walk only an object's direct children, so a
 * nested key of the same name never matches. Token indexes are ints; -1
 * means "absent". The struct json borrows the text: keep it alive. */
#ifndef DRONE_DEPS_JSON_H
#define DRONE_DEPS_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Parent links: without them jsmn finds the parent of each closing
 * bracket by walking back over every token, which is quadratic in a long
 * array (a realm list of 100 k entries). Every user of jsmntok_t must see
 * the same layout: json.c defines it too, before its own include. */
#ifndef JSMN_PARENT_LINKS
#define JSMN_PARENT_LINKS
#endif
#define JSMN_HEADER
#include <jsmn.h>
#undef JSMN_HEADER

struct json {
	const char *text;
	jsmntok_t *tok;
	int ntok;
};

/* Parses text[0..len). Returns 0, or -1 when it is not one complete JSON
 * value (truncated, malformed, or over JSON_MAX_TOKENS tokens). The root
 * is token 0. Free with json_free() in both cases. */
int json_parse(struct json *j, const char *text, size_t len);
void json_free(struct json *j);

/* Index of the token after idx's whole subtree. */
int json_skip(const struct json *j, int idx);
/* Value token of key in object obj (direct children only), or -1. */
int json_object_get(const struct json *j, int obj, const char *key);
/* Value token of the i-th element of array arr, or -1. It walks the
 * array from its start: for one element. To visit them all, iterate. */
int json_array_get(const struct json *j, int arr, int i);

/* The elements of an array in one pass: json_iter_init() then
 * json_iter_next() until it returns -1. A loop over json_array_get(i)
 * would walk the array again for each i (quadratic: 100 k realms took
 * seconds of CPU). */
struct json_iter {
	const struct json *j;
	int next; /* token of the next element */
	int left; /* elements not yet returned */
};

/* Starts at the first element of array arr. Returns the number of
 * elements, or -1 (and an empty iteration) when arr is not an array. */
int json_iter_init(struct json_iter *it, const struct json *j, int arr);
/* The next element's token, or -1 after the last. */
int json_iter_next(struct json_iter *it);
int json_array_len(const struct json *j, int arr);
bool json_is_object(const struct json *j, int idx);
bool json_is_string(const struct json *j, int idx);
/* Whether token idx is the literal true. */
bool json_is_true(const struct json *j, int idx);

/* Copies the string token idx into out (escapes decoded, \u to UTF-8).
 * Returns its length, or -1 if idx is not a string, it does not fit in
 * outsz (with the NUL), or it holds an escape that is invalid or a NUL. */
int json_string_copy(const struct json *j, int idx, char *out, size_t outsz);
/* Shorthand: string member key of object obj into out; -1 as above or when
 * absent. */
int json_get_string(const struct json *j, int obj, const char *key, char *out, size_t outsz);
/* Integer member key of object obj (a number token, or a string of digits
 * as Keycloak stores attributes). Returns 0 and sets *out, or -1. */
int json_get_long(const struct json *j, int obj, const char *key, long long *out);

/* The first of keys (a NULL-terminated list) present as a string member
 * of the object text holds, copied into out with control characters as
 * spaces: an error answer's message. Returns 0, or -1 ("" in out) when the
 * text is not a JSON object or has none of them. */
int json_error_message(const char *text, size_t len, const char *const keys[], char *out,
		       size_t outsz);

#define JSON_MAX_TOKENS (1 << 20)

#endif
