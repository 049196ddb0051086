#!/usr/bin/env python3
"""action warm with warm_db: postgres on the local swarm, with the real
images (`make warm-pg-images`): a PostgreSQL service <stack>_db (its data on
the volume <stack>_db, its password the swarm secret <stack>_db_password)
and Keycloak in production mode (start --optimized) on it. One deployment is
shared by the tests, in order: the CI client and the realms survive a killed
Keycloak task and a killed database task; the reconcile changes nothing
when nothing changed, rolls a changed image, repairs a task-less service and
redeploys a removed one with the same secrets; warm_replicas: 2 runs two
Keycloak tasks that cluster over the database (a realm changed through one
is seen changed through the other), and a run binds while one is killed.

The tasks are reached as Traefik reaches them: on a network both share
(here a swarm-scoped bridge the test makes, whose addresses the host can
reach: the machine has no routing mesh, and a host-mode port takes one task
per node), through a small forwarder that, like Traefik, sends each
connection to a task whose container is running and healthy.

Needs a running dockerd in an active swarm and the images. The suite
removes every service, secret, volume, network and image tag it made, even
when a test fails."""
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DOCKER, PYTHON, ROOT, check, docker, main, test, wait_until  # noqa: E402
import test_cold as cs  # noqa: E402  (only its login hook; its tests are not run)
import harness  # noqa: E402

harness._tests[:] = [t for t in harness._tests if t[0].startswith("warm pg")]

_h = open(os.path.join(ROOT, "plugin", "config.h")).read()
KC_IMAGE = re.search(r'#define KEYCLOAK_IMAGE_DEFAULT "([^"]+)"', _h).group(1) + "-postgres"
DB_IMAGE = re.search(r'#define WARM_DB_IMAGE_DEFAULT "([^"]+)"', _h).group(1)
# The same database image under a second tag: a changed warm_db_image.
DB_IMAGE2 = "%s-warmpg%d" % (DB_IMAGE, os.getpid())
DOMAIN = "wp%x.test" % os.getpid()
STACK = ("warm-keycloak." + DOMAIN).replace(".", "_")
APP, DB = STACK + "_app", STACK + "_db"
SECRET, DB_SECRET, DB_VOLUME = STACK + "_admin_password", STACK + "_db_password", STACK + "_db"
INTERNAL = STACK + "_internal"
NET = "drone-deps-wp-net-%d" % os.getpid()
TIMEOUT = 420
SHARED = tempfile.mkdtemp(prefix="drone-deps-warm-pg-")
CI_FILE = os.path.join(SHARED, "ci.secret")


# ---- a stand-in for Traefik: each connection to a healthy task ----

def task_addresses(service):
    """The addresses on NET of the service's running, healthy containers."""
    ids = docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=" + service,
                 "--filter", "status=running", check_rc=False).split()
    out = []
    for c in json.loads(docker("inspect", *ids, check_rc=False) or "[]") if ids else []:
        health = (c["State"].get("Health") or {}).get("Status")
        ip = (c["NetworkSettings"]["Networks"].get(NET) or {}).get("IPAddress")
        if health == "healthy" and ip:
            out.append(ip)
    return out


class Forwarder:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.turn = 0
        self.backends, self.looked = [], 0
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def pick(self):
        with self.lock:
            if time.time() - self.looked > 0.5:
                self.backends, self.looked = task_addresses(APP), time.time()
            self.turn += 1
            k = self.turn % len(self.backends) if self.backends else 0
            return self.backends[k:] + self.backends[:k]

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        up = None
        for ip in self.pick():
            try:
                up = socket.create_connection((ip, 8080), timeout=3)
                break
            except OSError:
                continue
        if up is None:
            c.close()
            return

        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(up, c), daemon=True).start()
        pipe(c, up)


FWD = None


def warm(ctx, **extra):
    base = dict(action="warm", domain=DOMAIN, warm_db="postgres", network=NET, keycloak_url=FWD.url,
                keycloak_admin_password=None, mode=None, parent=None, deps=None, warm_ci_client="true",
                warm_ci_secret_file=CI_FILE, docker_host="unix:///var/run/docker.sock", timeout=TIMEOUT)
    base.update(extra)
    return ctx.run(ctx.settings(**base), timeout=TIMEOUT + 60)


