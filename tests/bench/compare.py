#!/usr/bin/env python3
"""make bench-compare: one CI realm cycle, side by side, by drone-deps and by
what a recipe maintainer would otherwise run.

The cycle: an admin token, a realm with one confidential client and one
test user who can log in, a command that does nothing (/bin/true), and the
realm deleted. Performed by
  - drone-deps, each binary given (`drone-deps -- /bin/true`, PLUGIN_*
    settings as in a Drone step);
  - tests/bench/compare/curl-jq.sh: curl and jq, one process per call, as
    people write it in a CI step (token, realm, client, client id lookup,
    secret, user, user id lookup, password, delete);
  - tests/bench/compare/admin-client.mjs: Node and the official
    @keycloak/keycloak-admin-client (token, realm, client, secret, user,
    password, delete).
All against one Keycloak stand-in (tests/kcstub) on loopback, interleaved
(A B C D A B C D ...), at a fixed per-request latency added by the stand-in
(2 ms and 20 ms by default).

Every cycle is checked: exit status 0, no HTTP answer >= 400 in the
stand-in's log, and no realm left but master afterwards. One cycle per tool
and latency runs a real command instead of /bin/true: a password grant for
the test user through the new client (tests/e2e/login.py), so each tool is
shown to produce a working login. That cycle is not timed.

Measured per cycle, through a small static launcher (build/bench/launch,
tests/bench/compare/launch.c; see there why Python cannot measure peak RSS
of a child itself):
  - requests: entries in the stand-in's request log during the cycle;
  - wall: fork to exit of the tool, median and p95;
  - CPU: user + system of the tool and every process it waited for (the
    curl and jq processes of the shell script, /bin/true everywhere);
  - peak RSS: the largest resident set of the tool or any one of those
    processes (ru_maxrss; a process forked from the tiny launcher does not
    inherit a large pre-exec footprint).
Ratios: to drone-deps (the reference binary, the static release build when
given), and to the cycle's own round-trip floor: requests x latency plus
the stand-in's own time for those requests, the latter measured first in
interleaved rounds at 0 ms latency (the median of the per-request times in
the stand-in's log, summed per cycle). The stand-in's latency is a sleep
before each answer, the same for every request; a real network would also
charge every new TCP (and TLS) connection a round trip, which curl-per-call
pays 9 times and drone-deps once, so the floor here favours the scripts.

Then drone-deps cycles run concurrently against one stand-in (concurrency
1, 4, 16, 32), each cycle checked the same way: throughput in cycles per
second and p95 wall per cycle.

Figures, not assertions: a failed check stops the run with exit 1; slow
numbers do not.
"""
import argparse
import concurrent.futures
import itertools
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from harness import ADMIN_PASSWORD, Stub  # noqa: E402

COMPARE = os.path.join(HERE, "compare")
SEQ = itertools.count(1)  # file names of cycles; next() is atomic under the GIL
LOGIN = os.path.join(ROOT, "tests", "e2e", "login.py")


class Failed(Exception):
    pass


class Tool:
    """One contender: how to run a cycle and what it is called."""

    def __init__(self, name, argv, env_fn):
        self.name = name
        self.argv = argv          # command before the hook
        self.env_fn = env_fn      # stub -> environment for one cycle
        self.samples = {}         # latency -> list of Sample
        self.stub_ms = []         # stand-in's own ms per cycle at 0 ms


class Sample:
    def __init__(self, wall, cpu, rss, log):
        self.wall, self.cpu, self.rss = wall, cpu, rss
        self.requests = len(log)
        self.conns = len(set(r["conn"] for r in log))
        self.stub_ms = sum(r["ms"] for r in log)
        self.log = log


def base_env():
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(),
            "LANG": "C.UTF-8"}


def drone_deps_tool(binary, label):
    def env(stub):
        e = base_env()
        e.update({"PLUGIN_DEPS": "keycloak", "PLUGIN_PARENT": "bench", "PLUGIN_MODE": "warm",
                  "PLUGIN_KEYCLOAK_URL": "http://127.0.0.1:%d" % stub.port,
                  "PLUGIN_KEYCLOAK_ADMIN_PASSWORD": ADMIN_PASSWORD,
                  "PLUGIN_DOCKER_HOST": "unix:///nonexistent.sock"})
        return e
    return Tool(label, [os.path.abspath(binary), "--"], env)


