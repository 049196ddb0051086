#!/usr/bin/env python3
"""The least-privilege CI client and the realm pool, on the stand-in and on
a real Keycloak 26 (KEYCLOAK_BACKEND=real). The stand-in models what the
real server grants the CI client and how it imports and renames; the same
tests on the real server check that model.

The CI client is a confidential client of the master realm whose service
account holds only the master realm role create-realm; each test makes it
through the admin API as README.md tells users to. Every claim of this
suite is checked on the server (its realm list, the realms' marks, the
test user's login), not taken from drone-deps' word; each run's debug lines
(method, path, status of every call) show what it asked."""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from realkc import Admin  # noqa: E402
from harness import (BACKEND, DOCKER, PLUGIN_IMAGE, PYTHON, ROOT, Failure, NotRun, check,  # noqa: E402
                     docker, main, read_env_file, run_plugin_container, test, wait_until,
                     watchdog_started, watchdogs_of)

LOGIN = os.path.join(ROOT, "tests", "e2e", "login.py")
TOKEN_PATH = "/realms/master/protocol/openid-connect/token"
CLIENT_ID = "drone-deps-ci-e2e"  # not the default id: a server may have that one
CLIENT_SECRET = "ci-Cl1ent-s3cret-for-the-pool-suite-0123"
# plugin/realm.h: the test user's password, random and one run long, is hashed once
PASSWORD_POLICY = "hashAlgorithm(pbkdf2-sha256) and hashIterations(1)"
DEBUG_LINE = re.compile(r"^drone-deps: debug: http: (GET|POST|PUT|DELETE) (\S+) (\d+) \d+ ms$", re.M)


def real_only(ctx, why):
    if BACKEND != "real":
        raise NotRun(why)


_admins = {}


def adm(ctx):
    """The master admin of the backend: the real server's own, or one made
    for the stand-in the same way (password grant through admin-cli)."""
    if getattr(ctx.stub, "admin", None) is not None:
        return ctx.stub.admin
    if ctx.stub.url not in _admins:
        _admins[ctx.stub.url] = Admin(ctx.stub.url, ctx.stub.password)
    return _admins[ctx.stub.url]


def q(name):
    return urllib.parse.quote(name, safe="")


def ensure_client(ctx):
    """The CI client as README.md makes it: confidential, service account
    only, whose user gets the master realm role create-realm alone."""
    admin = adm(ctx)
    found = admin.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID)
    if not found:
        admin.call("POST", "/admin/realms/master/clients", {
            "clientId": CLIENT_ID, "enabled": True, "publicClient": False,
            "serviceAccountsEnabled": True, "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False, "secret": CLIENT_SECRET}, ok=(201,))
        found = admin.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID)
    cid = found[0]["id"]
    if found[0].get("secret") != CLIENT_SECRET:
        admin.call("PUT", "/admin/realms/master/clients/" + cid, dict(found[0], secret=CLIENT_SECRET))
    user = admin.call("GET", "/admin/realms/master/clients/%s/service-account-user" % cid)
    role = admin.call("GET", "/admin/realms/master/roles/create-realm")
    admin.call("POST", "/admin/realms/master/users/%s/role-mappings/realm" % user["id"], [role])
    roles = {r["name"] for r in admin.call(
        "GET", "/admin/realms/master/users/%s/role-mappings/realm/composite" % user["id"])}
    check("admin" not in roles, "the CI client's service account must not be an admin: %s" % roles)
    return cid


def client_token():
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                   "client_secret": CLIENT_SECRET}).encode()
    return form


class ClientApi:
    """The admin API as the CI client sees it (a fresh token per call: its
    rights are roles in the token)."""

    def __init__(self, url):
        self.url = url

    def token(self):
        req = urllib.request.Request(self.url + TOKEN_PATH, data=client_token(), method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)["access_token"]

    def raw(self, method, path, body=None):
        hdrs = {"Accept": "application/json", "Authorization": "Bearer " + self.token()}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                text, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            text, status = e.read(), e.code
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text


def client_settings(ctx, **extra):
    base = dict(keycloak_admin_password=None, keycloak_client_id=CLIENT_ID,
                keycloak_client_secret=CLIENT_SECRET, debug="true")
    base.update(extra)
    return ctx.settings(**base)


def login_hook(ctx, name):
    return "%s %s %s" % (PYTHON, LOGIN, ctx.path("login." + name))


def debug_calls(run, prefix=""):
    return [(m, p, int(st)) for m, p, st in DEBUG_LINE.findall(run.stderr) if p.startswith(prefix)]


def realm_names(ctx):
    return {r["realm"] for r in adm(ctx).call("GET", "/admin/realms?briefRepresentation=true")}


def expire(ctx, realm):
    """Sets a realm's lease expiry an hour back (as the master admin)."""
    rep = adm(ctx).call("GET", "/admin/realms/" + q(realm))
    attrs = {k: v for k, v in (rep.get("attributes") or {}).items() if k.startswith("drone-deps.")}
    attrs["drone-deps.expires"] = str(int(time.time()) - 3600)
    adm(ctx).call("PUT", "/admin/realms/" + q(realm), {"attributes": attrs})


# ---- the CI client ------------------------------------------------------------


@test("keycloak_client_id without keycloak_client_secret exits 64 naming the setting, nothing created")
def client_id_alone(ctx):
    before = realm_names(ctx)
    r = ctx.run(client_settings(ctx, keycloak_client_secret=None, hook="true"))
    check(r.code == 64, "exit %s, want 64: %s" % (r.code, r.stderr))
    check("keycloak_client_secret" in r.stderr, "the error must name the setting: %s" % r.stderr)
    check(realm_names(ctx) == before, "something was created")


@test("a wrong client secret exits 69 naming keycloak_client_id, never a cold deploy")
def client_refused(ctx):
    ensure_client(ctx)
    before = realm_names(ctx)
    r = ctx.run(client_settings(ctx, keycloak_client_secret="wrong-secret-0123456789",
                                mode="auto", hook="true"))
    check(r.code == 69, "exit %s, want 69: %s" % (r.code, r.stderr))
    check("keycloak_client_id" in r.stderr and "Invalid client" in r.stderr,
          "the error must name the setting and say why: %s" % r.stderr)
    check("cold" not in r.stderr.lower().replace("no cold", ""),
          "a refused client must not deploy cold: %s" % r.stderr)
    check("wrong-secret" not in r.output, "the secret was logged")
    check(realm_names(ctx) == before, "something was created")


@test("with only the CI client: bind, the hook logs in, teardown deletes the realm; the secret is nowhere")
def client_full_cycle(ctx):
    ensure_client(ctx)
    env_dump = ctx.path("hook.env")
    hook = "%s && env > %s && cat /proc/$PPID/environ /proc/$PPID/cmdline > %s.parent 2>/dev/null; true" % (
        login_hook(ctx, "one"), env_dump, env_dump)
    r = ctx.run(client_settings(ctx, run_id="c1c1c1", hook=hook, pool_size="0"),
                args=["--keycloak-client-secret", CLIENT_SECRET])
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr))
    check(os.path.exists(ctx.path("login.one")), "the hook could not log in")
    check(CLIENT_SECRET not in open(env_dump).read(), "the hook saw the client secret")
    if os.path.exists(env_dump + ".parent"):
        check(CLIENT_SECRET.encode() not in open(env_dump + ".parent", "rb").read(),
              "the client secret is in drone-deps' /proc environ or cmdline")
    check(CLIENT_SECRET not in r.output, "the client secret was logged")
    calls = debug_calls(r)
    grants = [c for c in calls if c[1] == TOKEN_PATH]
    check(grants and all(c[2] == 200 for c in grants), "token requests: %s" % grants)
    check(("POST", "/admin/realms", 201) in calls, "no realm created: %s" % calls)
    check(("DELETE", "/admin/realms/lasuite-drive-c1c1c1", 204) in calls,
          "teardown did not delete the realm: %s" % calls)
    check("lasuite-drive-c1c1c1" not in realm_names(ctx), "the realm is left")


