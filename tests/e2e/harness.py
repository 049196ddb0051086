"""End-to-end harness: drives the real drone-deps binary against the
Keycloak stand-in (tests/kcstub), or with KEYCLOAK_BACKEND=real against a
real Keycloak (tests/e2e/realkc.py), and reports one TAP-style line per test.

Every test is a function registered with @test("rule as README.md says it").
Before each test the stand-in is reset (all realms but master gone, knobs
back to defaults), and after it every process the test started is killed by
its pid or process group, so a failing test leaves nothing behind.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("DRONE_DEPS_BIN", os.path.join(ROOT, "build", "drone-deps")))
STUB = os.path.join(ROOT, "tests", "kcstub", "kcstub.py")
PYTHON = sys.executable
ADMIN_PASSWORD = "Adm1n-Pa55word-e2e"

_tests = []
# Set when DRONE_DEPS_BIN is a wrapper (valgrind): what the wrapper itself
# shows (its own command line) is not drone-deps'.
WRAPPED = os.environ.get("DRONE_DEPS_WRAPPED") == "1"


# stub: the stand-in (fault knobs, request log); real: a real Keycloak.
BACKEND = os.environ.get("KEYCLOAK_BACKEND", "stub")


def test(name, unwrapped_only=None, stub_only=None):
    """Registers a test. unwrapped_only: the reason it cannot run through a
    wrapper; stub_only: the reason it needs the stand-in (a fault knob, the
    request log). Either is reported as skipped (TAP "ok ... # SKIP why")
    where it applies, never as passed, and counted as a skip."""
    def register(fn):
        _tests.append((name, fn, unwrapped_only, stub_only))
        return fn
    return register


class Failure(Exception):
    pass


class NotRun(Exception):
    """Raised by a test that cannot run here (this server, no swarm);
    reported as skipped, "ok - name # SKIP why", neither passed nor failed."""


DOCKER = os.environ.get("DOCKER", "docker")


def docker(*args, check_rc=True, timeout=120):
    """The docker CLI's stdout; a failure (unless check_rc is False) fails
    the test with the CLI's message."""
    p = subprocess.run([DOCKER] + list(args), capture_output=True, text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise Failure("docker %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


def wait_until(cond, timeout, what):
    """Polls cond until it holds; fails with "what within timeout s"."""
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise Failure("%s within %d s" % (what, timeout))
        time.sleep(0.2)


PLUGIN_IMAGE = os.environ.get("PLUGIN_IMAGE", "drone-deps:test")


def run_plugin_container(name, rid, env):
    """Runs the plugin image as Drone would, with the socket mounted and
    env's PLUGIN_* settings; the caller removes the container."""
    args = ["run", "-d", "--name", name, "--network", "host", "--label", "drone-deps.run=%s" % rid,
            "-v", "/var/run/docker.sock:/var/run/docker.sock"]
    for k, v in env.items():
        if k.startswith("PLUGIN_"):
            args += ["-e", "%s=%s" % (k, v)]
    docker(*(args + [PLUGIN_IMAGE]))
    return name


def container_logs(name):
    p = subprocess.run([DOCKER, "logs", name], capture_output=True, text=True)
    return p.stdout + p.stderr


def watchdogs_of(rid):
    return docker("ps", "-aq", "--filter", "label=drone-deps.role=watchdog",
                  "--filter", "label=drone-deps.run=%s" % rid).split()


def watchdog_started(name, rid):
    """The watchdog runs: its container is up and the plugin logged its start.
    A container merely created (listed by ps -a) is not yet guarding: a kill
    between create and start leaves the run to its leases."""
    running = docker("ps", "-q", "--filter", "label=drone-deps.role=watchdog",
                     "--filter", "label=drone-deps.run=%s" % rid, "--filter", "status=running").split()
    return bool(running) and re.search(r"watchdog [0-9a-f]{12} started", container_logs(name))


def free_port():
    """A loopback port free now (the kernel's pick; closed again at once)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Stub:
    """One stand-in process on loopback; HTTP, or HTTPS with a cert."""

    has_log = True  # the request log and the fault knobs
    owned = True  # this process started it, and may pause it

    def __init__(self, tls_cert=None, tls_key=None, admin_password=ADMIN_PASSWORD):
        self.dir = tempfile.mkdtemp(prefix="kcstub-")
        self.tls_args = ["--tls-cert", tls_cert, "--tls-key", tls_key] if tls_cert else []
        self.log = open(os.path.join(self.dir, "stub.log"), "w")
        self.port = self._spawn(0, admin_password)
        self.tls = bool(tls_cert)
        self.password = admin_password
        self.url = "%s://localhost:%d" % ("https" if self.tls else "http", self.port)
        self.control = "http://127.0.0.1:%d" % self.port
        if self.tls:
            import ssl
            self._ctx = ssl.create_default_context()
            self._ctx.check_hostname = False
            self._ctx.verify_mode = ssl.CERT_NONE
            self.control = "https://127.0.0.1:%d" % self.port
        else:
            self._ctx = None

    def _spawn(self, port, admin_password):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        cmd = [PYTHON, STUB, "--port", str(port), "--port-file", port_file,
               "--admin-password", admin_password, "--quiet"] + self.tls_args
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the Keycloak stand-in did not start: " +
                                   open(os.path.join(self.dir, "stub.log")).read())
            time.sleep(0.02)
        return int(open(port_file).read().strip())

    def restart(self, down_seconds):
        """Stops the server, keeps it down, starts it again on the same
        port (its realms gone, as a real one with an in-memory database)."""
        self.proc.terminate()
        self.proc.wait(10)
        time.sleep(down_seconds)
        self._spawn(self.port, self.password)

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.control + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=self._ctx) as r:
            text = r.read()
            return json.loads(text) if text else None

    def reset(self):
        self._call("POST", "/_stub/reset", {})

    def config(self, **knobs):
        return self._call("POST", "/_stub/config", knobs)

    def realms(self):
        return {r["realm"]: r for r in self._call("GET", "/_stub/realms")}

    def seed(self, rep):
        self._call("POST", "/_stub/realms", rep)

    def requests(self):
        return self._call("GET", "/_stub/requests")

    def clear_requests(self):
        self._call("DELETE", "/_stub/requests")

    def token_lifespan(self, seconds):
        """The master realm's access token lifespan (admin tokens)."""
        self.config(token_lifespan=seconds)

    def pause(self):
        """Freezes the server (SIGSTOP): connections are accepted by the
        kernel, nothing answers."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Run:
    """One drone-deps process."""

    def __init__(self, proc, out_path, err_path):
        self.proc = proc
        self.out_path = out_path
        self.err_path = err_path
        self.code = None

    @property
    def pid(self):
        return self.proc.pid

    # Generous: a loaded real server answers in seconds, not milliseconds;
    # a hang still fails.
    def wait(self, timeout=300):
        self.code = self.proc.wait(timeout)
        return self

    @property
    def stdout(self):
        return open(self.out_path, errors="replace").read()

    @property
    def stderr(self):
        return open(self.err_path, errors="replace").read()

    @property
    def output(self):
        return self.stdout + self.stderr


class Context:
    """What a test gets: the shared stand-in, a scratch folder, and helpers
    that start drone-deps and remember what to clean up."""

    def __init__(self, stub):
        self.stub = stub
        self.dir = tempfile.mkdtemp(prefix="drone-deps-e2e-")
        self.procs = []
        self.pgids = []
        self.extra_stubs = []
        self.dropped_parts = []

    def dropped(self, part, why):
        """A part of the test this backend cannot check (the request log on
        a real server): reported as a test of its own, skipped, after the
        test's own line, so what was not checked is counted as a skip."""
        self.dropped_parts.append((part, why))

    def path(self, name):
        return os.path.join(self.dir, name)

    def settings(self, **extra):
        """PLUGIN_* environment for a warm run against the stand-in."""
        env = {
            "PLUGIN_DEPS": "keycloak",
            "PLUGIN_PARENT": "lasuite-drive",
            "PLUGIN_KEYCLOAK_URL": self.stub.url,
            "PLUGIN_KEYCLOAK_ADMIN_PASSWORD": self.stub.password,
            "PLUGIN_MODE": "warm",
            "PLUGIN_DOCKER_HOST": "unix://" + self.path("no-docker.sock"),
        }
        for k, v in extra.items():
            key = "PLUGIN_" + k.upper()
            if v is None:
                env.pop(key, None)
            else:
                env[key] = str(v)
        return env

    def start(self, env, args=(), base_env=None, ignore_signals=()):
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                full[k] = os.environ[k]
        if base_env:
            full.update(base_env)
        full.update(env)
        n = len(self.procs)
        out_path, err_path = self.path("out.%d" % n), self.path("err.%d" % n)
        with open(out_path, "w") as out, open(err_path, "w") as err:
            def preexec():
                for signo in ignore_signals:  # as a shell's background job starts
                    signal.signal(signo, signal.SIG_IGN)
            proc = subprocess.Popen([BIN] + list(args), env=full, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, cwd=self.dir,
                                    preexec_fn=preexec if ignore_signals else None)
        run = Run(proc, out_path, err_path)
        self.procs.append(run)
        return run

    def run(self, env, args=(), timeout=300, base_env=None):
        return self.start(env, args, base_env).wait(timeout)

    def hook_pgid_file(self):
        """A path the hook writes its process group id to, so cleanup can
        kill a hook that outlives a SIGKILLed drone-deps."""
        p = self.path("hook.pgid")
        self.pgids.append(p)
        return p

    def wait_for_file(self, path, timeout=20, run=None):
        """Waits for a file the hook writes; gives up early when the
        drone-deps run it belongs to has already exited."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path) and os.path.getsize(path) > 0:
                return open(path).read()
            if run is not None and run.proc.poll() is not None:
                raise Failure("drone-deps exited %s before %s appeared" %
                              (run.proc.returncode, os.path.basename(path)))
            time.sleep(0.02)
        raise Failure("%s did not appear within %d s" % (os.path.basename(path), timeout))

    def cleanup(self):
        for run in self.procs:
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
        for p in self.pgids:
            try:
                os.killpg(int(open(p).read().split()[0]), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
        for s in self.extra_stubs:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def sanitizer_report(run):
    err = run.stderr
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if marker in err:
            return err[err.index(marker) - 200 if err.index(marker) > 200 else 0:][:3000]
    return None


def read_env_file(path):
    env = {}
    for line in open(path):
        line = line.rstrip("\n")
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def start_backend():
    if BACKEND == "stub":
        return Stub()
    if BACKEND == "real":
        from realkc import RealKeycloak
        return RealKeycloak()
    raise SystemExit("KEYCLOAK_BACKEND must be stub or real, not %r" % BACKEND)


def on_stop_signal(signo, frame):
    # Unwinds through main's finally, which stops the server it started.
    raise SystemExit(128 + signo)


def selected(only):
    """The registered tests a selection picks (all for none), and the words
    that pick no test: a mistyped word must not pass for a green run, even
    beside words that match."""
    if not only:
        return list(_tests), []
    picked = [t for t in _tests if any(o in t[0] for o in only)]
    unmatched = [o for o in only if not any(o in t[0] for t in _tests)]
    return picked, unmatched


def skip(name, why):
    print("ok - %s # SKIP %s" % (name, why), flush=True)


def main():
    only = sys.argv[1:]
    if only[:1] == ["--list"]:
        # the names a selection picks, and no test run (tests/mutants checks its words)
        picked, unmatched = selected(only[1:])
        for t in picked:
            print(t[0])
        for o in unmatched:
            print("no test's name contains %r" % o)
        return 1 if unmatched else 0
    picked, unmatched = selected(only)
    for signo in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signo, on_stop_signal)
    stub = None
    passed = failed = skipped = 0
    for o in unmatched:
        print("not ok - selection word %r: no test's name contains it" % o, flush=True)
        failed += 1
    try:
        if not picked:
            return 1
        stub = start_backend()
        print("# backend: %s at %s" % (BACKEND, stub.url), flush=True)
        for name, fn, unwrapped_only, stub_only in picked:
            if WRAPPED and unwrapped_only:
                skip(name, "under a wrapper: %s" % unwrapped_only)
                skipped += 1
                continue
            if stub_only and not stub.has_log:
                skip(name, "not run on the real server: %s" % stub_only)
                skipped += 1
                continue
            stub.reset()
            ctx = Context(stub)
            start = time.time()
            try:
                try:
                    fn(ctx)
                except NotRun as e:
                    skip(name, "not run here: %s" % e)
                    skipped += 1
                    continue
                bad = None
                for run in ctx.procs:
                    bad = bad or sanitizer_report(run)
                if bad:
                    raise Failure("sanitizer report:\n" + bad)
                print("ok - %s (%.1f s)" % (name, time.time() - start), flush=True)
                passed += 1
                for part, why in ctx.dropped_parts:
                    skip("%s: %s" % (name, part), why)
                    skipped += 1
            except Exception as e:  # every failure is reported, none stops the run
                print("not ok - %s" % name, flush=True)
                text = str(e) if isinstance(e, Failure) else traceback.format_exc()
                for line in text.splitlines():
                    print("#   " + line)
                for i, run in enumerate(ctx.procs[-2:]):
                    for line in run.output.splitlines()[-15:]:
                        print("#   [run %d] %s" % (i, line))
                failed += 1
            finally:
                ctx.cleanup()
        stub.reset()  # an external server is left as it was found
    finally:
        if stub is not None:
            stub.stop()
        print("# e2e: %d passed, %d failed, %d skipped (binary %s, %s backend)" %
              (passed, failed, skipped, BIN, BACKEND), flush=True)
    return 1 if failed else 0
