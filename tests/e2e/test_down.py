#!/usr/bin/env python3
"""End-to-end rules of action down: it deletes only what the up step that
wrote env_file made. The run id and the realm's name are public (hashes of
public values); the run key (DEPS_RUN_KEY) is the up step's alone, and the
lease holds only its SHA-256. Warm tests run on the stand-in or, with
KEYCLOAK_BACKEND=real, on a real Keycloak; cold tests deploy the stand-in
image on the local swarm, as tests/e2e/test_cold.py does.

Every test removes what it made (realms through the stand-in's reset or the
real server's, services and secrets of its run ids) even when it fails."""
import hashlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DOCKER, Failure, check, docker, free_port, main, read_env_file,  # noqa: E402
                     test)

IMAGE = os.environ.get("KCSTUB_IMAGE", "drone-deps-kcstub:test")
NETWORK = "drone-deps-down-%d" % os.getpid()


def ci_env(build, step):
    """What Drone sets for a step of build `build` of org/recipe."""
    return {"DRONE_REPO": "org/recipe", "DRONE_REPO_NAME": "recipe", "DRONE_BUILD_NUMBER": str(build),
            "DRONE_STAGE_NUMBER": "1", "DRONE_STEP_NAME": step, "DRONE_STEP_NUMBER": "1"}


def up(ctx, build, env_file, **extra):
    r = ctx.run(ctx.settings(action="up", env_file=env_file, parent=None, **extra),
                base_env=ci_env(build, "deps-up"))
    check(r.code == 0, "up of build %d: exit %s: %s" % (build, r.code, r.stderr[-400:]))
    return r, read_env_file(env_file)


def down(ctx, build, env_file, **extra):
    return ctx.run(ctx.settings(action="down", env_file=env_file, parent=None, **extra),
                   base_env=ci_env(build, "deps-down"))


def write_env(path, env):
    with open(path, "w") as f:
        for k, v in env.items():
            f.write("%s=%s\n" % (k, v))
    os.chmod(path, 0o600)


def attributes(ctx, realm):
    return ctx.stub.realms()[realm].get("attributes") or {}


def seed_marked(ctx, realm, run, **marks):
    attrs = {"drone-deps.owner": "drone-deps", "drone-deps.run": run, "drone-deps.job": "org/recipe#9.1.1",
             "drone-deps.expires": str(int(time.time()) + 600)}
    attrs.update({"drone-deps." + k: v for k, v in marks.items()})
    ctx.stub.seed({"realm": realm, "enabled": True, "attributes": attrs})


# ---- warm ------------------------------------------------------------------------

@test("warm: build 42's down with build 41's run id in env_file deletes nothing and exits 77")
def forged_run_id(ctx):
    _, b41 = up(ctx, 41, ctx.path("b41.env"))
    _, b42 = up(ctx, 42, ctx.path("b42.env"))
    r41, r42 = b41["DEPS_KEYCLOAK_REALM"], b42["DEPS_KEYCLOAK_REALM"]
    check(r41 != r42 and {r41, r42} <= set(ctx.stub.realms()), "two live realms: %s" % ctx.stub.realms())
    # the test step of build 42 rewrites its own env_file with build 41's id
    forged = dict(b42, DEPS_RUN_ID=b41["DEPS_RUN_ID"])
    write_env(ctx.path("b42.env"), forged)
    r = down(ctx, 42, ctx.path("b42.env"))
    check(r.code == 77, "down with a forged run id: exit %s: %s" % (r.code, r.stderr[-400:]))
    check(r41 in ctx.stub.realms(), "build 41's live realm was deleted")
    check("env_file" in r.stderr and "run key does not match" in r.stderr,
          "the error says what did not match: %s" % r.stderr[-400:])
    # each build's own env_file tears down its own realm
    write_env(ctx.path("b42.env"), b42)
    for build, path, realm in ((41, "b41.env", r41), (42, "b42.env", r42)):
        r = down(ctx, build, ctx.path(path))
        check(r.code == 0, "down of build %d: exit %s: %s" % (build, r.code, r.stderr[-400:]))
        check(realm not in ctx.stub.realms(), "down of build %d left %s" % (build, realm))


