#!/usr/bin/env python3
"""The stand-in against the real server, as drone-deps meets them.

Part 1 (driven): the real drone-deps binary runs the same scenarios on
both backends (run, up, status, down, reap, a bad password, a realm file
that clashes with the generated client, the pool's refill and claim), with
the admin password and with the CI client (keycloak_client_id and
keycloak_client_secret). A recording proxy (recproxy.py, loopback) sits
between drone-deps and each backend and keeps drone-deps' own requests, its
hook's too, and the answers. For each scenario the two recordings are
compared request by request: method, path shape (ids as {id}), status, and
the JSON fields drone-deps reads from the answer (keycloak.c: the token's
access_token, refresh_token and expires_in, an error's error_description /
errorMessage / error; realm.c and lease.c: the realm list's names and a
realm's drone-deps.* marks; status.c: the first user's createdTimestamp;
warm.c: the ids of the CI client and of its service account), random parts
(secrets, tokens, timestamps, ids) normalised; the exit codes too. Every
difference is a "not ok" line naming the scenario, the step and the
request.

Part 2 (direct): calls drone-deps does not make but whose answers the
stand-in must give as the server does (reserved characters in a realm
name, bearer tokens, Accept headers, the token's growth), sent by hand.

The real server is started once with tools/keycloak.sh (or KEYCLOAK_URL and
KEYCLOAK_ADMIN_PASSWORD name one) and shared by every scenario; the
stand-in runs on loopback. DIFFERENTIAL_SELF=1 compares the stand-in with
a second stand-in instead (the machinery alone, no real server).
"""
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ADMIN_PASSWORD, BIN, PYTHON, ROOT, Stub, free_port  # noqa: E402
from realkc import Admin, RealKeycloak  # noqa: E402
from recproxy import RecordingProxy  # noqa: E402

LOGIN = os.path.join(ROOT, "tests", "e2e", "login.py")
CLIENT_ID = "drone-deps-ci-diff"
CLIENT_SECRET = "ci-Cl1ent-s3cret-for-the-differential-0"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RESERVED = ":/?#@!$&()*+,;=[]\\"


def lease(run, job, expires):
    return {"drone-deps.owner": "drone-deps", "drone-deps.run": run,
            "drone-deps.job": job, "drone-deps.expires": str(expires)}


def realm_rep(name, run, secret, password):
    """The representation plugin/realm.c sends, field for field."""
    return {
        "realm": name, "enabled": True,
        "attributes": lease(run, "local#0.0", int(time.time()) + 900),
        "clients": [{"clientId": "lasuite-drive", "enabled": True, "protocol": "openid-connect",
                     "publicClient": False, "clientAuthenticatorType": "client-secret",
                     "secret": secret, "standardFlowEnabled": True,
                     "directAccessGrantsEnabled": True,
                     "redirectUris": ["https://lasu-%s.ci.example.org/*" % run],
                     "webOrigins": ["https://lasu-%s.ci.example.org" % run]}],
        "users": [{"username": "test", "enabled": True, "email": "test@example.org",
                   "emailVerified": True, "firstName": "Test", "lastName": "User",
                   "credentials": [{"type": "password", "temporary": False, "value": password}]}],
    }


def marks(body):
    """The lease marks of a realm representation, as lease.c reads them."""
    attrs = (body or {}).get("attributes") if isinstance(body, dict) else None
    return {k: v for k, v in (attrs or {}).items() if k.startswith("drone-deps.")}


def error_field(body):
    """What describe() in keycloak.c shows: error / errorMessage /
    error_description."""
    if not isinstance(body, dict):
        return None if body is None else "<%s>" % type(body).__name__
    return {k: body[k] for k in ("error", "errorMessage", "error_description") if k in body}