def ok(r, what):
    check(r.code == 0, "%s: exit %s: %s" % (what, r.code, r.stderr[-2000:]))


def inspect(service):
    return json.loads(docker("service", "inspect", service))[0]


def objects_named(prefix):
    return [n for kind in ("service", "secret", "volume", "network")
            for n in docker(kind, "ls", "--format", "{{.Name}}").split() if n.startswith(prefix)]


def http(url, form=None, token=None, method=None, body=None, timeout=30):
    headers = {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        return e.code, None
    except (OSError, ValueError):
        return None, None


def ci_file_secret():
    """The CI client's secret: warm_ci_secret_file's last line (its first
    is drone-deps' mark line), as the README says to hand it over."""
    return open(CI_FILE).read().strip().splitlines()[-1]


def client_token(base=None, secret=None):
    code, body = http((base or FWD.url) + "/realms/master/protocol/openid-connect/token",
                      form={"grant_type": "client_credentials", "client_id": "drone-deps-ci",
                            "client_secret": secret or ci_file_secret()})
    return (body or {}).get("access_token"), code


def admin_token(base=None):
    cid = docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=" + APP,
                 "--filter", "status=running").split()
    check(cid, "no running container of %s" % APP)
    pw = docker("exec", cid[0], "cat", "/run/secrets/admin_password").strip()
    code, body = http((base or FWD.url) + "/realms/master/protocol/openid-connect/token",
                      form={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                            "password": pw})
    check(body and body.get("access_token"), "admin login: HTTP %s" % code)
    return body["access_token"]


def realm_exists(name, base=None):
    return http("%s/realms/%s" % (base or FWD.url, name))[0] == 200


def wait_answering(what):
    """Until Keycloak judges client credentials again (a wrong secret gets
    401); the seconds it took."""
    t0 = time.time()
    wait_until(lambda: client_token(secret="x")[1] in (400, 401), TIMEOUT, what)
    return time.time() - t0


def containers(service, running=True):
    args = ["ps", "-q", "--filter", "label=com.docker.swarm.service.name=" + service]
    if running:
        args += ["--filter", "status=running"]
    return docker(*args).split()


def settle(what):
    """Until a realm create through the forwarder answers in under 5 s; the
    seconds it took. After a SIGKILLed Keycloak member, the others (and a
    restarted lone task, which finds the dead member's row in the jdbc-ping
    table) stall cluster operations on it until JGroups drops it: a run
    binding in that window can fail (see the closing note)."""
    t0 = time.time()
    n = 0
    while True:
        n += 1
        name = "wp-probe-%d-%d" % (os.getpid(), n)
        t = time.time()
        try:
            code = http(FWD.url + "/admin/realms", token=admin_token(), body={"realm": name, "enabled": True},
                        timeout=60)[0]
        except Exception:  # noqa: BLE001  (a Failure of admin_token while no task runs)
            code = None
        fast = code == 201 and time.time() - t < 5
        if code == 201:
            http(FWD.url + "/admin/realms/" + name, token=admin_token(), method="DELETE")
        if fast:
            return time.time() - t0
        check(time.time() - t0 < TIMEOUT, "%s: realm creates still slow or failing after %d s" % (what, TIMEOUT))
        time.sleep(1)


def bind(ctx, what):
    """A run with the CI client through the forwarder; its hook logs in."""
    env = ctx.settings(keycloak_url=FWD.url, keycloak_admin_password=None,
                       keycloak_client_secret=ci_file_secret(), mode="warm", debug="true",
                       hook="%s %s %s" % (PYTHON, cs.LOGIN, ctx.path("login.out")))
    r = ctx.run(env, timeout=180)
    ok(r, what)
    check(open(ctx.path("login.out")).read().startswith("login ok"), "%s: the hook could not log in" % what)
    return r


# ---- bad settings: one line, exit 64, nothing created ----

