#!/usr/bin/env python3
"""Hardening rules (issue "Hardening"): the guarantees of README.md hold
under attack, stops and faults. One test per finding, each able to fail on
the code before its fix; driven against the Keycloak stand-in."""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ADMIN_PASSWORD, BIN, PYTHON, ROOT, Failure, NotRun, check,  # noqa: E402
                     main, test)


# An unprivileged uid with no account and no other process, for the tests
# that must not run drone-deps as root.
TEST_UID = 64123


def only_master(ctx):
    realms = ctx.stub.realms()
    check(set(realms) == {"master"}, "realms left behind: %s" % sorted(realms))


# The run key a watchdog run below presents (through env_file, as down
# does; a real watchdog gets it as a file) and its hash in the lease.
WATCH_KEY = "W" * 40


def marks(run, job, expires, parent="lasuite-drive"):
    return {"drone-deps.owner": "drone-deps", "drone-deps.run": run,
            "drone-deps.job": job, "drone-deps.expires": str(expires), "drone-deps.parent": parent,
            "drone-deps.key": hashlib.sha256(WATCH_KEY.encode()).hexdigest()}


def watch_key_file(ctx):
    path = ctx.path("watch.env")
    with open(path, "w") as f:
        f.write("DEPS_RUN_KEY=%s\n" % WATCH_KEY)
    return path


# ---- 11: the contract a reader finds is in the project -----------------------

@test("no file of the project cites a design document the project does not have")
def no_missing_design_doc(ctx):
    name = "DESIGN" + ".md"
    if os.path.exists(os.path.join(ROOT, name)):
        raise Failure("%s exists now: this test no longer applies" % name)
    cites = []
    for top in ("plugin", "tests", "tools", "mk", "docs", "Makefile", "README.md",
                "Dockerfile", ".drone.yml"):
        path = os.path.join(ROOT, top)
        files = [path] if os.path.isfile(path) else [
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        for f in files:
            try:
                text = open(f, errors="replace").read()
            except OSError:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if name in line:
                    cites.append("%s:%d" % (os.path.relpath(f, ROOT), n))
    check(not cites, "cites %s: %s" % (name, ", ".join(cites)))


# ---- 6: server data never overflows signed arithmetic -----------------------
# Caught by UBSan in the ASan+UBSan build (the harness fails a test on any
# sanitizer report); the unit tests check the saturated values themselves.

@test("a token that claims to live for 2^63-1 seconds is used, not overflowed",
      stub_only="needs a token lifespan of 2^63-1 s; Keycloak keeps it in a 32-bit int")
def huge_expires_in(ctx):
    ctx.stub.config(token_lifespan=2**63 - 1)
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
    only_master(ctx)


@test("expiry marks at the ends of the 64-bit range: reaped or kept, never overflowed")
def extreme_expiry_marks(ctx):
    ctx.stub.seed({"realm": "old-run-0e0e01", "enabled": True,
                   "attributes": marks("0e0e01", "x#1.1.1", -2**63)})
    ctx.stub.seed({"realm": "lasuite-drive-0e0e02", "enabled": True,
                   "attributes": marks("0e0e02", "x#1.1.1", 2**63 - 1)})
    r = ctx.run(ctx.settings(action="reap", parent=None))
    check(r.code == 0, "reap exit %s: %s" % (r.code, r.stderr[-400:]))
    realms = ctx.stub.realms()
    check("old-run-0e0e01" not in realms, "the realm expired at -2^63 was kept")
    check("lasuite-drive-0e0e02" in realms, "the realm living to 2^63-1 was reaped")
    # a collision with it reports how long its lease still runs
    r = ctx.run(ctx.settings(hook="true", run_id="0e0e02"))
    check(r.code == 69 and "live run" in r.stderr, "collision: exit %s: %s" % (r.code, r.stderr[-300:]))


@test("marks with terminal controls (C0 and C1, as anyone who can create a realm may write them) reach no log line as controls")
def controls_in_marks(ctx):
    # ESC [ 2 J, and CSI (U+009B, C1) 2 J: either clears a terminal that
    # shows the CI log; a line break would forge a log line of its own.
    job = "x\u001b[2J\u009b2J\u0085forged\nline#1.1.1"
    ctx.stub.seed({"realm": "lasuite-drive-c1c1c1", "enabled": True,
                   "attributes": marks("c1c1c1", job, 1000)})
    r = ctx.run(ctx.settings(action="reap", parent=None))
    check(r.code == 0, "reap exit %s: %s" % (r.code, r.stderr[-400:]))
    check("reaped realm lasuite-drive-c1c1c1" in r.stderr, "not reaped: %s" % r.stderr[-400:])
    bad = sorted({"U+%04X" % ord(c) for c in r.stderr + r.stdout
                  if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f})
    check(not bad, "controls reached the log: %s in %r" % (bad, r.stderr[-300:]))


# ---- 8: the job mark names the step --------------------------------------------

CI_DRONE = {"DRONE_REPO": "coop/lasuite-drive", "DRONE_REPO_NAME": "lasuite-drive",
            "DRONE_BUILD_NUMBER": "41", "DRONE_STAGE_NUMBER": "2"}


@test("two steps of one stage sharing a run id never take each other's realm for their own")
def step_in_job_mark(ctx):
    started = ctx.path("started")
    first = ctx.start(ctx.settings(run_id="5e5e01", parent=None,
                                   hook="echo go > %s; sleep 30" % started),
                      base_env=dict(CI_DRONE, DRONE_STEP_NUMBER="3", DRONE_STEP_NAME="deps-a"))
    ctx.wait_for_file(started, run=first)
    attrs = ctx.stub.realms()["lasuite-drive-5e5e01"]["attributes"]
    check(attrs.get("drone-deps.job") == "coop/lasuite-drive#41.2.3", "job mark: %r" % attrs)
    second = ctx.run(ctx.settings(run_id="5e5e01", parent=None, hook="true"),
                     base_env=dict(CI_DRONE, DRONE_STEP_NUMBER="4", DRONE_STEP_NAME="deps-b"))
    realm = ctx.stub.realms().get("lasuite-drive-5e5e01")
    check(realm and realm["attributes"].get("drone-deps.job") == "coop/lasuite-drive#41.2.3",
          "the second step replaced the first one's live realm: %r" % realm)
    check(second.code == 69 and "live run" in second.stderr,
          "second step: exit %s: %s" % (second.code, second.stderr[-300:]))
    first.proc.send_signal(signal.SIGTERM)
    first.wait(30)
    only_master(ctx)


@test("Woodpecker's step number names the step in the job mark",
      stub_only="the hook reads the realm's marks through the stand-in's /_stub/realms")
def woodpecker_step(ctx):
    hook = "%s -c 'import json,urllib.request;print(urllib.request.urlopen(\"%s/_stub/realms\").read().decode())' > %s" % (
        PYTHON, ctx.stub.control, ctx.path("realms.json"))
    r = ctx.run(ctx.settings(hook=hook, run_id="5e5e02", parent=None),
                base_env={"CI_REPO": "coop/lasuite-drive", "CI_REPO_NAME": "lasuite-drive",
                          "CI_PIPELINE_NUMBER": "7", "CI_WORKFLOW_NUMBER": "1",
                          "CI_STEP_NUMBER": "5", "CI_STEP_NAME": "deps"})
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-300:]))
    realms = {x["realm"]: x for x in json.load(open(ctx.path("realms.json")))}
    job = realms["lasuite-drive-5e5e02"]["attributes"].get("drone-deps.job")
    check(job == "coop/lasuite-drive#7.1.5", "job mark %r" % job)


