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
    r = ctx.run(client_settings(ctx, action="down", run_id="e4e4e4", pool_size="0"))
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
    r = ctx.run(client_settings(ctx, action="down", run_id="a1a1a1", pool_size="1"))
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
        r = ctx.run(client_settings(ctx, action="down", run_id="f3f3f3", pool_size="0"))
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
    downs = [ctx.start(client_settings(ctx, action="down", run_id="%06x" % (0xf00000 + i), pool_size="4"))
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