@test("reap with the CI client deletes the expired realms it made, not a realm it did not make")
def client_reap(ctx):
    ensure_client(ctx)
    env_file = ctx.path("up.env")
    r = ctx.run(client_settings(ctx, action="up", run_id="c2c2c2", env_file=env_file, pool_size="0"))
    check(r.code == 0, "up: exit %s: %s" % (r.code, r.stderr))
    expire(ctx, "lasuite-drive-c2c2c2")
    # an expired realm with drone-deps' marks, made by the master admin
    ctx.stub.seed({"realm": "lasuite-drive-d3d3d3", "enabled": True, "attributes": {
        "drone-deps.owner": "drone-deps", "drone-deps.run": "d3d3d3", "drone-deps.job": "x#1.1.1",
        "drone-deps.expires": str(int(time.time()) - 3600)}})
    r = ctx.run(client_settings(ctx, action="reap", parent=None, pool_size="0"))
    check(r.code == 0, "reap: exit %s: %s" % (r.code, r.stderr))
    names = realm_names(ctx)
    check("lasuite-drive-c2c2c2" not in names, "the client's expired realm was not reaped: %s" % r.stderr)
    check("lasuite-drive-d3d3d3" in names, "a realm the client did not make was deleted")


@test("the CI client is refused beyond the name on a realm it did not make and on master (Keycloak's own answers)")
def client_refused_elsewhere(ctx):
    ensure_client(ctx)
    ctx.stub.seed({"realm": "not-ours", "enabled": True, "attributes": {"secret-mark": "x"}})
    api = ClientApi(ctx.stub.url)
    for realm in ("not-ours", "master"):
        st, body = api.raw("GET", "/admin/realms/" + realm)
        # 26.4.7 answers a holder of create-realm with the realm's public
        # name only (no attributes, no settings): the same refusal a 403 is.
        check(st in (403, 404) or (st == 200 and "attributes" not in body and
                                   "accessTokenLifespan" not in body),
              "GET %s: %s %s" % (realm, st, str(body)[:300]))
        st, _ = api.raw("GET", "/admin/realms/%s/users" % realm)
        check(st in (403, 404), "GET %s/users: %s" % (realm, st))
        st, _ = api.raw("DELETE", "/admin/realms/" + realm)
        check(st in (403, 404), "DELETE %s: %s" % (realm, st))
    check({"not-ours", "master"} <= realm_names(ctx), "a realm is gone")
    # drone-deps' own down on a realm of the run's name it did not make
    ctx.stub.seed({"realm": "lasuite-drive-e4e4e4", "enabled": True, "attributes": {
        "drone-deps.owner": "drone-deps", "drone-deps.run": "e4e4e4"}})
    with open(ctx.path("e4.env"), "w") as f:
        f.write("DEPS_RUN_ID=e4e4e4\nDEPS_RUN_KEY=%s\n" % ("k" * 40))
    r = ctx.run(client_settings(ctx, action="down", run_id="e4e4e4", pool_size="0",
                                env_file=ctx.path("e4.env")))
    check(r.code != 0, "down of a realm the client did not make succeeded: %s" % r.stderr)
    check("lasuite-drive-e4e4e4" in realm_names(ctx), "the foreign realm was deleted")


@test("figure: admin token time, password grant against client_credentials (median of 20)")
def token_figure(ctx):
    real_only(ctx, "a figure of the real server")
    ensure_client(ctx)
    pw = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
                                 "username": "admin", "password": ctx.stub.password}).encode()
    times = {"password grant (admin-cli)": [], "client_credentials (CI client)": []}
    for _ in range(20):
        for name, form in (("password grant (admin-cli)", pw),
                           ("client_credentials (CI client)", client_token())):
            t0 = time.perf_counter()
            req = urllib.request.Request(ctx.stub.url + TOKEN_PATH, data=form, method="POST")
            with urllib.request.urlopen(req, timeout=120) as r:
                check(json.load(r).get("access_token"), "no token")
            times[name].append((time.perf_counter() - t0) * 1000)
    for name, t in times.items():
        print("# figure: %-32s median %6.1f ms  min %6.1f  max %6.1f  (20 requests)" % (
            name, statistics.median(t), min(t), max(t)), flush=True)
    # the admin password grant leaves sessions on master: end them
    adm(ctx).token = None


# ---- the pool -----------------------------------------------------------------


def spares(ctx, parent="lasuite-drive"):
    return sorted(n for n in realm_names(ctx) if re.fullmatch(re.escape(parent) + r"-spare-\d+", n))


def fill_pool(ctx, size):
    """action reap with a parent makes the pool's spares (the scheduled
    refill README.md describes)."""
    r = ctx.run(client_settings(ctx, action="reap", pool_size=str(size)))
    check(r.code == 0, "reap (refill): exit %s: %s" % (r.code, r.stderr))
    have = spares(ctx)
    check(len(have) == size, "the refill made %s, want %d spares" % (have, size))
    return have


def before_hook(run):
    """The calls a run made before its hook started (debug lines)."""
    err = run.stderr
    cut = err.find("drone-deps: running the hook")
    return debug_calls_text(err[:cut if cut >= 0 else len(err)])


def debug_calls_text(text):
    return [(m, p, int(st)) for m, p, st in DEBUG_LINE.findall(text)]


def login_with(ctx, env_file, name):
    env = dict(os.environ, **read_env_file(env_file))
    import subprocess
    p = subprocess.run([PYTHON, LOGIN, ctx.path("login." + name)], env=env,
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "login to the claimed realm failed: %s" % p.stderr[-500:])


@test("a bind claims a spare in 4 requests before the hook (token, its marks, import, rename); the realm is <parent>-<run id>, marked, and its user logs in")
def claim(ctx):
    ensure_client(ctx)
    fill_pool(ctx, 1)
    env_file = ctx.path("up.env")
    r = ctx.run(client_settings(ctx, action="up", run_id="a1a1a1", env_file=env_file, pool_size="1"))
    check(r.code == 0, "up: exit %s: %s" % (r.code, r.stderr))
    calls = debug_calls(r)
    check([(m, p) for m, p, _ in calls] == [
        ("POST", TOKEN_PATH), ("GET", "/admin/realms/lasuite-drive-spare-0"),
        ("POST", "/admin/realms/lasuite-drive-spare-0/partialImport"),
        ("PUT", "/admin/realms/lasuite-drive-spare-0")],
        "a claim is token, the spare's marks, partial import, rename: %s" % calls)
    check(all(st < 300 for _, _, st in calls), "a call failed: %s" % calls)
    check("lasuite-drive-spare-0" not in realm_names(ctx), "the spare is still there")
    rep = adm(ctx).call("GET", "/admin/realms/lasuite-drive-a1a1a1")
    attrs = rep.get("attributes") or {}
    check(attrs.get("drone-deps.run") == "a1a1a1" and attrs.get("drone-deps.owner") == "drone-deps"
          and int(attrs.get("drone-deps.expires", 0)) > time.time(),
          "the claimed realm carries the run's lease: %s" % attrs)
    check(rep.get("passwordPolicy") == PASSWORD_POLICY,
          "the spare's password policy: %r" % rep.get("passwordPolicy"))
    master_clients = {c["clientId"] for c in adm(ctx).call("GET", "/admin/realms/master/clients")}
    check("lasuite-drive-a1a1a1-realm" in master_clients and
          "lasuite-drive-spare-0-realm" not in master_clients,
          "the realm's client in master follows the rename: %s" % sorted(master_clients))
    binding = read_env_file(env_file)
    check(binding["DEPS_KEYCLOAK_REALM"] == "lasuite-drive-a1a1a1", "binding: %s" % binding)
    login_with(ctx, env_file, "claimed")
    r = ctx.run(client_settings(ctx, action="down", run_id="a1a1a1", pool_size="1", env_file=env_file))
    check(r.code == 0, "down: exit %s: %s" % (r.code, r.stderr))
    check("lasuite-drive-a1a1a1" not in realm_names(ctx), "down left the claimed realm")