# ---- 4: the reap during the hook reaches leftovers behind live leases ------

@test("six live realms listed first do not hide an expired one from the reap during the hook",
      stub_only="needs the stand-in's list order (the expired realm last); a real server lists realms in an order of its own")
def reap_behind_live(ctx):
    live = int(time.time()) + 3600
    for i in range(6):
        ctx.stub.seed({"realm": "aaa-live-00000%d" % i, "enabled": True,
                       "attributes": marks("00000%d" % i, "x#1.1.%d" % i, live)})
    ctx.stub.seed({"realm": "zzz-old-0e0e0e", "enabled": True,
                   "attributes": marks("0e0e0e", "x#1.1.9", int(time.time()) - 60)})
    names = [r for r in ctx.stub.realms() if r != "master"]
    check(names[-1] == "zzz-old-0e0e0e", "the stand-in lists %s" % names)
    done = ctx.path("done")
    r = ctx.run(ctx.settings(hook="sleep 4; echo > %s" % done))
    check(r.code == 0 and os.path.exists(done), "exit %s" % r.code)
    realms = ctx.stub.realms()
    check("zzz-old-0e0e0e" not in realms, "the expired realm behind six live ones was not reaped")
    check(all("aaa-live-00000%d" % i in realms for i in range(6)), "a live realm was reaped")


# ---- 5: large admin tokens ------------------------------------------------------
# A master admin token grows with every realm on the server. The stand-in
# pads master access tokens by admin_token_padding bytes.

def admin_token_size(ctx):
    form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
                                   "username": "admin", "password": ADMIN_PASSWORD}).encode()
    with urllib.request.urlopen(ctx.stub.url + "/realms/master/protocol/openid-connect/token",
                                data=form, timeout=30) as resp:
        return len(json.load(resp)["access_token"])


@test("admin tokens over 8 KiB and 32 KiB bind, renew and tear down",
      stub_only="needs padded admin tokens (admin_token_padding knob); 26.4.7's are 767 bytes")
def large_tokens(ctx):
    for padding, least in ((7000, 8 * 1024), (30000, 32 * 1024)):
        ctx.stub.config(admin_token_padding=padding, token_lifespan=2)
        size = admin_token_size(ctx)
        print("# admin token of %d bytes" % size)
        check(size > least, "the stand-in's token is only %d bytes" % size)
        ctx.stub.clear_requests()
        # the token expires during the hook: teardown logs in again
        r = ctx.run(ctx.settings(hook="sleep 3"), timeout=40)
        check(r.code == 0, "token of %d bytes: exit %s: %s" % (size, r.code, r.stderr[-400:]))
        logins = [q for q in ctx.stub.requests() if q["path"].endswith("/openid-connect/token")]
        check(len(logins) >= 2, "the token was not renewed: %d logins" % len(logins))
        only_master(ctx)


@test("an admin token over the 1 MiB cap is refused as such: exit 69, not 'no warm', no cold fallback",
      stub_only="needs a 1 MiB admin token (admin_token_padding knob)")
def token_over_cap(ctx):
    ctx.stub.config(admin_token_padding=1100 * 1024)
    r = ctx.run(ctx.settings(hook="echo ran > %s" % ctx.path("ran"), mode="auto"))
    check(r.code == 69, "exit %s: %s" % (r.code, r.stderr[-400:]))
    check(not os.path.exists(ctx.path("ran")), "the hook ran")
    err = r.stderr
    check("no warm" not in err and "cold" not in err, "misreported: %s" % err[-400:])
    check("1 MiB" in err and "token" in err, "the error does not say what went wrong: %s" % err[-400:])
    only_master(ctx)


# ---- 2: stops are prompt, whatever drone-deps is waiting for -----------------

STOP_WITHIN = 1.5  # seconds from the signal to drone-deps' exit


def stop_and_time(ctx, r, what, signo=signal.SIGTERM):
    check(r.proc.poll() is None, "drone-deps exited (%s) before the signal: %s" % (r.proc.returncode, r.stderr[-300:]))
    t0 = time.time()
    os.kill(r.pid, signo)
    try:
        r.wait(60)
    except subprocess.TimeoutExpired:
        raise Failure("%s: still running 60 s after the signal" % what)
    took = time.time() - t0
    print("# %s: exit %s %.2f s after the signal" % (what, r.code, took))
    check(r.code == 128 + signo, "exit %s, want %d" % (r.code, 128 + signo))
    check(took < STOP_WITHIN, "took %.2f s to stop (want < %.1f s)" % (took, STOP_WITHIN))


