#!/usr/bin/env python3
"""make bench-real: figures on a real Keycloak (a benchmark, not a test).

Starts a real Keycloak (tools/keycloak.sh: Maven Central's distribution,
cached, on loopback, in-memory database) and prints its start time. Then,
with 0 and 200 other realms on the server, one CI realm cycle (an admin
token, a realm with a confidential client and a test user, a command, the
realm deleted) by
  - drone-deps (the static release build): `drone-deps -- CMD`, three ways:
    a fresh realm with the master admin password; a fresh realm with the
    least-privilege CI client (keycloak_client_id/secret, pool_size 0); and
    a spare claimed from the pool with the CI client (pool_size 1; the
    spare is made before each cycle, untimed, by `action: reap`, as a
    previous run's hook or a scheduled reap would have);
  - tests/bench/compare/curl-jq.sh: curl and jq, one process per call;
  - tests/bench/compare/admin-client.mjs: Node and the official
    @keycloak/keycloak-admin-client;
  - tests/bench/compare/python-keycloak.py: python-keycloak from PyPI
    (pinned in tests/bench/compare/python-requirements.txt);
interleaved, ROUNDS cycles each per realm count. Measured per cycle:
  - to hook: from the tool's start to its command's start (the command
    writes the clock; CLOCK_REALTIME on both sides);
  - teardown: from the command's start (it exits at once) to the tool's exit;
  - CPU: user + system of the tool and the processes it waited for
    (build/bench/launch, see tests/bench/compare/launch.c);
  - requests: counted in one more cycle per tool and realm count, sent
    through a counting proxy (untimed); that cycle's command writes the
    clock, then logs the test user in (tests/e2e/login.py), which proves
    the binding works; its own token request is not counted. "before" is
    the requests the proxy received before the command started.
And per realm count: the size of the master admin token (admin-cli password
grant), and how long the server took to create the other realms.

Every cycle is checked: exit 0 and no realm left but the others. Figures,
not assertions. BENCH_REAL_ROUNDS (default 20) and BENCH_REAL_COUNTS
(default 0,200) change the run; it takes about 30 minutes on 2 cores.
"""
import http.client
import http.server
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from realkc import Admin, RealKeycloak  # noqa: E402

COMPARE = os.path.join(HERE, "compare")
LOGIN = os.path.join(ROOT, "tests", "e2e", "login.py")
LAUNCH = os.path.join(ROOT, "build", "bench", "launch")
PYKC = os.path.join(ROOT, "build", "bench", "pykc", "bin", "python")


class Failed(Exception):
    pass


class CountingProxy:
    """A loopback HTTP/1.1 proxy in front of the server that records each
    request (method, path, client connection)."""

    def __init__(self, upstream_port):
        log = self.log = []
        lock = threading.Lock()
        conns = iter(range(1, 1 << 30))  # id() of a socket is reused once it is freed

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with lock:
                    self.conn_no = next(conns)
                self.up = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=300)

            def relay(self):
                received = time.time_ns()
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "transfer-encoding")}
                self.up.request(self.command, self.path, body=body, headers=headers)
                r = self.up.getresponse()
                data = r.read()
                with lock:
                    log.append((self.command, self.path, self.conn_no, r.status, received))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                         "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def base_env():
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(),
            "LANG": "C.UTF-8"}


def drone_deps_env(url, password):
    e = base_env()
    e.update({"PLUGIN_DEPS": "keycloak", "PLUGIN_PARENT": "bench", "PLUGIN_MODE": "warm",
              "PLUGIN_KEYCLOAK_URL": url, "PLUGIN_KEYCLOAK_ADMIN_PASSWORD": password,
              "PLUGIN_DOCKER_HOST": "unix:///nonexistent.sock"})
    return e