def form_token(server, realm, form, headers=None):
    data = urllib.parse.urlencode(form)
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    hdrs.update(headers or {})
    req = urllib.request.Request(server.url + "/realms/%s/protocol/openid-connect/token" % realm,
                                 data=data.encode(), method="POST", headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, e.headers, json.loads(text)
        except ValueError:
            return e.code, e.headers, text.decode(errors="replace")


class Diff:
    def __init__(self, stub, real, rep):
        self.servers = (("stand-in", stub), ("real", real))
        self.rep = rep

    def compare(self, name, step):
        """step(server) -> a dict of what drone-deps would read; the two
        must be equal."""
        got = {}
        for label, server in self.servers:
            try:
                got[label] = step(server)
            except Exception as e:  # a crash is an answer to compare too
                got[label] = {"exception": "%s: %s" % (type(e).__name__, e)}
        crashed = [label for label in got if "exception" in got[label]]
        name = "direct: " + name
        if not crashed and got["stand-in"] == got["real"]:
            self.rep.line(True, "%s: %s" % (name, json.dumps(got["real"], sort_keys=True)))
        else:
            self.rep.line(False, "%s%s" % (name, " (the step itself failed)" if crashed else ""), None,
                          ["stand-in: %s" % json.dumps(got["stand-in"], sort_keys=True),
                           "real:     %s" % json.dumps(got["real"], sort_keys=True)])




# ---- part 1: drone-deps through a recording proxy --------------------------------


def shape(path):
    """A request path with the server's ids as {id}."""
    return UUID.sub("{id}", path)


def describe_message(body):
    """What describe() in keycloak.c logs of an error answer."""
    if not isinstance(body, dict):
        return None if body is None else "<not a JSON object>"
    for k in ("error_description", "errorMessage", "error"):
        if isinstance(body.get(k), str):
            return "%s: %s" % (k, UUID.sub("{id}", body[k]))
    return None


def reads(x):
    """The fields drone-deps reads from one answer, normalised."""
    path, _, query = x.path.partition("?")
    b = x.body
    if x.status >= 400:
        return {"message": describe_message(b)}
    if path.endswith("/protocol/openid-connect/token") and x.method == "POST":
        b = b if isinstance(b, dict) else {}
        return {"access_token": bool(b.get("access_token")),
                "refresh_token": bool(b.get("refresh_token")),
                "expires_in > 0": isinstance(b.get("expires_in"), int) and b["expires_in"] > 0}
    if x.method != "GET" or x.status != 200:
        return {}
    parts = path.split("/")
    if path == "/admin/realms":
        return {"realms": sorted(r.get("realm") for r in b if isinstance(r, dict))
                if isinstance(b, list) else "<not a list>"}
    if len(parts) == 4 and parts[:3] == ["", "admin", "realms"]:
        attrs = (b or {}).get("attributes") if isinstance(b, dict) else None
        marks = {k: v for k, v in (attrs or {}).items() if k.startswith("drone-deps.")}
        if "drone-deps.expires" in marks:
            marks["drone-deps.expires"] = "<%s>" % ("digits" if str(marks["drone-deps.expires"]).isdigit()
                                                    else "not digits")
        if "drone-deps.key" in marks:
            # the SHA-256 of a random run key: its shape, not its value
            marks["drone-deps.key"] = "<%s>" % ("sha256" if re.fullmatch(r"[0-9a-f]{64}", str(marks["drone-deps.key"]))
                                                else "not sha256")
        return {"marks": marks}
    if parts[-1] == "users" and "max=1" in query:
        first = b[0] if isinstance(b, list) and b else {}
        return {"users": len(b) if isinstance(b, list) else None,
                "createdTimestamp > 0": isinstance(first.get("createdTimestamp"), int)
                and first["createdTimestamp"] > 0}
    if parts[-1] in ("clients", "service-account-user"):
        first = b[0] if isinstance(b, list) and b else b if isinstance(b, dict) else {}
        return {"id": bool(first.get("id"))}
    if parts[-2:] == ["roles", "create-realm"]:
        return {"name": (b or {}).get("name")}
    return {}


class Backend:
    """One server with its proxy, and how drone-deps is set to reach it."""

    def __init__(self, label, url, password, proxy=None):
        self.label = label
        self.url = url
        self.password = password
        self.proxy = proxy or RecordingProxy(url.replace("localhost", "127.0.0.1"))
        self.admin = Admin(url, password)
        self.client = None  # the CI client: None when it could not be made
        self.client_note = None  # what of the set-up the server refused

    def stop(self):
        self.proxy.stop()


def make_ci_client(b):
    """The CI client as README.md makes it (test_pool's set-up): a
    confidential client of master whose service account holds create-realm
    alone. Returns None, or why it could not be made."""
    a = b.admin
    try:
        found = a.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID)
        if not found:
            a.call("POST", "/admin/realms/master/clients", {
                "clientId": CLIENT_ID, "enabled": True, "publicClient": False,
                "serviceAccountsEnabled": True, "standardFlowEnabled": False,
                "directAccessGrantsEnabled": False, "secret": CLIENT_SECRET}, ok=(201,))
            found = a.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID)
    except (RuntimeError, KeyError, IndexError, TypeError) as e:
        return str(e)[:200]
    b.client = CLIENT_ID
    try:
        user = a.call("GET", "/admin/realms/master/clients/%s/service-account-user" % found[0]["id"])
        role = a.call("GET", "/admin/realms/master/roles/create-realm")
        a.call("POST", "/admin/realms/master/users/%s/role-mappings/realm" % user["id"], [role])
    except (RuntimeError, KeyError, IndexError, TypeError) as e:
        # the stand-in: a client whose token is not checked for roles
        b.client_note = "its service account has no create-realm role: " + str(e)[:120]
    return None


