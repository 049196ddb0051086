#!/usr/bin/env python3
"""The guarantees under stress: isolation of overlapping runs, stops during
the bind, the renewal of a refused token, secrets on every path, and the
ways the real Keycloak is less kind than a plain stand-in (an answer lost
after the work is done, 26.2.4's 400 for a duplicate, admin tokens that grow
with the realms, imports that are not serialised, admin sessions). Each test
drives the real drone-deps binary against the stand-in and checks what
happened on the server, from its request log, not only drone-deps' word.
With KEYCLOAK_BACKEND=real the same tests run on a real Keycloak wherever
they need no fault the real server cannot be made to show; there the proof
comes from the hooks' own logins, the server's realm list and sessions, and
each run's debug lines (method, path, status of every call it made)."""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ADMIN_PASSWORD, PYTHON, ROOT, Failure, check,  # noqa: E402
                     main, read_env_file, test)

LOGIN = os.path.join(ROOT, "tests", "e2e", "login.py")
TOKEN_PATH = "/realms/master/protocol/openid-connect/token"


def only_master(ctx):
    realms = ctx.stub.realms()
    check(set(realms) == {"master"}, "realms left behind: %s" % sorted(realms))


def login_hook(ctx, name):
    """A hook that logs in through its binding, writing login.<name>."""
    return "%s %s %s" % (PYTHON, LOGIN, ctx.path("login." + name))


def stub_get(ctx, path):
    return ctx.stub._call("GET", path)


def admin_calls(log, method=None, prefix="/admin/realms"):
    return [q for q in log if q["path"].startswith(prefix) and (method is None or q["method"] == method)]


DEBUG_LINE = re.compile(r"^drone-deps: debug: http: (GET|POST|PUT|DELETE) (\S+) (\d+) \d+ ms$", re.M)


def debug_calls(run, method=None, prefix="/admin/realms"):
    """(method, path, status) of each call a run made, from its debug lines
    (debug=true): what it asked and what the server answered, on any
    backend."""
    return [(m, p, int(st)) for m, p, st in DEBUG_LINE.findall(run.stderr)
            if p.startswith(prefix) and (method is None or m == method)]


# ---- isolation ---------------------------------------------------------------

# Each hook: log in (its realm exists at its start), say it is bound, wait
# until all the runs are bound (so every realm existed at once), then log in
# again (its realm still exists at its end, after others may have finished).
BARRIER_HOOK = r'''
import os, subprocess, sys, time
login, folder, me, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
subprocess.run([sys.executable, login, os.path.join(folder, "start." + me)], check=True)
with open(os.path.join(folder, "realm." + me), "w") as f:
    f.write(os.environ["DEPS_KEYCLOAK_REALM"])
os.rename(os.path.join(folder, "realm." + me), os.path.join(folder, "bound." + me))
deadline = time.time() + 120
while sum(1 for x in os.listdir(folder) if x.startswith("bound.")) < n:
    if time.time() > deadline:
        sys.exit("barrier: not all runs were bound within 120 s")
    time.sleep(0.05)
subprocess.run([sys.executable, login, os.path.join(folder, "end." + me)], check=True)
'''


@test("16 overlapping runs: each realm exists from its hook's start to its own teardown, deleted once")
def parallel_isolation(ctx):
    n = 16
    folder = ctx.path("barrier")
    os.mkdir(folder)
    with open(ctx.path("barrier.py"), "w") as f:
        f.write(BARRIER_HOOK)
    if ctx.stub.has_log:
        # Imports take a while, so they overlap on the server as well (a
        # real server's do by themselves).
        ctx.stub.config(import_ms=150)
        ctx.stub.clear_requests()
    runs = [ctx.start(ctx.settings(hook="%s %s %s %s %d %d" % (
        PYTHON, ctx.path("barrier.py"), LOGIN, folder, i, n), debug="true")) for i in range(n)]
    for r in runs:
        r.wait(180)
    codes = [r.code for r in runs]
    check(all(c == 0 for c in codes), "exit codes %s" % codes)
    realms = [open(os.path.join(folder, "bound.%d" % i)).read() for i in range(n)]
    check(len(set(realms)) == n, "realms not distinct: %s" % realms)
    for i in range(n):
        for when in ("start", "end"):
            p = os.path.join(folder, "%s.%d" % (when, i))
            check(os.path.exists(p) and open(p).read().startswith("login ok"),
                  "run %d: no login at its hook's %s" % (i, when))
    # Each run's own word, call by call: it made its realm (201), deleted
    # it (204, not 404: no other run took it), and deleted nothing else.
    for i, r in enumerate(runs):
        posts = [st for m, p, st in debug_calls(r, "POST") if p == "/admin/realms"]
        deletes = debug_calls(r, "DELETE")
        check(posts == [201], "run %d: realm imports %s" % (i, posts))
        check(deletes == [("DELETE", "/admin/realms/" + realms[i], 204)],
              "run %d: deletes %s" % (i, deletes))
    only_master(ctx)
    if not ctx.stub.has_log:
        ctx.dropped("the server's request log: each realm deleted once, 2 hook logins each",
                    "a real server keeps no request log (each run's debug lines were checked)")
        return
    log = ctx.stub.requests()
    deletes = admin_calls(log, "DELETE")
    check(sorted(q["path"] for q in deletes) == sorted("/admin/realms/" + r for r in realms),
          "each realm deleted exactly once, nothing else: %s" % [(q["path"], q["status"]) for q in deletes])
    check(all(q["status"] == 204 for q in deletes),
          "a teardown found its realm gone: %s" % [(q["path"], q["status"]) for q in deletes])
    logins = [q for q in log if q["path"].endswith("/protocol/openid-connect/token")
              and not q["path"].startswith("/realms/master/")]
    check(len(logins) == 2 * n and all(q["status"] == 200 for q in logins),
          "hook logins: %s" % [(q["path"], q["status"]) for q in logins])
    only_master(ctx)