@test("a fresh realm hashes its test user's password once (PBKDF2, 1 iteration), and the user logs in")
def fresh_policy(ctx):
    ensure_client(ctx)
    env_file = ctx.path("fresh.env")
    r = ctx.run(client_settings(ctx, action="up", run_id="f3f3f3", env_file=env_file, pool_size="0"))
    check(r.code == 0, "up: exit %s: %s" % (r.code, r.stderr))
    try:
        rep = adm(ctx).call("GET", "/admin/realms/lasuite-drive-f3f3f3")
        check(rep.get("passwordPolicy") == PASSWORD_POLICY, "password policy: %r" % rep.get("passwordPolicy"))
        login_with(ctx, env_file, "fresh-policy")
    finally:
        r = ctx.run(client_settings(ctx, action="down", run_id="f3f3f3", pool_size="0", env_file=env_file))
    check(r.code == 0, "down: exit %s: %s" % (r.code, r.stderr))


@test("no spare: the run falls back to creating its realm, in the same run, and its user logs in")
def fallback(ctx):
    ensure_client(ctx)
    r = ctx.run(client_settings(ctx, run_id="b2b2b2", pool_size="2", hook=login_hook(ctx, "fresh")))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr))
    check(os.path.exists(ctx.path("login.fresh")), "the hook could not log in")
    calls = before_hook(r)
    looks = [c for c in calls if c[0] == "GET" and "-spare-" in c[1]]
    check(len(looks) == 2 and all(c[2] == 404 for c in looks), "empty slots: %s" % calls)
    check(not [c for c in calls if c[1].endswith("/partialImport")], "an import into an empty slot: %s" % calls)
    check(calls[-1] == ("POST", "/admin/realms", 201), "then a fresh create: %s" % calls)
    check("lasuite-drive-b2b2b2" not in realm_names(ctx), "the realm is left")


@test("16 concurrent claims on 4 spares: exactly 4 claim, 12 create; all 16 bind and log in; no realm shared")
def race(ctx):
    ensure_client(ctx)
    fill_pool(ctx, 4)
    # action up: bound and left, no hook, so no run refills the pool while
    # the others still claim (a refill is a hook's background work)
    runs = [ctx.start(client_settings(ctx, action="up", run_id="%06x" % (0xf00000 + i), pool_size="4",
                                      env_file=ctx.path("up.%d.env" % i)))
            for i in range(16)]
    for r in runs:
        r.wait(600)
    bad = [(i, r.code, r.stderr[-800:]) for i, r in enumerate(runs) if r.code != 0]
    check(not bad, "runs failed: %s" % bad)
    claimed = [i for i, r in enumerate(runs) if "claimed spare" in r.stderr]
    created = [i for i, r in enumerate(runs) if ("POST", "/admin/realms", 201) in debug_calls(r)]
    check(len(claimed) == 4, "claims: %s" % claimed)
    check(len(created) == 12 and not set(created) & set(claimed), "fresh creates: %s" % created)
    check(spares(ctx) == [], "spares left unclaimed: %s" % spares(ctx))
    secrets = set()
    for i in range(16):
        binding = read_env_file(ctx.path("up.%d.env" % i))
        realm = binding["DEPS_KEYCLOAK_REALM"]
        check(realm == "lasuite-drive-%06x" % (0xf00000 + i), "run %d got realm %s" % (i, realm))
        attrs = adm(ctx).call("GET", "/admin/realms/" + realm).get("attributes") or {}
        check(attrs.get("drone-deps.run") == "%06x" % (0xf00000 + i), "realm %s is marked %s" % (realm, attrs))
        login_with(ctx, ctx.path("up.%d.env" % i), str(i))
        secrets.add(binding["DEPS_KEYCLOAK_CLIENT_SECRET"])
    check(len(secrets) == 16, "a client secret was shared")
    downs = [ctx.start(client_settings(ctx, action="down", run_id="%06x" % (0xf00000 + i), pool_size="4",
                                       env_file=ctx.path("up.%d.env" % i)))
             for i in range(16)]
    for r in downs:
        r.wait(600)
    check(all(r.code == 0 for r in downs), "downs failed: %s" % [r.stderr[-300:] for r in downs if r.code])
    left = [n for n in realm_names(ctx) if n.startswith("lasuite-drive-f")]
    check(not left, "realms left: %s" % left)


@test("the pool never grows past pool_size: 8 concurrent refills of a pool of 3 make exactly 3 spares")
def bound(ctx):
    ensure_client(ctx)
    runs = [ctx.start(client_settings(ctx, action="reap", pool_size="3")) for _ in range(8)]
    for r in runs:
        r.wait(600)
    check(all(r.code == 0 for r in runs), "refills failed: %s" % [r.stderr[-400:] for r in runs if r.code])
    made = sum(r.stderr.count("pool: made spare") for r in runs)
    check(spares(ctx) == ["lasuite-drive-spare-0", "lasuite-drive-spare-1", "lasuite-drive-spare-2"],
          "spares: %s" % spares(ctx))
    check(made == 3, "%d spares made in all, want 3" % made)


@test("expired spares are reaped like any realm; live spares and unmarked spare-shaped realms are kept")
def reap_spares(ctx):
    ensure_client(ctx)
    fill_pool(ctx, 2)
    expire(ctx, "lasuite-drive-spare-1")
    ctx.stub.seed({"realm": "other-spare-1", "enabled": True})  # not ours: no marks
    r = ctx.run(client_settings(ctx, action="reap", parent=None, pool_size="0"))
    check(r.code == 0, "reap: exit %s: %s" % (r.code, r.stderr))
    names = realm_names(ctx)
    check("lasuite-drive-spare-1" not in names, "the expired spare was not reaped: %s" % r.stderr)
    check("lasuite-drive-spare-0" in names, "a live spare was reaped")
    check("other-spare-1" in names, "an unmarked realm was deleted")
    # the same with the master admin password, which sees every realm
    expire(ctx, "lasuite-drive-spare-0")
    r = ctx.run(ctx.settings(action="reap", parent=None, debug="true"))
    check(r.code == 0, "reap (admin): exit %s: %s" % (r.code, r.stderr))
    names = realm_names(ctx)
    check("lasuite-drive-spare-0" not in names and "other-spare-1" in names,
          "admin reap: %s" % sorted(names))


