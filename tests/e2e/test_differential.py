#!/usr/bin/env python3
"""The stand-in against the real server: the same sequence of admin calls
drone-deps makes (plugin/keycloak.c, plugin/realm.c), sent to both, their
status codes and the JSON fields drone-deps reads compared. One TAP line
per call; a difference is a failure that names both answers.

The real server is started with tools/keycloak.sh (or KEYCLOAK_URL and
KEYCLOAK_ADMIN_PASSWORD name one); the stand-in runs on loopback.
"""
import json
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stub  # noqa: E402
from realkc import Admin, RealKeycloak  # noqa: E402

RESERVED = ":/?#@!$&()*+,;=[]\\"


def lease(run, job, expires):
    return {"drone-deps.owner": "drone-deps", "drone-deps.run": run,
            "drone-deps.job": job, "drone-deps.expires": str(expires)}


def realm_rep(name, run, secret, password):
    """The representation plugin/realm.c sends, field for field."""
    return {
        "realm": name, "enabled": True,
        "attributes": lease(run, "local#0.0", int(time.time()) + 900),
        "clients": [{"clientId": "lasuite-drive", "enabled": True, "protocol": "openid-connect",
                     "publicClient": False, "clientAuthenticatorType": "client-secret",
                     "secret": secret, "standardFlowEnabled": True,
                     "directAccessGrantsEnabled": True,
                     "redirectUris": ["https://lasu-%s.ci.example.org/*" % run],
                     "webOrigins": ["https://lasu-%s.ci.example.org" % run]}],
        "users": [{"username": "test", "enabled": True, "email": "test@example.org",
                   "emailVerified": True, "firstName": "Test", "lastName": "User",
                   "credentials": [{"type": "password", "temporary": False, "value": password}]}],
    }


def marks(body):
    """The lease marks of a realm representation, as lease.c reads them."""
    attrs = (body or {}).get("attributes") if isinstance(body, dict) else None
    return {k: v for k, v in (attrs or {}).items() if k.startswith("drone-deps.")}


def error_field(body):
    """What describe() in keycloak.c shows: error / errorMessage /
    error_description."""
    if not isinstance(body, dict):
        return None if body is None else "<%s>" % type(body).__name__
    return {k: body[k] for k in ("error", "errorMessage", "error_description") if k in body}


def form_token(server, realm, form, headers=None):
    data = urllib.parse.urlencode(form)
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    hdrs.update(headers or {})
    req = urllib.request.Request(server.url + "/realms/%s/protocol/openid-connect/token" % realm,
                                 data=data.encode(), method="POST", headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, e.headers, json.loads(text)
        except ValueError:
            return e.code, e.headers, text.decode(errors="replace")


class Diff:
    def __init__(self, stub, real):
        self.servers = (("stand-in", stub), ("real", real))
        self.passed = self.failed = 0

    def compare(self, name, step):
        """step(server) -> a dict of what drone-deps would read; the two
        must be equal."""
        got = {}
        for label, server in self.servers:
            try:
                got[label] = step(server)
            except Exception as e:  # a crash is an answer to compare too
                got[label] = {"exception": "%s: %s" % (type(e).__name__, e)}
        crashed = [label for label in got if "exception" in got[label]]
        if not crashed and got["stand-in"] == got["real"]:
            print("ok - %s: %s" % (name, json.dumps(got["real"], sort_keys=True)), flush=True)
            self.passed += 1
        else:
            print("not ok - %s%s" % (name, " (the step itself failed)" if crashed else ""), flush=True)
            print("#   stand-in: %s" % json.dumps(got["stand-in"], sort_keys=True))
            print("#   real:     %s" % json.dumps(got["real"], sort_keys=True))
            self.failed += 1


def on_stop_signal(signo, frame):
    # Unwinds through main's finally, which stops both servers.
    raise SystemExit(128 + signo)


def main():
    for signo in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signo, on_stop_signal)
    stub = Stub()
    real = None
    try:
        real = RealKeycloak()
        print("# real server at %s; stand-in at %s" % (real.url, stub.url), flush=True)
        for s in (stub, real):
            s.admin = Admin(s.url, s.password)
        return run(Diff(stub, real))
    finally:
        if real is not None:
            try:
                real.reset()
            finally:
                real.stop()
        stub.stop()