@test("two runs of one run id at once (imports overlap): one binds, the other fails 69 and touches nothing")
def same_name_race(ctx):
    if ctx.stub.has_log:
        ctx.stub.config(import_ms=800)
        ctx.stub.clear_requests()
    # The winner's hook holds its realm until the loser has exited, so the
    # loser always meets it, however late it starts.
    release = ctx.path("release")
    hold = "i=0; while [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done" % release
    runs = [ctx.start(ctx.settings(hook=login_hook(ctx, str(i)) + " && " + hold, run_id="ab0001",
                                   debug="true"),
                      base_env={"DRONE_REPO": "race/x", "DRONE_BUILD_NUMBER": str(i + 1)})
            for i in range(2)]
    deadline = time.time() + 60
    while all(r.proc.poll() is None for r in runs) and time.time() < deadline:
        time.sleep(0.05)
    open(release, "w").close()
    for r in runs:
        r.wait(60)
    codes = sorted(r.code for r in runs)
    check(codes == [0, 69], "exit codes %s: %s" % (codes, [r.stderr[-300:] for r in runs]))
    winner = 0 if runs[0].code == 0 else 1
    check(open(ctx.path("login.%d" % winner)).read().startswith("login ok"), "the winner's hook did not log in")
    check(not os.path.exists(ctx.path("login.%d" % (1 - winner))), "the loser's hook ran")
    check("live run" in runs[1 - winner].stderr, "loser: %s" % runs[1 - winner].stderr[-300:])
    # From each run's debug lines: the winner made and deleted the realm,
    # the loser met it (409), deleted nothing and changed nothing.
    won, lost = runs[winner], runs[1 - winner]
    check([st for m, p, st in debug_calls(won, "POST") if p == "/admin/realms"] == [201],
          "winner's imports: %s" % debug_calls(won, "POST"))
    check(debug_calls(won, "DELETE") == [("DELETE", "/admin/realms/lasuite-drive-ab0001", 204)],
          "winner's deletes: %s" % debug_calls(won, "DELETE"))
    check([st for m, p, st in debug_calls(lost, "POST") if p == "/admin/realms"] == [409],
          "loser's imports: %s" % debug_calls(lost, "POST"))
    check(not [c for c in debug_calls(lost) if c[0] in ("PUT", "DELETE")],
          "the loser changed something: %s" % debug_calls(lost))
    only_master(ctx)
    if not ctx.stub.has_log:
        ctx.dropped("the server's request log: imports 201 and 409, one delete",
                    "a real server keeps no request log (each run's debug lines were checked)")
        return
    log = ctx.stub.requests()
    posts = [q["status"] for q in admin_calls(log, "POST") if q["path"] == "/admin/realms"]
    check(sorted(posts) == [201, 409], "realm imports: %s" % posts)
    deletes = [(q["path"], q["status"]) for q in admin_calls(log, "DELETE")]
    check(deletes == [("/admin/realms/lasuite-drive-ab0001", 204)], "deletes: %s" % deletes)
    only_master(ctx)


# ---- stops during the bind ----------------------------------------------------

@test("SIGTERM while the realm exists but its answer is not in: no hook, realm deleted, exit 143",
      stub_only="needs the stand-in to hold the realm POST's answer after making the realm (hold knob)")