@test("while a hook runs, the run makes the spares its pool lacks (off the bind's path)")
def refill_during_hook(ctx):
    ensure_client(ctx)
    r = ctx.run(client_settings(ctx, run_id="c3c3c3", pool_size="2", hook="sleep 12"))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr))
    check(spares(ctx) == ["lasuite-drive-spare-0", "lasuite-drive-spare-1"],
          "spares after the run: %s" % spares(ctx))
    check("lasuite-drive-c3c3c3" not in realm_names(ctx), "the run's realm is left")
    # the next run claims one of them, and its teardown deletes what it claimed
    r = ctx.run(client_settings(ctx, run_id="c4c4c4", pool_size="2", hook=login_hook(ctx, "next")))
    check(r.code == 0 and "claimed spare" in r.stderr, "exit %s: %s" % (r.code, r.stderr))
    check(os.path.exists(ctx.path("login.next")), "the hook could not log in to the claimed realm")
    check("lasuite-drive-c4c4c4" not in realm_names(ctx), "the claimed realm is left")
    check(not [c for c in before_hook(r) if c[0] == "POST" and c[1] == "/admin/realms" and c[2] == 201][1:],
          "spares were made before the hook: %s" % before_hook(r))


# ---- a proxy that holds or loses answers, in front of either backend -------------


class FaultProxy:
    """A loopback HTTP proxy in front of the backend, so the same fault is
    made on the stand-in and on the real server. Every request is
    forwarded; the first one matching a rule (method, path suffix) is
    held before the server sees it ("hold_before"), held after the
    server's answer ("hold_after"), answered by a TCP reset after the
    server's work ("reset_after"), answered 500 after the work
    ("fail_after"), or held until `barrier` matching requests have
    arrived ("barrier": they reach the server together)."""

    HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
           "upgrade", "content-length"}

    def __init__(self, upstream):
        import http.client
        import http.server
        import threading
        up = urllib.parse.urlsplit(upstream)
        self.rules = []
        self.lock = threading.Lock()
        self.arrived = threading.Event()  # a matching request reached the proxy
        self.worked = threading.Event()   # the server answered a matching request
        self.released = threading.Event()  # a held request went on
        self.waiting = 0
        self.gate = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                rule = proxy.take(self.command, self.path)
                if rule:
                    proxy.arrived.set()
                    if rule["mode"] == "hold_before":
                        time.sleep(rule["seconds"])
                        proxy.released.set()
                    elif rule["mode"] == "barrier":
                        proxy.barrier(rule)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP}
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body, headers=hdrs)
                    resp = conn.getresponse()
                    data, status, rhdrs = resp.read(), resp.status, resp.getheaders()
                finally:
                    conn.close()
                if rule:
                    proxy.worked.set()
                    if rule["mode"] == "hold_after":
                        time.sleep(rule["seconds"])
                        proxy.released.set()
                    elif rule["mode"] == "reset_after":
                        import socket
                        import struct
                        self.close_connection = True
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        return
                    elif rule["mode"] == "fail_after":
                        status, data, rhdrs = 500, b'{"error":"unknown_error"}', [("Content-Type", "application/json")]
                try:
                    self.send_response(status)
                    for k, v in rhdrs:
                        if k.lower() not in proxy.HOP:
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def rule(self, mode, method, suffix, seconds=0, count=1, barrier=0):
        with self.lock:
            self.rules.append({"mode": mode, "method": method, "suffix": suffix, "seconds": seconds,
                               "count": count, "barrier": barrier})

    def take(self, method, path):
        with self.lock:
            for r in self.rules:
                if r["method"] == method and path.split("?")[0].endswith(r["suffix"]):
                    r["count"] -= 1
                    if r["count"] == 0:
                        self.rules.remove(r)
                    return dict(r)
        return None

    def barrier(self, rule):
        with self.lock:
            self.waiting += 1
            if self.waiting >= rule["barrier"]:
                self.gate.set()
        self.gate.wait(rule["seconds"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def proxied(ctx, proxy, settings):
    """Settings that reach the backend through the proxy."""
    return dict(settings, PLUGIN_KEYCLOAK_URL=proxy.url)


def spare_marks(parent="lasuite-drive", expires=None, **over):
    """The marks drone-deps gives a spare of parent (plugin/pool.c)."""
    m = {"drone-deps.owner": "drone-deps", "drone-deps.run": "spare", "drone-deps.job": "pool",
         "drone-deps.expires": str(int(expires or time.time() + 3600)), "drone-deps.spare": parent}
    m.update(over)
    return {k: v for k, v in m.items() if v is not None}


ALICE = {"username": "alice", "enabled": True, "email": "alice@example.org", "firstName": "Alice",
         "lastName": "Liddell", "credentials": [{"type": "password", "value": "Alice-pw-0123456789"}]}


def foreign_realms(ctx):
    """Realms under this parent's spare names that drone-deps must never
    claim, rename or delete, with expired marks where marks would make an
    old reap delete them; each has the user alice."""
    past = str(int(time.time()) - 3600)
    realms = {
        # no marks at all: anyone's realm named like a spare
        "lasuite-drive-spare-0": {},
        # drone-deps' marks, but a spare of another parent
        "lasuite-drive-spare-1": spare_marks("other", expires=past),
        # drone-deps' marks of a run, not a spare's
        "lasuite-drive-spare-2": {"drone-deps.owner": "drone-deps", "drone-deps.run": "abc123",
                                  "drone-deps.job": "x#1.1.1", "drone-deps.expires": past},
        # a live lease of another job under a spare's name
        "lasuite-drive-spare-3": {"drone-deps.owner": "drone-deps", "drone-deps.run": "abc124",
                                  "drone-deps.job": "y#2.1.1", "drone-deps.expires": str(int(time.time()) + 3600)},
    }
    for name, attrs in realms.items():
        ctx.stub.seed({"realm": name, "enabled": True, "attributes": attrs, "users": [ALICE]})
    return realms


def check_untouched(ctx, realms):
    for name, attrs in realms.items():
        try:
            rep = adm(ctx).call("GET", "/admin/realms/" + q(name))
        except Exception as e:  # noqa: BLE001 - a 404 is the failure
            raise Failure("realm %s is gone: %s" % (name, e))
        have = {k: v for k, v in (rep.get("attributes") or {}).items() if k.startswith("drone-deps.")}
        check(have == attrs, "realm %s's marks changed: %s, were %s" % (name, have, attrs))
        users = adm(ctx).call("GET", "/admin/realms/%s/users?username=alice&exact=true" % q(name))
        check([u["username"] for u in users] == ["alice"], "realm %s lost alice: %s" % (name, users))
        clients = adm(ctx).call("GET", "/admin/realms/%s/clients?clientId=lasuite-drive" % q(name))
        check(not clients, "a run's client was imported into %s" % name)


# ---- finding: the pool takes over realms it did not make --------------------------


@test("realms named like spares that are not this parent's spares (unmarked, another parent's, a run's, a live lease) are never claimed: the run creates its own realm")
def foreign_not_claimed(ctx):
    realms = foreign_realms(ctx)
    r = ctx.run(ctx.settings(run_id="f1f1f1", pool_size="4", debug="true", hook=login_hook(ctx, "own")))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-800:]))
    check("claimed spare" not in r.stderr, "a foreign realm was claimed: %s" % r.stderr[-800:])
    check(os.path.exists(ctx.path("login.own")), "the hook could not log in to its own realm")
    calls = before_hook(r)
    check(not [c for c in calls if c[0] in ("PUT", "DELETE") or c[1].endswith("/partialImport")],
          "a foreign realm was written to: %s" % calls)
    check(("POST", "/admin/realms", 201) in calls, "no fresh realm: %s" % calls)
    check_untouched(ctx, realms)
    check("lasuite-drive-f1f1f1" not in realm_names(ctx), "the run's realm is left")


