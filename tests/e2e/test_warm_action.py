#!/usr/bin/env python3
"""action warm with a real Keycloak on the local swarm: it deploys the warm
instance as a Co-op Cloud app (the locally built image of `make
keycloak-image`, published in host mode: the machine has no routing mesh),
a run binds to it, a second warm changes nothing, a new image tag rolls it,
a removed service comes back with the same admin password, and the CI
client is created once, its secret in a 0600 file. Keycloak's database is
on a volume: the CI client outlives a killed task, and a client lost with
its volume is made again with the secret in the file. The errors a first try
meets (no proxy network, a missing image, a domain too long or malformed,
no Docker socket) exit with a code and a message that says what to change,
and create nothing.

The tests after the first build on the instance it deploys, in order. Needs
a running dockerd in an active swarm and the Keycloak image (`make docker-up
keycloak-image`). The suite removes its service, secrets, volume and image
tag at the end, even when a test fails."""
import base64
import json
import os
import re
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DOCKER, PYTHON, ROOT, Failure, check, docker, main, test, wait_until  # noqa: E402
import test_cold as cs  # noqa: E402  (only its login hook; its tests are not run)
import harness  # noqa: E402

harness._tests[:] = [t for t in harness._tests if t[0].startswith("warm action")]

IMAGE = re.search(r'#define KEYCLOAK_IMAGE_DEFAULT "([^"]+)"',
                  open(os.path.join(ROOT, "plugin", "config.h")).read()).group(1)
# The same image under a second tag: a changed keycloak_image, nothing pulled.
IMAGE2 = "%s-warm%d" % (IMAGE, os.getpid())
PORT = 18210
URL = "http://127.0.0.1:%d" % PORT
DOMAIN = "wa%x.test" % os.getpid()
STACK = ("warm-keycloak." + DOMAIN).replace(".", "_")
SERVICE = STACK + "_app"
SECRET = STACK + "_admin_password"
CI_SECRET = STACK + "_ci_client_secret"
VOLUME = STACK + "_data"
# A Keycloak start takes 30-60 s alone on 2 cores, more when they are busy.
TIMEOUT = 300
SHARED = tempfile.mkdtemp(prefix="drone-deps-warm-")


def warm(ctx, **extra):
    base = dict(action="warm", domain=DOMAIN, warm_publish=PORT, keycloak_url=URL,
                keycloak_admin_password=None, mode=None, parent=None, deps=None,
                docker_host="unix:///var/run/docker.sock", timeout=TIMEOUT)
    base.update(extra)
    return ctx.run(ctx.settings(**base), timeout=TIMEOUT + 60)


def inspect():
    return json.loads(docker("service", "inspect", SERVICE))[0]


def admin_password():
    cid = docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=" + SERVICE).split()
    check(cid, "no running container of %s" % SERVICE)
    return docker("exec", cid[0], "cat", "/run/secrets/admin_password").strip()


