#!/usr/bin/env python3
"""End-to-end rules of the warm path (README.md), one test per rule, each
driving the real drone-deps binary against the Keycloak stand-in, or a real
Keycloak with KEYCLOAK_BACKEND=real (tests needing a fault knob or the
request log are stand-in only)."""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ADMIN_PASSWORD, BIN, PYTHON, ROOT, Failure, NotRun, Stub, check,  # noqa: E402
                     main, read_env_file, test)

LOGIN = os.path.join(ROOT, "tests", "e2e", "login.py")


def only_master(ctx):
    realms = ctx.stub.realms()
    check(set(realms) == {"master"}, "realms left behind: %s" % sorted(realms))


def realms_during_hook(ctx, **settings):
    """Runs drone-deps with a hook that waits while the test reads the
    server's realms; returns (run, realms as the hook saw them)."""
    started, release = ctx.path("started"), ctx.path("release")
    hook = "echo go > %s; i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done" % (
        started, release)
    r = ctx.start(ctx.settings(hook=hook, **settings))
    try:
        ctx.wait_for_file(started, timeout=120, run=r)
        realms = ctx.stub.realms()
    finally:
        open(release, "w").close()
    return r.wait(), realms


def wait_group_gone(pgid_file, timeout):
    """Seconds until the hook's process group is gone, or None."""
    pgid = int(open(pgid_file).read().split()[0])
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return time.time() - t0
        time.sleep(0.02)
    return None


def env_hook(ctx, extra=""):
    """A hook that saves its environment and its process group."""
    return "env > %s; echo $$ > %s; %s" % (ctx.path("hook.env"), ctx.hook_pgid_file(), extra)


# ---- the cycle -------------------------------------------------------------

@test("warm run binds a realm, runs the hook with DEPS_* and deletes the realm")
def warm_cycle(ctx):
    r = ctx.run(ctx.settings(hook=env_hook(ctx), run_id="0a6fb2",
                             parent_domain="lasu-0a6fb2.ci.example.org"))
    check(r.code == 0, "exit %s" % r.code)
    env = read_env_file(ctx.path("hook.env"))
    want = {
        "DEPS_RUN_ID": "0a6fb2",
        "DEPS_KEYCLOAK_MODE": "warm",
        "DEPS_KEYCLOAK_URL": ctx.stub.url,
        "DEPS_KEYCLOAK_REALM": "lasuite-drive-0a6fb2",
        "DEPS_KEYCLOAK_ISSUER": ctx.stub.url + "/realms/lasuite-drive-0a6fb2",
        "DEPS_KEYCLOAK_CLIENT_ID": "lasuite-drive",
        "DEPS_KEYCLOAK_USERNAME": "test",
    }
    for k, v in want.items():
        check(env.get(k) == v, "%s=%r, want %r" % (k, env.get(k), v))
    check(len(env.get("DEPS_KEYCLOAK_CLIENT_SECRET", "")) >= 32, "client secret too short")
    check(len(env.get("DEPS_KEYCLOAK_PASSWORD", "")) >= 16, "password too short")
    only_master(ctx)


@test("the binding really logs in: password grant on the run's realm with its client")
def binding_logs_in(ctx):
    r = ctx.run(ctx.settings(hook="%s %s %s" % (PYTHON, LOGIN, ctx.path("login.out"))))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-500:]))
    check(open(ctx.path("login.out")).read().startswith("login ok"), "no login")
    only_master(ctx)


@test("the test user has email, first and last name set and verified; the client is confidential")
def realm_contents(ctx):
    r, realms = realms_during_hook(ctx, run_id="00beef", parent_domain="lasu-00beef.ci.example.org")
    check(r.code == 0, "exit %s" % r.code)
    check("lasuite-drive-00beef" in realms, "realm missing during hook: %s" % list(realms))
    attrs = realms["lasuite-drive-00beef"]["attributes"]
    check(attrs.get("drone-deps.owner") == "drone-deps", "owner mark: %r" % attrs)
    check(attrs.get("drone-deps.run") == "00beef", "run mark: %r" % attrs)
    check(attrs.get("drone-deps.job") == "local#0.0.0", "job mark: %r" % attrs)
    check(abs(int(attrs["drone-deps.expires"]) - (time.time() + 900)) < 30, "expiry: %r" % attrs)
    check(realms["lasuite-drive-00beef"]["clients"] == ["lasuite-drive"] or
          "lasuite-drive" in realms["lasuite-drive-00beef"]["clients"], "client missing")
    check("test" in realms["lasuite-drive-00beef"]["users"], "user missing")


@test("warm bind takes two requests on one connection before the hook; teardown one DELETE, then the admin session's logout",
      stub_only="needs the request log")
def request_budget(ctx):
    hook = "%s -c 'import urllib.request;print(urllib.request.urlopen(\"%s/_stub/requests\").read().decode())' > %s" % (
        PYTHON, ctx.stub.control, ctx.path("before.json"))
    ctx.stub.clear_requests()
    r = ctx.run(ctx.settings(hook=hook))
    check(r.code == 0, "exit %s" % r.code)
    before = json.load(open(ctx.path("before.json")))
    check([(q["method"], q["path"]) for q in before] ==
          [("POST", "/realms/master/protocol/openid-connect/token"), ("POST", "/admin/realms")],
          "before the hook: %s" % [(q["method"], q["path"]) for q in before])
    check(before[0]["conn"] == before[1]["conn"], "two connections: %s" % before)
    after = ctx.stub.requests()[len(before):]
    check(after and after[0]["method"] == "DELETE" and after[0]["path"].startswith("/admin/realms/lasuite-drive-"),
          "teardown: %s" % after[:3])
    check(after[0]["conn"] == before[0]["conn"], "teardown opened a new connection")
    check([(q["method"], q["path"]) for q in after[1:]] ==
          [("POST", "/realms/master/protocol/openid-connect/logout")],
          "requests after the hook besides the DELETE and the logout: %s" % after[1:])


