#!/usr/bin/env python3
"""make bench-scale: many parents, concurrent runs, on a real Keycloak (a
benchmark that prints tables, not a test).

Starts a real Keycloak (tools/keycloak.sh, or the one of KEYCLOAK_URL and
KEYCLOAK_ADMIN_PASSWORD), makes the least-privilege CI client, and for each
count of other realms (SCALE_OTHERS, default 0,200) and each pool
(SCALE_MODES, default none,parent,instance) runs SCALE_WAVES waves (default
4) of SCALE_CONCURRENCY concurrent runs (default 16), one untimed warm-up
wave first. Run k of the whole sequence belongs to parent k mod
SCALE_PARENTS (default 100): the parents of a catalogue take turns, as
recipes do on a CI host. Each run is `drone-deps -- sh -c '...'`, whose
hook writes the clock, sleeps SCALE_HOOK_S seconds (default 5: the time a
run's housekeeping has to make spares) and writes the clock again.

  none      pool_size 0: every run creates its realm
  parent    pool_scope parent, pool_size SCALE_POOL_PARENT (default 2)
  instance  pool_scope instance, pool_size SCALE_POOL_INSTANCE (default the
            concurrency)

Measured per run: start -> hook (the tool's start to the hook's first
clock), teardown (the hook's last clock to the tool's exit), and whether it
claimed a spare; per pool: runs per minute over the timed waves, and the
realms on the server (every 2 s, others and master not counted) over time.
Every run must exit 0. Between pools the spares left are deleted, so each
pool starts empty. Figures, not assertions.

Each run has debug on: for each pool the script also prints, from the
tool's own per-request timings (`http: METHOD PATH STATUS N ms`), the
requests a run made before its hook (a claim: token, GET spare, partial
import, PUT rename; no claim: token, the GETs of the shared slots, POST
realm) and the teardown's, each kind with its count and p50/p95, and the
start -> hook of the runs that claimed a spare apart.

The server, by SCALE_DB:
  (unset)   tools/keycloak.sh on loopback (Keycloak's in-memory H2,
            start-dev), or the one of KEYCLOAK_URL + KEYCLOAK_ADMIN_PASSWORD
  postgres  the warm instance as a site runs it: the tool's own `action:
            warm` with `warm_db: postgres` on the local swarm (Keycloak in
            production mode on a PostgreSQL service; images from `make
            warm-pg-images`), published on a free loopback port
            (warm_publish); its admin password read from its container.
            SCALE_REPLICAS (default 1) Keycloak tasks: more than 1 are
            reached, as test_warm_pg.py reaches them, through its
            forwarder on a swarm-scoped bridge network
  dev-file  the same with `warm_db: dev-file` (H2 on a volume, start-dev)
The deployment uses test_warm_pg.py's names (stack warm-keycloak.wp<pid>.test)
and its cleanup: every service, secret, volume and network it made is
removed at the end, after a failure, Ctrl-C or SIGTERM too (the runs still
going are stopped first, so they tear down their realms). The deploy takes
1-3 minutes; SCALE_FILL_THREADS (default 4) parallel creates make the
other realms.
"""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from realkc import Admin, RealKeycloak, free_port_pair  # noqa: E402
from real import CI_CLIENT_ID, CI_CLIENT_SECRET, make_ci_client, others  # noqa: E402


def setting(name, default):
    return os.environ.get(name) or default


PARENTS = int(setting("SCALE_PARENTS", "100"))
CONC = int(setting("SCALE_CONCURRENCY", "16"))
WAVES = int(setting("SCALE_WAVES", "4"))
HOOK_S = float(setting("SCALE_HOOK_S", "5"))
OTHERS = [int(x) for x in setting("SCALE_OTHERS", "0,200").split(",")]
MODES = setting("SCALE_MODES", "none,parent,instance").split(",")
POOL_PARENT = int(setting("SCALE_POOL_PARENT", "2"))
POOL_INSTANCE = int(setting("SCALE_POOL_INSTANCE", str(CONC)))
DB = setting("SCALE_DB", "")
REPLICAS = int(setting("SCALE_REPLICAS", "1"))
FILL_THREADS = int(setting("SCALE_FILL_THREADS", "4"))
DEPLOY_TIMEOUT = 480
SPARE = re.compile(r"-spare-\d+$")
HTTP_LINE = re.compile(r"^drone-deps: debug: http: (\S+) (\S+) (?:(\d+) (\d+) ms|failed after (\d+) ms)")
LIVE = set()  # the runs going, stopped by a stop
LIVE_LOCK = threading.Lock()


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def run_env(url, mode, parent):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(),
         "LANG": "C.UTF-8", "PLUGIN_DEPS": "keycloak", "PLUGIN_PARENT": parent,
         "PLUGIN_MODE": "warm", "PLUGIN_KEYCLOAK_URL": url, "PLUGIN_DEBUG": "true",
         "PLUGIN_KEYCLOAK_CLIENT_ID": CI_CLIENT_ID, "PLUGIN_KEYCLOAK_CLIENT_SECRET": CI_CLIENT_SECRET,
         "PLUGIN_DOCKER_HOST": "unix:///nonexistent.sock"}
    if mode == "none":
        e["PLUGIN_POOL_SIZE"] = "0"
    elif mode == "parent":
        e.update({"PLUGIN_POOL_SIZE": str(POOL_PARENT), "PLUGIN_POOL_SCOPE": "parent"})
    else:
        e.update({"PLUGIN_POOL_SIZE": str(POOL_INSTANCE), "PLUGIN_POOL_SCOPE": "instance"})
    return e


