/* log.h - one-line messages on stderr, prefixed "drone-deps: ".
 *
 * Every line passes a secret filter: strings registered with
 * log_secret_add() are replaced by "***" wherever they appear, so a secret
 * that slips into a message (an engine error echoing a value, say) still
 * never reaches the log. Debug lines print only when log_set_debug(true). */
#ifndef DRONE_DEPS_LOG_H
#define DRONE_DEPS_LOG_H

#include <stdbool.h>

void log_set_debug(bool on);
bool log_debug_enabled(void);
/* Registers a secret to mask (copied; at most LOG_MAX_SECRETS, strings of
 * fewer than 4 characters are not registered: they would mask too much). */
void log_secret_add(const char *secret);
/* Forgets every registered secret and wipes the copies. */
void log_secrets_clear(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define LOG_MAX_SECRETS 16

#endif