@test("the opportunistic reap runs while the hook runs, off the bind and teardown paths",
      stub_only="needs the request log")
def reap_during_hook(ctx):
    past = str(int(time.time()) - 60)
    ctx.stub.seed({"realm": "old-run-0e0e0e", "enabled": True,
                   "attributes": {"drone-deps.owner": "drone-deps", "drone-deps.run": "0e0e0e",
                                  "drone-deps.job": "x#1.1", "drone-deps.expires": past}})
    ctx.stub.clear_requests()
    log = ctx.path("during.json")
    hook = ("sleep 3.5; %s -c 'import urllib.request;print(urllib.request.urlopen(\"%s/_stub/requests\").read().decode())' > %s"
            % (PYTHON, ctx.stub.control, log))
    r = ctx.run(ctx.settings(hook=hook))
    check(r.code == 0, "exit %s" % r.code)
    during = json.load(open(log))
    check([q["method"] for q in during[:2]] == ["POST", "POST"], "bind: %s" % during[:2])
    check(any(q["method"] == "DELETE" and q["path"].endswith("/old-run-0e0e0e") for q in during[2:]),
          "the expired realm was not reaped while the hook ran: %s" % during)
    after = ctx.stub.requests()[len(during):]
    check([q["method"] for q in after] == ["DELETE", "POST"], "after the hook: %s" % after)
    only_master(ctx)


@test("env_file gets the binding with mode 0600")
def env_file(ctx):
    r = ctx.run(ctx.settings(hook="true", env_file=ctx.path("deps.env"), run_id="abc123"))
    check(r.code == 0, "exit %s" % r.code)
    mode = stat.S_IMODE(os.stat(ctx.path("deps.env")).st_mode)
    check(mode == 0o600, "mode %o" % mode)
    env = read_env_file(ctx.path("deps.env"))
    check(env.get("DEPS_KEYCLOAK_REALM") == "lasuite-drive-abc123", "env_file: %r" % env)
    check(len(env.get("DEPS_KEYCLOAK_CLIENT_SECRET", "")) >= 32, "env_file lacks the secret")


@test("keycloak_realm_json is applied with partial import after creation")
def partial_import(ctx):
    with open(ctx.path("realm.json"), "w") as f:
        json.dump({"roles": {"realm": [{"name": "editor"}]},
                   "users": [{"username": "alice", "enabled": True, "email": "alice@example.org",
                              "firstName": "Alice", "lastName": "A", "emailVerified": True}]}, f)
    r, realms = realms_during_hook(ctx, keycloak_realm_json=ctx.path("realm.json"), run_id="1a2b3c")
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
    users = realms["lasuite-drive-1a2b3c"]["users"]
    check("alice" in users and "test" in users, "users: %s" % users)
    only_master(ctx)


# ---- the hook's exit status ------------------------------------------------