def sig_during_bind(ctx):
    # The stand-in creates the realm, then holds the answer; the signal is
    # sent once the realm is seen on the server, so it always lands there.
    ctx.stub.config(hold={"seconds": 5, "method": "POST", "path_prefix": "/admin/realms"})
    ctx.stub.clear_requests()
    r = ctx.start(ctx.settings(hook="echo ran > %s" % ctx.path("ran"), run_id="5e0001"))
    deadline = time.time() + 30
    while "lasuite-drive-5e0001" not in ctx.stub.realms():
        if time.time() > deadline or r.proc.poll() is not None:
            raise Failure("the realm never appeared (exit %s)" % r.proc.poll())
        time.sleep(0.02)
    os.kill(r.pid, signal.SIGTERM)
    r.wait(30)
    check(r.code == 143, "exit %s: %s" % (r.code, r.stderr[-300:]))
    check(not os.path.exists(ctx.path("ran")), "the hook ran after SIGTERM")
    log = ctx.stub.requests()
    held = [q for q in log if q.get("fault") == "hold"]
    check(len(held) == 1 and held[0]["status"] == 201, "the realm POST: %s" % held)
    deletes = [(q["path"], q["status"]) for q in admin_calls(log, "DELETE")]
    check(deletes == [("/admin/realms/lasuite-drive-5e0001", 204)], "teardown: %s" % deletes)
    only_master(ctx)


@test("a stop during a normal teardown cuts it to the 5 s stopped budget: DELETE held 40 s, exit 143 within 5.5 s",
      stub_only="needs the stand-in to hold the DELETE's answer (hold knob)")
def stop_during_teardown(ctx):
    # The hook ends by itself; teardown's DELETE is held 40 s by the
    # server; SIGTERM comes 1 s into it. Teardown, the admin logout (and
    # the watchdog's removal, with a socket) share the 5 s stopped budget
    # from the signal on, not the teardown's own 60 s.
    ctx.stub.config(hold={"seconds": 40, "method": "DELETE", "path_prefix": "/admin/realms/"})
    ctx.stub.clear_requests()
    r = ctx.start(ctx.settings(hook="true", run_id="5e0002"))
    deadline = time.time() + 30
    while not admin_calls(ctx.stub.requests(), "DELETE"):
        if time.time() > deadline or r.proc.poll() is not None:
            raise Failure("the DELETE was never held (exit %s)" % r.proc.poll())
        time.sleep(0.02)
    time.sleep(1.0)
    t0 = time.time()
    os.kill(r.pid, signal.SIGTERM)
    r.wait(60)
    took = time.time() - t0
    print("# stop 1 s into a held DELETE: exit %s %.2f s after the signal" % (r.code, took))
    check(r.code == 143, "exit %s: %s" % (r.code, r.stderr[-300:]))
    check(took < 5.5, "took %.2f s after the signal, want the 5 s stopped budget" % took)
    check("its lease ends it" in r.stderr, "no word of the lease: %s" % r.stderr[-300:])
    ctx.stub.config(hold=None)


@test("a stop during teardown's retries keeps them within the 5 s budget: DELETE answered 503 four times, the realm is deleted, exit 143",
      stub_only="needs a run of 503s on the DELETE (fail knob)")
def stop_during_teardown_retries(ctx):
    ctx.stub.config(fail={"status": 503, "count": 4, "method": "DELETE", "path_prefix": "/admin/realms/"})
    ctx.stub.clear_requests()
    r = ctx.start(ctx.settings(hook="true", run_id="5e0004"))
    deadline = time.time() + 30
    while not [q for q in admin_calls(ctx.stub.requests(), "DELETE") if q["status"] == 503]:
        if time.time() > deadline or r.proc.poll() is not None:
            raise Failure("no DELETE answered 503 (exit %s)" % r.proc.poll())
        time.sleep(0.01)
    t0 = time.time()
    os.kill(r.pid, signal.SIGTERM)  # during the retries' backoff (0.1 + 0.2 + 0.4 + 0.8 s)
    r.wait(60)
    took = time.time() - t0
    deletes = [q["status"] for q in admin_calls(ctx.stub.requests(), "DELETE")]
    print("# stop during teardown's retries: exit %s %.2f s after the signal, DELETEs %s" % (r.code, took, deletes))
    check(r.code == 143, "exit %s: %s" % (r.code, r.stderr[-300:]))
    check(deletes[-1:] == [204], "teardown gave up before its budget: DELETEs %s: %s" % (deletes, r.stderr[-400:]))
    check(took < 5.5, "took %.2f s" % took)
    only_master(ctx)
    ctx.stub.config(fail=None)


