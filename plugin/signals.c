/* signals.c - synchronous signal handling; see signals.h.
 *
 * The signal state is the one piece of process-wide state the style
 * allows: a signal belongs to the process, not to a module. */
#include "signals.h"

#include <errno.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>

static struct {
	sigset_t watched;
	sigset_t original_mask;
	sigset_t stops;
	int stop_signal;
	int stop_fd;		  /* signalfd of the stop signals, for poll() */
	bool tearing_down;	  /* a stop no longer ends a wait */
	long long stop_at_ms;	  /* monotonic: when the first stop was taken */
	long long teardown_at_ms; /* monotonic: when teardown began */
} signal_state = { .stop_fd = -1 };

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int signals_setup(void)
{
	static const int watched[] = {
		SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD
	};
	struct sigaction ign;
	size_t i;

	sigemptyset(&signal_state.watched);
	for (i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
		sigaddset(&signal_state.watched, watched[i]);
	/* TTOU too: giving the terminal back to our own process group after
	 * the hook (tcsetpgrp from a background group) would stop us. */
	sigaddset(&signal_state.watched, SIGTTOU);
	if (sigprocmask(SIG_BLOCK, &signal_state.watched, &signal_state.original_mask) != 0)
		return -1;
	sigdelset(&signal_state.watched, SIGTTOU);
	sigemptyset(&signal_state.stops);
	sigaddset(&signal_state.stops, SIGTERM);
	sigaddset(&signal_state.stops, SIGINT);
	sigaddset(&signal_state.stops, SIGHUP);
	sigaddset(&signal_state.stops, SIGQUIT);
	/* Readable while a stop signal is pending: a transfer in flight
	 * polls it beside its socket and ends at once. Never read: the
	 * signal is taken with sigtimedwait like every other. Without it
	 * (an old kernel) transfers still end within a second. */
	signal_state.stop_fd = signalfd(-1, &signal_state.stops, SFD_NONBLOCK | SFD_CLOEXEC);
	/* A closed stderr pipe must not kill drone-deps before teardown. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	return sigaction(SIGPIPE, &ign, NULL);
}

const sigset_t *signals_watched(void)
{
	return &signal_state.watched;
}

void signals_restore_for_child(void)
{
	static const int reset[] = { SIGTERM, SIGINT,  SIGHUP,	SIGQUIT,
				     SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE };
	struct sigaction dfl;
	size_t i;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	/* An ignored disposition survives exec. drone-deps may have been
	 * started with INT and QUIT ignored (a shell's background job is), and
	 * ignores PIPE itself; the hook must get default ones, or the signals
	 * drone-deps forwards would not stop it. */
	for (i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
		sigaction(reset[i], &dfl, NULL);
	sigprocmask(SIG_SETMASK, &signal_state.original_mask, NULL);
}

bool signals_is_stop(int signo)
{
	return signo == SIGTERM || signo == SIGINT || signo == SIGHUP || signo == SIGQUIT;
}

void signals_note(int signo)
{
	if (signals_is_stop(signo) && !signal_state.stop_signal) {
		signal_state.stop_signal = signo;
		signal_state.stop_at_ms = monotonic_ms();
	}
}

int signals_poll_stop(void)
{
	struct timespec zero = { 0, 0 };
	int signo;

	for (signo = sigtimedwait(&signal_state.stops, NULL, &zero); signo > 0;
	     signo = sigtimedwait(&signal_state.stops, NULL, &zero))
		signals_note(signo);
	return signal_state.stop_signal;
}

bool signals_interrupted(void)
{
	return signals_poll_stop() && !signal_state.tearing_down;
}

void signals_begin_teardown(void)
{
	if (!signal_state.tearing_down)
		signal_state.teardown_at_ms = monotonic_ms();
	signal_state.tearing_down = true;
}

long long signals_stop_deadline_ms(void)
{
	long long base;

	/* first: a stop taken by this very poll sets stop_at_ms */
	if (!signals_poll_stop())
		return 0;
	base = signal_state.stop_at_ms;
	/* A stop before teardown cut the waits of the bind or the hook's
	 * grace ran: the budget counts from teardown's start. A stop during
	 * teardown counts from the stop. */
	if (signal_state.tearing_down && signal_state.teardown_at_ms > base)
		base = signal_state.teardown_at_ms;
	return base + SIGNALS_STOPPED_BUDGET_MS;
}

long long signals_clamp_deadline(long long deadline_ms)
{
	long long limit = signals_stop_deadline_ms();

	return limit && limit < deadline_ms ? limit : deadline_ms;
}

int signals_stop_fd(void)
{
	return signal_state.stop_fd;
}

void signals_sleep_ms(long ms)
{
	struct timespec ts;
	long long limit = signals_stop_deadline_ms();

	/* nor past the stopped budget once a stop came */
	if (limit) {
		long long left = limit - monotonic_ms();

		if (left <= 0)
			return;
		if (left < ms)
			ms = (long)left;
	}
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;

	/* sigtimedwait takes a stop as it arrives; it only shortens the
	 * sleep before teardown begins. */
	while (!signals_interrupted()) {
		struct timespec start, now;
		long long left;
		int signo;

		clock_gettime(CLOCK_MONOTONIC, &start);
		signo = sigtimedwait(&signal_state.stops, NULL, &ts);
		if (signo > 0)
			signals_note(signo);
		else if (errno == EAGAIN)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec -
		       ((long long)(now.tv_sec - start.tv_sec) * 1000000000LL +
			(now.tv_nsec - start.tv_nsec));
		if (left <= 0)
			return;
		ts.tv_sec = (time_t)(left / 1000000000LL);
		ts.tv_nsec = (long)(left % 1000000000LL);
	}
}

int signals_stop_signal(void)
{
	return signal_state.stop_signal;
}
