/* drone-deps - give a CI run the services it depends on, then clean up.
 *
 * The whole story: take signals synchronously, read the settings, bind
 * each dependency (warm if it answers, else cold), run the hook with the
 * binding in its environment, and tear down whatever was created, always.
 * See README.md for the contract; each step lives in its own module. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <sysexits.h>

#include "binding.h"
#include "config.h"
#include "deps.h"
#include "hook.h"
#include "http.h"
#include "lease.h"
#include "log.h"
#include "signals.h"
#include "status.h"
#include "warm.h"
#include "watchdog.h"

#ifndef DRONE_DEPS_VERSION
#define DRONE_DEPS_VERSION "dev"
#endif

extern char **environ;

/* A long hook leaves drone-deps idle: the opportunistic reap of other
 * runs' expired resources happens then, off the bind and teardown paths. A
 * hook that ends sooner skips it (a later run, or action reap, does it). */
#define REAP_AFTER_HOOK_START_MS 2000

/* Runs the hook with the binding, renewing leases every ttl/3. Returns the
 * hook's status (shell convention) or an exit code of drone-deps. */
static int run_hook(const struct config *cfg, struct deps *d, struct hook_result *result)
{
	struct hook_timers timers = {
		.once_after_ms = REAP_AFTER_HOOK_START_MS,
		.once = deps_reap_some,
		.tick_seconds = cfg->ttl / 3,
		.tick = deps_renew,
		.ctx = d,
	};
	char **env = binding_env(&d->binding, environ);
	struct hook_user user = { (unsigned)cfg->hook_uid, (unsigned)cfg->hook_gid };
	int code;

	if (!env) {
		log_error("out of memory building the hook's environment");
		return EX_SOFTWARE;
	}
	if (cfg->hook_uid >= 0)
		log_info("running the hook as uid %ld, gid %ld (hook_user), no other group",
			 cfg->hook_uid, cfg->hook_gid);
	else
		log_info("running the hook");
	if (hook_run(cfg->hook_argv, env, cfg->hook_uid >= 0 ? &user : NULL, &timers, result) < 0) {
		/* not started (fork failed): an internal error */
		code = EX_SOFTWARE;
	} else {
		code = result->status;
		log_info("the hook exited with status %d", code);
	}
	binding_env_free(env);
	return code;
}

/* action run and action up: bind, hook (run only), teardown (run, or any
 * failure), exit code. */
/* deps' on_cold_created: the watchdog guards a cold service from its
 * creation on, through the minutes its readiness can take. */
static void start_watchdog_early(struct deps *d, void *watchdog)
{
	watchdog_start(watchdog, d);
}