@test("housekeeping never delays renewal: a spare create held 20 s, ttl 10; the lease is renewed every 3 s and another run's reap keeps the realm",
      stub_only="needs the stand-in to hold the spare's POST (hold knob)")
def renewal_not_behind_housekeeping(ctx):
    rid = "5e0003"
    name = "lasuite-drive-" + rid
    started, release = ctx.path("started"), ctx.path("release")
    hook = ("echo $$ > %s; echo go > %s; i=0; while [ ! -e %s ] && [ $i -lt 600 ]; "
            "do sleep 0.1; i=$((i+1)); done" % (ctx.hook_pgid_file(), started, release))
    r = ctx.start(ctx.settings(hook=hook, run_id=rid, ttl=10, pool_size=1, debug="true"))
    ctx.wait_for_file(started, run=r)
    # From now on (the bind's own create is done) the pool's refill, 2 s
    # into the hook, is held by the server for 20 s.
    ctx.stub.config(hold={"seconds": 20, "method": "POST", "path_prefix": "/admin/realms"})
    t0 = time.time()
    lowest = None
    try:
        while time.time() - t0 < 13:
            attrs = stub_get(ctx, "/_stub/realms")
            mine = [x for x in attrs if x["realm"] == name]
            check(mine, "realm %s gone %.1f s into the hook" % (name, time.time() - t0))
            left = int(mine[0]["attributes"]["drone-deps.expires"]) - time.time()
            lowest = left if lowest is None else min(lowest, left)
            check(left > 0, "the lease lapsed %.1f s into the hook" % (time.time() - t0))
            time.sleep(0.5)
        held = [q for q in ctx.stub.requests() if q.get("fault") == "hold"]
        check(held, "the spare's create was never held: %s" % r.stderr[-400:])
        # another runner's scheduled reap, 13 s in: the realm is live
        reap = ctx.run(ctx.settings(action="reap", parent=None))
        check(reap.code == 0, "reap exited %s: %s" % (reap.code, reap.stderr[-300:]))
        check(name in ctx.stub.realms(), "another run's reap deleted the live realm")
        print("# ttl 10, spare create held 20 s: least lease left %.1f s over 13 s" % lowest)
    finally:
        open(release, "w").write("x")
        r.wait(60)
        ctx.stub.config(hold=None)
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-300:]))


# ---- the admin token -------------------------------------------------------------

@test("SIGTERM while the realm POST is unanswered and the realm's marks name another job: left alone, exit 143",
      stub_only="needs the stand-in to hold the realm POST's answer after making the realm (hold knob)")
def sig_during_bind_foreign(ctx):
    # A create cut by the stop is deleted only if its marks say it is this
    # job's: here another step of the stage (same run id, another job)
    # holds the name by the time drone-deps looks.
    from realkc import Admin
    ctx.stub.config(hold={"seconds": 5, "method": "POST", "path_prefix": "/admin/realms"})
    r = ctx.start(ctx.settings(hook="echo ran > %s" % ctx.path("ran"), run_id="5e0002"))
    deadline = time.time() + 30
    while "lasuite-drive-5e0002" not in ctx.stub.realms():
        if time.time() > deadline or r.proc.poll() is not None:
            raise Failure("the realm never appeared (exit %s)" % r.proc.poll())
        time.sleep(0.02)
    other = {"drone-deps.owner": "drone-deps", "drone-deps.run": "5e0002",
             "drone-deps.job": "other/repo#9.1.2", "drone-deps.expires": str(int(time.time()) + 600)}
    Admin(ctx.stub.control, ctx.stub.password).call("PUT", "/admin/realms/lasuite-drive-5e0002",
                                                    {"attributes": other})
    os.kill(r.pid, signal.SIGTERM)
    r.wait(30)
    check(r.code == 143, "exit %s: %s" % (r.code, r.stderr[-300:]))
    check(not os.path.exists(ctx.path("ran")), "the hook ran after SIGTERM")
    realm = ctx.stub.realms().get("lasuite-drive-5e0002")
    check(realm and realm["attributes"].get("drone-deps.job") == other["drone-deps.job"],
          "another job's realm was deleted or changed: %s" % realm)
    check("not this job's: leaving it alone" in r.stderr, "message: %s" % r.stderr[-300:])


@test("a token refused with 401 mid-run is renewed once and the call repeated",
      stub_only="needs the stand-in to refuse a token it issued before its expiry (expire knob)")