def script_env(url, password):
    e = base_env()
    e.update({"KC_URL": url, "KC_ADMIN_USER": "admin", "KC_ADMIN_PASSWORD": password,
              "REALM": "bench-" + secrets.token_hex(3), "CLIENT_ID": "bench", "TEST_USER": "test",
              "TEST_PASSWORD": secrets.token_urlsafe(12)})
    return e


CI_CLIENT_ID = "drone-deps-ci"
CI_CLIENT_SECRET = secrets.token_urlsafe(24)


def make_ci_client(admin):
    """The CI client as README.md makes it: confidential, service account
    only, holding the master realm role create-realm and nothing else."""
    rep = {"clientId": CI_CLIENT_ID, "enabled": True, "publicClient": False,
           "serviceAccountsEnabled": True, "standardFlowEnabled": False,
           "directAccessGrantsEnabled": False, "secret": CI_CLIENT_SECRET}
    found = admin.call("GET", "/admin/realms/master/clients?clientId=" + CI_CLIENT_ID)
    if found:  # a server we did not start: its secret is set to ours
        admin.call("PUT", "/admin/realms/master/clients/" + found[0]["id"], dict(found[0], **rep))
    else:
        admin.call("POST", "/admin/realms/master/clients", rep, ok=(201,))
    cid = admin.call("GET", "/admin/realms/master/clients?clientId=" + CI_CLIENT_ID)[0]["id"]
    user = admin.call("GET", "/admin/realms/master/clients/%s/service-account-user" % cid)
    role = admin.call("GET", "/admin/realms/master/roles/create-realm")
    admin.call("POST", "/admin/realms/master/users/%s/role-mappings/realm" % user["id"], [role])


def client_env(pool_size):
    def env_fn(url, password):
        e = drone_deps_env(url, password)
        del e["PLUGIN_KEYCLOAK_ADMIN_PASSWORD"]
        e.update({"PLUGIN_KEYCLOAK_CLIENT_ID": CI_CLIENT_ID,
                  "PLUGIN_KEYCLOAK_CLIENT_SECRET": CI_CLIENT_SECRET,
                  "PLUGIN_POOL_SIZE": str(pool_size)})
        return e
    return env_fn


def refill(binary, url):
    """The spare a claim takes, made untimed before the cycle."""
    e = client_env(1)(url, None)
    e["PLUGIN_ACTION"] = "reap"
    p = subprocess.run([os.path.abspath(binary)], env=e, capture_output=True, text=True)
    if p.returncode != 0 or "pool: made spare" not in p.stderr:
        raise Failed("refill: exit %d: %s" % (p.returncode, p.stderr[-1500:]))


def tools(binary):
    return [
        ("drone-deps password", [os.path.abspath(binary), "--"], drone_deps_env),
        ("drone-deps client", [os.path.abspath(binary), "--"], client_env(0)),
        ("drone-deps claim", [os.path.abspath(binary), "--"], client_env(1),
         lambda url: refill(binary, url)),
        ("curl+jq (sh)", ["/bin/sh", os.path.join(COMPARE, "curl-jq.sh")], script_env),
        ("admin-client (node)", ["node", os.path.join(COMPARE, "admin-client.mjs")], script_env),
        ("python-keycloak", [PYKC, os.path.join(COMPARE, "python-keycloak.py")], script_env),
    ]


def others(admin):
    return {r["realm"] for r in admin.call("GET", "/admin/realms?briefRepresentation=true")}