def request_kind(method, path):
    """A request of the debug log as a kind: realm names folded into
    `realm` (the run's) or `spare`."""
    if path.endswith("/openid-connect/token"):
        return "token"
    if path.endswith("/openid-connect/logout"):
        return "logout"
    if path.startswith("/admin/realms?") or path == "/admin/realms":
        return "%s realms" % method
    m = re.match(r"^/admin/realms/([^/?]+)(.*)$", path)
    if m:
        return "%s %s%s" % (method, "spare" if SPARE.search(m.group(1)) else "realm", m.group(2))
    return "%s %s" % (method, path)


def requests_of(stderr):
    """(before the hook, teardown): lists of (kind, ms) from the debug log.
    The housekeeping's requests (a process of its own, during the hook)
    are in neither: before the hook ends at "bound keycloak", the teardown
    counts only the run realm's DELETE and the logout."""
    before, down, phase = [], [], 0
    for line in stderr.splitlines():
        if phase == 0 and line.startswith("drone-deps: bound keycloak"):
            phase = 1
            continue
        if line.startswith("drone-deps: the hook exited"):
            phase = 2
            continue
        m = HTTP_LINE.match(line)
        if not m:
            continue
        kind = request_kind(m.group(1), m.group(2))
        ms = int(m.group(4) or m.group(5))
        if m.group(5) is not None:
            kind += " (failed)"
        if phase == 0:
            before.append((kind, ms))
        elif phase == 2 and (kind.startswith("DELETE realm") or kind == "logout"):
            down.append((kind, ms))
    return before, down


