#!/usr/bin/env python3
"""make bench, cold part: cold cycles on the real swarm with the Keycloak
stand-in image (deploy -> ready -> bind -> hook -> teardown), beside a warm
cycle's figures from warm.py. Prints per cycle the wall time of each phase,
read from drone-deps' own log lines as they arrive, and the requests sent to
the Docker engine and to Keycloak (from --debug lines: method and path
only). Needs make docker-up and the stand-in image (built if missing)."""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from harness import free_port  # noqa: E402
IMAGE = os.environ.get("KCSTUB_IMAGE", "drone-deps-kcstub:test")
NETWORK = "drone-deps-bench-%d" % os.getpid()
CYCLES = int(os.environ.get("BENCH_COLD_CYCLES", "3"))


def docker(*args):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True)


def cycle(binary):
    rid = os.urandom(3).hex()
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PLUGIN_DEPS": "keycloak", "PLUGIN_PARENT": "bench",
           "PLUGIN_MODE": "cold", "PLUGIN_RUN_ID": rid, "PLUGIN_KEYCLOAK_IMAGE": IMAGE,
           "PLUGIN_NETWORK": NETWORK, "PLUGIN_COLD_PUBLISH": str(port),
           "PLUGIN_COLD_URL": "http://127.0.0.1:%d" % port, "PLUGIN_DEBUG": "true",
           "PLUGIN_TIMEOUT": "120"}
    marks = {}
    engine = keycloak = 0
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "--", "/bin/true"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stderr:
            now = (time.perf_counter() - t0) * 1000
            if "debug: http: " in line:
                if " /v1." in line or " /_ping" in line:
                    engine += 1
                else:
                    keycloak += 1
            for key, needle in (("ready", "is ready at"), ("bound", "bound keycloak"),
                                ("hook", "running the hook"), ("removed", "removed service")):
                if needle in line and key not in marks:
                    marks[key] = now
        p.wait(180)
    finally:
        if p.poll() is None:
            p.kill()
        docker("service", "rm", "keyc-" + rid)
    end = (time.perf_counter() - t0) * 1000
    if p.returncode != 0 or len(marks) < 4:
        raise SystemExit("bench: cold cycle failed (exit %s, marks %s)" % (p.returncode, marks))
    return marks, end, engine, keycloak


def main(binaries):
    if docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() != "active":
        print("cold bench skipped: no active swarm (make docker-up)")
        return 0
    if not docker("image", "ls", "-q", IMAGE).stdout.strip():
        subprocess.run(["sh", os.path.join(ROOT, "tests", "kcstub", "image", "build.sh"), IMAGE],
                       check=True)
    docker("network", "create", "--driver", "overlay", "--attachable", NETWORK)
    try:
        print("cold cycle: deploy -> ready -> bind -> /bin/true hook -> teardown, %d cycles, "
              "stand-in image on the local swarm" % CYCLES)
        print("%-34s %9s %9s %9s %9s %7s %7s" % ("binary", "ready", "bound", "hook",
                                                "total", "engine", "kc"))
        for binary in binaries:
            rows = [cycle(binary) for _ in range(CYCLES)]
            med = lambda k: statistics.median(r[0][k] for r in rows)  # noqa: E731
            print("%-34s %7.0fms %7.0fms %7.0fms %7.0fms %7d %7d" % (
                os.path.relpath(binary), med("ready"), med("bound"), med("hook"),
                statistics.median(r[1] for r in rows), max(r[2] for r in rows),
                max(r[3] for r in rows)))
    finally:
        docker("network", "rm", NETWORK)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["build/drone-deps"]))
