#!/usr/bin/env python3
"""make bench: warm cycles of drone-deps against the Keycloak stand-in on
loopback (bind, a hook that exits at once, teardown), per binary.

Prints, per binary: HTTP requests before the hook and in teardown (budget
2 and 2; the opportunistic reap after teardown is counted apart), median
and p95 wall milliseconds per cycle, drone-deps' user+sys CPU per cycle
(the /bin/true hook it reaps is included), its own CPU from start to the
hook's exec (cpu2hook), and peak RSS (VmHWM once bound). Figures, not
assertions: nothing here fails on a slow machine.
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import ADMIN_PASSWORD, Stub  # noqa: E402

CYCLES = int(os.environ.get("BENCH_CYCLES", "50"))


def cycle(binary, stub, env):
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "--", "/bin/true"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit("bench: %s exited %d" % (binary, proc.returncode))
    return wall, (ru.ru_utime + ru.ru_stime) * 1000


def at_hook(binary, env):
    """drone-deps' own high-water RSS (KiB) and CPU time (ms) from its start
    to the hook's exec, read by the hook from /proc/<drone-deps>/status and
    /proc/<drone-deps>/schedstat (nanoseconds on CPU). ru_maxrss of a child
    would count the forking Python's pages copied before exec."""
    p = subprocess.run([binary, "--", "/bin/sh", "-c",
                        "grep VmHWM /proc/$PPID/status; cat /proc/$PPID/schedstat"],
                       env=env, capture_output=True, text=True)
    lines = p.stdout.split("\n")
    if p.returncode != 0 or len(lines) < 2 or "VmHWM" not in lines[0]:
        return -1, -1
    return int(lines[0].split()[1]), int(lines[1].split()[0]) / 1e6


def classify(requests):
    """Requests of one cycle: before the hook (up to the realm POST),
    teardown (the DELETE and the admin session's logout), and the reap."""
    bind = teardown = reap = 0
    phase = "bind"
    # A cycle starts at its token request: anything logged before it
    # belongs to the previous cycle.
    start = next((i for i, q in enumerate(requests) if q["path"].endswith("/token")), 0)
    for q in requests[start:]:
        if q["path"].endswith("/openid-connect/logout"):
            teardown += 1  # the admin session's logout ends every run
            continue
        if phase == "bind":
            bind += 1
            if q["method"] == "POST" and q["path"] == "/admin/realms":
                phase = "teardown"
        elif phase == "teardown":
            teardown += 1
            phase = "reap"
        else:
            reap += 1
    return bind, teardown, reap


def main(binaries):
    stub = Stub()
    try:
        env = {"PATH": "/usr/bin:/bin", "PLUGIN_DEPS": "keycloak", "PLUGIN_PARENT": "bench",
               "PLUGIN_MODE": "warm", "PLUGIN_KEYCLOAK_URL": "http://127.0.0.1:%d" % stub.port,
               "PLUGIN_KEYCLOAK_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "PLUGIN_DOCKER_HOST": "unix:///nonexistent.sock"}
        print("warm cycle: bind + /bin/true hook + teardown, %d cycles per binary, stand-in on loopback"
              % CYCLES)
        print("%-34s %6s %6s %6s %9s %9s %9s %9s %9s" % (
            "binary", "bind", "tear", "reap", "median", "p95", "cpu", "cpu2hook", "peakRSS"))
        for binary in binaries:
            if not os.path.exists(binary):
                print("%-34s (not built)" % binary)
                continue
            cycle(binary, stub, env)  # warm-up: page cache, the stand-in's first token
            walls, cpus, counts = [], [], []
            for _ in range(CYCLES):
                stub.clear_requests()
                w, c = cycle(binary, stub, env)
                walls.append(w)
                cpus.append(c)
                counts.append(classify(stub.requests()))
            samples = [at_hook(binary, env) for _ in range(10)]
            rss = max(x[0] for x in samples)
            to_hook = statistics.median(x[1] for x in samples)
            walls.sort()
            bind = max(c[0] for c in counts)
            tear = max(c[1] for c in counts)
            reap = statistics.mean(c[2] for c in counts)
            print("%-34s %6d %6d %6.1f %7.1fms %7.1fms %7.2fms %7.2fms %7.1fMiB" % (
                os.path.relpath(binary), bind, tear, reap, statistics.median(walls),
                walls[int(len(walls) * 0.95) - 1], statistics.mean(cpus), to_hook, rss / 1024))
        for binary in binaries:
            if os.path.exists(binary):
                tmp = "%s.bench-stripped" % binary
                subprocess.run(["strip", "-o", tmp, binary], check=True)
                stripped = os.path.getsize(tmp)
                os.unlink(tmp)
                print("size %-29s %d bytes on disk, %d bytes stripped" % (
                    os.path.relpath(binary), os.path.getsize(binary), stripped))
    finally:
        stub.stop()


if __name__ == "__main__":
    main(sys.argv[1:] or ["build/drone-deps"])