def one_run(binary, url, mode, parent, workdir, out):
    os.makedirs(workdir)
    a, b = os.path.join(workdir, "a"), os.path.join(workdir, "b")
    hook = "date +%%s%%N > %s; sleep %s; date +%%s%%N > %s" % (a, HOOK_S, b)
    t0 = time.time_ns()
    p = subprocess.Popen([binary, "--", "sh", "-c", hook], env=run_env(url, mode, parent),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with LIVE_LOCK:
        LIVE.add(p)
    try:
        _, err = p.communicate()
    finally:
        with LIVE_LOCK:
            LIVE.discard(p)
    t1 = time.time_ns()
    if p.returncode != 0:
        out.append(("failed", p.returncode, err[-1500:]))
        return
    ta, tb = int(open(a).read()), int(open(b).read())
    before, down = requests_of(err)
    out.append(((ta - t0) / 1e6, (t1 - tb) / 1e6, "claimed spare" in err, before, down))


def stop_runs():
    """SIGTERM to the runs still going (each tears down its realm), then
    up to 60 s for them to exit."""
    with LIVE_LOCK:
        procs = list(LIVE)
    for p in procs:
        try:
            p.terminate()
        except OSError:
            pass
    deadline = time.time() + 60
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()


class Sampler(threading.Thread):
    """The realms on the server every 2 s, without the others and master."""

    def __init__(self, admin, base):
        super().__init__(daemon=True)
        self.admin, self.base = admin, base
        self.samples = []
        self.stop_ev = threading.Event()

    def count(self):
        return len(others(self.admin) - self.base)

    def run(self):
        t0 = time.time()
        while not self.stop_ev.is_set():
            try:
                self.samples.append((time.time() - t0, self.count()))
            except Exception:  # noqa: BLE001 - a sample lost under load
                pass
            self.stop_ev.wait(2)


def wave(binary, url, mode, first, scratch):
    res, threads = [], []
    for j in range(CONC):
        k = first + j
        t = threading.Thread(target=one_run, args=(binary, url, mode, "recipe-%03d" % (k % PARENTS),
                                                    os.path.join(scratch, "r%d" % k), res), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return res


def clean(admin, base):
    for name in sorted(others(admin) - base):
        admin.call("DELETE", "/admin/realms/" + name, ok=(204, 404))


def fill(admin, have, want):
    """Other realms up to WANT, FILL_THREADS at a time; (ms per realm,
    wall seconds)."""
    def one(i):
        t = time.perf_counter()
        admin.call("POST", "/admin/realms", {"realm": "other-%03d" % i, "enabled": True}, ok=(201,))
        return (time.perf_counter() - t) * 1000
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=max(1, FILL_THREADS)) as ex:
        times = list(ex.map(one, range(have, want)))
    return times, time.time() - t0


def by_kind(pairs):
    """'kind n× p50/p95 ms; ...' in the order the kinds first appear."""
    kinds = {}
    for kind, ms in pairs:
        kinds.setdefault(kind, []).append(ms)
    return "; ".join("%s %d× %.0f/%.0f" % (k, len(v), pct(v, 50), pct(v, 95)) for k, v in kinds.items())


def bench_mode(binary, url, admin, base, mode, scratch):
    clean(admin, base)
    sampler = Sampler(admin, base)
    sampler.start()
    wave(binary, url, mode, 0, scratch)  # warm-up, untimed
    results = []
    t0 = time.time()
    for w in range(WAVES):
        results += wave(binary, url, mode, (w + 1) * CONC, scratch)
    wall = time.time() - t0
    time.sleep(2)
    sampler.stop_ev.set()
    sampler.join()
    end = sampler.count()
    clean(admin, base)
    bad = [r for r in results if r[0] == "failed"]
    good = [r for r in results if r[0] != "failed"]
    hooks = [r[0] for r in good]
    downs = [r[1] for r in good]
    claimed = [r[0] for r in good if r[2]]
    # start -> hook less the requests before it: the tool's own time and
    # the machine's (process start, TLS-less connects, the hook's fork)
    rest = [r[0] - sum(ms for _, ms in r[3]) for r in good]
    return {
        "mode": mode, "runs": len(results), "failed": len(bad), "claimed": len(claimed),
        "hook50": pct(hooks, 50), "hook95": pct(hooks, 95),
        "down50": pct(downs, 50), "down95": pct(downs, 95),
        "rpm": len(good) * 60.0 / wall, "max": max((c for _, c in sampler.samples), default=0),
        "end": end, "samples": sampler.samples, "bad": bad[:2],
        "claim50": pct(claimed, 50), "claim95": pct(claimed, 95),
        "rest50": pct(rest, 50), "rest95": pct(rest, 95),
        "before": by_kind(p for r in good for p in r[3]),
        "before_claimed": by_kind(p for r in good if r[2] for p in r[3]),
        "down": by_kind(p for r in good for p in r[4]),
    }


def row(r):
    return "| %d | %s | %d (%d) | %d | %.0f / %.0f | %.0f / %.0f | %.1f | %d / %d |" % (
        r["others"], r["mode"], r["runs"], r["failed"], r["claimed"], r["hook50"], r["hook95"],
        r["down50"], r["down95"], r["rpm"], r["max"], r["end"])


class WarmDeploy:
    """The warm instance as `action: warm` deploys it on the local swarm,
    under test_warm_pg.py's names, removed whole by its cleanup."""

    def __init__(self):
        import test_warm_pg as tw  # only here: it needs the swarm and makes a scratch folder
        self.tw = tw
        self.ok = False

    def deploy(self, binary, db):
        tw = self.tw
        state = tw.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
        image = tw.KC_IMAGE if db == "postgres" else tw.KC_IMAGE[:-len("-postgres")]
        need = [image] + ([tw.DB_IMAGE] if db == "postgres" else [])
        missing = [i for i in need if not tw.docker("image", "ls", "-q", i).strip()]
        if state != "active" or missing:
            raise RuntimeError("SCALE_DB=%s needs an active swarm (%s) and the images (missing: %s): "
                               "make docker-up warm-pg-images" % (db, state, missing or "none"))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tw.SHARED,
               "PLUGIN_ACTION": "warm", "PLUGIN_DOMAIN": tw.DOMAIN, "PLUGIN_WARM_DB": db,
               "PLUGIN_DOCKER_HOST": "unix:///var/run/docker.sock", "PLUGIN_TIMEOUT": str(DEPLOY_TIMEOUT - 60)}
        if REPLICAS > 1:
            tw.docker("network", "create", "--driver", "bridge", "--scope", "swarm", "--attachable", tw.NET)
            tw.FWD = tw.Forwarder()
            self.url = tw.FWD.url
            env.update({"PLUGIN_NETWORK": tw.NET, "PLUGIN_WARM_REPLICAS": str(REPLICAS)})
        else:
            self.url = "http://127.0.0.1:%d" % free_port_pair()
            env["PLUGIN_WARM_PUBLISH"] = self.url.rsplit(":", 1)[1]
        env["PLUGIN_KEYCLOAK_URL"] = self.url
        t0 = time.time()
        p = subprocess.run([binary], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=DEPLOY_TIMEOUT)
        if p.returncode != 0:
            raise RuntimeError("action warm (warm_db %s): exit %d: %s" % (db, p.returncode, p.stderr[-2000:]))
        self.deploy_s = time.time() - t0
        cid = tw.containers(tw.APP)
        password = tw.docker("exec", cid[0], "cat", "/run/secrets/admin_password").strip()
        self.admin = Admin(self.url, password)
        self.ok = True

    def stop(self):
        if not self.ok and self.tw.objects_named(self.tw.STACK):
            self.tw.dump()
        self.tw.cleanup()
        left = self.tw.objects_named(self.tw.STACK)
        if left:
            print("# left on the swarm: %s" % left, flush=True)