def renew_on_401(ctx):
    # The stand-in expires the token server-side when the teardown's DELETE
    # arrives: drone-deps still thinks it valid, so only the 401 tells.
    ctx.stub.config(expire={"method": "DELETE", "path_prefix": "/admin/realms/"})
    ctx.stub.clear_requests()
    r = ctx.run(ctx.settings(hook="true", debug="true", run_id="401a01"))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
    seq = [(q["method"], q["path"], q["status"], q.get("fault")) for q in ctx.stub.requests()]
    want = [("POST", TOKEN_PATH, 200, None),
            ("POST", "/admin/realms", 201, None),
            ("DELETE", "/admin/realms/lasuite-drive-401a01", 401, "expire"),
            ("POST", TOKEN_PATH, 200, None),
            ("DELETE", "/admin/realms/lasuite-drive-401a01", 204, None),
            ("POST", "/realms/master/protocol/openid-connect/logout", 204, None)]
    check(seq == want, "requests:\n%s" % "\n".join(map(str, seq)))
    check(r.stderr.count("renewing it once") == 1, "debug: %s" % r.stderr[-600:])
    only_master(ctx)


@test("a token refused again after its renewal is not renewed in a loop",
      stub_only="needs the stand-in to refuse every renewed token too (expire knob)")
def renew_once_only(ctx):
    ctx.stub.config(expire={"method": "DELETE", "path_prefix": "/admin/realms/", "count": -1})
    ctx.stub.clear_requests()
    r = ctx.run(ctx.settings(hook="true", timeout=5, run_id="401a02"))
    ctx.stub.config(expire=None)
    check(r.code == 75, "exit %s: %s" % (r.code, r.stderr[-400:]))
    log = ctx.stub.requests()
    deletes = admin_calls(log, "DELETE")
    tokens = [q for q in log if q["path"] == TOKEN_PATH]
    # Each DELETE attempt may renew once: never more logins than attempts.
    check(deletes and len(tokens) <= len(deletes) + 1 and all(q["status"] == 401 for q in deletes),
          "%d DELETEs, %d logins" % (len(deletes), len(tokens)))


# ---- secrets ---------------------------------------------------------------------

def issued_tokens(ctx):
    return [t["token"] for t in stub_get(ctx, "/_stub/tokens")]


# Any JWT (access, refresh or id token): a base64url JSON header, '{"'.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}")


def assert_no_secret(ctx, label, run, secrets, files=()):
    """No secret, no JWT-shaped string, and (on the stand-in) no piece of a
    token it issued in the run's stdout and stderr, nor in the given
    files. A real server cannot list the tokens it issued: there the JWT
    shape stands for them."""
    places = {"stdout": run.stdout, "stderr": run.stderr}
    for p in files:
        if os.path.exists(p):
            places[os.path.basename(p)] = open(p, errors="replace").read()
    named = dict(secrets)
    if ctx.stub.has_log:
        # A token's pieces too: any leak of 31 characters or more holds one
        # of its 16-character pieces (the header, the same in every token,
        # aside).
        for i, tok in enumerate(issued_tokens(ctx)):
            start = tok.index(".") + 1 if "." in tok else 0
            for at in range(start, len(tok) - 15, 16):
                named["issued token %d (at %d)" % (i, at)] = tok[at:at + 16]
        check(len(named) > len(secrets), "%s: the stand-in issued no token to look for" % label)
    for where, text in places.items():
        for what, value in named.items():
            check(value not in text, "%s: the %s is in %s" % (label, what, where))
        m = JWT.search(text)
        check(not m, "%s: a JWT-shaped string is in %s: %s..." % (label, where, m and m.group(0)[:12]))