@test("an expired spare of this parent is not claimed (a reap may be deleting it right now): the run creates its own realm")
def expired_spare_not_claimed(ctx):
    past = int(time.time()) - 60
    ctx.stub.seed({"realm": "lasuite-drive-spare-0", "enabled": True, "attributes": spare_marks(expires=past)})
    r = ctx.run(ctx.settings(run_id="f3f3f3", pool_size="1", debug="true", hook=login_hook(ctx, "own")))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-800:]))
    check("claimed spare" not in r.stderr, "the expired spare was claimed: %s" % r.stderr[-800:])
    calls = before_hook(r)
    check(not [c for c in calls if c[1].startswith("/admin/realms/lasuite-drive-spare-0") and c[0] != "GET"],
          "the expired spare was written to before the hook: %s" % calls)
    check(("POST", "/admin/realms", 201) in calls, "no fresh realm: %s" % calls)
    check(os.path.exists(ctx.path("login.own")), "the hook could not log in to its own realm")


@test("a failed rename (the run's name held by another job's live realm) deletes nothing but this run's verified spare")
def failed_rename(ctx):
    realms = foreign_realms(ctx)
    del realms["lasuite-drive-spare-3"]
    adm(ctx).call("DELETE", "/admin/realms/lasuite-drive-spare-3", ok=(204,))
    live = {"drone-deps.owner": "drone-deps", "drone-deps.run": "f2f2f2", "drone-deps.job": "other#9.1.1",
            "drone-deps.expires": str(int(time.time()) + 3600)}
    ctx.stub.seed({"realm": "lasuite-drive-f2f2f2", "enabled": True, "attributes": live, "users": [ALICE]})
    realms["lasuite-drive-f2f2f2"] = live
    # only the unmarked realm: its import succeeds on the old code, the
    # rename meets the live realm (409)
    r = ctx.run(ctx.settings(run_id="f2f2f2", pool_size="1", debug="true", hook="true"))
    check(r.code == 69, "exit %s, want 69 (the name is a live run's): %s" % (r.code, r.stderr[-800:]))
    check_untouched(ctx, realms)
    # now with a spare of ours in slot 3: it holds this run's client after
    # the import, and is the one realm the failed rename deletes
    ctx.stub.seed({"realm": "lasuite-drive-spare-3", "enabled": True, "attributes": spare_marks()})
    for _ in range(3):  # the first slot is random: every run reaches slot 3 at last
        r = ctx.run(ctx.settings(run_id="f2f2f2", pool_size="4", debug="true", hook="true"))
        check(r.code == 69, "exit %s, want 69: %s" % (r.code, r.stderr[-800:]))
        if "lasuite-drive-spare-3" not in realm_names(ctx):
            break
    check("could not rename it" in r.stderr and "lasuite-drive-spare-3" not in realm_names(ctx),
          "our spare was not claimed and deleted: %s" % r.stderr[-800:])
    check_untouched(ctx, realms)


@test("reap leaves realms under spare names alone unless they carry this parent's spare marks; refill fills only free slots")
def foreign_reap_refill(ctx):
    realms = foreign_realms(ctx)
    r = ctx.run(ctx.settings(action="reap", pool_size="5", debug="true"))
    check(r.code == 0, "reap: exit %s: %s" % (r.code, r.stderr[-800:]))
    check_untouched(ctx, realms)
    check("lasuite-drive-spare-4" in realm_names(ctx), "the free slot was not filled: %s" % r.stderr[-800:])
    rep = adm(ctx).call("GET", "/admin/realms/lasuite-drive-spare-4")
    check((rep.get("attributes") or {}).get("drone-deps.spare") == "lasuite-drive",
          "a spare names its parent: %s" % rep.get("attributes"))
    calls = debug_calls(r)
    check(not [c for c in calls if c[0] in ("PUT", "DELETE")], "reap or refill wrote to a realm: %s" % calls)
    # an expired spare of ours is reaped, as before
    expire(ctx, "lasuite-drive-spare-4")
    r = ctx.run(ctx.settings(action="reap", parent=None, debug="true"))
    check(r.code == 0 and "lasuite-drive-spare-4" not in realm_names(ctx), "expired spare kept: %s" % r.stderr[-800:])
    check_untouched(ctx, realms)


# ---- a claim cut or answered late -------------------------------------------------

def one_spare_and_foreign(ctx):
    """Slot 0 a spare of ours (made by the CI client, as a refill does),
    slot 1 an unmarked realm named like a spare."""
    fill_pool(ctx, 1)
    ctx.stub.seed({"realm": "lasuite-drive-spare-1", "enabled": True, "users": [ALICE]})
    return {"lasuite-drive-spare-1": {}}


def stop_mid_claim(ctx, mode, method, suffix, rid, at="worked"):
    ensure_client(ctx)
    realms = one_spare_and_foreign(ctx)
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule(mode, method, suffix, seconds=2)
        run = ctx.start(proxied(ctx, proxy, client_settings(ctx, run_id=rid, pool_size="2", hook="sleep 30")))
        event = proxy.worked if at == "worked" else proxy.arrived
        check(event.wait(60), "the claim never reached %s %s: %s" % (method, suffix, run.stderr[-800:]))
        t0 = time.time()
        os.kill(run.pid, signal.SIGTERM)
        run.wait(60)
        print("# stopped %s: exit after %.1f s" % (suffix, time.time() - t0), flush=True)
        check(run.code == 143, "exit %s, want 143: %s" % (run.code, run.stderr[-800:]))
        proxy.released.wait(10)  # a held request has gone on to the server
        time.sleep(0.5)
    finally:
        proxy.close()
    names = realm_names(ctx)
    check("lasuite-drive-" + rid not in names, "the run's realm is left: %s" % run.stderr[-800:])
    check("lasuite-drive-spare-0" not in names,
          "the spare holding the run's client is left: %s" % run.stderr[-800:])
    check_untouched(ctx, realms)


@test("SIGTERM once a claim's import is done (its answer held): exit 143, the spare holding the run's client deleted, no realm left, the foreign realm untouched")
def stop_import_done(ctx):
    stop_mid_claim(ctx, "hold_after", "POST", "-spare-0/partialImport", "e1e1e1")


@test("SIGTERM once the rename is sent (held before the server sees it): exit 143, no realm left, the foreign realm untouched")
def stop_rename_sent(ctx):
    stop_mid_claim(ctx, "hold_before", "PUT", "/lasuite-drive-spare-0", "e2e2e2", at="arrived")


@test("SIGTERM once the rename is done (its answer held): exit 143, the renamed realm deleted, the foreign realm untouched")
def stop_rename_done(ctx):
    stop_mid_claim(ctx, "hold_after", "PUT", "/lasuite-drive-spare-0", "e3e3e3")


@test("SIGTERM right after the rename's answer (as the hook starts): exit 143, no realm left, the foreign realm untouched")
def stop_rename_answered(ctx):
    ensure_client(ctx)
    realms = one_spare_and_foreign(ctx)
    started = ctx.path("started")
    run = ctx.start(client_settings(ctx, run_id="e4e4e4", pool_size="2", hook="echo go > %s; sleep 30" % started))
    ctx.wait_for_file(started, timeout=60, run=run)
    os.kill(run.pid, signal.SIGTERM)
    run.wait(60)
    check(run.code == 143, "exit %s: %s" % (run.code, run.stderr[-800:]))
    check("claimed spare lasuite-drive-spare-0" in run.stderr, "no claim: %s" % run.stderr[-800:])
    names = realm_names(ctx)
    check("lasuite-drive-e4e4e4" not in names and "lasuite-drive-spare-0" not in names,
          "a realm is left: %s" % sorted(names))
    check_untouched(ctx, realms)


