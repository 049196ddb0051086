#!/usr/bin/env python3
"""The cold path's main rules with a real Keycloak: drone-deps deploys the
locally built Keycloak image (tools/keycloak-image.sh, `make keycloak-image`)
under the default keycloak_image name, waits for it, binds, the hook logs
in with the binding, and teardown removes service and secret; and the
watchdog removes them after the plugin container is SIGKILLed mid-hook.

Needs a running dockerd in an active swarm, the Keycloak image and the
plugin image (`make docker-up keycloak-image image`). Every test removes the
services, secrets and containers of its run ids, even when it fails; the
suite removes its overlay network."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PYTHON, ROOT, check, main, read_env_file, test  # noqa: E402

# The stand-in suite's swarm helpers; its own tests stay its own to run.
_registered = len(harness._tests)
import test_cold as cs  # noqa: E402
del harness._tests[_registered:]


def default_image():
    """keycloak_image's default, as the code defines it."""
    src = open(os.path.join(ROOT, "plugin", "config.h")).read()
    return re.search(r'#define KEYCLOAK_IMAGE_DEFAULT "([^"]+)"', src).group(1)


IMAGE = default_image()
# A real Keycloak starts in 15-40 s alone, several times that on a busy
# machine: the bind gets drone-deps' default timeout.
BIND_TIMEOUT = 300
# Lines a start-dev prints when it re-augments the build: the image is
# built so that it never does.
REAUGMENT = ("Updating the configuration", "Changes detected in configuration")


@test("cold, real Keycloak: the default image deploys, binds, the hook logs in, service and secret removed")
@cs.with_cold
def real_cycle(ctx, cold):
    rid, env = cold.settings(keycloak_image=None, timeout=BIND_TIMEOUT)
    svc = "keyc-" + rid
    hook = ("date +%%s.%%N > %s; env > %s; %s %s %s; %s service inspect %s > %s; "
            "%s service logs --raw %s > %s 2>&1" %
            (ctx.path("hook.t"), ctx.path("hook.env"), PYTHON, cs.LOGIN, ctx.path("login.out"),
             cs.DOCKER, svc, ctx.path("inspect.json"), cs.DOCKER, svc, ctx.path("service.log")))
    t0 = time.time()
    r = ctx.run(dict(env, PLUGIN_HOOK=hook), timeout=BIND_TIMEOUT + 120)
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-1500:]))
    bind_s = float(open(ctx.path("hook.t")).read()) - t0
    e = read_env_file(ctx.path("hook.env"))
    check(e.get("DEPS_KEYCLOAK_MODE") == "cold", "mode %r" % e.get("DEPS_KEYCLOAK_MODE"))
    check(e.get("DEPS_KEYCLOAK_URL") == env["PLUGIN_COLD_URL"], "url %r" % e.get("DEPS_KEYCLOAK_URL"))
    check(e.get("DEPS_KEYCLOAK_REALM") == "lasuite-drive-%s" % rid, "realm %r" % e.get("DEPS_KEYCLOAK_REALM"))
    check(os.path.exists(ctx.path("login.out")) and open(ctx.path("login.out")).read().startswith("login ok"),
          "the hook could not log in with the binding")
    cs_spec = json.load(open(ctx.path("inspect.json")))[0]["Spec"]["TaskTemplate"]["ContainerSpec"]
    check(cs_spec["Image"].split("@")[0] == IMAGE, "image %r, want the default %r" % (cs_spec["Image"], IMAGE))
    check(not any("PASSWORD=" in v for v in cs_spec.get("Env", [])), "a password in the env: %s" % cs_spec.get("Env"))
    log = open(ctx.path("service.log"), errors="replace").read()
    started = "Keycloak %s on JVM" % IMAGE.rsplit(":", 1)[1]
    check(started in log, "no %r in the service log: %s" % (started, log[-800:]))
    check(not any(m in log for m in REAUGMENT), "the container re-augmented the build:\n%s" % log[:1500])
    # the bootstrap admin came from the secret, through the environment
    # kc.sh reads (the bind's admin login then proved its password)
    check("Created temporary admin user with username admin" in log,
          "no bootstrap admin in the service log: %s" % log[-800:])
    left = cs.wait_gone(rid)
    check(not left, "left behind: %s" % left)
    print("# cold bind with a real Keycloak: %.0f s" % bind_s)


@test("cold, real Keycloak: the plugin container SIGKILLed mid-hook; the watchdog removes service and secret within 15 s")
@cs.with_cold
def real_watchdog(ctx, cold):
    # The image named, not defaulted: the plugin image's default is the
    # first test's business, this one is the watchdog's.
    rid, env = cold.settings(keycloak_image=IMAGE, timeout=BIND_TIMEOUT)
    env["PLUGIN_HOOK"] = "sleep 600"
    name = cs.plugin_container(ctx, cold, rid, env)
    svc = "keyc-" + rid
    cs.wait_until(lambda: "running the hook" in cs.container_logs(name)
                  or cs.docker("inspect", "-f", "{{.State.Status}}", name).strip() != "running",
                  BIND_TIMEOUT + 60, "the hook did not start")
    check("running the hook" in cs.container_logs(name),
          "the plugin ended before the hook: %s" % cs.container_logs(name)[-1500:])
    # drone-deps starts the watchdog once bound, just before the hook
    cs.wait_until(lambda: cs.watchdog_started(name, rid), 30, "no watchdog")
    cs.docker("kill", "-s", "KILL", name)
    t0 = time.time()
    cs.wait_until(lambda: not cs.docker("service", "ls", "-q", "--filter", "name=" + svc).strip(), 15,
                  "the cold service was not removed")
    took = time.time() - t0
    cs.wait_until(lambda: not cs.docker("secret", "ls", "-q", "--filter", "label=drone-deps.run=" + rid).strip(),
                  15, "the cold secret was not removed")
    cs.wait_until(lambda: not cs.watchdogs_of(rid), 15, "the watchdog did not remove itself")
    print("# watchdog removed the real cold service %.1f s after SIGKILL" % took)


def setup_swarm():
    state = cs.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if state != "active":
        raise SystemExit("test_cold_real: the swarm is not active (%s): run make docker-up" % state)
    for image, target in ((IMAGE, "keycloak-image"), (cs.PLUGIN_IMAGE, "image")):
        if not cs.docker("image", "ls", "-q", image).strip():
            raise SystemExit("test_cold_real: the image %s is missing: run make %s" % (image, target))
    cs.docker("network", "create", "--driver", "overlay", "--attachable", cs.NETWORK)


if __name__ == "__main__":
    setup_swarm()
    try:
        rc = main()
    finally:
        cs.teardown_swarm()
    sys.exit(rc)