@test("warm pg: bad warm_db or warm_replicas settings exit 64 naming the setting, create nothing")
def bad_settings(ctx):
    for extra, needle in (
            (dict(warm_db="mysql"), "warm_db: must be dev-file or postgres (got 'mysql')"),
            (dict(warm_db="dev-file", warm_replicas="2"), "warm_replicas: 2 Keycloak tasks need a database outside Keycloak"),
            (dict(warm_replicas="2", warm_publish="18299", network=None), "warm_replicas: 2 Keycloak tasks cannot share warm_publish's host-mode port"),
            (dict(warm_replicas="0"), "warm_replicas: must be a whole number from 1 to 9 (got '0')")):
        r = warm(ctx, domain="bad" + DOMAIN, **extra)
        check(r.code == 64, "%s: exit %s: %s" % (extra, r.code, r.stderr[-800:]))
        check(needle in r.stderr, "%s: no %r in %s" % (extra, needle, r.stderr[-800:]))
        left = objects_named(("warm-keycloak.bad" + DOMAIN).replace(".", "_"))
        check(not left, "created: %s" % left)


@test("warm pg: a missing PostgreSQL image exits 69, names it and how to build it, creates nothing")
def missing_db_image(ctx):
    domain = "mi" + DOMAIN
    r = warm(ctx, domain=domain, warm_db_image="drone-deps-no-such-image:1")
    check(r.code == 69, "exit %s: %s" % (r.code, r.stderr[-800:]))
    check("warm_db_image: drone-deps-no-such-image:1 is not on this Docker engine" in r.stderr and
          "tools/postgres-image.sh" in r.stderr, r.stderr[-800:])
    left = objects_named(("warm-keycloak." + domain).replace(".", "_"))
    check(not left, "created: %s" % left)


@test("warm pg: a database service of the name it did not make is left alone: exit 69, nothing created or changed")
def db_not_ours(ctx):
    domain = "no" + DOMAIN
    stack = ("warm-keycloak." + domain).replace(".", "_")
    svc = stack + "_db"
    docker("service", "create", "--detach", "--replicas", "0", "--name", svc, DB_IMAGE)
    try:
        before = inspect(svc)
        r = warm(ctx, domain=domain)
        check(r.code == 69, "exit %s: %s" % (r.code, r.stderr[-800:]))
        check("service %s exists and was not made by action warm" % svc in r.stderr, r.stderr[-800:])
        check(inspect(svc)["Version"] == before["Version"], "the service was changed")
        left = [n for n in objects_named(stack) if n != svc]
        check(not left, "created: %s" % left)
    finally:
        docker("service", "rm", svc, check_rc=False)


# ---- one deployment, in order ----