def token(form):
    data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(URL + "/realms/master/protocol/openid-connect/token", data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise Failure("token: HTTP %d %s" % (e.code, e.read()[:200]))


def admin_login(password):
    return token({"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                  "password": password}).get("access_token")


def claims(jwt):
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def objects_named(prefix):
    return [n for kind in ("service", "secret", "volume")
            for n in docker(kind, "ls", "--format", "{{.Name}}").split() if n.startswith(prefix)]


def ok(r, what):
    check(r.code == 0, "%s: exit %s: %s" % (what, r.code, r.stderr[-1500:]))


# ---- the errors of a first try: exit code, message, nothing created ----

def refused(ctx, domain, code, needles, **extra):
    r = warm(ctx, domain=domain, **extra)
    check(r.code == code, "exit %s, want %d: %s" % (r.code, code, r.stderr[-800:]))
    for n in needles:
        check(n in r.stderr, "no %r in the message: %s" % (n, r.stderr[-800:]))
    prefix = ("warm-keycloak." + domain).replace(".", "_")
    left = objects_named(prefix)
    check(not left, "created: %s" % left)


@test("warm action: no network proxy exits 69, says to create it or set warm_publish, creates nothing")
def no_proxy(ctx):
    net = "drone-deps-no-such-net-%d" % os.getpid()
    refused(ctx, "np" + DOMAIN, 69,
            ["no swarm network '%s'" % net, "docker network create --driver overlay --attachable %s" % net,
             "warm_publish"], warm_publish=None, network=net)


@test("warm action: a missing image exits 69, names it and says nothing is pulled, creates nothing")
def missing_image(ctx):
    refused(ctx, "mi" + DOMAIN, 69, ["drone-deps-no-such-image:1 is not on this Docker engine",
                                     "never pulls from a registry"],
            keycloak_image="drone-deps-no-such-image:1")


@test("warm action: a domain too long for the swarm's 64-character names exits 64, creates nothing")
def too_long(ctx):
    domain = "a" * 40 + ".example.org"
    refused(ctx, domain, 64, ["domain: '%s' makes the" % domain, "the swarm allows at most",
                              "use a shorter domain"])


@test("warm action: a malformed domain exits 64, creates nothing")
def bad_domain(ctx):
    refused(ctx, "Bad_Domain.org", 64, ["domain: 'Bad_Domain.org' is not a domain name"])


@test("warm action: no domain exits 64 and says warm needs one")
def no_domain(ctx):
    r = warm(ctx, domain=None)
    check(r.code == 64, "exit %s: %s" % (r.code, r.stderr[-800:]))
    check("domain: required for action warm" in r.stderr, r.stderr[-800:])


@test("warm action: no Docker socket exits 69 and says to mount it or set docker_host")
def no_socket(ctx):
    refused(ctx, "ns" + DOMAIN, 69, ["no Docker socket at %s" % ctx.path("none.sock"),
                                     "docker_host"],
            docker_host="unix://" + ctx.path("none.sock"))


@test("warm action: a service of the warm name it did not make is left alone: exit 69, nothing created or changed")
def not_ours(ctx):
    domain = "no" + DOMAIN
    svc = ("warm-keycloak." + domain).replace(".", "_") + "_app"
    # no replica: nothing needs to run for the name to be taken
    docker("service", "create", "--detach", "--replicas", "0", "--name", svc, IMAGE)
    try:
        before = json.loads(docker("service", "inspect", svc))[0]
        r = warm(ctx, domain=domain)
        check(r.code == 69, "exit %s: %s" % (r.code, r.stderr[-800:]))
        check("service %s exists and was not made by action warm" % svc in r.stderr, r.stderr[-800:])
        after = json.loads(docker("service", "inspect", svc))[0]
        check(after["Version"] == before["Version"], "the service was changed")
        left = [n for n in objects_named(svc.rsplit("_app", 1)[0]) if n != svc]
        check(not left, "created: %s" % left)
    finally:
        docker("service", "rm", svc, check_rc=False)


# ---- the warm instance's life, in order ----

@test("warm action: on a proxy network, Traefik labels route warm-keycloak.<domain> to port 8080 with TLS")
def traefik_labels(ctx):
    domain = "tr" + DOMAIN
    svc = ("warm-keycloak." + domain).replace(".", "_") + "_app"
    net = "drone-deps-wa-net-%d" % os.getpid()
    docker("network", "create", "--driver", "overlay", "--attachable", net)
    try:
        # Keycloak cannot be healthy in 10 s: only the spec matters here
        r = warm(ctx, domain=domain, warm_publish=None, network=net, cert_resolver="le", timeout=10)
        check(r.code in (0, 69), "exit %s: %s" % (r.code, r.stderr[-800:]))
        s = json.loads(docker("service", "inspect", svc))[0]["Spec"]
        labels, router = s["Labels"], ("warm-keycloak." + domain).replace(".", "_")
        want = {
            "traefik.enable": "true",
            "traefik.http.routers.%s.rule" % router: "Host(`warm-keycloak.%s`)" % domain,
            "traefik.http.routers.%s.entrypoints" % router: "web-secure",
            "traefik.http.routers.%s.tls.certresolver" % router: "le",
            "traefik.http.services.%s.loadbalancer.server.port" % router: "8080",
            "traefik.docker.network": net,
        }
        got = {k: labels.get(k) for k in want}
        check(got == want, "labels %s, want %s" % (got, want))
        targets = [n["Target"] for n in s["TaskTemplate"].get("Networks", [])]
        net_id = json.loads(docker("network", "inspect", net))[0]["Id"]
        check(targets in ([net_id], [net]), "networks %s, want %s" % (targets, net))
        check(not s.get("EndpointSpec", {}).get("Ports"), "a published port: %s" % s.get("EndpointSpec"))
    finally:
        docker("service", "rm", svc, check_rc=False)
        # the swarm refuses the removal while the service's task still goes
        for _ in range(120):
            if subprocess.run([DOCKER, "network", "rm", net], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)


@test("warm action: deploys the warm Keycloak as a Co-op Cloud app, waits for health, says what it waits for")
def deploy(ctx):
    check(not objects_named(STACK), "left over from an earlier run: %s" % objects_named(STACK))
    t0 = time.time()
    r = warm(ctx)
    ok(r, "warm")
    took = time.time() - t0
    err = r.stderr
    check("generated into the swarm secret %s (never printed)" % SECRET in err, err[-800:])
    check("deploying service %s (%s)" % (SERVICE, IMAGE) in err, err[-800:])
    waits = [l for l in err.splitlines() if "waiting for warm-keycloak.%s to be healthy" % DOMAIN in l]
    check(waits and "task " in waits[-1] and "health " in waits[-1], "no progress lines: %s" % err[-800:])
    check(len(waits) == len(set(re.sub(r", \d+ s$", "", l) for l in waits)),
          "a progress line repeats a state: %s" % waits)
    check("warm-keycloak.%s is ready" % DOMAIN in err, err[-800:])
    s = inspect()["Spec"]
    labels, tt = s["Labels"], s["TaskTemplate"]
    c = tt["ContainerSpec"]
    check(labels.get("com.docker.stack.namespace") == STACK, "labels %s" % labels)
    check(re.fullmatch(r"[0-9a-f]{16}", labels.get("drone-deps.warm.spec", "")), "no spec hash: %s" % labels)
    check("drone-deps.owner" not in labels, "an owner mark would let reap delete it: %s" % labels)
    check(c["Image"] == IMAGE, "image %s" % c["Image"])
    check(c["Secrets"][0]["File"]["Name"] == "admin_password" and c["Secrets"][0]["SecretName"] == SECRET,
          "secret mount %s" % c["Secrets"])
    check(not any("PASSWORD=" in e for e in c.get("Env", [])), "a password in the env: %s" % c["Env"])
    check(c.get("Healthcheck", {}).get("Test", [""])[0] == "CMD", "no health check: %s" % c.get("Healthcheck"))
    check(tt["RestartPolicy"]["Condition"] == "any", "restart %s" % tt["RestartPolicy"])
    check(tt["Resources"]["Limits"]["MemoryBytes"] >= 1 << 30, "limits %s" % tt["Resources"])
    check(c.get("Mounts") == [{"Type": "volume", "Source": VOLUME, "Target": "/opt/keycloak/data",
                               "VolumeOptions": {"Labels": {"com.docker.stack.namespace": STACK}}}],
          "Keycloak's data is not on the volume %s: %s" % (VOLUME, c.get("Mounts")))
    node = docker("info", "--format", "{{.Swarm.NodeID}}").strip()
    check(tt.get("Placement", {}).get("Constraints") == ["node.id==" + node],
          "not pinned to the volume's node %s: %s" % (node, tt.get("Placement")))
    check(s["EndpointSpec"]["Ports"][0] == {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": PORT,
                                            "PublishMode": "host"}, "ports %s" % s["EndpointSpec"])
    pw = admin_password()
    check(len(pw) >= 20, "admin password of %d characters" % len(pw))
    check(pw not in r.output, "the admin password was printed")
    check(admin_login(pw), "no admin token with the secret's password")
    open(os.path.join(SHARED, "admin_password"), "w").write(pw)
    print("# warm deploy to healthy: %.0f s" % took)


@test("warm action: a run binds to the warm instance (password read from its service) and the hook logs in")
def run_bound(ctx):
    env = ctx.settings(keycloak_url=URL, keycloak_admin_password=None, keycloak_service=SERVICE,
                       docker_host="unix:///var/run/docker.sock",
                       hook="%s %s %s" % (PYTHON, cs.LOGIN, ctx.path("login.out")))
    r = ctx.run(env, timeout=120)
    ok(r, "run")
    check(open(ctx.path("login.out")).read().startswith("login ok"), "the hook could not log in")
    check("read the warm admin password from service %s" % SERVICE in r.stderr, r.stderr[-800:])


@test("warm action: a second warm with nothing changed updates nothing and says so")
def no_change(ctx):
    before = inspect()
    r = warm(ctx)
    ok(r, "warm")
    check("is up to date: nothing changed" in r.stderr, r.stderr[-800:])
    check("reusing the swarm secret %s" % SECRET in r.stderr, r.stderr[-800:])
    after = inspect()
    check(after["Version"]["Index"] == before["Version"]["Index"],
          "service version %s -> %s" % (before["Version"]["Index"], after["Version"]["Index"]))
    check(after["UpdatedAt"] == before["UpdatedAt"], "service updated")


@test("warm action: a changed keycloak_image rolls the service; the admin password stays")
def roll(ctx):
    docker("tag", IMAGE, IMAGE2)
    before = inspect()
    r = warm(ctx, keycloak_image=IMAGE2)
    ok(r, "warm")
    check("updating service %s: image %s -> %s" % (SERVICE, IMAGE, IMAGE2) in r.stderr, r.stderr[-800:])
    check("waiting for warm-keycloak.%s to be healthy" % DOMAIN in r.stderr,
          "ready without waiting for the new task: %s" % r.stderr[-800:])
    after = inspect()
    check(after["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == IMAGE2, "image not changed")
    check(after["Version"]["Index"] > before["Version"]["Index"], "version index not raised")
    running = docker("service", "ps", "--filter", "desired-state=running", "--format", "{{.Image}} {{.CurrentState}}",
                     SERVICE).strip()
    check(running.startswith(IMAGE2 + " Running"), "running task: %r" % running)
    check(admin_login(open(os.path.join(SHARED, "admin_password")).read()),
          "the old admin password does not log in after the roll")


@test("warm action: a service left with no live task (scaled to 0) is repaired: its replica comes back")
def repair(ctx):
    docker("service", "scale", "--detach", SERVICE + "=0")
    wait_until(lambda: not docker("ps", "-q", "--filter",
                                     "label=com.docker.swarm.service.name=" + SERVICE).strip(),
                  60, "the scaled-down task did not stop")
    # Only the repair is checked here; the next test waits for a start
    # anyway, so this one does not wait for health.
    r = warm(ctx, keycloak_image=IMAGE2, timeout=3)  # the image of the roll: no spec change
    check("service %s has no live task" % SERVICE in r.stderr and "redeploying it" in r.stderr,
          "exit %s: %s" % (r.code, r.stderr[-800:]))
    check(inspect()["Spec"]["Mode"]["Replicated"]["Replicas"] == 1, "still scaled to 0")
    check(r.code == 0 or (r.code == 69 and "was not healthy within the timeout (3 s)" in r.stderr),
          "exit %s: %s" % (r.code, r.stderr[-800:]))


CI_MARK = "# drone-deps warm_ci_secret_file: the next line is the secret of client drone-deps-ci\n"


def file_secret(path):
    """The secret in a warm_ci_secret_file, which must be in the one shape
    drone-deps writes: its mark line, then the secret."""
    text = open(path).read()
    check(text.startswith(CI_MARK) and text.count("\n") == 2,
          "%s is not in drone-deps' shape: %r" % (path, text[:len(CI_MARK) + 8]))
    return text[len(CI_MARK):].strip()


def no_temporary_left(path):
    folder, base = os.path.split(path)
    left = [n for n in os.listdir(folder) if n.startswith(base + ".drone-deps-")]
    check(not left, "temporary files left beside %s: %s" % (base, left))


@test("warm action: a removed service is redeployed with the same secret; the CI client is created, its secret in a 0600 file")
def redeploy_and_ci_client(ctx):
    docker("service", "rm", SERVICE)
    wait_until(lambda: not docker("ps", "-aq", "--filter",
                                     "label=com.docker.swarm.service.name=" + SERVICE).strip(),
                  60, "the removed service's container did not go")
    secret_file = os.path.join(SHARED, "ci.secret")
    # A first deploy of the client, over a file drone-deps did not write
    # (a bare 40-character value, as the old format was): never adopted.
    planted = "P" * 20 + "1" * 20
    with open(secret_file, "w") as f:
        f.write(planted + "\n")
    os.chmod(secret_file, 0o644)
    r = warm(ctx, warm_ci_client="true", warm_ci_secret_file=secret_file)
    ok(r, "warm")
    check("is not one drone-deps wrote for client drone-deps-ci" in r.stderr, r.stderr[-800:])
    check(file_secret(secret_file) != planted, "the planted value was adopted as the secret")
    check(client_token(planted)[0] is None, "the planted value gets a token")
    no_temporary_left(secret_file)
    check("deploying service %s" % SERVICE in r.stderr, r.stderr[-800:])
    check("reusing the swarm secret %s" % SECRET in r.stderr, r.stderr[-800:])
    old = open(os.path.join(SHARED, "admin_password")).read()
    check(admin_login(old), "the old admin password does not log in after the redeploy")
    check("CI client drone-deps-ci created in realm master" in r.stderr and
          "in the file %s (mode 0600)" % secret_file in r.stderr, r.stderr[-800:])
    mode = stat.S_IMODE(os.stat(secret_file).st_mode)
    check(mode == 0o600, "secret file mode %o" % mode)
    secret = file_secret(secret_file)
    check(len(secret) >= 32, "client secret of %d characters" % len(secret))
    check(secret not in r.output, "the client secret was printed")
    t = token({"grant_type": "client_credentials", "client_id": "drone-deps-ci", "client_secret": secret})
    roles = claims(t["access_token"]).get("realm_access", {}).get("roles", [])
    check("create-realm" in roles and "admin" not in roles, "roles %s" % roles)


@test("warm action: the CI client, once there, is left as it is (its secret not rotated)")
def ci_client_again(ctx):
    secret_file = os.path.join(SHARED, "ci.secret")
    check(os.path.exists(secret_file), "no CI client from the test before")
    first = open(secret_file).read()
    r = warm(ctx, warm_ci_client="true", warm_ci_secret_file=secret_file)
    ok(r, "warm")
    check("nothing changed" in r.stderr, r.stderr[-800:])
    check("CI client drone-deps-ci exists in realm master: left as it is, its secret not rotated" in r.stderr,
          r.stderr[-800:])
    check(open(secret_file).read() == first, "the secret file changed")


@test("warm action: an empty or cut warm_ci_secret_file is not a stored secret: rewritten whole (renamed in, 0600) with the client's current one")
def ci_secret_file_damaged(ctx):
    secret_file = os.path.join(SHARED, "ci.secret")
    check(os.path.exists(secret_file), "no CI client from the tests before")
    secret = file_secret(secret_file)
    for damaged in ("", CI_MARK + secret[:20]):
        with open(secret_file, "w") as f:
            f.write(damaged)
        inode = os.stat(secret_file).st_ino
        r = warm(ctx, warm_ci_client="true", warm_ci_secret_file=secret_file)
        ok(r, "warm")
        check("left as it is" not in r.stderr, "a damaged file counted as stored: %s" % r.stderr[-600:])
        check(file_secret(secret_file) == secret, "the file does not hold the client's secret again")
        check(os.stat(secret_file).st_ino != inode, "written in place, not renamed in")
        mode = stat.S_IMODE(os.stat(secret_file).st_mode)
        check(mode == 0o600, "secret file mode %o" % mode)
        no_temporary_left(secret_file)
        check(secret not in r.output, "the client secret was printed")


def running_container():
    ids = docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=" + SERVICE).split()
    return ids[0] if len(ids) == 1 else None


def client_token(secret):
    """The CI client's token, or None while Keycloak does not answer or
    refuses (a task being restarted)."""
    data = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "drone-deps-ci",
                                   "client_secret": secret}).encode()
    req = urllib.request.Request(URL + "/realms/master/protocol/openid-connect/token", data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r).get("access_token"), 200
    except urllib.error.HTTPError as e:
        return None, e.code
    except (OSError, ValueError):
        return None, None


def wait_answering(what):
    """Waits until Keycloak judges client credentials again after a restart
    (a wrong secret gets 401, not a proxy's or a starting server's answer);
    returns the seconds it took."""
    t0 = time.time()
    wait_until(lambda: client_token("x")[1] in (400, 401), TIMEOUT, what)
    return time.time() - t0


@test("warm action: a killed task comes back with its data: the CI client and its secret work without a new warm")
def survives_restart(ctx):
    secret_file = os.path.join(SHARED, "ci.secret")
    check(os.path.exists(secret_file), "no CI client from the tests before")
    secret = file_secret(secret_file)
    check(client_token(secret)[0], "the CI client does not work before the kill")
    old = running_container()
    check(old, "no single running container of %s" % SERVICE)
    docker("kill", "-s", "KILL", old)
    # the restart policy (any, 5 s) makes a new task with a new container
    wait_until(lambda: running_container() not in (None, old), TIMEOUT,
                  "no new container of %s after the kill" % SERVICE)
    took = wait_answering("Keycloak did not answer after the restart")
    tok, code = client_token(secret)
    check(tok, "the CI client is gone after a restart of the task (HTTP %s): its data was not kept" % code)
    check(admin_login(open(os.path.join(SHARED, "admin_password")).read()),
          "the admin password does not log in after the restart")
    print("# warm task killed to answering again: %.0f s" % took)


@test("warm action: a CI client lost with its volume is made again with the secret in warm_ci_secret_file")
def lost_volume(ctx):
    secret_file = os.path.join(SHARED, "ci.secret")
    check(os.path.exists(secret_file), "no CI client from the tests before")
    secret = file_secret(secret_file)
    docker("service", "rm", SERVICE)
    wait_until(lambda: not docker("ps", "-aq", "--filter",
                                     "label=com.docker.swarm.service.name=" + SERVICE).strip(),
                  60, "the removed service's container did not go")
    remove_volume()
    r = warm(ctx, warm_ci_client="true", warm_ci_secret_file=secret_file)
    ok(r, "warm")
    check("CI client drone-deps-ci created again with the secret already in the file (not rotated)" in r.stderr,
          r.stderr[-800:])
    check(file_secret(secret_file) == secret, "the secret file changed")
    check(secret not in r.output, "the client secret was printed")
    check(client_token(secret)[0], "the file's secret does not get a token from the client made again")


def read_swarm_secret(name):
    """The value of a swarm secret, as a service that mounts it sees it: a
    one-shot task of the Keycloak image that prints it (the API never
    gives a secret's value back)."""
    reader = "%s_reader" % STACK
    docker("service", "create", "--detach", "--name", reader, "--restart-condition", "none",
           "--secret", "source=%s,target=value" % name, "--entrypoint", "cat", IMAGE, "/run/secrets/value")
    try:
        wait_until(lambda: docker("service", "ps", "--format", "{{.CurrentState}}", reader)
                      .startswith(("Complete", "Failed", "Rejected")), 60, "the reader task did not end")
        return docker("service", "logs", "--raw", reader).strip()
    finally:
        docker("service", "rm", reader, check_rc=False)


@test("warm action: without warm_ci_secret_file the CI client's secret goes to the swarm secret S_ci_client_secret, which gets a token")
def ci_secret_in_swarm(ctx):
    secret_file = os.path.join(SHARED, "ci.secret")
    check(os.path.exists(secret_file), "no CI client from the tests before")
    check(CI_SECRET not in objects_named(STACK), "the swarm secret %s exists before" % CI_SECRET)
    r = warm(ctx, warm_ci_client="true")
    ok(r, "warm")
    check("CI client drone-deps-ci exists in realm master" in r.stderr and
          "its secret is in the swarm secret %s" % CI_SECRET in r.stderr, r.stderr[-800:])
    meta = json.loads(docker("secret", "inspect", CI_SECRET))[0]["Spec"]
    check(meta.get("Labels", {}).get("com.docker.stack.namespace") == STACK, "labels %s" % meta.get("Labels"))
    value = read_swarm_secret(CI_SECRET)
    check(value == file_secret(secret_file), "the swarm secret holds another value than the client's")
    check(value not in r.output, "the client secret was printed")
    check(client_token(value)[0], "the swarm secret's value gets no token")


def client_api(client_id, secret, method, path):
    """One admin API call as a CI client: (status, body)."""
    data = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id,
                                   "client_secret": secret}).encode()
    req = urllib.request.Request(URL + "/realms/master/protocol/openid-connect/token", data=data)
    with urllib.request.urlopen(req, timeout=30) as r:
        tok = json.load(r)["access_token"]
    req = urllib.request.Request(URL + path, method=method, headers={"Authorization": "Bearer " + tok})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def as_client(ctx, client_id, secret, **extra):
    base = dict(keycloak_url=URL, keycloak_admin_password=None, keycloak_client_id=client_id,
                keycloak_client_secret=secret, mode="warm", parent="group-a", pool_size="0",
                timeout=TIMEOUT)
    base.update(extra)
    return ctx.run(ctx.settings(**base), timeout=TIMEOUT + 60)


@test("warm action: a second keycloak_client_id makes a second CI client (create-realm only, its own secret); client B can neither read nor delete a realm client A made")
def second_ci_client(ctx):
    file_a = os.path.join(SHARED, "ci.secret")
    file_b = os.path.join(SHARED, "ci-b.secret")
    r = warm(ctx, warm_ci_client="true", warm_ci_secret_file=file_a)
    ok(r, "warm, client A")
    # a warm_ci_secret_file's last line is the secret (its first, the mark
    # naming the client)
    secret_a = open(file_a).read().strip().splitlines()[-1]
    r = warm(ctx, warm_ci_client="true", keycloak_client_id="drone-deps-ci-b", warm_ci_secret_file=file_b)
    ok(r, "warm, client B")
    check("CI client drone-deps-ci-b created in realm master" in r.stderr, r.stderr[-800:])
    secret_b = open(file_b).read().strip().splitlines()[-1]
    check(secret_b != secret_a and open(file_a).read().strip().splitlines()[-1] == secret_a,
          "client A's secret changed")
    roles = claims(token({"grant_type": "client_credentials", "client_id": "drone-deps-ci-b",
                          "client_secret": secret_b})["access_token"]).get("realm_access", {}).get("roles", [])
    check("create-realm" in roles and "admin" not in roles, "client B's roles %s" % roles)
    # its swarm secret is its own: client A's S_ci_client_secret stays as it was
    # by ID: a replaced secret gets a new one (ls's CreatedAt is relative,
    # "About a minute ago", and changes by itself as the test runs)
    before = docker("secret", "ls", "--format", "{{.Name}} {{.ID}}")
    r = warm(ctx, warm_ci_client="true", keycloak_client_id="drone-deps-ci-b")
    ok(r, "warm, client B to a swarm secret")
    name_b = STACK + "_ci_drone-deps-ci-b_secret"
    check("its secret is in the swarm secret %s" % name_b in r.stderr, r.stderr[-800:])
    after = docker("secret", "ls", "--format", "{{.Name}} {{.ID}}")
    a_lines = [line for line in before.splitlines() if line.startswith(CI_SECRET + " ")]
    check(a_lines and all(line in after.splitlines() for line in a_lines),
          "client A's swarm secret was replaced (or never there): %s, then %s" % (a_lines, after.split()))
    # client A makes a realm through drone-deps (action up)
    env_a = ctx.path("a.env")
    r = as_client(ctx, "drone-deps-ci", secret_a, action="up", env_file=env_a)
    ok(r, "up as client A")
    realm = [line.strip().split("=", 1)[1] for line in open(env_a) if line.startswith("DEPS_KEYCLOAK_REALM=")][0]
    st, body = client_api("drone-deps-ci", secret_a, "GET", "/admin/realms/%s/clients" % realm)
    check(st == 200 and "group-a" in body, "client A reads its realm's clients: %s" % st)
    for method, path in (("GET", "/admin/realms/%s/clients" % realm), ("GET", "/admin/realms/%s/users" % realm),
                         ("DELETE", "/admin/realms/%s" % realm)):
        st, body = client_api("drone-deps-ci-b", secret_b, method, path)
        check(st in (403, 404), "client B: %s %s answered %s: %s" % (method, path, st, body[:200]))
    st, body = client_api("drone-deps-ci-b", secret_b, "GET", "/admin/realms/" + realm)
    check(st in (403, 404) or (st == 200 and "drone-deps.key" not in body and "attributes" not in body),
          "client B reads the realm: %s %s" % (st, body[:300]))
    # drone-deps' down as client B, with client A's env_file and its right key
    rb = as_client(ctx, "drone-deps-ci-b", secret_b, action="down", env_file=env_a)
    check(rb.code != 0, "down as client B succeeded: %s" % rb.stderr[-400:])
    st, _ = client_api("drone-deps-ci", secret_a, "GET", "/admin/realms/%s/clients" % realm)
    check(st == 200, "the realm of client A is gone after client B's down (%s)" % st)
    r = as_client(ctx, "drone-deps-ci", secret_a, action="down", env_file=env_a)
    ok(r, "down as client A")
    st, _ = client_api("drone-deps-ci", secret_a, "GET", "/admin/realms/%s/clients" % realm)
    check(st in (403, 404), "client A's down left its realm (%s)" % st)
    print("# client B's down: exit %s: %s" % (rb.code, rb.stderr.strip().splitlines()[-1:]))


@test("figure: a run's cycle on the warm instance with the CI client (H2 on its volume), fresh and claimed realm, median of 5")
def cycle_figure(ctx):
    secret_file = os.path.join(SHARED, "ci.secret")
    check(os.path.exists(secret_file), "no CI client from the tests before")
    secret = file_secret(secret_file)

    def settings(**extra):
        return ctx.settings(keycloak_url=URL, keycloak_admin_password=None, keycloak_client_secret=secret,
                            **extra)

    for pool in ("0", "1"):
        to_hook, total = [], []
        for i in range(5):
            if pool == "1":
                # the spare a previous run's hook or a scheduled reap made (untimed)
                ok(ctx.run(settings(action="reap", pool_size="1"), timeout=120), "refill")
            clock = ctx.path("clock.%s.%d" % (pool, i))
            env = settings(pool_size=pool, hook="%s -c 'import time; print(time.time())' > %s" % (PYTHON, clock))
            t0 = time.time()
            r = ctx.run(env, timeout=120)
            t1 = time.time()
            ok(r, "run %d" % i)
            check("bound keycloak (warm)" in r.stderr, r.stderr[-800:])
            check(("claimed spare" in r.stderr) == (pool == "1"), "pool_size %s: %s" % (pool, r.stderr[-800:]))
            to_hook.append((float(open(clock).read()) - t0) * 1000)
            total.append((t1 - t0) * 1000)
        print("# figure: warm instance, CI client, %s realm: to hook median %.0f ms (min %.0f, max %.0f), "
              "whole run median %.0f ms (5 runs)" % ("claimed" if pool == "1" else "fresh", statistics.median(to_hook),
                                                     min(to_hook), max(to_hook), statistics.median(total)))


def remove_volume(volume=VOLUME):
    """A volume of the suite, once no container holds it (the swarm removes
    a service's containers asynchronously)."""
    deadline = time.time() + 60
    while docker("volume", "ls", "-q", "--filter", "name=^%s$" % volume, check_rc=False).strip():
        if subprocess.run([DOCKER, "volume", "rm", volume], capture_output=True).returncode == 0:
            return
        if time.time() > deadline:
            raise Failure("volume %s still in use after 60 s" % volume)
        time.sleep(0.5)


def cleanup():
    """Every service and secret of the suite's domains (all end in DOMAIN),
    the service first: a secret in use cannot be removed."""
    mine = DOMAIN.replace(".", "_")
    services = [n for n in docker("service", "ls", "--format", "{{.Name}}", check_rc=False).split() if mine in n]
    if services:
        docker("service", "rm", *services, check_rc=False)
    deadline = time.time() + 60
    while time.time() < deadline and any(
            docker("ps", "-aq", "--filter", "label=com.docker.swarm.service.name=" + n, check_rc=False).strip()
            for n in services):
        time.sleep(0.5)
    secrets = [n for n in docker("secret", "ls", "--format", "{{.Name}}", check_rc=False).split() if mine in n]
    if secrets:
        docker("secret", "rm", *secrets, check_rc=False)
    for volume in [n for n in docker("volume", "ls", "--format", "{{.Name}}", check_rc=False).split() if mine in n]:
        try:
            remove_volume(volume)
        except Failure as e:
            print("# cleanup: %s" % e)
    docker("image", "rm", IMAGE2, check_rc=False)
    shutil.rmtree(SHARED, ignore_errors=True)


if __name__ == "__main__":
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if state != "active":
        raise SystemExit("test_warm_action: the swarm is not active (%s): run make docker-up" % state)
    if not docker("image", "ls", "-q", IMAGE).strip():
        raise SystemExit("test_warm_action: the image %s is missing: run make keycloak-image" % IMAGE)
    try:
        rc = main()
    finally:
        cleanup()
    sys.exit(rc)
