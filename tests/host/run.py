#!/usr/bin/env python3
"""A Co-op Cloud host in a box: the README's first screen, exactly as
written, under Drone's own `drone exec`, against a real Traefik (built from
the Go module proxy by tools/traefik.sh) running as a swarm service on the
`proxy` overlay, real Keycloak instances (warm and cold) and TLS from a CA
made here with openssl.

  - Traefik: the swarm provider with exposedByDefault=false, entrypoints
    web (redirects to https) and web-secure, 443 and 80 published in host
    mode (no routing mesh here). No certificate resolver can reach ACME
    here: the file provider's default TLS store serves the test CA's
    certificate for *.<domain>, and the routers keep the
    certresolver=production drone-deps' labels name (Traefik logs that it
    does not know the resolver, and serves the default certificate).
  - names resolve as on a host: the test's domains resolve to the loopback
    on the host (/etc/hosts lines, removed at the end) and in the steps
    (extra_hosts). Nothing sets keycloak_url, cold_url, a publish port,
    parent or run_id.
  - action warm with warm_ci_client, Traefik labels only; then the recipe's
    step with deps, domain, ca_cert and keycloak_client_secret: the hook
    logs in through https://warm-keycloak.<domain>, and the token's iss,
    DEPS_KEYCLOAK_ISSUER and the discovery document's issuer agree; the
    same for a cold deploy (mode cold, and auto with no warm instance); a
    wrong CA exits 69 naming ca_cert; insecure binds and says so.
  - run ids as a Drone server derives them: a runner sets the build, stage
    and step variables from its own state after the step's environment
    (drone exec: always build 0, stage 0), so these tests start the plugin
    image as a server's runner does, with DRONE_REPO, DRONE_REPO_NAME,
    DRONE_BUILD_NUMBER, DRONE_STAGE_NUMBER, DRONE_STEP_NAME and
    DRONE_STEP_NUMBER set as the server sets them: two builds of one
    repository and two repositories with the same build number never meet;
    up and down (under drone exec) find one realm through env_file.
  - disk stays flat: after 20 warm and 5 cold runs (killed ones included)
    the volume, container, network and secret counts and the sizes of
    `docker system df` are back where they started, warm instance aside.

Usage: tests/host/run.py [IMAGE] [WORD...]   (IMAGE default drone-deps:test;
WORDs select tests by name, the set-up always runs). Needs a swarm manager
(make docker-up), the Keycloak image (make keycloak-image), Drone's runner
(make runners), Traefik (make traefik), openssl, root (/etc/hosts) and the
host's ports 80 and 443 free. Everything it makes is removed at the end,
even on failure: services, secrets, volumes, networks, containers,
/etc/hosts lines, files. Output: one "ok - name" / "not ok - name" line
per test ("# SKIP why" when it cannot run)."""
import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIPELINES = os.path.join(ROOT, "testdata", "pipelines", "host")
DOCKER = os.environ.get("DOCKER", "docker")
ARGS = sys.argv[1:]
IMAGE = ARGS.pop(0) if ARGS and ":" in ARGS[0] else os.environ.get("PLUGIN_IMAGE", "drone-deps:test")
ONLY = ARGS
BUSYBOX = os.environ.get("BUSYBOX_BASE", "drone-deps-base/busybox:bookworm")
KEYCLOAK_IMAGE = re.search(r'#define KEYCLOAK_IMAGE_DEFAULT "([^"]+)"',
                           open(os.path.join(ROOT, "plugin", "config.h")).read()).group(1)
TAG = secrets.token_hex(3)
DOMAIN = "ci-%s.test" % TAG            # the warm instance's
NOWARM = "ci-%s-nowarm.test" % TAG     # no warm instance: auto goes cold
WARM_HOST = "warm-keycloak." + DOMAIN
STACK = WARM_HOST.replace(".", "_")
TRAEFIK_SERVICE = "ci-%s_traefik" % TAG
HOSTS_MARK = "# drone-deps host suite " + TAG
# A Keycloak start takes 30-60 s alone on 2 cores, minutes when busy.
RUN_WAIT = int(os.environ.get("HOST_RUN_WAIT", "900"))
WORK = tempfile.mkdtemp(prefix="drone-deps-host-")
CA = os.path.join(WORK, "ca.pem")
WRONG_CA = os.path.join(WORK, "wrong-ca.pem")

state = {"containers": [], "proxy_made": False, "run_ids": set(), "workspaces": [], "warm_runs": 0,
         "cold_runs": 0, "baseline": None, "ci_secret": None, "drone": None}
procs = []


def log(msg):
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