def script_env(stub):
    e = base_env()
    e.update({"KC_URL": "http://127.0.0.1:%d" % stub.port, "KC_ADMIN_USER": "admin",
              "KC_ADMIN_PASSWORD": ADMIN_PASSWORD, "REALM": "bench-" + secrets.token_hex(3),
              "CLIENT_ID": "bench", "TEST_USER": "test",
              "TEST_PASSWORD": secrets.token_urlsafe(12)})
    return e


def span(values):
    v = sorted(set(values))
    return "%d" % v[0] if len(v) == 1 else "%d-%d" % (v[0], v[-1])


def describe(r):
    """"POST /admin/realms/{realm}/users" for a request log entry."""
    parts = r["path"].split("/")
    if len(parts) > 3 and parts[1] == "admin" and parts[2] == "realms" and parts[3]:
        parts[3] = "{realm}"
    for i, p in enumerate(parts):
        if len(p) == 36 and p.count("-") == 4:
            parts[i] = "{id}"
    return "%s %s%s" % (r["method"], "/".join(parts), "?" + r["query"] if r["query"] else "")


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


class Runner:
    def __init__(self, stub, launcher, workdir):
        self.stub = stub
        self.launcher = launcher
        self.workdir = workdir

    def launch(self, tool, hook):
        """Runs one cycle; returns (status, wall ms, cpu ms, maxrss KiB, log path)."""
        seq = next(SEQ)
        res = os.path.join(self.workdir, "result.%d" % seq)
        log = os.path.join(self.workdir, "log.%d" % seq)
        with open(log, "w") as out:
            subprocess.run([self.launcher, res] + tool.argv + hook, env=tool.env_fn(self.stub),
                           stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           cwd=self.workdir, check=False)
        try:
            status, wall, user, sys_, rss = open(res).read().split()
        except (OSError, ValueError):
            raise Failed("%s: the launcher wrote no result:\n%s" % (tool.name, open(log).read()[-2000:]))
        os.unlink(res)
        return int(status), int(wall) / 1000.0, (int(user) + int(sys_)) / 1000.0, int(rss), log

    def check(self, tool, status, log, requests):
        if status != 0:
            raise Failed("%s exited %d:\n%s" % (tool.name, status, open(log).read()[-3000:]))
        bad = [r for r in requests if r["status"] >= 400 or r["status"] == 0]
        if bad:
            raise Failed("%s: HTTP errors in the cycle: %s" % (tool.name, bad))
        left = [r for r in self.stub.realms() if r != "master"]
        if left:
            raise Failed("%s: realms left after the cycle: %s" % (tool.name, left))
        os.unlink(log)

    def cycle(self, tool):
        """One timed cycle with /bin/true as the command."""
        self.stub.clear_requests()
        status, wall, cpu, rss, log = self.launch(tool, ["/bin/true"])
        requests = self.stub.requests()
        self.check(tool, status, log, requests)
        return Sample(wall, cpu, rss, requests)

    def login_cycle(self, tool):
        """One untimed cycle whose command logs the test user in."""
        proof = os.path.join(self.workdir, "login.ok")
        if os.path.exists(proof):
            os.unlink(proof)
        self.stub.clear_requests()
        status, _, _, _, log = self.launch(tool, [sys.executable, LOGIN, proof])
        requests = self.stub.requests()
        self.check(tool, status, log, requests)
        grants = [r for r in requests if r["path"].endswith("/protocol/openid-connect/token")
                  and not r["path"].startswith("/realms/master/")]
        if not os.path.exists(proof) or len(grants) != 1:
            raise Failed("%s: the test user could not log in" % tool.name)