@test("hook exit codes are passed through (all 256 on the stand-in, the edges on a real server), realm deleted each time")
def exit_codes(ctx):
    # 256 realms cost minutes on a real Keycloak; its answers do not
    # depend on the hook's status, so the edges say as much there.
    codes = list(range(256)) if ctx.stub.has_log else [0, 1, 2, 42, 64, 69, 70, 75, 125, 126, 127, 128, 254, 255]
    results = {}

    def worker(chunk):
        for c in chunk:
            r = ctx.run(ctx.settings(hook="exit %d" % c))
            results[c] = r.code

    threads = [threading.Thread(target=worker, args=(codes[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wrong = {c: got for c, got in results.items() if got != c}
    check(len(results) == len(codes) and not wrong, "wrong codes: %s" % dict(list(wrong.items())[:10]))
    only_master(ctx)
    if not ctx.stub.has_log:
        ctx.dropped("the other 242 codes", "on a real server the edges only (256 realms cost minutes there)")


@test("hook killed by SIGKILL exits 137 and deletes the realm")
def hook_sigkill(ctx):
    r = ctx.run(ctx.settings(hook="kill -KILL $$"))
    check(r.code == 137, "exit %s" % r.code)
    only_master(ctx)


@test("hook killed by SIGTERM exits 143 and deletes the realm")
def hook_sigterm(ctx):
    r = ctx.run(ctx.settings(hook="kill -TERM $$"))
    check(r.code == 143, "exit %s" % r.code)
    only_master(ctx)


@test("a hook that is not found exits 127, one that is not executable 126; realm deleted")
def exec_failures(ctx):
    r = ctx.run(ctx.settings(hook=None), args=["--", "/nonexistent/run-tests"])
    check(r.code == 127, "not found: exit %s" % r.code)
    with open(ctx.path("noexec.sh"), "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    r = ctx.run(ctx.settings(hook=None), args=["--", ctx.path("noexec.sh")])
    check(r.code == 126, "not executable: exit %s" % r.code)
    only_master(ctx)


@test("the command after -- runs with its arguments and the binding")
def dashdash(ctx):
    r = ctx.run(ctx.settings(hook=None),
                args=["--", "/bin/sh", "-c", 'echo "$0 $1 $DEPS_KEYCLOAK_REALM" > out.txt', "a1", "b2"])
    check(r.code == 0, "exit %s" % r.code)
    got = open(ctx.path("out.txt")).read().split()
    check(got[:2] == ["a1", "b2"] and got[2].startswith("lasuite-drive-"), "argv: %s" % got)


# ---- signals -----------------------------------------------------------------

def wait_group_runs(pgid_file, comm, timeout=20):
    """Waits until a process named comm (so past its exec) runs in the
    hook's process group."""
    pgid = int(open(pgid_file).read().split()[0])
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                stat = open("/proc/%d/stat" % pid).read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            if name == comm and int(stat[stat.rindex(")") + 2:].split()[2]) == pgid:
                return
        time.sleep(0.01)
    raise Failure("no %s ran in the hook's process group within %d s" % (comm, timeout))


def signal_mid_hook(ctx, signo, ignore_signals=()):
    started = ctx.path("started")
    pgid_file = ctx.hook_pgid_file()
    hook = "echo $$ > %s; echo go > %s; sleep 30" % (pgid_file, started)
    r = ctx.start(ctx.settings(hook=hook), ignore_signals=ignore_signals)
    ctx.wait_for_file(started, timeout=120, run=r)
    # Mid-hook means while sleep runs, not while the shell starts it: dash
    # (0.5.11 and later, Debian's /bin/sh) starts a command with vfork, and
    # a SIGINT that reaches the vforked child before its exec is taken by
    # the shell's own handler, which does nothing in a vforked child, while
    # the parent shell defers its copy until sleep ends. The signal is then
    # lost to the hook (only the 10 s grace ends it), whatever sends it.
    wait_group_runs(pgid_file, "sleep")
    os.kill(r.pid, signo)
    took = wait_group_gone(pgid_file, 8)
    r.wait()
    check(r.code == 128 + signo, "exit %s, want %d" % (r.code, 128 + signo))
    check(took is not None, "the hook was not stopped by the forwarded signal within 8 s")
    only_master(ctx)


@test("SIGTERM to drone-deps mid-hook is forwarded, the realm deleted, exit 143")
def sig_term(ctx):
    signal_mid_hook(ctx, signal.SIGTERM)


@test("SIGINT to drone-deps mid-hook is forwarded, the realm deleted, exit 130")
def sig_int(ctx):
    signal_mid_hook(ctx, signal.SIGINT)


@test("SIGHUP to drone-deps mid-hook is forwarded, the realm deleted, exit 129")
def sig_hup(ctx):
    signal_mid_hook(ctx, signal.SIGHUP)


@test("SIGQUIT to drone-deps mid-hook is forwarded, the realm deleted, exit 131")
def sig_quit(ctx):
    signal_mid_hook(ctx, signal.SIGQUIT)


@test("a stop the hook survives (it traps it and exits 0) still ends the run with 128+N: TERM, INT, HUP, QUIT")
def stop_decides_exit(ctx):
    # The exit says the run was stopped, whatever the hook made of it:
    # the hook's own 0 would tell Drone the step passed.
    for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        started = ctx.path("started.%d" % signo)
        hook = "trap 'exit 0' TERM INT HUP QUIT; echo go > %s; while :; do sleep 0.1; done" % started
        r = ctx.start(ctx.settings(hook=hook))
        ctx.wait_for_file(started, run=r)
        os.kill(r.pid, signo)
        r.wait(30)
        check(r.code == 128 + signo, "signal %d: exit %s, want %d: %s" % (signo, r.code, 128 + signo,
                                                                          r.stderr[-300:]))
        only_master(ctx)


@test("started with INT and QUIT ignored (a background job), forwarded SIGINT still stops the hook")
def sig_int_ignored_at_start(ctx):
    signal_mid_hook(ctx, signal.SIGINT, ignore_signals=(signal.SIGINT, signal.SIGQUIT))


@test("SIGUSR1 is forwarded to the hook, which goes on")
def sig_usr1(ctx):
    started, got = ctx.path("started"), ctx.path("usr1")
    hook = "trap 'echo usr1 > %s' USR1; echo go > %s; i=0; while [ ! -s %s ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; exit 7" % (
        got, started, got)
    r = ctx.start(ctx.settings(hook=hook))
    ctx.wait_for_file(started, run=r)
    os.kill(r.pid, signal.SIGUSR1)
    r.wait(30)
    check(os.path.exists(got), "the hook never saw SIGUSR1")
    check(r.code == 7, "exit %s" % r.code)
    only_master(ctx)


@test("a hook that ignores SIGTERM is killed after the 10 s grace; realm deleted")
def grace_kill(ctx):
    started = ctx.path("started")
    pgid_file = ctx.hook_pgid_file()
    hook = "trap '' TERM; echo $$ > %s; echo go > %s; while :; do sleep 1; done" % (pgid_file, started)
    r = ctx.start(ctx.settings(hook=hook))
    ctx.wait_for_file(started, timeout=120, run=r)
    os.kill(r.pid, signal.SIGTERM)
    took = wait_group_gone(pgid_file, 20)
    # checked before the wait: a hook never killed keeps drone-deps waiting
    check(took is not None and 9 <= took <= 15, "the hook was killed after %s s, want about 10" % took)
    r.wait()
    check(r.code == 143, "exit %s" % r.code)
    only_master(ctx)


@test("as PID 1, drone-deps reaps the zombies of orphaned processes")
def pid1_reaps(ctx):
    if not os.path.exists("/usr/bin/unshare"):
        raise Failure("unshare (util-linux) is needed for this test")
    hook = ("(sleep 0.2 &) ; (sleep 0.3 &); sleep 1; "
            "z=0; for s in /proc/[0-9]*/stat; do read -r l < $s 2>/dev/null || continue; "
            "case \"${l##*) }\" in Z*) z=$((z+1));; esac; done; echo $z > %s") % ctx.path("zombies")
    full = dict(os.environ, **ctx.settings(hook=hook))
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", BIN], env=full,
                       cwd=ctx.dir, capture_output=True, timeout=60)
    check(p.returncode == 0, "exit %s: %s" % (p.returncode, p.stderr[-500:]))
    check(open(ctx.path("zombies")).read().strip() == "0",
          "zombies seen by the hook: %s" % open(ctx.path("zombies")).read())
    only_master(ctx)


# ---- leases ----------------------------------------------------------------

@test("the lease is renewed every ttl/3 while the hook runs")
def lease_renewal(ctx):
    started = ctx.path("started")
    r = ctx.start(ctx.settings(hook="echo go > %s; sleep 8" % started, ttl=10, run_id="aa0001"))
    ctx.wait_for_file(started, run=r)
    first = int(ctx.stub.realms()["lasuite-drive-aa0001"]["attributes"]["drone-deps.expires"])
    # renewals at about 3.3 and 6.7 s into the 8 s hook: poll until one
    # moved the expiry, while the hook still runs
    later = first
    while later < first + 3 and r.proc.poll() is None:
        time.sleep(0.2)
        realm = ctx.stub.realms().get("lasuite-drive-aa0001")
        if realm:
            later = int(realm["attributes"]["drone-deps.expires"])
    r.wait(30)
    check(r.code == 0, "exit %s" % r.code)
    check(later >= first + 3, "expiry went from %d to %d" % (first, later))
    only_master(ctx)


@test("drone-deps SIGKILLed mid-hook: a later reap after lease expiry removes the realm")
def sigkill_then_reap(ctx):
    started = ctx.path("started")
    r = ctx.start(ctx.settings(hook="echo $$ > %s; echo go > %s; sleep 60" % (ctx.hook_pgid_file(), started),
                               ttl=20, run_id="bb0002"))
    ctx.wait_for_file(started, timeout=120, run=r)
    os.kill(r.pid, signal.SIGKILL)
    r.wait(10)
    realm = ctx.stub.realms().get("lasuite-drive-bb0002")
    check(realm, "the realm should outlive a SIGKILL")
    reap = ctx.run(ctx.settings(action="reap", parent=None, hook=None))
    check(reap.code == 0, "early reap exit %s" % reap.code)
    check("lasuite-drive-bb0002" in ctx.stub.realms() or
          time.time() > int(realm["attributes"]["drone-deps.expires"]), "a live lease was reaped")
    # Reap until the realm is gone, from the lease's end on: drone-deps
    # reads a coarse clock and an expiry is strictly in the past, so the
    # second after it is not a sure moment; the deadline is.
    expires = int(realm["attributes"]["drone-deps.expires"])
    deadline = expires + 15
    while True:
        reap = ctx.run(ctx.settings(action="reap", parent=None, hook=None))
        check(reap.code == 0, "reap exit %s: %s" % (reap.code, reap.stderr[-300:]))
        if "lasuite-drive-bb0002" not in ctx.stub.realms():
            check(time.time() >= expires, "a live lease was reaped")
            break
        check(time.time() < deadline, "the realm outlived its lease (ended at %d) by 15 s" % expires)
        time.sleep(max(0.2, min(5.0, expires - time.time())))
    only_master(ctx)


@test("reap leaves master, unmarked, foreign and live realms alone")
def reap_respects_ownership(ctx):
    past, future = int(time.time()) - 100, int(time.time()) + 1000
    ours = {"drone-deps.owner": "drone-deps", "drone-deps.run": "111111", "drone-deps.job": "x#1.1"}
    ctx.stub.seed({"realm": "unmarked-0a0a0a", "enabled": True})
    ctx.stub.seed({"realm": "foreign-0b0b0b", "enabled": True,
                   "attributes": {"drone-deps.owner": "someone-else", "drone-deps.expires": str(past)}})
    ctx.stub.seed({"realm": "live-0c0c0c", "enabled": True,
                   "attributes": dict(ours, **{"drone-deps.expires": str(future)})})
    ctx.stub.seed({"realm": "expired-0d0d0d", "enabled": True,
                   "attributes": dict(ours, **{"drone-deps.expires": str(past)})})
    ctx.stub.seed({"realm": "odd-name", "enabled": True,
                   "attributes": dict(ours, **{"drone-deps.expires": str(past)})})
    r = ctx.run(ctx.settings(action="reap", parent=None, hook=None))
    check(r.code == 0, "exit %s" % r.code)
    left = set(ctx.stub.realms())
    check(left == {"master", "unmarked-0a0a0a", "foreign-0b0b0b", "live-0c0c0c", "odd-name"},
          "left: %s" % sorted(left))


@test("a name collision with another run's live realm fails with 69 and touches nothing")
def collision_live(ctx):
    attrs = {"drone-deps.owner": "drone-deps", "drone-deps.run": "cc0003",
             "drone-deps.job": "other/repo#9.1", "drone-deps.expires": str(int(time.time()) + 600)}
    ctx.stub.seed({"realm": "lasuite-drive-cc0003", "enabled": True, "attributes": attrs})
    r = ctx.run(ctx.settings(hook="echo ran > %s" % ctx.path("ran"), run_id="cc0003"))
    check(r.code == 69, "exit %s" % r.code)
    check(not os.path.exists(ctx.path("ran")), "the hook ran")
    check("live run" in r.stderr, "message: %s" % r.stderr[-300:])
    left = ctx.stub.realms()["lasuite-drive-cc0003"]["attributes"]
    check({k: v for k, v in left.items() if k.startswith("drone-deps.")} == attrs,
          "the realm's lease was changed: %s" % left)


@test("an unmarked realm of the same name fails with 69 and is left alone")
def collision_unmarked(ctx):
    ctx.stub.seed({"realm": "lasuite-drive-cc0004", "enabled": True})
    r = ctx.run(ctx.settings(hook="true", run_id="cc0004"))
    check(r.code == 69, "exit %s" % r.code)
    check("not marked as made by drone-deps" in r.stderr, "message: %s" % r.stderr[-300:])
    check("lasuite-drive-cc0004" in ctx.stub.realms(), "the unmarked realm was deleted")


@test("a leftover realm of this same job, or an expired one, is replaced")
def collision_replace(ctx):
    # The leftover is a bare realm with the marks: replaced, the hook logs
    # in through a client and user made anew; adopted, it would find none.
    for i, (job, expires) in enumerate((("local#0.0.0", time.time() + 600), ("other#1.1", time.time() - 5))):
        ctx.stub.seed({"realm": "lasuite-drive-cc0005", "enabled": True,
                       "attributes": {"drone-deps.owner": "drone-deps", "drone-deps.run": "cc0005",
                                      "drone-deps.job": job, "drone-deps.expires": str(int(expires))}})
        login = ctx.path("login.%d" % i)
        r = ctx.run(ctx.settings(hook="%s %s %s" % (PYTHON, LOGIN, login), run_id="cc0005"))
        check(r.code == 0, "job %s: exit %s: %s" % (job, r.code, r.stderr[-300:]))
        check("left over from %s" % job in r.stderr and "replacing it" in r.stderr,
              "job %s: not replaced: %s" % (job, r.stderr[-300:]))
        check(os.path.exists(login) and open(login).read().startswith("login ok"),
              "job %s: the hook could not log in to the realm" % job)
        only_master(ctx)


@test("the realm as the server holds it: a confidential client with the binding's secret, a verified, complete user")
def realm_read_back(ctx):
    # Read back through the admin API, the same on the stand-in and a real
    # server: what a login alone cannot tell (a public client takes any
    # secret, an unverified user logs in while the realm does not ask).
    from realkc import Admin
    started, release, env_path = ctx.path("started"), ctx.path("release"), ctx.path("hook.env")
    hook = "env > %s; echo go > %s; i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done" % (
        env_path, started, release)
    r = ctx.start(ctx.settings(hook=hook, run_id="ee0011"))
    try:
        ctx.wait_for_file(started, timeout=120, run=r)
        env = read_env_file(env_path)
        admin = getattr(ctx.stub, "admin", None) or Admin(ctx.stub.control, ctx.stub.password)
        base = "/admin/realms/" + env["DEPS_KEYCLOAK_REALM"]
        clients = admin.call("GET", base + "/clients?clientId=" + env["DEPS_KEYCLOAK_CLIENT_ID"])
        users = admin.call("GET", base + "/users?exact=true&username=" + env["DEPS_KEYCLOAK_USERNAME"])
        check(len(clients) == 1 and len(users) == 1, "clients %s, users %s" % (clients, users))
        c, u = clients[0], users[0]
        secret = admin.call("GET", base + "/clients/%s/client-secret" % c["id"])
    finally:
        open(release, "w").close()
    want = {"enabled": True, "publicClient": False, "bearerOnly": False, "protocol": "openid-connect",
            "clientAuthenticatorType": "client-secret", "standardFlowEnabled": True,
            "directAccessGrantsEnabled": True}
    got = {k: c.get(k) for k in want}
    check(got == want, "the client as the server holds it: %s, want %s" % (got, want))
    check(c.get("redirectUris") and c.get("webOrigins"), "no redirect URIs or web origins: %s" % c)
    check(secret.get("value") == env["DEPS_KEYCLOAK_CLIENT_SECRET"], "the client's secret is not the binding's")
    want = {"enabled": True, "emailVerified": True, "email": env["DEPS_KEYCLOAK_EMAIL"]}
    got = {k: u.get(k) for k in want}
    check(got == want, "the user as the server holds it: %s, want %s" % (got, want))
    check(u.get("firstName") and u.get("lastName"), "the user is not complete: %s" % u)
    check(not u.get("requiredActions"), "the user has actions to do first: %s" % u.get("requiredActions"))
    r.wait()
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-300:]))
    only_master(ctx)


@test("action up leaves the realm bound with an env_file; action down removes it")
def up_down(ctx):
    r = ctx.run(ctx.settings(hook=None, action="up", env_file=ctx.path("up.env"), run_id="dd0006"))
    check(r.code == 0, "up exit %s: %s" % (r.code, r.stderr[-300:]))
    check("lasuite-drive-dd0006" in ctx.stub.realms(), "up did not leave the realm")
    check("DEPS_KEYCLOAK_CLIENT_SECRET=***" in r.stdout, "up should print the binding masked")
    env = read_env_file(ctx.path("up.env"))
    check(env["DEPS_KEYCLOAK_CLIENT_SECRET"] not in r.output, "secret printed")
    other = ctx.run(ctx.settings(hook=None, action="down", run_id="dd0007", env_file=ctx.path("up.env")))
    check(other.code == 0, "down of a run with nothing: exit %s" % other.code)
    check("lasuite-drive-dd0006" in ctx.stub.realms(), "down of another run removed it")
    r = ctx.run(ctx.settings(hook=None, action="down", run_id="dd0006", env_file=ctx.path("up.env")))
    check(r.code == 0, "down exit %s" % r.code)
    only_master(ctx)


@test("action down refuses a realm of that name that another run owns")
def down_foreign(ctx):
    ctx.stub.seed({"realm": "lasuite-drive-dd0008", "enabled": True,
                   "attributes": {"drone-deps.owner": "drone-deps", "drone-deps.run": "ffffff",
                                  "drone-deps.expires": str(int(time.time()) + 600)}})
    with open(ctx.path("down.env"), "w") as f:
        f.write("DEPS_RUN_ID=dd0008\nDEPS_RUN_KEY=%s\n" % ("k" * 40))
    r = ctx.run(ctx.settings(hook=None, action="down", run_id="dd0008", env_file=ctx.path("down.env")))
    check(r.code == 77, "exit %s" % r.code)
    check("lasuite-drive-dd0008" in ctx.stub.realms(), "deleted a realm of another run")


# ---- failures of the server ----------------------------------------------------

@test("a burst of 503s on create and delete is survived",
      stub_only="needs the fault knob")
def burst_503(ctx):
    ctx.stub.config(fail={"status": 503, "count": 3, "method": "POST", "path_prefix": "/admin/realms"})
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 0, "create: exit %s: %s" % (r.code, r.stderr[-300:]))
    ctx.stub.config(fail={"status": 503, "count": 3, "method": "DELETE"})
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 0, "delete: exit %s" % r.code)
    only_master(ctx)