@test("no admin password, bearer token, client secret or user password in any output, on every path")
def no_secrets_anywhere(ctx):
    admin = {"admin password": ADMIN_PASSWORD}
    paths = []

    # Success, debug on: env_file holds the binding, never the admin secret;
    # the hook's environment has no admin setting. The hook logs in, so
    # the server has issued user tokens as well as the admin's.
    env_path = ctx.path("ok.env")
    r = ctx.run(ctx.settings(hook="env > %s && %s" % (ctx.path("hook.env"), login_hook(ctx, "ok")),
                             debug="true", env_file=env_path))
    check(r.code == 0, "success: exit %s: %s" % (r.code, r.stderr[-300:]))
    check(open(ctx.path("login.ok")).read().startswith("login ok"), "success: the hook did not log in")
    check("http: POST /admin/realms 201" in r.stderr and " ms" in r.stderr, "debug lines missing: %s" % r.stderr[-500:])
    hook_env = open(ctx.path("hook.env")).read()
    check(ADMIN_PASSWORD not in hook_env and "PLUGIN_KEYCLOAK_ADMIN_PASSWORD" not in hook_env,
          "the hook saw the admin password")
    check(not JWT.search(hook_env), "the hook's environment holds a token")
    env = read_env_file(env_path)
    binding = {"client secret": env["DEPS_KEYCLOAK_CLIENT_SECRET"], "user password": env["DEPS_KEYCLOAK_PASSWORD"]}
    assert_no_secret(ctx, "success", r, dict(admin, **binding))
    assert_env_file_clean(ctx, "success", env_path)
    paths.append("success")

    # Bad credentials (a wrong password is a secret too).
    r = ctx.run(ctx.settings(hook="true", debug="true", keycloak_admin_password="wrong-Pa55-e2e"))
    check(r.code == 69, "bad credentials: exit %s" % r.code)
    assert_no_secret(ctx, "bad credentials", r, dict(admin, **{"given password": "wrong-Pa55-e2e"}))
    paths.append("bad credentials")

    # The admin token expires during the hook (the master realm's token
    # lifespan shortened through the admin API): teardown logs in again.
    ctx.stub.token_lifespan(2)
    env_path = ctx.path("expiry.env")
    r = ctx.run(ctx.settings(hook="sleep 3", debug="true", env_file=env_path))
    check(r.code == 0, "token expiry: exit %s: %s" % (r.code, r.stderr[-300:]))
    check(len(debug_calls(r, "POST", TOKEN_PATH)) >= 2, "token expiry: no second login: %s" % r.stderr[-500:])
    env = read_env_file(env_path)
    assert_no_secret(ctx, "token expiry", r, dict(admin, **{"client secret": env["DEPS_KEYCLOAK_CLIENT_SECRET"],
                                                            "user password": env["DEPS_KEYCLOAK_PASSWORD"]}))
    assert_env_file_clean(ctx, "token expiry", env_path)
    ctx.stub.reset()  # the token lifespan back
    paths.append("token expiry")

    # A name collision with a live run: refused (69) after a login and a
    # read of the other run's realm.
    ctx.stub.seed({"realm": "lasuite-drive-5ec003", "enabled": True,
                   "attributes": {"drone-deps.owner": "drone-deps", "drone-deps.run": "5ec003",
                                  "drone-deps.job": "other/repo#1.1.1",
                                  "drone-deps.expires": str(int(time.time()) + 600)}})
    r = ctx.run(ctx.settings(hook="true", debug="true", run_id="5ec003"))
    check(r.code == 69 and "live run" in r.stderr, "collision: exit %s: %s" % (r.code, r.stderr[-300:]))
    assert_no_secret(ctx, "collision", r, admin)
    ctx.stub.reset()
    paths.append("collision")

    # Stopped mid-hook (SIGTERM forwarded, teardown, 143).
    started = ctx.path("started")
    r = ctx.start(ctx.settings(hook="echo $$ > %s; echo go > %s; sleep 30" % (ctx.hook_pgid_file(), started),
                               debug="true"))
    ctx.wait_for_file(started, timeout=120, run=r)
    os.kill(r.pid, signal.SIGTERM)
    r.wait()
    check(r.code == 143, "stopped: exit %s: %s" % (r.code, r.stderr[-300:]))
    assert_no_secret(ctx, "stopped", r, admin)
    paths.append("stopped")

    if ctx.stub.has_log:
        # 5xx on the realm import after the work is done: drone-deps deletes
        # the realm it finds with its marks; that DELETE fails here, so the
        # realm stays and its client secret is read back through the admin API.
        ctx.stub.config(fail=[{"status": 500, "count": 1, "after": True, "method": "POST",
                               "path_prefix": "/admin/realms"},
                              {"status": 500, "count": -1, "method": "DELETE", "path_prefix": "/admin/realms"}])
        r = ctx.run(ctx.settings(hook="true", debug="true", run_id="5ec001", env_file=ctx.path("5xx.env")))
        ctx.stub.config(fail=None)
        check(r.code == 69, "5xx: exit %s: %s" % (r.code, r.stderr[-300:]))
        secret = realm_client_secret(ctx, "lasuite-drive-5ec001", "lasuite-drive")
        assert_no_secret(ctx, "5xx", r, dict(admin, **{"client secret": secret}), [ctx.path("5xx.env")])
        paths.append("5xx")

        # A refused token renewed, then a teardown that keeps failing (75).
        ctx.stub.config(expire={"method": "PUT"}, fail={"status": 500, "count": -1, "method": "DELETE"})
        ctx.stub.clear_requests()
        env_path = ctx.path("renew.env")
        r = ctx.run(ctx.settings(hook="sleep 4", ttl=10, timeout=3, debug="true", run_id="5ec002",
                                 env_file=env_path))
        ctx.stub.config(fail=None, expire=None)
        check(r.code == 75, "renewal and failed teardown: exit %s: %s" % (r.code, r.stderr[-300:]))
        log = ctx.stub.requests()
        check([q.get("fault") for q in log if q["method"] == "PUT"][:1] == ["expire"] and
              len([q for q in log if q["path"] == TOKEN_PATH]) == 2, "no renewal after a 401: %s" % log)
        env = read_env_file(env_path)
        assert_no_secret(ctx, "renewal and failed teardown", r,
                         dict(admin, **{"client secret": env["DEPS_KEYCLOAK_CLIENT_SECRET"],
                                        "user password": env["DEPS_KEYCLOAK_PASSWORD"]}))
        assert_env_file_clean(ctx, "renewal and failed teardown", env_path)
        paths.append("renewal, failed teardown")
    else:
        ctx.dropped("a 5xx after the import, a 401 before expiry, a failing teardown",
                    "not run on the real server: stand-in faults (fail and expire knobs)")

    # A cold deploy that cannot reach Docker (mode auto, no warm instance).
    r = ctx.run(ctx.settings(hook="true", debug="true", mode="auto", keycloak_url="http://127.0.0.1:9",
                             cold_url="http://127.0.0.1:9"))
    check(r.code == 69, "cold failure: exit %s" % r.code)
    assert_no_secret(ctx, "cold failure", r, admin)
    paths.append("cold failure")
    print("# paths checked: %s" % ", ".join(paths))
    if not ctx.stub.has_log:
        ctx.dropped("no piece of any token the server issued, in any output",
                    "a real server cannot list the tokens it issued (the JWT shape stands for them)")


