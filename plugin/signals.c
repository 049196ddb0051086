/* signals.c - synchronous signal handling; see signals.h.
 *
 * The signal state is the one piece of process-wide state the style
 * allows: a signal belongs to the process, not to a module. */
#include "signals.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static struct {
	sigset_t watched;
	sigset_t original_mask;
	int stop_signal;
} signal_state;

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
	if (signals_is_stop(signo) && !signal_state.stop_signal)
		signal_state.stop_signal = signo;
}

int signals_poll_stop(void)
{
	sigset_t stops;
	struct timespec zero = { 0, 0 };
	int signo;

	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGHUP);
	sigaddset(&stops, SIGQUIT);
	for (signo = sigtimedwait(&stops, NULL, &zero); signo > 0;
	     signo = sigtimedwait(&stops, NULL, &zero))
		signals_note(signo);
	return signal_state.stop_signal;
}

int signals_stop_signal(void)
{
	return signal_state.stop_signal;
}