@test("the rename's answer lost (the server renamed, the connection reset): the run sees its realm by its marks, binds it, and its user logs in")
def lost_rename_answer(ctx):
    ensure_client(ctx)
    realms = one_spare_and_foreign(ctx)
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule("reset_after", "PUT", "/lasuite-drive-spare-0")
        r = ctx.run(proxied(ctx, proxy, client_settings(ctx, run_id="e5e5e5", pool_size="2",
                                                         hook=login_hook(ctx, "lost"))))
    finally:
        proxy.close()
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-800:]))
    check(proxy.worked.is_set(), "the rename never reached the server")
    check("claimed spare lasuite-drive-spare-0" in r.stderr, "the claim was given up: %s" % r.stderr[-800:])
    check(not [c for c in before_hook(r) if c == ("POST", "/admin/realms", 201)],
          "a fresh realm was made although the rename happened: %s" % before_hook(r))
    check(os.path.exists(ctx.path("login.lost")), "the hook could not log in")
    names = realm_names(ctx)
    check("lasuite-drive-e5e5e5" not in names and "lasuite-drive-spare-0" not in names,
          "a realm is left: %s" % sorted(names))
    check_untouched(ctx, realms)


@test("claim race with forced overlap: 8 runs' imports held until all arrive, on 2 spares: each spare claimed once, all 8 bind and log in")
def race_overlap(ctx):
    ensure_client(ctx)
    fill_pool(ctx, 2)
    proxy = FaultProxy(ctx.stub.url)
    try:
        # every run's first import waits until 8 have arrived, then all
        # reach the server at once
        proxy.rule("barrier", "POST", "/partialImport", seconds=20, count=8, barrier=8)
        runs = [ctx.start(proxied(ctx, proxy, client_settings(
            ctx, action="up", run_id="%06x" % (0xd00000 + i), pool_size="2",
            env_file=ctx.path("race.%d.env" % i)))) for i in range(8)]
        for r in runs:
            r.wait(300)
        check(proxy.gate.is_set(), "the 8 imports never met")
        bad = [(i, r.code, r.stderr[-600:]) for i, r in enumerate(runs) if r.code != 0]
        check(not bad, "runs failed: %s" % bad)
        claims = [re.search(r"claimed spare (\S+)", r.stderr) for r in runs]
        won = sorted(m.group(1) for m in claims if m)
        check(won == ["lasuite-drive-spare-0", "lasuite-drive-spare-1"], "claims: %s" % won)
        for i in range(8):  # through the proxy: the binding's URL
            env = ctx.path("race.%d.env" % i)
            check(read_env_file(env)["DEPS_KEYCLOAK_REALM"] == "lasuite-drive-%06x" % (0xd00000 + i), "run %d" % i)
            login_with(ctx, env, "race%d" % i)
    finally:
        proxy.close()
    for i in range(8):
        r = ctx.run(client_settings(ctx, action="down", run_id="%06x" % (0xd00000 + i), pool_size="2",
                                    env_file=ctx.path("race.%d.env" % i)))
        check(r.code == 0, "down %d: %s" % (i, r.stderr[-300:]))
    check(not [n for n in realm_names(ctx) if n.startswith("lasuite-drive-d")], "realms left")


@test("SIGTERM while a create by the CI client is done but its answer held: exit 143, the realm deleted (its marks read with a new token)")
def stop_create_client(ctx):
    ensure_client(ctx)
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule("hold_after", "POST", "/admin/realms", seconds=2)
        run = ctx.start(proxied(ctx, proxy, client_settings(ctx, run_id="e6e6e6", pool_size="0", hook="true")))
        check(proxy.worked.wait(60), "the create never reached the server: %s" % run.stderr[-800:])
        os.kill(run.pid, signal.SIGTERM)
        run.wait(60)
        proxy.released.wait(10)
    finally:
        proxy.close()
    check(run.code == 143, "exit %s, want 143: %s" % (run.code, run.stderr[-800:]))
    check("lasuite-drive-e6e6e6" not in realm_names(ctx), "the realm is left: %s" % run.stderr[-800:])


# ---- finding: a create's answer lost with the CI client (a Keycloak member killed) ----


@test("the create's answer lost with the CI client (the server made the realm, the connection reset): the retry's 409 is this run's own realm, its marks read with a new token; it binds and its user logs in")
def lost_create_answer_client(ctx):
    # What a bind meets when a clustered Keycloak stalls on a killed member
    # and the proxy in front gives up on the create: the realm is made, the
    # answer lost, the retry answered 409. The CI client's token from
    # before the create may only name the realm (no view-realm on it yet).
    ensure_client(ctx)
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule("reset_after", "POST", "/admin/realms")
        r = ctx.run(proxied(ctx, proxy, client_settings(ctx, run_id="e7e7e7", pool_size="0",
                                                         hook=login_hook(ctx, "lostc"))))
    finally:
        proxy.close()
    check(proxy.worked.is_set(), "the create never reached the server")
    check(r.code == 0, "exit %s, want 0: %s" % (r.code, r.stderr[-800:]))
    check("realm lasuite-drive-e7e7e7 was made by this run (its answer was lost): using it" in r.stderr,
          "not recognised as its own: %s" % r.stderr[-800:])
    calls = before_hook(r)
    check([c for c in calls if c[0] == "POST" and c[1] == "/admin/realms"][-1][2] == 409 and
          not [c for c in calls if c[0] == "DELETE"], "calls before the hook: %s" % calls)
    check(os.path.exists(ctx.path("login.lostc")), "the hook could not log in")
    check("lasuite-drive-e7e7e7" not in realm_names(ctx), "the realm is left: %s" % r.stderr[-800:])


@test("the create's answer lost with the CI client, the realm of the name foreign: refused (exit 69) and left alone, one it may only name as one it made for another job")
def lost_create_answer_client_foreign(ctx):
    ensure_client(ctx)
    live = {"drone-deps.owner": "drone-deps", "drone-deps.run": "e8e8e9", "drone-deps.job": "other#1.1.1",
            "drone-deps.expires": str(int(time.time()) + 3600)}
    # the admin's, unmarked: the CI client may only name it
    ctx.stub.seed({"realm": "lasuite-drive-e8e8e8", "enabled": True, "users": [ALICE]})
    # the CI client's own, another job's live lease: it sees the marks
    status, body = ClientApi(ctx.stub.url).raw("POST", "/admin/realms", {
        "realm": "lasuite-drive-e8e8e9", "enabled": True, "attributes": live, "users": [ALICE]})
    check(status == 201, "the CI client's realm: HTTP %s %s" % (status, body))
    for run_id, needle in (("e8e8e8", "exists and is not marked as made by drone-deps: leaving it alone"),
                           ("e8e8e9", "belongs to a live run (job other#1.1.1")):
        proxy = FaultProxy(ctx.stub.url)
        try:
            proxy.rule("reset_after", "POST", "/admin/realms")
            r = ctx.run(proxied(ctx, proxy, client_settings(ctx, run_id=run_id, pool_size="0",
                                                             hook="echo ran > %s" % ctx.path("ran"))))
        finally:
            proxy.close()
        check(proxy.worked.is_set(), "%s: the create never reached the server" % run_id)
        check(r.code == 69 and needle in r.stderr, "%s: exit %s, want 69 and %r: %s"
              % (run_id, r.code, needle, r.stderr[-800:]))
        check(not os.path.exists(ctx.path("ran")), "%s: the hook ran" % run_id)
    check_untouched(ctx, {"lasuite-drive-e8e8e8": {}, "lasuite-drive-e8e8e9": live})


# ---- finding: a 5xx after the server committed the create -------------------------