class Scenario:
    """Runs drone-deps steps on one backend and keeps, per step, its exit
    code and the exchanges the proxy saw."""

    def __init__(self, b, credential):
        self.b = b
        self.credential = credential
        self.dir = tempfile.mkdtemp(prefix="drone-deps-diff-")
        self.steps = []  # (label, exit code, [exchanges])

    def env(self, **extra):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir,
               "PLUGIN_DEPS": "keycloak", "PLUGIN_PARENT": "lasuite-drive",
               "PLUGIN_KEYCLOAK_URL": self.b.proxy.url, "PLUGIN_MODE": "warm",
               "PLUGIN_DOCKER_HOST": "unix://" + os.path.join(self.dir, "no-docker.sock"),
               "PLUGIN_POOL_SIZE": "0"}
        if self.credential == "client":
            env.update(PLUGIN_KEYCLOAK_CLIENT_ID=CLIENT_ID, PLUGIN_KEYCLOAK_CLIENT_SECRET=CLIENT_SECRET)
        else:
            env["PLUGIN_KEYCLOAK_ADMIN_PASSWORD"] = self.b.password
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        for k, v in extra.items():
            if v is None:
                env.pop("PLUGIN_" + k.upper(), None)
            else:
                env["PLUGIN_" + k.upper()] = str(v)
        return env

    def path(self, name):
        return os.path.join(self.dir, name)

    def step(self, label, wait=300, **settings):
        self.b.proxy.take()
        p = subprocess.run([BIN], env=self.env(**settings), cwd=self.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=wait)
        self.steps.append((label, p.returncode, self.b.proxy.take(), p.stderr))
        return p

    def expire(self, realm):
        """The realm's lease set an hour back, as the master admin (not
        recorded: no drone-deps request)."""
        q = "/admin/realms/" + urllib.parse.quote(realm, safe="")
        rep = self.b.admin.call("GET", q)
        marks = {k: v for k, v in (rep.get("attributes") or {}).items() if k.startswith("drone-deps.")}
        marks["drone-deps.expires"] = str(int(time.time()) - 3600)
        self.b.admin.call("PUT", q, {"attributes": marks})

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        for r in self.b.admin.call("GET", "/admin/realms?briefRepresentation=true"):
            if r["realm"] != "master":
                self.b.admin.call("DELETE", "/admin/realms/" + urllib.parse.quote(r["realm"], safe=""),
                                  ok=(204, 404))


def scenario_run(s, rid):
    s.step("run (hook logs in)", run_id=rid, hook="%s %s %s" % (PYTHON, LOGIN, s.path("login")))


def scenario_up_status_down(s, rid):
    s.step("up", action="up", run_id=rid, env_file=s.path("up.env"))
    s.step("status", action="status", json="true")
    s.step("down", action="down", run_id=rid, env_file=s.path("up.env"))
    s.step("down again (nothing left)", action="down", run_id=rid, env_file=s.path("up.env"))


def scenario_reap(s, rid):
    s.step("up", action="up", run_id=rid, env_file=s.path("up.env"))
    s.expire("lasuite-drive-" + rid)
    s.step("status (expired)", action="status", json="true")
    s.step("reap", action="reap", parent=None)


def scenario_clash(s, rid):
    path = s.path("realm.json")
    with open(path, "w") as f:
        json.dump({"clients": [{"clientId": "lasuite-drive", "enabled": True}],
                   "roles": {"realm": [{"name": "editor"}]}}, f)
    s.step("run with a realm file whose client clashes (partial import conflict)",
           run_id=rid, hook="true", keycloak_realm_json=path)


def scenario_bad_credential(s, rid):
    if s.credential == "client":
        s.step("run with a wrong client secret", run_id=rid, hook="true",
               keycloak_client_secret="wrong-secret-0123456789")
    else:
        s.step("run with a wrong admin password", run_id=rid, hook="true",
               keycloak_admin_password="wrong-password")


def scenario_pool(s, rid):
    s.step("reap with a parent: refill a pool of 1", action="reap", pool_size="1")
    s.step("up claims the spare", action="up", run_id=rid, env_file=s.path("up.env"), pool_size="1")
    s.step("status", action="status", json="true")
    s.step("down", action="down", run_id=rid, pool_size="1", env_file=s.path("up.env"))