@test("warm pg: deploys PostgreSQL and Keycloak in production mode, passwords in secrets only, the CI client made")
def deploy(ctx):
    check(not objects_named(STACK), "left over from an earlier run: %s" % objects_named(STACK))
    t0 = time.time()
    r = warm(ctx)
    ok(r, "warm")
    took = time.time() - t0
    err = r.stderr
    for needle in ("generated into the swarm secret %s (never printed)" % SECRET,
                   "database password: generated into the swarm secret %s (never printed)" % DB_SECRET,
                   "network %s created" % INTERNAL,
                   "deploying service %s (%s) for warm-keycloak.%s; its data on volume %s" % (DB, DB_IMAGE, DOMAIN, DB_VOLUME),
                   "the database of warm-keycloak.%s is ready" % DOMAIN,
                   "deploying service %s (%s) for warm-keycloak.%s: 1 task; its database is service %s" % (APP, KC_IMAGE, DOMAIN, DB),
                   "warm-keycloak.%s is ready" % DOMAIN,
                   "CI client drone-deps-ci created in realm master"):
        check(needle in err, "no %r in %s" % (needle, err[-2000:]))
    # the database
    s = inspect(DB)["Spec"]
    c = s["TaskTemplate"]["ContainerSpec"]
    check(s["Labels"].get("com.docker.stack.namespace") == STACK and
          re.fullmatch(r"[0-9a-f]{16}", s["Labels"].get("drone-deps.warm.spec", "")), "labels %s" % s["Labels"])
    check(c["Image"] == DB_IMAGE, "db image %s" % c["Image"])
    check([m["Source"] for m in c["Mounts"]] == [DB_VOLUME] and c["Mounts"][0]["Target"] == "/var/lib/postgresql/data",
          "db mounts %s" % c["Mounts"])
    check([x["SecretName"] for x in c["Secrets"]] == [DB_SECRET], "db secrets %s" % c["Secrets"])
    check(s.get("EndpointSpec", {}).get("Mode") == "dnsrr", "db endpoint %s" % s.get("EndpointSpec"))
    node = docker("info", "--format", "{{.Swarm.NodeID}}").strip()
    check(s["TaskTemplate"]["Placement"]["Constraints"] == ["node.id==" + node], "db not pinned to its volume's node")
    # Keycloak
    s = inspect(APP)["Spec"]
    c = s["TaskTemplate"]["ContainerSpec"]
    check(c["Image"] == KC_IMAGE, "image %s" % c["Image"])
    check("start --optimized" in c["Command"][-1] and "start-dev" not in c["Command"][-1], "command %s" % c["Command"])
    env = c["Env"]
    for e in ("KC_DB=postgres", "KC_DB_URL_HOST=" + DB, "KC_DB_USERNAME=keycloak", "KC_HTTP_ENABLED=true",
              "KC_PROXY_HEADERS=xforwarded", "KC_HOSTNAME=" + FWD.url, "KC_CACHE=ispn", "KC_CACHE_STACK=jdbc-ping"):
        check(e in env, "no %s in %s" % (e, env))
    check(not any("PASSWORD=" in e for e in env), "a password in the env: %s" % env)
    check(sorted(x["SecretName"] for x in c["Secrets"]) == sorted([SECRET, DB_SECRET]), "secrets %s" % c["Secrets"])
    check(not c.get("Mounts"), "Keycloak keeps data on a volume: %s" % c.get("Mounts"))
    nets = {n["Target"] for n in s["TaskTemplate"]["Networks"]}
    ids = {json.loads(docker("network", "inspect", n))[0]["Id"] for n in (INTERNAL, NET)}
    check(nets in (ids, {INTERNAL, NET}), "networks %s" % nets)
    # the passwords never printed
    cid = containers(APP)[0]
    for f in ("admin_password", "db_password"):
        v = docker("exec", cid, "cat", "/run/secrets/" + f).strip()
        check(len(v) >= 20 and v not in r.output, "%s printed or short" % f)
    check(stat.S_IMODE(os.stat(CI_FILE).st_mode) == 0o600, "CI secret file mode")
    check(client_token()[0], "the CI client gets no token")
    print("# warm on PostgreSQL, deploy to healthy with the CI client: %.0f s" % took)


@test("warm pg: a second warm with nothing changed updates neither service")
def no_change(ctx):
    before = {s: inspect(s)["Version"]["Index"] for s in (APP, DB)}
    r = warm(ctx)
    ok(r, "warm")
    check("reusing the swarm secret %s" % DB_SECRET in r.stderr, r.stderr[-800:])
    check("the database of warm-keycloak.%s is up to date: nothing changed" % DOMAIN in r.stderr, r.stderr[-800:])
    check("warm-keycloak.%s is up to date: nothing changed" % DOMAIN in r.stderr, r.stderr[-800:])
    after = {s: inspect(s)["Version"]["Index"] for s in (APP, DB)}
    check(after == before, "versions %s -> %s" % (before, after))


@test("warm pg: a run binds; a killed Keycloak task comes back with the CI client and the realms")
def kill_keycloak(ctx):
    tok = admin_token()
    code, _ = http(FWD.url + "/admin/realms", token=tok, body={"realm": "wp-keep", "enabled": True})
    check(code == 201, "realm create: HTTP %s" % code)
    bind(ctx, "run before the kill")
    old = containers(APP)
    check(len(old) == 1, "containers %s" % old)
    docker("kill", "-s", "KILL", old[0])
    wait_until(lambda: containers(APP) and containers(APP) != old, TIMEOUT, "no new Keycloak container")
    took = wait_answering("Keycloak did not answer after the kill")
    check(client_token()[0], "the CI client is gone after a killed Keycloak task")
    check(realm_exists("wp-keep"), "the realm is gone after a killed Keycloak task")
    settled = settle("after the kill")
    bind(ctx, "run after the kill")
    print("# Keycloak task killed to answering again: %.0f s, then realm creates fast again after %.0f s"
          % (took, settled))


