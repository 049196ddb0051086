/* log.c - stderr logging with a secret filter; see log.h.
 *
 * The debug flag and the secret list are the only process-wide state
 * besides the signal state: a log call must be possible from every module
 * without threading a context through each of them. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
	bool debug;
	char *secrets[LOG_MAX_SECRETS];
	int nsecrets;
} log_state;

void log_set_debug(bool on)
{
	log_state.debug = on;
}

bool log_debug_enabled(void)
{
	return log_state.debug;
}

void log_secret_add(const char *secret)
{
	char *copy;

	if (!secret || strlen(secret) < 4 || log_state.nsecrets >= LOG_MAX_SECRETS)
		return;
	copy = strdup(secret);
	if (copy)
		log_state.secrets[log_state.nsecrets++] = copy;
}

void log_secrets_clear(void)
{
	int i;

	for (i = 0; i < log_state.nsecrets; i++) {
		volatile char *p = log_state.secrets[i];

		while (*p)
			*p++ = 0;
		free(log_state.secrets[i]);
		log_state.secrets[i] = NULL;
	}
	log_state.nsecrets = 0;
}

/* Replaces every registered secret in line (in place; "***" is never longer
 * than a registered secret). */
static void log_mask(char *line)
{
	int i;

	for (i = 0; i < log_state.nsecrets; i++) {
		const char *s = log_state.secrets[i];
		size_t n = strlen(s);
		char *hit;

		for (hit = strstr(line, s); hit; hit = strstr(line, s)) {
			/* in place, inside a NUL-terminated line */
			memcpy(hit, "***", 3); // NOLINT(bugprone-not-null-terminated-result)
			memmove(hit + 3, hit + n, strlen(hit + n) + 1);
		}
	}
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	log_mask(line);
	/* One message, one line: control characters from values (an engine's
	 * error text, a realm's marks) could forge lines of their own or drive
	 * the terminal: C0, DEL, and C1 as UTF-8 (U+0085 ends a line for some
	 * readers, U+009B starts a terminal command), as status prints them. */
	for (unsigned char *p = (unsigned char *)line; *p; p++) {
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			p[0] = '?';
			p[1] = '?';
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			*p = '?';
		}
	}
	fprintf(stderr, "drone-deps: %s%s\n", level, line);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("warning: ", fmt, ap);
	va_end(ap);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("error: ", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_state.debug)
		return;
	va_start(ap, fmt);
	log_line("debug: ", fmt, ap);
	va_end(ap);
}