def wait_requests(ctx, pred, n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len([q for q in ctx.stub.requests() if pred(q)]) >= n:
            return
        time.sleep(0.05)
    raise Failure("fewer than %d matching requests within %d s" % (n, timeout))


@test("SIGTERM while the realm POST is retried on 503s: exit 143 within 1.5 s",
      stub_only="needs a stream of 503s (fail knob)")
def stop_mid_retry(ctx):
    ctx.stub.config(fail={"status": 503, "count": -1, "method": "POST", "path_prefix": "/admin/realms"})
    r = ctx.start(ctx.settings(hook="echo ran > %s" % ctx.path("ran")))
    wait_requests(ctx, lambda q: q["path"] == "/admin/realms" and q["status"] == 503, 3)
    stop_and_time(ctx, r, "503 stream")
    check(not os.path.exists(ctx.path("ran")), "the hook ran")
    ctx.stub.config(fail=None)
    only_master(ctx)


@test("a server that echoes the admin password in its error: the log line shows *** in its place",
      stub_only="needs an error answer of the test's choosing (fail knob)")
def echoed_password_masked(ctx):
    ctx.stub.config(fail={"status": 401, "count": -1, "method": "POST",
                          "path_prefix": "/realms/master/protocol/openid-connect/token",
                          "body": {"error": "invalid_grant",
                                   "error_description": "password %s refused" % ADMIN_PASSWORD}})
    r = ctx.run(ctx.settings(hook="true", debug="true"))
    ctx.stub.config(fail=None)
    check(r.code == 69, "exit %s: %s" % (r.code, r.stderr[-300:]))
    check(ADMIN_PASSWORD not in r.output, "the admin password is in the output: %s" % r.stderr[-300:])
    check("password *** refused" in r.stderr, "the server's message is not shown masked: %s" % r.stderr[-300:])


@test("SIGTERM during a Retry-After: 5 wait on a 429: exit 143 within 1.5 s, not after the wait",
      stub_only="needs a stream of 429s with Retry-After (fail knob)")
def stop_mid_retry_after(ctx):
    ctx.stub.config(fail={"status": 429, "retry_after": 5, "count": -1, "method": "POST",
                          "path_prefix": "/admin/realms"})
    r = ctx.start(ctx.settings(hook="echo ran > %s" % ctx.path("ran")))
    wait_requests(ctx, lambda q: q["path"] == "/admin/realms" and q["status"] == 429, 1)
    deadline = time.time() + 20  # drone-deps has begun its 5 s wait once it says so
    while "retrying in 5000 ms" not in r.stderr and time.time() < deadline and r.proc.poll() is None:
        time.sleep(0.02)
    check("retrying in 5000 ms" in r.stderr, "no 5 s wait: %s" % r.stderr[-400:])
    stop_and_time(ctx, r, "Retry-After: 5")
    check(not os.path.exists(ctx.path("ran")), "the hook ran")
    ctx.stub.config(fail=None)
    only_master(ctx)


@test("SIGINT while the token request is retried on 503s: exit 130 within 1.5 s",
      stub_only="needs a stream of 503s (fail knob)")
def stop_mid_login_retry(ctx):
    ctx.stub.config(fail={"status": 503, "count": -1, "method": "POST",
                          "path_prefix": "/realms/master/protocol/openid-connect/token"})
    r = ctx.start(ctx.settings(hook="true"))
    wait_requests(ctx, lambda q: q["path"].endswith("/token") and q["status"] == 503, 2)
    stop_and_time(ctx, r, "503 on the token", signal.SIGINT)
    ctx.stub.config(fail=None)
    only_master(ctx)


@test("SIGTERM while an answer trickles in (a transfer in flight): exit 143 within 1.5 s",
      stub_only="needs a trickling answer (hostile knob)")
def stop_mid_transfer(ctx):
    ctx.stub.config(hostile={"mode": "trickle", "method": "POST", "path_prefix": "/admin/realms",
                             "duration": 60})
    r = ctx.start(ctx.settings(hook="echo ran > %s" % ctx.path("ran"), debug="true"))
    # the realm POST is in flight once the stand-in logged it: its answer trickles for 60 s
    wait_requests(ctx, lambda q: q["method"] == "POST" and q["path"] == "/admin/realms", 1)
    stop_and_time(ctx, r, "trickling answer")
    check("POST /admin/realms failed" in r.stderr and "stopped by a signal" in r.stderr,
          "the POST was not in flight: %s" % r.stderr[-600:])
    check(not os.path.exists(ctx.path("ran")), "the hook ran")
    ctx.stub.config(hostile=None)
    only_master(ctx)


@test("SIGTERM while the lease renewal waits on a slow answer during the hook: forwarded, exit 143 within 1.5 s",
      stub_only="needs a trickling answer (hostile knob)")
def stop_mid_renewal(ctx):
    started = ctx.path("started")
    ctx.stub.config(hostile={"mode": "trickle", "method": "PUT", "path_prefix": "/admin/realms/",
                             "duration": 60, "count": -1})
    hook = "echo $$ > %s; echo go > %s; sleep 30" % (ctx.hook_pgid_file(), started)
    r = ctx.start(ctx.settings(hook=hook, ttl=10, debug="true"))
    ctx.wait_for_file(started, run=r)
    # the renewal (every ttl/3 s) is in flight once the stand-in logged it
    wait_requests(ctx, lambda q: q["method"] == "PUT" and q["path"].startswith("/admin/realms/"), 1, 20)
    stop_and_time(ctx, r, "renewal in flight")
    check("PUT /admin/realms/lasuite-drive-" in r.stderr and "stopped by a signal" in r.stderr,
          "the renewal was not in flight: %s" % r.stderr[-600:])
    ctx.stub.config(hostile=None)
    only_master(ctx)


@test("after a stop, teardown has its own 5 s budget: a DELETE that hangs is given up, exit 143",
      stub_only="needs a DELETE that hangs (hostile knob)")
def stop_teardown_budget(ctx):
    started = ctx.path("started")
    ctx.stub.config(hostile={"mode": "trickle", "method": "DELETE", "path_prefix": "/admin/realms/",
                             "duration": 60, "count": -1})
    hook = "echo $$ > %s; echo go > %s; sleep 30" % (ctx.hook_pgid_file(), started)
    r = ctx.start(ctx.settings(hook=hook))
    ctx.wait_for_file(started, run=r)
    t0 = time.time()
    os.kill(r.pid, signal.SIGTERM)
    try:
        r.wait(90)
    except subprocess.TimeoutExpired:
        raise Failure("still running 90 s after the signal")
    took = time.time() - t0
    print("# teardown against a hanging DELETE: exit %s %.2f s after the signal" % (r.code, took))
    check(r.code == 143, "exit %s" % r.code)
    check(4 <= took < 7, "took %.2f s, want the 5 s teardown budget" % took)
    check("its lease ends it" in r.stderr, "no word of the lease: %s" % r.stderr[-300:])
    ctx.stub.config(hostile=None)


@test("SIGTERM during action reap on a 503 stream: exit 143 within 1.5 s",
      stub_only="needs a 503 stream (fail knob)")
def stop_mid_reap(ctx):
    ctx.stub.config(fail={"status": 503, "count": -1, "method": "GET", "path_prefix": "/admin/realms"})
    r = ctx.start(ctx.settings(action="reap", parent=None))
    wait_requests(ctx, lambda q: q["method"] == "GET" and q["status"] == 503, 2)
    stop_and_time(ctx, r, "reap on 503s")
    ctx.stub.config(fail=None)


# ---- 1: the hook finds nothing of ours ------------------------------------------

PROBE = r"""
import os, sys
secret = open(sys.argv[1], "rb").read().strip()
out = open(sys.argv[2], "w")
fds = sorted(int(f) for f in os.listdir("/proc/%d/fd" % os.getppid()))
out.write("hook fds %s\n" % fds)
pid = os.getppid()
while pid > 0:
    stat = open("/proc/%d/stat" % pid).read()
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    for what in ("environ", "cmdline"):
        try:
            data = open("/proc/%d/%s" % (pid, what), "rb").read()
            out.write("%d %s %s %s\n" % (pid, comm, what, "FOUND" if secret in data else "clean"))
        except OSError as e:
            out.write("%d %s %s refused %s\n" % (pid, comm, what, e.errno))
    if comm.startswith("drone-deps"):
        try:
            open("/proc/%d/mem" % pid, "rb").close()
            out.write("%d %s mem OPEN\n" % (pid, comm))
        except OSError as e:
            out.write("%d %s mem refused %s\n" % (pid, comm, e.errno))
    pid = int(stat[stat.rindex(")") + 2:].split()[1]) if pid > 1 else 0
out.close()
"""


def probe_hook(ctx, drop_ptrace=False, python=PYTHON, secret=ADMIN_PASSWORD):
    """A hook (a shell running a Python probe) that looks for the secret
    (the admin password unless told) in /proc of every ancestor, lists its
    shell's descriptors and tries drone-deps' memory. With drop_ptrace, the
    probe runs as root without CAP_SYS_PTRACE, as a container's root does
    by default."""
    with open(ctx.path("probe.py"), "w") as f:
        f.write(PROBE)
    with open(ctx.path("secret"), "w") as f:
        f.write(secret)
    cmd = "%s %s %s %s" % (python, ctx.path("probe.py"), ctx.path("secret"), ctx.path("probe.out"))
    if drop_ptrace:
        cmd = "setpriv --bounding-set=-sys_ptrace --inh-caps=-sys_ptrace -- " + cmd
    return cmd + "; true"


def probe_report(ctx):
    return open(ctx.path("probe.out")).read()


@test("a hook finds the admin password in no ancestor's /proc environ or cmdline (setting and flag)",
      unwrapped_only="a wrapper's own process holds its copy of the environment")
def no_password_in_proc(ctx):
    for how in ("environment", "flag"):
        if how == "flag":
            env = ctx.settings(hook=probe_hook(ctx), keycloak_admin_password=None)
            r = ctx.run(env, args=["--keycloak-admin-password", ADMIN_PASSWORD])
        else:
            r = ctx.run(ctx.settings(hook=probe_hook(ctx)))
        check(r.code == 0, "%s: exit %s: %s" % (how, r.code, r.stderr[-300:]))
        report = probe_report(ctx)
        print("# %s: %s" % (how, report.replace("\n", "; ")))
        check("drone-deps" in report, "the probe never reached drone-deps: %s" % report)
        check("FOUND" not in report, "password given by %s found:\n%s" % (how, report))
        only_master(ctx)


DASHED_SECRET = "Dashed-Cl1ent-S3cret-e2e"


@test("a secret setting spelled with dashes (PLUGIN_KEYCLOAK-CLIENT-SECRET): exit 64 naming keycloak_client_secret, never in the hook or a log line")
def dashed_secret_setting(ctx):
    for name in ("PLUGIN_KEYCLOAK-CLIENT-SECRET", "PLUGIN_keycloak-admin-password"):
        env = ctx.settings(hook=probe_hook(ctx, secret=DASHED_SECRET))
        env[name] = DASHED_SECRET
        r = ctx.run(env)
        report = open(ctx.path("probe.out")).read() if os.path.exists(ctx.path("probe.out")) else ""
        if report:
            print("# %s: the hook ran: %s" % (name, report.replace("\n", "; ")))
        setting = name[7:].lower().replace("-", "_")
        check(r.code == 64, "%s: exit %s: %s" % (name, r.code, r.stderr[-300:]))
        check(("%s: given as %s" % (setting, name)) in r.stderr,
              "%s: the error does not name %s: %s" % (name, setting, r.stderr[-300:]))
        check(DASHED_SECRET not in r.stderr + r.stdout, "%s: the value is in the log" % name)
        check(not report, "%s: the hook ran" % name)
        only_master(ctx)


@test("keycloak_url with user info (https://u:p@host): exit 64 naming keycloak_url, the password neither logged nor given to the hook")
def url_user_info(ctx):
    url = ctx.stub.url.replace("://", "://ci:Url-P4ss-e2e@", 1)
    seen = ctx.path("hook.env")
    r = ctx.run(ctx.settings(keycloak_url=url, hook="env > %s" % seen))
    check(r.code == 64, "exit %s: %s" % (r.code, r.stderr[-300:]))
    check(r.stderr.startswith("drone-deps: error: keycloak_url: ") or "keycloak_url: must not carry" in r.stderr,
          "the error does not name keycloak_url: %s" % r.stderr[-300:])
    check("Url-P4ss-e2e" not in r.stderr + r.stdout, "the password is in the log: %s" % r.stderr[-300:])
    check(not os.path.exists(seen) or "Url-P4ss-e2e" not in open(seen).read(),
          "the hook was given the URL's password")
    only_master(ctx)


@test("keycloak_admin_password_file: the password read from a file binds, and is in no ancestor's environ or cmdline")
def password_file(ctx):
    pw_file = ctx.path("admin_password")
    with open(pw_file, "w") as f:
        f.write(ctx.stub.password + "\n")
    os.chmod(pw_file, 0o400)
    r = ctx.run(ctx.settings(hook=probe_hook(ctx, secret=ctx.stub.password),
                             keycloak_admin_password=None, keycloak_admin_password_file=pw_file))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-300:]))
    report = probe_report(ctx)
    print("# " + report.replace("\n", "; "))
    check("drone-deps" in report, "the probe never reached drone-deps: %s" % report)
    check("FOUND" not in report, "password found:\n%s" % report)
    check(ctx.stub.password not in r.stderr + r.stdout, "the password is in the log")
    both = ctx.run(ctx.settings(hook="true", keycloak_admin_password_file=pw_file))
    check(both.code == 64 and "keycloak_admin_password_file: both" in both.stderr,
          "both forms: exit %s: %s" % (both.code, both.stderr[-300:]))
    only_master(ctx)