def cycle(tool, url, password, workdir, expect_realms, admin, hook=None, direct=None):
    """One cycle; returns (to hook ms, teardown ms, cpu ms). A tool's
    prepare step (the claim's spare) talks to the server directly."""
    name, argv, env_fn = tool[:3]
    if len(tool) > 3:
        tool[3](direct or url)
    stamp = os.path.join(workdir, "hook.ns")
    res = os.path.join(workdir, "result")
    for p in (stamp, res):
        if os.path.exists(p):
            os.unlink(p)
    cmd = ["/bin/sh", "-c", "date +%%s%%N > %s" % stamp]
    if hook:  # the clock first, then the counted cycle's login
        cmd = ["/bin/sh", "-c", 'date +%%s%%N > %s && exec "$@"' % stamp, "sh"] + hook
    with open(os.path.join(workdir, "log"), "w") as out:
        t0 = time.time_ns()
        subprocess.run([LAUNCH, res] + argv + cmd, env=env_fn(url, password), stdout=out,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
        t1 = time.time_ns()
    status, _, user, sys_, _ = open(res).read().split()
    if int(status) != 0:
        raise Failed("%s exited %s:\n%s" % (name, status, open(os.path.join(workdir, "log")).read()[-3000:]))
    if len(tool) > 3 and "claimed spare" not in open(os.path.join(workdir, "log")).read():
        raise Failed("%s did not claim the spare:\n%s" % (name, open(os.path.join(workdir, "log")).read()[-3000:]))
    left = others(admin) - expect_realms
    if left:
        raise Failed("%s left realms behind: %s" % (name, sorted(left)))
    th = int(open(stamp).read())
    if hook:
        return th
    return (th - t0) / 1e6, (t1 - th) / 1e6, (int(user) + int(sys_)) / 1000.0


def fill(admin, have, want):
    """Creates other realms up to WANT; returns ms per realm."""
    times = []
    for i in range(have, want):
        t0 = time.perf_counter()
        admin.call("POST", "/admin/realms", {"realm": "other-%03d" % i, "enabled": True}, ok=(201,))
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/static/drone-deps"
    rounds = int(os.environ.get("BENCH_REAL_ROUNDS", "20"))
    counts = [int(x) for x in os.environ.get("BENCH_REAL_COUNTS", "0,200").split(",")]
    for path in (binary, LAUNCH, PYKC):
        if not os.access(path, os.X_OK):
            sys.exit("bench-real: %s is missing (make bench-real builds it)" % path)
    if not os.path.isdir(os.path.join(COMPARE, "node_modules", "@keycloak", "keycloak-admin-client")):
        sys.exit("bench-real: run npm ci in tests/bench/compare first (make bench-real does)")

    for signo in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # unwind: stop the server
        signal.signal(signo, lambda n, f: sys.exit(128 + n))
    began = time.time()
    print("bench-real: one CI realm cycle on a real Keycloak, by drone-deps and by what users "
          "would otherwise run")
    kc = RealKeycloak(quiet=True)
    proxy = None
    workdir = tempfile.mkdtemp(prefix="bench-real-")
    rows, summary, failures = [], [], []
    try:
        version = os.path.basename(subprocess.run(
            ["sh", os.path.join(ROOT, "tools", "keycloak.sh"), "fetch"], capture_output=True,
            text=True).stdout.strip())
        print("server: %s (tools/keycloak.sh: start --optimized, in-memory database, "
              "127.0.0.1, HTTP), Java %s; machine: %d CPUs, load %.1f" % (
                  version, java_version(), os.cpu_count(), os.getloadavg()[0]))
        if kc.start_ms is not None:
            print("Keycloak start to ready (health/ready): %d ms" % kc.start_ms)
        print()
        admin = Admin(kc.url, kc.password)
        make_ci_client(admin)
        proxy = CountingProxy(int(kc.url.rsplit(":", 1)[1]))
        have = 0
        for count in counts:
            t_fill = time.time()
            made = fill(admin, have, count)
            have = max(have, count)
            expect = others(admin)
            tok = admin.login()
            summary.append((count, len(tok["access_token"]), made, time.time() - t_fill))
            ts = tools(binary)
            reqs = {}
            for t in ts:  # the counted, untimed login cycle (also a warm-up)
                del proxy.log[:]
                try:
                    hook_ns = cycle(t, proxy.url, kc.password, workdir, expect, admin,
                                    hook=[sys.executable, LOGIN, os.path.join(workdir, "login.ok")],
                                    direct=kc.url)
                except Failed as e:  # a tool that fails here is reported, the others go on
                    failures.append((count, t[0], str(e)))
                    for left in others(admin) - expect:
                        admin.call("DELETE", "/admin/realms/" + left, ok=(204, 404))
                    continue
                admin_reqs = [q for q in proxy.log if not (
                    q[1].endswith("/protocol/openid-connect/token") and not q[1].startswith("/realms/master/"))]
                reqs[t[0]] = (len(admin_reqs), len({q[2] for q in admin_reqs}),
                              sum(1 for q in proxy.log if q[3] >= 400),
                              sum(1 for q in admin_reqs if q[4] < hook_ns))
            ts = [t for t in ts if t[0] in reqs]
            samples = {t[0]: [] for t in ts}
            for _ in range(rounds):
                for t in ts:
                    samples[t[0]].append(cycle(t, kc.url, kc.password, workdir, expect, admin))
            for t in ts:
                s = samples[t[0]]
                rows.append((count, t[0], reqs[t[0]], statistics.median(x[0] for x in s),
                             max(x[0] for x in s), statistics.median(x[1] for x in s),
                             statistics.median(x[2] for x in s)))
            print("... %d other realms measured (%.0f s so far): token %d bytes; %s" % (
                count, time.time() - began, len(tok["access_token"]), "; ".join(
                    "%s %d req (%d before), to hook %.0f ms, teardown %.0f ms, CPU %.0f ms" % (
                        r[1], r[2][0], r[2][3], r[3], r[5], r[6])
                    for r in rows if r[0] == count)), flush=True)
        report(rows, summary, failures, rounds)  # before the cleanup, which may be long
    except Failed as e:
        print("bench-real: FAILED: %s" % e)
        return 1
    finally:
        if proxy:
            proxy.stop()
        if not kc.owned:  # an external server is left as it was found
            kc.reset()
        kc.stop()
        subprocess.run(["rm", "-rf", workdir])
    print()
    print("bench-real: done in %.0f s" % (time.time() - began))
    return 0


def report(rows, summary, failures, rounds):
    print()
    print("per realm count: master admin token size, and the server's time to create the other realms")
    print("%7s %12s %26s" % ("others", "token bytes", "create ms/realm (median)"))
    for count, size, made, _ in summary:
        print("%7d %12d %26s" % (count, size, "%.0f" % statistics.median(made) if made else "-"))
    print()
    print("one cycle, median of %d interleaved rounds (max for to-hook); requests from one counted "
          "login cycle" % rounds)
    print("%7s %-20s %6s %5s %5s %10s %10s %10s %8s" % ("others", "tool", "before", "req", "conn",
                                                           "to hook ms", "(max)", "teardown", "CPU ms"))
    for count, name, (nreq, nconn, nbad, nbefore), hook, hook_max, down, cpu in rows:
        print("%7d %-20s %6d %5d %5d %10.0f %10.0f %10.0f %8.0f%s" % (
            count, name, nbefore, nreq, nconn, hook, hook_max, down, cpu,
            "  (%d answers >= 400)" % nbad if nbad else ""))
    print()
    print("to hook, against today's fresh create with the admin password (drone-deps password)")
    for count in sorted({r[0] for r in rows}):
        at = {r[1]: r[3] for r in rows if r[0] == count}
        base = at.get("drone-deps password")
        if not base:
            continue
        print("%7d  %s" % (count, "  ".join("%s %.0f%%" % (n, 100.0 * v / base)
                                             for n, v in at.items() if n != "drone-deps password")))
    for count, name, why in failures:
        print("%7d %-20s FAILED: %s" % (count, name, " | ".join(why.splitlines()[-4:])))


def java_version():
    p = subprocess.run(["java", "-version"], capture_output=True, text=True)
    line = (p.stderr or p.stdout).splitlines()
    return line[0].split('"')[1] if line and '"' in line[0] else "?"


if __name__ == "__main__":
    sys.exit(main())