def sh(*args, check=True, timeout=300, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise Failure("%s: exit %d: %s" % (" ".join(args[:4]), r.returncode, (r.stderr or r.stdout)[-600:]))
    return r


def docker(*args, check=True, timeout=300):
    return sh(DOCKER, *args, check=check, timeout=timeout).stdout


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def wait_until(cond, timeout, what, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise Failure("%s: not within %d s" % (what, timeout))


# ---- the run id as drone-deps derives it (plugin/naming.c) -----------------

def run_id(repo, build, stage, step):
    """FNV-1a 64 over repo, build, stage and step name, each followed by a
    newline; the top 24 bits as six hex digits."""
    h = 14695981039346656037
    for part in (repo, build, stage, step):
        for b in part.encode() + b"\n":
            h ^= b
            h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%06x" % ((h >> 40) & 0xFFFFFF)


# ---- TLS: a CA made here, and a wrong one -------------------------------------

def make_ca():
    tls = os.path.join(WORK, "tls")
    os.makedirs(tls)
    for name in ("ca", "wrong-ca"):
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
           "-subj", "/CN=drone-deps host suite %s %s" % (name, TAG),
           "-keyout", os.path.join(WORK, name + ".key"), "-out", os.path.join(WORK, name + ".pem"))
    sans = "subjectAltName=DNS:*.%s,DNS:%s,DNS:*.%s,DNS:%s" % (DOMAIN, DOMAIN, NOWARM, NOWARM)
    with open(os.path.join(WORK, "ext.cnf"), "w") as f:
        f.write(sans + "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=*.%s" % DOMAIN,
       "-keyout", os.path.join(tls, "cert.key"), "-out", os.path.join(WORK, "cert.csr"))
    sh("openssl", "x509", "-req", "-in", os.path.join(WORK, "cert.csr"), "-days", "2",
       "-CA", CA, "-CAkey", os.path.join(WORK, "ca.key"), "-CAcreateserial",
       "-extfile", os.path.join(WORK, "ext.cnf"), "-out", os.path.join(tls, "cert.pem"))
    # The file provider's default TLS store: the certificate a router gets
    # when no resolver gave it one (here: always).
    with open(os.path.join(tls, "dynamic.yml"), "w") as f:
        f.write("tls:\n  stores:\n    default:\n      defaultCertificate:\n"
                "        certFile: /etc/traefik/tls/cert.pem\n"
                "        keyFile: /etc/traefik/tls/cert.key\n")
    os.chmod(tls, 0o755)
    for n in os.listdir(tls):
        os.chmod(os.path.join(tls, n), 0o644)
    return tls


# ---- names resolve as on a host ---------------------------------------------

def hosts_add(*names):
    with open("/etc/hosts", "a") as f:
        for n in names:
            f.write("127.0.0.1 %s %s\n" % (n, HOSTS_MARK))


def hosts_clean():
    try:
        with open("/etc/hosts") as f:
            lines = f.readlines()
        kept = [ln for ln in lines if HOSTS_MARK not in ln]
        if len(kept) != len(lines):
            # rewritten in place: /etc/hosts may be a bind mount
            with open("/etc/hosts", "w") as f:
                f.writelines(kept)
    except OSError as e:
        log("could not clean /etc/hosts: %s" % e)


# ---- HTTPS as the host sees it -------------------------------------------------

def https_get(url, ca=CA, timeout=30):
    ctx = ssl.create_default_context(cafile=ca)
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def served_cert(host):
    """The certificate Traefik serves on 127.0.0.1:443 for SNI host, checked
    against the test CA."""
    ctx = ssl.create_default_context(cafile=CA)
    with socket.create_connection(("127.0.0.1", 443), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=host) as t:
            return t.getpeercert()


def issuer_of(base, realm):
    code, body = https_get("%s/realms/%s/.well-known/openid-configuration" % (base, realm))
    return json.loads(body)["issuer"] if code == 200 else None


def realm_status(base, realm):
    try:
        return https_get("%s/realms/%s" % (base, realm))[0]
    except (OSError, ssl.SSLError) as e:
        return str(e)


# ---- drone exec ------------------------------------------------------------

class DroneRun:
    def __init__(self, pipeline, domain=DOMAIN, repo="ci/app", tls=None,
                 hook_args="", names=(), secret=True):
        self.ws = tempfile.mkdtemp(prefix="ws-", dir=WORK)
        state["workspaces"].append(self.ws)
        shutil.copytree(os.path.join(PIPELINES, "tests"), os.path.join(self.ws, "tests"))
        shutil.copy(CA, os.path.join(self.ws, "ca.pem"))
        shutil.copy(WRONG_CA, os.path.join(self.ws, "wrong-ca.pem"))
        self.repo, self.domain = repo, domain
        # drone exec's runner sets the build, stage and step variables from
        # its own state (build 0, stage 0), over the step's environment
        self.id = run_id(repo, "0", "0", "deps")
        state["run_ids"].add(self.id)
        hosts = ["warm-keycloak." + domain, "keyc-%s.%s" % (self.id, domain)] + list(names)
        text = open(os.path.join(PIPELINES, ".drone.yml")).read()
        for k, v in {"@IMAGE@": IMAGE, "@BUSYBOX@": BUSYBOX, "@DOMAIN@": domain,
                     "@EXTRA_HOSTS@": json.dumps(["%s:127.0.0.1" % h for h in hosts]),
                     "@TLS@": tls or "ca_cert: ca.pem", "@REPO@": repo,
                     "@REPO_NAME@": repo.split("/")[-1],
                     "@HOOK_ARGS@": hook_args}.items():
            text = text.replace(k, v)
        with open(os.path.join(self.ws, "pipeline.yml"), "w") as f:
            f.write(text)
        self.secrets = os.path.join(self.ws, ".secrets")
        with open(os.open(self.secrets, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            if secret and state["ci_secret"]:
                f.write("warm_keycloak_ci_secret=%s\n" % state["ci_secret"])
        self.log = os.path.join(self.ws, "drone.log")
        self.out = open(self.log, "w")
        self.proc = subprocess.Popen(
            [state["drone"], "exec", "--trusted", "--pretty=false", "--secret-file", self.secrets,
             "--pipeline", pipeline, "pipeline.yml"],
            cwd=self.ws, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(self.proc)
        self.t0 = int(time.time()) - 1
        self.rc = None

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait(self, timeout=RUN_WAIT):
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.rc = self.proc.wait()
            log(self.text()[-3000:])
            raise Failure("drone exec did not end within %d s" % timeout)
        self.out.close()
        return self.rc

    def wait_for(self, pattern, timeout=RUN_WAIT):
        wait_until(lambda: re.search(pattern, self.text()) or self.proc.poll() is not None,
                   timeout, "the run to print %r" % pattern)
        check(re.search(pattern, self.text()), "the run ended before %r:\n%s" % (pattern, self.text()[-3000:]))

    def step_exit(self, step="deps"):
        """The exit status of the step's container (drone exec only says 1):
        from the engine's die event."""
        out = docker("events", "--since", str(self.t0), "--until", str(int(time.time()) + 1),
                     "--filter", "label=io.drone.desktop.pipeline.dir=" + self.ws,
                     "--filter", "label=io.drone.step.name=" + step, "--filter", "event=die",
                     "--format", '{{index .Actor.Attributes "exitCode"}}')
        return out.split()[-1] if out.split() else None

    def realm(self):
        m = re.search(r"bound keycloak \((warm|cold)\): realm (\S+) at (\S+)", self.text())
        check(m, "no binding in the log:\n" + self.text()[-3000:])
        return m.group(1), m.group(2), m.group(3)

    def leftovers(self):
        label = "label=io.drone.desktop.pipeline.dir=" + self.ws
        return (docker("ps", "-aq", "--filter", label) + docker("network", "ls", "-q", "--filter", label)
                + docker("volume", "ls", "-q", "--filter", label)
                + docker("ps", "-aq", "--filter", "label=drone-deps.run=" + self.id)).split()


def no_leftovers(run, timeout=60):
    """Nothing of the run within a while: the runner removes its containers
    as it exits, a watchdog ends after the teardown it watched."""
    try:
        wait_until(lambda: not run.leftovers(), timeout, "the run's containers to go")
    except Failure:
        raise Failure("left after %d s: %s" % (timeout, run.leftovers()))


def passed_run(run, what):
    rc = run.wait()
    check(rc == 0, "%s: drone exec exited %d:\n%s" % (what, rc, run.text()[-4000:]))


# ---- the suite's objects ---------------------------------------------------

def cold_services():
    out = docker("service", "ls", "--format", "{{.Name}}", check=False)
    return [n for n in out.split() if any(n == "keyc-" + i for i in state["run_ids"])]


def cold_secrets():
    out = docker("secret", "ls", "--format", "{{.Name}}", check=False)
    return [n for n in out.split() if any(n.startswith("keyc-%s_" % i) for i in state["run_ids"])]


def cleanup():
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                p.kill()
    for name in state["containers"]:
        docker("rm", "-f", name, check=False)
    for ws in state["workspaces"]:
        label = "label=io.drone.desktop.pipeline.dir=" + ws
        ids = docker("ps", "-aq", "--filter", label, check=False).split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        for kind in ("network", "volume"):
            ids = docker(kind, "ls", "-q", "--filter", label, check=False).split()
            if ids:
                docker(kind, "rm", *ids, check=False)
    for i in state["run_ids"]:
        ids = docker("ps", "-aq", "--filter", "label=drone-deps.run=" + i, check=False).split()
        if ids:
            docker("rm", "-f", *ids, check=False)
    services = cold_services() + [STACK + "_app", TRAEFIK_SERVICE]
    docker("service", "rm", *services, check=False)
    gone = lambda: not any(docker("ps", "-aq", "--filter", "label=com.docker.swarm.service.name=" + s,
                                  check=False).split() for s in services)
    try:
        wait_until(gone, 120, "the suite's tasks to go")
    except Failure as e:
        log(str(e))
    secrets_ = cold_secrets() + [n for n in docker("secret", "ls", "--format", "{{.Name}}", check=False).split()
                                 if n.startswith(STACK + "_")]
    if secrets_:
        docker("secret", "rm", *secrets_, check=False)
    for _ in range(60):
        if subprocess.run([DOCKER, "volume", "rm", STACK + "_data"], capture_output=True).returncode == 0 \
                or STACK + "_data" not in docker("volume", "ls", "-q", check=False).split():
            break
        time.sleep(1)
    if state["proxy_made"]:
        for _ in range(120):
            if subprocess.run([DOCKER, "network", "rm", "proxy"], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
    hosts_clean()
    shutil.rmtree(WORK, ignore_errors=True)


def on_signal(signo, frame):
    sys.exit(128 + signo)


# ---- set-up ------------------------------------------------------------------

def setup():
    if os.geteuid() != 0:
        raise Skip("needs root (/etc/hosts, the Docker socket)")
    if not shutil.which("openssl"):
        raise Skip("no openssl")
    info = json.loads(docker("info", "--format", "{{json .Swarm}}"))
    if info.get("LocalNodeState") != "active" or not info.get("ControlAvailable"):
        raise Skip("this Docker engine is not a swarm manager (make docker-up)")
    for image in (IMAGE, KEYCLOAK_IMAGE, BUSYBOX):
        if subprocess.run([DOCKER, "image", "inspect", image], capture_output=True).returncode:
            raise Failure("the image %s exists (make image keycloak-image base-images)" % image)
    r = sh(os.path.join(ROOT, "tools", "runners.sh"), "path", "drone", check=False)
    if r.returncode:
        raise Failure("drone exec is built (make runners): " + r.stderr.strip())
    state["drone"] = r.stdout.strip()
    traefik = sh(os.path.join(ROOT, "tools", "traefik.sh"), "image").stdout.strip()
    if subprocess.run([DOCKER, "image", "inspect", traefik], capture_output=True).returncode:
        raise Failure("the Traefik image %s exists (make traefik)" % traefik)
    for port in (80, 443):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise Skip("something already listens on the host's port %d" % port)
    tls = make_ca()
    hosts_add(WARM_HOST, "warm-keycloak." + NOWARM)
    if "proxy" not in docker("network", "ls", "--format", "{{.Name}}").split():
        docker("network", "create", "--driver", "overlay", "--attachable",
               "--label", "drone-deps.host-suite=" + TAG, "proxy")
        state["proxy_made"] = True
    # Co-op Cloud's Traefik, in the flags of its static configuration.
    docker("service", "create", "--detach", "--name", TRAEFIK_SERVICE, "--network", "proxy",
           "--label", "drone-deps.host-suite=" + TAG,
           # Go 1.25 and later refuse a TLS 1.2 ClientHello without
           # signature_algorithms, which BusyBox 1.35's wget (the hook's, in
           # the plugin image) never sends: Traefik 3.6 (Go 1.25) refuses
           # the README's hook unless told to accept SHA-1 peers.
           "--env", "GODEBUG=tlssha1=1",
           "--publish", "mode=host,target=443,published=443",
           "--publish", "mode=host,target=80,published=80",
           "--mount", "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock,readonly",
           "--mount", "type=bind,src=%s,dst=/etc/traefik/tls,readonly" % tls,
           "--constraint", "node.role==manager", traefik,
           "--log.level=INFO",
           "--providers.swarm.endpoint=unix:///var/run/docker.sock",
           "--providers.swarm.exposedByDefault=false",
           "--providers.swarm.network=proxy",
           # the default polls every 15 s: a cold run's router comes sooner
           "--providers.swarm.refreshSeconds=2s",
           "--providers.file.filename=/etc/traefik/tls/dynamic.yml",
           "--entrypoints.web.address=:80",
           "--entrypoints.web.http.redirections.entrypoint.to=web-secure",
           "--entrypoints.web.http.redirections.entrypoint.scheme=https",
           "--entrypoints.web-secure.address=:443")

    def up():
        try:
            return served_cert(WARM_HOST)
        except (OSError, ssl.SSLError):
            return None
    cert = wait_until(up, 180, "Traefik to serve TLS on 127.0.0.1:443")
    sans = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    log("traefik: %s serves %s, issued by the test CA" % (traefik, sans))


# ---- the tests, in order ------------------------------------------------

TESTS = []


def test(name):
    def wrap(fn):
        TESTS.append((name, fn))
        return fn
    return wrap


@test("traefik: serves the test CA's certificate for *.<domain> on 443 (host mode), 80 redirects to https")
def traefik_tls():
    cert = served_cert("anything." + DOMAIN)
    check(("DNS", "*." + DOMAIN) in cert["subjectAltName"], "served %s" % (cert["subjectAltName"],))
    r = sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
           "http://%s/realms/master" % WARM_HOST, check=False)
    check(r.stdout.split()[0] in ("301", "302", "307", "308")
          and r.stdout.split()[1].startswith("https://%s/" % WARM_HOST), "port 80 answered %r" % r.stdout)
    spec = json.loads(docker("service", "inspect", TRAEFIK_SERVICE))[0]["Endpoint"]["Spec"]
    check(all(p.get("PublishMode") == "host" for p in spec["Ports"]), "ports %s" % spec["Ports"])


@test("first screen, step 1: action warm with warm_ci_client deploys warm-keycloak behind Traefik (labels only)")
def warm_action():
    run = DroneRun("warm", names=())
    t0 = time.time()
    passed_run(run, "action warm")
    log("action warm took %d s" % (time.time() - t0))
    path = os.path.join(run.ws, "ci-secret")
    check(os.path.isfile(path) and os.stat(path).st_mode & 0o777 == 0o600, "no 0600 ci-secret file")
    # the README's first screen hands Drone the file's last line (tail -n 1):
    # its first is drone-deps' mark line
    state["ci_secret"] = (open(path).read().strip().splitlines() or [""])[-1]
    check(state["ci_secret"], "the ci-secret file is empty")
    spec = json.loads(docker("service", "inspect", STACK + "_app"))[0]["Spec"]
    check(not spec.get("EndpointSpec", {}).get("Ports"), "a published port: %s" % spec.get("EndpointSpec"))
    labels = spec["Labels"]
    check(labels.get("traefik.http.routers.%s.tls.certresolver" % STACK) == "production", labels)
    check(labels.get("traefik.docker.network") == "proxy", labels)
    iss = issuer_of("https://" + WARM_HOST, "master")
    log("discovery through Traefik: issuer %s" % iss)
    check(iss == "https://%s/realms/master" % WARM_HOST, "issuer %r" % iss)


@test("traefik: certresolver=production is unknown to it: it logs so and serves the default certificate")
def unknown_resolver():
    logs = sh(DOCKER, "service", "logs", "--raw", TRAEFIK_SERVICE, check=False)
    logs = logs.stdout + logs.stderr
    # the router of this suite's warm instance (Traefik sees every
    # service on the swarm)
    m = [ln for ln in logs.splitlines() if "nonexistent certificate resolver" in ln and STACK in ln]
    check(m, "no word of the unknown resolver in Traefik's log:\n" + logs[-2000:])
    log("traefik says: " + m[0][:300])
    cert = served_cert(WARM_HOST)
    check(("DNS", "*." + DOMAIN) in cert["subjectAltName"], "served %s" % (cert["subjectAltName"],))


def baseline():
    """What the engine holds: counts and sizes, the warm instance aside."""
    def names(*cmd):
        return set(docker(*cmd).split())
    df = {}
    for row in docker("system", "df", "--format", "{{json .}}").splitlines():
        d = json.loads(row)
        df[d["Type"]] = (d["TotalCount"], d["Size"])
    vols = json.loads(docker("system", "df", "-v", "--format", "{{json .}}"))["Volumes"] or []
    other_vols = sorted((v["Name"], v["Size"]) for v in vols if v["Name"] != STACK + "_data")
    return {"volumes": names("volume", "ls", "-q"), "containers": names("ps", "-aq"),
            "networks": names("network", "ls", "-q"), "secrets": names("secret", "ls", "-q"),
            "df": df, "other_volume_sizes": other_vols}


@test("first screen, step 2: deps, domain, ca_cert, keycloak_client_secret bind through https://warm-keycloak.<domain>; iss == DEPS_KEYCLOAK_ISSUER == discovery issuer")
def recipe_warm():
    check(state["ci_secret"], "no CI secret (action warm failed)")
    state["baseline"] = state["baseline"] or baseline()
    run = DroneRun("recipe", repo="ci/first")
    passed_run(run, "the recipe's pipeline")
    state["warm_runs"] += 1
    mode, realm, url = run.realm()
    check((mode, url) == ("warm", "https://" + WARM_HOST), "bound %s at %s" % (mode, url))
    check(realm == "first-" + run.id, "realm %s, want first-%s" % (realm, run.id))
    text = run.text()
    check("the three issuers agree" in text, "the hook:\n" + text[-3000:])
    iss = re.search(r"hook: token iss (\S+)", text).group(1)
    log("token iss            %s" % iss)
    log("DEPS_KEYCLOAK_ISSUER %s" % re.search(r"hook: DEPS_KEYCLOAK_ISSUER (\S+)", text).group(1))
    log("discovery issuer     %s" % re.search(r"hook: discovery issuer (\S+)", text).group(1))
    check(iss == "https://%s/realms/%s" % (WARM_HOST, realm), "iss %s" % iss)
    check(realm_status("https://" + WARM_HOST, realm) == 404, "the realm is still there")
    no_leftovers(run)


@test("TLS: a wrong CA exits 69 and names ca_cert; nothing is made")
def wrong_ca():
    run = DroneRun("recipe", repo="ci/wrongca", tls="ca_cert: wrong-ca.pem")
    rc = run.wait()
    state["warm_runs"] += 1
    text = run.text()
    code = run.step_exit()
    for ln in text.splitlines():
        if "ERROR" in ln or "error" in ln:
            log("wrong CA: " + ln[:600])
    check(rc != 0, "drone exec passed")
    check(code == "69", "the step exited %s:\n%s" % (code, text[-3000:]))
    check(re.search(r"no warm Keycloak answers at https://%s .*ca_cert" % re.escape(WARM_HOST), text),
          "no word of ca_cert:\n" + text[-3000:])
    check(not cold_services(), "a cold service was deployed: %s" % cold_services())
    no_leftovers(run)


@test("TLS: insecure binds with certificate checks off and says so loudly")
def insecure():
    run = DroneRun("recipe", repo="ci/insecure", tls="insecure: true")
    passed_run(run, "insecure")
    state["warm_runs"] += 1
    text = run.text()
    m = [ln for ln in text.splitlines() if "NOT checked" in ln]
    check(m, "no warning:\n" + text[-3000:])
    log("insecure: " + m[0][:300])
    check("the three issuers agree" in text, text[-3000:])


class ServerRun:
    """The plugin step as a Drone server's runner starts it: the plugin
    image with the settings as PLUGIN_* and the variables the server sets
    for the build, stage and step. drone exec cannot stand in here: its
    runner sets DRONE_BUILD_NUMBER, DRONE_STAGE_NUMBER and the step's
    variables from its own state (always build 0, stage 0) after the
    step's environment, so `environment:` cannot change them."""

    def __init__(self, repo, build, stage="1", step="deps", step_number="2", hook_args=""):
        self.ws = tempfile.mkdtemp(prefix="srv-", dir=WORK)
        shutil.copytree(os.path.join(PIPELINES, "tests"), os.path.join(self.ws, "tests"))
        shutil.copy(CA, os.path.join(self.ws, "ca.pem"))
        self.repo, self.build = repo, build
        self.id = run_id(repo, build, stage, step)
        state["run_ids"].add(self.id)
        self.name = "drone-deps-host-%s-%s" % (TAG, self.id)
        state["containers"].append(self.name)
        env = {"DRONE": "true", "CI": "true", "DRONE_REPO": repo, "DRONE_REPO_NAME": repo.split("/")[-1],
               "DRONE_REPO_OWNER": repo.split("/")[0], "DRONE_BUILD_NUMBER": build,
               "DRONE_STAGE_NUMBER": stage, "DRONE_STEP_NAME": step, "DRONE_STEP_NUMBER": step_number,
               "DRONE_WORKSPACE": "/drone/src", "PLUGIN_DEPS": "keycloak", "PLUGIN_DOMAIN": DOMAIN,
               "PLUGIN_CA_CERT": "ca.pem", "PLUGIN_KEYCLOAK_CLIENT_SECRET": state["ci_secret"],
               "PLUGIN_HOOK": ("./tests/login.sh " + hook_args).strip()}
        args = [DOCKER, "run", "--name", self.name, "--network", "host",
                "--add-host", WARM_HOST + ":127.0.0.1",
                "-v", "/var/run/docker.sock:/var/run/docker.sock",
                "-v", self.ws + ":/drone/src", "-w", "/drone/src"]
        for k in env:
            args += ["-e", k]
        self.log = os.path.join(WORK, self.name + ".log")
        self.out = open(self.log, "w")
        self.proc = subprocess.Popen(args + [IMAGE], env=dict(os.environ, **env), stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(self.proc)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    wait_for = DroneRun.wait_for
    realm = DroneRun.realm

    def wait(self, timeout=RUN_WAIT):
        rc = self.proc.wait(timeout)
        docker("rm", "-f", self.name, check=False)
        return rc


@test("run ids: two builds of one repository, bound at once, never meet (the server's DRONE_* variables)")
def two_builds():
    repo = "ci/app-" + TAG
    runs = [ServerRun(repo, b, hook_args="hold") for b in ("7", "8")]
    for r in runs:
        r.wait_for("hook: holding", 300)
    realms = [r.realm()[1] for r in runs]
    log("%s build 7: %s, build 8: %s" % (repo, realms[0], realms[1]))
    check(realms == ["app-%s-%s" % (TAG, r.id) for r in runs], "realms %s" % realms)
    check(realms[0] != realms[1], "one realm for two builds")
    for realm in realms:
        check(realm_status("https://" + WARM_HOST, realm) == 200, "%s is not there" % realm)
    # cancelled as Drone cancels: the step's container killed outright
    for r in runs:
        docker("kill", "-s", "KILL", r.name, check=False)
    for r in runs:
        r.wait(120)
        state["warm_runs"] += 1
    for realm in realms:
        wait_until(lambda: realm_status("https://" + WARM_HOST, realm) == 404, 120,
                   "the watchdog to delete %s" % realm)


@test("run ids: two repositories with the same build number, at once, never meet")
def two_repos():
    runs = [ServerRun("ci/%s-%s" % (n, TAG), "7") for n in ("one", "two")]
    for r in runs:
        rc = r.wait()
        state["warm_runs"] += 1
        check(rc == 0, "%s: exit %d:\n%s" % (r.repo, rc, r.text()[-3000:]))
    realms = [r.realm()[1] for r in runs]
    log("%s: %s, %s: %s" % (runs[0].repo, realms[0], runs[1].repo, realms[1]))
    check(runs[0].id != runs[1].id and realms[0] != realms[1], "they met: %s" % realms)
    check(all("the three issuers agree" in r.text() for r in runs), "a login failed")


@test("run ids: up and down in one build (steps 1 and 3) find one realm")
def up_down():
    run = DroneRun("up-down", repo="ci/updown-" + TAG)
    passed_run(run, "up-down")
    state["warm_runs"] += 1
    env = dict(ln.split("=", 1) for ln in open(os.path.join(run.ws, "deps.env")).read().splitlines()
               if "=" in ln)
    realm, rid = env.get("DEPS_KEYCLOAK_REALM"), env.get("DEPS_RUN_ID")
    text = run.text()
    check("tore down run %s" % rid in text, "down did not tear down run %s:\n%s" % (rid, text[-3000:]))
    check("the three issuers agree" in text, text[-3000:])
    check(realm_status("https://" + WARM_HOST, realm) == 404, "%s is still there" % realm)


def cold_run(pipeline, domain, repo, what, tls=None):
    run = DroneRun(pipeline, domain=domain, repo=repo, tls=tls)
    host = "keyc-%s.%s" % (run.id, domain)
    hosts_add(host)
    t0 = time.time()
    passed_run(run, what)
    state["cold_runs"] += 1
    log("%s took %d s" % (what, time.time() - t0))
    mode, realm, url = run.realm()
    check((mode, url) == ("cold", "https://" + host), "bound %s at %s" % (mode, url))
    text = run.text()
    check("the three issuers agree" in text, text[-3000:])
    log("%s: iss %s" % (what, re.search(r"hook: token iss (\S+)", text).group(1)))
    check(re.search(r"hook: token iss https://%s/realms/%s$" % (re.escape(host), realm), text, re.M),
          "iss is not https://%s/realms/%s" % (host, realm))
    wait_until(lambda: "keyc-" + run.id not in cold_services(), 60, "the cold service to go")
    no_leftovers(run)


@test("cold: mode cold is routed by its default labels at https://keyc-<id>.<domain>; the issuers agree")
def cold_mode():
    cold_run("cold", DOMAIN, "ci/cold-" + TAG, "mode cold")


@test("cold: auto with no warm instance at the domain deploys cold, routed by its labels; the issuers agree")
def cold_auto():
    cold_run("recipe-socket", NOWARM, "ci/auto-" + TAG, "auto, no warm")


@test("disk: after 20 warm and 5 cold runs (killed ones included) the engine's counts and sizes are back")
def disk():
    state["baseline"] = state["baseline"] or baseline()
    before = state["baseline"]
    t0 = time.time()
    while state["cold_runs"] < 5:
        # killed while its Keycloak starts: the watchdog removes it
        run = DroneRun("recipe-socket", domain=NOWARM, repo="ci/killed-%s-%d" % (TAG, state["cold_runs"]))
        run.wait_for(r"deploying|cold Keycloak|keyc-%s" % run.id, 300)
        wait_until(lambda: "keyc-" + run.id in cold_services(), 120, "the cold service")
        # Once its watchdog runs: killed between the watchdog's create and
        # its start, a run leaves the service to its lease (see the note).
        wait_until(lambda: docker("ps", "-q", "--filter", "label=drone-deps.role=watchdog",
                                  "--filter", "label=drone-deps.run=" + run.id,
                                  "--filter", "status=running").strip(), 120, "the watchdog")
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.wait(120)
        state["cold_runs"] += 1
        wait_until(lambda: "keyc-" + run.id not in cold_services() and not cold_secrets(), 300,
                   "the killed run's cold service and secret to go")
    while state["warm_runs"] < 20:
        run = DroneRun("recipe", repo="ci/many-" + TAG)
        passed_run(run, "warm run %d" % state["warm_runs"])
        state["warm_runs"] += 1
    log("%d warm and %d cold runs (the suite's, these %d s included)" %
        (state["warm_runs"], state["cold_runs"], time.time() - t0))

    def same():
        after = baseline()
        return after if all(after[k] == before[k] for k in ("volumes", "containers", "networks", "secrets")) \
            and after["df"]["Containers"] == before["df"]["Containers"] \
            and after["df"]["Images"] == before["df"]["Images"] \
            and after["other_volume_sizes"] == before["other_volume_sizes"] else None
    try:
        after = wait_until(same, 120, "the engine to be back where it started", step=2)
    except Failure:
        after = baseline()
    for k in ("volumes", "containers", "networks", "secrets"):
        log("%-10s before %3d  after %3d  new: %s" % (k, len(before[k]), len(after[k]),
                                                     sorted(after[k] - before[k])[:5]))
    for k in ("Images", "Containers", "Local Volumes", "Build Cache"):
        log("docker system df %-13s before %s (%s)  after %s (%s)" %
            ((k,) + tuple(before["df"].get(k, ("?", "?"))) + tuple(after["df"].get(k, ("?", "?")))))
    warm_vol = [v for v in json.loads(docker("system", "df", "-v", "--format", "{{json .}}"))["Volumes"] or []
                if v["Name"] == STACK + "_data"]
    log("the warm instance's volume (aside): %s" % (warm_vol[0]["Size"] if warm_vol else "?"))
    check(all(after[k] == before[k] for k in ("volumes", "containers", "networks", "secrets")),
          "counts differ")
    check(after["df"]["Containers"] == before["df"]["Containers"]
          and after["df"]["Images"] == before["df"]["Images"]
          and after["other_volume_sizes"] == before["other_volume_sizes"], "sizes differ")


def main():
    for signo in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signo, on_signal)
    atexit.register(cleanup)
    t_start = time.time()
    passed = failed = skipped = 0
    try:
        setup()
    except Skip as e:
        for name, _ in TESTS:
            print("ok - host: %s # SKIP %s" % (name, e), flush=True)
        return 0
    except Exception as e:
        print("not ok - host: set-up (Traefik on the proxy network, TLS, names)", flush=True)
        log(str(e))
        return 1
    for name, fn in TESTS:
        if ONLY and not any(o in name for o in ONLY) and not name.startswith("first screen, step 1"):
            continue
        start = time.time()
        try:
            fn()
            print("ok - host: %s (%.1f s)" % (name, time.time() - start), flush=True)
            passed += 1
        except Exception as e:
            print("not ok - host: %s" % name, flush=True)
            log(str(e) if isinstance(e, Failure) else "%s: %s" % (type(e).__name__, e))
            failed += 1
    log("host: %d passed, %d failed, %d skipped in %d s" % (passed, failed, skipped, time.time() - t_start))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