@test("429 with Retry-After and 502/504 are retried",
      stub_only="needs the fault knob")
def burst_429(ctx):
    ctx.stub.config(fail={"status": 429, "count": 1, "method": "DELETE"})
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 0, "429: exit %s" % r.code)
    for status in (502, 504):
        ctx.stub.config(fail={"status": status, "count": 2, "path_prefix": "/admin/realms"})
        r = ctx.run(ctx.settings(hook="true"))
        check(r.code == 0, "%d: exit %s" % (status, r.code))
    only_master(ctx)


@test("connection resets on create and delete are survived",
      stub_only="needs the reset knob")
def resets(ctx):
    ctx.stub.config(reset={"count": 2, "method": "POST", "path_prefix": "/admin/realms"})
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 0, "create: exit %s: %s" % (r.code, r.stderr[-300:]))
    ctx.stub.config(reset={"count": 2, "method": "DELETE"})
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 0, "delete: exit %s" % r.code)
    only_master(ctx)


@test("an admin token that expires mid-run is renewed for the teardown")
def token_expiry(ctx):
    ctx.stub.token_lifespan(2)  # the master realm's; the next reset restores it
    r = ctx.run(ctx.settings(hook="sleep 3", debug="true"))
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-300:]))
    tokens = r.stderr.count("http: POST /realms/master/protocol/openid-connect/token 200")
    check(tokens >= 2, "the token was not renewed: %d token grants" % tokens)
    only_master(ctx)