def run_compare(runner, tools, latencies, rounds, calib_rounds, ref):
    stub = runner.stub
    # The stand-in's own time per request, interleaved at 0 ms latency.
    stub.config(latency_ms=0)
    for t in tools:
        runner.cycle(t)  # warm-up: page cache, node's module cache
    own_ms = {t.name: [] for t in tools}
    last = {}
    for _ in range(calib_rounds):
        for t in tools:
            s = runner.cycle(t)
            own_ms[t.name].append(s.stub_ms)
            last[t.name] = s
    own = {t.name: statistics.median(own_ms[t.name]) for t in tools}
    print("what each tool sends in one cycle (stand-in's request log; realm and ids elided):")
    for t in tools:
        s = last[t.name]
        print("  %-20s %d requests on %d connection%s: %s" % (
            t.name, s.requests, s.conns, "" if s.conns == 1 else "s",
            ", ".join(describe(r) for r in s.log)))
    print()
    print("stand-in's own time per cycle at 0 ms latency (its per-request times summed; median of "
          "%d cycles):" % calib_rounds)
    print("  " + "; ".join("%s %.1f ms" % (t.name, own[t.name]) for t in tools))
    print("  (the admin token is most of it: the stand-in signs RS256 in pure Python)")

    for lat in latencies:
        stub.config(latency_ms=lat)
        for t in tools:
            runner.login_cycle(t)
        for t in tools:
            t.samples[lat] = []
        for _ in range(rounds):
            for t in tools:
                t.samples[lat].append(runner.cycle(t))
        print()
        print("latency %g ms per request, %d interleaved rounds (every cycle checked; one login "
              "per tool)" % (lat, rounds))
        print("%-20s %5s %5s %-17s %7s %7s | %7s %6s | %s" % (
            "", "", "", "  wall ms", "CPU", "peak", "floor", "", "ratio to " + ref.name))
        print("%-20s %5s %5s %8s %8s %7s %7s | %7s %6s | %6s %6s %6s" % (
            "tool", "req", "conn", "median", "p95", "ms", "MiB", "ms", "xfloor", "wall", "CPU",
            "RSS"))
        rmed = statistics.median(s.wall for s in ref.samples[lat])
        rcpu = statistics.median(s.cpu for s in ref.samples[lat])
        rrss = max(s.rss for s in ref.samples[lat])
        for t in tools:
            ss = t.samples[lat]
            walls = [s.wall for s in ss]
            med = statistics.median(walls)
            cpu = statistics.median(s.cpu for s in ss)
            rss = max(s.rss for s in ss)
            nreq = statistics.median(s.requests for s in ss)
            floor = nreq * lat + own[t.name]
            print("%-20s %5s %5s %8.1f %8.1f %7.1f %7.1f | %7.1f %6.2f | %6.2f %6.2f %6.2f" % (
                t.name, span(s.requests for s in ss), span(s.conns for s in ss), med,
                percentile(walls, 95), cpu, rss / 1024.0, floor, med / floor, med / rmed,
                cpu / rcpu, rss / rrss))