SCENARIOS = [
    ("run", scenario_run),
    ("up, status, down", scenario_up_status_down),
    ("reap", scenario_reap),
    ("partial import conflict", scenario_clash),
    ("refused credential", scenario_bad_credential),
    ("pool: refill and claim", scenario_pool),
]

# Where the stand-in is known to differ and the fix is another branch's:
# (scenario word, credential or None) -> reason. A difference there prints
# "ok ... # SKIP reason"; an agreement still prints ok.
KNOWN = {}


class Report:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def line(self, ok, text, skip=None, detail=()):
        if ok:
            print("ok - %s" % text, flush=True)
            self.passed += 1
        elif skip:
            print("ok - %s # SKIP %s" % (text, skip), flush=True)
            self.skipped += 1
        else:
            print("not ok - %s" % text, flush=True)
            for d in detail:
                print("#   " + d)
            self.failed += 1


def known(name, credential):
    return KNOWN.get((name, credential)) or KNOWN.get((name, None))


def collapse(xs):
    """The exchanges with repeated readiness polls (GET /realms/master, as
    warm waits for its instance) counted once: how many a start takes is
    the machine's, not the server's."""
    out = []
    for x in xs:
        if (out and x.method == "GET" and x.path == "/realms/master" and out[-1].method == "GET"
                and out[-1].path == x.path and out[-1].status == x.status):
            continue
        out.append(x)
    return out


def compare(rep, name, credential, a, b):
    """a, b: the Scenario of the stand-in and of the real server."""
    skip = known(name, credential)
    pad = ("(no such step)", None, [], "")
    n = max(len(a.steps), len(b.steps))
    for (label_a, code_a, xs_a, err_a), (label_b, code_b, xs_b, err_b) in zip(
            a.steps + [pad] * (n - len(a.steps)), b.steps + [pad] * (n - len(b.steps))):
        label = label_a if label_a == label_b else "%s / %s" % (label_a, label_b)
        xs_a, xs_b = collapse(xs_a), collapse(xs_b)
        where = "%s [%s]: %s" % (name, credential, label)
        for i in range(max(len(xs_a), len(xs_b))):
            xa = xs_a[i] if i < len(xs_a) else None
            xb = xs_b[i] if i < len(xs_b) else None
            ka = (xa.method, shape(xa.path), xa.status) if xa else None
            kb = (xb.method, shape(xb.path), xb.status) if xb else None
            ra, rb = (reads(xa) if xa else None), (reads(xb) if xb else None)
            req = "%s %s" % (kb[:2] if kb else ka[:2]) if (kb or ka) else "?"
            text = "%s: request %d %s" % (where, i + 1, req)
            if ka == kb and ra == rb:
                rep.line(True, "%s -> %d %s" % (text, kb[2], json.dumps(rb, sort_keys=True) if rb else ""))
            else:
                rep.line(False, text, skip, [
                    "stand-in: %s %s" % ("%s %s %s" % ka if ka else "(no such request)", json.dumps(ra, sort_keys=True)),
                    "real:     %s %s" % ("%s %s %s" % kb if kb else "(no such request)", json.dumps(rb, sort_keys=True))])
        rep.line(code_a == code_b, "%s: exit code %s" % (where, code_b), skip,
                 ["stand-in exit %s, real exit %s" % (code_a, code_b),
                  "stand-in: " + " | ".join(err_a.strip().splitlines()[-3:]),
                  "real:     " + " | ".join(err_b.strip().splitlines()[-3:])])


def driven(rep, backends, only, warm_note):
    """Every scenario on both backends, compared."""
    made = [make_ci_client(b) for b in backends]
    for b in backends:
        if b.client_note:
            print("# CI client on the %s: %s" % (b.label, b.client_note), flush=True)
    if backends[1].client_note:
        rep.line(False, "the CI client's set-up as README.md gives it, on the real server", None,
                 [backends[1].client_note])
    if warm_note:
        rep.line(False, "warm: the CI client's set-up through drone-deps", warm_note)
    n = 0
    for credential in ("password", "client"):
        for name, fn in SCENARIOS:
            n += 1
            if only and not any(o in name or o == credential for o in only):
                continue
            where = "%s [%s]" % (name, credential)
            if credential == "client" and any(made):
                why = "; ".join("%s: %s" % (b.label, m) for b, m in zip(backends, made) if m)
                if made[1]:  # the real server must take it
                    rep.line(False, "%s: the CI client could be made" % where, None, [why])
                    continue
                rep.line(False, "%s" % where, "stand-in lacks service accounts and role mappings (pool branch): " + why)
                continue
            rid = "d%05x" % (0xf100 + n)
            runs = []
            for b in backends:
                s = Scenario(b, credential)
                try:
                    fn(s, rid)
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    # a set-up step refused: compared as a step of its own
                    s.steps.append(("set-up", "error", [], str(e)[:300]))
                finally:
                    s.cleanup()
                runs.append(s)
            compare(rep, name, credential, runs[0], runs[1])