@test("warm pg: a killed database task comes back with the CI client and the realms")
def kill_db(ctx):
    old = containers(DB)
    check(len(old) == 1, "containers %s" % old)
    docker("kill", "-s", "KILL", old[0])
    t0 = time.time()
    wait_until(lambda: containers(DB) and containers(DB) != old, TIMEOUT, "no new database container")
    # Keycloak's pool reconnects: the CI client gets a token again
    wait_until(lambda: client_token()[0], TIMEOUT, "no CI client token after the database restart")
    took = time.time() - t0
    check(realm_exists("wp-keep"), "the realm is gone after a killed database task")
    bind(ctx, "run after the database kill")
    print("# database task killed to a CI token again: %.0f s" % took)


@test("warm pg: a changed warm_db_image rolls the database only; the data stays")
def roll_db(ctx):
    docker("tag", DB_IMAGE, DB_IMAGE2)
    before = {s: inspect(s)["Version"]["Index"] for s in (APP, DB)}
    r = warm(ctx, warm_db_image=DB_IMAGE2)
    ok(r, "warm")
    check("updating service %s: image %s -> %s" % (DB, DB_IMAGE, DB_IMAGE2) in r.stderr, r.stderr[-800:])
    check("waiting for the database of warm-keycloak.%s to be healthy" % DOMAIN in r.stderr, r.stderr[-800:])
    check(inspect(APP)["Version"]["Index"] == before[APP], "Keycloak was updated too")
    check(inspect(DB)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == DB_IMAGE2, "db image not changed")
    wait_until(lambda: client_token()[0], TIMEOUT, "no CI client token after the database roll")
    check(realm_exists("wp-keep"), "the realm is gone after the roll")


@test("warm pg: a database scaled to 0 is repaired, a removed one redeployed with the same secret and volume")
def repair_db(ctx):
    docker("service", "scale", "--detach", DB + "=0")
    wait_until(lambda: not containers(DB), 60, "the scaled-down task did not stop")
    r = warm(ctx, warm_db_image=DB_IMAGE2)
    ok(r, "warm after scale 0")
    check("service %s has no live task" % DB in r.stderr and "redeploying it" in r.stderr, r.stderr[-800:])
    check(inspect(DB)["Spec"]["Mode"]["Replicated"]["Replicas"] == 1, "still scaled to 0")
    docker("service", "rm", DB)
    wait_until(lambda: not containers(DB, running=False), 60, "the removed service's container did not go")
    r = warm(ctx, warm_db_image=DB_IMAGE2)
    ok(r, "warm after rm")
    check("deploying service %s" % DB in r.stderr and "reusing the swarm secret %s" % DB_SECRET in r.stderr,
          r.stderr[-800:])
    check("warm-keycloak.%s is up to date: nothing changed" % DOMAIN in r.stderr, r.stderr[-800:])
    wait_until(lambda: client_token()[0], TIMEOUT, "no CI client token after the redeploy")
    check(realm_exists("wp-keep"), "the realm is gone after the redeploy (a new volume?)")


@test("warm pg: warm_replicas 2 rolls Keycloak to two clustered tasks: a change through one is seen through the other")
def replicas(ctx):
    t0 = time.time()
    r = warm(ctx, warm_db_image=DB_IMAGE2, warm_replicas="2")
    ok(r, "warm")
    check("updating service %s: its spec differs" % APP in r.stderr, r.stderr[-800:])
    check("warm-keycloak.%s is ready (service %s, 2 tasks healthy" % (DOMAIN, APP) in r.stderr, r.stderr[-800:])
    check(inspect(APP)["Spec"]["Mode"]["Replicated"]["Replicas"] == 2, "not 2 replicas")
    print("# roll to 2 replicas, healthy: %.0f s" % (time.time() - t0))
    a, b = task_addresses(APP)[:2] if len(task_addresses(APP)) == 2 else (None, None)
    check(a and b, "not two healthy tasks: %s" % task_addresses(APP))
    ua, ub = "http://%s:8080" % a, "http://%s:8080" % b
    tok = admin_token(ua)
    # b reads the realm (into its cache), a changes it, b must see the change:
    # only the cluster's invalidation tells b
    code, body = http(ub + "/admin/realms/wp-keep", token=tok)
    check(code == 200, "read through b: HTTP %s" % code)
    body["displayName"] = "changed through a %d" % os.getpid()
    check(http(ua + "/admin/realms/wp-keep", token=tok, method="PUT", body=body)[0] == 204, "update through a")
    seen = None
    for _ in range(20):
        seen = (http(ub + "/admin/realms/wp-keep", token=tok)[1] or {}).get("displayName")
        if seen == body["displayName"]:
            break
        time.sleep(0.5)
    check(seen == body["displayName"], "b still says %r after a's change: not one cluster" % seen)
    check(http(ua + "/admin/realms", token=tok, body={"realm": "wp-a", "enabled": True})[0] == 201, "create through a")
    check(realm_exists("wp-a", ub), "a realm made through a is not seen through b")