def assert_env_file_clean(ctx, label, path):
    """env_file holds the binding (its secrets are the hook's), never the
    admin password or an admin token."""
    text = open(path).read()
    check(ADMIN_PASSWORD not in text, "%s: the admin password is in env_file" % label)
    check(not JWT.search(text), "%s: a JWT-shaped string is in env_file" % label)
    if ctx.stub.has_log:
        check(not any(t in text for t in issued_tokens(ctx)), "%s: a token is in env_file" % label)


def realm_client_secret(ctx, realm, client_id):
    import urllib.parse
    import urllib.request
    form = urllib.parse.urlencode({"client_id": "admin-cli", "grant_type": "password",
                                   "username": "admin", "password": ADMIN_PASSWORD}).encode()
    with urllib.request.urlopen(ctx.stub.control + TOKEN_PATH, form, timeout=10) as r:
        tok = json.load(r)["access_token"]

    def get(path):
        req = urllib.request.Request(ctx.stub.control + path, headers={"Authorization": "Bearer " + tok})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)
    cid = get("/admin/realms/%s/clients?clientId=%s" % (realm, client_id))[0]["id"]
    return get("/admin/realms/%s/clients/%s/client-secret" % (realm, cid))["value"]


# ---- the stand-in as strict as Keycloak -------------------------------------------

def lost_answer(ctx, rule, run_id):
    ctx.stub.config(**rule)
    ctx.stub.clear_requests()
    log_path = ctx.path("before.%s.json" % run_id)
    hook = ("%s && %s -c 'import urllib.request;print(urllib.request.urlopen(\"%s/_stub/requests\").read().decode())' > %s"
            % (login_hook(ctx, run_id), PYTHON, ctx.stub.control, log_path))
    r = ctx.run(ctx.settings(hook=hook, run_id=run_id))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
    check(open(ctx.path("login." + run_id)).read().startswith("login ok"), "the hook did not log in")
    before = json.load(open(log_path))
    seq = [(q["method"], q["path"], q["status"]) for q in admin_calls(before)]
    check(not [s for s in seq if s[0] == "DELETE"],
          "its own realm was deleted and made again before the hook:\n%s" % "\n".join(map(str, seq)))
    posts = [q for q in before if q["method"] == "POST" and q["path"] == "/admin/realms"]
    check(len(posts) == 2 and posts[0].get("done") == 201 and posts[1]["status"] == 409,
          "realm imports: %s" % posts)
    deletes = [(q["path"], q["status"]) for q in admin_calls(ctx.stub.requests(), "DELETE")]
    check(deletes == [("/admin/realms/lasuite-drive-" + run_id, 204)], "deletes: %s" % deletes)
    only_master(ctx)


@test("realm made but the answer reset: the retry's 409 is recognised as this run's own realm",
      stub_only="needs the stand-in to reset the connection after making the realm (reset knob)")
def lost_answer_reset(ctx):
    lost_answer(ctx, {"reset": {"after": True, "method": "POST", "path_prefix": "/admin/realms"}}, "10a001")