@test("warm: a forged run key of the right shape deletes nothing and exits 77")
def forged_key(ctx):
    _, b = up(ctx, 43, ctx.path("b.env"))
    realm = b["DEPS_KEYCLOAK_REALM"]
    key = b["DEPS_RUN_KEY"]
    forged = ("B" if key[0] != "B" else "C") + key[1:]
    write_env(ctx.path("b.env"), dict(b, DEPS_RUN_KEY=forged))
    r = down(ctx, 43, ctx.path("b.env"))
    check(r.code == 77, "forged key: exit %s: %s" % (r.code, r.stderr[-300:]))
    check(realm in ctx.stub.realms(), "a forged key deleted the realm")
    check(forged not in r.output, "the presented key was printed")
    write_env(ctx.path("b.env"), b)
    r = down(ctx, 43, ctx.path("b.env"))
    check(r.code == 0 and realm not in ctx.stub.realms(), "the right key: exit %s" % r.code)


@test("warm: down without a run key (no env_file, or none in it) exits 64 naming env_file and touches nothing")
def no_key(ctx):
    _, b = up(ctx, 44, ctx.path("b.env"))
    realm = b["DEPS_KEYCLOAK_REALM"]
    r = ctx.run(ctx.settings(action="down", run_id=b["DEPS_RUN_ID"], parent=None),
                base_env=ci_env(44, "deps-down"))
    check(r.code == 64, "no env_file: exit %s: %s" % (r.code, r.stderr[-300:]))
    check("env_file" in r.stderr, "the error names env_file: %s" % r.stderr[-300:])
    old = {k: v for k, v in b.items() if k != "DEPS_RUN_KEY"}  # as an older up wrote it
    write_env(ctx.path("old.env"), old)
    r = down(ctx, 44, ctx.path("old.env"))
    check(r.code == 64, "no key in env_file: exit %s: %s" % (r.code, r.stderr[-300:]))
    check("env_file" in r.stderr and ctx.path("old.env") in r.stderr, "names the file: %s" % r.stderr[-300:])
    check(realm in ctx.stub.realms(), "down without a key deleted the realm")
    if ctx.stub.has_log:
        check(not [e for e in ctx.stub.requests() if "DELETE" in json.dumps(e)], "a DELETE was sent")
    r = down(ctx, 44, ctx.path("b.env"))
    check(r.code == 0 and realm not in ctx.stub.realms(), "the right key: exit %s" % r.code)


@test("warm: a lease without a key hash, or of another parent or run, is refused by down (77), whatever the key")
def lease_marks(ctx):
    key = "K" * 40
    path = ctx.path("k.env")
    write_env(path, {"DEPS_RUN_ID": "dd0a01", "DEPS_RUN_KEY": key})
    h = hashlib.sha256(key.encode()).hexdigest()
    cases = (("no key mark", "dd0a01", dict(parent="recipe")),
             ("another parent", "dd0a01", dict(parent="other", key=h)),
             ("no parent mark", "dd0a01", dict(key=h)),
             # the key's hash alone is not enough: the run mark is a lock of its own
             ("another run mark", "ffffff", dict(parent="recipe", key=h)))
    for what, run, marks in cases:
        seed_marked(ctx, "recipe-dd0a01", run, **marks)
        r = down(ctx, 45, path)
        check(r.code == 77, "%s: exit %s: %s" % (what, r.code, r.stderr[-300:]))
        check("recipe-dd0a01" in ctx.stub.realms(), "%s: the realm was deleted" % what)
        ctx.stub.reset()
    seed_marked(ctx, "recipe-dd0a01", "dd0a01", parent="recipe", key=h)
    r = down(ctx, 45, path)
    check(r.code == 0 and "recipe-dd0a01" not in ctx.stub.realms(),
          "every mark matching: exit %s: %s" % (r.code, r.stderr[-300:]))


