#!/usr/bin/env python3
"""End-to-end rules of the cold path on a real Docker Swarm: drone-deps
deploys the Keycloak stand-in image as a swarm service, binds to it and
removes it. Needs a running dockerd in an active swarm (make check starts
them) and builds the stand-in image from local parts.

Every test removes the services, secrets and containers of its run ids in
its cleanup, even when it fails."""
import json
import re
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (ADMIN_PASSWORD, DOCKER, PLUGIN_IMAGE, PYTHON, ROOT, Failure, check,  # noqa: E402
                     container_logs, docker, free_port, main, read_env_file, run_plugin_container,
                     test, wait_until, watchdog_started, watchdogs_of)
IMAGE = os.environ.get("KCSTUB_IMAGE", "drone-deps-kcstub:test")
# One overlay network per test process: removing a network is asynchronous,
# so a fixed name could vanish under the next suite that reuses it.
NETWORK = "drone-deps-e2e-%d" % os.getpid()
LOGIN = os.path.join(ROOT, "tests", "e2e", "login.py")


def run_id():
    return os.urandom(3).hex()


def objects_of(rid):
    """Services, secrets and containers labelled with this run id."""
    label = "label=drone-deps.run=%s" % rid
    return (docker("service", "ls", "-q", "--filter", label).split() +
            docker("secret", "ls", "-q", "--filter", label).split() +
            docker("ps", "-aq", "--filter", label).split())


def remove_run(rid):
    label = "label=drone-deps.run=%s" % rid
    for kind in ("service", "secret"):
        ids = docker(kind, "ls", "-q", "--filter", label, check_rc=False).split()
        if ids:
            docker(kind, "rm", *ids, check_rc=False)


def wait_gone(rid, timeout=30):
    deadline = time.time() + timeout
    left = objects_of(rid)
    while left and time.time() < deadline:
        time.sleep(0.5)
        left = objects_of(rid)
    return left


