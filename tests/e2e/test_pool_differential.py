#!/usr/bin/env python3
"""The stand-in against the real server for what the pool and the CI
client rely on: the same calls sent to both, the answers compared (status
codes and the fields drone-deps reads), one TAP line per step.

- The CI client (a master client whose service account holds create-realm
  only) may create realms; it is admin of the realms it made, read from
  its token: a token from before a create or a rename lacks that realm.
  On a realm it did not make it gets the realm's public name (GET) and 403
  for everything else.
- A rename (PUT with a new "realm") keeps the default role's old name,
  renames master's "<realm>-realm" client, and the realm's logins work.
- Concurrent partial imports of one client id into one realm with
  ifResourceExists FAIL: exactly one succeeds, the others are 409.

The real server is started with tools/keycloak.sh (or KEYCLOAK_URL and
KEYCLOAK_ADMIN_PASSWORD name one); the stand-in runs on loopback.
"""
import json
import os
import secrets
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stub  # noqa: E402
from realkc import Admin, RealKeycloak  # noqa: E402
from test_differential import Diff, Report, form_token, marks  # noqa: E402

CLIENT_ID = "drone-deps-ci-diff"
CLIENT_SECRET = "ci-d1ff-s3cret-for-the-pool-differential"


def ensure_client(s):
    """The CI client as README.md makes it."""
    a = s.admin
    found = a.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID)
    if not found:
        a.call("POST", "/admin/realms/master/clients", {
            "clientId": CLIENT_ID, "enabled": True, "publicClient": False,
            "serviceAccountsEnabled": True, "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False, "secret": CLIENT_SECRET}, ok=(201,))
        found = a.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID)
    user = a.call("GET", "/admin/realms/master/clients/%s/service-account-user" % found[0]["id"])
    role = a.call("GET", "/admin/realms/master/roles/create-realm")
    a.call("POST", "/admin/realms/master/users/%s/role-mappings/realm" % user["id"], [role])
    return found[0]["id"]


def client_token(s):
    status, _, body = form_token(s, "master", {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                               "client_secret": CLIENT_SECRET})
    return body.get("access_token") if status == 200 else None


def call(s, tok, method, path, body=None):
    hdrs = {"Accept": "application/json", "Authorization": "Bearer " + tok}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(s.url + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            text, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        text, status = e.read(), e.code
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, "<not JSON>"


def shape(body):
    """What a GET of a realm gives away: all of it when it is small (the
    public-name answer; the name itself left out), else whether the marks
    are there."""
    if not isinstance(body, dict):
        return body
    if len(body) <= 4:
        return {k: ("<name>" if k == "realm" else v) for k, v in body.items()}
    return {"full": True, "has_attributes": "attributes" in body}


def on_stop_signal(signo, frame):
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
        rep = Report()
        return run(Diff(stub, real, rep), rep)
    finally:
        if real is not None:
            try:
                for c in real.admin.call("GET", "/admin/realms/master/clients?clientId=" + CLIENT_ID):
                    real.admin.call("DELETE", "/admin/realms/master/clients/" + c["id"], ok=(204, 404))
                real.reset()
            finally:
                real.stop()
        stub.stop()


def run(d, rep):
    rid = secrets.token_hex(3)
    mine, renamed, foreign = "pd-" + rid, "pd-" + rid + "-renamed", "pdf-" + rid
    secret, password = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
    before = {}

    def setup(s):
        ensure_client(s)
        s.admin.call("POST", "/admin/realms", {"realm": foreign, "enabled": True,
                                               "attributes": {"secret-mark": "x"}}, ok=(201,))
        before[id(s)] = client_token(s)
        return {"token": before[id(s)] is not None}
    d.compare("the CI client gets a token (client_credentials)", setup)

    def create(s):
        st, _ = call(s, before[id(s)], "POST", "/admin/realms", {
            "realm": mine, "enabled": True,
            "attributes": {"drone-deps.owner": "drone-deps", "drone-deps.run": "spare",
                           "drone-deps.job": "pool", "drone-deps.spare": "pd"}})
        return {"status": st}
    d.compare("the CI client creates a realm", create)

    def stale(s):
        st, body = call(s, before[id(s)], "GET", "/admin/realms/" + mine)
        st2, _ = call(s, before[id(s)], "POST", "/admin/realms/%s/partialImport" % mine,
                      {"ifResourceExists": "FAIL", "clients": []})
        return {"get": st, "shape": shape(body), "partialImport": st2}
    d.compare("its token from before the create: the new realm's name only, import refused", stale)

    def fresh(s):
        tok = client_token(s)
        st, body = call(s, tok, "GET", "/admin/realms/" + mine)
        return {"status": st, "shape": shape(body), "marks": marks(body)}
    d.compare("a new token reads the realm it made, marks and all", fresh)

    def list_realms(s):
        st, body = call(s, client_token(s), "GET", "/admin/realms?briefRepresentation=true")
        names = sorted(r["realm"] for r in body) if isinstance(body, list) else body
        return {"status": st, "realms": names}
    d.compare("its realm list: the realms it made only", list_realms)

    def elsewhere(s):
        tok = client_token(s)
        out = {}
        for realm in (foreign, "master"):
            st, body = call(s, tok, "GET", "/admin/realms/" + realm)
            # master: which of its settings it shows
            out["GET " + realm.split("-")[0]] = [st, shape(body) if realm != "master" else
                                                 sorted(body) if isinstance(body, dict) else body]
            out["PUT " + realm.split("-")[0]] = call(s, tok, "PUT", "/admin/realms/" + realm,
                                                     {"attributes": {"x": "y"}})[0]
            out["import " + realm.split("-")[0]] = call(s, tok, "POST", "/admin/realms/%s/partialImport" % realm,
                                                        {"ifResourceExists": "FAIL", "clients": []})[0]
            out["DELETE " + realm.split("-")[0]] = call(s, tok, "DELETE", "/admin/realms/" + realm)[0]
        return out
    d.compare("a realm it did not make, and master: the public name, 403 for the rest", elsewhere)

    results = {}

    def race(s):
        if hasattr(s, "config"):
            # the stand-in imports in microseconds: give its imports the
            # real server's time in flight, so they overlap as there
            s.config(import_ms=300)
        tok = client_token(s)
        sts = []

        def one(i):
            body = {"ifResourceExists": "FAIL", "clients": [{
                "clientId": "pd", "enabled": True, "publicClient": False, "secret": "%s%d" % (secret, i),
                "directAccessGrantsEnabled": True, "redirectUris": ["*"]}],
                "users": [{"username": "test%d" % i, "enabled": True, "email": "t%d@example.org" % i,
                           "firstName": "T", "lastName": "U", "emailVerified": True,
                           "credentials": [{"type": "password", "value": password}]}]}
            sts.append(call(s, tok, "POST", "/admin/realms/%s/partialImport" % mine, body))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if hasattr(s, "config"):
            s.config(import_ms=0)
        codes = sorted(st for st, _ in sts)
        clients = s.admin.call("GET", "/admin/realms/%s/clients?clientId=pd" % mine)
        users = [u["username"] for u in s.admin.call("GET", "/admin/realms/%s/users?search=test" % mine)]
        winner = [i for i in range(8) if "test%d" % i in users]
        results[id(s)] = winner
        return {"statuses": codes, "clients": len(clients), "users": len(users),
                "loser_messages": sorted({json.dumps(b)[:60] for st, b in sts if st != 200})}
    d.compare("8 concurrent partial imports of one client id (FAIL): one wins, 7 are 409", race)

    def rename(s):
        tok = client_token(s)
        st, _ = call(s, tok, "PUT", "/admin/realms/" + mine, {"realm": renamed, "attributes": {
            "drone-deps.owner": "drone-deps", "drone-deps.run": rid, "drone-deps.job": "x#1.1.1",
            "drone-deps.expires": "4102444800"}})
        st_stale, body_stale = call(s, tok, "GET", "/admin/realms/" + renamed)
        st_new, body_new = call(s, client_token(s), "GET", "/admin/realms/" + renamed)
        master = {c["clientId"] for c in s.admin.call("GET", "/admin/realms/master/clients")}
        return {"rename": st, "old token": [st_stale, shape(body_stale)],
                "new token": [st_new, shape(body_new), marks(body_new)],
                "default role": (body_new or {}).get("defaultRole", {}).get("name") if isinstance(body_new, dict)
                else None,
                "master client renamed": renamed + "-realm" in master and mine + "-realm" not in master}
    d.compare("a rename: old token names it only, default role keeps its name, master's client renamed", rename)

    def login_after(s):
        i = results[id(s)][0] if results.get(id(s)) else 0
        status, _, body = form_token(s, renamed, {"grant_type": "password", "client_id": "pd",
                                                  "client_secret": "%s%d" % (secret, i), "username": "test%d" % i,
                                                  "password": password})
        return {"status": status, "access_token": isinstance(body.get("access_token"), str)}
    d.compare("the imported user logs in to the renamed realm", login_after)

    def cleanup(s):
        st, _ = call(s, client_token(s), "DELETE", "/admin/realms/" + renamed)
        s.admin.call("DELETE", "/admin/realms/" + foreign, ok=(204, 404))
        return {"status": st}
    d.compare("the CI client deletes the realm it made (renamed)", cleanup)

    print("# pool differential: %d the same, %d different" % (rep.passed, rep.failed))
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