@test("a create answered 500 after the server made the realm: the realm carrying exactly this attempt's marks is deleted, exit 69")
def create_5xx_after_commit(ctx):
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule("fail_after", "POST", "/admin/realms")
        r = ctx.run(proxied(ctx, proxy, ctx.settings(run_id="c5c5c5", pool_size="0", debug="true", hook="true")))
    finally:
        proxy.close()
    check(proxy.worked.is_set(), "the create never reached the server")
    check(r.code == 69, "exit %s, want 69: %s" % (r.code, r.stderr[-800:]))
    check("lasuite-drive-c5c5c5" not in realm_names(ctx), "the realm made by the failed create is left: %s"
          % r.stderr[-800:])


@test("a create answered 500 after the server made it, with the CI client: the realm is deleted, exit 69")
def create_5xx_after_commit_client(ctx):
    ensure_client(ctx)
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule("fail_after", "POST", "/admin/realms")
        r = ctx.run(proxied(ctx, proxy, client_settings(ctx, run_id="c6c6c6", pool_size="0", hook="true")))
    finally:
        proxy.close()
    check(r.code == 69, "exit %s, want 69: %s" % (r.code, r.stderr[-800:]))
    check("lasuite-drive-c6c6c6" not in realm_names(ctx), "the realm made by the failed create is left: %s"
          % r.stderr[-800:])


@test("a create answered 500 while another job's realm of the name exists (a 500, then the 409's realm): that realm is left alone")
def create_5xx_foreign(ctx):
    live = {"drone-deps.owner": "drone-deps", "drone-deps.run": "c7c7c7", "drone-deps.job": "other#1.1.1",
            "drone-deps.expires": str(int(time.time()) + 3600)}
    ctx.stub.seed({"realm": "lasuite-drive-c7c7c7", "enabled": True, "attributes": live, "users": [ALICE]})
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule("fail_after", "POST", "/admin/realms")
        r = ctx.run(proxied(ctx, proxy, ctx.settings(run_id="c7c7c7", pool_size="0", hook="true")))
    finally:
        proxy.close()
    check(r.code == 69, "exit %s, want 69: %s" % (r.code, r.stderr[-800:]))
    check_untouched(ctx, {"lasuite-drive-c7c7c7": live})


@test("a create answered 500 while a realm of this very job but another attempt's expiry exists: that realm is left alone (only exactly this attempt's marks are deleted)")
def create_5xx_same_job(ctx):
    # Run and job marks are this run's; only the expiry tells the realm
    # from the one this attempt sent.
    job_env = {"DRONE_REPO": "attack/x", "DRONE_BUILD_NUMBER": "8", "DRONE_STAGE_NUMBER": "1",
               "DRONE_STEP_NUMBER": "1"}
    other = {"drone-deps.owner": "drone-deps", "drone-deps.run": "c8c8c8", "drone-deps.job": "attack/x#8.1.1",
             "drone-deps.expires": str(int(time.time()) + 3600)}
    ctx.stub.seed({"realm": "lasuite-drive-c8c8c8", "enabled": True, "attributes": other, "users": [ALICE]})
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule("fail_after", "POST", "/admin/realms")
        r = ctx.run(proxied(ctx, proxy, ctx.settings(run_id="c8c8c8", pool_size="0", ttl="900", hook="true")),
                    base_env=job_env)
    finally:
        proxy.close()
    check("job attack/x#8.1.1" in r.stderr, "the run's job is not the seeded one: %s" % r.stderr[-400:])
    check(r.code == 69, "exit %s, want 69: %s" % (r.code, r.stderr[-800:]))
    check_untouched(ctx, {"lasuite-drive-c8c8c8": other})


# ---- the shared pool: the warm instance's spares, claimed by any parent ---------

SHARED_PARENTS = ["shared-a", "shared-b", "shared-c", "shared-d"]


def shared_spares(ctx):
    return sorted(n for n in realm_names(ctx) if re.fullmatch(r"drone-deps-pool-spare-\d+", n))


def fill_shared(ctx, size, parent="lasuite-drive"):
    r = ctx.run(client_settings(ctx, action="reap", parent=parent, pool_size=str(size),
                                pool_scope="instance"))
    check(r.code == 0, "reap (refill): exit %s: %s" % (r.code, r.stderr))
    return shared_spares(ctx)


def realm_client_ids(ctx, realm):
    return {c["clientId"] for c in adm(ctx).call("GET", "/admin/realms/%s/clients" % q(realm))}


@test("shared pool: 8 runs of 4 parents, their imports held until all arrive, on 2 shared spares: each spare claimed once, all 8 bind and log in, distinct realms each holding only its own run's client")
def shared_race(ctx):
    ensure_client(ctx)
    have = fill_shared(ctx, 2)
    check(have == ["drone-deps-pool-spare-0", "drone-deps-pool-spare-1"], "shared spares: %s" % have)
    rep = adm(ctx).call("GET", "/admin/realms/drone-deps-pool-spare-0")
    check((rep.get("attributes") or {}).get("drone-deps.spare") == "@instance",
          "a shared spare's mark names the instance: %s" % rep.get("attributes"))
    proxy = FaultProxy(ctx.stub.url)
    rid = ["%06x" % (0xa00000 + i) for i in range(8)]
    par = [SHARED_PARENTS[i % 4] for i in range(8)]
    try:
        proxy.rule("barrier", "POST", "/partialImport", seconds=20, count=8, barrier=8)
        runs = [ctx.start(proxied(ctx, proxy, client_settings(
            ctx, action="up", parent=par[i], run_id=rid[i], pool_size="2", pool_scope="instance",
            env_file=ctx.path("shared.%d.env" % i)))) for i in range(8)]
        for r in runs:
            r.wait(300)
        check(proxy.gate.is_set(), "the 8 imports never met")
        bad = [(i, r.code, r.stderr[-600:]) for i, r in enumerate(runs) if r.code != 0]
        check(not bad, "runs failed: %s" % bad)
        claims = [re.search(r"claimed spare (\S+)", r.stderr) for r in runs]
        won = sorted(m.group(1) for m in claims if m)
        check(won == ["drone-deps-pool-spare-0", "drone-deps-pool-spare-1"], "claims: %s" % won)
        realms = set()
        for i in range(8):
            env = ctx.path("shared.%d.env" % i)
            realm = read_env_file(env)["DEPS_KEYCLOAK_REALM"]
            check(realm == "%s-%s" % (par[i], rid[i]), "run %d got realm %s" % (i, realm))
            attrs = adm(ctx).call("GET", "/admin/realms/" + q(realm)).get("attributes") or {}
            check(attrs.get("drone-deps.run") == rid[i], "realm %s is marked %s" % (realm, attrs))
            ids = realm_client_ids(ctx, realm)
            check(ids & set(SHARED_PARENTS) == {par[i]},
                  "realm %s holds the clients %s (another run's client is a leaked secret)" % (realm, sorted(ids)))
            login_with(ctx, env, "shared%d" % i)
            realms.add(realm)
        check(len(realms) == 8, "realms shared: %s" % sorted(realms))
    finally:
        proxy.close()
        for i in range(8):
            ctx.run(client_settings(ctx, action="down", parent=par[i], run_id=rid[i], pool_size="2",
                                    pool_scope="instance", env_file=ctx.path("shared.%d.env" % i)))
    left = [n for n in realm_names(ctx) if n.startswith("shared-")]
    check(not left, "realms left: %s" % left)