def run_concurrency(stub, launcher, workdir, tool, levels, latency, cycles_per_level):
    stub.config(latency_ms=latency)
    print()
    print("%s, concurrent cycles against one stand-in, latency %g ms per request"
          % (tool.name, latency))
    print("%11s %7s %9s %9s %9s %7s %7s" % ("concurrency", "cycles", "cycles/s", "median", "p95",
                                            "req", "conn"))
    for c in levels:
        n = max(cycles_per_level, 2 * c)
        runner = Runner(stub, launcher, workdir)
        stub.clear_requests()

        def one(_):
            status, wall, _, _, log = runner.launch(tool, ["/bin/true"])
            if status != 0:
                raise Failed("%s exited %d under concurrency %d:\n%s" % (
                    tool.name, status, c, open(log).read()[-3000:]))
            os.unlink(log)
            return wall

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=c) as pool:
            walls = list(pool.map(one, range(n)))
        elapsed = time.perf_counter() - t0
        requests = stub.requests()
        # A reap reads the lease of other runs' realms; one deleted
        # meanwhile answers 404, which drone-deps skips. Anything else
        # is an error.
        misses = [q for q in requests if q["status"] == 404 and q["method"] == "GET"
                  and q["path"].startswith("/admin/realms/")]
        bad = [q for q in requests if (q["status"] >= 400 or q["status"] == 0) and q not in misses]
        if bad:
            raise Failed("HTTP errors under concurrency %d: %s" % (c, bad[:5]))
        left = [r for r in stub.realms() if r != "master"]
        if left:
            raise Failed("realms left under concurrency %d: %s" % (c, left))
        print("%11d %7d %9.1f %7.1fms %7.1fms %7.2f %7.2f" % (
            c, n, n / elapsed, statistics.median(walls), percentile(walls, 95),
            len(requests) / n, len(set(q["conn"] for q in requests)) / n))
    print("(req counts the opportunistic reap too when a hook runs long enough for it; these "
          "hooks exit at once, so it is 2 + 1)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binaries", nargs="*", default=["build/drone-deps", "build/static/drone-deps"])
    ap.add_argument("--launcher", default=os.path.join(ROOT, "build", "bench", "launch"))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "50")))
    ap.add_argument("--calib-rounds", type=int, default=10)
    ap.add_argument("--latencies", default="2,20")
    ap.add_argument("--concurrency", default="1,4,16,32")
    ap.add_argument("--concurrency-cycles", type=int, default=64)
    ap.add_argument("--concurrency-latencies", default="2,20")
    args = ap.parse_args()

    for cmd in ("curl", "jq", "node"):
        if not shutil.which(cmd):
            sys.exit("bench-compare: %s is not installed" % cmd)
    if not os.path.isdir(os.path.join(COMPARE, "node_modules", "@keycloak", "keycloak-admin-client")):
        sys.exit("bench-compare: run npm ci in tests/bench/compare first (make bench-compare does)")
    if not os.access(args.launcher, os.X_OK):
        sys.exit("bench-compare: %s is missing (make bench-compare builds it)" % args.launcher)

    tools = []
    for b in args.binaries:
        if not os.path.exists(b):
            print("%s: not built, skipped" % b)
            continue
        label = "drone-deps (static)" if "static" in b else "drone-deps (dev)"
        tools.append(drone_deps_tool(b, label))
    if not tools:
        sys.exit("bench-compare: no drone-deps binary")
    ref = next((t for t in tools if "static" in t.name), tools[0])
    tools.append(Tool("curl+jq (sh)", ["/bin/sh", os.path.join(COMPARE, "curl-jq.sh")], script_env))
    tools.append(Tool("admin-client (node)", ["node", os.path.join(COMPARE, "admin-client.mjs")],
                      script_env))

    print("bench-compare: create a realm with a confidential client and a test user, run "
          "/bin/true, delete the realm")
    print("tools: %s; curl %s, jq %s, node %s, @keycloak/keycloak-admin-client %s" % (
        ", ".join(os.path.relpath(b) for b in args.binaries if os.path.exists(b)),
        subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1],
        subprocess.run(["jq", "--version"], capture_output=True, text=True).stdout.strip(),
        subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        admin_client_version()))
    print("machine: %d CPUs; stand-in: tests/kcstub (Python) on 127.0.0.1, HTTP" % os.cpu_count())
    print()

    stub = Stub()
    workdir = tempfile.mkdtemp(prefix="bench-compare-")
    started = time.time()
    try:
        runner = Runner(stub, os.path.abspath(args.launcher), workdir)
        run_compare(runner, tools, [float(x) for x in args.latencies.split(",")], args.rounds,
                    args.calib_rounds, ref)
        for lat in [float(x) for x in args.concurrency_latencies.split(",") if x]:
            run_concurrency(stub, os.path.abspath(args.launcher), workdir, ref,
                            [int(x) for x in args.concurrency.split(",")], lat,
                            args.concurrency_cycles)
    except Failed as e:
        print("bench-compare: FAILED: %s" % e)
        return 1
    finally:
        stub.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("bench-compare: done in %.0f s" % (time.time() - started))
    return 0


def admin_client_version():
    import json
    try:
        with open(os.path.join(COMPARE, "node_modules", "@keycloak", "keycloak-admin-client",
                               "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