@test("the server frozen mid-hook and back: teardown waits, then deletes the realm")
def server_frozen(ctx):
    if not ctx.stub.owned:
        raise NotRun("needs a server this suite started, KEYCLOAK_URL names another")
    started = ctx.path("started")
    done = ctx.path("done")
    r = ctx.start(ctx.settings(hook="echo go > %s; sleep 1; echo done > %s" % (started, done),
                               run_id="ff0011", timeout=120))
    ctx.wait_for_file(started, timeout=120, run=r)
    ctx.stub.pause()
    try:
        # the hook is over; teardown's DELETE gets no answer: drone-deps
        # still waits 5 s after the hook's end
        ctx.wait_for_file(done, timeout=60)
        time.sleep(5)
        check(r.proc.poll() is None, "drone-deps exited %s while the server was frozen" % r.proc.poll())
    finally:
        ctx.stub.resume()
    r.wait()
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-300:]))
    only_master(ctx)


@test("the server restarted mid-hook: teardown waits for it, or leaves the lease and says so")
def server_restart(ctx):
    if not ctx.stub.owned:
        raise NotRun("needs a server this suite started, KEYCLOAK_URL names another")
    started = ctx.path("started")
    r = ctx.start(ctx.settings(hook="echo go > %s; sleep 1" % started, run_id="ff0012", timeout=300))
    ctx.wait_for_file(started, timeout=120, run=r)
    ctx.stub.restart(down_seconds=5)  # the hook ends while nothing listens
    r.wait()
    if r.code == 75:  # its teardown budget ran out before the server was back
        check("lease" in r.stderr, "exit 75 without a word about the lease: %s" % r.stderr[-300:])
    else:
        check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-300:]))
    only_master(ctx)  # its in-memory database forgot the realm; nothing else appeared


