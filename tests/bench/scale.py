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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from realkc import RealKeycloak  # noqa: E402
from real import CI_CLIENT_ID, CI_CLIENT_SECRET, fill, make_ci_client, others  # noqa: E402


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
SPARE = re.compile(r"-spare-\d+$")


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def run_env(url, mode, parent):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(),
         "LANG": "C.UTF-8", "PLUGIN_DEPS": "keycloak", "PLUGIN_PARENT": parent,
         "PLUGIN_MODE": "warm", "PLUGIN_KEYCLOAK_URL": url,
         "PLUGIN_KEYCLOAK_CLIENT_ID": CI_CLIENT_ID, "PLUGIN_KEYCLOAK_CLIENT_SECRET": CI_CLIENT_SECRET,
         "PLUGIN_DOCKER_HOST": "unix:///nonexistent.sock"}
    if mode == "none":
        e["PLUGIN_POOL_SIZE"] = "0"
    elif mode == "parent":
        e.update({"PLUGIN_POOL_SIZE": str(POOL_PARENT), "PLUGIN_POOL_SCOPE": "parent"})
    else:
        e.update({"PLUGIN_POOL_SIZE": str(POOL_INSTANCE), "PLUGIN_POOL_SCOPE": "instance"})
    return e


def one_run(binary, url, mode, parent, workdir, out):
    os.makedirs(workdir)
    a, b = os.path.join(workdir, "a"), os.path.join(workdir, "b")
    hook = "date +%%s%%N > %s; sleep %s; date +%%s%%N > %s" % (a, HOOK_S, b)
    t0 = time.time_ns()
    p = subprocess.run([binary, "--", "sh", "-c", hook], env=run_env(url, mode, parent),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    t1 = time.time_ns()
    if p.returncode != 0:
        out.append(("failed", p.returncode, p.stderr[-1500:]))
        return
    ta, tb = int(open(a).read()), int(open(b).read())
    out.append(((ta - t0) / 1e6, (t1 - tb) / 1e6, "claimed spare" in p.stderr))


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
                                                    os.path.join(scratch, "r%d" % k), res))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return res


def clean(admin, base):
    for name in sorted(others(admin) - base):
        admin.call("DELETE", "/admin/realms/" + name, ok=(204, 404))


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
    return {
        "mode": mode, "runs": len(results), "failed": len(bad), "claimed": sum(r[2] for r in good),
        "hook50": pct(hooks, 50), "hook95": pct(hooks, 95),
        "down50": pct(downs, 50), "down95": pct(downs, 95),
        "rpm": len(good) * 60.0 / wall, "max": max((c for _, c in sampler.samples), default=0),
        "end": end, "samples": sampler.samples, "bad": bad[:2],
    }


def row(r):
    return "| %d | %s | %d (%d) | %d | %.0f / %.0f | %.0f / %.0f | %.1f | %d / %d |" % (
        r["others"], r["mode"], r["runs"], r["failed"], r["claimed"], r["hook50"], r["hook95"],
        r["down50"], r["down95"], r["rpm"], r["max"], r["end"])


def main():
    # a stop unwinds through the finally that stops the server started here
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/drone-deps")
    print("# bench-scale: %d parents, %d concurrent runs, %d waves (+1 warm-up), hook %.0f s, "
          "other realms %s, pools %s (parent: %d per parent; instance: %d)" % (
              PARENTS, CONC, WAVES, HOOK_S, OTHERS, MODES, POOL_PARENT, POOL_INSTANCE), flush=True)
    kc = RealKeycloak(quiet=True)
    scratch = tempfile.mkdtemp(prefix="bench-scale-")
    rows = []
    try:
        admin = kc.admin
        make_ci_client(admin)
        have = 0
        for n in OTHERS:
            made = fill(admin, have, n)
            if made:
                print("# %d other realms made, %.0f ms each (median)" % (n, statistics.median(made)), flush=True)
            have = max(have, n)
            base = others(admin)
            for mode in MODES:
                t = time.time()
                r = bench_mode(binary, kc.url, admin, base, mode, os.path.join(scratch, "%d-%s" % (n, mode)))
                r["others"] = n
                rows.append(r)
                print("# %d others, %s: %.0f s; realms over time (s: count): %s" % (
                    n, mode, time.time() - t,
                    " ".join("%.0f:%d" % s for s in r["samples"][::5])), flush=True)
                print("# " + row(r), flush=True)
                for b in r["bad"]:
                    print("# a run failed: exit %s: %s" % (b[1], b[2].replace("\n", " | ")), flush=True)
    finally:
        kc.stop()
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