@test("the hook inherits descriptors 0, 1 and 2 only: no Keycloak connection, no other")
def only_std_fds(ctx):
    extra = os.open(ctx.path("inherited"), os.O_CREAT | os.O_WRONLY, 0o600)  # not close-on-exec
    os.set_inheritable(extra, True)
    try:
        full = dict(os.environ, **ctx.settings(hook=probe_hook(ctx)))
        p = subprocess.run([BIN], env=full, cwd=ctx.dir, capture_output=True, timeout=60,
                           close_fds=False, stdin=subprocess.DEVNULL)
    finally:
        os.close(extra)
    check(p.returncode == 0, "exit %s: %s" % (p.returncode, p.stderr[-300:]))
    line = probe_report(ctx).splitlines()[0]
    print("# " + line)
    check(line == "hook fds [0, 1, 2]", "the hook's shell holds descriptors: %s" % line)
    only_master(ctx)


@test("drone-deps is not dumpable: a hook of its own user cannot open its environ or memory")
def not_dumpable(ctx):
    os.chmod(ctx.dir, 0o777)
    # a uid of its own (no other process runs as it), not root
    other = ["setpriv", "--reuid=%d" % TEST_UID, "--regid=%d" % TEST_UID, "--clear-groups", "--"]
    # the test's own Python may sit in root's home, out of that user's reach
    env = dict(os.environ, **ctx.settings(hook=probe_hook(ctx, python="/usr/bin/python3")))
    for f in ("probe.py", "secret"):
        os.chmod(ctx.path(f), 0o644)
    p = subprocess.run(other + [BIN], env=env, cwd=ctx.dir, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    check(p.returncode == 0, "exit %s: %s" % (p.returncode, p.stderr[-300:]))
    check(os.path.exists(ctx.path("probe.out")), "the probe did not run: %s" % p.stderr[-500:])
    report = probe_report(ctx)
    print("# " + report.replace("\n", "; "))
    mine = [l for l in report.splitlines() if "drone-deps" in l]
    check(any(" mem refused" in l for l in mine), "drone-deps' memory was readable:\n%s" % report)
    check(any(" environ refused" in l for l in mine), "drone-deps' environ was readable:\n%s" % report)
    check("FOUND" not in report, "password found:\n%s" % report)


SOCKET_PROBE = r"""
import socket, sys
out = open(sys.argv[2], "a")
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    out.write("socket OPEN\n")
except OSError as e:
    out.write("socket refused %s\n" % e.errno)
try:
    open(sys.argv[3]).read()
    out.write("env_file READ\n")
except OSError as e:
    out.write("env_file refused %s\n" % e.errno)
"""


@test("hook_user: the hook runs as that uid with no other group: it cannot open a root:root 0660 socket, reads no ancestor's environ or memory, and reads env_file",
      unwrapped_only="a wrapper's own process may keep the password")
def hook_user_unprivileged(ctx):
    if os.getuid() != 0:
        raise Failure("needs root, to run the hook as another uid")
    os.chmod(ctx.dir, 0o777)
    sock_path = ctx.path("docker.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(sock_path)
    server.listen(8)
    try:
        os.chown(sock_path, 0, 0)
        os.chmod(sock_path, 0o660)
        with open(ctx.path("sockprobe.py"), "w") as f:
            f.write(SOCKET_PROBE)
        env_file = ctx.path("deps.env")
        reports = {}
        for who in ("root", "hook_user"):
            hook = probe_hook(ctx, python="/usr/bin/python3")
            hook = hook.replace("; true", "; /usr/bin/python3 %s %s %s %s; true" % (
                ctx.path("sockprobe.py"), sock_path, ctx.path("probe.out"), env_file))
            for f in ("probe.py", "secret", "sockprobe.py"):
                os.chmod(ctx.path(f), 0o644)
            extra = {"hook_user": "%d:%d" % (TEST_UID, TEST_UID)} if who == "hook_user" else {}
            # drone-deps with root's group as a supplementary one, as a
            # container's root often has: the hook must shed it too
            env = dict(os.environ, **ctx.settings(hook=hook, env_file=env_file, **extra))
            r = subprocess.run(["setpriv", "--groups=0", "--", BIN], env=env, cwd=ctx.dir,
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            check(r.returncode == 0, "%s: exit %s: %s" % (who, r.returncode, r.stderr[-300:]))
            reports[who] = probe_report(ctx)
            print("# %s: %s" % (who, reports[who].replace("\n", "; ")))
            os.unlink(ctx.path("probe.out"))
            os.unlink(env_file)
        check("socket OPEN" in reports["root"], "the control (root hook) could not open the socket: the test shows nothing")
        rep = reports["hook_user"]
        check("socket refused 13" in rep, "the hook_user hook opened the socket:\n%s" % rep)
        check("FOUND" not in rep, "the hook_user hook found the password:\n%s" % rep)
        # the first is the hook's own shell: every ancestor above it
        environ = [l for l in rep.splitlines() if " environ " in l][1:]
        check(environ and all(" environ refused" in l for l in environ),
              "the hook_user hook read an ancestor's environ:\n%s" % rep)
        check(any("drone-deps mem refused" in l for l in rep.splitlines()),
              "drone-deps' memory was open to the hook:\n%s" % rep)
        check("env_file READ" in rep, "the hook_user hook cannot read env_file:\n%s" % rep)
        only_master(ctx)
    finally:
        server.close()


@test("hook_user that could still open the Docker socket (its group, or a socket writable by all): exit 64 naming hook_user, nothing created, no hook")
def hook_user_reaches_socket(ctx):
    if os.getuid() != 0:
        raise Failure("needs root, to run the hook as another uid")
    os.chmod(ctx.dir, 0o777)
    sock_path = ctx.path("docker.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(sock_path)
    server.close()  # the file stays: connect() then says refused (111), or 13 without the right
    probe = ctx.path("probe.out")
    hook = ("/usr/bin/python3 -c 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry: s.connect(sys.argv[1]); r=\"OPEN\"\n"
            "except OSError as e: r=str(e.errno)\nopen(sys.argv[2],\"w\").write(r)' %s %s" % (sock_path, probe))
    group = TEST_UID + 7
    for label, mode, gid, user in (("the socket's group", 0o660, group, "%d:%d" % (TEST_UID, group)),
                                   ("a socket writable by all", 0o666, 0, "%d:%d" % (TEST_UID, TEST_UID))):
        os.chown(sock_path, 0, gid)
        os.chmod(sock_path, mode)
        r = ctx.run(ctx.settings(hook=hook, hook_user=user, docker_host="unix://" + sock_path))
        reached = open(probe).read() if os.path.exists(probe) else "no hook"
        if os.path.exists(probe):
            os.unlink(probe)
        check(r.code == 64, "%s: exit %s, the hook's connect: %s (13 would be refused): %s"
              % (label, r.code, reached, r.stderr[-300:]))
        check("hook_user" in r.stderr and "Docker socket" in r.stderr,
              "%s: the error does not name hook_user and the socket: %s" % (label, r.stderr[-300:]))
        check(reached == "no hook", "%s: the hook ran" % label)
        only_master(ctx)


@test("hook_user: env_file is given to the hook's uid before it has its name: a symlink put in its place then changes the owner of nothing",
      unwrapped_only="strace traces drone-deps itself, not a wrapper")
def env_file_owner_race(ctx):
    if os.getuid() != 0:
        raise Failure("needs root, to run the hook as another uid")
    if not shutil.which("strace"):
        raise NotRun("no strace to hold the change of owner")
    # The workspace is shared (pattern 2): a step running beside this one
    # can swap env_file for a symlink the moment it appears. strace holds
    # every change of owner by name 1.5 s, so the swap always lands in
    # between; a change of owner through the file's descriptor, before the
    # rename, is never held and never follows a link.
    os.chmod(ctx.dir, 0o777)
    victim = ctx.path("victim")
    with open(victim, "w") as f:
        f.write("root's\n")
    os.chmod(victim, 0o600)
    env_file = ctx.path("deps.env")
    swapped = []

    def swap():
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.isfile(env_file) and not os.path.islink(env_file):
                link = ctx.path("deps.env.link")
                os.symlink(victim, link)
                os.rename(link, env_file)
                swapped.append(True)
                return
            time.sleep(0.001)

    t = threading.Thread(target=swap)
    t.start()
    env = dict(os.environ, **ctx.settings(hook="true", env_file=env_file,
                                          hook_user="%d:%d" % (TEST_UID, TEST_UID)))
    r = subprocess.run(["strace", "-f", "-qq", "-o", os.devnull,
                        "-e", "trace=chown,fchownat,lchown",
                        "-e", "inject=chown,fchownat,lchown:delay_enter=1500000", BIN],
                       env=env, cwd=ctx.dir, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    t.join()
    st = os.stat(victim)
    check(swapped, "env_file never appeared: exit %s: %s" % (r.returncode, r.stderr[-300:]))
    check((st.st_uid, st.st_gid) == (0, 0),
          "drone-deps gave %s to the hook's uid through a symlink: now %d:%d" % (victim, st.st_uid, st.st_gid))
    only_master(ctx)


@test("hook_user that drone-deps cannot take (it is not root): the hook never runs, exit 126, the realm deleted")
def hook_user_not_taken(ctx):
    if os.getuid() != 0:
        raise Failure("needs root, to start drone-deps as another uid")
    os.chmod(ctx.dir, 0o777)
    ran = ctx.path("ran")
    env = dict(os.environ, **ctx.settings(hook="touch %s" % ran, hook_user="%d" % (TEST_UID + 1)))
    p = subprocess.run(["setpriv", "--reuid=%d" % TEST_UID, "--regid=%d" % TEST_UID,
                        "--clear-groups", "--", BIN], env=env, cwd=ctx.dir, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    check(p.returncode == 126, "exit %s: %s" % (p.returncode, p.stderr[-300:]))
    check("cannot switch to hook_user" in p.stderr, "no reason given: %s" % p.stderr[-300:])
    check(not os.path.exists(ran), "the hook ran as drone-deps' own user")
    only_master(ctx)


@test("as PID 1 (a container), the hook finds no password in /proc/1 and cannot read its memory")
def pid1_no_secret(ctx):
    env = dict(os.environ, **ctx.settings(hook=probe_hook(ctx, drop_ptrace=True)))
    # drone-deps too runs as a container's root does, without CAP_SYS_PTRACE:
    # were it dumpable, the hook (root, the same capabilities) could read it.
    # With the capability, drone-deps' capabilities alone would refuse the
    # hook, whether it were dumpable or not.
    p = subprocess.run(["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", "--",
                        "unshare", "--pid", "--fork", "--mount-proc", BIN], env=env,
                       cwd=ctx.dir, capture_output=True, timeout=60)
    check(p.returncode == 0, "exit %s: %s" % (p.returncode, p.stderr[-300:]))
    report = probe_report(ctx)
    print("# " + report.replace("\n", "; "))
    check("FOUND" not in report, "password found:\n%s" % report)
    check("mem refused" in report, "PID 1's memory was readable:\n%s" % report)


# ---- 10: every exit code README lists, and no other ------------------------------

@test("exit codes: 64 bad setting, 69 not bound, 73 env_file, 75 teardown, 128+N stopped, the hook's own",
      stub_only="exit 75 needs a teardown that keeps failing (fail knob); test_warm checks 69, 128+N and the hook's own there")
def exit_code_table(ctx):
    got = {}
    got[64] = ctx.run(ctx.settings(hook="true", ttl="5")).code
    got[69] = ctx.run(ctx.settings(hook="true", keycloak_admin_password="wrong")).code
    os.mkdir(ctx.path("a-folder"))  # rename() over a folder fails: bound, then torn down
    r = ctx.run(ctx.settings(hook="true", env_file=ctx.path("a-folder")))
    got[73] = r.code
    check("env_file: cannot write" in r.stderr, "73: %s" % r.stderr[-300:])
    only_master(ctx)
    ctx.stub.config(fail={"status": 500, "count": -1, "method": "DELETE"})
    got[75] = ctx.run(ctx.settings(hook="true", timeout=3)).code
    ctx.stub.config(fail=None)
    got[42] = ctx.run(ctx.settings(hook="exit 42")).code
    got[137] = ctx.run(ctx.settings(hook="kill -KILL $$")).code
    started = ctx.path("started")
    r = ctx.start(ctx.settings(hook="echo $$ > %s; echo go > %s; sleep 30" % (ctx.hook_pgid_file(), started)))
    ctx.wait_for_file(started, run=r)
    os.kill(r.pid, signal.SIGHUP)
    got[129] = r.wait(30).code
    wrong = {want: code for want, code in got.items() if code != want}
    check(not wrong, "want: got %s" % wrong)


@test("exit 70: the hook cannot be started (fork refused by RLIMIT_NPROC)")
def exit_70(ctx):
    os.chmod(ctx.dir, 0o777)
    env = dict(os.environ, **ctx.settings(hook="echo ran > %s" % ctx.path("ran"),
                                          keycloak_url=ctx.stub.control))
    # LeakSanitizer's exit check needs a thread of its own, which the
    # limit refuses too (the ASan build)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    # as a uid no other process uses, one process allowed: drone-deps itself
    # runs, its fork fails
    cmd = ["prlimit", "--nproc=1:1", "setpriv", "--reuid=%d" % TEST_UID, "--regid=%d" % TEST_UID,
           "--clear-groups", "--", BIN]
    p = subprocess.run(cmd, env=env, cwd=ctx.dir, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL, text=True)
    check(p.returncode == 70, "exit %s: %s" % (p.returncode, p.stderr[-400:]))
    check("cannot start the hook" in p.stderr, "message: %s" % p.stderr[-300:])
    check(not os.path.exists(ctx.path("ran")), "the hook ran")
    only_master(ctx)


# ---- 3: the watchdog acts only on a confirmed stop --------------------------------

class FakeDocker:
    """A Docker Engine API on a unix socket, enough for the watchdog: _ping,
    /containers/{id}/wait and /containers/{id}/json. `wait_fails` waits
    fail (an HTTP 500, or a dropped connection); `running` is what inspect
    says; once `stopped` is set, a wait returns at once."""

    def __init__(self, path):
        import http.server
        import socketserver
        fake = self
        self.path = path
        self.running = True
        self.gone = False
        self.stopped = threading.Event()
        self.wait_fails = 3
        self.inspect_fails = False  # inspect answers 500: the engine cannot tell
        self.log = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def address_string(self):
                return "unix"

            def log_message(self, *args):
                pass

            def send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Api-Version", "1.41")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.log.append(("GET", self.path))
                if self.path == "/_ping":
                    return self.send(200, "OK")
                if self.path.endswith("/json") and fake.inspect_fails:
                    return self.send(500, {"message": "dockerd: cannot inspect the container now"})
                if self.path.endswith("/json") and fake.gone:
                    return self.send(404, {"message": "No such container: c0ffee"})
                if self.path.endswith("/json"):
                    return self.send(200, {"Id": "c0ffee", "State": {"Running": fake.running,
                                                                       "Status": "running" if fake.running else "exited"}})
                self.send(404, {"message": "page not found"})

            def do_HEAD(self):
                self.do_GET()

            def do_POST(self):
                fake.log.append(("POST", self.path))
                if self.path.endswith("/wait"):
                    if fake.wait_fails > 0:
                        fake.wait_fails -= 1
                        if fake.wait_fails % 2:
                            return self.send(500, {"message": "socket proxy: idle timeout"})
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    fake.stopped.wait(60)
                    return self.send(200, {"StatusCode": 137})
                self.send(404, {"message": "page not found"})

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client gone mid-answer (the watchdog stopped) is expected

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def waits(self):
        return len([1 for m, p in self.log if m == "POST" and p.endswith("/wait")])

    def stop(self):
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


@test("the watchdog survives failed waits while the container runs, and tears down once it stops")
def watchdog_confirmed_stop(ctx):
    target = "c0ffee" * 10 + "0123"
    fake = FakeDocker(ctx.path("docker.sock"))
    try:
        ctx.stub.seed({"realm": "lasuite-drive-3a3a3a", "enabled": True,
                       "attributes": marks("3a3a3a", "local#0.0.0", int(time.time()) + 600)})
        env = ctx.settings(action="watch", run_id="3a3a3a", hook=None, env_file=watch_key_file(ctx),
                           docker_host="unix://" + ctx.path("docker.sock"))
        r = ctx.start(env, base_env={"DRONE_DEPS_WATCH_CONTAINER": target})
        # Four failed waits, each followed by an inspect that says "running"
        # and the watchdog's word that it waits again: it has decided.
        deadline = time.time() + 20
        while (fake.waits() < 4 or r.stderr.count("still runs; waiting again") < 3) and \
                time.time() < deadline and r.proc.poll() is None:
            time.sleep(0.05)
        check(r.proc.poll() is None, "the watchdog exited (%s) after failed waits: %s" %
              (r.proc.returncode, r.stderr[-400:]))
        check("lasuite-drive-3a3a3a" in ctx.stub.realms(),
              "the realm of a running container was deleted after a failed wait")
        check(fake.waits() >= 4, "the wait was not retried: %s" % fake.log)
        # now the container stops: inspect says so, the wait returns
        fake.running = False
        fake.stopped.set()
        r.wait(30)
        check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
        only_master(ctx)
    finally:
        fake.stop()


@test("the watchdog never takes 'cannot inspect the container' for a stop: failed waits and inspects keep the run")
def watchdog_inspect_fails(ctx):
    fake = FakeDocker(ctx.path("docker.sock"))
    fake.wait_fails = 1000
    fake.inspect_fails = True
    try:
        r = start_watchdog(ctx, fake, "3a3a3d")
        # three failed waits, each followed by a failed inspect and the
        # watchdog's word that it waits again: it has decided three times
        deadline = time.time() + 30
        while r.stderr.count("cannot be inspected; waiting again") < 3 and \
                time.time() < deadline and r.proc.poll() is None:
            time.sleep(0.05)
        check(r.proc.poll() is None, "the watchdog exited (%s) on a failed inspect: %s" %
              (r.proc.returncode, r.stderr[-400:]))
        check("lasuite-drive-3a3a3d" in ctx.stub.realms(),
              "the realm of a container that could not be inspected was deleted")
        check(r.stderr.count("cannot be inspected; waiting again") >= 3, "no failed inspect seen: %s" %
              r.stderr[-400:])
        # now the engine answers again: the container is gone, the run torn down
        fake.inspect_fails = False
        fake.gone = True
        r.wait(60)
        check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
        only_master(ctx)
    finally:
        fake.stop()


def start_watchdog(ctx, fake, rid):
    ctx.stub.seed({"realm": "lasuite-drive-" + rid, "enabled": True,
                   "attributes": marks(rid, "local#0.0.0", int(time.time()) + 600)})
    env = ctx.settings(action="watch", run_id=rid, hook=None, env_file=watch_key_file(ctx),
                       docker_host="unix://" + ctx.path("docker.sock"))
    return ctx.start(env, base_env={"DRONE_DEPS_WATCH_CONTAINER": "c0ffee" * 10 + "0123"})


@test("the watchdog tears down when a failed wait is followed by 'no such container'")
def watchdog_gone(ctx):
    fake = FakeDocker(ctx.path("docker.sock"))
    fake.wait_fails = 1000
    fake.gone = True
    try:
        r = start_watchdog(ctx, fake, "3a3a3b")
        r.wait(30)
        check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
        only_master(ctx)
    finally:
        fake.stop()


@test("the watchdog refuses a realm of another parent or another key: exit 77 at once, the realm kept")
def watchdog_foreign(ctx):
    fake = FakeDocker(ctx.path("docker.sock"))
    fake.wait_fails = 1000
    fake.gone = True
    try:
        for what, attrs in (("another parent", marks("3a3a3d", "x#1.1.1", int(time.time()) + 600, parent="other")),
                            ("another key", dict(marks("3a3a3d", "x#1.1.1", int(time.time()) + 600),
                                                 **{"drone-deps.key": "0" * 64}))):
            ctx.stub.seed({"realm": "lasuite-drive-3a3a3d", "enabled": True, "attributes": attrs})
            env = ctx.settings(action="watch", run_id="3a3a3d", hook=None, env_file=watch_key_file(ctx),
                               docker_host="unix://" + ctx.path("docker.sock"))
            t0 = time.time()
            r = ctx.run(env, base_env={"DRONE_DEPS_WATCH_CONTAINER": "c0ffee" * 10 + "0123"}, timeout=60)
            check(r.code == 77, "%s: exit %s: %s" % (what, r.code, r.stderr[-400:]))
            check(time.time() - t0 < 5, "%s: the watchdog asked again (%.1f s)" % (what, time.time() - t0))
            check("lasuite-drive-3a3a3d" in ctx.stub.realms(), "%s: the realm was deleted" % what)
            ctx.stub.reset()
    finally:
        fake.stop()


@test("a watchdog stopped itself while the container runs leaves the run alone, exit 143")
def watchdog_stopped(ctx):
    fake = FakeDocker(ctx.path("docker.sock"))
    fake.wait_fails = 0
    try:
        r = start_watchdog(ctx, fake, "3a3a3c")
        deadline = time.time() + 20
        while fake.waits() < 1 and time.time() < deadline:  # the wait is in flight
            time.sleep(0.05)
        check(fake.waits() == 1, "the watchdog did not wait: %s" % r.stderr[-400:])
        os.kill(r.pid, signal.SIGTERM)
        r.wait(30)
        check(r.code == 143, "exit %s: %s" % (r.code, r.stderr[-400:]))
        check("lasuite-drive-3a3a3c" in ctx.stub.realms(), "the live run's realm was deleted")
    finally:
        fake.stop()

# ---- 12: the admin session the login made is ended ----------------------------

@test("each run ends the admin session its login made: one logout after the DELETE, none before",
      stub_only="needs the request log (test_guarantees counts the sessions on a real server)")
def admin_logout(ctx):
    ctx.stub.clear_requests()
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 0, "exit %s" % r.code)
    seen = [(q["method"], q["path"].split("?")[0]) for q in ctx.stub.requests()]
    check(seen[-2:] == [("DELETE", "/admin/realms/" + [p for m, p in seen if m == "DELETE"][0].split("/")[-1]),
                        ("POST", "/realms/master/protocol/openid-connect/logout")],
          "teardown: %s" % seen)
    check(seen.count(("POST", "/realms/master/protocol/openid-connect/logout")) == 1, "logouts: %s" % seen)


if __name__ == "__main__":
    sys.exit(main())