@test("warm pg: with one of two Keycloak tasks killed, a run binds through the other")
def replica_killed(ctx):
    live = containers(APP)
    check(len(live) == 2, "containers %s" % live)
    docker("kill", "-s", "KILL", live[0])
    t0 = time.time()
    settled = settle("one replica killed")
    check(len(containers(APP)) < 2 or len(task_addresses(APP)) < 2,
          "the killed replica was back before the bind: the test shows nothing")
    r = bind(ctx, "run with a replica killed")
    check("bound keycloak (warm)" in r.stderr, r.stderr[-800:])
    took = time.time() - t0
    check(client_token()[0], "no CI client token with one replica")
    wait_until(lambda: len(task_addresses(APP)) == 2, TIMEOUT, "the killed replica did not come back healthy")
    print("# one of two replicas killed: realm creates fast again after %.0f s; the run bound %.1f s after the kill"
          % (settled, took))


def remove_when_free(kind, name):
    deadline = time.time() + 90
    while name in docker(kind, "ls", "--format", "{{.Name}}", check_rc=False).split():
        if subprocess.run([DOCKER, kind, "rm", name], capture_output=True).returncode == 0:
            return
        if time.time() > deadline:
            print("# cleanup: %s %s still in use after 90 s" % (kind, name))
            return
        time.sleep(0.5)


def dump():
    """What the services said, for a failed run: the tasks and the last log
    lines (no secret is ever logged by them)."""
    for svc in (DB, APP):
        print("# --- %s tasks:" % svc)
        for line in docker("service", "ps", "--no-trunc", "--format", "{{.Name}} {{.CurrentState}} {{.Error}}",
                           svc, check_rc=False).splitlines()[:8]:
            print("#   " + line)
        p = subprocess.run([DOCKER, "service", "logs", "--raw", "--tail", "25", svc],
                           capture_output=True, text=True, timeout=60)
        for line in (p.stdout + p.stderr).splitlines()[-25:]:
            print("#   " + line[:300])


def cleanup():
    mine = DOMAIN.replace(".", "_")
    services = [n for n in docker("service", "ls", "--format", "{{.Name}}", check_rc=False).split() if mine in n]
    if services:
        docker("service", "rm", *services, check_rc=False)
    deadline = time.time() + 90
    while time.time() < deadline and any(
            docker("ps", "-aq", "--filter", "label=com.docker.swarm.service.name=" + n, check_rc=False).strip()
            for n in services):
        time.sleep(0.5)
    for kind in ("secret", "volume", "network"):
        for n in [n for n in docker(kind, "ls", "--format", "{{.Name}}", check_rc=False).split() if mine in n]:
            remove_when_free(kind, n)
    remove_when_free("network", NET)
    docker("image", "rm", DB_IMAGE2, check_rc=False)
    shutil.rmtree(SHARED, ignore_errors=True)


if __name__ == "__main__":
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if state != "active":
        raise SystemExit("test_warm_pg: the swarm is not active (%s): run make docker-up" % state)
    for image in (KC_IMAGE, DB_IMAGE):
        if not docker("image", "ls", "-q", image).strip():
            raise SystemExit("test_warm_pg: the image %s is missing: run make warm-pg-images" % image)
    t_start = time.time()
    rc = 1
    try:
        docker("network", "create", "--driver", "bridge", "--scope", "swarm", "--attachable", NET)
        FWD = Forwarder()
        rc = main()
    finally:
        if rc:
            dump()
        cleanup()
        print("# test_warm_pg: %.0f s in all" % (time.time() - t_start))
    sys.exit(rc)