@test("warm: the lease holds only the key's SHA-256 and the parent; the key is in no output, debug included")
def only_hash(ctx):
    r, b = up(ctx, 46, ctx.path("b.env"), debug="true")
    key = b.get("DEPS_RUN_KEY", "")
    check(len(key) >= 32 and key.isalnum(), "DEPS_RUN_KEY in env_file: %r" % key)
    check(oct(os.stat(ctx.path("b.env")).st_mode & 0o777) == "0o600", "env_file mode")
    realm = b["DEPS_KEYCLOAK_REALM"]
    attrs = attributes(ctx, realm)
    check(attrs.get("drone-deps.key") == hashlib.sha256(key.encode()).hexdigest(),
          "the key mark is its SHA-256: %s" % attrs)
    check(attrs.get("drone-deps.parent") == "recipe", "the parent mark: %s" % attrs)
    whole = json.dumps(ctx.stub.realms()[realm])
    check(key not in whole, "the key itself is in the realm")
    check(key not in r.output, "up printed the key")
    check("DEPS_RUN_KEY=***" in r.stdout, "up shows the key masked: %s" % r.stdout)
    r = down(ctx, 46, ctx.path("b.env"), debug="true")
    check(r.code == 0, "down: exit %s" % r.code)
    check(key not in r.output, "down printed the key")


@test("warm: action run's hook gets no run key; a renewal keeps the key and parent marks (a realm PUT replaces the attributes)")
def run_hook_env(ctx):
    marks = {}
    hook = "env > %s; sleep 5" % ctx.path("hook.env")
    p = ctx.start(ctx.settings(hook=hook, ttl="10", run_id="dd0b01", debug="true"))
    deadline = time.time() + 30
    while time.time() < deadline and "renewed the lease" not in p.stderr:
        time.sleep(0.2)
    if "lasuite-drive-dd0b01" in ctx.stub.realms():
        marks = attributes(ctx, "lasuite-drive-dd0b01")
    p.wait(60)
    check(p.code == 0, "run: exit %s: %s" % (p.code, p.stderr[-300:]))
    env = read_env_file(ctx.path("hook.env"))
    check("DEPS_RUN_KEY" not in env, "the hook got the run key")
    check("DEPS_KEYCLOAK_REALM" in env, "the hook got its binding")
    check(len(marks.get("drone-deps.key", "")) == 64 and marks.get("drone-deps.parent") == "lasuite-drive",
          "marks after a renewal: %s" % marks)


# ---- cold, on the swarm -------------------------------------------------------------

def swarm_ready():
    p = subprocess.run([DOCKER, "info", "--format", "{{.Swarm.LocalNodeState}}"],
                       capture_output=True, text=True)
    if p.stdout.strip() != "active":
        raise Failure("the swarm is not active: run make docker-up")
    if not docker("image", "ls", "-q", IMAGE).strip():
        subprocess.run(["sh", os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "tests", "kcstub", "image", "build.sh"), IMAGE], check=True)
    if not docker("network", "ls", "-q", "--filter", "name=^%s$" % NETWORK).strip():
        docker("network", "create", "--driver", "overlay", "--attachable", NETWORK)


def remove_runs(rids):
    for rid in rids:
        label = "label=drone-deps.run=%s" % rid
        for kind in ("service", "secret"):
            ids = docker(kind, "ls", "-q", "--filter", label, check_rc=False).split()
            if ids:
                docker(kind, "rm", *ids, check_rc=False)


def cold_up(ctx, build, env_file):
    port = free_port()
    s = dict(mode="cold", keycloak_url=None, keycloak_admin_password=None, keycloak_image=IMAGE,
             network=NETWORK, cold_publish=port, cold_url="http://127.0.0.1:%d" % port,
             docker_host="unix:///var/run/docker.sock", timeout=120)
    r = ctx.run(ctx.settings(action="up", env_file=env_file, parent=None, **s),
                base_env=ci_env(build, "deps-up"), timeout=240)
    return r, (read_env_file(env_file) if os.path.exists(env_file) else {})