@test("teardown that keeps failing: hook's success becomes 75, the lease remains",
      stub_only="needs the fault knob")
def teardown_fails(ctx):
    ctx.stub.config(fail={"status": 500, "count": 1000, "method": "DELETE"})
    r = ctx.run(ctx.settings(hook="true", timeout=3, run_id="ee0009"))
    check(r.code == 75, "exit %s" % r.code)
    realm = ctx.stub.realms().get("lasuite-drive-ee0009")
    check(realm and realm["attributes"].get("drone-deps.owner") == "drone-deps", "no lease on the left realm")
    r = ctx.run(ctx.settings(hook="exit 3", timeout=3, run_id="ee0010"))
    check(r.code == 3, "a failing hook's status must win over teardown: exit %s" % r.code)


@test("bad admin credentials exit 69 naming URL and user, with no fallback")
def bad_credentials(ctx):
    r = ctx.run(ctx.settings(hook="true", keycloak_admin_password="wrong", mode="auto"))
    check(r.code == 69, "exit %s" % r.code)
    check(ctx.stub.url in r.stderr and "'admin'" in r.stderr, "message: %s" % r.stderr[-300:])
    only_master(ctx)


@test("no warm instance: mode warm and mode auto exit 69 with a clear message")
def no_warm(ctx):
    for mode in ("warm", "auto"):
        r = ctx.run(ctx.settings(hook="true", mode=mode, keycloak_url="http://127.0.0.1:9"))
        check(r.code == 69, "mode %s: exit %s" % (mode, r.code))
        check("no warm Keycloak" in r.stderr, "mode %s: %s" % (mode, r.stderr[-300:]))
        check(r.stderr.count("retrying") == 0, "a refused connection was retried")


@test("a warm Keycloak slow to answer its first login (10 s) is waited for, not taken for absent, nor asked twice, and the wait says so",
      stub_only="needs the hold knob and the request log")
