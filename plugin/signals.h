/* signals.h - drone-deps takes its signals synchronously.
 *
 * signals_setup() blocks the signals drone-deps forwards or waits for
 * (TERM, INT, HUP, QUIT, USR1, USR2, CHLD) before anything else happens,
 * so none of them can kill it half-way: they stay pending until a
 * sigtimedwait() takes them. No work is done in signal handlers because
 * there are none. The first stop signal (TERM, INT, HUP, QUIT) received is
 * remembered: it decides the exit status, 128 + N. */
#ifndef DRONE_DEPS_SIGNALS_H
#define DRONE_DEPS_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

int signals_setup(void);
/* The set taken with sigtimedwait: stop signals, USR1/2 and CHLD. */
const sigset_t *signals_watched(void);
/* Restores the mask and dispositions drone-deps started with: for a child
 * between fork and exec. Async-signal-safe. */
void signals_restore_for_child(void);
bool signals_is_stop(int signo);
/* Records signo if it is the first stop signal. */
void signals_note(int signo);
/* Takes pending stop signals without waiting (between bind steps);
 * returns the first stop signal received so far, or 0. */
int signals_poll_stop(void);
/* The first stop signal received so far, or 0. */
int signals_stop_signal(void);

/* Stops are prompt: every wait of the bind (retry backoff, readiness
 * polls, a transfer in flight) asks signals_interrupted() and ends when
 * it says so. Once teardown begins, waits run to their own (short)
 * deadlines instead: a stop no longer cuts them. */
bool signals_interrupted(void);
void signals_begin_teardown(void);

/* After a stop, what is left to do (teardown, the watchdog's removal,
 * the admin logout) shares one budget: it counts from the stop, or from
 * the start of teardown when the stop came before it (the hook's grace
 * ran first). Woodpecker kills a stopped step after 20 s (10 of them the
 * hook's grace), docker stop after 10 s: 5 s fits both. */
#define SIGNALS_STOPPED_BUDGET_MS 5000
/* The monotonic ms (http_now_ms) by which that budget ends, or 0 when
 * no stop has come. Takes pending stops first. */
long long signals_stop_deadline_ms(void);
/* deadline_ms, or the stopped budget's end when that is sooner: every
 * request and sleep of teardown is clamped to it, so a stop during a
 * normal teardown shortens what is left of it. */
long long signals_clamp_deadline(long long deadline_ms);
/* A descriptor that polls readable while a stop signal is pending, or
 * -1. Close-on-exec. */
int signals_stop_fd(void);
/* Sleeps ms milliseconds, less when signals_interrupted(). */
void signals_sleep_ms(long ms);

#endif
