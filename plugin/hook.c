/* hook.c - spawn, forward, reap; see hook.h. */
#include "hook.h"

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "signals.h"

extern char **environ;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Closes every descriptor above stderr: the hook must not inherit the
 * Keycloak connection (with a bearer token on it), the Docker socket, or
 * anything drone-deps itself was given. Async-signal-safe. */
static void close_inherited_fds(void)
{
	struct rlimit rl;
	long fd, max = 65536;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	/* Kernels before 5.9: close them one by one. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max)
		max = (long)rl.rlim_cur;
	for (fd = 3; fd < max; fd++)
		(void)close((int)fd);
}

/* Writes "drone-deps: error: cannot run the hook: <why>" in one go, as a
 * child may (async-signal-safe). */
static void child_error(const char *why)
{
	static const char msg[] = "drone-deps: error: cannot run the hook: ";

	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)!write(STDERR_FILENO, why, strlen(why));
}

/* In the child: hook_user's identity, all of it or none. Supplementary
 * groups first (root's own include groups that may open the Docker
 * socket), then the group, then the user, which drops every capability;
 * then checked, since a half-dropped hook must never run. Exits 126 on
 * any failure. */
static void become_user(const struct hook_user *user)
{
	if (setgroups(0, NULL) != 0 || setgid((gid_t)user->gid) != 0 ||
	    setuid((uid_t)user->uid) != 0) {
		child_error("cannot switch to hook_user (setgroups, setgid, setuid)\n");
		_exit(126);
	}
	if (getuid() != (uid_t)user->uid || geteuid() != (uid_t)user->uid ||
	    getgid() != (gid_t)user->gid || getegid() != (gid_t)user->gid ||
	    getgroups(0, NULL) != 0 || setuid(0) == 0) {
		child_error("hook_user: the identity did not take\n");
		_exit(126);
	}
}

/* In the child: own process group, the terminal if there is one, default
 * signals, hook_user's identity, the hook's environment, exec. Only
 * async-signal-safe calls and execvp (which is, for our purposes, given
 * environ is set). */
static void hook_child(char *const argv[], char *const envp[], const struct hook_user *user)
{
	int code;

	setpgid(0, 0);
	/* With a terminal, the hook's group must be in the foreground or it
	 * stops on its first read; Ctrl-C then reaches the hook directly. */
	if (isatty(STDIN_FILENO))
		tcsetpgrp(STDIN_FILENO, getpid());
	signals_restore_for_child();
	close_inherited_fds();
	if (user)
		become_user(user);
	environ = (char **)envp;
	execvp(argv[0], argv);
	code = (errno == ENOENT || errno == ENOTDIR) ? 127 : 126;
	/* stderr is unbuffered: one write, no stdio state shared with the
	 * parent is flushed twice. */
	child_error(code == 127 ? "command not found\n" : "permission denied or not executable\n");
	_exit(code);
}

static int status_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 70;
}

void hook_reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int hook_run(char *const argv[], char *const envp[], const struct hook_user *user,
	     const struct hook_timers *t, struct hook_result *out)
{
	long long next_tick, once_at, kill_at = 0;
	bool done = false;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	/* Orphans of the hook must come back to us to be reaped: PID 1 gets
	 * them anyway, elsewhere we ask to be their subreaper. */
	if (getpid() != 1)
		(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	pid = fork();
	if (pid < 0) {
		log_error("cannot start the hook: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		hook_child(argv, envp, user);
	/* Also from the parent: whichever runs first, the group exists
	 * before a signal is forwarded to it. */
	setpgid(pid, pid);

	next_tick = now_ms() + t->tick_seconds * 1000;
	once_at = t->once ? now_ms() + t->once_after_ms : 0;
	while (!done) {
		long long now = now_ms(), wake = next_tick;
		struct timespec ts;
		siginfo_t info;
		int signo;

		if (kill_at && kill_at < wake)
			wake = kill_at;
		if (once_at && once_at < wake)
			wake = once_at;
		if (wake < now)
			wake = now;
		ts.tv_sec = (time_t)((wake - now) / 1000);
		ts.tv_nsec = (long)((wake - now) % 1000) * 1000000L;

		signo = sigtimedwait(signals_watched(), &info, &ts);
		if (signo == SIGCHLD) {
			int wstatus;
			pid_t p;

			for (p = waitpid(-1, &wstatus, WNOHANG); p > 0;
			     p = waitpid(-1, &wstatus, WNOHANG)) {
				if (p == pid) {
					out->status = status_code(wstatus);
					done = true;
				}
			}
		} else if (signo > 0) {
			log_info("received signal %d (%s), forwarding it to the hook", signo,
				 strsignal(signo));
			(void)kill(-pid, signo);
			if (signals_is_stop(signo) && !kill_at) {
				signals_note(signo);
				kill_at = now_ms() + HOOK_GRACE_SECONDS * 1000LL;
			}
		} else if (errno != EAGAIN && errno != EINTR) {
			log_error("waiting for signals: %s", strerror(errno));
		}

		now = now_ms();
		if (!done && kill_at && now >= kill_at) {
			log_warn("the hook did not stop within %d s, killing its process group",
				 HOOK_GRACE_SECONDS);
			(void)kill(-pid, SIGKILL);
			kill_at = now + 3600 * 1000LL; /* once */
		}
		if (!done && once_at && !kill_at && now >= once_at) {
			once_at = 0;
			t->once(t->ctx);
		}
		if (!done && t->tick && now >= next_tick) {
			t->tick(t->ctx);
			next_tick = now_ms() + t->tick_seconds * 1000;
		}
		/* A stop taken while a timer's request waited (it ends the
		 * request) is forwarded here. */
		if (!done && !kill_at && signals_stop_signal()) {
			log_info("received signal %d (%s), forwarding it to the hook",
				 signals_stop_signal(), strsignal(signals_stop_signal()));
			(void)kill(-pid, signals_stop_signal());
			kill_at = now_ms() + HOOK_GRACE_SECONDS * 1000LL;
		}
	}
	if (isatty(STDIN_FILENO))
		(void)tcsetpgrp(STDIN_FILENO, getpgrp());
	out->stop_signal = signals_stop_signal();
	return 0;
}