# ---- action warm: its CI-client part -----------------------------------------
#
# The suite's one real Keycloak is, when the swarm can run it, the one action
# warm deploys (the image of `make keycloak-image`, published in host mode),
# with the admin password secret made beforehand: warm reuses it. Its first
# run, through the proxy, is recorded up to the CI client's set-up. The
# stand-in side runs warm again on that same, healthy service with
# keycloak_url at the stand-in's proxy: the password it reads from the
# container is the stand-in's too, so its Keycloak calls (ready, login, the
# CI client) go to the stand-in. A second warm on each side finds the client.

WARM_DOMAIN = "df%x.test" % os.getpid()
WARM_STACK = ("warm-keycloak." + WARM_DOMAIN).replace(".", "_")
WARM_IMAGE = re.search(r'#define KEYCLOAK_IMAGE_DEFAULT "([^"]+)"',
                       open(os.path.join(ROOT, "plugin", "config.h")).read()).group(1)
WARM_CLIENT = "drone-deps-ci-warm"
DOCKER = os.environ.get("DOCKER", "docker")


def docker(*args, check_rc=False, stdin=None):
    p = subprocess.run([DOCKER] + list(args), capture_output=True, text=True, input=stdin, timeout=120)
    if check_rc and p.returncode != 0:
        raise RuntimeError("docker %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


def warm_unavailable():
    """Why this machine cannot run the warm instance, or None."""
    if os.environ.get("KEYCLOAK_URL") or os.environ.get("DIFFERENTIAL_SELF") == "1":
        return "a real server named by KEYCLOAK_URL (or none): warm deploys its own"
    if os.environ.get("DIFFERENTIAL_WARM") == "0":
        return "DIFFERENTIAL_WARM=0"
    try:
        if docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() != "active":
            return "no active swarm (make docker-up)"
        if not docker("image", "ls", "-q", WARM_IMAGE).strip():
            return "no image %s (make keycloak-image)" % WARM_IMAGE
    except (OSError, subprocess.SubprocessError) as e:
        return "no docker CLI: %s" % e
    return None


def warm_cleanup():
    """The warm service, then its secrets and volume (a secret or volume in
    use cannot be removed)."""
    service = WARM_STACK + "_app"
    docker("service", "rm", service)
    deadline = time.time() + 60
    while time.time() < deadline and docker(
            "ps", "-aq", "--filter", "label=com.docker.swarm.service.name=" + service).strip():
        time.sleep(0.5)
    for n in docker("secret", "ls", "--format", "{{.Name}}").split():
        if n.startswith(WARM_STACK + "_"):
            docker("secret", "rm", n)
    deadline = time.time() + 60
    while docker("volume", "ls", "-q", "--filter", "name=^%s_data$" % WARM_STACK).strip():
        if subprocess.run([DOCKER, "volume", "rm", WARM_STACK + "_data"], capture_output=True).returncode == 0:
            break
        if time.time() > deadline:
            print("# cleanup: volume %s_data still in use after 60 s" % WARM_STACK)
            break
        time.sleep(0.5)


def warm_step(s, label, port, secret_file):
    s.step(label, wait=900, action="warm", domain=WARM_DOMAIN, warm_publish=port, keycloak_admin_password=None,
           mode=None, parent=None, deps=None, pool_size=None, docker_host="unix:///var/run/docker.sock",
           timeout=600, keycloak_image=WARM_IMAGE, warm_ci_client="true",
           warm_ci_secret_file=s.path(secret_file), keycloak_client_id=WARM_CLIENT)


def warm_start(port, password):
    """Action warm deploys the real server; returns the real side's
    Scenario of that first run (exit code 0: the server is up). Its proxy
    is the real side's for the whole suite: warm sets the instance's
    hostname (KC_HOSTNAME) to keycloak_url, so that address stays."""
    docker("secret", "create", WARM_STACK + "_admin_password", "-", stdin=password, check_rc=True)
    proxy = RecordingProxy("http://127.0.0.1:%d" % port)
    s = Scenario(Backend("real", "http://127.0.0.1:%d" % port, password, proxy), "password")
    warm_step(s, "warm deploys and makes the CI client", port, "ci-secret")
    return s


def warm_compare(rep, warm_real, stub, port):
    """The stand-in side of warm: the same proxy address (the service's
    spec, KC_HOSTNAME included, unchanged), retargeted at the stand-in."""
    proxy = warm_real.b.proxy
    real_url = "http://127.0.0.1:%d" % port
    warm_stub = Scenario(Backend("stand-in", stub.url, stub.password, proxy), "password")
    try:
        proxy.retarget(stub.url)
        warm_step(warm_stub, "warm deploys and makes the CI client", port, "ci-secret")
        proxy.retarget(real_url)
        warm_step(warm_real, "warm again: the CI client exists", port, "ci-secret")
        proxy.retarget(stub.url)
        warm_step(warm_stub, "warm again: the CI client exists", port, "ci-secret")
    finally:
        proxy.retarget(real_url)
    compare(rep, "warm", "password", warm_stub, warm_real)
    for sc in (warm_stub, warm_real):
        sc.cleanup()
        for c in sc.b.admin.call("GET", "/admin/realms/master/clients?clientId=" + WARM_CLIENT):
            sc.b.admin.call("DELETE", "/admin/realms/master/clients/" + c["id"])


def on_stop_signal(signo, frame):
    # Unwinds through main's finally, which stops both servers.
    raise SystemExit(128 + signo)


def main():
    only = sys.argv[1:]
    for signo in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signo, on_stop_signal)
    rep = Report()
    start = time.time()
    stub = Stub()
    real = None
    backends = []
    warm_real = None
    warm_note = warm_unavailable()
    want_warm = not warm_note and (not only or any(o in "warm" for o in only))
    if not warm_note and not want_warm:
        warm_note = "not selected"
    try:
        if os.environ.get("DIFFERENTIAL_SELF") == "1":
            real = Stub()
        elif want_warm:
            port = free_port()
            warm_real = warm_start(port, ADMIN_PASSWORD)
            if warm_real.steps[-1][1] == 0:
                os.environ["KEYCLOAK_URL"] = warm_real.b.url
                os.environ["KEYCLOAK_ADMIN_PASSWORD"] = ADMIN_PASSWORD
                try:
                    real = RealKeycloak()
                finally:
                    del os.environ["KEYCLOAK_URL"], os.environ["KEYCLOAK_ADMIN_PASSWORD"]
            else:
                rep.line(False, "warm deploys the real server", None,
                         warm_real.steps[-1][3].strip().splitlines()[-5:])
                warm_real.b.stop()
                warm_real = None
                warm_note = None
                real = RealKeycloak()
        else:
            real = RealKeycloak()
        print("# real server at %s; stand-in at %s" % (real.url, stub.url), flush=True)
        for s in (stub, real):
            s.admin = Admin(s.url, s.password)
        backends = [Backend("stand-in", stub.url, stub.password),
                    warm_real.b if warm_real else Backend("real", real.url, real.password)]
        if warm_real:
            warm_compare(rep, warm_real, stub, port)
        driven(rep, backends, only, warm_note)
        if not only or "direct" in only:
            run(Diff(stub, real, rep))
    finally:
        for b in backends:
            b.stop()
        if real is not None:
            try:
                real.reset()
            finally:
                real.stop()
        stub.stop()
        if want_warm:
            warm_cleanup()
    print("# differential: %d the same, %d different, %d skipped (%.0f s)" % (
        rep.passed, rep.failed, rep.skipped, time.time() - start))
    words = [n for n, _ in SCENARIOS] + ["password", "client", "direct", "warm"]
    for o in only:
        if not any(o in w for w in words):
            # a mistyped selection must not pass for a green run
            print("not ok - the selection word %r matches no scenario" % o, flush=True)
            rep.failed += 1
    return 1 if rep.failed else 0