def server(binary, stops):
    """(url, admin) of the server the bench runs against; its stop is in
    STOPS before anything is made, so that a failed deploy is removed too."""
    if DB in ("postgres", "dev-file"):
        w = WarmDeploy()
        stops.append(w.stop)
        w.deploy(binary, DB)
        print("# warm instance (warm_db %s, %d Keycloak task%s) deployed and healthy in %.0f s" % (
            DB, REPLICAS, "s" if REPLICAS > 1 else "", w.deploy_s), flush=True)
        return w.url, w.admin
    if DB:
        raise SystemExit("SCALE_DB: must be postgres or dev-file, or unset (got %r)" % DB)
    kc = RealKeycloak(quiet=True)  # stops what it started if its start fails
    stops.append(kc.stop)
    return kc.url, kc.admin


def main():
    # a stop unwinds through the finally that removes the server started here
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/drone-deps")
    print("# bench-scale: %s, %d parents, %d concurrent runs, %d waves (+1 warm-up), hook %.0f s, "
          "other realms %s, pools %s (parent: %d per parent; instance: %d)" % (
              "warm_db " + DB if DB else "tools/keycloak.sh or KEYCLOAK_URL", PARENTS, CONC, WAVES, HOOK_S,
              OTHERS, MODES, POOL_PARENT, POOL_INSTANCE), flush=True)
    scratch = tempfile.mkdtemp(prefix="bench-scale-")
    rows = []
    stops = []
    try:
        url, admin = server(binary, stops)
        make_ci_client(admin)
        have = 0
        for n in OTHERS:
            made, took = fill(admin, have, n)
            if made:
                print("# %d other realms made, %.0f ms each (median, %d at a time), %.0f s in all" % (
                    n, statistics.median(made), FILL_THREADS, took), flush=True)
            have = max(have, n)
            base = others(admin)
            for mode in MODES:
                t = time.time()
                r = bench_mode(binary, url, admin, base, mode, os.path.join(scratch, "%d-%s" % (n, mode)))
                r["others"] = n
                rows.append(r)
                print("# %d others, %s: %.0f s; realms over time (s: count): %s" % (
                    n, mode, time.time() - t,
                    " ".join("%.0f:%d" % s for s in r["samples"][::5])), flush=True)
                print("# " + row(r), flush=True)
                print("#   claimed runs' start→hook p50/p95: %.0f / %.0f ms; start→hook less its requests "
                      "p50/p95: %.0f / %.0f ms" % (r["claim50"], r["claim95"], r["rest50"], r["rest95"]),
                      flush=True)
                print("#   before the hook (kind n× p50/p95 ms): %s" % r["before"], flush=True)
                if r["claimed"]:
                    print("#   of which the claims: %s" % r["before_claimed"], flush=True)
                print("#   teardown: %s" % r["down"], flush=True)
                for b in r["bad"]:
                    print("# a run failed: exit %s: %s" % (b[1], b[2].replace("\n", " | ")), flush=True)
    finally:
        # a second stop must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_runs()
        for stop in stops:
            stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print("| other realms | pool | runs (failed) | claimed | start→hook p50 / p95 ms | "
          "teardown p50 / p95 ms | runs/min | realms max / at end |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(row(r))
    return 1 if any(r["failed"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