def cold_down(ctx, build, env_file):
    return ctx.run(ctx.settings(action="down", env_file=env_file, parent=None, mode="cold",
                                keycloak_url=None, keycloak_admin_password=None,
                                cold_url="http://127.0.0.1:%d" % free_port(),
                                docker_host="unix:///var/run/docker.sock", timeout=60),
                   base_env=ci_env(build, "deps-down"), timeout=120)


def service_labels(rid):
    out = docker("service", "inspect", "keyc-" + rid, check_rc=False)
    found = json.loads(out) if out.strip().startswith("[") else []
    return found[0]["Spec"]["Labels"] if found else None


@test("cold: build 42's down with build 41's run id leaves build 41's service; each key removes its own")
def cold_forged(ctx):
    swarm_ready()
    rids = []
    try:
        r, b41 = cold_up(ctx, 41, ctx.path("c41.env"))
        rids.append(b41.get("DEPS_RUN_ID"))
        check(r.code == 0, "up 41: exit %s: %s" % (r.code, r.stderr[-400:]))
        r, b42 = cold_up(ctx, 42, ctx.path("c42.env"))
        rids.append(b42.get("DEPS_RUN_ID"))
        check(r.code == 0, "up 42: exit %s: %s" % (r.code, r.stderr[-400:]))
        rid41 = b41["DEPS_RUN_ID"]
        secrets = docker("secret", "ls", "-q", "--filter", "label=drone-deps.run=" + rid41).split()
        check(len(secrets) == 1, "build 41's secret: %s" % secrets)
        write_env(ctx.path("c42.env"), dict(b42, DEPS_RUN_ID=rid41))
        r = cold_down(ctx, 42, ctx.path("c42.env"))
        check(r.code == 77, "forged run id: exit %s: %s" % (r.code, r.stderr[-400:]))
        check(service_labels(rid41) is not None, "build 41's live service was removed")
        check(docker("secret", "ls", "-q", "--filter", "label=drone-deps.run=" + rid41).split() == secrets,
              "build 41's secret was removed")
        labels = service_labels(rid41)
        check(labels and labels.get("drone-deps.key") ==
              hashlib.sha256(b41["DEPS_RUN_KEY"].encode()).hexdigest() and
              labels.get("drone-deps.parent") == "recipe", "service labels: %s" % labels)
        check(b41["DEPS_RUN_KEY"] not in docker("service", "inspect", "keyc-" + rid41),
              "the key itself is in the service")
        write_env(ctx.path("c42.env"), dict(b42, DEPS_RUN_KEY="Z" * 40))
        r = cold_down(ctx, 42, ctx.path("c42.env"))
        check(r.code == 77 and service_labels(b42["DEPS_RUN_ID"]) is not None,
              "forged key: exit %s: %s" % (r.code, r.stderr[-400:]))
        write_env(ctx.path("c42.env"), b42)
        for build, path, rid in ((41, "c41.env", rid41), (42, "c42.env", b42["DEPS_RUN_ID"])):
            r = cold_down(ctx, build, ctx.path(path))
            check(r.code == 0, "down %d: exit %s: %s" % (build, r.code, r.stderr[-400:]))
            check(service_labels(rid) is None, "down %d left its service" % build)
            deadline = time.time() + 15
            while docker("secret", "ls", "-q", "--filter", "label=drone-deps.run=" + rid).strip() \
                    and time.time() < deadline:
                time.sleep(0.5)
            check(not docker("secret", "ls", "-q", "--filter", "label=drone-deps.run=" + rid).strip(),
                  "down %d left its secret" % build)
    finally:
        remove_runs([x for x in rids if x])


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        docker("network", "rm", NETWORK, check_rc=False)
    sys.exit(rc)