def run(d):
    run_id = secrets.token_hex(3)
    name = "lasuite-drive-" + run_id
    q = "/admin/realms/" + name
    secret, password = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
    rep = realm_rep(name, run_id, secret, password)

    def token(s):
        status, _, body = form_token(s, "master", {"grant_type": "password", "client_id": "admin-cli",
                                                   "username": "admin", "password": s.password})
        return {"status": status, "token_type": body.get("token_type"),
                "access_token": isinstance(body.get("access_token"), str),
                "expires_in": body.get("expires_in")}
    d.compare("admin token: password grant for admin-cli", token)

    def bad_password(s):
        status, h, body = form_token(s, "master", {"grant_type": "password", "client_id": "admin-cli",
                                                   "username": "admin", "password": "wrong"})
        return {"status": status, "error": body.get("error") if isinstance(body, dict) else body}
    d.compare("admin token: bad password", bad_password)

    def bad_user(s):
        status, h, body = form_token(s, "master", {"grant_type": "password", "client_id": "admin-cli",
                                                   "username": "nobody", "password": "wrong"})
        return {"status": status, "error": body.get("error") if isinstance(body, dict) else body}
    d.compare("admin token: unknown user", bad_user)

    def create(s):
        status, h, body = s.admin.raw("POST", "/admin/realms", rep)
        # the host part: the server's own, or the warm instance's hostname
        loc = re.sub(r"^https?://[^/]+", "<url>", h.get("Location") or "")
        return {"status": status, "location": loc, "body": body}
    d.compare("POST /admin/realms with drone-deps' representation", create)

    def duplicate(s):
        status, _, body = s.admin.raw("POST", "/admin/realms", rep)
        return {"status": status}
    d.compare("POST /admin/realms again: the realm exists", duplicate)

    def get_realm(s):
        status, _, body = s.admin.raw("GET", q)
        return {"status": status, "realm": body.get("realm"), "enabled": body.get("enabled"),
                "marks": marks(body)}
    d.compare("GET /admin/realms/{r} returns the lease marks", get_realm)

    def brief(s):
        status, _, body = s.admin.raw("GET", "/admin/realms?briefRepresentation=true")
        mine = [r for r in body if r.get("realm") in (name, "master")]
        return {"status": status, "realms": sorted(r["realm"] for r in mine),
                "keys": sorted({k for r in mine for k in r})}
    d.compare("GET /admin/realms?briefRepresentation=true", brief)

    def clients_users(s):
        cl = s.admin.call("GET", q + "/clients?clientId=lasuite-drive")
        us = s.admin.call("GET", q + "/users?username=test&exact=true")
        c, u = cl[0], us[0]
        return {"client": {k: c.get(k) for k in ("clientId", "publicClient", "standardFlowEnabled",
                                                  "directAccessGrantsEnabled", "redirectUris",
                                                  "clientAuthenticatorType")},
                "user": {k: u.get(k) for k in ("username", "email", "emailVerified", "firstName",
                                               "lastName", "enabled")}}
    d.compare("the realm's client and test user as created", clients_users)

    def login(s):
        status, _, body = form_token(s, name, {"grant_type": "password", "client_id": "lasuite-drive",
                                               "client_secret": secret, "username": "test",
                                               "password": password, "scope": "openid"})
        return {"status": status, "access_token": isinstance(body.get("access_token"), str),
                "id_token": isinstance(body.get("id_token"), str), "scope": sorted(
                    (body.get("scope") or "").split())}
    d.compare("the binding logs in: password grant with the client secret, scope openid", login)

    def login_bad_secret(s):
        status, _, body = form_token(s, name, {"grant_type": "password", "client_id": "lasuite-drive",
                                               "client_secret": "wrong", "username": "test",
                                               "password": password})
        return {"status": status, "error": body.get("error")}
    d.compare("a login with a wrong client secret", login_bad_secret)

    def put_marks(s):
        new = lease(run_id, "local#0.0", int(time.time()) + 1800)
        status, _, _ = s.admin.raw("PUT", q, {"attributes": new})
        return {"status": status, "marks_equal": marks(s.admin.call("GET", q)) == new}
    d.compare("PUT /admin/realms/{r} with the lease marks renews them", put_marks)

    def put_replaces(s):
        new = lease(run_id, "local#0.0", int(time.time()) + 1800)
        del new["drone-deps.job"]
        status, _, _ = s.admin.raw("PUT", q, {"attributes": new})
        return {"status": status, "marks": sorted(marks(s.admin.call("GET", q)))}
    d.compare("PUT with attributes replaces the map (an omitted mark is gone)", put_replaces)

    partial = {"ifResourceExists": "FAIL",
               "roles": {"realm": [{"name": "editor"}]},
               "users": [{"username": "alice", "enabled": True, "email": "alice@example.org",
                          "firstName": "Alice", "lastName": "A", "emailVerified": True}]}

    def partial_import(s):
        status, _, body = s.admin.raw("POST", q + "/partialImport", partial)
        users = [u["username"] for u in s.admin.call("GET", q + "/users?username=alice&exact=true")]
        return {"status": status, "added": body.get("added") if isinstance(body, dict) else body,
                "alice": users}
    d.compare("POST /admin/realms/{r}/partialImport", partial_import)

    def partial_again(s):
        status, _, body = s.admin.raw("POST", q + "/partialImport", partial)
        return {"status": status}
    d.compare("partialImport again with ifResourceExists FAIL", partial_again)

    def unmarked(s):
        plain = "/admin/realms/plain-" + run_id
        s.admin.call("POST", "/admin/realms", {"realm": "plain-" + run_id, "enabled": True}, ok=(201,))
        status, _, body = s.admin.raw("GET", plain)
        s.admin.call("DELETE", plain)
        return {"status": status, "marks": marks(body), "attributes_is_map": isinstance(body.get("attributes"), dict)}
    d.compare("GET a realm made without attributes: no lease marks", unmarked)

    def delete(s):
        status, _, body = s.admin.raw("DELETE", q)
        return {"status": status, "body": body}
    d.compare("DELETE /admin/realms/{r}", delete)

    def delete_missing(s):
        status, _, body = s.admin.raw("DELETE", q)
        return {"status": status, "error": error_field(body)}
    d.compare("DELETE a missing realm", delete_missing)

    def get_missing(s):
        status, _, body = s.admin.raw("GET", q)
        return {"status": status, "error": error_field(body)}
    d.compare("GET a missing realm", get_missing)

    def put_missing(s):
        status, _, body = s.admin.raw("PUT", q, {"attributes": lease(run_id, "local#0.0", 1)})
        return {"status": status, "error": error_field(body)}
    d.compare("PUT a missing realm", put_missing)

    def partial_missing(s):
        status, _, body = s.admin.raw("POST", q + "/partialImport", partial)
        return {"status": status}
    d.compare("partialImport into a missing realm", partial_missing)

    def delete_master(s):
        status, _, body = s.admin.raw("DELETE", "/admin/realms/master")
        return {"status": status}
    d.compare("DELETE master", delete_master)

    def no_bearer(s):
        status, h, body = s.admin.raw("GET", "/admin/realms?briefRepresentation=true", bearer=False)
        return {"status": status, "body": body, "www_authenticate": h.get("WWW-Authenticate") is not None}
    d.compare("no bearer token", no_bearer)

    def bad_bearer(s):
        status, h, body = s.admin.raw("GET", "/admin/realms?briefRepresentation=true", bearer="x.y.z")
        return {"status": status, "body": body, "www_authenticate": h.get("WWW-Authenticate") is not None}
    d.compare("a malformed bearer token", bad_bearer)

    def expired_bearer(s):
        s.token_lifespan(2)
        try:
            tok = s.admin.login()["access_token"]
            time.sleep(3.5)
            status, h, body = s.admin.raw("GET", "/admin/realms?briefRepresentation=true", bearer=tok)
        finally:
            s.token_lifespan(60)
        return {"status": status, "body": body, "www_authenticate": h.get("WWW-Authenticate") is not None}
    d.compare("an expired bearer token", expired_bearer)

    def token_grows(s):
        before = len(s.admin.login()["access_token"])
        names = ["grow%d-%s" % (i, run_id) for i in range(3)]
        for n in names:
            s.admin.call("POST", "/admin/realms", {"realm": n, "enabled": True}, ok=(201,))
        after = len(s.admin.login()["access_token"])
        for n in names:
            s.admin.call("DELETE", "/admin/realms/" + n)
        return {"grows_per_realm": (after - before) // 3 > 100}
    d.compare("whether the master admin token grows with each realm on the server", token_grows)

    for ch in RESERVED:
        def reserved(s, ch=ch):
            r = dict(realm_rep("bad%sname-%s" % (ch, run_id), run_id, secret, password))
            status, _, body = s.admin.raw("POST", "/admin/realms", r)
            if status == 201:  # leave nothing behind
                s.admin.raw("DELETE", "/admin/realms/" + urllib.parse.quote(r["realm"], safe=""))
            return {"status": status}
        d.compare("a realm name with %r" % ch, reserved)

    for accept in ("application/json", "text/html", "*/*", None):
        def accept_missing(s, accept=accept):
            hdrs = {"Accept": accept}  # None: no Accept header at all
            status, h, body = s.admin.raw("GET", q, headers=hdrs)
            return {"status": status,
                    "content_type": (h.get("Content-Type") or "").split(";")[0].strip(),
                    "json": isinstance(body, (dict, list))}
        d.compare("GET a missing realm with Accept: %s" % (accept or "(none)"), accept_missing)



if __name__ == "__main__":
    sys.exit(main())