def slow_first_login(ctx):
    # A freshly started Keycloak took 7-15 s for its first admin login on a
    # loaded machine, and 16 concurrent logins queue behind each other's
    # hashing: mode auto must not deploy cold past a busy warm instance,
    # and must not send the login again (one more hash in the queue).
    token = "/realms/master/protocol/openid-connect/token"
    ctx.stub.config(hold={"seconds": 10, "count": 1, "method": "POST", "path_prefix": token})
    ctx.stub.clear_requests()
    t0 = time.time()
    r = ctx.run(ctx.settings(hook="echo $DEPS_KEYCLOAK_MODE > %s" % ctx.path("mode"), mode="auto"),
                timeout=90)
    check(r.code == 0, "exit %s: %s" % (r.code, r.stderr[-400:]))
    check(open(ctx.path("mode")).read().strip() == "warm", "mode: %s" % open(ctx.path("mode")).read())
    check(time.time() - t0 >= 10, "the held answer was not waited for")
    logins = [q for q in ctx.stub.requests() if q["path"] == token]
    check(len(logins) == 1, "%d admin logins, want 1: %s" % (len(logins), logins))
    # a line every 5 s of the wait: 10 s held gives one at 5 s, maybe one at 10
    notes = re.findall(r"^drone-deps: still waiting for the answer to POST (\S+) \((\d+) s\)$", r.stderr, re.M)
    check(1 <= len(notes) <= 2 and notes[0] == (ctx.stub.url + token, "5"),
          "the wait said nothing, or not once per 5 s: %s\n%s" % (notes, r.stderr))
    only_master(ctx)


# ---- hostile servers --------------------------------------------------------------

@test("a huge answer is refused at the size cap, not read into memory, and not retried",
      stub_only="needs a hostile server")
def hostile_huge(ctx):
    ctx.stub.config(hostile={"mode": "huge", "count": -1, "path_prefix": "/realms/master"})
    t0 = time.time()
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 69, "exit %s" % r.code)
    check("over 4194304 bytes refused" in r.stderr, "message: %s" % r.stderr[-300:])
    check(time.time() - t0 < 5, "took %.1f s" % (time.time() - t0))
    check(r.stderr.count("retrying") == 0, "an oversized answer was retried")
    only_master(ctx)


@test("a non-JSON answer to the token request means no warm Keycloak there",
      stub_only="needs a hostile server")
def hostile_nonjson(ctx):
    ctx.stub.config(hostile={"mode": "nonjson", "count": -1, "path_prefix": "/realms/master"})
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 69, "exit %s" % r.code)
    check("is " in r.stderr and "a Keycloak?" in r.stderr, "message: %s" % r.stderr[-300:])
    only_master(ctx)


@test("truncated JSON is an error, never half-read: token, and realm list for reap",
      stub_only="needs a hostile server")
def hostile_truncated(ctx):
    ctx.stub.config(hostile={"mode": "truncated", "count": 1, "path_prefix": "/realms/master"})
    r = ctx.run(ctx.settings(hook="true"))
    check(r.code == 69, "token: exit %s" % r.code)
    ctx.stub.config(hostile={"mode": "truncated", "count": 1, "method": "GET", "path_prefix": "/admin/realms"})
    r = ctx.run(ctx.settings(action="reap", parent=None, hook=None))
    check(r.code == 69, "reap: exit %s" % r.code)
    check("not a JSON array" in r.stderr, "message: %s" % r.stderr[-300:])


@test("a slow trickle hits the timeout and drone-deps gives up in time",
      stub_only="needs a hostile server")
def hostile_trickle(ctx):
    ctx.stub.config(hostile={"mode": "trickle", "count": -1, "duration": 30, "path_prefix": "/realms/master"})
    t0 = time.time()
    r = ctx.run(ctx.settings(hook="true", timeout=3))
    took = time.time() - t0
    ctx.stub.config(hostile=None)
    check(r.code == 69, "exit %s" % r.code)
    check(took < 8, "took %.1f s with timeout 3" % took)


@test("a redirect to another host is not followed with the credentials",
      stub_only="needs a hostile server")
def hostile_redirect(ctx):
    other = Stub()
    ctx.extra_stubs.append(other)
    other.clear_requests()
    ctx.stub.config(hostile={"mode": "redirect", "count": -1, "status": 307, "method": "POST",
                             "path_prefix": "/admin/realms", "target": other.url + "/admin/realms"})
    r = ctx.run(ctx.settings(hook="echo ran > %s" % ctx.path("ran")))
    check(r.code == 69, "exit %s" % r.code)
    check(not os.path.exists(ctx.path("ran")), "the hook ran")
    check(other.requests() == [], "the redirect was followed: %s" % other.requests())
    check("307" in r.stderr, "message: %s" % r.stderr[-300:])


# ---- TLS -------------------------------------------------------------------------

def tls_stub(ctx):
    certs = ctx.path("certs")
    subprocess.run(["sh", os.path.join(ROOT, "tests", "kcstub", "make-certs.sh"), certs],
                   check=True, capture_output=True)
    s = Stub(tls_cert=os.path.join(certs, "server.pem"), tls_key=os.path.join(certs, "server-key.pem"))
    ctx.extra_stubs.append(s)
    return s, certs


@test("HTTPS: an untrusted certificate is refused; ca_cert makes it trusted",
      stub_only="runs its own TLS stand-in with a test CA")
def tls(ctx):
    s, certs = tls_stub(ctx)
    env = ctx.settings(hook="true", keycloak_url=s.url)
    r = ctx.run(env)
    check(r.code == 69, "untrusted: exit %s" % r.code)
    check("retrying" not in r.stderr, "untrusted: a certificate failure was retried: %s" % r.stderr[-300:])
    check(set(s.realms()) == {"master"}, "a realm was created over an untrusted connection")
    r = ctx.run(dict(env, PLUGIN_CA_CERT=os.path.join(certs, "other-ca.pem")))
    check(r.code == 69, "wrong CA: exit %s" % r.code)
    check("retrying" not in r.stderr, "wrong CA: a certificate failure was retried: %s" % r.stderr[-300:])
    # action reap logs in without the liveness probe's own guard: the retry
    # loop itself must give up at once (a timeout of 8 s bounds the test).
    r = ctx.run(ctx.settings(hook=None, keycloak_url=s.url, action="reap", parent=None, timeout=8))
    check(r.code == 69, "reap, untrusted: exit %s: %s" % (r.code, r.stderr[-300:]))
    check("retrying" not in r.stderr, "reap, untrusted: a certificate failure was retried: %s" % r.stderr[-300:])
    r = ctx.run(dict(env, PLUGIN_CA_CERT=os.path.join(certs, "ca.pem")))
    check(r.code == 0, "trusted: exit %s: %s" % (r.code, r.stderr[-300:]))
    check(set(s.realms()) == {"master"}, "realm left over TLS")