static int run_bound(const struct config *cfg, struct deps *d, struct watchdog *watchdog)
{
	struct hook_result result = { 0, 0 };
	int code, stop;

	if (cfg->action == ACTION_RUN) {
		d->on_cold_created = start_watchdog_early;
		d->on_cold_created_ctx = watchdog;
	}
	code = deps_bind(d);
	stop = signals_poll_stop();
	if (code == 0 && !stop && cfg->action == ACTION_RUN && !watchdog->id[0])
		watchdog_start(watchdog, d);
	if (code == 0 && !stop) {
		const char *env_file = cfg->value[SET_ENV_FILE];

		binding_print_masked(&d->binding, cfg->action == ACTION_UP ? stdout : stderr);
		fflush(stdout);
		/* hook_user: the hook reads env_file, mode 0600, as its owner */
		if (env_file && binding_write_env_file(&d->binding, env_file, cfg->hook_uid,
						       cfg->hook_gid) < 0) {
			log_error("env_file: cannot write '%s': %s", env_file, strerror(errno));
			code = EX_CANTCREAT;
		} else if (cfg->action == ACTION_UP) {
			log_info("left bound until 'down' or the lease ends (%ld s); binding in %s",
				 cfg->ttl, env_file);
			return 0;
		} else {
			code = run_hook(cfg, d, &result);
		}
	}
	/* From here a stop no longer cuts a wait: teardown has its own short
	 * deadline (see deps_teardown). */
	signals_begin_teardown();
	if (deps_teardown(d) < 0) {
		if (code == 0)
			code = EX_TEMPFAIL;
		/* the watchdog stays: it tries again when this container stops */
	} else {
		watchdog_stop(watchdog, d);
	}
	stop = signals_poll_stop();
	if (stop) {
		log_info("stopped by signal %d (%s)", stop, strsignal(stop));
		code = 128 + stop;
	}
	hook_reap_orphans();
	return code;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct deps deps;
	struct watchdog watchdog = { "" }; /* lives as long as deps, which may call it */
	char err[512];
	int code, rc;

	/* Non-dumpable: no core file with secrets in it, and /proc/<pid>/mem
	 * and environ are refused to a hook without CAP_SYS_PTRACE (a
	 * container's root has none by default). The hook's exec resets it. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (signals_setup() < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return EX_SOFTWARE;
	}
	rc = config_load(&cfg, argc, argv, environ, err, sizeof(err));
	config_wipe_secrets(environ);
	if (rc < 0) {
		/* a password read before the error must not appear in it */
		log_secret_add(cfg.value[SET_KEYCLOAK_ADMIN_PASSWORD]);
		log_secret_add(cfg.value[SET_KEYCLOAK_CLIENT_SECRET]);
		log_error("%s", err);
		code = EX_USAGE;
		goto out_config;
	}
	if (cfg.show_help || cfg.show_version || cfg.show_plugin_docs) {
		if (cfg.show_help)
			config_print_help(stdout);
		else if (cfg.show_plugin_docs)
			config_print_plugin_docs(stdout);
		else
			printf("drone-deps %s\n", DRONE_DEPS_VERSION);
		code = 0;
		goto out_config;
	}
	log_set_debug(cfg.debug);
	log_secret_add(cfg.value[SET_KEYCLOAK_ADMIN_PASSWORD]);
	log_secret_add(cfg.value[SET_KEYCLOAK_CLIENT_SECRET]);
	if (cfg.insecure)
		log_warn(
			"insecure: TLS certificates are NOT checked. Never use this outside local tests.");
	if (http_global_init() < 0) {
		log_error("cannot initialise libcurl");
		code = EX_SOFTWARE;
		goto out_config;
	}

	deps_init(&deps, &cfg);
	log_info("%s %s, run %s, job %s", config_action_name(cfg.action),
		 cfg.action == ACTION_WARM ? cfg.keycloak_url
		 : cfg.realm[0]		   ? cfg.realm
					   : "(all realms)",
		 cfg.run_id, cfg.job);
	if (cfg.action == ACTION_REAP)
		code = deps_reap_all(&deps);
	else if (cfg.action == ACTION_STATUS)
		code = status_run(&deps);
	else if (cfg.action == ACTION_WATCH)
		code = watchdog_run(&deps);
	else if (cfg.action == ACTION_DOWN)
		code = deps_down(&deps);
	else if (cfg.action == ACTION_WARM)
		code = warm_reconcile(&deps);
	else if (lease_key_new(cfg.run_key, cfg.run_key_hash) < 0) {
		log_error("no randomness available for the run key");
		code = EX_SOFTWARE;
	} else {
		/* the key goes to env_file (up) and to the watchdog, its hash
		 * into the lease: down must present the key to delete */
		code = run_bound(&cfg, &deps, &watchdog);
	}
	/* Every action ends at once on a stop, with the same status. Poll,
	 * not only look: a stop that came during a long stretch of work
	 * without a wait (a huge list) is still pending, and must not be
	 * lost behind an exit 0. run and up said so already. */
	if (cfg.action != ACTION_RUN && cfg.action != ACTION_UP && signals_poll_stop() &&
	    code != 128 + signals_stop_signal()) {
		log_info("stopped by signal %d (%s)", signals_stop_signal(),
			 strsignal(signals_stop_signal()));
		code = 128 + signals_stop_signal();
	}
	deps_logout(&deps);
	deps_free(&deps);
	http_global_cleanup();

out_config:
	explicit_bzero(cfg.run_key, sizeof(cfg.run_key));
	config_free(&cfg);
	log_secrets_clear();
	return code;
}