@test("shared pool: realms under shared spare names that are not the instance's live spares (unmarked, a parent's spare mark, a run's) are never claimed, renamed or deleted, by a claim or a reap")
def shared_foreign(ctx):
    ensure_client(ctx)
    past = str(int(time.time()) - 3600)
    realms = {
        "drone-deps-pool-spare-0": {},
        "drone-deps-pool-spare-1": spare_marks("drone-deps-pool", expires=past),
        "drone-deps-pool-spare-2": {"drone-deps.owner": "drone-deps", "drone-deps.run": "abc125",
                                    "drone-deps.job": "z#3.1.1", "drone-deps.expires": past},
    }
    for name, attrs in realms.items():
        ctx.stub.seed({"realm": name, "enabled": True, "attributes": attrs, "users": [ALICE]})
    have = fill_shared(ctx, 4)
    check("drone-deps-pool-spare-3" in have, "the free slot was not filled: %s" % have)
    check_untouched(ctx, realms)
    for n in range(3):  # the first slot is random: every run meets the foreign ones
        rid = "%06x" % (0xb10000 + n)
        r = ctx.run(client_settings(ctx, run_id=rid, pool_size="4", pool_scope="instance",
                                    hook=login_hook(ctx, "own%d" % n)))
        check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-800:]))
        m = re.search(r"claimed spare (\S+)", r.stderr)
        check(not m or m.group(1) == "drone-deps-pool-spare-3", "claimed %s" % (m and m.group(1)))
        check(os.path.exists(ctx.path("login.own%d" % n)), "the hook could not log in")
        check_untouched(ctx, realms)
    r = ctx.run(client_settings(ctx, action="reap", parent=None, pool_size="0"))
    check(r.code == 0, "reap: %s" % r.stderr[-800:])
    r = ctx.run(ctx.settings(action="reap", parent=None))
    check(r.code == 0, "reap (admin): %s" % r.stderr[-800:])
    check_untouched(ctx, realms)


@test("shared pool: an expired shared spare is reaped, a live one kept")
def shared_reap(ctx):
    ensure_client(ctx)
    have = fill_shared(ctx, 2)
    check(have == ["drone-deps-pool-spare-0", "drone-deps-pool-spare-1"], "shared spares: %s" % have)
    expire(ctx, "drone-deps-pool-spare-1")
    r = ctx.run(client_settings(ctx, action="reap", parent=None, pool_size="0"))
    check(r.code == 0, "reap: exit %s: %s" % (r.code, r.stderr))
    check(shared_spares(ctx) == ["drone-deps-pool-spare-0"], "after reap: %s" % shared_spares(ctx))


@test("shared pool: 4 parents' scheduled refills and runs leave pool_size spares on the server, not pool_size per parent")
def shared_steady(ctx):
    ensure_client(ctx)
    before = realm_names(ctx)
    for p in SHARED_PARENTS:
        fill_shared(ctx, 2, parent=p)
    for i, p in enumerate(SHARED_PARENTS):
        r = ctx.run(client_settings(ctx, parent=p, run_id="%06x" % (0xc10000 + i), pool_size="2",
                                    pool_scope="instance", hook="true"))
        check(r.code == 0, "run %d: %s" % (i, r.stderr[-600:]))
        fill_shared(ctx, 2, parent=p)
    added = sorted(realm_names(ctx) - before)
    print("# realms on the server after 4 parents' runs: %s" % added, flush=True)
    check(added == ["drone-deps-pool-spare-0", "drone-deps-pool-spare-1"], "realms added: %s" % added)


@test("shared pool: SIGTERM once a claim's import is done (its answer held): exit 143, the spare holding the run's client deleted, no realm left, a foreign realm under a shared name untouched")
def shared_stop_import(ctx):
    ensure_client(ctx)
    fill_shared(ctx, 1)
    ctx.stub.seed({"realm": "drone-deps-pool-spare-1", "enabled": True, "users": [ALICE]})
    realms = {"drone-deps-pool-spare-1": {}}
    proxy = FaultProxy(ctx.stub.url)
    try:
        proxy.rule("hold_after", "POST", "drone-deps-pool-spare-0/partialImport", seconds=2)
        run = ctx.start(proxied(ctx, proxy, client_settings(ctx, parent="shared-b", run_id="e7e7e7",
                                                            pool_size="2", pool_scope="instance",
                                                            hook="sleep 30")))
        check(proxy.worked.wait(60), "the claim never reached the import: %s" % run.stderr[-800:])
        os.kill(run.pid, signal.SIGTERM)
        run.wait(60)
        check(run.code == 143, "exit %s, want 143: %s" % (run.code, run.stderr[-800:]))
        proxy.released.wait(10)
        time.sleep(0.5)
    finally:
        proxy.close()
    names = realm_names(ctx)
    check("shared-b-e7e7e7" not in names, "the run's realm is left")
    check("drone-deps-pool-spare-0" not in names, "the spare holding the run's client is left: %s" % run.stderr[-800:])
    check_untouched(ctx, realms)


@test("pool_scope other than parent or instance, or the parent drone-deps-pool, exits 64 naming the setting, nothing created")
def shared_bad_scope(ctx):
    r = ctx.run(ctx.settings(run_id="e8e8e8", pool_scope="global", pool_size="2", hook="true"))
    check(r.code == 64 and "pool_scope" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
          "exit %s: %s" % (r.code, r.stderr))
    r = ctx.run(ctx.settings(run_id="e8e8e8", parent="drone-deps-pool", pool_size="2", hook="true"))
    check(r.code == 64 and "parent" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
          "exit %s: %s" % (r.code, r.stderr))
    check(not [n for n in realm_names(ctx) if n.endswith("-e8e8e8")], "a realm was made")


# ---- the watchdog with the CI client, on the local swarm ------------------------

@test("watchdog with only the CI client: the plugin container SIGKILLed mid-hook; the realm is gone within 15 s, the secret in no inspect")
def client_watchdog(ctx):
    real_only(ctx, "run with the real server's suite (pool-real), which has the plugin image")
    if subprocess.run([DOCKER, "image", "inspect", PLUGIN_IMAGE], capture_output=True).returncode != 0:
        raise NotRun("no plugin image %s and Docker engine (make docker-up image)" % PLUGIN_IMAGE)
    ensure_client(ctx)
    rid = os.urandom(3).hex()
    realm = "lasuite-drive-" + rid
    name = "dd-pool-" + rid
    env = client_settings(ctx, run_id=rid, pool_size="0", hook="sleep 120", debug=None,
                          docker_host="unix:///var/run/docker.sock")
    try:
        run_plugin_container(name, rid, env)
        wait_until(lambda: realm in realm_names(ctx) and watchdog_started(name, rid), 60,
                   "no realm and running watchdog")
        inspect = docker("inspect", *watchdogs_of(rid))
        check(CLIENT_SECRET not in inspect, "the client secret is visible in docker inspect of the watchdog")
        check(CLIENT_SECRET not in docker("inspect", name).replace(
            "PLUGIN_KEYCLOAK_CLIENT_SECRET=" + CLIENT_SECRET, ""), "the client secret is elsewhere in the inspect")
        docker("kill", "-s", "KILL", name)
        t0 = time.time()
        wait_until(lambda: realm not in realm_names(ctx), 15, "the realm was not deleted by the watchdog")
        took = time.time() - t0
        wait_until(lambda: not watchdogs_of(rid), 15, "the watchdog did not remove itself")
        print("# watchdog (CI client) deleted the realm %.1f s after SIGKILL" % took)
    finally:
        for c in [name] + watchdogs_of(rid):
            docker("rm", "-f", c, check_rc=False)
        if realm in realm_names(ctx):
            adm(ctx).call("DELETE", "/admin/realms/" + q(realm), ok=(204, 404))


if __name__ == "__main__":
    sys.exit(main())