def run(d):
    run_id = secrets.token_hex(3)
    name = "lasuite-drive-" + run_id
    q = "/admin/realms/" + name
    secret, password = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
    rep = realm_rep(name, run_id, secret, password)

    def token(s):
        status, _, body = form_token(s, "master", {"grant_type": "password", "client_id": "admin-cli",
                                                   "username": "admin", "password": s.password})
        return {"status": status, "token_type": body.get("token_type"),
                "access_token": isinstance(body.get("access_token"), str),
                "expires_in": body.get("expires_in")}
    d.compare("admin token: password grant for admin-cli", token)

    def bad_password(s):
        status, h, body = form_token(s, "master", {"grant_type": "password", "client_id": "admin-cli",
                                                   "username": "admin", "password": "wrong"})
        return {"status": status, "error": body.get("error") if isinstance(body, dict) else body}
    d.compare("admin token: bad password", bad_password)

    def bad_user(s):
        status, h, body = form_token(s, "master", {"grant_type": "password", "client_id": "admin-cli",
                                                   "username": "nobody", "password": "wrong"})
        return {"status": status, "error": body.get("error") if isinstance(body, dict) else body}
    d.compare("admin token: unknown user", bad_user)

    def create(s):
        status, h, body = s.admin.raw("POST", "/admin/realms", rep)
        loc = h.get("Location") or ""
        return {"status": status, "location": loc.replace(s.url, "<url>"), "body": body}
    d.compare("POST /admin/realms with drone-deps' representation", create)

    def duplicate(s):
        status, _, body = s.admin.raw("POST", "/admin/realms", rep)
        return {"status": status}
    d.compare("POST /admin/realms again: the realm exists", duplicate)

    def get_realm(s):
        status, _, body = s.admin.raw("GET", q)
        return {"status": status, "realm": body.get("realm"), "enabled": body.get("enabled"),
                "marks": marks(body)}
    d.compare("GET /admin/realms/{r} returns the lease marks", get_realm)

    def brief(s):
        status, _, body = s.admin.raw("GET", "/admin/realms?briefRepresentation=true")
        mine = [r for r in body if r.get("realm") in (name, "master")]
        return {"status": status, "realms": sorted(r["realm"] for r in mine),
                "keys": sorted({k for r in mine for k in r})}
    d.compare("GET /admin/realms?briefRepresentation=true", brief)

    def clients_users(s):
        cl = s.admin.call("GET", q + "/clients?clientId=lasuite-drive")
        us = s.admin.call("GET", q + "/users?username=test&exact=true")
        c, u = cl[0], us[0]
        return {"client": {k: c.get(k) for k in ("clientId", "publicClient", "standardFlowEnabled",
                                                  "directAccessGrantsEnabled", "redirectUris",
                                                  "clientAuthenticatorType")},
                "user": {k: u.get(k) for k in ("username", "email", "emailVerified", "firstName",
                                               "lastName", "enabled")}}
    d.compare("the realm's client and test user as created", clients_users)

    def login(s):
        status, _, body = form_token(s, name, {"grant_type": "password", "client_id": "lasuite-drive",
                                               "client_secret": secret, "username": "test",
                                               "password": password, "scope": "openid"})
        return {"status": status, "access_token": isinstance(body.get("access_token"), str),
                "id_token": isinstance(body.get("id_token"), str), "scope": sorted(
                    (body.get("scope") or "").split())}
    d.compare("the binding logs in: password grant with the client secret, scope openid", login)

    def login_bad_secret(s):
        status, _, body = form_token(s, name, {"grant_type": "password", "client_id": "lasuite-drive",
                                               "client_secret": "wrong", "username": "test",
                                               "password": password})
        return {"status": status, "error": body.get("error")}
    d.compare("a login with a wrong client secret", login_bad_secret)

    def put_marks(s):
        new = lease(run_id, "local#0.0", int(time.time()) + 1800)
        status, _, _ = s.admin.raw("PUT", q, {"attributes": new})
        return {"status": status, "marks_equal": marks(s.admin.call("GET", q)) == new}
    d.compare("PUT /admin/realms/{r} with the lease marks renews them", put_marks)

    def put_replaces(s):
        new = lease(run_id, "local#0.0", int(time.time()) + 1800)
        del new["drone-deps.job"]
        status, _, _ = s.admin.raw("PUT", q, {"attributes": new})
        return {"status": status, "marks": sorted(marks(s.admin.call("GET", q)))}
    d.compare("PUT with attributes replaces the map (an omitted mark is gone)", put_replaces)

    partial = {"ifResourceExists": "FAIL",
               "roles": {"realm": [{"name": "editor"}]},
               "users": [{"username": "alice", "enabled": True, "email": "alice@example.org",
                          "firstName": "Alice", "lastName": "A", "emailVerified": True}]}

    def partial_import(s):
        status, _, body = s.admin.raw("POST", q + "/partialImport", partial)
        users = [u["username"] for u in s.admin.call("GET", q + "/users?username=alice&exact=true")]
        return {"status": status, "added": body.get("added") if isinstance(body, dict) else body,
                "alice": users}
    d.compare("POST /admin/realms/{r}/partialImport", partial_import)

    def partial_again(s):
        status, _, body = s.admin.raw("POST", q + "/partialImport", partial)
        return {"status": status}
    d.compare("partialImport again with ifResourceExists FAIL", partial_again)

    def unmarked(s):
        plain = "/admin/realms/plain-" + run_id
        s.admin.call("POST", "/admin/realms", {"realm": "plain-" + run_id, "enabled": True}, ok=(201,))
        status, _, body = s.admin.raw("GET", plain)
        s.admin.call("DELETE", plain)
        return {"status": status, "marks": marks(body), "attributes_is_map": isinstance(body.get("attributes"), dict)}
    d.compare("GET a realm made without attributes: no lease marks", unmarked)

    def delete(s):
        status, _, body = s.admin.raw("DELETE", q)
        return {"status": status, "body": body}
    d.compare("DELETE /admin/realms/{r}", delete)

    def delete_missing(s):
        status, _, body = s.admin.raw("DELETE", q)
        return {"status": status, "error": error_field(body)}
    d.compare("DELETE a missing realm", delete_missing)

    def get_missing(s):
        status, _, body = s.admin.raw("GET", q)
        return {"status": status, "error": error_field(body)}
    d.compare("GET a missing realm", get_missing)

    def put_missing(s):
        status, _, body = s.admin.raw("PUT", q, {"attributes": lease(run_id, "local#0.0", 1)})
        return {"status": status, "error": error_field(body)}
    d.compare("PUT a missing realm", put_missing)

    def partial_missing(s):
        status, _, body = s.admin.raw("POST", q + "/partialImport", partial)
        return {"status": status}
    d.compare("partialImport into a missing realm", partial_missing)

    def delete_master(s):
        status, _, body = s.admin.raw("DELETE", "/admin/realms/master")
        return {"status": status}
    d.compare("DELETE master", delete_master)

    def no_bearer(s):
        status, h, body = s.admin.raw("GET", "/admin/realms?briefRepresentation=true", bearer=False)
        return {"status": status, "body": body, "www_authenticate": h.get("WWW-Authenticate") is not None}
    d.compare("no bearer token", no_bearer)

    def bad_bearer(s):
        status, h, body = s.admin.raw("GET", "/admin/realms?briefRepresentation=true", bearer="x.y.z")
        return {"status": status, "body": body, "www_authenticate": h.get("WWW-Authenticate") is not None}
    d.compare("a malformed bearer token", bad_bearer)

    def expired_bearer(s):
        s.token_lifespan(2)
        try:
            tok = s.admin.login()["access_token"]
            time.sleep(3.5)
            status, h, body = s.admin.raw("GET", "/admin/realms?briefRepresentation=true", bearer=tok)
        finally:
            s.token_lifespan(60)
        return {"status": status, "body": body, "www_authenticate": h.get("WWW-Authenticate") is not None}
    d.compare("an expired bearer token", expired_bearer)

    def token_grows(s):
        before = len(s.admin.login()["access_token"])
        names = ["grow%d-%s" % (i, run_id) for i in range(3)]
        for n in names:
            s.admin.call("POST", "/admin/realms", {"realm": n, "enabled": True}, ok=(201,))
        after = len(s.admin.login()["access_token"])
        for n in names:
            s.admin.call("DELETE", "/admin/realms/" + n)
        return {"grows_per_realm": (after - before) // 3 > 100}
    d.compare("whether the master admin token grows with each realm on the server", token_grows)

    for ch in RESERVED:
        def reserved(s, ch=ch):
            r = dict(realm_rep("bad%sname-%s" % (ch, run_id), run_id, secret, password))
            status, _, body = s.admin.raw("POST", "/admin/realms", r)
            if status == 201:  # leave nothing behind
                s.admin.raw("DELETE", "/admin/realms/" + urllib.parse.quote(r["realm"], safe=""))
            return {"status": status}
        d.compare("a realm name with %r" % ch, reserved)

    for accept in ("application/json", "text/html", "*/*", None):
        def accept_missing(s, accept=accept):
            hdrs = {"Accept": accept}  # None: no Accept header at all
            status, h, body = s.admin.raw("GET", q, headers=hdrs)
            return {"status": status,
                    "content_type": (h.get("Content-Type") or "").split(";")[0].strip(),
                    "json": isinstance(body, (dict, list))}
        d.compare("GET a missing realm with Accept: %s" % (accept or "(none)"), accept_missing)

    print("# differential: %d the same, %d different" % (d.passed, d.failed))
    return 1 if d.failed else 0


if __name__ == "__main__":
    sys.exit(main())