@test("realm made but a proxy answered 504: the retry's 409 is recognised as this run's own realm",
      stub_only="needs the stand-in to answer 504 after making the realm (fail knob)")
def lost_answer_504(ctx):
    lost_answer(ctx, {"fail": {"status": 504, "after": True, "method": "POST", "path_prefix": "/admin/realms"}},
                "10a002")


@test("Keycloak 26.2.4's 400 for a duplicate: a leftover of this job is replaced, a live foreign one kept",
      stub_only="the real server is 26.4.7, which answers 409; the stand-in plays 26.2.4")
def duplicate_400(ctx):
    ctx.stub.config(conflict_message="26.2.4")
    marks = {"drone-deps.owner": "drone-deps", "drone-deps.run": "d40001"}
    ctx.stub.seed({"realm": "lasuite-drive-d40001", "enabled": True,
                   "attributes": dict(marks, **{"drone-deps.job": "local#0.0.0",
                                                "drone-deps.expires": str(int(time.time()) + 600)})})
    ctx.stub.clear_requests()
    r = ctx.run(ctx.settings(hook=login_hook(ctx, "d4"), run_id="d40001"))
    check(r.code == 0, "leftover: exit %s: %s" % (r.code, r.stderr[-300:]))
    posts = [q["status"] for q in ctx.stub.requests() if q["method"] == "POST" and q["path"] == "/admin/realms"]
    check(posts == [400, 201], "imports: %s" % posts)
    only_master(ctx)
    live = dict(marks, **{"drone-deps.run": "d40002", "drone-deps.job": "other/repo#3.1",
                          "drone-deps.expires": str(int(time.time()) + 600)})
    ctx.stub.seed({"realm": "lasuite-drive-d40002", "enabled": True, "attributes": live})
    r = ctx.run(ctx.settings(hook="echo ran > %s" % ctx.path("ran"), run_id="d40002"))
    check(r.code == 69 and "live run" in r.stderr, "live: exit %s: %s" % (r.code, r.stderr[-300:]))
    check("lasuite-drive-d40002" in ctx.stub.realms() and not os.path.exists(ctx.path("ran")),
          "the live realm was touched, or the hook ran")


@test("an admin token that grew with 60 realms on the server (about 28 KiB) binds",
      stub_only="26.4.7's admin-cli tokens are lightweight and do not grow (test_differential measures it)")
def big_admin_token(ctx):
    ctx.stub.config(admin_token_roles=True)
    for i in range(60):
        ctx.stub.seed({"realm": "other-%02d" % i, "enabled": True})
    ctx.stub.clear_requests()
    r = ctx.run(ctx.settings(hook=login_hook(ctx, "big"), run_id="b16001"))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
    check(open(ctx.path("login.big")).read().startswith("login ok"), "the hook did not log in")
    left = set(ctx.stub.realms()) - {"master"}
    check(left == {"other-%02d" % i for i in range(60)}, "realms: %s" % sorted(left)[:5])


def admin_session_count(ctx):
    """The admin user's sessions on master of a real server, and whether
    the suite's own admin client logged in again (a session of its own)
    while asking."""
    admin = ctx.stub.admin
    before = admin.token
    uid = admin.call("GET", "/admin/realms/master/users?exact=true&username=admin")[0]["id"]
    n = len(admin.call("GET", "/admin/realms/master/users/%s/sessions" % uid))
    return n, admin.token != before


@test("a warm run leaves at most one admin session on master per admin login, and logs in once")
def admin_sessions(ctx):
    if not ctx.stub.has_log:
        ctx.stub.admin.login()  # fresh: it stays valid through the run
        before, _ = admin_session_count(ctx)
    r = ctx.run(ctx.settings(hook="true", debug="true"))
    check(r.code == 0, "exit %s" % r.code)
    mine = debug_calls(r, "POST", TOKEN_PATH)
    if ctx.stub.has_log:
        logins = [q for q in ctx.stub.requests() if q["path"] == TOKEN_PATH]
        check(len(logins) == len(mine), "the request log has %d admin logins, the debug lines %d" %
              (len(logins), len(mine)))
        sessions = [s for s in stub_get(ctx, "/_stub/sessions")
                    if s["realm"] == "master" and s["username"] == "admin"]
        left = len(sessions)
    else:
        after, relogged = admin_session_count(ctx)
        left = after - before - (1 if relogged else 0)
    print("# admin logins %d, admin sessions left on master %d" % (len(mine), left))
    check(len(mine) == 1 and mine[0][2] == 200, "admin logins: %s" % mine)
    check(left <= len(mine), "sessions left: %d" % left)
    only_master(ctx)


if __name__ == "__main__":
    sys.exit(main())
