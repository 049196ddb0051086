/* hook.h - run the recipe's test hook and supervise it, as tini would.
 *
 * The hook runs in its own process group with the given environment. Every
 * signal drone-deps receives from the watched set (see signals.h) is
 * forwarded to that group; after a stop signal, the group gets
 * HOOK_GRACE_SECONDS to exit before SIGKILL. Zombies are reaped: drone-deps
 * is a subreaper, or PID 1 in a container. While the hook runs, the timers
 * (lease renewal, the opportunistic reap) run in the same loop. */
#ifndef DRONE_DEPS_HOOK_H
#define DRONE_DEPS_HOOK_H

#define HOOK_GRACE_SECONDS 10

struct hook_result {
	int status;	 /* shell convention: exit code, 128+N if signal N,
			     127 command not found, 126 not executable */
	int stop_signal; /* first stop signal drone-deps received, or 0 */
};

typedef void (*hook_tick_fn)(void *ctx);

/* Work drone-deps does while the hook runs (it is idle otherwise): once(),
 * once_after_ms after the start if the hook still runs then, and tick()
 * every tick_seconds. Either may be NULL. */
struct hook_timers {
	long once_after_ms;
	hook_tick_fn once;
	long tick_seconds;
	hook_tick_fn tick;
	void *ctx;
};

/* hook_user: the identity the hook runs as instead of drone-deps' own. */
struct hook_user {
	unsigned uid, gid;
};

/* Runs argv[0] (searched in PATH) with envp and waits for it; as user
 * (no supplementary groups) unless user is NULL. Returns 0 with *out
 * filled, or -1 when it could not be started at all (fork failed). Exec
 * failures, and a failure to take user's identity, are reported as
 * status 126/127. */
int hook_run(char *const argv[], char *const envp[], const struct hook_user *user,
	     const struct hook_timers *timers, struct hook_result *out);

/* Reaps any exited children without waiting (zombies of orphans). */
void hook_reap_orphans(void);

#endif