@test("insecure skips certificate checks and says so loudly",
      stub_only="runs its own TLS stand-in with a test CA")
def insecure(ctx):
    s, certs = tls_stub(ctx)
    r = ctx.run(ctx.settings(hook="true", keycloak_url=s.url, insecure="true"))
    check(r.code == 0, "exit %s" % r.code)
    check("insecure" in r.stderr and "NOT" in r.stderr, "no warning: %s" % r.stderr[-300:])


# ---- secrets ---------------------------------------------------------------------

@test("an admin password given as a flag is not visible in the process list",
      unwrapped_only="/proc/<pid>/cmdline then shows the wrapper's copy of the arguments")
def flag_secret(ctx):
    started = ctx.path("started")
    env = ctx.settings(hook="echo go > %s; sleep 2" % started, keycloak_admin_password=None)
    r = ctx.start(env, args=["--keycloak-admin-password", ADMIN_PASSWORD])
    ctx.wait_for_file(started, run=r)
    cmdline = open("/proc/%d/cmdline" % r.pid, "rb").read().decode(errors="replace")
    r.wait(30)
    check(ADMIN_PASSWORD not in cmdline, "password in /proc/pid/cmdline")
    check(r.code == 0, "exit %s" % r.code)


# ---- bad input ---------------------------------------------------------------------

BAD_INPUTS = [
    ("unknown dep kind", {"deps": "keycloak,postgres"}, [], "deps:"),
    ("malformed run_id", {"run_id": "XYZ"}, [], "run_id:"),
    ("parent that cannot form a realm name", {"parent": "La Suite!"}, [], "parent:"),
    ("ttl below range", {"ttl": "9"}, [], "ttl:"),
    ("ttl above range", {"ttl": "86401"}, [], "ttl:"),
    ("unreadable keycloak_realm_json", {"keycloak_realm_json": "/nonexistent.json"}, [], "keycloak_realm_json:"),
    ("invalid keycloak_realm_json", {"keycloak_realm_json": "@bad"}, [], "keycloak_realm_json:"),
    ("both hook and --", {}, ["--", "true"], "hook:"),
    ("non-http keycloak_url", {"keycloak_url": "ftp://example.org"}, [], "keycloak_url:"),
    ("missing password", {"keycloak_admin_password": None}, [], "keycloak_admin_password:"),
    ("unknown mode", {"mode": "tepid"}, [], "mode:"),
    ("unknown action", {"action": "explode"}, [], "action:"),
    ("missing deps", {"deps": None}, [], "deps:"),
]


@test("every bad input exits 64 with one line naming the setting, and creates nothing",
      stub_only="the request log proves nothing was sent")
def bad_inputs(ctx):
    with open(ctx.path("bad.json"), "w") as f:
        f.write('{"users": [')
    problems = []
    for label, extra, args, prefix in BAD_INPUTS:
        extra = {k: (ctx.path("bad.json") if v == "@bad" else v) for k, v in extra.items()}
        ctx.stub.clear_requests()
        r = ctx.run(ctx.settings(hook="echo ran > %s" % ctx.path("ran"), **extra), args=args)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        if r.code != 64:
            problems.append("%s: exit %s" % (label, r.code))
        elif len(lines) != 1 or not lines[0].startswith("drone-deps: error: " + prefix):
            problems.append("%s: stderr %r" % (label, r.stderr))
        if ctx.stub.requests():
            problems.append("%s: sent requests" % label)
        if os.path.exists(ctx.path("ran")):
            problems.append("%s: the hook ran" % label)
    check(not problems, "\n".join(problems))
    only_master(ctx)


@test("--help lists every setting with its default; --version prints the version")
def help_version(ctx):
    r = ctx.run({}, args=["--help"])
    check(r.code == 0, "help exit %s" % r.code)
    for name in ("deps", "action", "parent", "domain", "parent_domain", "run_id", "mode", "hook",
                 "env_file", "ttl", "timeout", "keycloak_url", "keycloak_admin_user",
                 "keycloak_admin_password", "keycloak_image", "keycloak_realm_json", "cold_url",
                 "cold_publish", "cert_resolver", "keycloak_service", "network", "docker_host",
                 "ca_cert", "insecure", "debug"):
        check("  %s " % name in r.stdout, "--help misses %s" % name)
    check("default: 900" in r.stdout, "ttl default missing")
    r = ctx.run({}, args=["--version"])
    check(r.code == 0 and r.stdout.startswith("drone-deps "), "version: %r" % r.stdout)


@test("the committed plugin docs are what --plugin-docs prints, and list what --help lists")
def plugin_docs(ctx):
    r = ctx.run({}, args=["--plugin-docs"])
    check(r.code == 0, "exit %s" % r.code)
    committed = open(os.path.join(ROOT, "docs", "plugin.md")).read()
    check(r.stdout == committed, "docs/plugin.md is stale: regenerate it with --plugin-docs")
    help_text = ctx.run({}, args=["--help"]).stdout
    names = [l.split()[0] for l in help_text.splitlines() if l.startswith("  ") and not l.startswith("      ")]
    props = [l[len("- name: "):] for l in committed.splitlines() if l.startswith("- name: ")]
    check(names == props, "--help lists %s, the docs %s" % (names, props))
    for block in committed.split("\n- name: ")[1:]:
        for field in ("type:", "defaultValue:", "required:", "secret:", "description:"):
            check(field in block, "%s lacks %s" % (block.split()[0], field))


if __name__ == "__main__":
    sys.exit(main())