class Cold:
    """Per-test cold settings with cleanup of the run's swarm objects."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.rids = []
        self.containers = []

    def settings(self, **extra):
        rid = extra.pop("run_id", None) or run_id()
        self.rids.append(rid)
        port = free_port()
        base = dict(mode="cold", run_id=rid, keycloak_url=None, keycloak_admin_password=None,
                    keycloak_image=IMAGE, network=NETWORK, cold_publish=port,
                    cold_url="http://127.0.0.1:%d" % port, docker_host="unix:///var/run/docker.sock",
                    timeout=90)
        base.update(extra)
        return rid, self.ctx.settings(**base)

    def cleanup(self):
        for name in self.containers:
            docker("rm", "-f", name, check_rc=False)
        for rid in self.rids:
            for c in watchdogs_of(rid):
                docker("rm", "-f", c, check_rc=False)
            remove_run(rid)


def with_cold(fn):
    def wrapped(ctx):
        cold = Cold(ctx)
        try:
            fn(ctx, cold)
        finally:
            cold.cleanup()
    wrapped.__name__ = fn.__name__
    return wrapped


@test("cold: deploys a swarm service, binds, runs the hook, removes service and secret")
@with_cold
def cold_cycle(ctx, cold):
    rid, env = cold.settings()
    hook = ("env > %s; %s %s %s; %s service inspect keyc-%s > %s" %
            (ctx.path("hook.env"), PYTHON, LOGIN, ctx.path("login.out"), DOCKER, rid,
             ctx.path("inspect.json")))
    r = ctx.run(dict(env, PLUGIN_HOOK=hook), timeout=180)
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-800:]))
    e = read_env_file(ctx.path("hook.env"))
    check(e.get("DEPS_KEYCLOAK_MODE") == "cold", "mode %r" % e.get("DEPS_KEYCLOAK_MODE"))
    check(e.get("DEPS_KEYCLOAK_URL") == env["PLUGIN_COLD_URL"], "url %r" % e.get("DEPS_KEYCLOAK_URL"))
    check(e.get("DEPS_KEYCLOAK_REALM") == "lasuite-drive-%s" % rid, "realm %r" % e.get("DEPS_KEYCLOAK_REALM"))
    check(open(ctx.path("login.out")).read().startswith("login ok"), "no login")
    spec = json.load(open(ctx.path("inspect.json")))[0]["Spec"]
    labels = spec["Labels"]
    check(labels.get("drone-deps.owner") == "drone-deps" and labels.get("drone-deps.run") == rid,
          "lease labels: %s" % labels)
    check(int(labels["drone-deps.expires"]) > time.time(), "expiry label in the past")
    cs = spec["TaskTemplate"]["ContainerSpec"]
    check(not any("PASSWORD=" in v for v in cs.get("Env", [])), "a password in the env: %s" % cs.get("Env"))
    check(cs["Secrets"][0]["File"]["Name"] == "admin_password", "secret not mounted")
    left = wait_gone(rid)
    check(not left, "left behind: %s" % left)


@test("cold: Traefik labels for the cold domain on the service")
@with_cold
def cold_traefik(ctx, cold):
    rid, env = cold.settings(domain="ci.example.org", cert_resolver="letsencrypt")
    hook = "%s service inspect keyc-%s > %s" % (DOCKER, rid, ctx.path("inspect.json"))
    r = ctx.run(dict(env, PLUGIN_HOOK=hook), timeout=180)
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-500:]))
    labels = json.load(open(ctx.path("inspect.json")))[0]["Spec"]["Labels"]
    name = "keyc-%s" % rid
    want = {
        "traefik.enable": "true",
        "traefik.http.routers.%s.rule" % name: "Host(`%s.ci.example.org`)" % name,
        "traefik.http.routers.%s.entrypoints" % name: "web-secure",
        "traefik.http.routers.%s.tls.certresolver" % name: "letsencrypt",
        "traefik.http.services.%s.loadbalancer.server.port" % name: "8080",
    }
    for k, v in want.items():
        check(labels.get(k) == v, "%s=%r, want %r" % (k, labels.get(k), v))


@test("cold: mode auto falls back to cold when the warm URL does not answer")
@with_cold
def auto_fallback(ctx, cold):
    rid, env = cold.settings(mode="auto", keycloak_url="http://127.0.0.1:9",
                             keycloak_admin_password="unused-pw")
    r = ctx.run(dict(env, PLUGIN_HOOK="env > %s" % ctx.path("hook.env")), timeout=180)
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-500:]))
    check(read_env_file(ctx.path("hook.env")).get("DEPS_KEYCLOAK_MODE") == "cold", "not cold")
    check(not wait_gone(rid), "left behind")


@test("cold: mode auto does not fall back on a 401 from the warm instance")
@with_cold
def auto_no_fallback_on_401(ctx, cold):
    rid, env = cold.settings(mode="auto", keycloak_url=ctx.stub.url, keycloak_admin_password="wrong")
    r = ctx.run(dict(env, PLUGIN_HOOK="true"), timeout=60)
    check(r.code == 69, "exit %s" % r.code)
    check(not objects_of(rid), "a cold service was deployed after a 401")


@test("cold: a task that cannot start (bad image) exits 69 quickly with the engine's error, nothing left")
@with_cold
def bad_image(ctx, cold):
    rid, env = cold.settings(keycloak_image="drone-deps-no-such-image:1", timeout=120)
    t0 = time.time()
    r = ctx.run(dict(env, PLUGIN_HOOK="true"), timeout=180)
    took = time.time() - t0
    check(r.code == 69, "exit %s" % r.code)
    check(took < 60, "took %.0f s" % took)
    check("No such image" in r.stderr or "no such image" in r.stderr.lower(),
          "engine error not shown: %s" % r.stderr[-500:])
    check(not wait_gone(rid), "left behind")


@test("cold: readiness timeout exits 69 and leaves nothing")
@with_cold
def readiness_timeout(ctx, cold):
    rid, env = cold.settings(timeout=8)
    env["PLUGIN_COLD_URL"] = "http://127.0.0.1:%d" % free_port()  # nothing answers there
    t0 = time.time()
    r = ctx.run(dict(env, PLUGIN_HOOK="true"), timeout=120)
    check(r.code == 69, "exit %s" % r.code)
    check(time.time() - t0 < 30, "timeout not honoured")
    check("not ready within" in r.stderr, "message: %s" % r.stderr[-400:])
    check(not wait_gone(rid), "left behind")


@test("cold: SIGTERM during the readiness wait ends it at once; teardown leaves nothing, exit 143")
@with_cold
def cold_sigterm_readiness(ctx, cold):
    rid, env = cold.settings(timeout=90)
    env["PLUGIN_COLD_URL"] = "http://127.0.0.1:%d" % free_port()  # never ready
    r = ctx.start(dict(env, PLUGIN_HOOK="echo ran > %s" % ctx.path("ran")))
    wait_until(lambda: docker("service", "ls", "-q", "--filter", "name=keyc-" + rid).strip(), 60,
               "the cold service was not created")
    # polling for readiness now: drone-deps says what it waits for
    wait_until(lambda: "waiting for" in r.stderr or r.proc.poll() is not None, 60,
               "no word of the readiness wait")
    check(r.proc.poll() is None, "drone-deps exited early: %s" % r.stderr[-400:])
    t0 = time.time()
    os.kill(r.pid, signal.SIGTERM)
    r.wait(60)
    took = time.time() - t0
    print("# readiness wait: exit %s %.2f s after SIGTERM (teardown included)" % (r.code, took))
    check(r.code == 143, "exit %s" % r.code)
    check(took < 6.5, "took %.2f s: the wait or the 5 s teardown budget was not kept" % took)
    check(not os.path.exists(ctx.path("ran")), "the hook ran")
    check(not wait_gone(rid), "left behind")


@test("cold: the leases of service and secret cover the deploy (timeout + ttl) and are both renewed")
@with_cold
def cold_lease_renewal(ctx, cold):
    rid, env = cold.settings(ttl=12, timeout=90)
    label = "label=drone-deps.run=%s" % rid
    fmt = '{{index .Spec.Labels "drone-deps.expires"}}'
    probe = ("%s service inspect --format '%s' keyc-%s; %s secret inspect --format '%s' "
             "$(%s secret ls -q --filter %s)") % (DOCKER, fmt, rid, DOCKER, fmt, DOCKER, label)
    hook = "date +%%s > %s; (%s) >> %s; sleep 6; (%s) > %s" % (
        ctx.path("first"), probe, ctx.path("first"), probe, ctx.path("second"))
    r = ctx.run(dict(env, PLUGIN_HOOK=hook), timeout=180)
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-500:]))
    now, service0, secret0 = (int(x) for x in open(ctx.path("first")).read().split())
    service1, secret1 = (int(x) for x in open(ctx.path("second")).read().split())
    print("# at the hook's start: service lease ends in %d s, secret in %d s; after a renewal: %d s, %d s"
          % (service0 - now, secret0 - now, service1 - now, secret1 - now))
    check(service0 - now > 90, "the service's lease does not cover timeout + ttl: %d s" % (service0 - now))
    check(secret0 - now > 90, "the secret's lease does not cover timeout + ttl: %d s" % (secret0 - now))
    check(service1 != service0, "the service's lease was not renewed")
    check(secret1 != secret0, "the secret's lease was not renewed")
    check(not wait_gone(rid), "left behind")


@test("cold: SIGTERM mid-hook removes the service and exits 143")
@with_cold
def cold_sigterm(ctx, cold):
    rid, env = cold.settings()
    started = ctx.path("started")
    r = ctx.start(dict(env, PLUGIN_HOOK="echo $$ > %s; echo go > %s; sleep 60" % (ctx.hook_pgid_file(), started)))
    ctx.wait_for_file(started, timeout=120, run=r)
    os.kill(r.pid, signal.SIGTERM)
    r.wait(60)
    check(r.code == 143, "exit %s" % r.code)
    check(not wait_gone(rid), "left behind")


@test("cold: an expired cold service is removed by a later reap")
@with_cold
def cold_reap(ctx, cold):
    rid, env = cold.settings(ttl=10)
    started = ctx.path("started")
    r = ctx.start(dict(env, PLUGIN_HOOK="echo $$ > %s; echo go > %s; sleep 60" % (ctx.hook_pgid_file(), started)))
    ctx.wait_for_file(started, timeout=120, run=r)
    service = docker("service", "ls", "-q", "--filter", "name=keyc-" + rid).strip()
    check(service, "service missing")

    def expires():
        return int(docker("service", "inspect", "--format", '{{index .Spec.Labels "drone-deps.expires"}}',
                          service).strip() or 0)
    # The lease made at deploy covers timeout + ttl; the first renewal
    # (ttl/3 into the hook) brings it to now + ttl: kill once it did.
    wait_until(lambda: expires() <= time.time() + 10 + 2, 30, "the lease renewed to now + ttl")
    os.kill(r.pid, signal.SIGKILL)
    r.wait(10)
    # Reap until it is gone, from the lease's end on, bound by a deadline
    # (drone-deps' clock is coarse and an expiry strictly in the past).
    end = expires()
    while True:
        reap = ctx.run(dict(env, PLUGIN_ACTION="reap", PLUGIN_HOOK=""), timeout=60)
        check(reap.code == 0, "reap exit %s: %s" % (reap.code, reap.stderr[-400:]))
        if not docker("service", "ls", "-q", "--filter", "name=keyc-" + rid).strip():
            check(time.time() >= end, "a live lease was reaped")
            break
        check(time.time() < end + 20, "the service outlived its lease (ended at %d) by 20 s" % end)
        time.sleep(max(0.5, min(5.0, end - time.time())))
    check(not wait_gone(rid), "left behind after reap")


@test("warm: the admin password is read through exec from the warm container")
@with_cold
def warm_password_from_container(ctx, cold):
    rid = run_id()
    cold.rids.append(rid)
    name = "warm-keycloak_ci_%s_app" % rid
    port = free_port()
    secret = "warm_pw_%s" % rid
    subprocess.run([DOCKER, "secret", "create", "--label", "drone-deps.run=%s" % rid, secret, "-"],
                   input=ADMIN_PASSWORD + "\n", text=True, check=True, capture_output=True)
    docker("service", "create", "--detach", "--name", name, "--label", "drone-deps.run=%s" % rid,
           "--secret", "source=%s,target=admin_password" % secret,
           "--publish", "mode=host,published=%d,target=8080" % port,
           "--entrypoint", "/bin/sh", IMAGE, "-c",
           'KC_BOOTSTRAP_ADMIN_PASSWORD="$(cat /run/secrets/admin_password)" exec /opt/keycloak/bin/kc.sh start-dev')
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 90
    while True:
        try:
            import urllib.request
            urllib.request.urlopen(url + "/realms/master", timeout=2).read()
            break
        except Exception:
            if time.time() > deadline:
                raise Failure("the warm service did not come up")
            time.sleep(0.5)
    env = ctx.settings(mode="warm", keycloak_url=url, keycloak_admin_password=None,
                       keycloak_service=name, docker_host="unix:///var/run/docker.sock",
                       hook="env > %s" % ctx.path("hook.env"))
    r = ctx.run(env, timeout=120)
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-500:]))
    e = read_env_file(ctx.path("hook.env"))
    check(e.get("DEPS_KEYCLOAK_MODE") == "warm", "mode %r" % e.get("DEPS_KEYCLOAK_MODE"))
    check(ADMIN_PASSWORD not in r.output, "the admin password reached the output")
    check(ADMIN_PASSWORD not in open(ctx.path("hook.env")).read(), "the hook saw the admin password")
    # a service that does not exist: no warm instance
    env["PLUGIN_KEYCLOAK_SERVICE"] = "no-such-service_app"
    r = ctx.run(env, timeout=60)
    check(r.code == 69, "missing service: exit %s" % r.code)


def plugin_container(ctx, cold, rid, env, name_prefix="dd"):
    """Runs the plugin image as Drone would; cold removes it afterwards."""
    name = "%s-%s" % (name_prefix, rid)
    cold.containers.append(name)
    return run_plugin_container(name, rid, env)


def kill_and_wait_cold_gone(name, rid, svc):
    """SIGKILLs the plugin container; returns the seconds until its cold
    service was gone; fails unless service and secret go within 15 s."""
    docker("kill", "-s", "KILL", name)
    t0 = time.time()
    wait_until(lambda: not docker("service", "ls", "-q", "--filter", "name=" + svc).strip(), 15,
               "the cold service was not removed")
    took = time.time() - t0
    wait_until(lambda: not docker("secret", "ls", "-q", "--filter", "label=drone-deps.run=" + rid).strip(),
               15, "the cold secret was not removed")
    return took


@test("watchdog: the plugin container SIGKILLed mid-hook; the realm is gone within 15 s")
@with_cold
def watchdog_warm(ctx, cold):
    rid = run_id()
    cold.rids.append(rid)
    url = "http://127.0.0.1:%d" % ctx.stub.port
    env = ctx.settings(keycloak_url=url, run_id=rid, docker_host="unix:///var/run/docker.sock",
                       hook="sleep 120")
    realm = "lasuite-drive-%s" % rid
    name = plugin_container(ctx, cold, rid, env)
    wait_until(lambda: realm in ctx.stub.realms() and watchdog_started(name, rid), 30,
               "no realm and watchdog")
    inspect = docker("inspect", watchdogs_of(rid)[0])
    check(ADMIN_PASSWORD not in inspect, "the admin password is visible in docker inspect of the watchdog")
    docker("kill", "-s", "KILL", name)
    t0 = time.time()
    wait_until(lambda: realm not in ctx.stub.realms(), 15, "the realm was not deleted")
    took = time.time() - t0
    wait_until(lambda: not watchdogs_of(rid), 15, "the watchdog did not remove itself")
    print("# watchdog deleted the realm %.1f s after SIGKILL" % took)


@test("watchdog: the plugin container SIGKILLed mid-hook; the cold service is gone within 15 s")
@with_cold
def watchdog_cold(ctx, cold):
    rid, env = cold.settings()
    env["PLUGIN_HOOK"] = "sleep 120"
    name = plugin_container(ctx, cold, rid, env)
    svc = "keyc-" + rid
    wait_until(lambda: docker("service", "ls", "-q", "--filter", "name=" + svc).strip()
               and watchdog_started(name, rid),
               120, "no service and watchdog")
    wait_until(lambda: "running the hook" in container_logs(name), 120, "the hook did not start")
    took = kill_and_wait_cold_gone(name, rid, svc)
    print("# watchdog removed the cold service %.1f s after SIGKILL" % took)


@test("watchdog: the plugin container SIGKILLed during the readiness wait; the cold service is gone within 15 s")
@with_cold
def watchdog_cold_readiness(ctx, cold):
    # A real Keycloak takes minutes to become ready: the watchdog must
    # guard the service from its creation on, not from the hook's start.
    rid, env = cold.settings(timeout=240)
    env["PLUGIN_HOOK"] = "true"
    env["PLUGIN_COLD_URL"] = "http://127.0.0.1:%d" % free_port()  # never ready
    name = plugin_container(ctx, cold, rid, env)
    svc = "keyc-" + rid
    wait_until(lambda: docker("service", "ls", "-q", "--filter", "name=" + svc).strip()
               and watchdog_started(name, rid),
               60, "no service and watchdog during the readiness wait")
    check("running the hook" not in container_logs(name), "the hook started: not a readiness wait")
    took = kill_and_wait_cold_gone(name, rid, svc)
    print("# watchdog removed the cold service %.1f s after SIGKILL during readiness" % took)


@test("watchdog: a normal teardown removes the watchdog at once")
@with_cold
def watchdog_normal(ctx, cold):
    rid = run_id()
    cold.rids.append(rid)
    env = ctx.settings(keycloak_url="http://127.0.0.1:%d" % ctx.stub.port, run_id=rid,
                       docker_host="unix:///var/run/docker.sock", hook="sleep 1")
    name = plugin_container(ctx, cold, rid, env)
    wait_until(lambda: docker("inspect", "-f", "{{.State.Status}}", name).strip() == "exited", 60,
               "the plugin container did not finish")
    code = docker("inspect", "-f", "{{.State.ExitCode}}", name).strip()
    logs = container_logs(name)
    check(code == "0", "exit %s: %s" % (code, logs[-500:]))
    check("watchdog" in logs and "started" in logs, "no watchdog was started: %s" % logs[-500:])
    wait_until(lambda: not watchdogs_of(rid), 3, "the watchdog outlived a normal teardown")
    check(set(ctx.stub.realms()) == {"master"}, "realm left")


def setup_swarm():
    info = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if info != "active":
        raise SystemExit("test_cold: the swarm is not active (%s): run make docker-up" % info)
    if not docker("image", "ls", "-q", IMAGE).strip():
        subprocess.run(["sh", os.path.join(ROOT, "tests", "kcstub", "image", "build.sh"), IMAGE],
                       check=True)
    if not docker("image", "ls", "-q", PLUGIN_IMAGE).strip():
        raise SystemExit("test_cold: the plugin image %s is missing: run make image" % PLUGIN_IMAGE)
    docker("network", "create", "--driver", "overlay", "--attachable", NETWORK)


def teardown_swarm():
    docker("network", "rm", NETWORK, check_rc=False)


if __name__ == "__main__":
    setup_swarm()
    try:
        rc = main()
    finally:
        teardown_swarm()
    sys.exit(rc)
