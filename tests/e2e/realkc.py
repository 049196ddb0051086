"""A real Keycloak for the end-to-end suites, the differential test and the
benchmarks: started with tools/keycloak.sh on a free loopback port (or an
external one from KEYCLOAK_URL and KEYCLOAK_ADMIN_PASSWORD), with the same
interface the suites use on the stand-in: url, reset(), realms(), seed(rep).

Only the Python standard library; the admin API is spoken with urllib.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYCLOAK_SH = os.path.join(ROOT, "tools", "keycloak.sh")
DEFAULT_PASSWORD = "Adm1n-Pa55word-e2e"


def port_pair_free(port):
    """True when PORT and PORT+1 (HTTP and management) can both be bound on
    loopback right now."""
    socks = []
    try:
        for p in (port, port + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port_pair():
    """Two free consecutive loopback ports. KEYCLOAK_PORT_RANGE=LOW-HIGH
    limits the search (machines where several suites share loopback give
    each its own range); otherwise the kernel picks one."""
    rng = os.environ.get("KEYCLOAK_PORT_RANGE")
    if rng:
        low, high = (int(x) for x in rng.split("-"))
        for port in range(low, high):
            if port_pair_free(port):
                return port
        raise RuntimeError("no two free consecutive ports in %s" % rng)
    # Below the kernel's ephemeral range (net.ipv4.ip_local_port_range,
    # 32768 and up by default): a port the kernel hands out picks nothing
    # of ours there, so a server stopped and started again on its port
    # (the restart test) finds it free, not taken by some outgoing
    # connection meanwhile ("Address already in use" was seen).
    low = 20000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = min(low, int(f.read().split()[0]) - 2000)
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = random.randrange(max(1024, low - 10000), low)
        if port_pair_free(port):
            return port
    raise RuntimeError("no two free consecutive ports found")


class Admin:
    """The master realm's admin API with one cached token, renewed before
    it expires and once on a 401 (the test set-up may shorten its life)."""

    def __init__(self, url, password, user="admin"):
        self.url = url.rstrip("/")
        self.user = user
        self.password = password
        self.token = None
        self.token_until = 0.0

    def login(self):
        form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
                                       "username": self.user, "password": self.password}).encode()
        req = urllib.request.Request(self.url + "/realms/master/protocol/openid-connect/token",
                                     data=form, method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            tok = json.load(r)
        self.token = tok["access_token"]
        life = int(tok.get("expires_in", 60))
        self.token_until = time.time() + (life - 5 if life > 10 else life / 2)
        return tok

    def raw(self, method, path, body=None, headers=None, bearer=True, timeout=120):
        """One call; returns (status, headers, parsed JSON or text or None)."""
        hdrs = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if bearer is True:
            if not self.token or time.time() >= self.token_until:
                self.login()
            hdrs["Authorization"] = "Bearer " + self.token
        elif bearer:
            hdrs["Authorization"] = "Bearer " + bearer
        hdrs.update(headers or {})
        hdrs = {k: v for k, v in hdrs.items() if v is not None}  # None: not sent
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, rh, text = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rh, text = e.code, e.headers, e.read()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        return status, rh, parsed

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        status, _, parsed = self.raw(method, path, body)
        if status == 401:
            self.token = None
            status, _, parsed = self.raw(method, path, body)
        if status not in ok:
            raise RuntimeError("%s %s: HTTP %d %s" % (method, path, status, str(parsed)[:300]))
        return parsed


class RealKeycloak:
    """One real Keycloak: its own instance (tools/keycloak.sh in a scratch
    folder, stopped by its pid in stop()), or the one of KEYCLOAK_URL."""

    has_log = False  # no request log, no fault knobs: those tests are stand-in only

    def __init__(self, quiet=False):
        self.dir = None
        self.pid = None
        self.start_ms = None
        external = os.environ.get("KEYCLOAK_URL")
        if external:
            password = os.environ.get("KEYCLOAK_ADMIN_PASSWORD")
            if not password:
                raise RuntimeError("KEYCLOAK_URL needs KEYCLOAK_ADMIN_PASSWORD")
            self.url = external.rstrip("/")
            self.password = password
        else:
            self.dir = tempfile.mkdtemp(prefix="keycloak-")
            self.password = os.environ.get("KEYCLOAK_ADMIN_PASSWORD", DEFAULT_PASSWORD)
            port = free_port_pair()
            try:
                p = subprocess.run(["sh", KEYCLOAK_SH, "start", os.path.join(self.dir, "kc"), str(port)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, KEYCLOAK_ADMIN_PASSWORD=self.password))
            except BaseException:  # stopped while it starts: no server outlives us
                self.stop()
                raise
            pid_file = os.path.join(self.dir, "kc", "pid")
            if os.path.exists(pid_file):
                self.pid = int(open(pid_file).read())
            if p.returncode != 0:
                self.stop()
                raise RuntimeError("tools/keycloak.sh start failed: " + p.stderr[-2000:])
            if not quiet:
                for line in p.stderr.splitlines():
                    print("# " + line, flush=True)
            self.url = p.stdout.strip().splitlines()[-1]
            self.start_ms = int(open(os.path.join(self.dir, "kc", "start_ms")).read())
        self.control = self.url  # as the stand-in's: its address by IP
        self.admin = Admin(self.url, self.password)
        self.lifespan = self.admin.call("GET", "/admin/realms/master")["accessTokenLifespan"]
        # On a server we did not start, the realms found there are not ours:
        # reset() never deletes them, whatever their name.
        self.found = set() if self.owned else {
            r["realm"] for r in self.admin.call("GET", "/admin/realms?briefRepresentation=true")}

    @property
    def owned(self):
        """True for an instance this process started (and may pause)."""
        return self.pid is not None

    def reset(self):
        """Every realm but master (and, on an external server, but those it
        had when we came) deleted; master's token lifespan back."""
        for r in self.admin.call("GET", "/admin/realms?briefRepresentation=true"):
            if r["realm"] != "master" and r["realm"] not in self.found:
                self.admin.call("DELETE", "/admin/realms/" + urllib.parse.quote(r["realm"], safe=""),
                                ok=(204, 404))
        if self.admin.call("GET", "/admin/realms/master")["accessTokenLifespan"] != self.lifespan:
            self.token_lifespan(self.lifespan)

    def realms(self):
        """{name: {realm, enabled, attributes, clients, users}}, the shape of
        the stand-in's /_stub/realms."""
        out = {}
        for r in self.admin.call("GET", "/admin/realms"):
            q = "/admin/realms/" + urllib.parse.quote(r["realm"], safe="")
            try:
                clients = [c["clientId"] for c in self.admin.call("GET", q + "/clients")]
                users = [u["username"] for u in self.admin.call("GET", q + "/users?max=1000")]
            except RuntimeError:
                if r["realm"] == "master":
                    raise
                continue  # deleted between the list and this read
            out[r["realm"]] = {"realm": r["realm"], "enabled": r.get("enabled"),
                               "attributes": r.get("attributes") or {},
                               "clients": clients, "users": users}
        return out

    def seed(self, rep):
        self.admin.call("POST", "/admin/realms", rep, ok=(201,))

    def token_lifespan(self, seconds):
        """The master realm's access token lifespan (admin tokens)."""
        self.admin.call("PUT", "/admin/realms/master", {"accessTokenLifespan": int(seconds)})
        self.admin.token = None

    def pause(self):
        """Freezes the server (SIGSTOP): connections are accepted by the
        kernel, nothing answers."""
        os.killpg(self.pid, signal.SIGSTOP)  # kc.sh leads the group of its java

    def resume(self):
        os.killpg(self.pid, signal.SIGCONT)

    def restart(self, down_seconds):
        """Stops the server and starts it again on the same port; with the
        in-memory database its realms are gone, master is made anew."""
        kc_dir = os.path.join(self.dir, "kc")
        subprocess.run(["sh", KEYCLOAK_SH, "stop", kc_dir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        time.sleep(down_seconds)
        port = self.url.rsplit(":", 1)[1]
        p = subprocess.run(["sh", KEYCLOAK_SH, "start", kc_dir, port], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, KEYCLOAK_ADMIN_PASSWORD=self.password))
        if p.returncode != 0:
            raise RuntimeError("tools/keycloak.sh could not start it again: " + p.stderr[-2000:])
        self.pid = int(open(os.path.join(kc_dir, "pid")).read())
        self.admin.token = None

    def stop(self):
        if self.dir is None:
            return
        subprocess.run(["sh", KEYCLOAK_SH, "stop", os.path.join(self.dir, "kc")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
