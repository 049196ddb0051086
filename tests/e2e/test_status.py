#!/usr/bin/env python3
"""action status: what drone-deps holds, read only. Each test drives the
real drone-deps binary against the stand-in, or a real Keycloak with
KEYCLOAK_BACKEND=real, and the local swarm where Docker is needed: the
realms and cold services listed with their marks, --json, the exit codes
(0 all live, 1 something expired, 64 nothing to read, 69 a source that
cannot be read), nothing changed afterwards, no secret in the output.

Other suites may run on the same swarm at the same time: tests that list
services look for their own and never count the swarm's."""
import http.client
import http.server
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DOCKER, NotRun, check, docker, main, read_env_file, test  # noqa: E402
# Any local image will do: the test services never need to run.
SERVICE_IMAGE = os.environ.get("STATUS_SERVICE_IMAGE", "drone-deps-base/busybox:bookworm")
SOCKET = "/var/run/docker.sock"
LINE = re.compile(r"^(realm|service|secret)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+"
                  r"(expires in (\d+) s|expired (\d+) s ago)\s+(live|expired)$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def run_id():
    return os.urandom(3).hex()


def status_env(ctx, **extra):
    """Realms only (mode warm): the swarm's services, which other suites
    may add at any time, do not change the outcome."""
    return ctx.settings(action="status", parent=None, **extra)


def parse_text(out):
    rows = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            rows[(m.group(1), m.group(2))] = {
                "run": m.group(3), "job": m.group(4), "created": m.group(5),
                "lease": m.group(6), "state": m.group(9)}
    return rows


def seed_realm(ctx, name, run, job, expires, owner="drone-deps"):
    """A realm as drone-deps makes it (marks, a client, a test user)."""
    ctx.stub.seed({"realm": name, "enabled": True,
                   "attributes": {"drone-deps.owner": owner, "drone-deps.run": run,
                                  "drone-deps.job": job, "drone-deps.expires": str(expires)},
                   "clients": [{"clientId": "c", "secret": "S3cret-of-the-seeded-client-xyz"}],
                   "users": [{"username": "test", "enabled": True, "email": "t@example.org",
                              "firstName": "T", "lastName": "U", "emailVerified": True}]})


def up(ctx, rid, ttl=600):
    """action up: a live realm made by drone-deps itself; its env file."""
    env_file = ctx.path("binding-%s.env" % rid)
    r = ctx.run(ctx.settings(action="up", run_id=rid, ttl=ttl, env_file=env_file))
    check(r.code == 0, "up exited %s: %s" % (r.code, r.stderr[-500:]))
    return read_env_file(env_file)


def setup_mixed(ctx):
    """One live realm (up), one expired (seeded), one unmarked and one of
    another owner (never listed)."""
    live, old = run_id(), run_id()
    binding = up(ctx, live)
    seed_realm(ctx, "lasuite-drive-%s" % old, old, "org/recipe#7.1.2", int(time.time()) - 100)
    seed_realm(ctx, "lasuite-drive-%s" % run_id(), "x", "y", int(time.time()) + 900, owner="someone")
    ctx.stub.seed({"realm": "not-ours", "enabled": True})
    return live, old, binding


CLIENT_ID = "drone-deps-ci-status"  # not the default id: a server may have that one
CLIENT_SECRET = "ci-Cl1ent-s3cret-for-the-status-suite-01"


def ensure_ci_client(ctx):
    """The CI client as README.md makes it (service account holding
    master's create-realm alone): on the stand-in through its control
    API, on a real server through the admin API."""
    admin = getattr(ctx.stub, "admin", None)
    if admin is None:
        ctx.stub._call("POST", "/_stub/ci_client", {"clientId": CLIENT_ID, "secret": CLIENT_SECRET})
        return
    found = admin.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID)
    if not found:
        admin.call("POST", "/admin/realms/master/clients", {
            "clientId": CLIENT_ID, "enabled": True, "publicClient": False,
            "serviceAccountsEnabled": True, "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False, "secret": CLIENT_SECRET}, ok=(201,))
        found = admin.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID)
    user = admin.call("GET", "/admin/realms/master/clients/%s/service-account-user" % found[0]["id"])
    role = admin.call("GET", "/admin/realms/master/roles/create-realm")
    admin.call("POST", "/admin/realms/master/users/%s/role-mappings/realm" % user["id"], [role])


def client_env(ctx, **extra):
    return ctx.settings(keycloak_admin_password=None, keycloak_client_id=CLIENT_ID,
                        keycloak_client_secret=CLIENT_SECRET, pool_size=0, **extra)


@test("status with only the CI client lists the realms it made, says what it cannot see; exit 3, never 0")
def with_ci_client(ctx):
    ensure_ci_client(ctx)
    mine, other = run_id(), run_id()
    env_file = ctx.path("binding-%s.env" % mine)
    r = ctx.run(client_env(ctx, action="up", run_id=mine, ttl=600, env_file=env_file))
    check(r.code == 0, "up with the client exited %s: %s" % (r.code, r.stderr[-500:]))
    # made with the admin password: invisible to the client
    seed_realm(ctx, "lasuite-drive-%s" % other, other, "org/recipe#9.1.1", int(time.time()) + 900)
    r = ctx.run(client_env(ctx, action="status", parent=None))
    check(r.code == 3, "exit %s, want 3 (a partial view): %s" % (r.code, r.output[-800:]))
    rows = parse_text(r.stdout)
    check(set(rows) == {("realm", "lasuite-drive-" + mine)}, "listed: %s\n%s" % (sorted(rows), r.stdout))
    check("not visible to it" in r.stderr and CLIENT_ID in r.stderr, "no word of what it cannot see: %s"
          % r.stderr[-600:])
    check(CLIENT_SECRET not in r.output, "the client secret was printed")
    j = ctx.run(client_env(ctx, action="status", parent=None), args=["--json"])
    doc = json.loads(j.stdout)
    check(j.code == 3 and doc["warm"]["listed"] and not doc["warm"]["complete"],
          "json: exit %s, warm %s" % (j.code, doc["warm"]))
    # with the admin password the same server is seen whole: exit 0
    a = ctx.run(status_env(ctx), args=["--json"])
    check(a.code == 0 and json.loads(a.stdout)["warm"]["complete"], "admin: exit %s %s" % (a.code, a.stdout[-300:]))


@test("status lists live and expired realms with run, job, created, lease and state; exit 1")
def lists_realms(ctx):
    live, old, _ = setup_mixed(ctx)
    t0 = time.time()
    r = ctx.run(status_env(ctx))
    check(r.code == 1, "exit %s (1 when something expired): %s" % (r.code, r.output[-800:]))
    rows = parse_text(r.stdout)
    check(set(rows) == {("realm", "lasuite-drive-" + live), ("realm", "lasuite-drive-" + old)},
          "listed: %s\n%s" % (sorted(rows), r.stdout))
    a, b = rows[("realm", "lasuite-drive-" + live)], rows[("realm", "lasuite-drive-" + old)]
    check(a["run"] == live and a["job"] == "local#0.0.0", "live row: %s" % a)
    check(a["state"] == "live" and a["lease"].startswith("expires in "), "live row: %s" % a)
    left = int(a["lease"].split()[2])
    check(560 <= left <= 600, "live lease left %d s, ttl 600" % left)
    check(TIME.match(a["created"]), "created not a UTC time: %s" % a)
    created = time.mktime(time.strptime(a["created"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    check(abs(created - t0) < 120, "created %s is not when up ran" % a["created"])
    check(b["run"] == old and b["job"] == "org/recipe#7.1.2" and b["state"] == "expired", "expired row: %s" % b)
    ago = int(b["lease"].split()[1])
    check(100 <= ago <= 200, "expired %d s ago, expected about 100: %s" % (ago, b))
    check("1 live, 1 expired: 2 realms, 0 services, 0 secrets" in r.stdout, "counts: %s" % r.stdout)


@test("status --json is one JSON document with the same resources and counts")
def lists_json(ctx):
    live, old, _ = setup_mixed(ctx)
    r = ctx.run(status_env(ctx), args=["--json"])
    check(r.code == 1, "exit %s: %s" % (r.code, r.output[-800:]))
    doc = json.loads(r.stdout)
    by_name = {x["name"]: x for x in doc["resources"]}
    check(set(by_name) == {"lasuite-drive-" + live, "lasuite-drive-" + old}, "resources: %s" % doc)
    a, b = by_name["lasuite-drive-" + live], by_name["lasuite-drive-" + old]
    check(a["kind"] == "realm" and a["run"] == live and a["state"] == "live", "live: %s" % a)
    check(a["expires"] - doc["now"] == a["expires_in"] and a["expires_in"] > 500, "live: %s" % a)
    check(isinstance(a["created"], int) and abs(a["created"] - doc["now"]) < 300, "created: %s" % a)
    check(b["state"] == "expired" and b["expires_in"] < 0 and b["job"] == "org/recipe#7.1.2", "expired: %s" % b)
    check(doc["counts"] == {"live": 1, "expired": 1, "realms": 2, "services": 0, "secrets": 0, "watchdogs": 0},
          "counts: %s" % doc["counts"])
    check(doc["warm"]["listed"] and not doc["warm"]["failed"], "warm: %s" % doc["warm"])
    check(not doc["docker"]["listed"] and "no Docker socket" in doc["docker"]["note"], "docker: %s" % doc["docker"])
    p = ctx.run(status_env(ctx, json="true"))
    check(json.loads(p.stdout)["counts"] == doc["counts"], "PLUGIN_JSON=true differs from --json")


@test("status exits 0 when every lease is live, and 0 with nothing to list")
def exit_zero(ctx):
    r = ctx.run(status_env(ctx))
    check(r.code == 0, "empty server: exit %s: %s" % (r.code, r.output[-500:]))
    check("0 live, 0 expired" in r.stdout, "counts: %s" % r.stdout)
    up(ctx, run_id())
    r = ctx.run(status_env(ctx))
    check(r.code == 0, "one live realm: exit %s: %s" % (r.code, r.output[-500:]))
    check("1 live, 0 expired" in r.stdout, "counts: %s" % r.stdout)


@test("status changes nothing (realms, marks, clients, users identical) and shows no secret")
def read_only(ctx):
    live, old, binding = setup_mixed(ctx)
    before = ctx.stub.realms()
    r1 = ctx.run(status_env(ctx, debug="true"))
    r2 = ctx.run(status_env(ctx, debug="true"), args=["--json"])
    after = ctx.stub.realms()
    check(before == after, "the server changed:\nbefore %s\nafter %s" % (before, after))
    secrets = [ctx.stub.password, binding["DEPS_KEYCLOAK_CLIENT_SECRET"],
               binding["DEPS_KEYCLOAK_PASSWORD"], "S3cret-of-the-seeded-client-xyz"]
    for run in (r1, r2):
        for s in secrets:
            check(s not in run.output, "a secret is in the output: %s..." % s[:3])
    # debug lines: only reads were sent
    calls = re.findall(r"^drone-deps: debug: http: (\w+) (\S+) ", r1.stderr, re.M)
    writes = [c for c in calls if c[0] != "GET" and "/protocol/openid-connect/" not in c[1]]
    check(calls and not writes, "status wrote to the server: %s" % writes)


@test("status: a realm that cannot be read makes the list incomplete: exit 69, said, the rest listed",
      stub_only="needs the fail knob")
def unreadable_realm(ctx):
    live, old, _ = setup_mixed(ctx)
    ctx.stub.config(fail={"status": 403, "count": -1, "method": "GET",
                          "path_prefix": "/admin/realms/lasuite-drive-" + old})
    r = ctx.run(status_env(ctx), args=["--json"])
    check(r.code == 69, "exit %s: %s" % (r.code, r.output[-500:]))
    doc = json.loads(r.stdout)
    check(doc["warm"]["failed"] and "1 realm at" in doc["warm"]["note"]
          and "the list is incomplete" in doc["warm"]["note"], "warm: %s" % doc["warm"])
    check([x["name"] for x in doc["resources"]] == ["lasuite-drive-" + live], "listed: %s" % doc["resources"])
    check("lasuite-drive-%s could not be read" % old in r.stderr, "stderr: %s" % r.stderr)


@test("status: a warm URL that does not answer exits 69 and says to check domain or keycloak_url")
def warm_unreachable(ctx):
    r = ctx.run(status_env(ctx, keycloak_url="http://127.0.0.1:9"))
    check(r.code == 69, "exit %s" % r.code)
    check("no Keycloak answers at http://127.0.0.1:9" in r.stderr and "check domain" in r.stderr
          and "keycloak_url" in r.stderr, "message: %s" % r.stderr)


@test("status: refused admin credentials exit 69 and name keycloak_admin_password")
def bad_credentials(ctx):
    r = ctx.run(status_env(ctx, keycloak_admin_password="wrong-password-1"))
    check(r.code == 69, "exit %s" % r.code)
    check("check keycloak_admin_user and keycloak_admin_password" in r.stderr, "message: %s" % r.stderr)
    check("wrong-password-1" not in r.output, "the password is in the output")


@test("status with neither a warm URL nor a Docker socket exits 64 and says what to set")
def nothing_to_read(ctx):
    r = ctx.run(status_env(ctx, keycloak_url=None, mode=None))
    check(r.code == 64, "exit %s: %s" % (r.code, r.output[-500:]))
    check("set domain or keycloak_url" in r.stderr and "Docker socket" in r.stderr, "message: %s" % r.stderr)


# ---- with the swarm ------------------------------------------------------------

def have_swarm():
    if not os.access(SOCKET, os.W_OK):
        return False
    p = subprocess.run([DOCKER, "info", "--format", "{{.Swarm.LocalNodeState}}"],
                       capture_output=True, text=True)
    return p.stdout.strip() == "active"


def with_swarm_objects(fn):
    """A service and a secret with drone-deps' labels, as a cold deploy
    leaves them (the service never needs to run), removed afterwards."""
    def wrapped(ctx):
        if not have_swarm():
            raise NotRun("no active swarm at %s" % SOCKET)
        rid = run_id()
        name, secret = "keyc-" + rid, "keyc-%s_admin_password_%s" % (rid, run_id())
        expires = int(time.time()) - 50
        labels = ["--label", "drone-deps.owner=drone-deps", "--label", "drone-deps.run=" + rid,
                  "--label", "drone-deps.job=org/recipe#9.1.1", "--label", "drone-deps.expires=%d" % expires]
        try:
            p = subprocess.run([DOCKER, "secret", "create"] + labels + [secret, "-"],
                               input="not-shown-secret-value", capture_output=True, text=True)
            check(p.returncode == 0, "docker secret create: %s" % p.stderr)
            docker("service", "create", "--detach", "--quiet", "--name", name, "--replicas", "0",
                   *labels, SERVICE_IMAGE, "sleep", "600")
            fn(ctx, rid, name, secret)
        finally:
            subprocess.run([DOCKER, "service", "rm", name], capture_output=True)
            subprocess.run([DOCKER, "secret", "rm", secret], capture_output=True)
    wrapped.__name__ = fn.__name__
    return wrapped


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.unix_path)


class ScopedDocker:
    """A Docker socket that shows drone-deps only this test's containers:
    a reap through it cannot remove what other suites on the shared engine
    hold (their services, secrets and containers are not listed, and a
    DELETE of anything it did not list is refused)."""

    def __init__(self, folder, scope):
        self.path = os.path.join(folder, "scoped-docker.sock")
        allowed = set()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, body, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                c = _UnixHTTPConnection(SOCKET)
                c.request(self.command, self.path, body=body,
                          headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                r = c.getresponse()
                data = r.read()
                c.close()
                return r.status, data, [(k, v) for k, v in r.getheaders()
                                        if k.lower() in ("api-version", "docker-experimental", "ostype")]

            def route(self):
                bare = re.sub(r"^/v[0-9.]+", "", self.path)
                where = bare.split("?")[0]
                if where in ("/_ping", "/version"):
                    return self.answer(*self.forward())
                if self.command == "GET" and where in ("/services", "/secrets", "/tasks"):
                    return self.answer(200, b"[]")
                if self.command == "GET" and where == "/containers/json":
                    status, data, hdrs = self.forward()
                    items = [x for x in json.loads(data)
                             if any(scope in nm for nm in x.get("Names") or [])]
                    for x in items:
                        # the engine's creation time of a container made
                        # minutes ago, without waiting minutes
                        if any(nm.endswith("-stale") for nm in x.get("Names") or []):
                            x["Created"] = int(x.get("Created", 0)) - 120
                    allowed.update(x["Id"] for x in items)
                    return self.answer(status, json.dumps(items).encode(), hdrs)
                m = re.match(r"^/containers/([0-9a-f]+)$", where)
                if self.command == "DELETE" and m and m.group(1) in allowed:
                    return self.answer(*self.forward())
                return self.answer(403, b'{"message":"not in this test\'s scope"}')

            do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = route

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def get_request(self):
                conn, _ = self.socket.accept()
                return conn, ("local", 0)

        self.server = Server(self.path, Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@test("watchdog containers: status lists ours; reap removes one never started (lease ended, or created over 60 s ago), keeps a running, a starting and a foreign one")
def watchdog_leftovers(ctx):
    if not os.access(SOCKET, os.W_OK):
        raise NotRun("no Docker socket at %s" % SOCKET)
    rid, now = run_id(), int(time.time())

    def labels(expires, owner="drone-deps"):
        return ["--label", "drone-deps.owner=" + owner, "--label", "drone-deps.role=watchdog",
                "--label", "drone-deps.run=" + rid, "--label", "drone-deps.job=org/recipe#9.1.1",
                "--label", "drone-deps.expires=%d" % expires]
    names = {k: "drone-deps-watch-%s-%s" % (rid, k) for k in ("never", "running", "starting", "foreign", "stale")}
    try:
        # as a stop between the watchdog's create and its start leaves it
        docker("create", "--name", names["never"], *labels(now - 60), SERVICE_IMAGE, "sleep", "600")
        docker("run", "-d", "--name", names["running"], *labels(now - 60), SERVICE_IMAGE, "sleep", "600")
        docker("create", "--name", names["starting"], *labels(now + 900), SERVICE_IMAGE, "sleep", "600")
        # a live lease, but never started in the 60 s a start takes at most
        # (the scoped engine below reports it created 120 s ago)
        docker("create", "--name", names["stale"], *labels(now + 900), SERVICE_IMAGE, "sleep", "600")
        docker("create", "--name", names["foreign"], *labels(now - 60, owner="someone"),
               SERVICE_IMAGE, "sleep", "600")
        env = dict(mode="auto", docker_host="unix://" + SOCKET)
        r = ctx.run(status_env(ctx, **env), args=["--json"])
        doc = json.loads(r.stdout)
        dogs = {x["name"]: x for x in doc["resources"] if x["kind"] == "watchdog"}
        mine = {k: dogs.get(n) for k, n in names.items()}
        check(mine["never"] and mine["never"]["state"] == "expired", "never started: %s" % mine["never"])
        check(mine["running"] and mine["running"]["state"] == "live", "running: %s" % mine["running"])
        check(mine["starting"] and mine["starting"]["state"] == "live", "starting: %s" % mine["starting"])
        check(mine["foreign"] is None, "another owner's container listed: %s" % mine["foreign"])
        check(r.code == 1 and doc["counts"]["watchdogs"] >= 3, "exit %s, counts %s" % (r.code, doc["counts"]))
        scoped = ScopedDocker(ctx.dir, rid)
        try:
            reap = ctx.run(ctx.settings(action="reap", parent=None, mode="auto",
                                        docker_host="unix://" + scoped.path))
        finally:
            scoped.close()
        check(reap.code == 0, "reap exited %s: %s" % (reap.code, reap.stderr[-500:]))
        left = set(docker("ps", "-a", "--format", "{{.Names}}", "--filter", "name=" + rid).split())
        check(names["never"] not in left, "the never-started watchdog was not reaped: %s" % reap.stderr[-500:])
        check(names["stale"] not in left,
              "a watchdog never started within 60 s was not reaped (its lease is live): %s" % reap.stderr[-500:])
        check({names["running"], names["starting"], names["foreign"]} <= left,
              "reap removed too much: left %s" % sorted(left))
        check("reaped watchdog container" in reap.stderr and "never started" in reap.stderr,
              "reap did not say so: %s" % reap.stderr[-500:])
    finally:
        for n in names.values():
            subprocess.run([DOCKER, "rm", "-f", n], capture_output=True)


@test("a plugin container killed between its watchdog's create and start: the never-started watchdog is listed, then reaped once its lease ends")
def killed_during_watchdog_start(ctx):
    import harness
    if not os.access(SOCKET, os.W_OK):
        raise NotRun("no Docker socket at %s" % SOCKET)
    if not docker("image", "ls", "-q", harness.PLUGIN_IMAGE).strip():
        raise NotRun("the plugin image %s is missing (make image)" % harness.PLUGIN_IMAGE)
    # SIGKILL on the engine's create event: nothing of drone-deps runs
    # after it, so the created watchdog (with the secret files copied in)
    # stays; only reap can end it. ttl 10: its lease ends 10 s later.
    for attempt in range(8):
        rid = run_id()
        name = "drone-deps-wdkill-%s" % rid
        events = subprocess.Popen(
            [DOCKER, "events", "--format", "{{.Actor.ID}}", "--filter", "type=container",
             "--filter", "event=create", "--filter", "label=drone-deps.role=watchdog",
             "--filter", "label=drone-deps.run=" + rid], stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)
            env = ctx.settings(run_id=rid, hook="sleep 30", ttl=10, docker_host="unix://" + SOCKET)
            harness.run_plugin_container(name, rid, env)
            created = events.stdout.readline().strip()
            kill(name, "KILL")
            check(created, "no watchdog create event: %s" % harness.container_logs(name)[-500:])
            docker("wait", name)
            states = docker("ps", "-a", "--format", "{{.State}}", "--filter", "label=drone-deps.role=watchdog",
                            "--filter", "label=drone-deps.run=" + rid).split()
            print("# try %d: watchdog states after the kill: %s" % (attempt + 1, states))
            if states != ["created"]:
                continue
            env = dict(mode="auto", docker_host="unix://" + SOCKET)
            time.sleep(11)  # the lease (ttl 10) has ended
            r = ctx.run(status_env(ctx, **env), args=["--json"])
            dogs = [x for x in json.loads(r.stdout)["resources"]
                    if x["kind"] == "watchdog" and x["run"] == rid]
            check(len(dogs) == 1 and dogs[0]["state"] == "expired", "status: %s" % dogs)
            scoped = ScopedDocker(ctx.dir, rid)
            try:
                reap = ctx.run(ctx.settings(action="reap", parent=None, mode="auto",
                                            docker_host="unix://" + scoped.path))
            finally:
                scoped.close()
            check(reap.code == 0, "reap exited %s: %s" % (reap.code, reap.stderr[-500:]))
            check(not harness.watchdogs_of(rid), "reap left the never-started watchdog: %s"
                  % reap.stderr[-500:])
            return
        finally:
            events.kill()
            events.wait()
            subprocess.run([DOCKER, "rm", "-f", name], capture_output=True)
            for c in harness.watchdogs_of(rid):
                subprocess.run([DOCKER, "rm", "-f", c], capture_output=True)
    raise NotRun("in 8 tries the kill never came between the watchdog's create and start")


def kill(container, signo):
    """POST /containers/<name>/kill on the engine's socket: a few ms."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCKET)
    s.sendall(("POST /containers/%s/kill?signal=%s HTTP/1.0\r\nHost: docker\r\n\r\n"
               % (container, signo)).encode())
    s.recv(4096)
    s.close()


@test("status lists a cold service and its secret from the swarm, with their labels, and changes nothing")
@with_swarm_objects
def lists_services(ctx, rid, name, secret):
    live = run_id()
    up(ctx, live)
    before = docker("service", "inspect", name) + docker("secret", "inspect", secret)
    r = ctx.run(status_env(ctx, mode="auto", docker_host="unix://" + SOCKET), args=["--json"])
    doc = json.loads(r.stdout)
    by_name = {(x["kind"], x["name"]): x for x in doc["resources"]}
    check(("service", name) in by_name and ("secret", secret) in by_name, "not listed: %s" % sorted(by_name))
    s = by_name[("service", name)]
    check(s["run"] == rid and s["job"] == "org/recipe#9.1.1" and s["state"] == "expired"
          and -120 < s["expires_in"] < 0, "service: %s" % s)
    check(isinstance(s["created"], int) and abs(s["created"] - doc["now"]) < 300, "created: %s" % s)
    check(by_name[("secret", secret)]["run"] == rid, "secret: %s" % by_name[("secret", secret)])
    check(("realm", "lasuite-drive-" + live) in by_name, "the realm is missing beside the services")
    check(doc["docker"]["listed"] and doc["warm"]["listed"], "sources: %s %s" % (doc["warm"], doc["docker"]))
    check(r.code == 1, "exit %s with an expired service" % r.code)
    check("not-shown-secret-value" not in r.output, "the secret's value is in the output")
    t = ctx.run(status_env(ctx, mode="auto", docker_host="unix://" + SOCKET))
    rows = parse_text(t.stdout)
    check(rows.get(("service", name), {}).get("state") == "expired", "text row: %s" % rows.get(("service", name)))
    after = docker("service", "inspect", name) + docker("secret", "inspect", secret)
    check(before == after, "the service or secret changed")


@test("status without a warm URL lists services only and says so; the exit follows what it lists")
@with_swarm_objects
def services_only(ctx, rid, name, secret):
    r = ctx.run(status_env(ctx, keycloak_url=None, mode=None, docker_host="unix://" + SOCKET), args=["--json"])
    doc = json.loads(r.stdout)
    check(not doc["warm"]["listed"] and "no warm Keycloak" in doc["warm"]["note"], "warm: %s" % doc["warm"])
    check(all(x["kind"] != "realm" for x in doc["resources"]), "realms listed without a warm URL")
    check(any(x["name"] == name for x in doc["resources"]), "service not listed")
    expired = any(x["state"] == "expired" for x in doc["resources"])
    check(r.code == (1 if expired else 0), "exit %s, expired %s" % (r.code, expired))
    check("realms not listed" in r.stderr, "no note on stderr: %s" % r.stderr)


@test("status without a Docker socket lists realms only and says to mount it")
def realms_only(ctx):
    up(ctx, run_id())
    r = ctx.run(status_env(ctx, mode="auto"))
    check(r.code == 0, "exit %s: %s" % (r.code, r.output[-500:]))
    check("1 live, 0 expired: 1 realm, 0 services" in r.stdout, "counts: %s" % r.stdout)
    check("services and secrets not listed: no Docker socket" in r.stderr and "docker_host" in r.stderr,
          "note: %s" % r.stderr)


if __name__ == "__main__":
    sys.exit(main())
